"""`pyrunc features`: the runtime-spec features document, checked against the runtime's own
tables and against runc's document (same keys, same shape)."""

import json
import os

import pytest

from pyrunc import SPEC_VERSION
from pyrunc.linux import mountflags
from pyrunc.linux.capabilities import NAMES
from pyrunc.linux.syscalls import NAMESPACES

RUNC_REFERENCE = "/tmp/runcref/features.json"


def _keys(doc, prefix=""):
    """Dotted key paths of the nested objects (annotation keys are the runtime's own)."""
    out = set()
    for k, v in doc.items():
        out.add(prefix + k)
        if isinstance(v, dict) and k != "annotations":
            out |= _keys(v, prefix + k + ".")
    return out


@pytest.fixture
def doc(pyrunc):
    r = pyrunc("features")
    assert r.rc == 0, r.err
    assert r.err == ""
    assert r.out.endswith("}\n")
    parsed = json.loads(r.out)
    assert r.out == json.dumps(parsed, indent=4) + "\n"  # runc's layout: 4 spaces
    return parsed


def test_versions_and_lists(doc):
    assert doc["ociVersionMin"] == "1.0.0"
    assert doc["ociVersionMax"] == SPEC_VERSION
    assert doc["mountOptions"] == sorted(set(mountflags.FLAGS) | set(mountflags.PROPAGATION)
                                         | set(mountflags.EXTENSIONS))
    linux = doc["linux"]
    assert linux["namespaces"] == sorted(NAMESPACES)
    assert linux["capabilities"] == list(NAMES)
    assert linux["cgroup"] == {"v1": True, "v2": True, "systemd": True, "systemdUser": True}
    assert linux["intelRdt"] == {"enabled": False}
    assert isinstance(doc["hooks"], list)


def test_seccomp_matches_libseccomp(doc):
    """Every action, operator and arch listed is one the compiler accepts (pyseccomp here)."""
    import pyseccomp as sc

    from pyrunc.security.seccomp import ARCHES, OPS
    s = doc["linux"]["seccomp"]
    assert s["enabled"] is True
    assert {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_NOTIFY"} <= set(s["actions"])
    from pyrunc.security.seccomp import _action
    for name in s["actions"]:
        assert _action(sc, name, None, "f") is not None, name  # the compiler takes it
    assert s["operators"] == sorted(OPS)
    for arch in s["archs"]:
        assert hasattr(sc.Arch, ARCHES[arch]), arch
    assert set(s["supportedFlags"]) <= set(s["knownFlags"])
    assert "SECCOMP_FILTER_FLAG_TSYNC" in s["supportedFlags"]


def test_lsm_reflects_host(doc):
    from pyrunc.linux import lsm
    assert doc["linux"]["apparmor"] == {"enabled": lsm.apparmor_enabled()}
    assert doc["linux"]["selinux"] == {"enabled": lsm.selinux_enabled()}


def test_annotations(doc):
    from pyrunc import __version__
    ann = doc["annotations"]
    assert ann["io.github.pyrunc.version"] == __version__
    assert ann["io.github.pyrunc.commit"]
    assert all(isinstance(v, str) for v in ann.values())


def test_no_arguments(pyrunc):
    r = pyrunc("features", "extra")
    assert r.rc == 1


def test_hooks_only_when_implemented(doc):
    """The document must not promise hooks the runtime does not run: each listed name is
    used by the code that runs it (create, the init, start or delete)."""
    pkg = os.path.join(os.path.dirname(__file__), "..", "..", "pyrunc")
    source = ""
    for name in ("runtime/hooks.py", "runtime/create.py", "runtime/lifecycle.py", "shim/init.py"):
        try:
            with open(os.path.join(pkg, name)) as f:
                source += f.read()
        except FileNotFoundError:
            pass
    for hook in doc["hooks"]:
        assert f'"{hook}"' in source, hook
    assert len(set(doc["hooks"])) == len(doc["hooks"])


def _runc_doc(runc):
    r = runc("features")
    if r.rc == 0:
        return json.loads(r.out)
    if os.path.exists(RUNC_REFERENCE):
        with open(RUNC_REFERENCE) as f:
            return json.load(f)
    pytest.skip("no runc features output")


def test_differential_key_set(doc, runc):
    """Every key runc prints, pyrunc prints too, with the same JSON types; pyrunc's extra keys
    are runtime-spec 1.1+ fields runc 1.1.5 predates."""
    ref = _runc_doc(runc)
    ours, theirs = _keys(doc), _keys(ref)
    assert theirs - ours == set()
    assert ours - theirs <= {"linux.seccomp.knownFlags", "linux.seccomp.supportedFlags",
                             "linux.intelRdt", "linux.intelRdt.enabled"}
    for path in theirs:
        a, b = doc, ref
        for part in path.split("."):
            a, b = a[part], b[part]
        assert type(a) is type(b), path
    # the recognised names overlap as far as pyrunc implements them
    assert set(doc["linux"]["capabilities"]) == set(ref["linux"]["capabilities"])
    assert set(ref["linux"]["namespaces"]) <= set(doc["linux"]["namespaces"])
    assert set(ref["linux"]["seccomp"]["operators"]) == set(doc["linux"]["seccomp"]["operators"])
    assert set(ref["linux"]["seccomp"]["actions"]) == set(doc["linux"]["seccomp"]["actions"])
    assert set(doc["hooks"]) <= set(ref["hooks"])
