"""NOTIFY_SOCKET: sd_notify passthrough, as runc 1.1 does it (host side only).

When the runtime itself runs with NOTIFY_SOCKET=<host address> (a systemd Type=notify unit
that runs `pyrunc run`, or create and start):

- `create` / `run` (`setup`): makes `<state dir>/notify/` (0755), bind-mounts it read-only
  (nosuid, nodev, noexec) at /run/notify in the container and appends
  NOTIFY_SOCKET=/run/notify/notify.sock to process.env (appended: it wins over the config's).
- `start` / `run` (`Proxy`): connects to the host's socket, binds the unix datagram socket
  `notify/notify.sock` (mode 0777: any container user may send), releases the init, then waits
  for a datagram with a `READY=` line, and sends the host two datagrams, `READY=…\\n` then
  `MAINPID=<pid>\\n` (the init's host pid; `run` in the foreground sends its own pid, as it is
  the process that lives as long as the container). Other messages are dropped, as in runc.
- `delete` (`remove`): the directory goes with the state directory.

Unlike runc 1.1.5, which checks liveness with stat(/proc/PID) (a zombie passes, and `run`
checks its own pid), the wait ends when the init exits, zombie or not, so `run`, `run -d` and
`start` never hang on a container that exits without notifying. The host socket is connected
before the init is released, so a wrong NOTIFY_SOCKET fails `start` while the container is still
"created" (runc execs first and fails after). runc only honours a datagram that *starts* with
READY=; any line does here ("STATUS=…\\nREADY=1" is what sd_notify clients often send).

Imported only when NOTIFY_SOCKET is set (or a notify directory exists at delete): `socket`
costs ~4 ms to import on start's path (~10 ms cold).
"""

import os

from ..errors import PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..spec.model import Config

ENV = "NOTIFY_SOCKET"
DIR = "notify"  # under the container's state directory
SOCKET = "notify.sock"
CONTAINER_DIR = "/run/notify"
CONTAINER_PATH = CONTAINER_DIR + "/" + SOCKET
MOUNT_OPTIONS = ("bind", "nosuid", "noexec", "nodev", "ro")
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes with its NUL
_RECV_SIZE = 65536


def _error(message):
    return PyruncError(f"{ENV}: {message}")


def host_address():
    """The runtime's own NOTIFY_SOCKET, or None (unset or empty: runc ignores an empty one)."""
    return os.environ.get(ENV) or None


def setup(config, spec: "Config", state_dir):
    """create/run: the notify directory, its mount and the container's NOTIFY_SOCKET, added to
    the model `spec` (what the init builds) and to the config dict (what state.json records)."""
    from ..spec.model import Mount
    path = os.path.join(state_dir, DIR)
    os.mkdir(path, 0o755)
    os.chmod(path, 0o755)  # not what the umask left: a container user must reach the socket
    mount = {"destination": CONTAINER_DIR, "type": "bind", "source": path,
             "options": list(MOUNT_OPTIONS)}
    config["mounts"] = [*(config.get("mounts") or ()), mount]
    spec.mounts.append(Mount(mount))
    process = config["process"]
    process["env"] = [*(process.get("env") or ()), f"{ENV}={CONTAINER_PATH}"]
    spec.process.env.append(f"{ENV}={CONTAINER_PATH}")


