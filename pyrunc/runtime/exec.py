"""`exec`: run one more process in a created or running container (runc's exec).

The process is either a full OCI process object (`--process FILE`) or the container's own
config.json process with args and the flags' overrides. The host opens the init's namespace
files, forks stage1 (shim/exec_init.py), writes its pid into the container's cgroups, and
drives the handshake; stage1 joins the namespaces and forks the process, which prepares
itself as the init does and execs. Without --detach, pyrunc waits for it as a child
subreaper, forwards signals to it, and exits with its status (128+N when killed by N).
A terminal goes to --console-socket (with --detach, as runc) or, in the foreground without one,
to pyrunc itself, which proxies it as runc does (tty_proxy.py).
"""

import os

from .. import jsonio, trace
from ..errors import ConfigError, InvalidStateError, PyruncError
from ..goparse import is_atoi
from ..linux import syscalls as sc
from ..shim import exec_init
from ..shim import process as proc
from ..spec.model import ConsoleSize, build, build_process
from ..state import procfs
from ..state.hostfile import write_pid_file
from . import child
from .create import check_lsm, compile_seccomp, resolve_capabilities
from .status import PAUSED, STOPPED, status_of

# /proc/PID/ns names in the order stage1 joins them: user first (it owns the others), then
# runc's order (configs.NamespaceTypes).
JOIN_ORDER = (("user", sc.CLONE_NEWUSER), ("ipc", sc.CLONE_NEWIPC), ("uts", sc.CLONE_NEWUTS),
              ("net", sc.CLONE_NEWNET), ("pid", sc.CLONE_NEWPID), ("time", sc.CLONE_NEWTIME),
              ("mnt", sc.CLONE_NEWNS), ("cgroup", sc.CLONE_NEWCGROUP))

def exec_process(store, container_id, args=(), *, process=None, cwd=None, env=(), user=None,
                 additional_gids=(), caps=(), no_new_privs=None, apparmor=None, process_label=None,
                 tty=False, detach=False, pid_file=None, console_socket=None, preserve_fds=0,
                 ignore_paused=False, cgroup=(), warn=None, warmer=None):
    """Run the process; returns 0 when detached, else its exit status (128+N if killed by N).

    `process` is a path to a process.json or a dict (an OCI process object); without it the
    container's config.json process is used with `args` and the other overrides. warmer: a
    running attachlock.AttachLockWarmer (the CLI starts it as soon as the verb is known), so
    that writing stage1 into the container's cgroups does not wait a grace period (~10 ms);
    stopped before the fork."""
    try:
        if warmer is not None:
            warmer.clear_fds_below(3 + max(0, preserve_fds))
        return _exec(store, container_id, args, process, cwd, env, user, additional_gids, caps,
                     no_new_privs, apparmor, process_label, tty, detach, pid_file, console_socket,
                     preserve_fds, ignore_paused, cgroup, warn, warmer)
    finally:
        if warmer is not None:
            warmer.stop()


def _exec(store, container_id, args, process, cwd, env, user, additional_gids, caps, no_new_privs,
          apparmor, process_label, tty, detach, pid_file, console_socket, preserve_fds,
          ignore_paused, cgroup, warn, warmer):
    t = trace.clock()  # --debug: each step's time (None, and no clock read, without)
    record = store.load(container_id)
    status = status_of(store, record)
    if status == STOPPED:
        raise InvalidStateError("cannot exec in a stopped container")
    if status == PAUSED and not ignore_paused:
        raise InvalidStateError("cannot exec in a paused container (use --ignore-paused to override)")
    if process is None and not args:
        raise ConfigError("process args cannot be empty")
    config = record["config"]
    if process is not None:
        spec, source = process_from_file(process, config["process"])
    else:
        spec = process_from_flags(config["process"], args, cwd=cwd, env=env, user=user,
                                  additional_gids=additional_gids, caps=caps,
                                  no_new_privs=no_new_privs, apparmor=apparmor,
                                  process_label=process_label, tty=tty)
        source = "exec"
        # the API's args/env/cwd/labels are strings no schema has seen (the CLI's cannot carry
        # a NUL byte, a caller's can): named by field here, not "internal error" in the shim
        from ..spec import schema
        schema.validate(spec, "config#/$defs/process", source)
    own_tty = _check_terminal(spec, detach, console_socket)
    if pid_file:
        pid_file = os.path.abspath(pid_file)
    proc.check_preserved_fds(preserve_fds)
    if cgroup:
        raise PyruncError("--cgroup (a sub-cgroup for the process) is not supported yet")
    from ..spec.semantic import check_process
    check_process(spec, source)  # --process documents and flags (uid -1, rlimits, umask ...)
    process_model = build_process(spec)  # the typed model, as create's (spec/model.py)
    container = build(config)
    check_lsm(process_model, source=source)
    capabilities, last_cap = resolve_capabilities(process_model, warn, source)
    seccomp = compile_seccomp(container.linux.seccomp)
    t = trace.lap(t, "exec in %s: process checked, capabilities resolved, seccomp compiled",
                  container_id)

    namespaces, root_fd = _open_namespaces(record)
    t = trace.lap(t, "exec in %s: opened the init's namespaces", container_id)
    console_fd, proxy = None, None
    try:
        if console_socket:
            console_fd = child.connect_console(console_socket)
        elif own_tty:  # the master comes to us and we proxy it, as runc (tty_proxy.py)
            from .tty_proxy import TerminalProxy
            proxy = TerminalProxy()  # no terminal to proxy: runc's "open /dev/tty: ..."
            size = proxy.window_size()
            if size:  # the process starts with the host terminal's size (runc resizes after)
                process_model.console_size = ConsoleSize(size)
        plan = exec_init.Plan(process_model, namespaces, root_fd, capabilities, last_cap, seccomp,
                              container.linux.personality, max(0, preserve_fds))
        plan.console_fd = console_fd if proxy is None else proxy.console_end()
        return _run(plan, record, container, pid_file, detach, warn, proxy, warmer)
    finally:
        if console_fd is not None:
            os.close(console_fd)
        if proxy is not None:
            proxy.close()
        for _, _, fd in namespaces:
            os.close(fd)
        if root_fd is not None:
            os.close(root_fd)


