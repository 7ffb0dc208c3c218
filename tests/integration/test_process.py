"""The process half of config.json, and linux.namespaces, checked in real containers.

args/env/HOME, cwd, user and groups, umask, rlimits, oomScoreAdj, noNewPrivileges,
executable lookup (with runc's error texts at `create`), and namespaces: new ones,
absent ones (shared with the host) and joined ones (by path).
"""

import os
import resource

import pytest
from bundle import make_rootfs
from helpers import create, sh_ok  # noqa: E402

# ---------------------------------------------------------------- helpers


def error_text(r):
    """The error line with logfmt's \\" unescaped."""
    return r.err.replace('\\"', '"')


def status_fields(text, *names):
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in names:
            fields[key] = value.split()
    return fields


def non_root_ready(bundle, tmp_path):
    """Use a rootfs whose "/" is 0755: the shared one is a pytest mktemp dir (0700), which
    only root can traverse."""
    os.makedirs(tmp_path / "rootfs")
    bundle.config["root"]["path"] = make_rootfs(str(tmp_path / "rootfs"))
    assert os.stat(bundle.config["root"]["path"]).st_mode & 0o777 == 0o755


NAMESPACE_FILES = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt", "cgroup": "cgroup"}


# ---------------------------------------------------------------- args and env

def test_args_are_passed_verbatim(pyrunc, make_bundle, cid):
    b = make_bundle("sh", "-c", 'printf "<%s>\\n" "$0" "$@"', "zero", "a b", "", "*")
    b.write()
    r = pyrunc("run", "--bundle", b.path, cid)
    assert (r.rc, r.out) == (0, "<zero>\n<a b>\n<>\n<*>\n"), r.err


def test_env_is_visible_and_home_defaults_from_passwd(pyrunc, make_bundle, cid):
    b = make_bundle()
    b.process["env"] = ["PATH=/bin", "FOO=bar baz", "EMPTY=", "DUP=first", "DUP=second"]
    out = sh_ok(pyrunc, b, cid, 'echo "$FOO|$EMPTY|$DUP|$HOME"; env | grep -c ^DUP=')
    assert out == "bar baz||second|/root\n1\n"


def test_explicit_home_is_kept(pyrunc, make_bundle, cid):
    b = make_bundle()
    b.process["env"].append("HOME=/somewhere")
    assert sh_ok(pyrunc, b, cid, "echo $HOME") == "/somewhere\n"


def test_home_of_a_uid_missing_from_passwd_is_root_dir(pyrunc, make_bundle, cid, tmp_path):
    b = make_bundle()
    non_root_ready(b, tmp_path)
    b.process["user"] = {"uid": 4242, "gid": 4242}
    out = sh_ok(pyrunc, b, cid, "echo $HOME; id -u")
    assert out == "/\n4242\n"


# ---------------------------------------------------------------- user, groups, umask

NON_ROOT = {"uid": 1000, "gid": 1000, "additionalGids": [5, 65534]}
NON_ROOT_SCRIPT = "id; echo $HOME; grep -E '^(Uid|Gid|Groups):' /proc/self/status"
NON_ROOT_OUT = ("uid=1000(user) gid=1000(user) groups=5(tty),65534(nogroup)\n/home/user\n"
                "Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nGroups:\t5 65534 \n")


# The caller's umask must not matter: the init opens the exec fifo after the switch to the
# user, so the fifo must be 0622 whatever umask `pyrunc create` runs with.
@pytest.mark.parametrize("caller_umask", [0o022, 0o077])
def test_non_root_user(pyrunc, make_bundle, cid, tmp_path, caller_umask):
    b = make_bundle()
    non_root_ready(b, tmp_path)
    b.process["user"] = dict(NON_ROOT)
    assert sh_ok(pyrunc, b, cid, NON_ROOT_SCRIPT, umask=caller_umask) == NON_ROOT_OUT


def test_additional_gids_as_root(pyrunc, make_bundle, cid):
    b = make_bundle()
    b.process["user"] = {"uid": 0, "gid": 0, "additionalGids": [5, 65534]}
    out = sh_ok(pyrunc, b, cid, "id; grep -E '^(Uid|Gid|Groups):' /proc/self/status")
    fields = status_fields(out, "Uid", "Gid", "Groups")
    assert out.splitlines()[0] == "uid=0(root) gid=0(root) groups=5(tty),65534(nogroup)"
    assert fields == {"Uid": ["0"] * 4, "Gid": ["0"] * 4, "Groups": ["5", "65534"]}


