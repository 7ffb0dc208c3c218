"""Unit tests for the command-line layer: pyrunc/cli/parser.py (Go/urfave flag syntax),
the verbs' declarations, list's table, the error-line formats, and kill's signal argument."""

import json
import re

import pytest

from pyrunc.cli import commands, log, main, parser
from pyrunc.cli.parser import Command, Flag, check_arity, parse
from pyrunc.errors import SignalError, UsageError
from pyrunc.runtime import signals

FLAGS = [
    Flag(("bundle", "b")),
    Flag("pid-file"),
    Flag(("detach", "d"), "bool"),
    Flag("preserve-fds", "int", default=0),
    Flag("env", repeat=True),
]


def p(*argv, flags=FLAGS, **kw):
    return parse(flags, list(argv), **kw)


# --------------------------------------------------------------------------- parse()

def test_defaults_and_dest_names():
    opts, pos, rest = p()
    assert opts == {"bundle": None, "pid_file": None, "detach": False, "preserve_fds": 0, "env": []}
    assert (pos, rest) == ([], [])


@pytest.mark.parametrize("argv", [
    ["-b", "B"], ["--b", "B"], ["--bundle", "B"], ["-bundle", "B"], ["--bundle=B"], ["-b=B"], ["-bundle=B"],
])
def test_value_spellings(argv):
    assert p(*argv, "id")[0]["bundle"] == "B"
    assert p(*argv, "id")[1] == ["id"]


def test_value_may_contain_equals_and_start_with_dash():
    assert p("--bundle=a=b")[0]["bundle"] == "a=b"
    assert p("--bundle", "-x")[0]["bundle"] == "-x"  # a value slot takes anything, as Go's flag
    assert p("--bundle=")[0]["bundle"] == ""


@pytest.mark.parametrize("argv, value", [
    (["-d"], True), (["--detach"], True), (["-d=true"], True), (["-d=false"], False),
    (["--detach=1"], True), (["--detach=0"], False), (["-d=t"], True), (["-d=F"], False),
])
def test_bool_spellings(argv, value):
    opts, pos, _ = p(*argv, "id")
    assert (opts["detach"], pos) == (value, ["id"])


def test_bool_does_not_take_the_next_argument():
    opts, pos, _ = p("-d", "false")
    assert opts["detach"] is True and pos == ["false"]


def test_bad_bool_value():
    with pytest.raises(UsageError, match=r'^invalid boolean value "yes" for -detach'):
        p("--detach=yes")


def test_int_flag():
    assert p("--preserve-fds", "3")[0]["preserve_fds"] == 3
    assert p("--preserve-fds=0x10")[0]["preserve_fds"] == 16
    with pytest.raises(UsageError, match=r'^invalid value "x" for flag -preserve-fds: parse error$'):
        p("--preserve-fds", "x")


def test_repeated_flag_accumulates():
    assert p("--env", "A=1", "--env=B=2")[0]["env"] == ["A=1", "B=2"]
    assert p()[0]["env"] == []  # the default list is not shared between calls
    opts = p()[0]
    opts["env"].append("x")
    assert p()[0]["env"] == []


def test_last_value_wins():
    assert p("-b", "one", "--bundle", "two")[0]["bundle"] == "two"


def test_flags_after_positionals():
    opts, pos, _ = p("id", "-b", "B", "-d")
    assert (opts["bundle"], opts["detach"], pos) == ("B", True, ["id"])
    opts, pos, _ = p("id", "KILL", "--detach")
    assert (opts["detach"], pos) == (True, ["id", "KILL"])


def test_double_dash_ends_flags():
    opts, pos, _ = p("-d", "--", "-b", "x", "--")
    assert opts["detach"] is True and opts["bundle"] is None
    assert pos == ["-b", "x", "--"]


def test_single_dash_is_positional():
    assert p("-")[1] == ["-"]


@pytest.mark.parametrize("argv, name", [
    (["-x"], "x"), (["--x"], "x"), (["---x"], "x"), (["--x=1"], "x"), (["--nope", "id"], "nope"),
    (["-B", "v"], "B"),  # names are case-sensitive
])
def test_unknown_flag_before_positionals(argv, name):
    with pytest.raises(UsageError) as e:
        p(*argv)
    assert str(e.value) == f"flag provided but not defined: -{name}"


def test_unknown_dash_argument_after_a_positional_is_positional():
    """urfave/cli only moves known flags in front; Go's parser then stops at the first
    positional, so `kill ID -9` has the arguments ID and -9."""
    opts, pos, _ = p("id", "-9", "-d")
    assert pos == ["id", "-9"] and opts["detach"] is True
    assert p("id", "--nope=1")[1] == ["id", "--nope=1"]


