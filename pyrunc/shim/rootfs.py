"""Build the container's filesystem view inside its mount namespace.

Order follows the runtime-spec (and runc): root propagation, the rootfs bind,
config mounts in order, device nodes, pivot_root (or MS_MOVE + chroot), then (after the
console, shim/init.py) the tmpfs mounts asked read-only, the masked and read-only paths and
the read-only root.
"""

import errno
import os
import stat

from ..errors import RootfsError
from ..linux import mountflags as mf
from ..linux import syscalls as sc  # the unit seam: tests/unit/fakesys.py replaces it
from ..linux.syscalls import (
    AT_EMPTY_PATH,
    AT_FDCWD,
    AT_RECURSIVE,
    MNT_DETACH,
    MOVE_MOUNT_F_EMPTY_PATH,
    MOVE_MOUNT_T_EMPTY_PATH,
    OPEN_TREE_CLOEXEC,
    OPEN_TREE_CLONE,
    PROC_SUPER_MAGIC,
    RESOLVE_BENEATH,
    RESOLVE_NO_SYMLINKS,
    UMOUNT_NOFOLLOW,
)
from . import copyup, devices, masks, paths, procfs
from .paths import fd_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..spec.model import Config, Linux, Mount


def prepare(spec: "Config", rootfs, cgroup_paths, detached=None):
    """Everything up to (not including) the pivot. Returns the tmpfs mounts asked read-only,
    [(fd, flags)], for `finish` (it closes them): as runc's finalizeRootfs, they are made
    read-only only after the hooks and the console (/dev/console may be created in /dev).

    Every path from the config or the image is walked by fd from the rootfs (shim/paths.py)
    and mounted onto the verified fd. `detached`: mounts index -> detached clone of each bind
    source, made by stage1 on the host (open_bind_sources; this function closes every one,
    used or not); None where the kernel has no open_tree: the sources are then opened O_PATH
    here, first, and bound from their fd.
    """
    linux = spec.linux
    mounts = spec.mounts
    if detached is None:
        sources, attach = _open_bind_sources(mounts), False
    else:
        sources, attach = detached, True
    try:
        prop = linux.rootfs_propagation
        # Slave by default so the container sees host unmounts but its mounts never leak out.
        flags = mf.PROPAGATION[prop] | mf.MS_REC if prop else mf.MS_SLAVE | mf.MS_REC
        if flags & mf.MS_UNBINDABLE:
            # the rootfs is bound onto itself below, which an unbindable source refuses
            # (EINVAL, runc 1.1 too): slave now, unbindable on the new root after the pivot
            flags = mf.MS_SLAVE | mf.MS_REC
        sc.mount(None, "/", None, flags)
        _make_parent_private(rootfs)
        sc.mount(rootfs, rootfs, None, mf.MS_BIND | mf.MS_REC)
        root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return _build(spec, linux, mounts, sources, attach, root_fd, cgroup_paths)
        finally:
            os.close(root_fd)
    finally:
        close_all(sources)


def open_bind_sources(spec: "Config"):
    """Stage1, on the host (before the user and mount namespaces): mounts index -> a detached
    clone (open_tree OPEN_TREE_CLONE, recursive for rbind) of each bind mount's source, as
    runc >= 1.2. The host's root opens them, so a source the container's (remapped) root
    could not walk to is still mounted: the init attaches such a clone with move_mount (a
    mount of the host's namespace could not be bound by path from another one). A source the
    init can open itself is bound from its own namespace instead (_own_source: locked flags).
    Sources are relative to the bundle, our cwd. None when the kernel has no open_tree:
    prepare opens them itself.

    Each clone is given the rootfs's propagation (slave by default) before it is attached,
    as a bind made from the container's copy of the host's mounts would have: a clone of a
    shared host mount is otherwise a peer of it, and mounts made below it would reach the
    host."""
    prop = spec.linux.rootfs_propagation
    propagation = (mf.PROPAGATION[prop] if prop else mf.MS_SLAVE) & ~mf.MS_REC

    def clone(source, m):
        rec = AT_RECURSIVE if mf.parse(m.options).flags & mf.MS_REC else 0
        fd = sc.open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec)
        try:
            sc.mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, 0, 0, propagation)
        except BaseException:
            os.close(fd)
            raise
        return fd

    try:
        return _per_bind_source(spec.mounts, clone)
    except OSError:  # only ENOSYS gets through: a kernel without open_tree
        return None


