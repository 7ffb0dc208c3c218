"""The filesystem half of config.json, checked in real containers.

root, mounts (flags, propagation, tmpcopyup, cgroup), symlink safety of mount
destinations, /dev (default and configured devices), maskedPaths, readonlyPaths,
sysctl, hostname/domainname and --no-pivot. Each test looks at the effect from
inside (the container's stdout) and, where it matters, from the host.
"""

import os
import stat
import subprocess

import pytest
from bundle import make_rootfs
from helpers import create, sh, sh_ok  # noqa: E402,F401

# ---------------------------------------------------------------- helpers


def mountinfo(text):
    """mount point -> dict(opts, optional, fstype, source, super, root); the last mount wins."""
    mounts = {}
    for line in text.splitlines():
        fields = line.split()
        sep = fields.index("-")
        mounts[fields[4]] = {
            "root": fields[3], "opts": set(fields[5].split(",")), "optional": fields[6:sep],
            "fstype": fields[sep + 1], "source": fields[sep + 2], "super": set(fields[sep + 3].split(",")),
        }
    return mounts


def private_rootfs(path, marker=None):
    """A busybox rootfs of the test's own: tests that change files in it do not touch the shared one."""
    os.makedirs(path, exist_ok=True)
    rootfs = make_rootfs(str(path))
    if marker is not None:
        with open(os.path.join(rootfs, "marker"), "w") as f:
            f.write(marker + "\n")
    return rootfs


def tmpfs(options=(), destination="/tmp"):
    return {"destination": destination, "type": "tmpfs", "source": "tmpfs", "options": list(options)}


@pytest.fixture
def host_tmpfs(tmp_path):
    """host_tmpfs(name, shared=False) -> a fresh tmpfs mounted on the host, unmounted at teardown."""
    mounted = []

    def factory(name, shared=False, options="defaults"):
        path = tmp_path / name
        path.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
        mounted.append(path)
        if shared:
            subprocess.run(["mount", "--make-shared", str(path)], check=True)
        return path

    yield factory
    for path in reversed(mounted):
        subprocess.run(["umount", "-R", "-l", str(path)], check=False)


# ---------------------------------------------------------------- root

def test_root_path_relative_to_bundle(pyrunc, make_bundle, cid):
    b = make_bundle()
    private_rootfs(os.path.join(b.path, "myroot"), marker="relative-root")
    b.config["root"]["path"] = "myroot"
    assert sh_ok(pyrunc, b, cid, "cat /marker") == "relative-root\n"


def test_root_path_absolute(pyrunc, make_bundle, cid, tmp_path):
    b = make_bundle()
    rootfs = private_rootfs(tmp_path / "elsewhere" / "rootfs", marker="absolute-root")
    b.config["root"]["path"] = rootfs
    out = sh_ok(pyrunc, b, cid, "cat /marker; awk '$5 == \"/\"' /proc/self/mountinfo")
    marker, line = out.splitlines()
    assert marker == "absolute-root"
    assert line.split()[3] == rootfs  # the bind's root on the host fs is that directory


@pytest.mark.parametrize("readonly", [True, False])
def test_root_readonly(pyrunc, make_bundle, cid, tmp_path, readonly):
    b = make_bundle()
    rootfs = private_rootfs(tmp_path / "rootfs")
    b.config["root"] = {"path": rootfs, "readonly": readonly}
    b.config["mounts"].append(tmpfs())
    r = sh(pyrunc, b, cid, "touch /probe; echo rc=$?; touch /tmp/probe && echo tmp-writable")
    assert r.rc == 0, r.err
    if readonly:
        assert r.out == "rc=1\ntmp-writable\n"
        assert "touch: /probe: Read-only file system" in r.err
        assert not os.path.exists(os.path.join(rootfs, "probe"))
    else:
        assert r.out == "rc=0\ntmp-writable\n"
        assert os.path.exists(os.path.join(rootfs, "probe"))


# ---------------------------------------------------------------- bind mounts