@pytest.mark.parametrize("argv", [["--bundle"], ["id", "-b"], ["--pid-file"]])
def test_missing_value(argv):
    name = argv[-1].lstrip("-")
    with pytest.raises(UsageError, match=rf"^flag needs an argument: -{name}$"):
        p(*argv)


def test_empty_flag_name():
    with pytest.raises(UsageError, match=r"^flag provided but not defined: -$"):
        p("--=x")


def test_stop_at_positional_returns_the_rest():
    g = [Flag("root", default="/run/pyrunc"), Flag("debug", "bool")]
    opts, pos, rest = parse(g, ["--root", "/r", "--debug", "kill", "--all", "id"], stop_at_positional=True)
    assert opts == {"root": "/r", "debug": True}
    assert pos == [] and rest == ["kill", "--all", "id"]
    opts, _, rest = parse(g, ["list"], stop_at_positional=True)
    assert opts["root"] == "/run/pyrunc" and rest == ["list"]
    with pytest.raises(UsageError, match="-all"):
        parse(g, ["--all", "list"], stop_at_positional=True)


def test_arguments_are_not_mutated():
    argv = ["-b", "x", "id"]
    parse(FLAGS, argv)
    assert argv == ["-b", "x", "id"]


# --------------------------------------------------------------------------- arity

@pytest.mark.parametrize("lo, hi, n, message", [
    (1, 1, 0, '"v" requires exactly 1 argument(s)'),
    (1, 1, 2, '"v" requires exactly 1 argument(s)'),
    (0, 0, 1, '"v" requires exactly 0 argument(s)'),
    (1, 2, 0, '"v" requires a minimum of 1 argument(s)'),
    (1, 2, 3, '"v" requires a maximum of 2 argument(s)'),
    (1, None, 0, '"v" requires a minimum of 1 argument(s)'),
])
def test_arity_errors(lo, hi, n, message):
    cmd = Command("v", "summary", "", [], lo, hi, None)
    with pytest.raises(UsageError) as e:
        check_arity(cmd, ["a"] * n)
    assert str(e.value) == message


@pytest.mark.parametrize("lo, hi, n", [(1, 1, 1), (0, 0, 0), (1, 2, 1), (1, 2, 2), (1, None, 9)])
def test_arity_ok(lo, hi, n):
    check_arity(Command("v", "s", "", [], lo, hi, None), ["a"] * n)


# --------------------------------------------------------------------------- help texts

def test_flag_help_layout():
    text = parser.flag_help([Flag(("bundle", "b"), help="the bundle"), Flag("all", "bool", help="all"),
                             Flag("n", "int", default=0, help="count"),
                             Flag("format", default="table", help="fmt")])
    assert text == ('   --bundle value, -b value  the bundle\n'
                    '   --all                     all\n'
                    '   -n value                  count (default: 0)\n'
                    '   --format value            fmt (default: "table")\n')


def test_command_help_sections():
    cmd = commands.COMMANDS["kill"]
    text = parser.command_help("pyrunc", cmd)
    assert text.startswith(f"NAME:\n   pyrunc kill - {cmd.summary}\n\nUSAGE:\n"
                           "   pyrunc kill [command options] <container-id> [signal]\n")
    assert "OPTIONS:\n   --all, -a  " in text
    state = parser.command_help("pyrunc", commands.COMMANDS["state"])
    assert "[command options]" not in state and "OPTIONS" not in state


def test_every_verb_is_declared_with_runc_arity():
    arity = {n: (c.min_args, c.max_args) for n, c in commands.COMMANDS.items()}
    assert {k: arity[k] for k in ("create", "run", "start", "state", "kill", "delete", "list")} == {
        "create": (1, 1), "run": (1, 1), "start": (1, 1), "state": (1, 1), "kill": (1, 2),
        "delete": (1, 1), "list": (0, 0)}
    for name, cmd in commands.COMMANDS.items():
        assert cmd.name == name and callable(cmd.handler)
        dests = [f.dest for f in cmd.flags]
        assert len(dests) == len(set(dests)), name
        names = [n for f in cmd.flags for n in f.names]
        assert len(names) == len(set(names)), name
        assert "h" not in names and "help" not in names  # reserved for help


# --------------------------------------------------------------------------- list's table

def test_table_matches_runc_tabwriter():
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"),
            ("id1", "3622", "created", "/tmp/runcref/bundle", "2026-11-22T21:57:28.205288996Z", "root")]
    assert commands._table(rows) == (
        "ID          PID         STATUS      BUNDLE                CREATED                          OWNER\n"
        "id1         3622        created     /tmp/runcref/bundle   2026-11-22T21:57:28.205288996Z   root\n")
    assert commands._table(rows[:1]) == "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"


