"""Property test: bad input never gives a traceback, a hang or leftovers.

Thousands of mutated config.json files and mutated command lines go through the real CLI
(bin/pyrunc), a few at a time in a small thread pool. Each case must end in one of two ways:

* exit 0 and, for create/run -d, a container (which the test then deletes), or
* a non-zero exit with exactly one line on stderr, naming what was wrong, and no Python
  exception type name ("Traceback", "ValueError", "...Error:") in it;

never a timeout. After every case nothing is left: no entry under --root, no pyrunc:init
holding a file there, no mount under this test's temp dir, no cgroup named after the run.

Hypothesis draws the cases (derandomized: the same cases every run, unless
PYRUNC_PROPERTY_RANDOM=1). PYRUNC_PROPERTY_CONFIGS / PYRUNC_PROPERTY_ARGV set how many,
PYRUNC_PROPERTY_WORKERS the pool size. A summary of outcomes is printed.
"""

import collections
import copy
import glob
import itertools
import json
import os
import queue
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

hypothesis = pytest.importorskip("hypothesis")
from bundle import make_rootfs  # noqa: E402
from helpers import live_inits, mountpoints  # noqa: E402
from hypothesis import HealthCheck, Phase, Verbosity, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pyrunc.cli.commands import COMMANDS  # noqa: E402
from pyrunc.spec.default import default_config  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYRUNC = os.path.join(ROOT, "bin", "pyrunc")
ENGINE_CONFIGS = os.path.join(os.path.dirname(ROOT), "shared", "engine-configs")
if not os.path.isdir(ENGINE_CONFIGS):
    ENGINE_CONFIGS = os.environ.get("PYRUNC_ENGINE_CONFIGS", "/work/shared/engine-configs")

N_CONFIGS = int(os.environ.get("PYRUNC_PROPERTY_CONFIGS", "1000"))
N_ARGV = int(os.environ.get("PYRUNC_PROPERTY_ARGV", "1000"))
WORKERS = int(os.environ.get("PYRUNC_PROPERTY_WORKERS", "3"))
BATCH = 50
TIMEOUT = 30  # seconds for one CLI call: a failing case takes ~0.05 s, a container ~0.1 s

# A Python exception's type name or a traceback: never in a message for people.
PYTHON_NAMES = re.compile(r"Traceback|\b[A-Z][A-Za-z]*(Error|Exception|Warning)\b|Error:|\bErrno\b|"
                          r"\bNoneType\b|object has no attribute|not subscriptable|unhashable")

