"""Issue 9, classes 4 and 11b: ways out through maskedPaths, /proc writes, /dev/console and
--no-pivot, each tried in a real container against a canary on the host.

* masked paths as writable host files (runc CVE-2025-31133): /dev comes from a volume whose
  `null` is a regular file, or a symlink to a file of the rootfs or to a procfs sysctl;
* masks that are not read-only (a chmod through a mask reaches the node behind it);
* sysctl writes redirected by a mount under /proc (CVE-2025-52881), bad sysctl keys;
* /dev/console a symlink when the pty is bound over it (CVE-2025-52565);
* --no-pivot leaving the host's procfs in the mount namespace (a nested user namespace can
  then mount a new procfs), and its unmounts reaching the host through shared propagation.

No test writes a host sysctl: the canaries are files in the test's tmp dir; the procfs case
only looks (stat, mountinfo) and checks the host's kernel.core_pattern is unchanged.
"""

import os
import stat
import subprocess

import pytest
from bundle import make_rootfs
from helpers import error_of, sh, state
from test_console import ConsoleReceiver

CANARY = "canary: nothing may write here\n"


class Receiver(ConsoleReceiver):
    """A console socket that also accepts a create that fails before sending the master."""

    def _serve(self):
        try:
            super()._serve()
        except IndexError:
            pass  # the connection closed without a master: create refused


def canary(path):
    with open(path, "w") as f:
        f.write(CANARY)
    return str(path)


def read(path):
    with open(path) as f:
        return f.read()


def private_rootfs(tmp_path):
    return make_rootfs(str(tmp_path / "rootfs"))


def with_dev_volume(bundle, volume):
    """/dev is a bind volume: pyrunc makes no device nodes in it, so its `null` is the image's."""
    mounts = bundle.config["mounts"]
    i = next(i for i, m in enumerate(mounts) if m["destination"] == "/dev")
    mounts[i] = {"destination": "/dev", "type": "bind", "source": str(volume),
                 "options": ["rbind", "rw"]}


def dev_volume(tmp_path):
    vol = tmp_path / "devvol"
    vol.mkdir()
    os.chmod(vol, 0o755)
    return vol


MASK_PROBE = ("for p in /proc/keys /etc/group; do stat -c \"$p %F %t:%T\" $p; done; "
              "echo pwned > /proc/keys; echo pwned > /etc/group; "
              "cat /proc/keys /etc/group | wc -c")


def masked_bundle(make_bundle, rootfs):
    b = make_bundle()
    b.config["root"]["path"] = rootfs
    b.linux["maskedPaths"] = b.linux["maskedPaths"] + ["/etc/group", "/home"]
    return b


def assert_masked_by_null(out):
    lines = out.splitlines()
    assert lines[:2] == ["/proc/keys character special file 1:3",
                         "/etc/group character special file 1:3"], out
    assert lines[2] == "0", out  # the writes went to the null device


@pytest.mark.parametrize("null", ["regular file", "symlink into the rootfs"])
def test_masks_ignore_a_dev_null_that_is_not_the_null_device(pyrunc, make_bundle, cid, tmp_path,
                                                           no_leaks, null):
    """runc < 1.2.8 bound "/dev/null" by name over each masked path: a volume's `null` that is
    a file (or leads to one) became a writable bind of that file at /proc/keys."""
    rootfs = private_rootfs(tmp_path)
    vol = dev_volume(tmp_path)
    if null == "regular file":
        target = canary(vol / "null")
    else:
        target = canary(os.path.join(rootfs, "etc", "canary"))
        os.symlink("/etc/canary", vol / "null")
    b = masked_bundle(make_bundle, rootfs)
    with_dev_volume(b, vol)
    r = sh(pyrunc, b, cid, MASK_PROBE)
    assert r.rc == 0, r.err
    assert_masked_by_null(r.out)
    assert read(target) == CANARY
    assert read(os.path.join(rootfs, "etc", "group")).startswith("root:")


def test_masks_ignore_a_dev_null_that_points_at_a_sysctl(pyrunc, make_bundle, cid, tmp_path, no_leaks):
    """`null` -> /proc/sys/kernel/core_pattern made /proc/keys a writable bind of the host's
    core_pattern (not namespaced). Only looked at: nothing is written."""
    before = read("/proc/sys/kernel/core_pattern")
    rootfs = private_rootfs(tmp_path)
    vol = dev_volume(tmp_path)
    os.symlink("/proc/sys/kernel/core_pattern", vol / "null")
    b = masked_bundle(make_bundle, rootfs)
    with_dev_volume(b, vol)
    r = sh(pyrunc, b, cid, "stat -c '%F %t:%T' /proc/keys; "
                           "awk '$5 == \"/proc/keys\" {print $6}' /proc/self/mountinfo")
    assert r.rc == 0, r.err
    kind, opts = r.out.splitlines()
    assert kind == "character special file 1:3"
    assert "ro" in opts.split(",")
    assert read("/proc/sys/kernel/core_pattern") == before


