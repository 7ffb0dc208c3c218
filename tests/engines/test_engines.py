"""Each scenario, for each engine, with pyrunc as the runtime (and runc, on request).

The effects are checked from inside the container and, where the engine tells us the
container's host PID, from the host too.
"""

import json
import os
import re
import uuid

import pytest
from harness import STATE, Docker, execute, subid_range

CAP_NET_BIND_SERVICE = 1 << 10


@pytest.fixture(params=["docker", "podman", "ctr"])
def engine(request, engines, leaks, runtime):
    engine = engines[request.param]
    leaks(engine, runtime)
    return engine


def name():
    return f"e2e-{uuid.uuid4().hex[:12]}"


def ok(result):
    assert result.rc == 0, result
    return result


def status_field(text, field):
    match = re.search(rf"^{field}:\s*(\S+)", text, re.M)
    assert match, f"{field} not in {text!r}"
    return match.group(1)


# a container that stops at once on SIGTERM (as PID 1 a bare `sleep` would ignore it)
SERVICE = ("sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait")


def test_run_rm_echo(engine, runtime):
    r = ok(engine.run(runtime, "echo", "hi"))
    assert r.out.strip() == "hi"


def test_exit_status(engine, runtime):
    assert engine.run(runtime, "sh", "-c", "exit 3").rc == 3


def test_missing_binary(engine, runtime):
    r = engine.run(runtime, "/nosuch-binary")
    # docker and podman map the runtime's message to 127; ctr reports it and exits 1, as with runc
    assert r.rc == (1 if engine.name == "ctr" else 127), r
    assert "no such file or directory" in r.err and "/nosuch-binary" in r.err, r.err
    r = engine.run(runtime, "nosuch")
    assert 'exec: "nosuch": executable file not found in $PATH' in r.err, r.err


def test_run_tty(engine, runtime):
    """process.terminal with the engine's --console-socket: the pty is the process's stdio."""
    r = ok(engine.run_tty(runtime, "sh", "-c", "tty; [ -t 1 ] && [ -t 2 ] && echo stdout-is-a-tty"))
    lines = r.out.replace("\r", "").split("\n")
    assert re.fullmatch(r"/dev/pts/\d+", lines[0]), r
    assert lines[1] == "stdout-is-a-tty", r


def test_stdin(engine, runtime):
    """The engine's stdin fifo/pipe becomes the process's stdin (docker/podman -i; ctr always)."""
    # two reads, not a read to EOF: ctr keeps the stdin fifo open after the data (with runc too)
    r = ok(engine.run_stdin(runtime, "line one\nline two\n", "sh", "-c", 'read a; read b; echo "$b|$a"'))
    assert r.out == "line two|line one\n", r


def test_user_workdir_hostname_env(engine, runtime):
    if engine.process_opts is None:
        pytest.skip(f"{engine.name} has no user/hostname options")
    opts = engine.process_opts("1000:1000", "/tmp", "e2e-host", "GREETING=hello there")
    r = ok(engine.run(runtime, "sh", "-c", 'id -u; id -g; pwd; hostname; echo "$GREETING"', opts=opts))
    assert r.out.splitlines() == ["1000", "1000", "/tmp", "e2e-host", "hello there"]
    c = name()
    ok(engine.run_detached(runtime, c, *SERVICE))
    assert ok(engine.exec_as(c, "1000", "id", "-u")).out.strip() == "1000"
    ok(engine.stop(c))
    ok(engine.rm(c))


def test_init(engine, runtime):
    """--init: the engine bind-mounts its init (tini, catatonit) and makes it PID 1."""
    if engine.init_opts is None:
        pytest.skip(f"{engine.name} has no --init")
    r = ok(engine.run(runtime, "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo; echo $$",
                      opts=engine.init_opts))
    pid1, me = r.out.splitlines()
    assert pid1.split()[0] in ("/sbin/docker-init", "/run/podman-init"), r
    assert me != "1"  # the shell is the init's child


def test_read_only_root(engine, runtime):
    r = engine.run(runtime, "sh", "-c", "touch /new-file; echo rc=$?; grep ' / ' /proc/self/mounts",
                   opts=engine.read_only_opts)
    assert r.rc == 0, r
    assert "rc=1" in r.out and "Read-only file system" in r.err + r.out, r
    assert " ro," in r.out.splitlines()[-1] or " ro " in r.out.splitlines()[-1], r


