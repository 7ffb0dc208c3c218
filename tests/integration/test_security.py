"""Issue 3: user and time namespaces, capabilities, seccomp and the rest of process security.

Every test runs a real container; effects are read from /proc inside the container or on the host.
"""

import array
import json
import os
import socket
import struct
import threading

import pytest

ENGINE_CONFIGS = os.environ.get("PYRUNC_ENGINE_CONFIGS") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
    "shared", "engine-configs")
REMAP = [{"containerID": 0, "hostID": 231072, "size": 65536}]
CAP_NET_RAW, CAP_NET_BIND_SERVICE = 13, 10


def run(pyrunc, bundle, cid, **kw):
    bundle.write()
    return pyrunc("run", "--bundle", bundle.path, cid, **kw)


def status_field(text, name):
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{name} not in {text!r}")


def caps(bounding=(), effective=(), permitted=(), inheritable=(), ambient=()):
    return {"bounding": list(bounding), "effective": list(effective), "permitted": list(permitted),
            "inheritable": list(inheritable), "ambient": list(ambient)}


def engine_seccomp(name):
    path = os.path.join(ENGINE_CONFIGS, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} not available")
    with open(path) as f:
        return json.load(f)["linux"]["seccomp"]


def host_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return f.read()


def userns(bundle, uid_maps=REMAP, gid_maps=REMAP):
    bundle.linux["namespaces"].append({"type": "user"})
    bundle.linux["uidMappings"] = uid_maps
    bundle.linux["gidMappings"] = gid_maps
    return bundle


# ---- user namespaces -------------------------------------------------------------------------

def test_userns_remap_inside_and_on_the_host(pyrunc, make_bundle, cid, tmp_path):
    b = userns(make_bundle("sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g"))
    r = run(pyrunc, b, cid)
    assert r.rc == 0, r.err
    lines = [line.split() for line in r.out.splitlines()]
    assert lines == [["0", "231072", "65536"], ["0", "231072", "65536"], ["0"], ["0"]]
    # on the host the init runs as 231072
    b2 = userns(make_bundle("sleep", "30"))
    b2.write()
    assert pyrunc("create", "--bundle", b2.path, cid + "h").rc == 0
    pid = json.loads(pyrunc("state", cid + "h").out)["pid"]
    assert status_field(host_status(pid), "Uid").split() == ["231072"] * 4
    assert status_field(host_status(pid), "Gid").split() == ["231072"] * 4
    with open(f"/proc/{pid}/uid_map") as f:
        assert f.read().split() == ["0", "231072", "65536"]
    assert pyrunc("delete", "--force", cid + "h").rc == 0


def test_userns_several_ranges(pyrunc, make_bundle, cid):
    maps = [{"containerID": 0, "hostID": 231072, "size": 1000},
            {"containerID": 1000, "hostID": 300000, "size": 100}]
    b = userns(make_bundle("cat", "/proc/self/uid_map"), maps, maps)
    r = run(pyrunc, b, cid)
    assert r.rc == 0, r.err
    assert [line.split() for line in r.out.splitlines()] == [["0", "231072", "1000"],
                                                             ["1000", "300000", "100"]]


def test_userns_everything_else_still_works(pyrunc, make_bundle, cid):
    """proc/sysfs/devpts/mqueue/tmpfs, bound device nodes, pivot_root, a host-root-owned rootfs."""
    b = userns(make_bundle("sh", "-c",
                           "grep -E ' /(proc|sys|dev|dev/pts|dev/mqueue|dev/shm) ' /proc/self/mounts "
                           "| cut -d' ' -f2,3 | sort; ls -ln /dev/null | cut -c1; "
                           "stat -c %t,%T /dev/null; echo x > /dev/null && echo devnull-ok; "
                           "stat -c %u /bin/busybox; cat /proc/1/cmdline | tr '\\0' ' '"))
    r = run(pyrunc, b, cid)
    assert r.rc == 0, r.err
    out = r.out.splitlines()
    assert out[:6] == ["/dev devtmpfs" if False else "/dev tmpfs", "/dev/mqueue mqueue",
                       "/dev/pts devpts", "/dev/shm tmpfs", "/proc proc", "/sys sysfs"]
    assert out[6:9] == ["c", "1,3", "devnull-ok"]
    assert out[9] == "65534"  # host root is unmapped: nobody
    assert out[10].startswith("sh -c")  # pid 1 is the user's process: pivot and exec happened


