"""Bad input gets one clear line naming the field or file: the crash classes the property test
(tests/integration/test_property.py) found, pinned one by one."""

import copy
import json

import pytest

from pyrunc import jsonio
from pyrunc.errors import ConfigError, describe
from pyrunc.spec import load, schema, semantic
from pyrunc.spec.default import default_config


def message(doc):
    with pytest.raises(ConfigError) as e:
        schema.validate(doc)
        semantic.check_config(doc)
    return str(e.value)


def config(**changes):
    doc = default_config()
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = doc
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        node[last] = value
    return doc


# ---------------------------------------------------------------- JSON


@pytest.mark.parametrize("depth", [100, 1200, 100000])
def test_deep_nesting_is_named_not_a_recursion_error(depth):
    with pytest.raises(ConfigError) as e:
        load.parse_json(b"[" * depth + b"]" * depth, "config.json")
    assert str(e.value) == "config.json: nested too deeply (more than 64 levels)"


def test_nesting_up_to_the_limit_parses():
    """Up to 64 levels always parse (a few more may, depending on the caller's stack)."""
    assert load.parse_json(b'{"a":' * 63 + b"1" + b"}" * 63, "config.json")
    text = b"[" * 64 + b"]" * 64
    assert load.parse_json(text, "config.json") == json.loads(text)


def test_unbounded_loads_reports_nesting_as_a_value_error():
    with pytest.raises(jsonio.NestingError):
        jsonio.loads("[" * 100000 + "]" * 100000)


def test_recursion_limit_is_restored():
    import sys
    before = sys.getrecursionlimit()
    with pytest.raises(ConfigError):
        load.parse_json(b"[" * 1000, "config.json")
    load.parse_json(b"{}", "config.json")
    assert sys.getrecursionlimit() == before


def test_not_utf8_is_named():
    with pytest.raises(ConfigError) as e:
        load.parse_json(b'{"a": "\xff"}', "config.json")
    assert str(e.value) == "config.json: invalid JSON: not UTF-8 text (byte 0xff at offset 7)"


def test_integral_floats_become_ints():
    doc = load.parse_json(b'{"uid": 1000.0, "x": 1.5, "e": 1e3}', "config.json")
    assert doc == {"uid": 1000, "x": 1.5, "e": 1000} and type(doc["uid"]) is int


# ---------------------------------------------------------------- strings


@pytest.mark.parametrize("field,value,where", [
    ("linux__cgroupsPath", "/a\0b", "linux.cgroupsPath"),
    ("hostname", "a\0", "hostname"),
    ("process__cwd", "/\0", "process.cwd"),
    ("root__path", "r\0", "root.path"),
    ("process__env", ["A=\ud800"], "process.env[0]"),
    ("process__args", ["tr\0ue"], "process.args[0]"),
    ("linux__seccomp", {"defaultAction": "SCMP_ACT_ALLOW",
                        "syscalls": [{"names": ["\ud800"], "action": "SCMP_ACT_ERRNO"}]},
     "linux.seccomp.syscalls[0].names[0]"),
])
def test_nul_and_lone_surrogates_are_named_by_field(field, value, where):
    text = message(config(**{field: value}))
    assert text.startswith(f"config.json: {where}: ")
    assert text.endswith(("contains a NUL byte", "is not valid Unicode text (a lone surrogate)"))


def test_bad_map_keys_are_named():
    assert message(config(linux__sysctl={"kernel.\0x": "1"})) == \
        'config.json: linux.sysctl: property name "kernel.\\u0000x" contains a NUL byte'
    assert message(config(annotations={"\udc80": "x"})).startswith(
        'config.json: annotations: property name "\\udc80" is not valid Unicode')


def test_a_nul_byte_in_json_text_reaches_the_check():
    doc = load.parse_json(json.dumps(config(hostname="a\0b")).encode(), "config.json")
    assert message(doc) == 'config.json: hostname: "a\\u0000b" contains a NUL byte'


# ---------------------------------------------------------------- values the syscalls refuse


