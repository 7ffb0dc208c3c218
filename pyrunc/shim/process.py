"""The user's process: rlimits, identity, environment, the executable, execve.

Two halves: prepare() runs before the start barrier so that every error reaches
`pyrunc create`; execute() runs after it and must not fail except in execve.
"""

import errno
import os
import resource
import stat

from ..errors import ProcessError
from ..linux import sig
from ..linux.syscalls import close_range
from .paths import open_in_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..spec.model import Process, Rlimit


class Prepared:
    """What execute() needs, computed before the barrier."""
    __slots__ = ("path", "args", "env", "preserve_fds")

    def __init__(self, path, args, env, preserve_fds):
        self.path = path
        self.args = args
        self.env = env
        self.preserve_fds = preserve_fds


# setrlimit(2)'s resources by number (asm-generic/resource.h; x86_64 and aarch64 alike): Python's
# resource module has no RLIMIT_LOCKS, and has a BSD alias, RLIMIT_OFILE, the spec does not name.
RLIMITS = {"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
           "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
           "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
           "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15}


def apply_rlimits(rlimits: "list[Rlimit]"):
    for r in rlimits:
        kind = RLIMITS.get(r.type)
        if kind is None:
            raise ProcessError(f"unknown rlimit type {r.type!r}")
        try:
            resource.setrlimit(kind, (_rlim(r.soft), _rlim(r.hard)))
        except (ValueError, OSError) as e:
            raise ProcessError(f"error setting rlimit type {r.type}: "
                               f"{(getattr(e, 'strerror', None) or str(e)).lower()}") from None


def _rlim(value):
    """config.json has uint64 limits; 2**64-1 is RLIM_INFINITY, which Python spells -1 (a C long)."""
    return resource.RLIM_INFINITY if value >= 2**63 else value


def apply_oom_score_adj(value):
    if value is None:
        return
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError as e:
        raise ProcessError(f"error setting oom_score_adj to {value}: {(e.strerror or str(e)).lower()}",
                           e.errno) from None


def environment(process: "Process", listen_fds=0):
    """process.env as a dict, with HOME from the container's /etc/passwd when it is missing
    or empty (runc's prepareEnv: an empty HOME= is dropped and the passwd home appended).
    listen_fds: the runtime's own socket-activation fds (systemd's LISTEN_FDS protocol) that
    create/run pass first (fds 3..3+n-1), as runc does; the process gets LISTEN_FDS=n
    LISTEN_PID=1."""
    env = {}
    for item in process.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ProcessError(f"invalid environment variable {item!r}: no '=' or empty name")
        env[key] = value
    if not env.get("HOME"):
        env.pop("HOME", None)
        env["HOME"] = home_of(process.user.uid)
    if listen_fds:  # runc appends them to process.env: they win over the config's
        env["LISTEN_FDS"] = str(listen_fds)
        env["LISTEN_PID"] = "1"
    return env


def home_of(uid):
    """Read /etc/passwd as a file: the pwd module would load the image's NSS libraries."""
    try:
        with open("/etc/passwd", errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def look_path(name, env):
    """Go's exec.LookPath, whose error texts engines match (runc uses it)."""
    if "/" in name:
        err = _executable(name)
        if err:
            raise ProcessError(f'exec: "{name}": {err}')
        return name
    # Go's filepath.SplitList("") is empty: no PATH (or PATH="") finds nothing, not ./name.
    for directory in env["PATH"].split(":") if env.get("PATH") else ():
        candidate = os.path.normpath(os.path.join(directory or ".", name))
        if _executable(candidate) is None:
            if not os.path.isabs(candidate):  # Go >= 1.19 refuses these (exec.ErrDot), so runc does
                raise ProcessError(f'exec: "{name}": cannot run executable found relative to current directory')
            return candidate
    raise ProcessError(f'exec: "{name}": executable file not found in $PATH')


def _executable(path):
    try:
        st = os.stat(path)
    except OSError as e:
        return f"stat {path}: {(e.strerror or str(e)).lower()}"
    if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
        return "permission denied"
    return None


def enter_cwd(cwd, retry_later):
    """chdir to process.cwd; as root first, so a directory only root can reach works too.

    Returns True when it must be tried again after the uid switch (permission denied now).
    The path is walked by openat2 inside our root (the container's, after pivot_root or
    setns): `..` and absolute symlinks stay in it, and magic links (/proc/self/fd/N,
    /proc/1/cwd: a host directory an fd may still name) are refused. Then the kernel's own
    view of the new cwd is checked: a cwd outside our root reads as "(unreachable)"
    (runc CVE-2024-21626).
    """
    try:
        root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fd = open_in_root(root, cwd, os.O_PATH | os.O_DIRECTORY)
        finally:
            os.close(root)
        try:
            os.fchdir(fd)
        finally:
            os.close(fd)
    except PermissionError as e:  # EACCES, or EPERM: each with its own text
        assert e.errno is not None
        if retry_later:
            return True
        raise ProcessError(f"chdir to cwd ({cwd!r}) set in config.json failed: "
                           f"{os.strerror(e.errno).lower()}") from None
    except OSError as e:
        assert e.errno is not None
        reason = os.strerror(e.errno).lower()
        if e.errno == errno.ELOOP:
            reason += " (magic links such as /proc/self/fd/N are refused)"
        raise ProcessError(f"chdir to cwd ({cwd!r}) set in config.json failed: {reason}") from None
    check_cwd_inside_root(cwd)
    return False


def check_cwd_inside_root(cwd):
    """getcwd() fails (glibc: ENOENT for the kernel's "(unreachable)") when the cwd is not
    below our root: never exec there."""
    try:
        where = os.getcwd()
    except OSError:
        where = None
    if not where or not where.startswith("/"):
        raise ProcessError(f"chdir to cwd ({cwd!r}) set in config.json failed: current working "
                           "directory is outside of container mount namespace root -- possible "
                           "container breakout detected")


def prepare(process: "Process", preserve_fds, security_steps, listen_fds=0):
    """Everything before the barrier, in runc's order; security_steps(stage) is called where the
    privileged steps ("privileged"), the identity switch ("identity") and the last steps
    before exec ("late") belong. preserve_fds counts every fd after stdio the process keeps,
    the listen_fds first (environment())."""
    apply_rlimits(process.rlimits)
    env = environment(process, listen_fds)
    args = process.args
    if not args:
        raise ProcessError("args must not be empty")
    cwd = process.cwd
    retry_cwd = enter_cwd(cwd, retry_later=True)
    security_steps("privileged")
    security_steps("identity")
    if retry_cwd:
        enter_cwd(cwd, retry_later=False)
    os.umask(process.user.umask)
    path = look_path(args[0], env)
    security_steps("late")
    return Prepared(path, args, env, preserve_fds)


def execute(prepared):
    """Hand over to the user's program with a clean signal state and only the fds it may have."""
    sig.pthread_sigmask(sig.SIG_SETMASK, ())
    for signum in sig.valid_signals():
        if signum not in (sig.SIGKILL, sig.SIGSTOP):
            try:
                sig.signal(signum, sig.SIG_DFL)
            except (OSError, ValueError):
                pass
    close_range(3 + prepared.preserve_fds)
    for fd in range(3, 3 + prepared.preserve_fds):  # runc's ExtraFiles: never close-on-exec
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass
    os.execve(prepared.path, prepared.args, prepared.env)


def execute_or_exit(prepared):
    """execute(); if execve itself fails (a missing interpreter, a noexec mount), say so on the
    process's stderr exactly as runc's init does ("exec /run.sh: no such file or directory":
    engines match that text) and exit 1, as runc 1.1 does. Never returns."""
    try:
        execute(prepared)
    except OSError as e:
        assert e.errno is not None
        os.write(2, f"exec {prepared.path}: {os.strerror(e.errno).lower()}\n".encode())
        os._exit(1)


def check_preserved_fds(n, base=3):
    """runc's check (base is 3 + the LISTEN_FDS it passes first, for create/run)."""
    for fd in range(base, base + n):
        path = f"/proc/self/fd/{fd}"
        try:
            os.stat(path)
        except OSError as e:
            raise ProcessError(f"unable to stat preserved-fd {fd - base} (of {n}): "
                              f"stat {path}: {(e.strerror or str(e)).lower()}") from None
