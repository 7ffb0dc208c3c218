"""Rootless podman on pyrunc: an ordinary user (tests/rootless_users.py) runs podman with
`--runtime pyrunc`. podman makes its own user namespace (root = the user, 1..65536 = the
user's /etc/subuid range, through newuidmap) and runs pyrunc inside it, so pyrunc is root of
that namespace: rootless cgroups (skipped where it may not write), devices bound from the
host, state in the user's $XDG_RUNTIME_DIR/pyrunc. This host is cgroup v1 without systemd:
podman uses cgroupfs and, rootless on v1, no cgroups at all. Storage: vfs under the test
user's home (no root-owned mounts left behind).

Independent of the root engines of this package (no `engines` fixture): only podman,
uidmap and a user are needed.
"""

import json
import os
import shutil
import time

import pytest
from harness import PYRUNC, build_image_tar
from helpers import comm_of, container_ids, wait_for
from rootless_users import ensure_user, missing_tools, runnable_checkout, systemd_v2_host, user_session, user_systemctl

IMAGE = "localhost/tiny:latest"
SYSTEMD = systemd_v2_host()
if os.environ.get("PYRUNC_REQUIRE_SYSTEMD") and not SYSTEMD:
    raise RuntimeError("PYRUNC_REQUIRE_SYSTEMD is set but this host is not cgroup v2 run by systemd")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="creates users: run the suite as root"),
    pytest.mark.skipif(not os.path.exists("/usr/bin/podman"), reason="podman is not installed"),
    pytest.mark.skipif(bool(missing_tools()), reason=f"missing: {missing_tools()}"),
]


class RootlessPodman:
    def __init__(self, user, base, pyrunc):
        self.user = user
        self.pyrunc = pyrunc
        self.base = base
        # systemd: the user's session (its bus reaches the user instance); else a private dir
        # (podman wants a runroot of at most 50 characters: not below the home)
        self.session = user_session(user) if SYSTEMD else {}
        if SYSTEMD:
            self.xdg = self.session["XDG_RUNTIME_DIR"]
        else:
            import tempfile
            self.xdg = tempfile.mkdtemp(prefix="pyrunc-rl-")
        self.conf = os.path.join(base, "containers.conf")
        # podman's defaults on a systemd host; cgroupfs on the v1 host without systemd
        self.manager = ["--cgroup-manager", "cgroupfs"] if not SYSTEMD else []

    @property
    def state_root(self):
        return os.path.join(self.xdg, "pyrunc")

    def up(self):
        os.chown(self.xdg, self.user.uid, self.user.gid)
        manager = 'cgroup_manager = "cgroupfs"\n' if not SYSTEMD else ""
        with open(self.conf, "w") as f:
            f.write(f"""[containers]
netns = "none"
log_driver = "k8s-file"

[engine]
{manager}events_logger = "file"
runtime = "pyrunc"
runtime_supports_json = ["pyrunc", "runc", "crun"]

[engine.runtimes]
pyrunc = ["{self.pyrunc}"]
runc = ["/usr/sbin/runc"]
""")
        tar = os.path.join(self.base, "tiny.tar")
        os.makedirs(os.path.join(self.base, "image"))
        shutil.copy(build_image_tar(os.path.join(self.base, "image", "tiny.tar")), tar)
        self.user.chown_tree(self.base)
        r = self("import", "-c", 'CMD ["/bin/sh"]', tar, IMAGE)
        assert r.rc == 0, r.err

    def __call__(self, *args, timeout=120):
        argv = ["/usr/bin/podman", "--root", f"{self.base}/storage", "--runroot", f"{self.xdg}/containers",
                "--storage-driver", "vfs", *self.manager, "--events-backend", "file",
                "--tmpdir", f"{self.xdg}/libpod-tmp", *args]
        return self.user.run(argv, env=self.user.env(self.xdg, CONTAINERS_CONF=self.conf, **self.session),
                             cwd=self.base, timeout=timeout)

    def systemctl(self, *args):
        return user_systemctl(self.user, self.session, *args)

    def state_ids(self):
        return container_ids(self.state_root)

    def down(self):
        self("rm", "-af", "-t", "0")
        # podman's pause process holds its user namespace: end it (it is the user's)
        self("system", "migrate")
        for pid in os.listdir("/proc"):
            if pid.isdigit() and _uid_of(pid) == self.user.uid and comm_of(pid) == "catatonit":
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass


def _uid_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def user_containers(uid):
    """The user's container processes still alive (pyrunc inits, the test's sleeps)."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and _uid_of(pid) == uid and comm_of(pid) in ("pyrunc:init", "sleep"):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                        out.append(int(pid))
            except OSError:
                pass
    return out


@pytest.fixture(scope="module")
def podman():
    user = ensure_user("pyrunc-rootless")
    launcher = runnable_checkout(user, os.path.dirname(os.path.dirname(PYRUNC))).launcher
    base = os.path.join(user.home, "pyrunc-tests", "podman")
    if os.path.exists(base):  # an earlier run killed before its teardown
        shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    p = RootlessPodman(user, base, launcher)
    try:
        p.up()
        yield p
    finally:
        p.down()
        shutil.rmtree(base, ignore_errors=True)
        if SYSTEMD:  # logind's directory stays, what podman made in it goes
            for name in ("containers", "libpod-tmp", "pyrunc"):
                shutil.rmtree(os.path.join(p.xdg, name), ignore_errors=True)
        else:
            shutil.rmtree(p.xdg, ignore_errors=True)


@pytest.fixture
def clean(podman):
    yield
    podman("rm", "-af", "-t", "0")
    wait_for(lambda: not podman.state_ids(), timeout=10, what="pyrunc state to go")
    assert not user_containers(podman.user.uid), "container processes left"


def test_rootless_run_rm_echo(podman, clean):
    r = podman("run", "--rm", "--runtime", "pyrunc", IMAGE, "echo", "hi")
    assert (r.rc, r.out) == (0, "hi\n"), r.err


def test_rootless_inside_podmans_user_namespace(podman, clean):
    """pyrunc ran as root of podman's user namespace: the container's root is the user on the
    host and the subordinate range maps the rest; /dev/null is the host's node."""
    r = podman("run", "--rm", "--runtime", "pyrunc", IMAGE, "sh", "-c",
               "id -u; cat /proc/self/uid_map; stat -c '%i %t:%T' /dev/null; echo x > /dev/null")
    assert r.rc == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == "0"
    maps = [line.split() for line in lines[1:3]]
    assert maps[0] == ["0", str(podman.user.uid), "1"] and maps[1][0] == "1", r.out
    assert lines[3] == f"{os.stat('/dev/null').st_ino} 1:3", r.out


def test_rootless_detached_exec_stop_rm(podman, clean):
    """run -d, exec, stop, rm: pyrunc's state is in the user's $XDG_RUNTIME_DIR/pyrunc while the
    container lives (proof that pyrunc, not another runtime, ran it) and gone after rm."""
    r = podman("run", "-d", "--name", "rl1", "--runtime", "pyrunc", IMAGE, "sleep", "100")
    assert r.rc == 0, r.err
    cid = r.out.strip()
    assert podman.state_ids() == [cid]
    st = os.stat(podman.state_root)
    assert st.st_uid == podman.user.uid and st.st_mode & 0o777 == 0o700
    pid = json.loads(podman("inspect", "rl1").out)[0]["State"]["Pid"]
    assert _uid_of(str(pid)) == podman.user.uid  # the container's root is the user
    r = podman("exec", "rl1", "sh", "-c", "echo in-exec; id -u")
    assert (r.rc, r.out) == (0, "in-exec\n0\n"), r.err
    start = time.monotonic()
    r = podman("stop", "-t", "1", "rl1")
    assert r.rc == 0, r.err
    assert time.monotonic() - start < 30
    inspect = json.loads(podman("inspect", "rl1").out)[0]["State"]
    assert inspect["Status"] == "exited"
    assert podman("rm", "rl1").rc == 0
    wait_for(lambda: not podman.state_ids(), timeout=10, what="pyrunc state to go")
    assert not os.path.exists(f"/proc/{pid}") or not user_containers(podman.user.uid)


def test_rootless_exit_code(podman, clean):
    r = podman("run", "--rm", "-i", "--runtime", "pyrunc", IMAGE, "sh", "-c", "exit 7")
    assert r.rc == 7, r.err


def test_rootless_same_as_runc(podman, clean):
    """The reference: the same command on runc gives the same output (the test is podman's,
    not pyrunc's, where they agree)."""
    args = (IMAGE, "sh", "-c", "id; cat /proc/self/uid_map; ls /dev")
    a = podman("run", "--rm", "--runtime", "pyrunc", *args)
    b = podman("run", "--rm", "--runtime", "runc", *args)
    assert a.rc == b.rc == 0, (a.err, b.err)
    assert a.out == b.out