@pytest.mark.parametrize("adj", [0, 300])
def test_userns_with_oom_score_adj(pyrunc, make_bundle, cid, adj):
    """docker --userns-remap sends oomScoreAdj 0: written before the user namespace, as runc does
    (inside it /proc/self/oom_score_adj belongs to the host's root and cannot be opened)."""
    b = userns(make_bundle("cat", "/proc/self/oom_score_adj"))
    b.process["oomScoreAdj"] = adj
    r = run(pyrunc, b, cid)
    assert r.rc == 0, r.err
    assert r.out == f"{adj}\n"


def test_userns_join_by_path(pyrunc, make_bundle, cid):
    first = userns(make_bundle("sleep", "30"))
    first.write()
    assert pyrunc("create", "--bundle", first.path, cid + "a").rc == 0
    pid = json.loads(pyrunc("state", cid + "a").out)["pid"]
    second = make_bundle("sh", "-c", "readlink /proc/self/ns/user; cat /proc/self/uid_map")
    second.linux["namespaces"].append({"type": "user", "path": f"/proc/{pid}/ns/user"})
    r = run(pyrunc, second, cid + "b")
    assert r.rc == 0, r.err
    link, umap = r.out.splitlines()
    assert link == os.readlink(f"/proc/{pid}/ns/user")
    assert umap.split() == ["0", "231072", "65536"]
    assert pyrunc("delete", "--force", cid + "a").rc == 0


def test_init_not_dumpable_before_exec(pyrunc, make_bundle, cid):
    """In a user namespace the init's /proc files stay owned by host root until it execs."""
    b = userns(make_bundle("sleep", "30"))
    b.write()
    assert pyrunc("create", "--bundle", b.path, cid).rc == 0
    pid = json.loads(pyrunc("state", cid).out)["pid"]
    assert status_field(host_status(pid), "Uid").split()[0] == "231072"
    assert os.stat(f"/proc/{pid}/fd").st_uid == 0  # non-dumpable: not the process's uid
    assert pyrunc("start", cid).rc == 0
    for _ in range(200):  # after exec the kernel makes it dumpable again
        if os.stat(f"/proc/{pid}/fd").st_uid == 231072:
            break
        __import__("time").sleep(0.01)
    assert os.stat(f"/proc/{pid}/fd").st_uid == 231072
    assert pyrunc("delete", "--force", cid).rc == 0


@pytest.mark.parametrize("mutate, field", [
    (lambda b: b.linux.update(uidMappings=REMAP, gidMappings=REMAP), "linux.uidMappings"),
    (lambda b: userns(b, [REMAP[0], {"containerID": 100, "hostID": 500000, "size": 10}], REMAP),
     "linux.uidMappings[1]"),
    (lambda b: userns(b, REMAP, [REMAP[0], {"containerID": 70000, "hostID": 231100, "size": 10}]),
     "linux.gidMappings[1]"),
    (lambda b: userns(b, [], REMAP), "linux.uidMappings"),
    (lambda b: userns(b, [{"containerID": 0, "hostID": 4294967000, "size": 65536}], REMAP),
     "linux.uidMappings[0]"),
    (lambda b: b.linux["namespaces"].append({"type": "user", "path": "/proc/self/ns/net"}),
     "linux.namespaces[5].path"),
    (lambda b: (userns(b), b.linux["namespaces"][-1].update(path="/proc/self/ns/user")),
     "linux.uidMappings"),
    (lambda b: b.linux.update(timeOffsets={"boottime": {"secs": 1}}), "linux.timeOffsets"),
])
def test_bad_user_namespace_input(pyrunc, make_bundle, cid, no_leaks, mutate, field):
    b = make_bundle("true")
    mutate(b)
    r = run(pyrunc, b, cid)
    assert r.rc == 1
    assert field in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1
    assert not pyrunc.ids()


