"""The "data" of `runc events --stats`: runc's types.Stats, built from the cgroup files.

Keys and omissions follow runc 1.1's JSON (types/events.go): fields tagged omitempty are
left out when zero, the others are always present, so engines that parse runc's output
read ours the same way. Imported only by Manager.stats(), off the create path.
"""

import os

from . import convert, fsio
from .errors import CgroupError

_CLOCK_TICKS = 100          # runc's fixed USER_HZ for cpuacct.stat
_NS_PER_TICK = 1000000000 // _CLOCK_TICKS


def _put(out, key, value):
    """omitempty: zero, empty list and empty map are left out."""
    if value:
        out[key] = value


def _memory_entry(usage=0, max_=0, failcnt=0, limit=0):
    entry = {"limit": limit}
    _put(entry, "usage", usage)
    _put(entry, "max", max_)
    entry["failcnt"] = failcnt
    return entry


def _uint(d, name, default=0):
    text = fsio.read_optional(d, name) if d else None
    if text is None:
        return default
    try:
        return fsio.parse_uint(text)
    except ValueError:
        return default


def _kv(d, name):
    text = fsio.read_optional(d, name) if d else None
    return fsio.key_values(text) if text else {}


def new():
    return {
        "cpu": {"usage": {"kernel": 0, "user": 0}, "throttling": {}},
        "cpuset": {"cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0, "memory_migrate": 0,
                   "memory_spread_page": 0, "memory_spread_slab": 0, "memory_pressure": 0,
                   "sched_load_balance": 0, "sched_relax_domain_level": 0},
        "memory": {"usage": _memory_entry(), "swap": _memory_entry(), "kernel": _memory_entry(),
                   "kernelTCP": _memory_entry()},
        "pids": {},
        "blkio": {},
        "hugetlb": {},
        "intel_rdt": {},
        "network_interfaces": None,
    }


def _throttling(cpu_stat, v2):
    out: dict[str, object] = {}
    _put(out, "periods", cpu_stat.get("nr_periods", 0))
    _put(out, "throttledPeriods", cpu_stat.get("nr_throttled", 0))
    # v1's throttled_time is in ns, v2's throttled_usec in us; runc reports ns
    _put(out, "throttledTime", cpu_stat.get("throttled_usec", 0) * 1000 if v2
         else cpu_stat.get("throttled_time", 0))
    return out


# --- cgroup v1 ------------------------------------------------------------------------------

def cpu_v1(stats, cpu_dir, cpuacct_dir):
    if cpu_dir:
        stats["cpu"]["throttling"] = _throttling(_kv(cpu_dir, "cpu.stat"), False)
    if not cpuacct_dir or not os.path.isdir(cpuacct_dir):
        return
    usage = stats["cpu"]["usage"]
    _put(usage, "total", _uint(cpuacct_dir, "cpuacct.usage"))
    percpu = fsio.read_optional(cpuacct_dir, "cpuacct.usage_percpu") or ""
    _put(usage, "percpu", [int(v) for v in percpu.split()])
    kernel, user = [], []
    # cpuacct.usage_all: header "cpu user system", then one line per cpu
    for line in (fsio.read_optional(cpuacct_dir, "cpuacct.usage_all") or "").splitlines()[1:]:
        cols = line.split()
        if len(cols) == 3:
            user.append(int(cols[1]))
            kernel.append(int(cols[2]))
    _put(usage, "percpu_kernel", kernel)
    _put(usage, "percpu_user", user)
    usage.pop("kernel"), usage.pop("user")  # keep runc's key order: kernel, user last
    ticks = _kv(cpuacct_dir, "cpuacct.stat")
    usage["kernel"] = ticks.get("system", 0) * _NS_PER_TICK
    usage["user"] = ticks.get("user", 0) * _NS_PER_TICK


def _cpu_list(text):
    out: list[int] = []
    for part in (text or "").strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def cpuset_v1(stats, d):
    if not d or not os.path.isdir(d):
        return
    cs = stats["cpuset"]
    out: dict[str, object] = {}
    _put(out, "cpus", _cpu_list(fsio.read_optional(d, "cpuset.cpus")))
    out["cpu_exclusive"] = _uint(d, "cpuset.cpu_exclusive")
    _put(out, "mems", _cpu_list(fsio.read_optional(d, "cpuset.mems")))
    for key in ("mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
                "memory_spread_slab", "memory_pressure", "sched_load_balance"):
        out[key] = _uint(d, "cpuset." + key)
    level = (fsio.read_optional(d, "cpuset.sched_relax_domain_level") or "0").strip()
    out["sched_relax_domain_level"] = int(level or 0)
    cs.clear()
    cs.update(out)


