"""Container cgroups: cgroup v1, hybrid and v2 hosts, driven by linux.resources.

    m = manager_for(spec.linux.cgroups_path, container_id)
    m.create()                        # mkdir in every hierarchy
    m.set(spec.linux.resources, linux_devices=spec.linux.devices)
    m.apply(init_pid)                 # before the init unshares its cgroup namespace
    state["cgroups"] = m.to_state()   # later: Manager.from_state(state["cgroups"])

Setting limits before the init joins is safe with every controller and is what makes an
RT budget (cpu.rt_runtime_us) or a cpuset usable by the joining task. `set(..., update=True)`
is `runc update`. Paths, conversions and what is left out: docs/cgroups.md.

Nothing is imported here until it is used: `pyrunc state` (every verb's status) reads the
freezer through cgroups/freezer.py, and only create needs the Manager (stats on first use).
The verbs after create (manager_from_state) load neither layout.py nor the setters.
"""

import os
import stat

__all__ = ["CgroupError", "Layout", "Manager", "manager_for", "manager_from_state", "probe"]


def __getattr__(name):
    if name == "CgroupError":
        from .errors import CgroupError
        return CgroupError
    if name in ("Layout", "probe"):
        from . import layout
        return getattr(layout, name)
    if name == "Manager":
        from .manager import Manager
        return Manager
    raise AttributeError(name)


def manager_for(cgroups_path, container_id, *, systemd=False, layout=None, annotations=None,
                rootless=False):
    """The Manager for linux.cgroupsPath (None: runc's default, "<id>" below our own cgroup).

    systemd=True: runc's --systemd-cgroup, a SystemdManager (the same interface) for the
    transient unit "slice:prefix:name" names; rootless=True talks to the systemd user instance
    (runc's systemdUser) instead of the system one. annotations: the config's, for
    org.systemd.property.* (only read with systemd)."""
    from .layout import probe
    if systemd:
        from .errors import CgroupError
        from .systemd import check_syntax, make_manager
        # runc checks the path's syntax while converting the spec, then whether systemd runs
        check_syntax(cgroups_path)
        if not systemd_running():
            raise CgroupError("systemd not running on this host, cannot use systemd cgroups manager "
                              "(--systemd-cgroup needs systemd as init: /run/systemd/system does not "
                              "exist)")
        return make_manager(layout or probe(), cgroups_path, container_id,
                            annotations=annotations, user=rootless)
    from .manager import Manager
    from .paths import resolve
    layout = layout or probe()
    dirs, mounts = resolve(layout, cgroups_path, container_id)
    return Manager(layout.mode, dirs, mounts, rootless=rootless, explicit=bool(cgroups_path))


def manager_from_state(data):
    """The manager a container's state recorded (Manager.to_state / SystemdManager.to_state)."""
    if isinstance(data, dict) and data.get("driver") == "systemd":
        from .systemd.manager import SystemdManager  # no bus until one is needed
        return SystemdManager.from_state(data)
    from .manager import Manager
    return Manager.from_state(data)


def systemd_running():
    """runc's test: /run/systemd/system is a directory (not followed if a symlink)."""
    try:
        return stat.S_ISDIR(os.lstat("/run/systemd/system").st_mode)
    except OSError:
        return False
