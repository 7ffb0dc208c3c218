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
