"""`make install PREFIX=...` puts a launcher that works from anywhere, with the venv's python -I."""

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.skipif(not shutil.which("make") or not os.path.exists(os.path.join(ROOT, ".venv", "bin", "python")),
                    reason="needs make and the project's .venv")
def test_make_install_prefix(tmp_path):
    prefix = tmp_path / "prefix"
    r = subprocess.run(["make", "-s", "-C", ROOT, "install", f"PREFIX={prefix}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    launcher = prefix / "bin" / "pyrunc"
    assert os.access(launcher, os.X_OK)
    first = launcher.read_text().splitlines()[0]
    assert first == f"#!{os.path.join(ROOT, '.venv', 'bin', 'pyrunc-python')} -IS"  # the sealed copy
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": "/nonexistent", "PYTHONHOME": "/nonexistent"}
    v = subprocess.run([str(launcher), "--version"], cwd="/", env=env, capture_output=True, text=True,
                       timeout=30)
    assert v.returncode == 0, v.stderr
    assert v.stdout.startswith("pyrunc version ")
