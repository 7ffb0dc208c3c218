"""Manager: one container's cgroups, in every hierarchy the host has.

Paths are keyed as runc keys them: the v1 controller ("memory", "cpu", "name=systemd" ...)
and "" for the cgroup2 hierarchy. On a hybrid host a controller is handled in its v1
hierarchy when it has one, otherwise through the cgroup2 hierarchy when that offers it
(this host's hugetlb), otherwise a request for it fails naming the field.
"""

import errno
import os
import time

from . import fsio
from .errors import CgroupError, CgroupFrozen
from .paths import UNIFIED

# v1.py, v2.py and values.py (and devices.py, convert.py under them) write limits: loaded by
# create() and set() only, not by the verbs that read, freeze or remove a cgroup

_FROZEN = "container's cgroup unexpectedly frozen"  # runc's words

# set() order: runc's v1 subsystem order (cpuset before anything a task needs, devices early)
# (v1 key, v2 controller, linux.resources key, v1 setter, v2 setter)
def _groups():
    from . import v1, v2
    return (
        ("cpuset", "cpuset", "cpu", v1.cpuset, v2.cpuset),
        ("devices", None, "devices", v1.devices, v2.devices),
        ("memory", "memory", "memory", v1.memory, v2.memory),
        ("cpu", "cpu", "cpu", v1.cpu, v2.cpu),
        ("pids", "pids", "pids", v1.pids, v2.pids),
        ("blkio", "io", "blockIO", v1.blkio, v2.io),
        ("hugetlb", "hugetlb", "hugepageLimits", v1.hugetlb, v2.hugetlb),
        ("net_cls", None, "network", v1.net_cls, v2.network),
        ("net_prio", None, "network", v1.net_prio, v2.network),
        ("rdma", "rdma", "rdma", v1.rdma, v2.rdma),
    )


_OBJECT_SECTIONS = frozenset(("cpu", "memory", "pids", "blockIO", "network"))

# where pids() looks: any hierarchy holds every process; prefer the ones always present
_PIDS_ORDER = ("pids", "devices", "freezer", "memory", "cpu", "cpuacct", "name=systemd", UNIFIED)