def _memory_data_v1(d, prefix):
    if fsio.read_optional(d, prefix + ".usage_in_bytes") is None:
        return _memory_entry()
    return _memory_entry(_uint(d, prefix + ".usage_in_bytes"), _uint(d, prefix + ".max_usage_in_bytes"),
                         _uint(d, prefix + ".failcnt"), _uint(d, prefix + ".limit_in_bytes"))


def memory_v1(stats, d):
    raw = _kv(d, "memory.stat")
    if not raw and not (d and os.path.isdir(d)):
        return
    mem = stats["memory"]
    mem.clear()
    _put(mem, "cache", raw.get("cache", 0))
    mem["usage"] = _memory_data_v1(d, "memory")
    mem["swap"] = _memory_data_v1(d, "memory.memsw")
    mem["kernel"] = _memory_data_v1(d, "memory.kmem")
    mem["kernelTCP"] = _memory_data_v1(d, "memory.kmem.tcp")
    _put(mem, "raw", dict(sorted(raw.items())))  # Go writes map keys sorted


def pids_common(stats, d):
    if not d or not os.path.isdir(d):
        return
    if fsio.read_optional(d, "pids.current") is None:
        # no pids controller (v2 without it): count the processes, no limit known
        procs = fsio.read_optional(d, "cgroup.procs") or ""
        stats["pids"] = {}
        _put(stats["pids"], "current", procs.count("\n"))
        return
    limit = _uint(d, "pids.max")
    out: dict[str, object] = {}
    _put(out, "current", _uint(d, "pids.current"))
    _put(out, "limit", 0 if limit == fsio.MAX_UINT64 else limit)
    stats["pids"] = out


# runc reads the first group whose first file has data: BFQ debug, BFQ, CFQ, throttle
_BLKIO_GROUPS = (
    (("blkio.bfq.sectors_recursive", "sectorsRecursive"),
     ("blkio.bfq.io_service_time_recursive", "ioServiceTimeRecursive"),
     ("blkio.bfq.io_wait_time_recursive", "ioWaitTimeRecursive"),
     ("blkio.bfq.io_merged_recursive", "ioMergedRecursive"),
     ("blkio.bfq.io_queued_recursive", "ioQueueRecursive"),
     ("blkio.bfq.time_recursive", "ioTimeRecursive"),
     ("blkio.bfq.io_serviced_recursive", "ioServicedRecursive"),
     ("blkio.bfq.io_service_bytes_recursive", "ioServiceBytesRecursive")),
    (("blkio.bfq.io_serviced_recursive", "ioServicedRecursive"),
     ("blkio.bfq.io_service_bytes_recursive", "ioServiceBytesRecursive")),
    (("blkio.sectors_recursive", "sectorsRecursive"),
     ("blkio.io_service_time_recursive", "ioServiceTimeRecursive"),
     ("blkio.io_wait_time_recursive", "ioWaitTimeRecursive"),
     ("blkio.io_merged_recursive", "ioMergedRecursive"),
     ("blkio.io_queued_recursive", "ioQueueRecursive"),
     ("blkio.time_recursive", "ioTimeRecursive"),
     ("blkio.io_serviced_recursive", "ioServicedRecursive"),
     ("blkio.io_service_bytes_recursive", "ioServiceBytesRecursive")),
    (("blkio.throttle.io_serviced_recursive", "ioServicedRecursive"),
     ("blkio.throttle.io_service_bytes_recursive", "ioServiceBytesRecursive")),
    (("blkio.throttle.io_serviced", "ioServicedRecursive"),
     ("blkio.throttle.io_service_bytes", "ioServiceBytesRecursive")),
)


def _blkio_entry(major, minor, op, value):
    entry: dict[str, object] = {}
    _put(entry, "major", major)
    _put(entry, "minor", minor)
    _put(entry, "op", op)
    _put(entry, "value", value)
    return entry


def _blkio_file(d, name):
    entries = []
    for line in (fsio.read_optional(d, name) or "").splitlines():
        fields = line.replace(":", " ").split()
        if len(fields) < 3:
            continue  # "Total N"
        op = fields[2] if len(fields) == 4 else ""
        entries.append(_blkio_entry(int(fields[0]), int(fields[1]), op, int(fields[-1])))
    return entries