def test_masks_are_read_only_and_directories_empty(pyrunc, make_bundle, cid, tmp_path, no_leaks):
    """A mask's node cannot be changed through it (it is the host's /dev/null: a chmod through
    a writable bind would reach the host's node) and a masked directory is an empty read-only
    tmpfs."""
    host_null = os.stat("/dev/null")
    rootfs = private_rootfs(tmp_path)
    b = masked_bundle(make_bundle, rootfs)
    r = sh(pyrunc, b, cid, "chmod 600 /etc/group; echo chmod=$?; stat -c %a /etc/group; "
                           "touch /home/x; echo touch=$?; ls -A /home | wc -l; "
                           "awk '$5 ~ /^\\/(etc\\/group|home|proc\\/keys)$/ {print $5, $6}' "
                           "/proc/self/mountinfo | sort")
    assert r.rc == 0, r.err
    lines = r.out.splitlines()
    assert lines[:4] == ["chmod=1", "666", "touch=1", "0"], r.out
    assert r.err.count("Read-only file system") == 2, r.err
    mounts = dict(line.split() for line in lines[4:])
    assert sorted(mounts) == ["/etc/group", "/home", "/proc/keys"], r.out
    assert all("ro" in opts.split(",") for opts in mounts.values()), r.out
    after = os.stat("/dev/null")
    assert (after.st_mode, after.st_uid, after.st_rdev) == (host_null.st_mode, host_null.st_uid,
                                                            host_null.st_rdev)
    assert os.listdir(os.path.join(rootfs, "home")) == ["user"]


# ---------------------------------------------------------------- sysctl writes

def test_sysctl_is_not_written_through_a_mount_over_proc_sys(pyrunc, make_bundle, cid, tmp_path,
                                                             no_leaks):
    """A config mount over /proc/sys/kernel/shmmax (an ipc sysctl, one runc allows) used to
    catch the sysctl write: it must reach the container's own ipc namespace instead."""
    target = canary(tmp_path / "canary")
    b = make_bundle("sleep", "100")
    b.config["mounts"].append({"destination": "/proc/sys/kernel/shmmax", "type": "bind",
                               "source": target, "options": ["bind"]})
    b.linux["sysctl"] = {"kernel.shmmax": "4242"}
    b.write()
    assert pyrunc("run", "-d", "--bundle", b.path, cid).rc == 0
    try:
        pid = state(pyrunc, cid)["pid"]
        assert read(target) == CANARY
        # the container's own ipc namespace got the value (read from the host through it)
        r = subprocess.run(["nsenter", "-t", str(pid), "-i", "cat", "/proc/sys/kernel/shmmax"],
                           capture_output=True, text=True)
        assert r.stdout == "4242\n", r
    finally:
        pyrunc("delete", "--force", cid)


@pytest.mark.parametrize("key", ["kernel.domain\x00name", "kernel.//.//.sysrq-trigger",
                                 "kernel..domainname", "kernel/../../sysrq-trigger"])
def test_bad_sysctl_keys_are_refused_by_field(pyrunc, make_bundle, cid, no_leaks, key):
    b = make_bundle()
    b.linux["sysctl"] = {key: "x"}
    r = sh(pyrunc, b, cid, "true")
    assert r.rc != 0
    msg = error_of(r)
    assert "linux.sysctl" in msg and ("not a valid sysctl name" in msg or "NUL byte" in msg), msg
    assert "Error" not in msg and "internal" not in msg, msg
    assert pyrunc.ids() == []


def test_slash_spelled_sysctl_keeps_the_namespace_rule(pyrunc, make_bundle, cid, no_leaks):
    """"net/ipv4/x" is net.ipv4.x: without a network namespace it would be the host's."""
    b = make_bundle()
    b.linux["namespaces"] = [ns for ns in b.linux["namespaces"] if ns["type"] != "network"]
    b.linux["sysctl"] = {"net/ipv4/pyrunc_no_such_knob": "1"}
    r = sh(pyrunc, b, cid, "true")
    assert r.rc != 0
    assert "a net.* sysctl needs a network namespace" in error_of(r)


# ---------------------------------------------------------------- /dev/console

