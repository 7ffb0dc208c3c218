"""runc's verbs: their flags and how each maps onto the API. Parsing only; no logic here."""

import json
import sys

from ..errors import UsageError
from .parser import Command, Flag


def _create(rt, o, a, ctx):
    ctx.check_systemd()
    rt.create(a[0], o["bundle"] or ".", pid_file=o["pid_file"], console_socket=o["console_socket"],
              no_pivot=o["no_pivot"], preserve_fds=o["preserve_fds"])
    return 0


def _run(rt, o, a, ctx):
    ctx.check_systemd()
    return rt.run(a[0], o["bundle"] or ".", detach=o["detach"], pid_file=o["pid_file"],
                  console_socket=o["console_socket"], no_pivot=o["no_pivot"],
                  preserve_fds=o["preserve_fds"])


def _start(rt, o, a, ctx):
    rt.start(a[0])
    return 0


def _state(rt, o, a, ctx):
    sys.stdout.write(json.dumps(rt.state(a[0]).to_oci(), indent=2))
    return 0


def _kill(rt, o, a, ctx):
    sig = a[1] if len(a) > 1 and a[1] else "SIGTERM"
    try:
        rt.kill(a[0], sig, all_processes=o["all"])
    except Exception as e:  # runc: --all on a stopped container is not an error
        from ..errors import InvalidStateError
        if not (o["all"] and isinstance(e, InvalidStateError) and str(e) == "container not running"):
            raise
    return 0


def _delete(rt, o, a, ctx):
    rt.delete(a[0], force=o["force"])
    return 0


def _list(rt, o, a, ctx):
    if o["format"] not in ("table", "json"):
        raise UsageError("invalid format option")
    states = rt.list()
    if o["quiet"]:
        sys.stdout.write("".join(s.id + "\n" for s in states))
    elif o["format"] == "json":
        docs = [dict(s.to_oci(), owner=_owner(rt)) for s in states]
        sys.stdout.write(json.dumps(docs or None, separators=(",", ":")) + "\n")
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
    return "".join("".join(c.ljust(w) for c, w in zip(r, widths)) + r[-1] + "\n" for r in rows)


def _spec(rt, o, a, ctx):
    import os
    from ..errors import PyruncError
    from ..spec.default import default_config
    path = os.path.join(o["bundle"] or ".", "config.json")
    if os.path.exists(path):
        raise PyruncError("File config.json exists. Remove it first")
    config = default_config()
    if o["rootless"]:
        raise PyruncError("--rootless is not supported: pyrunc runs containers as root")
    with open(path, "w") as f:
        f.write(json.dumps(config, indent="\t"))  # runc's shape: tabs, no trailing newline
    return 0


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
             _PIDFILE, _NOPIVOT, _NOKEYRING, _PRESERVE], 1, 1, _run,
            "creates and starts a container; unless detached, waits for it and exits with its status."),
    Command("start", "executes the user defined process in a created container", _ID, [], 1, 1, _start),
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
    Command("spec", "create a new specification file", "",
            [Flag(("bundle", "b"), help="path to the root of the bundle directory"),
             Flag("rootless", "bool", help="generate a configuration for a rootless container")],
            0, 0, _spec, 'writes a starter "config.json" (args: sh, rootfs: ./rootfs) to edit.'),
)}
