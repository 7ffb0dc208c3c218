"""The typed model of a validated config.json: what the runtime reads of it, by attribute.

Built once, after the schema (spec/schema.py) and the semantic checks (spec/semantic.py) have
passed: load -> schema -> semantic -> `build(config)`. From then on the runtime reads fields
here (`spec.process.user.uid`, `spec.linux.namespaces`), never the dict, so every use of a field
is one grep away and mypy checks it. Attribute names are the JSON names in snake_case
(`noNewPrivileges` -> `no_new_privileges`); a field the spec makes optional gets the default
runc reads when it is missing (its Go structs are not pointers: 0, "", empty lists), except
where "absent" means something of its own: then None (`process.capabilities`: leave the
capabilities alone; `oomScoreAdj`: do not write it; `hostname`: do not set it; ...).

Two fields stay dicts, at the boundary of a typed reader of their own: `linux.resources`
(cgroups/values.py reads it for cgroup v1, v2 and systemd, and `update` merges documents of
it) and `linux.seccomp`'s rules (`Seccomp.raw`: security/seccomp.py hashes the whole object for
its cache and hands the rules to libseccomp). The state record keeps the config dict as
config.json had it (state.json is runc's format, hooks of later verbs read it): a later verb
builds the model again from it (`build(record["config"])`, ~0.1 ms).

Plain classes with `__slots__` (no dataclasses, no `typing` at runtime: create imports this).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Doc = dict[str, Any]

# runc's default umask for the process (libcontainer: 0022 when process.user.umask is unset)
DEFAULT_UMASK = 0o022
# a device node's mode when linux.devices[].fileMode is unset
DEFAULT_DEVICE_MODE = 0o666


class Config:
    __slots__ = ("oci_version", "root", "process", "mounts", "hostname", "domainname",
                 "annotations", "hooks", "linux")
    oci_version: str
    root: Root | None
    process: Process                # required to create (spec/semantic.py)
    mounts: list[Mount]
    hostname: str | None            # None: leave it; "" is set
    domainname: str | None
    annotations: dict[str, str]
    hooks: Hooks
    linux: Linux

    def __init__(self, d: Doc) -> None:
        self.oci_version = d.get("ociVersion") or ""
        root = d.get("root")
        self.root = Root(root) if root is not None else None
        self.process = Process(d.get("process") or {})
        self.mounts = [Mount(m) for m in d.get("mounts") or ()]
        self.hostname = d.get("hostname")
        self.domainname = d.get("domainname")
        self.annotations = d.get("annotations") or {}
        self.hooks = Hooks(d.get("hooks") or {})
        self.linux = Linux(d.get("linux") or {})

    def new_namespace(self, kind: str) -> bool:
        """Is a namespace of this type made (listed without a path)?"""
        return any(ns.type == kind and not ns.path for ns in self.linux.namespaces)

    def has_namespace(self, kind: str) -> bool:
        """Is a namespace of this type made or joined?"""
        return any(ns.type == kind for ns in self.linux.namespaces)


def build(config: Doc) -> Config:
    """The model of a config.json that passed the schema and the semantic checks."""
    return Config(config)


def build_process(process: Doc) -> Process:
    """The model of a process object (`exec --process`, exec's flags) that passed the schema
    and spec/semantic.py check_process."""
    return Process(process)


class Root:
    __slots__ = ("path", "readonly")
    path: str
    readonly: bool

    def __init__(self, d: Doc) -> None:
        self.path = d["path"]
        self.readonly = bool(d.get("readonly"))


class Process:
    __slots__ = ("terminal", "console_size", "user", "args", "env", "cwd", "capabilities",
                 "rlimits", "no_new_privileges", "apparmor_profile", "selinux_label",
                 "oom_score_adj", "io_priority", "scheduler")
    terminal: bool
    console_size: ConsoleSize | None
    user: User
    args: list[str]
    env: list[str]
    cwd: str
    capabilities: dict[str, list[str]] | None  # {set: [names]}; None: leave them alone
    rlimits: list[Rlimit]
    no_new_privileges: bool
    apparmor_profile: str | None
    selinux_label: str | None
    oom_score_adj: int | None       # None: not written
    io_priority: IOPriority | None
    scheduler: Scheduler | None

    def __init__(self, d: Doc) -> None:
        self.terminal = bool(d.get("terminal"))
        size = d.get("consoleSize")
        self.console_size = ConsoleSize(size) if size else None
        self.user = User(d.get("user") or {})
        self.args = list(d.get("args") or ())
        self.env = list(d.get("env") or ())
        self.cwd = d.get("cwd") or "/"
        self.capabilities = d.get("capabilities")
        self.rlimits = [Rlimit(r) for r in d.get("rlimits") or ()]
        self.no_new_privileges = bool(d.get("noNewPrivileges"))
        self.apparmor_profile = d.get("apparmorProfile") or None
        self.selinux_label = d.get("selinuxLabel") or None
        self.oom_score_adj = d.get("oomScoreAdj")
        io = d.get("ioPriority")
        self.io_priority = IOPriority(io) if io else None
        sched = d.get("scheduler")
        self.scheduler = Scheduler(sched) if sched else None


class ConsoleSize:
    __slots__ = ("height", "width")
    height: int
    width: int

    def __init__(self, d: Doc) -> None:
        self.height = d.get("height") or 0
        self.width = d.get("width") or 0


class User:
    __slots__ = ("uid", "gid", "umask", "additional_gids")
    uid: int
    gid: int
    umask: int
    additional_gids: list[int]

    def __init__(self, d: Doc) -> None:
        self.uid = d.get("uid") or 0
        self.gid = d.get("gid") or 0
        umask = d.get("umask")
        self.umask = DEFAULT_UMASK if umask is None else umask
        self.additional_gids = list(d.get("additionalGids") or ())


class Rlimit:
    __slots__ = ("type", "soft", "hard")
    type: str
    soft: int
    hard: int

    def __init__(self, d: Doc) -> None:
        self.type = d["type"]
        self.soft = d["soft"]
        self.hard = d["hard"]


class IOPriority:
    __slots__ = ("io_class", "priority")
    io_class: str                   # "class" in JSON
    priority: int

    def __init__(self, d: Doc) -> None:
        self.io_class = d["class"]
        self.priority = d.get("priority") or 0


class Scheduler:
    __slots__ = ("policy", "nice", "priority", "flags", "runtime", "deadline", "period")
    policy: str
    nice: int
    priority: int
    flags: list[str]
    runtime: int
    deadline: int
    period: int

    def __init__(self, d: Doc) -> None:
        self.policy = d["policy"]
        self.nice = d.get("nice") or 0
        self.priority = d.get("priority") or 0
        self.flags = list(d.get("flags") or ())
        self.runtime = d.get("runtime") or 0
        self.deadline = d.get("deadline") or 0
        self.period = d.get("period") or 0


class Mount:
    __slots__ = ("destination", "type", "source", "options")
    destination: str
    type: str | None
    source: str | None
    options: list[str]

    def __init__(self, d: Doc) -> None:
        self.destination = d["destination"]
        self.type = d.get("type")
        self.source = d.get("source")
        self.options = list(d.get("options") or ())

    def is_bind(self) -> bool:
        return self.type == "bind" or any(o in ("bind", "rbind") for o in self.options)


class Hook:
    __slots__ = ("path", "args", "env", "timeout")
    path: str
    args: list[str]
    env: list[str]
    timeout: int | None

    def __init__(self, d: Doc) -> None:
        self.path = d["path"]
        self.args = list(d.get("args") or ())
        self.env = list(d.get("env") or ())
        self.timeout = d.get("timeout")


class Hooks:
    __slots__ = ("prestart", "create_runtime", "create_container", "start_container",
                 "poststart", "poststop")
    prestart: list[Hook]
    create_runtime: list[Hook]
    create_container: list[Hook]
    start_container: list[Hook]
    poststart: list[Hook]
    poststop: list[Hook]

    # JSON name -> attribute (hook errors name the JSON list: "error running prestart hook #0")
    NAMES = {"prestart": "prestart", "createRuntime": "create_runtime",
             "createContainer": "create_container", "startContainer": "start_container",
             "poststart": "poststart", "poststop": "poststop"}

    def __init__(self, d: Doc) -> None:
        self.prestart = [Hook(h) for h in d.get("prestart") or ()]
        self.create_runtime = [Hook(h) for h in d.get("createRuntime") or ()]
        self.create_container = [Hook(h) for h in d.get("createContainer") or ()]
        self.start_container = [Hook(h) for h in d.get("startContainer") or ()]
        self.poststart = [Hook(h) for h in d.get("poststart") or ()]
        self.poststop = [Hook(h) for h in d.get("poststop") or ()]

    def any(self) -> bool:
        """Is any hook configured?"""
        return bool(self.prestart or self.create_runtime or self.create_container
                    or self.start_container or self.poststart or self.poststop)

    def named(self, *names: str) -> list[tuple[str, Hook]]:
        """[(JSON list name, hook)] of the named lists, in that order."""
        return [(name, h) for name in names for h in getattr(self, self.NAMES[name])]


class Linux:
    __slots__ = ("namespaces", "uid_mappings", "gid_mappings", "time_offsets", "devices",
                 "resources", "cgroups_path", "rootfs_propagation", "masked_paths",
                 "readonly_paths", "mount_label", "sysctl", "seccomp", "personality")
    namespaces: list[Namespace]
    uid_mappings: list[IdMapping]
    gid_mappings: list[IdMapping]
    time_offsets: dict[str, TimeOffset]   # clock name -> offset
    devices: list[Device]
    resources: dict[str, Any]             # read by cgroups/values.py (see the module's text)
    cgroups_path: str | None              # None: runc's default ("<id>" beside our cgroup)
    rootfs_propagation: str | None        # None: rslave
    masked_paths: list[str]
    readonly_paths: list[str]
    mount_label: str | None
    sysctl: dict[str, str]
    seccomp: Seccomp | None
    personality: Personality | None

    def __init__(self, d: Doc) -> None:
        self.namespaces = [Namespace(ns) for ns in d.get("namespaces") or ()]
        self.uid_mappings = [IdMapping(m) for m in d.get("uidMappings") or ()]
        self.gid_mappings = [IdMapping(m) for m in d.get("gidMappings") or ()]
        self.time_offsets = {clock: TimeOffset(o) for clock, o in (d.get("timeOffsets") or {}).items()}
        self.devices = [Device(dev) for dev in d.get("devices") or ()]
        self.resources = d.get("resources") or {}
        self.cgroups_path = d.get("cgroupsPath")
        self.rootfs_propagation = d.get("rootfsPropagation") or None
        self.masked_paths = list(d.get("maskedPaths") or ())
        self.readonly_paths = list(d.get("readonlyPaths") or ())
        self.mount_label = d.get("mountLabel") or None
        self.sysctl = d.get("sysctl") or {}
        seccomp = d.get("seccomp")
        self.seccomp = Seccomp(seccomp) if seccomp is not None else None
        personality = d.get("personality")
        self.personality = Personality(personality) if personality else None


class Namespace:
    __slots__ = ("type", "path")
    type: str                       # the spec's name: "pid", "network", "mount", ...
    path: str | None                # None: a new one

    def __init__(self, d: Doc) -> None:
        self.type = d["type"]
        self.path = d.get("path") or None


class IdMapping:
    __slots__ = ("container_id", "host_id", "size")
    container_id: int
    host_id: int
    size: int

    def __init__(self, d: Doc) -> None:
        self.container_id = d["containerID"]
        self.host_id = d["hostID"]
        self.size = d["size"]


class TimeOffset:
    __slots__ = ("secs", "nanosecs")
    secs: int
    nanosecs: int

    def __init__(self, d: Doc) -> None:
        self.secs = d.get("secs") or 0
        self.nanosecs = d.get("nanosecs") or 0


class Device:
    __slots__ = ("type", "path", "major", "minor", "file_mode", "uid", "gid")
    type: str                       # "c", "b", "u" or "p"
    path: str
    major: int
    minor: int
    file_mode: int
    uid: int
    gid: int

    def __init__(self, d: Doc) -> None:
        self.type = d["type"]
        self.path = d["path"]
        self.major = d.get("major") or 0
        self.minor = d.get("minor") or 0
        mode = d.get("fileMode")
        self.file_mode = DEFAULT_DEVICE_MODE if mode is None else mode
        self.uid = d.get("uid") or 0
        self.gid = d.get("gid") or 0


class Seccomp:
    __slots__ = ("raw", "default_action", "listener_path", "listener_metadata")
    raw: dict[str, Any]             # the whole linux.seccomp: security/seccomp.py compiles it
    default_action: str
    listener_path: str | None
    listener_metadata: str

    def __init__(self, d: Doc) -> None:
        self.raw = d
        self.default_action = d["defaultAction"]
        self.listener_path = d.get("listenerPath")
        self.listener_metadata = d.get("listenerMetadata", "")


class Personality:
    __slots__ = ("domain", "flags")
    domain: str
    flags: list[str]

    def __init__(self, d: Doc) -> None:
        self.domain = d["domain"]
        self.flags = list(d.get("flags") or ())
