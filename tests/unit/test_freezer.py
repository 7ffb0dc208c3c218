"""cgroups/freezer.py which() and frozen(): the one reader of a cgroup's freezer state, used by
every verb's status (runtime/status.py) and by the Manager, on plain-file trees."""

import pytest

from pyrunc.cgroups.freezestate import frozen, which


def test_which_freezer():
    v1 = {"freezer": "/sys/fs/cgroup/freezer/c", "": "/sys/fs/cgroup/unified/c"}
    assert which("legacy", v1) == ("v1", "/sys/fs/cgroup/freezer/c")
    assert which("hybrid", v1) == ("v1", "/sys/fs/cgroup/freezer/c")
    assert which("unified", v1) == ("v2", "/sys/fs/cgroup/unified/c")
    assert which("hybrid", {"": "/u/c"}) == ("v2", "/u/c")
    assert which("legacy", {"memory": "/m/c"}) == (None, None)


@pytest.mark.parametrize("state, self_freezing, expected", [
    ("THAWED\n", "0\n", False),
    ("FROZEN\n", "1\n", True),
    ("FREEZING\n", "1\n", True),
    ("FROZEN\n", "0\n", False),   # frozen by an ancestor: runc reports it running
    ("FROZEN\n", None, True),     # a kernel without self_freezing
    (None, None, False),          # no freezer file: nothing to say it is frozen
])
def test_frozen_v1(tmp_path, state, self_freezing, expected):
    if state is not None:
        (tmp_path / "freezer.state").write_text(state)
    if self_freezing is not None:
        (tmp_path / "freezer.self_freezing").write_text(self_freezing)
    assert frozen("v1", str(tmp_path)) is expected


@pytest.mark.parametrize("freeze, expected", [("1\n", True), ("0\n", False), (None, False)])
def test_frozen_v2(tmp_path, freeze, expected):
    if freeze is not None:
        (tmp_path / "cgroup.freeze").write_text(freeze)
    assert frozen("v2", str(tmp_path)) is expected


def test_no_freezer_is_not_frozen():
    assert frozen(None, None) is False