def test_console_is_not_bound_through_a_symlink(pyrunc, make_bundle, cid, tmp_path, no_leaks):
    """The image's /dev/console -> /etc/canary: the pty slave was bind-mounted over whatever
    the link named. Refused as runc does; nothing is mounted over the canary."""
    rootfs = private_rootfs(tmp_path)
    target = canary(os.path.join(rootfs, "etc", "canary"))
    vol = dev_volume(tmp_path)
    os.symlink("pts/ptmx", vol / "ptmx")
    os.symlink("/etc/canary", vol / "console")
    b = make_bundle("sh", "-c", "stat -c %F /etc/canary; echo DONE")
    b.config["root"]["path"] = rootfs
    b.linux["maskedPaths"] = []  # the volume has no null: keep this test about the console
    with_dev_volume(b, vol)
    b.process["terminal"] = True
    b.write()
    receiver = Receiver(str(tmp_path / "console.sock"))
    r = pyrunc("create", "--bundle", b.path, "--console-socket", receiver.path, cid)
    if r.rc == 0:  # only without the defence: see where the pty went, then clean up
        pyrunc("start", cid)
        out = receiver.wait()
        pyrunc("delete", "--force", cid)
        pytest.fail(f"create accepted a /dev/console symlink; inside: {out!r}")
    receiver.server.close()
    assert "/dev/console" in error_of(r) and "symbolic link" in error_of(r), r.err
    assert read(target) == CANARY and stat.S_ISREG(os.lstat(target).st_mode)
    assert os.readlink(vol / "console") == "/etc/canary"
    assert pyrunc.ids() == []


def test_console_is_bound_on_the_containers_own_dev_console(pyrunc, make_bundle, cid, tmp_path,
                                                           no_leaks):
    """The control: a /dev volume without a console gets one (a file we create), with the pty
    mounted on it; the volume's file stays an empty regular file on the host."""
    vol = dev_volume(tmp_path)
    os.symlink("pts/ptmx", vol / "ptmx")
    b = make_bundle("sh", "-c", "[ -c /dev/console ] && echo console-is-a-tty; "
                                "[ /dev/console -ef $(tty) ] && echo same-pty; echo DONE")
    b.linux["maskedPaths"] = []
    with_dev_volume(b, vol)
    b.process["terminal"] = True
    b.write()
    receiver = Receiver(str(tmp_path / "console.sock"))
    r = pyrunc("create", "--bundle", b.path, "--console-socket", receiver.path, cid)
    assert r.rc == 0, r.err
    assert pyrunc("start", cid).rc == 0
    out = receiver.wait()
    pyrunc("delete", "--force", cid)
    assert "console-is-a-tty\nsame-pty\nDONE" in out, out
    assert stat.S_ISREG(os.lstat(vol / "console").st_mode) and os.path.getsize(vol / "console") == 0


# ---------------------------------------------------------------- --no-pivot

@pytest.mark.parametrize("userns", [False, True])
def test_no_pivot_leaves_no_host_procfs_to_mount_beside(pyrunc, make_bundle, cid, no_leaks, userns):
    """chroot keeps the host's /proc in the mount namespace; a nested user + mount + pid
    namespace may then mount a new procfs (the kernel allows it only next to a fully visible
    one; the container's own /proc has locked masks in the nested namespace). CAP_SETFCAP
    (docker grants it) lets the nested namespace map root. In a user namespace the host's
    mounts are locked: they cannot be detached, only covered (and pinned)."""
    b = make_bundle()
    if userns:
        b.linux["namespaces"].append({"type": "user"})
        b.linux["uidMappings"] = b.linux["gidMappings"] = [
            {"containerID": 0, "hostID": 231072, "size": 65536}]
    b.process["capabilities"] = {k: ["CAP_SETFCAP", "CAP_KILL"]
                                 for k in ("bounding", "effective", "permitted")}
    r = sh(pyrunc, b, cid, "unshare -Urmpf sh -c 'echo nested; mount -t proc proc /tmp && "
                           "echo MOUNTED'; true", "--no-pivot")
    assert r.rc == 0, r.err
    assert r.out == "nested\n", (r.out, r.err)
    assert "permission denied" in r.err


def test_no_pivot_unmounts_do_not_reach_a_shared_host(pyrunc, make_bundle, cid, tmp_path):
    """rootfsPropagation rshared makes the container's mounts peers of the host's: detaching
    our copies of the host's mounts must not detach the host's. The "host" is a mount
    namespace of the test's own (util-linux unshare makes it private first) with every mount
    shared and the rootfs on a mount of its own, so "/" stays shared (pyrunc makes only the
    rootfs's parent mount private)."""
    rootfs = private_rootfs(tmp_path)
    b = make_bundle("true")
    b.config["root"]["path"] = rootfs
    b.config["linux"]["rootfsPropagation"] = "rshared"
    b.write()
    script = (f"mount --bind {rootfs} {rootfs} && mount --make-rshared / && "
              f"cut -d' ' -f5 /proc/self/mountinfo | sort > {tmp_path}/before; "
              f"{' '.join(pyrunc.argv)} --root {pyrunc.root} run --bundle {b.path} --no-pivot {cid}; "
              f"echo rc=$?; cut -d' ' -f5 /proc/self/mountinfo | sort > {tmp_path}/after")
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=60)
    assert "rc=0" in p.stdout, (p.stdout, p.stderr)
    before = read(tmp_path / "before")
    assert "/proc\n" in before and "/dev/shm\n" in before, before
    assert before == read(tmp_path / "after")
