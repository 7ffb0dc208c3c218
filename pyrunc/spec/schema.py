"""A small JSON Schema validator for pyrunc's own schema files (specs/*.schema.json).

Why not ``jsonschema``: importing it costs ~100 ms, and ``pyrunc create`` runs once per
container start. This module interprets only the keywords our schemas use (``KEYWORDS``);
the unit tests check that the schema files stay inside that set and use ``jsonschema`` as
the oracle. Semantics follow draft 2020-12 for those keywords.

    validate(doc, "config", "config.json")     raises ConfigError with one message
    validate(doc, "config#/$defs/process")     a sub-schema, e.g. for exec --process
    iter_errors(doc, "config")                 yields every (path, message)
"""

import os

from ..errors import ConfigError, PyruncError
from ..goparse import DIGITS

# Where the schema files are: pyrunc/specs/ in an installed package (pyproject.toml ships the
# top-level specs/ there as package data), else the checkout's top-level specs/ (bin/pyrunc,
# editable installs). The checkout's only in a checkout (pyproject.toml beside it): an
# installed package's parent is site-packages, where a `specs` directory would be someone
# else's. os.path because pathlib is not imported at interpreter start and would cost more
# than this whole module.
_PACKAGE = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
_CHECKOUT = os.path.dirname(_PACKAGE)
SPECS_DIRS = (os.path.join(_PACKAGE, "specs"), os.path.join(_CHECKOUT, "specs"))

# Every keyword the validator understands; the rest of these are annotations it skips.
KEYWORDS = frozenset({
    "type", "enum", "minimum", "maximum", "minLength", "pattern", "minItems", "items",
    "required", "properties", "additionalProperties", "propertyNames", "$ref",
    "$schema", "$defs", "$comment", "title", "description",
})

_cache: dict[str, dict] = {}
def _text(x):
    """What `^...$` sees under re.search: `$` also matches before one trailing newline."""
    return x[:-1] if x.endswith("\n") else x


_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")

# The patterns our schemas use, as plain predicates: configs from engines hit both, and
# importing `re` costs milliseconds on every create. Any other pattern compiles with `re`.
# (Each returns a truthy value for a match, None for none, like re.search.)
_regexes = {
    "^RLIMIT_[A-Z]+$": lambda x: (t := _text(x)).startswith("RLIMIT_") and len(t) > 7
    and _UPPER.issuperset(t[7:]) or None,
    "^[1-9][0-9]*[KMG]B$": lambda x: len(t := _text(x)) >= 3 and t[0] in "123456789"
    and DIGITS.issuperset(t[1:-2]) and t[-2] in "KMG" and t[-1] == "B" or None,
}


def _load(name):
    """The schema named ``name`` (optionally ``name#/$defs/x``) with every $ref replaced by
    its target, so the walk never resolves references."""
    schema = _cache.get(name)
    if schema is not None:
        return schema
    base, _, fragment = name.partition("#")
    root = _cache.get(base)
    if root is None:
        from .. import jsonio

        root = jsonio.loads(_read_schema(base + ".schema.json"))
        defs = root.get("$defs", {})
        done: dict[str, dict] = {}

        def resolve(node):
            # Only "#/$defs/<name>" refs, and no siblings next to a $ref (the tests check both).
            if isinstance(node, dict):
                ref = node.get("$ref")
                if ref is not None:
                    key = ref[len("#/$defs/"):]
                    if key not in done:
                        done[key] = {}  # placeholder keeps a self-referencing def finite
                        done[key].update(resolve(defs[key]))
                    return done[key]
                return {k: (v if k in ("enum", "required", "$defs") else resolve(v)) for k, v in node.items()}
            if isinstance(node, list):
                return [resolve(v) for v in node]
            return node

        root = resolve(root)
        root["$defs"] = {k: resolve({"$ref": "#/$defs/" + k}) for k in defs}
        _cache[base] = root
    schema = root
    if fragment:
        for part in fragment.strip("/").split("/"):
            schema = schema[part]
    _cache[name] = schema
    return schema


def _read_schema(filename):
    for directory in SPECS_DIRS:
        if directory != SPECS_DIRS[0] and not os.path.isfile(os.path.join(_CHECKOUT, "pyproject.toml")):
            continue
        try:
            with open(os.path.join(directory, filename), "rb") as f:
                return f.read()
        except FileNotFoundError:
            continue
    raise PyruncError(f"pyrunc is installed without its schema file {filename} (looked in "
                      f"{' and '.join(SPECS_DIRS)})")


def _is_type(x, t):
    # JSON booleans are not numbers, although bool subclasses int in Python; an integral
    # float (1.0) is an integer, as in jsonschema.
    if t == "string":
        return isinstance(x, str)
    if t == "object":
        return isinstance(x, dict)
    if t == "array":
        return isinstance(x, list)
    if t == "integer":
        if isinstance(x, int):
            return not isinstance(x, bool)
        return isinstance(x, float) and x.is_integer()
    if t == "boolean":
        return isinstance(x, bool)
    if t == "number":
        return isinstance(x, (int, float)) and not isinstance(x, bool)
    if t == "null":
        return x is None
    raise ValueError(f"schema type {t!r} is not supported")


def _in_enum(x, values):
    for v in values:
        if v == x and isinstance(v, bool) == isinstance(x, bool):
            return True
    return False


