"""runtime/child.py without containers: the handshake loop's ordering rules and the fd rule."""

import os

import pytest

from pyrunc import errors
from pyrunc.runtime import child
from pyrunc.shim import sync


class FakeEnd:
    def __init__(self, messages):
        self.messages = list(messages)
        self.sent = []

    def recv(self):
        if not self.messages:
            raise sync.PeerClosed()
        return self.messages.pop(0)

    def send(self, kind, **fields):
        self.sent.append((kind.name, fields))


class Recorder(child.Answers):
    def __init__(self):
        self.calls = []

    def warning(self, text):
        self.calls.append(("warning", text))

    def userns(self, stage1_pid):
        self.calls.append(("userns", stage1_pid))

    def seccomp_listener(self, pid, fd):
        self.calls.append(("seccomp-listener", pid, fd))

    def create_runtime(self, pid):
        self.calls.append(("create-runtime", pid))


@pytest.mark.parametrize("first", ["seccomp-listener", "create-runtime"])
def test_a_message_needing_the_pid_waits_for_it(first):
    """The init's message can overtake stage1's "pid" (review §2.6): it is answered after it."""
    msg = {"type": first, "fd": 9} if first == "seccomp-listener" else {"type": first}
    end = FakeEnd([msg, {"type": "pid", "pid": 42}, {"type": "ready"}])
    answers = Recorder()
    assert child.Conversation(end, answers, 7).run() == 42
    assert answers.calls == [(first, 42, 9) if first == "seccomp-listener" else (first, 42)]
    assert end.sent == [("proceed", {"pid": 42} if first == "create-runtime" else {})]


def test_ready_before_pid_and_userns_uses_stage1():
    end = FakeEnd([{"type": "userns"}, {"type": "warning", "msg": "w"}, {"type": "ready"},
                   {"type": "pid", "pid": 5}])
    answers = Recorder()
    assert child.Conversation(end, answers, 3).run() == 5
    assert answers.calls == [("userns", 3), ("warning", "w")]


def test_error_and_unknown_and_eof():
    with pytest.raises(errors.ShimError, match="^boom$"):
        child.Conversation(FakeEnd([{"type": "error", "msg": "boom"}]), Recorder(), 1).run()
    with pytest.raises(sync.SyncError, match="unexpected message 'nope'"):
        child.Conversation(FakeEnd([{"type": "nope"}]), Recorder(), 1).run()
    with pytest.raises(sync.SyncError, match="unexpected message 'userns'"):
        child.Conversation(FakeEnd([{"type": "userns"}]), child.Answers(), 1).run()
    with pytest.raises(sync.PeerClosed):
        child.Conversation(FakeEnd([{"type": "pid", "pid": 2}]), Recorder(), 1).run()


def test_keep_only_in_a_child():
    """Everything from `first` up is closed except the kept fds, which move right above it."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            stray = [os.open("/", os.O_RDONLY | os.O_DIRECTORY) for _ in range(3)]  # inheritable
            keep = [os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC), stray[1]]
            moved = child.keep_only(keep + [w], first=3)
            left = sorted(int(n) for n in os.listdir("/proc/self/fd"))
            # listdir's own fd is the lowest free one, right after the kept ones
            ok = (moved == {keep[0]: 3, keep[1]: 4, w: 5} and left == [0, 1, 2, 3, 4, 5, 6]
                  and not os.get_inheritable(4))
            os.write(5, b"ok" if ok else repr((moved, left)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    out = os.read(r, 1000)
    os.close(r)
    os.waitpid(pid, 0)
    assert out == b"ok"


def test_report_never_names_a_python_exception():
    r, w = os.pipe()
    end = sync.End(r, w)
    sync.report(end, OSError(13, "Permission denied"), "masking paths")
    sync.report(end, KeyError("x"), "preparing the process")
    sync.report(end, TypeError(), "entering the rootfs")
    msgs = [end.recv()["msg"] for _ in range(3)]
    end.close()
    assert msgs == ["masking paths: permission denied", "preparing the process: internal error ('x')",
                    "entering the rootfs: internal error"]
