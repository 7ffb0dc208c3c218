"""linux.seccomp -> a BPF program, compiled on the host with pyseccomp and cached.

Importing pyseccomp costs ~26 ms here (it runs find_library), and engines send the same
profile for every container, so the compiled program is cached in pyrunc's own cache
(state/cache.py: /var/cache/pyrunc/seccomp for root, never under --root), keyed by the
profile's hash. The shim loads the bytes with seccomp(2); it never imports
pyseccomp.
"""

import errno
import hashlib
import os

from .. import jsonio
from ..errors import ConfigError
from ..linux.seccomp import FLAG_NEW_LISTENER, FLAGS

CACHE_FORMAT = "1"
ARCHES = {
    "SCMP_ARCH_X86": "X86", "SCMP_ARCH_X86_64": "X86_64", "SCMP_ARCH_X32": "X32",
    "SCMP_ARCH_ARM": "ARM", "SCMP_ARCH_AARCH64": "AARCH64", "SCMP_ARCH_MIPS": "MIPS",
    "SCMP_ARCH_MIPS64": "MIPS64", "SCMP_ARCH_MIPS64N32": "MIPS64N32", "SCMP_ARCH_MIPSEL": "MIPSEL",
    "SCMP_ARCH_MIPSEL64": "MIPSEL64", "SCMP_ARCH_MIPSEL64N32": "MIPSEL64N32",
    "SCMP_ARCH_PPC": "PPC", "SCMP_ARCH_PPC64": "PPC64", "SCMP_ARCH_PPC64LE": "PPC64LE",
    "SCMP_ARCH_S390": "S390", "SCMP_ARCH_S390X": "S390X", "SCMP_ARCH_PARISC": "PARISC",
    "SCMP_ARCH_PARISC64": "PARISC64", "SCMP_ARCH_RISCV64": "RISCV64",
}
OPS = {"SCMP_CMP_NE": "NE", "SCMP_CMP_LT": "LT", "SCMP_CMP_LE": "LE", "SCMP_CMP_EQ": "EQ",
        "SCMP_CMP_GE": "GE", "SCMP_CMP_GT": "GT", "SCMP_CMP_MASKED_EQ": "MASKED_EQ"}
# The actions _action() knows (features lists them without importing pyseccomp).
ACTIONS = ("SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
           "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP")
_NR_SCMP_ERROR = -1
EPERM = 1


class Program:
    """A compiled filter: what the shim needs to load it."""
    __slots__ = ("bpf", "flags", "listener_path", "listener_metadata")

    def __init__(self, bpf, flags, listener_path, listener_metadata):
        self.bpf = bpf
        self.flags = flags
        self.listener_path = listener_path
        self.listener_metadata = listener_metadata


def program_for(seccomp, cache=None):
    """The compiled Program for a linux.seccomp object, from the cache when possible (cache:
    get(name) -> bytes or None, put(name, bytes); state/cache.py TrustedCache)."""
    flags = 0
    for i, name in enumerate(seccomp.get("flags") or ()):
        if name not in FLAGS:
            raise ConfigError(f"config.json: linux.seccomp.flags[{i}]: {name!r} is not one of "
                              + ", ".join(f'"{f}"' for f in FLAGS))
        flags |= FLAGS[name]
    uses_notify = seccomp.get("defaultAction") == "SCMP_ACT_NOTIFY" or any(
        r.get("action") == "SCMP_ACT_NOTIFY" for r in seccomp.get("syscalls") or ())
    if uses_notify:
        # runc's InitSeccomp refuses both: the init would hang writing to its own listener
        # (nobody answers before the fd is handed over), or trap every syscall at once
        if seccomp.get("defaultAction") == "SCMP_ACT_NOTIFY":
            raise ConfigError("unable to start container process: unable to init seccomp: "
                              "SCMP_ACT_NOTIFY cannot be used as default action")
        if any(r.get("action") == "SCMP_ACT_NOTIFY" and "write" in (r.get("names") or ())
               for r in seccomp.get("syscalls") or ()):
            raise ConfigError("unable to start container process: unable to init seccomp: "
                              "SCMP_ACT_NOTIFY cannot be used for the write syscall")
        if not seccomp.get("listenerPath"):
            raise ConfigError("config.json: linux.seccomp.listenerPath: required when a rule uses "
                              "SCMP_ACT_NOTIFY")
        flags |= FLAG_NEW_LISTENER
    elif seccomp.get("listenerPath") is None and seccomp.get("listenerMetadata"):
        raise ConfigError("config.json: linux.seccomp.listenerMetadata: needs listenerPath")
    program = Program(None, flags, seccomp.get("listenerPath"), seccomp.get("listenerMetadata", ""))
    program.bpf = _cached_bpf(seccomp, cache)
    return program


