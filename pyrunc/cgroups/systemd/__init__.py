"""The systemd cgroup driver (--systemd-cgroup): see manager.py; docs/cgroups.md "systemd".

Modules: names.py (cgroupsPath -> slice and unit), properties.py (linux.resources -> unit
properties), annotations.py (org.systemd.property.*), bus.py (the D-Bus client: the only
module that imports jeepney), manager.py (SystemdManager).
"""

from .names import check_syntax, expand_slice, parse, unit_name


def make_manager(layout, cgroups_path, container_id, *, annotations=None, user=False):
    """The SystemdManager for a new container (no bus traffic unless user: then the user
    manager's own cgroup is asked for, as runc does)."""
    from ..errors import CgroupError
    from .annotations import properties as annotation_properties
    from .manager import SystemdManager, unit_paths
    slice_, unit, name = parse(cgroups_path, container_id, user=user)
    extra = annotation_properties(annotations)
    manager_cgroup = None
    connect = None
    if user:
        if layout.mode != "unified":
            raise CgroupError("--systemd-cgroup: cannot use rootless systemd cgroups manager on "
                              "cgroup v1 (the systemd user instance can only delegate cgroup v2)")
        from . import bus
        systemd = bus.connect(user=True)
        manager_cgroup = systemd.manager_property("ControlGroup")
        connect = lambda user: systemd  # noqa: E731 (the connection is reused)
    dirs, mounts = unit_paths(layout, slice_, unit, manager_cgroup=manager_cgroup)
    return SystemdManager(layout.mode, unit, slice_, name, dirs, mounts, user=user, extra=extra,
                          connect=connect)


__all__ = ["check_syntax", "expand_slice", "make_manager", "unit_name"]
