"""Build the container's filesystem view inside its mount namespace.

Order follows the runtime-spec (and runc): root propagation, the rootfs bind,
config mounts in order, device nodes, pivot_root (or MS_MOVE + chroot), then the
masked and read-only paths and the read-only root.
"""

import errno
import os
import stat

from ..linux import mountflags as mf
from ..linux.syscalls import (MNT_DETACH, PROC_SUPER_MAGIC, UMOUNT_NOFOLLOW, fstatfs_type, mount,
                              pivot_root, umount2)
from . import devices, masks
from .paths import mkdir_all_in_root, resolve_in_root


class RootfsError(Exception):
    pass


def prepare(config, rootfs, cgroup_paths):
    """Everything up to (not including) the pivot."""
    linux = config.get("linux") or {}
    prop = linux.get("rootfsPropagation")
    # Slave by default so the container sees host unmounts but its mounts never leak out.
    mount(None, "/", None, mf.PROPAGATION[prop] | mf.MS_REC if prop else mf.MS_SLAVE | mf.MS_REC)
    _make_parent_private(rootfs)
    mount(rootfs, rootfs, None, mf.MS_BIND | mf.MS_REC)

    late_ro = []  # tmpfs mounts asked read-only, remounted once devices are in place
    for index, m in enumerate(config.get("mounts") or []):
        try:
            _mount_one(rootfs, m, cgroup_paths, late_ro, linux.get("mountLabel"))
        except OSError as e:
            raise RootfsError(f"error mounting {m.get('source', m.get('type'))!r} to rootfs at "
                              f"{m['destination']!r} (mounts[{index}]): {e.strerror or e}") from None

    if not any(_is_bind(m) and os.path.normpath(m["destination"]) == "/dev"
               for m in config.get("mounts") or []):
        devices.create_defaults(rootfs, config)
    devices.create_configured(rootfs, linux.get("devices") or [])
    cwd = (config.get("process") or {}).get("cwd")
    if cwd:
        try:
            mkdir_all_in_root(rootfs, cwd)
        except OSError as e:
            # Name the container's path, not the host's; makedirs says "file exists" for a file.
            reason = "not a directory" if isinstance(e, FileExistsError) else e.strerror.lower()
            raise RootfsError(f"mkdir {cwd} (process.cwd in config.json): {reason}") from None
    for target, flags in late_ro:
        mount(None, target, None, mf.MS_REMOUNT | flags)


def _is_bind(m):
    return m.get("type") == "bind" or any(o in ("bind", "rbind") for o in m.get("options") or ())