def test_rootless_nested_uidmap(podman, clean):
    """`--uidmap` in rootless podman: the config asks for a user namespace of its own, mapped
    within podman's (pyrunc, root there, writes the maps itself); the container's root is
    podman's uid 1, i.e. the user's first subordinate uid on the host."""
    r = podman("run", "--rm", "--runtime", "pyrunc", "--uidmap", "0:1:1000", "--gidmap", "0:1:1000",
               IMAGE, "sh", "-c", "id -u; cat /proc/self/uid_map")
    assert r.rc == 0, r.err
    assert r.out.split() == ["0", "0", "1", "1000"], r.out


# ------------------------------------------------------- cgroup v2 + systemd: podman's defaults

systemd_only = pytest.mark.skipif(not SYSTEMD, reason="needs cgroup v2 with systemd as PID 1: "
                                  "`make test-v2-systemd`")
RUNTIMES = ("runc", "pyrunc")
MEMORY = 64 << 20


def _cgroup_of(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    raise AssertionError(f"no cgroup v2 line for {pid}")


@systemd_only
def test_systemd_is_podmans_default(podman):
    """No cgroupfs forced anywhere: podman picks systemd, the user's instance is up."""
    r = podman("info", "--format", "{{.Host.CgroupManager}} {{.Host.CgroupsVersion}}")
    assert (r.rc, r.out.split()) == (0, ["systemd", "v2"]), r.err
    assert podman.systemctl("is-system-running").strip() in ("running", "degraded")


@systemd_only
@pytest.mark.parametrize("rt", RUNTIMES)
def test_systemd_run_rm_echo(podman, clean, rt):
    r = podman("run", "--rm", "--runtime", rt, IMAGE, "echo", "hi")
    assert (r.rc, r.out) == (0, "hi\n"), r.err
    assert not _libpod_scopes(podman), "a scope left after run --rm"


def _libpod_scopes(podman):
    out = podman.systemctl("list-units", "--all", "--plain", "--no-legend", "--type=scope")
    return [line.split()[0] for line in out.splitlines() if line.split() and line.split()[0].startswith("libpod-")]


@systemd_only
@pytest.mark.parametrize("rt", RUNTIMES)
def test_systemd_memory_exec_stop_rm(podman, clean, rt):
    """run -d --memory 64m: the container is in libpod-<id>.scope of the user's systemd (below
    user@UID.service), the limit is on the scope (systemd's MemoryMax and the cgroup's
    memory.max) and visible inside; exec joins it; stop and rm leave no scope, no cgroup, no
    runtime state."""
    uid = podman.user.uid
    r = podman("run", "-d", "--name", f"m-{rt}", "--memory", "64m", "--runtime", rt, IMAGE,
               "sleep", "1000")
    assert r.rc == 0, r.err
    cid = r.out.strip()
    scope = f"libpod-{cid}.scope"
    pid = json.loads(podman("inspect", f"m-{rt}").out)[0]["State"]["Pid"]
    cgroup = _cgroup_of(pid)
    assert cgroup.startswith(f"/user.slice/user-{uid}.slice/user@{uid}.service/"), cgroup
    assert os.path.basename(cgroup) == scope or os.path.basename(os.path.dirname(cgroup)) == scope, cgroup
    scope_dir = "/sys/fs/cgroup" + cgroup[:cgroup.index(scope) + len(scope)]
    with open(os.path.join(scope_dir, "memory.max")) as f:
        assert int(f.read()) == MEMORY
    assert podman.systemctl("show", "-p", "MemoryMax", "--value", scope).strip() == str(MEMORY)
    if rt == "pyrunc":
        assert podman.state_ids() == [cid]  # pyrunc, not another runtime, ran it
    r = podman("exec", f"m-{rt}", "sh", "-c", "cat /sys/fs/cgroup/memory.max; cat /proc/self/cgroup")
    assert r.rc == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == str(MEMORY), r.out
    assert lines[1] == "0::/", r.out  # podman's private cgroup namespace: the scope is its root
    r = podman("stop", "-t", "1", f"m-{rt}")
    assert r.rc == 0, r.err
    assert podman("rm", f"m-{rt}").rc == 0
    wait_for(lambda: not _libpod_scopes(podman), timeout=20, what=f"{scope} to go")
    assert podman.systemctl("show", "-p", "LoadState", "--value", scope).strip() == "not-found"
    assert not os.path.exists(scope_dir)
    wait_for(lambda: not podman.state_ids(), timeout=10, what="pyrunc state to go")
