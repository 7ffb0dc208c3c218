"""Typed errors raised by the pyrunc API.

The CLI prints ``str(error)`` as the one error line; engines parse some of these
texts, so the wording of the messages follows runc where runc has one.
"""


class PyruncError(Exception):
    """Base class: anything pyrunc reports to its caller."""


class ConfigError(PyruncError):
    """config.json (or a process/resources JSON) is missing, malformed or invalid."""


class BundleError(PyruncError):
    """The bundle directory or its rootfs is unusable."""


class InvalidIDError(PyruncError):
    """A container id that runc would reject."""


class ContainerNotFound(PyruncError):
    """No container with this id under the root."""


class ContainerExists(PyruncError):
    """A container with this id already exists under the root."""


class InvalidStateError(PyruncError):
    """The container is not in a state that allows the operation."""


class SignalError(PyruncError):
    """A signal name or number that does not exist."""


class ContainerInitError(PyruncError):
    """The container's init failed before running the user's process."""


class UsageError(PyruncError):
    """Bad command-line usage (unknown flag, missing argument)."""


def describe(exc):
    """One line for an exception that is not a PyruncError, without Python's type names:
    "<file>: <strerror>" for an OSError (lowercased, as runc's Go errors read), else its
    message, else a generic phrase. (The caller says what was being done.)"""
    if isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror[:1].lower() + exc.strerror[1:]
        if exc.filename is not None:
            name = exc.filename if isinstance(exc.filename, str) else repr(exc.filename)
            return f"{name}: {reason}"
        return reason
    if isinstance(exc, RecursionError):
        return "input nested too deeply"
    if isinstance(exc, MemoryError):
        return "out of memory"
    text = str(exc).replace("\n", " ").strip()
    return text or "unexpected failure"
