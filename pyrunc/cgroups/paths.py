"""linux.cgroupsPath -> one host directory per hierarchy, the way runc 1.1 resolves it.

  absolute "/a/b"  -> <mountpoint>/a/b in every hierarchy
  relative "a/b"   -> v1: <mountpoint>/<this process's cgroup in that hierarchy>/a/b
                      unified host: <mountpoint>/<parent of this process's cgroup>/a/b
                      hybrid host's cgroup2 mount: <mountpoint>/a/b (runc's
                      GetOwnCgroupPath("") returns the mountpoint itself)
  missing          -> the relative path "<container id>": runc 1.1 sets the cgroup's Name
                      to the id and Path to "", so the id is joined to the caller's cgroup
                      (checked on this host: runc puts `runc run x` in /sys/fs/cgroup/pids/x
                      when runc itself runs in pids:/)
"""

import posixpath

from .errors import CgroupError

UNIFIED = ""  # runc's key for the cgroup2 hierarchy in its path maps


def clean_path(path):
    """runc's utils.CleanPath: lexical clean; relative paths stay relative but lose "..".."""
    if not path:
        return ""
    path = posixpath.normpath(path)
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    if not path.startswith("/"):
        path = posixpath.relpath(posixpath.normpath("/" + path), "/")
    return path


def _under_root(own, root):
    """This process's cgroup as a path inside a mount whose root is `root`."""
    if root in ("", "/") or own is None:
        return own or "/"
    if own == root:
        return "/"
    if own.startswith(root + "/"):
        return own[len(root):]
    return own


def _join(*parts):
    return posixpath.normpath("/" + "/".join(p.strip("/") for p in parts if p.strip("/")))


# Without linux.cgroupsPath runc uses "<id>" below its own cgroup, and so does pyrunc (a
# container moved from one runtime to the other keeps its cgroup; the tests run runc from a
# cgroup of its own so that runc's and pyrunc's containers of one id never share one).
DEFAULT_PREFIX = ""


def inner_path(cgroups_path, container_id):
    inner = clean_path(cgroups_path) or clean_path(DEFAULT_PREFIX + container_id)
    if inner in ("/", "."):
        what = "the root cgroup" if inner == "/" else "the caller's own cgroup"
        raise CgroupError(f"linux.cgroupsPath: {cgroups_path!r} names {what}; a container needs a "
                          f"cgroup of its own")
    return inner


def resolve(layout, cgroups_path, container_id):
    """{hierarchy key: host directory} and {hierarchy key: mountpoint} for the container."""
    inner = inner_path(cgroups_path, container_id)
    absolute = inner.startswith("/")
    dirs, mounts = {}, {}
    if layout.mode == "unified":
        mountpoint, root = layout.unified
        if absolute:
            dirs[UNIFIED] = _join(mountpoint, inner)
        else:
            own = _under_root(layout.own.get(UNIFIED), root)
            dirs[UNIFIED] = _join(mountpoint, posixpath.dirname(own), inner)
        mounts[UNIFIED] = mountpoint
        return dirs, mounts
    for key, (mountpoint, root) in layout.v1.items():
        if absolute:
            dirs[key] = _join(mountpoint, inner)
        else:
            dirs[key] = _join(mountpoint, _under_root(layout.own.get(key), root), inner)
        mounts[key] = mountpoint
    if layout.unified is not None:  # hybrid: runc joins the cgroup2 hierarchy too
        mountpoint = layout.unified[0]
        dirs[UNIFIED] = _join(mountpoint, inner)
        mounts[UNIFIED] = mountpoint
    return dirs, mounts