def test_no_additional_gids_means_no_groups(pyrunc, make_bundle, cid):
    b = make_bundle()  # the test process itself may have supplementary groups: none must leak in
    assert status_fields(sh_ok(pyrunc, b, cid, "cat /proc/self/status"), "Groups") == {"Groups": []}


@pytest.mark.parametrize("umask, shown, file_mode", [(None, "0022", "644"), (0o077, "0077", "600"),
                                                     (0, "0000", "666")])
def test_umask(pyrunc, make_bundle, cid, umask, shown, file_mode):
    b = make_bundle()
    if umask is not None:
        b.process["user"]["umask"] = umask
    b.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    out = sh_ok(pyrunc, b, cid, "umask; touch /tmp/f; stat -c %a /tmp/f", umask=0o027)
    assert out == f"{shown}\n{file_mode}\n"


# ---------------------------------------------------------------- cwd

def test_cwd_is_created_when_missing(pyrunc, make_bundle, cid, rootfs):
    b = make_bundle()
    cwd = f"/home/user/{cid}/deeper"
    assert not os.path.exists(rootfs + cwd)
    b.process["cwd"] = cwd
    out = sh_ok(pyrunc, b, cid, "pwd; ls -ld . | cut -c1-10")
    assert out == f"{cwd}\ndrwxr-xr-x\n"


def test_cwd_that_is_a_file_fails_at_create(pyrunc, make_bundle, cid, no_leaks):
    b = make_bundle()
    b.process["cwd"] = "/etc/passwd"
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc != 0
    assert "mkdir /etc/passwd (process.cwd in config.json): not a directory" in r.err
    assert b.config["root"]["path"] not in r.err  # the container's path, not the host's
    assert pyrunc.ids() == []


# ---------------------------------------------------------------- rlimits, oom, nnp

def test_rlimits(pyrunc, make_bundle, cid):
    b = make_bundle()
    b.process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
        {"type": "RLIMIT_NPROC", "soft": 3000, "hard": 4000},
        {"type": "RLIMIT_CORE", "soft": 2**64 - 1, "hard": 2**64 - 1},  # RLIM_INFINITY as a uint64
        {"type": "RLIMIT_LOCKS", "soft": 30, "hard": 40},  # not in Python's resource module
    ]
    out = sh_ok(pyrunc, b, cid, "ulimit -n; ulimit -Hn; ulimit -c; grep -E "
                                "'^Max (open files|processes|core file size|file locks)' /proc/self/limits")
    lines = out.splitlines()
    assert lines[:3] == ["100", "200", "unlimited"]
    limits = {" ".join(line.split()[:-3]): line.split()[-3:-1] for line in lines[3:]}
    assert limits == {"Max core file size": ["unlimited", "unlimited"], "Max processes": ["3000", "4000"],
                      "Max open files": ["100", "200"], "Max file locks": ["30", "40"]}


def test_rlimit_hard_above_the_hosts_fails_clearly(pyrunc, make_bundle, cid, no_leaks):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("the host's hard NOFILE limit is unlimited")
    b = make_bundle("true")
    b.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": soft, "hard": hard + 1000}]
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid, preexec_fn=_drop_sys_resource)
    assert r.rc != 0
    assert "error setting rlimit type RLIMIT_NOFILE" in r.err, r.err
    assert pyrunc.ids() == []


