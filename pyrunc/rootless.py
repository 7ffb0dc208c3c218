"""Rootless mode: runc's rules for when pyrunc acts as an unprivileged user.

Two decisions, made once per call from the global flags (cli/main.py) and the caller's ids:

* rootless cgroups (`--rootless auto|true|false`, runc's shouldUseRootlessCgroupManager):
  cgroup permission errors are not fatal; a hierarchy we cannot create or join is skipped,
  and asking for a limit in it is then an error naming it (cgroups/manager.py).
* the default `--root` (runc's shouldHonorXDGRuntimeDir): `$XDG_RUNTIME_DIR/pyrunc` for a
  non-root caller, so each user has a store of their own, 0700 (state/store.py).

Only `os` is imported: this runs on every call.
"""

import os

SYSTEM_ROOT = "/run/pyrunc"


class RootlessFlagError(ValueError):
    """--rootless is not auto or one of Go's strconv.ParseBool spellings."""


_TRUE = frozenset(("1", "t", "T", "TRUE", "true", "True"))
_FALSE = frozenset(("0", "f", "F", "FALSE", "false", "False"))


def parse_bool_or_auto(value):
    """None for "" or auto (any case), else True/False as Go's strconv.ParseBool reads it;
    anything else raises RootlessFlagError with Go's text (runc prints it as is)."""
    if value == "" or value.lower() == "auto":
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise RootlessFlagError(f'strconv.ParseBool: parsing "{value}": invalid syntax')


def running_in_userns():
    """runc's userns.RunningInUserNS: our uid_map is not the initial namespace's identity map."""
    try:
        with open("/proc/self/uid_map", "rb") as f:
            line = f.read().split()
    except OSError:
        return False  # no procfs: runc answers "not in a user namespace" too
    return line != [b"0", b"0", b"4294967295"]


def rootless_cgroups(flag, systemd_cgroup=False, systemd_owner_uid=None):
    """Whether cgroup permission errors are tolerated. flag: the --rootless value.
    systemd_owner_uid(): the systemd instance's owner uid (runc asks busctl); only called for
    euid 0 in a user namespace with --systemd-cgroup, and None/errors count as 0 (runc's rule)."""
    b = parse_bool_or_auto(flag)
    if b is not None:
        return b
    if os.geteuid() != 0:
        return True
    if not running_in_userns():
        return False  # the real root
    if systemd_cgroup:
        # root in a user namespace: a rootful systemd (owner uid 0) in there owns its cgroups
        owner = 0
        if systemd_owner_uid is not None:
            try:
                owner = systemd_owner_uid() or 0
            except Exception:  # noqa: BLE001 - runc: on any error, assume root's systemd
                owner = 0
        return owner != 0
    return True  # cgroupfs: we cannot know whether the path is ours, so tolerate errors


def systemd_owner_uid():
    """runc's systemd.DetectUID, for euid 0 in a user namespace with --systemd-cgroup: the
    OwnerUID of the user bus's systemd (`busctl --user --no-pager status`); 0 means a rootful
    systemd inside the namespace. Raises OSError/ValueError when it cannot tell (the caller
    then assumes root, as runc). The D-Bus driver itself may supply its own probe."""
    import subprocess
    r = subprocess.run(["busctl", "--user", "--no-pager", "status"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise OSError(f"could not execute `busctl --user --no-pager status` (output: {r.stdout + r.stderr!r})")
    for line in r.stdout.splitlines():
        line = line.strip()
        if line.startswith("OwnerUID="):
            return int(line[len("OwnerUID="):])
    raise ValueError("could not detect the OwnerUID")


def honor_xdg_runtime_dir():
    """runc's shouldHonorXDGRuntimeDir."""
    if os.geteuid() != 0:
        return True
    if not running_in_userns():
        return False  # the real root keeps /run/pyrunc, whatever XDG_RUNTIME_DIR says
    user = os.environ.get("USER")
    return user is None or user != "root"


def default_root():
    """(root, from_xdg): `$XDG_RUNTIME_DIR/pyrunc` when runc would use `$XDG_RUNTIME_DIR/runc`."""
    if honor_xdg_runtime_dir():
        runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
        if runtime_dir:
            return runtime_dir + "/pyrunc", True
    return SYSTEM_ROOT, False
