"""The command line as engines drive it: version, help, usage errors, flag spellings, global
flags, and concurrent invocations on real containers.

Expected texts follow runc 1.1.5 (Debian 12), with "runc" replaced by "pyrunc".
"""

import json
import os
import re
import subprocess
import time

import pytest
from helpers import alive, error_of, fails, live_inits, state, wait_for  # noqa: E402,F401

from pyrunc import SPEC_VERSION, __version__
from pyrunc.cli.commands import COMMANDS


class Spawned:
    """A pyrunc invocation running in the background, its output in files."""

    def __init__(self, runner, tmp_path, *args, global_args=()):
        self.out = open(tmp_path / f"out-{id(self)}", "w+b")
        self.err = open(tmp_path / f"err-{id(self)}", "w+b")
        self.p = subprocess.Popen([*runner.argv, "--root", runner.root, *global_args, *args],
                                  stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.err)

    def wait(self, timeout=30):
        self.rc = self.p.wait(timeout=timeout)
        for f, name in ((self.out, "out"), (self.err, "err")):
            f.seek(0)
            setattr(self, name, f.read().decode())
            f.close()
        return self


EXPECTED_FLAGS = {
    "create": ["--bundle", "-b", "--console-socket", "--pid-file", "--no-pivot", "--no-new-keyring",
               "--preserve-fds"],
    "run": ["--bundle", "-b", "--console-socket", "--detach", "-d", "--pid-file", "--no-pivot",
            "--no-new-keyring", "--preserve-fds"],
    "start": [],
    "state": [],
    "kill": ["--all", "-a"],
    "delete": ["--force", "-f"],
    "list": ["--format", "-f", "--quiet", "-q"],
}
systemd_running = os.path.isdir("/run/systemd/system")


# --------------------------------------------------------------------------- version and help

def test_version(pyrunc):
    for flag in ("--version", "-v"):
        r = pyrunc(flag)
        assert (r.rc, r.err) == (0, "")
        lines = r.out.splitlines()
        assert r.out.endswith("\n") and len(lines) >= 3
        assert lines[0] == f"pyrunc version {__version__}"
        assert re.fullmatch(r"commit: \S+", lines[1]), lines[1]
        assert lines[2] == f"spec: {SPEC_VERSION}"
    assert not os.path.exists(pyrunc.root)  # like runc, --version does not make the root


def test_main_help(pyrunc):
    outputs = set()
    for args in ((), ("--help",), ("-h",), ("help",), ("h",)):
        r = pyrunc(*args)
        assert (r.rc, r.err) == (0, ""), args
        outputs.add(r.out)
    assert len(outputs) == 1
    text = outputs.pop()
    assert text.startswith("NAME:\n   pyrunc - ")
    for verb in EXPECTED_FLAGS:
        assert re.search(rf"^   {verb} +\S", text, re.M), verb
    for flag in ("--debug", "--log value", "--log-format value", "--root value", "--systemd-cgroup",
                 "--help, -h", "--version, -v"):
        assert flag in text


@pytest.mark.parametrize("verb", sorted(EXPECTED_FLAGS))
def test_verb_help(pyrunc, verb):
    assert verb in COMMANDS
    outputs = set()
    for args in ((verb, "--help"), (verb, "-h"), ("help", verb), ("h", verb), (verb, "some-id", "--help")):
        r = pyrunc(*args)
        assert (r.rc, r.err) == (0, ""), args
        outputs.add(r.out)
    assert len(outputs) == 1
    text = outputs.pop()
    assert text.startswith(f"NAME:\n   pyrunc {verb} - {COMMANDS[verb].summary}\n\nUSAGE:\n   pyrunc {verb}")
    for flag in EXPECTED_FLAGS[verb]:
        assert re.search(rf"(^   |, ){re.escape(flag)}\b", text, re.M), (verb, flag)
    assert ("OPTIONS:" in text) == bool(EXPECTED_FLAGS[verb])
    assert not os.path.exists(pyrunc.root)


# --------------------------------------------------------------------------- usage errors

