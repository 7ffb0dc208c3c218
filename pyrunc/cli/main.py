"""Entry point: global flags, verb dispatch, and turning errors into runc-shaped output."""

import os
import sys

from ..errors import PyruncError, UsageError, describe
from . import parser
from .commands import COMMANDS
from .log import Logger

PROG = "pyrunc"
GLOBAL_FLAGS = [
    parser.Flag("debug", "bool", help="enable debug logging"),
    parser.Flag("log", default="", help="set the log file to write pyrunc logs to (default is '/dev/stderr')"),
    parser.Flag("log-format", default="text", help="set the log format ('text' (default), or 'json')"),
    # default: rootless.default_root(), filled in by global_flags() (it depends on the caller)
    parser.Flag("root", help="root directory for storage of container state "
                             "(this should be located in tmpfs)"),
    parser.Flag("systemd-cgroup", "bool", help="enable systemd cgroup support, expects cgroupsPath to be "
                                               "of form \"slice:prefix:name\" for e.g. \"system.slice:runc:434234\""),
    parser.Flag("rootless", default="auto", help="ignore cgroup permission errors ('true', 'false', or 'auto')"),
    parser.Flag(("help", "h"), "bool", help="show help"),
    parser.Flag(("version", "v"), "bool", help="print the version"),
]
# The verbs that decide rootless cgroups (runc's shouldUseRootlessCgroupManager callers): a bad
# --rootless value is an error only for them, as in runc (exec and the rest follow what create
# recorded in the container's state)
ROOTLESS_VERBS = ("create", "run", "ps", "pause", "resume")
# The verbs that start processes in a container: their interpreter must be sealed first
# (security/exeseal.py; the others never fork anything a container can see).
SEALED_VERBS = ("create", "run", "exec")
# What runc puts before a failed verb's error, and its exit status (1 for the others)
FAILED = {"create": (f"{PROG} create failed: ", 1), "run": (f"{PROG} run failed: ", 1),
          "exec": ("exec failed: ", 255)}


def version_text():
    from ..version import SPEC_VERSION, __version__, commit
    return (f"{PROG} version {__version__}\ncommit: {commit()}\nspec: {SPEC_VERSION}\n"
            f"python: {sys.version.split()[0]}\n")


def global_flags():
    """GLOBAL_FLAGS with --root's default for this caller (runc shows the computed one too)."""
    from ..rootless import default_root
    root = default_root()[0]
    return [parser.Flag("root", default=root, help=f.help) if f.dest == "root" else f for f in GLOBAL_FLAGS]


def main_help():
    width = max(len(n) for n in COMMANDS)
    cmds = "".join(f"   {n.ljust(width)}  {c.summary}\n" for n, c in COMMANDS.items())
    return (f"NAME:\n   {PROG} - Open Container Initiative runtime, in Python\n\n"
            f"USAGE:\n   {PROG} [global options] command [command options] [arguments...]\n\n"
            f"VERSION:\n   {version_text().split(' ', 2)[2]}\n"
            f"COMMANDS:\n{cmds}   help, h  Shows a list of commands or help for one command\n\n"
            f"GLOBAL OPTIONS:\n{parser.flag_help(global_flags())}")


def _undo_locale_coercion():
    """Python started in the C locale puts LC_CTYPE=C.UTF-8 into its own environment (PEP 538).
    Hooks inherit pyrunc's environment, as runc's inherit runc's: drop it when our caller did
    not set it (the environment we were exec'd with, /proc/self/environ, lacks it)."""
    if "LC_CTYPE" in os.environ:
        try:
            with open("/proc/self/environ", "rb") as f:
                if b"\0LC_CTYPE=" not in b"\0" + f.read():
                    del os.environ["LC_CTYPE"]
        except OSError:
            pass


