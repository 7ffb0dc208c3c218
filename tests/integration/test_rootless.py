"""Rootless mode: pyrunc run by an ordinary user (pyrunc-rootless, made by the fixtures) on a
`spec --rootless` bundle the user owns; real containers, checked inside and on the host.

Each test gets a workspace below the user's home (bundle, rootfs, $XDG_RUNTIME_DIR), removed
at teardown after every container left in it is force-deleted and checked gone.
"""

import json
import os
import shutil
import stat
import time
import uuid

import pytest
from bundle import make_rootfs
from helpers import comm_of, container_ids, wait_for
from rootless_users import ensure_user, missing_tools, runnable_checkout, systemd_v2_host, user_session, user_systemctl

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYRUNC = None  # the launcher the test users can run (the `user` fixture decides)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="creates users: run the suite as root"),
    pytest.mark.skipif(bool(missing_tools()), reason=f"missing: {missing_tools()}"),
]


class Workspace:
    """One user's bundle (rootfs + `pyrunc spec --rootless`, written by the user) and XDG dir."""

    def __init__(self, user, base):
        self.user = user
        self.dir = base
        self.bundle = os.path.join(base, "bundle")
        self.xdg = os.path.join(base, "xdg")
        os.makedirs(self.bundle)
        os.makedirs(self.xdg, 0o700)
        make_rootfs(os.path.join(self.bundle, "rootfs"))
        user.chown_tree(base)
        r = self.pyrunc("spec", "--rootless", cwd=self.bundle, root=None)
        assert r.rc == 0, r.err
        self.config = self.read_config()
        self.config["process"]["terminal"] = False

    @property
    def default_root(self):
        return os.path.join(self.xdg, "pyrunc")

    def read_config(self):
        with open(os.path.join(self.bundle, "config.json")) as f:
            return json.load(f)

    def write(self, args=None):
        if args is not None:
            self.config["process"]["args"] = list(args)
        path = os.path.join(self.bundle, "config.json")
        with open(path, "w") as f:
            json.dump(self.config, f)
        os.chown(path, self.user.uid, self.user.gid)

    def pyrunc(self, *args, root="", cwd=None, timeout=60, global_args=(), env=None, binary=None):
        """pyrunc (or `binary`) as the user; root "" is the default ($XDG_RUNTIME_DIR/pyrunc),
        None no flag at all either."""
        argv = [binary or PYRUNC, *global_args]
        if root:
            argv += ["--root", root]
        return self.user.run([*argv, *args], env=self.user.env(self.xdg, **(env or {})),
                             cwd=cwd or self.bundle, timeout=timeout)

    def run(self, *args, **kw):
        return self.pyrunc("run", "--bundle", self.bundle, *args, **kw)

    def ids(self):
        return container_ids(self.default_root)

    def cleanup(self):
        left = []
        for cid in self.ids():
            s = self.pyrunc("state", cid)
            if s.rc == 0 and json.loads(s.out)["status"] != "stopped":
                left.append(cid)
            self.pyrunc("delete", "--force", cid)
        return left


def _workspace(user, request):
    base = os.path.join(user.home, "pyrunc-tests", uuid.uuid4().hex[:10])
    os.makedirs(os.path.dirname(base), exist_ok=True)
    os.chown(os.path.dirname(base), user.uid, user.gid)
    ws = Workspace(user, base)

    def finish():
        left = ws.cleanup()
        ids = ws.ids()
        shutil.rmtree(base, ignore_errors=True)
        assert not left, f"containers still alive at teardown: {left}"
        assert not ids, f"state left behind: {ids}"
    request.addfinalizer(finish)
    return ws


@pytest.fixture(scope="session")
def user():
    global PYRUNC
    u = ensure_user("pyrunc-rootless")
    PYRUNC = runnable_checkout(u, ROOT).launcher
    return u


@pytest.fixture(scope="session")
def user2(user):
    return ensure_user("pyrunc-rootless2")


