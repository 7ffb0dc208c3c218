"""shim/process.py without a container: executable lookup (Go's exec.LookPath, as runc 1.1
with Go 1.19), the environment and HOME rules, socket activation's LISTEN_FDS (api.py reads it, the
process gets it), rlimits."""

import io
import os
import resource

import pytest

from pyrunc.api import socket_activation_fds
from pyrunc.shim import process
from pyrunc.spec.model import Rlimit, build_process


@pytest.fixture
def bins(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for d, name, mode in ((a, "tool", 0o644), (b, "tool", 0o755), (a, "only", 0o700),
                          (b, "dir", None)):
        if mode is None:
            (d / name).mkdir()
        else:
            (d / name).write_text("#!/bin/sh\n")
            os.chmod(d / name, mode)
    return a, b


def test_first_executable_in_path_wins_non_executables_skipped(bins):
    a, b = bins
    env = {"PATH": f"{a}:{b}"}
    assert process.look_path("tool", env) == f"{b}/tool"  # a/tool is not executable
    assert process.look_path("only", env) == f"{a}/only"


def test_a_directory_in_path_is_not_an_executable(bins):
    a, b = bins
    with pytest.raises(process.ProcessError, match=r'^exec: "dir": executable file not found in \$PATH$'):
        process.look_path("dir", {"PATH": f"{a}:{b}"})


@pytest.mark.parametrize("path", [None, ""])
def test_no_path_finds_nothing_not_even_in_the_cwd(bins, monkeypatch, path):
    a, _ = bins
    monkeypatch.chdir(a)
    env = {} if path is None else {"PATH": path}
    with pytest.raises(process.ProcessError, match="executable file not found"):
        process.look_path("only", env)


@pytest.mark.parametrize("entry", ["", ".", "./"])
def test_relative_path_entries_are_refused_errdot(bins, monkeypatch, entry):
    a, _ = bins
    monkeypatch.chdir(a)
    with pytest.raises(process.ProcessError,
                       match='^exec: "only": cannot run executable found relative to current directory$'):
        process.look_path("only", {"PATH": f"{entry}:/nonexistent"})


def test_a_name_with_a_slash_is_used_as_is(bins, tmp_path):
    a, b = bins
    assert process.look_path(f"{b}/tool", {}) == f"{b}/tool"
    with pytest.raises(process.ProcessError, match=f'^exec: "{a}/tool": permission denied$'):
        process.look_path(f"{a}/tool", {"PATH": str(b)})
    with pytest.raises(process.ProcessError, match=f'^exec: "{b}/dir": permission denied$'):
        process.look_path(f"{b}/dir", {})
    with pytest.raises(process.ProcessError,
                       match=f'^exec: "{tmp_path}/x": stat {tmp_path}/x: no such file or directory$'):
        process.look_path(f"{tmp_path}/x", {})


def passwd(monkeypatch, text):
    def fake_open(path, *a, **k):
        assert path == "/etc/passwd"  # the container's: read after the pivot
        if text is None:
            raise FileNotFoundError(2, "No such file or directory")
        return io.StringIO(text)
    monkeypatch.setattr(process, "open", fake_open, raising=False)


PASSWD = "root:x:0:0:root:/root:/bin/sh\nbroken\nu:x:1000:1000::/home/u:/bin/sh\nnohome:x:7:7:::\n"


@pytest.mark.parametrize("env, uid, home", [
    ([], 0, "/root"),
    (["HOME="], 1000, "/home/u"),          # empty HOME: replaced, as runc
    (["HOME=/mine"], 1000, "/mine"),       # set: kept
    ([], 4242, "/"),                       # not in passwd
    ([], 7, "/"),                          # an empty home field
])
def test_home_from_the_images_passwd(monkeypatch, env, uid, home):
    passwd(monkeypatch, PASSWD)
    got = process.environment(build_process({"env": ["A=1", *env], "user": {"uid": uid}}))
    assert got["HOME"] == home and got["A"] == "1"


def test_no_passwd_means_home_slash(monkeypatch):
    passwd(monkeypatch, None)
    assert process.environment(build_process({"user": {"uid": 0}})) == {"HOME": "/"}


def test_environment_keeps_the_last_value_and_equals_in_values(monkeypatch):
    passwd(monkeypatch, PASSWD)
    env = process.environment(build_process({"env": ["A=1", "B=x=y", "A=2", "E="], "user": {"uid": 0}}))
    assert env == {"A": "2", "B": "x=y", "E": "", "HOME": "/root"}


@pytest.mark.parametrize("bad", ["NOEQUALS", "=value"])
def test_malformed_environment_entries(monkeypatch, bad):
    passwd(monkeypatch, PASSWD)
    with pytest.raises(process.ProcessError, match="invalid environment variable"):
        process.environment(build_process({"env": [bad], "user": {"uid": 0}}))


def test_listen_fds_are_appended_and_win(monkeypatch):
    passwd(monkeypatch, PASSWD)
    env = process.environment(build_process({"env": ["LISTEN_FDS=9", "LISTEN_PID=9"], "user": {"uid": 0}}),
                              listen_fds=2)
    assert (env["LISTEN_FDS"], env["LISTEN_PID"]) == ("2", "1")


@pytest.mark.parametrize("environ, n", [
    ({"LISTEN_PID": "77", "LISTEN_FDS": "3"}, 3),
    ({"LISTEN_PID": "+77", "LISTEN_FDS": "+3"}, 3),  # Atoi takes a sign
    ({"LISTEN_PID": "78", "LISTEN_FDS": "3"}, 0),    # not for us
    ({"LISTEN_FDS": "3"}, 0),
    ({"LISTEN_PID": "77"}, 0),
    ({"LISTEN_PID": "77", "LISTEN_FDS": "-2"}, 0),
    ({"LISTEN_PID": "77", "LISTEN_FDS": "x"}, 0),
    ({"LISTEN_PID": "77", "LISTEN_FDS": " 3"}, 0),   # Go's Atoi refuses what int() takes
    ({"LISTEN_PID": "77", "LISTEN_FDS": "1_0"}, 0),
    ({"LISTEN_PID": "77", "LISTEN_FDS": "\u0663"}, 0),  # ARABIC-INDIC DIGIT THREE
    ({"LISTEN_PID": " 77", "LISTEN_FDS": "3"}, 0),
])
def test_socket_activation_fds(environ, n):
    assert socket_activation_fds(environ, pid=77) == n


def test_socket_activation_defaults_to_our_pid():
    assert socket_activation_fds({"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "1"}) == 1


def test_preserved_fds_must_be_open():
    r, w = os.pipe()
    try:
        process.check_preserved_fds(1, base=r)
        with pytest.raises(process.ProcessError, match=r"^unable to stat preserved-fd 0 \(of 2\): "
                                                       r"stat /proc/self/fd/\d+: no such file"):
            process.check_preserved_fds(2, base=999)  # the first missing one is named
    finally:
        os.close(r)
        os.close(w)


def test_rlimits_applied_and_unknown_refused():
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    try:
        process.apply_rlimits([Rlimit({"type": "RLIMIT_CORE", "soft": 0, "hard": hard})])
        assert resource.getrlimit(resource.RLIMIT_CORE) == (0, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))
    # the current NOFILE limits: harmless to this process if a bad name were taken for it
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for bad in ("RLIMIT_NOPE", "RLIM_INFINITY", "getrlimit", "RLIMIT_OFILE"):
        with pytest.raises(process.ProcessError, match=f"^unknown rlimit type '{bad}'$"):
            process.apply_rlimits([Rlimit({"type": bad, "soft": soft, "hard": hard})])


def test_rlimit_locks_is_known():
    """Python's resource module has no RLIMIT_LOCKS: the shim's own table has (the bug was
    "unknown rlimit type 'RLIMIT_LOCKS'" from a config the validation had accepted)."""
    limits = resource.getrlimit(process.RLIMITS["RLIMIT_LOCKS"])
    process.apply_rlimits([Rlimit({"type": "RLIMIT_LOCKS", "soft": limits[0], "hard": limits[1]})])


def test_a_refused_rlimit_is_one_line():
    with pytest.raises(process.ProcessError, match="^error setting rlimit type RLIMIT_NOFILE: ") as e:
        process.apply_rlimits([Rlimit({"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5})])  # soft > hard
    assert "Error" not in str(e.value)


def test_uint64_max_is_infinity():
    assert process._rlim(2**64 - 1) == resource.RLIM_INFINITY
    assert process._rlim(5) == 5
