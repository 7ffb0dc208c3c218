"""`exec`: one more process in a live container, checked against the container's init.

Every test starts a real container (`run -d` of `sleep`) and execs into it: stdio and exit
status, the flags and `--process`, namespaces / cgroup / capabilities / seccomp shared with
the init, --detach + --pid-file, fds, and runc's error texts (exec errors exit 255, prefixed
"exec failed: ").
"""

import json
import os
import signal
import subprocess
import time

import pytest
from helpers import create, error_of, state, wait_for  # noqa: E402

from pyrunc.errors import PyruncError
from pyrunc.linux.capabilities import NUMBERS

ENGINE_CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))), "shared", "engine-configs")
DOCKER_PROCESS = os.path.join(ENGINE_CONFIGS, "docker--exec-it-tty.process.json")
NS_NAMES = ("user", "mnt", "pid", "net", "ipc", "uts", "cgroup", "time")
REMAP = [{"containerID": 0, "hostID": 231072, "size": 65536}]


@pytest.fixture
def start(pyrunc, cid):
    """start(bundle): `run -d` the container `cid` (its process: sleep) and return the init's
    host pid; it is force-deleted at teardown (the pyrunc fixture fails on live ones)."""
    started = []

    def factory(bundle):
        bundle.process["args"] = ["sleep", "1000"]
        bundle.write()
        r = pyrunc("run", "-d", "--bundle", bundle.path, cid)
        assert r.rc == 0, r.err
        started.append(cid)
        return state(pyrunc, cid)["pid"]

    yield factory
    for c in started:
        pyrunc("delete", "--force", c)


@pytest.fixture
def running(start, make_bundle):
    """A running container from the default config plus a cgroup namespace: (bundle, init pid)."""
    b = make_bundle()
    b.linux["namespaces"].append({"type": "cgroup"})  # runc's template has none
    return b, start(b)


def exec_fails(r, message):
    assert (r.rc, r.out) == (255, ""), (r.rc, r.out, r.err)
    assert error_of(r) == f"exec failed: {message}"


def status_field(text, name):
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{name} not in {text!r}")


def cap_mask(names):
    return f"{sum(1 << NUMBERS[n] for n in names):016x}"


def host_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return f.read()


def read_pid_file(path):
    with open(path) as f:
        text = f.read()
    assert text.isdigit(), repr(text)  # decimal, no newline (runc's, engines read it)
    return int(text)


def docker_process(args, **changes):
    with open(DOCKER_PROCESS) as f:
        doc = json.load(f)
    doc.update(terminal=False, args=list(args), **changes)
    return doc


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f)
    return str(path)


# ---------------------------------------------------------------- stdio and exit status

def test_output_and_exit_status(pyrunc, running, cid):
    r = pyrunc("exec", cid, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.rc, r.out, r.err) == (3, "out\n", "err\n")


def test_success_is_silent(pyrunc, running, cid):
    r = pyrunc("exec", cid, "true")
    assert (r.rc, r.out, r.err) == (0, "", "")


def test_killed_by_a_signal_is_128_plus_n(pyrunc, running, cid):
    assert pyrunc("exec", cid, "sh", "-c", "kill -9 $$").rc == 128 + 9
    assert pyrunc("exec", cid, "sh", "-c", "kill -TERM $$").rc == 128 + 15


def test_stdin_is_the_callers(pyrunc, running, cid):
    r = pyrunc("exec", cid, "sh", "-c", "tr a-z A-Z", input="hello\n")
    assert (r.rc, r.out) == (0, "HELLO\n"), r.err


def test_container_keeps_running_and_exec_sees_it(pyrunc, running, cid):
    r = pyrunc("exec", cid, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$")
    cmdline, pid = r.out.splitlines()
    assert cmdline == "sleep 1000 " and int(pid) > 1
    assert state(pyrunc, cid)["status"] == "running"


# ---------------------------------------------------------------- command line

def test_args_after_the_id_belong_to_the_command(pyrunc, running, cid):
    r = pyrunc("exec", cid, "sh", "-c", 'printf "<%s>" "$@"', "zero", "-u", "-e", "--cwd", "-h")
    assert (r.rc, r.out) == (0, "<-u><-e><--cwd><-h>"), r.err


def test_double_dash(pyrunc, running, cid):
    assert pyrunc("exec", cid, "--", "echo", "a").out == "a\n"
    assert pyrunc("exec", "--", cid, "echo", "b").out == "b\n"


def test_defaults_come_from_config_json(pyrunc, make_bundle, cid, start):
    b = make_bundle()
    b.process["env"] = ["PATH=/bin", "FROM_CONFIG=1"]
    b.process["cwd"] = "/etc"
    b.process["user"] = {"uid": 1000, "gid": 1000}
    b.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]
    start(b)
    r = pyrunc("exec", cid, "sh", "-c", "echo $FROM_CONFIG $HOME; pwd; id -u; id -g; ulimit -n; ulimit -Hn")
    assert r.out.split() == ["1", "/home/user", "/etc", "1000", "1000", "256", "512"], r.err