def test_unknown_verb(pyrunc):
    r = pyrunc("foo")
    assert (r.rc, r.out) == (3, "")
    assert error_of(r) == "No help topic for 'foo'\\n"  # a literal backslash-n, as runc prints


@pytest.mark.parametrize("args, verb", [
    (("state", "-x"), "state"), (("state", "--x", "id"), "state"), (("list", "-x"), "list"),
    (("kill", "-x", "id"), "kill"), (("create", "--x=1", "id"), "create"),
])
def test_unknown_flag(pyrunc, args, verb):
    r = pyrunc(*args)
    assert r.rc == 1
    # Go names the flag with one dash, however many it was given with
    assert error_of(r) == "flag provided but not defined: -x"
    assert r.out.startswith("Incorrect Usage: flag provided but not defined: -x\n\n")
    assert r.out.endswith(pyrunc(verb, "--help").out)


@pytest.mark.parametrize("interval, error", [
    ("x", 'invalid value "x" for flag -interval: parse error'),
    ("0s", "duration interval must be greater than 0"),
    ("-1m", "duration interval must be greater than 0"),
    ("1m30s", "container does not exist"),  # a Go duration: parsed, then the container looked up
    (".5s", "container does not exist"),
])
def test_events_interval_is_a_go_duration(pyrunc, interval, error):
    r = pyrunc("events", "--interval", interval, "nonexistent")
    assert r.rc != 0 and error_of(r) == error


def test_unknown_global_flag(pyrunc):
    r = pyrunc("--foo", "list")
    assert r.rc == 1
    assert error_of(r) == "flag provided but not defined: -foo"
    assert r.out.startswith("Incorrect Usage. flag provided but not defined: -foo\n\n")
    assert r.out.endswith(pyrunc("--help").out)


def test_global_flag_after_the_verb_is_not_global(pyrunc, tmp_path):
    r = pyrunc("list", "--root", str(tmp_path))
    assert r.rc == 1 and error_of(r) == "flag provided but not defined: -root"


def test_flag_without_value(pyrunc):
    r = pyrunc("list", "--format")
    assert r.rc == 1 and error_of(r) == "flag needs an argument: -format"
    assert r.out.startswith("Incorrect Usage: flag needs an argument: -format\n\n")
    r = pyrunc("create", "id", "--bundle")
    assert r.rc == 1 and error_of(r) == "flag needs an argument: -bundle"


@pytest.mark.parametrize("args, reason", [
    (("state",), '"state" requires exactly 1 argument(s)'),
    (("state", "a", "b"), '"state" requires exactly 1 argument(s)'),
    (("state", "a", "-x"), '"state" requires exactly 1 argument(s)'),  # -x after the id is an arg
    (("start",), '"start" requires exactly 1 argument(s)'),
    (("delete",), '"delete" requires exactly 1 argument(s)'),
    (("delete", "-f"), '"delete" requires exactly 1 argument(s)'),
    (("create", "-b", "."), '"create" requires exactly 1 argument(s)'),
    (("run",), '"run" requires exactly 1 argument(s)'),
    (("kill",), '"kill" requires a minimum of 1 argument(s)'),
    (("kill", "a", "KILL", "c"), '"kill" requires a maximum of 2 argument(s)'),
    (("list", "extra"), '"list" requires exactly 0 argument(s)'),
])
def test_wrong_number_of_arguments(pyrunc, args, reason):
    r = pyrunc(*args)
    assert r.rc == 1
    assert error_of(r) == f"pyrunc: {reason}"  # runc: `runc: "state" requires ...`
    assert r.out == "Incorrect Usage.\n\n" + pyrunc(args[0], "--help").out


# --------------------------------------------------------------------------- flag spellings

