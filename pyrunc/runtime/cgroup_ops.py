"""The verbs that act on a container's cgroup: update, pause, resume, ps, events."""

import os
import time

from ..errors import InvalidStateError, NotRunning
from .status import CREATED, PAUSED, RUNNING, STOPPED, status_of


def manager(record):
    """The container's cgroup Manager, or None for a container created without one."""
    data = record.get("cgroup")
    if not data:
        return None
    from ..cgroups import manager_from_state
    return manager_from_state(data)


def _require_manager(record):
    m = manager(record)
    if m is None:
        raise InvalidStateError("container has no cgroup")
    return m


def update(store, container_id, resources):
    """runc update: zeros and absent fields leave a limit alone; the record keeps the result."""
    with store.lock(container_id):
        record = store.load(container_id)
        if status_of(store, record) not in (CREATED, RUNNING, PAUSED):
            raise NotRunning()
        from ..spec.model import build
        devices = build(record["config"]).linux.devices
        linux = record["config"].setdefault("linux", {})
        # the container's linux.devices replace default rules for the same paths, as in create
        _require_manager(record).set(resources, update=True, linux_devices=devices)
        linux["resources"] = _merge(linux.get("resources") or {}, resources)
        store.save(container_id, record)


def _merge(old, new):
    merged = dict(old)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        elif value not in (0, None, "", [], {}):
            merged[key] = value
    return merged


def pause(store, container_id):
    with store.lock(container_id):
        record = store.load(container_id)
        if status_of(store, record) not in (RUNNING, CREATED):
            raise NotRunning()
        _require_manager(record).freeze()


def resume(store, container_id):
    with store.lock(container_id):
        record = store.load(container_id)
        if status_of(store, record) != PAUSED:
            raise InvalidStateError("container not paused")
        _require_manager(record).thaw()


def pids(store, container_id):
    return container_pids(store.load(container_id))


def container_pids(record):
    """Host pids of the container: everything in its cgroup; without one (an old record, or
    a rootless container whose cgroups were skipped), the processes sharing the init's pid
    namespace."""
    if record.get("cgroup"):
        m = manager(record)
        if m.paths():
            return m.pids()
    try:
        target = os.readlink(f"/proc/{record['pid']}/ns/pid")
    except OSError:
        return []
    own = os.readlink("/proc/self/ns/pid")
    if target == own:
        return [record["pid"]]
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink(f"/proc/{name}/ns/pid") == target:
                    pids.append(int(name))
            except OSError:
                continue
    return sorted(pids)


def stats_event(container_id, m):
    return {"type": "stats", "id": container_id, "data": m.stats()}


def events(store, container_id, *, stats_only, interval, emit):
    """runc events: one stats event (--stats), or a stream of stats every `interval` seconds
    and an "oom" event whenever the kernel OOM-kills in the container's cgroup."""
    record = store.load(container_id)
    if status_of(store, record) == STOPPED:
        # as runc: a stopped container's cgroup may still exist, but it has no stats to show
        raise InvalidStateError(f"container with id {container_id} is not running")
    m = _require_manager(record)
    if stats_only:
        emit(stats_event(container_id, m))
        return
    oom_fd = m.oom_event_fd()
    oom_seen = m.oom_kill_count()
    next_stats = time.monotonic()
    try:
        while True:
            if status_of(store, record) not in (CREATED, RUNNING, PAUSED):
                return
            now = time.monotonic()
            if now >= next_stats:
                emit(stats_event(container_id, m))
                next_stats = now + interval
            wait = max(0.0, min(next_stats - now, 0.5))
            if oom_fd is not None:
                import select
                ready, _, _ = select.select([oom_fd], [], [], wait)
                if ready:
                    os.read(oom_fd, 8)
            else:
                time.sleep(wait)
            count = m.oom_kill_count()
            if count > oom_seen:
                oom_seen = count
                emit({"type": "oom", "id": container_id})
    finally:
        if oom_fd is not None:
            os.close(oom_fd)