def test_env_cwd_user_and_groups_flags(pyrunc, running, cid):
    r = pyrunc("exec", "-e", "FOO=bar", "--env", "TERM=dumb", "--cwd", "/tmp", "-u", "1000:1000",
               "-g", "5", "--additional-gids", "65534", cid,
               "sh", "-c", "echo $FOO $TERM $HOME; pwd; id")
    assert r.out == "bar dumb /home/user\n/tmp\nuid=1000(user) gid=1000(user) groups=5(tty),65534(nogroup)\n", r.err


def test_user_without_gid_keeps_the_configs(pyrunc, running, cid):
    assert pyrunc("exec", "-u", "1000", cid, "sh", "-c", "id -u; id -g").out.split() == ["1000", "0"]


@pytest.mark.parametrize("flags, message", [
    (["-u", "abc"], 'parsing abc as int for uid failed: strconv.Atoi: parsing "abc": invalid syntax'),
    (["-u", "1:x"], 'parsing x as int for gid failed: strconv.Atoi: parsing "x": invalid syntax'),
    (["-g", "-1"], "additional-gids must be a positive number -1"),
    (["--cwd", "rel"], "Cwd must be an absolute path"),
    (["-d", "-t"], "cannot allocate tty if pyrunc will detach without setting console socket"),
    (["--console-socket", "/tmp/x.sock"], "cannot use console socket if pyrunc will not detach or allocate tty"),
    (["--cwd", "/etc/passwd"], "unable to start container process: chdir to cwd ('/etc/passwd') set in "
                               "config.json failed: not a directory"),
])
def test_bad_flags(pyrunc, running, cid, flags, message):
    exec_fails(pyrunc("exec", *flags, cid, "true"), message)


def test_help_and_arity(pyrunc):
    r = pyrunc("exec", "--help")
    assert r.rc == 0 and r.out.startswith("NAME:\n   pyrunc exec - execute new process inside the container")
    assert "--preserve-fds value" in r.out and "--ignore-paused" in r.out
    r = pyrunc("exec")
    assert r.rc == 1 and error_of(r) == 'pyrunc: "exec" requires a minimum of 1 argument(s)'


# ---------------------------------------------------------------- --process

def test_process_json_as_docker_sends_it(pyrunc, running, cid, tmp_path):
    doc = docker_process(["sh", "-c", "id; echo $HOSTNAME; grep -E '^Cap(Eff|Bnd):' /proc/self/status"])
    r = pyrunc("exec", "--process", write_json(tmp_path / "p.json", doc), "--detach=false", cid)
    assert r.rc == 0, r.err
    lines = r.out.splitlines()
    assert lines[:2] == ["uid=0(root) gid=0(root) groups=0(root)", "f81089704711"]
    mask = cap_mask(doc["capabilities"]["effective"])
    assert lines[2:] == [f"CapEff:\t{mask}", f"CapBnd:\t{mask}"]


def test_process_json_ignores_positional_args_and_takes_caps_from_the_container(pyrunc, running, cid, tmp_path):
    doc = {"args": ["sh", "-c", "grep CapEff /proc/self/status"], "cwd": "/", "user": {"uid": 0, "gid": 0},
           "env": ["PATH=/bin"]}
    r = pyrunc("exec", "-p", write_json(tmp_path / "p.json", doc), cid, "echo", "ignored")
    # no capabilities in the document: the container's (runc's newInitConfig)
    assert r.out == f"CapEff:\t{cap_mask(['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'])}\n", r.err


