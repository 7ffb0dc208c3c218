"""Issue 9, classes 6, 7, 8: files pyrunc writes or trusts on the host.

The attacker is another local user (or a container whose files end up next to ours): they can
write where the engine lets them (a pid-file or log directory, a --root others can write) and
plant symlinks and files at predictable names. Each test plants the attack and checks its
effect on a canary; each one fails with the defence removed (checked by hand, see the report).
"""

import json
import os
import stat
import subprocess

import pytest
from helpers import Runner, live_inits, mountpoints, state

NOBODY = 65534


def run(pyrunc, bundle, cid, *args, **kw):
    bundle.write()
    return pyrunc("run", "--bundle", bundle.path, *args, cid, **kw)


def canary(tmp_path, name="canary"):
    path = tmp_path / name
    path.write_text("precious\n")
    path.chmod(0o600)
    return path


def unchanged(path):
    st = os.lstat(path)
    return path.read_text() == "precious\n" and stat.S_IMODE(st.st_mode) == 0o600


# ---- class 6: --pid-file (and --log) never written through a planted symlink ---------------

def test_pid_file_planted_symlinks_are_not_followed(pyrunc, make_bundle, cid, tmp_path):
    """Symlinks at every name create could use beside the pid file (runc's temp ".NAME", ours
    before the fix ".NAME.tmp") and at the pid file itself: the canary stays as it was."""
    target = canary(tmp_path)
    piddir = tmp_path / "run"
    piddir.mkdir()
    pidfile = piddir / "init.pid"
    for name in (".init.pid.tmp", ".init.pid"):
        os.symlink(target, piddir / name)
    os.symlink(target, pidfile)
    b = make_bundle("sleep", "100").write()
    r = pyrunc("create", "--bundle", b.path, "--pid-file", str(pidfile), cid)
    assert r.rc == 0, r.err
    assert unchanged(target)
    st = os.lstat(pidfile)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid()
    assert stat.S_IMODE(st.st_mode) & 0o022 == 0  # 0644 less the umask: never group/other-writable
    assert pidfile.read_text() == str(state(pyrunc, cid)["pid"])
    # the planted names are left alone (not ours), and no temp file of ours is left
    assert sorted(os.listdir(piddir)) == [".init.pid", ".init.pid.tmp", "init.pid"]
    assert pyrunc("delete", "--force", cid).rc == 0


def test_pid_file_in_a_missing_directory(pyrunc, make_bundle, cid, tmp_path):
    """One clear error naming the file; the container is undone (no state, cgroup, init)."""
    b = make_bundle("sleep", "100").write()
    pidfile = tmp_path / "nope" / "init.pid"
    r = pyrunc("create", "--bundle", b.path, "--pid-file", str(pidfile), cid)
    assert r.rc == 1
    assert f"cannot write pid file {pidfile}: no such file or directory" in r.err
    assert "Error" not in r.err and "internal error" not in r.err
    assert pyrunc.ids() == []


def test_log_file_planted_symlink_is_not_followed(pyrunc, tmp_path):
    target = canary(tmp_path)
    log = tmp_path / "log.json"
    os.symlink(target, log)
    r = pyrunc("state", "nope", global_args=("--log", str(log), "--log-format", "json"))
    assert r.rc == 1
    assert unchanged(target)
    assert f"failed to open log file {log}" in r.err


def test_log_file_mode(pyrunc, tmp_path):
    log = tmp_path / "log.json"
    r = pyrunc("state", "nope", global_args=("--log", str(log), "--log-format", "json"))
    assert r.rc == 1 and r.err == "container does not exist\n"
    assert json.loads(log.read_text())["msg"] == "container does not exist"
    assert stat.S_IMODE(os.stat(log).st_mode) & 0o022 == 0  # runc's 0644 less the umask


# ---- class 7: state.json holds process.env: only root reads it ------------------------------

def test_state_json_is_not_readable_by_other_users(pyrunc, make_bundle, cid):
    b = make_bundle("sleep", "100")
    b.process["env"].append("SECRET=hunter2")
    b.write()
    assert pyrunc("create", "--bundle", b.path, cid).rc == 0
    path = os.path.join(pyrunc.root, cid, "state.json")
    assert "hunter2" in open(path).read()
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()
    # the directories: the root is runc's 0700 (nothing in the container walks it: bind
    # sources are opened on the host), a container's directory not listable by others
    assert stat.S_IMODE(os.stat(pyrunc.root).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(pyrunc.root, cid)).st_mode) & 0o066 == 0
    # the provisional record is gone once state.json is complete
    assert not os.path.exists(os.path.join(pyrunc.root, cid, "creating.json"))
    # and another user really cannot read it
    r = subprocess.run(["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY),
                        "--clear-groups", "cat", path], capture_output=True, text=True)
    assert r.returncode != 0 and "Permission denied" in r.stderr, (r.returncode, r.stdout)
    assert pyrunc("delete", "--force", cid).rc == 0


