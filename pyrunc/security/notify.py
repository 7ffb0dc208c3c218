"""SCMP_ACT_NOTIFY: hand the init's seccomp listener fd to linux.seccomp.listenerPath.

The message is the runtime-spec's "container process state" (what runc sends): one JSON
object with the fd in SCM_RIGHTS, named "seccompFd" in its "fds" list.
"""

import json
import os

from ..errors import ContainerInitError
from ..linux.seccomp import pidfd_getfd
from ..version import SPEC_VERSION

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..spec.model import Config


def send_listener(spec: "Config", container_id, bundle, init_pid, remote_fd):
    """spec: the container's spec.model.Config."""
    import array
    import socket

    seccomp = spec.linux.seccomp
    if seccomp is None or seccomp.listener_path is None:  # security/seccomp.py refused that
        raise ContainerInitError("unable to start container process: linux.seccomp.listenerPath is not set")
    pidfd = os.pidfd_open(init_pid)
    try:
        fd = pidfd_getfd(pidfd, remote_fd)
    finally:
        os.close(pidfd)
    state = {"ociVersion": SPEC_VERSION, "id": container_id, "status": "creating",
             "pid": init_pid, "bundle": bundle}
    if spec.annotations:
        state["annotations"] = spec.annotations
    message = {"ociVersion": SPEC_VERSION, "fds": ["seccompFd"], "pid": init_pid,
               "metadata": seccomp.listener_metadata, "state": state}
    path = seccomp.listener_path
    # runc's texts (engines and users search for them), with Go's net.Dial error inside
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(path)
            except OSError as e:
                assert e.errno is not None
                raise ContainerInitError(
                    "unable to start container process: failed to connect with seccomp agent "
                    f"specified in the seccomp profile: dial unix {path}: connect: "
                    f"{os.strerror(e.errno).lower()}") from None
            try:
                sock.sendmsg([json.dumps(message).encode()],
                             [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
            except OSError as e:
                assert e.errno is not None
                raise ContainerInitError(f"unable to start container process: cannot send "
                                         f"seccomp fd to {path}: {os.strerror(e.errno).lower()}") from None
    finally:
        os.close(fd)