def test_process_json_errors(pyrunc, running, cid, tmp_path):
    exec_fails(pyrunc("exec", "-p", str(tmp_path / "nope.json"), cid),
               f"open {tmp_path}/nope.json: no such file or directory")
    path = write_json(tmp_path / "p.json", {"args": ["true"], "user": {"uid": 0, "gid": 0}})
    exec_fails(pyrunc("exec", "-p", path, cid), f'{path}: "cwd" is required')
    write_json(path, {"args": ["true"], "cwd": "tmp", "user": {"uid": 0, "gid": 0}})
    exec_fails(pyrunc("exec", "-p", path, cid), "Cwd must be an absolute path")
    write_json(path, {"cwd": "/", "user": {"uid": 0, "gid": 0}})
    exec_fails(pyrunc("exec", "-p", path, cid), "args must not be empty")
    with open(path, "w") as f:
        f.write("{not json")
    r = pyrunc("exec", "-p", path, cid)
    assert r.rc == 255 and error_of(r).startswith(f"exec failed: {path}: invalid JSON")


# ---------------------------------------------------------------- what it shares with the init

def _ns_inside(pyrunc, cid, *flags):
    script = "; ".join(f"readlink /proc/self/ns/{n}" for n in NS_NAMES)
    r = pyrunc("exec", *flags, cid, "sh", "-c", script)
    assert r.rc == 0, r.err
    return dict(zip(NS_NAMES, r.out.split(), strict=False))


def test_joins_every_namespace_of_the_init(pyrunc, running, cid):
    _, init = running
    inside = _ns_inside(pyrunc, cid)
    for name in NS_NAMES:
        assert inside[name] == os.readlink(f"/proc/{init}/ns/{name}"), name
    # and the container has namespaces of its own, so joining them is what made them equal
    for name in ("mnt", "pid", "net", "ipc", "uts", "cgroup"):
        assert inside[name] != os.readlink(f"/proc/self/ns/{name}"), name


def test_joins_a_user_namespace_first(pyrunc, make_bundle, cid, start):
    b = make_bundle()
    b.linux["namespaces"].append({"type": "user"})
    b.linux["uidMappings"] = REMAP
    b.linux["gidMappings"] = REMAP
    init = start(b)
    inside = _ns_inside(pyrunc, cid)
    for name in NS_NAMES:
        assert inside[name] == os.readlink(f"/proc/{init}/ns/{name}"), name
    r = pyrunc("exec", "-d", "--pid-file", os.path.join(b.path, "p.pid"), cid, "sleep", "100")
    assert r.rc == 0, r.err
    pid = read_pid_file(os.path.join(b.path, "p.pid"))
    assert status_field(host_status(pid), "Uid").split() == ["231072"] * 4  # root inside, remapped
    assert pyrunc("exec", cid, "id", "-u").out == "0\n"


def test_joins_a_time_namespace(pyrunc, make_bundle, cid, start):
    b = make_bundle()
    b.linux["namespaces"].append({"type": "time"})
    b.linux["timeOffsets"] = {"boottime": {"secs": 86400, "nanosecs": 0}}
    init = start(b)
    r = pyrunc("exec", cid, "sh", "-c", "cut -d. -f1 /proc/uptime; readlink /proc/self/ns/time")
    uptime, ns = r.out.split()
    with open("/proc/uptime") as f:
        assert int(uptime) > 86400 + float(f.read().split()[0]) - 5, r.err
    assert ns == os.readlink(f"/proc/{init}/ns/time") != os.readlink("/proc/self/ns/time")


def test_container_without_a_mount_namespace_is_chrooted(pyrunc, make_bundle, cid, start):
    b = make_bundle()
    b.linux["namespaces"] = [{"type": "pid"}]
    del b.config["hostname"]
    b.config["mounts"] = []
    # without a mount namespace these are refused (runc's "unable to restrict sys entries")
    b.linux.pop("maskedPaths", None)
    b.linux.pop("readonlyPaths", None)
    start(b)
    r = pyrunc("exec", cid, "sh", "-c", "ls /bin/busybox; grep ^user: /etc/passwd; ls -a /proc")
    assert r.out.split() == ["/bin/busybox", "user:x:1000:1000:user:/home/user:/bin/sh", ".", ".."], r.err


def test_same_cgroup_as_the_init(pyrunc, running, cid, tmp_path):
    _, init = running
    pid_file = tmp_path / "exec.pid"
    r = pyrunc("exec", "--detach", "--pid-file", str(pid_file), cid, "sleep", "100")
    assert r.rc == 0, r.err
    pid = read_pid_file(pid_file)
    with open(f"/proc/{pid}/cgroup") as mine, open(f"/proc/{init}/cgroup") as inits:
        assert mine.read() == inits.read()
    assert pid in json.loads(pyrunc("ps", "--format", "json", cid).out)


