"""Checks JSON Schema cannot express: versions, consistency between fields."""

import os

from ..errors import ConfigError
from ..goparse import is_digits

SUPPORTED_MAJOR = 1
SUPPORTED_MINOR_MAX = 3
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


def _fail(field, message):
    raise ConfigError(f"config.json: {field}: {message}")


def check_config(config):
    version = config["ociVersion"]
    v = _semver(version)
    if not v or v[0] != SUPPORTED_MAJOR or v[1] > SUPPORTED_MINOR_MAX:
        _fail("ociVersion", f"{version!r} is not supported (pyrunc accepts 1.0.0 through "
                            f"1.{SUPPORTED_MINOR_MAX}.x)")
    if "root" not in config:
        _fail("root", "is required")
    if "process" not in config:
        _fail("process", "is required to create a container")
    process = config["process"]
    if not process.get("args"):
        _fail("process.args", "must contain at least the program to run")
    if not os.path.isabs(process["cwd"]):
        _fail("process.cwd", f"{process['cwd']!r} is not an absolute path")
    for i, m in enumerate(config.get("mounts") or []):
        if not os.path.isabs(m["destination"]):
            _fail(f"mounts[{i}].destination", f"{m['destination']!r} is not an absolute path")
    _check_linux(config, config.get("linux") or {})


def _check_linux(config, linux):
    seen = set()
    for i, ns in enumerate(linux.get("namespaces") or []):
        if ns["type"] in seen:
            _fail(f"linux.namespaces[{i}]", f"the {ns['type']} namespace is listed twice")
        seen.add(ns["type"])
        if ns.get("path") and not os.path.isabs(ns["path"]):
            _fail(f"linux.namespaces[{i}].path", f"{ns['path']!r} is not an absolute path")
    new_ns = {ns["type"] for ns in linux.get("namespaces") or [] if not ns.get("path")}
    _check_user_namespace(linux, seen, new_ns)
    if linux.get("timeOffsets") and "time" not in new_ns:
        _fail("linux.timeOffsets", "needs a new time namespace (linux.namespaces has no \"time\" "
                                   "without a path)")
    if config.get("hostname") is not None and "uts" not in seen:
        _fail("hostname", "setting the hostname needs a uts namespace (linux.namespaces)")
    if config.get("domainname") is not None and "uts" not in seen:
        _fail("domainname", "setting the domainname needs a uts namespace (linux.namespaces)")
    for key in linux.get("sysctl") or {}:
        name = _sysctl_dotted(key)  # "net/ipv4/ip_forward" is net.ipv4.ip_forward too
        if name.startswith("net.") and "network" not in seen:
            _fail(f"linux.sysctl.{key}", "a net.* sysctl needs a network namespace")
        if (name.startswith("kernel.msg") or name.startswith("kernel.sem") or name.startswith("kernel.shm")
                or name.startswith("fs.mqueue.")) and "ipc" not in seen:
            _fail(f"linux.sysctl.{key}", "an ipc sysctl needs an ipc namespace")
        if ".." in key.split("/") or key.startswith("/"):
            _fail(f"linux.sysctl.{key}", "is not a valid sysctl name")
    if linux.get("rootfsPropagation") and "mount" not in new_ns | seen:
        _fail("linux.rootfsPropagation", "needs a mount namespace")
    for field in ("maskedPaths", "readonlyPaths"):
        for i, path in enumerate(linux.get(field) or []):
            if not os.path.isabs(path):
                _fail(f"linux.{field}[{i}]", f"{path!r} is not an absolute path")
    for i, d in enumerate(linux.get("devices") or []):
        if not os.path.isabs(d["path"]) or not os.path.normpath(d["path"]).startswith("/dev/"):
            _fail(f"linux.devices[{i}].path", f"{d['path']!r} must be an absolute path under /dev")


def _sysctl_dotted(key):
    """runc's convertSysctlVariableToDotsSeparator: sysctl(8) also spells keys with "/"."""
    seps = [i for i in (key.find("."), key.find("/")) if i >= 0]
    if not seps or key[min(seps)] == ".":
        return key
    return key.translate(str.maketrans("./", "/."))


def _check_user_namespace(linux, seen, new_ns):
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
    check(uid_maps, "linux.uidMappings")
    check(gid_maps, "linux.gidMappings")
