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
from helpers import wait_for
from rootless_users import ensure_user, missing_tools, runnable_checkout

IMAGE = "localhost/tiny:latest"

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
        # podman wants a runroot of at most 50 characters: not below the home
        import tempfile
        self.xdg = tempfile.mkdtemp(prefix="pyrunc-rl-")
        self.conf = os.path.join(base, "containers.conf")

    @property
    def state_root(self):
        return os.path.join(self.xdg, "pyrunc")

    def up(self):
        os.chown(self.xdg, self.user.uid, self.user.gid)
        with open(self.conf, "w") as f:
            f.write(f"""[containers]
netns = "none"
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
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
                "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                "--tmpdir", f"{self.xdg}/libpod-tmp", *args]
        return self.user.run(argv, env=self.user.env(self.xdg, CONTAINERS_CONF=self.conf),
                             cwd=self.base, timeout=timeout)

    def state_ids(self):
        try:
            return sorted(n for n in os.listdir(self.state_root) if not n.startswith("@"))
        except FileNotFoundError:
            return []

    def down(self):
        self("rm", "-af", "-t", "0")
        # podman's pause process holds its user namespace: end it (it is the user's)
        self("system", "migrate")
        for pid in os.listdir("/proc"):
            if pid.isdigit() and _uid_of(pid) == self.user.uid and _comm(pid) == "catatonit":
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


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
        if pid.isdigit() and _uid_of(pid) == uid and _comm(pid) in ("pyrunc:init", "sleep"):
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
