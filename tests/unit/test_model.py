"""spec/model.py: the typed model built from a validated config.json (engines' real configs and
`pyrunc spec`'s template): every field the runtime reads comes out as config.json has it, and
the spec's/runc's defaults apply where a field is missing."""

import copy
import glob
import json
import os
import time

import pytest

from pyrunc.spec import model, schema, semantic
from pyrunc.spec.default import default_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINE_CONFIGS = os.path.join(os.path.dirname(ROOT), "shared", "engine-configs")
if not os.path.isdir(ENGINE_CONFIGS):
    ENGINE_CONFIGS = os.environ.get("PYRUNC_ENGINE_CONFIGS", "/work/shared/engine-configs")
FULL = sorted(p for p in glob.glob(os.path.join(ENGINE_CONFIGS, "*.json"))
              if not p.endswith((".process.json", ".resources.json")))


def _validated(config):
    schema.validate(config, "config", "config.json")
    semantic.check_config(config)
    return config


def _engine(name):
    with open(os.path.join(ENGINE_CONFIGS, name)) as f:
        return _validated(json.load(f))


needs_engine_configs = pytest.mark.skipif(not FULL, reason="no engine configs on this machine")


def _check_against(config, spec):
    """Every field the runtime reads, compared with the dict (the JSON spelling)."""
    p, sp = config["process"], spec.process
    assert spec.oci_version == config["ociVersion"]
    assert spec.root.path == config["root"]["path"]
    assert spec.root.readonly == bool(config["root"].get("readonly"))
    assert spec.hostname == config.get("hostname")
    assert spec.domainname == config.get("domainname")
    assert spec.annotations == (config.get("annotations") or {})
    assert sp.args == p["args"] and sp.cwd == p["cwd"] and sp.env == (p.get("env") or [])
    assert sp.terminal == bool(p.get("terminal"))
    assert sp.user.uid == p["user"]["uid"] and sp.user.gid == p["user"].get("gid", 0)
    assert sp.user.additional_gids == (p["user"].get("additionalGids") or [])
    assert sp.user.umask == p["user"].get("umask", 0o022)
    assert sp.capabilities == p.get("capabilities")
    assert [(r.type, r.soft, r.hard) for r in sp.rlimits] == \
        [(r["type"], r["soft"], r["hard"]) for r in p.get("rlimits") or ()]
    assert sp.no_new_privileges == bool(p.get("noNewPrivileges"))
    assert sp.apparmor_profile == (p.get("apparmorProfile") or None)
    assert sp.selinux_label == (p.get("selinuxLabel") or None)
    assert sp.oom_score_adj == p.get("oomScoreAdj")
    assert [(m.destination, m.type, m.source, m.options) for m in spec.mounts] == \
        [(m["destination"], m.get("type"), m.get("source"), m.get("options") or [])
         for m in config.get("mounts") or ()]
    linux, sl = config.get("linux") or {}, spec.linux
    assert [(ns.type, ns.path) for ns in sl.namespaces] == \
        [(ns["type"], ns.get("path")) for ns in linux.get("namespaces") or ()]
    for ours, theirs in ((sl.uid_mappings, linux.get("uidMappings")),
                         (sl.gid_mappings, linux.get("gidMappings"))):
        assert [(m.container_id, m.host_id, m.size) for m in ours] == \
            [(m["containerID"], m["hostID"], m["size"]) for m in theirs or ()]
    assert [(d.path, d.type, d.major, d.minor, d.file_mode, d.uid, d.gid) for d in sl.devices] == \
        [(d["path"], d["type"], d.get("major", 0), d.get("minor", 0), d.get("fileMode", 0o666),
          d.get("uid", 0), d.get("gid", 0)) for d in linux.get("devices") or ()]
    assert sl.resources == (linux.get("resources") or {})
    assert sl.cgroups_path == linux.get("cgroupsPath")
    assert sl.rootfs_propagation == (linux.get("rootfsPropagation") or None)
    assert sl.masked_paths == (linux.get("maskedPaths") or [])
    assert sl.readonly_paths == (linux.get("readonlyPaths") or [])
    assert sl.mount_label == (linux.get("mountLabel") or None)
    assert sl.sysctl == (linux.get("sysctl") or {})
    if linux.get("seccomp") is None:
        assert sl.seccomp is None
    else:
        assert sl.seccomp.raw is linux["seccomp"]
        assert sl.seccomp.default_action == linux["seccomp"]["defaultAction"]
        assert sl.seccomp.listener_path == linux["seccomp"].get("listenerPath")
    hooks = config.get("hooks") or {}
    for name in model.Hooks.NAMES:
        assert [(h.path, h.args, h.env, h.timeout) for _, h in spec.hooks.named(name)] == \
            [(h["path"], h.get("args") or [], h.get("env") or [], h.get("timeout"))
             for h in hooks.get(name) or ()]
    assert spec.hooks.any() == any(hooks.get(n) for n in model.Hooks.NAMES)


