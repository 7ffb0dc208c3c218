"""conformance/bench.py's statistics, table and options (the benchmark itself: tests/integration/test_bench.py)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "conformance"))
import bench  # noqa: E402


def test_percentile_interpolates_between_order_statistics():
    assert bench.percentile([3.0], 0.9) == 3.0
    assert bench.percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert bench.percentile([float(x) for x in range(11)], 0.1) == pytest.approx(1.0)
    assert bench.percentile([0.0, 10.0], 0.9) == pytest.approx(9.0)
    with pytest.raises(ValueError):
        bench.percentile([], 0.5)


def rows(lines):
    return {tuple(c.strip() for c in line.strip("|").split("|")[:2]): [c.strip() for c in line.strip("|").split("|")]
            for line in lines[2:]}


def test_table_ratios_and_floor():
    samples = {
        "floor": {"pyrunc": [0.010, 0.010, 0.010], "runc": [0.002, 0.002, 0.002]},
        "run": {"pyrunc": [0.080, 0.090, 0.100], "runc": [0.060, 0.060, 0.060]},
        "pause+resume": {"pyrunc": [0.040, 0.040, 0.040], "runc": [0.025, 0.025, 0.025]},
        "kill": {"pyrunc": [0.015, 0.015, 0.015], "runc": [0.010, 0.010, 0.010]},
        "init PSS": {"pyrunc": [8000.0, 9000.0, 10000.0], "runc": [9000.0, 9000.0, 9000.0]},
    }
    t = rows(bench.table(samples, {}, ["pyrunc", "runc"], {"pyrunc"}))
    assert t[("run", "pyrunc")] == ["run", "pyrunc", "90.0 ms", "82.0", "98.0", "1.50", "", ""]  # no floor off run
    assert t[("kill", "pyrunc")][5:] == ["1.50", "5.0", "0.50"]  # 15 - 10 ms of floor, over runc's 10
    assert t[("pause+resume", "pyrunc")][5:] == ["1.60", "20.0", "0.80"]  # two processes: two floors
    assert t[("kill", "runc")][5:] == ["1.00", "", ""]  # runc's own floor is not subtracted
    assert t[("init PSS", "pyrunc")][2:6] == ["9000 KiB", "8200", "9800", "1.00"]


def test_table_reports_failures_a_missing_reference_and_what_did_not_run():
    samples = {"state": {"pyrunc": [0.030], "runc": []}}
    lines = bench.table(samples, {"state": {"runc": 2, "pyrunc": 1}}, ["pyrunc", "runc"], {"pyrunc"},
                        not_run=[("(all)", "crun", "no cgroups")])
    t = rows(lines)
    assert t[("state", "runc")][2] == "failed (2 failed)"
    assert t[("state", "pyrunc")][2:6] == ["30.0 ms (1 failed)", "30.0", "30.0", ""]
    assert t[("(all)", "crun")][2] == "not run: no cgroups"
    assert {line.count("|") for line in lines} == {7}  # no floor measured: six columns


def test_only_keeps_the_order_of_a_round_and_refuses_unknown_verbs(capsys):
    assert bench.parse_args(["--only", "kill,create,state"]).verbs == ["floor", "create", "state", "kill"]
    assert bench.parse_args(["--only", "run,cycle"]).verbs == ["run", "cycle"]  # nothing to subtract a floor from
    with pytest.raises(SystemExit):
        bench.parse_args(["--only", "stat"])
    assert "unknown verb(s) stat" in capsys.readouterr().err


def test_other_launchers_get_a_label(tmp_path):
    args = bench.parse_args(["--pyrunc", "/work/wt/before/bin/pyrunc", "--pyrunc", "/x/y/bin/pyrunc", "--label", "old"])
    assert args.extra == [("old", "/work/wt/before/bin/pyrunc"), ("pyrunc-y", "/x/y/bin/pyrunc")]


def test_the_floor_is_the_launchers_interpreter(tmp_path):
    launcher = tmp_path / "pyrunc"
    launcher.write_text("#!/opt/venv/bin/pyrunc-python -IS\nimport sys\n")
    assert bench.interpreter_floor(str(launcher)) == ["/opt/venv/bin/pyrunc-python", "-IS", "-c", "pass"]