def _show(x):
    import json

    try:
        text = json.dumps(x, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(x)
    if not text.isprintable():
        # a hostile config's value goes to an admin's terminal and log: no escape sequences,
        # no line separators (JSON leaves U+2028, C1 controls and lone surrogates raw)
        text = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" if ord(c) < 0x10000 else
                       f"\\U{ord(c):08x}" for c in text)
    return text if len(text) <= 80 else text[:77] + "..."


def _not_unicode(text):
    """A lone surrogate: JSON's "\\ud800" escape parses to one, which no path, name or
    argument can carry (encoding it to UTF-8 fails)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _bad_text(text):
    """Why a string cannot be used: every config string ends up in a C string or a file."""
    import json

    shown = json.dumps(text)  # ASCII escapes: the message itself stays printable
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    if "\0" in text:
        return f"{shown} contains a NUL byte"
    return f"{shown} is not valid Unicode text (a lone surrogate)"


def _walk(x, s, path, out, first):
    """Check ``x`` against ``s``, appending (path, message) to ``out``; True means stop.

    Depth-first in document order, so the first error appended is the first one in the
    file. A value of the wrong type gets only that one message."""
    t = s.get("type")
    if t is not None:
        if not (_is_type(x, t) if isinstance(t, str) else any(_is_type(x, u) for u in t)):
            want = t if isinstance(t, str) else " or ".join(t)
            out.append((path, f"{_show(x)} is not of type {want}"))
            return first
    e = s.get("enum")
    if e is not None and not _in_enum(x, e):
        out.append((path, f"{_show(x)} is not one of {', '.join(_show(v) for v in e)}"))
        if first:
            return True

    if isinstance(x, dict):
        req = s.get("required")
        if req:
            for k in req:
                if k not in x:
                    out.append((path, f'"{k}" is required'))
                    if first:
                        return True
        names = s.get("propertyNames")
        if names is not None:
            for k in x:
                n = len(out)
                _walk(k, names, path, out, False)
                if len(out) > n:
                    del out[n + 1:]
                    out[n] = (path, f"property name {out[n][1]}")
                    if first:
                        return True
        props = s.get("properties")
        extra = s.get("additionalProperties")
        if props is not None or extra is not None:
            for k, v in x.items():
                sub = props.get(k) if props is not None else None
                if sub is None:
                    sub = extra
                    if sub is None or sub is True:
                        continue
                    if names is None and ("\0" in k or not k.isascii() and _not_unicode(k)):
                        # a free-form key (sysctl name, annotation, device): used as text too
                        out.append((path, f"property name {_bad_text(k)}"))
                        if first:
                            return True
                        continue
                    if sub is False:
                        out.append((path, f'"{k}" is not allowed'))
                        if first:
                            return True
                        continue
                if _walk(v, sub, path + (k,), out, first):
                    return True

    elif isinstance(x, list):
        m = s.get("minItems")
        if m is not None and len(x) < m:
            out.append((path, f"{_show(x)} should have at least {m} item{'s' if m != 1 else ''}"))
            if first:
                return True
        it = s.get("items")
        if it is not None:
            if len(it) == 1 and it.get("type") == "string":
                # Fast path for the common list of strings (env, mount options, syscall names).
                for i, v in enumerate(x):
                    if not isinstance(v, str):
                        out.append((path + (i,), f"{_show(v)} is not of type string"))
                        if first:
                            return True
                    elif "\0" in v or not v.isascii() and _not_unicode(v):
                        out.append((path + (i,), _bad_text(v)))
                        if first:
                            return True
            else:
                for i, v in enumerate(x):
                    if _walk(v, it, path + (i,), out, first):
                        return True

    elif isinstance(x, str):
        if "\0" in x or not x.isascii() and _not_unicode(x):
            out.append((path, _bad_text(x)))
            if first:
                return True
        m = s.get("minLength")
        if m is not None and len(x) < m:
            out.append((path, f"{_show(x)} is shorter than {m} character{'s' if m != 1 else ''}"))
            if first:
                return True
        p = s.get("pattern")
        if p is not None:
            rx = _regexes.get(p)
            if rx is None:
                import re

                rx = _regexes[p] = re.compile(p).search
            if rx(x) is None:
                out.append((path, f"{_show(x)} does not match {_show(p)}"))
                if first:
                    return True

    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        lo = s.get("minimum")
        if lo is not None and x < lo:
            out.append((path, f"{_show(x)} is less than the minimum of {lo}"))
            if first:
                return True
        hi = s.get("maximum")
        if hi is not None and x > hi:
            out.append((path, f"{_show(x)} is greater than the maximum of {hi}"))
            if first:
                return True
    return False


def format_path(path):
    """("linux", "seccomp", "syscalls", 2, "action") -> 'linux.seccomp.syscalls[2].action';
    keys that are not identifiers (annotation keys) are quoted: annotations["a.b"]."""
    text = ""
    for p in path:
        if isinstance(p, int):
            text += f"[{p}]"
        elif p.isidentifier():
            text += "." + p if text else p
        else:
            text += "[" + _show(p) + "]"
    return text


def iter_errors(doc, schema_name="config"):
    """Every error as (path tuple, message), in document order."""
    out: list[tuple[tuple, str]] = []
    _walk(doc, _load(schema_name), (), out, False)
    return iter(out)


def validate(doc, schema_name="config", source="config.json"):
    """Raise ConfigError naming ``source`` and the field for the first error in ``doc``."""
    out: list[tuple[tuple, str]] = []
    if _walk(doc, _load(schema_name), (), out, True) or out:
        path, message = out[0]
        where = format_path(path)
        raise ConfigError(f"{source}: {where}: {message}" if where else f"{source}: {message}")
