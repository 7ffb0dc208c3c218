"""Capability sets: names -> numbers, and applying them to the calling process.

prctl(2) (bounding set, keep-caps, ambient) and capset(2) (the e/p/i sets) through
linux/syscalls.py: importing python-prctl cost ~1 ms of every create.
"""


from ..errors import CapabilityError
from .syscalls import capset
from .syscalls import prctl as raw_prctl

# Kernel numbering (include/uapi/linux/capability.h).
NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
NUMBERS = {name: i for i, name in enumerate(NAMES)}
SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")

PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4


def last_cap():
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def resolve(capabilities, last=None):
    """{set: [names]} -> ({set: frozenset(numbers)}, warnings).

    A well-formed name this kernel (or pyrunc) does not know is skipped, and all of them are
    named in one warning worded as runc's (sorted, Go's %v of a slice); a malformed one is an
    error naming the field.
    """
    last = last_cap() if last is None else last
    resolved, unknown = {}, set()
    for kind in SETS:
        numbers = set()
        for i, name in enumerate(capabilities.get(kind) or ()):
            if not (name.startswith("CAP_") and len(name) > 4 and _NAME_CHARS.issuperset(name[4:])):
                raise CapabilityError(f"process.capabilities.{kind}[{i}]: {name!r} is not a "
                                      f"capability name (expected CAP_ followed by upper-case letters)")
            number = NUMBERS.get(name)
            if number is None or number > last:
                unknown.add(name)
                continue
            numbers.add(number)
        resolved[kind] = frozenset(numbers)
    warnings = []
    if unknown:
        warnings.append(f"ignoring unknown or unavailable capabilities: [{' '.join(sorted(unknown))}]")
    return resolved, warnings


def drop_bounding(keep, last):
    for cap in range(last + 1):
        if cap not in keep:
            raw_prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)


def set_keepcaps(flag):
    raw_prctl(PR_SET_KEEPCAPS, 1 if flag else 0, 0, 0, 0)


def apply_sets(effective, permitted, inheritable, last):
    """Make the three sets exactly these (capabilities 0..last; capset(2))."""
    capset(_mask(effective, last), _mask(permitted, last), _mask(inheritable, last))


def _mask(caps, last):
    mask = 0
    for cap in caps:
        if 0 <= cap <= last:
            mask |= 1 << cap
    return mask


def set_ambient(caps):
    """Make the ambient set `caps`; returns the names the kernel refused.

    A cap can only be ambient if it is permitted and inheritable; runc's default spec lists
    ambient caps that are not inheritable, and runc goes on without them, so we do too.
    """
    raw_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    refused = []
    for cap in sorted(caps):
        try:
            raw_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0)
        except PermissionError:
            refused.append(NAMES[cap])
    return refused