@pytest.mark.parametrize("bundle_flag", [
    ["-b", "{b}"], ["--bundle", "{b}"], ["--bundle={b}"], ["-bundle", "{b}"], ["-b={b}"], ["-bundle={b}"],
])
@pytest.mark.parametrize("pid_flag", [["--pid-file={p}"], ["-pid-file", "{p}"], ["--pid-file", "{p}"]])
def test_create_flag_spellings(pyrunc, make_bundle, cid, tmp_path, bundle_flag, pid_flag):
    b = make_bundle("sleep", "100")
    p = tmp_path / "x.pid"
    args = [a.format(b=b.path, p=p) for a in bundle_flag + pid_flag]
    r = pyrunc("create", *args, cid)
    assert (r.rc, r.out, r.err) == (0, "", "")
    st = state(pyrunc, cid)
    assert st["bundle"] == b.path and p.read_text() == str(st["pid"])
    assert pyrunc("delete", cid).rc == 0


def test_flags_after_the_id(pyrunc, make_bundle, cid, tmp_path):
    b = make_bundle("sleep", "100")
    r = pyrunc("create", cid, "-b", b.path, "--pid-file", str(tmp_path / "p"))
    assert (r.rc, r.err) == (0, "")
    assert pyrunc("start", cid).rc == 0
    r = pyrunc("kill", cid, "KILL", "--all")
    assert (r.rc, r.err) == (0, "")
    wait_for(lambda: state(pyrunc, cid)["status"] == "stopped")
    r = pyrunc("delete", cid, "-f")
    assert (r.rc, r.err) == (0, "")
    assert pyrunc.ids() == []


def test_dash_argument_after_the_id_is_an_argument(pyrunc, make_bundle, cid):
    """As in runc, `kill ID -9` does not parse -9 as a flag: it is signal number -9."""
    b = make_bundle("sleep", "100")
    assert pyrunc("run", "-d", "-b", b.path, cid).rc == 0
    fails(pyrunc("kill", cid, "-9"), "unable to signal init: invalid argument")
    fails(pyrunc("kill", cid, "-FOO"), 'unknown signal "-FOO"')
    assert state(pyrunc, cid)["status"] == "running"
    assert pyrunc("delete", "-f", cid).rc == 0


def test_double_dash_ends_the_flags(pyrunc, make_bundle, cid):
    b = make_bundle("sleep", "100")
    assert pyrunc("create", "-b", b.path, "--", cid).rc == 0
    r = pyrunc("state", "--", cid)
    assert r.rc == 0 and json.loads(r.out)["id"] == cid
    assert pyrunc("kill", "--", cid, "KILL").rc == 0
    wait_for(lambda: state(pyrunc, cid)["status"] == "stopped")
    assert pyrunc("delete", "--", cid).rc == 0


def test_boolean_flag_values(pyrunc, make_bundle, cid):
    b = make_bundle("sleep", "100")
    assert pyrunc("run", "-d", "-b", b.path, cid).rc == 0
    fails(pyrunc("delete", "--force=false", cid), f"cannot delete container {cid} that is not stopped: running")
    r = pyrunc("delete", "--force=bogus", cid)
    assert r.rc == 1 and error_of(r).startswith('invalid boolean value "bogus" for -force')
    assert pyrunc("delete", "-f=true", cid).rc == 0
    assert pyrunc.ids() == []
    # a created container is deleted without --force, so --force=false does too
    assert pyrunc("create", "-b", b.path, cid).rc == 0
    assert pyrunc("delete", "--force=false", cid).rc == 0
    assert pyrunc.ids() == []


def test_bundle_defaults_to_the_working_directory(pyrunc, make_bundle, cid):
    b = make_bundle("true")
    r = pyrunc("create", cid, cwd=b.path)
    assert r.rc == 0, r.err
    assert state(pyrunc, cid)["bundle"] == b.path
    assert pyrunc("delete", cid).rc == 0
    r = pyrunc("run", cid, cwd=b.path)
    assert (r.rc, r.err) == (0, "")


