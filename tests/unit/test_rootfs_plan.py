"""The order of the rootfs steps, with the recording fake of the syscall layer (fakesys.py).

The temp rootfs is real (walks, mkdirat, the device files and links are made in it); only
the calls that need privileges are recorded instead of made. The steps are run as
shim/init.py runs them: prepare, host_null, pivot, finish, root_propagation. The order
asserted is runc's (docs/ARCHITECTURE.md "The init's steps, in order") and the runtime-spec's.
"""

import errno
import os

import pytest
from fakesys import FakeSyscalls, install

from pyrunc.linux import mountflags as mf
from pyrunc.linux import syscalls as sc
from pyrunc.shim import masks
from pyrunc.shim import rootfs as rfs
from pyrunc.spec.model import build

MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro", "nosuid"]},
    {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]},
    {"destination": "/data", "type": "bind", "source": "vol", "options": ["rbind", "ro", "rprivate"]},
    {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]},
]


def config(**linux):
    linux.setdefault("maskedPaths", ["/proc/kcore", "/proc/acpi", "/proc/missing", "/proc/kcore"])
    linux.setdefault("readonlyPaths", ["/proc/sys"])
    return {"process": {"cwd": "/work"}, "root": {"path": "rootfs", "readonly": True},
            "mounts": [dict(m) for m in MOUNTS], "linux": linux}


@pytest.fixture
def env(tmp_path, monkeypatch):
    root = tmp_path / "rootfs"
    for d in ("proc/acpi", "proc/sys", "sys", "etc"):
        (root / d).mkdir(parents=True)
    (root / "proc/kcore").write_text("")
    (tmp_path / "vol").mkdir()
    (tmp_path / "cg/c1").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)  # the bundle: relative bind sources; pivot changes the cwd
    fake = install(monkeypatch, FakeSyscalls(str(root)))
    # the parent mount of the rootfs, as mountinfo would show it
    monkeypatch.setattr(rfs, "_mount_entries", lambda fd=None: [("/", ["shared:1"], "ext4", "rw")])
    fake.root = str(root)
    fake.vol = str(tmp_path / "vol")
    fake.cgroups = {"": "/c1", "@mount:": str(tmp_path / "cg")}
    return fake


def run_all(fake, cfg, pivot=True):
    """What shim/init.py's stage2 does with the rootfs, in its order (cfg: config.json's dict,
    built into the model as create does)."""
    spec = build(cfg)
    detached = rfs.open_bind_sources(spec)
    late_ro = rfs.prepare(spec, fake.root, fake.cgroups, detached)
    null = masks.host_null()
    if pivot:
        rfs.pivot(fake.root, False)
    # (the console, here in shim/init.py, is not faked: tests/integration/test_console.py)
    rfs.finish(spec, null, fake.root, late_ro)
    rfs.root_propagation(spec.linux.rootfs_propagation)
    return fake.calls


def first(calls, pred):
    return next(i for i, c in enumerate(calls) if pred(c))


def last(calls, pred):
    return max(i for i, c in enumerate(calls) if pred(c))


def is_new_mount(c):
    return c.kind == "mount" and c.source is not None and not c.flags & mf.MS_REMOUNT


def is_device(c):
    return (c.kind == "mknod" or (c.kind == "mount" and c.flags == mf.MS_BIND
                                  and (c.source or "").startswith("host:/dev/")))


def fds():
    return set(os.listdir("/proc/self/fd"))


def test_propagation_and_rootfs_bind_come_first(env):
    calls = run_all(env, config())
    assert [(c.kind, c.target, c.source, c.flags) for c in calls[2:5]] == [
        ("mount", "host:/", None, mf.MS_SLAVE | mf.MS_REC),  # rootfs slave before any bind
        ("mount", "host:/", None, mf.MS_PRIVATE),            # the rootfs's shared parent
        ("mount", "/", "/", mf.MS_BIND | mf.MS_REC),          # then the rootfs onto itself
    ]
    # before those only the bind source was cloned (stage1, on the host), and made a slave
    assert [c.kind for c in calls[:2]] == ["open_tree", "mount_setattr"]
    assert calls[1].data == (0, 0, mf.MS_SLAVE)