def test_capabilities_come_from_the_config_and_cap_adds(pyrunc, make_bundle, cid, start):
    b = make_bundle()
    nbs = ["CAP_NET_BIND_SERVICE"]
    b.process["capabilities"] = {"bounding": nbs, "effective": nbs, "permitted": nbs}
    start(b)
    r = pyrunc("exec", cid, "grep", "-E", "^Cap(Eff|Bnd):", "/proc/self/status")
    assert r.out == f"CapEff:\t{cap_mask(nbs)}\nCapBnd:\t{cap_mask(nbs)}\n", r.err
    r = pyrunc("exec", "--cap", "CAP_NET_RAW", "-c", "CAP_CHOWN", cid, "grep", "-E", "^Cap(Eff|Bnd):",
               "/proc/self/status")
    mask = cap_mask(nbs + ["CAP_NET_RAW", "CAP_CHOWN"])
    assert (r.out, r.err) == (f"CapEff:\t{mask}\nCapBnd:\t{mask}\n", "")


def test_seccomp_of_the_container_applies(pyrunc, make_bundle, cid, start):
    b = make_bundle()
    b.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}]}
    start(b)
    r = pyrunc("exec", cid, "sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/d")
    assert r.rc == 1 and r.out == "Seccomp:\t2\n"
    assert "No space left on device" in r.err
    # noNewPrivileges off (a process.json without it, as docker's): loaded before the drop
    r = pyrunc("exec", "-p", write_json(os.path.join(b.path, "p.json"), docker_process(
        ["sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"])), cid)
    assert r.out == "NoNewPrivs:\t0\nSeccomp:\t2\n", r.err


SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101


def test_seccomp_notify_listener_of_the_exec(pyrunc, make_bundle, cid, start, tmp_path):
    """The exec'd process gets its own filter; its listener fd reaches listenerPath too and
    answers the process's mkdir with EACCES."""
    import array
    import fcntl
    import socket
    import struct
    import threading
    path = str(tmp_path / "listener.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(2)
    got = []

    def receive():
        conn, _ = server.accept()
        fds = array.array("i")
        msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(fds.itemsize))
        conn.close()
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data)
        got.append(json.loads(msg))
        return fds[0]

    def listener():
        init_fd = receive()  # the init's, at run
        fd = receive()       # the exec'd process's
        req = bytearray(80)
        fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, req)
        notif_id, pid = struct.unpack_from("=QI", req)
        fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, bytearray(struct.pack("=QqiI", notif_id, 0, -13, 0)))
        os.close(fd)
        os.close(init_fd)

    t = threading.Thread(target=listener, daemon=True)
    t.start()
    try:
        b = make_bundle()
        b.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
        b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path,
                              "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}
        start(b)
        r = pyrunc("exec", cid, "sh", "-c", "mkdir /tmp/x; echo rc=$?", timeout=20)
        t.join(10)
    finally:
        server.close()
    assert "Permission denied" in r.err and r.out == "rc=1\n", (r.out, r.err)
    assert len(got) == 2 and all(m["fds"] == ["seccompFd"] and m["state"]["id"] == cid for m in got)


def test_no_new_privs_flag(pyrunc, make_bundle, cid, start):
    b = make_bundle()
    b.process["noNewPrivileges"] = False
    start(b)
    assert pyrunc("exec", cid, "grep", "NoNewPrivs", "/proc/self/status").out == "NoNewPrivs:\t0\n"
    assert pyrunc("exec", "--no-new-privs", cid, "grep", "NoNewPrivs", "/proc/self/status").out == \
        "NoNewPrivs:\t1\n"


# ---------------------------------------------------------------- --detach, --pid-file, signals

def test_detach_writes_the_pid_file_and_returns(pyrunc, running, cid, tmp_path):
    _, init = running
    pid_file = tmp_path / "exec.pid"
    t0 = time.monotonic()
    r = pyrunc("exec", "-d", "--pid-file", str(pid_file), cid, "sleep", "100")
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert time.monotonic() - t0 < 5
    pid = read_pid_file(pid_file)
    status = host_status(pid)
    assert status_field(status, "Name") == "sleep" and status_field(status, "State")[0] in "SR"
    nspid = status_field(status, "NSpid").split()
    assert len(nspid) == 2 and nspid[0] == str(pid) and int(nspid[1]) > 1  # in the container's pid ns
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{init}/ns/pid")
    assert [n for n in os.listdir(tmp_path) if "exec.pid" in n] == ["exec.pid"]  # no temp file left