@pytest.fixture
def ws(user, request):
    return _workspace(user, request)


@pytest.fixture
def cid():
    return "r-" + uuid.uuid4().hex[:10]


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


# ----------------------------------------------------------------------------------- the spec

def test_spec_rootless_matches_runc_rules(ws, user):
    """runc's ToRootless: user namespace mapping 0 to the caller alone, no network namespace,
    no gid= on devpts, /sys a read-only rbind of the host's, no linux.resources."""
    c = ws.read_config()
    linux = c["linux"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": user.uid, "size": 1}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": user.gid, "size": 1}]
    types = [ns["type"] for ns in linux["namespaces"]]
    assert types[-1] == "user" and "network" not in types
    assert "resources" not in linux
    sys_mount = next(m for m in c["mounts"] if m["destination"] == "/sys")
    assert sys_mount == {"destination": "/sys", "type": "none", "source": "/sys",
                         "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    devpts = next(m for m in c["mounts"] if m["destination"] == "/dev/pts")
    assert not [o for o in devpts["options"] if o.startswith(("gid=", "uid="))]
    assert list(linux)[:2] == ["uidMappings", "gidMappings"]  # runc's key order


# ------------------------------------------------------------------------------- run as a user

def test_run_as_user(ws, user, cid):
    """Inside: root of a user namespace that maps it to the user alone; /dev/null works and is
    the host's node bound in (no mknod in a user namespace). On the host: the process runs as
    the user. State lands in $XDG_RUNTIME_DIR/pyrunc, 0700 and the user's."""
    ws.write(["sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; "
                          "echo x > /dev/null && echo null-ok; stat -c '%i %t:%T' /dev/null; "
                          "grep -c ' /dev/null ' /proc/self/mountinfo; cat /proc/self/setgroups"])
    r = ws.run(cid, env={"PATH": "/nonexistent"})  # no newuidmap/newgidmap to fall back on
    assert r.rc == 0, r.err
    assert r.err == "", r.err  # nothing to warn about: no limits were asked for
    lines = r.out.split("\n")
    assert lines[0:2] == ["0", "0"], r.out
    assert lines[2].split() == ["0", str(user.uid), "1"] and lines[3].split() == ["0", str(user.gid), "1"]
    assert lines[4] == "null-ok"
    host = os.stat("/dev/null")
    assert lines[5] == f"{host.st_ino} 1:3", (lines[5], host.st_ino)  # the host's inode
    assert lines[6] == "1", r.out  # a mount of its own (a bind), not a node in the tmpfs
    # our own gid alone: written by pyrunc once setgroups is denied (runc), no newgidmap
    assert lines[7] == "deny", r.out
    root = ws.default_root
    st = os.lstat(root)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == user.uid and stat.S_IMODE(st.st_mode) & 0o777 == 0o700


def test_lifecycle_as_user(ws, user, cid):
    """create/start/state/list/exec/ps/kill/delete as the user; the init is the user's on the
    host; kill and delete leave nothing."""
    ws.write(["sleep", "100"])
    r = ws.pyrunc("create", "--bundle", ws.bundle, cid)
    assert r.rc == 0, r.err
    state = json.loads(ws.pyrunc("state", cid).out)
    assert state["status"] == "created"
    pid = state["pid"]
    uids = proc_status(pid)["Uid"].split()
    assert uids == [str(user.uid)] * 4, uids  # the mapped uid, as the host sees it
    assert ws.pyrunc("start", cid).rc == 0
    assert json.loads(ws.pyrunc("state", cid).out)["status"] == "running"
    listed = ws.pyrunc("list", "--format", "json")
    assert listed.rc == 0 and [c["id"] for c in json.loads(listed.out)] == [cid]
    assert json.loads(listed.out)[0]["owner"] == user.name
    r = ws.pyrunc("exec", cid, "sh", "-c", "id -u; cat /proc/1/cmdline | tr '\\0' ' '")
    assert (r.rc, r.out) == (0, "0\nsleep 100 "), (r.rc, r.out, r.err)
    ps = ws.pyrunc("ps", "--format", "json", cid)
    assert ps.rc == 0 and json.loads(ps.out) == [pid], (ps.out, ps.err)
    assert "may fail if you don't have the full access to cgroups" in ps.err  # runc's warning
    assert ws.pyrunc("kill", cid, "KILL").rc == 0
    wait_for(lambda: json.loads(ws.pyrunc("state", cid).out)["status"] == "stopped", what="stopped")
    assert ws.pyrunc("delete", cid).rc == 0
    assert not _alive(pid)
    assert ws.ids() == []


def test_rootless_false_as_user_fails(ws, cid):
    """--rootless false: cgroup permission errors are fatal again (runc's flag)."""
    ws.write(["true"])
    r = ws.run(cid, global_args=("--rootless", "false"))
    assert r.rc == 1 and "pyrunc run failed: linux.cgroupsPath: creating /sys/fs/cgroup/" in r.err, r.err
    assert "permission denied" in r.err
    assert ws.ids() == []


def test_rootless_flag_values(ws, cid):
    """runc's parseBoolOrAuto: Go's ParseBool spellings and auto; anything else is ParseBool's
    error, for the verbs that read the flag (create/run/ps/pause/resume), not for list."""
    ws.write(["true"])
    r = ws.run(cid, global_args=("--rootless", "maybe"))
    assert r.rc == 1 and 'pyrunc run failed: strconv.ParseBool: parsing \\"maybe\\": invalid syntax' in r.err
    assert ws.pyrunc("list", global_args=("--rootless", "maybe")).rc == 0
    for value in ("AUTO", "1", "t", "TRUE"):
        r = ws.run(cid, global_args=("--rootless", value))
        assert r.rc == 0, (value, r.err)


def test_no_user_namespace_refused(ws, cid):
    """A non-root caller needs a user namespace: runc's words, nothing left behind."""
    ws.config["linux"]["namespaces"] = [ns for ns in ws.config["linux"]["namespaces"] if ns["type"] != "user"]
    del ws.config["linux"]["uidMappings"], ws.config["linux"]["gidMappings"]
    ws.write(["true"])
    r = ws.run(cid)
    assert r.rc == 1 and "pyrunc run failed: rootless container requires user namespaces" in r.err, r.err
    assert ws.ids() == []


def test_unmapped_mount_gid_refused(ws, cid):
    """runc's rootless mount rule: a gid= option must name a mapped gid (spec's gid=5 is not)."""
    devpts = next(m for m in ws.config["mounts"] if m["destination"] == "/dev/pts")
    devpts["options"].append("gid=5")
    ws.write(["true"])
    r = ws.run(cid)
    assert r.rc == 1 and "cannot specify gid= mount options for unmapped gid in rootless containers" in r.err
    assert ws.ids() == []


def test_cgroup_limit_without_delegation_fails(ws, user, cid):
    """A limit asked for in a cgroup the user may not create: one error naming the field
    (runc's words), no state, no process, no cgroup left."""
    ws.config["linux"]["resources"] = {"pids": {"limit": 10}}
    ws.write(["sleep", "100"])
    r = ws.run("-d", cid)
    assert r.rc == 1, r.err
    assert ("linux.resources.pids.limit: cannot set pids limit: container could not join or "
            "create cgroup") in r.err, r.err
    assert ws.ids() == []
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _runs_as(p, user.uid) and _alive(p)
                and comm_of(p) in ("pyrunc:init", "sleep")]
    assert not os.path.exists(f"/sys/fs/cgroup/pids/{cid}")


