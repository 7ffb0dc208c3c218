"""Values from the command line and their merging, without a container: sizes (go-units'
RAMInBytes), durations (Go's time.ParseDuration), `update`'s integer flags (strconv), Go's
Atoi syntax, exec's process from flags, the record's resources after `update`, ociVersion,
capability names and rlimit types."""

import copy

import pytest

from pyrunc.cli import commands
from pyrunc.errors import ConfigError, PyruncError, UsageError
from pyrunc.goparse import is_atoi, is_digits
from pyrunc.linux import capabilities
from pyrunc.runtime import cgroup_ops
from pyrunc.runtime.exec import process_from_flags
from pyrunc.shim import process
from pyrunc.spec import semantic

K, M, G = 1 << 10, 1 << 20, 1 << 30


@pytest.mark.parametrize("text, value", [
    ("0", 0), ("1", 1), ("1b", 1), ("1B", 1), ("1k", K), ("1K", K), ("1kb", K), ("1KiB", K),
    ("1ki", K), ("1 m", M), ("512 MiB", 512 * M), ("1.5g", 3 * G // 2), ("2t", 2 << 40),
    ("1p", 1 << 50), ("1PB", 1 << 50), ("-1", -1), ("1 ", 1), ("1i", 1), ("1.5.5" * 0 + "10", 10),
])
def test_sizes(text, value):
    assert commands.parse_bytes(text) == value


@pytest.mark.parametrize("text", ["", "b", "k", "x", "-5", "-1k", " 1m", "1  m", "1mm", "1bi",
                                  "1e3m", "1_0m", ".5m", "5.m", "1.5.5", "1m ", "1 kbb", "inf", "nan"])
def test_bad_sizes(text):
    with pytest.raises(ValueError):
        commands.parse_bytes(text)


@pytest.mark.parametrize("text, seconds", [
    ("5s", 5), ("0", 0), ("0s", 0), ("1ms", 0.001), ("300ms", 0.3), ("1m30s", 90), ("1.5h", 5400),
    (".5s", 0.5), ("5.s", 5), ("+5s", 5), ("-1s", -1), ("1\u00b5s", 1e-6), ("1\u03bcs", 1e-6),
    ("2us", 2e-6), ("7ns", 7e-9), ("1h1m1s1ms", 3661.001),
])
def test_go_durations(text, seconds):
    assert commands.go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "x", "1", "s", ".s", "-", "+", "1e3s", "1h-1m", "1d",
                                  "1 s", "5S", "9999999999h"])
def test_bad_go_durations(text):
    assert commands.go_duration(text) is None


def test_interval_flag_errors_are_runcs():
    assert commands._duration("1m30s") == 90
    with pytest.raises(UsageError, match='^invalid value "x" for flag -interval: parse error$'):
        commands._duration("x")
    for text in ("0s", "-1s", "0"):
        with pytest.raises(PyruncError, match="^duration interval must be greater than 0$"):
            commands._duration(text)


@pytest.mark.parametrize("flags, resources", [
    ({"memory": "1g", "cpu_quota": "-1", "cpu_period": "100000", "cpuset_cpus": "0-1"},
     {"memory": {"limit": G}, "cpu": {"quota": -1, "period": 100000, "cpus": "0-1"}}),
    ({"pids_limit": "-1", "blkio_weight": "", "memory_swap": "-1"},
     {"pids": {"limit": -1}, "memory": {"swap": -1}}),
    ({"cpu_period": "18446744073709551615"}, {"cpu": {"period": 2**64 - 1}}),
    ({"cpu_quota": "+5"}, {"cpu": {"quota": 5}}),
])
def test_update_flags(flags, resources):
    assert commands._resources_from_flags(flags) == resources


@pytest.mark.parametrize("flags, message", [
    ({"cpu_period": " 5"}, 'invalid value for cpu-period: strconv.ParseUint: parsing " 5": invalid syntax'),
    ({"cpu_period": "+5"}, 'invalid value for cpu-period: strconv.ParseUint: parsing "+5": invalid syntax'),
    ({"cpu_period": "-5"}, 'invalid value for cpu-period: strconv.ParseUint: parsing "-5": invalid syntax'),
    ({"cpu_share": "1_0"}, 'invalid value for cpu-share: strconv.ParseUint: parsing "1_0": invalid syntax'),
    ({"cpu_period": "18446744073709551616"},
     'invalid value for cpu-period: strconv.ParseUint: parsing "18446744073709551616": value out of range'),
    ({"cpu_quota": "-9223372036854775809"},
     'invalid value for cpu-quota: strconv.ParseInt: parsing "-9223372036854775809": value out of range'),
    ({"memory": "1x"}, "invalid value for memory: invalid size: '1x'"),
])
def test_bad_update_flags(flags, message):
    with pytest.raises(PyruncError) as e:
        commands._resources_from_flags(flags)
    assert str(e.value) == message


