"""create/run --preserve-fds and the runtime's own socket activation (LISTEN_FDS), as runc:
with LISTEN_PID = the runtime's pid, fds 3..3+LISTEN_FDS-1 go to the init first, the
--preserve-fds ones follow, and the process gets LISTEN_FDS=n LISTEN_PID=1."""

import os
import subprocess

import pytest

SCRIPT = "ls /proc/self/fd"


def _run(runner, bundle, cid, tmp_path, flags=(), env_prefix="", script=SCRIPT):
    """`run` with files on the runtime's fds 3, 4 and 5, from a bash that execs the runtime (so
    LISTEN_PID=$$ names the runtime's own pid)."""
    for i in (3, 4, 5):
        (tmp_path / f"f{i}").write_text(f"content{i}\n")
    bundle.process["args"] = ["sh", "-c", script]
    bundle.write()
    cmd = [*runner.argv, "--root", runner.root, "run", "--bundle", bundle.path, *flags, cid]
    line = (f'exec 3<{tmp_path}/f3 4<{tmp_path}/f4 5<{tmp_path}/f5; {env_prefix} exec "$@"')
    return subprocess.run(["bash", "-c", line, "_", *cmd], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=30)


def _lines(r):
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_preserve_fds_two(pyrunc, make_bundle, cid, tmp_path):
    r = _run(pyrunc, make_bundle(), cid, tmp_path, ["--preserve-fds", "2"],
             script="cat <&3; cat <&4; ls /proc/self/fd; echo ${LISTEN_FDS-unset}")
    lines = _lines(r)
    assert lines[:2] == ["content3", "content4"]
    assert sorted(lines[2:-1], key=int) == ["0", "1", "2", "3", "4", "5"]  # 5: ls's own
    assert lines[-1] == "unset"


def test_without_preserve_fds_nothing_leaks(pyrunc, make_bundle, cid, tmp_path):
    r = _run(pyrunc, make_bundle(), cid, tmp_path, script="ls /proc/self/fd")
    assert sorted(_lines(r), key=int) == ["0", "1", "2", "3"]  # 3: ls's directory fd


def test_listen_fds_for_the_runtime_are_passed_first(pyrunc, make_bundle, cid, tmp_path):
    r = _run(pyrunc, make_bundle(), cid, tmp_path, ["--preserve-fds", "1"],
             env_prefix="LISTEN_PID=$$ LISTEN_FDS=2",
             script="cat <&3; cat <&4; cat <&5; ls /proc/self/fd | wc -l; echo $LISTEN_FDS $LISTEN_PID")
    lines = _lines(r)
    assert lines[:3] == ["content3", "content4", "content5"]
    assert lines[3].strip() == "7"  # 0-2, 3-4 (LISTEN_FDS), 5 (preserved), ls's own
    assert lines[4] == "2 1"


def test_listen_fds_override_the_config_env(pyrunc, make_bundle, cid, tmp_path):
    bundle = make_bundle()
    bundle.process["env"] += ["LISTEN_FDS=9", "LISTEN_PID=9"]
    r = _run(pyrunc, bundle, cid, tmp_path, env_prefix="LISTEN_PID=$$ LISTEN_FDS=1",
             script="echo $LISTEN_FDS $LISTEN_PID")
    assert _lines(r) == ["1 1"]


@pytest.mark.parametrize("env_prefix", ["LISTEN_PID=1 LISTEN_FDS=2", "LISTEN_FDS=2",
                                        "LISTEN_PID=$$ LISTEN_FDS=0", "LISTEN_PID=$$ LISTEN_FDS=x"])
def test_listen_fds_for_another_process_are_ignored(pyrunc, make_bundle, cid, tmp_path, env_prefix):
    r = _run(pyrunc, make_bundle(), cid, tmp_path, env_prefix=env_prefix,
             script="ls /proc/self/fd | wc -l; echo ${LISTEN_FDS-unset}")
    assert [x.strip() for x in _lines(r)] == ["4", "unset"]


def test_preserved_fd_must_be_open(pyrunc, make_bundle, cid):
    bundle = make_bundle()
    r = pyrunc("create", "--bundle", bundle.path, "--preserve-fds", "1", cid)
    assert r.rc == 1
    assert ("pyrunc create failed: unable to stat preserved-fd 0 (of 1): "
            "stat /proc/self/fd/3: no such file or directory") in r.err
    assert pyrunc.ids() == []


def test_preserved_fds_count_after_listen_fds(pyrunc, make_bundle, cid, tmp_path):
    r = _run(pyrunc, make_bundle(), cid, tmp_path, ["--preserve-fds", "1"],
             env_prefix="LISTEN_PID=$$ LISTEN_FDS=3")
    assert r.returncode == 1
    assert "unable to stat preserved-fd 0 (of 1): stat /proc/self/fd/6: no such file or directory" in r.stderr


def test_differential_with_runc(pyrunc, runc, make_bundle, cid, tmp_path):
    """The same socket-activated run through both runtimes gives the same view inside."""
    script = "cat <&3; cat <&4; echo $LISTEN_FDS $LISTEN_PID; ls /proc/self/fd | wc -l"
    outs = []
    for i, runner in enumerate((pyrunc, runc)):
        d = tmp_path / f"r{i}"
        d.mkdir()
        r = _run(runner, make_bundle(), cid, d, ["--preserve-fds", "1"],
                 env_prefix="LISTEN_PID=$$ LISTEN_FDS=1", script=script)
        outs.append(_lines(r))
    assert outs[0] == outs[1]
    assert outs[0][:3] == ["content3", "content4", "1 1"]


# ------------------------------------------------------------------------ the Python API

API_CALLER = """
import os, sys, time
sys.path[:0] = [{root!r}]
from pyrunc import Runtime
rt = Runtime(sys.argv[1])
listen = int(sys.argv[4])
rt.create(sys.argv[2], sys.argv[3], listen_fds=listen, preserve_fds=1)
rt.start(sys.argv[2])
while rt.state(sys.argv[2]).status != "stopped":
    time.sleep(0.01)
rt.delete(sys.argv[2])
"""


@pytest.mark.parametrize("listen", [2, 0])
def test_api_create_passes_listen_fds(make_bundle, cid, tmp_path, listen):
    """Runtime.create(listen_fds=N) from Python, no CLI and no LISTEN_* in the caller's
    environment: the process gets fds 3..3+N-1 first, the preserved one after them, and
    LISTEN_FDS=N LISTEN_PID=1 (with N=0: neither variable, only the preserved fd)."""
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for i in (3, 4, 5):
        (tmp_path / f"f{i}").write_text(f"content{i}\n")
    bundle = make_bundle()
    bundle.process["args"] = ["sh", "-c", "cat <&3; ls /proc/self/fd | wc -l; "
                              "echo ${LISTEN_FDS-unset} ${LISTEN_PID-unset}"]
    bundle.write()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    line = f'exec 3<{tmp_path}/f3 4<{tmp_path}/f4 5<{tmp_path}/f5; exec "$@"'
    r = subprocess.run(["bash", "-c", line, "_", sys.executable, "-I", "-c", API_CALLER.format(root=root),
                        str(tmp_path / "api-root"), cid, bundle.path, str(listen)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    lines = [x.strip() for x in r.stdout.splitlines()]
    if listen:
        # 0-2, 3-4 (listen), 5 (preserved), ls's own
        assert lines == ["content3", "7", "2 1"]
    else:
        assert lines == ["content3", "5", "unset unset"]  # 0-2, 3 (preserved), ls's own