def _alive(pid):
    """Running, not a zombie its (re)parent has not reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _runs_as(pid, uid):
    try:
        return proc_status(pid)["Uid"].split()[0] == str(uid)
    except (OSError, KeyError):
        return False


def test_delegated_cgroup_is_used(ws, user, cid):
    """Where the user may write a cgroup (a subtree delegated to it, and pyrunc started in
    it), the container's cgroup is made there and the limit applies; the hierarchies it may
    not write are skipped silently (no limit asked there); delete removes what it made."""
    import subprocess
    base = "/sys/fs/cgroup/pids"
    if not os.path.isdir(base):
        pytest.skip("no v1 pids hierarchy")
    delegated = os.path.join(base, f"pyrunc-deleg-{cid}")
    mine = os.path.join(delegated, cid)
    os.mkdir(delegated)

    def in_delegated(*args):
        # root moves the shell into the delegated cgroup, then becomes the user
        argv = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', delegated,
                *user.argv([PYRUNC, *args], user.env(ws.xdg))]
        with open(os.path.join(ws.dir, "err"), "w+") as err:  # not a pipe: the container keeps it
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                               timeout=60, cwd=ws.bundle)
            err.seek(0)
            p.stderr = err.read()
        return p

    try:
        for name in ("", "cgroup.procs", "tasks"):
            os.chown(os.path.join(delegated, name) if name else delegated, user.uid, user.gid)
        ws.config["linux"]["resources"] = {"pids": {"limit": 7}}
        ws.write(["sleep", "100"])
        r = in_delegated("run", "-d", "--bundle", ws.bundle, cid)
        assert r.returncode == 0 and r.stderr == "", r.stderr
        with open(os.path.join(mine, "pids.max")) as f:
            assert f.read().strip() == "7"
        with open(os.path.join(mine, "cgroup.procs")) as f:
            assert f.read().split() == [str(json.loads(ws.pyrunc("state", cid).out)["pid"])]
        assert ws.pyrunc("delete", "--force", cid).rc == 0
        assert not os.path.exists(mine)
    finally:
        for d in (mine, delegated):
            if os.path.isdir(d):
                for pid in open(os.path.join(d, "cgroup.procs")).read().split():
                    os.kill(int(pid), 9)
                time.sleep(0.1)
                os.rmdir(d)


def test_two_users_cannot_touch_each_others_containers(ws, user, user2, cid, request):
    """Each user's default root is private (0700 in their XDG dir): another user can neither
    list nor kill nor delete what is in it, and sees none of it in their own."""
    ws.write(["sleep", "100"])
    assert ws.run("-d", cid).rc == 0
    other = _workspace(user2, request)
    for argv in (["list"], ["state", cid], ["kill", cid, "KILL"], ["delete", "--force", cid]):
        r = other.pyrunc(*argv, root=ws.default_root)
        assert r.rc != 0 and "permission denied" in r.err, (argv, r.err)
    r = other.pyrunc("list", "-q")
    assert (r.rc, r.out) == (0, ""), r.err
    assert json.loads(ws.pyrunc("state", cid).out)["status"] == "running"
    # a root dir planted by another user is refused, not used
    planted = os.path.join(other.xdg, "pyrunc")
    os.makedirs(planted, exist_ok=True)
    os.chown(planted, user.uid, user.gid)
    os.chmod(planted, 0o755)
    r = other.pyrunc("list")
    assert r.rc == 1 and "refusing to use it" in r.err and "the path in $XDG_RUNTIME_DIR" in r.err, r.err
    os.rmdir(planted)
    assert ws.pyrunc("delete", "--force", cid).rc == 0


def test_non_root_without_xdg_uses_run(ws, cid):
    """No $XDG_RUNTIME_DIR: /run/pyrunc, which an ordinary user cannot write (runc's rule too)."""
    ws.write(["true"])
    r = ws.user.run([PYRUNC, "run", "--bundle", ws.bundle, cid], env=ws.user.env(), cwd=ws.bundle)
    assert r.rc == 1 and "/run/pyrunc" in r.err and "permission denied" in r.err, r.err


def test_help_shows_the_users_default_root(ws):
    r = ws.pyrunc("--help", root=None)
    assert f'(default: "{ws.default_root}")' in r.out
    assert "--rootless value" in r.out and '(default: "auto")' in r.out


def _subid(user, path):
    with open(path) as f:
        for line in f:
            name, start, size = line.strip().split(":")
            if name == user.name:
                return int(start), int(size)
    raise AssertionError(f"no range for {user.name} in {path}")


def test_subordinate_ranges_through_newuidmap(ws, user, cid):
    """More than the user's own id (its /etc/subuid range): the kernel refuses the write, so
    pyrunc hands the maps to newuidmap/newgidmap (as runc); setgroups stays allowed for them.
    A file made by uid 1000 inside is owned by the matching subordinate uid on the host."""
    ustart, _ = _subid(user, "/etc/subuid")
    gstart, _ = _subid(user, "/etc/subgid")
    linux = ws.config["linux"]
    linux["uidMappings"].append({"containerID": 1, "hostID": ustart, "size": 65536})
    linux["gidMappings"].append({"containerID": 1, "hostID": gstart, "size": 65536})
    ws.config["root"]["readonly"] = False
    os.chmod(os.path.join(ws.bundle, "rootfs", "tmp"), 0o1777)
    ws.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    ws.write(["sh", "-c", "cat /proc/self/uid_map /proc/self/setgroups; touch /tmp/made-by-1000"])
    r = ws.run(cid)
    assert r.rc == 0, r.err
    lines = [line.split() for line in r.out.splitlines()]
    assert lines[0] == ["0", str(user.uid), "1"] and lines[1] == ["1", str(ustart), "65536"], r.out
    assert lines[2] == ["allow"], r.out
    st = os.stat(os.path.join(ws.bundle, "rootfs", "tmp", "made-by-1000"))
    assert (st.st_uid, st.st_gid) == (ustart + 999, gstart + 999)


def test_subordinate_range_not_granted_fails(ws, user, cid):
    """A range the user was not granted: newuidmap refuses; one error, nothing left."""
    ws.config["linux"]["uidMappings"].append({"containerID": 1, "hostID": 5000000, "size": 10})
    ws.write(["true"])
    r = ws.run(cid)
    assert r.rc == 1 and "failed to use newuid map on" in r.err, r.err
    assert ws.ids() == []


# ------------------------------------------- cgroup v2 + systemd: the user's systemd instance

SYSTEMD = systemd_v2_host()
if os.environ.get("PYRUNC_REQUIRE_SYSTEMD") and not SYSTEMD:
    raise RuntimeError("PYRUNC_REQUIRE_SYSTEMD is set but this host is not cgroup v2 run by systemd")
systemd_only = pytest.mark.skipif(not SYSTEMD, reason="needs cgroup v2 with systemd as PID 1: "
                                  "`make test-v2-systemd`")
RUNC = "/usr/sbin/runc"
MEMORY = 64 << 20


@pytest.fixture(scope="session")
def session(user):
    """The user's systemd instance up; the environment that reaches its bus. Only the bus
    address goes to the runtime: $XDG_RUNTIME_DIR stays the workspace's (its state root)."""
    env = user_session(user)
    return env


def _bus(session):
    return {"DBUS_SESSION_BUS_ADDRESS": session["DBUS_SESSION_BUS_ADDRESS"]}


def _unit_state(user, session, unit):
    return user_systemctl(user, session, "show", "-p", "LoadState", "--value", unit).strip()


def _cgroup_v2(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        return next(line[3:].strip() for line in f if line.startswith("0::"))


@systemd_only
@pytest.mark.parametrize("runtime", ("runc", "pyrunc"))
def test_systemd_user_scope_with_limits(ws, user, session, cid, runtime):
    """`--systemd-cgroup` as an ordinary user (rootless auto: the user's own systemd instance,
    reached on its bus): the container is a transient scope <prefix>-<id>.scope in user.slice
    of user@UID.service, with the pids and memory limits on the unit (TasksMax, MemoryMax) and
    in its cgroup files; delete stops the unit and leaves no cgroup. runc is the reference."""
    binary, prefix = (RUNC, "runc") if runtime == "runc" else (None, "pyrunc")
    root = os.path.join(ws.xdg, runtime)
    ws.config["linux"]["resources"] = {"pids": {"limit": 17}, "memory": {"limit": MEMORY}}
    ws.write(["sleep", "100"])
    kw = dict(binary=binary, root=root, env=_bus(session), global_args=("--systemd-cgroup",))
    r = ws.run("-d", cid, **kw)
    assert r.rc == 0, r.err
    unit = f"{prefix}-{cid}.scope"
    try:
        pid = json.loads(ws.pyrunc("state", cid, binary=binary, root=root).out)["pid"]
        cgroup = _cgroup_v2(pid)
        assert cgroup == f"/user.slice/user-{user.uid}.slice/user@{user.uid}.service/user.slice/{unit}", cgroup
        d = "/sys/fs/cgroup" + cgroup
        with open(os.path.join(d, "pids.max")) as f:
            assert f.read().strip() == "17"
        with open(os.path.join(d, "memory.max")) as f:
            assert int(f.read()) == MEMORY
        show = user_systemctl(user, session, "show", "-p", "TasksMax", "-p", "MemoryMax", "-p", "ActiveState", unit)
        assert sorted(show.split()) == ["ActiveState=active", f"MemoryMax={MEMORY}", "TasksMax=17"], show
        r = ws.pyrunc("exec", cid, "true", **kw)
        assert r.rc == 0, r.err
    finally:
        r = ws.pyrunc("delete", "--force", cid, **kw)
    assert r.rc == 0, r.err
    wait_for(lambda: _unit_state(user, session, unit) == "not-found", timeout=20, what=f"{unit} to go")
    assert not os.path.exists(d)
    assert not _alive(pid)


@systemd_only
def test_systemd_user_run_foreground_in_a_slice(ws, user, session, cid):
    """`run` (foreground) with linux.cgroupsPath "slice:prefix:name" on the user instance: the
    limit holds while it runs (the container's cgroup namespace is rooted at the unit), and
    the unit and its cgroup are gone when run returns."""
    unit = f"rl-{cid}.scope"
    slice_dir = f"/sys/fs/cgroup/user.slice/user-{user.uid}.slice/user@{user.uid}.service/app.slice"
    ws.config["linux"]["cgroupsPath"] = f"app.slice:rl:{cid}"
    ws.config["linux"]["resources"] = {"pids": {"limit": 9}}
    ws.config["linux"]["namespaces"].append({"type": "cgroup"})  # runc's template has none
    ws.write(["sh", "-c", "cat /proc/self/cgroup /sys/fs/cgroup/pids.max"])
    r = ws.run(cid, env=_bus(session), global_args=("--systemd-cgroup",))
    assert (r.rc, r.out) == (0, "0::/\n9\n"), r.err
    assert _unit_state(user, session, unit) == "not-found"
    assert not os.path.exists(f"{slice_dir}/{unit}")
    assert ws.ids() == []


@systemd_only
def test_systemd_user_without_systemd_cgroup(ws, user, cid):
    """Without --systemd-cgroup on the same host: rootless cgroupfs; the user may not write
    the cgroup it runs in (root's service), so the container runs with no cgroup of its own,
    as runc's rootless does, and leaves nothing."""
    ws.write(["sh", "-c", "cat /proc/self/uid_map"])
    r = ws.run(cid)
    assert r.rc == 0 and r.out.split() == ["0", str(user.uid), "1"], r.err
    assert ws.ids() == []
