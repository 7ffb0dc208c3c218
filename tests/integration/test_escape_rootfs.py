"""Issue 9, rootfs classes: an image or a shared volume must not make pyrunc create or mount
outside the container's rootfs while it builds it (before pivot_root).

* a host thread swapping a directory and a symlink to a host directory (renameat2
  RENAME_EXCHANGE) in a volume, while mount destinations, a device node and process.cwd go
  through it (runc CVE-2021-30465; CVE-2024-45310: files/dirs created on the host);
* symlinks in the image to absolute host paths and "../../.." (deterministic);
* /proc or /sys a symlink: refused like runc ("must be mounted on ordinary directory";
  CVE-2019-16884, CVE-2019-19921, CVE-2023-27561, CVE-2023-28642);
* /dev a symlink or a volume, device paths through symlinks: nodes only inside the rootfs.

Every test looks at the host afterwards: the canary directories stay empty, the host's mounts
are unchanged (no_leaks), nothing is left under --root.
"""

import ctypes
import os
import stat
import threading
import time

import pytest
from bundle import make_rootfs
from helpers import error_of, live_inits, mountpoints, sh_ok

_libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_EXCHANGE = 2


def private_rootfs(path):
    """A writable busybox rootfs of the test's own (pre-pivot creates land in it)."""
    os.makedirs(path, exist_ok=True)
    return make_rootfs(str(path))


def canary(tmp_path, name="canary"):
    """A host directory the attacker points symlinks at; it must stay empty."""
    d = tmp_path / name
    d.mkdir()
    return d


def in_root(rootfs, host_path):
    """Where a symlink to the absolute host_path lands when resolved with rootfs as "/"."""
    return os.path.join(rootfs, str(host_path).lstrip("/"))


def tmpfs(destination):
    return {"destination": destination, "type": "tmpfs", "source": "tmpfs", "options": []}


def bind(source, destination, *options):
    return {"destination": destination, "type": "bind", "source": str(source),
            "options": list(options) or ["bind"]}


class Exchanger:
    """A host thread exchanging two names with renameat2(RENAME_EXCHANGE) as fast as it can."""

    def __init__(self, a, b):
        self.a, self.b = os.fsencode(str(a)), os.fsencode(str(b))
        self.stop = threading.Event()
        self.swaps = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        renameat2 = _libc.renameat2
        while not self.stop.is_set():
            if renameat2(AT_FDCWD, self.a, AT_FDCWD, self.b, RENAME_EXCHANGE) != 0:
                raise OSError(ctypes.get_errno(), "renameat2")
            self.swaps += 1
            if self.swaps % 64 == 0:
                time.sleep(0.0002)  # leave the (shared) CPUs to the runtime under test

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        self.thread.join()


@pytest.fixture
def no_leaks(pyrunc, tmp_path):
    """No host mount appeared under this test's directory (the canaries, the volume, the
    rootfs) and no init survived. (conftest's no_leaks compares all host mounts, which other
    test runs on this machine change concurrently.)"""
    yield
    leaked = [p for p in mountpoints() if p.startswith(str(tmp_path) + "/")]
    assert not leaked, f"host mounts left: {leaked}"
    assert not live_inits(pyrunc.root)


# ---------------------------------------------------------------- the exchange race

RACE_CREATES = 60


