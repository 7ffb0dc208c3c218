"""runc's verbs: their flags and how each maps onto the API. Parsing only; no logic here."""

import sys

from .. import jsonio
from ..errors import NotRunning, UsageError
from ..goparse import is_atoi, is_digits
from .parser import Command, Flag


def _create(rt, o, a):
    from ..api import socket_activation_fds  # as runc: our own LISTEN_FDS fds go to the init first
    rt.create(a[0], o["bundle"] or ".", pid_file=o["pid_file"], console_socket=o["console_socket"],
              no_pivot=o["no_pivot"], preserve_fds=o["preserve_fds"],
              listen_fds=socket_activation_fds())
    return 0


def _run(rt, o, a):
    from ..api import socket_activation_fds
    if not o["detach"]:  # waits as long as the container runs: the cyclic GC back on (main.py entry)
        import gc
        gc.enable()
    return rt.run(a[0], o["bundle"] or ".", detach=o["detach"], pid_file=o["pid_file"],
                  console_socket=o["console_socket"], no_pivot=o["no_pivot"],
                  preserve_fds=o["preserve_fds"], listen_fds=socket_activation_fds(),
                  keep=o["keep"])


def _start(rt, o, a):
    rt.start(a[0])
    return 0


def _state(rt, o, a):
    sys.stdout.write(jsonio.dumps_indent(rt.state(a[0]).to_oci()))
    return 0


def _kill(rt, o, a):
    sig = a[1] if len(a) > 1 and a[1] else "SIGTERM"
    try:
        rt.kill(a[0], sig, all_processes=o["all"])
    except NotRunning:  # runc: --all on a stopped container is not an error
        if not o["all"]:
            raise
    return 0


def _delete(rt, o, a):
    rt.delete(a[0], force=o["force"])
    return 0


def _list(rt, o, a):
    if o["format"] not in ("table", "json"):
        raise UsageError("invalid format option")
    states = rt.list()
    if o["quiet"]:
        sys.stdout.write("".join(s.id + "\n" for s in states))
    elif o["format"] == "json":
        docs = [dict(s.to_oci(), owner=_owner(rt)) for s in states]
        sys.stdout.write(jsonio.dumps(docs or None) + "\n")
    else:
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(s.id, str(s.pid), s.status, s.bundle, s.created, _owner(rt)) for s in states]
        sys.stdout.write(_table(rows))
    return 0


def _owner(rt):
    import os
    import pwd
    uid = os.stat(rt.root).st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


def _table(rows):
    """Go's tabwriter as runc configures it: minwidth 12, padding 3, last column unpadded."""
    widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(len(rows[0]) - 1)]
    return "".join("".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + r[-1] + "\n" for r in rows)


def _spec(rt, o, a):  # noqa: ARG001
    import os

    from ..api import spec_template
    from ..errors import PyruncError
    path = os.path.join(o["bundle"] or ".", "config.json")
    if os.path.exists(path):
        raise PyruncError("File config.json exists. Remove it first")
    config = spec_template(rootless=o["rootless"])
    with open(path, "w") as f:
        import json
        f.write(json.dumps(config, indent="\t"))  # runc's shape: tabs, no trailing newline
    return 0


def _update(rt, o, a):
    if o["resources"]:
        from ..api import read_resources
        resources = read_resources(o["resources"])
    else:
        resources = _resources_from_flags(o)
    rt.update(a[0], resources)
    return 0


# flag -> (section, field, kind); runc's single-value flags for `update`. The kind is how runc
# parses the flag, which decides its error text: "bytes" units.RAMInBytes, "uint"/"int"
# strconv.ParseUint/ParseInt, "flag" urfave/cli's own Int/Uint flags, str taken as is.
_UPDATE_FLAGS = {
    "blkio_weight": ("blockIO", "weight", "flag"), "cpu_period": ("cpu", "period", "uint"),
    "cpu_quota": ("cpu", "quota", "int"), "cpu_share": ("cpu", "shares", "uint"),
    "cpu_rt_period": ("cpu", "realtimePeriod", "uint"), "cpu_rt_runtime": ("cpu", "realtimeRuntime", "int"),
    "cpuset_cpus": ("cpu", "cpus", str), "cpuset_mems": ("cpu", "mems", str),
    "memory": ("memory", "limit", "bytes"), "memory_reservation": ("memory", "reservation", "bytes"),
    "memory_swap": ("memory", "swap", "bytes"), "kernel_memory": ("memory", "kernel", "bytes"),
    "kernel_memory_tcp": ("memory", "kernelTCP", "bytes"), "pids_limit": ("pids", "limit", "flag"),
}


