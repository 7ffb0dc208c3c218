"""pause/resume: the v1 freezer controller, or cgroup v2's built-in cgroup.freeze.

Both freeze asynchronously: the write starts it, the state file tells when every task is
frozen. runc's retry pattern is kept for v1, where a task in a vfork or in the middle of a
fork can hold the cgroup in FREEZING forever unless it is thawed and frozen again.
"""

import time

from . import fsio
from .errors import CgroupError

PAUSED, RUNNING = "paused", "running"


def freeze_v1(d):
    try:
        for i in range(1000):
            if i % 50 == 49:  # stuck: let the straggler run a little, then try again
                fsio.write(d, "freezer.state", "THAWED", "pause")
                time.sleep(0.01)
            fsio.write(d, "freezer.state", "FROZEN", "pause")
            if i % 25 == 24:
                time.sleep(0.001)
            state = fsio.read(d, "freezer.state", "pause").strip()
            if state == "FROZEN":
                return
            if state != "FREEZING":
                raise CgroupError(f"pause: unexpected state {state} in {d}/freezer.state while freezing")
        raise CgroupError(f"pause: unable to freeze {d} (still FREEZING after 1000 tries)")
    except CgroupError:
        try:
            fsio.write(d, "freezer.state", "THAWED", "pause")
        except CgroupError:
            pass
        raise


def thaw_v1(d):
    fsio.write(d, "freezer.state", "THAWED", "resume")


def state_v1(d, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        state = fsio.read_optional(d, "freezer.state")
        if state is None:
            return RUNNING
        state = state.strip()
        if state == "THAWED":
            return RUNNING
        if state == "FROZEN":
            # FROZEN because an ancestor is frozen is not "paused" (runc checks the same)
            self_freezing = (fsio.read_optional(d, "freezer.self_freezing") or "1").strip()
            return RUNNING if self_freezing == "0" else PAUSED
        if state != "FREEZING" or time.monotonic() > deadline:
            raise CgroupError(f"unknown freezer.state {state!r} in {d}")
        time.sleep(0.001)


def freeze_v2(d):
    try:
        fsio.write(d, "cgroup.freeze", "1", "pause")
    except CgroupError as err:
        raise CgroupError(f"pause: freezer not supported: {err}", err.errno) from None
    try:
        _wait_frozen(d)
    except CgroupError:
        try:
            fsio.write(d, "cgroup.freeze", "0", "pause")
        except CgroupError:
            pass
        raise


def thaw_v2(d):
    if fsio.read_optional(d, "cgroup.freeze") is None:
        return  # nothing can be frozen
    fsio.write(d, "cgroup.freeze", "0", "resume")


def state_v2(d):
    wanted = fsio.read_optional(d, "cgroup.freeze")
    if wanted is None or wanted.strip() != "1":
        return RUNNING
    _wait_frozen(d)
    return PAUSED


def _wait_frozen(d, tries=1000):
    """cgroup.events says "frozen 1" once every task stopped; runc waits up to 10 s."""
    for i in range(tries):
        events = fsio.read(d, "cgroup.events", "pause")
        if "frozen 1" in events.splitlines():
            return
        time.sleep(0.001 if i < 20 else 0.01)
    raise CgroupError(f"pause: timeout waiting for {d} to freeze (cgroup.events never said frozen 1)")
