"""bpf(2): the few commands a cgroup device filter needs (load, attach, query, detach).

Every call raises OSError(errno, message) naming the command. The attr unions are laid out
by hand (struct offsets from include/uapi/linux/bpf.h) in a zeroed buffer larger than any
kernel's union bpf_attr: the kernel accepts a larger size when the tail is zero, and some
commands write back past the fields we read (BPF_PROG_QUERY's `revision` on >= 6.6).
"""

import ctypes
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_NR_BPF = {"x86_64": 321, "aarch64": 280}[os.uname().machine]

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_PROG_QUERY = 16

BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6          # attach type
BPF_F_ALLOW_MULTI = 1 << 1

_ATTR_SIZE = 256               # > sizeof(union bpf_attr) of every kernel so far (~150)
_LOG_SIZE = 1 << 16
_INFO_SIZE = 256               # the first fields of struct bpf_prog_info we read


def _bpf(cmd, attr, what):
    ret = _libc.syscall(_NR_BPF, cmd, attr, _ATTR_SIZE)
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({what}): {os.strerror(err)}")
    return ret


def _attr(fmt, *values):
    buf = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into(fmt, buf, 0, *values)
    return buf


def _addr(buf):
    return ctypes.addressof(buf)


def prog_load(prog_type, insns, license, name=b""):
    """Load a program (insns: the raw struct bpf_insn array) and return its fd (O_CLOEXEC, as
    every bpf fd). If the verifier refuses it, the OSError's text carries the verifier's log."""
    code = ctypes.create_string_buffer(bytes(insns), len(insns))
    lic = ctypes.create_string_buffer(license.encode() if isinstance(license, str) else license)
    name = name[:15]

    def load(log):
        # prog_type, insn_cnt, insns, license, log_level, log_size, log_buf, kern_version,
        # prog_flags, prog_name[16]
        attr = _attr("<IIQQIIQII16s", prog_type, len(insns) // 8, _addr(code), _addr(lic),
                     1 if log is not None else 0, _LOG_SIZE if log is not None else 0,
                     _addr(log) if log is not None else 0, 0, 0, name)
        return _bpf(BPF_PROG_LOAD, attr, "BPF_PROG_LOAD")

    try:
        return load(None)  # no log on the fast path: the verifier's text costs time
    except OSError as err:
        if err.errno not in (1, 13, 22):  # EPERM, EACCES, EINVAL: ask the verifier why
            raise
        log = ctypes.create_string_buffer(_LOG_SIZE)
        try:
            fd = load(log)
        except OSError as again:
            text = log.value.decode(errors="replace").strip()
            lines = text.splitlines()[-12:]  # the reason is at the end
            detail = ("; verifier: " + " | ".join(lines)) if lines else ""
            raise OSError(again.errno, f"{again.strerror}{detail}") from None
        return fd  # refused only without a log (should not happen); loaded now


def prog_attach(target_fd, prog_fd, attach_type, flags=0):
    # target_fd, attach_bpf_fd, attach_type, attach_flags, replace_bpf_fd
    _bpf(BPF_PROG_ATTACH, _attr("<IIIII", target_fd, prog_fd, attach_type, flags, 0),
         "BPF_PROG_ATTACH")


def prog_detach(target_fd, prog_fd, attach_type):
    _bpf(BPF_PROG_DETACH, _attr("<IIII", target_fd, prog_fd, attach_type, 0), "BPF_PROG_DETACH")


def prog_query(target_fd, attach_type):
    """Ids of the programs attached to target_fd itself (not inherited ones), in run order."""
    count = 64  # the kernel's limit of programs per cgroup and attach type
    for _ in range(10):
        ids = (ctypes.c_uint32 * count)()
        # target_fd, attach_type, query_flags, attach_flags, prog_ids, prog_cnt
        attr = _attr("<IIIIQI", target_fd, attach_type, 0, 0, ctypes.addressof(ids), count)
        try:
            _bpf(BPF_PROG_QUERY, attr, "BPF_PROG_QUERY")
        except OSError as err:
            if err.errno != 28:  # ENOSPC: prog_cnt now holds the number needed
                raise
            count = struct.unpack_from("<I", attr, 24)[0]
            continue
        found = struct.unpack_from("<I", attr, 24)[0]
        return list(ids[:found])
    raise OSError(28, "bpf(BPF_PROG_QUERY): the list of programs kept changing")


def prog_get_fd_by_id(prog_id):
    return _bpf(BPF_PROG_GET_FD_BY_ID, _attr("<III", prog_id, 0, 0), "BPF_PROG_GET_FD_BY_ID")


def prog_info(prog_fd):
    """(type, id, name) of a loaded program."""
    info = ctypes.create_string_buffer(_INFO_SIZE)
    # bpf_fd, info_len, info
    _bpf(BPF_OBJ_GET_INFO_BY_FD, _attr("<IIQ", prog_fd, _INFO_SIZE, _addr(info)),
         "BPF_OBJ_GET_INFO_BY_FD")
    prog_type, prog_id = struct.unpack_from("<II", info, 0)
    name = struct.unpack_from("16s", info, 64)[0].rstrip(b"\0").decode(errors="replace")
    return prog_type, prog_id, name