def _cached_bpf(seccomp, cache):
    """The BPF program from the cache (state/cache.py TrustedCache: an entry is used only if
    pyrunc wrote it, so nobody can plant an allow-all program under the predictable key), or
    compiled and cached."""
    rules = {k: seccomp.get(k) for k in ("defaultAction", "defaultErrnoRet", "architectures", "syscalls")}
    key = hashlib.sha256((CACHE_FORMAT + os.uname().machine + jsonio.dumps(
        rules, sort_keys=True)).encode()).hexdigest()
    name = key + ".bpf"
    bpf = cache.get(name) if cache is not None else None
    if bpf is None:
        bpf = compile_bpf(seccomp)
        if cache is not None:
            cache.put(name, bpf)
    return bpf


def _action(sc, name, errno_ret, field):
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        ret = EPERM if errno_ret is None else errno_ret
        return (sc.ERRNO if name == "SCMP_ACT_ERRNO" else sc.TRACE)(ret)
    simple = {"SCMP_ACT_KILL": sc.KILL, "SCMP_ACT_KILL_THREAD": sc.KILL_THREAD,
              "SCMP_ACT_KILL_PROCESS": sc.KILL_PROCESS, "SCMP_ACT_TRAP": sc.TRAP,
              "SCMP_ACT_ALLOW": sc.ALLOW, "SCMP_ACT_LOG": sc.LOG, "SCMP_ACT_NOTIFY": sc.NOTIFY}
    if name not in simple:
        raise ConfigError(f"config.json: {field}: {name!r} is not a seccomp action")
    return simple[name]


def compile_bpf(seccomp):
    """Build the filter with libseccomp (through pyseccomp) and return its BPF bytes."""
    import tempfile

    import pyseccomp as sc

    default = _action(sc, seccomp["defaultAction"], seccomp.get("defaultErrnoRet"),
                      "linux.seccomp.defaultAction")
    filt = sc.SyscallFilter(default)
    for i, arch in enumerate(seccomp.get("architectures") or ()):
        attr = ARCHES.get(arch)
        if attr is None or not hasattr(sc.Arch, attr):
            raise ConfigError(f"config.json: linux.seccomp.architectures[{i}]: {arch!r} is not "
                              f"supported by libseccomp on this host")
        try:
            filt.add_arch(getattr(sc.Arch, attr))
        except OSError as e:
            if e.errno != errno.EEXIST:  # the native arch is always there
                raise ConfigError(f"config.json: linux.seccomp.architectures[{i}]: {arch}: "
                                  f"{(e.strerror or str(e)).lower()}") from None
    for i, rule in enumerate(seccomp.get("syscalls") or ()):
        field = f"linux.seccomp.syscalls[{i}]"
        action = _action(sc, rule["action"], rule.get("errnoRet"), field + ".action")
        if action == default:
            continue  # libseccomp refuses rules that repeat the default action; runc skips them
        conditions = []
        for j, a in enumerate(rule.get("args") or ()):
            op = OPS.get(a["op"])
            if op is None:
                raise ConfigError(f"config.json: {field}.args[{j}].op: {a['op']!r} is not one of "
                                  + ", ".join(f'"{o}"' for o in OPS))
            conditions.append(sc.Arg(a["index"], getattr(sc, op), a["value"], a.get("valueTwo", 0)))
        indexes = [a["index"] for a in rule.get("args") or ()]
        # libseccomp allows one comparison per argument in a rule: with repeats, runc adds
        # one rule per condition (they then match as OR).
        groups = [[c] for c in conditions] if len(set(indexes)) < len(indexes) else [conditions]
        for name in rule["names"]:
            nr = sc.resolve_syscall(sc.Arch.NATIVE, name)
            if nr == _NR_SCMP_ERROR:
                continue  # unknown to libseccomp for this arch: skipped, as runc does
            for group in groups:
                try:
                    filt.add_rule(action, nr, *group)
                except OSError as e:
                    raise ConfigError(f"config.json: {field}: adding the rule for {name!r} failed: "
                                      f"{(e.strerror or str(e)).lower()}") from None
    with tempfile.TemporaryFile() as out:
        filt.export_bpf(out)
        out.seek(0)
        return out.read()
