"""runc's conversions between the spec's (cgroup v1 flavoured) values and cgroup v2 files.

The formulas are those of runc 1.1 (libcontainer/cgroups/utils.go), so that a container
gets the same cgroup v2 values from pyrunc as from the runc engines were tested with.
"""

from .errors import CgroupError


def cpu_shares_to_weight(shares):
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000]; 0 means "not set".

    runc 1.1: 1 + ((shares - 2) * 9999) / 262142, so 1024 -> 39 and 262144 -> 10000.
    (runc >= 1.3 uses a logarithmic curve instead, mapping 1024 to 100.)
    Shares below 2 would underflow runc's unsigned arithmetic; they map to weight 1.
    """
    if not shares:
        return 0
    if shares <= 2:
        return 1
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight):
    """blkio.weight [10, 1000] -> io.weight [1, 10000]; 0 means "not set"."""
    if not weight:
        return 0
    if weight <= 10:
        return 1
    return 1 + ((weight - 10) * 9999) // 990


def memory_swap_to_v2(swap, memory):
    """The spec's memory.swap is memory+swap (v1's memsw); v2's memory.swap.max is swap only.

    Returns the memory.swap.max value: -1 = "max", 0 = "leave alone" unless swap > 0 (then
    swap == memory and 0 disables swap). Errors as runc's ConvertMemorySwapToCgroupV2Value.
    """
    swap = swap or 0
    memory = memory or 0
    if memory == -1 and swap == 0:
        return -1  # unlimited memory: unlimited swap too
    if swap in (-1, 0):
        return swap
    if memory in (0, -1):
        raise CgroupError("linux.resources.memory.swap: unable to set swap limit without memory limit")
    if memory < 0:
        raise CgroupError(f"linux.resources.memory.limit: invalid memory value: {memory}")
    if swap < memory:
        raise CgroupError("linux.resources.memory.swap: memory+swap limit should be >= memory limit")
    return swap - memory


def v2_number(value):
    """runc's numToStr: 0 -> "" (leave alone), -1 -> "max", n -> "n"."""
    if not value:
        return ""
    if value == -1:
        return "max"
    return str(value)


def cpu_max(quota, period):
    """cpu.cfs_quota_us/cfs_period_us -> cpu.max "QUOTA PERIOD"; quota <= 0 is "max"."""
    return f"{quota if quota and quota > 0 else 'max'} {period or 100000}"


def hugepage_size_name(dirname):
    """/sys/kernel/mm/hugepages/hugepages-2048kB -> "2MB" (the spec's and the files' unit)."""
    if not dirname.startswith("hugepages-") or not dirname.endswith("kB"):
        return None
    try:
        kb = int(dirname[len("hugepages-"):-2])
    except ValueError:
        return None
    if kb >= 1 << 20:
        return f"{kb >> 20}GB"
    if kb >= 1 << 10:
        return f"{kb >> 10}MB"
    return f"{kb}KB"
