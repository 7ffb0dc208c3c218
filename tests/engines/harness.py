"""Docker, containerd (ctr) and podman, started offline with pyrunc registered as a runtime.

Used by the end-to-end tests (tests/engines) and by conformance/engines_bench.py. Everything the
engines keep lives under STATE; the image is a busybox-static rootfs imported as "tiny".
No bridge networking, no iptables. The cgroupfs driver by default (this host has no systemd);
with systemd=True (the --systemd VM of `make test-v2-systemd`) each engine keeps its own default
cgroup driver on a systemd host: dockerd's and podman's are systemd there, and ctr is given
containerd's runc option SystemdCgroup = true.

    python tests/engines/harness.py start [--systemd] | stop   # leave the engines running for manual use
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS)
from bundle import make_rootfs  # noqa: E402
from helpers import mountpoints  # noqa: E402

STATE = os.environ.get("PYRUNC_E2E_STATE", "/var/lib/pyrunc-e2e")
PYRUNC = os.path.join(os.path.dirname(TESTS), "bin", "pyrunc")
RUNC = "/usr/sbin/runc"
PATH = "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"  # /usr/bin/docker, not a newer CLI elsewhere
RUNTIMES = {"pyrunc": PYRUNC, "runc": RUNC}
# where the VM lanes leave their reports (the matrix, benchmark, engine logs): the shared checkout
REPORT_DIR = os.environ.get("PYRUNC_E2E_REPORT", os.path.join(os.path.dirname(TESTS), "build", "vm"))
PACKAGES = ("docker.io", "containerd", "podman", "conmon")


def missing_tools():
    return [t for t in ("/usr/bin/docker", "/usr/sbin/dockerd", "/usr/bin/containerd", "/usr/bin/ctr",
                        "/usr/bin/podman", "/usr/bin/conmon") if not os.path.exists(t)]


def clean_env(**extra):
    env = {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8"}
    env.update(extra)
    return env


class Result:
    def __init__(self, argv, proc, seconds):
        self.argv, self.seconds = argv, seconds
        self.rc, self.out, self.err = proc.returncode, proc.stdout, proc.stderr

    def __repr__(self):
        return f"<{' '.join(self.argv)}: rc={self.rc} out={self.out!r} err={self.err!r}>"


def execute(argv, *, input=None, timeout=120, env=None):
    start = time.monotonic()
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                          env=env or clean_env(), stdin=None if input is not None else subprocess.DEVNULL)
    return Result(argv, proc, time.monotonic() - start)


def in_pty(argv, timeout=60, env=None):
    """Run argv with a terminal as its stdio (for `exec -t`, which wants one); returns Result."""
    import pty
    import select
    start = time.monotonic()
    pid, master = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, env or clean_env())
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the slave side is closed
                break
            if not data:
                break
            chunks.append(data)
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(master)
    proc = subprocess.CompletedProcess(argv, os.waitstatus_to_exitcode(status),
                                       b"".join(chunks).decode(errors="replace"), "")
    return Result(argv, proc, time.monotonic() - start)


def build_image_tar(path):
    """A tarball of the busybox rootfs (uid/gid numeric), as `docker import` / `podman import` take;
    made once."""
    if os.path.exists(path):
        return path
    rootfs = make_rootfs(os.path.join(STATE, "image", "rootfs"))
    with tarfile.open(path + ".tmp", "w") as tar:
        for name in sorted(os.listdir(rootfs)):
            if name != ".pyrunc-rootfs":
                tar.add(os.path.join(rootfs, name), arcname=name)
    os.rename(path + ".tmp", path)
    return path


def _wait_for(check, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {timeout}s")


def _alive(pidfile):
    try:
        os.kill(int(open(pidfile).read()), 0)
        return True
    except (OSError, ValueError):
        return False


def _gone(pid):
    try:  # our own daemon child would linger as a zombie until reaped
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
        return False
    except ProcessLookupError:
        return True


def _stop_pid(pidfile):
    try:
        pid = int(open(pidfile).read())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, 15)
        for _ in range(150):
            if _gone(pid):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, 9)
    except ProcessLookupError:
        pass
    if os.path.exists(pidfile):
        os.unlink(pidfile)


def _daemon(argv, log, pidfile, env=None):
    """Start a daemon in its own session, stdio to a log, no inherited fds (close_fds)."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                env=env or clean_env(), start_new_session=True)
    if pidfile:
        with open(pidfile, "w") as f:
            f.write(str(proc.pid))
    return proc


