"""The container lifecycle with real containers: create, start, state, kill, delete, run,
the errors runc reports on the way, and the same through the public Python API.

Expected texts are runc 1.1.5's (Debian 12) unless a comment says otherwise. Remember that
a process that is PID 1 of a pid namespace only receives the signals it has a handler for
(SIGKILL and SIGSTOP excepted), so `sleep` as the init ignores SIGTERM.
"""

import calendar
import json
import os
import re
import signal
import subprocess
import time

import pytest
from helpers import alive, error_of, fails, live_inits, proc_stat, state, wait_for  # noqa: E402,F401

# --------------------------------------------------------------------------- helpers

RFC3339NANO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z\Z")
TRAP_TERM = ["sh", "-c", 'trap "exit 7" TERM; while :; do sleep 0.1; done']


def wait_status(runner, cid, status, timeout=5.0):
    wait_for(lambda: state(runner, cid)["status"] == status, timeout, f"{cid} to be {status}")
    return state(runner, cid)


def ns_pids(pid):
    """Live host pids in the pid namespace whose init is `pid`."""
    target = os.readlink(f"/proc/{pid}/ns/pid")
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink(f"/proc/{name}/ns/pid") == target and alive(int(name)):
                    out.append(int(name))
            except OSError:
                pass
    return sorted(out)


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[:-1]
    except OSError:
        return []


@pytest.fixture
def no_init_leak(pyrunc, no_leaks):
    """no_leaks, plus a grace period: a failed create SIGKILLs its init and returns at once."""
    yield
    wait_for(lambda: not live_inits(pyrunc.root), 2.0, "no container init left")


def run_d(runner, bundle, cid):
    r = runner("run", "-d", "--bundle", bundle.path, cid)
    assert (r.rc, r.out, r.err) == (0, "", ""), r.err
    return state(runner, cid)


