"""Every snippet of docs/engines.md, read out of the markdown (so the page and the test cannot
drift): TOML and JSON parse with the structure the engine reads, the containerd configuration
is loaded by a real containerd on top of Debian's own file, the shell lines run."""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from bundle import make_bundle  # noqa: E402

PAGE = os.path.join(ROOT, "docs", "engines.md")
LAUNCHER = "/usr/local/bin/pyrunc"  # where the snippets say make install puts it
CRI = "io.containerd.grpc.v1.cri"


def snippets(language):
    with open(PAGE) as f:
        text = f.read()
    return [body for lang, body in re.findall(r"^```(\w*)\n(.*?)^```", text, re.M | re.S) if lang == language]


def one(language, marker):
    (found,) = [s for s in snippets(language) if marker in s]
    return found


def test_every_snippet_is_checked_here():
    """A new snippet (or language) must get its check in this file."""
    counts = {lang: len(snippets(lang)) for lang in ("sh", "json", "toml", "yaml")}
    assert counts == {"sh": 1, "json": 1, "toml": 2, "yaml": 1}
    with open(PAGE) as f:
        langs = set(re.findall(r"^```(\w+)\n", f.read(), re.M))
    assert langs == {"sh", "json", "toml", "yaml"}
    with open(PAGE) as f:  # no link or path out of the repository
        assert "/work/" not in f.read()


def test_docker_daemon_json():
    doc = json.loads(one("json", "runtimes"))
    assert doc == {"runtimes": {"pyrunc": {"path": LAUNCHER}}}


def test_podman_containers_conf():
    doc = tomllib.loads(one("toml", "[engine]"))
    engine = doc["engine"]
    assert engine["runtime"] == "pyrunc"
    # a key of [engine], not a runtime of [engine.runtimes]
    assert "pyrunc" in engine["runtime_supports_json"] and "runc" in engine["runtime_supports_json"]
    assert engine["runtimes"] == {"pyrunc": [LAUNCHER]}


def test_kubernetes_runtime_class_names_the_containerd_handler():
    lines = dict(line.split(": ", 1) for line in one("yaml", "RuntimeClass").splitlines()
                 if ": " in line and not line.startswith(" "))
    assert lines == {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "handler": "pyrunc"}
    runtimes = tomllib.loads(one("toml", CRI))["plugins"][CRI]["containerd"]["runtimes"]
    assert lines["handler"] in runtimes


def test_install_shell_lines(tmp_path):
    """The `pyrunc ...` lines, run with this checkout's launcher as `pyrunc` (make install is
    tests/integration/test_install.py's)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(os.path.join(ROOT, "bin", "pyrunc"), bindir / "pyrunc")
    bundle = str(tmp_path / "bundle")
    make_bundle(bundle, args=["true"])
    lines = [line.split("#")[0].strip() for line in one("sh", "make install").splitlines()]
    assert lines[0].startswith("make install")
    ran = 0
    for line in lines[1:]:
        argv = [bundle if w == "BUNDLE" else w for w in shlex.split(line)]
        r = subprocess.run(argv, env={"PATH": f"{bindir}:/usr/bin:/bin"}, capture_output=True, text=True,
                           timeout=60, cwd="/")
        assert r.returncode == 0, (line, r.stderr)
        ran += 1
    assert ran == 3


@pytest.mark.skipif(not os.path.exists("/usr/bin/containerd") or not os.path.exists("/usr/bin/ctr")
                    or os.geteuid() != 0, reason="needs containerd and ctr (make setup-engines), as root")
def test_containerd_cri_snippet_added_to_debians_config_loads(tmp_path):
    """Debian's /etc/containerd/config.toml plus the snippet: containerd starts with the CRI
    plugin loaded ("ok"), with both runtimes. With only the pyrunc table (the page's old
    snippet) the plugin fails: "no corresponding runtime configured"."""
    snippet = one("toml", CRI)
    debian = "/etc/containerd/config.toml"
    base = open(debian).read() if os.path.exists(debian) else 'version = 2\n'
    assert base.startswith("version = 2")
    sock = str(tmp_path / "containerd.sock")
    # private root, state and sockets: never the host's containerd (or the engine tests')
    top = f'root = "{tmp_path}/root"\nstate = "{tmp_path}/state"\n'
    tail = f'[grpc]\n  address = "{sock}"\n[ttrpc]\n  address = "{sock}.ttrpc"\n'
    conf = tmp_path / "config.toml"
    conf.write_text(base.replace("version = 2\n", "version = 2\n" + top, 1) + tail + snippet)
    dump = subprocess.run(["/usr/bin/containerd", "--config", str(conf), "config", "dump"],
                          capture_output=True, text=True, timeout=30)
    assert dump.returncode == 0, dump.stderr
    runtimes = tomllib.loads(dump.stdout)["plugins"][CRI]["containerd"]["runtimes"]
    assert runtimes["pyrunc"]["options"]["BinaryName"] == LAUNCHER and "runc" in runtimes
    with open(tmp_path / "containerd.log", "w") as log:
        daemon = subprocess.Popen(["/usr/bin/containerd", "--config", str(conf)], stdout=log, stderr=log)
    try:
        status = None
        deadline = time.monotonic() + 30
        while status is None and time.monotonic() < deadline:
            r = subprocess.run(["/usr/bin/ctr", "-a", sock, "plugins", "ls"], capture_output=True, text=True,
                               timeout=10)
            rows = [line.split() for line in r.stdout.splitlines()]
            status = next((row[-1] for row in rows if row[:2] == ["io.containerd.grpc.v1", "cri"]), None)
            time.sleep(0.2)
        assert status == "ok", (tmp_path / "containerd.log").read_text()[-2000:]
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=20)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(timeout=10)
        with open("/proc/self/mountinfo") as f:
            for mount in [line.split()[4] for line in f if str(tmp_path) in line.split()[4]][::-1]:
                subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(tmp_path / "state", ignore_errors=True)
