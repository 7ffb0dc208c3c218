"""linux.resources -> cgroup v2 files, one function per controller (runc's fs2 package).

Same signature as v1.py's functions, so that a hybrid host can use either per controller.
Spec values are cgroup v1 flavoured; convert.py holds the translations.
"""

import errno

from . import convert, fsio, v1
from . import devices as devrules
from .errors import CgroupError
from .values import PREFIX, entries, integer, memory_values, string, write_idle

MEMORY, CPU, BLKIO = v1.MEMORY, v1.CPU, v1.BLKIO


def memory(d, mem, ctx):
    if not mem:
        return
    limit, swap, reservation = memory_values(mem, ctx, MEMORY)
    if mem.get("disableOOMKiller"):
        ctx.ignored(MEMORY + "disableOOMKiller: ignored: cgroup v2 cannot disable the OOM killer")
    swappiness = mem.get("swappiness")
    if swappiness is not None and swappiness not in (-1, fsio.MAX_UINT64):
        ctx.ignored(MEMORY + "swappiness: ignored: cgroup v2 has no per-cgroup swappiness")
    if not (limit or swap or reservation):
        return
    if mem.get("checkBeforeUpdate") and (limit > 0 or swap > 0):
        v1.check_usage(d, "memory.current", limit, swap)
    base = limit
    if ctx.update and swap > 0 and not limit:
        # `update --memory-swap` alone: v2 stores swap without memory, so take the memory
        # limit in force (runc errors here; its merged config usually has it)
        current = fsio.read_uint(d, "memory.max", MEMORY + "swap")
        base = current if current != fsio.MAX_UINT64 else -1
    value = convert.memory_swap_to_v2(swap, base)
    text = convert.v2_number(value)
    if not text and value == 0 and swap > 0:
        text = "0"  # memory+swap == memory: no swap at all
    if text:
        try:
            fsio.write(d, "memory.swap.max", text, MEMORY + "swap")
        except CgroupError as err:
            # no swap accounting on this kernel: "no limit"/"no swap" are already true
            if not (err.errno == errno.ENOENT and text in ("max", "0")):
                raise
    if limit:
        fsio.write(d, "memory.max", convert.v2_number(limit), MEMORY + "limit")
    if reservation:
        fsio.write(d, "memory.low", convert.v2_number(reservation), MEMORY + "reservation")


def cpu(d, cpu_, ctx):
    if not cpu_:
        return
    write_idle(d, cpu_)
    shares = integer(cpu_, "shares", CPU + "shares")
    if shares:
        fsio.write(d, "cpu.weight", str(convert.cpu_shares_to_weight(shares)), CPU + "shares")
    quota = integer(cpu_, "quota", CPU + "quota") or 0
    period = integer(cpu_, "period", CPU + "period") or 0
    burst = integer(cpu_, "burst", CPU + "burst")
    retry_burst = None
    if burst is not None:
        try:
            fsio.write(d, "cpu.max.burst", str(burst), CPU + "burst")
        except CgroupError as err:
            if err.errno != errno.EINVAL or not quota:
                raise
            retry_burst = burst  # refused until the new quota is in
    if quota or period:
        if ctx.update and not (quota and period):
            # cpu.max holds both: keep the half the update does not mention
            old_quota, _, old_period = fsio.read(d, "cpu.max", CPU + "quota").partition(" ")
            quota = quota or (-1 if old_quota == "max" else int(old_quota))
            period = period or int(old_period)
        fsio.write(d, "cpu.max", convert.cpu_max(quota, period), CPU + "quota")
        if retry_burst is not None:
            fsio.write(d, "cpu.max.burst", str(retry_burst), CPU + "burst")
    if integer(cpu_, "realtimeRuntime", CPU + "realtimeRuntime") or \
            integer(cpu_, "realtimePeriod", CPU + "realtimePeriod"):
        ctx.ignored(CPU + "realtimeRuntime/realtimePeriod: ignored: cgroup v2 has no RT group "
                 "scheduling")


def cpuset(d, cpu_, ctx):
    v1.cpuset(d, cpu_, ctx)  # same files on v2


def pids(d, pids_, ctx):
    v1.pids(d, pids_, ctx)  # same file on v2


