"""specs/*.schema.json and pyrunc.spec.schema, with jsonschema as the oracle.

The hand-written validator must agree with jsonschema (valid vs invalid, and where) on
the real engine configs and on thousands of documents derived from a valid one.
"""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

jsonschema = pytest.importorskip("jsonschema")

from pyrunc.errors import ConfigError  # noqa: E402
from pyrunc.spec import schema  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO / "specs"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def engine_configs_dir():
    d = Path(__file__).resolve().parents[3] / "shared" / "engine-configs"
    if not d.is_dir() and os.environ.get("PYRUNC_ENGINE_CONFIGS"):
        d = Path(os.environ["PYRUNC_ENGINE_CONFIGS"])
    return d


def load_schema(name):
    return json.loads((SPECS / f"{name}.schema.json").read_text())


ORACLES = {}


def oracle(name="config"):
    """A jsonschema validator for "config", "state" or "config#/$defs/<x>"."""
    if name not in ORACLES:
        base, _, fragment = name.partition("#")
        root = load_schema(base)
        if fragment:
            root = {"$schema": root["$schema"], "$defs": root["$defs"], "$ref": "#" + fragment}
        ORACLES[name] = jsonschema.Draft202012Validator(root)
    return ORACLES[name]


def oracle_paths(doc, name="config"):
    return {tuple(e.absolute_path) for e in oracle(name).iter_errors(doc)}


def our_paths(doc, name="config"):
    return {path for path, _ in schema.iter_errors(doc, name)}


def runc_spec():
    return json.loads((FIXTURES / "runc-spec.json").read_text())


# ---------------------------------------------------------------- (a) the schemas themselves


@pytest.mark.parametrize("name", ["config", "state"])
def test_schema_is_valid_draft_2020_12(name):
    jsonschema.Draft202012Validator.check_schema(load_schema(name))


SCHEMA_VALUED = ("items", "additionalProperties", "propertyNames")
SCHEMA_MAPS = ("properties", "$defs")


def walk_schema(node, where):
    yield where, node
    for k, v in node.items():
        if k in SCHEMA_VALUED and isinstance(v, dict):
            yield from walk_schema(v, f"{where}/{k}")
        elif k in SCHEMA_MAPS:
            for name, sub in v.items():
                yield from walk_schema(sub, f"{where}/{k}/{name}")


@pytest.mark.parametrize("name", ["config", "state"])
def test_schema_uses_only_keywords_the_fast_validator_knows(name):
    root = load_schema(name)
    assert "$id" not in root
    for where, node in walk_schema(root, "#"):
        unknown = set(node) - schema.KEYWORDS
        assert not unknown, f"{where}: {unknown}"
        if "$ref" in node:
            # The validator replaces the node by the target: siblings would be lost.
            assert set(node) == {"$ref"}, where
            assert node["$ref"].startswith("#/$defs/") and node["$ref"][8:] in root["$defs"], where


def test_runc_spec_fixture_is_valid():
    doc = runc_spec()
    schema.validate(doc)
    assert not oracle_paths(doc)


# ---------------------------------------------------------------- (b) real engine configs


def engine_files():
    d = engine_configs_dir()
    return sorted(d.glob("*.json")) if d.is_dir() else []


@pytest.mark.parametrize("path", engine_files() or [None], ids=lambda p: p.name if p else "absent")
def test_engine_config_is_valid(path):
    if path is None:
        pytest.skip("no engine-configs directory (set PYRUNC_ENGINE_CONFIGS)")
    # Partial documents validate against the matching sub-schema.
    if path.name.endswith(".process.json"):
        name = "config#/$defs/process"
    elif path.name.endswith(".resources.json"):
        name = "config#/$defs/linuxResources"
    else:
        name = "config"
    doc = json.loads(path.read_text())
    assert not oracle_paths(doc, name)
    assert not list(schema.iter_errors(doc, name))
    schema.validate(doc, name, path.name)


# ---------------------------------------------------------------- (c) differential


