"""process.ioPriority, process.scheduler and linux.personality: how the process is run."""

from ..errors import SchedulingError
from ..linux import syscalls as sc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..spec.model import Personality, Process

IO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
            "SCHED_ISO": 4, "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
               "SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
               "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
               "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
PERSONALITIES = {"LINUX": 0x0000, "LINUX32": 0x0008}


def apply(process: "Process"):
    io = process.io_priority
    if io:
        try:
            sc.ioprio_set(IO_CLASSES[io.io_class], io.priority)
        except OSError as e:
            raise SchedulingError(f"setting process.ioPriority failed: {(e.strerror or str(e)).lower()}",
                                  e.errno) from None
    sched = process.scheduler
    if sched:
        flags = 0
        for name in sched.flags:
            flags |= SCHED_FLAGS[name]
        try:
            sc.sched_setattr(POLICIES[sched.policy], flags, sched.nice, sched.priority,
                             sched.runtime, sched.deadline, sched.period)
        except OSError as e:
            raise SchedulingError(f"setting process.scheduler failed: {(e.strerror or str(e)).lower()}",
                                  e.errno) from None


def set_personality(personality: "Personality | None"):
    if personality:
        try:
            sc.personality(PERSONALITIES[personality.domain])
        except OSError as e:
            raise SchedulingError(f"setting linux.personality failed: {(e.strerror or str(e)).lower()}",
                                  e.errno) from None
