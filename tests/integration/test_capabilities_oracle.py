"""linux/capabilities.py replaced python-prctl on the create path (its import cost ~1 ms of every
create): prctl(2) for the bounding set and keep-caps, capset(2) for the three sets. python-prctl
stays installed as the oracle: each case runs in two forked children as root, one through our
calls and one through the library's, and the kernel's view (/proc/self/status) must agree.
"""

import os

import prctl
import pytest

from pyrunc.linux import capabilities as caps

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changes capability sets: root only")

LAST = caps.last_cap()
STATUS_KEYS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


def _in_child(apply):
    """Run apply() in a forked child; returns its /proc/self/status capability lines (and keep-caps)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            os.close(r)
            apply()
            with open("/proc/self/status") as f:
                lines = [line.strip() for line in f if line.split(":")[0] in STATUS_KEYS]
            lines.append(f"keepcaps:{prctl.get_keepcaps()}")
            os.write(w, "\n".join(lines).encode())
            os._exit(0)
        except BaseException as e:  # noqa: BLE001 - reported to the parent as text
            os.write(w, f"error: {type(e).__name__}: {e}".encode())
            os._exit(1)
    os.close(w)
    out = b""
    while chunk := os.read(r, 4096):
        out += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out.decode()
    return out.decode()


CASES = {
    "docker's default": ({0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31},) * 3,
    "nothing": (set(), set(), set()),
    "caps above 31": ({0, 21, 38, 39, LAST}, {0, 21, 38, 39, LAST}, {21, 38}),
    "effective below permitted": ({1, 2}, {1, 2, 5, 33}, {5, 33}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_apply_sets_matches_python_prctl(case):
    effective, permitted, inheritable = CASES[case]

    def ours():
        caps.apply_sets(effective, permitted, inheritable, LAST)

    def theirs():
        every = range(LAST + 1)
        prctl.set_caps(
            ([c for c in every if c in effective], prctl.CAP_EFFECTIVE, True),
            ([c for c in every if c not in effective], prctl.CAP_EFFECTIVE, False),
            ([c for c in every if c in permitted], prctl.CAP_PERMITTED, True),
            ([c for c in every if c not in permitted], prctl.CAP_PERMITTED, False),
            ([c for c in every if c in inheritable], prctl.CAP_INHERITABLE, True),
            ([c for c in every if c not in inheritable], prctl.CAP_INHERITABLE, False),
        )

    mine, oracle = _in_child(ours), _in_child(theirs)
    assert mine == oracle
    assert f"CapEff:\t{sum(1 << c for c in effective):016x}" in mine


@pytest.mark.parametrize("keep", [set(), {0, 7, 21}, {38, LAST}, set(range(LAST + 1))])
def test_drop_bounding_matches_python_prctl(keep):
    def ours():
        caps.drop_bounding(keep, LAST)

    def theirs():
        for cap in range(LAST + 1):
            if cap not in keep:
                prctl.capbset_drop(cap)

    mine, oracle = _in_child(ours), _in_child(theirs)
    assert mine == oracle
    assert f"CapBnd:\t{sum(1 << c for c in keep) & _bounding_now():016x}" in mine


def _bounding_now():
    """The bounding set this test starts with (a drop never adds back what it lacks)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))


@pytest.mark.parametrize("flag", [True, False])
def test_keepcaps_matches_python_prctl(flag):
    mine = _in_child(lambda: caps.set_keepcaps(flag))
    oracle = _in_child(lambda: prctl.set_keepcaps(flag))
    assert mine == oracle
    assert mine.endswith(f"keepcaps:{flag}")
