"""linux.resources -> systemd unit properties, as runc's systemd drivers (v1.go, v2.go, common.go).

A property is (name, (D-Bus signature, value)), ready for StartTransientUnit/SetUnitProperties.
systemd gets what it knows; everything is then also written to the cgroup files by the
cgroupfs code (as runc does), which covers what systemd has no property for.

  v2 (unified)            v1 (hybrid/legacy)      from
  MemoryMax               MemoryLimit             memory.limit (-1: infinity)
  MemoryLow               -                       memory.reservation
  MemorySwapMax           -                       memory.swap - memory.limit (convert.py)
  CPUWeight               CPUShares               cpu.shares (v2: runc 1.1's conversion);
                                                  cpu.idle=1 -> CPUWeight 0 (systemd >= 252)
  CPUQuotaPerSecUSec      (same)                  cpu.quota/period, rounded up to 10 ms
  CPUQuotaPeriodUSec      (same)                  cpu.period (systemd >= 242)
  TasksMax                (same)                  pids.limit (> 0, or -1: infinity)
  AllowedCPUs/MemoryNodes (same)                  cpu.cpus/mems as bitmasks (systemd >= 244)
  IOWeight                BlockIOWeight           blockIO.weight (v2: converted as the files)
  DevicePolicy/DeviceAllow (both)                 devices + runc's default allow-list
  v2 only: unified{} keys cpu.weight, cpu.max, cpuset.*, memory.{high,low,min,max,swap.max},
  pids.max, converted as runc's unifiedResToSystemdProps.
"""

import os

from .. import convert
from .. import devices as devrules
from ..errors import CgroupError
from ..values import PREFIX, integer, section, string

INFINITY = (1 << 64) - 1  # systemd's USEC_INFINITY / CGROUP_LIMIT_MAX
DEFAULT_PERIOD = 100000


def prop(name, sig, value):
    return (name, (sig, value))


def base(unit, slice_, description, pid, *, v2):
    """The properties every container unit gets (runc's Apply)."""
    props = [prop("Description", "s", f"pyrunc container {description}")]
    if unit.endswith(".slice"):
        props.append(prop("Wants", "as", [slice_]))  # a slice's parent is its name's prefix
    else:
        props.append(prop("Slice", "s", slice_))
        props.append(prop("Delegate", "b", True))
    if pid is not None:
        props.append(prop("PIDs", "au", [pid]))
    props += [prop("MemoryAccounting", "b", True), prop("CPUAccounting", "b", True),
              prop("IOAccounting" if v2 else "BlockIOAccounting", "b", True),
              prop("TasksAccounting", "b", True), prop("DefaultDependencies", "b", False)]
    return props


def resources(r, *, v2, version, update=False, linux_devices=None):
    """Properties for linux.resources. version: systemd's (-1 unknown: optional ones are left
    to the files). update: only what the update asks for, device rules untouched."""
    r = r or {}
    if not isinstance(r, dict):
        raise CgroupError(f"linux.resources: expected an object, got {r!r}")
    props = [] if update else device_properties(r.get("devices"), linux_devices)
    mem = section(r, "memory")
    f = PREFIX + "memory."
    limit = integer(mem, "limit", f + "limit") or 0
    reservation = integer(mem, "reservation", f + "reservation") or 0
    swap = integer(mem, "swap", f + "swap") or 0
    if limit:
        props.append(prop("MemoryMax" if v2 else "MemoryLimit", "t", _u64(limit)))
    if v2:
        if reservation:
            props.append(prop("MemoryLow", "t", _u64(reservation)))
        v2_swap = convert.memory_swap_to_v2(swap, limit)
        if v2_swap:
            props.append(prop("MemorySwapMax", "t", _u64(v2_swap)))
    cpu = section(r, "cpu")
    f = PREFIX + "cpu."
    shares = integer(cpu, "shares", f + "shares") or 0
    idle = integer(cpu, "idle", f + "idle")
    if v2:
        if idle == 1 and version >= 252:
            props.append(prop("CPUWeight", "t", 0))
        elif shares:
            props.append(prop("CPUWeight", "t", convert.cpu_shares_to_weight(shares)))
    elif shares:
        props.append(prop("CPUShares", "t", shares))
    cpu_quota(props, integer(cpu, "quota", f + "quota") or 0,
              integer(cpu, "period", f + "period") or 0, version)
    weight = integer(section(r, "blockIO"), "weight", PREFIX + "blockIO.weight") or 0
    if weight:
        if v2:
            props.append(prop("IOWeight", "t", convert.blkio_weight_to_io_weight(weight)))
        else:
            props.append(prop("BlockIOWeight", "t", weight))
    pids = integer(section(r, "pids"), "limit", PREFIX + "pids.limit") or 0
    if pids > 0 or pids == -1:
        props.append(prop("TasksMax", "t", _u64(pids)))
    cpuset(props, string(cpu, "cpus", f + "cpus"), string(cpu, "mems", f + "mems"), version)
    unified = r.get("unified")
    if v2 and unified:
        props += unified_properties(unified, version)
    return props


def _u64(n):
    return INFINITY if n == -1 else n


