"""The verbs engines call on every container import none of the expensive modules.

Not a timing test: it records which modules a real call loaded (the launcher's `python -IS`
and path, then pyrunc's main) and fails when one of HEAVY shows up, e.g. after someone adds
`import json` at the top of a module on the path (see docs/ARCHITECTURE.md, "The hot path").
"""

import os
import sys

import pytest
from helpers import Runner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# ~13 ms together (json pulls in re, re and signal pull in enum), subprocess ~16 ms more,
# pyseccomp ~26 ms (a seccomp cache hit must not load it), socket ~4 ms, copy (weakref,
# copyreg) ~1.3 ms, threading and locale (subprocess's) ~1 ms
HEAVY = {"json", "re", "enum", "signal", "subprocess", "pyseccomp", "socket", "jsonschema", "pyroute2",
         "jeepney", "copy", "weakref", "threading", "locale", "dataclasses", "typing"}
# what only create (manager_for) and update (set) need: the verbs after create rebuild the
# manager from the state and read, freeze or remove
CGROUP_SETTERS = {"pyrunc.cgroups.layout", "pyrunc.cgroups.v1", "pyrunc.cgroups.v2",
                  "pyrunc.cgroups.values", "pyrunc.cgroups.devices"}
# and what `state` (every engine's status poll), `start` and a missing id need at all: no
# cgroup Manager (the freezer read only), no signal names, no shim
NOT_FOR_STATE = {"pyrunc.cgroups.manager", "pyrunc.runtime.cgroup_ops", "pyrunc.runtime.signals",
                 "pyrunc.cgroups.freezer", "pyrunc.cgroups.fsio", "pyrunc.cgroups.errors",
                 "pyrunc.shim", "pyrunc.rootless", "select", "ctypes"}

DRIVER = """\
import sys
modules_file = sys.argv.pop(1)
sys.path += [{root!r}, {site!r}]
from pyrunc.cli.main import main
try:
    code = main()
finally:
    with open(modules_file, "a") as f:
        f.write(" ".join(sorted(sys.modules)) + "\\n")
sys.stdout.flush()
sys.stderr.flush()
import os
os._exit(code)
"""


@pytest.fixture
def traced(tmp_path):
    """A Runner like `pyrunc` whose calls append the modules they loaded to .modules_file."""
    import sysconfig
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(root=ROOT, site=sysconfig.get_paths()["purelib"]))
    modules = tmp_path / "modules"
    runner = Runner([sys.executable, "-IS", str(driver), str(modules)], str(tmp_path / "pyrunc-root"))
    runner.modules_file = modules
    yield runner
    runner.cleanup()


def loaded(runner):
    """The modules of the last call."""
    return set(runner.modules_file.read_text().splitlines()[-1].split())


def engine_like_config(b):
    """What docker sends on every container: a prestart hook and a seccomp profile."""
    b.config["hooks"] = {"prestart": [{"path": "/bin/true", "args": ["true"]}]}
    b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                          "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    b.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    return b.write()


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="jsonio drives CPython's _json")
def test_engine_verbs_stay_light(traced, make_bundle, cid, tmp_path):
    b = engine_like_config(make_bundle("sleep", "30"))
    # the first create compiles the seccomp profile (pyseccomp may load): the cache's miss
    assert traced("create", "--bundle", b.path, cid + "-warm").rc == 0
    assert traced("delete", "--force", cid + "-warm").rc == 0

    calls = [("create", "--bundle", b.path, "--pid-file", str(tmp_path / "pid"), cid),
             ("start", cid),
             ("exec", "--detach", "--pid-file", str(tmp_path / "exec.pid"), cid, "true"),
             ("kill", cid, "15"),
             ("delete", "--force", cid),
             ("delete", "--force", cid),  # the second, as the shim's cleanup sends it
             ("state", "nosuch")]
    calls[2:2] = [("state", cid), ("kill", cid, "CONT"), ("pause", cid), ("resume", cid),
                  ("ps", cid), ("events", "--stats", cid), ("list",)]
    for args in calls:
        r = traced(*args)
        assert r.rc == (1 if args[1:] == ("nosuch",) else 0), (args, r.err)
        modules = loaded(traced)
        heavy = modules & HEAVY
        assert not heavy, f"`pyrunc {args[0]}` imported {sorted(heavy)}"
        if args[0] != "create":
            # exec's attach-lock warmer finds our own cgroup with layout.py (runtime/attachlock.py)
            setters = modules & CGROUP_SETTERS - ({"pyrunc.cgroups.layout"} if args[0] == "exec" else set())
            assert not setters, f"`pyrunc {args[0]}` imported {sorted(setters)}"
        if args[0] in ("state", "start", "list"):
            extra = modules & NOT_FOR_STATE
            assert not extra, f"`pyrunc {' '.join(args[:2])}` imported {sorted(extra)}"


def test_the_test_sees_imports(traced):
    """The check itself: `spec` pretty-prints with json, and the trace shows it."""
    os.makedirs(traced.root, exist_ok=True)
    r = traced("spec", "--bundle", traced.root)
    assert r.rc == 0, r.err
    assert "json" in loaded(traced)
