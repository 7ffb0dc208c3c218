"""Unit tests for the state store (pyrunc/state/store.py), what /proc says about a process
(pyrunc/state/procfs.py) and the status derived from both (pyrunc/runtime/status.py)."""

import json
import os
import signal
import stat
import subprocess
import threading
import time

import pytest

from pyrunc.errors import ContainerExists, ContainerNotFound, InvalidIDError
from pyrunc.runtime import status
from pyrunc.state import procfs
from pyrunc.state.store import EXEC_FIFO, STATE_FILE, Store, check_id

# --------------------------------------------------------------------------- ids

@pytest.mark.parametrize("good", ["a", "A", "_a", ".a", "a.", "a+b", "a,b", "a-b", "a.b", "a_b", "A_b-c",
                                  "0", "a" * 255, "..a", "a..b", "-", "+"])
def test_valid_ids(good):
    check_id(good)


@pytest.mark.parametrize("bad", [".", "..", "a/b", "../x", "/", "a b", "a:b", "a@b", "a\\b", "é", "a%b",
                                 "a=b", "a\n", "\na", "a\0b", "a" * 256, "a*", " "])
def test_invalid_ids(bad):
    with pytest.raises(InvalidIDError) as e:
        check_id(bad)
    assert str(e.value) == "invalid container ID format"


@pytest.mark.parametrize("empty", ["", None])
def test_empty_id(empty):
    with pytest.raises(InvalidIDError) as e:
        check_id(empty)
    assert str(e.value) == "container id cannot be empty"


# --------------------------------------------------------------------------- Store

@pytest.fixture
def store(tmp_path):
    return Store(str(tmp_path / "root"))


def test_root_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Store("rel").root == str(tmp_path / "rel")
    assert Store("rel").path("c", "state.json") == str(tmp_path / "rel" / "c" / "state.json")
    assert Store("rel").path("c") == str(tmp_path / "rel" / "c")


def test_claim_makes_root_and_container_dir(store):
    old = os.umask(0o077)  # the init (maybe another uid) must reach exec.fifo whatever the umask
    try:
        lock = store.claim("c1")
    finally:
        os.umask(old)
    lock.release()
    assert stat.S_IMODE(os.stat(store.path("c1")).st_mode) == 0o711
    assert os.path.isdir(store.root)
    assert not store.exists("c1")  # no state.json yet
    assert store.ids() == []  # and so not listed


def test_claim_twice(store):
    store.claim("c1").release()
    with pytest.raises(ContainerExists) as e:
        store.claim("c1")
    assert "already exists" in str(e.value)
    assert str(e.value) == "container with given ID already exists"


def test_claim_checks_the_id(store):
    with pytest.raises(InvalidIDError):
        store.claim("../escape")
    assert not os.path.exists(os.path.join(os.path.dirname(store.root), "escape"))


def test_claim_holds_the_lock_until_released(store):
    lock = store.claim("c1")
    got = threading.Event()

    def other():
        with store.lock("c1"):
            got.set()

    t = threading.Thread(target=other)
    t.start()
    assert not got.wait(0.2)
    lock.release()
    assert got.wait(5)
    t.join()


def test_save_load_roundtrip(store):
    store.claim("c1").release()
    record = {"id": "c1", "pid": 5, "start_time": 7, "nested": {"k": ["v"]}}
    store.save("c1", record)
    assert store.load("c1") == record
    assert store.exists("c1")
    assert sorted(os.listdir(store.path("c1"))) == [STATE_FILE]  # no temp file left
    store.save("c1", dict(record, pid=6))
    assert store.load("c1")["pid"] == 6


def test_save_is_atomic(store):
    """A reader never sees a partial state.json while it is being replaced."""
    store.claim("c1").release()
    store.save("c1", {"id": "c1", "pad": "x" * 200_000, "n": 0})
    stop = threading.Event()
    errors = []

    def reader():
        while not stop.is_set():
            try:
                store.load("c1")
            except Exception as e:  # noqa: BLE001
                errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    for n in range(50):
        store.save("c1", {"id": "c1", "pad": "y" * 200_000, "n": n})
    stop.set()
    t.join()
    assert errors == []