class DockerLikeCli:
    """The scenario verbs, for the docker and podman command lines (they are the same here)."""
    image = "tiny"
    PREFIX = "e2e-"  # every container the tests name; cleanup() removes what is left of them

    def run(self, runtime, *cmd, opts=()):
        return self.cli("run", "--rm", "--runtime", runtime, "--network", "none", *opts, self.image, *cmd)

    def run_tty(self, runtime, *cmd):
        return self.cli_pty("run", "--rm", "-t", "--runtime", runtime, "--network", "none", self.image, *cmd)

    def run_stdin(self, runtime, data, *cmd):
        return self.cli("run", "--rm", "-i", "--runtime", runtime, "--network", "none", self.image, *cmd,
                        input=data, timeout=30)

    def process_opts(self, user, workdir, hostname, env):
        return ("--user", user, "--workdir", workdir, "--hostname", hostname, "--env", env)

    read_only_opts = ("--read-only",)
    init_opts = ("--init",)  # docker: tini as /sbin/docker-init; podman: catatonit as /run/podman-init

    def exec_as(self, name, user, *cmd):
        return self.cli("exec", "--user", user, name, *cmd)

    def run_detached(self, runtime, name, *cmd, opts=()):
        return self.cli("run", "-d", "--name", name, "--runtime", runtime, "--network", "none", *opts,
                        self.image, *cmd)

    def exec(self, name, *cmd):
        return self.cli("exec", name, *cmd)

    def exec_tty(self, name, *cmd):
        return self.cli("exec", "-t", name, *cmd)

    def stop(self, name):
        return self.cli("stop", "-t", "10", name)

    def rm(self, name):
        return self.cli("rm", name)

    def top(self, name):
        return self.cli("top", name)

    def pause(self, name):
        return self.cli("pause", name)

    def unpause(self, name):
        return self.cli("unpause", name)

    def host_pid(self, name):
        return int(self.cli("inspect", "-f", "{{.State.Pid}}", name).out)

    def update(self, name, memory, cpus):
        return self.cli("update", "--memory", str(memory), "--memory-swap", str(2 * memory), "--cpus", cpus, name)

    cap_opts = ("--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE")
    pids_opts = ("--pids-limit", "50")

    def seccomp_opts(self, profile):
        return ("--security-opt", f"seccomp={profile}")

    def memory_opts(self, limit):
        return ("--memory", str(limit))

    def cleanup(self):
        ids = self.cli("ps", "-aq", "--filter", f"name={self.PREFIX}").out.split()
        if ids:
            self.cli("rm", "-f", *ids)


