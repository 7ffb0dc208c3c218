"""linux.resources -> cgroup v1 files, one function per controller (runc's fs package).

Each function takes the controller's directory (None when the host lacks the controller:
the first write then fails naming the field), its part of linux.resources, and the
SetContext. A value of 0 (or absent) is never written: runc reads 0 as "not set".
"""

import errno
import os

from . import devices as devrules
from . import fsio
from .errors import CgroupError
from .values import PREFIX, entries, integer, items, mapping, memory_values, string, write_idle

MEMORY = PREFIX + "memory."
CPU = PREFIX + "cpu."
BLKIO = PREFIX + "blockIO."


def _exists(directory, name):
    return directory is not None and os.path.exists(directory + "/" + name)


# --- memory ---------------------------------------------------------------------------------

def memory(d, mem, ctx):
    if not mem:
        return
    # kernelTCP: applied where the kernel has the file (runc 1.1 ignores it everywhere)
    kernel_tcp = integer(mem, "kernelTCP", MEMORY + "kernelTCP")
    tcp_file = bool(kernel_tcp) and _exists(d, "memory.kmem.tcp.limit_in_bytes")
    limit, swap, reservation = memory_values(mem, ctx, MEMORY, kernel_tcp_applied=tcp_file)
    if mem.get("checkBeforeUpdate") and (limit > 0 or swap > 0):
        check_usage(d, "memory.usage_in_bytes", limit, swap)
    _memory_and_swap(d, limit, swap)
    if reservation:
        fsio.write(d, "memory.soft_limit_in_bytes", str(reservation), MEMORY + "reservation")
    if mem.get("disableOOMKiller"):
        fsio.write(d, "memory.oom_control", "1", MEMORY + "disableOOMKiller")
    swappiness = integer(mem, "swappiness", MEMORY + "swappiness")
    if swappiness is not None and swappiness not in (-1, fsio.MAX_UINT64):  # -1: "unset"
        if not 0 <= swappiness <= 100:
            raise CgroupError(f"{MEMORY}swappiness: invalid memory swappiness value: {swappiness} "
                              f"(valid range is 0-100)")
        fsio.write(d, "memory.swappiness", str(swappiness), MEMORY + "swappiness")
    if tcp_file:
        fsio.write(d, "memory.kmem.tcp.limit_in_bytes", str(kernel_tcp), MEMORY + "kernelTCP")


def check_usage(d, usage_file, limit, swap):
    """checkBeforeUpdate: refuse a limit at or below what the cgroup already uses."""
    try:
        usage = fsio.read_uint(d, usage_file)
    except (CgroupError, ValueError):
        return  # best effort, as runc: no usage to compare with
    if swap > 0 and swap <= usage:
        raise CgroupError(f"{MEMORY}swap: rejecting memory+swap limit {swap} <= usage {usage}")
    if limit > 0 and limit <= usage:
        raise CgroupError(f"{MEMORY}limit: rejecting memory limit {limit} <= usage {usage}")


def _memory_and_swap(d, limit, swap):
    """memory.limit_in_bytes <= memory.memsw.limit_in_bytes always holds in the kernel, so the
    order of the two writes depends on whether the limits go up or down (runc's rule)."""
    has_memsw = _exists(d, "memory.memsw.limit_in_bytes")
    if limit == -1 and swap == 0 and has_memsw:
        swap = -1  # unlimited memory must not stay capped by an old memory+swap limit
    if limit and swap:
        current = fsio.read_uint(d, "memory.limit_in_bytes", MEMORY + "limit")
        if swap == -1 or current < swap:
            _set_swap(d, swap)
            _set_memory(d, limit, has_memsw)
            return
    _set_memory(d, limit, has_memsw)
    _set_swap(d, swap)


def _set_memory(d, limit, has_memsw):
    if not limit:
        return
    try:
        fsio.write(d, "memory.limit_in_bytes", str(limit), MEMORY + "limit")
    except CgroupError as err:
        if err.errno == errno.EBUSY:
            usage = fsio.read_uint(d, "memory.usage_in_bytes", MEMORY + "limit")
            peak = fsio.read_uint(d, "memory.max_usage_in_bytes", MEMORY + "limit")
            raise CgroupError(f"{MEMORY}limit: unable to set memory limit to {limit} (current "
                              f"usage: {usage}, peak usage: {peak})", err.errno) from None
        if err.errno == errno.EINVAL and has_memsw and \
                0 < fsio.read_uint(d, "memory.memsw.limit_in_bytes", MEMORY + "limit") < limit:
            raise CgroupError(f"{err} (memory.limit must not exceed the current memory+swap limit "
                              f"in memory.memsw.limit_in_bytes: set linux.resources.memory.swap "
                              f"too)", err.errno) from None
        raise