def test_time_namespace_offsets(pyrunc, make_bundle, cid):
    b = make_bundle("sh", "-c", "cut -d. -f1 /proc/uptime; cat /proc/self/timens_offsets")
    b.linux["namespaces"].append({"type": "time"})
    b.linux["timeOffsets"] = {"boottime": {"secs": 86400, "nanosecs": 0}, "monotonic": {"secs": 7}}
    with open("/proc/uptime") as f:
        host_uptime = float(f.read().split()[0])
    r = run(pyrunc, b, cid)
    assert r.rc == 0, r.err
    lines = r.out.splitlines()
    assert 86400 + host_uptime - 5 < int(lines[0]) < 86400 + host_uptime + 60
    assert lines[1].split() == ["monotonic", "7", "0"]
    assert lines[2].split() == ["boottime", "86400", "0"]


# ---- capabilities ----------------------------------------------------------------------------

def mask(text, name):
    return int(status_field(text, name), 16)


def test_default_spec_lacks_net_raw(pyrunc, make_bundle, cid):
    r = run(pyrunc, make_bundle("cat", "/proc/self/status"), cid)
    assert r.rc == 0, r.err
    for field in ("CapBnd", "CapEff", "CapPrm"):
        assert mask(r.out, field) == 0x20000420, field  # AUDIT_WRITE, KILL, NET_BIND_SERVICE
        assert not mask(r.out, field) & (1 << CAP_NET_RAW)
    assert mask(r.out, "CapInh") == 0


def test_no_capabilities_root_cannot_bind_port_25(pyrunc, make_bundle, cid):
    b = make_bundle("sh", "-c", "timeout 1 nc -l -p 25; echo rc=$?")
    b.process["capabilities"] = caps()
    r = run(pyrunc, b, cid)
    assert "Permission denied" in r.out + r.err
    assert "rc=1" in r.out


def test_net_bind_service_alone_can_bind_port_25(pyrunc, make_bundle, cid):
    b = make_bundle("sh", "-c", "grep CapEff /proc/self/status; timeout 1 nc -l -p 25; echo rc=$?")
    nbs = ["CAP_NET_BIND_SERVICE"]
    b.process["capabilities"] = caps(nbs, nbs, nbs)
    r = run(pyrunc, b, cid)
    assert mask(r.out, "CapEff") == 1 << CAP_NET_BIND_SERVICE
    assert "rc=143" in r.out  # listening until `timeout` killed it: the bind worked
    assert "Permission denied" not in r.out + r.err


def test_non_root_user_with_ambient_cap_can_bind(pyrunc, make_bundle, cid):
    b = make_bundle("sh", "-c", "id -u; grep -E 'Cap(Inh|Prm|Eff|Amb)' /proc/self/status; "
                                "timeout 1 nc -l -p 25; echo rc=$?")
    nbs = ["CAP_NET_BIND_SERVICE"]
    b.process["user"] = {"uid": 1000, "gid": 1000}
    b.process["capabilities"] = caps(nbs, nbs, nbs, nbs, nbs)
    r = run(pyrunc, b, cid)
    assert r.out.splitlines()[0] == "1000"
    for field in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert mask(r.out, field) == 1 << CAP_NET_BIND_SERVICE, field
    assert "rc=143" in r.out, r.out + r.err


def test_non_root_user_without_ambient_has_no_effective_caps(pyrunc, make_bundle, cid):
    """docker's shape for a non-root user: only the bounding set is given."""
    b = make_bundle("cat", "/proc/self/status")
    b.process["user"] = {"uid": 1000, "gid": 1000}
    b.process["capabilities"] = caps(["CAP_CHOWN", "CAP_KILL"])
    r = run(pyrunc, b, cid)
    assert r.rc == 0, r.err
    assert mask(r.out, "CapBnd") == (1 << 0) | (1 << 5)
    assert mask(r.out, "CapEff") == mask(r.out, "CapPrm") == 0


