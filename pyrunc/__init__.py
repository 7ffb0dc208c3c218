"""pyrunc: an OCI runtime-spec container runtime with runc's command line.

    from pyrunc import Runtime
    rt = Runtime(root="/run/pyrunc")
    rt.create("c1", bundle="/srv/bundle")
    rt.start("c1")
    print(rt.state("c1").status)
"""

from .version import SPEC_VERSION, __version__

__all__ = ["SPEC_VERSION", "__version__"]


def __getattr__(name):
    # Keep `import pyrunc` cheap: the API module is loaded on first use.
    if name == "Runtime":
        from .api import Runtime
        return Runtime
    raise AttributeError(name)
