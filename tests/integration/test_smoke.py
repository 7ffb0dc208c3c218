import json


def test_run_prints_and_exits_zero(pyrunc, make_bundle, cid):
    b = make_bundle("sh", "-c", "echo hi from $(hostname)")
    r = pyrunc("run", "--bundle", b.path, cid)
    assert (r.rc, r.out) == (0, "hi from pyrunc\n"), r.err


def test_create_start_state_delete(pyrunc, make_bundle, cid, tmp_path, no_leaks):
    b = make_bundle("sleep", "30")
    pidfile = tmp_path / "pid"
    r = pyrunc("create", "--bundle", b.path, "--pid-file", str(pidfile), cid)
    assert r.rc == 0, r.err
    state = json.loads(pyrunc("state", cid).out)
    assert state["status"] == "created"
    assert pidfile.read_text() == str(state["pid"])
    assert pyrunc("start", cid).rc == 0
    assert json.loads(pyrunc("state", cid).out)["status"] == "running"
    assert pyrunc("kill", cid, "KILL").rc == 0
    assert pyrunc("delete", cid).rc == 0


def test_spec_writes_a_config_that_runs(pyrunc, rootfs, tmp_path, cid):
    r = pyrunc("spec", "--bundle", str(tmp_path))
    assert r.rc == 0, r.err
    text = (tmp_path / "config.json").read_text()
    assert text.startswith("{\n\t\"ociVersion\"") and not text.endswith("\n")
    config = json.loads(text)
    config["process"]["terminal"] = False
    config["process"]["args"] = ["echo", "from spec"]
    config["root"]["path"] = rootfs
    (tmp_path / "config.json").write_text(json.dumps(config))
    r = pyrunc("run", "--bundle", str(tmp_path), cid)
    assert (r.rc, r.out) == (0, "from spec\n"), r.err
    again = pyrunc("spec", "--bundle", str(tmp_path))
    assert again.rc == 1 and "File config.json exists. Remove it first" in again.err
