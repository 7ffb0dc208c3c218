"""Issue 11: what pyrunc says, next to runc (Debian's 1.1.5 where it has the behaviour).

Warnings only where runc warns; error texts engines classify (exec failures, EPERM, the seccomp
agent); --debug in both log formats; an empty HOME; run --keep.
"""

import json
import os
import re
import socket

import pytest
from helpers import error_of, state
from test_differential import message

# runc's own default config (`runc spec`): ambient caps that are not inheritable
RUNC_SPEC_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
DEBUG_TEXT = re.compile(r'time="[^"]+" level=debug msg="(.*?)"( \w+=\S+)*')  # runc adds func=...


@pytest.fixture(scope="module", autouse=True)
def searchable_rootfs(rootfs):
    os.chmod(rootfs, 0o755)  # a non-root user must reach /bin (as in a real image)


def _run_spec_caps(b):
    b.process["capabilities"] = {k: list(RUNC_SPEC_CAPS)
                                 for k in ("bounding", "effective", "permitted", "ambient")}


# ---- 1. warnings: only where runc warns ------------------------------------------------------


def untimed(err):
    """A log's lines without their time= field (runc's and ours differ only there)."""
    return re.sub(r'time="[^"]+" ', "", err)

def test_runc_spec_ambient_caps_are_silent(runc, pyrunc, make_bundle, cid):
    """`runc spec`'s config lists ambient caps that are not inheritable: runc says nothing."""
    b = make_bundle("sh", "-c", "grep CapAmb /proc/self/status")
    _run_spec_caps(b)
    b.write()
    a = runc("run", "--bundle", b.path, cid)
    p = pyrunc("run", "--bundle", b.path, cid)
    assert (p.rc, p.out, p.err) == (a.rc, a.out, a.err) == (0, "CapAmb:\t0000000000000000\n", "")


def test_exec_with_runc_spec_caps_is_silent(pyrunc, make_bundle, cid):
    b = make_bundle("sleep", "30")
    _run_spec_caps(b)
    b.write()
    assert pyrunc("run", "-d", "--bundle", b.path, cid).err == ""
    r = pyrunc("exec", cid, "true")
    assert pyrunc("delete", "--force", cid).rc == 0
    assert (r.rc, r.err) == (0, "")


def test_unknown_capabilities_one_warning_as_runc(runc, pyrunc, make_bundle, cid):
    b = make_bundle("true")
    for kind in ("bounding", "effective", "permitted"):
        b.process["capabilities"][kind] += ["CAP_NO_SUCH_ONE", "CAP_ANOTHER_ONE"]
    b.write()
    a = runc("run", "--bundle", b.path, cid)
    p = pyrunc("run", "--bundle", b.path, cid)
    assert a.rc == p.rc == 0
    assert untimed(p.err) == untimed(a.err) == (
        'level=warning msg="ignoring unknown or unavailable capabilities: '
        '[CAP_ANOTHER_ONE CAP_NO_SUCH_ONE]"\n')


# ---- 2. errors engines classify by their text --------------------------------------------------

@pytest.fixture
def odd_files(rootfs):
    """In the shared rootfs: a script whose interpreter does not exist, a file without x bits,
    a directory, and a binary in a directory only root may enter."""
    made = {
        "/wording-badinterp": ("#!/nonexistent/interpreter\necho hi\n", 0o755),
        "/wording-noexec": ("echo hi\n", 0o644),
    }
    for path, (text, mode) in made.items():
        with open(rootfs + path, "w") as f:
            f.write(text)
        os.chmod(rootfs + path, mode)
    os.makedirs(rootfs + "/wording-dir", exist_ok=True)
    os.makedirs(rootfs + "/wording-locked", exist_ok=True)
    os.chmod(rootfs + "/wording-locked", 0o700)
    os.link(rootfs + "/bin/busybox", rootfs + "/wording-locked/true") \
        if not os.path.exists(rootfs + "/wording-locked/true") else None
    return rootfs


EXEC_FAILURES = [
    ("missing", ["/run.sh"], None),
    ("not-in-path", ["no-such-binary"], None),
    ("not-executable", ["/wording-noexec"], None),
    ("directory", ["/wording-dir"], None),
    ("bad-interpreter", ["/wording-badinterp"], None),
    ("eacces", ["/wording-locked/true"], {"uid": 1000, "gid": 1000}),
]


