"""The systemd cgroup driver without systemd: naming, properties, annotations, the manager's
calls (a fake bus) and the D-Bus wire code (a fake systemd on a unix socket)."""

import os
import socket
import threading

import pytest

from pyrunc.cgroups import CgroupError, Layout, Manager, manager_from_state
from pyrunc.cgroups.systemd import annotations, bus, names
from pyrunc.cgroups.systemd import properties as sp
from pyrunc.cgroups.systemd.manager import SystemdManager, unit_paths

INF = (1 << 64) - 1


# --- names ----------------------------------------------------------------------------------

@pytest.mark.parametrize("slice_, path", [
    ("system.slice", "/system.slice"),
    ("a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice"),
    ("user-1000.slice", "/user.slice/user-1000.slice"),
    ("-.slice", "/"),
])
def test_expand_slice(slice_, path):
    assert names.expand_slice(slice_) == path


@pytest.mark.parametrize("bad", ["system", ".slice", "a--b.slice", "-a.slice", "a-.slice",
                                 "a/b.slice", "x.scope", ""])
def test_expand_slice_refuses_as_runc(bad):
    with pytest.raises(CgroupError, match=f"^linux.cgroupsPath: invalid slice name: {bad}$"):
        names.expand_slice(bad)


def test_parse_defaults_and_units():
    assert names.parse(None, "c1") == ("system.slice", "pyrunc-c1.scope", "c1")
    assert names.parse("", "c1", user=True) == ("user.slice", "pyrunc-c1.scope", "c1")
    assert names.parse("machine.slice:libpod:abc", "c1") == ("machine.slice", "libpod-abc.scope", "abc")
    assert names.parse(":p:n", "c1") == ("system.slice", "p-n.scope", "n")
    assert names.parse("system.slice:p:my-x.slice", "c1") == ("system.slice", "my-x.slice", "my-x.slice")


def test_parse_errors():
    with pytest.raises(CgroupError, match='expected cgroupsPath to be of format "slice:prefix:name" '
                                          "for systemd cgroups, got '/a/b' instead"):
        names.parse("/a/b", "c1")
    with pytest.raises(CgroupError, match="invalid slice name: bad"):
        names.parse("bad:p:n", "c1")
    with pytest.raises(CgroupError, match="name part"):
        names.parse("system.slice:p:", "c1")
    with pytest.raises(CgroupError, match="invalid systemd unit name 'p-a/b.scope'"):
        names.parse("system.slice:p:a/b", "c1")


def test_unit_paths_v2_v1_and_user():
    v2 = Layout(unified=("/sys/fs/cgroup", "/"))
    assert unit_paths(v2, "a-b.slice", "p-n.scope") == (
        {"": "/sys/fs/cgroup/a.slice/a-b.slice/p-n.scope"}, {"": "/sys/fs/cgroup"})
    dirs, _ = unit_paths(v2, "user.slice", "p-n.scope",
                         manager_cgroup="/user.slice/user-1000.slice/user@1000.service")
    assert dirs[""] == "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/user.slice/p-n.scope"
    hybrid = Layout(v1={"memory": ("/sys/fs/cgroup/memory", "/"),
                        "name=systemd": ("/sys/fs/cgroup/systemd", "/")},
                    unified=("/sys/fs/cgroup/unified", "/"))
    init = {"memory": "/", "name=systemd": "/init.scope", "": "/init.scope"}
    dirs, mounts = unit_paths(hybrid, "system.slice", "p-n.scope", init_cgroup=init)
    assert dirs == {"memory": "/sys/fs/cgroup/memory/system.slice/p-n.scope",
                    "name=systemd": "/sys/fs/cgroup/systemd/system.slice/p-n.scope",
                    "": "/sys/fs/cgroup/unified/system.slice/p-n.scope"}
    assert mounts["memory"] == "/sys/fs/cgroup/memory"


# --- properties -----------------------------------------------------------------------------

def props(**kw):
    kw.setdefault("version", 252)
    return dict((n, v) for n, v in sp.resources(update=True, **kw))


