"""Rootless mode's decisions (pyrunc/rootless.py), `spec --rootless` (runc's ToRootless), the
rootless cgroup rules (cgroups/manager.py) and the exe seal's rule without a mount."""

import errno
import json
import os
import subprocess

import pytest

from pyrunc import rootless
from pyrunc.cgroups import CgroupError, Manager, fsio
from pyrunc.security import exeseal
from pyrunc.spec.default import default_config, to_rootless

RUNC = "/usr/sbin/runc"


@pytest.mark.parametrize("value,expected", [
    ("", None), ("auto", None), ("AUTO", None), ("Auto", None),
    ("1", True), ("t", True), ("T", True), ("true", True), ("TRUE", True), ("True", True),
    ("0", False), ("f", False), ("F", False), ("false", False), ("FALSE", False), ("False", False),
])
def test_parse_bool_or_auto(value, expected):
    assert rootless.parse_bool_or_auto(value) is expected


@pytest.mark.parametrize("value", ["yes", "tRUE", "2", " true", "on"])
def test_parse_bool_or_auto_refuses_with_gos_words(value):
    with pytest.raises(rootless.RootlessFlagError) as e:
        rootless.parse_bool_or_auto(value)
    assert str(e.value) == f'strconv.ParseBool: parsing "{value}": invalid syntax'


def _ids(monkeypatch, euid, userns, user=None):
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    monkeypatch.setattr(rootless, "running_in_userns", lambda: userns)
    if user is None:
        monkeypatch.delenv("USER", raising=False)
    else:
        monkeypatch.setenv("USER", user)


def test_rootless_cgroups_auto_rules(monkeypatch):
    _ids(monkeypatch, 1000, False)
    assert rootless.rootless_cgroups("auto") is True  # not root
    _ids(monkeypatch, 0, False)
    assert rootless.rootless_cgroups("auto") is False  # the real root
    assert rootless.rootless_cgroups("true") is True  # the flag wins
    _ids(monkeypatch, 0, True)
    assert rootless.rootless_cgroups("auto") is True  # root in a user namespace, cgroupfs
    assert rootless.rootless_cgroups("false") is False
    # systemd driver: the instance's owner decides; errors and none count as root's
    assert rootless.rootless_cgroups("auto", True, lambda: 1000) is True
    assert rootless.rootless_cgroups("auto", True, lambda: 0) is False
    assert rootless.rootless_cgroups("auto", True, None) is False

    def broken():
        raise OSError("no bus")
    assert rootless.rootless_cgroups("auto", True, broken) is False