def _resources_from_flags(o):
    from ..errors import PyruncError
    resources: dict[str, dict] = {}
    for dest, (section, field, kind) in _UPDATE_FLAGS.items():
        raw = o.get(dest)
        if raw in (None, ""):
            continue
        name = dest.replace("_", "-")
        try:
            if kind == "bytes":
                value = parse_bytes(raw)
            elif kind is str:
                value = raw
            elif kind == "flag":
                value = int(raw, 10)
            else:
                # Go's strconv.ParseUint / ParseInt(raw, 10, 64): ASCII digits, a sign only
                # for ParseInt; int() would also take " 5", "1_0" and other scripts' digits
                if not (is_digits(raw) if kind == "uint" else is_atoi(raw)):
                    raise ValueError(raw)
                value = int(raw, 10)
                if not (0 if kind == "uint" else -2**63) <= value < (2**64 if kind == "uint" else 2**63):
                    func = "ParseUint" if kind == "uint" else "ParseInt"
                    raise PyruncError(f'invalid value for {name}: strconv.{func}: parsing "{raw}": '
                                      f'value out of range')
        except ValueError:
            if kind == "bytes":
                raise PyruncError(f"invalid value for {name}: invalid size: '{raw}'") from None
            if kind == "flag":
                raise UsageError(f'invalid value "{raw}" for flag -{name}: parse error') from None
            func = "ParseUint" if kind == "uint" else "ParseInt"
            raise PyruncError(f'invalid value for {name}: strconv.{func}: parsing "{raw}": '
                              f'invalid syntax') from None
        resources.setdefault(section, {})[field] = value
    return resources


def parse_bytes(text):
    """docker's RAMInBytes (go-units): digits with optional ".digits" parts, one optional
    space, then a 1024-based unit k, m, g, t or p, an optional "i" and "b", any case ("1.5g",
    "512 MiB", "1kb"); -1 for unlimited. ValueError otherwise."""
    if text == "-1":
        return -1
    t = text.lower()
    i = len(t)
    while i and t[i - 1] in "ib":  # the optional "i" and "b", in that order
        i -= 1
    if t[i:] not in ("", "b", "i", "ib"):
        raise ValueError(text)
    scale = 1
    if i and t[i - 1] in "kmgtp":
        i -= 1
        scale = 1 << (10 * ("kmgtp".index(t[i]) + 1))
    number = t[:i - 1] if t[i - 1:i] == " " else t[:i]
    if not all(is_digits(part) for part in number.split(".")):
        raise ValueError(text)
    return int(float(number) * scale)


def _pause(rt, o, a):
    rt.pause(a[0])
    return 0


def _resume(rt, o, a):
    rt.resume(a[0])
    return 0


def _ps(rt, o, a):
    if o["format"] not in ("table", "json"):
        raise UsageError("invalid format option")
    pids = rt.ps(a[0])
    if o["format"] == "json":
        # runc encodes a nil Go slice: an empty container prints null, not []
        sys.stdout.write(jsonio.dumps(pids or None) + "\n")
        return 0
    from ..errors import PyruncError
    ps_args = a[1:] or ["-ef"]
    # runc's errors (ps.go): "exit status N: <ps output>" and "couldn't find PID field ..."
    returncode, output = _output(["ps", *ps_args])
    if returncode != 0:
        raise PyruncError(f"exit status {returncode}: {output}")
    lines = output.splitlines()
    if not lines:
        return 0
    header, rows = lines[0], lines[1:]
    if "PID" not in header.split():
        raise PyruncError("couldn't find PID field in ps output")
    column = header.split().index("PID")
    wanted = set(pids)
    sys.stdout.write(header + "\n")
    for row in rows:
        fields = row.split(None, column + 1)
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in wanted:
            sys.stdout.write(row + "\n")
    return 0