def test_bad_int_flag_is_a_usage_error():
    with pytest.raises(UsageError, match='^invalid value "x" for flag -pids-limit: parse error$'):
        commands._resources_from_flags({"pids_limit": "x"})


def test_update_with_a_resources_file_ignores_the_flags(monkeypatch, tmp_path):
    """runc: --resources replaces the flags (its flag branch is the else of the file's)."""
    path = tmp_path / "r.json"
    path.write_text('{"pids": {"limit": 5}}')
    got = []

    class Rt:
        def update(self, cid, resources):
            got.append((cid, resources))
    commands._update(Rt(), {"resources": str(path), "memory": "1g", "pids_limit": "9"}, ["c"])
    assert got == [("c", {"pids": {"limit": 5}})]


def test_the_record_keeps_old_values_where_update_gave_zero_or_nothing():
    old = {"memory": {"limit": 100, "swap": 200}, "cpu": {"shares": 2, "cpus": "0"},
           "pids": {"limit": 10}, "devices": [{"allow": False, "access": "rwm"}]}
    new = {"memory": {"limit": 300, "swap": 0}, "cpu": {"cpus": "", "quota": 5},
           "pids": {"limit": None}, "blockIO": {"weight": 10}, "devices": []}
    merged = cgroup_ops._merge(copy.deepcopy(old), new)
    assert merged == {"memory": {"limit": 300, "swap": 200}, "cpu": {"shares": 2, "cpus": "0", "quota": 5},
                      "pids": {"limit": 10}, "devices": [{"allow": False, "access": "rwm"}],
                      "blockIO": {"weight": 10}}
    assert cgroup_ops._merge({}, {"memory": {"limit": -1}}) == {"memory": {"limit": -1}}


@pytest.mark.parametrize("text, ok", [("0", True), ("+9", True), ("-9", True), ("", False), ("+", False),
                                      ("1_0", False), (" 1", False), ("1 ", False), ("\u0661", False),
                                      ("0x10", False), ("--1", False), ("\u00b2", False)])
def test_go_atoi_syntax(text, ok):
    assert is_atoi(text) is ok
    assert is_digits(text) is (ok and text[:1] not in "+-")


BASE = {"args": ["sh"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 5, "gid": 6},
        "capabilities": {"bounding": ["CAP_KILL"], "inheritable": ["CAP_NET_RAW"]},
        "noNewPrivileges": True, "terminal": True}


def test_process_from_flags_overrides_and_appends():
    base = copy.deepcopy(BASE)
    p = process_from_flags(base, ["ls", "-l"], cwd="/tmp", env=["A=1"], user="1000:1001",
                           additional_gids=["7", "8"], caps=["CAP_CHOWN", "CAP_NET_RAW"],
                           apparmor="prof", process_label="lbl")
    assert base == BASE  # the container's process is left alone
    assert p["args"] == ["ls", "-l"] and p["cwd"] == "/tmp"
    assert p["env"] == ["PATH=/bin", "A=1"]
    assert p["user"] == {"uid": 1000, "gid": 1001, "additionalGids": [7, 8]}
    caps = p["capabilities"]
    assert caps["bounding"] == ["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW"]
    assert caps["effective"] == caps["permitted"] == ["CAP_CHOWN", "CAP_NET_RAW"]
    assert caps["ambient"] == ["CAP_NET_RAW"]  # only one that is inheritable
    assert (p["apparmorProfile"], p["selinuxLabel"]) == ("prof", "lbl")
    assert p["terminal"] is False and p["noNewPrivileges"] is True  # -t not given; nnp kept


def test_process_from_flags_user_forms():
    assert process_from_flags(BASE, ["x"], user="7")["user"] == {"uid": 7, "gid": 6}
    assert process_from_flags(BASE, ["x"], user="-1")["user"]["uid"] == 2**32 - 1  # uint32(int)
    assert process_from_flags(BASE, ["x"], no_new_privs=False)["noNewPrivileges"] is False
    no_user = {k: v for k, v in BASE.items() if k != "user"}
    assert process_from_flags(no_user, ["x"])["user"] == {"uid": 0, "gid": 0}


