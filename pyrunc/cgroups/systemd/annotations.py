"""org.systemd.property.<Name> annotations -> extra unit properties, as runc's initSystemdProps.

The value is GVariant text (what `busctl`/`gdbus` print), parsed as runc's godbus does:
  "uint64 5000000", "@t 5000000", "true", "'inactive-or-failed'", "3" (int32), "2.5"
  (double), "[1, 2]" (array of int32), "@as []" (an empty string array).
<Name> is letters only, at least 3; a name ending in lowercase + "Sec" (TimeoutStopSec) is
sent as "...USec" with the number of seconds times 10^6, as runc does. Whether systemd knows
the property for this unit type is systemd's to say: StartTransientUnit fails with its error.
"""

from ..errors import CgroupError

PREFIX = "org.systemd.property."

# type keyword -> D-Bus signature, with the range of the integer types
_KEYWORDS = {"boolean": "b", "byte": "y", "int16": "n", "uint16": "q", "int32": "i",
             "uint32": "u", "int64": "x", "uint64": "t", "double": "d", "string": "s",
             "objectpath": "o", "signature": "g"}
_RANGES = {"y": (0, 255), "n": (-(1 << 15), (1 << 15) - 1), "q": (0, (1 << 16) - 1),
           "i": (-(1 << 31), (1 << 31) - 1), "u": (0, (1 << 32) - 1),
           "x": (-(1 << 63), (1 << 63) - 1), "t": (0, (1 << 64) - 1)}
_NUMBERS = frozenset("ynqiuxtd")


def properties(annotations):
    """[(name, (signature, value))] for the annotations that carry systemd properties, sorted."""
    out = []
    for key in sorted(annotations or {}):
        if not key.startswith(PREFIX):
            continue
        name = key[len(PREFIX):]
        value = annotations[key]
        if len(name) < 3:
            raise CgroupError(f"annotation {key} name incorrect: too short")
        if not (name.isascii() and name.isalpha()):
            raise CgroupError(f"annotation {key} name incorrect: contains non-alphabetic character")
        if not isinstance(value, str):
            raise CgroupError(f"annotation {key}={value!r} value parse error: not a string")
        try:
            variant = parse_variant(value)
        except ValueError as err:
            raise CgroupError(f"annotation {key}={value} value parse error: {err}") from None
        if name.endswith("Sec") and name[-4:-3].islower():
            name = name[:-3] + "USec"
            sig, number = variant
            if sig not in _NUMBERS or number < 0:
                raise CgroupError(f"annotation {key}={value} value parse error: not a number")
            variant = ("t", int(number * 1_000_000))
        out.append((name, variant))
    return out


def parse_variant(text):
    """GVariant text -> (signature, python value); ValueError with a short reason."""
    p = _Parser(text)
    sig, value = p.value(None)
    p.skip()
    if p.i != len(p.s):
        raise ValueError(f"unexpected {p.s[p.i:]!r}")
    return sig, value


class _Parser:
    def __init__(self, text):
        self.s, self.i = text, 0

    def skip(self):
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def word(self):
        self.skip()
        j = self.i
        while j < len(self.s) and (self.s[j].isalnum() or self.s[j] in "_+-.@"):
            j += 1
        return self.s[self.i:j]

    def value(self, want):
        """One value; `want` is the signature required by a type annotation or the array."""
        self.skip()
        if self.s.startswith("@", self.i):
            end = self.s.find(" ", self.i)
            if end < 0:
                raise ValueError("a type annotation needs a value after it")
            sig = self.s[self.i + 1:end]
            self.i = end
            return self.value(_check_sig(sig))
        word = self.word()
        if word in _KEYWORDS and want is None:
            self.i += len(word)
            return self.value(_KEYWORDS[word])
        if self.i >= len(self.s):
            raise ValueError("no value")
        c = self.s[self.i]
        if c == "[":
            return self.array(want)
        if c in "'\"":
            text = self.string(c)
            sig = want or "s"
            if sig not in "sog":
                raise ValueError(f"a string where type {sig!r} was asked for")
            return sig, text
        if word in ("true", "false"):
            self.i += len(word)
            if want not in (None, "b"):
                raise ValueError(f"a boolean where type {want!r} was asked for")
            return "b", word == "true"
        if word:
            self.i += len(word)
            return _number(word, want)
        raise ValueError(f"unexpected {self.s[self.i:]!r}")

    def string(self, quote):
        out, i = [], self.i + 1
        while i < len(self.s):
            c = self.s[i]
            if c == "\\" and i + 1 < len(self.s):
                nxt = self.s[i + 1]
                out.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
                i += 2
                continue
            if c == quote:
                self.i = i + 1
                return "".join(out)
            out.append(c)
            i += 1
        raise ValueError("unterminated string")

    def array(self, want):
        if want is not None and not want.startswith("a"):
            raise ValueError(f"an array where type {want!r} was asked for")
        elem = want[1:] if want else None
        self.i += 1
        items = []
        self.skip()
        if self.s.startswith("]", self.i):
            self.i += 1
            if elem is None:
                raise ValueError("an empty array needs a type (e.g. @as [])")
            return "a" + elem, []
        while True:
            sig, v = self.value(elem)
            if elem is None:
                elem = sig
            elif sig != elem:
                raise ValueError("array elements of different types")
            items.append(v)
            self.skip()
            if self.s.startswith(",", self.i):
                self.i += 1
                continue
            if self.s.startswith("]", self.i):
                self.i += 1
                return "a" + elem, items
            raise ValueError("expected ',' or ']' in an array")


def _check_sig(sig):
    rest = sig.lstrip("a")
    if len(rest) != 1 or rest not in "bynqiuxtdsog":
        raise ValueError(f"unsupported type {sig!r} (basic types and arrays of them only)")
    return sig


def _number(word, want):
    if want == "d" or (want is None and any(c in word for c in ".eE") and not word.startswith(("0x", "-0x"))):
        try:
            return "d", float(word)
        except ValueError:
            raise ValueError(f"bad number {word!r}") from None
    try:
        n = int(word, 0)
    except ValueError:
        raise ValueError(f"bad number {word!r}") from None
    sig = want or "i"
    if sig not in _RANGES:
        raise ValueError(f"a number where type {sig!r} was asked for")
    low, high = _RANGES[sig]
    if not low <= n <= high:
        if want is None and _RANGES["x"][0] <= n <= _RANGES["x"][1]:
            return "x", n
        raise ValueError(f"{word} is out of range for type {sig!r}")
    return sig, n
