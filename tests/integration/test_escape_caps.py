"""Capabilities an `exec` must not hand out (runc CVE-2022-29162 class).

runc before 1.1.2 put `exec --cap` capabilities in the inheritable set too: a process that then
exec'd a binary with file capabilities, or any non-root process (through ambient rules), kept
powers the container's config never granted. Real containers; /proc/self/status read inside.
"""

import pytest
from helpers import state  # noqa: E402

from pyrunc.linux.capabilities import NUMBERS


def mask(text, field):
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"{field} not in {text!r}")


def bit(name):
    return 1 << NUMBERS[name]


@pytest.fixture
def running(pyrunc, make_bundle, cid):
    b = make_bundle("sleep", "1000")
    b.process["capabilities"]["inheritable"] = []  # what the engines send (docker, podman)
    b.write()
    assert pyrunc("run", "-d", "--bundle", b.path, cid).rc == 0
    yield state(pyrunc, cid)["pid"]
    pyrunc("delete", "--force", cid)


def test_exec_cap_is_not_inheritable(pyrunc, cid, running):
    r = pyrunc("exec", "--cap", "CAP_SYS_ADMIN", cid, "cat", "/proc/self/status")
    assert r.rc == 0, r.err
    assert mask(r.out, "CapEff") & bit("CAP_SYS_ADMIN")  # the flag did its job ...
    assert mask(r.out, "CapInh") == 0                     # ... and nothing more
    assert mask(r.out, "CapAmb") == 0


def test_exec_cap_gives_a_non_root_user_nothing_it_keeps(pyrunc, cid, running):
    r = pyrunc("exec", "--user", "1000:1000", "--cap", "CAP_SYS_ADMIN", cid,
               "cat", "/proc/self/status")
    assert r.rc == 0, r.err
    for field in ("CapInh", "CapAmb", "CapEff"):
        assert mask(r.out, field) & bit("CAP_SYS_ADMIN") == 0, field