@needs_engine_configs
@pytest.mark.parametrize("path", FULL, ids=os.path.basename)
def test_engine_configs(path):
    with open(path) as f:
        config = _validated(json.load(f))
    _check_against(config, model.build(config))


def test_default_spec():
    config = _validated(default_config())
    spec = model.build(config)
    _check_against(config, spec)
    assert spec.process.terminal and spec.process.no_new_privileges
    assert spec.root.readonly and spec.root.path == "rootfs"
    assert spec.new_namespace("mount") and not spec.new_namespace("cgroup")
    assert spec.has_namespace("pid") and not spec.has_namespace("user")


@needs_engine_configs
def test_docker_fields():
    spec = model.build(_engine("docker--run-rm-echo-hi.json"))
    assert spec.process.args == ["echo", "hi"]
    assert spec.process.capabilities is not None and "CAP_CHOWN" in spec.process.capabilities["bounding"]
    assert spec.linux.seccomp is not None and spec.linux.seccomp.default_action == "SCMP_ACT_ERRNO"
    assert [h.path for _, h in spec.hooks.named("prestart")] == [spec.hooks.prestart[0].path]
    assert "/proc/kcore" in spec.linux.masked_paths
    assert {ns.type for ns in spec.linux.namespaces} >= {"mount", "network", "pid"}


@needs_engine_configs
def test_userns_maps():
    spec = model.build(_engine("docker-userns--run-rm.json"))
    assert [(m.container_id, m.host_id, m.size) for m in spec.linux.uid_mappings] == [(0, 100000, 65536)]
    assert spec.new_namespace("user")


def test_defaults():
    """What runc reads as zero (its Go structs are not pointers), and the absent = None fields."""
    config = _validated({"ociVersion": "1.0.2", "root": {"path": "rootfs"},
                         "process": {"cwd": "/", "args": ["sh"]}})
    spec = model.build(config)
    p = spec.process
    assert (p.user.uid, p.user.gid, p.user.umask, p.user.additional_gids) == (0, 0, 0o022, [])
    assert p.env == [] and p.rlimits == [] and not p.terminal and not p.no_new_privileges
    assert p.capabilities is None and p.oom_score_adj is None and p.console_size is None
    assert p.io_priority is None and p.scheduler is None
    assert p.apparmor_profile is None and p.selinux_label is None
    assert spec.mounts == [] and spec.hostname is None and spec.domainname is None
    assert spec.annotations == {} and not spec.hooks.any() and not spec.root.readonly
    sl = spec.linux
    assert sl.namespaces == [] and sl.devices == [] and sl.resources == {} and sl.sysctl == {}
    assert sl.cgroups_path is None and sl.rootfs_propagation is None and sl.mount_label is None
    assert sl.seccomp is None and sl.personality is None and sl.time_offsets == {}
    assert sl.masked_paths == [] and sl.readonly_paths == []


