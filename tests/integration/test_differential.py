"""Differential tests: the same bundle run by Debian's runc (/usr/sbin/runc) and by pyrunc.

What the container sees (stdout, stderr, exit status), the shape of the state JSON, the
status transitions and the error wording engines parse must agree. Values that differ by
design (ociVersion, pids, timestamps, "runc" vs "pyrunc" in messages) are normalised.
(Capabilities, seccomp and the terminal have differential tests of their own in
test_security.py and test_console.py.)
"""

import json
import os
import re

import pytest
from helpers import alive, wait_for  # noqa: E402

pytestmark = pytest.mark.differential

TEXT_LINE = re.compile(r'time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" level=error msg="(.*)"\n\Z')


def message(r):
    """The error message of a failed command, with the runtime's name neutralised."""
    m = TEXT_LINE.fullmatch(r.err)
    assert m, f"not exactly one error line: {r.err!r}"
    # runc names itself by argv[0] in some messages ("/usr/sbin/runc: ...")
    return re.sub(r"(/\S*/)?\b(py)?runc\b", "RUNTIME", m[1])


def both(runc, pyrunc, *args, **kw):
    return runc(*args, **kw), pyrunc(*args, **kw)


def run_both(runc, pyrunc, bundle, cid, input=None):
    a = runc("run", "--bundle", bundle.path, cid, input=input)
    b = pyrunc("run", "--bundle", bundle.path, cid, input=input)
    return a, b


def same_run(runc, pyrunc, bundle, cid, normalise=lambda s: s, input=None):
    a, b = run_both(runc, pyrunc, bundle, cid, input=input)
    ra = (a.rc, normalise(a.out), a.err)
    rb = (b.rc, normalise(b.out), b.err)
    assert rb == ra, f"\nrunc:   {ra}\npyrunc: {rb}"
    return a


def _edit(path, value):
    def apply(config):
        *parents, last = path
        for p in parents:
            config = config.setdefault(p, {})
        config[last] = value
    return apply


def _add_mount(**mount):
    return lambda config: config["mounts"].append(mount)


LS_TIME = re.compile(r" +[A-Z][a-z]{2} +\d+ +(\d\d:\d\d|\d{4}) ")