def test_state_json_is_private_whatever_the_umask(pyrunc, make_bundle, cid):
    b = make_bundle("sleep", "100").write()
    r = pyrunc("create", "--bundle", b.path, cid, preexec_fn=lambda: os.umask(0))
    assert r.rc == 0, r.err
    assert stat.S_IMODE(os.stat(os.path.join(pyrunc.root, cid, "state.json")).st_mode) == 0o600
    assert pyrunc("delete", "--force", cid).rc == 0


# ---- what is read back from --root must be ours ----------------------------------------------

def test_planted_container_directory_is_refused(pyrunc, make_bundle, cid, tmp_path):
    """A --root others can write: a "container" made by another user is never trusted, and a
    symlink in place of a container directory is never followed (delete once emptied the
    directory it pointed to, taking it for an interrupted create)."""
    b = make_bundle("true").write()
    assert pyrunc("run", "--bundle", b.path, cid).rc == 0  # the root exists
    os.chmod(pyrunc.root, 0o777)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = canary(elsewhere)
    os.symlink(elsewhere, os.path.join(pyrunc.root, "linked"))
    forged = os.path.join(pyrunc.root, "forged")
    os.mkdir(forged)
    with open(os.path.join(forged, "state.json"), "w") as f:
        json.dump({"id": "forged", "pid": 1, "start_time": 1, "bundle": "/", "rootfs": "/",
                   "created": "x", "config": {}}, f)
    os.chown(forged, NOBODY, NOBODY)
    os.chown(os.path.join(forged, "state.json"), NOBODY, NOBODY)
    try:
        results = [(args, pyrunc(*args)) for victim in ("linked", "forged")
                   for args in (("state", victim), ("delete", victim),
                                ("delete", "--force", victim), ("kill", victim, "KILL"))]
        assert unchanged(target) and os.path.exists(forged)  # nothing deleted through them
        for args, r in results:
            assert r.rc == 1, (args, r.err)
            assert "refusing to use it" in r.err, (args, r.err)
        assert json.loads(pyrunc("list", "--format", "json").out) is None  # runc's empty list
    finally:
        os.unlink(os.path.join(pyrunc.root, "linked"))
        os.unlink(os.path.join(forged, "state.json"))
        os.rmdir(forged)


def test_state_json_written_by_another_user_is_refused(pyrunc, make_bundle, cid):
    b = make_bundle("sleep", "100").write()
    assert pyrunc("create", "--bundle", b.path, cid).rc == 0
    path = os.path.join(pyrunc.root, cid, "state.json")
    os.chmod(path, 0o666)
    r = pyrunc("state", cid)
    assert r.rc == 1 and f"{path}: writable by group or others" in r.err
    os.chmod(path, 0o600)
    assert pyrunc("state", cid).rc == 0
    assert pyrunc("delete", "--force", cid).rc == 0


# ---- class 8: the seccomp cache ------------------------------------------------------------

DENY_MKDIR = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}


def _allow_all_bpf():
    from pyrunc.security.seccomp import compile_bpf
    return compile_bpf({"defaultAction": "SCMP_ACT_ALLOW"})


def _plant_owner(path):
    os.chown(path, NOBODY, NOBODY)


def _plant_writable(path):
    os.chmod(path, 0o666)


def _plant_symlink(path):
    real = path + ".real"
    os.rename(path, real)
    os.symlink(os.path.basename(real), path)


def _plant_dir_owner(path):
    os.chown(os.path.dirname(path), NOBODY, NOBODY)


def _plant_dir_writable(path):
    os.chmod(os.path.dirname(path), 0o777)


@pytest.fixture
def private_cache(tmp_path):
    """A cache of this test's own ($XDG_CACHE_HOME), not the shared /var/cache/pyrunc: the
    tests below plant entries in it. Returns (env for the runner, the seccomp directory)."""
    base = tmp_path / "xdg-cache"
    return dict(os.environ, XDG_CACHE_HOME=str(base)), os.path.join(base, "pyrunc", "seccomp")


def _deny_mkdir_bundle(make_bundle):
    b = make_bundle("sh", "-c", "mkdir /tmp/d && echo MADE")
    b.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    b.linux["seccomp"] = DENY_MKDIR
    return b


@pytest.mark.parametrize("plant", [_plant_owner, _plant_writable, _plant_symlink, _plant_dir_owner,
                                   _plant_dir_writable],
                         ids=["other-owner", "other-writable", "symlink", "dir-other-owner",
                              "dir-other-writable"])
