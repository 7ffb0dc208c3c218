"""runtime-spec mount options -> mount(2) flags, propagation and data string."""

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

# option -> (clear?, flag). "clear" options undo a flag an earlier option set.
FLAGS = {
    "async": (True, MS_SYNCHRONOUS), "atime": (True, MS_NOATIME),
    "bind": (False, MS_BIND), "defaults": (False, 0), "dev": (True, MS_NODEV),
    "diratime": (True, MS_NODIRATIME), "dirsync": (False, MS_DIRSYNC),
    "exec": (True, MS_NOEXEC), "iversion": (False, MS_I_VERSION),
    "lazytime": (False, MS_LAZYTIME), "loud": (True, MS_SILENT),
    "mand": (False, MS_MANDLOCK), "noatime": (False, MS_NOATIME),
    "nodev": (False, MS_NODEV), "nodiratime": (False, MS_NODIRATIME),
    "noexec": (False, MS_NOEXEC), "noiversion": (True, MS_I_VERSION),
    "nolazytime": (True, MS_LAZYTIME), "nomand": (True, MS_MANDLOCK),
    "norelatime": (True, MS_RELATIME), "nostrictatime": (True, MS_STRICTATIME),
    "nosuid": (False, MS_NOSUID), "nosymfollow": (False, MS_NOSYMFOLLOW),
    "rbind": (False, MS_BIND | MS_REC), "relatime": (False, MS_RELATIME),
    "remount": (False, MS_REMOUNT), "ro": (False, MS_RDONLY), "rw": (True, MS_RDONLY),
    "silent": (False, MS_SILENT), "strictatime": (False, MS_STRICTATIME),
    "suid": (True, MS_NOSUID), "symfollow": (True, MS_NOSYMFOLLOW),
    "sync": (False, MS_SYNCHRONOUS),
}

PROPAGATION = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}

# mount_setattr(2) attributes (linux/mount.h)
MOUNT_ATTR_RDONLY = 0x01
MOUNT_ATTR_NOSUID = 0x02
MOUNT_ATTR_NODEV = 0x04
MOUNT_ATTR_NOEXEC = 0x08
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x00
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x00200000

# runc's recursive options (runc >= 1.1): option -> (clear?, attribute), applied to the mount
# and every mount below it with mount_setattr(AT_RECURSIVE) once it is made.
RECURSIVE = {
    "rro": (False, MOUNT_ATTR_RDONLY), "rrw": (True, MOUNT_ATTR_RDONLY),
    "rnosuid": (False, MOUNT_ATTR_NOSUID), "rsuid": (True, MOUNT_ATTR_NOSUID),
    "rnodev": (False, MOUNT_ATTR_NODEV), "rdev": (True, MOUNT_ATTR_NODEV),
    "rnoexec": (False, MOUNT_ATTR_NOEXEC), "rexec": (True, MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, MOUNT_ATTR_NODIRATIME), "rdiratime": (True, MOUNT_ATTR_NODIRATIME),
    "rrelatime": (False, MOUNT_ATTR_RELATIME), "rnorelatime": (True, MOUNT_ATTR_RELATIME),
    "rnoatime": (False, MOUNT_ATTR_NOATIME), "ratime": (True, MOUNT_ATTR_NOATIME),
    "rstrictatime": (False, MOUNT_ATTR_STRICTATIME), "rnostrictatime": (True, MOUNT_ATTR_STRICTATIME),
    "rnosymfollow": (False, MOUNT_ATTR_NOSYMFOLLOW), "rsymfollow": (True, MOUNT_ATTR_NOSYMFOLLOW),
}

# Options that are pyrunc's business, not the kernel's.
EXTENSIONS = {"tmpcopyup"}

# Flags a bind mount only takes on a remount.
BIND_REMOUNT_FLAGS = (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME
                      | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME | MS_NOSYMFOLLOW)


ATIME_FLAGS = MS_NOATIME | MS_RELATIME | MS_STRICTATIME
# Flags the kernel locks on the mounts a new user namespace's mount namespace copies.
LOCKABLE_FLAGS = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NODIRATIME | ATIME_FLAGS
_ST_RELATIME = 4096  # statvfs's ST_RELATIME; its other ST_* values are the MS_* ones


def from_statvfs(f_flag):
    """statvfs().f_flag as MS_* flags (the lockable ones)."""
    flags = f_flag & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME)
    if f_flag & _ST_RELATIME:
        flags |= MS_RELATIME
    return flags


class MountOptions:
    __slots__ = ("flags", "propagation", "data", "extensions", "rec_set", "rec_clr", "cleared")

    def __init__(self, flags, propagation, data, extensions, rec_set=0, rec_clr=0, cleared=0):
        self.flags = flags
        self.cleared = cleared  # flags an option explicitly turned off ("rw", "suid", ...)
        self.propagation = propagation
        self.data = data
        self.extensions = extensions
        self.rec_set = rec_set  # mount_setattr attr_set / attr_clr for the recursive options
        self.rec_clr = rec_clr

    @property
    def recursive(self):
        return bool(self.rec_set or self.rec_clr)


def parse(options):
    flags = 0
    propagation = []
    data = []
    extensions = set()
    rec_set = rec_clr = cleared = 0
    for opt in options or ():
        if opt in RECURSIVE:
            clear, attr = RECURSIVE[opt]
            if clear:
                rec_clr |= attr
            else:
                rec_set |= attr
                if attr & MOUNT_ATTR__ATIME == attr:
                    # mount_setattr(2): an access-time setting also needs the whole
                    # MOUNT_ATTR__ATIME field in attr_clr (rrelatime's attribute is 0)
                    rec_clr |= MOUNT_ATTR__ATIME
        elif opt in FLAGS:
            clear, flag = FLAGS[opt]
            flags = flags & ~flag if clear else flags | flag
            cleared = cleared | flag if clear else cleared & ~flag
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        elif opt in EXTENSIONS:
            extensions.add(opt)
        else:
            data.append(opt)
    return MountOptions(flags, propagation, ",".join(data), extensions, rec_set, rec_clr, cleared)
