"""The handshake between the host (pyrunc create) and the shim.

Newline-delimited JSON over a pair of pipes (cheaper to set up than a socketpair,
and the socket module costs ~2 ms to import). A peer that dies shows up as EOF
once every copy of its write end is closed. The message types are listed in
docs/ARCHITECTURE.md ("The shim handshake").
"""

import os

from .. import jsonio


class SyncError(Exception):
    """The peer went away or sent something unexpected."""


class End:
    """One side of the channel: reads the peer's messages, writes its own."""

    def __init__(self, rfd, wfd):
        self.rfd = rfd
        self.wfd = wfd
        self._buf = b""

    def send(self, kind, **fields):
        fields["type"] = kind
        data = (jsonio.dumps(fields) + "\n").encode()
        while data:
            data = data[os.write(self.wfd, data):]

    def recv(self):
        """The next message as a dict; raises SyncError on EOF."""
        while b"\n" not in self._buf:
            chunk = os.read(self.rfd, 65536)
            if not chunk:
                raise SyncError("peer closed the sync channel")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return jsonio.loads(line)

    def expect(self, kind):
        msg = self.recv()
        if msg["type"] == "error":
            raise SyncError(msg["msg"])
        if msg["type"] != kind:
            raise SyncError(f"expected {kind!r} from the peer, got {msg['type']!r}")
        return msg

    def close(self):
        for fd in (self.rfd, self.wfd):
            try:
                os.close(fd)
            except OSError:
                pass


def channel():
    """(host end, shim end); all four fds close on exec. Each process closes the other end."""
    to_shim_r, to_shim_w = os.pipe()
    to_host_r, to_host_w = os.pipe()
    return End(to_host_r, to_shim_w), End(to_shim_r, to_host_w)
