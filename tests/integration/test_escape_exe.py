"""runc's CVE-2019-5736 made real: a container overwrites the interpreter pyrunc runs on.

pyrunc's container-side processes are forked, so their /proc/PID/exe is the host's interpreter.
An entrypoint (or exec'd program) starting with `#!/proc/self/exe` makes the kernel run that
interpreter inside the container as a dumpable process with the container's credentials; a
container process opens /proc/PID/exe (O_PATH) and, once nothing runs the file any more, opens
it for writing through /proc/self/fd/N. The defence (pyrunc/security/exeseal.py) puts the
interpreter on a read-only mount, so the open fails with EROFS.

The tests NEVER touch the real interpreter: each one copies it to a tmp dir under the name
`make setup` gives its own copy (pyrunc-python), runs every pyrunc call through a launcher
like bin/pyrunc pointing at that copy, and checks the copy's sha256 afterwards. Each scenario
also runs with the defence disabled (a launcher that skips ensure_sealed), where the same
attack must succeed: proof that the attack test can fail. The copy's read-only bind is
detached at teardown; nothing is left mounted.

The attacker is the image's own python (a copy of the interpreter inside the rootfs, with the
host's /usr/lib bound read-only as its libraries and standard library, as a real image would
ship them); the containers keep the default capabilities (no CAP_SYS_ADMIN), as in the CVE.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time

import pytest
from bundle import make_rootfs
from helpers import Runner, mountpoints, wait_for

from pyrunc.spec.default import default_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REAL_PYTHON = os.path.realpath(sys.executable)
SITE = sysconfig.get_paths()["purelib"]

LAUNCHER = """#!{python} -IS
import sys
sys.path += [{root!r}, {site!r}]
{disable}from pyrunc.cli.main import entry
entry()
"""
# the "defence removed" launcher: neither the CLI nor the API seals or checks anything
DISABLE = "import pyrunc.security.exeseal as _s\n_s.ensure_sealed = lambda reexec=True: None\n"

# Run in the container by the image's python: grabs /proc/PID/exe of the hijacked process and
# tries to write it. argv: "watch MARKER" (the first other process whose cmdline has MARKER)
# or "pid N"; then the report path. /out/grabbed tells the others the fd is held.
ATTACK = r'''
import errno, json, os, sys, time

PAYLOAD = b"\n#written-from-a-container\n"
mode, arg, out = sys.argv[1:4]
report = {"pid": None, "link": None, "ino": None, "grab": None, "direct": [], "reopen": [],
          "wrote": False}


def name(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def save():
    with open(out + ".tmp", "w") as f:
        json.dump(report, f)
    os.rename(out + ".tmp", out)


def find(marker):
    me = os.getpid()
    while True:
        for p in os.listdir("/proc"):
            if p.isdigit() and int(p) != me:
                try:
                    with open(f"/proc/{p}/cmdline", "rb") as f:
                        if marker.encode() in f.read():
                            return int(p)
                except OSError:
                    pass
        time.sleep(0.001)


def runs(pid, st):
    """Does pid still run the file st describes?"""
    try:
        now = os.stat(f"/proc/{pid}/exe")
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)


def write_through(path, log):
    """Open for writing and append; retry past ETXTBSY (a process runs the file) for 10 s."""
    deadline = time.monotonic() + 10
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError as e:
            if not log or log[-1] != name(e):
                log.append(name(e))
            if e.errno == errno.ETXTBSY and time.monotonic() < deadline:
                time.sleep(0.002)
                continue
            return False
        try:
            os.write(fd, PAYLOAD)  # a sealed memfd opens but refuses the write (EPERM)
        except OSError as e:
            log.append(name(e))
            return False
        finally:
            os.close(fd)
        log.append("OK")
        return True


# the hijacked process: grab its exe as soon as it lets us (the pyrunc process it is until
# its execve is not dumpable)
deadline = time.monotonic() + 20
while True:
    pid = find(arg) if mode == "watch" else int(arg)
    try:
        fd = os.open(f"/proc/{pid}/exe", os.O_PATH)
        break
    except OSError as e:
        report["grab"] = name(e)
        if time.monotonic() > deadline:
            save()
            sys.exit(1)
        time.sleep(0.001)
report["pid"], report["grab"] = pid, "OK"
report["link"] = os.readlink(f"/proc/self/fd/{fd}")
st = os.fstat(fd)
report["ino"] = [st.st_dev, st.st_ino]
open("/out/grabbed", "w").close()
# directly, while it runs (ETXTBSY, or EROFS when sealed)
while runs(pid, st) and len(report["direct"]) < 3:
    try:
        wfd = os.open(f"/proc/{pid}/exe", os.O_WRONLY | os.O_APPEND)
    except OSError as e:
        report["direct"].append(name(e))
        time.sleep(0.01)
        continue
    try:
        os.write(wfd, PAYLOAD)
    except OSError as e:
        report["direct"].append(name(e))
        continue
    finally:
        os.close(wfd)
    report["direct"].append("OK")
    report["wrote"] = True
    break
# then the CVE's way: once it exited or exec'd something else, reopen the held fd for writing
while runs(pid, st):
    time.sleep(0.002)
report["wrote"] = write_through(f"/proc/self/fd/{fd}", report["reopen"]) or report["wrote"]
save()
'''

# The hijack: pyrunc's own interpreter, run inside the container by the kernel. "-S": only
# the standard library (the image's /usr/lib) is needed. It lives until the attacker holds
# its exe, then exits (exec, shared pid namespace) or, as the container's PID 1, execs sleep.
HIJACK = r'''#!/proc/self/exe -S
import os, sys, time
if sys.argv[1:] == ["spawn"]:  # PID 1 of `run`: bring the attacker along
    os.posix_spawn("/bin/python3", ["python3", "/attack/attack.py", "pid", str(os.getpid()),
                                    "/out/result.json"], {})
deadline = time.monotonic() + 20
while not os.path.exists("/out/grabbed") and time.monotonic() < deadline:
    time.sleep(0.002)
time.sleep(0.1)
if os.getpid() == 1:
    os.execv("/bin/sleep", ["sleep", "60"])
'''


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def attack_rootfs(tmp_path_factory):
    """busybox + the image's python (a copy, at /bin/python3) + the attack scripts; /usr/lib and
    /usr/lib64 are mount points for the host's, bound read-only by each config."""
    root = make_rootfs(str(tmp_path_factory.mktemp("attack-rootfs")))
    for d in ("usr/lib", "usr/lib64", "attack", "out"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for link, target in (("lib", "usr/lib"), ("lib64", "usr/lib64")):
        if not os.path.lexists(os.path.join(root, link)):
            os.symlink(target, os.path.join(root, link))
    shutil.copy2(REAL_PYTHON, os.path.join(root, "bin/python3"))
    with open(os.path.join(root, "attack/attack.py"), "w") as f:
        f.write(ATTACK)
    with open(os.path.join(root, "attack/hijack"), "w") as f:
        f.write(HIJACK)
    os.chmod(os.path.join(root, "attack/hijack"), 0o755)
    return root


class Interpreter:
    """A disposable copy of the interpreter and a launcher (bin/pyrunc's shape) that runs
    pyrunc on it; `runner` calls it with the test's own --root. defence: "sealed" (the copy is
    named as `make setup`'s: sealed in place), "private" (any other name: a system
    interpreter's case, sealed by a detached read-only clone and a re-exec per call) or
    "disabled" (the CLI skips the seal)."""

    def __init__(self, tmp, defence):
        self.defence = defence
        self.dir = os.path.join(tmp, "interp")
        os.makedirs(self.dir)
        self.path = os.path.join(self.dir, "python3.11" if defence == "private" else "pyrunc-python")
        shutil.copy2(REAL_PYTHON, self.path)
        self.sha = sha256(self.path)
        launcher = os.path.join(self.dir, "pyrunc")
        with open(launcher, "w") as f:
            f.write(LAUNCHER.format(python=self.path, root=ROOT, site=SITE,
                                    disable=DISABLE if defence == "disabled" else ""))
        os.chmod(launcher, 0o755)
        self.runner = Runner([launcher], os.path.join(tmp, "pyrunc-root"))

    def mounted(self):
        return self.path in mountpoints()

    def unseal(self):
        """Detach every bind stacked on the copy (lazily: a process may still run it)."""
        while self.mounted():
            subprocess.run(["umount", "-l", self.path], check=True)


@pytest.fixture(params=["sealed", "disabled"])
def interp(request, tmp_path):
    before = [m for m in mountpoints() if m.startswith(str(tmp_path))]
    it = Interpreter(str(tmp_path), request.param)
    yield it
    it.runner.cleanup()
    it.unseal()
    assert not [m for m in mountpoints() if m.startswith(str(tmp_path))] and not before
    assert not it.runner.ids(), f"state left behind: {it.runner.ids()}"


def bundle(tmp_path, name, rootfs, args, *, caps=(), namespaces=None):
    path = tmp_path / name
    path.mkdir()
    config = default_config(rootfs=rootfs, args=list(args), terminal=False)
    config["mounts"] += [
        {"destination": "/usr/lib", "type": "bind", "source": "/usr/lib", "options": ["bind", "ro"]},
        {"destination": "/usr/lib64", "type": "bind", "source": "/usr/lib64", "options": ["bind", "ro"]},
        {"destination": "/out", "type": "bind", "source": str(tmp_path / "out"), "options": ["bind"]},
    ]
    for kind in ("bounding", "effective", "permitted"):
        config["process"]["capabilities"][kind] += list(caps)
    if namespaces is not None:
        config["linux"]["namespaces"] = namespaces
    with open(path / "config.json", "w") as f:
        json.dump(config, f)
    return str(path)


@pytest.fixture
def out(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    d.chmod(0o777)
    return d


def report_of(out):
    path = out / "result.json"
    wait_for(path.exists, timeout=30, what="the attacker's report")
    return json.loads(path.read_text())


def check(interp, report):
    """The attack reached pyrunc's interpreter; sealed, every write failed and the file is
    intact; with the defence disabled, the write went through (the test can fail)."""
    assert report["grab"] == "OK", report
    st = os.stat(interp.path)
    assert report["ino"] == [st.st_dev, st.st_ino], report
    if interp.defence != "private":  # a detached mount has no path: its link reads "/"
        assert report["link"] == interp.path, report
    if interp.defence != "disabled":
        assert not report["wrote"] and "OK" not in report["direct"] + report["reopen"], report
        assert sha256(interp.path) == interp.sha, "the interpreter was modified"
        assert report["reopen"][-1] == "EROFS", report
        assert set(report["direct"]) <= {"ETXTBSY", "EROFS"}, report
        # sealed in place (later launches need no re-exec), or privately: nothing mounted
        assert interp.mounted() == (interp.defence == "sealed")
    else:
        assert report["wrote"] and sha256(interp.path) != interp.sha, report


ALL = pytest.mark.parametrize("interp", ["sealed", "private", "disabled"], indirect=True)


@ALL
def test_run_entrypoint_hijack(interp, attack_rootfs, tmp_path, out, cid):
    """`run`: the entrypoint is `#!/proc/self/exe`; as PID 1 it starts the attacker, which
    holds /proc/1/exe while PID 1 is pyrunc's interpreter and writes it after PID 1 exec'd."""
    b = bundle(tmp_path, "b", attack_rootfs, ["/attack/hijack", "spawn"])
    r = interp.runner("run", "-d", "--bundle", b, cid)
    assert r.rc == 0, r.err
    check(interp, report_of(out))


@ALL
def test_exec_detach_hijack(interp, attack_rootfs, tmp_path, out, cid):
    """`exec -d` of a `#!/proc/self/exe` program: the container's attacker, already running,
    waits for it and writes its exe after it exited."""
    b = bundle(tmp_path, "b", attack_rootfs,
               ["/bin/python3", "/attack/attack.py", "watch", "/attack/hijac", "/out/result.json"])
    assert interp.runner("run", "-d", "--bundle", b, cid).rc == 0
    r = interp.runner("exec", "-d", cid, "/attack/hijack")
    assert r.rc == 0, r.err
    check(interp, report_of(out))


def test_shared_pid_namespace_hijack(interp, attack_rootfs, tmp_path, out, cid):
    """A second container joins the first one's pid namespace with a `#!/proc/self/exe`
    entrypoint: the first container's attacker sees it and writes its exe."""
    a = bundle(tmp_path, "a", attack_rootfs,
               ["/bin/python3", "/attack/attack.py", "watch", "/attack/hijac", "/out/result.json"])
    assert interp.runner("run", "-d", "--pid-file", str(tmp_path / "a.pid"), "--bundle", a, cid).rc == 0
    init = int((tmp_path / "a.pid").read_text())
    namespaces = [{"type": "pid", "path": f"/proc/{init}/ns/pid"}] + [
        {"type": t} for t in ("network", "ipc", "uts", "mount", "cgroup")]
    b = bundle(tmp_path, "b", attack_rootfs, ["/attack/hijack"], namespaces=namespaces)
    r = interp.runner("run", "-d", "--bundle", b, cid + "-b")
    assert r.rc == 0, r.err
    check(interp, report_of(out))


def test_created_init_via_ptrace_exec(interp, attack_rootfs, tmp_path, out, cid):
    """/proc/1/exe of a created (not started) container, from an `exec` with CAP_SYS_PTRACE
    (the waiting init is not dumpable): the attacker holds it; after `start` the init exec'd
    the user's program and the attacker writes the interpreter."""
    b = bundle(tmp_path, "b", attack_rootfs, ["sleep", "60"])
    assert interp.runner("create", "--bundle", b, cid).rc == 0
    r = interp.runner("exec", "-d", "--cap", "CAP_SYS_PTRACE", cid,
                      "/bin/python3", "/attack/attack.py", "pid", "1", "/out/result.json")
    assert r.rc == 0, r.err
    wait_for(lambda: (out / "grabbed").exists() or (out / "result.json").exists(), timeout=20,
             what="the attacker to hold /proc/1/exe")
    time.sleep(0.1)
    assert interp.runner("start", cid).rc == 0
    check(interp, report_of(out))


# ------------------------------------------------------------------- when sealing is impossible

@pytest.fixture
def plain(tmp_path):
    it = Interpreter(str(tmp_path), "sealed")
    yield it
    it.unseal()
    assert not it.mounted()


def test_no_cap_sys_admin_runs_from_a_sealed_copy(plain, attack_rootfs, tmp_path, cid):
    """Root without CAP_SYS_ADMIN cannot mount, and root owns (can write) the interpreter: it
    re-execs from a sealed memfd copy (the attack on that path: test_rootless.py) and gets past
    the seal (create then fails for its own reason here: the devices cgroup needs
    CAP_SYS_ADMIN); nothing mounted, nothing left behind."""
    b = bundle(tmp_path, "b", attack_rootfs, ["true"])
    runner = Runner(["setpriv", "--bounding-set", "-sys_admin", "--", *plain.runner.argv], plain.runner.root)
    for verb, rc in (("create", 1), ("run", 1), ("exec", 255)):
        args = ["--bundle", b, cid] if verb != "exec" else [cid, "true"]
        r = runner(verb, *args)
        assert r.rc == rc and r.out == "", (verb, r.rc, r.err)
        assert "cannot seal" not in r.err, r.err
    assert not plain.mounted() and not plain.runner.ids() and sha256(plain.path) == plain.sha


def test_unprivileged_user_and_unwritable_interpreter(plain, tmp_path, cid):
    """No mount possible (not root) but the interpreter is root's: no process of this user, so
    no container of this user, can write it; pyrunc goes on unsealed (and fails later for its
    own reasons). Once the user owns it, a sealed memfd copy is run instead (also past the
    seal; the attack on that copy: test_rootless.py)."""
    for d in (tmp_path.parent.parent, tmp_path.parent, tmp_path, plain.dir):
        os.chmod(d, 0o711)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    runner = Runner([*nobody, *plain.runner.argv], str(tmp_path / "nobody-root"))
    r = runner("create", "--bundle", str(tmp_path), cid)
    assert r.rc == 1 and "cannot seal" not in r.err and "config.json" in r.err, r.err  # got past it
    os.chown(plain.path, 65534, 65534)
    r = runner("create", "--bundle", str(tmp_path), cid)
    assert r.rc == 1 and "cannot seal" not in r.err and "config.json" in r.err, r.err
    assert not plain.mounted() and sha256(plain.path) == plain.sha


API_CALLER = """
import sys
sys.path += [{root!r}, {site!r}]
from pyrunc import Runtime
from pyrunc.errors import PyruncError
if sys.argv[1] == "seal-first":
    from pyrunc.security.exeseal import ensure_sealed
    ensure_sealed()  # re-execs this program through the sealed interpreter
rt = Runtime(sys.argv[2])
try:
    rt.create(sys.argv[3], sys.argv[4])
except PyruncError as e:
    print("refused:", e)
else:
    print("created")
    rt.delete(sys.argv[3], force=True)
"""


def test_api_create_needs_a_sealed_interpreter(plain, attack_rootfs, tmp_path, cid):
    """An in-process caller of pyrunc.Runtime on an unsealed interpreter is refused (the CLI's
    re-exec cannot help it); after ensure_sealed() the same program creates containers."""
    (tmp_path / "out").mkdir()
    b = bundle(tmp_path, "b", attack_rootfs, ["true"])
    code = API_CALLER.format(root=ROOT, site=SITE)
    api_root = str(tmp_path / "api-root")
    r = subprocess.run([plain.path, "-I", "-c", code, "as-is", api_root, cid, b],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.startswith("refused: the interpreter ") and "not sealed" in r.stdout, (r.stdout, r.stderr)
    assert not plain.mounted()
    assert not os.path.exists(api_root) or not os.listdir(api_root)  # nothing was begun
    r = subprocess.run([plain.path, "-I", "-c", code, "seal-first", api_root, cid, b],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout == "created\n", (r.stdout, r.stderr)
    assert plain.mounted() and sha256(plain.path) == plain.sha


# ------------------------------------------------------------------------ as an ordinary user

class UserInterpreter:
    """The rootless cases: an ordinary user (tests/rootless_users.py) runs pyrunc from a copy
    of the interpreter that is not on a read-only mount, and cannot mount. defence:
    "memfd" (the user owns the copy: a container of the user could write it, so pyrunc
    re-execs from a sealed memfd copy), "unwritable" (root owns it, 0755: neither the user nor
    any id the user's containers map can write it; run as is), "disabled" (user-owned, the
    seal skipped: the attack must succeed)."""

    def __init__(self, user, base, defence, checkout):
        self.user, self.defence, self.base = user, defence, base
        self.dir = os.path.join(base, "interp")
        os.makedirs(self.dir)
        self.path = os.path.join(self.dir, "pyrunc-python")
        shutil.copy2(REAL_PYTHON, self.path)
        self.sha = sha256(self.path)
        self.launcher = os.path.join(self.dir, "pyrunc")
        with open(self.launcher, "w") as f:
            f.write(LAUNCHER.format(python=self.path, root=checkout.root, site=checkout.site,
                                    disable=DISABLE if defence == "disabled" else ""))
        os.chmod(self.launcher, 0o755)
        os.chmod(self.path, 0o755)
        user.chown_tree(base)
        if defence == "unwritable":
            os.chown(self.path, 0, 0)
        self.xdg = os.path.join(base, "xdg")
        os.makedirs(self.xdg, 0o700)
        os.chown(self.xdg, user.uid, user.gid)

    def __call__(self, *args):
        return self.user.run([self.launcher, *args], env=self.user.env(self.xdg), cwd=self.base)

    def ids(self):
        try:
            return [n for n in os.listdir(os.path.join(self.xdg, "pyrunc")) if not n.startswith("@")]
        except FileNotFoundError:
            return []


@pytest.fixture(params=["memfd", "unwritable", "disabled"])
def user_interp(request, attack_rootfs):
    from rootless_users import ensure_user, missing_tools, runnable_checkout
    if missing_tools():
        pytest.skip(f"missing: {missing_tools()}")
    user = ensure_user("pyrunc-rootless")
    checkout = runnable_checkout(user, ROOT)
    base = os.path.join(user.home, "pyrunc-tests", "exe-" + os.urandom(5).hex())
    os.makedirs(base)
    it = UserInterpreter(user, base, request.param, checkout)
    rootfs = os.path.join(base, "rootfs")
    shutil.copytree(attack_rootfs, rootfs, symlinks=True)
    os.makedirs(os.path.join(base, "out"))
    user.chown_tree(base)
    if request.param == "unwritable":
        os.chown(it.path, 0, 0)
    it.rootfs = rootfs
    yield it
    for cid in it.ids():
        it("delete", "--force", cid)
    left = it.ids()
    shutil.rmtree(base, ignore_errors=True)
    assert not left, f"state left behind: {left}"


def user_bundle(it, args):
    from pyrunc.spec.default import to_rootless
    path = os.path.join(it.base, "bundle")
    os.makedirs(path)
    config = to_rootless(default_config(rootfs=it.rootfs, args=list(args), terminal=False),
                         it.user.uid, it.user.gid)
    config["mounts"] += [
        {"destination": "/usr/lib", "type": "bind", "source": "/usr/lib", "options": ["rbind", "ro"]},
        {"destination": "/usr/lib64", "type": "bind", "source": "/usr/lib64", "options": ["rbind", "ro"]},
        {"destination": "/out", "type": "bind", "source": os.path.join(it.base, "out"), "options": ["bind"]},
    ]
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)
    it.user.chown_tree(path)
    return path


def test_rootless_run_entrypoint_hijack(user_interp, cid):
    """The CVE as an ordinary user: the container's root is the user, who owns (memfd,
    disabled) or cannot write (unwritable) the interpreter pyrunc runs from. The attacker
    holds /proc/1/exe while PID 1 is pyrunc's interpreter and writes it after PID 1 exec'd."""
    it = user_interp
    b = user_bundle(it, ["/attack/hijack", "spawn"])
    r = it("run", "-d", "--bundle", b, cid)
    assert r.rc == 0, r.err
    report_path = os.path.join(it.base, "out", "result.json")
    wait_for(lambda: os.path.exists(report_path), timeout=30, what="the attacker's report")
    with open(report_path) as f:
        report = json.load(f)
    assert report["grab"] == "OK", report
    if it.defence == "disabled":
        assert report["wrote"] and sha256(it.path) != it.sha, report
        return
    assert not report["wrote"] and "OK" not in report["direct"] + report["reopen"], report
    assert sha256(it.path) == it.sha, "the interpreter was modified"
    st = os.stat(it.path)
    if it.defence == "memfd":
        # what the container saw was the sealed copy, not the file: a write there is refused
        assert report["link"].startswith("/memfd:pyrunc-python"), report
        assert report["ino"] != [st.st_dev, st.st_ino], report
        assert report["reopen"][-1] in ("EPERM", "EACCES"), report  # sealed, and mode 0555
    else:
        assert report["link"] == it.path and report["ino"] == [st.st_dev, st.st_ino], report
        assert report["reopen"][-1] == "EACCES", report
