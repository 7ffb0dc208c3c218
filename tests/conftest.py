"""Shared fixtures: real containers from a busybox-static rootfs, run by the real CLI.

Every test gets its own --root; at teardown every container left in it is force-deleted
and the test fails if a container process survived.
"""

import copy
import json
import os
import sys
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from bundle import make_rootfs  # noqa: E402
from helpers import Runner, live_inits, mountpoints  # noqa: E402

from pyrunc.spec.default import default_config  # noqa: E402

PYRUNC = [os.path.join(ROOT, "bin", "pyrunc")]
if not os.path.exists(PYRUNC[0]):  # running pytest without `make setup`
    PYRUNC = [sys.executable, "-I", "-m", "pyrunc"]
RUNC = "/usr/sbin/runc"


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory):
    """One busybox rootfs shared by all tests; configs mount it read-only by default."""
    base = tmp_path_factory.getbasetemp()
    # pytest makes them 0700. Bind sources are opened on the host, but the remapped root of a
    # user-namespace container still binds the rootfs onto itself by path (shim/rootfs.py
    # prepare), so it must be able to walk to it.
    for d in (base, base.parent):
        os.chmod(d, 0o711)
    return make_rootfs(str(tmp_path_factory.mktemp("rootfs")))


class Bundle:
    """A bundle dir whose config.json is written from `config` by write()."""

    def __init__(self, path, rootfs, args):
        self.path = str(path)
        self.config = default_config(rootfs=rootfs, args=args, terminal=False)

    def write(self):
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f, indent=2)
        return self

    @property
    def process(self):
        return self.config["process"]

    @property
    def linux(self):
        return self.config["linux"]

    def copy_to(self, path):
        other = Bundle.__new__(Bundle)
        other.path = str(path)
        other.config = copy.deepcopy(self.config)
        os.makedirs(other.path, exist_ok=True)
        return other.write()


@pytest.fixture
def make_bundle(tmp_path, rootfs):
    """make_bundle(args...) -> Bundle; edit .config, then call .write() (done once for you)."""
    counter = [0]

    def factory(*args):
        counter[0] += 1
        path = tmp_path / f"bundle{counter[0]}"
        path.mkdir()
        return Bundle(path, rootfs, list(args) or ["true"]).write()

    return factory


@pytest.fixture
def pyrunc(tmp_path):
    r = Runner(PYRUNC, str(tmp_path / "pyrunc-root"))
    yield r
    leftovers = r.cleanup()
    assert not r.ids(), f"state left behind: {r.ids()}"
    assert not leftovers, f"containers still alive at teardown: {leftovers}"


def _own_cgroup_dirs():
    """This process's cgroup directory in every hierarchy mounted on the host."""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            own[controllers] = path
    dirs = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype, supers = fields[sep + 1], fields[sep + 3].split(",")
            if fstype == "cgroup2" and "" in own:
                dirs.append(fields[4] + own[""])
            elif fstype == "cgroup":
                for controllers, path in own.items():
                    if controllers and set(controllers.split(",")) <= set(supers):
                        root = fields[3]
                        rel = path[len(root):] if root != "/" and path.startswith(root) else path
                        dirs.append(fields[4] + rel)
    return sorted(set(os.path.normpath(d) for d in dirs))


@pytest.fixture(scope="session")
def runc_argv():
    """runc run from a cgroup of its own (<our cgroup>/runc-side/runc): without cgroupsPath
    runc and pyrunc both put a container in "<id>" beside or below their own cgroup, and the
    differential tests run both with one id at the same time."""
    made, leaves = [], []
    for d in _own_cgroup_dirs():
        side, leaf = os.path.join(d, f"runc-side-{os.getpid()}"), None
        try:
            for level in (side, os.path.join(side, "runc")):
                os.makedirs(level, exist_ok=True)
                made.append(level)
                for name in ("cpuset.cpus", "cpuset.mems"):
                    if os.path.exists(os.path.join(level, name)):
                        with open(os.path.join(os.path.dirname(level), name)) as src:
                            value = src.read()
                        with open(os.path.join(level, name), "w") as dst:
                            dst.write(value)
            leaf = os.path.join(side, "runc")
        except OSError:
            continue
        leaves.append(leaf)
    import shlex
    script = ("for d in " + " ".join(shlex.quote(d) for d in leaves) +
              '; do echo $$ > "$d/cgroup.procs" 2>/dev/null; done; exec "$@"') if leaves else 'exec "$@"'
    yield ["/bin/sh", "-c", script, "runc", RUNC]
    for d in reversed(made):
        try:
            os.rmdir(d)
        except OSError:
            pass


@pytest.fixture
def runc(tmp_path, runc_argv):
    if not os.path.exists(RUNC):
        pytest.skip("Debian's runc is not installed")
    r = Runner(runc_argv, str(tmp_path / "runc-root"))
    yield r
    r.cleanup()


@pytest.fixture
def cid():
    return "t-" + uuid.uuid4().hex[:10]


# Mounts that docker, containerd and podman make for their own containers while the engine
# tests (or a developer's engines) run: never ours, and they come and go on their own.
ENGINE_MOUNT_PREFIXES = ("/var/lib/pyrunc-e2e/", "/run/pyrunc-e2e/", "/run/containerd/", "/run/docker/",
                         "/var/lib/containers/", "/run/containers/", "/run/netns/", "/var/lib/docker/")


def host_mounts():
    return [p for p in mountpoints() if not p.startswith(ENGINE_MOUNT_PREFIXES)]


@pytest.fixture
def no_leaks(pyrunc):
    """Fails the test if host mounts changed or an init of this test's --root survived."""
    before = host_mounts()
    yield
    after = host_mounts()
    assert before == after, f"host mounts changed: {set(after) ^ set(before)}"
    survivors = sorted(live_inits(pyrunc.root))
    assert not survivors, f"container inits left running: {survivors}"


@pytest.fixture
def api(tmp_path):
    """pyrunc's Python API on a root of its own; every container is gone at the end."""
    from pyrunc import Runtime
    rt = Runtime(str(tmp_path / "api-root"))
    yield rt
    for s in rt.list():
        rt.delete(s.id, force=True)
    assert rt.list() == []
