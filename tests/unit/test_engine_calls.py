"""conformance/engine_calls.py: its logging wrapper records every call (argv, caller, times,
status) and hands the real runtime's exit status and output through; verbs are told apart as
the report needs them (runc's global options skipped, --force, --all and kill's signal kept)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "conformance"))
import engine_calls  # noqa: E402


def record(*argv):
    return "\x1f".join(["pyrunc", "1", "shim", "10.5", "10.75", "0", "0m0.012s", "1m0.003s", *argv])


def test_wrapper_records_each_call_and_passes_status_output_and_stdin_through(tmp_path):
    log = str(tmp_path / "calls.log")
    open(log, "w").close()
    real = tmp_path / "fake-runtime"
    real.write_text('#!/bin/sh\necho "out:$1"\ncat >&2\ni=0; while [ $i -lt 20000 ]; do i=$((i+1)); done\nexit "$2"\n')
    real.chmod(0o755)
    wrappers = engine_calls.write_wrappers(str(tmp_path), log, {"fake": str(real)})
    r = subprocess.run([wrappers["fake"], "a b\tc", "3"], input="in", capture_output=True, text=True)
    assert (r.returncode, r.stdout, r.stderr) == (3, "out:a b\tc\n", "in")
    subprocess.run([wrappers["fake"], "--root", "0"], check=True, capture_output=True)
    calls, offset = engine_calls.read_calls(log, 0)
    assert offset == os.path.getsize(log)
    assert [(c.runtime, c.argv, c.rc) for c in calls] == [("fake", ["a b\tc", "3"], 3), ("fake", ["--root", "0"], 0)]
    assert calls[0].caller == open(f"/proc/{os.getpid()}/comm").read().strip()
    assert all(0 <= c.seconds < 10 and c.start > 1e9 for c in calls)
    assert 0 < calls[0].cpu <= calls[0].seconds + 0.01  # the loop's CPU, which the wrapper waited for
    assert calls[0].end <= calls[1].start
    assert engine_calls.read_calls(log, offset) == ([], offset)


def test_a_record_being_written_is_left_for_the_next_read(tmp_path):
    log = tmp_path / "calls.log"
    log.write_bytes((record("start", "c1") + "\x1e" + "pyrunc\x1f2").encode())
    calls, offset = engine_calls.read_calls(str(log), 0)
    assert [c.argv for c in calls] == [["start", "c1"]] and offset == len(record("start", "c1")) + 1
    assert calls[0].seconds == 0.25 and abs(calls[0].cpu - 60.015) < 1e-9


def test_verbs_skip_global_options_and_keep_what_changes_the_call():
    def verb(*argv):
        return engine_calls.Call(record(*argv)).verb()

    assert verb("--root", "/r", "--log", "/b/log.json", "--log-format", "json", "create", "--bundle", "/b",
                "c1") == "create"
    assert verb("--log-format=json", "--log", "/l", "delete", "--force", "c1") == "delete --force"
    assert verb("--root", "/r", "--systemd-cgroup", "kill", "--all", "c1", "9") == "kill --all 9"
    assert verb("kill", "c1", "SIGKILL") == "kill SIGKILL"
    assert verb("kill", "c1") == "kill"
    assert verb("exec", "--process", "/p", "--detach", "--pid-file", "/f", "c1") == "exec --detach"
    assert verb("--version") == "--version"
    assert verb("--root", "/r") == "(none)"


def test_repeated_verbs_keep_their_own_columns():
    calls = [engine_calls.Call(record(*a)) for a in (("kill", "--all", "c", "9"), ("kill", "--all", "c", "9"),
                                                      ("delete", "c"))]
    assert [k for k, _ in engine_calls.keyed(calls)] == ["kill --all 9", "kill --all 9 #2", "delete"]