def popen(runner, *args, stdout=None):
    return subprocess.Popen([*runner.argv, "--root", runner.root, *args], stdin=subprocess.DEVNULL,
                            stdout=stdout or subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# --------------------------------------------------------------------------- create / start / state

def test_create_leaves_a_waiting_init_and_exits(pyrunc, make_bundle, cid, tmp_path, no_init_leak):
    b = make_bundle("sleep", "100")
    pidfile = tmp_path / "init.pid"
    p = popen(pyrunc, "create", "--bundle", b.path, "--pid-file", str(pidfile), cid)
    assert p.wait(timeout=30) == 0
    text = pidfile.read_text()
    assert re.fullmatch(r"[1-9][0-9]*", text), repr(text)  # decimal, no newline
    pid = int(text)
    st = state(pyrunc, cid)
    assert (st["status"], st["pid"]) == ("created", pid)
    comm, letter, ppid = proc_stat(pid)
    assert comm == "pyrunc:init" and letter != "Z"
    assert ppid != p.pid  # `create` has exited (waited above); the init lives on, re-parented
    assert os.path.exists(os.path.join(pyrunc.root, cid, "exec.fifo"))

    t0 = time.monotonic()
    r = pyrunc("start", cid)
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert time.monotonic() - t0 < 5  # the container sleeps 100 s; start did not wait for it
    st = state(pyrunc, cid)
    assert (st["status"], st["pid"]) == ("running", pid)
    assert proc_stat(pid)[0] == "sleep"
    assert not os.path.exists(os.path.join(pyrunc.root, cid, "exec.fifo"))

    assert pyrunc("kill", cid, "KILL").rc == 0
    st = wait_status(pyrunc, cid, "stopped")
    assert st["pid"] == 0
    r = pyrunc("delete", cid)
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert not os.path.exists(os.path.join(pyrunc.root, cid))
    fails(pyrunc("state", cid), "container does not exist")


def test_process_exit_makes_the_container_stopped(pyrunc, make_bundle, cid):
    b = make_bundle("sh", "-c", "sleep 0.3")
    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc == 0, r.err
    assert pyrunc("start", cid).rc == 0
    assert state(pyrunc, cid)["status"] == "running"
    st = wait_status(pyrunc, cid, "stopped")
    assert st["pid"] == 0
    assert pyrunc("delete", cid).rc == 0
    assert pyrunc.ids() == []


def test_pid_file_is_replaced_and_relative_to_cwd(pyrunc, make_bundle, cid, tmp_path):
    b = make_bundle("sleep", "100")
    (tmp_path / "rel.pid").write_text("stale contents that are longer\n")
    r = pyrunc("create", "--bundle", b.path, "--pid-file", "rel.pid", cid, cwd=str(tmp_path))
    assert r.rc == 0, r.err
    assert (tmp_path / "rel.pid").read_text() == str(state(pyrunc, cid)["pid"])
    assert [n for n in os.listdir(tmp_path) if n.startswith(".rel.pid")] == []
    assert pyrunc("delete", cid).rc == 0


def test_state_json_format(pyrunc, make_bundle, cid):
    b = make_bundle("sleep", "100")
    b.config["annotations"] = {"b.key": "v1", "a.key": "v2"}
    b.write()
    before = time.time()
    assert pyrunc("create", "--bundle", b.path, cid).rc == 0
    r = pyrunc("state", cid)
    assert r.rc == 0 and r.err == ""
    doc = json.loads(r.out)
    assert list(doc) == ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created",
                         "annotations", "owner"]
    assert RFC3339NANO.match(doc["created"]), doc["created"]
    created = calendar.timegm(time.strptime(doc["created"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert before - 2 < created < time.time() + 1
    # runc's exact layout: 2 spaces, annotations sorted, no trailing newline
    expected = (
        "{\n"
        f'  "ociVersion": "{doc["ociVersion"]}",\n'
        f'  "id": "{cid}",\n'
        f'  "pid": {doc["pid"]},\n'
        '  "status": "created",\n'
        f'  "bundle": "{b.path}",\n'
        f'  "rootfs": "{b.config["root"]["path"]}",\n'
        f'  "created": "{doc["created"]}",\n'
        '  "annotations": {\n'
        '    "a.key": "v2",\n'
        '    "b.key": "v1"\n'
        "  },\n"
        '  "owner": ""\n'
        "}")
    assert r.out == expected
    assert pyrunc("delete", cid).rc == 0


def test_state_without_annotations_has_no_annotations_key(pyrunc, make_bundle, cid):
    b = make_bundle("true")
    b.config.pop("annotations", None)
    b.write()
    assert pyrunc("create", "--bundle", b.path, cid).rc == 0
    assert list(state(pyrunc, cid)) == ["ociVersion", "id", "pid", "status", "bundle", "rootfs",
                                        "created", "owner"]
    assert pyrunc("delete", cid).rc == 0


def test_relative_bundle_is_recorded_absolute(pyrunc, make_bundle, cid):
    b = make_bundle("true")
    parent, name = os.path.split(b.path)
    assert pyrunc("create", "--bundle", name, cid, cwd=parent).rc == 0
    assert state(pyrunc, cid)["bundle"] == b.path
    assert pyrunc("delete", cid).rc == 0


def test_reused_pid_reads_as_stopped_and_is_never_signalled(pyrunc, make_bundle, cid, no_init_leak):
    """The status comes from pid + start time: another process on the same pid is not ours."""
    b = make_bundle("sleep", "100")
    st = run_d(pyrunc, b, cid)
    pid = st["pid"]
    path = os.path.join(pyrunc.root, cid, "state.json")
    with open(path) as f:
        record = json.load(f)
    record["start_time"] += 1
    with open(path, "w") as f:
        json.dump(record, f)
    # a process that merely reuses the pid is not in the container's cgroup: move it out
    for key in (record.get("cgroup") or {}).get("paths", {}):
        with open(os.path.join(record["cgroup"]["mounts"][key], "cgroup.procs"), "w") as f:
            f.write(str(pid))
    try:
        st = state(pyrunc, cid)
        assert (st["status"], st["pid"]) == ("stopped", 0)
        fails(pyrunc("kill", cid, "KILL"), "container not running")
        assert pyrunc("delete", cid).rc == 0  # a stopped container needs no --force
        assert alive(pid), "delete signalled a process that is not the container's"
    finally:
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not alive(pid))


def test_start_twice_and_start_stopped(pyrunc, make_bundle, cid):
    b = make_bundle("sleep", "100")
    assert pyrunc("create", "--bundle", b.path, cid).rc == 0
    assert pyrunc("start", cid).rc == 0
    fails(pyrunc("start", cid), "cannot start an already running container")
    assert state(pyrunc, cid)["status"] == "running"
    assert pyrunc("kill", cid, "KILL").rc == 0
    wait_status(pyrunc, cid, "stopped")
    fails(pyrunc("start", cid), "cannot start a container that has stopped")
    assert pyrunc("delete", cid).rc == 0


def test_start_of_a_created_container_whose_init_was_killed(pyrunc, make_bundle, cid):
    b = make_bundle("sleep", "100")
    assert pyrunc("create", "--bundle", b.path, cid).rc == 0
    pid = state(pyrunc, cid)["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_status(pyrunc, cid, "stopped")
    fails(pyrunc("start", cid), "cannot start a container that has stopped")
    fails(pyrunc("kill", cid, "0"), "container not running")
    assert pyrunc("delete", cid).rc == 0


def test_missing_container(pyrunc):
    for verb in ("state", "start", "kill", "delete"):
        fails(pyrunc(verb, "nosuch"), "container does not exist")
    # runc looks the container up before it parses the signal
    fails(pyrunc("kill", "nosuch", "FOO"), "container does not exist")
    r = pyrunc("delete", "--force", "nosuch")
    assert (r.rc, r.out, r.err) == (0, "", "")
    r = pyrunc("delete", "-f", "nosuch")
    assert (r.rc, r.out, r.err) == (0, "", "")


# --------------------------------------------------------------------------- kill

def test_kill_default_sigterm_reaches_a_trapping_init(pyrunc, make_bundle, cid):
    st = run_d(pyrunc, make_bundle(*TRAP_TERM), cid)
    time.sleep(0.2)  # let sh install its trap
    r = pyrunc("kill", cid)
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert wait_status(pyrunc, cid, "stopped")["pid"] == 0
    assert not alive(st["pid"])


def test_kill_default_sigterm_is_ignored_by_an_init_without_handler(pyrunc, make_bundle, cid):
    """As with runc: PID 1 of a pid namespace ignores TERM unless it handles it."""
    run_d(pyrunc, make_bundle("sleep", "100"), cid)
    assert pyrunc("kill", cid).rc == 0
    assert pyrunc("kill", cid, "").rc == 0  # an empty signal is the default, TERM
    time.sleep(0.3)
    assert state(pyrunc, cid)["status"] == "running"
    assert pyrunc("kill", cid, "KILL").rc == 0
    wait_status(pyrunc, cid, "stopped")


@pytest.mark.parametrize("sig", ["9", "+9", "KILL", "SIGKILL", "kill", "sigkill", "SIGkill"])
def test_kill_signal_spellings(pyrunc, make_bundle, cid, sig):
    st = run_d(pyrunc, make_bundle("sleep", "100"), cid)
    r = pyrunc("kill", cid, sig)
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert wait_status(pyrunc, cid, "stopped")["pid"] == 0
    assert not alive(st["pid"])
    assert pyrunc("delete", cid).rc == 0


def test_kill_bad_signals(pyrunc, make_bundle, cid):
    run_d(pyrunc, make_bundle("sleep", "100"), cid)
    for bad in ("FOO", "SIGFOO", "RTMIN", "SIGRTMIN+1", "RTMAX", "IOT", "1.5", "0x9", " 9", "9 "):
        fails(pyrunc("kill", cid, bad), f'unknown signal "{bad}"')
    for number in ("99", "65", "-1"):
        fails(pyrunc("kill", cid, number), "unable to signal init: invalid argument")
    r = pyrunc("kill", cid, "0")  # signal 0 only checks
    assert (r.rc, r.err) == (0, "")
    assert state(pyrunc, cid)["status"] == "running"
    assert pyrunc("delete", "--force", cid).rc == 0


def test_kill_stopped_container(pyrunc, make_bundle, cid):
    run_d(pyrunc, make_bundle("true"), cid)
    wait_status(pyrunc, cid, "stopped")
    for args in ((), ("KILL",), ("0",), ("TERM",)):
        fails(pyrunc("kill", cid, *args), "container not running")
    for flag in ("--all", "-a"):
        r = pyrunc("kill", flag, cid, "KILL")
        assert (r.rc, r.out, r.err) == (0, "", "")
    assert pyrunc("delete", cid).rc == 0


def test_kill_all_signals_every_process_in_the_pid_namespace(pyrunc, make_bundle, cid):
    b = make_bundle("sh", "-c", "sleep 1000 & sleep 1001 & while :; do sleep 0.1; done")
    st = run_d(pyrunc, b, cid)
    init = st["pid"]

    def background():
        return [p for p in ns_pids(init) if cmdline(p)[-1:] in ([b"1000"], [b"1001"])]

    wait_for(lambda: len(background()) == 2, what="the background sleeps")
    sleeps = background()
    # Without --all only the init is signalled, and as PID 1 without a TERM trap it ignores it
    assert pyrunc("kill", cid, "TERM").rc == 0
    time.sleep(0.3)
    assert all(alive(p) for p in sleeps)
    # --all reaches the other processes, which die of TERM; the init still ignores it
    r = pyrunc("kill", "--all", cid, "TERM")
    assert (r.rc, r.out, r.err) == (0, "", "")
    wait_for(lambda: not any(alive(p) for p in sleeps), what="the sleeps to die")
    assert state(pyrunc, cid)["status"] == "running"
    # and KILL with --all leaves nothing in the namespace
    wait_for(lambda: len(background()) == 0)
    assert pyrunc("kill", "-a", cid, "KILL").rc == 0
    wait_status(pyrunc, cid, "stopped")
    assert not alive(init)
    assert pyrunc("delete", cid).rc == 0


def test_kill_all_after_the_id_and_signal(pyrunc, make_bundle, cid):
    run_d(pyrunc, make_bundle("sleep", "100"), cid)
    r = pyrunc("kill", cid, "KILL", "--all")
    assert (r.rc, r.err) == (0, "")
    wait_status(pyrunc, cid, "stopped")


def test_kill_term_terminates_a_created_container(pyrunc, make_bundle, cid, no_init_leak):
    """The init waiting for `start` is pyrunc's own code, which dies on TERM."""
    b = make_bundle("sleep", "100")
    assert pyrunc("create", "--bundle", b.path, cid).rc == 0
    pid = state(pyrunc, cid)["pid"]
    assert pyrunc("kill", cid).rc == 0
    assert wait_status(pyrunc, cid, "stopped")["pid"] == 0
    wait_for(lambda: not alive(pid))
    fails(pyrunc("start", cid), "cannot start a container that has stopped")
    assert pyrunc("delete", cid).rc == 0


def test_kill_created_container_with_kill(pyrunc, make_bundle, cid):
    b = make_bundle("sleep", "100")
    assert pyrunc("create", "--bundle", b.path, cid).rc == 0
    assert pyrunc("kill", cid, "KILL").rc == 0
    assert wait_status(pyrunc, cid, "stopped")["pid"] == 0
    assert pyrunc("delete", cid).rc == 0


# --------------------------------------------------------------------------- delete

def test_delete_running_needs_force(pyrunc, make_bundle, cid):
    st = run_d(pyrunc, make_bundle("sleep", "100"), cid)
    fails(pyrunc("delete", cid), f"cannot delete container {cid} that is not stopped: running")
    assert state(pyrunc, cid)["status"] == "running"
    r = pyrunc("delete", "--force", cid)
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert not alive(st["pid"])  # --force waited for the init to die
    assert not os.path.exists(os.path.join(pyrunc.root, cid))


def test_delete_force_kills_every_process(pyrunc, make_bundle, cid):
    b = make_bundle("sh", "-c", "sleep 1000 & sleep 1001 & exec sleep 1002")
    st = run_d(pyrunc, b, cid)
    wait_for(lambda: len(ns_pids(st["pid"])) == 3)
    pids = ns_pids(st["pid"])
    assert pyrunc("delete", "-f", cid).rc == 0
    wait_for(lambda: not any(alive(p) for p in pids), 2.0)


def test_delete_created_container_kills_its_init(pyrunc, make_bundle, cid, no_init_leak):
    b = make_bundle("sleep", "100")
    assert pyrunc("create", "--bundle", b.path, cid).rc == 0
    pid = state(pyrunc, cid)["pid"]
    r = pyrunc("delete", cid)  # no --force needed, as with runc
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert not alive(pid)
    assert pyrunc.ids() == []


@pytest.mark.parametrize("force", [False, True])
def test_delete_removes_a_leftover_directory(pyrunc, cid, force):
    """A directory without state.json (an interrupted create) is removed, as runc does; without
    --force the answer is still "container does not exist"."""
    os.makedirs(os.path.join(pyrunc.root, cid))
    assert pyrunc("list", "-q").out == ""  # not a container
    fails(pyrunc("state", cid), "container does not exist")
    r = pyrunc("delete", *(["--force"] if force else []), cid)
    if force:
        assert (r.rc, r.err) == (0, "")
    else:
        fails(r, "container does not exist")
    assert not os.path.exists(os.path.join(pyrunc.root, cid))


# --------------------------------------------------------------------------- container ids

@pytest.mark.parametrize("bad, message", [
    ("", "container id cannot be empty"),
    (".", "invalid container ID format"),
    ("..", "invalid container ID format"),
    ("a/b", "invalid container ID format"),
    ("../x", "invalid container ID format"),
    ("/", "invalid container ID format"),
    ("a b", "invalid container ID format"),
    ("a:b", "invalid container ID format"),
    ("a@b", "invalid container ID format"),
    ("é", "invalid container ID format"),
    ("a\n", "invalid container ID format"),
    ("a" * 256, "invalid container ID format"),  # runc: "lstat ...: file name too long"
])
def test_invalid_ids(pyrunc, make_bundle, bad, message, tmp_path, no_init_leak):
    b = make_bundle("true")
    fails(pyrunc("create", "--bundle", b.path, "--", bad), f"pyrunc create failed: {message}")
    fails(pyrunc("run", "--bundle", b.path, "--", bad), f"pyrunc run failed: {message}")
    for verb in ("state", "start", "kill", "delete"):
        fails(pyrunc(verb, "--", bad), message)
    fails(pyrunc("delete", "--force", "--", bad), message)
    assert pyrunc.ids() == []
    assert not os.path.exists(tmp_path / "x")


@pytest.mark.parametrize("good", ["a+b", "a,b", "a.b", "A_b-c", "_a", ".a", "a.", "a" * 255])
def test_accepted_ids(pyrunc, make_bundle, good):
    b = make_bundle("sleep", "100")
    r = pyrunc("create", "--bundle", b.path, good)
    assert r.rc == 0, r.err
    assert state(pyrunc, good)["id"] == good
    assert pyrunc("list", "-q").out == good + "\n"
    assert pyrunc("delete", good).rc == 0


def test_duplicate_id_leaves_the_first_container_alone(pyrunc, make_bundle, cid, tmp_path, no_init_leak):
    b = make_bundle("sleep", "100")
    assert pyrunc("create", "--bundle", b.path, cid).rc == 0
    first = state(pyrunc, cid)
    other = make_bundle("sleep", "200")
    for verb in ("create", "run"):
        r = pyrunc(verb, "--bundle", other.path, "--pid-file", str(tmp_path / "dup.pid"), cid)
        fails(r, f"pyrunc {verb} failed: container with given ID already exists")
    r = pyrunc("run", "-d", "--bundle", other.path, cid)
    fails(r, "pyrunc run failed: container with given ID already exists")
    assert not (tmp_path / "dup.pid").exists()
    assert state(pyrunc, cid) == first
    assert alive(first["pid"])
    assert pyrunc("start", cid).rc == 0
    # start returns once the barrier is passed; the execve may still be under way (an empty
    # cmdline meanwhile)
    wait_for(lambda: cmdline(first["pid"]) == [b"sleep", b"100"], 5, "the first container's exec")
    assert pyrunc("delete", "-f", cid).rc == 0


# --------------------------------------------------------------------------- list

def test_list_formats(pyrunc, make_bundle):
    b = make_bundle("sleep", "100")
    ids = ["b-1", "A", "a"]  # listed in byte order: A a b-1
    for i in ids:
        assert pyrunc("create", "--bundle", b.path, i).rc == 0
    assert pyrunc("start", "a").rc == 0
    assert pyrunc("kill", "a", "KILL").rc == 0
    wait_status(pyrunc, "a", "stopped")
    states = [state(pyrunc, i) for i in sorted(ids)]

    r = pyrunc("list")
    assert (r.rc, r.err) == (0, "")
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], "root") for s in states]
    widths = [max(12, max(len(row[i]) for row in rows) + 3) for i in range(5)]
    expected = "".join("".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + row[5] + "\n" for row in rows)
    assert r.out == expected
    assert r.out.splitlines()[2].split()[1:3] == ["0", "stopped"]  # "a"
    assert all(line == line.rstrip() for line in r.out.splitlines())

    assert pyrunc("list", "-q").out == "A\na\nb-1\n"
    assert pyrunc("list", "--quiet", "--format", "json").out == "A\na\nb-1\n"

    for flags in (("--format", "json"), ("-f", "json"), ("--format=json",)):
        r = pyrunc("list", *flags)
        assert r.rc == 0 and r.out.endswith("]\n") and "\n" not in r.out[:-1]
        docs = json.loads(r.out)
        assert [d["id"] for d in docs] == ["A", "a", "b-1"]
        for d, s in zip(docs, states, strict=False):
            assert list(d) == list(s) and d == dict(s, owner="root")
        assert ", " not in r.out and ": " not in r.out  # compact, like Go's json.Marshal

    fails(pyrunc("list", "--format", "yaml"), "invalid format option")
    for i in ids:
        assert pyrunc("delete", "-f", i).rc == 0


