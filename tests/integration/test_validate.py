"""`pyrunc validate [--bundle B]`: every problem create would find, each naming its field, and
nothing created (no --root, no state, no cgroup, no cache entry, no process)."""

import os
import time

from helpers import error_of, live_inits, mountpoints


def validate(pyrunc, bundle, **kw):
    return pyrunc("validate", "--bundle", bundle.path, **kw)


def cgroups_named(name):
    """The directories of cgroup `name` (an absolute cgroupsPath) in every hierarchy. (Not a
    diff of all cgroups: other tests may run containers meanwhile.)"""
    tops = ["/sys/fs/cgroup"] + [os.path.join("/sys/fs/cgroup", d) for d in os.listdir("/sys/fs/cgroup")]
    return [t + name for t in tops if os.path.isdir(t + name)]


def test_good_bundle_is_ok_and_nothing_is_created(pyrunc, make_bundle, cid, tmp_path):
    b = make_bundle("sh", "-c", "true")
    b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                          "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    b.linux["cgroupsPath"] = "/pyrunc-validate-" + cid
    b.write()
    cache = tmp_path / "xdg-cache"
    start = time.monotonic()
    r = validate(pyrunc, b, env=dict(os.environ, XDG_CACHE_HOME=str(cache)))
    took = time.monotonic() - start
    assert (r.rc, r.out, r.err) == (0, f"{b.path}: OK\n", "")
    print(f"validate (good bundle, seccomp compiled): {took * 1000:.0f} ms")
    assert not os.path.exists(pyrunc.root)  # no state, not even the root directory
    assert not cache.exists()  # the seccomp program was compiled, not cached
    assert not [m for m in mountpoints() if m.startswith(str(tmp_path))]
    assert cgroups_named(b.linux["cgroupsPath"]) == []
    assert not live_inits(pyrunc.root)
    # and create agrees: the same bundle makes a container (whose cgroup the check above sees)
    b.process["args"] = ["sleep", "60"]
    b.write()
    assert pyrunc("run", "--detach", "--bundle", b.path, cid).rc == 0
    assert cgroups_named(b.linux["cgroupsPath"]) != []
    assert pyrunc("delete", "--force", cid).rc == 0


def test_every_schema_error_at_once_with_its_field(pyrunc, make_bundle, cid):
    b = make_bundle("true")
    b.process["user"]["uid"] = "root"
    b.config["hostname"] = 5
    b.config["mounts"][0]["type"] = None
    b.linux["cgroupsPath"] = "/a\0b"
    b.linux["namespaces"].append({"type": "nosuch"})
    b.write()
    r = validate(pyrunc, b)
    assert r.rc == 1 and error_of(r) == f"{b.path}: 5 problems"
    assert r.out.splitlines() == [
        'config.json: process.user.uid: "root" is not of type integer',
        'config.json: hostname: 5 is not of type string',
        'config.json: mounts[0].type: null is not of type string',
        'config.json: linux.namespaces[5].type: "nosuch" is not one of "pid", "network", "mount", '
        '"ipc", "uts", "user", "cgroup", "time"',
        'config.json: linux.cgroupsPath: "/a\\u0000b" contains a NUL byte',
    ], r.out
    # create names the first of them, and creates nothing
    c = pyrunc("create", "--bundle", b.path, cid)
    assert c.rc == 1 and error_of(c) == f"pyrunc create failed: {r.out.splitlines()[0]}"
    assert not pyrunc.ids()


def test_semantic_rootfs_and_executable_problems_at_once(pyrunc, make_bundle, cid):
    b = make_bundle("nosuch-program")
    b.process["user"] = {"uid": 4294967295, "gid": 0}
    b.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 2, "hard": 1}]
    b.linux["sysctl"] = {"vm.swappiness": "1"}
    b.write()
    r = validate(pyrunc, b)
    assert r.rc == 1 and error_of(r) == f"{b.path}: 4 problems"
    lines = r.out.splitlines()
    assert lines[0].startswith("config.json: process.user.uid: 4294967295 is (uid_t)-1, not an id")
    assert lines[1] == ("config.json: process.rlimits[0]: RLIMIT_NOFILE: soft limit 2 is greater than "
                        "the hard limit 1")
    assert lines[2] == ("config.json: linux.sysctl.vm.swappiness: is not in a separate kernel "
                        "namespace: it would change the host")
    assert lines[3] == ('config.json: process.args[0]: exec: "nosuch-program": executable file not '
                        'found in $PATH in the rootfs')
    assert lines[4:] == []
    # the rootfs: gone, reported instead of the executable
    b.config["root"]["path"] = "/nonexistent-rootfs"
    b.process["user"]["uid"] = 0
    b.write()
    r = validate(pyrunc, b)
    assert "config.json: root.path: rootfs (/nonexistent-rootfs) does not exist or is not a directory" \
        in r.out.splitlines() and "executable" not in r.out
    assert not os.path.exists(pyrunc.root)


def test_executable_lookup_stays_in_the_rootfs(pyrunc, make_bundle, cid, rootfs, tmp_path):
    """args[0] is looked up inside the rootfs (a symlink to a host path is resolved in it), and
    a program a mount may bring is not reported."""
    b = make_bundle("/bin/sh")
    assert validate(pyrunc, b).rc == 0
    b.process["args"] = ["/usr/bin/python3"]  # on the host, not in the busybox rootfs
    b.write()
    r = validate(pyrunc, b)
    assert r.rc == 1 and 'exec: "/usr/bin/python3": executable file not found at /usr/bin/python3' in r.out
    b.config["mounts"].append({"destination": "/usr", "type": "bind", "source": "/usr",
                               "options": ["rbind", "ro"]})
    b.write()
    assert validate(pyrunc, b).rc == 0  # the mount may provide it


def test_unreadable_config_is_one_problem(pyrunc, tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "config.json").write_text('{"ociVersion": ')
    r = pyrunc("validate", "--bundle", str(tmp_path / "b"))
    assert r.rc == 1 and r.out.startswith("config.json: invalid JSON: ") and r.err.count("\n") == 1
    r = pyrunc("validate", "--bundle", str(tmp_path / "none"))
    assert r.rc == 1 and r.out == f"bundle {tmp_path / 'none'}: no such directory\n"
    assert error_of(r) == f"{tmp_path / 'none'}: 1 problem"
