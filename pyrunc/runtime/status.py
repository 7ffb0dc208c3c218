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
    """runc's freezer GetState in a file read or two (no pyrunc.cgroups import: status is on
    every verb's path), with the Manager's choice of freezer (v1 freezer, else cgroup2).

    Paused means frozen by a pause of this cgroup: on v1 a cgroup is also FROZEN while an
    ancestor is, and runc then reports it running (freezer.self_freezing 0); on cgroup v2
    cgroup.freeze is the cgroup's own setting (cgroup.events "frozen 1" includes ancestors')."""
    if not cgroup:
        return False
    paths = cgroup.get("paths") or {}
    try:
        if cgroup.get("mode") != "unified" and "freezer" in paths:
            with open(os.path.join(paths["freezer"], "freezer.state")) as f:
                if f.read().strip() == "THAWED":
                    return False
            try:
                with open(os.path.join(paths["freezer"], "freezer.self_freezing")) as f:
                    return f.read().strip() != "0"
            except FileNotFoundError:
                return True  # a kernel without self_freezing: FROZEN is all there is
        if "" in paths:
            with open(os.path.join(paths[""], "cgroup.freeze")) as f:
                return f.read().strip() == "1"
    except OSError:
        pass
    return False


def describe(store, record):
    status = status_of(store, record)
    return ContainerState(
        id=record["id"], pid=record["pid"] if status != STOPPED else 0, status=status,
        bundle=record["bundle"], rootfs=record["rootfs"], created=record["created"],
        owner=record.get("owner", ""), annotations=record.get("annotations") or {})