def test_list_empty(pyrunc, tmp_path):
    for root in (pyrunc.root, str(tmp_path / "never" / "made")):
        g = ("--root", root)
        r = pyrunc("list", global_args=g)
        assert (r.rc, r.out, r.err) == (0, "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n", "")
        assert pyrunc("list", "-q", global_args=g).out == ""
        assert pyrunc("list", "--format", "json", global_args=g).out == "null\n"


# --------------------------------------------------------------------------- run

@pytest.mark.parametrize("script, rc", [("exit 0", 0), ("exit 3", 3), ("false", 1), ("exit 255", 255)])
def test_run_exit_status(pyrunc, make_bundle, cid, script, rc):
    r = pyrunc("run", "--bundle", make_bundle("sh", "-c", script).path, cid)
    assert (r.rc, r.out, r.err) == (rc, "", "")
    assert pyrunc.ids() == []  # a foreground run removes the container


def test_run_passes_stdout_and_stderr(pyrunc, make_bundle, cid):
    r = pyrunc("run", "--bundle", make_bundle("sh", "-c", "echo out; echo err >&2; exit 3").path, cid)
    assert (r.rc, r.out, r.err) == (3, "out\n", "err\n")


def test_run_stdin(pyrunc, make_bundle, cid):
    r = pyrunc("run", "--bundle", make_bundle("sh", "-c", "tr a-z A-Z").path, cid, input="hello\n")
    assert (r.rc, r.out) == (0, "HELLO\n")


