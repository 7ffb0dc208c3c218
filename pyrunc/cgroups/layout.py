"""What cgroup hierarchies this host has, read once from /proc/self/mountinfo.

mode:
  "legacy"  only cgroup v1 hierarchies (one per controller or controller group)
  "hybrid"  v1 hierarchies plus a cgroup2 mount (systemd's /sys/fs/cgroup/unified), which
            holds only the controllers no v1 hierarchy took (often none, here hugetlb)
  "unified" one cgroup2 hierarchy, no v1 controller
"""

import os

from .errors import CgroupError

# The v1 hierarchies runc manages (libcontainer/cgroups/fs/fs.go's subsystem list);
# other named hierarchies and "misc"/"debug" are left alone, as runc does.
V1_CONTROLLERS = ("cpuset", "devices", "memory", "cpu", "cpuacct", "pids", "blkio", "hugetlb",
                  "net_cls", "net_prio", "perf_event", "freezer", "rdma", "name=systemd")
_V1_NAMES = frozenset(V1_CONTROLLERS)


class Layout:
    """v1: controller -> (mountpoint, root); unified: (mountpoint, root) or None.

    `root` is the mount's root inside the hierarchy (4th mountinfo field), needed to turn
    this process's own cgroup (from /proc/self/cgroup) into a host directory.
    """

    __slots__ = ("mode", "v1", "unified", "_unified_controllers", "_own")

    def __init__(self, v1=None, unified=None, mode=None, unified_controllers=None, own=None):
        self.v1 = dict(v1 or {})
        self.unified = unified
        if mode is None:
            mode = _mode(bool(self.v1), unified is not None)
        self.mode = mode
        self._unified_controllers = None if unified_controllers is None else tuple(unified_controllers)
        self._own = own

    @property
    def unified_controllers(self):
        """Controllers the cgroup2 root offers (its cgroup.controllers); read on first use."""
        if self._unified_controllers is None:
            text = None
            if self.unified is not None:
                try:
                    with open(self.unified[0] + "/cgroup.controllers") as f:
                        text = f.read()
                except OSError:
                    pass
            self._unified_controllers = tuple((text or "").split())
        return self._unified_controllers

    @property
    def own(self):
        """This process's cgroup per hierarchy key (controller, "name=systemd", "" for v2)."""
        if self._own is None:
            with open("/proc/self/cgroup") as f:
                self._own = parse_proc_cgroup(f.read())
        return self._own

    def __repr__(self):
        return f"Layout(mode={self.mode!r}, v1={self.v1!r}, unified={self.unified!r})"


def _mode(has_v1, has_unified):
    if has_v1:
        return "hybrid" if has_unified else "legacy"
    if has_unified:
        return "unified"
    raise CgroupError("no cgroup filesystem is mounted (nothing of type cgroup or cgroup2 in "
                      "/proc/self/mountinfo)")


def parse_proc_cgroup(text):
    """/proc/PID/cgroup -> {controller: path}; "2:cpu,cpuacct:/x" gives both keys, "0::/x" key ""."""
    own = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for key in parts[1].split(","):
            own[key] = parts[2]
    return own


def _unescape(field):
    # mountinfo escapes space, tab, newline and backslash as \ooo
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text):
    """The Layout that mountinfo text describes (first mount of each controller wins)."""
    v1, unified = {}, None
    for line in text.splitlines():
        if " cgroup" not in line:
            continue
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        fstype = fields[sep + 1]
        if fstype == "cgroup2":
            if unified is None:
                unified = (_unescape(fields[4]), _unescape(fields[3]))
        elif fstype == "cgroup":
            mount = (_unescape(fields[4]), _unescape(fields[3]))
            for opt in fields[sep + 3].split(","):
                if opt in _V1_NAMES and opt not in v1:
                    v1[opt] = mount
    return Layout(v1=v1, unified=unified)


_cached = None


def probe():
    """The host's Layout; /proc/self/mountinfo is read once per process."""
    global _cached
    if _cached is None:
        try:
            with open("/proc/self/mountinfo") as f:
                text = f.read()
        except OSError as err:
            assert err.errno is not None
            raise CgroupError(f"reading /proc/self/mountinfo: {os.strerror(err.errno).lower()}") from None
        _cached = parse_mountinfo(text)
    return _cached
