"""pyrunc.jsonio against the stdlib's json: the same text out, the same values in, the same errors."""

import json
import math
import random
import subprocess
import sys

import pytest

from pyrunc import jsonio

DOCS = [
    {}, [], "", 0, -1, 2**70, 1.5, 1e100, True, False, None,
    {"id": "c1", "pid": 42, "annotations": {"a": "é\n\"\\\t<&>"}, "list": [1, [2, {}], None]},
    ["\u2028", "\ud83d\ude00", "\x00\x1f"],
    {"b": 1, "a": {"d": 2, "c": 3}},
]


def random_doc(rng, depth=0):
    kind = rng.randrange(7 if depth < 4 else 4)
    if kind == 0:
        return rng.randrange(-10**12, 10**12)
    if kind == 1:
        return rng.choice([None, True, False, 0.25, -3.5e-7])
    if kind in (2, 3):
        return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0, 0x3000)]))
                       for _ in range(rng.randrange(8)))
    if kind in (4, 5):
        return {f"k{rng.randrange(99)}": random_doc(rng, depth + 1)
                for _ in range(rng.randrange(5))}
    return [random_doc(rng, depth + 1) for _ in range(rng.randrange(5))]


@pytest.mark.parametrize("doc", DOCS + [random_doc(random.Random(seed)) for seed in range(200)])
def test_same_as_json(doc):
    assert jsonio.dumps(doc) == json.dumps(doc, separators=(",", ":"))
    assert jsonio.dumps(doc, sort_keys=True) == json.dumps(doc, separators=(",", ":"), sort_keys=True)
    assert jsonio.dumps_indent(doc) == json.dumps(doc, indent=2)
    assert jsonio.dumps_indent(doc, "\t") == json.dumps(doc, indent="\t")
    for text in (json.dumps(doc), json.dumps(doc, indent=2), f" \n{json.dumps(doc)}\n\t"):
        assert jsonio.loads(text) == json.loads(text)
        assert jsonio.loads(text.encode()) == json.loads(text)


def test_indent_scalar_keys():
    doc = {3: [], 2.5: {}, None: (1, 2), True: {"a": [{}]}}
    assert jsonio.dumps_indent(doc) == json.dumps(doc, indent=2)


def test_special_floats():
    assert math.isnan(jsonio.loads("NaN")) and jsonio.loads("[-Infinity]") == [float("-inf")]
    assert jsonio.dumps([float("inf")]) == "[Infinity]"


@pytest.mark.parametrize("text", ["", " ", "{", "{} x", "[1,]", "nul", '{"a" 1}', '"\\x"', "[1] [2]"])
def test_errors_are_json_errors(text):
    with pytest.raises(json.JSONDecodeError) as ours:
        jsonio.loads(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert str(ours.value) == str(theirs.value)


def test_unserializable():
    with pytest.raises(TypeError, match="Object of type object is not JSON serializable"):
        jsonio.dumps({"a": object()})


def test_imports_neither_json_nor_re():
    root = __file__.rsplit("/tests/", 1)[0]
    code = (f"import sys; sys.path.insert(0, {root!r}); from pyrunc import jsonio; "
            "jsonio.loads(jsonio.dumps({'a': [1]})); print(sorted({'json', 're', 'enum'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize("text", ["{not json", "[1,", '{"a": 1} x', ""])
def test_errors_without_json_imported(text):
    """The C scanner needs json.decoder in sys.modules to raise its error: a process that never
    imported json (the CLI) must still get json's JSONDecodeError, with json's message."""
    root = __file__.rsplit("/tests/", 1)[0]
    code = (f"import sys; sys.path.insert(0, {root!r}); from pyrunc import jsonio\n"
            f"try:\n    jsonio.loads({text!r})\nexcept ValueError as e:\n    print(type(e).__name__, e)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert out.stdout.strip() == f"JSONDecodeError {theirs.value}", out.stderr
