"""kill's signal names (runtime/signals.py, from `_signal`) against Python's own Signals enum."""

import signal

import pytest

from pyrunc.errors import SignalError
from pyrunc.runtime.signals import parse

RUNCS = {s.name: int(s) for s in signal.Signals if s < 32}  # the enum's canonical names only


def test_the_31_names_of_runcs_table():
    assert len(RUNCS) == 31
    for name, number in RUNCS.items():
        assert parse(name) == parse(name[3:]) == parse(name.lower()) == parse(name[3:].lower()) == number


@pytest.mark.parametrize("raw", ["IOT", "SIGCLD", "POLL", "RTMIN", "SIGRTMAX", "SIG_DFL", "_DFL", "NSIG",
                                 "SIGNSIG", "ITIMER_REAL", "FOO", "", "SIG", "RTMIN+1"])
def test_aliases_and_other_attributes_are_unknown(raw):
    with pytest.raises(SignalError, match=f'^unknown signal "{raw}"$'.replace("+", r"\+")):
        parse(raw)


def test_numbers_pass_through():
    assert parse("9") == 9 and parse(15) == 15 and parse("0") == 0 and parse("64") == 64
    assert parse(str(2**32 + 9)) == 9