def _make_parent_private(rootfs):
    """pivot_root refuses a new root whose parent mount is shared: make that one private."""
    best = ""
    shared = False
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mnt = fields[4]
            if (rootfs == mnt or rootfs.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best = mnt
                optional = fields[6:fields.index("-")]
                shared = any(o.startswith("shared:") for o in optional)
    if best and shared:
        mount(None, best, None, mf.MS_PRIVATE)


_LABELLED_TYPES = {"tmpfs", "devpts", "mqueue", "shm"}


def _mount_one(rootfs, m, cgroup_paths, late_ro, mount_label=None):
    opts = mf.parse(m.get("options"))
    if mount_label and m.get("type") in _LABELLED_TYPES:
        # SELinux: files of these filesystems get linux.mountLabel (the host checked it is on)
        opts.data = ",".join(filter(None, (opts.data, f'context="{mount_label}"')))
    kind = m.get("type") or ""
    dest = m["destination"]
    if _is_bind(m):
        return _bind(rootfs, m, opts)
    existing = resolve_in_root(rootfs, dest)
    try:
        previous_mode = stat.S_IMODE(os.stat(existing).st_mode)
    except OSError:
        previous_mode = None
    target = mkdir_all_in_root(rootfs, dest)
    if kind == "cgroup":
        _mount_cgroup(target, opts, cgroup_paths)
    elif kind == "tmpfs":
        flags = opts.flags & ~mf.MS_RDONLY  # devices and copy-up need it writable first
        if "tmpcopyup" in opts.extensions:
            _tmpfs_copyup(target, flags, opts.data)
        else:
            mount(m.get("source") or "tmpfs", target, "tmpfs", flags, opts.data or None)
        if previous_mode is not None:
            os.chmod(target, previous_mode)  # runc keeps the covered directory's mode
        if opts.flags & mf.MS_RDONLY:
            late_ro.append((target, opts.flags))
    else:
        mount(m.get("source") or kind, target, kind, opts.flags, opts.data or None)
    for p in opts.propagation:
        mount(None, target, None, p)
    return target


def _bind(rootfs, m, opts):
    source = m.get("source") or ""
    if not os.path.isabs(source):
        source = os.path.abspath(source)  # relative to the bundle: create runs there
    st = os.stat(source)
    target = resolve_in_root(rootfs, m["destination"])
    if stat.S_ISDIR(st.st_mode):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.lexists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    mount(source, target, None, mf.MS_BIND | (opts.flags & mf.MS_REC))
    if opts.flags & mf.BIND_REMOUNT_FLAGS:
        remount_bind(target, opts.flags)
    for p in opts.propagation:
        mount(None, target, None, p)
    return target


def remount_bind(target, flags):
    """Apply ro/nosuid/... to a bind mount, keeping flags the kernel locked on it."""
    locked = os.statvfs(target).f_flag & (mf.MS_NOSUID | mf.MS_NODEV | mf.MS_NOEXEC)
    mount(None, target, None, mf.MS_BIND | mf.MS_REMOUNT | locked | (flags & mf.BIND_REMOUNT_FLAGS))


def _tmpfs_copyup(target, flags, data):
    """podman's tmpcopyup: the tmpfs starts with a copy of what the image had there."""
    import shutil  # only here, and still before pivot_root, so the lazy import is safe

    staging = target + ".pyrunc-copyup"
    os.mkdir(staging, 0o700)
    try:
        mount("tmpfs", staging, "tmpfs", flags, data or None)
        for name in os.listdir(target):
            src = os.path.join(target, name)
            dst = os.path.join(staging, name)
            if os.path.isdir(src) and not os.path.islink(src):
                shutil.copytree(src, dst, symlinks=True)
            else:
                shutil.copy2(src, dst, follow_symlinks=False)
        shutil.copystat(target, staging)
        mount(staging, target, None, mf.MS_MOVE)
    finally:
        os.rmdir(staging)


def _mount_cgroup(target, opts, cgroup_paths):
    """cgroup mount: cgroup2 as is; on v1 hosts a tmpfs with one bind per hierarchy."""
    flags = opts.flags
    hierarchies = [k for k in cgroup_paths if not k.startswith("@mount:")]
    if hierarchies == [""]:  # a cgroup v2 host: the container's own cgroup
        host = os.path.join(cgroup_paths["@mount:"], cgroup_paths[""].lstrip("/"))
        mount(host, target, None, mf.MS_BIND | mf.MS_REC)
        if flags & mf.BIND_REMOUNT_FLAGS:
            remount_bind(target, flags)
        return
    mount("tmpfs", target, "tmpfs", flags & ~mf.MS_RDONLY, "mode=755")
    for controllers, path in cgroup_paths.items():
        if controllers.startswith("@mount:") or controllers == "":
            continue
        host_mount = cgroup_paths.get("@mount:" + controllers)
        if not host_mount:
            continue
        name = os.path.basename(host_mount)
        sub = os.path.join(target, name)
        os.mkdir(sub, 0o755)
        mount(os.path.join(host_mount, path.lstrip("/")), sub, None, mf.MS_BIND | mf.MS_REC)
        remount_bind(sub, flags | mf.MS_NOSUID | mf.MS_NODEV | mf.MS_NOEXEC)
        # cpu,cpuacct mounted together: also reachable as cpu and cpuacct
        for alias in name.split(","):
            if alias != name and not os.path.exists(os.path.join(target, alias)):
                os.symlink(name, os.path.join(target, alias))
    # runc leaves the tmpfs itself writable; the hierarchies below carry the read-only flag.


def host_cgroup_paths():
    """This process's cgroup per hierarchy, plus where each hierarchy is mounted on the host.

    Keys: controller string from /proc/self/cgroup ("" for cgroup2, "name=systemd", "cpu,cpuacct")
    -> path; "@mount:<controllers>" -> host mount point. Read before unsharing the cgroup namespace.
    """
    paths = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            paths[controllers] = path
    wanted = set(paths)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype, super_opts = fields[sep + 1], fields[sep + 3]
            if fstype == "cgroup2" and "" in wanted:
                paths.setdefault("@mount:", fields[4])
            elif fstype == "cgroup":
                opts = set(super_opts.split(","))
                for c in wanted:
                    if c and set(c.split(",")) <= opts:
                        paths.setdefault("@mount:" + c, fields[4])
    return paths


def pivot(rootfs, no_pivot):
    if no_pivot:
        # chroot leaves the rest of the mount namespace in place: first make the host's mounts
        # outside the rootfs unreachable (runc's msMoveRoot), or a nested mount namespace could
        # mount a new procfs next to the host's fully visible one.
        _detach_outside(rootfs)
        os.chdir(rootfs)
        mount(rootfs, "/", None, mf.MS_MOVE)
        os.chroot(".")
        os.chdir("/")
        return
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        pivot_root(".", ".")  # stack the old root under the new one, then detach it
        os.fchdir(old)
        mount(None, ".", None, mf.MS_SLAVE | mf.MS_REC)
        umount2(".", MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old)
        os.close(new)


def _detach_outside(rootfs):
    """--no-pivot: detach every mount that is neither the rootfs, below it, nor one of its
    ancestors (those hold the rootfs up); a mount the kernel will not let go (a locked one in a
    user namespace) is covered (`_cover`). Slaves first: the unmounts must not propagate to
    the host."""
    rootfs = os.path.realpath(rootfs)  # mountinfo shows resolved paths

    def keep(mp):
        return (mp == rootfs or mp.startswith(rootfs + "/") or mp == "/"
                or rootfs.startswith(mp.rstrip("/") + "/"))

    covered = set()
    # opened once: the host's /proc is among the mounts that go; and the host's /dev/null,
    # to cover a file mount that cannot go, before /dev goes
    mountinfo = os.open("/proc/self/mountinfo", os.O_RDONLY | os.O_CLOEXEC)
    null = masks.Mask(fd=masks.host_null())
    try:
        # An unmount propagates through its PARENT's peer group: with rootfsPropagation
        # (r)shared, "/" is a peer of the host's "/", and detaching our copy of /dev/shm would
        # detach the host's. So every mount outside the rootfs's subtree (its ancestors too) is
        # made a slave first; the rootfs's own propagation is left as configured.
        for mp in sorted(set(_mount_points(mountinfo))):
            if not (mp == rootfs or mp.startswith(rootfs + "/")):
                try:
                    mount(None, mp, None, mf.MS_SLAVE)
                except OSError:
                    pass  # hidden under another mount: reached in a round below, if at all
        _detach_rounds(mountinfo, keep, covered, null)
    finally:
        os.close(mountinfo)
        null.close()


def _detach_rounds(mountinfo, keep, covered, null):
    while True:
        # parents first: a lazy unmount takes the mounts below with it
        outside = sorted({mp for mp in _mount_points(mountinfo) if not keep(mp)} - covered,
                         key=lambda p: p.count("/"))
        progress = False
        for mp in outside:
            try:
                mount(None, mp, None, mf.MS_SLAVE | mf.MS_REC)
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.EINVAL):
                    continue  # gone with a parent, or hidden under a cover: unreachable already
                raise
            try:
                umount2(mp, MNT_DETACH | UMOUNT_NOFOLLOW)
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.EPERM):
                    raise
                _cover(mp, null)
                covered.add(mp)
            progress = True
        if not progress:
            return