def full_config():
    """A valid config that sets every field the schema describes, so that mutating any of
    its nodes exercises every branch of the schema."""
    doc = runc_spec()
    p = doc["process"]
    p["consoleSize"] = {"height": 25, "width": 80}
    p["user"].update({"umask": 18, "additionalGids": [5, 6], "username": "root"})
    p["commandLine"] = "sh"
    p["capabilities"]["inheritable"] = ["CAP_KILL"]
    p["rlimits"].append({"type": "RLIMIT_CORE", "soft": 0, "hard": 18446744073709551615})
    p.update({
        "apparmorProfile": "docker-default",
        "oomScoreAdj": -500,
        "selinuxLabel": "system_u:system_r:container_t:s0",
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
        "scheduler": {"policy": "SCHED_DEADLINE", "nice": -5, "priority": 0,
                      "flags": ["SCHED_FLAG_RESET_ON_FORK"], "runtime": 1, "deadline": 2, "period": 3},
        "execCPUAffinity": {"initial": "0", "final": "0-3,7"},
    })
    doc["domainname"] = "example.test"
    doc["mounts"].append({"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "idmap"],
                          "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                          "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]})
    hook = {"path": "/bin/true", "args": ["true", "x"], "env": ["A=b"], "timeout": 5}
    doc["hooks"] = {k: [dict(hook)] for k in
                    ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")}
    doc["annotations"] = {"com.example.key": "v", "plain": ""}
    doc["solaris"] = {}
    lx = doc["linux"]
    lx["namespaces"] += [{"type": "user"}, {"type": "time", "path": "/proc/1/ns/time"}]
    lx["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    lx["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    lx["timeOffsets"] = {"monotonic": {"secs": -10, "nanosecs": 5}, "boottime": {"secs": 3}}
    lx["devices"] = [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229,
                      "fileMode": 438, "uid": 0, "gid": 0}]
    lx["netDevices"] = {"eth1": {"name": "ctr0"}}
    lx["cgroupsPath"] = "/pyrunc/test"
    lx["resources"] = {
        "devices": [{"allow": False, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 1, "minor": -1, "access": "rw"}],
        "memory": {"limit": -1, "reservation": 0, "swap": 1 << 30, "kernel": -1, "kernelTCP": -1,
                   "swappiness": 60, "disableOOMKiller": False, "useHierarchy": True, "checkBeforeUpdate": True},
        "cpu": {"shares": 1024, "quota": -1, "burst": 0, "period": 100000, "realtimeRuntime": 950,
                "realtimePeriod": 1000, "cpus": "0-1", "mems": "0", "idle": 0},
        "pids": {"limit": -1},
        "blockIO": {"weight": 500, "leafWeight": 10,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                    "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                    "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 60}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 60}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}],
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
        "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
        "unified": {"io.max": "259:0 rbps=2097152"},
    }
    lx["intelRdt"] = {"closID": "g", "l3CacheSchema": "L3:0=7f0", "memBwSchema": "MB:0=20",
                      "schemata": ["L2:0=f"], "enableCMT": False, "enableMBM": False, "enableMonitoring": True}
    lx["sysctl"] = {"net.ipv4.ip_forward": "1"}
    lx["seccomp"] = {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "listenerPath": "/run/agent.sock", "listenerMetadata": "m",
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
             "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]},
        ],
    }
    lx["rootfsPropagation"] = "rslave"
    lx["mountLabel"] = "system_u:object_r:container_file_t:s0"
    lx["personality"] = {"domain": "LINUX", "flags": []}
    lx["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "0-1", "flags": ["MPOL_F_STATIC_NODES"]}
    return doc


def nodes(doc, path=()):
    """(path, value) for doc and its descendants, parents first. Of a list only the first
    and last items are visited: the others go through the same sub-schema."""
    yield path, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from nodes(v, path + (k,))
    elif isinstance(doc, list):
        for i in sorted({0, len(doc) - 1}) if doc else ():
            yield from nodes(doc[i], path + (i,))


def replaced(doc, path, value=None, delete=False):
    """A copy of doc with the node at path replaced (or deleted); only the containers on
    the path are copied, the rest is shared with doc."""
    top = copy.copy(doc)
    if len(path) > 1:
        top[path[0]] = replaced(doc[path[0]], path[1:], value, delete)
    elif delete:
        del top[path[0]]
    else:
        top[path[0]] = value
    return top


# Stand-ins for what a broken engine might send, by the type of the node they replace:
# other JSON types always; for numbers also the uint16/int32/uint32/int64/uint64
# edges, an integral and a fractional float and the oomScoreAdj/ioPriority edges.
OTHER_TYPES = ["x", 1, True, None, [], {}]
BY_TYPE = {
    str: ["", "SCMP_ACT_FOO", "RLIMIT_nofile", "3XB", "rwx", 1.0],
    bool: [0, 1, "true"],
    int: [0, 1, -1, 7, 8, 1.0, 1.5, 65535, 65536, 4294967295, 4294967296, -1000, -1001, 1001,
          -2147483648, -2147483649, 2147483648, 18446744073709551615, 18446744073709551616,
          -9223372036854775808, -9223372036854775809],
    dict: [{"zzUnknown": 1}, {"": "x"}],
    list: [[1], ["x"], [{}], [None]],
}


def mutations():
    """(top-level section, path changed, anchor, description, document) for many invalid
    (and a few valid) variations of full_config(); every error must lie at or under anchor."""
    base = full_config()
    out = []
    for path, value in nodes(base):
        if not path:
            continue
        for r in OTHER_TYPES + BY_TYPE[type(value)]:
            if r != value or type(r) is not type(value):
                out.append((path[0], path, path, f"replace {path} by {r!r}", replaced(base, path, r)))
        if isinstance(path[-1], str):
            out.append((path[0], path, path[:-1], f"delete {path}", replaced(base, path, delete=True)))
        if isinstance(value, dict):
            # Unknown properties must pass, as the spec says.
            out.append((path[0], path + ("zzUnknown",), path, f"extra key in {path}",
                        replaced(base, path + ("zzUnknown",), 1)))
    for r in OTHER_TYPES + [1.5, {"ociVersion": 1}]:
        out.append(("(root)", (), (), f"root is {r!r}", r))
    return out


MUTATIONS = []


def section_mutations(section):
    if not MUTATIONS:
        MUTATIONS.extend(mutations())
    return [m[1:] for m in MUTATIONS if m[0] == section]


def spine(doc, path, sub):
    """doc cut down to the branch leading to path: at each object on the way only its
    required properties and the one on the path stay (lists stay whole). The cut-away
    parts are valid and no keyword of ours relates sibling properties, so the verdict is
    unchanged; it keeps the jsonschema oracle (~7 ms per full config) affordable."""
    if not path:
        return doc
    k = path[0]
    if isinstance(doc, list):
        out = list(doc)
        out[k] = spine(doc[k], path[1:], sub.get("items") or {})
        return out
    out = {r: doc[r] for r in sub.get("required", ()) if r in doc}
    if k in doc:
        nxt = (sub.get("properties") or {}).get(k) or sub.get("additionalProperties")
        out[k] = spine(doc[k], path[1:], nxt if isinstance(nxt, dict) else {})
    return out


SECTIONS = ["ociVersion", "process", "root", "hostname", "mounts", "linux", "hooks", "annotations",
            "domainname", "solaris", "(root)"]


def test_full_config_is_valid():
    doc = full_config()
    assert not oracle_paths(doc)
    assert not list(schema.iter_errors(doc))


@pytest.mark.parametrize("section", SECTIONS)
def test_differential_against_jsonschema(section):
    resolved = schema._load("config")
    checked = invalid = 0
    mismatches = []
    for path, anchor, what, full in section_mutations(section):
        checked += 1
        doc = spine(full, path, resolved)
        want = oracle_paths(doc)
        got = our_paths(doc)
        if want != got or our_paths(full) != got:
            mismatches.append(f"{what}: jsonschema {sorted(want, key=str)} ours {sorted(got, key=str)}")
            continue
        if any(p[:len(anchor)] != anchor for p in got):
            mismatches.append(f"{what}: error outside {anchor}: {got}")
        try:
            schema.validate(full)
        except ConfigError as e:
            invalid += 1
            first = next(schema.iter_errors(full))[0]
            where = schema.format_path(first)
            prefix = f"config.json: {where}: " if where else "config.json: "
            if first not in want or not str(e).startswith(prefix):
                mismatches.append(f"{what}: {e}")
        else:
            if want:
                mismatches.append(f"{what}: we accept, jsonschema rejects at {want}")
    assert not mismatches, f"{len(mismatches)} of {checked}:\n" + "\n".join(mismatches[:30])
    assert checked > 0 and invalid > 0


def test_spine_keeps_the_verdict():
    """Spot-check the shortcut above: the oracle on whole documents agrees."""
    resolved = schema._load("config")
    for section in SECTIONS:
        for path, _, what, full in section_mutations(section)[::40]:
            assert oracle_paths(full) == oracle_paths(spine(full, path, resolved)), what


def test_mutations_cover_every_enum_and_required():
    """The differential test is only as good as its base document: it must touch every
    enum and every required list in the schema."""
    seen_enum, seen_required = set(), set()
    resolved = schema._load("config")
    enums = {id(n) for _, n in walk_schema(resolved, "#") if "enum" in n}
    reqs = {id(n) for _, n in walk_schema(resolved, "#") if "required" in n}

    def visit(x, s):
        if "enum" in s:
            seen_enum.add(id(s))
        if "required" in s and isinstance(x, dict):
            seen_required.add(id(s))
        if isinstance(x, dict):
            for k, v in x.items():
                sub = s.get("properties", {}).get(k) or s.get("additionalProperties")
                if isinstance(sub, dict):
                    visit(v, sub)
        elif isinstance(x, list) and isinstance(s.get("items"), dict):
            for v in x:
                visit(v, s["items"])

    visit(full_config(), resolved)
    assert enums <= seen_enum
    # process/linuxResources show up under $defs as well; everything reachable is covered.
    assert len(reqs - seen_required) == 0


@pytest.mark.parametrize("name,doc", [
    ("state", {"ociVersion": "1.0.2", "id": "c1", "status": "running", "pid": 42, "bundle": "/b",
               "annotations": {"k": "v"}, "rootfs": "/b/rootfs"}),
    ("state", {"ociVersion": "1.0.2", "id": "c1", "status": "paused", "bundle": "/b"}),
    ("state", {"ociVersion": "1.0.2", "id": "c1", "status": "exploded", "bundle": "/b"}),
    ("state", {"ociVersion": "1.0.2", "id": "", "status": "stopped", "pid": -1}),
    ("state", {"ociVersion": "1.0.2", "id": "c1", "status": "created", "pid": True, "bundle": "/b",
               "annotations": {"": "x", "k": 1}}),
    ("state", []),
    ("config#/$defs/process", {"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": []}),
    ("config#/$defs/linuxResources", {"memory": {"limit": "1g"}, "cpu": {"shares": -2}}),
])
def test_other_schemas_agree_with_jsonschema(name, doc):
    assert our_paths(doc, name) == oracle_paths(doc, name)


# ---------------------------------------------------------------- (d) exact messages


def message(doc, name="config", source="config.json"):
    with pytest.raises(ConfigError) as e:
        schema.validate(doc, name, source)
    return str(e.value)


def test_message_bad_seccomp_action():
    doc = full_config()
    doc["linux"]["seccomp"]["syscalls"][2]["action"] = "SCMP_ACT_FOO"
    assert message(doc) == (
        'config.json: linux.seccomp.syscalls[2].action: "SCMP_ACT_FOO" is not one of "SCMP_ACT_KILL", '
        '"SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", '
        '"SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"')


def test_message_wrong_type():
    doc = runc_spec()
    doc["process"]["user"]["uid"] = "x"
    assert message(doc) == 'config.json: process.user.uid: "x" is not of type integer'


def test_message_boolean_is_not_an_integer():
    doc = runc_spec()
    doc["process"]["user"]["gid"] = True
    assert message(doc) == "config.json: process.user.gid: true is not of type integer"


def test_integral_float_is_an_integer():
    doc = runc_spec()
    doc["process"]["user"]["uid"] = 1000.0
    schema.validate(doc)
    assert oracle().is_valid(doc)


def test_message_missing_required():
    doc = runc_spec()
    del doc["mounts"][0]["destination"]
    assert message(doc) == 'config.json: mounts[0]: "destination" is required'
    assert message({}) == 'config.json: "ociVersion" is required'


def test_message_range_and_pattern():
    doc = runc_spec()
    doc["linux"]["resources"]["memory"] = {"swappiness": -1}
    assert message(doc) == "config.json: linux.resources.memory.swappiness: -1 is less than the minimum of 0"
    doc = runc_spec()
    doc["process"]["rlimits"][0]["type"] = "nofile"
    assert message(doc) == 'config.json: process.rlimits[0].type: "nofile" does not match "^RLIMIT_[A-Z]+$"'
    doc = runc_spec()
    doc["process"]["args"] = []
    assert message(doc) == "config.json: process.args: [] should have at least 1 item"


def test_message_quotes_keys_that_are_not_identifiers():
    doc = runc_spec()
    doc["annotations"] = {"io.example/key": 1}
    assert message(doc) == 'config.json: annotations["io.example/key"]: 1 is not of type string'
    doc["annotations"] = {"": "x"}
    assert message(doc) == 'config.json: annotations: property name "" is shorter than 1 character'


def test_first_error_in_document_order():
    doc = runc_spec()
    doc["process"]["terminal"] = "yes"       # process comes before linux in the file
    doc["linux"]["namespaces"][0]["type"] = "bogus"
    assert message(doc) == 'config.json: process.terminal: "yes" is not of type boolean'
    assert [schema.format_path(p) for p, _ in schema.iter_errors(doc)] == [
        "process.terminal", "linux.namespaces[0].type"]


def test_message_names_the_source_and_schema():
    assert message({"ociVersion": "1", "id": "a", "status": "gone", "bundle": "/b"}, "state", "state.json") == (
        'state.json: status: "gone" is not one of "creating", "created", "running", "stopped", "paused"')
    assert message([], source="/b/config.json") == "/b/config.json: [] is not of type object"


def test_long_values_are_shortened():
    doc = runc_spec()
    doc["hostname"] = ["a" * 200]
    text = message(doc)
    assert text.startswith('config.json: hostname: ["aaaa') and text.endswith("... is not of type string")
    assert len(text) < 150


def test_import_stays_light():
    """The point of the module: importing and using it must not pull in jsonschema (or
    pathlib, which interpreter start does not load either)."""
    code = ("import sys, json; from pyrunc.spec import schema; "
            f"schema.validate(json.load(open({str(FIXTURES / 'runc-spec.json')!r}))); "
            "print(sorted(m for m in ('jsonschema', 'pathlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("text", ["RLIMIT_NOFILE", "RLIMIT_NOFILE\n", "RLIMIT_", "RLIMIT_a", "xRLIMIT_A",
                                  "RLIMIT_A\n\n", "", "\n", "rw", "rwm\n", "rwx", "2MB", "1GB", "0MB",
                                  "12KB", "2MB\n", "2mB", "MB", "1B", "10MBx", "\uff11MB", "1\uff12MB"])
def test_pattern_predicates_agree_with_re(text):
    """The schema's patterns are plain predicates (no `re` import on the hot path): same verdicts."""
    import re

    from pyrunc.spec.schema import _regexes
    for pattern, predicate in _regexes.items():
        assert bool(predicate(text)) == bool(re.search(pattern, text)), (pattern, text)
