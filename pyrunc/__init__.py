"""pyrunc: an OCI runtime-spec container runtime with runc's command line.

    from pyrunc import Runtime
    rt = Runtime(root="/run/pyrunc")
    rt.create("c1", bundle="/srv/bundle")
    rt.start("c1")
    print(rt.state("c1").status)
"""

__version__ = "0.1.0"
SPEC_VERSION = "1.2.0"


def __getattr__(name):
    # Keep `import pyrunc` cheap: the API module is loaded on first use.
    if name == "Runtime":
        from .api import Runtime
        return Runtime
    raise AttributeError(name)