# ---------------------------------------------------------------- the process object

def _copy(doc):
    """copy.deepcopy of a JSON document (dicts, lists, scalars), without `import copy`
    (it brings weakref, types and copyreg: ~1.3 ms of every exec)."""
    if isinstance(doc, dict):
        return {k: _copy(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_copy(v) for v in doc]
    return doc


def process_from_file(path_or_doc, container_process):
    """A --process document, checked as runc does; what it leaves out that runc takes from
    the container (capabilities, apparmorProfile, selinuxLabel, rlimits) comes from there."""
    if isinstance(path_or_doc, dict):
        doc, source = _copy(path_or_doc), "process"
    else:
        source = path_or_doc
        try:
            with open(path_or_doc, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise ConfigError(f"open {path_or_doc}: {(e.strerror or str(e)).lower()}") from None
        try:
            doc = jsonio.loads(raw)
        except ValueError as e:
            raise ConfigError(f"{source}: invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: the document must be a JSON object (an OCI process)")
    from ..spec import schema
    schema.validate(doc, "config#/$defs/process", source)
    _validate(doc)
    for field in ("capabilities", "apparmorProfile", "selinuxLabel", "rlimits"):
        if not doc.get(field) and container_process.get(field):
            doc[field] = _copy(container_process[field])
    if doc.get("oomScoreAdj") is None and container_process.get("oomScoreAdj") is not None:
        doc["oomScoreAdj"] = container_process["oomScoreAdj"]  # not the caller's (a shim's -999)
    return doc, source


def process_from_flags(base, args, *, cwd=None, env=(), user=None, additional_gids=(), caps=(),
                       no_new_privs=None, apparmor=None, process_label=None, tty=False):
    """runc's getProcess: the container's process with args and the flags' overrides."""
    p = _copy(base)
    p["args"] = list(args)
    if cwd:
        p["cwd"] = cwd
    if apparmor:
        p["apparmorProfile"] = apparmor
    if process_label:
        p["selinuxLabel"] = process_label
    if caps:
        sets = p.get("capabilities") or {}
        p["capabilities"] = sets
        for name in caps:
            for kind in ("bounding", "effective", "permitted"):
                sets.setdefault(kind, []).append(name)
            # runc also adds it to ambient, where the kernel only keeps inheritable caps
            if name in (sets.get("inheritable") or ()):
                sets.setdefault("ambient", []).append(name)
    p["env"] = list(p.get("env") or ()) + list(env)
    p["terminal"] = bool(tty)
    if no_new_privs is not None:
        p["noNewPrivileges"] = bool(no_new_privs)
    p["user"] = dict(p.get("user") or {"uid": 0, "gid": 0})
    if user:
        uid, sep, gid = user.partition(":")
        if sep:
            p["user"]["gid"] = _atoi(gid, "gid")
        p["user"]["uid"] = _atoi(uid, "uid")
    for gid in additional_gids:
        try:
            number = int(gid)
        except ValueError:
            raise ConfigError(f'invalid value "{gid}" for flag -additional-gids') from None
        if number < 0:
            raise ConfigError(f"additional-gids must be a positive number {number}")
        p["user"].setdefault("additionalGids", []).append(number)
    _validate(p)
    return p


def _atoi(text, what):
    """Go's strconv.Atoi (runc parses --user with it), then uint32."""
    if not is_atoi(text):
        raise ConfigError(f'parsing {text} as int for {what} failed: strconv.Atoi: parsing '
                          f'"{text}": invalid syntax')
    return int(text) % 2**32  # Go's uint32(int)


def _validate(p):
    """runc's validateProcessSpec."""
    if not p.get("cwd"):
        raise ConfigError("Cwd property must not be empty")
    if not os.path.isabs(p["cwd"]):
        raise ConfigError("Cwd must be an absolute path")
    if not p.get("args"):
        raise ConfigError("args must not be empty")


def _check_terminal(spec, detach, console_socket):
    terminal = bool(spec.get("terminal"))
    if detach and terminal and not console_socket:
        raise InvalidStateError("cannot allocate tty if pyrunc will detach without setting console socket")
    if (not detach or not terminal) and console_socket:
        raise InvalidStateError("cannot use console socket if pyrunc will not detach or allocate tty")
    return terminal and not console_socket  # foreground: pyrunc proxies the pty itself


# ---------------------------------------------------------------- namespaces

def _open_namespaces(record):
    """fds of the init's namespaces that differ from ours, in join order, and an O_PATH fd of
    its root when its mount namespace is ours (else None). Opened here, checked against the
    init's start time afterwards, so a recycled pid can never be joined."""
    pid = record["pid"]
    fds, root_fd = [], None
    try:
        for name, flag in JOIN_ORDER:
            try:
                ours = os.stat(f"/proc/self/ns/{name}")
            except FileNotFoundError:
                continue  # this kernel has no such namespace
            try:
                fd = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
            except (FileNotFoundError, ProcessLookupError):
                raise InvalidStateError("cannot exec in a stopped container") from None
            theirs = os.fstat(fd)
            if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino):
                os.close(fd)
                continue
            fds.append((name, flag, fd))
        if not any(name == "mnt" for name, _, _ in fds):
            try:
                root_fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            except (FileNotFoundError, ProcessLookupError):
                raise InvalidStateError("cannot exec in a stopped container") from None
        if not procfs.is_alive(pid, record["start_time"]):
            raise InvalidStateError("cannot exec in a stopped container")
    except BaseException:
        for _, _, fd in fds:
            os.close(fd)
        if root_fd is not None:
            os.close(root_fd)
        raise
    return fds, root_fd


# ---------------------------------------------------------------- fork, handshake, wait

def _run(plan, record, container, pid_file, detach, warn, proxy=None, warmer=None):
    forwarder = None
    subreaper = None
    if not detach:
        # stage1 exits once it has forked the process: as subreaper we inherit and can wait for it
        subreaper = child.Subreaper()
        forwarder = child.Forwarder()
    try:
        t = trace.clock()
        pid = _spawn(plan, record, container, warn, reap=not detach, warmer=warmer)
        trace.lap(t, "exec in %s: process %d runs (stage1 forked, handshake done)", record["id"], pid)
        if pid_file:
            try:
                write_pid_file(pid_file, pid)
            except OSError as e:
                child.kill_quietly(pid)
                if not detach:
                    child.wait_for(pid)
                raise PyruncError(f"open {e.filename}: {(e.strerror or str(e)).lower()}") from None
        if detach:
            return 0
        assert forwarder is not None  # made unless detach
        forwarder.target(pid)
        import gc
        gc.enable()  # off for the CLI's start (cli/main.py entry); the wait may last for days
        if proxy is not None:
            status = proxy.run(pid)  # SIGWINCH resizes the pty instead of being forwarded
        else:
            status = child.wait_for(pid)
        trace.debug("exec in %s: process %d exited with status %d", record["id"], pid, status)
        return status
    finally:
        if proxy is not None:
            proxy.close()  # before the forwarder: SIGWINCH goes back to it, then to the caller's
        if forwarder is not None:
            forwarder.restore()
        if subreaper is not None:
            subreaper.restore()


class _Answers(child.Answers):
    """The host's answers to exec's shim: warnings, and the NOTIFY listener of the
    container's seccomp profile (the process's own)."""

    def __init__(self, record, container, warn):
        self.record = record
        self.container = container  # spec.model.Config of the container's config.json
        if warn is not None:
            self.warning = warn  # type: ignore[method-assign]

    def seccomp_listener(self, pid, fd):
        from ..security.notify import send_listener
        send_listener(self.container, self.record["id"], self.record["bundle"], pid, fd)


def _spawn(plan, record, container, warn, reap, warmer=None):
    """Fork stage1, put it in the container's cgroups, answer it; returns the process's pid
    once it is ready to exec."""
    data = record.get("cgroup")
    if data:
        # imported before the fork: after it every page the import writes is a copy-on-write
        # fault in the parent (3-4 times slower: ~1.5 ms instead of ~0.4 ms)
        from ..cgroups.errors import CgroupError
        from ..cgroups.manager import Manager

    def join_cgroup(pid):
        if data:
            try:
                Manager.from_state(data).apply(pid)
            except CgroupError as err:
                import errno
                # runc's setnsProcess ignores this for rootless cgroups: a user's exec from a
                # cgroup whose common ancestor with the container's it may not write (the kernel's
                # rule for cgroup.procs; e.g. a user-instance scope joined from a root service's
                # cgroup) stays where it is
                rootless = data.get("rootless") or (data.get("driver") == "systemd" and data.get("user"))
                if not rootless or getattr(err, "errno", None) not in (errno.EPERM, errno.EACCES, errno.EROFS):
                    raise

    if warmer is not None:
        warmer.stop()  # no thread but ours at the fork
    trace.debug("exec in %s: forking stage1", record["id"])
    return child.spawn(exec_init.stage1, plan, _Answers(record, container, warn), join_cgroup=join_cgroup,
                       preserve_fds=plan.preserve_fds,
                       died="the exec'd process ended before it was ready", reap=reap)
