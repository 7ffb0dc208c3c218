"""Checks JSON Schema cannot express: versions, consistency between fields."""

import os

from ..errors import ConfigError
from ..goparse import is_digits
from ..linux import sysctlnames
from ..version import SUPPORTED_MAJOR, SUPPORTED_MINOR_MAX

_SEMVER_TAG = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.-")


def _semver(version):
    """(major, minor, patch) of MAJOR.MINOR.PATCH[-pre][+build], or None. (No `re`: its import
    costs milliseconds on every create.)"""
    core, plus, build = version.partition("+")
    core, dash, pre = core.partition("-")
    if (plus and not (build and _SEMVER_TAG.issuperset(build))) or \
            (dash and not (pre and _SEMVER_TAG.issuperset(pre))):
        return None
    parts = core.split(".")
    if len(parts) != 3 or not all(is_digits(p) for p in parts):
        return None
    return tuple(int(p) for p in parts)


def failer(source, report=None):
    """fail(field, message): raises ConfigError "<source>: <field>: <message>", or, given a
    report list (`pyrunc validate`), appends (source, field, message) and lets the checks go on."""
    def fail(field, message):
        if report is None:
            raise ConfigError(f"{source}: {field}: {message}")
        report.append((source, field, message))
    return fail


def check_config(config, report=None):
    """Raise for the first problem, or with `report` (a list) collect every one."""
    _fail = failer("config.json", report)
    version = config["ociVersion"]
    v = _semver(version)
    if not v or v[0] != SUPPORTED_MAJOR or v[1] > SUPPORTED_MINOR_MAX:
        _fail("ociVersion", f"{version!r} is not supported (pyrunc accepts 1.0.0 through "
                            f"1.{SUPPORTED_MINOR_MAX}.x)")
    if "root" not in config:
        _fail("root", "is required")
    if "process" not in config:
        _fail("process", "is required to create a container")
        return
    process = config["process"]
    if not process.get("args"):
        _fail("process.args", "must contain at least the program to run")
    if not os.path.isabs(process["cwd"]):
        _fail("process.cwd", f"{process['cwd']!r} is not an absolute path")
    check_process(process, report=report)
    _check_linux(config, config.get("linux") or {}, _fail, report)


def absolute_destinations(config):
    """runc 1.1 still takes a relative mount destination as relative to the rootfs' "/", with
    a warning: rewrite each to that absolute path; the warnings, in runc's words."""
    warnings = []
    for m in config.get("mounts") or ():
        if not m["destination"].startswith("/"):
            warnings.append(f"mount destination {m['destination']} is not absolute. Support for "
                            "non-absolute mount destinations will be removed in a future release.")
            m["destination"] = os.path.normpath("/" + m["destination"])
    return warnings


# The rlimits setrlimit(2) knows (resource.RLIMIT_* on Linux), without importing `resource`.
RLIMITS = frozenset(("RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE",
                     "RLIMIT_LOCKS", "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE",
                     "RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING",
                     "RLIMIT_STACK"))
MAX_ERRNO = 4095
NO_ID = 4294967295  # (uid_t)-1: setresuid/setgroups read it as "leave unchanged", never an id


def process_defaults(process):
    """Fill in what runc reads as zero when it is missing (its Go structs are not pointers):
    process.user (uid 0, gid 0), process.user.gid, process.ioPriority.priority."""
    user = process.setdefault("user", {"uid": 0, "gid": 0})
    user.setdefault("gid", 0)
    if process.get("ioPriority"):
        process["ioPriority"].setdefault("priority", 0)