def test_base_properties():
    base = dict(sp.base("p-n.scope", "system.slice", "n", 42, v2=True))
    assert base["Slice"] == ("s", "system.slice")
    assert base["Delegate"] == ("b", True)
    assert base["PIDs"] == ("au", [42])
    assert base["DefaultDependencies"] == ("b", False)
    assert base["Description"] == ("s", "pyrunc container n")
    assert base["IOAccounting"] == ("b", True) and "BlockIOAccounting" not in base
    v1 = dict(sp.base("x.slice", "system.slice", "x.slice", 42, v2=False))
    assert v1["Wants"] == ("as", ["system.slice"]) and "Slice" not in v1 and "Delegate" not in v1
    assert v1["BlockIOAccounting"] == ("b", True)


def test_v2_resources():
    r = {"memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20},
         "cpu": {"shares": 1024, "quota": 12345, "period": 100000, "cpus": "0-2,7", "mems": "0"},
         "pids": {"limit": 50}, "blockIO": {"weight": 500}}
    p = props(r=r, v2=True)
    assert p["MemoryMax"] == ("t", 64 << 20)
    assert p["MemoryLow"] == ("t", 32 << 20)
    assert p["MemorySwapMax"] == ("t", 32 << 20)
    assert p["CPUWeight"] == ("t", 39)  # runc 1.1's conversion of 1024
    assert p["CPUQuotaPeriodUSec"] == ("t", 100000)
    assert p["CPUQuotaPerSecUSec"] == ("t", 130000)  # 123450 rounded up to 10 ms
    assert p["AllowedCPUs"] == ("ay", b"\x87")
    assert p["AllowedMemoryNodes"] == ("ay", b"\x01")
    assert p["TasksMax"] == ("t", 50)
    assert p["IOWeight"] == ("t", 1 + (490 * 9999) // 990)


def test_v1_resources_and_versions():
    r = {"memory": {"limit": -1}, "cpu": {"shares": 512, "quota": 50000, "period": 200000, "cpus": "1"},
         "pids": {"limit": -1}, "blockIO": {"weight": 300}}
    p = props(r=r, v2=False, version=241)
    assert p["MemoryLimit"] == ("t", INF)
    assert p["CPUShares"] == ("t", 512)
    assert p["BlockIOWeight"] == ("t", 300)
    assert p["TasksMax"] == ("t", INF)
    assert p["CPUQuotaPerSecUSec"] == ("t", 250000)
    assert "CPUQuotaPeriodUSec" not in p and "AllowedCPUs" not in p  # systemd too old: files only
    assert "MemoryMax" not in p and "CPUWeight" not in p


def test_unset_values_give_no_properties():
    assert props(r={"memory": {"limit": 0}, "pids": {"limit": 0}, "cpu": {}}, v2=True) == {}
    assert props(r={"cpu": {"quota": -1}}, v2=True) == {"CPUQuotaPerSecUSec": ("t", INF)}
    assert props(r={"cpu": {"idle": 1, "shares": 1024}}, v2=True) == {"CPUWeight": ("t", 0)}


def test_unified_keys():
    p = props(r={"unified": {"memory.high": "1000000", "pids.max": "max", "cpu.max": "20000 100000",
                             "cpu.weight": "77", "memory.oom.group": "1"}}, v2=True)
    assert p == {"MemoryHigh": ("t", 1000000), "TasksMax": ("t", INF), "CPUWeight": ("t", 77),
                 "CPUQuotaPeriodUSec": ("t", 100000), "CPUQuotaPerSecUSec": ("t", 200000)}
    with pytest.raises(CgroupError, match="linux.resources.unified.memory.high"):
        props(r={"unified": {"memory.high": "lots"}}, v2=True)


def test_bad_values_name_the_field():
    with pytest.raises(CgroupError, match="linux.resources.cpu.cpus: 'x': invalid"):
        props(r={"cpu": {"cpus": "x"}}, v2=True)
    with pytest.raises(CgroupError, match="linux.resources.memory.limit: expected an integer"):
        props(r={"memory": {"limit": "1G"}}, v2=True)
    with pytest.raises(CgroupError, match="swap limit without memory limit"):
        props(r={"memory": {"swap": 100}}, v2=True)


def test_device_properties():
    full = sp.device_properties([{"allow": False, "access": "rwm"}])
    d = [v for n, v in full if n == "DeviceAllow"][-1][1]
    assert ("char-*", "m") in d and ("block-*", "m") in d
    if os.path.exists("/dev/char/1:3"):
        assert ("/dev/char/1:3", "rwm") in d
    assert dict(full)["DevicePolicy"] == ("s", "strict")
    assert sp.device_properties([{"allow": True, "access": "rwm"}]) == [
        ("DevicePolicy", ("s", "auto")), ("DeviceAllow", ("a(ss)", []))]
    deny_list = sp.device_properties([{"allow": True, "access": "rwm"},
                                      {"allow": False, "type": "c", "major": 4, "minor": 1, "access": "w"}])
    assert deny_list == [("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", []))]
    assert sp.device_group("c", 136, "Character devices:\n  1 mem\n136 pts\n\nBlock devices:\n  8 sd\n") == "pts"
    assert sp.device_group("b", 136, "Character devices:\n136 pts\nBlock devices:\n  8 sd\n") is None