def test_planted_allow_all_seccomp_cache_entry_is_not_used(pyrunc, make_bundle, cid, plant, private_cache):
    env, cache = private_cache
    b = _deny_mkdir_bundle(make_bundle)
    r = run(pyrunc, b, cid, env=env)  # compiles and caches the profile
    assert "Operation not permitted" in r.err and "MADE" not in r.out
    (entry,) = os.listdir(cache)
    path = os.path.join(cache, entry)
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()
    for d in (cache, os.path.dirname(cache)):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    with open(path, "wb") as f:  # the attack: allow everything, under the profile's own key
        f.write(_allow_all_bpf())
    plant(path)
    r = run(pyrunc, b, cid, env=env)
    assert "Operation not permitted" in r.err and "MADE" not in r.out, (r.out, r.err)


def test_own_seccomp_cache_entry_is_used(pyrunc, make_bundle, cid, private_cache):
    """The check for the tests above: the same planted program, but ours, IS loaded (so they
    would see mkdir succeed if the checks were missing)."""
    env, cache = private_cache
    b = _deny_mkdir_bundle(make_bundle)
    run(pyrunc, b, cid, env=env)
    (entry,) = os.listdir(cache)
    with open(os.path.join(cache, entry), "wb") as f:
        f.write(_allow_all_bpf())
    r = run(pyrunc, b, cid, env=env)
    assert "MADE" in r.out


def test_seccomp_cache_is_not_in_the_engines_root(pyrunc, make_bundle, cid, private_cache):
    """--root is the engine's: only container directories there, so runc's `list` on the same
    root (containerd's) still works ("@cache: invalid container ID format" when it was there)."""
    env, cache = private_cache
    b = make_bundle("sleep", "60")
    b.linux["seccomp"] = DENY_MKDIR
    b.write()
    assert pyrunc("run", "--detach", "--bundle", b.path, cid, env=env).rc == 0
    assert os.listdir(pyrunc.root) == [cid]
    assert len(os.listdir(cache)) == 1  # it was compiled and cached, elsewhere
    # (runc cannot read pyrunc's state.json and says so about the container, but lists on)
    r = subprocess.run(["/usr/sbin/runc", "--root", pyrunc.root, "list", "-q"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0 and "invalid container ID" not in r.stderr, r.stderr
    assert pyrunc("delete", "--force", cid).rc == 0
    assert os.listdir(pyrunc.root) == []


# ---- a full or read-only --root ---------------------------------------------------------------

@pytest.fixture
def small_tmpfs(tmp_path):
    """mount(tmp) -> a tmpfs of 1 MiB at a fresh directory, unmounted at teardown."""
    made = []

    def mount(name, options="size=1m"):
        d = tmp_path / name
        d.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(d)], check=True)
        made.append(d)
        return d

    yield mount
    for d in reversed(made):
        subprocess.run(["umount", "-l", str(d)], check=False)


def _fill(directory):
    with open(os.path.join(directory, "filler"), "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def _nothing_left(runner, cid):
    assert [n for n in os.listdir(runner.root) if not n.startswith(("@", "filler"))] == []
    assert not live_inits(runner.root)
    from pyrunc.cgroups import manager_for
    for d in manager_for(f"/pyrunc-hostfiles/{cid}", cid).paths().values():
        assert not os.path.exists(d), d


def test_full_root_is_one_clear_error(pyrunc, make_bundle, cid, small_tmpfs):
    root = small_tmpfs("root")
    full = Runner(pyrunc.argv, str(root))
    b = make_bundle("sleep", "100")
    b.linux["cgroupsPath"] = f"/pyrunc-hostfiles/{cid}"
    b.write()
    _fill(root)
    r = full("create", "--bundle", b.path, cid)
    assert r.rc == 1
    assert "no space left on device" in r.err and str(root) in r.err, r.err
    assert "Errno" not in r.err and "internal error" not in r.err
    _nothing_left(full, cid)


def test_read_only_root_is_one_clear_error(pyrunc, make_bundle, cid, small_tmpfs):
    root = small_tmpfs("root", "size=1m,ro")
    b = make_bundle("sleep", "100").write()
    r = Runner(pyrunc.argv, str(root))("create", "--bundle", b.path, cid)
    assert r.rc == 1
    assert (f"cannot create the container's state directory {root}/{cid}: read-only file system"
            in r.err), r.err
    assert os.listdir(root) == []


def test_pid_file_on_a_read_only_filesystem(pyrunc, make_bundle, cid, small_tmpfs):
    ro = small_tmpfs("ro", "size=1m,ro")
    b = make_bundle("sleep", "100")
    b.linux["cgroupsPath"] = f"/pyrunc-hostfiles/{cid}"
    b.write()
    r = pyrunc("create", "--bundle", b.path, "--pid-file", f"{ro}/init.pid", cid)
    assert r.rc == 1
    assert f"cannot write pid file {ro}/init.pid: read-only file system" in r.err, r.err
    _nothing_left(pyrunc, cid)
    assert mountpoints().count(str(ro)) == 1