def _set_swap(d, swap):
    if swap:
        fsio.write(d, "memory.memsw.limit_in_bytes", str(swap), MEMORY + "swap")


# --- cpu, cpuset ----------------------------------------------------------------------------

def cpu(d, cpu_, ctx):
    if not cpu_:
        return
    shares = integer(cpu_, "shares", CPU + "shares")
    if shares:
        fsio.write(d, "cpu.shares", str(shares), CPU + "shares")
        # the kernel clamps out-of-range shares silently; runc reports the clamp
        got = fsio.read_uint(d, "cpu.shares", CPU + "shares")
        if shares > got:
            raise CgroupError(f"{CPU}shares: the maximum allowed cpu-shares is {got}")
        if shares < got:
            raise CgroupError(f"{CPU}shares: the minimum allowed cpu-shares is {got}")
    period = integer(cpu_, "period", CPU + "period")
    quota = integer(cpu_, "quota", CPU + "quota")
    burst = integer(cpu_, "burst", CPU + "burst")
    # A new period may be refused (EINVAL) until the new quota is in, and the other way
    # round: write the period first and retry it after the quota (runc's order).
    retry_period = retry_burst = None
    if period:
        try:
            fsio.write(d, "cpu.cfs_period_us", str(period), CPU + "period")
        except CgroupError as err:
            if err.errno != errno.EINVAL or not quota:
                raise
            retry_period = period
    if burst is not None:
        try:
            fsio.write(d, "cpu.cfs_burst_us", str(burst), CPU + "burst")
        except CgroupError as err:
            if err.errno == errno.EINVAL and quota:
                retry_burst = burst
            elif not (err.errno == errno.ENOENT and not burst):
                raise
    if quota:
        fsio.write(d, "cpu.cfs_quota_us", str(quota), CPU + "quota")
        if retry_period:
            fsio.write(d, "cpu.cfs_period_us", str(retry_period), CPU + "period")
        if retry_burst is not None:
            fsio.write(d, "cpu.cfs_burst_us", str(retry_burst), CPU + "burst")
    write_idle(d, cpu_)
    rt_period = integer(cpu_, "realtimePeriod", CPU + "realtimePeriod")
    if rt_period:
        fsio.write(d, "cpu.rt_period_us", str(rt_period), CPU + "realtimePeriod")
    rt_runtime = integer(cpu_, "realtimeRuntime", CPU + "realtimeRuntime")
    if rt_runtime:
        fsio.write(d, "cpu.rt_runtime_us", str(rt_runtime), CPU + "realtimeRuntime")


def cpuset(d, cpu_, ctx):
    if not cpu_:
        return
    cpus = string(cpu_, "cpus", CPU + "cpus")
    if cpus:
        fsio.write(d, "cpuset.cpus", cpus, CPU + "cpus")
    mems = string(cpu_, "mems", CPU + "mems")
    if mems:
        fsio.write(d, "cpuset.mems", mems, CPU + "mems")


def cpuset_fill(d, mountpoint):
    """A new v1 cpuset cgroup has empty cpus and mems, and no task can join it until they are
    set: copy them down from the nearest ancestor, at every level below the mountpoint."""
    levels = []
    while d and d != mountpoint and d.startswith(mountpoint + "/"):
        levels.append(d)
        d = os.path.dirname(d)
    for level in reversed(levels):
        parent = os.path.dirname(level)
        for name in ("cpuset.cpus", "cpuset.mems"):
            field = "linux.cgroupsPath (copying the parent's cpuset)"
            if not fsio.read(level, name, field).strip():
                fsio.write(level, name, fsio.read(parent, name, field).strip(), field)


# --- pids -----------------------------------------------------------------------------------

def pids(d, pids_, ctx):
    limit = integer(pids_, "limit", PREFIX + "pids.limit") if pids_ else None
    if limit is None or (ctx.update and limit == 0):
        return
    # 0 and -1 both mean "no limit" in a create (runc >= 1.2; 1.1 skipped 0)
    fsio.write(d, "pids.max", str(limit) if limit > 0 else "max", PREFIX + "pids.limit")