def test_load_missing(store):
    with pytest.raises(ContainerNotFound) as e:
        store.load("nope")
    assert str(e.value) == "container does not exist"
    store.claim("half").release()
    with pytest.raises(ContainerNotFound):
        store.load("half")


def test_load_checks_the_id(store):
    with pytest.raises(InvalidIDError):
        store.load("../x")


def test_remove(store):
    store.claim("c1").release()
    store.save("c1", {"id": "c1"})
    os.mkfifo(store.path("c1", EXEC_FIFO))
    store.remove("c1")
    assert not os.path.exists(store.path("c1"))
    store.remove("c1")  # missing is fine
    store.remove("never")


def test_remove_with_the_notify_directory(store):
    """NOTIFY_SOCKET's notify/ (a socket inside) goes with the state; a symlink is not followed."""
    import socket
    store.claim("c1").release()
    store.save("c1", {"id": "c1"})
    os.mkdir(store.path("c1", "notify"))
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(store.path("c1", "notify/notify.sock"))
    outside = os.path.dirname(store.root) + "/outside"
    os.mkdir(outside)
    open(outside + "/keep", "w").close()
    os.symlink(outside, store.path("c1", "link"))
    store.remove("c1")
    assert not os.path.exists(store.path("c1"))
    assert os.path.exists(outside + "/keep")


def test_ids_sorted_bytewise_and_only_with_state(store):
    for cid in ["b", "a", "A", "_a", ".a", "a.b", "a,b"]:
        store.claim(cid).release()
        store.save(cid, {"id": cid})
    store.claim("half").release()
    os.makedirs(os.path.join(store.root, "stray", "x"))
    with open(os.path.join(store.root, "file"), "w"):
        pass
    assert store.ids() == [".a", "A", "_a", "a", "a,b", "a.b", "b"]


def test_ids_without_root(store):
    assert store.ids() == []
    assert not os.path.exists(store.root)


def test_lock_missing_container(store):
    with pytest.raises(ContainerNotFound):
        with store.lock("nope"):
            pass


def test_lock_serialises_across_processes(store):
    store.claim("c1").release()
    code = ("import sys, time; sys.path.insert(0, %r)\n"
            "from pyrunc.state.store import Store\n"
            "print('waiting', flush=True)\n"
            "with Store(%r).lock('c1'): print(time.time(), flush=True)\n")
    root_of_repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with store.lock("c1"):
        p = subprocess.Popen(["python3", "-c", code % (root_of_repo, store.root)], stdout=subprocess.PIPE,
                             text=True)
        assert p.stdout.readline() == "waiting\n"
        time.sleep(0.2)
        assert p.poll() is None  # still waiting for us
        released = time.time()
    out, _ = p.communicate(timeout=10)
    assert float(out) >= released


def test_lock_released_even_if_a_forked_child_holds_the_fd(store):
    """The shim is forked while create holds the lock; the lock must not stay with it."""
    lock = store.claim("c1")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child keeps the inherited fd open until told to exit
        os.close(w)
        os.read(r, 1)
        os._exit(0)
    try:
        os.close(r)
        lock.release()
        got = threading.Event()
        t = threading.Thread(target=lambda: (store.lock("c1").__enter__(), got.set()))
        t.daemon = True
        t.start()
        assert got.wait(2), "the lock is still held through the child's copy of the fd"
    finally:
        os.close(w)
        os.waitpid(pid, 0)


def test_claim_when_the_directory_vanishes_before_the_lock(store, monkeypatch):
    """A delete of the "leftover" directory between create's mkdir and its flock: claim fails
    cleanly instead of letting create write into a removed directory."""
    real_mkdir = os.mkdir

    def mkdir_then_vanish(path, mode=0o777):
        real_mkdir(path, mode)
        if path == store.path("c1"):
            os.rmdir(path)

    monkeypatch.setattr(os, "mkdir", mkdir_then_vanish)
    with pytest.raises(ContainerNotFound):
        store.claim("c1")