class Docker(DockerLikeCli):
    name = "docker"

    slice = "system.slice"  # dockerd's cgroup parent with the systemd driver

    def __init__(self, userns=False, systemd=False):
        self.dir = os.path.join(STATE, "docker")
        self.userns = userns
        self.systemd = systemd
        self.sock = os.path.join(self.dir, "docker.sock")
        self.exec_root = os.path.join(self.dir, "exec")

    def cli(self, *args, **kw):
        return execute(["/usr/bin/docker", "-H", f"unix://{self.sock}", *args], **kw)

    def cli_pty(self, *args):
        return in_pty(["/usr/bin/docker", "-H", f"unix://{self.sock}", *args])

    def state_root(self, runtime):
        return os.path.join(self.exec_root, f"runtime-{runtime}", "moby")

    def up(self):
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "daemon.json"), "w") as f:
            json.dump({"runtimes": {"pyrunc": {"path": PYRUNC}}}, f)
        argv = ["/usr/sbin/dockerd", "--config-file", os.path.join(self.dir, "daemon.json"),
                "--data-root", os.path.join(self.dir, "data"), "--exec-root", self.exec_root,
                "-H", f"unix://{self.sock}", "--pidfile", os.path.join(self.dir, "dockerd.pid"),
                "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                "--storage-driver", "overlay2"]
        if not self.systemd:  # else dockerd's default, systemd on a cgroup v2 host run by systemd
            argv += ["--exec-opt", "native.cgroupdriver=cgroupfs"]
        if self.userns:
            argv += ["--userns-remap", "default"]
        _daemon(argv, os.path.join(self.dir, "dockerd.log"), None)
        _wait_for(lambda: self.cli("version").rc == 0, "dockerd")
        if self.cli("image", "inspect", "tiny").rc != 0:
            tar = build_image_tar(os.path.join(STATE, "image", "tiny.tar"))
            r = self.cli("import", "-c", 'CMD ["/bin/sh"]', tar, "tiny:latest")
            assert r.rc == 0, r

    def down(self):
        ids = self.cli("ps", "-aq").out.split()
        if ids:
            self.cli("rm", "-f", *ids)
        _stop_pid(os.path.join(self.dir, "dockerd.pid"))

    def run_argv(self, runtime, *args):
        return ["run", "--runtime", runtime, "--network", "none", *args]

    def save_image(self, path):
        r = self.cli("save", "tiny:latest", "-o", path)
        assert r.rc == 0, r
        return path

    def full_id(self, name):
        return self.cli("inspect", "-f", "{{.Id}}", name).out.strip()

    def unit(self, name):
        """The systemd scope of a container (cgroupsPath system.slice:docker:<id>)."""
        return f"docker-{self.full_id(name)}.scope"

    def cgroup_driver(self):
        return self.cli("info", "-f", "{{.CgroupDriver}}").out.strip()


class Podman(DockerLikeCli):
    name = "podman"

    slice = "machine.slice"  # podman's cgroup parent with the systemd manager

    def __init__(self, systemd=False):
        self.dir = os.path.join(STATE, "podman")
        self.conf = os.path.join(self.dir, "containers.conf")
        self.systemd = systemd

    def base(self):
        d = self.dir
        manager = () if self.systemd else ("--cgroup-manager", "cgroupfs")  # else podman's default
        return ["/usr/bin/podman", "--root", f"{d}/root", "--runroot", f"{d}/runroot", "--storage-driver",
                "overlay", *manager, "--events-backend", "file", "--tmpdir", f"{d}/tmp"]

    def env(self):
        return clean_env(CONTAINERS_CONF=self.conf)

    def cli(self, *args, **kw):
        return execute([*self.base(), *args], env=self.env(), **kw)

    def cli_pty(self, *args):
        return in_pty([*self.base(), *args], env=self.env())

    def state_root(self, runtime):
        return {"pyrunc": "/run/pyrunc", "runc": "/run/runc"}[runtime]  # no --root: the default

    def up(self):
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "cni"), exist_ok=True)
        # podman's default rlimits (nofile 1048576) exceed what this sandbox may raise: cap them
        import resource
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1] & 0x7fffffff, 32768)
        runtimes = "\n".join(f'{k} = ["{v}"]' for k, v in RUNTIMES.items())
        with open(self.conf, "w") as f:
            f.write(f"""[containers]
netns = "none"
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]
log_driver = "k8s-file"

[network]
network_config_dir = "{self.dir}/cni"

[engine]
{"" if self.systemd else 'cgroup_manager = "cgroupfs"'}
events_logger = "file"
events_logfile_path = "{self.dir}/events.log"
runtime = "pyrunc"
runtime_supports_json = ["pyrunc", "runc", "crun"]
tmp_dir = "{self.dir}/tmp"

[engine.runtimes]
{runtimes}
""")
        if self.cli("image", "exists", "localhost/tiny:latest").rc != 0:
            tar = build_image_tar(os.path.join(STATE, "image", "tiny.tar"))
            r = self.cli("import", "-c", 'CMD ["/bin/sh"]', tar, "localhost/tiny:latest")
            assert r.rc == 0, r

    def down(self):
        self.cli("rm", "-af", "-t", "0")

    def run_argv(self, runtime, *args):
        return ["run", "--runtime", runtime, "--network", "none", *args]

    def full_id(self, name):
        return self.cli("inspect", "-f", "{{.Id}}", name).out.strip()

    def unit(self, name):
        """The systemd scope of a container (cgroupsPath machine.slice:libpod:<id>)."""
        return f"libpod-{self.full_id(name)}.scope"

    def cgroup_driver(self):
        return self.cli("info", "-f", "{{.Host.CgroupManager}}").out.strip()