def test_unknown_capability_is_skipped_with_a_warning(pyrunc, make_bundle, cid):
    b = make_bundle("sh", "-c", "grep CapEff /proc/self/status")
    b.process["capabilities"] = caps(["CAP_KILL", "CAP_FROM_THE_FUTURE"], ["CAP_KILL"], ["CAP_KILL"])
    r = run(pyrunc, b, cid)
    assert r.rc == 0, r.err
    assert mask(r.out, "CapEff") == 1 << 5
    assert "CAP_FROM_THE_FUTURE" in r.err and "level=warning" in r.err


@pytest.mark.parametrize("name", ["NET_ADMIN", "cap_chown", "CAP_", "CAP_KILL "])
def test_malformed_capability_is_an_error(pyrunc, make_bundle, cid, no_leaks, name):
    b = make_bundle("true")
    b.process["capabilities"] = caps(["CAP_KILL", name])
    r = run(pyrunc, b, cid)
    assert r.rc == 1
    assert "process.capabilities.bounding[1]" in r.err, r.err
    assert not pyrunc.ids()


def test_capability_the_host_lacks_fails_create_cleanly(pyrunc, make_bundle, cid, no_leaks):
    """This sandbox's bounding set lacks CAP_SYS_RESOURCE: runc fails the same way."""
    with open("/proc/self/status") as f:
        if mask(f.read(), "CapBnd") & (1 << 24):
            pytest.skip("the host has CAP_SYS_RESOURCE")
    b = make_bundle("true")
    sr = ["CAP_SYS_RESOURCE"]
    b.process["capabilities"] = caps(sr, sr, sr)
    r = run(pyrunc, b, cid)
    assert r.rc == 1
    assert "unable to apply caps: operation not permitted" in r.err
    assert not pyrunc.ids()


# ---- seccomp -----------------------------------------------------------------------------------

def test_seccomp_deny_mkdir_like_docker(pyrunc, make_bundle, cid):
    b = make_bundle("sh", "-c", "mkdir /tmp/d; echo rc=$?; grep Seccomp: /proc/self/status")
    b.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    b.linux["seccomp"] = engine_seccomp("docker--seccomp-deny-mkdir.json")
    r = run(pyrunc, b, cid)
    assert "mkdir: can't create directory '/tmp/d': Operation not permitted" in r.err
    assert "rc=1" in r.out and "Seccomp:\t2" in r.out


def test_seccomp_errno_ret_is_honoured(pyrunc, make_bundle, cid):
    b = make_bundle("sh", "-c", "mkdir /tmp/d")
    b.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}]}
    r = run(pyrunc, b, cid)
    assert "No space left on device" in r.err


def test_seccomp_default_errno_ret(pyrunc, make_bundle, cid):
    b = make_bundle("sh", "-c", "mkdir /tmp/d")
    b.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    allow = engine_seccomp("docker--run-rm-echo-hi.json")
    allow["defaultErrnoRet"] = 28
    for rule in allow["syscalls"]:
        rule["names"] = [n for n in rule["names"] if n not in ("mkdir", "mkdirat")]
    b.linux["seccomp"] = allow
    r = run(pyrunc, b, cid)
    assert "No space left on device" in r.err


def test_seccomp_kill_process_exit_status_159(pyrunc, make_bundle, cid):
    b = make_bundle("sh", "-c", "echo before; exec hostname other")
    b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["sethostname"], "action": "SCMP_ACT_KILL_PROCESS"}]}
    r = run(pyrunc, b, cid)
    assert r.out == "before\n"
    assert r.rc == 159  # 128 + SIGSYS


