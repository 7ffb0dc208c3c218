"""Issue 11 without a container: the texts and the cost of --debug when it is off."""

import os

import pytest

from pyrunc import trace
from pyrunc.linux import capabilities as caps
from pyrunc.linux import syscalls as sc
from pyrunc.runtime import hooks
from pyrunc.shim import process, sync
from pyrunc.spec.model import Hook, build_process


class Exploding:
    """An argument whose formatting fails the test: nothing may format it while --debug is off."""

    def __str__(self):
        raise AssertionError("formatted while debug is off")

    __repr__ = __str__

    def __index__(self):
        raise AssertionError("formatted while debug is off")


def test_debug_off_formats_and_sends_nothing():
    trace.enable(None)
    trace.debug("never %s %d", Exploding(), Exploding())
    r, w = os.pipe()
    try:
        sync.debug(sync.End(r, w), "never %s", Exploding())
        os.set_blocking(r, False)
        with pytest.raises(BlockingIOError):
            os.read(r, 10)
    finally:
        os.close(r)
        os.close(w)


def test_debug_on_formats_lazily_once():
    seen = []
    trace.enable(seen.append)
    try:
        trace.debug("a %s %d", "b", 3)
        trace.debug("100% literal")  # no args: not %-formatted
    finally:
        trace.enable(None)
    assert seen == ["a b 3", "100% literal"]
    assert trace.on is False


def test_debug_messages_cross_the_sync_channel():
    trace.enable(lambda m: None)
    try:
        host, shim = sync.channel()
        sync.debug(shim, "init: %s", "step")
        assert host.recv() == {"type": "debug", "msg": "init: step"}
    finally:
        trace.enable(None)
        host.close()
        shim.close()


def test_unknown_capabilities_one_warning_as_runc():
    _, warnings = caps.resolve({"bounding": ["CAP_KILL", "CAP_ZZZ", "CAP_AAA"],
                                "effective": ["CAP_ZZZ"]}, last=40)
    assert warnings == ["ignoring unknown or unavailable capabilities: [CAP_AAA CAP_ZZZ]"]
    assert caps.resolve({"bounding": ["CAP_KILL"]}, last=40)[1] == []


def test_syscall_errors_read_as_gos():
    """EPERM must read "operation not permitted" (podman: "OCI permission denied", 126)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setuid(65534)
            try:
                sc.unshare(sc.CLONE_NEWNS)
            except OSError as e:
                r, w = os.pipe()
                sync.report(sync.End(r, w), e, "setting up namespaces")
                msg = sync.End(r, w).recv()["msg"]
                code = 0 if (e.strerror == "unshare: operation not permitted" and
                             msg == "setting up namespaces: unshare: operation not permitted") else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_report_lowercases_a_bare_errno_text():
    r, w = os.pipe()
    end = sync.End(r, w)
    sync.report(end, OSError(1, os.strerror(1)), "masking paths")
    assert end.recv()["msg"] == "masking paths: operation not permitted"
    end.close()


@pytest.mark.parametrize("env, home", [
    (["HOME="], "/home/user"), (["HOME=", "A=1"], "/home/user"), (["A=1"], "/home/user"),
    (["HOME=/x"], "/x")])
def test_home_unset_or_empty_comes_from_passwd(monkeypatch, env, home):
    monkeypatch.setattr(process, "home_of", lambda uid: {1000: "/home/user"}[uid])
    got = process.environment(build_process({"env": env, "user": {"uid": 1000, "gid": 1000}}))
    assert got["HOME"] == home
    assert list(got)[-1] == "HOME" or "HOME=/x" in env  # appended, as runc's prepareEnv


def test_hook_env_defaults():
    assert hooks.hook_env(Hook({"path": "/h", "env": ["A=1", "A=2", "B"]})) == {"A": "2"}
    assert hooks.hook_env(Hook({"path": "/h"}), {"P": "1"}) == {"P": "1"}
    assert hooks.hook_env(Hook({"path": "/h", "env": []})) == dict(os.environ)


def test_hook_errors_name_their_list():
    state = hooks.state_json("c", "creating", 1, "/b", {})
    with pytest.raises(hooks.HookError) as e:
        hooks.run_list([("prestart", Hook({"path": "/bin/true"})),
                        ("createRuntime", Hook({"path": "/bin/true"})),
                        ("createRuntime", Hook({"path": "/bin/sh", "args": ["sh", "-c", "exit 2"]}))],
                       state)
    assert str(e.value) == "error running createRuntime hook #1: exit status 2, stdout: , stderr: "
