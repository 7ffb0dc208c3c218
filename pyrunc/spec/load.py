"""Read a bundle's config.json (or an exec process.json) and check it: no side effects."""

import os

from .. import jsonio
from ..errors import BundleError, ConfigError
from . import schema, semantic

# No OCI document nests deeper than ~7 levels (linux.seccomp.syscalls[].args[].op); the
# bound keeps every later walk (validation, state.json, messages) far from the stack's end.
MAX_DEPTH = 64


def parse_json(raw, what):
    """A config-like document from bytes: ConfigError naming `what` for bad UTF-8, bad JSON
    or nesting deeper than MAX_DEPTH. Integral floats (1000.0) become ints: the schema
    accepts them as integers, and the syscalls that take them want ints."""
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"{what}: invalid JSON: not UTF-8 text (byte 0x{raw[e.start]:02x} at "
                              f"offset {e.start})") from None
    try:
        return jsonio.loads(raw, max_depth=MAX_DEPTH, int_floats=True)
    except jsonio.NestingError as e:
        raise ConfigError(f"{what}: {e}") from None
    except ValueError as e:
        raise ConfigError(f"{what}: invalid JSON: {e}") from None


def read_json(path, what):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{what}: no such file or directory: {path}") from None
    except OSError as e:
        raise ConfigError(f"{what}: {(e.strerror or str(e)).lower()}: {path}") from None
    return parse_json(raw, what)


def load_bundle(bundle):
    """Return (config, rootfs) for a bundle directory, or raise with a clear reason."""
    if not os.path.isdir(bundle):
        raise BundleError(f"bundle {bundle}: no such directory")
    config = read_json(os.path.join(bundle, "config.json"), "config.json")
    if not isinstance(config, dict):
        raise ConfigError("config.json: the document must be a JSON object")
    schema.validate(config, "config", "config.json")
    semantic.check_config(config)
    rootfs = os.path.normpath(os.path.join(bundle, config["root"]["path"]))
    if not os.path.isdir(rootfs):
        raise BundleError(f"rootfs ({rootfs}) does not exist or is not a directory "
                          f"(config.json: root.path is {config['root']['path']!r})")
    return config, rootfs


def read_resources(source):
    """An `update --resources` document: a file path, or "-" for standard input."""
    import sys
    if source == "-":
        what = "resources (stdin)"
        doc = parse_json(sys.stdin.buffer.read(), what)
    else:
        doc = read_json(source, source)
        what = source
    if not isinstance(doc, dict):
        raise ConfigError(f"{what}: the document must be a JSON object")
    schema.validate(doc, "config#/$defs/linuxResources", what)
    return doc
