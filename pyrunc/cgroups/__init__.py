"""Container cgroups: cgroup v1, hybrid and v2 hosts, driven by linux.resources.

    m = manager_for(config["linux"].get("cgroupsPath"), container_id)
    m.create()                        # mkdir in every hierarchy
    m.set(config["linux"].get("resources"), linux_devices=config["linux"].get("devices"))
    m.apply(init_pid)                 # before the init unshares its cgroup namespace
    state["cgroups"] = m.to_state()   # later: Manager.from_state(state["cgroups"])

Setting limits before the init joins is safe with every controller and is what makes an
RT budget (cpu.rt_runtime_us) or a cpuset usable by the joining task. `set(..., update=True)`
is `runc update`. Paths, conversions and what is left out: docs/cgroups.md.

Only os/errno/time are imported here (stats on first use): this runs in `pyrunc create`.
"""

import os
import stat

from .errors import CgroupError
from .layout import Layout, probe
from .manager import Manager
from .paths import resolve

__all__ = ["CgroupError", "Layout", "Manager", "manager_for", "probe"]


def manager_for(cgroups_path, container_id, *, systemd=False, layout=None, rootless=False):
    """The Manager for linux.cgroupsPath (None: runc's default, "<id>" below our own cgroup).
    rootless: runc's rootless cgroups (Manager's docstring)."""
    if systemd:
        _refuse_systemd(cgroups_path)
    layout = layout or probe()
    dirs, mounts = resolve(layout, cgroups_path, container_id)
    return Manager(layout.mode, dirs, mounts, rootless=rootless, explicit=bool(cgroups_path))


def systemd_running():
    """runc's test: /run/systemd/system is a directory (not followed if a symlink)."""
    try:
        return stat.S_ISDIR(os.lstat("/run/systemd/system").st_mode)
    except OSError:
        return False


def _refuse_systemd(cgroups_path):
    # runc checks the path's syntax while converting the spec, then whether systemd runs
    if cgroups_path and len(cgroups_path.split(":")) != 3:
        raise CgroupError(f'linux.cgroupsPath: expected cgroupsPath to be of format '
                          f'"slice:prefix:name" for systemd cgroups, got {cgroups_path!r} instead')
    if not systemd_running():
        raise CgroupError("systemd not running on this host, cannot use systemd cgroups manager "
                          "(--systemd-cgroup needs systemd as init: /run/systemd/system does not "
                          "exist)")
    raise CgroupError("--systemd-cgroup: the systemd cgroup driver is not supported yet (it needs "
                      "a D-Bus client); run without --systemd-cgroup to use the cgroupfs driver")
