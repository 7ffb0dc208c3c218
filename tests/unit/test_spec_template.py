"""`pyrunc spec` writes runc's template (issue 11): the same document as `runc spec` but for
the values spec/default.py documents (ociVersion, hostname)."""

import json
import os
import subprocess

import pytest

from pyrunc.spec.default import default_config

RUNC = "/usr/sbin/runc"


def test_default_config_is_runcs_template(tmp_path):
    if not os.path.exists(RUNC):
        pytest.skip("Debian's runc is not installed")
    subprocess.run([RUNC, "spec"], cwd=tmp_path, check=True)
    runc = json.loads((tmp_path / "config.json").read_text())
    ours = default_config()
    assert (runc.pop("ociVersion"), ours.pop("ociVersion")) == ("1.0.2-dev", "1.0.2")
    assert (runc.pop("hostname"), ours.pop("hostname")) == ("runc", "pyrunc")
    # the same keys in the same order, all the way down, and the same values
    assert json.dumps(ours, indent=1) == json.dumps(runc, indent=1)


def test_default_config_has_no_cgroup_namespace():
    assert "cgroup" not in [ns["type"] for ns in default_config()["linux"]["namespaces"]]