def _start_run(pyrunc, bundle, cid, tmp_path):
    out = open(tmp_path / "run.out", "wb+")
    p = popen(pyrunc, "run", "--bundle", bundle.path, cid, stdout=out)
    return p, out


def test_run_init_killed_from_the_host(pyrunc, make_bundle, cid, tmp_path):
    p, _ = _start_run(pyrunc, make_bundle("sleep", "100"), cid, tmp_path)
    try:
        wait_for(lambda: pyrunc("state", cid).rc == 0 and state(pyrunc, cid)["status"] == "running")
        os.kill(state(pyrunc, cid)["pid"], signal.SIGKILL)
        assert p.wait(timeout=10) == 137
    finally:
        p.kill()
    assert pyrunc.ids() == []


def test_run_init_killed_by_pyrunc_kill(pyrunc, make_bundle, cid, tmp_path):
    p, _ = _start_run(pyrunc, make_bundle("sleep", "100"), cid, tmp_path)
    try:
        wait_for(lambda: pyrunc("state", cid).rc == 0 and state(pyrunc, cid)["status"] == "running")
        assert pyrunc("kill", cid, "KILL").rc == 0
        assert p.wait(timeout=10) == 137
    finally:
        p.kill()


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 5), (signal.SIGINT, 6), (signal.SIGHUP, 8)])
def test_run_forwards_signals(pyrunc, make_bundle, cid, tmp_path, sig, code):
    name = sig.name[3:]
    b = make_bundle("sh", "-c", f'trap "exit {code}" {name}; echo ready; while :; do sleep 0.1; done')
    p, out = _start_run(pyrunc, b, cid, tmp_path)
    try:
        wait_for(lambda: (tmp_path / "run.out").read_bytes() == b"ready\n", what="the trap")
        os.kill(p.pid, sig)
        assert p.wait(timeout=10) == code
    finally:
        p.kill()
    assert pyrunc.ids() == []


