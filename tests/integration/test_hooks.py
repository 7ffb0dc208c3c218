"""config.json `hooks` with real containers: when each list runs, in which namespaces, with
which state on stdin, args/env/timeout, and what a failure does.

Each hook is /bin/sh (present on the host and in the busybox rootfs) appending one line to a
log: `NAME <mnt ns> <pid ns> <state JSON>`. Hooks that run before the pivot or on the host write
to the host path of the log directory; startContainer, after the pivot, to its bind mount
/hooklog inside the container.
"""

import json
import os
import re

import pytest
from helpers import error_of, state, wait_for

LOG_IN_CONTAINER = "/hooklog/log"


def _hook(name, log, *, env=None, extra="", timeout=None):
    script = (f'{extra}echo "{name} $(readlink /proc/self/ns/mnt) $(readlink /proc/self/ns/pid) '
              f'$(cat)" >> {log}')
    hook = {"path": "/bin/sh", "args": ["sh", "-c", script]}
    if env is not None:
        hook["env"] = env
    if timeout is not None:
        hook["timeout"] = timeout
    return hook


@pytest.fixture
def hooked(make_bundle, tmp_path):
    """(bundle, host log path): a bundle whose log dir is bind-mounted at /hooklog."""
    logdir = tmp_path / "hooklog"
    logdir.mkdir()
    os.chmod(logdir, 0o777)
    b = make_bundle("sleep", "30")
    b.config["mounts"].append({"destination": "/hooklog", "type": "bind",
                               "source": str(logdir), "options": ["rbind", "rw"]})
    return b, str(logdir / "log")


def _entries(log):
    try:
        with open(log) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        name, mnt, pid, payload = line.split(" ", 3)
        out.append((name, mnt, pid, json.loads(payload) if payload.startswith("{") else payload))
    return out


def _all_hooks(log):
    return {
        "prestart": [_hook("prestart", log)],
        "createRuntime": [_hook("createRuntime", log)],
        "createContainer": [_hook("createContainer", log)],
        "startContainer": [_hook("startContainer", LOG_IN_CONTAINER)],
        "poststart": [_hook("poststart", log)],
        "poststop": [_hook("poststop", log)],
    }


def test_every_hook_runs_at_its_moment_in_its_namespaces(pyrunc, hooked, cid, no_leaks):
    b, log = hooked
    b.config["hooks"] = _all_hooks(log)
    b.config["annotations"] = {"k": "v"}
    b.write()
    host_mnt = os.readlink("/proc/self/ns/mnt")
    host_pid = os.readlink("/proc/self/ns/pid")

    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc == 0, r.err
    init = state(pyrunc, cid)["pid"]
    init_mnt = os.readlink(f"/proc/{init}/ns/mnt")
    init_pidns = os.readlink(f"/proc/{init}/ns/pid")
    assert [e[0] for e in _entries(log)] == ["prestart", "createRuntime", "createContainer"]

    assert pyrunc("start", cid).rc == 0
    assert [e[0] for e in _entries(log)][3:] == ["startContainer", "poststart"]
    assert state(pyrunc, cid)["status"] == "running"

    assert pyrunc("delete", "--force", cid).rc == 0
    entries = _entries(log)
    assert [e[0] for e in entries] == ["prestart", "createRuntime", "createContainer",
                                       "startContainer", "poststart", "poststop"]
    where = {name: (mnt, pid) for name, mnt, pid, _ in entries}
    for name in ("prestart", "createRuntime", "poststart", "poststop"):
        assert where[name] == (host_mnt, host_pid), name
    for name in ("createContainer", "startContainer"):
        assert where[name] == (init_mnt, init_pidns), name

    states = {name: s for name, _, _, s in entries}
    for name, s in states.items():
        assert s["id"] == cid and s["bundle"] == b.path, name
        assert s["annotations"] == {"k": "v"}, name
        assert s["ociVersion"].startswith("1."), name
    for name in ("prestart", "createRuntime", "createContainer"):
        assert (states[name]["status"], states[name]["pid"]) == ("creating", init), name
    assert (states["startContainer"]["status"], states["startContainer"]["pid"]) == ("created", init)
    assert (states["poststart"]["status"], states["poststart"]["pid"]) == ("running", init)
    assert states["poststop"]["status"] == "stopped"


def test_run_runs_every_hook(pyrunc, hooked, cid):
    b, log = hooked
    b.process["args"] = ["true"]
    b.config["hooks"] = _all_hooks(log)
    b.write()
    r = pyrunc("run", "--bundle", b.path, cid)
    assert r.rc == 0, r.err
    assert [e[0] for e in _entries(log)] == ["prestart", "createRuntime", "createContainer",
                                             "startContainer", "poststart", "poststop"]


