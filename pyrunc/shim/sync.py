"""The handshake between the host (pyrunc create / exec) and the shim.

Newline-delimited JSON over a pair of pipes (cheaper to set up than a socketpair,
and the socket module costs ~2 ms to import). A peer that dies shows up as EOF
once every copy of its write end is closed. The message types are the `Message`
constants below; their order is in docs/ARCHITECTURE.md ("The shim handshake").
The host's loop is runtime/child.py `Conversation`.
"""

import os

from .. import errors, jsonio, trace
from ..errors import PeerClosed, SyncError

__all__ = ["PeerClosed", "SyncError", "End", "Message", "channel", "debug", "report"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypedDict

    class Wire(TypedDict, total=False):
        """One message as it travels (a JSON object per line): "type" is a Message's name;
        the other fields are the ones its Message comment names."""
        type: str
        pid: int        # PID (stage1 -> host), PROCEED after CREATE_RUNTIME (host -> init)
        msg: str        # WARNING, DEBUG, ERROR
        kind: str       # ERROR: the error's type (pyrunc/errors.py to_wire)
        errno: int      # ERROR: its errno, when it has one
        fd: int         # SECCOMP_LISTENER: the listener's fd number in the init


class Message:
    """One message type: its name on the wire and what the host must know before answering.

    answered: the sender blocks until the host sends PROCEED.
    needs_pid: the answer uses the host pid of the process stage1 forks (the init, or exec's
    process), which stage1 sends in PID; a message from that process can overtake stage1's
    PID (two processes, one pipe), so the host defers it until PID has arrived."""

    __slots__ = ("name", "answered", "needs_pid")
    name: str
    answered: bool
    needs_pid: bool

    def __init__(self, name: str, answered: bool = False, needs_pid: bool = False) -> None:
        self.name = name
        self.answered = answered
        self.needs_pid = needs_pid

    def __repr__(self):
        return f"<message {self.name}>"


PROCEED = Message("proceed")          # host -> shim: go on (after create-runtime: field "pid")
USERNS = Message("userns", answered=True)  # stage1: unshared the user ns; host writes the maps
PID = Message("pid")                  # stage1: forked the init / exec's process; field "pid"
WARNING = Message("warning")          # field "msg": logged by the host
DEBUG = Message("debug")              # field "msg": logged by the host with --debug only
SECCOMP_LISTENER = Message("seccomp-listener", answered=True, needs_pid=True)  # field "fd"
CREATE_RUNTIME = Message("create-runtime", answered=True, needs_pid=True)  # prestart hooks
READY = Message("ready")              # waiting on the barrier (create) / about to exec (exec)
ERROR = Message("error")              # fields "kind", "msg", "errno": a failure before exec

BY_NAME = {m.name: m for m in (PROCEED, USERNS, PID, WARNING, DEBUG, SECCOMP_LISTENER,
                               CREATE_RUNTIME, READY, ERROR)}


def _name(kind: "Message | str") -> str:
    return kind.name if isinstance(kind, Message) else kind


class End:
    """One side of the channel: reads the peer's messages, writes its own."""

    def __init__(self, rfd, wfd, side="host"):
        self.rfd = rfd
        self.wfd = wfd
        self.side = side  # who holds this end, in --debug lines: "host", "stage1", "init", ...
        self._buf = b""

    def fds(self):
        return [self.rfd, self.wfd]

    def renumber(self, moved):
        """After runtime/child.py moved our fds ({old: new})."""
        self.rfd = moved.get(self.rfd, self.rfd)
        self.wfd = moved.get(self.wfd, self.wfd)

    def send(self, kind: "Message | str", /, **fields: "int | str | None") -> None:
        """kind: a Message (or its wire name); fields may include one named "kind" (ERROR's)."""
        fields["type"] = _name(kind)
        data = (jsonio.dumps(fields) + "\n").encode()
        if trace.on and kind is not DEBUG:  # --debug: the handshake, both sides
            trace.debug("%s: sync: sent %s", self.side, data[:-1].decode())
        while data:
            data = data[os.write(self.wfd, data):]

    def recv(self) -> "Wire":
        """The next message as a dict; raises PeerClosed on EOF."""
        while b"\n" not in self._buf:
            chunk = os.read(self.rfd, 65536)
            if not chunk:
                raise PeerClosed()
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            msg = jsonio.loads(line)
        except ValueError:  # not JSON (nor UTF-8): not from a pyrunc stage
            raise SyncError(f"malformed message from the peer: {line[:80]!r}") from None
        if trace.on and not (isinstance(msg, dict) and msg.get("type") == DEBUG.name):
            trace.debug("%s: sync: received %s", self.side, line.decode(errors="replace"))
        return msg

    def expect(self, kind: "Message | str") -> "Wire":
        msg = self.recv()
        name = _name(kind)
        if msg["type"] == ERROR.name:
            raise errors.from_wire(dict(msg))
        if msg["type"] != name:
            raise SyncError(f"expected {name!r} from the peer, got {msg['type']!r}")
        return msg

    def close(self):
        for fd in (self.rfd, self.wfd):
            try:
                os.close(fd)
            except OSError:
                pass
        # a late send (a --debug line after "ready") must fail, not write to whatever fd
        # reuses the number
        self.rfd = self.wfd = -1


def debug(end: End, fmt: str, *args: object) -> None:
    """A debug message from a forked stage to the host's log (--debug); without --debug
    nothing is formatted or sent. Only while the channel is open (until READY): a failure to
    send is ignored, as the host then reports the stage's death itself."""
    if trace.on:
        try:
            end.send(DEBUG, msg=fmt % args if args else fmt)
        except OSError:
            pass


def channel():
    """(host end, shim end); all four fds close on exec. Each process closes the other end."""
    to_shim_r, to_shim_w = os.pipe()
    to_host_r, to_host_w = os.pipe()
    return End(to_host_r, to_shim_w, "host"), End(to_shim_r, to_host_w, "stage1")


def report(end: End, exc: BaseException, step: str) -> None:
    """Send a failure of a forked stage to the host as ERROR (container side), typed: the host
    raises the same type with the same text (pyrunc/errors.py `to_wire` / `from_wire`).

    Errors pyrunc raises carry their own text (the field or file they are about) and kind; an
    OSError is a StepFailed: the step it happened in, its strerror and errno; anything else is
    a bug (InternalError) and says so with the step, never with a Python exception name (a
    person reads this, not a developer)."""
    if isinstance(exc, SyncError):
        return  # the host is gone or already knows
    fields = error_fields(exc, step)
    try:
        end.send(ERROR, **fields)
    except OSError:
        # after "ready" the host has gone: the container's stderr is the only witness, and
        # the line is the bare error, as runc's init prints it there
        try:
            os.write(2, f"{fields['msg']}\n".encode())
        except OSError:
            pass


def error_fields(exc, step):
    """The ERROR message's fields for any exception of a forked stage (see `report`)."""
    if isinstance(exc, errors.PyruncError):
        return errors.to_wire(exc)
    if isinstance(exc, OSError):
        # pyrunc.linux.syscalls puts its context in strerror; str() would prefix "[Errno N] "
        reason = exc.strerror or os.strerror(exc.errno or 0)
        if exc.strerror == os.strerror(exc.errno or 0):
            reason = reason.lower()  # "operation not permitted": engines match Go's lower case
        if exc.filename is not None:
            reason = f"{exc.filename}: {reason.lower()}"
        return errors.to_wire(errors.StepFailed(f"{step}: {reason}", exc.errno))
    if isinstance(exc, KeyboardInterrupt):
        return errors.to_wire(errors.ShimError(f"{step}: interrupted"))
    # no traceback module here: it may not be importable after pivot_root
    detail = str(exc)
    return errors.to_wire(errors.InternalError(f"{step}: internal error"
                                               + (f" ({detail})" if detail else "")))