def test_run_detached(pyrunc, make_bundle, cid, tmp_path):
    t0 = time.monotonic()
    r = pyrunc("run", "-d", "--bundle", make_bundle("sleep", "100").path,
               "--pid-file", str(tmp_path / "pid"), cid)
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert time.monotonic() - t0 < 10
    st = state(pyrunc, cid)
    assert st["status"] == "running"
    assert (tmp_path / "pid").read_text() == str(st["pid"])
    time.sleep(0.3)
    assert state(pyrunc, cid)["status"] == "running"
    assert pyrunc("delete", "-f", cid).rc == 0


def test_run_detached_output_goes_to_the_callers_files(pyrunc, make_bundle, cid, tmp_path):
    """The container inherits run's stdio; its output arrives there after run has returned."""
    b = make_bundle("sh", "-c", "sleep 0.5; echo late")
    with open(tmp_path / "out", "wb") as out:
        assert popen(pyrunc, "run", "--detach", "--bundle", b.path, cid, stdout=out).wait(30) == 0
    assert (tmp_path / "out").read_bytes() == b""
    wait_status(pyrunc, cid, "stopped")
    assert (tmp_path / "out").read_bytes() == b"late\n"
    assert pyrunc("delete", cid).rc == 0


def test_run_exec_failure_cleans_up(pyrunc, make_bundle, cid, no_init_leak):
    r = pyrunc("run", "--bundle", make_bundle("nosuch").path, cid)
    fails(r, 'pyrunc run failed: unable to start container process: exec: "nosuch": '
             "executable file not found in $PATH")
    assert pyrunc.ids() == []