@pytest.mark.parametrize("config", ["docker--run-rm-echo-hi.json", "podman--run-rm-echo-hi.json"])
def test_engine_default_deny_profiles_run_busybox(pyrunc, make_bundle, cid, config):
    """defaultAction ERRNO + an allowlist of hundreds of syscalls, arg filters on clone/personality."""
    b = make_bundle("sh", "-c", "echo ok; ls / > /dev/null && sleep 0.01 && echo forked; "
                                "grep Seccomp: /proc/self/status")
    b.linux["seccomp"] = engine_seccomp(config)
    assert b.linux["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    r = run(pyrunc, b, cid)
    assert r.rc == 0, r.err
    assert r.out == "ok\nforked\nSeccomp:\t2\n"


def test_seccomp_without_no_new_privileges(pyrunc, make_bundle, cid):
    """Without nnp the filter is loaded while the init still has CAP_SYS_ADMIN."""
    b = make_bundle("sh", "-c", "grep -E 'Seccomp:|NoNewPrivs' /proc/self/status; mkdir /tmp/x")
    b.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    b.process["noNewPrivileges"] = False
    b.linux["seccomp"] = engine_seccomp("docker--seccomp-deny-mkdir.json")
    r = run(pyrunc, b, cid)
    assert "NoNewPrivs:\t0" in r.out and "Seccomp:\t2" in r.out, r.err
    assert "Operation not permitted" in r.err


def test_seccomp_unknown_syscall_names_are_skipped_and_flags_accepted(pyrunc, make_bundle, cid):
    b = make_bundle("sh", "-c", "mkdir /tmp/x")
    b.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                          "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                                    "SECCOMP_FILTER_FLAG_TSYNC"],
                          "syscalls": [{"names": ["no_such_syscall_in_any_kernel", "mkdir", "mkdirat"],
                                        "action": "SCMP_ACT_ERRNO"}]}
    r = run(pyrunc, b, cid)
    assert "Operation not permitted" in r.err


def test_seccomp_argument_filters(pyrunc, make_bundle, cid):
    """personality(0xffffffff) (a query) allowed, personality(8) refused: EQ on args[0]."""
    b = make_bundle("sh", "-c", "uname -m; setarch linux32 uname -m; echo rc=$?")
    b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}
    r = run(pyrunc, b, cid)
    assert r.out.splitlines()[0] == "x86_64"
    assert "rc=1" in r.out, r.out + r.err


def test_seccomp_masked_eq(pyrunc, make_bundle, cid):
    """MASKED_EQ on open flags: O_CREAT (0x40) refused, plain opens allowed."""
    b = make_bundle("sh", "-c", "cat /etc/passwd | grep -q root && echo read-ok; touch /tmp/new; echo rc=$?")
    b.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": [n], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
         "args": [{"index": 2 if n == "openat" else 1, "value": 0x40, "valueTwo": 0x40,
                   "op": "SCMP_CMP_MASKED_EQ"}]} for n in ("open", "openat")]}
    r = run(pyrunc, b, cid)
    assert "read-ok" in r.out and "rc=1" in r.out, r.out + r.err
    assert "Permission denied" in r.err


SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101


def test_seccomp_notify_hands_a_usable_listener_fd(pyrunc, make_bundle, cid, tmp_path):
    """The listener gets runc's container-process-state message with the fd, answers the
    container's mkdir with EACCES through that fd, and the container sees it."""
    import fcntl
    path = str(tmp_path / "listener.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    got = {}

    def listener():
        conn, _ = server.accept()
        fds = array.array("i")
        msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(fds.itemsize))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data)
        got["msg"] = json.loads(msg)
        fd = fds[0]
        got["link"] = os.readlink(f"/proc/self/fd/{fd}")
        req = bytearray(80)
        fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, req)
        notif_id, pid = struct.unpack_from("=QI", req)
        got["pid"] = pid
        fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, bytearray(struct.pack("=QqiI", notif_id, 0, -13, 0)))
        os.close(fd)
        conn.close()

    t = threading.Thread(target=listener, daemon=True)
    t.start()
    b = make_bundle("sh", "-c", "mkdir /tmp/x; echo rc=$?")
    b.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path,
                          "listenerMetadata": "hello-agent",
                          "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}
    r = run(pyrunc, b, cid, timeout=20)
    t.join(10)
    server.close()
    assert "Permission denied" in r.err and "rc=1" in r.out, (r.out, r.err)
    msg = got["msg"]
    assert msg["fds"] == ["seccompFd"] and msg["metadata"] == "hello-agent"
    assert msg["state"]["id"] == cid and msg["pid"] == msg["state"]["pid"]
    assert got["link"] == "anon_inode:seccomp notify"
    assert got["pid"] > 0


