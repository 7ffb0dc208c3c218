"""SystemdManager: a container's cgroup as a transient systemd unit (runc's systemd driver).

The same interface as the cgroupfs Manager. The runtime's order is create(), set(), then
apply(pid); a unit can only be started with its first process, so:
  create()      connects to systemd (an unreachable systemd fails before anything is forked)
  set()         checks linux.resources and keeps them
  apply(pid)    StartTransientUnit(<unit>, PIDs=[pid], Delegate=yes, the resources systemd
                knows, org.systemd.property.* annotations) and waits for the job; then the
                cgroupfs Manager of the unit's directories writes every limit to the files
                (what systemd has no property for too) and joins the pid to every v1
                hierarchy, as runc's drivers do
  set(update=True)  SetUnitProperties(runtime) + the files
  destroy()     StopUnit + wait, ResetFailedUnit, then removes what is left of the directories
pids/freeze/thaw/state/stats/oom work on the files (no bus, no jeepney).
"""

import os

from ..errors import CgroupError
from ..manager import Manager
from ..paths import UNIFIED
from . import names
from . import properties as sdprops

DRIVER = "systemd"


class SystemdManager:
    __slots__ = ("mode", "unit", "slice", "name", "user", "_dirs", "_mounts", "_extra",
                 "_resources", "_devices", "_bus", "_connect", "_fs", "_start_failed", "warnings")

    def __init__(self, mode, unit, slice_, name, paths, mounts=None, *, user=False, extra=(),
                 connect=None):
        """extra: properties from annotations; connect(user=bool) -> a bus.Systemd (tests
        pass a fake)."""
        self.mode = mode
        self.unit = unit
        self.slice = slice_
        self.name = name
        self.user = user
        self._dirs = dict(paths)
        self._mounts = dict(mounts or {})
        self._extra = list(extra)
        self._resources = {}
        self._devices = None
        self._bus = None
        self._connect = connect
        self._fs = Manager(mode, self._dirs, self._mounts)
        self._start_failed = False
        self.warnings = self._fs.warnings

    # --- the bus --------------------------------------------------------------------------

    def _systemd(self):
        if self._bus is None:
            if self._connect is None:
                from . import bus  # jeepney comes with it
                self._connect = bus.connect
            self._bus = self._connect(user=self.user)
        return self._bus

    def close(self):
        if self._bus is not None:
            self._bus.close()
            self._bus = None

    def _v2(self):
        return self.mode == "unified"

    # --- the Manager interface ------------------------------------------------------------

    def paths(self):
        return dict(self._dirs)

    def create(self):
        self._systemd()

    def set(self, resources, *, update=False, linux_devices=None):
        if not update:
            # checked now (errors before the fork), sent with the unit at apply()
            sdprops.resources(resources, v2=self._v2(), version=-1, linux_devices=linux_devices)
            self._resources = resources or {}
            self._devices = linux_devices
            return
        bus = self._systemd()
        props = sdprops.resources(resources, v2=self._v2(), version=bus.version(), update=True)
        if props:
            try:
                bus.set_properties(self.unit, props)
            except CgroupError as err:
                raise CgroupError(f"unable to set unit properties: {err}") from None
        self._fs.set(resources, update=True, linux_devices=linux_devices, skip_devices=self.user)

    def apply(self, pid):
        bus = self._systemd()
        props = sdprops.base(self.unit, self.slice, self.name, pid, v2=self._v2())
        props += sdprops.resources(self._resources, v2=self._v2(), version=bus.version(),
                                   linux_devices=self._devices)
        props += self._extra
        self._start(bus, props)
        # systemd made the unit's directories (the pid is in them); the v1 hierarchies it
        # does not manage are made here, and every limit is written to the files as well
        self._fs.create()
        # the user instance's cgroup belongs to an unprivileged user: no device filter there
        # (runc ignores the error for rootless); the container's /dev is the limit
        self._fs.set(self._resources, linux_devices=self._devices, skip_devices=self.user)
        self._fs.apply(pid)

    def _start(self, bus, props):
        from .bus import SystemdError
        for attempt in (1, 2):
            try:
                bus.start_unit(self.unit, props)
                return
            except SystemdError as err:
                if err.name == "org.freedesktop.systemd1.UnitExists" and attempt == 1:
                    # as runc: a failed leftover of the same name goes with reset-failed
                    try:
                        bus.reset_failed(self.unit)
                    except SystemdError:
                        pass
                    continue
                self._start_failed = True  # the unit is not ours: pids()/destroy() leave it
                if err.name is None:
                    try:
                        bus.reset_failed(self.unit)
                    except SystemdError:
                        pass
                raise SystemdError(f'unable to start unit "{self.unit}": {err}', err.name) from None

    def pids(self):
        if self._start_failed:
            return []
        return self._fs.pids()

    def freeze(self):
        self._fs.freeze()

    def thaw(self):
        if not self._start_failed:
            self._fs.thaw()

    def state(self):
        return self._fs.state()

    def stats(self):
        return self._fs.stats()

    def oom_kill_count(self):
        return self._fs.oom_kill_count()

    def oom_event_fd(self):
        return self._fs.oom_event_fd()

    def destroy(self):
        """Stop the unit and wait for it; systemd's errors are ignored as runc does (a scope
        whose processes are all gone has already been removed: NoSuchUnit), except a stop
        that never finishes. Then the directories systemd did not remove (v1 hierarchies)."""
        if self._start_failed:
            return
        from .bus import SystemdError, SystemdTimeout
        bus = self._systemd()
        try:
            bus.stop_unit(self.unit)
        except SystemdTimeout:
            raise
        except SystemdError:
            pass
        try:
            bus.reset_failed(self.unit)
        except SystemdError:
            pass
        self._fs.destroy()

    # --- persistence ----------------------------------------------------------------------

    def to_state(self):
        return {"driver": DRIVER, "mode": self.mode, "unit": self.unit, "slice": self.slice,
                "name": self.name, "user": self.user, "paths": dict(self._dirs),
                "mounts": dict(self._mounts)}

    @classmethod
    def from_state(cls, data, connect=None):
        try:
            unit = data["unit"]
            names.check_unit_name(unit)
            return cls(data["mode"], unit, data["slice"], data.get("name") or unit,
                       data["paths"], data.get("mounts"), user=bool(data.get("user")),
                       connect=connect)
        except (KeyError, TypeError, ValueError) as err:
            raise CgroupError(f"invalid cgroup state {data!r}: {err}") from None

    def __repr__(self):
        return f"SystemdManager(unit={self.unit!r}, mode={self.mode!r}, paths={self._dirs!r})"