def _output(argv):
    """Run argv (found on PATH) with stdout and stderr into one pipe: (exit code, text).
    subprocess.run without `import subprocess` (~8 ms of imports); our fds are all
    close-on-exec, so the child gets stdio and the pipe only."""
    import os
    from _signal import SIGPIPE, SIGXFSZ  # type: ignore[import-not-found]  # signal's C half: no enums
    r, w = os.pipe()
    try:
        # SIGPIPE and SIGXFSZ back to their defaults, as subprocess's restore_signals does
        pid = os.posix_spawnp(argv[0], argv, os.environ,
                              file_actions=[(os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_DUP2, w, 2)],
                              setsigdef=(SIGPIPE, SIGXFSZ))
    except BaseException:
        os.close(r)
        raise
    finally:
        os.close(w)
    chunks = []
    with open(r, "rb") as f:
        while chunk := f.read(65536):
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


def _events(rt, o, a):
    interval = _duration(o["interval"])
    if not o["stats"]:  # a stream that may run for days: the cyclic GC back on (cli/main.py entry)
        import gc
        gc.enable()

    def emit(event):
        sys.stdout.write(jsonio.dumps(event) + "\n")
        sys.stdout.flush()

    rt.events(a[0], stats_only=o["stats"], interval=interval, emit=emit)
    return 0


