"""Resolve a path as if the rootfs were "/", so an image's symlinks cannot lead out of it."""

import os

_MAX_LINKS = 255


def resolve_in_root(root, path):
    """Return the host path of `path` inside `root`, following symlinks within root.

    Absolute link targets restart at root, ".." never climbs above root. The last
    component need not exist (it is what a mount or mkdir will create).
    """
    root = root.rstrip("/") or "/"
    pending = [p for p in path.split("/") if p not in ("", ".")]
    pending.reverse()
    done = []
    links = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = os.path.join(root, *done, part)
        try:
            target = os.readlink(candidate)
        except OSError:  # not a link, or does not exist yet
            done.append(part)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise OSError(40, f"too many levels of symbolic links: {path}")
        if target.startswith("/"):
            done = []
        parts = [p for p in target.split("/") if p not in ("", ".")]
        pending.extend(reversed(parts))
    return os.path.join(root, *done)


def mkdir_all_in_root(root, path, mode=0o755):
    """mkdir -p of `path` inside root; returns the resolved host path."""
    real = resolve_in_root(root, path)
    os.makedirs(real, mode=mode, exist_ok=True)
    return real