@pytest.mark.parametrize("seccomp, field", [
    ({"defaultAction": "SCMP_ACT_FOO"}, "linux.seccomp.defaultAction"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_BAR"}]},
     "linux.seccomp.syscalls[0].action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                                                       "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}]},
     "linux.seccomp.syscalls[0].args[0].op"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]},
     "linux.seccomp.architectures[0]"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}, "linux.seccomp.flags[0]"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]},
     "linux.seccomp.listenerPath"),
])
def test_bad_seccomp_input(pyrunc, make_bundle, cid, no_leaks, seccomp, field):
    b = make_bundle("true")
    b.linux["seccomp"] = seccomp
    r = run(pyrunc, b, cid)
    assert r.rc == 1
    assert field in r.err, r.err
    assert not pyrunc.ids()


# ---- the rest of process security ------------------------------------------------------------

@pytest.mark.parametrize("field, value", [("apparmorProfile", "docker-default"),
                                          ("selinuxLabel", "system_u:system_r:container_t:s0")])
def test_lsm_fields_on_a_host_without_the_lsm(pyrunc, make_bundle, cid, no_leaks, field, value):
    if os.path.exists("/sys/fs/selinux/enforce") or os.path.exists("/sys/kernel/security/apparmor"):
        pytest.skip("an LSM is enabled here")
    b = make_bundle("true")
    b.process[field] = value
    r = run(pyrunc, b, cid)
    assert r.rc == 1 and f"process.{field}" in r.err, r.err
    assert not pyrunc.ids()


def test_personality_io_priority_scheduler(pyrunc, make_bundle, cid):
    b = make_bundle("sh", "-c", "uname -m; ionice -p $$; cut -d' ' -f19,41 /proc/self/stat")
    b.linux["personality"] = {"domain": "LINUX32"}
    b.process["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
    b.process["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7}
    r = run(pyrunc, b, cid)
    assert r.rc == 0, r.err
    assert r.out.splitlines() == ["i686", "idle", "7 3"]  # nice 7, policy 3 = SCHED_BATCH


def test_io_priority_best_effort_level(pyrunc, make_bundle, cid):
    b = make_bundle("ionice", "-p", "1")
    b.process["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 6}
    r = run(pyrunc, b, cid)
    assert r.out.strip() == "best-effort: prio 6", r.out + r.err


def test_no_runtime_fd_reaches_the_container(pyrunc, make_bundle, cid):
    b = make_bundle("ls", "/proc/self/fd")
    b.write()
    stray_r, stray_w = os.pipe()
    os.set_inheritable(stray_r, True)
    try:
        r = pyrunc("run", "--bundle", b.path, cid, pass_fds=(stray_r,))
    finally:
        os.close(stray_r)
        os.close(stray_w)
    assert r.rc == 0, r.err
    assert sorted(r.out.split()) == ["0", "1", "2", "3"]  # 3: ls's own directory fd


# ---- differential: the same security configs under Debian's runc ------------------------------

def _differential_cases():
    nbs = ["CAP_NET_BIND_SERVICE"]
    return {
        "default-caps": lambda b: None,
        "no-caps": lambda b: b.process.update(capabilities=caps()),
        "ambient-user": lambda b: b.process.update(user={"uid": 1000, "gid": 1000},
                                                   capabilities=caps(nbs, nbs, nbs, nbs, nbs)),
        "userns": lambda b: userns(b),
        "seccomp-mkdir": lambda b: b.linux.update(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}),
        "seccomp-docker": lambda b: b.linux.update(seccomp=engine_seccomp("docker--run-rm-echo-hi.json")),
    }


@pytest.mark.differential
@pytest.mark.parametrize("case", sorted(_differential_cases()))
def test_security_matches_runc(pyrunc, runc, make_bundle, cid, case):
    b = make_bundle("sh", "-c", "id; grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; "
                                "cat /proc/self/uid_map; mkdir /tmp/x; echo mkdir=$?")
    b.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    if case != "ambient-user":
        b.process["capabilities"].pop("ambient", None)  # runc spec's ambient caps are inert
    _differential_cases()[case](b)
    b.write()
    mine = pyrunc("run", "--bundle", b.path, cid)
    theirs = runc("run", "--bundle", b.path, cid)
    assert (mine.rc, mine.out) == (theirs.rc, theirs.out), (mine.err, theirs.err)
