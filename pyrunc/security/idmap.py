"""linux.uidMappings / gidMappings: checks, and writing them for a process in a new user namespace."""

from ..errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..spec.model import IdMapping

MAX_ID = 2**32 - 1
MAX_LINES = 340  # the kernel's limit per map file


def check(mappings, field):
    """Overlapping or out-of-range ranges are errors naming the field."""
    if len(mappings) > MAX_LINES:
        raise ConfigError(f"config.json: {field}: at most {MAX_LINES} ranges are allowed")
    for i, m in enumerate(mappings):
        if m["size"] < 1:
            raise ConfigError(f"config.json: {field}[{i}].size: must be at least 1")
        for key in ("containerID", "hostID"):
            if m[key] + m["size"] - 1 > MAX_ID - 1:
                raise ConfigError(f"config.json: {field}[{i}]: {key} {m[key]} + size {m['size']} "
                                  f"goes past the largest id {MAX_ID - 1}")
    for key in ("containerID", "hostID"):
        ranges = sorted((m[key], m[key] + m["size"], i) for i, m in enumerate(mappings))
        for (_, e1, i1), (s2, _, i2) in zip(ranges, ranges[1:], strict=False):
            if s2 < e1:
                raise ConfigError(f"config.json: {field}[{max(i1, i2)}]: its {key} range overlaps "
                                  f"{field}[{min(i1, i2)}]")


def map_text(mappings: "list[IdMapping]"):
    """mappings: spec.model.IdMapping (check() above reads the dicts: it runs before the model)."""
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)


def write_maps(pid, uid_mappings, gid_mappings, deny_setgroups=False, rootless=False):
    """Write uid_map, then setgroups, then gid_map (the kernel's required order).

    rootless (a non-root caller, runc's rootless EUID): a map the kernel refuses (EPERM: more
    than our own id) is handed to newuidmap/newgidmap, the setuid helpers that check
    /etc/subuid and /etc/subgid, as runc does; setgroups is denied only when the gid map is
    our own egid alone (runc: the helpers need it allowed)."""
    _write(pid, "uid", uid_mappings, rootless)
    if deny_setgroups:
        _write_text(f"/proc/{pid}/setgroups", "deny", "setgroups")
    _write(pid, "gid", gid_mappings, rootless)


def _write(pid, kind, mappings, rootless):
    text = map_text(mappings)
    try:
        _write_text(f"/proc/{pid}/{kind}_map", text, f"{kind}_map", raw=True)
    except PermissionError:
        if not rootless:
            raise ConfigError(f"failed to write {kind}_map ({text.strip()!r}): operation not "
                              f"permitted") from None
        _mapping_tool(pid, kind, mappings)
    except OSError as e:
        raise ConfigError(f"failed to write {kind}_map ({text.strip()!r}): {(e.strerror or str(e)).lower()}") from None


def _mapping_tool(pid, kind, mappings):
    """newuidmap PID CID HID SIZE ... (an empty environment, as runc); runc's wording."""
    import shutil
    import subprocess
    tool = shutil.which(f"new{kind}map")
    if tool is None:
        raise ConfigError(f"failed to write {kind}_map: operation not permitted, and new{kind}map "
                          f"(package uidmap) is not installed to map more than our own {kind}")
    argv = [tool, str(pid)] + [str(n) for m in mappings for n in (m.container_id, m.host_id, m.size)]
    try:
        r = subprocess.run(argv, env={}, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ConfigError(f"failed to use new{kind} map on {pid}: {e}") from None
    if r.returncode != 0:
        detail = r.stderr.decode(errors="replace").strip().replace("\n", "; ")
        raise ConfigError(f"failed to use new{kind} map on {pid}: {detail or f'exit status {r.returncode}'}")


def _write_text(path, text, what, raw=False):
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as e:
        if raw:
            raise
        raise ConfigError(f"failed to write {what} ({text.strip()!r}): {(e.strerror or str(e)).lower()}") from None