def check_process(process, source="config.json", report=None):
    """Values the schema lets through but the syscalls taking them cannot (also for exec's
    --process): each one named, before anything is created. Fills in process_defaults first."""
    fail = failer(source, report)
    process_defaults(process)

    user = process["user"]
    for key in ("uid", "gid"):
        if user[key] == NO_ID:
            fail(f"process.user.{key}", f"{NO_ID} is (uid_t)-1, not an id: the kernel would leave "
                                        f"the {key} unchanged (root)")
    for i, gid in enumerate(user.get("additionalGids") or ()):
        if gid == NO_ID:
            fail(f"process.user.additionalGids[{i}]", f"{NO_ID} is (gid_t)-1, not a group id")
    if user.get("umask", 0) > 0o777:
        fail("process.user.umask", f"{user['umask']} is not a file mode mask (at most 0777 = 511)")
    seen: dict[str, int] = {}
    for i, r in enumerate(process.get("rlimits") or ()):
        kind = r["type"]
        if kind not in RLIMITS:
            fail(f"process.rlimits[{i}].type", f"unknown rlimit type {kind!r}")
        if kind in seen:
            fail(f"process.rlimits[{i}].type", f"{kind} is also process.rlimits[{seen[kind]}] "
                                               "(each type at most once)")
        seen[kind] = i
        if r["soft"] > r["hard"]:
            fail(f"process.rlimits[{i}]", f"{r['type']}: soft limit {r['soft']} is greater than the hard "
                                          f"limit {r['hard']}")
    size = process.get("consoleSize")
    for key in ("height", "width"):
        if size and size[key] > 65535:
            fail(f"process.consoleSize.{key}", f"{size[key]} does not fit a terminal's size (at most 65535)")


def _check_linux(config, linux, _fail, report):
    seen = set()
    for i, ns in enumerate(linux.get("namespaces") or []):
        if ns["type"] in seen:
            _fail(f"linux.namespaces[{i}]", f"the {ns['type']} namespace is listed twice")
        seen.add(ns["type"])
        if ns.get("path") and not os.path.isabs(ns["path"]):
            _fail(f"linux.namespaces[{i}].path", f"{ns['path']!r} is not an absolute path")
    new_ns = {ns["type"] for ns in linux.get("namespaces") or [] if not ns.get("path")}
    _check_user_namespace(linux, seen, new_ns, _fail, report)
    if linux.get("timeOffsets") and "time" not in new_ns:
        _fail("linux.timeOffsets", "needs a new time namespace (linux.namespaces has no \"time\" "
                                   "without a path)")
    joined = {ns["type"]: ns["path"] for ns in linux.get("namespaces") or [] if ns.get("path")}
    for field in ("hostname", "domainname"):
        if config.get(field) is not None and "uts" not in seen:
            _fail(field, f"setting the {field} needs a uts namespace (linux.namespaces)")
        if config.get(field) is not None and _is_ours(joined.get("uts"), "uts"):
            _fail(field, f"the uts namespace joined by path is pyrunc's own: setting the {field} "
                         "would change the host's")
        if len(config.get(field) or "") > 64:
            _fail(field, f"{len(config[field])} characters is longer than the kernel's 64")
    for key in linux.get("sysctl") or {}:
        _check_sysctl(key, seen, joined, _fail)
    if linux.get("rootfsPropagation") and "mount" not in new_ns | seen:
        _fail("linux.rootfsPropagation", "needs a mount namespace")
    for field in ("maskedPaths", "readonlyPaths"):
        for i, path in enumerate(linux.get(field) or []):
            if not os.path.isabs(path):
                _fail(f"linux.{field}[{i}]", f"{path!r} is not an absolute path")
    for i, d in enumerate(linux.get("devices") or []):
        # runc creates a device anywhere in the rootfs (a relative path from "/"); only one
        # that names the rootfs itself is nothing it could make
        if os.path.normpath("/" + d["path"]) == "/":
            _fail(f"linux.devices[{i}].path", f"{d['path']!r} names the root directory, not a device")
        # mknod(2)'s dev_t: a 12-bit major and a 20-bit minor
        for key, top in (("major", 4095), ("minor", 1048575)):
            if not 0 <= d.get(key, 0) <= top:
                _fail(f"linux.devices[{i}].{key}", f"{d[key]} is not a device {key} number (0 to {top})")
        if d.get("fileMode", 0) > 0o7777:
            _fail(f"linux.devices[{i}].fileMode", f"{d['fileMode']} is not a permission mode (at most "
                                                  f"07777 = 4095)")
        for key in ("uid", "gid"):
            if d.get(key) == NO_ID:
                _fail(f"linux.devices[{i}].{key}", f"{NO_ID} is -1, not an id")
    seccomp = linux.get("seccomp") or {}
    # SECCOMP_RET_ERRNO carries the errno in 16 bits and libseccomp refuses any above
    # MAX_ERRNO; its error ("invalid argument") would name nothing.
    if seccomp.get("defaultErrnoRet", 0) > MAX_ERRNO:
        _fail("linux.seccomp.defaultErrnoRet", f"{seccomp['defaultErrnoRet']} is not an errno (at most {MAX_ERRNO})")
    for i, rule in enumerate(seccomp.get("syscalls") or ()):
        if rule.get("errnoRet", 0) > MAX_ERRNO:
            _fail(f"linux.seccomp.syscalls[{i}].errnoRet", f"{rule['errnoRet']} is not an errno (at most {MAX_ERRNO})")
        for j, arg in enumerate(rule.get("args") or ()):
            if arg["index"] > 5:
                _fail(f"linux.seccomp.syscalls[{i}].args[{j}].index",
                      f"{arg['index']} is not a syscall argument (0 to 5)")