def test_optional_parts():
    config = _validated({
        "ociVersion": "1.2.0", "root": {"path": "rootfs"}, "hostname": "",
        "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 5, "umask": 0},
                    "consoleSize": {"height": 24, "width": 80}, "oomScoreAdj": 0,
                    "capabilities": {}, "ioPriority": {"class": "IOPRIO_CLASS_IDLE"},
                    "scheduler": {"policy": "SCHED_BATCH", "nice": 3, "flags": ["SCHED_FLAG_RECLAIM"]}},
        "linux": {"namespaces": [{"type": "time"}, {"type": "uts"}, {"type": "mount"}],
                  "timeOffsets": {"monotonic": {"secs": 7}}, "personality": {"domain": "LINUX32"},
                  "devices": [{"type": "c", "path": "/dev/x", "major": 1, "minor": 3}],
                  "rootfsPropagation": "rshared"}})
    spec = model.build(config)
    p = spec.process
    assert (p.user.uid, p.user.gid, p.user.umask) == (5, 0, 0)  # umask 0 is not the default
    assert (p.console_size.height, p.console_size.width) == (24, 80)
    assert p.oom_score_adj == 0 and p.capabilities == {}  # {}: drop every capability
    assert (p.io_priority.io_class, p.io_priority.priority) == ("IOPRIO_CLASS_IDLE", 0)
    s = p.scheduler
    assert (s.policy, s.nice, s.priority, s.flags, s.runtime, s.deadline, s.period) == \
        ("SCHED_BATCH", 3, 0, ["SCHED_FLAG_RECLAIM"], 0, 0, 0)
    assert spec.hostname == ""  # set (to empty), not left alone
    off = spec.linux.time_offsets["monotonic"]
    assert (off.secs, off.nanosecs) == (7, 0)
    assert spec.linux.personality.domain == "LINUX32"
    d = spec.linux.devices[0]
    assert (d.file_mode, d.uid, d.gid) == (0o666, 0, 0)
    assert spec.linux.rootfs_propagation == "rshared"


def test_exec_process_document():
    """`exec --process` builds a Process through the same model."""
    path = os.path.join(ENGINE_CONFIGS, "docker--exec-it-tty.process.json")
    if not os.path.exists(path):
        pytest.skip("no engine configs on this machine")
    with open(path) as f:
        doc = json.load(f)
    schema.validate(doc, "config#/$defs/process", "process")
    semantic.check_process(doc, "process")
    p = model.build_process(doc)
    assert p.terminal and p.args == doc["args"] and p.cwd == doc["cwd"]
    assert p.user.uid == doc["user"]["uid"]


def test_model_does_not_change_the_dict():
    config = _validated(default_config())
    before = copy.deepcopy(config)
    spec = model.build(config)
    spec.process.env.append("X=1")
    spec.mounts.pop()
    assert config == before  # state.json records the dict as it was


def test_build_is_cheap():
    """create builds the model on every call: well under 0.5 ms for docker's config."""
    path = os.path.join(ENGINE_CONFIGS, "docker--run-rm-echo-hi.json")
    config = _engine(os.path.basename(path)) if os.path.exists(path) else _validated(default_config())
    best = min(_timed(model.build, config) for _ in range(20))
    assert best < 0.0005, f"{best * 1e6:.0f} us"


def _timed(fn, arg):
    t = time.perf_counter()
    fn(arg)
    return time.perf_counter() - t


def test_exec_flags_build_the_same_model():
    """exec without --process: the container's process with the flags' overrides (runc's
    getProcess), checked as a document, then built like create's."""
    from pyrunc.runtime.exec import process_from_flags
    base = _validated(default_config())["process"]
    doc = process_from_flags(base, ["id"], cwd="/tmp", env=["A=1"], user="1000:100",
                             additional_gids=["5"], caps=["CAP_NET_ADMIN"], no_new_privs=False)
    semantic.check_process(doc, "exec")
    p = model.build_process(doc)
    assert p.args == ["id"] and p.cwd == "/tmp" and p.env[-1] == "A=1"
    assert (p.user.uid, p.user.gid, p.user.additional_gids) == (1000, 100, [5])
    assert "CAP_NET_ADMIN" in p.capabilities["bounding"] and not p.no_new_privileges
    assert not p.terminal  # --tty not given
    assert base["args"] == ["sh"]  # the container's own process is not changed


def test_mount_kinds():
    bind = model.Mount({"destination": "/x", "type": "bind", "source": "/src", "options": ["rbind"]})
    assert bind.is_bind() and model.Mount({"destination": "/y", "options": ["bind"]}).is_bind()
    proc = model.Mount({"destination": "/proc", "type": "proc"})
    assert not proc.is_bind() and proc.source is None and proc.options == []