# ctr 1.6 wants each capability by its CAP_ name (no ALL), and applies --cap-drop after --cap-add:
# dropping every default but NET_BIND_SERVICE is its way of saying --cap-drop ALL --cap-add it
CTR_DEFAULT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
                    "SETFCAP", "SETPCAP", "SYS_CHROOT", "KILL", "AUDIT_WRITE")


class Ctr:
    name = "ctr"
    image = "docker.io/library/tiny:latest"
    PREFIX = "e2e-"
    cap_opts = tuple(x for c in CTR_DEFAULT_CAPS for x in ("--cap-drop", f"CAP_{c}"))
    pids_opts = None  # ctr 1.6 has no pids flag
    _serial = 0

    def _next_id(self, what):
        Ctr._serial += 1
        return f"{self.PREFIX}{what}{os.getpid()}-{Ctr._serial}"

    slice = "system.slice"  # the cgroup parent given to ctr with the systemd driver

    def runtime_opts(self, runtime, cid):
        """The runc shim's options: BinaryName, and (systemd driver) SystemdCgroup = true, which
        needs a "slice:prefix:name" cgroupsPath (ctr's default, /<namespace>/<id>, is cgroupfs')."""
        opts = ("--runtime", "io.containerd.runc.v2", "--runc-binary", RUNTIMES[runtime])
        if self.systemd:
            opts += ("--runc-systemd-cgroup", "--cgroup", f"{self.slice}:ctr:{cid}")
        return opts

    def run(self, runtime, *cmd, opts=()):
        cid = self._next_id("run")
        return self.cli("run", "--rm", *self.runtime_opts(runtime, cid), *opts, self.image, cid, *cmd)

    def run_tty(self, runtime, *cmd):
        cid = self._next_id("tty")
        return self.cli_pty("run", "--rm", "-t", *self.runtime_opts(runtime, cid), self.image, cid, *cmd)

    def run_stdin(self, runtime, data, *cmd):
        cid = self._next_id("in")
        return self.cli("run", "--rm", *self.runtime_opts(runtime, cid), self.image, cid,
                        *cmd, input=data, timeout=30)

    process_opts = None  # ctr 1.6's run has no --user or --hostname
    init_opts = None  # nor an --init

    read_only_opts = ("--read-only",)

    def exec_as(self, name, user, *cmd):
        return self.cli("task", "exec", "--user", user, "--exec-id", self._next_id("exec"), name, *cmd)

    def run_detached(self, runtime, name, *cmd, opts=()):
        return self.cli("run", "-d", *self.runtime_opts(runtime, name), *opts, self.image, name, *cmd)

    def unit(self, name):
        return f"ctr-{name}.scope"

    def cgroup_driver(self):
        return "systemd" if self.systemd else "cgroupfs"

    def exec(self, name, *cmd):
        return self.cli("task", "exec", "--exec-id", self._next_id("exec"), name, *cmd)

    def exec_tty(self, name, *cmd):
        return self.cli_pty("task", "exec", "-t", "--exec-id", self._next_id("exec"), name, *cmd)

    def task_status(self, name):
        for line in self.cli("task", "ls").out.splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == name:
                return int(fields[1]), fields[2]
        return None, None

    def host_pid(self, name):
        return self.task_status(name)[0]

    def stop(self, name):
        """As `docker stop`: SIGTERM, then wait for the task to stop."""
        r = self.cli("task", "kill", name)
        _wait_for(lambda: self.task_status(name)[1] == "STOPPED", f"task {name} to stop", 20)
        return r

    def rm(self, name):
        r = self.cli("task", "rm", name)
        return r if r.rc else self.cli("containers", "rm", name)

    def top(self, name):
        return self.cli("task", "ps", name)

    def pause(self, name):
        return self.cli("task", "pause", name)

    def unpause(self, name):
        return self.cli("task", "resume", name)

    update = None  # ctr 1.6 has no `task update`

    def seccomp_opts(self, profile):
        return ("--seccomp", "--seccomp-profile", profile)

    def memory_opts(self, limit):
        return ("--memory-limit", str(limit))

    def cleanup(self):
        for task in self.cli("task", "ls", "-q").out.split():
            if task.startswith(self.PREFIX):
                self.cli("task", "kill", "-s", "KILL", task)
                _wait_for(lambda task=task: self.task_status(task)[1] in ("STOPPED", None), f"task {task}", 20)
                self.cli("task", "rm", "-f", task)
        for c in self.cli("containers", "ls", "-q").out.split():
            if c.startswith(self.PREFIX):
                self.cli("containers", "rm", c)

    def __init__(self, systemd=False):
        self.dir = os.path.join(STATE, "containerd")
        self.systemd = systemd
        self.sock = os.path.join(self.dir, "containerd.sock")

    def cli(self, *args, **kw):
        return execute(["/usr/bin/ctr", "-a", self.sock, "-n", "default", *args], **kw)

    def cli_pty(self, *args):
        return in_pty(["/usr/bin/ctr", "-a", self.sock, "-n", "default", *args])

    def state_root(self, runtime):
        return "/run/containerd/runc/default"

    def up(self, docker):
        os.makedirs(self.dir, exist_ok=True)
        conf = os.path.join(self.dir, "config.toml")
        with open(conf, "w") as f:
            f.write(f"""version = 2
root = "{self.dir}/root"
state = "/run/pyrunc-e2e/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
""")
        if not _alive(os.path.join(self.dir, "containerd.pid")):
            _daemon(["/usr/bin/containerd", "--config", conf], os.path.join(self.dir, "containerd.log"),
                    os.path.join(self.dir, "containerd.pid"))
        _wait_for(lambda: self.cli("version").rc == 0, "containerd")
        if self.image not in self.cli("images", "ls", "-q").out.split():
            archive = docker.save_image(os.path.join(STATE, "image", "tiny-docker.tar"))
            r = self.cli("images", "import", archive)
            assert r.rc == 0, r

    def down(self):
        for task in self.cli("task", "ls", "-q").out.split():
            self.cli("task", "kill", "-s", "KILL", task)
            time.sleep(0.3)
            self.cli("task", "rm", "-f", task)
        for c in self.cli("containers", "ls", "-q").out.split():
            self.cli("containers", "rm", c)
        _stop_pid(os.path.join(self.dir, "containerd.pid"))

    def run_argv(self, runtime, *args):
        """ctr's `run` puts options before IMAGE ID; callers give (options..., "--", cmd...)."""
        opts, cmd = (args[:args.index("--")], args[args.index("--") + 1:]) if "--" in args else ((), args)
        return ["run", *self.runtime_opts(runtime, cmd[0] if cmd else ""), *opts, self.image, *cmd]  # cmd: ID ...


