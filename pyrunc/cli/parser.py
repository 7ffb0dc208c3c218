"""A small declarative parser with Go's flag syntax, as runc (urfave/cli) accepts it.

`-flag` and `--flag` are the same; values come as `--flag value` or `--flag=value`;
booleans take `--flag` or `--flag=true|false`; `--` ends the flags. Unlike argparse
it costs nothing to import, and flags after the positionals are accepted as runc does.
"""

from ..errors import UsageError


class Flag:
    __slots__ = ("names", "kind", "dest", "default", "help", "repeat")

    def __init__(self, names, kind="str", default=None, help="", dest=None, repeat=False):
        self.names = names if isinstance(names, tuple) else (names,)
        self.kind = kind
        self.dest = dest or self.names[0].replace("-", "_")
        self.default = default if default is not None else ([] if repeat else (False if kind == "bool" else None))
        self.help = help
        self.repeat = repeat


class Command:
    __slots__ = ("name", "summary", "args_usage", "description", "flags", "min_args", "max_args", "handler",
                 "in_order")

    def __init__(self, name, summary, args_usage, flags, min_args, max_args, handler, description="",
                 in_order=False):
        # in_order: flags end at the first positional (urfave/cli's SkipArgReorder, runc's
        # `exec ID sh -c ...`), so the command's own arguments may look like our flags
        self.in_order = in_order
        self.name = name
        self.summary = summary
        self.args_usage = args_usage
        self.flags = flags
        self.min_args = min_args
        self.max_args = max_args
        self.handler = handler
        self.description = description


def parse(flags, argv, *, stop_at_positional=False, in_order=False):
    """Return (options dict, positionals, rest). `rest` is what follows the first positional
    when stop_at_positional (used for the global flags before the verb). With in_order,
    everything from the first positional on is positional."""
    by_name = {n: f for f in flags for n in f.names}
    opts = {f.dest: (list(f.default) if f.repeat else f.default) for f in flags}
    positionals = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            positionals.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            if stop_at_positional:
                return opts, [], argv[i - 1:]
            if in_order:
                positionals.extend(argv[i - 1:])
                break
            positionals.append(arg)
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        flag = by_name.get(name)
        if flag is None or name == "":
            if positionals:
                # urfave/cli moves only the command's own flags before the positionals and Go's
                # flag parsing stops at the first positional, so an unknown dash-argument after
                # it is an argument: `kill ID -9` sends signal -9 (and fails in kill(2)).
                positionals.append(arg)
                continue
            raise UsageError(f"flag provided but not defined: -{name}")
        if flag.kind == "bool":
            if eq and value.lower() not in ("true", "false", "1", "0", "t", "f"):
                raise UsageError(f'invalid boolean value "{value}" for -{name}')
            opts[flag.dest] = (value.lower() in ("true", "1", "t")) if eq else True
            continue
        if not eq:
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: -{name}")
            value = argv[i]
            i += 1
        if flag.kind == "int":
            try:
                value = int(value, 0)
            except ValueError:
                raise UsageError(f'invalid value "{value}" for flag -{name}: parse error') from None
        if flag.repeat:
            opts[flag.dest].append(value)
        else:
            opts[flag.dest] = value
    return opts, positionals, []


def leading_flags(flags, argv):
    """The arguments before the first positional (flag values skipped): where an in_order
    command looks for -h/--help."""
    by_name = {n: f for f in flags for n in f.names}
    out = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            break
        out.append(arg)
        name, eq, _ = arg.lstrip("-").partition("=")
        flag = by_name.get(name)
        i += 2 if flag is not None and flag.kind != "bool" and not eq else 1
    return out


def check_arity(cmd, positionals):
    n = len(positionals)
    if cmd.min_args == cmd.max_args and n != cmd.min_args:
        raise UsageError(f'"{cmd.name}" requires exactly {cmd.min_args} argument(s)')
    if n < cmd.min_args:
        raise UsageError(f'"{cmd.name}" requires a minimum of {cmd.min_args} argument(s)')
    if cmd.max_args is not None and n > cmd.max_args:
        raise UsageError(f'"{cmd.name}" requires a maximum of {cmd.max_args} argument(s)')


def flag_help(flags):
    rows = []
    for f in flags:
        names = ", ".join(("--" if len(n) > 1 else "-") + n + ("" if f.kind == "bool" else " value")
                          for n in f.names)
        text = f.help
        if f.kind == "int" and f.default is not None:
            text += f" (default: {f.default})"
        elif f.kind == "str" and f.default:
            text += f' (default: "{f.default}")'
        rows.append((names, text))
    width = max((len(r[0]) for r in rows), default=0)
    return "".join(f"   {n.ljust(width)}  {t}\n" for n, t in rows)


def command_help(prog, cmd):
    usage = f"{prog} {cmd.name}" + (" [command options]" if cmd.flags else "") + (
        f" {cmd.args_usage}" if cmd.args_usage else "")
    text = f"NAME:\n   {prog} {cmd.name} - {cmd.summary}\n\nUSAGE:\n   {usage}\n"
    if cmd.description:
        text += f"\nDESCRIPTION:\n   {cmd.description}\n"
    if cmd.flags:
        text += "\nOPTIONS:\n" + flag_help(cmd.flags)
    return text