@pytest.mark.parametrize("name, args, user", EXEC_FAILURES, ids=[c[0] for c in EXEC_FAILURES])
def test_run_of_an_unrunnable_program_as_runc(runc, pyrunc, make_bundle, cid, odd_files,
                                              name, args, user):
    b = make_bundle(*args)
    if user:
        b.process["user"] = user
    b.write()
    a = runc("run", "--bundle", b.path, cid)
    p = pyrunc("run", "--bundle", b.path, cid)
    assert (p.rc, p.out) == (a.rc, a.out)
    if name == "bad-interpreter":  # execve itself failed: the bare line on the process's stderr
        assert p.err == a.err == "exec /wording-badinterp: no such file or directory\n"
    else:
        assert message(p) == message(a)


@pytest.mark.parametrize("name, args, user", EXEC_FAILURES, ids=[c[0] for c in EXEC_FAILURES])
def test_exec_of_an_unrunnable_program_as_runc(runc, pyrunc, make_bundle, cid, odd_files,
                                               name, args, user):
    b = make_bundle("sleep", "30")
    b.write()
    extra = ["--user", f"{user['uid']}:{user['gid']}"] if user else []
    results = []
    for rt in (runc, pyrunc):
        assert rt("run", "-d", "--bundle", b.path, cid).rc == 0
        results.append(rt("exec", *extra, cid, *args))
        assert rt("delete", "--force", cid).rc == 0
    a, p = results
    assert (p.rc, p.out) == (a.rc, a.out)
    if name == "bad-interpreter" and not a.err.startswith("time="):
        assert p.err == a.err == "exec /wording-badinterp: no such file or directory\n"
    else:  # (on some kernels execve's failure is seen before the process is handed over)
        assert message(p) == message(a)


def _agent_config(b, path):
    b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path,
                          "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
    b.write()


@pytest.mark.parametrize("agent", ["missing", "refusing"])
def test_seccomp_agent_unreachable_as_runc(runc, pyrunc, make_bundle, cid, tmp_path, agent,
                                           no_leaks):
    path = str(tmp_path / "agent.sock")
    if agent == "refusing":  # bound, never listening: ECONNREFUSED
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
    b = make_bundle("true")
    _agent_config(b, path)
    a = runc("run", "--bundle", b.path, cid)
    p = pyrunc("run", "--bundle", b.path, cid)
    assert p.rc == a.rc == 1
    assert message(p) == message(a)
    reason = "no such file or directory" if agent == "missing" else "connection refused"
    assert message(p) == ("RUNTIME run failed: unable to start container process: failed to "
                          f"connect with seccomp agent specified in the seccomp profile: dial unix "
                          f"{path}: connect: {reason}")
    assert pyrunc.ids() == []