def _open_bind_sources(mounts):
    """index -> O_PATH fd of each bind mount's source (relative to the bundle: create runs
    there). Only where the kernel has no open_tree (see open_bind_sources)."""
    return _per_bind_source(mounts, lambda source, _m: os.open(source, os.O_PATH | os.O_CLOEXEC))


def _per_bind_source(mounts, open_one):
    """{mounts index: open_one(absolute source, mount)} for every bind mount; on failure none
    stays open. An OSError becomes a RootfsError naming the mount, except ENOSYS (the caller's
    fallback)."""
    fds = {}
    try:
        for index, m in enumerate(mounts):
            if not m.is_bind():
                continue
            try:
                fds[index] = open_one(os.path.abspath(m.source or ""), m)
            except OSError as e:
                if e.errno == errno.ENOSYS:
                    raise
                raise RootfsError(_mount_error(m, index, e), e.errno) from None
    except BaseException:
        close_all(fds)
        raise
    return fds


def close_all(fds):
    """Close every fd of a {mounts index: fd} table (sources or clones not used, or on failure)."""
    for fd in fds.values():
        os.close(fd)


def _mount_error(m, index, e):
    return (f"error mounting {m.source if m.source is not None else m.type!r} to rootfs at "
            f"{m.destination!r} (mounts[{index}]): {e.strerror or e}")


def _build(spec: "Config", linux: "Linux", mounts: "list[Mount]", sources, attach, root_fd, cgroup_paths):
    late_ro: list[tuple[int, int]] = []  # (fd of a tmpfs asked read-only, flags): remounted by finish
    try:
        for index, m in enumerate(mounts):
            try:
                mnt = _mount_one(root_fd, m, sources.get(index), cgroup_paths, late_ro,
                                 linux.mount_label, attach)
            except OSError as e:
                raise RootfsError(_mount_error(m, index, e), e.errno) from None
            if mnt is not None and not any(fd == mnt for fd, _ in late_ro):
                os.close(mnt)

        own_dev = not any(m.is_bind() and os.path.normpath(m.destination) == "/dev" for m in mounts)
        if own_dev:
            devices.create_defaults(root_fd, linux.devices)
        devices.create_configured(root_fd, linux.devices)
        if own_dev:
            devices.link_ptmx(root_fd)
        cwd = spec.process.cwd
        if cwd:
            try:
                os.close(paths.mkdir_all(root_fd, cwd))
            except OSError as e:
                assert e.errno is not None
                # Name the container's path, not the host's.
                reason = ("not a directory" if e.errno in (errno.EEXIST, errno.ENOTDIR)
                          else os.strerror(e.errno).lower())
                raise RootfsError(f"mkdir {cwd} (process.cwd in config.json): {reason}") from None
    except BaseException:
        close_all({i: mnt for i, (mnt, _) in enumerate(late_ro)})
        raise
    return late_ro