def test_relative_pid_file_is_relative_to_the_cwd(pyrunc, running, cid, tmp_path):
    r = pyrunc("exec", "-d", "--pid-file", "rel.pid", cid, "sleep", "100", cwd=str(tmp_path))
    assert r.rc == 0, r.err
    read_pid_file(tmp_path / "rel.pid")


def test_signals_are_forwarded_to_the_process(pyrunc, running, cid, tmp_path):
    out = tmp_path / "out"
    script = 'trap "echo got TERM; exit 7" TERM; echo ready; while :; do sleep 0.05; done'
    with open(out, "w") as f:
        p = subprocess.Popen([*pyrunc.argv, "--root", pyrunc.root, "exec", cid, "sh", "-c", script],
                             stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: out.read_text() == "ready\n", what="the exec'd shell")
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 7
        assert out.read_text() == "ready\ngot TERM\n"
    finally:
        p.kill()
        p.wait()
        p.stderr.close()


# ---------------------------------------------------------------- container states, runc's errors

def test_unknown_container(pyrunc):
    exec_fails(pyrunc("exec", "nosuch", "true"), "container does not exist")
    exec_fails(pyrunc("exec", "a/b", "true"), "invalid container ID format")


def test_stopped_container(pyrunc, running, cid):
    assert pyrunc("kill", cid, "KILL").rc == 0
    wait_for(lambda: state(pyrunc, cid)["status"] == "stopped", what="stopped")
    exec_fails(pyrunc("exec", cid, "true"), "cannot exec in a stopped container")


def test_paused_container(pyrunc, running, cid):
    assert pyrunc("pause", cid).rc == 0
    try:
        exec_fails(pyrunc("exec", cid, "true"),
                   "cannot exec in a paused container (use --ignore-paused to override)")
    finally:
        assert pyrunc("resume", cid).rc == 0
    assert pyrunc("exec", "--ignore-paused", cid, "true").rc == 0  # running again: allowed anyway


def test_created_container(pyrunc, make_bundle, cid):
    b = make_bundle("sleep", "1000")
    create(pyrunc, b, cid)
    try:
        r = pyrunc("exec", cid, "sh", "-c", "echo in-created; cat /proc/1/comm")
        assert (r.rc, r.out) == (0, "in-created\npyrunc:init\n"), r.err
        assert state(pyrunc, cid)["status"] == "created"
    finally:
        pyrunc("delete", "--force", cid)


def test_no_args(pyrunc, running, cid):
    exec_fails(pyrunc("exec", cid), "process args cannot be empty")


@pytest.mark.parametrize("name, message", [
    ("nosuch", 'exec: "nosuch": executable file not found in $PATH'),
    ("/nosuch", 'exec: "/nosuch": stat /nosuch: no such file or directory'),
    ("/etc/passwd", 'exec: "/etc/passwd": permission denied'),
])
def test_executable_not_found(pyrunc, running, cid, name, message):
    exec_fails(pyrunc("exec", cid, name), f"unable to start container process: {message}")
    assert state(pyrunc, cid)["status"] == "running"


def test_json_log_has_the_message_engines_match(pyrunc, running, cid, tmp_path):
    log = tmp_path / "log.json"
    r = pyrunc("exec", "-d", cid, "nosuch", global_args=("--log", str(log), "--log-format", "json"))
    assert r.rc == 255
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error"
    assert "executable file not found" in entry["msg"]  # docker/podman turn this into 127


# ---------------------------------------------------------------- file descriptors

def _exec_with_fds(pyrunc, cid, flags, script, tmp_path):
    """exec with files on fds 3, 4 and 5 of pyrunc (as an engine's caller leaves them)."""
    for i in (3, 4, 5):
        (tmp_path / f"f{i}").write_text(f"content{i}\n")
    cmd = [*pyrunc.argv, "--root", pyrunc.root, "exec", *flags, cid, "sh", "-c", script]
    return subprocess.run(["bash", "-c", f'"$@" 3<{tmp_path}/f3 4<{tmp_path}/f4 5<{tmp_path}/f5', "_", *cmd],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)