# --- where the unit's cgroups are -----------------------------------------------------------

def unit_paths(layout, slice_, unit, *, manager_cgroup=None, init_cgroup=None):
    """({key: directory}, {key: mountpoint}) of `unit` in `slice_`, as runc derives them.

    v2: <mount>[/<user manager's cgroup>]/<expanded slice>/<unit>. v1 (and a hybrid host's
    cgroup2 mount): <mount>/<PID 1's cgroup there, less "init.scope">/<expanded slice>/<unit>
    in every hierarchy (runc's getSubsystemPath)."""
    slice_path = names.expand_slice(slice_)
    dirs, mounts = {}, {}
    if layout.mode == "unified":
        mount = layout.unified[0]
        dirs[UNIFIED] = _join(mount, manager_cgroup or "/", slice_path, unit)
        mounts[UNIFIED] = mount
        return dirs, mounts
    init = init_cgroup if init_cgroup is not None else _init_cgroups()
    for key, (mount, root) in layout.v1.items():
        dirs[key] = _join(mount, _init_path(init.get(key), root), slice_path, unit)
        mounts[key] = mount
    if layout.unified is not None:
        mount, root = layout.unified
        dirs[UNIFIED] = _join(mount, _init_path(init.get(UNIFIED), root), slice_path, unit)
        mounts[UNIFIED] = mount
    return dirs, mounts


def _init_cgroups():
    from ..layout import parse_proc_cgroup
    try:
        with open("/proc/1/cgroup") as f:
            return parse_proc_cgroup(f.read())
    except OSError:
        return {}


def _init_path(own, root):
    path = own or "/"
    if root not in ("", "/") and (path == root or path.startswith(root + "/")):
        path = path[len(root):] or "/"
    path = os.path.normpath(path)
    if path.endswith("init.scope"):
        path = path[:-len("init.scope")]
    return path


def _join(*parts):
    return os.path.normpath("/" + "/".join(p.strip("/") for p in parts if p.strip("/")))
