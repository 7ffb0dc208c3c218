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