def test_config_mounts_in_order(env):
    calls = run_all(env, config())
    targets = [c.target for c in calls if is_new_mount(c) and c.target != "host:/"
               and not is_device(c)]
    assert targets == ["/"] + [m["destination"] for m in MOUNTS]


def test_devices_after_every_mount_and_the_late_read_only_remount_after_the_pivot(env):
    calls = run_all(env, config())
    devices = [i for i, c in enumerate(calls) if is_device(c)]
    assert {calls[i].target for i in devices} >= {"/dev/null", "/dev/zero", "/dev/tty"}
    assert min(devices) > first(calls, lambda c: c.target == "/dev" and is_new_mount(c))
    assert min(devices) > last(calls, lambda c: c.target == "/run" and is_new_mount(c))
    # /run is tmpfs "ro": mounted writable, made read-only as runc's finalizeRootfs does: after
    # the devices, the hooks, the pivot and the console, before the masks and the read-only root
    run = [c for c in calls if c.target == "/run"]
    assert [c.flags for c in run] == [0, mf.MS_REMOUNT | mf.MS_RDONLY]
    remount = first(calls, lambda c: c.target == "/run" and c.flags & mf.MS_REMOUNT)
    assert remount > max(devices)
    assert remount > first(calls, lambda c: c.kind == "pivot_root")
    assert remount < first(calls, lambda c: c.kind == "move_mount")
    assert remount < first(calls, lambda c: c.target == "/" and c.flags & mf.MS_REMOUNT)


def test_bind_is_remounted_read_only_then_propagation(env):
    calls = run_all(env, config())
    data = [(c.source, c.flags) for c in calls if c.target == "/data"]
    assert data == [
        ("host:" + os.path.realpath(env.vol), mf.MS_BIND | mf.MS_REC),
        (None, mf.MS_BIND | mf.MS_REMOUNT | mf.MS_RDONLY
         | (os.statvfs(env.vol).f_flag & (mf.MS_NOSUID | mf.MS_NODEV | mf.MS_NOEXEC))),
        (None, mf.MS_PRIVATE | mf.MS_REC),
    ]


def test_pivot_then_old_root_detached_then_masks_then_read_only_root(env):
    calls = run_all(env, config())
    pivot = first(calls, lambda c: c.kind == "pivot_root")
    assert calls[pivot].target == "/"  # pivot_root(".", ".") from the new root
    assert last(calls, lambda c: is_new_mount(c) and c.target.startswith("/")) < pivot
    # the old root: made a slave (its unmount must not reach the host), then detached
    assert [(c.kind, c.flags) for c in calls[pivot + 1:pivot + 3]] == [
        ("mount", mf.MS_SLAVE | mf.MS_REC), ("umount2", sc.MNT_DETACH)]
    # the host's /dev/null was cloned before the pivot (it is gone after)
    assert first(calls, lambda c: c.kind == "open_tree" and c.target == "host:/dev/null") < pivot
    kcore = first(calls, lambda c: c.kind == "move_mount" and c.target == "/proc/kcore")
    assert kcore > pivot
    assert kcore > first(calls, lambda c: c.target == "/proc" and is_new_mount(c))
    assert calls[kcore].source == "tree:host:/dev/null"
    acpi = first(calls, lambda c: c.kind == "move_mount" and c.target == "/proc/acpi")
    assert calls[acpi].source == "fs:tmpfs"  # a directory gets an empty read-only tmpfs
    moved = [c.target for c in calls if c.kind == "move_mount"]
    assert moved == ["/proc/kcore", "/proc/acpi", "/proc/sys"]  # once each, missing skipped
    ro_root = first(calls, lambda c: c.target == "/" and c.flags & mf.MS_REMOUNT)
    assert calls[ro_root].flags & (mf.MS_BIND | mf.MS_RDONLY) == mf.MS_BIND | mf.MS_RDONLY
    assert ro_root > last(calls, lambda c: c.kind == "move_mount")


