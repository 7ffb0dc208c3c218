"""linux.maskedPaths and linux.readonlyPaths, mounted onto fds inside the container's root.

The CVE-2025-31133 class: masking by name ("bind /dev/null over /proc/kcore") trusts the
container's /dev/null. An image or a /dev volume whose `null` is a symlink or a regular file
turned every masked path into a writable bind of whatever `null` pointed at (a host file, a
procfs sysctl such as kernel.core_pattern), before readonlyPaths made /proc/sys read-only.

So, as runc >= 1.2.8 and more strictly:
* the mask of a file is the HOST's /dev/null, cloned as a detached mount (open_tree) before
  pivot_root and checked to be the char device 1:3, made read-only (so a chmod through the
  mask cannot reach the host's node either); if the host has no usable /dev/null, the
  container's, but only when fstat says it is 1:3;
* the mask of a directory is an empty read-only tmpfs;
* every path is opened by fd inside the root (openat2 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
  from an fd of "/" after the pivot) and the mask is attached onto that fd with move_mount:
  no path is looked up by name twice.
* readonlyPaths: a recursive clone of the mount at the path (open_tree), made read-only at the
  top (mount_setattr adds MOUNT_ATTR_RDONLY and clears nothing, so flags the kernel locked
  stay), moved back onto the path's fd. Missing paths are skipped, as runc does.
"""

import errno
import os
import stat

from ..errors import MaskError
from ..linux import syscalls as sc
from .paths import open_in_root

_AT_FDCWD = -100
_ONTO_FD = sc.MOVE_MOUNT_F_EMPTY_PATH | sc.MOVE_MOUNT_T_EMPTY_PATH
_CLONE = sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC
_NULL_DEV = os.makedev(1, 3)
# /dev/null is never executed nor setuid (nodev would break it)
_MASK_ATTRS = sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NOEXEC


def is_null_device(st):
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == _NULL_DEV


def host_null():
    """A detached read-only mount of the host's /dev/null (an fd), or None when the host has
    no usable one. Must be taken before pivot_root; the caller hands it to `apply`, which
    closes it."""
    try:
        fd = sc.open_tree(_AT_FDCWD, "/dev/null", _CLONE)
    except OSError:
        return None
    try:
        if not is_null_device(os.fstat(fd)):
            raise OSError(errno.EINVAL, "not the null device")
        sc.mount_setattr(fd, "", sc.AT_EMPTY_PATH, _MASK_ATTRS)
    except OSError:
        os.close(fd)
        return None
    return fd


class Mask:
    """One source mounted many times: the first attach moves the detached mount itself, later
    ones clone the attached copy (a clone of a mount in our namespace works on every kernel
    with open_tree; a clone of a detached one only on recent ones). Clones keep its flags."""

    def __init__(self, make=None, fd=None):
        self.make = make  # () -> fd of a detached, read-only mount, when fd is None
        self.fd = fd
        self.attached = False

    def attach(self, target_fd):
        if self.fd is None:
            self.fd = self.make()
        tree = sc.open_tree(self.fd, "", _CLONE | sc.AT_EMPTY_PATH) if self.attached else self.fd
        try:
            sc.move_mount(tree, "", target_fd, "", _ONTO_FD)
        finally:
            if tree != self.fd:
                os.close(tree)
        self.attached = True

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def apply(masked, readonly, null_fd=None, mount_label=None, root_path="/"):
    """Mask `masked` and make `readonly` read-only, inside the current root ("/" after the
    pivot). Takes ownership of null_fd (from host_null)."""
    root = os.open(root_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    null = Mask(lambda: _container_null(root), null_fd)
    empty_dir = Mask(lambda: _empty_tmpfs(mount_label))
    try:
        seen = set()
        for i, path in enumerate(masked):
            clean = os.path.normpath(path)
            if clean in seen:
                continue
            seen.add(clean)
            target = _open_in_root(root, path, "maskedPaths", i)
            if target is None:
                continue
            is_dir = False
            try:
                is_dir = stat.S_ISDIR(os.fstat(target).st_mode)
                (empty_dir if is_dir else null).attach(target)
            except OSError as e:
                raise MaskError(f"can't mask {'directory' if is_dir else 'file'} {path} "
                                f"(linux.maskedPaths[{i}]): {_reason(e)}") from None
            finally:
                os.close(target)
        for i, path in enumerate(readonly):
            target = _open_in_root(root, path, "readonlyPaths", i)
            if target is None:
                continue
            try:
                _readonly(target)
            except OSError as e:
                raise MaskError(f"can't make {path} read-only (linux.readonlyPaths[{i}]): "
                                f"{_reason(e)}") from None
            finally:
                os.close(target)
    finally:
        os.close(root)
        null.close()
        empty_dir.close()


def _open_in_root(root, path, field, index):
    try:
        return open_in_root(root, path)
    except FileNotFoundError:
        return None  # as runc: a path the image does not have needs no mask
    except OSError as e:
        raise MaskError(f"can't open {path} (linux.{field}[{index}]): {_reason(e)}") from None


def _readonly(target):
    tree = sc.open_tree(target, "", _CLONE | sc.AT_EMPTY_PATH | sc.AT_RECURSIVE)
    try:
        sc.mount_setattr(tree, "", sc.AT_EMPTY_PATH, sc.MOUNT_ATTR_RDONLY)
        sc.move_mount(tree, "", target, "", _ONTO_FD)
    finally:
        os.close(tree)


def _container_null(root):
    """The host had no usable /dev/null: the container's, only if it really is 1:3."""
    try:
        fd = open_in_root(root, "/dev/null", os.O_PATH | os.O_NOFOLLOW,
                          resolve=sc.RESOLVE_NO_SYMLINKS)
    except OSError as e:
        raise OSError(e.errno, f"no /dev/null to mask with: {_reason(e)}") from None
    try:
        if not is_null_device(os.fstat(fd)):
            raise OSError(errno.EINVAL, "the container's /dev/null is not the null device (1:3)")
        tree = sc.open_tree(fd, "", _CLONE | sc.AT_EMPTY_PATH)
    finally:
        os.close(fd)
    try:
        sc.mount_setattr(tree, "", sc.AT_EMPTY_PATH, _MASK_ATTRS)
    except OSError:
        os.close(tree)
        raise
    return tree


def _empty_tmpfs(mount_label):
    """A read-only tmpfs of one block and one inode (its root), as runc's maskDir."""
    ctx = sc.fsopen("tmpfs", sc.FSOPEN_CLOEXEC)
    try:
        sc.fsconfig(ctx, sc.FSCONFIG_SET_STRING, "nr_blocks", "1")
        try:
            sc.fsconfig(ctx, sc.FSCONFIG_SET_STRING, "nr_inodes", "1")
        except OSError:  # Ubuntu's 5.4 refuses fewer than 2 (runc retries the same way)
            sc.fsconfig(ctx, sc.FSCONFIG_SET_STRING, "nr_inodes", "2")
        if mount_label:
            sc.fsconfig(ctx, sc.FSCONFIG_SET_STRING, "context", mount_label)
        sc.fsconfig(ctx, sc.FSCONFIG_CMD_CREATE)
        return sc.fsmount(ctx, sc.FSMOUNT_CLOEXEC, sc.MOUNT_ATTR_RDONLY)  # runc's flags: "ro"
    finally:
        os.close(ctx)


def _reason(e):
    return (e.strerror or str(e)).lower() if isinstance(e, OSError) else str(e)
