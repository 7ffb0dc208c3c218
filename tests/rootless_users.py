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


def require_runnable(user, pyrunc):
    """Skip (naming the reason) when the user cannot run this checkout's pyrunc: a checkout
    below a 0700 directory (e.g. /root) is root's alone."""
    import pytest
    r = user.run([pyrunc, "--version"], env=user.env())
    if r.rc != 0:
        pytest.skip(f"{user.name} cannot run {pyrunc} (is the checkout readable by other users?): "
                    f"{r.err.strip()[:200]}")