# --- annotations ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, variant", [
    ("5", ("i", 5)), ("uint64 5", ("t", 5)), ("@t 5", ("t", 5)), ("true", ("b", True)),
    ("'inactive-or-failed'", ("s", "inactive-or-failed")), ('"a\\"b"', ("s", 'a"b')),
    ("2.5", ("d", 2.5)), ("[1, 2]", ("ai", [1, 2])), ("@as []", ("as", [])),
    ("['a', 'b']", ("as", ["a", "b"])), ("int64 -3", ("x", -3)), ("3000000000", ("x", 3000000000)),
])
def test_parse_variant(text, variant):
    assert annotations.parse_variant(text) == variant


@pytest.mark.parametrize("text", ["", "inactive", "'open", "[1, 'a']", "byte 300", "[]", "@q -1", "1 2"])
def test_parse_variant_errors(text):
    with pytest.raises(ValueError):
        annotations.parse_variant(text)


def test_annotation_properties():
    got = annotations.properties({
        "org.systemd.property.TimeoutStopSec": "5", "org.systemd.property.CollectMode": "'inactive-or-failed'",
        "org.systemd.property.TimeoutStopUSec": "uint64 7", "other": "x",
        "org.systemd.property.RuntimeMaxSec": "1.5"})
    assert got == [("CollectMode", ("s", "inactive-or-failed")), ("RuntimeMaxUSec", ("t", 1500000)),
                   ("TimeoutStopUSec", ("t", 5000000)), ("TimeoutStopUSec", ("t", 7))]
    with pytest.raises(CgroupError, match="annotation org.systemd.property.A1b name incorrect: contains non"):
        annotations.properties({"org.systemd.property.A1b": "1"})
    with pytest.raises(CgroupError, match="annotation org.systemd.property.Ab name incorrect: too short"):
        annotations.properties({"org.systemd.property.Ab": "1"})
    with pytest.raises(CgroupError, match="annotation org.systemd.property.CollectMode=x value parse error"):
        annotations.properties({"org.systemd.property.CollectMode": "x"})
    with pytest.raises(CgroupError, match="TimeoutStopSec='x' value parse error: not a number"):
        annotations.properties({"org.systemd.property.TimeoutStopSec": "'x'"})


# --- the manager, with a fake bus ------------------------------------------------------------

class FakeBus:
    def __init__(self, fail_start=()):
        self.calls = []
        self.fail_start = list(fail_start)

    def version(self):
        return 252

    def start_unit(self, unit, props):
        self.calls.append(("start", unit, props))
        if self.fail_start:
            raise self.fail_start.pop(0)

    def stop_unit(self, unit):
        self.calls.append(("stop", unit))
        raise bus.SystemdError("org.freedesktop.systemd1.NoSuchUnit: Unit x not loaded.",
                               "org.freedesktop.systemd1.NoSuchUnit")

    def reset_failed(self, unit):
        self.calls.append(("reset", unit))

    def set_properties(self, unit, props):
        self.calls.append(("set", unit, props))

    def close(self):
        pass


@pytest.fixture
def fs_calls(monkeypatch):
    """The cgroupfs side of the driver, recorded instead of done."""
    calls = []
    for name in ("create", "set", "apply", "destroy"):
        monkeypatch.setattr(Manager, name, lambda self, *a, _n=name, **kw: calls.append((_n, a, kw)))
    monkeypatch.setattr(Manager, "pids", lambda self: [7])
    return calls


def make(fake, mode="unified"):
    return SystemdManager(mode, "p-n.scope", "system.slice", "n", {"": "/sys/fs/cgroup/system.slice/p-n.scope"},
                          {"": "/sys/fs/cgroup"}, extra=[("CollectMode", ("s", "inactive-or-failed"))],
                          connect=lambda user: fake)


