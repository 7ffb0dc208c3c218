"""Bind-mount sources are opened on the host, before the user namespace (as runc >= 1.2).

stage1 clones every bind source with open_tree(OPEN_TREE_CLONE) while it is still the host's
root in the host's namespaces; the init binds a source it can open itself as before (so the
flags the kernel locked for the user namespace stay locked), attaches the clone with
move_mount onto the verified target where it cannot, and closes every clone before anything
of the user's runs. So a source the container's remapped root could not walk to is still
mounted, `--root` can be runc's 0700, and no clone (a host mount) survives into the created
init.
"""

import os
import stat
import subprocess

import pytest
from bundle import make_rootfs
from helpers import state

REMAP = [{"containerID": 0, "hostID": 231072, "size": 65536}]
SECRET = "only the host's root walks here\n"


@pytest.fixture(scope="module")
def sources_rootfs(tmp_path_factory):
    """The image has the mount points: a remapped root cannot make them in a root-owned rootfs."""
    rootfs = make_rootfs(str(tmp_path_factory.mktemp("sources-rootfs")))
    os.makedirs(os.path.join(rootfs, "vol"), exist_ok=True)
    open(os.path.join(rootfs, "etc/secret.conf"), "a").close()
    return rootfs


@pytest.fixture
def hidden(tmp_path):
    """<tmp>/hidden (0700, root's) holding a directory and a file others may read: reachable
    by the host's root only (tmp_path itself is 0700 as well)."""
    d = tmp_path / "hidden"
    d.mkdir()
    d.chmod(0o700)
    (d / "vol").mkdir()
    (d / "vol").chmod(0o755)
    (d / "vol" / "data").write_text(SECRET)
    (d / "secret.conf").write_text(SECRET)
    for f in (d / "vol" / "data", d / "secret.conf"):
        f.chmod(0o644)
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) & 0o001 == 0  # not walkable by others
    return d


def sources_bundle(make_bundle, rootfs, hidden, *args, remap=True):
    b = make_bundle(*args)
    b.config["root"]["path"] = rootfs
    b.config["mounts"] += [
        {"destination": "/vol", "type": "bind", "source": str(hidden / "vol"),
         "options": ["rbind", "ro", "nosuid", "nodev"]},
        {"destination": "/etc/secret.conf", "type": "bind", "source": str(hidden / "secret.conf"),
         "options": ["bind", "ro"]},
    ]
    if remap:
        b.config["linux"]["namespaces"].append({"type": "user"})
        b.config["linux"]["uidMappings"] = b.config["linux"]["gidMappings"] = REMAP
    return b.write()


def test_unreachable_source_is_mounted_in_a_user_namespace(pyrunc, make_bundle, sources_rootfs,
                                                           hidden, cid, no_leaks):
    """The remapped root (231072 on the host) cannot walk into <tmp>/hidden; the host's root
    opened the sources for it, so both binds are there and read-only."""
    b = sources_bundle(make_bundle, sources_rootfs, hidden, "sh", "-c",
                       "id -u; cat /vol/data /etc/secret.conf; touch /vol/x; echo touch=$?")
    r = pyrunc("run", "--bundle", b.path, cid)
    assert r.rc == 0, r.err
    assert r.out.splitlines() == ["0", SECRET.strip(), SECRET.strip(), "touch=1"], r.out
    assert not (hidden / "vol" / "x").exists()


def test_root_is_0700_and_a_remapped_container_runs(pyrunc, make_bundle, sources_rootfs,
                                                    hidden, cid, no_leaks):
    """runc's 0700 --root: nothing in a (remapped) container walks it by path."""
    b = sources_bundle(make_bundle, sources_rootfs, hidden, "cat", "/vol/data")
    r = pyrunc("run", "--bundle", b.path, cid)
    assert (r.rc, r.out) == (0, SECRET), r.err
    assert stat.S_IMODE(os.stat(pyrunc.root).st_mode) == 0o700