def test_args_env_and_argv0(pyrunc, make_bundle, tmp_path, cid):
    log = tmp_path / "log"
    b = make_bundle("true")
    b.config["hooks"] = {"createRuntime": [{
        "path": "/bin/sh",
        "args": ["my-argv0", "-c",
                 'echo "$(tr "\\0" "\\n" < /proc/$$/cmdline | head -n1)|$0|$FOO|${HOME-unset}|'
                 '$(cat)" > "$0"', str(log)],
        "env": ["FOO=bar baz"]}]}
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc == 0, r.err
    argv0, arg1, foo, home, payload = log.read_text().rstrip("\n").split("|", 4)
    assert (argv0, arg1, foo, home) == ("my-argv0", str(log), "bar baz", "unset")
    assert json.loads(payload)["id"] == cid
    assert pyrunc("delete", cid).rc == 0


def test_without_args_argv0_is_the_path(pyrunc, make_bundle, tmp_path, cid):
    script = tmp_path / "hook.sh"
    log = tmp_path / "log"
    script.write_text(f'#!/bin/sh\necho "$0" > {log}\n')
    script.chmod(0o755)
    b = make_bundle("true")
    b.config["hooks"] = {"prestart": [{"path": str(script)}]}
    b.write()
    assert pyrunc("create", "--bundle", b.path, cid).rc == 0
    assert log.read_text().strip() == str(script)
    assert pyrunc("delete", cid).rc == 0


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create_and_leaves_nothing(pyrunc, make_bundle, cid, kind,
                                                             no_leaks):
    b = make_bundle("true")
    b.config["hooks"] = {kind: [
        {"path": "/bin/true"},
        {"path": "/bin/sh", "args": ["sh", "-c", "echo out; echo err >&2; exit 3"]}]}
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid)
    assert (r.rc, r.out) == (1, "")
    # runc >= 1.2's wording: the list is named (1.1 said "error running hook #1: error
    # running hook: exit status 3, ...")
    assert error_of(r) == ("pyrunc create failed: unable to start container process: "
                           f"error during container init: error running {kind} hook #1: "
                           "exit status 3, stdout: out\n, stderr: err\n").replace("\n", "\\n")
    assert pyrunc.ids() == []


def test_missing_hook_binary(pyrunc, make_bundle, cid, no_leaks):
    b = make_bundle("true")
    b.config["hooks"] = {"prestart": [{"path": "/nonexistent/libnetwork-setkey"}]}
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc == 1
    assert error_of(r) == ("pyrunc create failed: unable to start container process: error "
                           "during container init: error running prestart hook #0: fork/exec "
                           "/nonexistent/libnetwork-setkey: no such file or directory")
    assert pyrunc.ids() == []


def test_timeout_kills_the_hook_and_fails_create(pyrunc, make_bundle, tmp_path, cid, no_leaks):
    marker = tmp_path / "marker"
    b = make_bundle("true")
    b.config["hooks"] = {"createRuntime": [{
        "path": "/bin/sh", "args": ["sh", "-c", f"echo $$ > {marker}; exec sleep 30"],
        "timeout": 1}]}
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid, timeout=20)
    assert r.rc == 1
    assert error_of(r) == ("pyrunc create failed: unable to start container process: "
                           "error during container init: error running createRuntime hook #0: "
                           "hook ran past specified timeout of 1.0s")
    assert pyrunc.ids() == []
    assert not os.path.exists(f"/proc/{marker.read_text().strip()}/cmdline") or \
        open(f"/proc/{marker.read_text().strip()}/stat").read().split()[2] == "Z"


