"""Compact JSON for the verbs engines call on every container (start, kill, delete, ps).

The stdlib's `json` imports `re`, which imports `enum`: ~10 ms of a ~35 ms `pyrunc start`.
Its C accelerator `_json` holds the real scanner and encoder and imports neither, so these
two functions drive it directly: the same output as `json.dumps(obj, separators=(",", ":"))`
(ASCII, `sort_keys` optional) and the same parse as `json.loads`; `dumps_indent` is
`json.dumps(obj, indent=...)` (what `state` prints). Without `_json` (not CPython) they fall
back to `json`.
"""

import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None  # type: ignore[assignment]


class _ScanContext:
    """The attributes `_json.make_scanner` reads (json.decoder.JSONDecoder's defaults)."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float: "Callable[[str], object]" = float
    parse_int = int
    memo = None

    @staticmethod
    def parse_constant(name):
        return {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}[name]


_WHITESPACE = " \t\n\r"


class NestingError(ValueError):
    """The document nests arrays/objects deeper than allowed (or than the stack allows)."""


_SLACK = 17


def _stack_depth():
    frame: FrameType | None = sys._getframe(1)
    n = 0
    while frame is not None:
        n += 1
        frame = frame.f_back
    return n


class _IntFloatContext(_ScanContext):
    """Numbers written as floats that are integral (1000.0, 1e3) parse as ints."""

    @staticmethod
    def parse_float(text):
        value = float(text)
        return int(value) if value.is_integer() else value


def loads(text, max_depth=None, int_floats=False):
    """json.loads; max_depth bounds the nesting of arrays and objects (NestingError beyond it);
    int_floats turns integral floats into ints.

    The C scanner recurses once per level and, on CPython 3.11, counts against the
    interpreter's recursion limit: lowering the limit for the call bounds the depth without a
    second walk over the document. (3.12+ counts C recursion apart; there the scanner's own
    limit still ends in NestingError, and callers that walk the document bound it themselves.)
    """
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    if _json is None:
        import json
        try:
            return json.loads(text)
        except RecursionError:
            raise NestingError("nested too deeply") from None
    start = len(text) - len(text.lstrip(_WHITESPACE))
    old_limit = None
    if max_depth is not None:
        old_limit = sys.getrecursionlimit()
        # + slack: C calls on the stack (a test runner's) also count; a document within
        # max_depth always parses, one that fails is surely deeper than max_depth
        sys.setrecursionlimit(_stack_depth() + max_depth + _SLACK)
    try:
        # typeshed types the context as a scanner; any object with these attributes does
        scanner = _json.make_scanner(_IntFloatContext if int_floats else _ScanContext)  # type: ignore[arg-type]
        value, end = scanner(text, start)
    except (StopIteration, SystemError):
        # SystemError: to raise its JSONDecodeError the C scanner looks json.decoder up in
        # sys.modules, and fails bare when it is not there (that is the point of this module)
        end = None
    except RecursionError:
        raise NestingError("nested too deeply" if max_depth is None else
                           f"nested too deeply (more than {max_depth} levels)") from None
    finally:
        if old_limit is not None:
            sys.setrecursionlimit(old_limit)
    if end is None or text[end:].strip(_WHITESPACE):
        import json  # only to raise json's own error, with its position and wording
        return json.loads(text)
    return value


def _unserializable(obj):
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def dumps(obj, sort_keys=False):
    if _json is None:
        import json
        return json.dumps(obj, separators=(",", ":"), sort_keys=sort_keys)
    encode = _json.make_encoder({}, _unserializable, _json.encode_basestring_ascii, None, ":", ",",
                                sort_keys, False, True)
    return "".join(encode(obj, 0))


def dumps_indent(obj, indent=2):
    """json.dumps(obj, indent=indent): the same text (ASCII, ", " / ": " separators, empty
    containers as {} and []). 3.11's C encoder ignores indent, so the nesting is walked here and
    the scalars are left to _json's compact encoder."""
    if _json is None:
        import json
        return json.dumps(obj, indent=indent)
    step = " " * indent if isinstance(indent, int) else indent
    scalar = _json.make_encoder({}, _unserializable, _json.encode_basestring_ascii, None, ": ", ", ",
                                False, False, True)
    out = []

    def walk(value, pad):
        if isinstance(value, dict):
            if not value:
                out.append("{}")
                return
            inner = pad + step
            first = True
            for key, item in value.items():
                out.append(("{\n" if first else ",\n") + inner)
                first = False
                if not isinstance(key, str):  # json's rule: a scalar key as its JSON text
                    key = "".join(scalar(key, 0))
                out.append(_json.encode_basestring_ascii(key) + ": ")
                walk(item, inner)
            out.append("\n" + pad + "}")
        elif isinstance(value, (list, tuple)):
            if not value:
                out.append("[]")
                return
            inner = pad + step
            first = True
            for item in value:
                out.append(("[\n" if first else ",\n") + inner)
                first = False
                walk(item, inner)
            out.append("\n" + pad + "]")
        else:
            out.extend(scalar(value, 0))

    walk(obj, "")
    return "".join(out)