RUN_CASES = [
    ("echo", ["echo", "hello world"], []),
    ("exit-3", ["sh", "-c", "exit 3"], []),
    ("false", ["false"], []),
    ("out-err-exit", ["sh", "-c", "echo out; echo err >&2; exit 42"], []),
    ("exit-255", ["sh", "-c", "exit 255"], []),
    ("kill-self-as-pid1", ["sh", "-c", "kill -9 $$; echo survived"], []),
    ("pid-1", ["sh", "-c", "echo $$; tr '\\0' ' ' < /proc/1/cmdline"], []),
    ("env", ["sh", "-c", "env | sort"],
     [_edit(["process", "env"], ["PATH=/bin:/sbin", "FOO=bar baz", "EMPTY=", "TERM=dumb"])]),
    ("env-home-from-passwd", ["sh", "-c", "echo $HOME"], [_edit(["process", "user"], {"uid": 1000, "gid": 1000})]),
    ("user-1000", ["id"], [_edit(["process", "user"], {"uid": 1000, "gid": 1000})]),
    ("user-1000-groups", ["id"],
     [_edit(["process", "user"], {"uid": 1000, "gid": 1000, "additionalGids": [5, 65534]})]),
    ("user-nobody-umask", ["sh", "-c", "id; umask"],
     [_edit(["process", "user"], {"uid": 65534, "gid": 65534, "umask": 63})]),
    # runc's fixStdioPermissions: fds 0-2 are chowned to the user (not /dev/null)
    ("user-1000-reopens-stdio", ["sh", "-c", ": >> /dev/stdout && echo opened stdout; : >> /dev/stderr && "
                                 "echo opened stderr; stat -L -c %u /proc/self/fd/1 /proc/self/fd/2"],
     [_edit(["process", "user"], {"uid": 1000, "gid": 1000})]),
    # runc brings up `lo` in a network namespace it creates
    ("loopback-up", ["sh", "-c", "ip -o link show lo | cut -d' ' -f3"], []),
    ("default-umask", ["sh", "-c", "umask"], []),
    ("cwd", ["pwd"], [_edit(["process", "cwd"], "/home/user")]),
    ("hostname", ["hostname"], [_edit(["hostname"], "difftest")]),
    ("mounts", ["sh", "-c", "cut -d' ' -f5 /proc/self/mountinfo | sort"], []),
    ("mount-options", ["sh", "-c", "cut -d' ' -f5,6 /proc/self/mountinfo | sort"], []),
    ("dev", ["ls", "-l", "/dev"], []),
    ("dev-all", ["ls", "-la", "/dev/", "/dev/pts", "/dev/shm", "/dev/mqueue"], []),
    # a default device listed again in linux.devices: no error; /dev/ptmx stays the devpts link
    # (not /dev/null: runc then drops its cgroup rule and fails reopening it)
    ("dev-listed-again", ["ls", "-l", "/dev/ptmx", "/dev/tty"],
     [_edit(["linux", "devices"], [
         {"path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2, "fileMode": 0o666, "uid": 0, "gid": 0},
         {"path": "/dev/tty", "type": "c", "major": 5, "minor": 0, "fileMode": 0o620, "uid": 0, "gid": 5}])]),
    ("readonly-root", ["sh", "-c", "touch /x; echo $?"], []),
    ("writable-tmpfs", ["sh", "-c", "echo hi > /dev/shm/f && cat /dev/shm/f"], []),
    ("masked-paths", ["sh", "-c", "stat -c '%n %F %t %T %s' /proc/kcore /proc/keys /sys/firmware"], []),
    ("nofile-rlimit", ["sh", "-c", "ulimit -n; ulimit -Hn"], []),
    ("no-new-privs", ["sh", "-c", "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status"], []),
    ("tmpfs-mount", ["sh", "-c", "grep ' /root ' /proc/self/mountinfo | cut -d' ' -f5,6,9-"],
     [_add_mount(destination="/root", type="tmpfs", source="tmpfs",
                 options=["nosuid", "nodev", "mode=700", "size=1m"])]),
    # without mode= the tmpfs takes the covered directory's mode (with one, runc >= 1.2 and
    # pyrunc use it, runc 1.1 still chmods to the directory's: test_rootfs covers it)
    ("tmpfs-mountpoint-mode", ["stat", "-c", "%a", "/root", "/tmp"],
     [_add_mount(destination="/root", type="tmpfs", source="tmpfs", options=["size=1m"]),
      _add_mount(destination="/tmp", type="tmpfs", source="tmpfs", options=["nosuid"])]),
    ("stdin", ["sh", "-c", "tr a-z A-Z"], []),
    ("domainname-unset", ["cat", "/proc/sys/kernel/domainname"], []),
    ("exec-path-lookup", ["busybox", "echo", "found"], []),
    ("args-with-spaces", ["sh", "-c", 'printf "[%s]\\n" "$@"', "zero", "a b", "", "c"], []),
]


# By design: pyrunc masks a file with a read-only bind of the host's /dev/null (runc, even
# 1.2.8+, binds the container's /dev/null read-write), so those lines' options differ.
FILE_MASK_OPTIONS = re.compile(r"^(/proc/(?:keys|timer_list|kcore|latency_stats|timer_stats|"
                               r"sched_debug)) \S+$", re.M)


@pytest.fixture(scope="module", autouse=True)
def searchable_rootfs(rootfs):
    """The shared rootfs is a mkdtemp directory (mode 0700): inside the container that is "/",
    and a non-root user could not even reach /bin. A real image's / is 0755."""
    os.chmod(rootfs, 0o755)


@pytest.mark.parametrize("name, args, edits", RUN_CASES,
                         ids=[c[0] if isinstance(c, tuple) else c.id for c in RUN_CASES])
def test_run_output_and_status(runc, pyrunc, make_bundle, cid, name, args, edits):
    b = make_bundle(*args)
    for edit in edits:
        edit(b.config)
    b.write()
    normalise = (lambda s: LS_TIME.sub(" TIME ", s)) if name.startswith("dev") else (lambda s: s)
    if name == "mount-options":
        normalise = lambda s: FILE_MASK_OPTIONS.sub(r"\1 MASK", s)  # noqa: E731
    same_run(runc, pyrunc, b, cid, normalise, input="hello\n" if name == "stdin" else None)


def test_run_bind_mount(runc, pyrunc, make_bundle, cid, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "file").write_text("content\n")
    b = make_bundle("sh", "-c", "cat /tmp/file; ls /tmp; touch /tmp/new; echo $?; "
                    "grep ' /tmp ' /proc/self/mountinfo | cut -d' ' -f5,6")
    b.config["mounts"].append({"destination": "/tmp", "type": "bind", "source": str(src),
                               "options": ["rbind", "ro"]})
    b.write()
    same_run(runc, pyrunc, b, cid)


def test_relative_bind_source_is_relative_to_the_bundle(runc, pyrunc, make_bundle, cid):
    b = make_bundle("cat", "/tmp/data")
    os.mkdir(os.path.join(b.path, "data-dir"))
    with open(os.path.join(b.path, "data-dir", "data"), "w") as f:
        f.write("from the bundle\n")
    b.config["mounts"].append({"destination": "/tmp", "type": "bind", "source": "data-dir",
                               "options": ["bind"]})
    b.write()
    assert same_run(runc, pyrunc, b, cid).out == "from the bundle\n"


@pytest.fixture
def source_with_submount(tmp_path):
    """A host directory with a tmpfs mounted below it (noatime, so the atime options show)."""
    import subprocess
    src = tmp_path / "rsrc"
    (src / "sub").mkdir(parents=True)
    (src / "file").write_text("top\n")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,noatime", "tmpfs", str(src / "sub")], check=True)
    try:
        yield src
    finally:
        subprocess.run(["umount", "-l", str(src / "sub")], check=True)


@pytest.mark.parametrize("options", [
    ["rbind", "rro"],
    ["rbind", "rro", "rrw"],
    ["rbind", "rnosuid", "rnodev", "rnoexec"],
    ["rbind", "rstrictatime", "rnodiratime"],
    ["rbind", "rrelatime"],
    ["rbind", "rnoatime", "ratime", "rnosymfollow"],
])
def test_recursive_mount_options(runc, pyrunc, make_bundle, cid, source_with_submount, options):
    """runc's rro, rnosuid, ...: mount_setattr(AT_RECURSIVE), so the submount gets them too."""
    b = make_bundle("sh", "-c", "grep -E ' /mnt(/sub)? ' /proc/self/mountinfo | cut -d' ' -f5,6; "
                    "touch /mnt/sub/x; echo $?")
    b.config["mounts"].append({"destination": "/mnt", "type": "bind",
                               "source": str(source_with_submount), "options": options})
    b.write()
    same_run(runc, pyrunc, b, cid)


def test_bind_source_made_by_an_earlier_mount(runc, pyrunc, make_bundle, cid, rootfs):
    """A bind whose source (a host path) lies under an earlier entry's mount point in the
    rootfs gets that mount, not the directory it covers: mounts are made in order."""
    b = make_bundle("sh", "-c", "touch /home/made-in-tmpfs; ls /mnt; "
                    "grep ' /mnt ' /proc/self/mountinfo | cut -d' ' -f9")
    b.config["mounts"] += [
        {"destination": "/home", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
        {"destination": "/mnt", "type": "bind", "source": os.path.join(rootfs, "home"),
         "options": ["bind"]}]
    b.write()
    assert same_run(runc, pyrunc, b, cid).out == "made-in-tmpfs\ntmpfs\n"
    # also from a user namespace, whose root could not make the mount points (they exist)
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = b.config["linux"]["gidMappings"] = [
        {"containerID": 0, "hostID": 231072, "size": 65536}]
    b.write()
    r = pyrunc("run", "--bundle", b.path, cid)
    assert (r.rc, r.out) == (0, "made-in-tmpfs\ntmpfs\n"), r.err


@pytest.mark.parametrize("options", [["bind", "noatime"], ["bind", "strictatime", "ro"],
                                     ["rbind", "nodiratime", "nosuid"]])
def test_bind_atime_options(runc, pyrunc, make_bundle, cid, tmp_path, options):
    (tmp_path / "src").mkdir()
    b = make_bundle("sh", "-c", "grep ' /mnt ' /proc/self/mountinfo | cut -d' ' -f6")
    b.config["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(tmp_path / "src"),
                               "options": options})
    b.write()
    same_run(runc, pyrunc, b, cid)


def test_loopback_up_in_a_user_namespace(runc, pyrunc, make_bundle, cid):
    """The network namespace made in the container's user namespace: lo is brought up there."""
    b = make_bundle("sh", "-c", "ip -o link show lo | cut -d' ' -f3")
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = b.config["linux"]["gidMappings"] = [
        {"containerID": 0, "hostID": 231072, "size": 65536}]
    b.write()
    assert same_run(runc, pyrunc, b, cid).out == "<LOOPBACK,UP,LOWER_UP>\n"


# --------------------------------------------------------------------------- state JSON

def skeleton(text):
    """The state JSON's layout with the values blanked: indentation, keys, order."""
    return [re.sub(r'": .*', '": V', line) for line in text.split("\n")]


def lifecycle(runner, bundle, cid):
    """create → state → start → state → KILL → state → delete; returns what each step showed."""
    seen = []
    assert runner("create", "--bundle", bundle.path, cid).rc == 0
    for step in ("created", "start", "kill"):
        if step == "start":
            r = runner("start", cid)
            assert (r.rc, r.out, r.err) == (0, "", "")
        elif step == "kill":
            r = runner("kill", cid, "KILL")
            assert (r.rc, r.out, r.err) == (0, "", "")
            wait_for(lambda: json.loads(runner("state", cid).out)["status"] == "stopped")
        r = runner("state", cid)
        assert r.rc == 0 and r.err == ""
        seen.append(r.out)
    lst = runner("list", "--format", "json")
    table = runner("list")
    quiet = runner("list", "-q")
    r = runner("delete", cid)
    assert (r.rc, r.out, r.err) == (0, "", "")
    return seen, lst.out, table.out, quiet.out


@pytest.mark.parametrize("annotations", [None, {"org.b": "2", "org.a": "1", "z": ""}])
def test_state_json_shape_and_transitions(runc, pyrunc, make_bundle, cid, annotations):
    b = make_bundle("sleep", "100")
    if annotations:
        b.config["annotations"] = annotations
    b.write()
    ra = lifecycle(runc, b, cid)
    rb = lifecycle(pyrunc, b, cid)
    for a, p in zip(ra[0], rb[0], strict=False):
        assert not a.endswith("\n") and not p.endswith("\n")
        assert skeleton(p) == skeleton(a)
        da, dp = json.loads(a), json.loads(p)
        assert list(dp) == list(da)
        for key in ("id", "status", "bundle", "rootfs", "owner", "annotations"):
            assert dp.get(key) == da.get(key), key
        assert (dp["pid"] == 0) == (da["pid"] == 0)
        for d in (da, dp):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z", d["created"]), d["created"]
    assert [json.loads(s)["status"] for s in rb[0]] == ["created", "running", "stopped"]
    # list --format json: same keys, same order, compact
    la, lp = json.loads(ra[1]), json.loads(rb[1])
    assert [list(d) for d in lp] == [list(d) for d in la]
    assert lp[0]["owner"] == la[0]["owner"] == "root"
    assert rb[1].endswith("]\n") and "\n" not in rb[1][:-1] and ", " not in rb[1]
    # the table: same header; same cells except the pid and the timestamp
    header_a, row_a = ra[2].splitlines()
    header_p, row_p = rb[2].splitlines()
    assert header_p.split() == header_a.split()  # widths follow the timestamp's length
    cells_a, cells_p = row_a.split(), row_p.split()
    assert [cells_p[i] for i in (0, 1, 2, 3, 5)] == [cells_a[i] for i in (0, 1, 2, 3, 5)]  # stopped: pid 0
    assert rb[3] == ra[3] == cid + "\n"


def test_empty_list_outputs(runc, pyrunc):
    for args in (("list",), ("list", "-q"), ("list", "--format", "json"), ("list", "-f", "json", "-q")):
        a, b = both(runc, pyrunc, *args)
        assert (b.rc, b.out, b.err) == (a.rc, a.out, a.err), args


# --------------------------------------------------------------------------- error wording

def _without_runc_retry_warnings(text):
    # runc sometimes logs "Failed to remove cgroup (will retry)" while its init is still dying
    return "".join(line for line in text.splitlines(True) if "will retry" not in line)


def same_error(a, b):
    assert b.rc == a.rc, (a.rc, a.err, b.rc, b.err)
    if a.rc == 0:
        assert (b.out, b.err) == (a.out, _without_runc_retry_warnings(a.err))
    else:
        assert message(b) == message(a)


@pytest.mark.parametrize("args", [
    ("state", "nosuch"), ("start", "nosuch"), ("kill", "nosuch"), ("kill", "nosuch", "FOO"),
    ("delete", "nosuch"), ("delete", "--force", "nosuch"), ("delete", "-f", "nosuch"),
    ("state", ""), ("state", ".."), ("state", "a/b"), ("kill", "a b", "KILL"), ("start", "a@b"),
    ("delete", "-f", ""), ("delete", "-f", "../x"),
    ("list", "--format", "yaml"),
    ("state", "-x"), ("list", "--bogus"), ("list", "--format"),
])
def test_errors_without_a_container(runc, pyrunc, args):
    same_error(*both(runc, pyrunc, *args))


@pytest.mark.parametrize("args", [("state",), ("kill",), ("kill", "a", "b", "c"), ("list", "x"), ("start", "a", "b")])
def test_wrong_number_of_arguments(runc, pyrunc, args):
    a, b = both(runc, pyrunc, *args)
    same_error(a, b)
    assert b.out.split("\n", 1)[0] == a.out.split("\n", 1)[0] == "Incorrect Usage."


def test_global_usage_errors(runc, pyrunc):
    same_error(*both(runc, pyrunc, "list", global_args=("--log-format", "bogus")))
    a, b = both(runc, pyrunc, "list", global_args=("--bogus",))
    same_error(a, b)
    assert b.out.split("\n", 1)[0] == a.out.split("\n", 1)[0]
    a, b = both(runc, pyrunc, "frobnicate")
    assert (b.rc, b.out) == (a.rc, a.out) == (3, "")
    assert message(b) == message(a)


def test_errors_on_a_live_container(runc, pyrunc, make_bundle, cid):
    b = make_bundle("sleep", "100")
    for runner in (runc, pyrunc):
        assert runner("run", "-d", "--bundle", b.path, cid).rc == 0
    for args in (("start", cid), ("delete", cid), ("kill", cid, "FOO"), ("kill", cid, "SIGRTMIN"),
                 ("kill", cid, "99"), ("kill", cid, "-9"), ("kill", cid, "0"), ("kill", cid, "+0"),
                 ("create", "--bundle", b.path, cid), ("run", "-d", "--bundle", b.path, cid),
                 ("state", cid, "extra")):
        same_error(*both(runc, pyrunc, *args))
    for runner in (runc, pyrunc):
        assert runner("kill", cid, "KILL").rc == 0
        wait_for(lambda runner=runner: json.loads(runner("state", cid).out)["status"] == "stopped")
    for args in (("start", cid), ("kill", cid), ("kill", cid, "KILL"), ("kill", "--all", cid, "KILL"),
                 ("kill", cid, "FOO"), ("delete", cid), ("delete", cid)):
        same_error(*both(runc, pyrunc, *args))


def test_created_container_transitions(runc, pyrunc, make_bundle, cid):
    """KILL on a created container, then delete without --force."""
    b = make_bundle("sleep", "100")
    for runner in (runc, pyrunc):
        assert runner("create", "--bundle", b.path, cid).rc == 0
    same_error(*both(runc, pyrunc, "kill", cid, "0"))
    same_error(*both(runc, pyrunc, "kill", cid, "KILL"))
    for runner in (runc, pyrunc):
        wait_for(lambda runner=runner: json.loads(runner("state", cid).out)["status"] == "stopped")
    a, p = both(runc, pyrunc, "state", cid)
    assert json.loads(p.out)["pid"] == json.loads(a.out)["pid"] == 0
    same_error(*both(runc, pyrunc, "start", cid))
    same_error(*both(runc, pyrunc, "delete", cid))


def test_delete_of_a_created_container(runc, pyrunc, make_bundle, cid):
    """One after the other: on a hybrid host both put a container without cgroupsPath in the
    cgroup2 mount's "<id>" (runc's rule), and runc cannot remove it while pyrunc's is there."""
    b = make_bundle("sleep", "100")
    results = []
    for runner in (runc, pyrunc):
        assert runner("create", "--bundle", b.path, cid).rc == 0
        pid = json.loads(runner("state", cid).out)["pid"]
        results.append(runner("delete", cid))
        wait_for(lambda pid=pid: not alive(pid))
    same_error(*results)


def test_run_exit_status_after_kill(runc, pyrunc, make_bundle, cid, tmp_path):
    """`run` waiting in the foreground while the container is killed: 128+9 for both."""
    import subprocess
    b = make_bundle("sleep", "100")
    codes = []
    for runner in (runc, pyrunc):
        p = subprocess.Popen([*runner.argv, "--root", runner.root, "run", "--bundle", b.path, cid],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda runner=runner: runner("state", cid).rc == 0
                     and json.loads(runner("state", cid).out)["status"] == "running")
            assert runner("kill", cid, "KILL").rc == 0
            codes.append(p.wait(timeout=10))
        finally:
            p.kill()
            p.wait()
    assert codes == [137, 137]
