"""Typed reads out of linux.resources, and the state of one Manager.set() call."""

import errno

from . import fsio
from .errors import CgroupError

PREFIX = "linux.resources."


def integer(section, key, field):
    """section[key] as an int, None when absent; a non-integer is a CgroupError naming the field."""
    value = section.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise CgroupError(f"{field}: expected an integer, got {value!r}")
    return value


def string(section, key, field):
    value = section.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CgroupError(f"{field}: expected a string, got {value!r}")
    return value


def entries(section, key, field):
    """section[key], a list of objects (blockIO device lists ...), as (item, field name) pairs."""
    return items(section.get(key), field)


def items(value, field):
    """A list of objects as (item, field name) pairs; None is an empty list."""
    if not value:
        return []
    if not isinstance(value, list):
        raise CgroupError(f"{field}: expected an array, got {value!r}")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise CgroupError(f"{field}[{i}]: expected an object, got {item!r}")
        out.append((item, f"{field}[{i}]"))
    return out


def mapping(value, field):
    if not isinstance(value, dict):
        raise CgroupError(f"{field}: expected an object, got {value!r}")
    return value


def section(resources, key):
    value = resources.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CgroupError(f"{PREFIX}{key}: expected an object, got {value!r}")
    return value


class SetContext:
    """update: values of 0 mean "leave alone" (docker update sends zeros) and device rules are
    not touched (runc update sets SkipDevices); warnings: what was ignored, for the caller."""

    __slots__ = ("update", "warnings", "linux_devices")

    def __init__(self, update, warnings, linux_devices=None):
        self.update = update
        self.warnings = warnings
        self.linux_devices = linux_devices

    def warn(self, message):
        if message not in self.warnings:
            self.warnings.append(message)

    def ignored(self, message):
        """A value this cgroup version has no file for, which runc ignores without a word
        (its fs2 driver never looks at it): a --debug line, not a warning."""
        from .. import trace
        trace.debug("%s", message)


def write_idle(d, cpu_):
    """linux.resources.cpu.idle: the same file on v1 and v2; a kernel without it is fine for 0."""
    idle = integer(cpu_, "idle", "linux.resources.cpu.idle")
    if idle is not None:
        try:
            fsio.write(d, "cpu.idle", str(idle), "linux.resources.cpu.idle")
        except CgroupError as err:
            if not (err.errno == errno.ENOENT and not idle):  # 0 is the default anyway
                raise


def memory_values(mem, ctx, field, *, kernel_tcp_applied=False):
    """(limit, swap, reservation) of linux.resources.memory, 0 when unset. The kernel memory
    limit is warned about and ignored, as runc 1.1 does; kernelTCP too, unless the caller
    applies it (cgroup v1 where the kernel has memory.kmem.tcp)."""
    limit = integer(mem, "limit", field + "limit") or 0
    swap = integer(mem, "swap", field + "swap") or 0
    reservation = integer(mem, "reservation", field + "reservation") or 0
    if mem.get("kernel") or (mem.get("kernelTCP") and not kernel_tcp_applied):  # (0: "unset")
        ctx.warn("Kernel memory settings are ignored and will be removed")  # runc's words
    return limit, swap, reservation
