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


# ------------------------------------------------------------ the same loop over real pipes


@pytest.fixture
def pipes():
    """(host end, shim end) of a real sync.channel(); the test writes the shim's side."""
    host, shim = sync.channel()
    yield host, shim
    host.close()
    shim.close()


def answered(end):
    """What the host wrote to the shim so far (the shim's end reads it)."""
    os.set_blocking(end.rfd, False)
    out = []
    try:
        while True:
            out.append(end.recv())
    except (BlockingIOError, sync.PeerClosed):
        return out


def test_full_create_order_over_pipes(pipes):
    host, shim = pipes
    shim.send(sync.USERNS)
    shim.send(sync.CREATE_RUNTIME)  # the init's, before stage1's pid: deferred
    shim.send(sync.WARNING, msg="careful")
    shim.send(sync.PID, pid=321)
    shim.send(sync.READY)
    answers = Recorder()
    assert child.Conversation(host, answers, 11).run() == 321
    assert answers.calls == [("userns", 11), ("warning", "careful"), ("create-runtime", 321)]
    assert answered(shim) == [{"type": "proceed"}, {"type": "proceed", "pid": 321}]


def test_two_deferred_messages_are_answered_in_order(pipes):
    host, shim = pipes
    shim.send(sync.SECCOMP_LISTENER, fd=7)
    shim.send(sync.CREATE_RUNTIME)
    shim.send(sync.READY)
    shim.send(sync.PID, pid=5)
    answers = Recorder()
    assert child.Conversation(host, answers, 1).run() == 5
    assert answers.calls == [("seccomp-listener", 5, 7), ("create-runtime", 5)]
    assert answered(shim) == [{"type": "proceed"}, {"type": "proceed", "pid": 5}]


def test_messages_split_across_writes(pipes):
    host, shim = pipes
    os.write(shim.wfd, b'{"type":"pid","pi')
    os.write(shim.wfd, b'd":9}\n{"type":"rea')
    os.write(shim.wfd, b'dy"}\n')
    assert child.Conversation(host, Recorder(), 1).run() == 9


@pytest.mark.parametrize("sent", [
    [],                                           # died at once
    [{"type": "pid", "pid": 4}],                  # stage1 done, the init died
    [{"type": "ready"}],                          # the init ready, stage1 never said its pid
    [{"type": "create-runtime"}],                 # deferred, then nothing
])
def test_eof_before_both_pid_and_ready(pipes, sent):
    host, shim = pipes
    for msg in sent:
        shim.send(msg["type"], **{k: v for k, v in msg.items() if k != "type"})
    os.close(shim.wfd)
    shim.wfd = -1
    answers = Recorder()
    with pytest.raises(sync.PeerClosed):
        child.Conversation(host, answers, 1).run()
    assert answers.calls == []  # a deferred message is never answered without the pid


def test_a_partial_line_then_eof_is_eof(pipes):
    host, shim = pipes
    os.write(shim.wfd, b'{"type":"pid","pid":3}\n{"type":"rea')
    os.close(shim.wfd)
    shim.wfd = -1
    with pytest.raises(sync.PeerClosed):
        child.Conversation(host, Recorder(), 1).run()


@pytest.mark.parametrize("kind", ["proceed", "debug-nope", "PID", ""])
def test_messages_the_host_never_gets_are_protocol_errors(pipes, kind):
    host, shim = pipes
    shim.send(kind)
    with pytest.raises(sync.SyncError, match=f"^unexpected message '{kind}' from the shim$"):
        child.Conversation(host, Recorder(), 1).run()


def test_an_error_after_pid_stops_the_loop_with_its_text(pipes):
    host, shim = pipes
    shim.send(sync.PID, pid=3)
    shim.send(sync.ERROR, kind="rootfs", msg="mounting /proc: operation not permitted", errno=1)
    shim.send(sync.READY)
    with pytest.raises(errors.RootfsError, match="^mounting /proc: operation not permitted$"):
        child.Conversation(host, Recorder(), 1).run()


def test_a_message_without_a_type_is_a_protocol_error(pipes):
    host, shim = pipes
    os.write(shim.wfd, b'{"pid":3}\n')
    with pytest.raises(sync.SyncError, match="^unexpected message None from the shim$"):
        child.Conversation(host, Recorder(), 1).run()


@pytest.mark.parametrize("raw, message", [
    (b"garbage\n", "^malformed message from the peer: b'garbage'$"),
    (b"\xff\n", r"^malformed message from the peer: b'\\xff'$"),
    (b"[1]\n", r"^unexpected message \[1\] from the shim$"),
    (b'"pid"\n', "^unexpected message 'pid' from the shim$"),
    (b'{"type":"pid"}\n', r"^unexpected message \{'type': 'pid'\} from the shim: no pid$"),
    (b'{"type":"pid","pid":"7"}\n', "no pid$"),
    (b'{"type":"pid","pid":0}\n', "no pid$"),
])
def test_malformed_lines_are_protocol_errors_not_python_errors(pipes, raw, message):
    host, shim = pipes
    os.write(shim.wfd, raw)
    with pytest.raises(sync.SyncError, match=message):
        child.Conversation(host, Recorder(), 1).run()
