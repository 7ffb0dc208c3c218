"""shim/paths.py: walking a path inside a root by fd (no container needed: a temp dir is the root).

The integration tests (test_escape_rootfs.py) run the same code in real containers under attack;
these pin the resolution rules: the root is "/" for absolute links and "..", nothing is created
by a lookup, the final component of a no-follow walk is the link itself.
"""

import errno
import os
import stat

import pytest

from pyrunc.shim import paths


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    r.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    fd = os.open(r, os.O_PATH | os.O_DIRECTORY)
    yield r, outside, fd
    os.close(fd)


def where(fd):
    return os.readlink(f"/proc/self/fd/{fd}")


@pytest.mark.parametrize("link", ["{outside}", "../../../../..{outside}", "/..{outside}"])
def test_links_out_of_the_root_resolve_inside(root, link):
    r, outside, fd = root
    os.symlink(link.format(outside=outside), r / "l")
    with paths.walk(fd, "/l/new/leaf", paths.make_dir()) as node:
        assert where(node.fd) == f"{r}{outside}/new/leaf"
        assert node.created and node.name == "leaf"
    assert os.listdir(outside) == []


def test_dotdot_never_climbs_above_the_root(root):
    r, _, fd = root
    (r / "a").mkdir()
    os.symlink("../../../a", r / "a" / "up")
    fd2 = paths.mkdir_all(fd, "/../../a/up/../b")
    assert where(fd2) == f"{r}/b"
    os.close(fd2)


def test_lookup_creates_nothing(root):
    r, _, fd = root
    with pytest.raises(FileNotFoundError) as e:
        paths.walk(fd, "/x/y")
    assert e.value.strerror == "/x: no such file or directory"
    assert os.listdir(r) == []


def test_no_follow_returns_the_link_itself(root):
    r, outside, fd = root
    os.symlink(str(outside), r / "proc")
    with paths.walk(fd, "/proc", paths.make_dir(), follow_last=False) as node:
        assert stat.S_ISLNK(os.fstat(node.fd).st_mode)
    with paths.walk(fd, "/proc", paths.make_dir()) as node:  # followed: inside the root
        assert where(node.fd) == f"{r}{outside}"


def test_errors_name_the_path_inside_the_root(root):
    r, _, fd = root
    (r / "file").write_text("")
    with pytest.raises(NotADirectoryError) as e:
        paths.walk(fd, "/file/x", paths.make_dir())
    assert e.value.strerror == "/file: not a directory"
    os.symlink("loop", r / "loop")
    with pytest.raises(OSError) as e:
        paths.walk(fd, "/loop/x", paths.make_dir())
    assert e.value.strerror == "/loop: too many levels of symbolic links"


def test_file_target_and_deep_mkdir(root):
    r, _, fd = root
    os.symlink("../run/resolv.conf", r / "etc-resolv")  # a dangling link, as images have
    with paths.walk(fd, "/etc-resolv", paths.make_file()) as node:
        assert stat.S_ISREG(os.fstat(node.fd).st_mode)
    assert (r / "run" / "resolv.conf").is_file()
    deep = "/" + "/".join(f"d{i}" for i in range(60))  # more components than the link limit
    os.close(paths.mkdir_all(fd, deep))
    assert os.path.isdir(f"{r}{deep}")


def test_open_in_root(root):
    r, outside, fd = root
    (outside / "secret").write_text("host")
    os.symlink(str(outside / "secret"), r / "s")
    with pytest.raises(FileNotFoundError):
        paths.open_in_root(fd, "/s", os.O_RDONLY)
    (r / "in").write_text("inside")
    os.symlink("/../in", r / "s2")
    f = paths.open_in_root(fd, "/s2", os.O_RDONLY)
    assert os.read(f, 10) == b"inside"
    os.close(f)


def test_no_fd_leak(root):
    r, _, fd = root
    os.symlink("/a/../b", r / "l")
    before = len(os.listdir("/proc/self/fd"))
    for i in range(20):
        paths.walk(fd, f"/l/c{i}", paths.make_dir()).close()
        with pytest.raises(FileNotFoundError):
            paths.walk(fd, "/nope/x")
    assert len(os.listdir("/proc/self/fd")) == before


# ------------------------------------------------------------ hostile links, one rule each


def test_a_loop_of_two_links_is_eloop_and_creates_nothing(root):
    r, _, fd = root
    os.symlink("b", r / "a")
    os.symlink("/a", r / "b")
    with pytest.raises(OSError) as e:
        paths.walk(fd, "/a/x", paths.make_dir())
    assert e.value.errno == errno.ELOOP
    assert sorted(os.listdir(r)) == ["a", "b"]


def test_forty_links_are_followed_the_forty_first_is_eloop(root):
    r, _, fd = root
    (r / "end").mkdir()
    os.symlink("end", r / "l0")
    for i in range(1, 41):
        os.symlink(f"l{i - 1}", r / f"l{i}")
    with paths.walk(fd, "/l39") as node:  # 40 links
        assert where(node.fd) == f"{r}/end"
    with pytest.raises(OSError) as e:
        paths.walk(fd, "/l40")
    assert e.value.errno == errno.ELOOP


def test_a_dangling_absolute_link_is_made_inside_the_root(root):
    r, outside, fd = root
    os.symlink(f"{outside}/made", r / "dangling")
    with pytest.raises(FileNotFoundError):  # a lookup creates nothing
        paths.walk(fd, "/dangling")
    with paths.walk(fd, "/dangling", paths.make_dir()) as node:
        assert where(node.fd) == f"{r}{outside}/made"
    assert not (outside / "made").exists()


def test_a_link_to_a_magic_link_stays_inside(root):
    r, outside, fd = root
    host = os.open(outside, os.O_PATH)
    try:
        os.symlink(f"/proc/self/fd/{host}", r / "magic")
        with paths.walk(fd, "/magic/x", paths.make_dir()) as node:
            assert where(node.fd) == f"{r}/proc/self/fd/{host}/x"
        assert os.listdir(outside) == []
        inside = paths.open_in_root(fd, f"/proc/self/fd/{host}")  # the kernel's walk: the same
        assert where(inside) == f"{r}/proc/self/fd/{host}"
        os.close(inside)
    finally:
        os.close(host)


def test_links_to_dot_and_dotdot_are_the_root(root):
    r, _, fd = root
    os.symlink(".", r / "dot")
    os.symlink("..", r / "dotdot")
    for name in ("/dot", "/dotdot", "/dot/dotdot/dot"):
        with paths.walk(fd, name) as node:
            assert where(node.fd) == str(r)


def test_the_root_itself_has_no_parent(root):
    r, _, fd = root
    for path in ("/", "", ".", "/..", "/./../"):
        with paths.walk(fd, path, paths.make_dir()) as node:
            assert node.parent is None and where(node.fd) == str(r)


def test_mkdir_all_over_a_file_is_enotdir(root):
    r, _, fd = root
    (r / "f").write_text("")
    with pytest.raises(NotADirectoryError):
        paths.mkdir_all(fd, "/f")


def test_a_name_that_keeps_appearing_is_given_up(root):
    """walk() looks again when its create finds the name taken (a race); a bounded number of times."""
    r, _, fd = root
    calls = []

    def make(parent, name):
        calls.append(name)
        raise FileExistsError(errno.EEXIST, "exists")
    with pytest.raises(OSError) as e:
        paths.walk(fd, "/racy", make)
    assert e.value.errno == errno.ELOOP and len(calls) == 41
