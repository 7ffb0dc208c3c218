"""linux.resources.devices: the rules, runc's default allow-list, and what they add up to.

runc 1.1 appends its default allow-list (libcontainer/specconv AllowedDevices) after the
spec's rules; an entry whose path is also in linux.devices is dropped (the spec's node wins).
With no "a" rule the result is an allow-list: runc's device emulator starts from "deny all".

One rule list serves both versions: cgroup v1 gets it written line by line (v1_writes) and
the kernel keeps the exceptions; cgroup v2 gets an eBPF program (ebpf_devices.py) compiled
from `emulate()`, which computes the same exceptions the v1 kernel would keep.
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
    # -1 is the wildcard; the v1 kernel reads 4294967295 (~0) as "*" too, so it is refused
    # rather than meaning "any" on v1 and "none" in the v2 program
    if not -1 <= value < 0xFFFFFFFF:
        raise CgroupError(f"{field}: invalid device number {value} (0 to 4294967294, or -1 "
                          f"for any)")
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
        # runc's devices.Permissions: r, w and m count, any other letter is ignored ("rwa" in
        # runc's own tests); a rule left with none grants or denies nothing
        access = "".join(c for c in "rwm" if c in access)
        if not access:
            continue
        rules.append(Rule(bool(d.get("allow")), type_, _number(d.get("major"), field + ".major"),
                          _number(d.get("minor"), field + ".minor"), access, field))
    return rules


def default_rules(linux_devices=None):
    """linux_devices: the config's (spec.model.Device): a default rule for one of their paths
    is left out (the container's own node replaces it)."""
    paths = {d.path for d in linux_devices or ()}
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


ACCESS_ORDER = "rwm"


def _access(perms):
    return "".join(c for c in ACCESS_ORDER if c in perms)


def _key_string(key, perms):
    t, major, minor = key
    return Rule(True, t, major, minor, _access(perms), "").cgroup_string()


class Policy:
    """What a rule list amounts to: a default verdict and exceptions to it.

    exceptions: {(type, major, minor): frozenset of "r"/"w"/"m"}, -1 = any number. As in the
    v1 kernel, an access is allowed in deny-by-default mode when ONE exception covers all of
    it, and denied in allow-by-default mode when ANY exception shares a bit with it.
    """

    __slots__ = ("default_allow", "exceptions")

    def __init__(self, default_allow, exceptions):
        self.default_allow = default_allow
        self.exceptions = exceptions

    def allow_all(self):
        return self.default_allow and not self.exceptions

    def entries(self):
        """(type, major, minor, access) sorted, so that one policy always gives one program."""
        return [(t, ma, mi, _access(p)) for (t, ma, mi), p in
                sorted(self.exceptions.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0]))]

    def allows(self, type_, major, minor, access):
        """The verdict for one access (type "c"/"b", real numbers, access a subset of "rwm")."""
        want = set(access)
        for (t, ma, mi), perms in self.exceptions.items():
            if t == type_ and ma in (-1, major) and mi in (-1, minor):
                if self.default_allow and want & perms:
                    return False
                if not self.default_allow and want <= perms:
                    return True
        return self.default_allow


def emulate(rules):
    """The Policy the rules leave behind, applied in order as the v1 kernel (and runc's
    devices emulator) apply them: "a" resets everything to allow-all or deny-all; a rule of
    the other verdict adds (merges into) the exception of its exact type:major:minor; a rule
    of the default's verdict removes access from that exact exception only. Like runc,
    refuse a removal that a broader exception would silently void (v1 cannot punch a hole
    in "c 1:* rwm" for "c 1:3")."""
    exceptions: dict[tuple, frozenset[str]]
    default_allow, exceptions = False, {}
    for rule in rules:
        if rule.is_all():
            default_allow, exceptions = rule.allow, {}
            continue
        key = (rule.type, rule.major, rule.minor)
        perms = frozenset(rule.access)
        if rule.allow != default_allow:
            exceptions[key] = exceptions.get(key, frozenset()) | perms
            continue
        for broader in ((rule.type, -1, rule.minor), (rule.type, rule.major, -1),
                        (rule.type, -1, -1)):
            if broader != key and exceptions.get(broader, frozenset()) & perms:
                verb = "allow" if rule.allow else "deny"
                raise CgroupError(
                    f"{rule.field}: cannot {verb} {rule.cgroup_string()!r} after "
                    f"{_key_string(broader, exceptions[broader])!r}: device rules cannot punch "
                    f"a hole in a wildcard rule (cgroup v1 would ignore it; runc refuses it too)")
        left = exceptions.get(key, frozenset()) - perms
        if left:
            exceptions[key] = left
        else:
            exceptions.pop(key, None)
    return Policy(default_allow, exceptions)


V2_NOT_ENFORCED = ("linux.resources.devices: not enforced: this host has no devices cgroup for "
                   "the container (no v1 devices hierarchy); the container reaches only the "
                   "device nodes its /dev and mounts give it")


def unenforced_check(rules):
    """No devices controller to enforce with (a v1/hybrid host without the devices hierarchy):
    accept allow-lists (the container's /dev is the real limit) with a warning, return None
    when the policy is "allow all", and refuse any specific deny rule: the caller asked to
    block a device and nothing would block it."""
    allow_all = False
    for rule in rules:
        if rule.is_all():
            allow_all = rule.allow
            continue
        if not rule.allow:
            raise CgroupError(f"{rule.field}: cannot deny {rule.cgroup_string()!r}: this host has "
                              f"no devices cgroup for the container to enforce it with")
    return None if allow_all else V2_NOT_ENFORCED
