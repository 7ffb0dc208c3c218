"""Typed errors: one hierarchy for the host side and the container side (the shim).

The CLI prints ``str(error)`` as the one error line; engines parse some of these texts, so the
wording follows runc where runc has one. Code branches on the type (and on ``errno`` where an
OS error is behind it), never on the text: a message may be reworded without changing what any
caller does.

A container-side error (`ShimError` and its subclasses) is raised in a forked stage, crosses
the sync channel as ``{"type": "error", "kind": K, "msg": M, "errno": N}`` (`to_wire`), and is
raised again on the host as the same type with the same text (`from_wire`, through the
`SHIM_KINDS` registry: nothing is unpickled or evaluated; an unknown kind is a `ShimError`).
This module imports nothing (not even `__future__`: every verb loads it): the shim may import
it after the fork. Forward references in annotations are strings.
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


class NotRunning(InvalidStateError):
    """runc's "container not running": the verb needs a live init (kill, pause, update, ...)."""

    def __init__(self, message: str = "container not running") -> None:
        super().__init__(message)


class SignalError(PyruncError):
    """A signal name or number that does not exist."""


class ContainerInitError(PyruncError):
    """The container's side failed before running the user's process (create, run, exec)."""


class UsageError(PyruncError):
    """Bad command-line usage (unknown flag, missing argument)."""


class CapabilityError(ConfigError):
    """A malformed name in process.capabilities (linux/capabilities.py `resolve`)."""


# ---------------------------------------------------------------- the sync channel

class SyncError(PyruncError):
    """The peer on the sync channel went away or sent something unexpected (a protocol error,
    never sent over the channel itself)."""


class PeerClosed(SyncError):
    """EOF: every copy of the peer's write end is closed (it exited, or was killed)."""

    def __init__(self, message: str = "peer closed the sync channel") -> None:
        super().__init__(message)


# ---------------------------------------------------------------- the container side

SHIM_KINDS: "dict[str, type[ShimError]]" = {}


def _kind(name: str):
    """Register a ShimError subclass under its wire name (`kind`)."""
    def register(cls: "type[ShimError]") -> "type[ShimError]":
        if name in SHIM_KINDS:
            raise AssertionError(f"kind {name!r} registered twice")
        cls.kind = name
        SHIM_KINDS[name] = cls
        return cls
    return register


class ShimError(ContainerInitError):
    """Raised by a forked stage (shim/): the host raises the same type with the same text.

    `errno`: the OS error behind it, or None. `detail`: the stage's own text; on the host
    `str()` has what the host put before it (`in_context`: "unable to start container
    process: ...", as runc words it)."""

    kind = "shim"

    def __init__(self, message: str = "", errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno
        self.detail = message

    def in_context(self, context: str) -> "ShimError":
        """The same error (type, errno, detail) with `context: ` before its text."""
        new = type(self)(f"{context}: {self}", self.errno)
        new.detail = self.detail
        return new


SHIM_KINDS[ShimError.kind] = ShimError


@_kind("rootfs")
class RootfsError(ShimError):
    """Building the container's root failed: a mount, a device, the pivot (shim/rootfs.py)."""


@_kind("mask")
class MaskError(RootfsError):
    """linux.maskedPaths / readonlyPaths could not be applied (shim/masks.py)."""


@_kind("security")
class SecurityError(ShimError):
    """Identity, capabilities, no_new_privs, seccomp or an LSM label (shim/security.py)."""


@_kind("scheduling")
class SchedulingError(ShimError):
    """process.ioPriority, process.scheduler or linux.personality (shim/scheduling.py)."""


@_kind("process")
class ProcessError(ShimError):
    """A bad process field or an unusable fd (shim/process.py; also checked on the host)."""


@_kind("console")
class ConsoleError(ProcessError):
    """process.terminal: the pty or /dev/console (shim/console.py)."""


@_kind("hook")
class HookError(ProcessError):
    """A hook could not be run, failed, or timed out; the text is runc's (runtime/hooks.py).
    Raised by the init (createContainer, startContainer) and on the host (the other lists)."""


@_kind("os")
class StepFailed(ShimError):
    """An OS call failed in a step nobody worded an error for: "<step>: <strerror>"."""


@_kind("internal")
class InternalError(ShimError):
    """A bug in the shim: "<step>: internal error (...)", never a Python exception name."""


def to_wire(exc: "PyruncError") -> dict:
    """The fields of an "error" message for a PyruncError raised in a forked stage: its
    registered kind (a PyruncError of the host's kinds travels as the base, "shim")."""
    fields: dict = {"kind": exc.kind if isinstance(exc, ShimError) else ShimError.kind,
                    "msg": str(exc)}
    errno = getattr(exc, "errno", None)
    if isinstance(errno, int):
        fields["errno"] = errno
    return fields


def from_wire(fields: dict) -> "ShimError":
    """The error an "error" message describes: the registered type of its kind (ShimError for
    a kind not registered), its text and errno. Nothing else of the message is trusted."""
    kind = fields.get("kind")
    cls = SHIM_KINDS.get(kind, ShimError) if isinstance(kind, str) else ShimError
    msg = fields.get("msg")
    errno = fields.get("errno")
    return cls(msg if isinstance(msg, str) and msg else "unknown error",
               errno if isinstance(errno, int) and not isinstance(errno, bool) else None)


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