def test_bind_directory_relative_source_and_file(pyrunc, make_bundle, cid, tmp_path):
    b = make_bundle()
    os.makedirs(os.path.join(b.path, "data"))
    with open(os.path.join(b.path, "data", "in-dir"), "w") as f:
        f.write("from the bundle\n")
    host_file = tmp_path / "single"
    host_file.write_text("one file\n")
    b.config["mounts"] += [
        {"destination": "/mnt/data", "type": "bind", "source": "data", "options": ["rbind"]},
        {"destination": "/mnt/deep/single", "type": "bind", "source": str(host_file), "options": ["bind"]},
    ]
    # pyrunc runs with the test's cwd, so "data" only works if resolved against the bundle
    assert os.getcwd() != b.path
    out = sh_ok(pyrunc, b, cid, "cat /mnt/data/in-dir /mnt/deep/single; echo written > /mnt/data/new; "
                                "echo changed > /mnt/deep/single; "
                                "stat -c %F /mnt/deep/single")
    assert out == "from the bundle\none file\nregular file\n"
    # read-write binds: the writes reach the host
    assert open(os.path.join(b.path, "data", "new")).read() == "written\n"
    assert host_file.read_text() == "changed\n"


@pytest.mark.parametrize("option, sees_submount", [("rbind", True), ("bind", False)])
def test_rbind_takes_submounts_bind_does_not(pyrunc, make_bundle, cid, tmp_path, host_tmpfs,
                                             option, sees_submount):
    src = tmp_path / "src"
    src.mkdir()
    (src / "top").write_text("top\n")
    sub = host_tmpfs("src/sub")
    (sub / "inner").write_text("in the submount\n")
    b = make_bundle()
    b.config["mounts"].append({"destination": "/mnt/src", "type": "bind", "source": str(src),
                               "options": [option]})
    out = sh_ok(pyrunc, b, cid, "cat /mnt/src/top; ls /mnt/src/sub")
    assert out == "top\n" + ("inner\n" if sees_submount else "")


