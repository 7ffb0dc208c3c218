"""Issue 9, class 10b: a `create` killed at any step, and commands racing on containers.

Whatever step `create` dies at (before or after the state directory, the provisional record,
the cgroup, the fork, the init's pid, state.json), `state` and `list` do not show a half
container, and `delete --force` returns promptly and leaves nothing: no state directory, no
cgroup, no mount, no waiting init.
"""

import json
import os
import random
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers import live_inits, proc_stat, state, wait_for

from pyrunc.cgroups import manager_for

CGROUP_PARENT = "/pyrunc-crash"
DELETE_TIMEOUT = 15  # seconds: far above a normal delete (~0.1 s); reaching it is a hang


def cgroup_dirs(cid):
    return list(manager_for(f"{CGROUP_PARENT}/{cid}", cid).paths().values())


def bundle_for(make_bundle, cid, *args):
    b = make_bundle(*(args or ("sleep", "100")))
    b.linux["cgroupsPath"] = f"{CGROUP_PARENT}/{cid}"
    return b.write()


def assert_nothing_left(runner, cid, mounts_before):
    assert not os.path.exists(os.path.join(runner.root, cid)), os.listdir(runner.root)
    left = [d for d in cgroup_dirs(cid) if os.path.exists(d)]
    assert not left, left
    assert not live_inits(runner.root)
    assert mounts() == mounts_before


_PREFIXES = []  # this test's tmp dir and the shared rootfs: other suites mount elsewhere


def mounts():
    with open("/proc/self/mountinfo") as f:
        return sorted(p for p in (line.split()[4] for line in f) if p.startswith(tuple(_PREFIXES)))


def _remove_parents():
    for d in manager_for(CGROUP_PARENT, "x").paths().values():
        try:
            os.rmdir(d)
        except OSError:
            pass


@pytest.fixture
def cgroup_parent(tmp_path, rootfs):
    _PREFIXES[:] = [str(tmp_path), rootfs]
    yield
    _remove_parents()
    assert not live_inits(str(tmp_path))


def test_create_killed_at_any_point_is_cleaned_by_delete_force(pyrunc, make_bundle, cgroup_parent):
    """>= 100 creates SIGKILLed after random delays spread over a create's duration."""
    before = mounts()
    # how long a whole create takes here, from the exec of the CLI
    b = bundle_for(make_bundle, "probe")
    durations = []
    for _ in range(3):
        t0 = time.monotonic()
        assert pyrunc("create", "--bundle", b.path, "probe").rc == 0
        durations.append(time.monotonic() - t0)
        assert pyrunc("delete", "--force", "probe").rc == 0
    duration = sorted(durations)[1]
    rng = random.Random(9)
    seen = {"no dir": 0, "dir without state.json": 0, "created": 0}
    started = time.monotonic()
    tries = 0
    while tries < 100 or time.monotonic() - started < 20:
        if tries >= 100 and time.monotonic() - started > 60:
            break
        tries += 1
        cid = f"k{tries}"
        b = bundle_for(make_bundle, cid)
        p = subprocess.Popen([*pyrunc.argv, "--root", pyrunc.root, "create", "--bundle", b.path,
                              cid], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, duration))
        p.send_signal(signal.SIGKILL)
        p.wait()
        d = os.path.join(pyrunc.root, cid)
        if not os.path.exists(d):
            seen["no dir"] += 1
        elif not os.path.exists(os.path.join(d, "state.json")):
            seen["dir without state.json"] += 1
            # a half container is not shown (its pid would be nobody's)
            r = pyrunc("state", cid)
            assert (r.rc, r.err.endswith('msg="container does not exist"\n')) == (1, True), r.err
            assert cid not in pyrunc("list", "-q").out.split()
        else:
            seen["created"] += 1
        t = time.monotonic()
        r = pyrunc("delete", "--force", cid, timeout=DELETE_TIMEOUT)
        assert r.rc == 0, r.err
        assert time.monotonic() - t < DELETE_TIMEOUT
        assert_nothing_left(pyrunc, cid, before)
    print(f"{tries} kills over {duration * 1000:.0f} ms creates: {seen}")
    # the kills did land at different steps
    assert seen["dir without state.json"] >= 5 and seen["no dir"] + seen["created"] >= 5, seen


