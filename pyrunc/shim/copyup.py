"""tmpcopyup (podman's mount option): copy what the image had under a tmpfs's mount point into it.

Both sides are fds (the covered directory and the new tmpfs); the image's entries are opened
with O_NOFOLLOW one name at a time, so a symlink in the image is copied as a symlink and can
never make us read or write outside the two trees. Regular files are opened non-blocking and
re-checked, so a file swapped for a fifo cannot hang the create.
"""

import os
import stat

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def copy_tree(src_dir, dst_dir):
    """Copy the tree of directory fd src_dir into directory fd dst_dir (both may be O_PATH),
    with modes and times (shutil.copytree + copystat, as before), the root's included."""
    src = os.open(".", _DIR, dir_fd=src_dir)
    try:
        dst = os.open(".", _DIR, dir_fd=dst_dir)
        try:
            _copy_entries(src, dst)
            _copy_meta(dst, os.fstat(src))
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _copy_entries(src, dst):
    for name in os.listdir(src):
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFDIR:
            os.mkdir(name, 0o700, dir_fd=dst)
            s = os.open(name, _DIR, dir_fd=src)
            try:
                d = os.open(name, _DIR, dir_fd=dst)
                try:
                    _copy_entries(s, d)
                    _copy_meta(d, st)
                finally:
                    os.close(d)
            finally:
                os.close(s)
        elif kind == stat.S_IFREG:
            _copy_file(src, dst, name)
        elif kind == stat.S_IFLNK:
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)
        elif kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO):
            os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst)
            os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dst)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst)
        # sockets cannot be copied (nor could shutil)


def _copy_file(src, dst, name):
    s = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src)
    try:
        st = os.fstat(s)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(21, f"{name}: changed while being copied")
        d = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                    dir_fd=dst)
        try:
            while os.sendfile(d, s, None, 1 << 20):
                pass
            _copy_meta(d, st)
        finally:
            os.close(d)
    finally:
        os.close(s)


def _copy_meta(fd, st):
    os.chmod(fd, stat.S_IMODE(st.st_mode))
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
