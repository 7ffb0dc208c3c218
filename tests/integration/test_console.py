"""process.terminal with --console-socket: the pty master reaches the socket, the slave is the
process's stdio, controlling terminal and /dev/console; consoleSize is applied."""

import array
import os
import select
import socket
import threading
import time

import pytest


class ConsoleReceiver:
    """A console socket like an engine's: takes one message with the master fd, then reads it."""

    def __init__(self, path):
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        self.payload, self.fds, self.output = None, [], b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.server.accept()
        fds = array.array("i")
        msg, anc, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(4 * fds.itemsize))
        conn.close()
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data)
        self.payload, self.fds = msg, list(fds)
        master = self.fds[0]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and b"DONE" not in self.output:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                self.output += chunk
        os.close(master)

    def wait(self):
        self.thread.join(12)
        self.server.close()
        return self.output.decode().replace("\r\n", "\n")


def run_with_console(runner, bundle, cid, tmp_path, name):
    bundle.process["terminal"] = True
    bundle.write()
    receiver = ConsoleReceiver(str(tmp_path / f"{name}.sock"))
    r = runner("create", "--bundle", bundle.path, "--console-socket", receiver.path, cid)
    assert r.rc == 0, r.err
    assert runner("start", cid).rc == 0
    out = receiver.wait()
    runner("delete", "--force", cid)
    return receiver, out


SCRIPT = "tty; stty size; [ -c /dev/console ] && echo console-is-a-tty-device; " \
         "cut -d' ' -f7 /proc/self/stat; echo DONE"


def test_console_socket_gets_the_master_and_the_process_a_tty(pyrunc, make_bundle, cid, tmp_path):
    b = make_bundle("sh", "-c", SCRIPT)
    b.process["consoleSize"] = {"height": 30, "width": 100}
    receiver, out = run_with_console(pyrunc, b, cid, tmp_path, "pyrunc")
    assert receiver.payload == b"/dev/ptmx" and len(receiver.fds) == 1
    lines = out.splitlines()
    assert lines[0] == "/dev/pts/0"
    assert lines[1] == "30 100"
    assert lines[2] == "console-is-a-tty-device"
    assert int(lines[3]) == 136 << 8  # tty_nr: the controlling terminal is pts/0 (major 136)


@pytest.mark.differential
def test_console_output_matches_runc(pyrunc, runc, make_bundle, cid, tmp_path):
    b = make_bundle("sh", "-c", "tty; stty size; echo DONE")
    b.process["consoleSize"] = {"height": 24, "width": 80}
    _, theirs = run_with_console(runc, b, cid, tmp_path, "runc")
    _, mine = run_with_console(pyrunc, b, cid, tmp_path, "pyrunc")
    assert mine == theirs


def test_terminal_without_console_socket_is_refused(pyrunc, make_bundle, cid, no_leaks):
    b = make_bundle("true")
    b.process["terminal"] = True
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc == 1 and "cannot allocate tty if pyrunc will detach without setting console socket" in r.err
    assert not pyrunc.ids()


def test_console_socket_without_terminal_is_refused(pyrunc, make_bundle, cid, tmp_path, no_leaks):
    b = make_bundle("true")
    r = pyrunc("create", "--bundle", b.path, "--console-socket", str(tmp_path / "x.sock"), cid)
    assert r.rc == 1 and "cannot use console socket" in r.err
    assert not pyrunc.ids()


def test_unreachable_console_socket_leaves_nothing(pyrunc, make_bundle, cid, tmp_path, no_leaks):
    b = make_bundle("true")
    b.process["terminal"] = True
    b.write()
    r = pyrunc("create", "--bundle", b.path, "--console-socket", str(tmp_path / "nobody.sock"), cid)
    assert r.rc == 1 and "nobody.sock" in r.err and "no such file or directory" in r.err
    assert not pyrunc.ids()


def test_exec_tty_with_console_socket(pyrunc, make_bundle, cid, tmp_path):
    """docker exec -it / conmon: exec --tty --console-socket S --detach gives the process a pty."""
    b = make_bundle("sleep", "30")
    b.write()
    assert pyrunc("create", "--bundle", b.path, cid).rc == 0
    assert pyrunc("start", cid).rc == 0
    receiver = ConsoleReceiver(str(tmp_path / "exec.sock"))
    r = pyrunc("exec", "--tty", "--console-socket", receiver.path, "--detach",
               "--pid-file", str(tmp_path / "exec.pid"), cid, "sh", "-c",
               "tty; cut -d' ' -f7 /proc/self/stat; [ -c /dev/console ] || echo no-console; echo DONE")
    assert r.rc == 0, r.err
    out = receiver.wait().splitlines()
    assert receiver.payload == b"/dev/ptmx"
    assert out[0].startswith("/dev/pts/") and int(out[1]) == (136 << 8) + int(out[0].rsplit("/", 1)[1])
    assert "no-console" in out  # /dev/console stays the init's: this container has none
    assert pyrunc("delete", "--force", cid).rc == 0
