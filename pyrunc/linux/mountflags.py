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

# Options that are pyrunc's business, not the kernel's.
EXTENSIONS = {"tmpcopyup"}

# Flags a bind mount only takes on a remount.
BIND_REMOUNT_FLAGS = (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME
                      | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME | MS_NOSYMFOLLOW)


class MountOptions:
    __slots__ = ("flags", "propagation", "data", "extensions")

    def __init__(self, flags, propagation, data, extensions):
        self.flags = flags
        self.propagation = propagation
        self.data = data
        self.extensions = extensions


def parse(options):
    flags = 0
    propagation = []
    data = []
    extensions = set()
    for opt in options or ():
        if opt in FLAGS:
            clear, flag = FLAGS[opt]
            flags = flags & ~flag if clear else flags | flag
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        elif opt in EXTENSIONS:
            extensions.add(opt)
        else:
            data.append(opt)
    return MountOptions(flags, propagation, ",".join(data), extensions)