# --------------------------------------------------------------------------- bundle errors

def _bad_config(edit):
    def apply(b):
        edit(b.config)
        b.write()
    return apply


def _write_file(text):
    def apply(b):
        with open(os.path.join(b.path, "config.json"), "w") as f:
            f.write(text)
    return apply


def _remove_config(b):
    os.unlink(os.path.join(b.path, "config.json"))


def _set(path, value):
    def edit(config):
        *parents, last = path
        for p in parents:
            config = config[p]
        config[last] = value
    return edit


BUNDLE_ERRORS = [
    ("no config.json", _remove_config, ["config.json"]),
    ("not json", _write_file("not json"), ["config.json", "JSON"]),
    ("empty file", _write_file(""), ["config.json"]),
    ("array", _write_file("[]"), ["config.json"]),
    ("args is a number", _bad_config(_set(["process", "args"], 5)), ["process.args"]),
    ("args empty", _bad_config(_set(["process", "args"], [])), ["process.args"]),
    ("bogus namespace", _bad_config(_set(["linux", "namespaces", 0, "type"], "bogus")),
     ["linux.namespaces[0].type", "bogus"]),
    ("no process", _bad_config(lambda c: c.pop("process")), ["process"]),
    ("no root", _bad_config(lambda c: c.pop("root")), ["root"]),
    ("missing rootfs", _bad_config(_set(["root", "path"], "/nonexistent/rootfs")),
     ["rootfs", "/nonexistent/rootfs"]),
    ("relative cwd", _bad_config(_set(["process", "cwd"], "tmp")), ["process.cwd"]),
    ("ociVersion 2.0.0", _bad_config(_set(["ociVersion"], "2.0.0")), ["ociVersion", "2.0.0"]),
    ("executable not found", _bad_config(_set(["process", "args"], ["nosuch"])),
     ['exec: "nosuch": executable file not found in $PATH']),
    ("absolute executable missing", _bad_config(_set(["process", "args"], ["/nosuch"])),
     ['exec: "/nosuch": stat /nosuch: no such file or directory']),
    ("not executable", _bad_config(_set(["process", "args"], ["/etc/passwd"])),
     ['exec: "/etc/passwd": permission denied']),
]


@pytest.mark.parametrize("verb", ["create", "run"])
@pytest.mark.parametrize("case, breaker, words", BUNDLE_ERRORS, ids=[c[0] for c in BUNDLE_ERRORS])
def test_bundle_errors_leave_nothing_behind(pyrunc, make_bundle, cid, tmp_path, no_init_leak,
                                            verb, case, breaker, words):
    b = make_bundle("sleep", "100")
    breaker(b)
    r = pyrunc(verb, "--bundle", b.path, "--pid-file", str(tmp_path / "pid"), cid)
    message = error_of(r)
    assert (r.rc, r.out) == (1, "")
    assert message.startswith(f"pyrunc {verb} failed: ")
    for word in words:
        assert word in message, message
    assert "Traceback" not in r.err and "internal error" not in message
    assert pyrunc.ids() == []
    assert not (tmp_path / "pid").exists()
    fails(pyrunc("state", cid), "container does not exist")


def test_missing_bundle_dir(pyrunc, cid, tmp_path, no_init_leak):
    r = pyrunc("create", "--bundle", str(tmp_path / "nosuchdir"), cid)
    assert str(tmp_path / "nosuchdir") in error_of(r) and r.rc == 1
    assert pyrunc.ids() == []


def test_missing_config_in_cwd(pyrunc, cid, tmp_path):
    r = pyrunc("create", cid, cwd=str(tmp_path))
    assert r.rc == 1 and "config.json" in error_of(r)
    assert pyrunc.ids() == []


