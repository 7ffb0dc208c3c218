"""pyproject.toml lists pyrunc's packages by hand (setuptools' `find` cannot also map specs/ into
the package): the list must name every package directory, or a wheel would miss modules."""

import os
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_package_is_listed():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        tool = tomllib.load(f)["tool"]["setuptools"]
    found = {os.path.relpath(d, ROOT).replace("/", ".") for d, _, files in os.walk(os.path.join(ROOT, "pyrunc"))
             if "__init__.py" in files}
    assert set(tool["packages"]) == found | {"pyrunc.specs"}
    assert tool["package-dir"] == {"pyrunc.specs": "specs"}  # the top-level specs/ stays the source
    assert tool["package-data"]["pyrunc.specs"] == ["*.schema.json"]


def test_schemas_come_from_the_package_or_the_checkout_only(tmp_path):
    """An installed package without pyrunc/specs/ (a broken install) must not read a `specs`
    directory that happens to sit in site-packages beside it: it says what is missing."""
    import shutil
    import subprocess
    import sys
    site = tmp_path / "site-packages"
    shutil.copytree(os.path.join(ROOT, "pyrunc"), site / "pyrunc",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (site / "specs").mkdir()
    (site / "specs" / "config.schema.json").write_text('{"type": "object"}')  # someone else's
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from pyrunc.spec import schema\n"
            "try:\n    schema.validate({}, 'config')\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    r = subprocess.run([sys.executable, "-I", "-c", code, str(site)], capture_output=True, text=True, timeout=60)
    assert r.stdout.startswith("PyruncError pyrunc is installed without its schema file config.schema.json"), r
    # with the package data in place, the real schema is used
    shutil.copytree(os.path.join(ROOT, "specs"), site / "pyrunc" / "specs")
    r = subprocess.run([sys.executable, "-I", "-c", code, str(site)], capture_output=True, text=True, timeout=60)
    assert r.stdout.startswith('ConfigError config.json: "ociVersion" is required'), r