def test_create_set_apply_starts_the_unit_then_writes_files(fs_calls):
    fake = FakeBus()
    m = make(fake)
    m.create()
    m.set({"memory": {"limit": 1 << 20}})
    assert fake.calls == [] and fs_calls == []  # nothing before the pid exists
    m.apply(1234)
    (kind, unit, p), = fake.calls
    p = dict(p)
    assert (kind, unit) == ("start", "p-n.scope")
    assert p["PIDs"] == ("au", [1234]) and p["MemoryMax"] == ("t", 1 << 20)
    assert p["CollectMode"] == ("s", "inactive-or-failed") and p["DevicePolicy"] == ("s", "strict")
    assert [c[0] for c in fs_calls] == ["create", "set", "apply"]
    assert fs_calls[1][1] == ({"memory": {"limit": 1 << 20}},) and fs_calls[2][1] == (1234,)
    assert fs_calls[1][2]["skip_devices"] is False


def test_user_instance_writes_no_device_filter(fs_calls):
    """An unprivileged user's delegated cgroup cannot take an eBPF device filter (EPERM):
    runc skips it for rootless; so does the user instance here (systemd still gets the list)."""
    fake = FakeBus()
    m = SystemdManager("unified", "p-n.scope", "user.slice", "n", {"": "/x/p-n.scope"}, user=True,
                       connect=lambda user: fake)
    m.set({})
    m.apply(5)
    assert fs_calls[1][2]["skip_devices"] is True
    assert dict(fake.calls[0][2])["DevicePolicy"] == ("s", "strict")
    m.set({"pids": {"limit": 3}}, update=True)
    assert fs_calls[-1][2]["skip_devices"] is True


def test_existing_unit_is_reset_once_then_the_error_names_it(fs_calls):
    exists = bus.SystemdError("org.freedesktop.systemd1.UnitExists: Unit p-n.scope was already loaded "
                              "or has a fragment file.", "org.freedesktop.systemd1.UnitExists")
    fake = FakeBus(fail_start=[exists, exists])
    m = make(fake)
    m.set({})
    with pytest.raises(CgroupError, match='^unable to start unit "p-n.scope": '
                                          "org.freedesktop.systemd1.UnitExists: Unit p-n.scope was"):
        m.apply(1)
    assert [c[0] for c in fake.calls] == ["start", "reset", "start"]
    # the unit is someone else's: create's clean-up must not kill or stop it
    assert m.pids() == [] and fs_calls == []
    m.destroy()
    assert [c[0] for c in fake.calls] == ["start", "reset", "start"]


def test_failed_job_resets_and_reports(fs_calls):
    fake = FakeBus(fail_start=[bus.SystemdError("error creating systemd unit `p-n.scope`: got `failed`")])
    with pytest.raises(CgroupError, match="got `failed`"):
        make(fake).apply(1)
    assert [c[0] for c in fake.calls] == ["start", "reset"]


def test_update_and_destroy(fs_calls):
    fake = FakeBus()
    m = make(fake)
    m.set({"pids": {"limit": 9}}, update=True)
    assert fake.calls == [("set", "p-n.scope", [("TasksMax", ("t", 9))])]
    assert fs_calls[0][0] == "set" and fs_calls[0][2]["update"] is True
    m.destroy()  # NoSuchUnit (a scope systemd already removed) is not an error
    assert [c[0] for c in fake.calls[1:]] == ["stop", "reset"] and fs_calls[-1][0] == "destroy"


def test_state_round_trip():
    m = make(FakeBus())
    data = m.to_state()
    assert data["driver"] == "systemd" and data["unit"] == "p-n.scope"
    again = manager_from_state(data)
    assert isinstance(again, SystemdManager) and again.to_state() == data
    assert isinstance(manager_from_state({"mode": "unified", "paths": {"": "/x"}}), Manager)
    with pytest.raises(CgroupError, match="invalid cgroup state"):
        manager_from_state({"driver": "systemd", "mode": "unified"})
    with pytest.raises(CgroupError, match="invalid systemd unit name"):
        manager_from_state(dict(data, unit="../x"))


def test_rootless_v1_is_refused(monkeypatch):
    import pyrunc.cgroups as cg
    monkeypatch.setattr(cg, "systemd_running", lambda: True)
    hybrid = Layout(v1={"memory": ("/sys/fs/cgroup/memory", "/")}, unified=("/sys/fs/cgroup/unified", "/"))
    with pytest.raises(CgroupError, match="cannot use rootless systemd cgroups manager on cgroup v1"):
        cg.manager_for("", "c1", systemd=True, rootless=True, layout=hybrid)