def blkio_v1(stats, d):
    if not d:
        return
    for group in _BLKIO_GROUPS:
        first = _blkio_file(d, group[0][0])
        if not first:
            continue
        out = {group[0][1]: first}
        for name, key in group[1:]:
            _put(out, key, _blkio_file(d, name))
        stats["blkio"] = out
        return


def hugepage_sizes():
    try:
        names = os.listdir("/sys/kernel/mm/hugepages")
    except OSError:
        return []
    return sorted(filter(None, map(convert.hugepage_size_name, names)))


def hugetlb_v1(stats, d):
    if not d or not os.path.isdir(d):
        return
    for size in hugepage_sizes():
        prefix = f"hugetlb.{size}."
        entry: dict[str, object] = {}
        _put(entry, "usage", _uint(d, prefix + "usage_in_bytes"))
        _put(entry, "max", _uint(d, prefix + "max_usage_in_bytes"))
        entry["failcnt"] = _uint(d, prefix + "failcnt")
        stats["hugetlb"][size] = entry


# --- cgroup v2 ------------------------------------------------------------------------------

def cpu_v2(stats, d):
    st = _kv(d, "cpu.stat")
    if not st:
        return
    usage = stats["cpu"]["usage"]
    usage.pop("kernel"), usage.pop("user")
    _put(usage, "total", st.get("usage_usec", 0) * 1000)
    usage["kernel"] = st.get("system_usec", 0) * 1000
    usage["user"] = st.get("user_usec", 0) * 1000
    stats["cpu"]["throttling"] = _throttling(st, True)


def memory_v2(stats, d):
    raw = _kv(d, "memory.stat")
    if fsio.read_optional(d, "memory.current") is None:
        return
    mem = stats["memory"]
    usage = _uint(d, "memory.current")
    limit = _uint(d, "memory.max")
    swap_usage = swap_limit = 0
    if fsio.read_optional(d, "memory.swap.current") is not None:  # swap accounting is on
        swap_usage = _uint(d, "memory.swap.current")
        swap_limit = _uint(d, "memory.swap.max")
    # runc reports v2 swap as memory+swap, like v1's memsw (wrapping as Go's uint64 does)
    if swap_limit != fsio.MAX_UINT64:
        swap_limit = (swap_limit + limit) & fsio.MAX_UINT64
    mem.clear()
    _put(mem, "cache", raw.get("file", 0))
    mem["usage"] = _memory_entry(usage=usage, limit=limit)
    mem["swap"] = _memory_entry(usage=swap_usage + usage, limit=swap_limit)
    mem["kernel"] = _memory_entry()
    mem["kernelTCP"] = _memory_entry()
    _put(mem, "raw", dict(sorted(raw.items())))  # Go writes map keys sorted


def io_v2(stats, d):
    text = fsio.read_optional(d, "io.stat")
    if not text:
        return
    by_bytes: list[dict] = []
    by_ios: list[dict] = []
    ops = {"rbytes": (by_bytes, "Read"), "wbytes": (by_bytes, "Write"),
           "rios": (by_ios, "Read"), "wios": (by_ios, "Write")}
    for line in text.splitlines():
        parts = line.split()
        major, _, minor = parts[0].partition(":") if parts else ("", "", "")
        if not (major.isdigit() and minor.isdigit()):
            continue
        for item in parts[1:]:
            key, _, value = item.partition("=")
            if key in ops and value.isdigit():
                table, op = ops[key]
                table.append(_blkio_entry(int(major), int(minor), op, int(value)))
    out: dict[str, object] = {}
    _put(out, "ioServiceBytesRecursive", by_bytes)
    _put(out, "ioServicedRecursive", by_ios)
    stats["blkio"] = out


def hugetlb_v2(stats, d):
    if not d or not os.path.isdir(d):
        return
    for size in hugepage_sizes():
        if fsio.read_optional(d, f"hugetlb.{size}.current") is None:
            continue  # hugetlb not enabled in this cgroup
        entry: dict[str, object] = {}
        _put(entry, "usage", _uint(d, f"hugetlb.{size}.current"))
        entry["failcnt"] = _kv(d, f"hugetlb.{size}.events").get("max", 0)
        stats["hugetlb"][size] = entry


def oom_kill_count(d, v2):
    """memory.events (v2) or memory.oom_control (v1, kernel >= 4.13) "oom_kill"."""
    if d is None:
        return 0
    try:
        return _kv(d, "memory.events" if v2 else "memory.oom_control").get("oom_kill", 0)
    except CgroupError:
        return 0