def test_exchange_race_never_creates_or_mounts_on_the_host(pyrunc, make_bundle, cid, tmp_path, no_leaks):
    """/dev/vol/a flips between a directory and a symlink to a host directory while pyrunc creates
    mount points (tmpfs, directory bind, file bind), a device node and process.cwd under it."""
    rootfs = private_rootfs(tmp_path / "rootfs")
    host = canary(tmp_path)
    vol = tmp_path / "vol"
    (vol / "a").mkdir(parents=True)
    os.symlink(str(host), vol / "b")  # the attacker's link, exchanged with the directory
    src = tmp_path / "src"
    src.mkdir()
    (src / "file").write_text("payload\n")
    b = make_bundle("cat", "/proc/self/mountinfo")
    b.config["root"]["path"] = rootfs
    # the volume under /dev (after the /dev tmpfs), so linux.devices can go through it too
    base_mounts = b.config["mounts"] + [bind(vol, "/dev/vol", "rbind")]
    outcomes = {"ok": 0, "refused": 0}
    reasons = set()
    started = time.monotonic()
    with Exchanger(vol / "a", vol / "b") as swapper:
        for i in range(RACE_CREATES):
            d = f"/dev/vol/a/n{i}"
            b.config["mounts"] = base_mounts + [
                tmpfs(f"{d}/t"), bind(src, f"{d}/d"), bind(src / "file", f"{d}/f")]
            b.linux["devices"] = [{"path": f"{d}/null", "type": "c", "major": 1, "minor": 3}]
            b.process["cwd"] = f"{d}/cwd"
            b.write()
            # `run` = create + start + delete in one call; the process prints its mount table
            r = pyrunc("run", "--bundle", b.path, f"{cid}-{i}")
            assert os.listdir(host) == [], f"create {i} wrote on the host: {os.listdir(host)} ({r.err})"
            if r.rc == 0:
                outcomes["ok"] += 1
                points = [line.split()[4] for line in r.out.splitlines()]
                # every mount landed in the container: at /dev/vol/a/nI/... (or b/, the same
                # directory renamed since) or, through the link resolved with the rootfs as
                # "/", at <host path>/nI/... inside the rootfs
                mine = [p for p in points if f"/n{i}/" in p]
                assert len(mine) == 3, points
                for p in mine:
                    assert p.startswith((f"{d}/", f"/dev/vol/b/n{i}/", f"{host}/n{i}/")), p
            else:
                outcomes["refused"] += 1
                msg = error_of(r)
                reasons.add(msg.split("): ")[-1].replace(str(i), "I"))
                # the error names what failed: a mount, process.cwd (made, or entered after the
                # pivot, through the link as it was then) or the device
                assert any(w in msg for w in ("(mounts[", "process.cwd", "chdir to cwd", f"/n{i}/null")), msg
                assert "internal error" not in msg and "Traceback" not in r.err, msg
                assert pyrunc.ids() == [], "a refused create left state behind"
            assert pyrunc.ids() == []
    elapsed = time.monotonic() - started
    assert swapper.swaps > RACE_CREATES, "the exchanger hardly ran: the test proves nothing"
    assert os.listdir(host) == []
    assert outcomes["ok"] > 0, outcomes  # not refused wholesale
    print(f"exchange race: {outcomes}, {swapper.swaps} swaps, {elapsed:.1f}s; refusals: {sorted(reasons)}")


# ---------------------------------------------------------------- deterministic symlinks