@pytest.mark.parametrize("version", ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.0", "1.3.0"])
def test_accepted_oci_versions(pyrunc, make_bundle, cid, version):
    b = make_bundle("true")
    b.config["ociVersion"] = version
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid)
    assert (r.rc, r.err) == (0, "")
    assert pyrunc("delete", cid).rc == 0


def test_terminal_without_console_socket(pyrunc, make_bundle, cid, no_init_leak):
    b = make_bundle("true")
    b.process["terminal"] = True
    b.write()
    fails(pyrunc("create", "--bundle", b.path, cid),
          "pyrunc create failed: cannot allocate tty if pyrunc will detach without setting console socket")
    assert pyrunc.ids() == []


def test_execve_failure_at_start_goes_to_the_containers_stderr(pyrunc, make_bundle, cid, rootfs, tmp_path):
    """A file that passes the create-time checks but cannot be executed fails at start,
    like runc: start succeeds and the container stops."""
    b = make_bundle("/tmp/garbage")
    # the shared rootfs stays untouched: the file comes in with a bind mount over /tmp
    (tmp_path / "hostdir").mkdir()
    garbage = tmp_path / "hostdir" / "garbage"
    garbage.write_bytes(b"\x00\x01garbage")
    garbage.chmod(0o755)
    b.config["mounts"].append({"destination": "/tmp", "type": "bind", "source": str(garbage.parent),
                               "options": ["bind", "ro"]})
    b.write()
    errfile = tmp_path / "create.err"
    with open(errfile, "wb") as err:
        p = subprocess.run([*pyrunc.argv, "--root", pyrunc.root, "create", "--bundle", b.path, cid],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, timeout=30)
    if p.returncode != 0:
        pytest.fail(errfile.read_text())
    r = pyrunc("start", cid)
    assert (r.rc, r.err) == (0, "")
    wait_status(pyrunc, cid, "stopped")
    wait_for(lambda: "exec format error" in errfile.read_text())
    assert pyrunc("delete", cid).rc == 0


# --------------------------------------------------------------------------- logging

LOG_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")


def test_log_json_on_failure(pyrunc, make_bundle, cid, tmp_path):
    log = tmp_path / "log.json"
    b = make_bundle("nosuch")
    r = pyrunc("create", "--bundle", b.path, cid, global_args=("--log", str(log), "--log-format", "json"))
    assert r.rc == 1 and r.out == ""
    msg = ('pyrunc create failed: unable to start container process: exec: "nosuch": '
           "executable file not found in $PATH")
    assert r.err == msg + "\n"  # the bare message, unescaped
    lines = log.read_text().splitlines(keepends=True)
    assert len(lines) == 1 and lines[0].endswith("}\n")
    doc = json.loads(lines[0])
    assert list(doc) == ["level", "msg", "time"]
    assert (doc["level"], doc["msg"]) == ("error", msg)
    assert LOG_TIME.match(doc["time"])
    assert lines[0].startswith('{"level":"error","msg":"')  # compact, as logrus writes it
    assert oct(log.stat().st_mode & 0o777) == oct(0o644)
    # the log is appended to
    fails_again = pyrunc("state", cid, global_args=("--log", str(log), "--log-format", "json"))
    assert fails_again.err == "container does not exist\n"
    assert len(log.read_text().splitlines()) == 2


def test_log_json_html_escapes_like_go(pyrunc, cid, tmp_path):
    log = tmp_path / "log.json"
    bundle = str(tmp_path / "a<b>&c")
    r = pyrunc("create", "--bundle", bundle, cid, global_args=("--log", str(log), "--log-format", "json"))
    assert r.rc == 1
    line = log.read_text()
    assert "\\u003c" in line and "\\u003e" in line and "\\u0026" in line and "<" not in line
    assert bundle in json.loads(line)["msg"]
    assert bundle in r.err


def test_log_file_is_created_and_empty_on_success(pyrunc, make_bundle, cid, tmp_path):
    log = tmp_path / "ok.log"
    g = ("--log", str(log), "--log-format", "json")
    b = make_bundle("sleep", "100")
    for args in (("create", "--bundle", b.path, cid), ("start", cid), ("state", cid), ("list",),
                 ("kill", cid, "KILL"), ("delete", "-f", cid)):
        r = pyrunc(*args, global_args=g)
        assert r.rc == 0 and r.err == "", (args, r.err)
    assert log.exists() and log.read_bytes() == b""


@pytest.mark.parametrize("spelling", [
    ("--log={log}", "--log-format=json"), ("-log", "{log}", "-log-format", "json"),
    ("--log", "{log}", "--log-format=json"), ("-log={log}", "-log-format=json"),
])
def test_log_flag_spellings(pyrunc, tmp_path, spelling):
    log = tmp_path / "s.log"
    r = pyrunc("state", "nosuch", global_args=tuple(a.format(log=log) for a in spelling))
    assert (r.rc, r.err) == (1, "container does not exist\n")
    assert json.loads(log.read_text())["msg"] == "container does not exist"


