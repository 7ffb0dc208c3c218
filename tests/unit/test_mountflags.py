"""linux/mountflags.py: mount options -> MS_* flags, propagation, recursive attributes, data."""

import pytest

from pyrunc.linux import mountflags as mf


def test_flags_set_and_cleared_in_order():
    o = mf.parse(["ro", "nosuid", "nodev", "rw", "suid"])
    assert o.flags == mf.MS_NODEV  # later options undo earlier ones, as runc's loop
    assert o.cleared == mf.MS_RDONLY | mf.MS_NOSUID  # "rw", "suid": explicitly off
    o = mf.parse(["rw", "ro"])
    assert o.flags == mf.MS_RDONLY and o.cleared == 0  # set again: no longer "cleared"


@pytest.mark.parametrize("opt, flags", [
    ("bind", mf.MS_BIND), ("rbind", mf.MS_BIND | mf.MS_REC), ("defaults", 0),
    ("noatime", mf.MS_NOATIME), ("strictatime", mf.MS_STRICTATIME), ("relatime", mf.MS_RELATIME),
    ("nosymfollow", mf.MS_NOSYMFOLLOW), ("sync", mf.MS_SYNCHRONOUS), ("remount", mf.MS_REMOUNT),
])
def test_single_flags(opt, flags):
    o = mf.parse([opt])
    assert (o.flags, o.data, o.propagation, o.extensions) == (flags, "", [], set())


def test_propagation_kept_in_order_and_not_in_flags():
    o = mf.parse(["rprivate", "shared", "runbindable"])
    assert o.propagation == [mf.MS_PRIVATE | mf.MS_REC, mf.MS_SHARED, mf.MS_UNBINDABLE | mf.MS_REC]
    assert o.flags == 0


def test_unknown_options_are_data_in_order():
    o = mf.parse(["mode=755", "nosuid", "size=65536k", "uid=5", "context=\"x,y\""])
    assert o.data == 'mode=755,size=65536k,uid=5,context="x,y"'
    assert o.flags == mf.MS_NOSUID


def test_extensions_are_not_data():
    o = mf.parse(["tmpcopyup", "mode=1777"])
    assert o.extensions == {"tmpcopyup"} and o.data == "mode=1777"


def test_recursive_attributes():
    o = mf.parse(["rro", "rnosuid", "rdev"])
    assert o.recursive
    assert o.rec_set == mf.MOUNT_ATTR_RDONLY | mf.MOUNT_ATTR_NOSUID
    assert o.rec_clr == mf.MOUNT_ATTR_NODEV
    assert o.flags == 0  # not MS_RDONLY: the top mount gets it through mount_setattr too


@pytest.mark.parametrize("opt, attr", [("rnoatime", mf.MOUNT_ATTR_NOATIME),
                                       ("rstrictatime", mf.MOUNT_ATTR_STRICTATIME),
                                       ("rrelatime", mf.MOUNT_ATTR_RELATIME)])
def test_recursive_atime_clears_the_whole_atime_field(opt, attr):
    """mount_setattr(2) EINVALs an atime setting without MOUNT_ATTR__ATIME in attr_clr."""
    o = mf.parse([opt])
    assert o.rec_set == attr and o.rec_clr == mf.MOUNT_ATTR__ATIME
    assert o.recursive  # rrelatime's attribute is 0: only the clear says so


def test_empty_and_none():
    for options in (None, []):
        o = mf.parse(options)
        assert (o.flags, o.data, o.propagation, o.recursive) == (0, "", [], False)


def test_from_statvfs_maps_relatime_and_drops_the_rest():
    st_relatime = 4096
    assert mf.from_statvfs(mf.MS_RDONLY | mf.MS_NOSUID | st_relatime) == \
        mf.MS_RDONLY | mf.MS_NOSUID | mf.MS_RELATIME
    assert mf.from_statvfs(mf.MS_NOEXEC | mf.MS_NODEV | mf.MS_NOATIME | mf.MS_NODIRATIME) == \
        mf.MS_NOEXEC | mf.MS_NODEV | mf.MS_NOATIME | mf.MS_NODIRATIME
    assert mf.from_statvfs(mf.MS_SYNCHRONOUS | mf.MS_MANDLOCK) == 0  # not lockable: not copied


def test_every_runtime_spec_option_is_known():
    """The runtime-spec's list (config.md "mounts" options): none may fall through to data."""
    spec = ("async atime bind defaults dev diratime dirsync exec iversion lazytime loud mand "
            "noatime nodev nodiratime noexec noiversion nolazytime nomand norelatime "
            "nostrictatime nosuid nosymfollow private ratime rbind rdev rdiratime relatime "
            "remount rexec rnoatime rnodev rnodiratime rnoexec rnorelatime rnostrictatime "
            "rnosuid rnosymfollow ro rprivate rrelatime rro rrw rshared rslave rstrictatime "
            "rsuid rsymfollow runbindable rw shared silent slave strictatime suid symfollow sync "
            "tmpcopyup unbindable").split()
    for opt in spec:
        assert mf.parse([opt]).data == "", opt
