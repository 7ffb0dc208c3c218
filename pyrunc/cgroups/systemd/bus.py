"""A small D-Bus client for systemd's manager (jeepney does the wire format).

Only the calls the cgroup driver needs: StartTransientUnit (and wait for its job),
StopUnit, ResetFailedUnit, SetUnitProperties, and two manager properties (Version,
ControlGroup). jeepney (~17 ms to import) is loaded here only, i.e. only by a
--systemd-cgroup container's create/update/delete.

Where we connect:
  system instance: as root, systemd's private socket /run/systemd/private (what systemctl
                   uses as root: no bus daemon in the way), else the system bus
                   ($DBUS_SYSTEM_BUS_ADDRESS or /run/dbus/system_bus_socket)
  user instance:   the session bus ($DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus),
                   as runc's systemdUser; EXTERNAL authentication names the uid the bus sees
                   (SO_PEERCRED: the host uid, also from inside a user namespace)
"""

import errno
import os
import socket
import time

from ..errors import CgroupError

DEST = "org.freedesktop.systemd1"
PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
PRIVATE_SOCKET = "/run/systemd/private"
SYSTEM_BUS = "unix:path=/run/dbus/system_bus_socket"
CALL_TIMEOUT = 25.0  # D-Bus's default method call timeout
JOB_TIMEOUT = 30.0   # runc's wait for a start/stop job
CONNECT_TIMEOUT = 5.0


class SystemdError(CgroupError):
    """systemd (or the bus) said no; `name` is the D-Bus error name when there is one."""

    def __init__(self, message, name=None):
        super().__init__(message)
        self.name = name


class SystemdTimeout(SystemdError):
    """A start or stop job of ours did not finish in time."""


def host_uid(uid_map_text=None):
    """The uid the bus sees for this process: our euid, mapped out of a user namespace through
    /proc/self/uid_map (runc asks `busctl --user status` for it instead)."""
    euid = os.geteuid()
    if uid_map_text is None:
        try:
            with open("/proc/self/uid_map") as f:
                uid_map_text = f.read()
        except OSError:
            return euid
    for line in uid_map_text.splitlines():
        fields = line.split()
        if len(fields) == 3:
            inside, outside, count = (int(x) for x in fields)
            if inside <= euid < inside + count:
                return outside + euid - inside
    return euid


def user_bus_address(environ=None):
    env = os.environ if environ is None else environ
    if env.get("DBUS_SESSION_BUS_ADDRESS"):
        return env["DBUS_SESSION_BUS_ADDRESS"]
    if env.get("XDG_RUNTIME_DIR"):
        return "unix:path=" + os.path.join(env["XDG_RUNTIME_DIR"], "bus")
    raise SystemdError("--systemd-cgroup (systemd user instance): cannot find the user's bus: "
                       "neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set")


def socket_path(address):
    """The unix socket of a D-Bus address ("unix:path=..." or "unix:abstract=..."; the first
    usable of a ;-separated list)."""
    for part in address.split(";"):
        transport, _, rest = part.partition(":")
        if transport != "unix":
            continue
        for kv in rest.split(","):
            key, _, value = kv.partition("=")
            value = _unescape(value)
            if key == "path":
                return value
            if key == "abstract":
                return "\0" + value
    raise SystemdError(f"--systemd-cgroup: unsupported D-Bus address {address!r} (only unix:path= "
                       f"and unix:abstract= are supported)")


def _unescape(value):
    out, i = bytearray(), 0
    raw = value.encode()
    while i < len(raw):
        if raw[i:i + 1] == b"%" and i + 2 < len(raw):
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode()


def connect(*, user=False):
    """A Systemd for the system instance, or the user instance of the bus's uid."""
    if user:
        return Systemd(socket_path(user_bus_address()), uid=host_uid(), via_bus=True,
                       what="the systemd user instance")
    errors = []
    if os.geteuid() == 0:
        try:
            return Systemd(PRIVATE_SOCKET, uid=0, via_bus=False, what="systemd")
        except SystemdError as err:
            errors.append(str(err))
    address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or SYSTEM_BUS
    try:
        return Systemd(socket_path(address), uid=host_uid(), via_bus=True, what="systemd")
    except SystemdError as err:
        errors.append(str(err))
    raise SystemdError("; ".join(errors))


