"""Compact JSON for the verbs engines call on every container (start, kill, delete, ps).

The stdlib's `json` imports `re`, which imports `enum`: ~10 ms of a ~35 ms `pyrunc start`.
Its C accelerator `_json` holds the real scanner and encoder and imports neither, so these
two functions drive it directly: the same output as `json.dumps(obj, separators=(",", ":"))`
(ASCII, `sort_keys` optional) and the same parse as `json.loads`. Pretty-printed output
(`state`, `spec`) still uses `json`. Without `_json` (not CPython) they fall back to `json`.
"""

try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None


class _ScanContext:
    """The attributes `_json.make_scanner` reads (json.decoder.JSONDecoder's defaults)."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = None

    @staticmethod
    def parse_constant(name):
        return {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}[name]


_WHITESPACE = " \t\n\r"


def loads(text):
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    if _json is None:
        import json
        return json.loads(text)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _json.make_scanner(_ScanContext)(text, start)
    except (StopIteration, SystemError):
        # SystemError: to raise its JSONDecodeError the C scanner looks json.decoder up in
        # sys.modules, and fails bare when it is not there (that is the point of this module)
        end = None
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
