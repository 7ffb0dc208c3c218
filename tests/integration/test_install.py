"""Installing pyrunc the two ways a user does, then running a real container from outside the
checkout: `pip install` of the checkout into a fresh venv, and `make install DESTDIR= PREFIX=`.

Both must find the JSON Schemas (package data, not the checkout's specs/), seal their
interpreter (security/exeseal.py), and carry nothing of the checkout or the test extra."""

import os
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from bundle import make_bundle  # noqa: E402

# no PYTHONPATH/PYTHONHOME can help an install find its files
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": "/nonexistent",
       "PYTHONHOME": "/nonexistent"}
TEST_ONLY = ("pytest", "_pytest", "hypothesis", "jsonschema")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="runs containers: needs root"),
    pytest.mark.skipif(not shutil.which("make") or not os.path.exists(os.path.join(ROOT, ".venv", "bin", "python")),
                       reason="needs make and the project's .venv"),
]


def _unseal(path):
    """The seal is a bind mount onto the interpreter copy: detach it before removing the file."""
    for _ in range(5):
        if subprocess.run(["mountpoint", "-q", path]).returncode != 0:
            return
        subprocess.run(["umount", "-l", path], check=False)


def _run_container(launcher, tmp_path, name, env=ENV):
    bundle = str(tmp_path / f"bundle-{name}")
    make_bundle(bundle, args=["sh", "-c", "echo hello from $(hostname)"])
    r = subprocess.run([launcher, "--root", str(tmp_path / f"root-{name}"), "run", "--bundle", bundle,
                        f"inst-{name}"], cwd="/", env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "hello from pyrunc"


def test_pip_install_into_a_fresh_venv(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    start = time.monotonic()
    r = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", ROOT], cwd="/",
                       capture_output=True, text=True, timeout=600)
    took = time.monotonic() - start
    assert r.returncode == 0, r.stderr
    print(f"pip install: {took:.1f} s")
    site = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import pyrunc, os; print(os.path.dirname(pyrunc.__file__))"],
                          cwd="/", capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    assert site.startswith(str(venv))  # the installed copy, not the checkout
    assert sorted(os.listdir(os.path.join(site, "specs"))) == ["config.schema.json", "state.schema.json"]
    # the console script runs /usr/bin/python3.11 (through the venv's symlink): a private seal
    # and a re-exec through it, then the container
    # (a pip console script is not -I: PYTHONHOME would break any python, not only pyrunc)
    _run_container(str(venv / "bin" / "pyrunc"), tmp_path, "pip", env={"PATH": ENV["PATH"]})


def test_make_install_destdir_prefix(tmp_path):
    prefix = str(tmp_path / "prefix")  # where the package manager would unpack it
    dest = str(tmp_path / "dest")
    start = time.monotonic()
    r = subprocess.run(["make", "-s", "-C", ROOT, "install", f"DESTDIR={dest}", f"PREFIX={prefix}"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    print(f"make install: {time.monotonic() - start:.1f} s")
    assert not os.path.exists(prefix)  # DESTDIR staged everything
    shutil.copytree(dest + prefix, prefix, symlinks=True)  # "unpack the package"
    interpreter = os.path.join(prefix, "lib", "pyrunc", "bin", "pyrunc-python")
    try:
        launcher = os.path.join(prefix, "bin", "pyrunc")
        text = open(launcher).read()
        assert text.splitlines()[0] == f"#!{interpreter} -IS"
        assert ROOT not in text and dest not in text
        site = os.path.join(prefix, "lib", "pyrunc", "site-packages")
        installed = os.listdir(site)
        assert "pyrunc" in installed and "prctl.py" in installed
        assert not [n for n in installed if n.split("-")[0].lower() in TEST_ONLY], installed
        assert not os.path.exists(os.path.join(site, "bin"))  # pip's scripts name the checkout's venv
        # byte code names the final paths, not the staging directory
        pyc = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(site, "pyrunc")) for f in fs
               if f.endswith(".pyc")]
        assert pyc and not any(dest.encode() in open(p, "rb").read() for p in pyc)
        v = subprocess.run([launcher, "--version"], cwd="/", env=ENV, capture_output=True, text=True,
                           timeout=30)
        assert v.returncode == 0 and v.stdout.startswith("pyrunc version "), v.stderr
        _run_container(launcher, tmp_path, "make")
        # the first create sealed the installed copy in place (a file of ours, named pyrunc-python)
        assert subprocess.run(["mountpoint", "-q", interpreter]).returncode == 0
    finally:
        _unseal(interpreter)