def test_claim_when_the_directory_is_replaced_before_the_lock(store, monkeypatch):
    import fcntl

    from pyrunc.state import store as store_module
    real_flock = fcntl.flock

    def flock_after_replacement(fd, op):
        if op == fcntl.LOCK_EX:
            os.rmdir(store.path("c1"))
            os.mkdir(store.path("c1"))  # another create made it again
        real_flock(fd, op)

    monkeypatch.setattr(store_module.fcntl, "flock", flock_after_replacement)
    with pytest.raises(ContainerNotFound, match="deleted while it was being created"):
        store.claim("c1")
    monkeypatch.setattr(store_module.fcntl, "flock", real_flock)
    with store.lock("c1"):  # and our lock was released
        pass


# --------------------------------------------------------------------------- procfs

def test_stat_fields_of_self():
    fields = procfs.stat_fields(os.getpid())
    assert fields[0] in (b"R", b"S")
    assert int(fields[1]) == os.getppid()


def test_start_time_matches_proc():
    with open("/proc/self/stat") as f:
        expected = int(f.read().rsplit(")", 1)[1].split()[19])
    assert procfs.start_time(os.getpid()) == expected


def test_comm_with_spaces_and_parens():
    """The command name may contain ') (' and spaces: fields are counted after the last ')'."""
    # only a process itself may rename itself
    child = subprocess.Popen(["python3", "-c", "open('/proc/self/comm', 'w').write('a) (b c) d'); "
                              "print(flush=True); import time; time.sleep(30)"], stdout=subprocess.PIPE)
    try:
        child.stdout.readline()
        with open(f"/proc/{child.pid}/stat") as f:
            assert "(a) (b c) d)" in f.read()
        fields = procfs.stat_fields(child.pid)
        assert fields[0] in (b"R", b"S") and int(fields[1]) == os.getpid()
        assert procfs.is_alive(child.pid, procfs.start_time(child.pid))
    finally:
        child.kill()
        child.wait()


def test_is_alive():
    child = subprocess.Popen(["sleep", "30"])
    st = procfs.start_time(child.pid)
    assert procfs.is_alive(child.pid, st)
    assert not procfs.is_alive(child.pid, st + 1)  # the pid now names another process
    child.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while procfs.stat_fields(child.pid)[0] != b"Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not procfs.is_alive(child.pid, st)  # a zombie is not alive
    child.wait()
    assert procfs.stat_fields(child.pid) is None
    assert procfs.start_time(child.pid) is None
    assert not procfs.is_alive(child.pid, st)


def test_missing_pid():
    assert procfs.stat_fields(2 ** 22 + 1) is None
    assert not procfs.is_alive(2 ** 22 + 1, 0)


# --------------------------------------------------------------------------- status

def _record(store, cid, pid, start):
    store.claim(cid).release()
    record = {"id": cid, "pid": pid, "start_time": start, "bundle": "/b", "rootfs": "/b/rootfs",
              "created": "2026-01-01T00:00:00.5Z", "owner": "", "annotations": {"z": "1", "a": "2"}}
    store.save(cid, record)
    return record


def test_status_created_running_stopped(store):
    me = os.getpid()
    rec = _record(store, "c1", me, procfs.start_time(me))
    os.mkfifo(store.path("c1", EXEC_FIFO))
    assert status.status_of(store, rec) == "created"
    os.unlink(store.path("c1", EXEC_FIFO))
    assert status.status_of(store, rec) == "running"
    assert status.status_of(store, dict(rec, start_time=rec["start_time"] - 1)) == "stopped"
    assert status.status_of(store, dict(rec, pid=0)) == "stopped"