class Systemd:
    """One connection to a systemd manager. Methods raise SystemdError."""

    def __init__(self, path, *, uid, via_bus, what="systemd"):
        self.what = what
        self.path = path
        self._version = None
        self._pending = []  # signals read while waiting for a reply
        shown = path.replace("\0", "@")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(path)
            _authenticate(sock, uid)
            sock.settimeout(None)
        except (OSError, SystemdError) as err:
            sock.close()
            reason = err.strerror.lower() if isinstance(err, OSError) and err.strerror else str(err) or "timed out"
            raise SystemdError(f"--systemd-cgroup: cannot connect to {what} at {shown}: {reason}") from None
        from jeepney import Parser  # the wire format, lazily
        self._sock = sock
        self._parser = Parser()
        self._serial = 0
        if via_bus:
            self._call("/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", "", (),
                       dest="org.freedesktop.DBus")
            # JobRemoved is broadcast on a bus: ask the daemon for it (no reply needed)
            self._send("/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", "s",
                       (f"type='signal',sender='{DEST}',interface='{MANAGER}',member='JobRemoved'",),
                       dest="org.freedesktop.DBus", no_reply=True)

    def close(self):
        self._sock.close()

    # --- the manager's methods ----------------------------------------------------------

    def version(self):
        """systemd's version number ("252.39-1~deb12u2" -> 252), -1 if unknown (as runc)."""
        if self._version is None:
            try:
                text = self.manager_property("Version")
                digits = ""
                for c in text.lstrip('"v'):
                    if not c.isdigit():
                        break
                    digits += c
                self._version = int(digits) if digits else -1
            except SystemdError:
                self._version = -1
        return self._version

    def manager_property(self, name):
        reply = self._call(PATH, "org.freedesktop.DBus.Properties", "Get", "ss", (MANAGER, name))
        return reply[0][1]

    def start_unit(self, unit, properties, timeout=JOB_TIMEOUT):
        """StartTransientUnit(unit, "replace", properties) and wait until its job is done."""
        job = self._call(PATH, MANAGER, "StartTransientUnit", "ssa(sv)a(sa(sv))",
                         (unit, "replace", properties, []))[0]
        result = self._wait_job(job, timeout)
        if result is None:
            raise SystemdTimeout(f"timeout waiting for {self.what} to create {unit}")
        if result != "done":
            raise SystemdError(f"error creating systemd unit `{unit}`: got `{result}`")

    def stop_unit(self, unit, timeout=JOB_TIMEOUT):
        """StopUnit(unit, "replace") and wait; the job's result ("done", "failed"...) or None
        when no job was needed. A unit that does not exist raises (name NoSuchUnit)."""
        job = self._call(PATH, MANAGER, "StopUnit", "ss", (unit, "replace"))[0]
        result = self._wait_job(job, timeout)
        if result is None:
            raise SystemdTimeout(f"timed out while waiting for {self.what} to remove {unit}")
        return result

    def reset_failed(self, unit):
        self._call(PATH, MANAGER, "ResetFailedUnit", "s", (unit,))

    def set_properties(self, unit, properties):
        self._call(PATH, MANAGER, "SetUnitProperties", "sba(sv)", (unit, True, properties))

    # --- the wire -------------------------------------------------------------------------

    def _message(self, path, interface, member, signature, body, dest=DEST, no_reply=False):
        from jeepney import DBusAddress, new_method_call
        from jeepney.low_level import MessageFlag
        msg = new_method_call(DBusAddress(path, bus_name=dest, interface=interface), member,
                              signature or None, tuple(body))
        if no_reply:
            msg.header.flags |= MessageFlag.no_reply_expected
        return msg

    def _next_serial(self):
        self._serial += 1
        return self._serial

    def _send(self, *args, **kw):
        data = self._message(*args, **kw).serialise(serial=self._next_serial())
        try:
            self._sock.sendall(data)
        except OSError as err:
            raise self._lost(err) from None

    def _receive(self, deadline):
        """The next message; TimeoutError once `deadline` (monotonic) has passed."""
        while True:
            msg = self._parser.get_next_message()
            if msg is not None:
                return msg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self._sock.settimeout(remaining)
            data = self._sock.recv(65536)  # socket.timeout is a TimeoutError
            if not data:
                raise ConnectionResetError(errno.ECONNRESET, "closed by the peer")
            self._parser.add_data(data)

    def _call(self, path, interface, member, signature, body, dest=DEST):
        from jeepney.low_level import HeaderFields, MessageType
        msg = self._message(path, interface, member, signature, body, dest)
        serial = self._next_serial()
        data = msg.serialise(serial=serial)
        deadline = time.monotonic() + CALL_TIMEOUT
        try:
            self._sock.sendall(data)
            while True:
                reply = self._receive(deadline)
                fields = reply.header.fields
                if fields.get(HeaderFields.reply_serial) != serial:
                    if reply.header.message_type is MessageType.signal:
                        self._pending.append(reply)
                    continue
                if reply.header.message_type is MessageType.error:
                    name = fields.get(HeaderFields.error_name, "")
                    text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
                    raise SystemdError(f"{name}: {text}" if text else name, name)
                return reply.body
        except TimeoutError:
            raise SystemdError(f"no answer from {self.what} to {member} in {CALL_TIMEOUT:.0f} s") from None
        except (OSError, ValueError) as err:
            raise self._lost(err) from None

    def _wait_job(self, job, timeout):
        """The result of the JobRemoved signal for `job`, or None after `timeout` seconds."""
        from jeepney.low_level import HeaderFields, MessageType
        deadline = time.monotonic() + timeout
        try:
            while True:
                while self._pending:
                    sig = self._pending.pop(0)
                    if (sig.header.fields.get(HeaderFields.member) == "JobRemoved"
                            and len(sig.body) == 4 and sig.body[1] == job):
                        return sig.body[3]
                msg = self._receive(deadline)
                if msg.header.message_type is MessageType.signal:
                    self._pending.append(msg)
        except TimeoutError:
            return None
        except (OSError, ValueError) as err:
            raise self._lost(err) from None

    def _lost(self, err):
        reason = err.strerror.lower() if isinstance(err, OSError) and err.strerror else str(err)
        return SystemdError(f"--systemd-cgroup: connection to {self.what} lost: {reason}")


def _authenticate(sock, uid):
    """SASL EXTERNAL with `uid` (the peer checks it against SO_PEERCRED), no fd passing."""
    sock.sendall(b"\0AUTH EXTERNAL " + str(uid).encode().hex().encode() + b"\r\n")
    line = b""
    while not line.endswith(b"\r\n"):
        chunk = sock.recv(256)
        if not chunk:
            raise SystemdError("the peer closed the connection during authentication")
        line += chunk
        if len(line) > 4096:
            raise SystemdError("authentication: answer too long")
    if not line.startswith(b"OK "):
        raise SystemdError(f"authentication as uid {uid} refused "
                           f"({line.strip().decode(errors='replace')})")
    sock.sendall(b"BEGIN\r\n")