@pytest.mark.parametrize("change,text", [
    ({"process__user__uid": 4294967295}, "config.json: process.user.uid: 4294967295 is (uid_t)-1"),
    ({"process__user__additionalGids": [4294967295]}, "config.json: process.user.additionalGids[0]: "),
    ({"process__user__umask": 4294967295}, "config.json: process.user.umask: "),
    ({"process__rlimits": [{"type": "RLIMIT_CORE", "soft": 2, "hard": 1}]},
     "config.json: process.rlimits[0]: RLIMIT_CORE: soft limit 2 is greater than the hard limit 1"),
    ({"process__rlimits": [{"type": "RLIMIT_FOO", "soft": 1, "hard": 1}]},
     "config.json: process.rlimits[0].type: unknown rlimit type 'RLIMIT_FOO'"),
    ({"process__rlimits": [{"type": "RLIMIT_CORE", "soft": 1, "hard": 1}] * 2},
     "config.json: process.rlimits[1].type: RLIMIT_CORE is also process.rlimits[0]"),
    ({"process__consoleSize": {"height": 70000, "width": 80}}, "config.json: process.consoleSize.height: "),
    ({"linux__devices": [{"type": "c", "path": "/dev/x", "major": 4096, "minor": 0}]},
     "config.json: linux.devices[0].major: 4096 is not a device major number"),
    ({"linux__devices": [{"type": "c", "path": "/dev/x", "major": 1, "minor": 1048576}]},
     "config.json: linux.devices[0].minor: "),
    ({"linux__seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}},
     "config.json: linux.seccomp.syscalls[0].args[0].index: 6 is not a syscall argument"),
    ({"hostname": "h" * 65}, "config.json: hostname: 65 characters is longer than the kernel's 64"),
    ({"linux__seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 8785}},
     "config.json: linux.seccomp.defaultErrnoRet: 8785 is not an errno (at most 4095)"),
    ({"linux__seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 65536}]}},
     "config.json: linux.seccomp.syscalls[0].errnoRet: 65536 is not an errno"),
])
def test_out_of_range_values_are_named(change, text):
    assert message(config(**change)).startswith(text)


@pytest.mark.parametrize("key,ok", [
    ("net.ipv4.ip_forward", True), ("kernel.shmmax", True), ("fs.mqueue.msg_max", True),
    ("kernel.domainname", True), ("vm.swappiness", False), ("kernel.printk", False),
    ("kernel.hostname", False), ("fs.file-max", False), ("net.ipv4/../../vm/x", False), ("", False),
])
def test_only_namespaced_sysctls_as_runc(key, ok):
    """Any other key would be written to the host's /proc/sys (vm.*, kernel.* are global)."""
    doc = config(linux__sysctl={key: "1"})
    if ok:
        schema.validate(doc)
        semantic.check_config(doc)
    else:
        assert message(doc).startswith("config.json: linux.sysctl")


def test_namespaced_sysctl_needs_its_namespace():
    doc = config(linux__sysctl={"kernel.shmmax": "1"})
    doc["linux"]["namespaces"] = [ns for ns in doc["linux"]["namespaces"] if ns["type"] != "ipc"]
    assert "needs a ipc namespace" in message(doc) or "needs an ipc namespace" in message(doc)


def test_joining_our_own_namespace_cannot_change_the_host():
    doc = config(linux__sysctl={"net.ipv4.ip_forward": "1"})
    for ns in doc["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = "/proc/self/ns/net"
    assert "joined by path is pyrunc's own" in message(doc)
    doc = config()
    for ns in doc["linux"]["namespaces"]:
        if ns["type"] == "uts":
            ns["path"] = "/proc/self/ns/uts"
    assert message(doc).startswith("config.json: hostname: the uts namespace joined by path is pyrunc's own")


def test_engine_like_configs_still_pass():
    doc = copy.deepcopy(default_config())
    doc["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1048576},
                                 {"type": "RLIMIT_CORE", "soft": 2**64 - 1, "hard": 2**64 - 1}]
    doc["linux"]["sysctl"] = {"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shm_rmid_forced": "1"}
    doc["process"]["user"].update(umask=0o022, additionalGids=[0, 10])
    schema.validate(doc)
    semantic.check_config(doc)


# ---------------------------------------------------------------- the last resort


def test_describe_never_names_the_type():
    e = FileNotFoundError(2, "No such file or directory", "/x")
    assert describe(e) == "/x: no such file or directory"
    assert describe(ValueError("embedded null byte")) == "embedded null byte"
    assert describe(RecursionError("maximum recursion depth exceeded")) == "input nested too deeply"
    assert describe(KeyError()) == "unexpected failure"


def test_cli_internal_error_is_one_line_without_a_type_name(monkeypatch, capsys, tmp_path):
    from pyrunc.cli import commands, main

    def boom(*_):
        raise ValueError("embedded null byte")

    monkeypatch.setitem(commands.COMMANDS, "list", commands.COMMANDS["list"])
    monkeypatch.setattr(commands.COMMANDS["list"], "handler", boom)
    assert main.main(["--root", str(tmp_path), "list"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'msg="internal error: list: embedded null byte"' in err
    assert "ValueError" not in err


def test_cli_oserror_names_the_file(monkeypatch, capsys, tmp_path):
    from pyrunc.cli import commands, main

    def boom(*_):
        raise PermissionError(13, "Permission denied", "/run/x/state.json")

    monkeypatch.setattr(commands.COMMANDS["list"], "handler", boom)
    assert main.main(["--root", str(tmp_path), "list"]) == 1
    assert 'msg="/run/x/state.json: permission denied"' in capsys.readouterr().err


def test_root_that_is_a_file(capsys, tmp_path):
    from pyrunc.cli import main
    f = tmp_path / "f"
    f.write_text("")
    assert main.main(["--root", str(f), "state", "x"]) == 1
    assert "not a directory" in capsys.readouterr().err


def test_log_lines_carry_no_terminal_controls(capsys, tmp_path):
    """A config's value (a hook path, a mount source) reaches messages: escape what a terminal
    would act on, as Go's %q does for runc's log lines."""
    from pyrunc.cli.log import Logger
    text = "exec \x1b[31m\x05\x9c\u2028\udc80 é: no such file"
    Logger().error(text)
    err = capsys.readouterr().err
    assert err.isprintable() is False and err.count("\n") == 1 and err[:-1].isprintable()
    assert 'exec \\x1b[31m\\x05\\u009c\\u2028\\udc80 é: no such file' in err
    Logger(str(tmp_path / "log")).error(text + "\n")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err[:-1].isprintable()


def test_kill_signal_numbers_as_runc_passes_them():
    """runc: a number is sent as is and the kernel sees its low 32 bits; one beyond Go's int
    fails Atoi and is looked up as a name (checked with runc 1.1.5 on a running container)."""
    import pytest

    from pyrunc.errors import SignalError
    from pyrunc.runtime.signals import parse
    assert parse("9") == 9 and parse("+15") == 15 and parse("-5") == -5
    assert parse("4294967305") == 9  # 2**32 + 9: runc killed the container with it
    assert parse("99999999999") == 1215752191  # the kernel says EINVAL, as to runc
    with pytest.raises(SignalError, match='unknown signal "999999999999999999999999999999"'):
        parse("999999999999999999999999999999")