_DURATION_UNITS = {"ns": 1, "us": 10**3, "\u00b5s": 10**3, "\u03bcs": 10**3, "ms": 10**6,
                   "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def go_duration(text):
    """Go's time.ParseDuration, in seconds: a sign, then one or more decimal numbers each with
    a unit (ns, us, \u00b5s, ms, s, m, h): "1m30s", "1.5h", ".5s"; "0" alone. None if invalid."""
    s = text[1:] if text[:1] in ("+", "-") else text
    if s == "0":
        return 0.0
    total = 0  # in ns, as Go counts (an int64)
    while s:
        i = 0
        while i < len(s) and s[i].isascii() and s[i].isdigit():
            i += 1
        whole, s = s[:i], s[i:]
        frac = ""
        if s[:1] == ".":
            i = 1
            while i < len(s) and s[i].isascii() and s[i].isdigit():
                i += 1
            frac, s = s[1:i], s[i:]
        if not whole and not frac:
            return None
        i = 0
        while i < len(s) and s[i] != "." and not (s[i].isascii() and s[i].isdigit()):
            i += 1
        unit, s = s[:i], s[i:]
        scale = _DURATION_UNITS.get(unit)
        if scale is None:
            return None
        total += int(whole or "0") * scale + int(frac or "0") * scale // 10 ** len(frac)
        if total > 2**63 - 1:
            return None
    if not text or text in ("+", "-"):
        return None
    return (-total if text[0] == "-" else total) / 1e9


def _duration(text):
    """--interval as runc takes it: a Go duration (flag.Duration), greater than 0."""
    value = go_duration(text)
    if value is None:
        raise UsageError(f'invalid value "{text}" for flag -interval: parse error')
    if value <= 0:
        from ..errors import PyruncError
        raise PyruncError("duration interval must be greater than 0")
    return value


def _exec(rt, o, a):
    args = a[1:]
    if args[:1] == ["--"]:  # `exec ID -- cmd ...` (runc would look for a program named "--")
        args = args[1:]
    return rt.exec(a[0], args, process=o["process"], cwd=o["cwd"], env=o["env"], user=o["user"],
                   additional_gids=o["additional_gids"], caps=o["cap"],
                   no_new_privs=True if o["no_new_privs"] else None, apparmor=o["apparmor"],
                   process_label=o["process_label"], tty=o["tty"], detach=o["detach"],
                   pid_file=o["pid_file"], console_socket=o["console_socket"],
                   preserve_fds=o["preserve_fds"], ignore_paused=o["ignore_paused"],
                   cgroup=o["cgroup"])


def _validate(rt, o, a):
    import os

    bundle = os.path.abspath(o["bundle"] or ".")
    found = rt.validate(bundle)
    if not found:
        sys.stdout.write(f"{bundle}: OK\n")
        return 0
    # the report is the verb's output; the failure is one error line, as for every verb
    sys.stdout.write("".join(line + "\n" for line in found))
    from ..errors import ConfigError
    raise ConfigError(f"{bundle}: {len(found)} problem{'s' if len(found) > 1 else ''}")


def _features(rt, o, a):  # noqa: ARG001
    import json

    from ..api import features
    sys.stdout.write(json.dumps(features(), indent=4) + "\n")  # runc's: 4 spaces, a newline
    return 0


_EXEC_USAGE = """<container-id> <command> [command options]  || -p process.json <container-id>

Where "<container-id>" is the name for the instance of the container and
"<command>" is the command to be executed in the container.
"<command>" can't be empty unless a "-p" flag provided.

EXAMPLE:
For example, if the container is configured to run the linux ps command the
following will output a list of processes running in the container:

       # pyrunc exec <container-id> ps"""


_BUNDLE = Flag(("bundle", "b"), help="path to the root of the bundle directory, defaults to the current directory")
_CONSOLE = Flag("console-socket", help="path to an AF_UNIX socket which will receive a file descriptor "
                                        "referencing the master end of the console's pseudoterminal")
_PIDFILE = Flag("pid-file", help="specify the file to write the process id to")
_NOPIVOT = Flag("no-pivot", "bool", help="do not use pivot root to jail process inside rootfs; "
                                          "use this when the rootfs is on top of a ramdisk")
_NOKEYRING = Flag("no-new-keyring", "bool", help="do not create a new session keyring for the container")
_PRESERVE = Flag("preserve-fds", "int", default=0,
                 help="Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)")
_ID = "<container-id>"

COMMANDS = {c.name: c for c in (
    Command("create", "create a container", _ID,
            [_BUNDLE, _CONSOLE, _PIDFILE, _NOPIVOT, _NOKEYRING, _PRESERVE], 1, 1, _create,
            "creates an instance of a container from a bundle (a directory with a config.json\n"
            "   and a root filesystem), and leaves it waiting for `start`."),
    Command("run", "create and run a container", _ID,
            [_BUNDLE, _CONSOLE, Flag(("detach", "d"), "bool", help="detach from the container's process"),
             Flag("keep", "bool", help="do not delete the container after it exits"),
             _PIDFILE, _NOPIVOT, _NOKEYRING, _PRESERVE], 1, 1, _run,
            "creates and starts a container; unless detached, waits for it and exits with its status."),
    Command("start", "executes the user defined process in a created container", _ID, [], 1, 1, _start),
    Command("exec", "execute new process inside the container", _EXEC_USAGE,
            [_CONSOLE, Flag("cwd", help="current working directory in the container"),
             Flag(("env", "e"), repeat=True, help="set environment variables"),
             Flag(("tty", "t"), "bool", help="allocate a pseudo-TTY"),
             Flag(("user", "u"), help="UID (format: <uid>[:<gid>])"),
             Flag(("additional-gids", "g"), repeat=True, help="additional gids"),
             Flag(("process", "p"), help="path to the process.json"),
             Flag(("detach", "d"), "bool", help="detach from the container's process"),
             _PIDFILE,
             Flag("process-label", help="set the asm process label for the process commonly used with selinux"),
             Flag("apparmor", help="set the apparmor profile for the process"),
             Flag("no-new-privs", "bool", help="set the no new privileges value for the process"),
             Flag(("cap", "c"), repeat=True, help="add a capability to the bounding set for the process"),
             _PRESERVE,
             Flag("cgroup", repeat=True, help="run the process in an (existing) sub-cgroup(s). "
                                              "Format is [<controller>:]<cgroup>. (not supported yet)"),
             Flag("ignore-paused", "bool", help="allow exec in a paused container")],
            1, None, _exec, in_order=True),
    Command("state", "output the state of a container", _ID, [], 1, 1, _state),
    Command("kill", "kill sends the specified signal (default: SIGTERM) to the container's init process",
            f"{_ID} [signal]", [Flag(("all", "a"), "bool", help="send the specified signal to all processes "
                                                                 "inside the container")], 1, 2, _kill),
    Command("delete", "delete any resources held by the container often used with detached container",
            _ID, [Flag(("force", "f"), "bool", help="Forcibly deletes the container if it is still running "
                                                     "(uses SIGKILL)")], 1, 1, _delete),
    Command("list", "lists containers started by pyrunc with the given root", "",
            [Flag(("format", "f"), default="table", help="select one of: table or json"),
             Flag(("quiet", "q"), "bool", help="display only container IDs")], 0, 0, _list),
    Command("update", "update container resource constraints", _ID,
            [Flag(("resources", "r"), help="path to the file containing the resources to update or "
                                           "'-' to read from the standard input"),
             Flag("blkio-weight", help="Specifies per cgroup weight, range is from 10 to 1000"),
             Flag("cpu-period", help="CPU CFS period to be used for hardcapping (in usecs)"),
             Flag("cpu-quota", help="CPU CFS hardcap limit (in usecs)"),
             Flag("cpu-share", help="CPU shares (relative weight vs. other containers)"),
             Flag("cpu-rt-period", help="CPU realtime period (in usecs)"),
             Flag("cpu-rt-runtime", help="CPU realtime hardcap limit (in usecs)"),
             Flag("cpuset-cpus", help="CPU(s) to use"), Flag("cpuset-mems", help="Memory node(s) to use"),
             Flag("memory", help="Memory limit (in bytes; k, m, g suffixes)"),
             Flag("memory-reservation", help="Memory reservation or soft_limit (in bytes)"),
             Flag("memory-swap", help="Total memory usage (memory + swap); '-1' for unlimited swap"),
             Flag("kernel-memory", help="Kernel memory limit (in bytes)"),
             Flag("kernel-memory-tcp", help="Kernel memory limit for tcp buffer (in bytes)"),
             Flag("pids-limit", help="Maximum number of pids allowed in the container"),
             Flag("l3-cache-schema", help="Intel RDT/CAT L3 cache schema (not supported)"),
             Flag("mem-bw-schema", help="Intel RDT/MBA memory bandwidth schema (not supported)")],
            1, 1, _update, "with --resources, the JSON is a linux.resources object; zeros and "
                           "missing fields leave a limit unchanged."),
    Command("pause", "pause suspends all processes inside the container", _ID, [], 1, 1, _pause),
    Command("resume", "resumes all processes that have been previously paused", _ID, [], 1, 1, _resume),
    Command("ps", "ps displays the processes running inside a container", f"{_ID} [ps options]",
            [Flag(("format", "f"), default="table", help="select one of: table or json")], 1, None, _ps),
    Command("events", "display container events such as OOM notifications, cpu, memory, and IO usage "
                      "statistics", _ID,
            [Flag("interval", default="5s", help="set the stats collection interval"),
             Flag("stats", "bool", help="display the container's stats then exit")], 1, 1, _events),
    Command("validate", "check a bundle the way create would, without creating anything", "",
            [_BUNDLE], 0, 0, _validate,
            "prints every problem create would find in the bundle, one per line (config.json's\n"
            "   schema with each field's path, the semantic checks, the rootfs, process.args[0] in\n"
            "   the rootfs), logs one error and exits 1; prints one OK line and exits 0 for a good\n"
            "   bundle. Creates nothing."),
    Command("features", "show the enabled features", "", [], 0, 0, _features,
            "shows the enabled features (the runtime-spec's features document, as JSON)."),
    Command("spec", "create a new specification file", "",
            [Flag(("bundle", "b"), help="path to the root of the bundle directory"),
             Flag("rootless", "bool", help="generate a configuration for a rootless container")],
            0, 0, _spec, 'writes a starter "config.json" (args: sh, rootfs: ./rootfs) to edit.'),
)}
