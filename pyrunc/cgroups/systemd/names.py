"""--systemd-cgroup naming: linux.cgroupsPath "slice:prefix:name" -> slice, unit, cgroup path.

The rules are runc's (libcontainer/specconv CreateCgroupConfig, cgroups/systemd ExpandSlice
and getUnitName):
  ""                  -> slice "system.slice" ("user.slice" for the user instance),
                         unit "<DEFAULT_PREFIX>-<container id>.scope"
  "a-b.slice:p:name"  -> unit "p-name.scope" in a-b.slice, i.e. /a.slice/a-b.slice/p-name.scope
  "s.slice:p:x.slice" -> the unit is the slice x.slice itself (a slice, not a scope)
An empty slice part means the default slice; any other part count is runc's error.
"""

from ..errors import CgroupError

FIELD = "linux.cgroupsPath"
SUFFIX = ".slice"
# runc names the default unit "runc-<id>.scope"; pyrunc's own prefix keeps a runc container
# and a pyrunc container with the same id from fighting over one unit
DEFAULT_PREFIX = "pyrunc"
SYSTEM_SLICE = "system.slice"
USER_SLICE = "user.slice"


def check_syntax(cgroups_path):
    """runc's check while converting the spec (before it looks for systemd)."""
    if cgroups_path and len(cgroups_path.split(":")) != 3:
        raise CgroupError(f'{FIELD}: expected cgroupsPath to be of format "slice:prefix:name" for '
                          f'systemd cgroups, got {cgroups_path!r} instead')


def parse(cgroups_path, container_id, *, user=False):
    """(slice, unit name, description name) for linux.cgroupsPath and the container id."""
    check_syntax(cgroups_path)
    if cgroups_path:
        slice_, prefix, name = cgroups_path.split(":")
    else:
        slice_, prefix, name = "", DEFAULT_PREFIX, container_id
    slice_ = slice_ or (USER_SLICE if user else SYSTEM_SLICE)
    expand_slice(slice_)  # refuse a bad slice before anything is made
    if not name:
        raise CgroupError(f"{FIELD}: {cgroups_path!r}: the name part (slice:prefix:name) is empty")
    unit = unit_name(prefix, name)
    check_unit_name(unit)
    return slice_, unit, name


def unit_name(prefix, name):
    """runc's getUnitName: a scope "<prefix>-<name>.scope" unless name is a slice."""
    if name.endswith(SUFFIX):
        return name
    return f"{prefix}-{name}.scope"


# systemd's unit_name_is_valid(): [a-zA-Z0-9:_.\\-]+ plus one "@", at most 255 characters
_UNIT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\@")


def check_unit_name(unit):
    """Catch what systemd would refuse, naming the field (a "/" would also escape the slice's
    directory in the paths we derive from it)."""
    bad = sorted(set(unit) - _UNIT_CHARS)
    if bad or len(unit) > 255:
        why = f"contains {''.join(bad)!r}" if bad else "is longer than 255 characters"
        raise CgroupError(f"{FIELD}: invalid systemd unit name {unit!r}: it {why}")


def expand_slice(slice_):
    """runc's ExpandSlice: "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice", "-.slice" -> "/"."""
    if len(slice_) < len(SUFFIX) or not slice_.endswith(SUFFIX) or "/" in slice_:
        raise CgroupError(f"{FIELD}: invalid slice name: {slice_}")
    stem = slice_[:-len(SUFFIX)]
    if stem == "-":
        return "/"
    path, prefix = "", ""
    for component in stem.split("-"):
        if not component:  # "a--b.slice", "-a.slice", "a-.slice", ".slice"
            raise CgroupError(f"{FIELD}: invalid slice name: {slice_}")
        path += "/" + prefix + component + SUFFIX
        prefix += component + "-"
    return path