@pytest.mark.parametrize("kw, message", [
    ({"user": "x"}, 'parsing x as int for uid failed: strconv.Atoi: parsing "x": invalid syntax'),
    ({"user": "0:y"}, 'parsing y as int for gid failed: strconv.Atoi: parsing "y": invalid syntax'),
    ({"user": " 1"}, 'parsing  1 as int for uid failed: strconv.Atoi: parsing " 1": invalid syntax'),
    ({"additional_gids": ["x"]}, 'invalid value "x" for flag -additional-gids'),
    ({"additional_gids": ["-1"]}, "additional-gids must be a positive number -1"),
    ({"cwd": "rel"}, "Cwd must be an absolute path"),
])
def test_process_from_flags_errors(kw, message):
    with pytest.raises(ConfigError) as e:
        process_from_flags(BASE, ["x"], **kw)
    assert str(e.value) == message


def test_process_from_flags_needs_args():
    with pytest.raises(ConfigError, match="^args must not be empty$"):
        process_from_flags(BASE, [])


@pytest.mark.parametrize("version, parsed", [
    ("1.0.0", (1, 0, 0)), ("1.2.3-rc.1", (1, 2, 3)), ("1.1.0+dev", (1, 1, 0)), ("1.0.2-dev", (1, 0, 2)),
    ("1.3.0-rc.1+build.5", (1, 3, 0)), ("01.0.0", (1, 0, 0)),
    ("1.0", None), ("1.0.0.0", None), ("v1.0.0", None), ("1.0.0-", None), ("1.0.0+", None),
    ("1.0.0-a_b", None), ("1.x.0", None), ("", None), ("1..0", None), ("1.0.\u00b2", None),
])
def test_semver(version, parsed):
    assert semantic._semver(version) == parsed


@pytest.mark.parametrize("version, ok", [("1.0.0", True), ("1.3.9", True), ("1.4.0", False),
                                         ("2.0.0", False), ("0.9.0", False), ("1.2", False)])
def test_supported_oci_versions(version, ok):
    report = []
    semantic.check_config({"ociVersion": version, "root": {"path": "r"},
                           "process": {"args": ["x"], "cwd": "/", "user": {"uid": 0}}}, report)
    assert (not any(field == "ociVersion" for _, field, _ in report)) is ok


def test_rlimit_types_checked_once_each_and_soft_under_hard():
    report = []
    semantic.check_process({"user": {"uid": 0}, "rlimits": [
        {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2}, {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2},
        {"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}, {"type": "RLIMIT_CORE", "soft": 3, "hard": 2}]},
        report=report)
    assert [field for _, field, _ in report] == ["process.rlimits[1].type", "process.rlimits[2].type",
                                                 "process.rlimits[3]"]
    # what the schema's check accepts is what the shim can set (RLIMIT_LOCKS: not in `resource`)
    assert semantic.RLIMITS == set(process.RLIMITS)


def test_capability_names():
    sets, warnings = capabilities.resolve({"bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_BPF", "CAP_FUTURE"],
                                           "ambient": []}, last=38)
    assert sets["bounding"] == {0, 5}  # CAP_BPF is 39: above this kernel's last
    assert sets["ambient"] == frozenset() and sets["effective"] == frozenset()
    assert warnings == ["ignoring unknown or unavailable capabilities: [CAP_BPF CAP_FUTURE]"]
    for bad in ("kill", "CAP_", "CAP_kill", "SYS_ADMIN", "CAP_SYS ADMIN"):
        with pytest.raises(capabilities.CapabilityError, match=r"^process.capabilities.bounding\[0\]: "):
            capabilities.resolve({"bounding": [bad]}, last=40)
    assert capabilities.NUMBERS["CAP_CHECKPOINT_RESTORE"] == 40
    assert capabilities.NUMBERS["CAP_SYS_ADMIN"] == 21


def test_entry_runs_the_verb_without_the_cyclic_gc_and_events_streams_with_it():
    """entry() turns the GC off for a call's imports (docs/ARCHITECTURE.md, the hot path);
    a streaming `events` and a foreground run turn it back on before they wait."""
    import subprocess
    import sys
    code = ("import gc, sys\n"
            "from pyrunc.cli import main as m\n"
            "m.main = lambda: sys.stdout.write(str(gc.isenabled())) and 0\n"
            "m.entry()\n")
    import os
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert (r.returncode, r.stdout) == (0, "False"), r.stderr

    class Rt:
        def events(self, *_a, **_k):
            import gc
            self.gc = gc.isenabled()

        def run(self, *_a, **_k):
            import gc
            self.gc = gc.isenabled()
            return 0

    import gc
    gc.disable()
    try:
        rt = Rt()
        commands._events(rt, {"interval": "5s", "stats": False}, ["c"])
        assert rt.gc
        gc.disable()
        commands._run(rt, {"detach": False, "bundle": "b", "pid_file": None, "console_socket": None,
                           "no_pivot": False, "preserve_fds": 0, "keep": False}, ["c"])
        assert rt.gc
    finally:
        gc.enable()
