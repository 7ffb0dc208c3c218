"""Issue 12: a failing create/exec raises the container side's own error type through the
Python API, the CLI prints runc's text for it, and --debug shows the handshake and timings."""

import errno
import re

import pytest
from helpers import error_of
from test_differential import message

from pyrunc import errors

DEBUG_TEXT = re.compile(r'time="[^"]+" level=debug msg="(.*?)"( \w+=\S+)*')
TIMED = re.compile(r" in \d+\.\d ms$")


def _bad_mount(make_bundle, tmp_path):
    """A bind mount onto a path of the image that is a file where a directory is needed."""
    b = make_bundle("true")
    source = tmp_path / "dir-source"
    source.mkdir()
    b.config["mounts"].append({"destination": "/etc/passwd/sub", "type": "bind",
                               "source": str(source), "options": ["bind"]})
    b.write()
    return b


def _missing_cap(make_bundle):
    with open("/proc/self/status") as f:
        bounding = int(next(line for line in f if line.startswith("CapBnd:")).split()[1], 16)
    if bounding & (1 << 24):
        pytest.skip("the host has CAP_SYS_RESOURCE")
    b = make_bundle("true")
    b.process["capabilities"] = {k: ["CAP_SYS_RESOURCE"] for k in ("bounding", "effective", "permitted")}
    b.write()
    return b


def test_a_bad_mount_is_a_rootfs_error_in_the_api_and_one_line_in_the_cli(
        api, pyrunc, make_bundle, cid, tmp_path):
    b = _bad_mount(make_bundle, tmp_path)
    with pytest.raises(errors.RootfsError) as caught:
        api.create(cid, b.path)
    e = caught.value
    assert isinstance(e, errors.ContainerInitError) and e.errno == errno.ENOTDIR
    assert str(e).startswith("unable to start container process: error mounting ")
    assert str(e) == f"unable to start container process: {e.detail}"
    assert api.list() == []
    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc == 1
    assert error_of(r) == f"pyrunc create failed: {e}"  # the same text, the type's name nowhere
    assert "Error" not in r.err and pyrunc.ids() == []


def test_a_capability_the_host_lacks_is_a_security_error_with_runcs_text(
        api, runc, pyrunc, make_bundle, cid):
    b = _missing_cap(make_bundle)
    with pytest.raises(errors.SecurityError) as caught:
        api.create(cid, b.path)
    assert caught.value.errno == errno.EPERM
    assert str(caught.value) == "unable to start container process: unable to apply caps: operation not permitted"
    a = runc("create", "--bundle", b.path, cid)
    p = pyrunc("create", "--bundle", b.path, cid)
    assert (p.rc, p.out) == (a.rc, a.out) == (1, "")
    assert message(p) == message(a) == ("RUNTIME create failed: unable to start container process: "
                                        "unable to apply caps: operation not permitted")


def test_a_missing_executable_is_a_process_error_for_create_and_exec(api, pyrunc, make_bundle, cid):
    with pytest.raises(errors.ProcessError, match='^unable to start container process: exec: "nosuch": '
                                                 'executable file not found in \\$PATH$'):
        api.create(cid, make_bundle("nosuch").path)
    api.create(cid, make_bundle("sleep", "100").path)
    with pytest.raises(errors.ProcessError, match='exec: "nosuch": executable file not found'):
        api.exec(cid, ["nosuch"], detach=True)
    api.delete(cid, force=True)


def test_kill_all_of_a_stopped_container_is_no_error(api, pyrunc, make_bundle, cid):
    b = make_bundle("true")
    b.config["linux"]["namespaces"] = [ns for ns in b.config["linux"]["namespaces"]
                                       if ns["type"] != "pid"]
    b.write()
    assert pyrunc("run", "--keep", "--bundle", b.path, cid).rc == 0
    r = pyrunc("kill", cid, "KILL")
    assert (r.rc, error_of(r)) == (1, "container not running")
    assert pyrunc("kill", "--all", cid, "KILL").rc == 0
    assert pyrunc("delete", cid).rc == 0


def _debug_steps(r):
    lines = r.err.splitlines()
    steps = []
    for line in lines:
        m = DEBUG_TEXT.fullmatch(line)
        if m:
            steps.append(m[1].replace('\\"', '"'))
    return steps


def test_debug_shows_the_handshake_and_each_steps_time(pyrunc, make_bundle, cid):
    b = make_bundle("true")
    r = pyrunc("run", "--bundle", b.path, cid, global_args=("--debug",))
    assert r.rc == 0, r.err
    steps = _debug_steps(r)
    text = "\n".join(steps)
    for expected in ('host: sync: sent {"type":"proceed"}', 'stage1: sync: received {"type":"proceed"}',
                     'stage1: sync: sent {"pid":', 'host: sync: received {"pid":',
                     'init: sync: sent {"type":"ready"}', 'host: sync: received {"type":"ready"}'):
        assert expected in text, text
    timed = [s for s in steps if TIMED.search(s)]
    for expected in (f"create {cid}: loaded and validated config.json in ",
                     f"create {cid}: cgroup made and its limits set in ",
                     f"create {cid}: forked stage1, handshake done, init ",
                     f"create {cid}: done in ", "stage1: namespaces set up in ",
                     "init: rootfs prepared (mounts done) in ", "init: rootfs ready ",
                     "init: process /bin/true prepared; waiting for start in "):
        assert any(s.startswith(expected) for s in timed), (expected, text)


def test_debug_shows_the_typed_error_on_the_wire(pyrunc, make_bundle, cid, tmp_path):
    b = _bad_mount(make_bundle, tmp_path)
    r = pyrunc("create", "--bundle", b.path, cid, global_args=("--debug",))
    assert r.rc == 1
    sent = [s for s in _debug_steps(r) if s.startswith("init: sync: sent ")]
    got = [s for s in _debug_steps(r) if s.startswith("host: sync: received ")]
    assert sent and '"kind":"rootfs"' in sent[-1] and f'"errno":{errno.ENOTDIR}' in sent[-1], sent
    assert got and '"type":"error"' in got[-1], got
    assert r.err.splitlines()[-1].startswith(
        'time="') and "pyrunc create failed: unable to start container process: error mounting" in r.err


def test_without_debug_nothing_of_it(pyrunc, make_bundle, cid, tmp_path):
    b = _bad_mount(make_bundle, tmp_path)
    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc == 1 and len(r.err.splitlines()) == 1 and "sync:" not in r.err
