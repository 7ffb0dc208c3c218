"""`make bench` works: one round of `run` and `state` on pyrunc alone, and nothing is left behind.
(A benchmark: nothing here looks at the times.)"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_one_round_of_run_and_state(tmp_path):
    before = set(os.listdir("/run"))
    out = tmp_path / "bench.md"
    p = subprocess.run([sys.executable, os.path.join(ROOT, "conformance", "bench.py"), str(tmp_path / "bundle"),
                        "--rounds", "1", "--only", "state,run", "--runtimes", "pyrunc", "--quiet", "--out", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = out.read_text().splitlines()
    assert lines[2].startswith("| verb | runtime | median | p10 | p90 |")
    rows = {line.split("|")[1].strip(): line.split("|")[2:] for line in lines[4:] if line.startswith("| ")}
    assert list(rows) == ["floor", "run", "state"]  # the floor: for state's "− floor"
    assert all(cells[0].strip() == "pyrunc" and cells[1].endswith(" ms ") for cells in rows.values()), lines
    assert rows["state"][5].strip() and not rows["run"][5].strip()  # state minus the floor; run as it is
    assert "failed" not in out.read_text() and "not run" not in out.read_text()
    assert out.read_text() in p.stdout
    assert not [d for d in set(os.listdir("/run")) - before if d.startswith("pyrunc-bench-")]