def test_eperm_reads_operation_not_permitted(pyrunc, make_bundle, cid, no_leaks):
    """A user namespace without a network namespace of its own may not mount sysfs (EPERM):
    podman maps "operation not permitted" to "OCI permission denied" (exit 126)."""
    b = make_bundle("true")
    b.linux["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "user")]
    b.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    b.write()
    r = pyrunc("run", "--bundle", b.path, cid)
    assert r.rc == 1
    assert error_of(r).endswith(": operation not permitted"), r.err


# ---- 3. --debug ------------------------------------------------------------------------------

def test_debug_is_silent_without_the_flag(pyrunc, make_bundle, cid, tmp_path):
    b = make_bundle("true")
    log = tmp_path / "log"
    r = pyrunc("run", "--bundle", b.path, cid, global_args=("--log", str(log)))
    assert (r.rc, r.err, log.read_text()) == (0, "", "")


def test_debug_text_logs_every_step_like_runc(runc, pyrunc, make_bundle, cid):
    b = make_bundle("true")
    a = runc("run", "--bundle", b.path, cid, global_args=("--debug",))
    p = pyrunc("run", "--bundle", b.path, cid, global_args=("--debug",))
    assert a.rc == p.rc == 0
    for r in (a, p):
        lines = r.err.splitlines()
        assert lines and all(DEBUG_TEXT.fullmatch(line) for line in lines), r.err
    steps = [DEBUG_TEXT.fullmatch(line)[1] for line in p.err.splitlines()]
    text = "\n".join(steps)
    for expected in ("nsexec container setup", "child process in init()",  # runc's debug.bats
                     "init: closing the pipe to signal completion",
                     "create " + cid + ": forking stage1", "stage1: forked the init",
                     "init: rootfs prepared", "init: process /bin/true prepared",
                     "start: released the start barrier of " + cid,
                     "run: the process of " + cid + " exited with status 0",
                     "delete " + cid + ": cgroup and state removed"):
        assert expected in text, text


def test_debug_json_to_a_log_file(pyrunc, make_bundle, cid, tmp_path):
    b = make_bundle("sleep", "30")
    log = tmp_path / "log.json"
    g = ("--debug", "--log-format", "json", "--log", str(log))
    assert pyrunc("create", "--bundle", b.path, cid, global_args=g).err == ""
    assert pyrunc("start", cid, global_args=g).rc == 0
    assert pyrunc("exec", cid, "true", global_args=g).rc == 0
    assert pyrunc("kill", cid, "KILL", global_args=g).rc == 0
    assert pyrunc("delete", "--force", cid, global_args=g).rc == 0
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert entries and all(sorted(e) == ["level", "msg", "time"] and e["level"] == "debug"
                           for e in entries), entries
    msgs = "\n".join(e["msg"] for e in entries)
    for expected in ("create " + cid + ": init ", "exec stage1: joined",
                     "exec: process /bin/true prepared", "exec in " + cid + ": process ",
                     "kill " + cid + ": signal 9", "delete " + cid + ": killing"):
        assert expected in msgs, msgs


# ---- 5. HOME ---------------------------------------------------------------------------------

@pytest.mark.parametrize("env", [["HOME="], ["HOME=", "A=1"], ["A=1"]], ids=["empty", "empty-then", "unset"])
def test_empty_home_is_replaced_from_passwd(runc, pyrunc, make_bundle, cid, env):
    b = make_bundle("sh", "-c", 'echo "[$HOME]"; env | grep -c "^HOME="')
    b.process["env"] = ["PATH=/bin"] + env
    b.process["user"] = {"uid": 1000, "gid": 1000}
    b.write()
    a = runc("run", "--bundle", b.path, cid)
    p = pyrunc("run", "--bundle", b.path, cid)
    assert (p.rc, p.out, p.err) == (a.rc, a.out, a.err) == (0, "[/home/user]\n1\n", "")


# ---- 6. run --keep ---------------------------------------------------------------------------

def test_run_keep_leaves_the_stopped_container(pyrunc, make_bundle, cid, no_leaks):
    b = make_bundle("sh", "-c", "exit 7")
    r = pyrunc("run", "--keep", "--bundle", b.path, cid)
    assert (r.rc, r.err) == (7, "")
    s = state(pyrunc, cid)
    assert (s["status"], s["pid"]) == ("stopped", 0)
    with open(os.path.join(pyrunc.root, cid, "state.json")) as f:
        cgroup = json.load(f)["cgroup"]
    paths = [p for p in (cgroup.get("paths") or {}).values() if p]
    assert paths and all(os.path.isdir(p) for p in paths), cgroup  # kept for inspection
    assert pyrunc("delete", cid).rc == 0
    assert pyrunc.ids() == [] and not any(os.path.isdir(p) for p in paths)


def test_run_without_keep_deletes(pyrunc, make_bundle, cid):
    b = make_bundle("true")
    assert pyrunc("run", "--bundle", b.path, cid).rc == 0
    assert pyrunc.ids() == []


def test_run_keep_in_help(pyrunc):
    r = pyrunc("run", "--help")
    assert re.search(r"--keep\s+do not delete the container after it exits", r.out), r.out


def test_kernel_memory_warning_as_runc(runc, pyrunc, make_bundle, cid):
    b = make_bundle("true")
    b.linux["resources"]["memory"] = {"kernel": 1 << 24, "kernelTCP": 1 << 24}
    b.write()
    a = runc("run", "--bundle", b.path, cid)
    p = pyrunc("run", "--bundle", b.path, cid)
    assert a.rc == p.rc == 0
    assert untimed(p.err) == untimed(a.err) == (
        'level=warning msg="Kernel memory settings are ignored and will be removed"\n')


def test_debug_lines_of_the_init_go_to_the_host_log_only(pyrunc, make_bundle, cid, rootfs):
    """The init's (and its hooks') debug lines cross the sync channel: the init never opens
    --log by its path, which after pivot_root would name a file of the container."""
    log = f"/tmp/pyrunc-debug-{cid}.log"  # /tmp exists on the host and in the rootfs
    b = make_bundle("true")
    b.config["root"]["readonly"] = False
    b.config["hooks"] = {"createContainer": [{"path": "/bin/true"}],
                         "startContainer": [{"path": "/bin/true"}]}
    b.write()
    try:
        r = pyrunc("run", "--bundle", b.path, cid, global_args=("--debug", "--log", log))
        assert (r.rc, r.err) == (0, "")
        with open(log) as f:
            text = f.read()
        assert "running createContainer hook #0: /bin/true" in text
        assert not os.path.exists(rootfs + log), "the init wrote the log inside the container"
    finally:
        for path in (log, rootfs + log):
            if os.path.exists(path):
                os.unlink(path)