@pytest.mark.parametrize("prop, before, after", [
    (None, mf.MS_SLAVE | mf.MS_REC, None),
    ("private", mf.MS_PRIVATE | mf.MS_REC, None),
    ("rshared", mf.MS_SHARED | mf.MS_REC, mf.MS_SHARED),
    ("shared", mf.MS_SHARED | mf.MS_REC, mf.MS_SHARED),
    # unbindable cannot be bound onto itself: slave first, unbindable after the pivot
    ("unbindable", mf.MS_SLAVE | mf.MS_REC, mf.MS_UNBINDABLE),
    ("runbindable", mf.MS_SLAVE | mf.MS_REC, mf.MS_UNBINDABLE | mf.MS_REC),
])
def test_rootfs_propagation(env, prop, before, after):
    calls = run_all(env, config(rootfsPropagation=prop))
    assert calls[2].flags == before and calls[2].target == "host:/"
    # the new root's own propagation is the very last step (after masks and the ro root; the
    # fake does not change "/", so the new root still reads host:/)
    tail = calls[-1]
    if after is None:
        assert tail.target == "/" and tail.flags & mf.MS_REMOUNT
    else:
        assert (tail.kind, tail.target, tail.flags) == ("mount", "host:/", after)
        assert first(calls, lambda c: c.kind == "pivot_root") < len(calls) - 1


def test_no_pivot_moves_and_chroots(env, monkeypatch):
    root = os.path.realpath(env.root)
    entries = [("/", [], "ext4", "rw"), ("/proc", [], "proc", "rw"), ("/proc/sys", [], "proc", "rw"),
               (root, [], "ext4", "rw"), (root + "/proc", [], "proc", "rw")]

    def mountinfo(fd=None):
        gone = {c.target[5:] for c in env.calls if c.kind == "umount2"}
        return [e for e in entries if not any(e[0] == g or e[0].startswith(g + "/") for g in gone)]

    monkeypatch.setattr(rfs, "_mount_entries", mountinfo)
    rfs.pivot(env.root, True)
    # (first the host's /dev/null is cloned: it covers a file mount that cannot go)
    assert [c.kind for c in env.calls[:2]] == ["open_tree", "mount_setattr"]
    steps = [(c.kind, c.target, c.flags) for c in env.calls[2:]]
    # every mount outside the rootfs a slave first, then the outside ones detached, parents first
    assert steps[:3] == [("mount", "host:/", mf.MS_SLAVE), ("mount", "host:/proc", mf.MS_SLAVE),
                         ("mount", "host:/proc/sys", mf.MS_SLAVE)]
    assert steps[3:5] == [("mount", "host:/proc", mf.MS_SLAVE | mf.MS_REC),
                          ("umount2", "host:/proc", sc.MNT_DETACH | sc.UMOUNT_NOFOLLOW)]
    assert ("umount2", "host:/", sc.MNT_DETACH | sc.UMOUNT_NOFOLLOW) not in steps  # an ancestor
    assert [c.kind for c in env.calls[-2:]] == ["mount", "chroot"]
    assert env.calls[-2].flags == mf.MS_MOVE and env.calls[-2].source == "/"


def test_a_failing_mount_names_the_mount_and_leaks_no_fd(env):
    before = fds()
    env.fail("mount", "/dev/pts", errno.EPERM)
    cfg = build(config())
    with pytest.raises(rfs.RootfsError, match=r"^error mounting 'devpts' to rootfs at '/dev/pts' "
                                              r"\(mounts\[2\]\): operation not permitted$"):
        rfs.prepare(cfg, env.root, env.cgroups, rfs.open_bind_sources(cfg))
    assert fds() == before
    assert not any(c.target == "/sys" for c in env.calls)  # nothing after the failure


def test_a_mount_that_landed_elsewhere_is_refused(env):
    """rootfs._mounted: the name looked up again must be on a new mount, else the flags and the
    propagation would go to something else (the mount point swapped meanwhile)."""
    env.inert.add("/sys")
    with pytest.raises(rfs.RootfsError, match=r"at '/sys' \(mounts\[3\]\): the mount point was "
                                              r"moved while mounting"):
        run_all(env, config())


