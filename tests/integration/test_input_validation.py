"""Config values that would reach the host or a syscall's special case are refused, naming
the field, with nothing left behind (real CLI, real containers)."""

import json

import pytest
from helpers import error_of


def test_host_global_sysctl_is_refused(pyrunc, make_bundle, cid, no_leaks):
    """vm.* is not namespaced: writing it from the container would change the host. The value
    written is the host's current one, so even without the defence the host is unchanged."""
    with open("/proc/sys/vm/swappiness") as f:
        current = f.read().strip()
    b = make_bundle("true")
    b.linux["sysctl"] = {"vm.swappiness": current}
    b.write()
    r = pyrunc("run", "--bundle", b.path, cid)
    assert r.rc == 1, (r.rc, r.err)
    assert error_of(r) == ("pyrunc run failed: config.json: linux.sysctl.vm.swappiness: is not in a "
                           "separate kernel namespace: it would change the host")
    assert not pyrunc.ids()


def test_namespaced_sysctl_still_works(pyrunc, make_bundle, cid, no_leaks):
    b = make_bundle("cat", "/proc/sys/net/ipv4/ip_forward")
    b.linux["sysctl"] = {"net.ipv4.ip_forward": "1"}
    b.write()
    r = pyrunc("run", "--bundle", b.path, cid)
    assert (r.rc, r.out) == (0, "1\n"), r.err


def test_uid_minus_one_is_named_before_anything_runs(pyrunc, make_bundle, cid, no_leaks):
    """4294967295 is (uid_t)-1, which setresuid(2) reads as "leave unchanged" (root). The
    shim's identity step refuses it too, late and without the field; validation names it."""
    b = make_bundle("id", "-u")
    b.process["user"] = {"uid": 4294967295, "gid": 4294967295}
    b.write()
    r = pyrunc("run", "--bundle", b.path, cid)
    assert r.out == "", "the process ran: " + r.out
    assert r.rc == 1 and error_of(r).startswith(
        "pyrunc run failed: config.json: process.user.uid: 4294967295 is (uid_t)-1, not an id")
    assert not pyrunc.ids()


def test_nul_byte_in_cgroups_path_is_named(pyrunc, make_bundle, cid, no_leaks):
    b = make_bundle("true")
    b.linux["cgroupsPath"] = "/a\0b"
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc == 1
    assert error_of(r) == 'pyrunc create failed: config.json: linux.cgroupsPath: "/a\\u0000b" contains a NUL byte'
    assert not pyrunc.ids()


def test_nul_byte_in_every_config_string_is_named(pyrunc, make_bundle, cid, no_leaks):
    """Every string of a rich config (hooks, mounts, seccomp, sysctl, devices, ...) with a NUL
    byte: one line naming that field, never "internal error" (ValueError: embedded null byte)."""
    from pyrunc.spec.schema import format_path
    b = make_bundle("true")
    b.linux["cgroupsPath"] = "/pyrunc-nul-test"
    b.linux["sysctl"] = {"net.ipv4.ip_forward": "1"}
    b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                          "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    b.config["hooks"] = {"prestart": [{"path": "/bin/true", "args": ["true"], "env": ["A=1"]}]}
    b.config["annotations"] = {"a": "b"}
    b.config["hostname"] = "h"
    b.process["user"]["username"] = "root"
    good = json.loads(json.dumps(b.config))

    def strings(x, path=()):
        if isinstance(x, dict):
            for k, v in x.items():
                yield from strings(v, path + (k,))
        elif isinstance(x, list):
            for i, v in enumerate(x):
                yield from strings(v, path + (i,))
        elif isinstance(x, str):
            yield path

    paths = list(strings(good))
    assert len(paths) > 60
    for path in paths:
        doc = json.loads(json.dumps(good))
        *parent, last = path
        o = doc
        for k in parent:
            o = o[k]
        o[last] = o[last] + "\0x"
        b.config = doc
        b.write()
        r = pyrunc("create", "--bundle", b.path, cid)
        field = format_path(path)
        assert r.rc == 1 and "internal error" not in r.err, (path, r.err)
        assert error_of(r).startswith(f"pyrunc create failed: config.json: {field}: "), (path, r.err)
        assert not pyrunc.ids()


def test_nul_byte_in_update_resources_is_named(pyrunc, make_bundle, cid, tmp_path, no_leaks):
    """`update -r FILE` and the Python API's update(resources) check the same schema: a NUL byte
    (which the kernel would read as the end of the value: "0\\0junk" is "0") is refused by field,
    and nothing is written."""
    from pyrunc import Runtime  # the test imports the API in-process: only for update
    from pyrunc.errors import ConfigError
    b = make_bundle("sleep", "60")
    assert pyrunc("run", "--detach", "--bundle", b.path, cid).rc == 0
    res = tmp_path / "res.json"
    res.write_text(json.dumps({"devices": [{"allow": True, "access": "r\0"}]}))
    r = pyrunc("update", "-r", str(res), cid)
    assert r.rc == 1 and error_of(r) == f'{res}: devices[0].access: "r\\u0000" contains a NUL byte', r.err
    rt = Runtime(pyrunc.root)
    for resources, message in (
            ({"cpu": {"cpus": "0\0junk"}}, 'resources: cpu.cpus: "0\\u0000junk" contains a NUL byte'),
            ({"devices": [{"allow": True, "access": "r\0"}]},
             'resources: devices[0].access: "r\\u0000" contains a NUL byte'),
            ({"pids": "x"}, 'resources: pids: "x" is not of type object')):
        with pytest.raises(ConfigError) as e:
            rt.update(cid, resources)
        assert str(e.value) == message
    assert "cpus" not in json.dumps(rt.state(cid).to_oci().get("annotations") or {})
    assert pyrunc("delete", "--force", cid).rc == 0


def test_nul_byte_in_api_exec_arguments_is_named(pyrunc, make_bundle, cid, tmp_path):
    """The Python API's exec(args, env, cwd, ...) builds the process from strings no schema
    saw: a NUL byte is a field-named ConfigError before anything runs, not the shim's
    "internal error (embedded null byte)" (args) or a process started without it (env)."""
    from pyrunc import Runtime
    from pyrunc.errors import ConfigError
    b = make_bundle("sleep", "60")
    assert pyrunc("run", "--detach", "--bundle", b.path, cid).rc == 0
    rt = Runtime(pyrunc.root)
    for kw, message in (
            (dict(args=["tr\0ue"]), 'exec: args[0]: "tr\\u0000ue" contains a NUL byte'),
            (dict(args=["true"], cwd="/a\0"), 'exec: cwd: "/a\\u0000" contains a NUL byte'),
            (dict(args=["true"], env=["A=\0"]), 'exec: env[2]: "A=\\u0000" contains a NUL byte')):
        with pytest.raises(ConfigError) as e:
            rt.exec(cid, **kw)
        assert str(e.value) == message
    assert rt.exec(cid, ["true"]) == 0  # the same call without the NUL byte runs
    assert pyrunc("delete", "--force", cid).rc == 0