def test_ro_bind_refuses_writes(pyrunc, make_bundle, cid, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("original\n")
    b = make_bundle()
    b.config["mounts"] += [
        {"destination": "/mnt/ro", "type": "bind", "source": str(src), "options": ["rbind", "ro"]},
        {"destination": "/mnt/ro-file", "type": "bind", "source": str(src / "f"), "options": ["bind", "ro"]},
    ]
    r = sh(pyrunc, b, cid, "cat /mnt/ro/f; echo x > /mnt/ro/f; echo x > /mnt/ro-file; touch /mnt/ro/new; "
                           "grep -E ' /mnt/ro(-file)? ' /proc/self/mountinfo")
    assert r.rc == 0, r.err
    assert r.out.startswith("original\n")
    mounts = mountinfo(r.out.split("\n", 1)[1])
    assert "ro" in mounts["/mnt/ro"]["opts"] and "ro" in mounts["/mnt/ro-file"]["opts"]
    assert r.err.count("Read-only file system") == 3, r.err
    assert (src / "f").read_text() == "original\n"
    assert sorted(os.listdir(src)) == ["f"]


# ---------------------------------------------------------------- mount flags

@pytest.mark.parametrize("kind", ["tmpfs", "bind"])
@pytest.mark.parametrize("options, present, absent", [
    (["nosuid", "nodev", "noexec"], {"nosuid", "nodev", "noexec"}, {"noatime"}),
    ([], {"relatime"}, {"nosuid", "nodev", "noexec", "noatime"}),  # the control
    (["noatime"], {"noatime"}, {"relatime"}),
    (["strictatime"], set(), {"relatime", "noatime"}),  # strictatime shows as neither
])
def test_mount_flags_in_mountinfo(pyrunc, make_bundle, cid, tmp_path, kind, options, present, absent):
    b = make_bundle()
    if kind == "bind":
        (tmp_path / "src").mkdir()
        b.config["mounts"].append({"destination": "/mnt/m", "type": "bind", "source": str(tmp_path / "src"),
                                   "options": ["bind", *options]})
    else:
        b.config["mounts"].append(tmpfs(options, "/mnt/m"))
    opts = mountinfo(sh_ok(pyrunc, b, cid, "grep ' /mnt/m ' /proc/self/mountinfo"))["/mnt/m"]["opts"]
    assert present <= opts, opts
    assert not absent & opts, opts


def test_relatime_replaces_the_source_atime_mode(pyrunc, make_bundle, cid, host_tmpfs):
    src = host_tmpfs("src", options="noatime")
    b = make_bundle()
    b.config["mounts"] += [
        {"destination": "/mnt/same", "type": "bind", "source": str(src), "options": ["bind"]},
        {"destination": "/mnt/rel", "type": "bind", "source": str(src), "options": ["bind", "relatime"]},
    ]
    mounts = mountinfo(sh_ok(pyrunc, b, cid, "grep ' /mnt/' /proc/self/mountinfo"))
    assert "noatime" in mounts["/mnt/same"]["opts"]
    assert "relatime" in mounts["/mnt/rel"]["opts"] and "noatime" not in mounts["/mnt/rel"]["opts"]


def test_noexec_and_nodev_take_effect(pyrunc, make_bundle, cid, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    script = src / "script"
    script.write_text("#!/bin/sh\necho ran\n")
    script.chmod(0o755)
    os.mknod(src / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    b = make_bundle()
    b.config["mounts"] += [
        {"destination": "/mnt/plain", "type": "bind", "source": str(src), "options": ["bind"]},
        {"destination": "/mnt/noexec", "type": "bind", "source": str(src), "options": ["bind", "noexec"]},
        {"destination": "/mnt/nodev", "type": "bind", "source": str(src), "options": ["bind", "nodev"]},
    ]
    r = sh(pyrunc, b, cid, "/mnt/plain/script; echo x > /mnt/plain/null; echo rc=$?; "
                           "/mnt/noexec/script; echo rc=$?; echo x > /mnt/nodev/null; echo rc=$?")
    assert r.out == "ran\nrc=0\nrc=126\nrc=1\n", (r.out, r.err)
    assert "/mnt/noexec/script: Permission denied" in r.err
    assert "/mnt/nodev/null: Permission denied" in r.err


def test_proc_and_readonly_sysfs(pyrunc, make_bundle, cid):
    b = make_bundle()  # the default config mounts proc, and sysfs with "ro"
    r = sh(pyrunc, b, cid, "cat /proc/self/mountinfo; touch /sys/probe; echo rc=$?")
    assert r.rc == 0, r.err
    mounts = mountinfo(r.out[:r.out.rindex("rc=")])
    assert mounts["/proc"]["fstype"] == "proc"
    assert mounts["/sys"]["fstype"] == "sysfs" and "ro" in mounts["/sys"]["opts"]
    assert r.out.endswith("rc=1\n") and "Read-only file system" in r.err


def test_tmpfs_size_and_mode(pyrunc, make_bundle, cid):
    b = make_bundle()
    b.config["mounts"].append(tmpfs(["size=3m", "mode=1750", "nosuid"], "/mnt/sized"))
    out = sh_ok(pyrunc, b, cid, "stat -c %a /mnt/sized; df -k /mnt/sized | tail -n 1; "
                                "stat -f -c %T /mnt/sized")
    mode, df_line, fstype = out.splitlines()
    assert mode == "1750"
    assert df_line.split()[1] == "3072"  # 1K-blocks
    assert fstype == "tmpfs"


def test_tmpfs_mode_from_the_mountpoint_unless_given(pyrunc, make_bundle, cid):
    """As runc >= 1.2: the covered directory's mode (/root 0755, /tmp 01777) comes first in
    the options, so an explicit mode= wins (runc 1.1.5 chmods to the directory's mode)."""
    b = make_bundle()
    b.config["mounts"] += [tmpfs(["mode=700"], "/root"), tmpfs(["size=1m"], "/tmp"),
                           tmpfs(["mode=1733"], "/home")]
    out = sh_ok(pyrunc, b, cid, "stat -c %a /root /tmp /home")
    assert out.split() == ["700", "1777", "1733"]


def test_ro_tmpfs_keeps_its_options(pyrunc, make_bundle, cid):
    b = make_bundle()
    b.config["mounts"].append(tmpfs(["ro", "mode=700", "size=2m"], "/mnt/rotmp"))
    r = sh(pyrunc, b, cid, "stat -c %a /mnt/rotmp; df -k /mnt/rotmp | tail -n 1; touch /mnt/rotmp/x; echo rc=$?")
    mode, df_line, rc = r.out.splitlines()
    assert (mode, df_line.split()[1], rc) == ("700", "2048", "rc=1"), r.err
    assert "Read-only file system" in r.err


def test_devpts_and_mqueue(pyrunc, make_bundle, cid):
    b = make_bundle()
    out = sh_ok(pyrunc, b, cid, "grep -E ' /dev/(pts|mqueue) ' /proc/self/mountinfo; readlink /dev/ptmx; "
                                "stat -c %t:%T /dev/pts/ptmx")
    *table, link, ptmx = out.splitlines()
    mounts = mountinfo("\n".join(table))
    pts = mounts["/dev/pts"]
    assert pts["fstype"] == "devpts"
    assert {"ptmxmode=666", "mode=620", "gid=5"} <= pts["super"]
    assert {"nosuid", "noexec"} <= pts["opts"]
    assert mounts["/dev/mqueue"]["fstype"] == "mqueue"
    assert (link, ptmx) == ("pts/ptmx", "5:2")


def _host_cgroup_v1_memory():
    with open("/proc/self/mountinfo") as f:
        for m in mountinfo(f.read()).values():
            if m["fstype"] == "cgroup" and "memory" in m["super"]:
                return True
    return False


@pytest.mark.skipif(not _host_cgroup_v1_memory(), reason="needs a cgroup v1 memory hierarchy on the host")
def test_cgroup_mount_on_v1_host(pyrunc, make_bundle, cid):
    b = make_bundle()  # default config: cgroup at /sys/fs/cgroup with "ro"
    b.linux["namespaces"].append({"type": "cgroup"})  # runc's template has none
    r = sh(pyrunc, b, cid, "cat /proc/self/mountinfo; ls /sys/fs/cgroup/memory/memory.limit_in_bytes; "
                           # writes back the current value: harmless should the mount be writable
                           "f=/sys/fs/cgroup/memory/notify_on_release; v=$(cat $f); echo $v > $f; echo rc=$?")
    assert r.rc == 0, r.err
    table, listing, rc = r.out.rsplit("\n", 3)[:3]
    mounts = mountinfo(table)
    assert mounts["/sys/fs/cgroup"]["fstype"] == "tmpfs"
    memory = mounts["/sys/fs/cgroup/memory"]
    assert memory["fstype"] == "cgroup" and "memory" in memory["super"]
    assert "ro" in memory["opts"]
    # with a cgroup namespace the container sees its own cgroup as the hierarchy's root
    assert memory["root"] == "/"
    assert listing == "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    assert rc == "rc=1" and "Read-only file system" in r.err


def test_tmpcopyup(pyrunc, make_bundle, cid, tmp_path):
    rootfs = private_rootfs(tmp_path / "rootfs")
    data = os.path.join(rootfs, "data")
    os.makedirs(os.path.join(data, "sub"))
    with open(os.path.join(data, "a"), "w") as f:
        f.write("A\n")
    with open(os.path.join(data, "sub", "b"), "w") as f:
        f.write("B\n")
    os.symlink("a", os.path.join(data, "link"))
    os.chmod(data, 0o751)
    b = make_bundle()
    b.config["root"]["path"] = rootfs
    b.config["mounts"].append(tmpfs(["tmpcopyup"], "/data"))
    out = sh_ok(pyrunc, b, cid, "stat -c %a /data; stat -f -c %T /data; cat /data/a /data/sub/b /data/link; "
                                "echo changed > /data/a; echo new > /data/new; cat /data/a /data/new")
    assert out == "751\ntmpfs\nA\nB\nA\nchanged\nnew\n"
    # the image's copy is untouched and nothing was left next to it
    assert open(os.path.join(data, "a")).read() == "A\n"
    assert sorted(os.listdir(data)) == ["a", "link", "sub"]
    assert not [n for n in os.listdir(rootfs) if "copyup" in n]


# ---------------------------------------------------------------- propagation

def test_mount_propagation_options(pyrunc, make_bundle, cid, host_tmpfs):
    shared = host_tmpfs("shared", shared=True)
    b = make_bundle()
    b.config["linux"]["rootfsPropagation"] = "rshared"  # so a bind would stay shared unless told otherwise
    b.config["mounts"] += [
        tmpfs(["shared"], "/mnt/t-shared"),
        tmpfs([], "/mnt/t-plain"),
        {"destination": "/mnt/b-shared", "type": "bind", "source": str(shared), "options": ["rbind"]},
        {"destination": "/mnt/b-rslave", "type": "bind", "source": str(shared), "options": ["rbind", "rslave"]},
        {"destination": "/mnt/b-rprivate", "type": "bind", "source": str(shared), "options": ["rbind", "rprivate"]},
    ]
    mounts = mountinfo(sh_ok(pyrunc, b, cid, "grep ' /mnt/' /proc/self/mountinfo"))

    def tags(point):
        return {t.split(":")[0] for t in mounts[point]["optional"]}

    assert tags("/mnt/t-shared") == {"shared"}
    assert tags("/mnt/t-plain") == set()
    assert tags("/mnt/b-shared") == {"shared"}
    assert tags("/mnt/b-rslave") == {"master"}
    assert tags("/mnt/b-rprivate") == set()


# host -> container, container -> host. runc 1.1.5 applies the non-recursive values to "/"
# only, so with "slave"/"private" a nested shared mount keeps propagating both ways there;
# pyrunc applies them recursively, as the container's whole tree is its rootfs.
PROPAGATION_CASES = [
    (None, True, False), ("rslave", True, False), ("slave", True, False),
    ("rprivate", False, False), ("private", False, False), ("rshared", True, True),
]


@pytest.mark.parametrize("propagation, host_to_container, container_to_host", PROPAGATION_CASES)
def test_rootfs_propagation(pyrunc, make_bundle, cid, no_leaks, host_tmpfs,
                            propagation, host_to_container, container_to_host):
    shared = host_tmpfs("shared", shared=True)
    (shared / "in").mkdir()
    (shared / "out").mkdir()
    b = make_bundle("sleep", "30")
    if propagation:
        b.config["linux"]["rootfsPropagation"] = propagation
    b.config["mounts"].append({"destination": "/mnt/share", "type": "bind", "source": str(shared),
                               "options": ["rbind"]})
    pid = create(pyrunc, b, cid)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(shared / "in")], check=True)
        subprocess.run(["nsenter", "-t", str(pid), "-m", "mount", "-t", "tmpfs", "tmpfs", "/mnt/share/out"],
                       check=True)
        with open(f"/proc/{pid}/mountinfo") as f:
            inside = mountinfo(f.read())
        assert ("/mnt/share/in" in inside) == host_to_container
        assert os.path.ismount(shared / "out") == container_to_host
    finally:
        subprocess.run(["umount", "-R", "-l", str(shared)], check=False)
        assert pyrunc("delete", "--force", cid).rc == 0


# ---------------------------------------------------------------- symlink safety

def test_mount_destinations_through_symlinks_stay_in_rootfs(pyrunc, make_bundle, cid, tmp_path, no_leaks):
    """A rootfs whose symlinks point out of it must not make pyrunc mount or mkdir on the host."""
    rootfs = private_rootfs(tmp_path / "rootfs")
    src = tmp_path / "src"
    src.mkdir()
    (src / "payload").write_text("payload\n")
    targets = {}
    for name in ("climb", "absolute", "relative"):
        targets[name] = tmp_path / f"host-{name}"
        targets[name].mkdir()
        (targets[name] / "sentinel").write_text("host\n")
    host_rel = str(tmp_path).lstrip("/")
    os.symlink("/tmp/../../../../../../../../" + host_rel + "/host-climb", os.path.join(rootfs, "mnt1"))
    os.symlink(str(targets["absolute"]), os.path.join(rootfs, "mnt2"))
    os.symlink("../" * 20 + host_rel + "/host-relative", os.path.join(rootfs, "mnt3"))
    b = make_bundle()
    b.config["root"]["path"] = rootfs
    b.config["mounts"] += [
        tmpfs([], "/mnt1/made/tmpfs"),
        {"destination": "/mnt2/dir", "type": "bind", "source": str(src), "options": ["bind"]},
        {"destination": "/mnt3/file", "type": "bind", "source": str(src / "payload"), "options": ["bind"]},
    ]
    b.process["cwd"] = "/mnt1/work"
    out = sh_ok(pyrunc, b, cid, "pwd -P; stat -f -c %T /mnt1/made/tmpfs; cat /mnt2/dir/payload /mnt3/file; "
                                "ls /mnt1 /mnt2 /mnt3 | grep -c sentinel || true")
    assert out.splitlines() == [f"/{host_rel}/host-climb/work", "tmpfs", "payload", "payload", "0"]
    for target in targets.values():  # nothing created on the host
        assert os.listdir(target) == ["sentinel"], target
        assert not os.path.ismount(target)
    # ... but inside the rootfs, where the links resolve with the rootfs as "/"
    inside = os.path.join(rootfs, host_rel)
    assert sorted(os.listdir(inside)) == ["host-absolute", "host-climb", "host-relative"]
    assert sorted(os.listdir(os.path.join(inside, "host-climb"))) == ["made", "work"]
    assert os.path.isfile(os.path.join(inside, "host-relative", "file"))


# ---------------------------------------------------------------- /dev

DEFAULT_DEVICES = {"null": "1:3", "zero": "1:5", "full": "1:7", "random": "1:8", "urandom": "1:9", "tty": "5:0"}


def test_default_devices(pyrunc, make_bundle, cid):
    b = make_bundle()
    names = " ".join(f"/dev/{n}" for n in DEFAULT_DEVICES)
    r = sh(pyrunc, b, cid, f"stat -c '%n|%F|%t:%T|%a|%u:%g' {names}; "
                           "for l in fd stdin stdout stderr ptmx; do echo /dev/$l=$(readlink /dev/$l); done; "
                           "head -c 4 /dev/zero | od -An -tx1; head -c 16 /dev/urandom | wc -c; "
                           "echo x > /dev/full; echo full-rc=$?")
    assert r.rc == 0, r.err
    lines = r.out.splitlines()
    for line, (name, numbers) in zip(lines, DEFAULT_DEVICES.items(), strict=False):
        assert line == f"/dev/{name}|character special file|{numbers}|666|0:0"
    assert lines[6:11] == ["/dev/fd=/proc/self/fd", "/dev/stdin=/proc/self/fd/0", "/dev/stdout=/proc/self/fd/1",
                           "/dev/stderr=/proc/self/fd/2", "/dev/ptmx=pts/ptmx"]
    assert lines[11].split() == ["00"] * 4
    assert lines[12:] == ["16", "full-rc=1"]
    assert "No space left on device" in r.err


def test_configured_devices(pyrunc, make_bundle, cid):
    b = make_bundle()
    b.linux["devices"] = [
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 1000, "gid": 1000},
        {"path": "/dev/myfifo", "type": "p", "fileMode": 0o640, "uid": 0, "gid": 5},
        {"path": "/dev/sub/myzero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o444},
    ]
    r = sh(pyrunc, b, cid, "stat -c '%n|%F|%t:%T|%a|%u:%g' /dev/mynull /dev/myfifo /dev/sub/myzero; "
                                "head -c 2 /dev/sub/myzero | wc -c; (echo through > /dev/myfifo &); "
                                "cat /dev/myfifo; echo x > /dev/mynull")  # root without CAP_DAC_OVERRIDE
    assert r.out.splitlines() == [
        "/dev/mynull|character special file|1:3|600|1000:1000",
        "/dev/myfifo|fifo|0:0|640|0:5",
        "/dev/sub/myzero|character special file|1:5|444|0:0",
        "2",
        "through",
    ]
    assert "can't create /dev/mynull: Permission denied" in r.err


# ---------------------------------------------------------------- masked and read-only paths

def test_masked_paths(pyrunc, make_bundle, cid):
    b = make_bundle()
    b.linux["maskedPaths"] = ["/etc/group", "/home", "/proc/kcore", "/proc/keys", "/no/such/path"]
    out = sh_ok(pyrunc, b, cid, "wc -c < /etc/group; ls -A /home | wc -l; wc -c < /etc/passwd; "
                                "(cat /proc/kcore 2>/dev/null || true) | wc -c; wc -c < /proc/keys")
    group, home, passwd, kcore, keys = out.split()
    assert (group, home, kcore, keys) == ("0", "0", "0", "0")
    assert os.listdir(os.path.join(b.config["root"]["path"], "home")) == ["user"]
    assert int(passwd) > 0  # unmasked files are still there
    with open("/proc/keys") as f:  # on the host /proc/keys has content
        assert f.read()


def test_readonly_paths(pyrunc, make_bundle, cid, tmp_path):
    rootfs = private_rootfs(tmp_path / "rootfs")
    b = make_bundle()
    b.config["root"] = {"path": rootfs, "readonly": False}  # so only the read-only path refuses the write
    b.linux["readonlyPaths"] = ["/proc/sys", "/etc"]
    r = sh(pyrunc, b, cid, "echo inside > /proc/sys/kernel/hostname; echo rc=$?; touch /etc/new; echo rc=$?; "
                           "touch /new && echo root-writable; hostname")
    assert r.out == "rc=1\nrc=1\nroot-writable\npyrunc\n", r.err
    assert r.err.count("Read-only file system") == 2, r.err
    assert not os.path.exists(os.path.join(rootfs, "etc", "new"))


def test_proc_sys_is_writable_without_readonly_paths(pyrunc, make_bundle, cid):
    """The control for test_readonly_paths: the write itself works in the container's uts namespace."""
    b = make_bundle()
    b.linux["readonlyPaths"] = []
    assert sh_ok(pyrunc, b, cid, "echo inside > /proc/sys/kernel/hostname; hostname") == "inside\n"
    assert os.uname().nodename != "inside"


# ---------------------------------------------------------------- sysctl, hostname, domainname

def test_sysctl_in_container_namespaces(pyrunc, make_bundle, cid):
    def host():
        with open("/proc/sys/net/ipv4/ip_forward") as f, open("/proc/sys/kernel/shm_rmid_forced") as g:
            return f.read(), g.read()

    before = host()
    b = make_bundle()
    b.linux["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}
    out = sh_ok(pyrunc, b, cid, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced")
    assert out == "1\n1\n"
    assert host() == before
    assert before != ("1\n", "1\n"), "the host already has these values: the test proves nothing"


def test_sysctl_error_is_reported(pyrunc, make_bundle, cid, no_leaks):
    b = make_bundle()
    b.linux["sysctl"] = {"net.ipv4.no_such_knob": "1"}
    r = sh(pyrunc, b, cid, "true")
    assert r.rc != 0
    assert "net.ipv4.no_such_knob" in r.err
    assert pyrunc.ids() == []


def test_hostname_and_domainname(pyrunc, make_bundle, cid):
    b = make_bundle()
    b.config["hostname"] = "box-1"
    b.config["domainname"] = "example.org"
    out = sh_ok(pyrunc, b, cid, "uname -n; hostname; cat /proc/sys/kernel/domainname")
    assert out == "box-1\nbox-1\nexample.org\n"
    assert os.uname().nodename != "box-1"
    with open("/proc/sys/kernel/domainname") as f:
        assert f.read() != "example.org\n"


# ---------------------------------------------------------------- --no-pivot

def test_no_pivot(pyrunc, make_bundle, cid, rootfs):
    b = make_bundle()
    b.config["mounts"].append(tmpfs())
    r = sh(pyrunc, b, cid, "ls -a / | grep -c pyrunc-rootfs; awk '$5 == \"/\"' /proc/self/mountinfo; "
                           "test -e /work/main && echo host-visible; touch /tmp/ok /probe; wc -c < /proc/keys",
           "--no-pivot")
    assert r.rc == 0, r.err
    count, root_line, keys = r.out.splitlines()
    assert count == "1"  # the rootfs's marker file is at /
    assert root_line.split()[3] == rootfs and "ro" in root_line.split()[5].split(",")
    assert keys == "0"  # masked paths still applied
    assert "touch: /probe: Read-only file system" in r.err


# ---------------------------------------------------------------- no mount namespace


def _without_mount_namespace(b):
    b.linux["namespaces"] = [ns for ns in b.linux["namespaces"] if ns["type"] != "mount"]


@pytest.mark.differential
def test_masks_without_a_mount_namespace_are_refused_as_runc(runc, pyrunc, make_bundle, cid, no_leaks):
    b = make_bundle("true")
    _without_mount_namespace(b)
    b.config["mounts"] = []
    b.write()
    theirs, mine = runc("run", "--bundle", b.path, cid), pyrunc("run", "--bundle", b.path, cid)
    assert theirs.rc == mine.rc == 1
    text = "unable to restrict sys entries without a private MNT namespace"
    assert text in theirs.err and text in mine.err
    assert not pyrunc.ids()


def test_mounts_without_a_mount_namespace_are_refused(pyrunc, make_bundle, cid, no_leaks):
    """runc 1.1 makes them in the host's mount namespace, where they stay after the container
    (a leak on the host): pyrunc refuses, naming the field, and leaves nothing."""
    b = make_bundle("ls", "/proc")
    _without_mount_namespace(b)
    b.linux.pop("maskedPaths", None)
    b.linux.pop("readonlyPaths", None)
    b.write()
    r = pyrunc("run", "--bundle", b.path, cid)
    assert r.rc == 1 and "mounts: needs a mount namespace" in r.err, r.err
    assert not pyrunc.ids()
    b.config["mounts"] = []
    b.write()
    assert pyrunc("run", "--bundle", b.path, cid).rc == 0  # no mounts: nothing to refuse


@pytest.mark.parametrize("propagation, root, proc", [
    ("shared", "shared:", None),
    ("rshared", "shared:", None),
    ("unbindable", "unbindable", None),
    ("runbindable", "unbindable", "unbindable"),
])
def test_root_propagation_reaches_the_container_root(pyrunc, make_bundle, cid, no_leaks,
                                                     propagation, root, proc):
    """Applied to the root after the pivot (runc >= 1.2); runc 1.1.5 leaves `shared` off the
    root (its parent was made private) and fails `unbindable` (EINVAL binding the rootfs)."""
    b = make_bundle()
    b.linux["rootfsPropagation"] = propagation
    out = sh_ok(pyrunc, b, cid, "cat /proc/self/mountinfo")
    fields = {line.split()[4]: line.split()[6:line.split().index("-")] for line in out.splitlines()}
    assert any(f.startswith(root) for f in fields["/"]), fields["/"]
    if proc:
        assert any(f.startswith(proc) for f in fields["/proc"]), fields["/proc"]