def test_locked_flags_retry_keeps_the_sources(env):
    """In a user namespace the remount of a bind that drops the source's locked flags is EPERM:
    retried with the source's lockable flags (runc >= 1.2)."""
    env.fail("mount", "/data", errno.EPERM, mf.MS_REMOUNT)
    run_all(env, config())
    remounts = [c for c in env.calls if c.target == "/data" and c.flags & mf.MS_REMOUNT]
    assert [c.kind for c in remounts] == ["failed-mount", "mount"]
    source = mf.from_statvfs(os.statvfs(env.vol).f_flag) & mf.LOCKABLE_FLAGS
    assert remounts[1].flags == remounts[0].flags | source


def test_bind_of_dev_means_no_default_devices(env, tmp_path):
    (tmp_path / "hostdev").mkdir()
    cfg = config()
    cfg["mounts"] = [{"destination": "/dev", "type": "bind", "source": "hostdev", "options": ["rbind"]}]
    cfg["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]
    run_all(env, cfg)
    made = [c.target for c in env.calls if c.kind == "mknod"]
    assert made == ["/dev/fuse"]  # linux.devices only; the defaults are the bound /dev's
    assert not os.path.islink(tmp_path / "rootfs/dev/ptmx")


def test_default_devices_links_and_cwd(env, tmp_path):
    run_all(env, config())
    dev = tmp_path / "rootfs/dev"
    assert os.readlink(dev / "ptmx") == "pts/ptmx"
    assert os.readlink(dev / "fd") == "/proc/self/fd"
    assert (tmp_path / "rootfs/work").is_dir()  # process.cwd made


def test_bind_sources_cloned_recursively_only_for_rbind(env, tmp_path):
    cfg = config()
    cfg["mounts"] = [{"destination": "/a", "type": "bind", "source": "vol", "options": ["rbind"]},
                     {"destination": "/b", "type": "none", "source": "vol", "options": ["bind"]},
                     {"destination": "/c", "type": "tmpfs", "source": "tmpfs"}]
    clones = rfs.open_bind_sources(build(cfg))
    try:
        assert sorted(clones) == [0, 1]
        trees = [c.flags for c in env.calls if c.kind == "open_tree"]
        assert [bool(f & sc.AT_RECURSIVE) for f in trees] == [True, False]
    finally:
        rfs.close_all(clones)


def test_no_open_tree_means_no_clones(env, monkeypatch):
    def enosys(*_a):
        raise OSError(errno.ENOSYS, "open_tree")
    monkeypatch.setattr(env, "open_tree", enosys, raising=False)
    assert rfs.open_bind_sources(build(config())) is None


def test_without_the_hosts_null_a_fake_container_null_is_refused(env, tmp_path):
    """CVE-2025-31133: a mask is never the container's /dev/null unless it is the 1:3 device
    (here it is the regular file the fake's refused mknod and bind left)."""
    cfg = build(config())
    late_ro = rfs.prepare(cfg, env.root, env.cgroups, rfs.open_bind_sources(cfg))
    with pytest.raises(rfs.RootfsError, match=r"^can't mask file /proc/kcore \(linux.maskedPaths\[0\]\): "
                                              r"the container's /dev/null is not the null device"):
        rfs.finish(cfg, None, env.root, late_ro)
    assert not any(c.kind == "move_mount" for c in env.calls)


def test_in_a_user_namespace_devices_are_bound_without_mknod(env, monkeypatch):
    from pyrunc.shim import devices
    monkeypatch.setattr(devices, "in_user_namespace", lambda: True)
    run_all(env, config())
    assert not any(c.kind == "mknod" for c in env.calls)
    bound = [c.target for c in env.calls if is_device(c)]
    assert bound == ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"]


def test_procfs_prefers_a_private_instance_then_a_clone(env):
    from pyrunc.shim import procfs
    with procfs.Procfs():
        pass
    assert [c.kind for c in env.calls] == ["fsopen", "fsconfig", "fsmount"]
    env.calls.clear()
    env.fail("fsopen", "proc", errno.EPERM)  # a kernel (or an LSM) refusing a new instance
    with procfs.Procfs() as p:
        fd = p.open(p.self_path("status"), os.O_RDONLY)
        os.close(fd)
    assert [(c.kind, c.target) for c in env.calls] == [("failed-fsopen", "proc"), ("open_tree", "host:/proc")]