def start_all(systemd=False):
    docker, podman, ctr = Docker(systemd=systemd), Podman(systemd=systemd), Ctr(systemd=systemd)
    docker.up()
    podman.up()
    ctr.up(docker)
    return docker, podman, ctr


# Mounts the engines keep of their own storage (not of a container): dockerd bind-mounts its
# data root onto itself for its whole life (with --userns-remap, its remapped root
# data/<uid>.<gid> too); podman mounts its overlay store onto itself while it has containers.
def is_engine_storage(point):
    data = os.path.join(STATE, "docker", "data")
    if point == data or point == os.path.join(STATE, "podman", "root", "overlay"):
        return True
    uid, dot, gid = point[len(data) + 1:].partition(".") if point.startswith(data + "/") else ("", "", "")
    return bool(dot) and uid.isdigit() and gid.isdigit()


def subid_range(user, path="/etc/subuid"):
    """(start, size) of the first range of `user` in /etc/subuid (or subgid)."""
    with open(path) as f:
        for line in f:
            name, start, size = line.strip().split(":")
            if name == user:
                return int(start), int(size)
    raise AssertionError(f"{user} has no range in {path}")


def mounts_under(prefix):
    return [p for p in mountpoints() if p == prefix or p.startswith(prefix + "/")]


def stop_all():
    Podman().down()
    Ctr().down()
    Docker().down()
    # whatever the engines left mounted under their state (ismount() misses a bind of a
    # directory onto itself, hence mountinfo), deepest first; not STATE itself: the VM lanes
    # mount a tmpfs there (tests/vm/systemd-lane.sh) for the next start
    for point in sorted(set(mounts_under(STATE)) - {STATE}, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], stderr=subprocess.DEVNULL)
    shutil.rmtree("/run/pyrunc-e2e", ignore_errors=True)


if __name__ == "__main__":  # start [--systemd] | stop
    if sys.argv[1] == "start":
        start_all(systemd="--systemd" in sys.argv[2:])
    else:
        {"stop": stop_all}[sys.argv[1]]()
