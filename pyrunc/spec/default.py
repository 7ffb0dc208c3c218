"""The config.json `pyrunc spec` writes: runc 1.1's template (a minimal, locked-down container
running sh), key for key. Two values differ on purpose: ociVersion (runc writes "1.0.2-dev", a
pre-release of the version it implements) and the hostname ("pyrunc" for "runc"). Like runc's,
the template has no cgroup namespace: configs built on it add one without "listed twice"."""

from ..version import TEMPLATE_VERSION

MASKED_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def default_config(rootfs="rootfs", args=("sh",), terminal=True):
    return {
        "ociVersion": TEMPLATE_VERSION,  # the oldest 1.x (pyrunc/version.py)
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            # runc lists ambient caps without inheritable ones: the kernel raises none
            "capabilities": {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": True},
        "hostname": "pyrunc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


def to_rootless(config, euid, egid):
    """runc's specconv.ToRootless: what `spec --rootless` writes for a non-root user. No
    network namespace (a user cannot plumb one) and a new user namespace mapping container
    root to the caller alone; no uid=/gid= mount options (gid 5 is not mapped); /sys a
    read-only rbind of the host's (sysfs cannot be mounted without the network namespace's
    owner); no linux.resources (a user may not write cgroups). Key order as runc prints it."""
    linux = config["linux"]
    namespaces = [ns for ns in linux["namespaces"] if ns["type"] not in ("network", "user")]
    namespaces.append({"type": "user"})
    mounts = []
    for m in config["mounts"]:
        if m["destination"].rstrip("/") == "/sys":
            mounts.append({"destination": "/sys", "type": "none", "source": "/sys",
                           "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
            continue
        if "options" in m:
            m = dict(m, options=[o for o in m["options"] if not o.startswith(("gid=", "uid="))])
        mounts.append(m)
    config["mounts"] = mounts
    rest = {k: v for k, v in linux.items() if k not in ("resources", "namespaces")}
    config["linux"] = {
        "uidMappings": [{"containerID": 0, "hostID": euid, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": egid, "size": 1}],
        "namespaces": namespaces, **rest,
    }
    return config