class Manager:
    """Create with manager_for() (or from_state()); see the package docstring for the order
    the runtime calls things in."""

    __slots__ = ("mode", "_dirs", "_mounts", "_controllers", "warnings", "rootless", "_explicit",
                 "_skipped")

    def __init__(self, mode, paths, mounts=None, *, rootless=False, explicit=False, skipped=()):
        """rootless (runc's rootless cgroups): with no explicit linux.cgroupsPath, a hierarchy
        we have no permission to create or join is skipped instead of failing (a limit asked
        for in it then fails naming the field); device rules are not enforced."""
        if mode not in ("legacy", "hybrid", "unified"):
            raise CgroupError(f"unknown cgroup mode {mode!r}")
        self.mode = mode
        self._dirs = dict(paths)
        self._mounts = dict(mounts or {})
        self._controllers = None
        self.warnings = []  # what set() ignored (runc logs these as warnings)
        self.rootless = bool(rootless)
        self._explicit = bool(explicit)
        self._skipped = set(skipped)  # keys dropped for lack of permission

    def _skip(self, key, err):
        """runc's isIgnorableError + `c.Path == ""`: forget a hierarchy we may not use."""
        code = getattr(err, "errno", None)
        if not self.rootless or self._explicit or code not in (errno.EPERM, errno.EACCES, errno.EROFS):
            return False
        d = self._dirs.get(key)
        for k in [k for k, v in self._dirs.items() if v == d]:  # cpu,cpuacct share a directory
            del self._dirs[k]
            self._skipped.add(k)
        return True

    # --- where things are -----------------------------------------------------------------

    def paths(self):
        return dict(self._dirs)

    def _unique_dirs(self):
        seen, out = set(), []
        for key, d in self._dirs.items():  # cpu and cpuacct may share one mount
            if d not in seen:
                seen.add(d)
                out.append((key, d))
        return out

    def _v2_controllers(self):
        """Controllers the cgroup2 directory offers: its cgroup.controllers once it exists
        (then cached), the mount's before."""
        if self._controllers is not None:
            return self._controllers
        d = self._dirs.get(UNIFIED)
        text = fsio.read_optional(d, "cgroup.controllers") if d else None
        if text is not None:
            self._controllers = tuple(text.split())
            return self._controllers
        mount = self._mounts.get(UNIFIED)
        text = fsio.read_optional(mount, "cgroup.controllers") if mount else None
        return tuple((text or "").split())

    def _route(self, v1_key, v2_name):
        """("v1"|"v2", directory or None) for one controller."""
        if self.mode == "unified":
            return "v2", self._dirs.get(UNIFIED)
        d = self._dirs.get(v1_key)
        if d is not None:
            return "v1", d
        unified = self._dirs.get(UNIFIED)
        if v2_name and unified is not None and v2_name in self._v2_controllers():
            return "v2", unified
        return "v1", None

    def _best_effort(self, key):
        """Hierarchies runc joins without caring whether it worked: named ones (only for
        process tracking) and a hybrid host's cgroup2 mount."""
        return key.startswith("name=") or (key == UNIFIED and self.mode == "hybrid")

    def _mountpoint(self, key, d, marker):
        """The hierarchy's mountpoint; without a record, the highest ancestor that has `marker`."""
        mount = self._mounts.get(key)
        if mount:
            return mount
        while os.path.exists(os.path.join(os.path.dirname(d), marker)) and d != "/":
            d = os.path.dirname(d)
        return d

    # --- lifecycle ------------------------------------------------------------------------

    def create(self):
        """mkdir -p in every hierarchy; a v1 cpuset gets its parent's cpus/mems, a cgroup2
        path gets the controllers enabled in each ancestor's subtree_control (as runc)."""
        from . import v1
        made: list[str] = []
        try:
            for key, d in self._unique_dirs():
                try:
                    if key == UNIFIED:
                        self._create_v2(d, made)
                    else:
                        _mkdirs(d, made)
                        if key == "cpuset":
                            v1.cpuset_fill(d, self._mountpoint(key, d, "cpuset.cpus"))
                except (OSError, CgroupError) as err:
                    if not self._skip(key, err) and not self._best_effort(key):
                        raise
        except (OSError, CgroupError) as err:
            for d in reversed(made):
                try:
                    fsio.rmdir(d)
                except OSError:
                    pass
            if isinstance(err, CgroupError):
                raise
            raise CgroupError(f"linux.cgroupsPath: creating {err.filename}: {fsio.strerror(err)}",
                              err.errno) from None

    def check_unused(self):
        """runc's checks before a container takes its cgroup (linux.cgroupsPath may name an
        existing one): processes already there are an error (runc >= 1.2; 1.1 only warned), and
        so is a frozen cgroup: the init would stop in it and create would wait for it forever.
        (A rootless caller that may not read a cgroup it does not own learns nothing here.)"""
        try:
            self._check_unused()
        except CgroupError as err:
            if not self.rootless or isinstance(err, CgroupFrozen):
                raise

    def _check_unused(self):
        found = self.pids()
        if found:
            raise CgroupError(f"container's cgroup is not empty: {len(found)} process(es) found")
        # frozen by itself (v1's self_freezing; frozen by an ancestor is runc's "thawed") or
        # cgroup.freeze 1: the status's reader
        from .freezestate import frozen
        if frozen(*self._freezer()):
            raise CgroupFrozen(_FROZEN)

    def _create_v2(self, d, made):
        # as runc: going down from the mount, each level passes its controllers on before
        # the next one is made
        level = self._mountpoint(UNIFIED, d, "cgroup.controllers")
        for part in os.path.relpath(d, level).split("/"):
            _enable_controllers(level)
            level = os.path.join(level, part)
            _mkdirs(level, made)

    def apply(self, pid):
        """Write pid to cgroup.procs in every hierarchy (see _best_effort for the exceptions)."""
        for key, d in self._unique_dirs():
            try:
                _write_pid(d, pid)
            except CgroupError as err:
                if not self._skip(key, err) and not self._best_effort(key):
                    raise

    def set(self, resources, *, update=False, linux_devices=None, skip_devices=False):
        """linux.resources -> files. update=True: 0/absent leaves a value alone and device
        rules are not touched. linux_devices (spec.model.Device: linux.devices) only drops default
        device rules whose path the spec redefines, as runc does. skip_devices: no device
        policy at all (runc's SkipDevices: a cgroup delegated to an unprivileged user, where
        the kernel refuses device filters)."""
        from . import v2
        from .values import PREFIX, SetContext, section
        r = resources or {}
        if not isinstance(r, dict):
            raise CgroupError(f"linux.resources: expected an object, got {r!r}")
        ctx = SetContext(update, self.warnings, linux_devices)
        for key, v2_name, rkey, set_v1, set_v2 in _groups():
            if key == "devices" and skip_devices:
                continue
            part = section(r, rkey) if rkey in _OBJECT_SECTIONS else r.get(rkey)
            version, d = self._route(key, v2_name)
            if key == "devices" and self.rootless:
                # runc: device rules are "really not expected to work" rootless; the kernel
                # refuses device nodes in a user namespace anyway (they are host binds)
                try:
                    if d is not None:
                        (set_v1 if version == "v1" else set_v2)(d, part, ctx)
                except CgroupError:
                    pass
                continue
            if self._skipped and d is None:
                try:
                    (set_v1 if version == "v1" else set_v2)(d, part, ctx)
                except CgroupError as err:
                    field = err.field or f"linux.resources.{rkey}"
                    raise CgroupError(f"{field}: cannot set {key} limit: container could not "
                                      f"join or create cgroup (rootless: no permission)") from None
                continue
            if key == "devices" and d is None:
                set_v2(None, part, ctx)  # no devices hierarchy: same limits as cgroup v2
            elif version == "v1":
                set_v1(d, part, ctx)
            else:
                set_v2(d, part, ctx)
        unified = r.get("unified")
        if self.mode == "unified":
            d = self._dirs.get(UNIFIED)
            if d is not None:
                v2.unified(d, unified, ctx, self._v2_controllers)
            elif unified:  # the hierarchy was skipped (rootless, no permission)
                raise CgroupError(f"{PREFIX}unified: cannot set unified limit: container could not "
                                  f"join or create cgroup (rootless: no permission)")
        elif unified:
            raise CgroupError(f"{PREFIX}unified: invalid configuration: cannot use unified on "
                              f"cgroup v1")

    def pids(self):
        """Every pid in the container's cgroup and its sub-cgroups (host pids, sorted)."""
        key = next((k for k in _PIDS_ORDER if k in self._dirs), None)
        if key is None:
            return []
        found: set[int] = set()
        for top, _dirs, _files in os.walk(self._dirs[key]):
            text = fsio.read_optional(top, "cgroup.procs")
            found.update(int(line) for line in (text or "").split())
        return sorted(found)

    def _freezer(self):
        from .freezestate import which
        return which(self.mode, self._dirs)

    def freeze(self):
        from . import freezer  # off the create path, as stats
        version, d = self._freezer()
        if d is None:
            raise CgroupError("pause: cannot toggle freezer: cgroups not configured for container "
                              "(no freezer hierarchy)")
        (freezer.freeze_v1 if version == "v1" else freezer.freeze_v2)(d)

    def thaw(self):
        from . import freezer
        version, d = self._freezer()
        if d is not None:
            (freezer.thaw_v1 if version == "v1" else freezer.thaw_v2)(d)

    def state(self):
        """"paused" when the container's freezer holds it frozen, else "running"."""
        from . import freezer
        version, d = self._freezer()
        if d is None:
            return freezer.RUNNING
        return (freezer.state_v1 if version == "v1" else freezer.state_v2)(d)

    def stats(self):
        from . import stats as st  # off the create path
        out = st.new()
        version, d = self._route("cpu", "cpu")
        if version == "v2":
            st.cpu_v2(out, d)
        else:
            st.cpu_v1(out, d, self._dirs.get("cpuacct"))
        version, d = self._route("cpuset", "cpuset")
        if version == "v1":
            st.cpuset_v1(out, d)
        version, d = self._route("memory", "memory")
        (st.memory_v2 if version == "v2" else st.memory_v1)(out, d)
        st.pids_common(out, self._route("pids", "pids")[1])
        version, d = self._route("blkio", "io")
        (st.io_v2 if version == "v2" else st.blkio_v1)(out, d)
        version, d = self._route("hugetlb", "hugetlb")
        (st.hugetlb_v2 if version == "v2" else st.hugetlb_v1)(out, d)
        return out

    def oom_kill_count(self):
        from . import stats as st
        version, d = self._route("memory", "memory")
        return st.oom_kill_count(d, version == "v2")

    def oom_event_fd(self):
        """v1: an eventfd the kernel signals on each OOM in the cgroup (and once when the cgroup
        is removed: check that it still exists after a read). v2: None, poll memory.events."""
        version, d = self._route("memory", "memory")
        if version == "v2" or d is None:
            return None
        efd = os.eventfd(0, os.EFD_CLOEXEC)
        try:
            try:
                cfd = os.open(d + "/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
            except OSError as err:
                raise CgroupError(f"OOM notification: opening {d}/memory.oom_control: "
                                  f"{fsio.strerror(err)}", err.errno) from None
            try:
                # the kernel keeps its own reference: cfd can be closed once registered
                fsio.write(d, "cgroup.event_control", f"{efd} {cfd}", "OOM notification")
            finally:
                os.close(cfd)
        except BaseException:
            os.close(efd)
            raise
        return efd

    def destroy(self):
        """rmdir every directory, sub-cgroups first; retry while the kernel still holds them
        (EBUSY right after the last task exits), as runc: 5 tries, 10 ms doubling."""
        remaining = [d for _, d in self._unique_dirs()]
        delay, last = 0.01, None
        for attempt in range(5):
            if attempt:
                time.sleep(delay)
                delay *= 2
            left = []
            for d in remaining:
                try:
                    _remove_tree(d)
                except OSError as err:
                    last = err
                if os.path.lexists(d):
                    left.append(d)
            remaining = left
            if not remaining:
                return
        reason = fsio.strerror(last) if last else "still present"
        raise CgroupError(f"removing cgroup {', '.join(remaining)}: {reason}",
                          last.errno if last else None)

    # --- persistence ----------------------------------------------------------------------

    def to_state(self):
        out = {"mode": self.mode, "paths": dict(self._dirs), "mounts": dict(self._mounts)}
        if self.rootless:
            out.update(rootless=True, explicit=self._explicit, skipped=sorted(self._skipped))
        return out

    @classmethod
    def from_state(cls, data):
        try:
            return cls(data["mode"], data["paths"], data.get("mounts"),
                       rootless=data.get("rootless", False), explicit=data.get("explicit", False),
                       skipped=data.get("skipped") or ())
        except (KeyError, TypeError, ValueError) as err:
            raise CgroupError(f"invalid cgroup state {data!r}: {err}") from None

    def __repr__(self):
        return f"Manager(mode={self.mode!r}, paths={self._dirs!r})"


def _mkdirs(d, made):
    """mkdir -p, remembering what this call created (to undo it on failure)."""
    missing = []
    while d and not os.path.isdir(d):
        missing.append(d)
        d = os.path.dirname(d)
    for level in reversed(missing):
        try:
            fsio.mkdir(level)
        except FileExistsError:
            continue
        made.append(level)


def _enable_controllers(d):
    """Make every controller d offers available to its children (cgroup2's subtree_control).
    Best effort, as runc: a cgroup with processes refuses (no internal processes rule)."""
    offered = (fsio.read_optional(d, "cgroup.controllers") or "").split()
    enabled = set((fsio.read_optional(d, "cgroup.subtree_control") or "").split())
    missing = [c for c in offered if c not in enabled]
    if not missing:
        return
    try:
        fsio.write(d, "cgroup.subtree_control", " ".join("+" + c for c in missing), "cgroup")
    except CgroupError:
        for c in missing:
            try:
                fsio.write(d, "cgroup.subtree_control", "+" + c, "cgroup")
            except CgroupError:
                pass


def _write_pid(d, pid):
    for attempt in range(5):
        try:
            fsio.write(d, "cgroup.procs", str(pid), "linux.cgroupsPath")
            return
        except CgroupError as err:
            # EINVAL: the task is between fork and exec or exiting; runc retries
            if err.errno != errno.EINVAL or attempt == 4:
                if err.errno == errno.ENOSPC:
                    raise CgroupError(f"{err} (the cpuset cgroup has no cpus or mems)", err.errno) from None
                raise
            time.sleep(0.03)


def _remove_tree(d):
    try:
        fsio.rmdir(d)
        return
    except FileNotFoundError:
        return
    except OSError as err:
        if err.errno not in (errno.ENOTEMPTY, errno.EBUSY, errno.EEXIST):
            raise
    with os.scandir(d) as it:
        children = [e.path for e in it if e.is_dir(follow_symlinks=False)]
    for child in children:
        _remove_tree(child)
    fsio.rmdir(d)