def test_detached_exec_stop_rm(engine, runtime):
    c = name()
    ok(engine.run_detached(runtime, c, *SERVICE))
    pid = engine.host_pid(c)
    assert pid > 0 and os.path.exists(f"/proc/{pid}")
    r = ok(engine.exec(c, "sh", "-c", "echo from exec; cat /proc/1/cmdline"))
    assert r.out.startswith("from exec\n") and "sleep 1000" in r.out
    assert engine.exec(c, "sh", "-c", "exit 4").rc == 4
    r = ok(engine.exec_tty(c, "tty"))
    assert re.search(r"/dev/pts/\d+", r.out), r
    # the exec'd process joined the container's namespaces
    ns = ok(engine.exec(c, "sh", "-c", "readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt")).out.split()
    assert ns == [os.readlink(f"/proc/{pid}/ns/pid"), os.readlink(f"/proc/{pid}/ns/mnt")]
    ok(engine.stop(c))
    assert not os.path.exists(f"/proc/{pid}/status") or "zombie" in open(f"/proc/{pid}/status").read()
    ok(engine.rm(c))


def test_top(engine, runtime):
    c = name()
    ok(engine.run_detached(runtime, c, *SERVICE))
    pid = engine.host_pid(c)
    r = ok(engine.top(c))
    if engine.name == "podman":  # podman reads /proc itself, showing container PIDs and commands
        assert "sleep 1000" in r.out, r
    else:  # docker and ctr show the host PIDs from the runtime's `ps --format json`
        assert str(pid) in r.out.split(), r
        assert len(r.out.strip().splitlines()) == 3, r  # a header, sh and sleep
    ok(engine.stop(c))
    ok(engine.rm(c))


def freezer_state(pid):
    for line in open(f"/proc/{pid}/cgroup"):
        _, controllers, path = line.rstrip("\n").split(":", 2)
        if "freezer" in controllers.split(","):
            return open(f"/sys/fs/cgroup/freezer{path}/freezer.state").read().strip()
    raise AssertionError("no freezer cgroup")


def test_pause_unpause(engine, runtime):
    c = name()
    ok(engine.run_detached(runtime, c, *SERVICE))
    pid = engine.host_pid(c)
    ok(engine.pause(c))
    assert freezer_state(pid) == "FROZEN"
    assert status_field(open(f"/proc/{pid}/status").read(), "State") in ("D", "S")
    ok(engine.unpause(c))
    assert freezer_state(pid) == "THAWED"
    assert ok(engine.exec(c, "echo", "alive")).out.strip() == "alive"
    ok(engine.stop(c))
    ok(engine.rm(c))


def test_capabilities(engine, runtime):
    r = ok(engine.run(runtime, "cat", "/proc/self/status", opts=engine.cap_opts))
    for field in ("CapPrm", "CapEff", "CapBnd"):
        assert int(status_field(r.out, field), 16) == CAP_NET_BIND_SERVICE, (field, r.out)
    assert int(status_field(r.out, "CapAmb"), 16) == 0
    # and the kernel enforces it: chown needs CAP_CHOWN, which is gone
    r = engine.run(runtime, "chown", "1:1", "/tmp", opts=engine.cap_opts)
    assert r.rc != 0 and "Operation not permitted" in r.out + r.err, r


@pytest.fixture(scope="session")
def mkdir_deny():
    path = os.path.join(STATE, "mkdir-deny.json")
    os.makedirs(STATE, exist_ok=True)
    with open(path, "w") as f:
        json.dump({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}, f)
    return path


def test_seccomp_profile(engine, runtime, mkdir_deny):
    opts = engine.seccomp_opts(mkdir_deny)
    r = engine.run(runtime, "sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/x", opts=opts)
    assert r.rc == 1, r
    assert "Operation not permitted" in r.out + r.err, r
    assert status_field(r.out, "Seccomp") == "2"
    # the same container without the profile can mkdir: the filter is what denied it
    ok(engine.run(runtime, "mkdir", "/tmp/x"))


def host_cgroup_file(pid, controller, name):
    for line in open(f"/proc/{pid}/cgroup"):
        _, controllers, path = line.rstrip("\n").split(":", 2)
        if controller in controllers.split(","):
            return open(f"/sys/fs/cgroup/{controller}{path}/{name}").read().strip()
    raise AssertionError(f"no {controller} cgroup")