def _make_parent_private(rootfs):
    """pivot_root refuses a new root whose parent mount is shared: make that one private."""
    best = ""
    shared = False
    for mnt, optional, _fstype, _super in _mount_entries():
        if (rootfs == mnt or rootfs.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
            best = mnt
            shared = any(o.startswith("shared:") for o in optional)
    if best and shared:
        sc.mount(None, best, None, mf.MS_PRIVATE)


def _mount(source, target_fd, fstype, flags, data=None):
    """mount(2) onto the object target_fd was opened on; errors without the /proc/self/fd names."""
    try:
        sc.mount(source, fd_path(target_fd), fstype, flags, data)
    except OSError as e:
        assert e.errno is not None
        raise OSError(e.errno, os.strerror(e.errno).lower()) from None


def _mounted(node):
    """An fd of the mount just made on node.fd (node.fd itself stays on the covered object).

    Looked up again as node.name in node.parent, and checked to be a different mount than the
    one node.fd is on: if the mount point was renamed away or swapped for a symlink meanwhile
    we refuse rather than apply flags or propagation to something else.
    """
    try:
        fd = sc.openat2(node.parent, node.name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, 0,
                        RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
    except OSError as e:
        raise OSError(e.errno, "the mount point was moved while mounting") from None
    if sc.mount_id(fd) == sc.mount_id(node.fd) or stat.S_ISLNK(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EXDEV, "the mount point was moved while mounting")
    return fd


def _target(root_fd, dest, kind, make):
    """The verified mount point; procfs and sysfs only on a real directory (runc's rule, against
    /proc or /sys swapped for a symlink: CVE-2019-16884, -19921, CVE-2023-27561, -28642)."""
    ordinary = kind in ("proc", "sysfs")
    node = paths.walk(root_fd, dest, make, follow_last=not ordinary)
    if node.parent is None:
        node.close()
        raise OSError(errno.EINVAL, "cannot mount over the root of the container")
    if ordinary and not stat.S_ISDIR(os.fstat(node.fd).st_mode):
        node.close()
        raise OSError(errno.ENOTDIR, f'filesystem "{kind}" must be mounted on ordinary directory')
    return node


_LABELLED_TYPES = {"tmpfs", "devpts", "mqueue", "shm"}


def _mount_one(root_fd, m: "Mount", source_fd, cgroup_paths, late_ro, mount_label=None, attach=False):
    """Mount m; returns an fd of the new mount (the caller closes it unless kept in late_ro)."""
    opts = mf.parse(m.options)
    if mount_label and m.type in _LABELLED_TYPES:
        # SELinux: files of these filesystems get linux.mountLabel (the host checked it is on)
        opts.data = ",".join(filter(None, (opts.data, f'context="{mount_label}"')))
    kind = m.type or ""
    if m.is_bind():
        return _bind(root_fd, m, opts, source_fd, attach)
    with _target(root_fd, m.destination, kind, paths.make_dir()) as node:
        previous_mode = None if node.created else stat.S_IMODE(os.fstat(node.fd).st_mode)
        if kind == "cgroup":
            mnt = _mount_cgroup(node, opts, cgroup_paths)
        elif kind == "tmpfs":
            flags = opts.flags & ~mf.MS_RDONLY  # devices and copy-up need it writable first
            data = opts.data
            if previous_mode is not None:
                # as runc >= 1.2: the covered directory's mode, first, so an explicit mode=
                # in the options wins (runc 1.1 chmods afterwards: the directory's wins)
                data = ",".join(filter(None, (f"mode={previous_mode:04o}", data)))
            _mount(m.source or "tmpfs", node.fd, "tmpfs", flags, data or None)
            mnt = _mounted(node)
            try:
                if "tmpcopyup" in opts.extensions:
                    copyup.copy_tree(node.fd, mnt)  # podman's: what the image had there
            except BaseException:
                os.close(mnt)
                raise
        else:
            _mount(m.source or kind, node.fd, kind, opts.flags, opts.data or None)
            mnt = _mounted(node)
    _propagate(mnt, opts)
    _set_recursive(mnt, opts)
    if kind == "tmpfs" and opts.flags & mf.MS_RDONLY:
        late_ro.append((mnt, opts.flags))
    return mnt


def _propagate(mnt, opts):
    try:
        for p in opts.propagation:
            _mount(None, mnt, None, p)
    except BaseException:
        os.close(mnt)
        raise


def _bind(root_fd, m, opts, source_fd, attach):
    """runc's rules: a directory source gets a directory target, anything else a file.
    source_fd: an O_PATH fd of the source, or with attach a detached clone made on the host
    (open_bind_sources), used only where we cannot open the source ourselves (_own_source)."""
    own = _own_source(m) if attach else source_fd
    try:
        src = source_fd if own is None else own
        is_dir = stat.S_ISDIR(os.fstat(src).st_mode)
        make = paths.make_dir() if is_dir else paths.make_file()
        with _target(root_fd, m.destination, "bind", make) as node:
            if own is None:
                try:
                    sc.move_mount(source_fd, "", node.fd, "",
                                  MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
                except OSError as e:
                    assert e.errno is not None
                    raise OSError(e.errno, os.strerror(e.errno).lower()) from None
            else:
                _mount(fd_path(own), node.fd, None, mf.MS_BIND | (opts.flags & mf.MS_REC))
            mnt = _mounted(node)
    finally:
        if attach and own is not None:
            os.close(own)
    try:
        if opts.flags & mf.BIND_REMOUNT_FLAGS:
            _remount_bind(mnt, opts.flags, opts.cleared)
    except BaseException:
        os.close(mnt)
        raise
    _propagate(mnt, opts)
    _set_recursive(mnt, opts)
    return mnt


def _set_recursive(mnt, opts):
    """rro, rnosuid, ... (runc >= 1.1): on the new mount and every mount below it, through
    the verified fd of the mount."""
    if not opts.recursive:
        return
    try:
        sc.mount_setattr(mnt, "", AT_EMPTY_PATH | AT_RECURSIVE, opts.rec_set, opts.rec_clr)
    except OSError as e:
        assert e.errno is not None
        os.close(mnt)
        raise OSError(e.errno, "mount_setattr of the recursive options: "
                      + os.strerror(e.errno).lower()) from None
    except BaseException:
        os.close(mnt)
        raise


def _own_source(m):
    """The source opened by us, in our namespaces (cwd: the bundle), or None where we cannot
    (a remapped root that may not walk to it): the host's clone is used then.

    Preferred to the clone because a bind made from our namespace's copy of the host's mount
    keeps what the kernel locked when that copy was made for a new user namespace (the host
    mount's ro/nosuid/nodev/noexec, MNT_LOCKED submounts of an rbind); a clone made on the
    host and attached here has nothing locked, so a container given CAP_SYS_ADMIN in its user
    namespace could remount a host-read-only source writable or unmount a submount."""
    try:
        return os.open(os.path.abspath(m.source or ""), os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return None


def remount_bind(target, flags, cleared=0, bare=False):
    """Apply ro/nosuid/... to a bind mount, keeping flags the kernel locked on it.
    bare: a failing mount(2) is reported by its errno's text alone (not "mount <target>: ...").

    nosuid/nodev/noexec already on the mount are kept, and the atime setting is kept unless
    one is asked (the kernel preserves it on a remount). In a user namespace the kernel also
    refuses (EPERM) a remount that drops the source's ro or changes its locked atime: then,
    as runc >= 1.2, the source's lockable flags are added and the remount tried again, unless
    the options explicitly clear one ("rw" on a read-only source) or ask another atime."""
    have = os.statvfs(target).f_flag
    locked = have & (mf.MS_NOSUID | mf.MS_NODEV | mf.MS_NOEXEC)
    flags = mf.MS_BIND | mf.MS_REMOUNT | locked | (flags & mf.BIND_REMOUNT_FLAGS)
    try:
        sc.mount(None, target, None, flags)
        return
    except PermissionError:
        pass
    except OSError as e:
        if not bare:
            raise
        raise OSError(e.errno, os.strerror(e.errno or 0).lower()) from None
    source = mf.from_statvfs(have)
    if source & mf.LOCKABLE_FLAGS & cleared:
        raise OSError(errno.EPERM, "cannot clear flags the kernel locked on the source "
                                   "(it is read-only, nosuid, nodev or noexec)")
    asked = flags & mf.ATIME_FLAGS
    if asked and asked != source & mf.ATIME_FLAGS:
        raise OSError(errno.EPERM, "cannot change the access-time flags the kernel locked on "
                                   "the source")
    try:
        sc.mount(None, target, None, flags | (source & mf.LOCKABLE_FLAGS))
    except OSError as e:
        if not bare:
            raise
        raise OSError(e.errno, os.strerror(e.errno or 0).lower()) from None


def _remount_bind(mnt, flags, cleared=0):
    remount_bind(fd_path(mnt), flags, cleared, bare=True)


def _mount_cgroup(node, opts, cgroup_paths):
    """cgroup mount: cgroup2 as is; on v1 hosts a tmpfs with one bind per hierarchy."""
    flags = opts.flags
    hierarchies = [k for k in cgroup_paths if not k.startswith("@mount:")]
    if hierarchies == [""]:  # a cgroup v2 host: the container's own cgroup
        host = os.path.join(cgroup_paths["@mount:"], cgroup_paths[""].lstrip("/"))
        _bind_host(host, node.fd, mf.MS_BIND | mf.MS_REC)
        mnt = _mounted(node)
        try:
            if flags & mf.BIND_REMOUNT_FLAGS:
                _remount_bind(mnt, flags)
        except BaseException:
            os.close(mnt)
            raise
        return mnt
    _mount("tmpfs", node.fd, "tmpfs", flags & ~mf.MS_RDONLY, "mode=755")
    mnt = _mounted(node)  # our fresh tmpfs: nothing of the image's is below it
    try:
        _bind_hierarchies(mnt, flags, cgroup_paths)
    except BaseException:
        os.close(mnt)
        raise
    # runc leaves the tmpfs itself writable; the hierarchies below carry the read-only flag.
    return mnt


def _bind_hierarchies(mnt, flags, cgroup_paths):
    for controllers, path in cgroup_paths.items():
        if controllers.startswith("@mount:") or controllers == "":
            continue
        host_mount = cgroup_paths.get("@mount:" + controllers)
        if not host_mount:
            continue
        name = os.path.basename(host_mount)
        os.mkdir(name, 0o755, dir_fd=mnt)
        # By name below our verified fd: the tmpfs is the one we just made, in a mount namespace
        # no container process has entered yet, so nobody can swap its names.
        sub = f"{fd_path(mnt)}/{name}"
        try:
            sc.mount(os.path.join(host_mount, path.lstrip("/")), sub, None, mf.MS_BIND | mf.MS_REC)
            remount_bind(sub, flags | mf.MS_NOSUID | mf.MS_NODEV | mf.MS_NOEXEC)
        except OSError as e:
            assert e.errno is not None
            raise OSError(e.errno, f"{name}: {os.strerror(e.errno).lower()}") from None
        # cpu,cpuacct mounted together: also reachable as cpu and cpuacct
        for alias in name.split(","):
            if alias != name:
                try:
                    os.symlink(name, alias, dir_fd=mnt)
                except FileExistsError:
                    pass


def _bind_host(host_path, target_fd, flags):
    """Bind a host path (ours, not the image's: the cgroup hierarchies) onto target_fd."""
    src = os.open(host_path, os.O_PATH | os.O_CLOEXEC)
    try:
        _mount(fd_path(src), target_fd, None, flags)
    finally:
        os.close(src)


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
    for mnt, _optional, fstype, super_opts in _mount_entries():
        if fstype == "cgroup2" and "" in wanted:
            paths.setdefault("@mount:", mnt)
        elif fstype == "cgroup":
            opts = set(super_opts.split(","))
            for c in wanted:
                if c and set(c.split(",")) <= opts:
                    paths.setdefault("@mount:" + c, mnt)
    return paths


def root_propagation(propagation):
    """linux.rootfsPropagation shared/unbindable on the container's root itself, after the
    pivot (runc >= 1.2 does it there: the root is a bind whose parent was made private, so
    "shared" set before never reached it; slave and private were applied by prepare). Last,
    once the masks and the console are mounted: they clone mounts (open_tree), which an
    unbindable one refuses."""
    # the root alone: the mounts below keep what prepare and their own options gave them
    # (runbindable, which prepare could not apply, is the exception)
    flags = {"shared": mf.MS_SHARED, "rshared": mf.MS_SHARED, "unbindable": mf.MS_UNBINDABLE,
             "runbindable": mf.MS_UNBINDABLE | mf.MS_REC}.get(propagation)
    if flags:
        try:
            sc.mount(None, "/", None, flags)
        except OSError as e:
            assert e.errno is not None
            raise RootfsError(f"unable to apply linux.rootfsPropagation {propagation!r} to the "
                              f"root: {os.strerror(e.errno).lower()}") from None


def pivot(rootfs, no_pivot):
    if no_pivot:
        # chroot leaves the rest of the mount namespace in place: first make the host's mounts
        # outside the rootfs unreachable (runc's msMoveRoot), or a nested mount namespace could
        # mount a new procfs next to the host's fully visible one.
        _detach_outside(rootfs)
        os.chdir(rootfs)
        sc.mount(rootfs, "/", None, mf.MS_MOVE)
        sc.chroot(".")
        os.chdir("/")
        return
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        sc.pivot_root(".", ".")  # stack the old root under the new one, then detach it
        os.fchdir(old)
        sc.mount(None, ".", None, mf.MS_SLAVE | mf.MS_REC)
        sc.umount2(".", MNT_DETACH)
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

    covered: set[str] = set()
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
                    sc.mount(None, mp, None, mf.MS_SLAVE)
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
                sc.mount(None, mp, None, mf.MS_SLAVE | mf.MS_REC)
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.EINVAL):
                    continue  # gone with a parent, or hidden under a cover: unreachable already
                raise
            try:
                sc.umount2(mp, MNT_DETACH | UMOUNT_NOFOLLOW)
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
        sc.mount(source, mp, fstype, flags, data)
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
        if sc.fstatfs_type(fd) not in _PSEUDO_FS:
            return
    finally:
        os.close(fd)
    source, fstype, flags, data = _EMPTY_RO
    with os.scandir(mp) as entries:
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False) and os.listdir(entry.path):
                    sc.mount(source, entry.path, fstype, flags, data)
                    return
            except OSError:
                continue


def _mount_points(fd):
    """Mount points of our namespace, read afresh from the start of the open mountinfo file."""
    return [entry[0] for entry in _mount_entries(fd)]


def _mount_entries(fd=None):
    """(mount point, optional fields, fstype, super options) of each line of mountinfo: of
    the open file fd (read again from its start), else of /proc/self/mountinfo. The mount
    point has its octal escapes (a space is \\040) undone, so it compares with a real path."""
    own = fd is None
    if own:
        fd = os.open("/proc/self/mountinfo", os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        if own:
            os.close(fd)
    entries = []
    for line in b"".join(chunks).splitlines():
        fields = line.split()
        if not fields:
            continue
        sep = fields.index(b"-")
        entries.append((_unescape(fields[4]), [os.fsdecode(o) for o in fields[6:sep]],
                        os.fsdecode(fields[sep + 1]), os.fsdecode(fields[sep + 3])))
    return entries


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


def finish(spec: "Config", null_fd=None, root="/", late_ro=()):
    """After the pivot and the console: the tmpfs mounts asked read-only (`prepare`'s
    late_ro, closed here), masked and read-only paths (shim/masks.py), the read-only root.
    null_fd: masks.host_null(), taken before the pivot (apply closes it). root: the container's
    root, "/" once pivoted (a unit test's fake pivot leaves it where it was)."""
    _remount_read_only(late_ro, root)
    linux = spec.linux
    # a masks.MaskError is a RootfsError (pyrunc/errors.py)
    masks.apply(linux.masked_paths, linux.readonly_paths, null_fd, linux.mount_label, root)
    if spec.root is not None and spec.root.readonly:
        sc.mount(None, root, None, mf.MS_BIND | mf.MS_REMOUNT | mf.MS_RDONLY
                 | (os.statvfs(root).f_flag & (mf.MS_NOSUID | mf.MS_NODEV | mf.MS_NOEXEC)))


def _remount_read_only(late_ro, root):
    """Remount each (fd, flags) read-only, as it was asked (runc's remountReadonly). After the
    pivot "/proc/self/fd/N" would be looked up in the container's /proc, which the config or
    the image may have made anything: the magic link is followed from the fd directory of the
    verified procfs (our cwd for the call) instead."""
    if not late_ro:
        return
    try:
        with procfs.Procfs() as proc:
            fd_dir = proc.open(proc.self_path("fd"), os.O_PATH | os.O_DIRECTORY)
        try:
            os.fchdir(fd_dir)
            for mnt, flags in late_ro:
                sc.mount(None, str(mnt), None, mf.MS_REMOUNT | flags)
        finally:
            os.chdir(root)
            os.close(fd_dir)
    except OSError as e:
        raise RootfsError(f"remounting a tmpfs read-only: {(e.strerror or str(e)).lower()}",
                          e.errno) from None
    finally:
        for mnt, _ in late_ro:
            os.close(mnt)