class Proxy:
    """start/run: connected to the host's socket and listening on the container's."""

    def __init__(self, state_dir, host):
        import socket
        self.host = host
        self.path = os.path.join(state_dir, DIR, SOCKET)
        self.client = self.server = None
        self._bound = False
        try:
            self.client = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._connect(host)
            self.server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._listen(state_dir)
        except BaseException:
            self.close()
            raise

    def _connect(self, host):
        assert self.client is not None
        if host.startswith("vsock:"):
            raise _error(f"{host}: vsock addresses are not supported, only unix sockets")
        try:
            if host.startswith("@"):  # the abstract namespace (sd_notify's rule, and Go's)
                self.client.connect("\0" + host[1:])
            else:
                with _UnixPath(host) as address:
                    self.client.connect(address)
        except OSError as e:  # an over-long name too ("AF_UNIX path too long")
            raise _error(f"cannot connect to {host}: {_reason(e)}") from None

    def _listen(self, state_dir):
        from ..state import hostfile
        assert self.server is not None
        directory = os.path.join(state_dir, DIR)
        try:
            # ours and no symlink: the socket is made, and chmod'ed, in here
            dir_fd = hostfile.open_dir(directory, directory)
        except (FileNotFoundError, NotADirectoryError):
            raise _error(f"the container was created without {ENV} (no {directory}): "
                         f"unset it for start, or set it for create too") from None
        try:
            try:
                os.unlink(SOCKET, dir_fd=dir_fd)  # left by an interrupted start: EADDRINUSE
            except FileNotFoundError:
                pass
            try:
                # bound through the directory fd: the name cannot lead anywhere else
                self.server.bind(f"/proc/self/fd/{dir_fd}/{SOCKET}")
                self._bound = True
                _chmod_socket(dir_fd, SOCKET, 0o777)  # as runc: the container's user may not be root
            except OSError as e:
                raise _error(f"cannot listen on {self.path}: {_reason(e)}") from None
        finally:
            os.close(dir_fd)

    def close(self, unlink=False):
        """Close both sockets; unlink=True (a failed start) also removes notify.sock."""
        for sock in (self.client, self.server):
            if sock is not None:
                sock.close()
        self.client = self.server = None
        if unlink and self._bound:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self._bound = False

    def forward_ready(self, pid, start_time, main_pid=None):
        """Block until the container sends READY= (forwarded with MAINPID) or its init exits
        (nothing is sent; not an error, as in runc). Closes the proxy either way."""
        try:
            ready = self._wait_ready(pid, start_time)
            if ready is None:
                return False
            assert self.client is not None
            for message in (ready + b"\n", b"MAINPID=%d\n" % (main_pid or pid)):
                try:
                    self.client.send(message)
                except OSError as e:
                    raise _error(f"cannot send {message.strip().decode(errors='replace')} to "
                                 f"{self.host}: {_reason(e)}") from None
            return True
        finally:
            self.close()

    def _wait_ready(self, pid, start_time):
        import select

        from ..state import procfs
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return self._drain()
        try:
            # the pid is ours only if its start time matches (checked after pidfd_open, so the
            # fd cannot point at a successor); a zombie counts as gone
            if not procfs.is_alive(pid, start_time):
                return self._drain()
            poller = select.poll()
            assert self.server is not None
            poller.register(self.server.fileno(), select.POLLIN)
            poller.register(pidfd, select.POLLIN)
            while True:
                events = dict(poller.poll())
                ready = self._drain()
                if ready is not None:
                    return ready
                if pidfd in events:  # exited: what it sent before is in the drain above
                    return None
        finally:
            os.close(pidfd)

    def _drain(self):
        """The first READY= line among the queued datagrams, or None once none are left."""
        import socket
        assert self.server is not None
        while True:
            try:
                data = self.server.recv(_RECV_SIZE, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return None
            for line in data.split(b"\n"):
                if line.startswith(b"READY="):
                    return line


class _UnixPath:
    """A path usable as a sockaddr_un: itself, or through /proc/self/fd/N of its directory when
    it is longer than sun_path (a deep --root easily is)."""

    def __init__(self, path):
        self.path = path
        self.fd = None

    def __enter__(self):
        if len(os.fsencode(self.path)) <= _SUN_PATH_MAX:
            return self.path
        directory, name = os.path.split(self.path)
        self.fd = os.open(directory or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        return f"/proc/self/fd/{self.fd}/{name}"

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)
        return False


def _chmod_socket(dir_fd, name, mode):
    """chmod the socket just bound, never a file a symlink swapped in at its name points to
    (chmod(2) follows symlinks; Linux has no lchmod): through an O_PATH|O_NOFOLLOW fd."""
    import stat
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            raise OSError(0, "replaced by something else than the socket")
        os.chmod(f"/proc/self/fd/{fd}", mode)
    finally:
        os.close(fd)


def _reason(e):
    return (e.strerror or str(e)).lower()
