"""The layering docs/ARCHITECTURE.md promises, checked on the source with `ast` (nothing is
imported, so function-level imports count as much as module-level ones):

* each package imports only what its row of the "Packages" table allows ("may import"), plus
  the leaf modules (rows that may import nothing: "–"), which import nothing of pyrunc's;
* no module imports a `_private` name of another module (`from m import _x`, `m._x`);
* no import cycles between modules;
* no module sets another module's globals (`other.name = ...`): what a layer decides reaches the
  next one as an argument;
* ctypes only in pyrunc/linux/.
"""

import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PKG = os.path.join(ROOT, "pyrunc")
DOC = os.path.join(ROOT, "docs", "ARCHITECTURE.md")
# what a "may import" cell may name besides pyrunc's own units
OUTSIDE = {"stdlib", "python-prctl", "jeepney"}


def _modules():
    """{dotted name: path} of every module of the package."""
    found = {}
    for top, dirs, files in os.walk(PKG):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(top, f)
                parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts.pop()
                found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_package(name):
    return MODULES[name].endswith("__init__.py")


def _imports(name):
    """[(imported module, [names taken from it], line)] and [(module, attribute, line, stored)]
    of one module, at any depth (a function-level import is an import); stored: the attribute
    is assigned to (`module.attribute = ...`)."""
    tree = ast.parse(open(MODULES[name]).read())
    here = name.split(".") if _is_package(name) else name.split(".")[:-1]
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                found.append((a.name, [], node.lineno))
                if a.name in MODULES:
                    aliases[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            names = []
            for a in node.names:
                sub = f"{source}.{a.name}"
                if sub in MODULES:  # `from . import x`: the module x
                    found.append((sub, [], node.lineno))
                    aliases[a.asname or a.name] = sub
                else:
                    names.append(a.name)
            if names or source not in MODULES:
                found.append((source, names, node.lineno))
    attributes = [(aliases[n.value.id], n.attr, n.lineno, isinstance(n.ctx, (ast.Store, ast.Del)))
                  for n in ast.walk(tree)
                  if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                  and n.value.id in aliases]
    return found, attributes


IMPORTS = {name: _imports(name) for name in MODULES}


def _edges(name):
    """The pyrunc modules `name` imports."""
    return {m for m, _, _ in IMPORTS[name][0] if m in MODULES and m != name}


def _private(attr):
    return attr.startswith("_") and not attr.startswith("__")


def _unit(module):
    """The table's unit of a module: "runtime" for pyrunc.runtime.*, "errors" for
    pyrunc.errors, "pyrunc" for the package's own __init__."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "pyrunc"


def _table():
    """{unit: set of units it may import} from the "Packages" table of docs/ARCHITECTURE.md.
    Rows whose first cell names one `pyrunc/...` module or package; the last cell is the list
    (commas or semicolons; a parenthesis is a remark)."""
    text = open(DOC).read()
    section = text.split("## Packages", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3:
            continue
        paths = re.findall(r"`pyrunc/([^`]*)`", cells[0])
        if len(paths) != 1:
            continue
        path = paths[0].rstrip("/")
        unit = "pyrunc" if path == "__init__.py" else path.removesuffix(".py")
        allowed = set()
        for token in re.split(r"[,;]", re.sub(r"\([^)]*\)", "", cells[-1])):
            token = token.strip().rstrip("/")
            if token and token != "–":
                allowed.add(token)
        table[unit] = allowed
    return table


TABLE = _table()
UNITS = {_unit(m) for m in MODULES}
LEAVES = {u for u, allowed in TABLE.items() if not allowed}


def test_the_table_covers_every_package_and_names_only_real_ones():
    assert set(TABLE) == UNITS, (set(TABLE) ^ UNITS)
    for unit, allowed in TABLE.items():
        assert allowed <= UNITS | OUTSIDE, (unit, allowed - UNITS - OUTSIDE)
    assert {"errors", "jsonio", "trace", "version"} <= LEAVES


def test_each_package_imports_only_what_the_table_allows():
    wrong = []
    for name in MODULES:
        unit = _unit(name)
        for target in _edges(name):
            other = _unit(target)
            if other != unit and other not in TABLE[unit] and other not in LEAVES:
                wrong.append(f"{name} imports {target}: {unit} may import {sorted(TABLE[unit])}")
    assert wrong == []


def test_leaves_import_nothing_of_pyruncs():
    wrong = [f"{name} imports {t}" for name in MODULES if _unit(name) in LEAVES
             for t in _edges(name) if _unit(t) != _unit(name)]
    assert wrong == []


def test_no_private_name_crosses_a_module():
    wrong = []
    for name, (imports, attributes) in IMPORTS.items():
        for source, names, line in imports:
            if source.split(".")[0] != "pyrunc":
                continue
            wrong += [f"{name}:{line} from {source} import {n}" for n in names if _private(n)]
        wrong += [f"{name}:{line} {source}.{attr}" for source, attr, line, _ in attributes
                  if source != name and _private(attr)]
    assert wrong == []


def test_no_module_sets_another_modules_globals():
    wrong = [f"{name}:{line} sets {source}.{attr}" for name, (_, attributes) in IMPORTS.items()
             for source, attr, line, stored in attributes if stored and source != name]
    assert wrong == []


def test_no_import_cycles():
    """Tarjan's strongly connected components over every import, at any depth."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(_edges(v)):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(MODULES):
        if v not in index:
            visit(v)
    assert cycles == []


def test_ctypes_only_in_linux():
    users = sorted(name for name, (imports, _) in IMPORTS.items()
                   if any(m == "ctypes" or m.startswith("ctypes.") for m, _, _ in imports))
    assert users and all(u.startswith("pyrunc.linux.") for u in users), users


def test_the_checks_can_fail(tmp_path):
    """The parser sees what the rules forbid (a check that finds nothing proves nothing)."""
    global MODULES
    saved = MODULES
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from .linux.syscalls import _private\n    import ctypes\n"
                   "    from .runtime import lifecycle\n    lifecycle.flag = lifecycle._x\n")
    MODULES = dict(saved, **{"pyrunc.bad": str(bad)})
    try:
        imports, attributes = _imports("pyrunc.bad")
    finally:
        MODULES = saved
    assert ("pyrunc.linux.syscalls", ["_private"], 2) in imports
    assert ("ctypes", [], 3) in imports
    assert ("pyrunc.runtime.lifecycle", [], 4) in imports
    assert ("pyrunc.runtime.lifecycle", "_x", 5, False) in attributes
    assert ("pyrunc.runtime.lifecycle", "flag", 5, True) in attributes
