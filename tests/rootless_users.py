"""Ordinary users for the rootless tests: made idempotently (useradd -m, /etc/subuid and
/etc/subgid ranges for newuidmap), and a way to run a command as one of them.

    user = ensure_user("pyrunc-rootless")
    user.run(["id"], cwd=..., env={...})

`make test` runs as root on a fresh machine: the users are created on first use and kept
(creating them again is a no-op).
"""

import os
import pwd
import shutil
import subprocess
import tempfile

USERS = ("pyrunc-rootless", "pyrunc-rootless2")
SUBID_SIZE = 65536
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class User:
    def __init__(self, pw):
        self.name = pw.pw_name
        self.uid = pw.pw_uid
        self.gid = pw.pw_gid
        self.home = pw.pw_dir

    def env(self, xdg=None, **extra):
        env = {"PATH": PATH, "HOME": self.home, "USER": self.name, "LOGNAME": self.name,
               "LANG": "C.UTF-8"}
        if xdg:
            env["XDG_RUNTIME_DIR"] = xdg
        env.update(extra)
        return env

    def argv(self, argv, env):
        """argv run as this user (its own uid, gid and groups, no capabilities), env exactly."""
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups",
                "--inh-caps=-all", "--", "env", "-i", *[f"{k}={v}" for k, v in env.items()], *argv]

    def run(self, argv, *, env, cwd=None, timeout=60, input=None):
        """Output to files, not pipes (a created container keeps its stdio open)."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run(self.argv(argv, env), cwd=cwd, stdout=out, stderr=err,
                               stdin=subprocess.DEVNULL if input is None else None,
                               input=input, timeout=timeout)
            out.seek(0)
            err.seek(0)
            p.rc, p.out, p.err = p.returncode, out.read().decode(), err.read().decode()
        return p

    def chown_tree(self, path):
        for top, dirs, files in os.walk(path):
            for name in dirs + files:
                os.lchown(os.path.join(top, name), self.uid, self.gid)
        os.lchown(path, self.uid, self.gid)


def _has_range(path, name):
    try:
        with open(path) as f:
            return any(line.split(":", 1)[0] == name for line in f)
    except FileNotFoundError:
        return False


def _free_start(paths):
    """A subordinate id range nobody has (after every range in both files)."""
    end = 100000
    for path in paths:
        try:
            with open(path) as f:
                for line in f:
                    parts = line.strip().split(":")
                    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                        end = max(end, int(parts[1]) + int(parts[2]))
        except FileNotFoundError:
            pass
    return end


def ensure_user(name):
    """The user, created if missing, with subordinate uid and gid ranges."""
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True, capture_output=True)
        pw = pwd.getpwnam(name)
    for path, flag in (("/etc/subuid", "--add-subuids"), ("/etc/subgid", "--add-subgids")):
        if not _has_range(path, name):
            start = _free_start(("/etc/subuid", "/etc/subgid"))
            subprocess.run(["usermod", flag, f"{start}-{start + SUBID_SIZE - 1}", name], check=True,
                           capture_output=True)
    user = User(pw)
    os.makedirs(user.home, exist_ok=True)
    os.chown(user.home, user.uid, user.gid)
    os.chmod(user.home, 0o755)  # the rootless tests' bundles live below it
    return user


def missing_tools():
    return [t for t in ("setpriv", "useradd", "usermod", "newuidmap", "newgidmap") if shutil.which(t) is None]


SKIP_PACKAGES = ("hypothesis", "_pytest", "pytest", "pip", "setuptools", "pygments", "pkg_resources",
                 "_distutils_hack", "__pycache__")
COPY_BASE = "/var/lib/pyrunc-rootless-tests"


class Checkout:
    """Where the test users run pyrunc from: this checkout (launcher, package root, venv
    site-packages) when they can read it, else a root-owned 0755 copy of the package and the
    runtime's dependencies under COPY_BASE, run by the system's python (root's, in /usr: no
    container of the user can write it, so it needs no seal)."""

    def __init__(self, launcher, root, site, python):
        self.launcher, self.root, self.site, self.python = launcher, root, site, python


def runnable_checkout(user, root):
    launcher = os.path.join(root, "bin", "pyrunc")
    site = _site_packages(root)
    r = user.run([launcher, "--version"], env=user.env())
    if r.rc == 0:
        with open(launcher) as f:
            python = f.readline()[2:].split()[0]
        return Checkout(launcher, root, site, python)
    import hashlib
    import sys
    base = os.path.join(COPY_BASE, hashlib.sha256(root.encode()).hexdigest()[:12])
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    os.chmod(COPY_BASE, 0o755)
    os.chmod(base, 0o755)
    shutil.copytree(os.path.join(root, "pyrunc"), os.path.join(base, "pyrunc"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(os.path.join(root, "specs"), os.path.join(base, "specs"))  # the schemas
    copy_site = os.path.join(base, "site-packages")
    shutil.copytree(site, copy_site, symlinks=True,
                    ignore=lambda d, names: [n for n in names if n.startswith(SKIP_PACKAGES)
                                             or n.endswith(".pth")])
    python = os.path.realpath(sys.executable if not sys.executable.endswith("pyrunc-python")
                              else "/usr/bin/python3")
    if not python.startswith("/usr/"):
        python = os.path.realpath("/usr/bin/python3")
    copy_launcher = os.path.join(base, "pyrunc-launcher")
    with open(copy_launcher, "w") as f:
        f.write(f"#!{python} -IS\nimport sys\nsys.path += [{base!r}, {copy_site!r}]\n"
                f"from pyrunc.cli.main import entry\nentry()\n")
    for top, dirs, files in os.walk(base):
        for name in dirs:
            os.chmod(os.path.join(top, name), 0o755)
        for name in files:
            path = os.path.join(top, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if name == "pyrunc-launcher" or name.endswith(".so") else 0o644)
    r = user.run([copy_launcher, "--version"], env=user.env())
    if r.rc != 0:
        import pytest
        pytest.skip(f"{user.name} can run neither {launcher} nor a copy: {r.err.strip()[:200]}")
    return Checkout(copy_launcher, base, copy_site, python)


def _site_packages(root):
    lib = os.path.join(root, ".venv", "lib")
    for name in sorted(os.listdir(lib)) if os.path.isdir(lib) else ():
        path = os.path.join(lib, name, "site-packages")
        if os.path.isdir(path):
            return path
    import sysconfig
    return sysconfig.get_paths()["purelib"]


def systemd_v2_host():
    """A modern host: systemd is PID 1 and /sys/fs/cgroup is cgroup v2 alone (the systemd VM
    lane). There an ordinary user has a systemd instance of their own (user@UID.service, with
    a delegated cgroup), which rootless engines and `--systemd-cgroup` use."""
    try:
        init = os.readlink("/proc/1/exe")
    except OSError:
        return False
    return (init.endswith("/systemd") and os.path.isdir("/run/systemd/system")
            and os.path.exists("/sys/fs/cgroup/cgroup.controllers"))


def _is_socket(path):
    import stat
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except OSError:
        return False


def user_session(user, timeout=90):
    """The user's systemd instance running (logind's linger starts user@UID.service, as a login
    would), and the environment that reaches it: {XDG_RUNTIME_DIR: logind's /run/user/UID tmpfs,
    DBUS_SESSION_BUS_ADDRESS: its bus socket (dbus-user-session)}. AssertionError if the bus
    does not come up in `timeout` seconds."""
    import time
    run = f"/run/user/{user.uid}"
    bus = os.path.join(run, "bus")
    env = {"XDG_RUNTIME_DIR": run, "DBUS_SESSION_BUS_ADDRESS": "unix:path=" + bus}
    if not _is_socket(bus):
        subprocess.run(["loginctl", "enable-linger", user.name], capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
        subprocess.run(["systemctl", "start", f"user@{user.uid}.service"], capture_output=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while True:
        if _is_socket(bus):
            r = user.run(["busctl", "--user", "--no-pager", "status"], env=user.env(run, **env), timeout=30)
            if r.rc == 0:
                return env
        if time.monotonic() > deadline:
            state = subprocess.run(["systemctl", "--no-pager", "status", f"user@{user.uid}.service"],
                                   capture_output=True, text=True, timeout=30).stdout
            raise AssertionError(f"{user.name}'s systemd instance or its bus {bus} did not come up "
                                 f"(is dbus-user-session installed?):\n{state}")
        time.sleep(0.5)


def user_systemctl(user, env, *args):
    """systemctl --user as the user (its bus), output as text."""
    return user.run(["systemctl", "--user", "--no-pager", *args], env=user.env(env["XDG_RUNTIME_DIR"], **env),
                    timeout=60).out
