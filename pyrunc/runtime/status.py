"""A container's status, derived from what the kernel says about its init, never stored."""

import os

from ..state import procfs
from ..state.store import EXEC_FIFO
from .model import ContainerState

CREATED, RUNNING, STOPPED, PAUSED = "created", "running", "stopped", "paused"


def status_of(store, record):
    pid = record.get("pid") or 0
    if not pid or not procfs.is_alive(pid, record["start_time"]):
        return STOPPED
    if _frozen(record.get("cgroup")):
        return PAUSED
    if os.path.exists(store.path(record["id"], EXEC_FIFO)):
        return CREATED
    return RUNNING


def _frozen(cgroup):
    """Paused: the container's freezer holds it (cgroups/freezer.py, the Manager's reader)."""
    if not cgroup:
        return False
    from ..cgroups import freezestate
    return freezestate.frozen(*freezestate.which(cgroup.get("mode"), cgroup.get("paths") or {}))


def describe(store, record):
    status = status_of(store, record)
    return ContainerState(
        id=record["id"], pid=record["pid"] if status != STOPPED else 0, status=status,
        bundle=record["bundle"], rootfs=record["rootfs"], created=record["created"],
        owner=record.get("owner", ""), annotations=record.get("annotations") or {})