def test_log_format_json_without_log_file(pyrunc):
    r = pyrunc("state", "nosuch", global_args=("--log-format", "json"))
    assert r.rc == 1 and r.err.endswith("\n") and r.err.count("\n") == 1
    doc = json.loads(r.err)
    assert (list(doc), doc["level"], doc["msg"]) == (["level", "msg", "time"], "error", "container does not exist")


def test_log_format_text(pyrunc, make_bundle, cid, tmp_path):
    r = pyrunc("state", "nosuch", global_args=("--log-format", "text"))
    assert re.fullmatch(r'time="[^"]+" level=error msg="container does not exist"\n', r.err)
    run_d(pyrunc, make_bundle("sleep", "100"), cid)
    r = pyrunc("kill", cid, "FOO")  # quotes are escaped inside msg="..."
    assert re.fullmatch(r'time="[^"]+" level=error msg="unknown signal \\"FOO\\""\n', r.err), r.err
    log = tmp_path / "text.log"
    r = pyrunc("kill", cid, "FOO", global_args=("--log", str(log)))
    assert r.err == 'unknown signal "FOO"\n'
    assert re.fullmatch(r'time="[^"]+" level=error msg="unknown signal \\"FOO\\""\n', log.read_text())
    assert pyrunc("delete", "-f", cid).rc == 0


def test_bad_log_format(pyrunc):
    r = pyrunc("list", global_args=("--log-format", "bogus"))
    fails(r, "invalid log-format: bogus")


# --------------------------------------------------------------------------- the public API

def test_api_lifecycle(api, make_bundle, cid, tmp_path):
    from pyrunc.runtime.model import ContainerState
    b = make_bundle("sleep", "100")
    b.config["annotations"] = {"k": "v"}
    b.write()
    s = api.create(cid, b.path, pid_file=str(tmp_path / "p"))
    assert isinstance(s, ContainerState)
    assert (s.id, s.status, s.bundle, s.annotations) == (cid, "created", b.path, {"k": "v"})
    assert s.pid == int((tmp_path / "p").read_text()) and alive(s.pid)
    assert api.start(cid) is None
    s2 = api.state(cid)
    assert (s2.status, s2.pid, s2.created) == ("running", s.pid, s.created)
    assert [x.id for x in api.list()] == [cid]
    api.kill(cid, "TERM")  # ignored by sleep as PID 1
    api.kill(cid, 9)
    wait_for(lambda: api.state(cid).status == "stopped")
    assert api.state(cid).pid == 0
    api.delete(cid)
    assert api.list() == []
    assert not os.path.exists(os.path.join(api.root, cid))


def test_api_typed_errors(api, make_bundle, cid, tmp_path):
    from pyrunc import errors
    b = make_bundle("sleep", "100")
    with pytest.raises(errors.ContainerNotFound, match="^container does not exist$"):
        api.state(cid)
    with pytest.raises(errors.InvalidIDError, match="^invalid container ID format$"):
        api.state("a/b")
    with pytest.raises(errors.InvalidIDError, match="^container id cannot be empty$"):
        api.create("", b.path)
    with pytest.raises(errors.BundleError):
        api.create(cid, str(tmp_path / "nosuch"))
    bad = make_bundle("sleep", "1")
    bad.config["process"]["args"] = 5
    bad.write()
    with pytest.raises(errors.ConfigError, match="process.args"):
        api.create(cid, bad.path)
    nosuch = make_bundle("nosuch")
    with pytest.raises(errors.ContainerInitError, match="executable file not found"):
        api.create(cid, nosuch.path)
    assert api.list() == []

    api.create(cid, b.path)
    with pytest.raises(errors.ContainerExists, match="already exists"):
        api.create(cid, b.path)
    with pytest.raises(errors.SignalError, match='^unknown signal "FOO"$'):
        api.kill(cid, "FOO")
    api.start(cid)
    with pytest.raises(errors.InvalidStateError, match="^cannot start an already running container$"):
        api.start(cid)
    with pytest.raises(errors.InvalidStateError, match="that is not stopped: running$"):
        api.delete(cid)
    api.delete(cid, force=True)
    api.delete(cid, force=True)  # gone: not an error with force
    with pytest.raises(errors.ContainerNotFound):
        api.delete(cid)
    with pytest.raises(errors.ContainerNotFound):
        api.kill(cid, "KILL")
    for exc in (errors.ContainerNotFound, errors.InvalidStateError, errors.ConfigError):
        assert issubclass(exc, errors.PyruncError)


def test_api_run_in_process(api, make_bundle, cid):
    """run() inside a host program: returns the status, leaves the program's other children
    to it, and does not leave the program a child subreaper."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    other = subprocess.Popen(["sh", "-c", "exit 9"])
    b = make_bundle("sh", "-c", "sleep 0.3; exit 4")
    assert api.run(cid, b.path) == 4
    assert other.wait(timeout=10) == 9, "run() reaped a child that was not its container"
    flag = ctypes.c_int(-1)
    assert libc.prctl(37, ctypes.byref(flag), 0, 0, 0) == 0  # PR_GET_CHILD_SUBREAPER
    assert flag.value == 0, "run() left the calling process a child subreaper"
    assert api.list() == []
    assert api.run(cid, b.path, detach=True) == 0
    assert api.state(cid).status == "running"