# --- blkio ----------------------------------------------------------------------------------

THROTTLES = (("throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps"),
             ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps"),
             ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops"),
             ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops"))


def device_numbers(item, field):
    major = integer(item, "major", field + ".major")
    minor = integer(item, "minor", field + ".minor")
    if major is None or minor is None:
        raise CgroupError(f"{field}: major and minor are required")
    return f"{major}:{minor}"


def blkio(d, bio, ctx):
    if not bio:
        return
    # CFQ's files are blkio.weight*; with the BFQ scheduler they are blkio.bfq.weight*
    prefix = "blkio." if _exists(d, "blkio.weight") or d is None else "blkio.bfq."
    weight = integer(bio, "weight", BLKIO + "weight")
    if weight:
        fsio.write(d, prefix + "weight", str(weight), BLKIO + "weight")
    leaf = integer(bio, "leafWeight", BLKIO + "leafWeight")
    if leaf:
        fsio.write(d, "blkio.leaf_weight", str(leaf), BLKIO + "leafWeight")
    for item, field in entries(bio, "weightDevice", BLKIO + "weightDevice"):
        dev = device_numbers(item, field)
        w = integer(item, "weight", field + ".weight")
        if w:
            fsio.write(d, prefix + "weight_device", f"{dev} {w}", field + ".weight")
        lw = integer(item, "leafWeight", field + ".leafWeight")
        if lw:
            fsio.write(d, "blkio.leaf_weight_device", f"{dev} {lw}", field + ".leafWeight")
    for key, name, _ in THROTTLES:
        for item, field in entries(bio, key, BLKIO + key):
            rate = integer(item, "rate", field + ".rate") or 0
            fsio.write(d, name, f"{device_numbers(item, field)} {rate}", field)


# --- hugetlb, net_cls, net_prio, rdma -------------------------------------------------------

def hugetlb(d, limits, ctx, suffix=".limit_in_bytes"):
    rsvd = True
    for item, field in items(limits, PREFIX + "hugepageLimits"):
        size = string(item, "pageSize", field + ".pageSize")
        if not size or "/" in size:
            raise CgroupError(f"{field}.pageSize: invalid page size {size!r}")
        value = str(integer(item, "limit", field + ".limit") or 0)
        fsio.write(d, f"hugetlb.{size}{suffix}", value, field + ".limit")
        # newer kernels also account reservations; limit them alike (runc >= 1.2)
        if rsvd:
            try:
                fsio.write(d, f"hugetlb.{size}.rsvd{suffix}", value, field + ".limit")
            except CgroupError as err:
                if err.errno != errno.ENOENT:
                    raise
                rsvd = False


def net_cls(d, network, ctx):
    classid = integer(network, "classID", PREFIX + "network.classID") if network else None
    if classid:
        fsio.write(d, "net_cls.classid", str(classid), PREFIX + "network.classID")


def net_prio(d, network, ctx):
    for item, field in entries(network or {}, "priorities", PREFIX + "network.priorities"):
        name = string(item, "name", field + ".name")
        prio = integer(item, "priority", field + ".priority") or 0
        fsio.write(d, "net_prio.ifpriomap", f"{name} {prio}", field)


def rdma(d, limits, ctx):
    for device, lim in mapping(limits or {}, PREFIX + "rdma").items():
        field = f"{PREFIX}rdma[{device!r}]"
        mapping(lim, field)
        line = device
        handles = integer(lim, "hcaHandles", field + ".hcaHandles")
        if handles is not None:
            line += f" hca_handle={handles}"
        objects = integer(lim, "hcaObjects", field + ".hcaObjects")
        if objects is not None:
            line += f" hca_object={objects}"
        fsio.write(d, "rdma.max", line, field)


# --- devices --------------------------------------------------------------------------------

def devices(d, rules, ctx):
    if ctx.update:  # runc update leaves device rules alone
        if rules:
            ctx.warn("linux.resources.devices: not changed by update on cgroup v1 (the device "
                     "rules of create stay in force)")
        return
    all_rules = devrules.all_rules(rules, ctx.linux_devices)
    devrules.emulate(all_rules)  # refuse what v1 would silently ignore, as on v2
    for name, line, field in devrules.v1_writes(all_rules):
        fsio.write(d, name, line, field)