def test_manager_for_checks_in_runcs_order(monkeypatch):
    import pyrunc.cgroups as cg
    monkeypatch.setattr(cg, "systemd_running", lambda: False)
    with pytest.raises(CgroupError, match="slice:prefix:name"):
        cg.manager_for("/not/systemd", "abc", systemd=True)
    with pytest.raises(CgroupError, match="systemd not running"):
        cg.manager_for("system.slice:pyrunc:abc", "abc", systemd=True)
    monkeypatch.setattr(cg, "systemd_running", lambda: True)
    v2 = Layout(unified=("/sys/fs/cgroup", "/"))
    with pytest.raises(CgroupError, match="invalid slice name: nope"):
        cg.manager_for("nope:p:abc", "abc", systemd=True, layout=v2)
    with pytest.raises(CgroupError, match="annotation org.systemd.property.X name incorrect"):
        cg.manager_for("", "abc", systemd=True, layout=v2, annotations={"org.systemd.property.X": "1"})
    m = cg.manager_for("", "abc", systemd=True, layout=v2)
    assert m.unit == "pyrunc-abc.scope" and m.paths() == {"": "/sys/fs/cgroup/system.slice/pyrunc-abc.scope"}


# --- the bus: addresses, uid, and the wire against a fake systemd ---------------------------

def test_host_uid_and_addresses():
    euid = os.geteuid()
    assert bus.host_uid(f"{euid} 1000 1\n") == 1000
    assert bus.host_uid(f"0 {euid} 4294967295\n") == 2 * euid if euid else bus.host_uid("0 0 4294967295\n") == 0
    assert bus.user_bus_address({"XDG_RUNTIME_DIR": "/run/user/7"}) == "unix:path=/run/user/7/bus"
    assert bus.user_bus_address({"DBUS_SESSION_BUS_ADDRESS": "unix:path=/x", "XDG_RUNTIME_DIR": "/y"}) == "unix:path=/x"
    with pytest.raises(CgroupError, match="neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR"):
        bus.user_bus_address({})
    assert bus.socket_path("unix:path=/run/a%20b,guid=1") == "/run/a b"
    assert bus.socket_path("tcp:host=x;unix:abstract=foo") == "\0foo"
    with pytest.raises(CgroupError, match="unsupported D-Bus address"):
        bus.socket_path("tcp:host=x")


class FakeSystemd(threading.Thread):
    """Speaks the D-Bus wire protocol on a unix socket as systemd's private socket would."""

    def __init__(self, path, job_result="done", error=None, auth_ok=True):
        super().__init__(daemon=True)
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(path)
        self.srv.listen(1)
        self.job_result, self.error, self.auth_ok = job_result, error, auth_ok
        self.seen = []
        self.auth = None

    def run(self):
        from jeepney import DBusAddress, Parser, new_error, new_method_return, new_signal
        conn, _ = self.srv.accept()
        data = b""
        while b"BEGIN\r\n" not in data and b"AUTH" not in data:
            data += conn.recv(4096)
        while not data.endswith(b"\r\n"):
            data += conn.recv(4096)
        self.auth = data
        if not self.auth_ok:
            conn.sendall(b"REJECTED EXTERNAL\r\n")
            conn.close()
            return
        conn.sendall(b"OK 1234deadbeef\r\n")
        buf = b""
        while not buf.startswith(b"BEGIN\r\n"):
            buf += conn.recv(4096)
        parser = Parser()
        parser.add_data(buf[len(b"BEGIN\r\n"):])
        serial = 1000
        while True:
            msg = parser.get_next_message()
            if msg is None:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                parser.add_data(chunk)
                continue
            member = msg.header.fields[3]
            self.seen.append((member, msg.body))
            if self.error:
                reply = new_error(msg, self.error, "s", ("Unit p-n.scope was already loaded.",))
            elif member == "Get":
                reply = new_method_return(msg, "v", (("s", "252.39-1~deb12u2"),))
            elif member in ("StartTransientUnit", "StopUnit"):
                reply = new_method_return(msg, "o", ("/org/freedesktop/systemd1/job/42",))
            else:
                reply = new_method_return(msg)
            serial += 1
            conn.sendall(reply.serialise(serial=serial))
            if member in ("StartTransientUnit", "StopUnit") and not self.error and self.job_result:
                sig = new_signal(DBusAddress("/org/freedesktop/systemd1", interface=bus.MANAGER),
                                 "JobRemoved", "uoss", (42, "/org/freedesktop/systemd1/job/42", msg.body[0],
                                                       self.job_result))
                serial += 1
                conn.sendall(sig.serialise(serial=serial))