def test_hook_gets_only_stdio_and_default_signals(pyrunc, make_bundle, tmp_path, cid):
    """Engines hand the runtime stray fds: the hook sees 0-2 only; SIGPIPE is not left ignored
    (Python ignores it, and exec would keep that); a hook that ignores a big stdin is fine."""
    log = tmp_path / "log"
    b = make_bundle("true")
    b.config["annotations"] = {"big": "x" * 200_000}  # more than a pipe holds
    b.config["hooks"] = {"prestart": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", f"ls /proc/$$/fd | sort -n | tr '\\n' ' ' > {log}; "
                             f"grep SigIgn /proc/$$/status >> {log}"]}]}
    b.write()
    stray = os.open("/dev/null", os.O_RDONLY)  # inheritable, at a high number, as a shim's socket
    os.dup2(stray, 50, inheritable=True)
    try:
        r = pyrunc("create", "--bundle", b.path, cid, pass_fds=(50,))
    finally:
        os.close(50)
        os.close(stray)
    assert pyrunc("delete", "--force", cid).rc == 0
    assert r.rc == 0, r.err
    fds, sigign = log.read_text().split("SigIgn:")
    # 0-2, and what the shell and ls open themselves (ls's directory fd, a pipe): never 50
    assert fds.split()[:3] == ["0", "1", "2"] and all(int(fd) < 11 for fd in fds.split()), fds
    assert int(sigign, 16) & (1 << 12) == 0, sigign  # SIGPIPE (13) not ignored


def test_timeout_covers_a_hook_that_closed_its_stdio(pyrunc, make_bundle, cid, no_leaks):
    b = make_bundle("true")
    b.config["hooks"] = {"prestart": [{
        "path": "/bin/sh", "args": ["sh", "-c", "exec <&- >&- 2>&-; exec sleep 30"], "timeout": 1}]}
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid, timeout=20)
    assert r.rc == 1
    assert error_of(r).endswith("error running prestart hook #0: hook ran past specified timeout of 1.0s")
    assert pyrunc.ids() == []


def test_failing_start_container_hook_stops_the_container(pyrunc, hooked, cid, no_leaks):
    b, log = hooked
    b.process["args"] = ["sh", "-c", "echo ran > /hooklog/ran"]
    b.config["hooks"] = {"startContainer": [{"path": "/bin/false"}]}
    b.write()
    assert pyrunc("create", "--bundle", b.path, cid).rc == 0
    pyrunc("start", cid)  # as runc: the barrier is released; the init fails after it
    wait_for(lambda: state(pyrunc, cid)["status"] == "stopped", what="the init to exit")
    assert not os.path.exists(os.path.join(os.path.dirname(log), "ran"))
    assert pyrunc("delete", cid).rc == 0


def test_failing_poststop_hook_only_warns(pyrunc, make_bundle, tmp_path, cid, no_leaks):
    """runtime-spec: a poststop failure is a warning and the remaining hooks still run."""
    log = tmp_path / "log"
    b = make_bundle("sleep", "30")
    b.config["hooks"] = {"poststop": [
        {"path": "/bin/sh", "args": ["sh", "-c", "echo boom >&2; exit 4"]},
        {"path": "/bin/sh", "args": ["sh", "-c", f"echo second >> {log}"]}]}
    b.write()
    assert pyrunc("create", "--bundle", b.path, cid).rc == 0
    r = pyrunc("start", cid)
    assert (r.rc, r.err) == (0, "")
    assert state(pyrunc, cid)["status"] == "running"
    d = pyrunc("delete", "--force", cid)
    assert d.rc == 0, d.err
    assert re.fullmatch(r'time="[^"]+" level=warning msg="error running poststop hook #0: '
                        r'exit status 4, stdout: , stderr: boom\\n"\n', d.err), d.err
    assert log.read_text() == "second\n"
    assert pyrunc.ids() == []


def _failing_poststart(b, log):
    b.config["hooks"] = {"poststart": [
        {"path": "/bin/sh", "args": ["sh", "-c", "echo boom >&2; exit 4"]},
        {"path": "/bin/sh", "args": ["sh", "-c", f"echo second >> {log}"]}]}
    b.write()


POSTSTART_ERROR = "error running poststart hook #0: exit status 4, stdout: , stderr: boom\\n"  # (%q)


def test_failing_poststart_hook_stops_the_container(pyrunc, make_bundle, tmp_path, cid, no_leaks):
    """runtime-spec (and runc >= 1.2): the container is stopped and `start` fails; the later
    hooks do not run; the stopped container is left for delete."""
    log = tmp_path / "log"
    b = make_bundle("sleep", "30")
    _failing_poststart(b, log)
    assert pyrunc("create", "--bundle", b.path, cid).rc == 0
    init = state(pyrunc, cid)["pid"]
    r = pyrunc("start", cid)
    assert r.rc == 1
    assert error_of(r) == POSTSTART_ERROR
    assert state(pyrunc, cid)["status"] == "stopped"
    assert not os.path.exists(f"/proc/{init}/cmdline") or \
        open(f"/proc/{init}/stat").read().split()[2] == "Z"
    assert not log.exists()
    assert pyrunc("delete", cid).rc == 0
    assert pyrunc.ids() == []