def inside_and_on_host(engine, runtime, opts, controller, name):
    """The value of a cgroup file read in the container (where the engine mounts cgroups: not
    ctr) and in the container's cgroup on the host."""
    c = globals()["name"]()
    ok(engine.run_detached(runtime, c, *SERVICE, opts=opts))
    on_host = host_cgroup_file(engine.host_pid(c), controller, name)
    inside = None
    if engine.name != "ctr":
        inside = ok(engine.exec(c, "cat", f"/sys/fs/cgroup/{controller}/{name}")).out.strip()
    ok(engine.stop(c))
    ok(engine.rm(c))
    return inside, on_host


def test_memory_limit(engine, runtime):
    inside, on_host = inside_and_on_host(engine, runtime, engine.memory_opts(64 << 20),
                                         "memory", "memory.limit_in_bytes")
    assert int(on_host) == 64 << 20
    assert inside in (None, on_host)


def test_pids_limit(engine, runtime):
    if engine.pids_opts is None:
        pytest.skip(f"{engine.name} has no pids-limit option")
    inside, on_host = inside_and_on_host(engine, runtime, engine.pids_opts, "pids", "pids.max")
    assert on_host == inside == "50"


def test_update(engine, runtime):
    if engine.update is None:
        pytest.skip(f"{engine.name} has no update command")
    c = name()
    ok(engine.run_detached(runtime, c, *SERVICE, opts=engine.memory_opts(64 << 20)))
    ok(engine.update(c, 128 << 20, "0.5"))
    r = ok(engine.exec(c, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                       "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"))
    limit, quota, period = map(int, r.out.split())
    assert limit == 128 << 20
    assert quota * 2 == period, r.out
    ok(engine.stop(c))
    ok(engine.rm(c))


def test_podman_preserve_fds(engines, leaks, runtime, tmp_path):
    """podman run --preserve-fds N: conmon passes `--preserve-fds N` and fds 3.. to the runtime."""
    podman = engines["podman"]
    leaks(podman, runtime)
    secret = tmp_path / "secret"
    secret.write_text("passed through\n")
    # fd 3 opened by a shell in front of podman (not in this process: pytest holds its fd 3)
    r = execute(["/bin/sh", "-c", 'exec 3< "$0"; exec "$@"', str(secret), *podman.base(),
                 "run", "--rm", "--runtime", runtime, "--network", "none", "--preserve-fds", "1", "tiny",
                 "sh", "-c", "cat /proc/self/fd/3; ls /proc/self/fd | sort -n | tr '\\n' ' '"],
                env=podman.env())
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0] == "passed through"
    assert lines[1].split()[:4] == ["0", "1", "2", "3"], r  # (and ls's own fd)


def test_podman_uidmap(engines, leaks, runtime):
    podman = engines["podman"]
    leaks(podman, runtime)
    r = ok(podman.run(runtime, "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u",
                      opts=("--uidmap", "0:200000:65536", "--gidmap", "0:200000:65536")))
    assert [line.split() for line in r.out.splitlines()] == [["0", "200000", "65536"]] * 2 + [["0"]]


@pytest.fixture
def docker_userns(engines, leaks, runtime):
    """dockerd restarted with --userns-remap default (and back to plain at the end)."""
    engines["docker"].down()
    remapped = Docker(userns=True)
    remapped.up()
    leaks(remapped, runtime)
    yield remapped
    remapped.cleanup()
    remapped.down()
    engines["docker"].up()


def test_docker_userns_remap(docker_userns, runtime):
    # docker made the user dockremap and its ranges (100000:65536 on a machine that had none)
    uid, size = subid_range("dockremap", "/etc/subuid")
    gid, gsize = subid_range("dockremap", "/etc/subgid")
    r = ok(docker_userns.run(runtime, "cat", "/proc/self/uid_map", "/proc/self/gid_map"))
    uid_map, gid_map = r.out.splitlines()
    assert uid_map.split() == ["0", str(uid), str(size)]
    assert gid_map.split() == ["0", str(gid), str(gsize)]
    c = name()
    ok(docker_userns.run_detached(runtime, c, *SERVICE))
    pid = docker_userns.host_pid(c)
    host_status = open(f"/proc/{pid}/status").read()
    assert status_field(host_status, "Uid") == str(uid)  # root inside is uid on the host
    assert open(f"/proc/{pid}/uid_map").read().split() == ["0", str(uid), str(size)]
    assert ok(docker_userns.exec(c, "id", "-u")).out.strip() == "0"
    ok(docker_userns.stop(c))
    ok(docker_userns.rm(c))