def test_describe_reports_pid_zero_when_stopped(store):
    rec = _record(store, "c1", os.getpid(), -5)
    s = status.describe(store, rec)
    assert (s.status, s.pid) == ("stopped", 0)
    doc = s.to_oci()
    assert list(doc) == ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created",
                         "annotations", "owner"]
    assert list(doc["annotations"]) == ["a", "z"]  # sorted, as Go marshals a map
    assert json.dumps(doc, indent=2).startswith('{\n  "ociVersion": ')


def test_describe_running_keeps_pid(store):
    me = os.getpid()
    s = status.describe(store, _record(store, "c1", me, procfs.start_time(me)))
    assert (s.status, s.pid) == ("running", me)
    assert s.to_oci()["owner"] == ""


# --------------------------------------------------------------------------- host files

def test_modes_of_what_the_store_writes(store):
    old = os.umask(0)
    try:
        store.claim("c1").release()
        store.save_creating("c1", {"id": "c1", "creator_pid": 1})
        store.save("c1", {"id": "c1", "env": ["SECRET=x"]})
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(store.root).st_mode) == 0o700
    for name in (STATE_FILE, "creating.json"):
        assert stat.S_IMODE(os.stat(store.path("c1", name)).st_mode) == 0o600
    assert store.load_creating("c1") == {"id": "c1", "creator_pid": 1}
    store.created("c1")
    assert sorted(os.listdir(store.path("c1"))) == [STATE_FILE]
    assert store.load_creating("c1") is None


def test_save_never_writes_through_a_planted_symlink(store, tmp_path):
    canary = tmp_path / "canary"
    canary.write_text("keep")
    store.claim("c1").release()
    os.symlink(canary, store.path("c1", STATE_FILE))
    os.symlink(canary, store.path("c1", STATE_FILE + ".tmp"))
    store.save("c1", {"id": "c1"})
    assert canary.read_text() == "keep"
    assert store.load("c1") == {"id": "c1"}


def test_load_refuses_what_is_not_ours(store, tmp_path, monkeypatch):
    from pyrunc.state.hostfile import Untrusted
    store.claim("c1").release()
    store.save("c1", {"id": "c1"})
    os.chmod(store.path("c1", STATE_FILE), 0o620)
    with pytest.raises(Untrusted, match="writable by group or others"):
        store.load("c1")
    os.chmod(store.path("c1", STATE_FILE), 0o600)
    me = os.geteuid()
    if me == 0:
        os.chown(store.path("c1", STATE_FILE), 65534, 65534)
        other = 65534
    else:  # only root can give a file away: be someone else instead
        monkeypatch.setattr(os, "geteuid", lambda: me + 1)
        other = me
    with pytest.raises(Untrusted, match=f"owned by uid {other}"):
        store.load("c1")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / STATE_FILE).write_text('{"id": "x"}')
    os.symlink(elsewhere, store.path("linked"))
    with pytest.raises(Untrusted, match="symlink"):
        store.load("linked")
    with pytest.raises(Untrusted, match="symlink"):
        store.lock("linked").__enter__()
    store.remove("linked")  # the link goes, what it points to stays
    assert not os.path.lexists(store.path("linked"))
    assert (elsewhere / STATE_FILE).exists()


def test_pid_file_writer(tmp_path):
    from pyrunc.state.hostfile import HostFileError, write_pid_file
    canary = tmp_path / "canary"
    canary.write_text("keep")
    for name in ("x.pid", ".x.pid", ".x.pid.tmp"):
        os.symlink(canary, tmp_path / name)
    write_pid_file(str(tmp_path / "x.pid"), 1234)
    assert (tmp_path / "x.pid").read_text() == "1234" and canary.read_text() == "keep"
    assert not os.path.islink(tmp_path / "x.pid")
    with pytest.raises(HostFileError, match=r"cannot write pid file .*/nope/x.pid: no such file"):
        write_pid_file(str(tmp_path / "nope" / "x.pid"), 1)