def test_default_root(monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    _ids(monkeypatch, 1000, False)
    assert rootless.default_root() == ("/run/user/1000/pyrunc", True)
    _ids(monkeypatch, 0, False, "alice")
    assert rootless.default_root() == ("/run/pyrunc", False)  # the real root ignores XDG
    _ids(monkeypatch, 0, True, "alice")
    assert rootless.default_root() == ("/run/user/1000/pyrunc", True)  # root in a userns
    _ids(monkeypatch, 0, True, None)
    assert rootless.default_root() == ("/run/user/1000/pyrunc", True)  # USER unset
    _ids(monkeypatch, 0, True, "root")
    assert rootless.default_root() == ("/run/pyrunc", False)
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    _ids(monkeypatch, 1000, False)
    assert rootless.default_root() == ("/run/pyrunc", False)


def test_running_in_userns_on_this_host():
    with open("/proc/self/uid_map") as f:
        identity = f.read().split() == ["0", "0", "4294967295"]
    assert rootless.running_in_userns() is (not identity)


def test_to_rootless_matches_runc(tmp_path):
    """runc spec --rootless and ours differ exactly as runc spec and ours do (pyrunc's own
    defaults: ociVersion and hostname: spec/default.py)."""
    if not os.path.exists(RUNC):
        pytest.skip("Debian's runc is not installed")

    def spec(argv, d):
        d.mkdir()
        subprocess.run(argv, cwd=d, check=True)
        with open(d / "config.json") as f:
            return json.load(f)
    plain = spec([RUNC, "spec"], tmp_path / "a")
    runc_rootless = spec([RUNC, "spec", "--rootless"], tmp_path / "b")
    ours_plain = default_config()
    ours = to_rootless(default_config(), os.geteuid(), os.getegid())
    for key in ("mounts",):
        assert ours[key] == [m for m in runc_rootless[key]]
    assert list(ours["linux"]) == [k for k in runc_rootless["linux"] if k in ours["linux"]]
    for key in ("uidMappings", "gidMappings", "maskedPaths", "readonlyPaths"):
        assert ours["linux"][key] == runc_rootless["linux"][key]
    assert "resources" not in ours["linux"] and "resources" not in runc_rootless["linux"]
    # namespaces: runc's change applied to each default
    def change(a, b):
        return ([n for n in a if n not in b], [n for n in b if n not in a])
    assert change(ours_plain["linux"]["namespaces"], ours["linux"]["namespaces"]) == \
        change(plain["linux"]["namespaces"], runc_rootless["linux"]["namespaces"])
    assert ours["linux"]["namespaces"][-1] == {"type": "user"}


def test_cli_spec_rootless_bytes(tmp_path):
    """The file `pyrunc spec --rootless` writes: tabs, no trailing newline (runc's shape)."""
    from pyrunc.cli.main import main
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(["spec", "--rootless"]) == 0
    finally:
        os.chdir(cwd)
    text = (tmp_path / "config.json").read_text()
    assert text == json.dumps(to_rootless(default_config(), os.geteuid(), os.getegid()), indent="\t")


# ----------------------------------------------------------------------------- cgroups

def _manager(tmp_path, rootless_flag, explicit=False, refuse=("cpu",)):
    dirs = {k: str(tmp_path / k / "c") for k in ("cpu", "cpuacct", "memory", "pids", "name=systemd")}
    dirs["cpuacct"] = dirs["cpu"]  # co-mounted
    return Manager("legacy", dirs, rootless=rootless_flag, explicit=explicit), refuse


@pytest.fixture
def refusing(monkeypatch, tmp_path):
    """mkdir is refused (EACCES) below the named hierarchies, as for an ordinary user."""
    refused = set()
    real = fsio.mkdir

    def mkdir(path):
        if any(path.startswith(str(tmp_path / k)) for k in refused):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        real(path)
    monkeypatch.setattr(fsio, "mkdir", mkdir)
    return refused


def test_rootless_skips_what_it_may_not_create(tmp_path, refusing):
    refusing.update({"cpu", "memory"})
    m, _ = _manager(tmp_path, True)
    m.create()
    assert sorted(m.paths()) == ["name=systemd", "pids"]  # cpu took its co-mounted cpuacct along
    (tmp_path / "pids" / "c" / "pids.max").write_text("max")  # what the kernel would provide
    m.set({"pids": {"limit": 5}})  # where it could: applied
    with open(tmp_path / "pids" / "c" / "pids.max") as f:
        assert f.read() == "5"
    m.set({})  # nothing asked in a skipped hierarchy: silence, as runc
    assert m.warnings == []
    with pytest.raises(CgroupError) as e:
        m.set({"memory": {"limit": 1 << 20}})
    assert str(e.value).startswith("linux.resources.memory.limit: cannot set memory limit: "
                                   "container could not join or create cgroup")
    again = Manager.from_state(m.to_state())  # exec/ps/delete see the same
    assert again.paths() == m.paths() and again.rootless


def test_rootless_ignores_device_rules(tmp_path, refusing):
    m, _ = _manager(tmp_path, True)
    m.create()
    m.set({"devices": [{"allow": False, "access": "rwm"}]})  # no devices hierarchy: no error


def test_not_rootless_or_explicit_path_fails(tmp_path, refusing):
    refusing.add("memory")
    m, _ = _manager(tmp_path, False)
    with pytest.raises(CgroupError, match="permission denied"):
        m.create()
    m, _ = _manager(tmp_path, True, explicit=True)  # runc: only without cgroupsPath
    with pytest.raises(CgroupError, match="permission denied"):
        m.create()


# ----------------------------------------------------------------------------- exe seal

def test_mappable_ids(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(exeseal, "_in_user_namespace", lambda: False)
    monkeypatch.setattr(exeseal, "_subuid_ranges", lambda: [(100000, 65536)])
    assert exeseal._mappable(1000) and exeseal._mappable(100000) and exeseal._mappable(165535)
    assert not exeseal._mappable(0) and not exeseal._mappable(165536) and not exeseal._mappable(999)
    # inside a user namespace: whatever it maps (we may be its root)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(exeseal, "_in_user_namespace", lambda: True)
    monkeypatch.setattr(exeseal, "_ranges", lambda path: [(0, 1000, 1), (1, 100000, 65536)])
    assert exeseal._mappable(65534) and not exeseal._mappable(65537)


def test_subuid_ranges_by_name_or_number(monkeypatch, tmp_path):
    import builtins
    import pwd
    text = "alice:100000:65536\n1000:200000:10\nbob:300000:5\nbroken line\n"
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda p, *a, **k: __import__("io").StringIO(text)
                        if p == "/etc/subuid" else real_open(p, *a, **k))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(pwd, "getpwuid", lambda uid: type("P", (), {"pw_name": "alice"}))
    assert exeseal._subuid_ranges() == [(100000, 65536), (200000, 10)]


def test_memfd_copy_is_sealed_and_runs():
    """The fallback copy: same bytes, every seal set, not writable."""
    fd = exeseal._memfd_copy("/proc/self/exe", OSError(errno.EPERM, "Operation not permitted"))
    try:
        assert exeseal._sealed_memfd(fd)
        with open("/proc/self/exe", "rb") as f:
            original = f.read()
        assert os.pread(fd, len(original) + 1, 0) == original
        with pytest.raises(OSError):
            os.write(fd, b"x")
        r = subprocess.run([f"/proc/self/fd/{fd}", "-c", "print('ok')"], pass_fds=(fd,),
                           capture_output=True, text=True, timeout=30)
        assert r.stdout == "ok\n", r.stderr
    finally:
        os.close(fd)


def test_memfd_copy_failure_is_one_clear_error(monkeypatch):
    def refuse(*_a):
        raise OSError(errno.ENOSYS, "Function not implemented")
    monkeypatch.setattr(os, "memfd_create", refuse)
    with pytest.raises(exeseal.ExecutableNotSealed) as e:
        exeseal._memfd_copy("/usr/bin/python3", OSError(errno.EPERM, "Operation not permitted"))
    assert "cannot seal the interpreter /usr/bin/python3" in str(e.value)
    assert "no sealed copy could be made: function not implemented" in str(e.value)


def test_systemd_owner_uid_parses_busctl(monkeypatch, tmp_path):
    """runc's DetectUID: OwnerUID= from `busctl --user --no-pager status`; failures raise."""
    busctl = tmp_path / "busctl"
    busctl.write_text("#!/bin/sh\necho 'PID=1'\necho '  OwnerUID=1000'\n")
    busctl.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert rootless.systemd_owner_uid() == 1000
    busctl.write_text("#!/bin/sh\necho 'no bus' >&2\nexit 1\n")
    with pytest.raises(OSError, match="busctl"):
        rootless.systemd_owner_uid()
    busctl.write_text("#!/bin/sh\necho 'PID=1'\n")
    with pytest.raises(ValueError):
        rootless.systemd_owner_uid()