def test_table_long_cells_and_no_trailing_spaces():
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"),
            ("x" * 20, "1", "running", "/b", "c", "")]
    out = commands._table(rows)
    assert out.splitlines()[1].startswith("x" * 20 + "   1 ")
    assert out.splitlines()[1].endswith("c" + " " * 11)  # an empty last cell leaves padding, as in Go
    assert out.splitlines()[0] == out.splitlines()[0].rstrip()


# --------------------------------------------------------------------------- log lines

TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def test_text_line_quoting():
    line = log.Logger().format("error", 'unknown signal "FOO"\nback\\slash\ttab')
    assert re.fullmatch(rf'time="{TS}" level=error msg="unknown signal \\"FOO\\"\\nback\\\\slash\\ttab"', line)


def test_json_line_is_compact_sorted_and_html_escaped():
    line = log.Logger(fmt="json").format("error", 'a <b> & "c"')
    assert re.fullmatch(rf'\{{"level":"error","msg":"a \\u003cb\\u003e \\u0026 \\"c\\"","time":"{TS}"\}}', line), line
    assert json.loads(line)["msg"] == 'a <b> & "c"'


def test_logger_with_file(tmp_path, capsys):
    path = tmp_path / "f.log"
    lg = log.Logger(str(path), "json")
    assert path.exists() and path.read_text() == ""  # created up front, like runc
    lg.warning("careful")
    lg.error("broken")
    lg.debug("hidden")
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [(x["level"], x["msg"]) for x in lines] == [("warning", "careful"), ("error", "broken")]
    assert capsys.readouterr().err == "broken\n"  # errors also go bare to stderr


def test_logger_without_file(capsys):
    log.Logger(fmt="text").error("x")
    err = capsys.readouterr().err
    assert re.fullmatch(rf'time="{TS}" level=error msg="x"\n', err)


# --------------------------------------------------------------------------- main() in-process

def run_main(capsys, *argv):
    rc = main.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_main_version(capsys):
    rc, out, err = run_main(capsys, "--version")
    lines = out.splitlines()
    assert rc == 0 and err == "" and len(lines) >= 3
    assert lines[0].startswith("pyrunc version ") and lines[1].startswith("commit: ")
    assert lines[2].startswith("spec: ")


def test_main_unknown_command(capsys):
    rc, out, err = run_main(capsys, "--root", "/nonexistent/x", "frobnicate")
    assert (rc, out) == (3, "") and "No help topic for 'frobnicate'" in err


def test_main_bad_log_format(capsys):
    rc, out, err = run_main(capsys, "--log-format", "xml", "list")
    assert rc == 1 and 'msg="invalid log-format: xml"' in err


def test_main_invalid_list_format(capsys, tmp_path):
    rc, out, err = run_main(capsys, "--root", str(tmp_path), "list", "--format", "yaml")
    assert (rc, out) == (1, "") and 'msg="invalid format option"' in err


def test_main_arity_error(capsys):
    rc, out, err = run_main(capsys, "state")
    assert rc == 1 and out.startswith("Incorrect Usage.\n\nNAME:\n   pyrunc state")
    assert 'msg="pyrunc: \\"state\\" requires exactly 1 argument(s)"' in err


def test_main_empty_list(capsys, tmp_path):
    assert run_main(capsys, "--root", str(tmp_path), "list", "-f", "json") == (0, "null\n", "")
    assert run_main(capsys, "--root", str(tmp_path), "list", "-q") == (0, "", "")


# --------------------------------------------------------------------------- kill's signal

@pytest.mark.parametrize("raw, num", [
    ("9", 9), ("+9", 9), ("0", 0), ("99", 99), ("-9", -9), ("KILL", 9), ("SIGKILL", 9), ("kill", 9),
    ("sigkill", 9), ("SIGkill", 9), ("TERM", 15), ("hup", 1), ("SIGUSR1", 10), ("WINCH", 28),
    ("ABRT", 6), ("CHLD", 17), ("IO", 29), ("SYS", 31), ("STKFLT", 16), ("PWR", 30),
])
def test_signal_parse(raw, num):
    assert signals.parse(raw) == num


@pytest.mark.parametrize("raw", ["FOO", "SIGFOO", "", "SIG", "RTMIN", "SIGRTMIN", "RTMIN+1", "RTMAX",
                                 "IOT", "CLD", "POLL", "SIG_DFL", "SIG_IGN", "1.5", "0x9", " 9", "9 ",
                                 "²", "٣", "KILL "])
def test_signal_parse_rejects(raw):
    with pytest.raises(SignalError) as e:
        signals.parse(raw)
    assert str(e.value) == f'unknown signal "{raw}"'