@pytest.fixture
def sock_path(tmp_path):
    return str(tmp_path / "private")


def test_wire_start_set_stop(sock_path):
    fake = FakeSystemd(sock_path)
    fake.start()
    s = bus.Systemd(sock_path, uid=1000, via_bus=False)
    assert fake.auth == b"\0AUTH EXTERNAL " + b"1000".hex().encode() + b"\r\n"
    assert s.version() == 252
    props = sp.base("p-n.scope", "system.slice", "n", 4242, v2=True) + [
        ("AllowedCPUs", ("ay", b"\x03")), ("DeviceAllow", ("a(ss)", [("/dev/char/1:3", "rwm")]))]
    s.start_unit("p-n.scope", props)
    s.set_properties("p-n.scope", [("TasksMax", ("t", 5))])
    assert s.stop_unit("p-n.scope") == "done"
    s.close()
    members = [m for m, _ in fake.seen]
    assert members == ["Get", "StartTransientUnit", "SetUnitProperties", "StopUnit"]
    start = fake.seen[1][1]
    assert start[:2] == ("p-n.scope", "replace") and ("PIDs", ("au", [4242])) in start[2]
    assert ("AllowedCPUs", ("ay", b"\x03")) in start[2]
    assert fake.seen[2][1] == ("p-n.scope", True, [("TasksMax", ("t", 5))])


def test_wire_errors(sock_path, tmp_path):
    fake = FakeSystemd(sock_path, error="org.freedesktop.systemd1.UnitExists")
    fake.start()
    s = bus.Systemd(sock_path, uid=0, via_bus=False)
    with pytest.raises(bus.SystemdError) as e:
        s.start_unit("p-n.scope", [])
    assert e.value.name == "org.freedesktop.systemd1.UnitExists"
    assert str(e.value) == "org.freedesktop.systemd1.UnitExists: Unit p-n.scope was already loaded."
    s.close()
    path2 = str(tmp_path / "failing")
    fake2 = FakeSystemd(path2, job_result="failed")
    fake2.start()
    s = bus.Systemd(path2, uid=0, via_bus=False)
    with pytest.raises(bus.SystemdError, match="^error creating systemd unit `x.scope`: got `failed`$"):
        s.start_unit("x.scope", [])
    s.close()


def test_wire_timeout_and_refusals(sock_path, tmp_path, monkeypatch):
    fake = FakeSystemd(sock_path, job_result=None)  # the job never ends
    fake.start()
    s = bus.Systemd(sock_path, uid=0, via_bus=False)
    with pytest.raises(bus.SystemdError, match="timeout waiting for systemd to create x.scope"):
        s.start_unit("x.scope", [], timeout=0.3)
    s.close()
    path2 = str(tmp_path / "refusing")
    FakeSystemd(path2, auth_ok=False).start()
    with pytest.raises(bus.SystemdError, match=f"cannot connect to systemd at {path2}: authentication "
                                               "as uid 5 refused"):
        bus.Systemd(path2, uid=5, via_bus=False)
    with pytest.raises(bus.SystemdError, match=f"cannot connect to systemd at {tmp_path}/none: no such file"):
        bus.Systemd(str(tmp_path / "none"), uid=0, via_bus=False)


def test_jeepney_only_where_the_bus_is_used():
    """The cgroupfs driver and the bus-free verbs of a systemd container (ps, pause, events,
    kill read the files) never import jeepney or socket; even the bus module loads jeepney
    only when it connects."""
    import subprocess
    import sys
    code = """
import sys
import pyrunc.cgroups as cg
from pyrunc.runtime import cgroup_ops, create, lifecycle
m = cg.manager_from_state({"driver": "systemd", "mode": "unified", "unit": "p-n.scope",
                           "slice": "system.slice", "paths": {"": "/nonexistent/p-n.scope"}})
m.pids(); m.state()
print(sorted(n for n in ("jeepney", "socket") if n in sys.modules))
import pyrunc.cgroups.systemd.bus
print("jeepney" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert out.stdout.split("\n")[:2] == ["[]", "False"], out.stderr
