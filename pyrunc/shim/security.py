"""The privilege steps of the init, in runc's order.

    [seccomp, when noNewPrivileges is off: loading it needs CAP_SYS_ADMIN, so before the drop]
    bounding set drop -> keep-caps -> setgroups/setgid/setuid -> e/p/i sets -> ambient
    no_new_privs
    [seccomp, when noNewPrivileges is on: as late as possible, so the profile governs the
     user's program and a strict profile still lets the init finish]
"""

import errno
import os
import stat

from ..errors import SecurityError
from ..linux import capabilities as caps
from ..linux import seccomp as seccomp_sys
from ..linux.syscalls import PR_SET_NO_NEW_PRIVS, prctl
from . import procfs, scheduling, sync

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..spec.model import Personality, Process, User


def steps(process: "Process", personality: "Personality | None", capabilities, last_cap, seccomp, sock):
    """The security_steps(stage) callback of process.prepare, shared by the init and `exec`:
    "privileged" (ioPriority, scheduler; seccomp without noNewPrivileges, which needs
    CAP_SYS_ADMIN), "identity" (ids + capabilities), "late" (LSM labels, personality,
    no_new_privs, seccomp with noNewPrivileges)."""
    nnp = process.no_new_privileges

    def security_steps(stage):
        if stage == "privileged":
            scheduling.apply(process)  # real-time policies need CAP_SYS_NICE: before the drop
            if seccomp and not nnp:
                load_seccomp(seccomp, sock)  # needs CAP_SYS_ADMIN without nnp
        elif stage == "identity":
            switch_identity(process.user, capabilities, last_cap, sock)
        elif stage == "late":
            apply_lsm_labels(process)
            scheduling.set_personality(personality)
            if nnp:
                no_new_privileges()
            if seccomp and nnp:
                load_seccomp(seccomp, sock)

    return security_steps


def load_seccomp(program, sock):
    """Install the compiled filter; a NOTIFY listener fd is handed to the host, which passes it on."""
    try:
        listener = seccomp_sys.load_filter(program.bpf, program.flags)
    except OSError as e:
        raise SecurityError(f"unable to init seccomp: error loading seccomp filter into kernel: "
                            f"{(e.strerror or str(e)).lower()}",
                            e.errno) from None
    if listener is not None:
        sock.send("seccomp-listener", fd=listener)
        sock.expect("proceed")
        os.close(listener)


def switch_identity(user: "User", capabilities, last_cap, sock):
    """setuid/setgid to process.user and end with exactly the configured capability sets."""
    uid, gid = user.uid, user.gid
    groups = list(user.additional_gids)
    fix_stdio_permissions(uid)
    if capabilities is None:
        _set_ids(uid, gid, groups)
        return
    try:
        caps.drop_bounding(capabilities["bounding"], last_cap)
        caps.set_keepcaps(True)  # keep the permitted set across the uid change
    except OSError as e:
        raise SecurityError(f"unable to apply caps: {(e.strerror or str(e)).lower()}",
                            e.errno) from None
    _set_ids(uid, gid, groups)
    try:
        caps.set_keepcaps(False)
        caps.apply_sets(capabilities["effective"], capabilities["permitted"],
                        capabilities["inheritable"], last_cap)
        refused = caps.set_ambient(capabilities["ambient"])
    except OSError as e:
        raise SecurityError(f"unable to apply caps: {(e.strerror or str(e)).lower()}",
                            e.errno) from None
    if refused:
        # runc says nothing (its default spec lists ambient caps that are not inheritable, so
        # every container would warn); --debug shows it.
        sync.debug(sock, "process.capabilities.ambient: not raised because they are not both "
                         f"permitted and inheritable: {', '.join(refused)}")


def fix_stdio_permissions(uid):
    """As runc (fixStdioPermissions), before the uid switch: fds 0-2 (pipes, files, the pty
    slave) become owned by process.user's uid, so the process can reopen /dev/stdout or its
    tty; their gid is kept (the pty's is devpts' gid=). Skipped for an fd already owned by
    the uid, on /dev/null, or on a character device that is not of the container's devpts; a
    chown the kernel refuses (an id unmapped in our user namespace, a read-only /dev) leaves
    the fd as it is."""
    try:
        null_rdev = os.stat("/dev/null").st_rdev
    except OSError:
        null_rdev = None  # runc fails here; without a /dev/null no fd can be on it
    try:
        own_pts = os.stat("/dev/pts/ptmx").st_dev  # the container's devpts instance
    except OSError:
        own_pts = None
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue  # closed: nothing to hand over
        if st.st_uid == uid or (null_rdev is not None and st.st_rdev == null_rdev):
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_dev != own_pts:
            # stricter than runc: a device of the host (the terminal `pyrunc run` was started
            # from) is never given to a container user; the container's own pty is
            continue
        try:
            os.fchown(fd, uid, st.st_gid)
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.EPERM, errno.EROFS):
                continue
            raise SecurityError(f"unable to chown the process's fd {fd} to uid {uid}: "
                                f"{(e.strerror or str(e)).lower()}",
                                e.errno) from None


def _set_ids(uid, gid, groups):
    try:
        if _setgroups_allowed():
            os.setgroups(groups)
        elif groups:
            raise SecurityError("cannot set additionalGids: setgroups is denied in this user namespace")
        os.setgid(gid)
        os.setuid(uid)
    except OSError as e:
        raise SecurityError(f"unable to switch to uid {uid} gid {gid}: {(e.strerror or str(e)).lower()}",
                            e.errno) from None


def _setgroups_allowed():
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() != "deny"
    except OSError:
        return True


def no_new_privileges():
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def apply_lsm_labels(process: "Process"):
    """Labels for the next execve; the host has already refused them if the LSM is off."""
    profile = process.apparmor_profile
    if profile:
        _write_attr(("attr/apparmor/exec", "attr/exec"), f"exec {profile}",
                    "process.apparmorProfile")
    label = process.selinux_label
    if label:
        _write_attr(("attr/exec",), label, "process.selinuxLabel")


def _write_attr(paths, value, field):
    """/proc/self/<path>, through a verified procfs (shim/procfs.py): after the pivot the
    container's /proc could redirect a write by name (CVE-2025-52881)."""
    error = None
    try:
        proc = procfs.Procfs()
    except OSError as e:
        raise SecurityError(f"applying {field} {value!r} failed: {(e.strerror or str(e)).lower()}",
                            e.errno) from None
    with proc:
        for path in paths:
            try:
                procfs.write_file(proc.self_path(path), value, proc)
                return
            except OSError as e:
                error = e
    assert error is not None  # paths is never empty
    raise SecurityError(f"applying {field} {value!r} failed: {(error.strerror or str(error)).lower()}",
                        error.errno)
