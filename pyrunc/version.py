"""pyrunc's version and every OCI runtime-spec version it reads or writes, in one place.

A leaf: imports nothing of pyrunc's, so any package may use it. Where two constants differ,
the comment says why (each is the value runc-compatible callers see today).
"""

import os

__version__ = "0.1.0"  # pyproject.toml's version

# The runtime-spec pyrunc implements: `pyrunc --version`'s "spec:", `features`' ociVersionMax,
# `pyrunc state`'s ociVersion and the seccomp agent's state (runc >= 1.2 says 1.2.x there too).
SPEC_VERSION = "1.2.0"

# The oldest config.json version accepted: `features`' ociVersionMin.
SPEC_VERSION_MIN = "1.0.0"

# config.json versions accepted: 1.0.0 through 1.<SUPPORTED_MINOR_MAX>.x. One minor past
# SPEC_VERSION on purpose: engines built on a newer runtime-spec write their own version into
# config.json, and runc does not refuse it either (it does not check ociVersion at all).
SUPPORTED_MAJOR = 1
SUPPORTED_MINOR_MAX = 3

# The state hooks read on stdin: runc 1.1's (its runtime-spec is 1.0.2-dev; pre-release tag
# dropped). Older than SPEC_VERSION: hook binaries written for runc 1.1 see what they expect.
HOOK_STATE_VERSION = "1.0.2"

# `pyrunc spec`'s template: the oldest 1.x, so every runtime accepts the config it writes
# (crun 1.8 refuses 1.2); runc 1.1 writes "1.0.2-dev".
TEMPLATE_VERSION = "1.0.2"


def commit():
    """The checkout's HEAD, read from .git without running git (a fork+exec costs more);
    "unknown" outside a checkout."""
    git = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".git")
    try:
        with open(os.path.join(git, "HEAD")) as f:
            head = f.read().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            try:
                with open(os.path.join(git, ref)) as f:
                    return f.read().strip()
            except FileNotFoundError:
                with open(os.path.join(git, "packed-refs")) as f:
                    for line in f:
                        if line.rstrip().endswith(" " + ref):
                            return line.split()[0]
        return head
    except OSError:
        pass
    return "unknown"