@pytest.mark.parametrize("remap", [True, False], ids=["user namespace", "host ids"])
def test_no_detached_mount_reaches_the_created_init(pyrunc, make_bundle, sources_rootfs, hidden,
                                                     cid, remap, no_leaks):
    """The clones are host mounts: every one is attached or closed before the init waits for
    `start`. Its fds are stdio and exec.fifo, nothing else."""
    b = sources_bundle(make_bundle, sources_rootfs, hidden, "true", remap=remap)
    assert pyrunc("create", "--bundle", b.path, cid).rc == 0
    init = state(pyrunc, cid)["pid"]
    fds = {}
    for name in os.listdir(f"/proc/{init}/fd"):
        fds[int(name)] = os.readlink(f"/proc/{init}/fd/{name}")
    extra = {n: t for n, t in fds.items() if n > 2}
    assert list(extra.values()) == [os.path.join(pyrunc.root, cid, "exec.fifo")], fds
    assert pyrunc("delete", "--force", cid).rc == 0


@pytest.fixture
def host_ro_tmpfs(tmp_path):
    """A read-only nosuid tmpfs on the host, at a path a remapped root can walk to."""
    tmp_path.chmod(0o711)
    path = tmp_path / "ro"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,nosuid,mode=755", "tmpfs", str(path)],
                   check=True)
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def test_host_locked_flags_stay_locked_in_a_user_namespace(pyrunc, make_bundle, sources_rootfs,
                                                           host_ro_tmpfs, cid, no_leaks):
    """The host mounted the source read-only; a container root with CAP_SYS_ADMIN in its user
    namespace cannot remount its bind writable (the kernel locked the flag when the container's
    mount namespace copied the host's). A clone made on the host and attached in the
    container would have no locked flag: the source must then be bound from the container's
    own copy whenever the init can reach it."""
    b = make_bundle("sh", "-c", "mount -o remount,bind,rw /vol; echo rc=$?; "
                    "grep ' /vol ' /proc/self/mountinfo | cut -d' ' -f6")
    b.config["root"]["path"] = sources_rootfs
    b.config["mounts"].append({"destination": "/vol", "type": "bind",
                               "source": str(host_ro_tmpfs), "options": ["rbind"]})
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = b.config["linux"]["gidMappings"] = REMAP
    caps = b.config["process"]["capabilities"]
    for key in caps:
        caps[key] = sorted(set(caps[key]) | {"CAP_SYS_ADMIN"})
    b.write()
    r = pyrunc("run", "--bundle", b.path, cid)
    assert r.rc == 0, r.err
    lines = r.out.splitlines()
    assert lines[-2:] == ["rc=1", "ro,nosuid,relatime"], r.out


@pytest.fixture
def host_tmpfs_with(tmp_path):
    """host_tmpfs_with(options) -> a tmpfs mounted so on the host, at a path a remapped root
    can walk to."""
    tmp_path.chmod(0o711)
    made = []

    def make(options):
        path = tmp_path / f"src{len(made)}"
        path.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", options + ",mode=755", "tmpfs", str(path)],
                       check=True)
        made.append(path)
        return path

    yield make
    for path in made:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.parametrize("source, options, expected", [
    ("noatime,nodev", ["bind", "ro"], "ro,nodev,noatime"),
    ("noatime,nodev", ["bind", "nosuid"], "rw,nosuid,nodev,noatime"),
    ("noatime,nodev,ro", ["bind", "nosuid"], "ro,nosuid,nodev,noatime"),
    ("noexec", ["bind", "nodev"], "rw,nodev,noexec,relatime"),
    # asks to change a locked flag: refused, naming it
    ("noatime", ["bind", "ro", "strictatime"], None),
    ("ro", ["bind", "nosuid", "rw"], None),
])
def test_bind_remount_keeps_the_sources_locked_flags(pyrunc, make_bundle, sources_rootfs, no_leaks,
                                                     host_tmpfs_with, cid,
                                                     source, options, expected):
    """In a user namespace the kernel locks the source's ro, nosuid/nodev/noexec and atime
    flags: the remount of a bind for ro/nosuid/... must repeat them (EPERM otherwise)."""
    b = make_bundle("sh", "-c", "grep ' /vol ' /proc/self/mountinfo | cut -d' ' -f6")
    b.config["root"]["path"] = sources_rootfs
    b.config["mounts"].append({"destination": "/vol", "type": "bind",
                               "source": str(host_tmpfs_with(source)), "options": options})
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = b.config["linux"]["gidMappings"] = REMAP
    b.write()
    r = pyrunc("run", "--bundle", b.path, cid)
    if expected is None:
        assert r.rc == 1 and "/vol" in r.err and "the kernel locked on the source" in r.err, r.err
        assert not pyrunc.ids()
        return
    assert r.rc == 0, r.err
    assert r.out.split() == [expected], r.out