def _drop_sys_resource():
    """Runs in the child before exec: pyrunc without CAP_SYS_RESOURCE, as in this sandbox."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(24, 24, 0, 0, 0)  # PR_CAPBSET_DROP, CAP_SYS_RESOURCE: effective on the next exec


def test_rlimit_soft_above_hard_fails(pyrunc, make_bundle, cid, no_leaks):
    b = make_bundle("true")
    b.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 300, "hard": 200}]
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc != 0 and "RLIMIT_NOFILE" in r.err
    assert pyrunc.ids() == []


def test_oom_score_adj(pyrunc, make_bundle, cid):
    with open("/proc/self/oom_score_adj") as f:
        assert int(f.read()) < 500, "the test process already has 500: the test proves nothing"
    b = make_bundle("sh", "-c", "cat /proc/self/oom_score_adj")
    b.process["oomScoreAdj"] = 500
    pid = create(pyrunc, b, cid)
    with open(f"/proc/{pid}/oom_score_adj") as f:  # the init has it before start
        assert f.read() == "500\n"
    assert pyrunc("delete", "--force", cid).rc == 0
    assert sh_ok(pyrunc, b, cid + "b", "cat /proc/self/oom_score_adj") == "500\n"


@pytest.mark.parametrize("nnp, shown", [(True, "1"), (False, "0")])
def test_no_new_privileges(pyrunc, make_bundle, cid, nnp, shown):
    b = make_bundle()
    b.process["noNewPrivileges"] = nnp
    out = sh_ok(pyrunc, b, cid, "cat /proc/self/status")
    assert status_fields(out, "NoNewPrivs") == {"NoNewPrivs": [shown]}


# ---------------------------------------------------------------- executable lookup

def test_executable_found_through_the_containers_path(pyrunc, make_bundle, cid, tmp_path):
    tools = tmp_path / "tools"
    tools.mkdir()
    tool = tools / "hello-tool"
    tool.write_text("#!/bin/sh\necho hello from $0\n")
    tool.chmod(0o755)
    b = make_bundle("hello-tool")
    b.process["env"] = ["PATH=/nonexistent:/opt/tools:/bin"]
    b.config["mounts"].append({"destination": "/opt/tools", "type": "bind", "source": str(tools),
                               "options": ["bind", "ro"]})
    b.write()
    r = pyrunc("run", "--bundle", b.path, cid)
    assert (r.rc, r.out) == (0, "hello from /opt/tools/hello-tool\n"), r.err


EXEC_ERRORS = [
    (["nosuch"], None, 'exec: "nosuch": executable file not found in $PATH'),
    (["/etc/passwd"], None, 'exec: "/etc/passwd": permission denied'),
    (["/nosuch"], None, 'exec: "/nosuch": stat /nosuch: no such file or directory'),
    (["/etc"], None, 'exec: "/etc": permission denied'),
    # in the host's PATH, not in the container's
    (["python3"], None, 'exec: "python3": executable file not found in $PATH'),
    # no PATH at all: Go's LookPath (so runc) does not fall back to the cwd
    (["sh"], ["TERM=xterm"], 'exec: "sh": executable file not found in $PATH'),
    # an empty PATH element means ".": found, but refused as runc's Go 1.19 LookPath does
    (["sh"], ["PATH=/nonexistent::/usr/bin"], 'exec: "sh": cannot run executable found relative to current directory'),
]


@pytest.mark.parametrize("args, env, message", EXEC_ERRORS)
def test_exec_errors_at_create(pyrunc, make_bundle, cid, no_leaks, args, env, message):
    b = make_bundle(*args)
    b.process["cwd"] = "/bin"
    if env is not None:
        b.process["env"] = env
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc != 0
    assert message in error_text(r), r.err
    assert error_text(r).count("\n") == 1  # one error line, no traceback
    assert pyrunc.ids() == []  # no state dir left under --root; no_leaks checks the processes


# ---------------------------------------------------------------- namespaces

def test_new_namespaces_differ_from_the_hosts(pyrunc, make_bundle, cid):
    b = make_bundle("sleep", "30")  # the default config asks for all of them but cgroup
    b.linux["namespaces"].append({"type": "cgroup"})
    pid = create(pyrunc, b, cid)
    try:
        for ns, name in NAMESPACE_FILES.items():
            assert os.readlink(f"/proc/{pid}/ns/{name}") != os.readlink(f"/proc/self/ns/{name}"), ns
    finally:
        assert pyrunc("delete", "--force", cid).rc == 0


def test_pid_namespace(pyrunc, make_bundle, cid):
    b = make_bundle()
    out = sh_ok(pyrunc, b, cid, "echo $$; cat /proc/1/comm; readlink /proc/self/ns/pid")
    pid, comm, ns = out.split()
    assert (pid, comm) == ("1", "sh")
    assert ns != os.readlink("/proc/self/ns/pid")


def test_network_namespace_has_only_lo(pyrunc, make_bundle, cid):
    b = make_bundle()
    out = sh_ok(pyrunc, b, cid, "tail -n +3 /proc/net/dev | cut -d: -f1")
    assert out.split() == ["lo"]
    with open("/proc/net/dev") as f:
        assert len(f.readlines()) > 3, "the host has only lo: the test proves nothing"


def test_cgroup_namespace_shows_root_paths(pyrunc, make_bundle, cid):
    b = make_bundle()
    b.linux["namespaces"].append({"type": "cgroup"})  # runc's template has none
    lines = sh_ok(pyrunc, b, cid, "cat /proc/self/cgroup").splitlines()
    assert lines and all(line.split(":", 2)[2] == "/" for line in lines), lines
    with open("/proc/self/cgroup") as f:
        assert any(line.rstrip("\n").split(":", 2)[2] != "/" for line in f), \
            "the test process sits in the root cgroups: the test proves nothing"


def test_ipc_and_uts_namespaces(pyrunc, make_bundle, cid):
    b = make_bundle()
    b.config["hostname"] = "inner"
    out = sh_ok(pyrunc, b, cid, "hostname; readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts")
    hostname, ipc, uts = out.split()
    assert hostname == "inner" and os.uname().nodename != "inner"
    assert ipc != os.readlink("/proc/self/ns/ipc") and uts != os.readlink("/proc/self/ns/uts")


def test_absent_namespaces_are_the_hosts(pyrunc, make_bundle, cid):
    b = make_bundle()
    b.linux["namespaces"] = [{"type": "pid"}, {"type": "mount"}]
    del b.config["hostname"]  # needs a uts namespace
    out = sh_ok(pyrunc, b, cid, "for n in net ipc uts cgroup pid mnt; do readlink /proc/self/ns/$n; done")
    inside = dict(zip(["net", "ipc", "uts", "cgroup", "pid", "mnt"], out.split(), strict=False))
    for name in ("net", "ipc", "uts", "cgroup"):
        assert inside[name] == os.readlink(f"/proc/self/ns/{name}"), name
    for name in ("pid", "mnt"):
        assert inside[name] != os.readlink(f"/proc/self/ns/{name}"), name


def test_join_namespaces_by_path(pyrunc, make_bundle, cid):
    first = make_bundle("sleep", "30")
    first.config["hostname"] = "first-box"
    pid = create(pyrunc, first, cid)
    try:
        joined = ("network", "ipc", "uts", "pid", "cgroup")
        second = make_bundle()
        second.linux["namespaces"] = [{"type": t, "path": f"/proc/{pid}/ns/{NAMESPACE_FILES[t]}"} for t in joined]
        second.linux["namespaces"].append({"type": "mount"})
        del second.config["hostname"]  # keep the first container's
        names = " ".join(NAMESPACE_FILES[t] for t in joined)
        out = sh_ok(pyrunc, second, cid + "-2",
                    f"for n in {names} mnt; do readlink /proc/self/ns/$n; done; hostname; cat /proc/1/comm")
        *links, mnt, hostname, pid1 = out.split()
        for t, link in zip(joined, links, strict=False):
            assert link == os.readlink(f"/proc/{pid}/ns/{NAMESPACE_FILES[t]}"), t
        assert mnt != os.readlink(f"/proc/{pid}/ns/mnt")
        assert hostname == "first-box"
        assert pid1 == "pyrunc:init"  # the first container's init, still waiting for `start`
    finally:
        assert pyrunc("delete", "--force", cid).rc == 0


def test_join_a_namespace_path_that_does_not_exist(pyrunc, make_bundle, cid, no_leaks):
    b = make_bundle()
    b.linux["namespaces"] = [{"type": "network", "path": "/proc/999999999/ns/net"}, {"type": "mount"},
                             {"type": "pid"}]
    del b.config["hostname"]
    b.write()
    r = pyrunc("create", "--bundle", b.path, cid)
    assert r.rc != 0 and "/proc/999999999/ns/net" in r.err
    assert pyrunc.ids() == []