# runc's rule: only sysctls of a namespace the container has of its own; any other key would
# change the host (vm.*, kernel.* are global). kernel.hostname has the hostname field instead.
_IPC_SYSCTLS = frozenset(("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                          "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"))


def _check_sysctl(key, seen, joined, _fail):
    field = f"linux.sysctl[{key!r}]" if not key.replace(".", "").replace("_", "").isalnum() else \
        f"linux.sysctl.{key}"
    if sysctlnames.relpath(key) is None:
        _fail(field, "is not a valid sysctl name")
        return
    key = sysctlnames.dotted(key)  # "net/ipv4/ip_forward" is net.ipv4.ip_forward too
    if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
        kind, what = "ipc", "an ipc sysctl"
    elif key.startswith("net."):
        kind, what = "network", "a net.* sysctl"
    elif key == "kernel.domainname":
        kind, what = "uts", "kernel.domainname"
    elif key == "kernel.hostname":
        _fail(field, 'sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field')
        return
    else:
        _fail(field, "is not in a separate kernel namespace: it would change the host")
        return
    if kind not in seen:
        _fail(field, f"{what} needs a {kind} namespace of the container's own (linux.namespaces)")
    if _is_ours(joined.get(kind), kind):
        _fail(field, f"the {kind} namespace joined by path is pyrunc's own: {what} would change the host's")


_NS_FILES = {"ipc": "ipc", "network": "net", "uts": "uts"}


def _is_ours(path, kind):
    """Is the namespace at `path` (joined by path) the one pyrunc itself runs in?"""
    if not path:
        return False
    try:
        a, b = os.stat(path), os.stat(f"/proc/self/ns/{_NS_FILES[kind]}")
    except OSError:
        return False  # create reports an unusable namespace path, naming it
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _check_user_namespace(linux, seen, new_ns, _fail, report):
    from ..security.idmap import check
    uid_maps, gid_maps = linux.get("uidMappings") or [], linux.get("gidMappings") or []
    if "user" not in seen:
        for field, maps in (("uidMappings", uid_maps), ("gidMappings", gid_maps)):
            if maps:
                _fail(f"linux.{field}", "id mappings need a user namespace (linux.namespaces has "
                                        "no \"user\")")
        return
    if "user" in new_ns:
        for field, maps in (("uidMappings", uid_maps), ("gidMappings", gid_maps)):
            if not maps:
                _fail(f"linux.{field}", "a new user namespace needs uidMappings and gidMappings")
    else:
        for field, maps in (("uidMappings", uid_maps), ("gidMappings", gid_maps)):
            if maps:
                _fail(f"linux.{field}", "cannot be combined with joining a user namespace by path")
    for maps, field in ((uid_maps, "linux.uidMappings"), (gid_maps, "linux.gidMappings")):
        try:
            check(maps, field)
        except ConfigError as e:  # its text names config.json and the field
            if report is None:
                raise
            report.append((None, None, str(e)))