def test_preserve_fds(pyrunc, running, cid, tmp_path):
    r = _exec_with_fds(pyrunc, cid, ["--preserve-fds", "2"], "cat <&3; cat <&4; ls /proc/self/fd", tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[:2] == ["content3", "content4"]
    assert sorted(lines[2:], key=int) == ["0", "1", "2", "3", "4", "5"]  # 5: ls's own, not ours


def test_no_fd_of_the_caller_or_runtime_leaks_in(pyrunc, running, cid, tmp_path):
    r = _exec_with_fds(pyrunc, cid, [], "ls /proc/self/fd", tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split(), key=int) == ["0", "1", "2", "3"]  # 3: ls's directory fd


def test_preserve_fds_must_exist(pyrunc, running, cid):
    exec_fails(pyrunc("exec", "--preserve-fds", "1", cid, "true"),
               "unable to stat preserved-fd 0 (of 1): stat /proc/self/fd/3: no such file or directory")


# ---------------------------------------------------------------- the API

def test_api_exec(running, cid, pyrunc, tmp_path):
    from pyrunc import Runtime
    rt = Runtime(pyrunc.root)
    out = tmp_path / "out"
    with open(out, "w") as f:
        saved = os.dup(1)
        os.dup2(f.fileno(), 1)
        try:
            rc = rt.exec(cid, ["sh", "-c", "echo api; exit 4"], env=["X=1"])
        finally:
            os.dup2(saved, 1)
            os.close(saved)
    assert rc == 4 and out.read_text() == "api\n"
    assert rt.exec(cid, process={"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                                 "env": ["PATH=/bin"]}) == 0


def test_api_exec_stops_the_attach_lock_warmer(running, cid, pyrunc):
    """exec takes the warmer the CLI starts (runtime/attachlock.py) and has stopped its thread
    once it returns, whether the exec worked or failed."""
    import _thread

    from pyrunc import Runtime
    threads = _thread._count()
    rt = Runtime(pyrunc.root, warm_cgroups=True)  # a thread if our own cgroup can be written
    assert rt.exec(cid, ["true"], detach=True) == 0
    assert rt.take_warmer() is None and _thread._count() == threads
    rt = Runtime(pyrunc.root, warm_cgroups=True)
    with pytest.raises(PyruncError):
        rt.exec(cid, ["true"], cwd="relative", detach=True)
    assert rt.take_warmer() is None and _thread._count() == threads


# ---------------------------------------------------------------- parsing (no container)

def test_flags_end_at_the_container_id():
    from pyrunc.cli import parser
    from pyrunc.cli.commands import COMMANDS
    cmd = COMMANDS["exec"]
    opts, pos, _ = parser.parse(cmd.flags, ["-e", "A=1", "--cwd=/x", "-c", "CAP_KILL", "id", "sh", "-c", "-e"],
                                in_order=cmd.in_order)
    assert (opts["env"], opts["cwd"], opts["cap"], pos) == (["A=1"], "/x", ["CAP_KILL"], ["id", "sh", "-c", "-e"])
    assert parser.leading_flags(cmd.flags, ["-u", "0", "-h", "id", "--help"]) == ["-u", "-h"]
    assert parser.leading_flags(cmd.flags, ["-u", "-h", "id"]) == ["-u"]  # -h is the value of -u
    assert parser.leading_flags(cmd.flags, ["-d", "id", "ls", "-h"]) == ["-d"]


def test_exec_hands_stdio_to_the_user(pyrunc, running, cid):
    """runc's fixStdioPermissions runs for exec too: a uid-1000 process reopens its stdout."""
    script = ": >> /dev/stdout && echo opened; stat -L -c %u /proc/self/fd/1"
    r = pyrunc("exec", "--user", "1000:1000", cid, "sh", "-c", script)
    assert (r.rc, r.out) == (0, "opened\n1000\n"), r.err


def test_a_host_terminal_as_stdio_is_not_given_to_the_user(pyrunc, make_bundle, cid, no_leaks):
    """runc would fchown it; pyrunc never hands a host device (the terminal `run` was started
    from) to a container user. Pipes and files are handed over (test_differential)."""
    import pty
    b = make_bundle("sh", "-c", "stat -L -c %u /proc/self/fd/1 > /proc/self/fd/2")
    b.process["user"] = {"uid": 1000, "gid": 1000}
    b.write()
    master, slave = pty.openpty()
    try:
        before = os.fstat(slave)
        p = subprocess.run([*pyrunc.argv, "--root", pyrunc.root, "run", "--bundle", b.path, cid],
                           stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE, timeout=30)
        assert p.returncode == 0, p.stderr
        assert os.fstat(slave).st_uid == before.st_uid == 0
    finally:
        os.close(master)
        os.close(slave)