def io(d, bio, ctx):
    if not bio:
        return
    weight = integer(bio, "weight", BLKIO + "weight")
    weight_devices = entries(bio, "weightDevice", BLKIO + "weightDevice")
    bfq = fsio.read_optional(d, "io.bfq.weight") if (weight or weight_devices) and d else None
    if weight:
        if bfq is not None:  # BFQ takes blkio's 10-1000 scale as is
            fsio.write(d, "io.bfq.weight", str(weight), BLKIO + "weight")
        else:
            fsio.write(d, "io.weight", str(convert.blkio_weight_to_io_weight(weight)),
                       BLKIO + "weight")
    if integer(bio, "leafWeight", BLKIO + "leafWeight"):
        ctx.ignored(BLKIO + "leafWeight: ignored: cgroup v2 has no leaf weights")
    # io.bfq.weight takes "MAJ:MIN WEIGHT" lines only when it shows "default N" (newer kernels)
    per_device = bfq is not None and not bfq.strip().isdigit()
    for item, field in weight_devices:
        w = integer(item, "weight", field + ".weight")
        if w and per_device:
            fsio.write(d, "io.bfq.weight", f"{v1.device_numbers(item, field)} {w}", field)
        elif w:
            ctx.ignored(f"{field}: ignored: per-device weights need the BFQ scheduler's io.bfq.weight")
        if integer(item, "leafWeight", field + ".leafWeight"):
            ctx.ignored(f"{field}.leafWeight: ignored: cgroup v2 has no leaf weights")
    for key, _, name in v1.THROTTLES:
        for item, field in entries(bio, key, BLKIO + key):
            rate = integer(item, "rate", field + ".rate") or 0
            fsio.write(d, "io.max", f"{v1.device_numbers(item, field)} {name}={rate}", field)


def hugetlb(d, limits, ctx):
    v1.hugetlb(d, limits, ctx, suffix=".max")


def rdma(d, limits, ctx):
    v1.rdma(d, limits, ctx)  # same file and syntax on v2


def network(d, network_, ctx):
    if network_ and (network_.get("classID") or network_.get("priorities")):
        ctx.ignored(PREFIX + "network: ignored: cgroup v2 has no net_cls/net_prio controllers")


def devices(d, rules, ctx):
    """linux.resources.devices + runc's defaults -> an eBPF program on the cgroup (runc's fs2
    setDevices). update=True leaves the program alone unless the update brings rules; then
    the new program replaces the old one (attached first, so there is no gap)."""
    if ctx.update and not rules:
        return
    all_rules = devrules.all_rules(rules, ctx.linux_devices)
    if d is None:  # no devices controller at all (v1/hybrid host without one)
        message = devrules.unenforced_check(all_rules)
        if message:
            ctx.warn(message)
        return
    policy = devrules.emulate(all_rules)
    from . import ebpf_attach, ebpf_devices  # only where a filter is installed
    ebpf_attach.install(d, ebpf_devices.build(policy), allow_all=policy.allow_all())


def unified(d, values, ctx, controllers):
    """linux.resources.unified: file name -> value, written verbatim (last, so it wins).

    `controllers` is a callable giving the cgroup's available controllers, read only to
    explain a failure."""
    if not values:
        return
    if not isinstance(values, dict):
        raise CgroupError(f"{PREFIX}unified: expected an object, got {values!r}")
    for key, value in values.items():
        field = f"{PREFIX}unified[{key!r}]"
        if "/" in key or key in ("", ".", ".."):
            raise CgroupError(f"{field}: unified resource {key!r} must be a file name (no slashes)")
        value = string(values, key, field)
        try:
            fsio.write(d, key, value, field)
        except CgroupError as err:
            if err.errno in (errno.EPERM, errno.ENOENT, errno.EACCES):
                controller, dot, _ = key.partition(".")
                if not dot:
                    raise CgroupError(f"{field}: unified resource {key!r} must be in the form "
                                      f"CONTROLLER.PARAMETER") from None
                if controller != "cgroup" and controller not in controllers():
                    raise CgroupError(f"{field}: unified resource {key!r} can't be set: "
                                      f"controller {controller!r} not available", err.errno) from None
            raise