pytestmark = [pytest.mark.skipif(not os.path.exists(PYRUNC), reason="needs bin/pyrunc (make setup)"),
              pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")]

CG = "@CG@"  # replaced in each case by a cgroup name unique to the run and the case


def hypothesis_settings(examples):
    return settings(max_examples=examples, deadline=None, database=None, verbosity=Verbosity.quiet,
                    derandomize=os.environ.get("PYRUNC_PROPERTY_RANDOM") != "1",
                    phases=(Phase.explicit, Phase.generate),  # failures are listed by the test itself
                    suppress_health_check=list(HealthCheck))


# ---------------------------------------------------------------- the base documents


def base_configs(rootfs, hostfiles):
    """The default config and the engines' real configs, made runnable here: our rootfs,
    `true` as the process, no LSM labels (no LSM on this host), bind sources that exist."""
    bases = {"default": default_config(rootfs=rootfs, args=["true"], terminal=False)}
    bases["default"]["linux"]["cgroupsPath"] = "/" + CG
    for path in sorted(glob.glob(os.path.join(ENGINE_CONFIGS, "*.json"))):
        name = os.path.basename(path)
        if name.endswith((".process.json", ".resources.json")):
            continue
        with open(path) as f:
            doc = json.load(f)
        doc["root"] = {"path": rootfs, "readonly": True}
        p = doc["process"]
        p.update(args=["true"], terminal=False)
        for k in ("apparmorProfile", "selinuxLabel"):
            p.pop(k, None)
        lx = doc.setdefault("linux", {})
        lx.pop("mountLabel", None)
        lx["cgroupsPath"] = "/" + CG
        for ns in lx.get("namespaces") or ():
            ns.pop("path", None)
        doc["hooks"] = {"prestart": [{"path": "/bin/true", "args": ["true"]}]} if doc.get("hooks") else {}
        for m in doc.get("mounts") or ():
            src = m.get("source", "")
            if src.startswith("/") and not os.path.exists(src):
                is_file = os.path.basename(src) in ("resolv.conf", "hostname", "hosts", ".containerenv")
                m["source"] = hostfiles["file" if is_file else "dir"]
        bases[name[:-5]] = doc
    return bases


def nodes(doc, path=()):
    yield path, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from nodes(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from nodes(v, path + (i,))


def get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


# ---------------------------------------------------------------- config mutations

EDGE_INTS = [-1, 0, 1, 7, 8, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63,
             2**64 - 1, 2**64, -2**31, -2**63, -2**63 - 1, 10**30, -10**30, -1000, -1001, 1001, 4095, 4096,
             1048575, 1048576]
NASTY_STRINGS = ["", " ", "\0", "a\0b", "\ud800", "x\udfff", "\udc80abc", "..", ".", "../../..", "/..",
                 "/../../tmp", "rootfs/..", "a" * 5000, "\n", "é", "\u2028", "-", "*", "%s%n", "${HOME}",
                 "/proc/self/fd/0", "/dev/null", "//", "/a//b/./c/..", "loop", "dangling", "file",
                 "rootfs", "relative/path", "/nonexistent/x", "true", "=", "A=", "=x",
                 "SCMP_ACT_BOGUS", "RLIMIT_BOGUS", "IOPRIO_CLASS_BOGUS", "SCHED_BOGUS", "bogus",
                 "CAP_BOGUS", "cap_kill", "c", "b", "p", "u", "rwm", "rwx", "2MB", "0MB", "1.0.2", "2.0.0",
                 "1.0", "", "0", "-1", "99999999999999999999999"]
OTHER_TYPES = ["x", 0, -1, 1.5, True, False, None, [], {}, [None], {"": None}]
DEEP = [63, 64, 65, 200, 100000]

# Whole parts a mutation may add (each also mutated later in the same case, sometimes).
ADDITIONS = [
    (("linux", "sysctl"), {"net.ipv4.ip_forward": "1"}),
    (("linux", "sysctl"), {"kernel.shmmax": "abc"}),
    (("linux", "sysctl"), {"net.ipv4/../../kernel/x": "1"}),
    (("linux", "sysctl"), {"nonexistent.key": "1"}),
    (("linux", "sysctl"), {"": "1"}),
    (("linux", "devices"), [{"type": "c", "path": "/dev/fuzz", "major": 1, "minor": 3}]),
    (("linux", "devices"), [{"type": "b", "path": "/dev/../etc/x", "major": 7, "minor": 0}]),
    (("linux", "devices"), [{"type": "c", "path": "/dev/fuzz", "major": 4096, "minor": 1048576}]),
    (("linux", "devices"), [{"type": "p", "path": "/dev/fifo", "major": 0, "minor": 0, "fileMode": 4294967295}]),
    (("process", "rlimits"), [{"type": "RLIMIT_CORE", "soft": 2, "hard": 1}]),
    (("process", "rlimits"), [{"type": "RLIMIT_NOFILE", "soft": 2**64 - 1, "hard": 2**64 - 1}]),
    (("process", "rlimits"), [{"type": "RLIMIT_NPROC", "soft": 10, "hard": 10},
                              {"type": "RLIMIT_NPROC", "soft": 20, "hard": 20}]),
    (("process", "rlimits"), [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]),
    (("process", "oomScoreAdj"), 1000),
    (("process", "umask"), 4294967295),
    (("process", "user"), {"uid": 4294967295, "gid": 4294967295}),
    (("process", "user"), {"uid": 1000, "gid": 1000, "additionalGids": [4294967295], "umask": 18}),
    (("process", "consoleSize"), {"height": 2**64 - 1, "width": 70000}),
    (("process", "ioPriority"), {"class": "IOPRIO_CLASS_RT", "priority": 7}),
    (("process", "scheduler"), {"policy": "SCHED_FIFO", "priority": 2**31 - 1}),
    (("process", "scheduler"), {"policy": "SCHED_OTHER", "nice": -2**31}),
    (("process", "scheduler"), {"policy": "SCHED_DEADLINE", "runtime": 2**64 - 1, "deadline": 1, "period": 0}),
    (("process", "capabilities"), {"bounding": ["CAP_BOGUS", "CAP_KILL", "CAP_KILL"], "effective": [""]}),
    (("process", "env"), ["NOEQUALS", "=x", "PATH=/nonexistent"]),
    (("process", "cwd"), "/nonexistent/dir"),
    (("process", "cwd"), "/../../.."),
    (("process", "args"), ["", "x"]),
    (("process", "args"), ["/proc/self/exe"]),
    (("linux", "seccomp"), {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "no_such_syscall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 2**32 - 1}]}),
    (("linux", "seccomp"), {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 7, "value": 2**64 - 1, "valueTwo": 2**64 - 1, "op": "SCMP_CMP_MASKED_EQ"}]}]}),
    (("linux", "seccomp"), {"defaultAction": "SCMP_ACT_NOTIFY"}),
    (("linux", "seccomp"), {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/nonexistent.sock",
                            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    (("linux", "seccomp"), {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_S390X"],
                            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}),
    (("linux", "namespaces"), [{"type": "pid"}, {"type": "pid"}]),
    (("linux", "namespaces"), [{"type": "mount"}, {"type": "network", "path": "/nonexistent"},
                               {"type": "ipc", "path": "/dev/null"}, {"type": "uts", "path": "relative"}]),
    (("linux", "namespaces"), [{"type": "mount"}, {"type": "user"}, {"type": "time"}]),
    (("linux", "uidMappings"), [{"containerID": 0, "hostID": 4294967295, "size": 2}]),
    (("linux", "timeOffsets"), {"monotonic": {"secs": -2**63, "nanosecs": 4294967295}}),
    (("linux", "maskedPaths"), ["relative", "/proc/../../..", "/nonexistent", "/proc/self/fd/0"]),
    (("linux", "readonlyPaths"), ["/proc/../etc", "/dangling"]),
    (("linux", "rootfsPropagation"), "private"),
    (("linux", "personality"), {"domain": "LINUX32", "flags": ["BOGUS"]}),
    (("linux", "resources"), {"memory": {"limit": 1, "swap": -2}, "pids": {"limit": -5},
                              "cpu": {"cpus": "999999", "shares": 2**64 - 1, "quota": 1, "period": 1}}),
    (("linux", "resources"), {"devices": [{"allow": True, "type": "c", "major": -5, "minor": 2**63 - 1,
                                           "access": "rwm"}]}),
    (("linux", "resources"), {"blockIO": {"weight": 1, "weightDevice": [{"major": 2**63 - 1, "minor": -1}]},
                              "hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}),
    (("linux", "resources"), {"unified": {"../../x": "1", "memory.max": "bogus", "cgroup.procs": "1"}}),
    (("linux", "resources"), {"rdma": {"x": {"hcaHandles": 4294967295}}, "network": {"classID": 1}}),
    (("linux", "intelRdt"), {"closID": "../x", "l3CacheSchema": "L3:0=f"}),
    (("linux", "cgroupsPath"), CG),
    (("linux", "cgroupsPath"), "../../" + CG),
    (("linux", "cgroupsPath"), "/" + CG + "/../" + CG + "x"),
    (("linux", "cgroupsPath"), "/" + CG + "/" + "a" * 300),
    (("linux", "cgroupsPath"), CG + ":scope:x"),
    (("mounts",), [{"destination": "/../../../tmp/escape", "type": "tmpfs", "source": "tmpfs"}]),
    (("mounts",), [{"destination": "/bin/sh", "type": "bind", "source": "dangling", "options": ["bind"]}]),
    (("mounts",), [{"destination": "/x", "type": "bind", "source": "loop", "options": ["rbind", "ro"]}]),
    (("mounts",), [{"destination": "/proc/self", "type": "proc", "source": "proc"}]),
    (("mounts",), [{"destination": "/x", "type": "bogusfs", "source": "none",
                    "options": ["bogus", "mode=99999999999", "size=-1", "uid=x", "idmap"]}]),
    (("mounts",), [{"destination": "/x", "type": "tmpfs", "options": ["size=" + "9" * 40]}]),
    (("mounts",), [{"destination": "/x", "type": "bind", "source": "file", "options": ["bind"],
                    "uidMappings": [{"containerID": 0, "hostID": 1, "size": 0}]}]),
    (("hooks",), {"prestart": [{"path": "relative"}], "poststop": [{"path": "/nonexistent"}]}),
    (("hooks",), {"createRuntime": [{"path": "/bin/true", "timeout": 2**31 - 1, "env": ["\0"]}]}),
    (("hooks",), {"createContainer": [{"path": "/bin/false"}]}),
    (("hooks",), {"createRuntime": [{"path": "/bin/true", "timeout": 2**31 - 1}],
                  "poststart": [{"path": "/bin/true", "timeout": 2**31 - 1}]}),
    (("annotations",), {"a" * 300: "b" * 10000, "k": "\0"}),
    (("hostname",), "h" * 100),
    (("domainname",), "d" * 100),
    (("ociVersion",), "1.4.0"),
    (("ociVersion",), "0.9.0"),
]

RAW_TEXTS = [b"", b"null", b"[]", b"{}", b"{", b'{"ociVersion": "1.0.2"', b"\xff\xfe{}", b"\xef\xbb\xbf{}",
             b"[" * 100000, b"{" * 50000, b'{"a":' * 70000, b'{"ociVersion": "1.0.2"} trailing',
             b'{"ociVersion": NaN}', b'{"ociVersion": "1.0.2", "process": Infinity}', b"\x00",
             b'"\\ud800"', b'{"ociVersion": "\\u0000"}', b"1e999999"]


_serial = itertools.count()


def _random(draw):
    """A Random for one case: hypothesis' seed mixed with the case's serial number (its draws
    repeat small seeds often, and the same seed would mean the same case); still the same
    sequence of cases on every run."""
    return random.Random(draw(st.integers(0, 2**64)) * 1_000_003 + next(_serial))


@st.composite
def config_cases(draw, bases):
    """(description, config.json bytes, verb). The structure (which base, which node, which
    operation) comes from a Random that hypothesis seeds, so choices are spread evenly (its
    own draws favour the first options); values come from hypothesis' strategies too."""
    rnd = _random(draw)
    # hypothesis' own values, drawn up front: the shape of its draws must not depend on rnd
    ints = draw(st.lists(st.integers(), min_size=3, max_size=3))
    texts = draw(st.lists(st.text(max_size=20), min_size=3, max_size=3))
    if rnd.randrange(25) == 0:
        raw = rnd.choice(RAW_TEXTS)
        return f"raw {raw[:40]!r}", raw, "create"
    name = rnd.choice(sorted(bases))
    doc = copy.deepcopy(bases[name])
    ops = []
    for _ in range(rnd.choice((1, 1, 2, 3))):
        op = rnd.choice(["delete", "retype", "retype", "int", "int", "str", "str", "str", "list", "deep",
                         "add", "add", "add", "add"])
        if op == "add":
            path, value = rnd.choice(ADDITIONS)
            parent = doc
            for p in path[:-1]:
                parent = parent.setdefault(p, {}) if isinstance(parent, dict) else {}
            if isinstance(parent, dict):
                parent[path[-1]] = copy.deepcopy(value)
            ops.append(f"add {'.'.join(path)}={value!r:.80}")
            continue
        paths = [p for p, _ in nodes(doc) if p]
        if not paths:
            break
        if op == "int":
            paths = [p for p in paths if type(get(doc, p)) is int] or paths
        elif op == "str":
            paths = [p for p in paths if isinstance(get(doc, p), str)] or paths
        elif op == "list":
            paths = [p for p in paths if isinstance(get(doc, p), list)] or paths
        path = rnd.choice(paths)
        parent, key = get(doc, path[:-1]), path[-1]
        if op == "delete":
            del parent[key]
            ops.append(f"delete {path}")
            continue
        if op == "list" and isinstance(parent[key], list):
            items = parent[key]
            how = rnd.choice(["empty", "dup", "append", "many"])
            if how == "empty":
                items.clear()
            elif how == "dup" and items:
                items.append(copy.deepcopy(rnd.choice(items)))
            elif how == "append":
                items.append(rnd.choice(OTHER_TYPES + NASTY_STRINGS[:8]))
            elif how == "many" and items:
                items.extend(copy.deepcopy(items[:1]) * 2000)
            ops.append(f"list {how} {path}")
            continue
        if op == "int":
            value = rnd.choice(EDGE_INTS) if rnd.randrange(3) else ints.pop()
        elif op == "str":
            value = rnd.choice(NASTY_STRINGS) if rnd.randrange(3) else texts.pop()
        elif op == "deep":
            value = f"@DEEP{rnd.choice(DEEP)}@"
        else:
            value = rnd.choice(OTHER_TYPES)
        parent[key] = value
        ops.append(f"{op} {path}={value!r:.60}")
    _keep_safe(doc)
    text = json.dumps(doc)  # ASCII: NUL and lone surrogates travel as \u escapes, as in real JSON
    for n in DEEP:
        text = text.replace(f'"@DEEP{n}@"', "[" * n + "]" * n)
    verb = "run" if rnd.randrange(10) == 0 else "create"
    return f"{name}: {'; '.join(ops)}", text.encode(), verb


def _keep_safe(doc):
    """Mutations stay inside the test's own directories: the rootfs is never a host
    directory, cgroups carry the run's name, the process never waits for input."""
    root = doc.get("root")
    if isinstance(root, dict) and isinstance(root.get("path"), str):
        path = root["path"]
        if path.startswith("/") and not path.startswith(tempfile.gettempdir() + "/pyrunc-property-"):
            root["path"] = "dangling"
        elif ".." in path and path != "rootfs/..":
            root["path"] = "dangling"
    lx = doc.get("linux")
    if isinstance(lx, dict) and isinstance(lx.get("cgroupsPath"), str) and CG not in lx["cgroupsPath"]:
        cg = lx["cgroupsPath"]
        if "\0" not in cg and cg.isascii():
            lx["cgroupsPath"] = f"/{CG}/" + cg.replace(".", "_")
    if isinstance(lx, dict) and isinstance(lx.get("namespaces"), list):
        for ns in lx["namespaces"]:
            # joining a host namespace (its mounts, hostname, sysctls) is not for a fuzzer
            if isinstance(ns, dict) and isinstance(ns.get("path"), str) and ns["path"].startswith("/proc"):
                ns["path"] = "/nonexistent"
    if isinstance(lx, dict) and isinstance(lx.get("sysctl"), dict):
        for key in list(lx["sysctl"]):
            if not isinstance(key, str) or not key.startswith(("net.", "kernel.shm", "kernel.msg", "fs.mqueue.",
                                                                 "nonexistent", "")):
                del lx["sysctl"][key]
    hooks = doc.get("hooks")
    if isinstance(hooks, dict):
        for lst in hooks.values():
            for h in lst if isinstance(lst, list) else ():
                if isinstance(h, dict) and isinstance(h.get("path"), str) and \
                        h["path"] not in ("/bin/true", "/bin/false") and "/" in h["path"].strip("/"):
                    h["path"] = "/nonexistent"


# ---------------------------------------------------------------- command-line mutations

BAD_IDS = ["", ".", "..", "a/b", "x" * 300, "-x", "é", "a b", "@cache", "a\nb", "a:b", "--", "\udcff"]
SIGNALS = ["9", "KILL", "SIGKILL", "0", "-1", "99", "SIGFOO", "", "1.5", "9" * 30, "sigterm", "TERM", "SIGSTOP",
           "SIGRTMIN+3", "SIGRTMAX+1"]
EXEC_CMDS = [["true"], ["false"], ["sh", "-c", "exit 7"], [], ["/nonexistent"], ["--", "true"], [""]]
SILENT_STATUS = {0, 1, 7}  # what those commands exit with, saying nothing on stderr


@st.composite
def argv_cases(draw, paths):
    """(description, argv after --root, needs: None|created|running, verb)."""
    rnd = _random(draw)
    words = []
    for _ in range(rnd.choice((0, 0, 1, 2))):
        words += rnd.choice([
            ["--debug"], ["--log", paths["log"]], ["--log", paths["dir"]], ["--log", "/nonexistent/x/y"],
            ["--log-format", "json"], ["--log-format", "xml"], ["--log-format=text"], ["--systemd-cgroup"],
            ["--version"], ["-v"], ["--help"], ["--root", paths["root2"]], ["--root", paths["file"]],
            ["--root"], ["--nosuch"], ["-"], ["--debug=maybe"], ["--root", ""]])
    verb = rnd.choice(sorted(COMMANDS) * 4 + ["help", "h", "bogus", "", "-h", "--", "CREATE"])
    needs = rnd.choice([None, None, None, None, "created", "running"])
    cmd = COMMANDS.get(verb)
    rest = []
    if cmd is not None:
        for _ in range(rnd.choice((0, 1, 1, 2, 3, 4))):
            flag = rnd.choice(cmd.flags) if cmd.flags and rnd.randrange(4) else None
            if flag is None:
                rest += rnd.choice([["--nosuch"], ["-x"], ["--="], ["---bundle", "x"], ["-"], ["--"], ["extra"]])
                continue
            name = rnd.choice(flag.names)
            dash = rnd.choice(("-", "--"))
            value = rnd.choice(_flag_values(flag, paths))
            if flag.kind == "bool":
                rest.append(dash + name + (value if value.startswith("=") else ""))
            elif value is None:
                rest.append(dash + name)  # the value is missing
            elif rnd.randrange(2):
                rest.append(f"{dash}{name}={value}")
            else:
                rest += [dash + name, value]
    cid = rnd.choice(["@C@"] * 6 + ["@NEW@"] * 2 + BAD_IDS + [None])
    tail = []
    if verb == "kill":
        tail = rnd.choice([[]] + [[s] for s in SIGNALS])
    elif verb == "exec":
        tail = rnd.choice(EXEC_CMDS)
    elif verb == "ps":
        tail = rnd.choice([[], ["-ef"], ["-o", "pid"], ["--bogus-ps-flag"]])
    if verb in ("create", "run") and rnd.randrange(2):
        rest += ["--bundle", paths["bundle"]]
    positional = ([cid] if cid is not None else []) + tail
    if cmd is not None and cmd.in_order:
        args = rest + positional
    else:
        at = rnd.randrange(len(rest) + 1)
        args = rest[:at] + positional + rest[at:]
    if rnd.randrange(8) == 0 and args:
        del args[rnd.randrange(len(args))]  # a missing argument, wherever it was
    if verb == "events":  # without --stats `events` streams until the container ends, by design
        args = ["--stats"] + [a for a in args if not a.lstrip("-").startswith("stats")]
    argv = words + ([verb] if verb else []) + args
    return " ".join(argv), argv, needs, verb


def _flag_values(flag, paths):
    if flag.kind == "bool":
        return ["", "", "=true", "=false", "=maybe", "=1"]
    if flag.kind == "int":
        return ["0", "1", "-1", "3", "99999999999999999999", "x", "", "0x10", "1e3", None]
    by_name = {
        "bundle": [paths["bundle"], paths["bundle"], paths["missing"], paths["file"], "", paths["dir"]],
        "pid-file": [paths["pidfile"], paths["dir"], "/nonexistent/dir/pid", "rel.pid", ""],
        "console-socket": ["/nonexistent.sock", paths["file"], paths["dir"], ""],
        "process": [paths["process"], paths["badjson"], paths["deepjson"], paths["missing"], paths["dir"],
                    paths["nuljson"]],
        "resources": [paths["resources"], paths["badjson"], paths["deepjson"], "-", paths["missing"],
                      paths["nuljson"]],
        "interval": ["5s", "0s", "-1s", "x", "1ms", ""],
        "format": ["table", "json", "yaml", ""],
        "cwd": ["/", "relative", "/nonexistent", ""],
        "env": ["A=1", "A", "=x", "", "PATH="],
        "user": ["0", "0:0", "1000:1000", "x", "-1", "4294967295", "0:x", ":", "4294967296:0"],
        "additional-gids": ["1", "x", "-1", "4294967296"],
        "cap": ["CAP_KILL", "CAP_FOO", "kill", ""],
        "cgroup": ["x", "pids:x", ""],
        "apparmor": ["x"], "process-label": ["x"],
        "memory": ["1m", "-1", "x", "9" * 25, "1.5g", "", "-5"],
        "cpuset-cpus": ["0", "x", "999", ""], "cpuset-mems": ["0", "x", ""],
    }
    return by_name.get(flag.names[0], ["0", "1", "-1", "x", "9" * 25, "", "-9" * 3, None])


# ---------------------------------------------------------------- running and judging


class Worker:
    """One --root, bundle and scratch dir: a case runs on one worker at a time."""

    def __init__(self, base, n, rootfs, token):
        self.n = n
        self.dir = os.path.join(base, f"w{n}")
        self.root = os.path.join(self.dir, "root")
        self.root2 = os.path.join(self.dir, "root2")
        self.bundle = os.path.join(self.dir, "bundle")
        self.good = os.path.join(self.dir, "good")
        self.sleeper = os.path.join(self.dir, "sleeper")
        self.cwd = os.path.join(self.dir, "cwd")
        for d in (self.bundle, self.good, self.sleeper, self.cwd):
            os.makedirs(d)
        for b in (self.bundle, self.good, self.sleeper):
            os.symlink(rootfs, os.path.join(b, "rootfs"))
            os.symlink("loop", os.path.join(b, "loop"))
            os.symlink("/nonexistent-pyrunc-fuzz", os.path.join(b, "dangling"))
            open(os.path.join(b, "file"), "w").close()
        self.token = token
        self.seq = 0
        for path, args in ((self.good, ["true"]), (self.sleeper, ["sleep", "60"])):
            cfg = default_config(rootfs="rootfs", args=args, terminal=False)
            with open(os.path.join(path, "config.json"), "w") as f:
                json.dump(cfg, f)
        self.paths = {
            "bundle": self.good, "missing": os.path.join(self.dir, "missing"), "file": os.path.join(self.good, "file"),
            "dir": self.dir, "root2": self.root2, "log": os.path.join(self.dir, "log"),
            "pidfile": os.path.join(self.dir, "pid"), "process": os.path.join(self.dir, "process.json"),
            "resources": os.path.join(self.dir, "resources.json"), "badjson": os.path.join(self.dir, "bad.json"),
            "deepjson": os.path.join(self.dir, "deep.json"), "nuljson": os.path.join(self.dir, "nul.json"),
        }
        with open(self.paths["process"], "w") as f:
            json.dump({"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["true"]}, f)
        with open(self.paths["resources"], "w") as f:
            json.dump({"pids": {"limit": 100}, "memory": {"limit": -1}}, f)
        with open(self.paths["badjson"], "w") as f:
            f.write('{"cwd": "/", "user": ')
        with open(self.paths["deepjson"], "w") as f:
            f.write("[" * 5000 + "]" * 5000)
        with open(self.paths["nuljson"], "w") as f:
            f.write('{"cwd": "/\\u0000", "user": {"uid": 0, "gid": 0}, "args": ["\\ud800"], '
                    '"pids": {"limit": 1}, "cpu": {"cpus": "\\u0000"}}')

    def placeholders(self, arg):
        if arg.startswith("@P:") and arg.endswith("@"):
            return self.paths[arg[3:-1]]
        return arg

    def next_id(self):
        self.seq += 1
        return f"{self.token}-{self.n}-{self.seq}"

    def call(self, argv, root=None, stdin=None):
        cmd = [PYRUNC, "--root", root or self.root, *argv]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            start = time.monotonic()
            try:
                p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=TIMEOUT,
                                   cwd=self.cwd)
                rc = p.returncode
            except subprocess.TimeoutExpired:
                rc = None
            elapsed = time.monotonic() - start
            out.seek(0)
            err.seek(0)
            return rc, out.read().decode(errors="replace"), err.read().decode(errors="replace"), elapsed

    def ids(self, root=None):
        try:
            return sorted(n for n in os.listdir(root or self.root) if not n.startswith("@"))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def clean(self):
        """Delete whatever is there; returns the ids that were."""
        found = []
        for root in (self.root, self.root2):
            for cid in self.ids(root):
                found.append(cid)
                self.call(["delete", "--force", cid], root=root)
                if os.path.isdir(os.path.join(root, cid)):
                    subprocess.run(["rm", "-rf", os.path.join(root, cid)], check=False)
        return found


class Fuzz:
    def __init__(self, base, rootfs):
        self.base = base
        self.token = "fz" + uuid.uuid4().hex[:6]
        self.workers = queue.Queue()
        for n in range(WORKERS):
            self.workers.put(Worker(base, n, rootfs, self.token))
        self.counts = collections.Counter()
        self.messages = collections.Counter()
        self.lock = threading.Lock()
        self.slowest = {}
        self.problems = []

    def run_batch(self, cases, kind):
        """Run the cases; failures are collected (the test asserts at the end, listing all)."""
        with ThreadPoolExecutor(WORKERS) as pool:
            self.problems += [p for p in pool.map(lambda c: self._one(c, kind), cases) if p]

    def _one(self, case, kind):
        w = self.workers.get()
        try:
            return self._run(w, case, kind)
        finally:
            self.workers.put(w)

    def _run(self, w, case, kind):
        problems = []
        cid = w.next_id()
        if kind == "config":
            what, text, verb = case
            with open(os.path.join(w.bundle, "config.json"), "wb") as f:
                f.write(text.replace(CG.encode(), f"{cid}-cg".encode()))
            argv = [verb, "--bundle", w.bundle] + (["--detach"] if verb == "run" and cid.endswith("0") else []) + [cid]
            rc, out, err, elapsed = w.call(argv)
            expect_container = verb == "create" or "--detach" in argv
            silent_ok = set()
        else:
            what, words, needs, verb = case
            if needs:  # a container for the verb to act on
                setup = w.call(["create", "--bundle", w.sleeper if needs == "running" else w.good, cid])
                assert setup[0] == 0, f"setup create failed: {setup[2]}"
                if needs == "running":
                    assert w.call(["start", cid])[0] == 0
            argv = [w.placeholders(a.replace("@C@", cid).replace("@NEW@", cid + "n")) for a in words]
            rc, out, err, elapsed = w.call(argv)
            expect_container = False
            silent_ok = SILENT_STATUS if verb in ("run", "exec") else set()
        with self.lock:
            self.counts[kind] += 1
            if elapsed > self.slowest.get(kind, (0.0, ""))[0]:
                self.slowest[kind] = (elapsed, what[:120])
        if rc is None:
            problems.append(f"timeout after {TIMEOUT}s")
        elif rc == 0:
            with self.lock:
                self.counts[f"{kind}: exit 0"] += 1
            if expect_container:
                if cid not in w.ids():
                    problems.append("exit 0 but no container")
                else:
                    s = w.call(["state", cid])
                    if s[0] != 0 or '"status"' not in s[1]:
                        problems.append(f"exit 0 but `state` fails: {s[2]!r}")
                    d = w.call(["delete", "--force", cid])
                    if d[0] != 0:
                        problems.append(f"delete of the created container failed: {d[2]!r}")
        elif rc in silent_ok and not err:
            with self.lock:
                self.counts[f"{kind}: the process's own status"] += 1
        else:
            problems += self._judge_error(kind, rc, err)
        if kind == "argv":
            w.clean()  # the set-up container and whatever the verb made (create, run -d)
        leftovers = w.clean()
        if leftovers:
            problems.append(f"left behind under --root: {leftovers}")
        problems += self._leaks(w, nested=kind == "config" and (CG + "/").encode() in case[1])
        if problems:
            return f"[{kind}] {what!r:.300}\n    argv={argv!r:.300}\n    rc={rc} err={err!r:.300}\n    " + \
                "\n    ".join(problems)
        return None

    def _judge_error(self, kind, rc, err):
        problems = []
        # warnings (runc's level=warning lines, e.g. an unknown capability) may come first
        err = "".join(line for line in err.splitlines(keepends=True)
                      if 'level=warning msg="' not in line and '"level":"warning"' not in line)
        if err.count("\n") != 1 or not err.endswith("\n"):
            return [f"exit {rc} with {err.count(chr(10))} error lines on stderr (want exactly one)"]
        line = err[:-1]
        if not line.isprintable():
            problems.append("unprintable characters (escape sequences, line separators) in the message")
        m = re.search(r'msg="(.*)"$', line)
        msg = m[1] if m else line
        if m is None and line.startswith("{"):
            try:
                msg = json.loads(line)["msg"]
            except (ValueError, KeyError):
                pass
        if PYTHON_NAMES.search(msg):
            problems.append("a Python exception name in the message")
        if "internal error" in msg:
            problems.append("an internal error (a crash class nobody handled)")
        if kind == "config" and not _names_the_problem(msg):
            problems.append("the message names no field, file or flag")
        with self.lock:
            self.counts[f"{kind}: clean error"] += 1
            self.messages[_shape(msg)] += 1
        return problems

    def _leaks(self, w, nested=False):
        problems = []
        mounts = [m for m in mountpoints() if m.startswith(self.base)]
        if mounts:
            problems.append(f"mounts left: {mounts[:5]}")
            for m in sorted(mounts, reverse=True):
                subprocess.run(["umount", "-l", m], check=False)
        inits = live_inits(w.root) | live_inits(w.root2)
        if inits:
            problems.append(f"container inits left running: {sorted(inits)}")
        mine = [c for c in cgroup_dirs(self.token) if f"{self.token}-{w.n}-" in os.path.basename(c)]
        for top in mine:
            # As runc, delete removes the container's own cgroup, not the parents that a nested
            # cgroupsPath ("/a/b") made: empty parents are no leak, the container's own is.
            busy = []
            for dirpath, _, _ in sorted(os.walk(top), key=lambda t: len(t[0]), reverse=True):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    busy.append(dirpath)
            if busy or not nested:
                problems.append(f"cgroup left: {top}" + (f" (not removable: {busy[:3]})" if busy else ""))
        return problems


FIELD = re.compile(r"\b(ociVersion|process|root|mounts|hooks|annotations|hostname|domainname|linux)"
                   r"(\.\w|\[|:)")


def _names_the_problem(msg):
    """A config error names the field (config.json: <path>, or the field path itself), the
    file, or what the container's init could not do (a path, a mount, a program...)."""
    return "config.json" in msg or FIELD.search(msg) is not None or "/" in msg or \
        "unable to start container process: " in msg


def _shape(msg):
    """A message with its values blanked, to count the kinds of error."""
    msg = re.sub(r'\\?"[^"]*\\?"|\'[^\']*\'|\d+', "_", msg)
    return msg[:110]


def cgroup_dirs(token):
    found = []
    for top in glob.glob("/sys/fs/cgroup/*"):
        if os.path.islink(top) or not os.path.isdir(top):
            continue
        for dirpath, dirnames, _ in os.walk(top):
            for d in dirnames:
                if token in d:
                    found.append(os.path.join(dirpath, d))
    return found


@pytest.fixture(scope="module")
def fuzz():
    # Not under pytest's basetemp: another pytest session on this host resets the mode of
    # /tmp/pytest-of-root to 0700, and a remapped root must be able to walk to the rootfs.
    base = tempfile.mkdtemp(prefix="pyrunc-property-")
    os.chmod(base, 0o711)
    rootfs = make_rootfs(os.path.join(base, "rootfs"))
    hostfiles = {"file": os.path.join(base, "hostfile"), "dir": os.path.join(base, "hostdir")}
    open(hostfiles["file"], "w").close()
    os.mkdir(hostfiles["dir"])
    f = Fuzz(base, rootfs)
    f.bases = base_configs(rootfs, hostfiles)
    # Other test runs on this host (other checkouts, engines) mount things of their own: only
    # new mounts outside those places count (a mount destination escaping the rootfs).
    others = (tempfile.gettempdir() + "/pytest-of-", tempfile.gettempdir() + "/pyrunc-property-", "/work/",
              "/run/", "/var/lib/")
    mounts_before = {m for m in mountpoints() if not m.startswith(others)}
    yield f
    new = {m for m in mountpoints() if not m.startswith(others)} - mounts_before
    if not any(m.startswith(base) for m in mountpoints()):
        shutil.rmtree(base, ignore_errors=True)
    assert not new, f"host mounts appeared: {new}"


def _summary(f, kind):
    lines = [f"\n[property] {kind}: {f.counts[kind]} cases; "
             + ", ".join(f"{k.split(': ', 1)[1]} {v}" for k, v in sorted(f.counts.items())
                         if k.startswith(kind + ": "))
             + "; slowest call {:.2f}s ({})".format(*f.slowest.get(kind, (0.0, "")))]
    lines += [f"    {n:5d}  {shape}" for shape, n in f.messages.most_common(25)]
    return "\n".join(lines)


def test_base_configs_run(fuzz):
    """The documents the mutations start from are valid: each creates a container."""
    w = fuzz.workers.get()
    try:
        for name, doc in sorted(fuzz.bases.items()):
            cid = w.next_id()
            with open(os.path.join(w.bundle, "config.json"), "w") as f:
                f.write(json.dumps(doc).replace(CG, f"{cid}-cg"))
            rc, _, err, _ = w.call(["create", "--bundle", w.bundle, cid])
            w.clean()
            assert rc == 0, f"{name}: {err}"
    finally:
        fuzz.workers.put(w)


def _check(fuzz, kind, capsys):
    with capsys.disabled():
        print(_summary(fuzz, kind))
    problems, fuzz.problems = fuzz.problems, []
    assert not problems, f"{len(problems)} of {fuzz.counts[kind]} {kind} cases failed:\n" + "\n".join(problems[:25])


def test_mutated_configs(fuzz, capsys):
    fuzz.messages.clear()
    fuzz.problems = []

    @hypothesis_settings(max(1, -(-N_CONFIGS // BATCH)))
    @given(st.lists(config_cases(fuzz.bases), min_size=BATCH, max_size=BATCH))
    def prop(cases):
        fuzz.run_batch(cases, "config")

    prop()
    assert fuzz.counts["config"] >= N_CONFIGS
    _check(fuzz, "config", capsys)


def test_mutated_command_lines(fuzz, capsys):
    fuzz.messages.clear()
    fuzz.problems = []
    w = fuzz.workers.get()
    paths = w.paths  # every worker has the same layout; values are rewritten per worker below
    fuzz.workers.put(w)

    @hypothesis_settings(max(1, -(-N_ARGV // BATCH)))
    @given(st.lists(argv_cases({k: "@P:" + k + "@" for k in paths}), min_size=BATCH, max_size=BATCH))
    def prop(cases):
        fuzz.run_batch(cases, "argv")

    prop()
    assert fuzz.counts["argv"] >= N_ARGV
    _check(fuzz, "argv", capsys)