def test_delete_without_force_of_a_killed_create(pyrunc, make_bundle, cgroup_parent):
    """As runc: the leftover directory is removed, and the answer is "does not exist"."""
    before = mounts()
    cid = "half"
    b = bundle_for(make_bundle, cid)
    # a slow prestart hook holds create after the fork, before it records anything
    b.config["hooks"] = {"prestart": [{"path": "/bin/sleep", "args": ["sleep", "3"]}]}
    b.write()
    p = subprocess.Popen([*pyrunc.argv, "--root", pyrunc.root, "create", "--bundle", b.path, cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    # once the cgroup has a process, the fork happened: kill create before it records
    wait_for(lambda: any(os.path.exists(os.path.join(d, "cgroup.procs")) and
                         open(os.path.join(d, "cgroup.procs")).read().strip()
                         for d in cgroup_dirs(cid)), 10, "the fork")
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not os.path.exists(os.path.join(pyrunc.root, cid, "state.json"))
    r = pyrunc("delete", cid, timeout=DELETE_TIMEOUT)
    assert r.rc == 1 and r.err.endswith('msg="container does not exist"\n'), r.err
    assert_nothing_left(pyrunc, cid, before)


def _at_barrier(pid):
    """Blocked at the start barrier: opening exec.fifo for writing (the kernel's fifo open
    waits in wait_for_partner), or polling an exec.fifo it was given (do_sys_poll...). The
    handshake's reads wait in a pipe read instead."""
    try:
        with open(f"/proc/{pid}/wchan") as f:
            wchan = f.read()
    except OSError:
        return False
    return wchan == "wait_for_partner" or "poll" in wchan or "select" in wchan


def test_killed_create_whose_init_waits_at_the_barrier(pyrunc, make_bundle, cgroup_parent):
    """The worst step: the init is built and waits on exec.fifo (holding whatever it inherited
    from create, the state directory's lock included, until that is fixed in the shim), and
    create dies before state.json. delete --force must end it rather than wait for the lock.
    create is stopped as soon as the init exists, then killed once the init waits."""
    before = mounts()
    cid = "barrier"
    b = bundle_for(make_bundle, cid)
    manager = manager_for(f"{CGROUP_PARENT}/{cid}", cid)

    def init_forked():
        try:
            return any((proc_stat(pid) or ("",))[0] == "pyrunc:init" for pid in manager.pids())
        except OSError:
            return False

    hits = 0
    for _attempt in range(10):
        p = subprocess.Popen([*pyrunc.argv, "--root", pyrunc.root, "create", "--bundle", b.path,
                              cid], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            wait_for(init_forked, 10, "the init", step=0.0002)
            p.send_signal(signal.SIGSTOP)  # create stops; the init goes on to the barrier
            waiting = False
            deadline = time.monotonic() + 3
            while not waiting and time.monotonic() < deadline:
                waiting = any(_at_barrier(pid) for pid in live_inits(pyrunc.root))
                time.sleep(0.01)
            recorded = os.path.exists(os.path.join(pyrunc.root, cid, "state.json"))
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait()
        if waiting and not recorded:
            hits += 1
        t = time.monotonic()
        r = pyrunc("delete", "--force", cid, timeout=DELETE_TIMEOUT)
        assert r.rc == 0, r.err
        assert time.monotonic() - t < DELETE_TIMEOUT
        assert_nothing_left(pyrunc, cid, before)
        if hits >= 3:
            break
    assert hits, "never caught create between the init's barrier and state.json"


def test_half_written_state_is_cleaned(pyrunc, make_bundle, cgroup_parent):
    """A temp file of state.json left by a kill between write and rename goes with the dir."""
    before = mounts()
    cid = "tmpleft"
    b = bundle_for(make_bundle, cid)
    assert pyrunc("create", "--bundle", b.path, cid).rc == 0
    d = os.path.join(pyrunc.root, cid)
    # as if create had been killed between writing state.json's temp file and the rename: the
    # provisional record is still there (its creator gone), state.json is not
    with open(os.path.join(d, "state.json")) as f:
        record = json.load(f)
    gone = subprocess.Popen(["true"])
    gone.wait()
    with open(os.path.join(d, "creating.json"), "w") as f:
        json.dump({"id": cid, "creator_pid": gone.pid, "creator_start": 1,
                   "cgroup": record["cgroup"]}, f)
    os.chmod(os.path.join(d, "creating.json"), 0o600)
    with open(os.path.join(d, ".state.json.0123456789ab.tmp"), "w") as f:
        f.write('{"id": "tmpl')
    os.unlink(os.path.join(d, "state.json"))
    assert pyrunc("state", cid).rc == 1
    assert pyrunc("delete", "--force", cid, timeout=DELETE_TIMEOUT).rc == 0
    assert_nothing_left(pyrunc, cid, before)


def test_50_lifecycles_in_parallel(pyrunc, make_bundle, cgroup_parent):
    before = mounts()
    bundles = {f"p{i}": bundle_for(make_bundle, f"p{i}", "true") for i in range(50)}

    def lifecycle(cid):
        b = bundles[cid]
        r = pyrunc("create", "--bundle", b.path, cid, timeout=60)
        assert r.rc == 0, r.err
        r = pyrunc("start", cid, timeout=60)
        assert r.rc == 0, r.err
        wait_for(lambda: state(pyrunc, cid)["status"] == "stopped", 30, f"{cid} to stop")
        r = pyrunc("delete", cid, timeout=60)
        assert r.rc == 0, r.err
        return cid

    t = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        done = list(pool.map(lifecycle, bundles))
    print(f"50 lifecycles, 8 at a time: {time.monotonic() - t:.1f} s")
    assert sorted(done) == sorted(bundles)
    assert pyrunc.ids() == []
    for cid in bundles:
        assert_nothing_left(pyrunc, cid, before)


MIXED = [("create", "--bundle", None), ("start",), ("kill", "KILL"), ("delete",),
         ("delete", "--force"), ("state",)]


def test_mixed_commands_on_one_id_concurrently(pyrunc, make_bundle, cgroup_parent):
    """20 commands at once on one id, 5 rounds: every one returns (no hang, no Python error),
    and a final delete --force leaves nothing."""
    before = mounts()
    rng = random.Random(10)
    cid = "mixed"
    b = bundle_for(make_bundle, cid)
    for _round in range(5):
        commands = [MIXED[0]] * 4 + [rng.choice(MIXED) for _ in range(16)]
        rng.shuffle(commands)
        results = []
        barrier = threading.Barrier(len(commands))

        def one(cmd, barrier=barrier, results=results):
            args = [a if a is not None else b.path for a in cmd]
            barrier.wait()
            r = pyrunc(*args, cid, timeout=60)
            results.append((cmd[0], r.rc, r.err))

        threads = [threading.Thread(target=one, args=(c,)) for c in commands]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
            assert not t.is_alive(), "a command hung"
        for verb, _rc, err in results:
            assert "internal error" not in err and "Traceback" not in err, (verb, err)
        assert any(verb == "create" and rc == 0 for verb, rc, _ in results) or \
            not os.path.exists(os.path.join(pyrunc.root, cid)), results
        r = pyrunc("delete", "--force", cid, timeout=DELETE_TIMEOUT)
        assert r.rc == 0, r.err
        assert_nothing_left(pyrunc, cid, before)