def main(argv=None):
    own_argv = argv is None  # only then may a sealed re-exec repeat this call (sys.orig_argv)
    argv = sys.argv[1:] if argv is None else argv
    if own_argv:
        _undo_locale_coercion()
    logger = Logger()
    try:
        gopts, _, rest = parser.parse(GLOBAL_FLAGS, argv, stop_at_positional=True)
    except UsageError as e:
        sys.stdout.write(f"Incorrect Usage. {e}\n\n{main_help()}")
        logger.error(str(e))
        return 1
    if gopts["log_format"] not in ("text", "json"):
        logger.error(f"invalid log-format: {gopts['log_format']}")
        return 1
    try:
        logger = Logger(gopts["log"] or None, gopts["log_format"], gopts["debug"])
    except OSError as e:
        logger.error(f"failed to open log file {gopts['log']}: {(e.strerror or str(e)).lower()}")
        return 1
    if gopts["debug"]:  # every step of the verb as a level=debug line (pyrunc/trace.py)
        from .. import trace
        trace.enable(logger.debug)
    if gopts["version"]:
        sys.stdout.write(version_text())
        return 0
    if not rest or gopts["help"]:
        sys.stdout.write(main_help())
        return 0
    verb, args = rest[0], rest[1:]
    if verb in ("help", "h"):
        if args and args[0] in COMMANDS:
            sys.stdout.write(parser.command_help(PROG, COMMANDS[args[0]]))
        else:
            sys.stdout.write(main_help())
        return 0
    cmd = COMMANDS.get(verb)
    if cmd is None:
        logger.error(f"No help topic for '{verb}'\n")  # runc's message ends in a newline too
        return 3
    head = parser.leading_flags(cmd.flags, args) if cmd.in_order else args
    if "-h" in head or "--help" in head:
        sys.stdout.write(parser.command_help(PROG, cmd))
        return 0
    try:
        opts, positionals, _ = parser.parse(cmd.flags, args, in_order=cmd.in_order)
    except UsageError as e:
        sys.stdout.write(f"Incorrect Usage: {e}\n\n{parser.command_help(PROG, cmd)}")
        logger.error(str(e))
        return 1
    try:
        parser.check_arity(cmd, positionals)
    except UsageError as e:
        # runc's checkArgs prints a bare "Incorrect Usage." and logs "runc: <reason>"
        sys.stdout.write(f"Incorrect Usage.\n\n{parser.command_help(PROG, cmd)}")
        logger.error(f"{PROG}: {e}")
        return 1

    root = gopts["root"]
    from_xdg = False
    if root is None:  # engines pass --root: rootless.py only without it
        from ..rootless import default_root
        root, from_xdg = default_root()
        gopts["root"] = root
    if not root or os.path.exists(root) and not os.path.isdir(root):
        logger.error(f"--root {root!r}: not a directory")
        return 1
    if from_xdg:
        try:
            from ..api import make_private_root
            make_private_root(root)
        except PyruncError as e:
            logger.error(str(e))
            return 1

    from ..api import Runtime
    try:
        rootless_cgroups = False
        if verb in ROOTLESS_VERBS:
            rootless_cgroups = _rootless_cgroups(gopts)
            if rootless_cgroups and verb in ("ps", "pause", "resume"):
                logger.warning(f"{PROG} {verb} may fail if you don't have the full access to cgroups")
        if verb in SEALED_VERBS:
            from ..api import ensure_sealed
            ensure_sealed(reexec=own_argv)  # may re-exec us through the sealed interpreter
        # create/run/exec: the kernel's cgroup attach lock warms up while we import and check
        # the bundle or the process (runtime/attachlock.py)
        return cmd.handler(Runtime(root, warn=logger.warning, systemd_cgroup=gopts["systemd_cgroup"],
                                   rootless=rootless_cgroups,
                                   warm_cgroups=verb in ("create", "run", "exec")),
                           opts, positionals) or 0
    except (PyruncError, OSError) as e:
        # The type decides, never the text: a PyruncError's text is the message (runc's
        # wording, the same whether it was raised here or in the container's init: errors.py);
        # an OSError that got this far names its file (e.filename) and the kernel's reason, as
        # runc's Go errors do: "open /x: permission denied".
        prefix, code = FAILED.get(verb, ("", 1))
        logger.error(prefix + (str(e) if isinstance(e, PyruncError) else describe(e)))
        return code
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - a traceback is no answer for an engine
        # Never a Python type name or a traceback (unless --debug): one line saying what
        # failed, as engines show it to their users.
        if gopts["debug"]:
            import traceback
            traceback.print_exc()
        logger.error(f"internal error: {verb}: {describe(e)}")
        return 255 if verb == "exec" else 1


def _rootless_cgroups(gopts):
    from ..errors import ConfigError
    from ..rootless import RootlessFlagError, rootless_cgroups
    from ..rootless import systemd_owner_uid as owner
    try:
        return rootless_cgroups(gopts["rootless"], gopts["systemd_cgroup"], owner)
    except RootlessFlagError as e:  # rootless.py is a leaf: its ValueError becomes ours here
        raise ConfigError(str(e)) from None


def entry():
    # No cyclic GC for a CLI call: its imports (30-100 modules) allocate enough to trigger
    # several collections that find nothing (reference counting frees what a verb drops):
    # 5-10% of what pyrunc adds to the interpreter's start. `events` turns it back on to stream.
    import gc
    gc.disable()
    try:
        code = main()
    except KeyboardInterrupt:
        code = 130
    except Exception as e:  # noqa: BLE001 - outside main's own handler (e.g. the log file broke)
        try:
            sys.stderr.write(f"{PROG}: internal error: {describe(e)}\n")
        except Exception:  # noqa: BLE001
            pass
        code = 1
    # Skip the interpreter's teardown (~2.5 ms of every call): nothing of ours is left to
    # flush or close but the standard streams (no atexit handlers, files are closed by `with`).
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None: started with that fd closed
                stream.flush()
    except (BrokenPipeError, ValueError):  # a reader that went away: as Python would, exit 120
        code = code or 120
    os._exit(code)
