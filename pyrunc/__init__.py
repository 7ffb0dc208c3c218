"""pyrunc: an OCI runtime-spec container runtime with runc's command line.

    from pyrunc import Runtime
    rt = Runtime(root="/run/pyrunc")
    rt.create("c1", bundle="/srv/bundle")
    rt.start("c1")
    print(rt.state("c1").status)
"""

__all__ = ["SPEC_VERSION", "Runtime", "__version__"]


def __getattr__(name):
    # Keep `import pyrunc` cheap (every verb imports it): pyrunc/version.py and the API module
    # are loaded on first use.
    if name in ("SPEC_VERSION", "__version__"):
        from . import version
        return getattr(version, name)
    if name == "Runtime":
        from .api import Runtime
        return Runtime
    raise AttributeError(name)