@pytest.mark.parametrize("spelling", [["--root={r}"], ["-root", "{r}"], ["-root={r}"], ["--root", "{r}"]])
def test_root_flag_spellings(pyrunc, make_bundle, cid, tmp_path, spelling):
    other = tmp_path / "other-root"
    g = tuple(a.format(r=other) for a in spelling)
    b = make_bundle("sleep", "100")
    try:
        assert pyrunc("create", "-b", b.path, cid, global_args=g).rc == 0
        assert pyrunc("list", "-q", global_args=g).out == cid + "\n"
        assert os.path.exists(other / cid / "state.json")
        assert pyrunc("list", "-q").out == ""
        fails(pyrunc("state", cid), "container does not exist")
    finally:
        assert pyrunc("delete", "-f", cid, global_args=g).rc == 0
    assert os.listdir(other) == []


def test_debug_flag_is_accepted(pyrunc):
    r = pyrunc("list", "-q", global_args=("--debug",))
    assert (r.rc, r.out, r.err) == (0, "", "")


@pytest.mark.skipif(systemd_running, reason="this host runs systemd")
def test_systemd_cgroup_flag(pyrunc, make_bundle, cid, no_leaks):
    g = ("--systemd-cgroup",)
    b = make_bundle("sleep", "100")
    before = live_inits(pyrunc.root)
    for verb in ("create", "run"):
        for extra in ((), ("-d",)) if verb == "run" else ((),):
            r = pyrunc(verb, *extra, "-b", b.path, cid, global_args=g)
            msg = error_of(r)
            assert r.rc == 1 and msg.startswith(f"pyrunc {verb} failed: ") and "systemd" in msg
            assert pyrunc.ids() == []
    assert live_inits(pyrunc.root) == before
    # the other verbs do not use cgroups here and accept the flag
    assert pyrunc("create", "-b", b.path, cid).rc == 0
    for args in (("list",), ("state", cid), ("start", cid), ("kill", cid, "KILL"), ("delete", "-f", cid)):
        r = pyrunc(*args, global_args=g)
        assert (r.rc, r.err) == (0, ""), args
    assert pyrunc.ids() == []


# --------------------------------------------------------------------------- concurrency

def test_parallel_creates_with_distinct_ids(pyrunc, make_bundle, tmp_path):
    b = make_bundle("sleep", "100")
    ids = [f"par-{i}" for i in range(5)]
    procs = [Spawned(pyrunc, tmp_path, "create", "-b", b.path, i) for i in ids]
    results = [p.wait() for p in procs]
    assert [(p.rc, p.err) for p in results] == [(0, "")] * 5
    assert pyrunc("list", "-q").out == "".join(i + "\n" for i in ids)
    states = [state(pyrunc, i) for i in ids]
    assert {s["status"] for s in states} == {"created"}
    assert len({s["pid"] for s in states}) == 5 and all(alive(s["pid"]) for s in states)
    procs = [Spawned(pyrunc, tmp_path, "delete", i) for i in ids]
    assert [p.wait().rc for p in procs] == [0] * 5
    assert pyrunc.ids() == []
    assert not any(alive(s["pid"]) for s in states)


def test_parallel_creates_with_the_same_id(pyrunc, make_bundle, cid, tmp_path):
    b = make_bundle("sleep", "100")
    for round_ in range(5):
        before = live_inits(pyrunc.root)
        pidfiles = [tmp_path / f"{round_}-{n}.pid" for n in range(2)]
        procs = [Spawned(pyrunc, tmp_path, "create", "-b", b.path, "--pid-file", str(pf), cid)
                 for pf in pidfiles]
        results = [p.wait() for p in procs]
        assert sorted(p.rc for p in results) == [0, 1], [p.err for p in results]
        winner = [n for n, p in enumerate(results) if p.rc == 0][0]
        loser = results[1 - winner]
        assert error_of(loser) == "pyrunc create failed: container with given ID already exists"
        assert not pidfiles[1 - winner].exists()
        st = state(pyrunc, cid)
        assert st["status"] == "created" and pidfiles[winner].read_text() == str(st["pid"])
        wait_for(lambda before=before: len(live_inits(pyrunc.root) - before) == 1, 2.0, "a single init")
        assert live_inits(pyrunc.root) - before == {st["pid"]}
        assert pyrunc("delete", cid).rc == 0