def test_symlinks_to_host_paths_resolve_inside_the_rootfs(pyrunc, make_bundle, cid, tmp_path, no_leaks):
    """Absolute and "../.." symlinks in the image: mounts, a device node and cwd through them."""
    rootfs = private_rootfs(tmp_path / "rootfs")
    host_abs, host_climb = canary(tmp_path, "abs"), canary(tmp_path, "climb")
    os.symlink(str(host_abs), os.path.join(rootfs, "abs"))
    os.symlink("../" * 12 + str(host_climb).lstrip("/"), os.path.join(rootfs, "climb"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "file").write_text("payload\n")
    os.symlink("../../.." + str(host_climb), os.path.join(rootfs, "dev", "up"))
    b = make_bundle()
    b.config["root"]["path"] = rootfs
    # the image's own /dev (no tmpfs over it), so a device path can go through its symlink
    b.config["mounts"] = [m for m in b.config["mounts"] if not m["destination"].startswith("/dev")]
    b.config["mounts"] += [tmpfs("/abs/t"), bind(src, "/climb/d"), bind(src / "file", "/abs/f")]
    b.linux["devices"] = [{"path": "/dev/up/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666}]
    b.process["cwd"] = "/abs/work"
    out = sh_ok(pyrunc, b, cid, "pwd -P; stat -f -c %T /abs/t; cat /climb/d/file /abs/f; "
                                "stat -c %t:%T /climb/null")
    assert out.splitlines() == [f"{host_abs}/work", "tmpfs", "payload", "payload", "1:3"]
    assert os.listdir(host_abs) == [] and os.listdir(host_climb) == []
    assert sorted(os.listdir(in_root(rootfs, host_abs))) == ["f", "t", "work"]
    assert sorted(os.listdir(in_root(rootfs, host_climb))) == ["d", "null"]
    assert stat.S_ISCHR(os.stat(os.path.join(in_root(rootfs, host_climb), "null")).st_mode)


# ---------------------------------------------------------------- /proc and /sys

@pytest.mark.parametrize("fs, destination", [("proc", "/proc"), ("sysfs", "/sys")])
@pytest.mark.parametrize("link", ["host", "inside"])
def test_proc_and_sys_must_be_ordinary_directories(pyrunc, make_bundle, cid, tmp_path, no_leaks,
                                                   fs, destination, link):
    """/proc or /sys a symlink (to a host path, or to a directory of the image): refused with
    runc's wording, nothing mounted or created anywhere, nothing left behind."""
    rootfs = private_rootfs(tmp_path / "rootfs")
    host = canary(tmp_path)
    os.rmdir(os.path.join(rootfs, destination.lstrip("/")))
    target = str(host) if link == "host" else "/home/user"
    os.symlink(target, os.path.join(rootfs, destination.lstrip("/")))
    b = make_bundle()
    b.config["root"]["path"] = rootfs
    if fs == "sysfs":  # /sys/fs/cgroup would go through the link too: the check is on /sys
        b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    index = [m["destination"] for m in b.config["mounts"]].index(destination)
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc == 1, r.err
    assert error_of(r) == ("pyrunc create failed: unable to start container process: "
                           f"error mounting {fs!r} to rootfs at {destination!r} (mounts[{index}]): "
                           f'filesystem "{fs}" must be mounted on ordinary directory')
    assert pyrunc.ids() == []
    assert os.listdir(host) == []
    assert not os.path.exists(in_root(rootfs, host))  # not created inside either
    assert os.listdir(os.path.join(rootfs, "home/user")) == []


def test_proc_as_a_file_is_refused(pyrunc, make_bundle, cid, tmp_path, no_leaks):
    rootfs = private_rootfs(tmp_path / "rootfs")
    os.rmdir(os.path.join(rootfs, "proc"))
    open(os.path.join(rootfs, "proc"), "w").close()
    b = make_bundle()
    b.config["root"]["path"] = rootfs
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc == 1
    assert error_of(r).endswith('filesystem "proc" must be mounted on ordinary directory')
    assert pyrunc.ids() == []


# ---------------------------------------------------------------- /dev

@pytest.mark.parametrize("dev_tmpfs", [True, False])
def test_dev_as_a_symlink_to_the_host(pyrunc, make_bundle, cid, tmp_path, no_leaks, dev_tmpfs):
    """The image's /dev points at a host directory: the default nodes, links and the configured
    ones land in the rootfs (under the link's target taken inside it), never on the host."""
    rootfs = private_rootfs(tmp_path / "rootfs")
    host = canary(tmp_path)
    os.rmdir(os.path.join(rootfs, "dev"))
    os.symlink(str(host), os.path.join(rootfs, "dev"))
    b = make_bundle()
    b.config["root"]["path"] = rootfs
    if not dev_tmpfs:  # no tmpfs at /dev: the nodes are made in the image itself
        b.config["mounts"] = [m for m in b.config["mounts"] if not m["destination"].startswith("/dev")]
    b.linux["devices"] = [{"path": "/dev/mine", "type": "c", "major": 1, "minor": 5, "fileMode": 0o644}]
    out = sh_ok(pyrunc, b, cid, "stat -c '%n %t:%T' /dev/null /dev/zero /dev/mine; readlink /dev/fd")
    assert out.splitlines() == ["/dev/null 1:3", "/dev/zero 1:5", "/dev/mine 1:5", "/proc/self/fd"]
    assert os.listdir(host) == []
    inside = in_root(rootfs, host)
    if dev_tmpfs:
        assert os.listdir(inside) == []  # the nodes were in the container's tmpfs
    else:
        assert {"null", "zero", "tty", "mine", "fd", "ptmx"} <= set(os.listdir(inside))
        assert stat.S_ISCHR(os.lstat(os.path.join(inside, "null")).st_mode)


def test_dev_from_a_volume_with_symlinks(pyrunc, make_bundle, cid, tmp_path, no_leaks):
    """/dev is a volume (so, as runc, no default nodes) whose symlinks point at the host:
    the configured nodes through them land inside the rootfs."""
    rootfs = private_rootfs(tmp_path / "rootfs")
    host = canary(tmp_path)
    vol = tmp_path / "devvol"
    vol.mkdir()
    os.symlink(str(host), vol / "sub")
    os.symlink(str(host / "null"), vol / "null")  # the node's own name a link to a host file
    b = make_bundle()
    b.config["root"]["path"] = rootfs
    b.config["mounts"] = [m for m in b.config["mounts"] if not m["destination"].startswith("/dev")]
    b.config["mounts"].append(bind(vol, "/dev", "rbind"))
    b.linux["devices"] = [
        {"path": "/dev/sub/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666},
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666},
    ]
    out = sh_ok(pyrunc, b, cid, "stat -c '%n %F %t:%T' /dev/null /dev/sub/mynull")
    assert out.splitlines() == ["/dev/null character special file 1:3",
                                "/dev/sub/mynull character special file 1:3"]
    assert os.listdir(host) == []
    assert os.listdir(in_root(rootfs, host)) == ["mynull"]
    assert stat.S_ISCHR(os.lstat(vol / "null").st_mode)  # the link itself was replaced


def test_default_device_listed_again_is_not_an_error(pyrunc, make_bundle, cid):
    b = make_bundle()
    b.linux["devices"] = [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600},
                          {"path": "/dev//zero", "type": "c", "major": 1, "minor": 5}]
    out = sh_ok(pyrunc, b, cid, "stat -c '%n %t:%T %a' /dev/null /dev/zero")
    assert out.splitlines() == ["/dev/null 1:3 600", "/dev/zero 1:5 666"]

