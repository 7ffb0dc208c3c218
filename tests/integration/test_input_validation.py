"""Config values that would reach the host or a syscall's special case are refused, naming
the field, with nothing left behind (real CLI, real containers)."""

from helpers import error_of


def test_host_global_sysctl_is_refused(pyrunc, make_bundle, cid, no_leaks):
    """vm.* is not namespaced: writing it from the container would change the host. The value
    written is the host's current one, so even without the defence the host is unchanged."""
    with open("/proc/sys/vm/swappiness") as f:
        current = f.read().strip()
    b = make_bundle("true")
    b.linux["sysctl"] = {"vm.swappiness": current}
    b.write()
    r = pyrunc("run", "--bundle", b.path, cid)
    assert r.rc == 1, (r.rc, r.err)
    assert error_of(r) == ("pyrunc run failed: config.json: linux.sysctl.vm.swappiness: is not in a "
                           "separate kernel namespace: it would change the host")
    assert not pyrunc.ids()


def test_namespaced_sysctl_still_works(pyrunc, make_bundle, cid, no_leaks):
    b = make_bundle("cat", "/proc/sys/net/ipv4/ip_forward")
    b.linux["sysctl"] = {"net.ipv4.ip_forward": "1"}
    b.write()
    r = pyrunc("run", "--bundle", b.path, cid)
    assert (r.rc, r.out) == (0, "1\n"), r.err


def test_uid_minus_one_is_named_before_anything_runs(pyrunc, make_bundle, cid, no_leaks):
    """4294967295 is (uid_t)-1, which setresuid(2) reads as "leave unchanged" (root). The
    shim's identity step refuses it too, late and without the field; validation names it."""
    b = make_bundle("id", "-u")
    b.process["user"] = {"uid": 4294967295, "gid": 4294967295}
    b.write()
    r = pyrunc("run", "--bundle", b.path, cid)
    assert r.out == "", "the process ran: " + r.out
    assert r.rc == 1 and error_of(r).startswith(
        "pyrunc run failed: config.json: process.user.uid: 4294967295 is (uid_t)-1, not an id")
    assert not pyrunc.ids()


def test_nul_byte_in_cgroups_path_is_named(pyrunc, make_bundle, cid, no_leaks):
    b = make_bundle("true")
    b.linux["cgroupsPath"] = "/a\0b"
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc == 1
    assert error_of(r) == 'pyrunc create failed: config.json: linux.cgroupsPath: "/a\\u0000b" contains a NUL byte'
    assert not pyrunc.ids()