@pytest.mark.parametrize("keep", [False, True], ids=["run", "run-keep"])
def test_failing_poststart_hook_fails_run(pyrunc, make_bundle, tmp_path, cid, keep, no_leaks):
    log = tmp_path / "log"
    b = make_bundle("sleep", "30")
    _failing_poststart(b, log)
    r = pyrunc("run", *(["--keep"] if keep else []), "--bundle", b.path, cid)
    assert r.rc == 1
    assert error_of(r) == "pyrunc run failed: " + POSTSTART_ERROR
    assert not log.exists()
    if keep:  # as runc: --keep also keeps a container whose start failed
        assert state(pyrunc, cid)["status"] == "stopped"
        assert pyrunc("delete", cid).rc == 0
    assert pyrunc.ids() == []


def test_failing_start_container_hook_prints_runcs_line(pyrunc, hooked, cid, no_leaks):
    """After the start barrier nobody listens to the init: the error goes, as runc's does, to
    the process's stderr as a bare line, and the init exits 1."""
    b, _ = hooked
    b.config["hooks"] = {"startContainer": [{"path": "/nonexistent-hook"}]}
    b.write()
    r = pyrunc("run", "--bundle", b.path, cid)
    assert (r.rc, r.out) == (1, "")
    assert r.err == ("error running startContainer hook #0: fork/exec /nonexistent-hook: "
                     "no such file or directory\n")


HOOK_ENV_SCRIPT = 'echo "{name} $(pwd) MARK=${{MARK-unset}} FOO=${{FOO-unset}} HOME=${{HOME-unset}}" >> {log}'


def test_hook_environment_and_cwd_as_runc(runc, pyrunc, hooked, cid):
    """A hook without `env` runs with the runtime's environment (runc's exec.Cmd with a nil Env
    inherits it); createContainer with the process's env in the container's root; startContainer
    with the process's final env (HOME added) in its cwd. Same lines as runc 1.1.5 (which runs
    poststart at create: the lines are compared sorted)."""
    b, log = hooked
    b.process["args"] = ["true"]
    b.process["env"] = ["PATH=/bin", "FOO=from-process"]
    b.process["cwd"] = "/tmp"
    b.config["hooks"] = {name: [{"path": "/bin/sh", "args": [
        "sh", "-c", HOOK_ENV_SCRIPT.format(name=name, log=LOG_IN_CONTAINER if name == "startContainer" else log)]}]
        for name in ("prestart", "createRuntime", "createContainer", "startContainer",
                     "poststart", "poststop")}
    b.write()
    env = dict(os.environ, MARK="from-runtime")
    results = {}
    for name, rt in (("runc", runc), ("pyrunc", pyrunc)):
        r = rt("run", "--bundle", b.path, cid, env=env)
        assert (r.rc, r.err) == (0, ""), (name, r.err)
        with open(log) as f:
            results[name] = sorted(f.read().splitlines())
        os.unlink(log)
    assert results["pyrunc"] == results["runc"]
    rootfs = b.config["root"]["path"]
    assert results["pyrunc"] == sorted([
        f"createContainer {rootfs} MARK=unset FOO=from-process HOME=unset",
        f"createRuntime {b.path} MARK=from-runtime FOO=unset HOME={os.environ.get('HOME', 'unset')}",
        f"poststart {b.path} MARK=from-runtime FOO=unset HOME={os.environ.get('HOME', 'unset')}",
        f"poststop {b.path} MARK=from-runtime FOO=unset HOME={os.environ.get('HOME', 'unset')}",
        f"prestart {b.path} MARK=from-runtime FOO=unset HOME={os.environ.get('HOME', 'unset')}",
        "startContainer /tmp MARK=unset FOO=from-process HOME=/root"])


def test_hook_environment_is_the_callers_exactly(pyrunc, make_bundle, tmp_path, cid):
    """Nothing of the interpreter's own in it: Python started in the C locale sets
    LC_CTYPE=C.UTF-8 in its environment (PEP 538); a hook must not see that."""
    log = tmp_path / "env"
    b = make_bundle("true")
    b.config["hooks"] = {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", f"env > {log}"]}]}
    b.write()
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "MARK": "1"}
    r = pyrunc("run", "--bundle", b.path, cid, env=env)
    assert (r.rc, r.err) == (0, "")
    seen = dict(line.split("=", 1) for line in log.read_text().splitlines())
    seen.pop("PWD", None)  # the shell's own
    seen.pop("SHLVL", None)
    assert seen == env