def _check_state_result(r):
    assert "Traceback" not in r.err and "internal error" not in r.err, r.err
    if r.rc == 0:
        assert json.loads(r.out)["status"] in ("running", "stopped")
    else:
        assert error_of(r) == "container does not exist"


def test_parallel_delete_force_and_state(pyrunc, make_bundle, cid, tmp_path):
    b = make_bundle("sleep", "100")
    for _ in range(5):
        assert pyrunc("run", "-d", "-b", b.path, cid).rc == 0
        pid = state(pyrunc, cid)["pid"]
        procs = [Spawned(pyrunc, tmp_path, "state", cid) for _ in range(3)]
        procs.insert(1, Spawned(pyrunc, tmp_path, "delete", "--force", cid))
        procs.append(Spawned(pyrunc, tmp_path, "delete", "--force", cid))
        procs.append(Spawned(pyrunc, tmp_path, "list", "--format", "json"))
        results = [p.wait() for p in procs]
        deletes = [results[1], results[4]]
        assert [(d.rc, d.err) for d in deletes] == [(0, "")] * 2
        for r in results[0:1] + results[2:4]:
            _check_state_result(r)
        lst = results[5]
        assert (lst.rc, lst.err) == (0, "")
        docs = json.loads(lst.out)
        assert docs is None or [d["id"] for d in docs] == [cid]
        assert pyrunc.ids() == []
        assert not alive(pid)


def test_parallel_kill_and_delete(pyrunc, make_bundle, cid, tmp_path):
    b = make_bundle("sleep", "100")
    for _ in range(3):
        assert pyrunc("run", "-d", "-b", b.path, cid).rc == 0
        kill = Spawned(pyrunc, tmp_path, "kill", cid, "KILL")
        delete = Spawned(pyrunc, tmp_path, "delete", "-f", cid)
        k, d = kill.wait(), delete.wait()
        assert (d.rc, d.err) == (0, "")
        assert "Traceback" not in k.err and "internal error" not in k.err
        if k.rc:
            assert error_of(k) in ("container does not exist", "container not running")
        assert pyrunc.ids() == []


def test_delete_force_during_create(pyrunc, make_bundle, cid, tmp_path):
    """A delete --force that lands while create is still building the container: either may
    win, but neither crashes, and no container process or state is left behind."""
    b = make_bundle("sleep", "100")
    for delay in (0, 0.01, 0.02, 0.04, 0.06, 0.08):
        before = live_inits(pyrunc.root)
        create = Spawned(pyrunc, tmp_path, "create", "-b", b.path, cid)
        time.sleep(delay)
        delete = Spawned(pyrunc, tmp_path, "delete", "--force", cid)
        c, d = create.wait(), delete.wait()
        assert (d.rc, d.err) == (0, ""), d.err
        assert "Traceback" not in c.err and "internal error" not in c.err, c.err
        if c.rc == 0:
            # create finished first or after: the container is complete or completely gone
            r = pyrunc("state", cid)
            if r.rc == 0:
                assert json.loads(r.out)["status"] == "created"
                assert pyrunc("delete", "-f", cid).rc == 0
        assert pyrunc.ids() == []
        wait_for(lambda before=before: not (live_inits(pyrunc.root) - before), 2.0, "no init left")


@pytest.mark.parametrize("text, message", [
    ('{"ociVersion": ', "Expecting value: line 1 column 16 (char 15)"),
    ("{} trailing", "Extra data: line 1 column 4 (char 3)"),
])
def test_invalid_config_json_is_named(pyrunc, make_bundle, cid, text, message, no_leaks):
    """The CLI never imports json (pyrunc/jsonio.py): its parse errors still read as json's."""
    b = make_bundle("true")
    with open(os.path.join(b.path, "config.json"), "w") as f:
        f.write(text)
    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc == 1
    assert error_of(r) == f"pyrunc create failed: config.json: invalid JSON: {message}"
    assert pyrunc.ids() == []