_EMPTY_RO = ("tmpfs", "tmpfs", mf.MS_RDONLY | mf.MS_NOSUID | mf.MS_NODEV | mf.MS_NOEXEC, "mode=0")
_PSEUDO_FS = (PROC_SUPER_MAGIC, 0x62656572)  # procfs, sysfs


def _cover(mp, null):
    """An empty read-only tmpfs over a directory, the host's /dev/null (read-only) over a file.

    A covered procfs or sysfs still counts as fully visible to the kernel's check for a new
    procfs/sysfs mount in a nested user namespace (mnt_already_visible looks at the mounts
    below it, not above). So one of its non-empty directories gets an empty tmpfs first: in a
    nested namespace that mount is locked, and a locked mount over a non-empty directory makes
    the whole instance "not fully visible"."""
    if os.path.isdir(mp):
        _pin_pseudo_fs(mp)
        source, fstype, flags, data = _EMPTY_RO
        mount(source, mp, fstype, flags, data)
        return
    if null.fd is None:
        raise RootfsError(f"--no-pivot: cannot hide the host's mount at {mp} (no /dev/null to cover it)")
    target = os.open(mp, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        null.attach(target)
    finally:
        os.close(target)


def _pin_pseudo_fs(mp):
    fd = os.open(mp, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if fstatfs_type(fd) not in _PSEUDO_FS:
            return
    finally:
        os.close(fd)
    source, fstype, flags, data = _EMPTY_RO
    with os.scandir(mp) as entries:
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False) and os.listdir(entry.path):
                    mount(source, entry.path, fstype, flags, data)
                    return
            except OSError:
                continue


def _mount_points(fd):
    """Mount points of our namespace (mountinfo field 5, octal escapes undone), read afresh
    from the start of the open mountinfo file."""
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return [_unescape(line.split()[4]) for line in b"".join(chunks).splitlines() if line]


def _unescape(raw):
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x5C and raw[i + 1:i + 4].isdigit() and len(raw[i + 1:i + 4]) == 3:
            out.append(int(raw[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return os.fsdecode(bytes(out))


def finish(config, null_fd=None):
    """After the pivot: masked and read-only paths (shim/masks.py), then the read-only root.
    null_fd: masks.host_null(), taken before the pivot (apply closes it)."""
    linux = config.get("linux") or {}
    try:
        masks.apply(linux.get("maskedPaths") or [], linux.get("readonlyPaths") or [], null_fd,
                    linux.get("mountLabel"))
    except masks.MaskError as e:
        raise RootfsError(str(e)) from None
    if (config.get("root") or {}).get("readonly"):
        mount(None, "/", None, mf.MS_BIND | mf.MS_REMOUNT | mf.MS_RDONLY
              | (os.statvfs("/").f_flag & (mf.MS_NOSUID | mf.MS_NODEV | mf.MS_NOEXEC)))