def cpu_quota(props, quota, period, version):
    """runc's addCpuQuota: systemd takes a quota per second, in steps of 10 ms (rounded up, so
    the files below can still get the exact cpu.max)."""
    if period and version >= 242:
        props.append(prop("CPUQuotaPeriodUSec", "t", period))
    if quota or period:
        per_sec = INFINITY
        if quota > 0:
            per_sec = quota * 1_000_000 // (period or DEFAULT_PERIOD)
            if per_sec % 10000:
                per_sec = (per_sec // 10000 + 1) * 10000
        props.append(prop("CPUQuotaPerSecUSec", "t", per_sec))


def cpuset(props, cpus, mems, version, field=PREFIX + "cpu."):
    if (cpus or mems) and version >= 244:
        if cpus:
            props.append(prop("AllowedCPUs", "ay", range_to_bits(cpus, field + "cpus")))
        if mems:
            props.append(prop("AllowedMemoryNodes", "ay", range_to_bits(mems, field + "mems")))


def range_to_bits(text, field):
    """"0-2,7" -> the bitmask systemd's AllowedCPUs takes: bytes, lowest cpus first."""
    bits = 0
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            start, dash, end = part.partition("-")
            low, high = int(start), int(end) if dash else int(start)
            if low < 0 or high >= 1 << 32 or low > high:
                raise ValueError
            bits |= ((1 << (high - low + 1)) - 1) << low
    except ValueError:
        raise CgroupError(f"{field}: {text!r}: invalid cpu/memory-node list") from None
    if not bits:
        raise CgroupError(f"{field}: {text!r}: empty value")
    return bits.to_bytes((bits.bit_length() + 7) // 8, "little")


_UNIFIED_MEMORY = {"memory.high": "MemoryHigh", "memory.low": "MemoryLow",
                   "memory.min": "MemoryMin", "memory.max": "MemoryMax",
                   "memory.swap.max": "MemorySwapMax"}


def unified_properties(unified, version):
    """runc's unifiedResToSystemdProps: the keys systemd has a property for; the rest only go
    to the files."""
    props: list[tuple[str, tuple[str, object]]] = []
    for key in sorted(unified):
        value = unified[key]
        field = f"{PREFIX}unified.{key}"
        if not isinstance(value, str):
            raise CgroupError(f"{field}: expected a string, got {value!r}")
        v = value.strip()
        try:
            if key == "cpu.max":
                parts = v.split()
                if not 1 <= len(parts) <= 2:
                    raise ValueError
                quota = 0 if parts[0] == "max" else int(parts[0])
                period = int(parts[1]) if len(parts) == 2 else DEFAULT_PERIOD
                cpu_quota(props, quota, period, version)
            elif key == "cpu.weight":
                props.append(prop("CPUWeight", "t", _unsigned(v)))
            elif key in ("cpuset.cpus", "cpuset.mems"):
                if key == "cpuset.cpus":
                    cpuset(props, v, "", version, field[:-4])
                else:
                    cpuset(props, "", v, version, field[:-4])
            elif key in _UNIFIED_MEMORY:
                props.append(prop(_UNIFIED_MEMORY[key], "t", INFINITY if v == "max" else _unsigned(v)))
            elif key == "pids.max":
                props.append(prop("TasksMax", "t", INFINITY if v == "max" else _unsigned(v)))
        except ValueError:
            raise CgroupError(f"{field}: value {value!r} cannot be converted to a systemd "
                              f"property") from None
    return props


def _unsigned(text):
    n = int(text, 10)
    if n < 0:
        raise ValueError(text)
    return n


def device_properties(entries, linux_devices=None):
    """runc's generateDeviceProperties: a strict allow-list systemd enforces as well (the
    cgroupfs code then installs the same policy itself)."""
    rules = devrules.all_rules(entries, linux_devices)
    if any(r.type == "a" and not r.is_all() for r in rules):
        return []  # "a 1:3": no systemd syntax for it; the files alone carry the policy
    policy = devrules.emulate(rules)
    if policy.default_allow:
        if policy.allow_all():
            return [prop("DevicePolicy", "s", "auto"), prop("DeviceAllow", "a(ss)", [])]
        # systemd has no deny-list: deny all there (runc does this too); the files allow
        return [prop("DevicePolicy", "s", "strict"), prop("DeviceAllow", "a(ss)", [])]
    allow = []
    for type_, major, minor, access in policy.entries():
        kind = "block" if type_ == "b" else "char"
        if major == -1:
            if minor != -1:
                continue  # "c *:3": no systemd syntax either
            path = f"{kind}-*"
        elif minor == -1:
            group = device_group(type_, major)
            if group is None:
                continue
            path = f"{kind}-{group}"
        else:
            path = f"/dev/{kind}/{major}:{minor}"
            if not (os.path.exists(path) or os.path.exists("/sys" + path)):
                continue  # systemd < 240 stat()s the path; runc skips it too
        allow.append((path, access))
    return [prop("DevicePolicy", "s", "strict"), prop("DeviceAllow", "a(ss)", []),
            prop("DeviceAllow", "a(ss)", allow)]


def device_group(type_, major, text=None):
    """The /proc/devices name of a major number ("pts" for c 136), or None."""
    if text is None:
        try:
            with open("/proc/devices") as f:
                text = f.read()
        except OSError:
            return None
    want = "Block devices:" if type_ == "b" else "Character devices:"
    current = None
    for line in text.splitlines():
        line = line.strip()
        if line.endswith("devices:"):
            current = line
            continue
        fields = line.split()
        if current == want and len(fields) == 2 and fields[0] == str(major):
            return fields[1]
    return None
