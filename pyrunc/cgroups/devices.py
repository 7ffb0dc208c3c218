"""linux.resources.devices: rule strings, runc's default allow-list, and the v2 policy.

runc 1.1 appends its default allow-list (libcontainer/specconv AllowedDevices) after the
spec's rules; an entry whose path is also in linux.devices is dropped (the spec's node wins).
With no "a" rule the result is an allow-list: runc's device emulator starts from "deny all".
"""

from .errors import CgroupError

# (path or None, type, major, minor, access); -1 is the "*" wildcard
DEFAULT_ALLOW = (
    (None, "c", -1, -1, "m"),
    (None, "b", -1, -1, "m"),
    ("/dev/null", "c", 1, 3, "rwm"),
    ("/dev/random", "c", 1, 8, "rwm"),
    ("/dev/full", "c", 1, 7, "rwm"),
    ("/dev/tty", "c", 5, 0, "rwm"),
    ("/dev/zero", "c", 1, 5, "rwm"),
    ("/dev/urandom", "c", 1, 9, "rwm"),
    (None, "c", 136, -1, "rwm"),  # /dev/pts/*
    (None, "c", 5, 2, "rwm"),     # /dev/ptmx
    (None, "c", 10, 200, "rwm"),  # /dev/net/tun
)


class Rule:
    __slots__ = ("allow", "type", "major", "minor", "access", "field")

    def __init__(self, allow, type_, major, minor, access, field):
        self.allow, self.type, self.major, self.minor = allow, type_, major, minor
        self.access, self.field = access, field

    def cgroup_string(self):
        """v1's devices.allow/deny syntax: "c 1:3 rwm", wildcards as "*"."""
        major = "*" if self.major == -1 else str(self.major)
        minor = "*" if self.minor == -1 else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"

    def is_all(self):
        """A rule about every device: for type "a" the kernel ignores numbers and access."""
        return self.type == "a"


def _number(value, field):
    if value is None:
        return -1
    if isinstance(value, bool) or not isinstance(value, int):
        raise CgroupError(f"{field}: expected an integer, got {value!r}")
    return value


def spec_rules(entries):
    """linux.resources.devices -> Rules, validated as runc's specconv does."""
    rules = []
    for i, d in enumerate(entries or ()):
        field = f"linux.resources.devices[{i}]"
        if not isinstance(d, dict):
            raise CgroupError(f"{field}: expected an object, got {d!r}")
        type_ = d.get("type") or "a"
        if type_ not in ("a", "b", "c"):
            raise CgroupError(f"{field}.type: invalid cgroup device type {type_!r}")
        access = d.get("access") or ""
        if not access:
            raise CgroupError(f"{field}.access: device access at {i} field cannot be empty")
        if access.strip("rwm"):
            raise CgroupError(f"{field}.access: invalid device access {access!r} (only r, w and m)")
        rules.append(Rule(bool(d.get("allow")), type_, _number(d.get("major"), field + ".major"),
                          _number(d.get("minor"), field + ".minor"), access, field))
    return rules


def default_rules(linux_devices=None):
    paths = {d.get("path") for d in linux_devices or () if isinstance(d, dict)}
    return [Rule(True, t, ma, mi, acc, "default device allow-list")
            for path, t, ma, mi, acc in DEFAULT_ALLOW if path is None or path not in paths]


def all_rules(entries, linux_devices=None):
    return spec_rules(entries) + default_rules(linux_devices)


def v1_writes(rules):
    """(file, line, field) triples that give a fresh v1 devices cgroup the rules' policy.

    "a" is denied first so that the cgroup starts from runc's "deny all"; the rules then
    apply in order, which is how the kernel and runc's emulator both read them.
    """
    writes = [("devices.deny", "a", "linux.resources.devices")]
    for rule in rules:
        writes.append(("devices.allow" if rule.allow else "devices.deny", rule.cgroup_string(),
                       rule.field))
    return writes


V2_NOT_ENFORCED = ("linux.resources.devices: not enforced on cgroup v2: it needs an eBPF device "
                   "program, which pyrunc does not load; the container reaches only the device "
                   "nodes its /dev and mounts give it")


def v2_check(rules):
    """Without eBPF a v2 cgroup allows every device. Accept allow-lists (the container's /dev is
    the real limit) with a warning, return None when the policy is "allow all", and refuse any
    specific deny rule: the caller asked to block a device and nothing would block it."""
    allow_all = False
    for rule in rules:
        if rule.is_all():
            allow_all = rule.allow
            continue
        if not rule.allow:
            raise CgroupError(f"{rule.field}: cannot deny {rule.cgroup_string()!r} on cgroup v2: "
                              f"device rules need an eBPF program, which pyrunc does not implement")
    return None if allow_all else V2_NOT_ENFORCED
