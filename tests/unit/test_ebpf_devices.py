"""linux.resources.devices -> devices.emulate -> ebpf_devices.build, checked three ways:

* an interpreter (below) for the handful of eBPF opcodes the builder emits runs each program
  for a table of rule lists x device accesses, and over a grid against Policy.allows;
* every program is loaded for real (BPF_PROG_LOAD as root): the kernel's verifier accepts it;
* on a host with a v1 devices hierarchy, the v1 path's writes leave exactly the exceptions
  the v2 program is built from (one rule list, one meaning).

The kernel running these programs on real containers: tests/integration/test_cgroups_v2.py
(this host's cgroup2 mount) and test_cgroups_v2_devices.py (`make test-v2`).
"""

import os
import struct
import uuid

import pytest

from pyrunc.cgroups import CgroupError
from pyrunc.cgroups import devices as devrules
from pyrunc.cgroups import ebpf_devices as E

MASK64 = (1 << 64) - 1
DEV = {"b": 1, "c": 2}
ACC = {"m": 1, "r": 2, "w": 4}


def run(prog, type_, major, minor, access):
    """Execute `prog` on a struct bpf_cgroup_dev_ctx; only the opcodes the builder emits."""
    bits = sum(ACC[c] for c in access)
    ctx = struct.pack("<III", (bits << 16) | DEV[type_], major, minor)
    regs = [None] * 11
    regs[1] = "ctx"
    pc, count = 0, len(prog) // 8
    assert len(prog) % 8 == 0 and count
    while True:
        assert 0 <= pc < count, f"pc {pc} out of the program"
        code, r, off, imm = struct.unpack_from("<BBhi", prog, pc * 8)
        dst, src = r & 0xF, r >> 4
        pc += 1
        if code == E.LDX_W:
            assert regs[src] == "ctx" and off in (0, 4, 8)
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == E.AND32_K:
            regs[dst] = regs[dst] & imm & 0xFFFFFFFF
        elif code == E.RSH32_K:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == E.MOV32_K:
            regs[dst] = imm & 0xFFFFFFFF
        elif code == E.MOV32_X:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code in (E.JEQ_K, E.JNE_K, E.JNE_X):
            assert off >= 0, "no backward jumps"
            other = regs[src] if code == E.JNE_X else imm & MASK64  # imm is sign-extended
            equal = regs[dst] == other
            if equal == (code == E.JEQ_K):
                pc += off
        elif code == E.EXIT:
            assert regs[0] in (0, 1)
            return bool(regs[0])
        else:
            raise AssertionError(f"opcode {code:#x} not emitted by the builder")


def rule(allow, type_="a", major=None, minor=None, access="rwm"):
    return {"allow": allow, "type": type_, "major": major, "minor": minor, "access": access}


DENY_ALL = rule(False)
ALLOW_ALL = rule(True)

# (name, spec rules, with runc's defaults?, [(type, major, minor, access, allowed)])
TABLE = [
    ("docker: deny all + defaults", [DENY_ALL], True, [
        ("c", 1, 3, "rw", True), ("c", 1, 5, "r", True), ("c", 1, 9, "r", True),
        ("c", 5, 0, "rw", True), ("c", 5, 2, "rw", True), ("c", 136, 7, "rw", True),
        ("c", 10, 200, "rw", True),
        ("c", 1, 11, "w", False), ("c", 1, 11, "r", False),   # /dev/kmsg
        ("c", 1, 11, "m", True), ("b", 8, 0, "m", True),      # mknod of anything: allowed ...
        ("b", 8, 0, "r", False), ("b", 8, 0, "rw", False),   # ... opening it: not
        ("c", 10, 229, "rw", False), ("c", 1, 1, "r", False), ("c", 4, 1, "w", False)]),
    ("privileged: allow all", [ALLOW_ALL], True, [
        ("c", 1, 11, "w", True), ("b", 8, 0, "rw", True), ("b", 259, 1, "r", True)]),
    ("no rules, no defaults: nothing", [], False, [
        ("c", 1, 3, "r", False), ("c", 1, 3, "m", False), ("b", 8, 0, "m", False)]),
    ("allow-all minus write on kmsg: O_RDWR is refused too", [ALLOW_ALL, rule(False, "c", 1, 11, "w")],
     True, [("c", 1, 11, "r", True), ("c", 1, 11, "w", False), ("c", 1, 11, "rw", False),
            ("c", 1, 3, "w", True)]),
    ("allow read only", [DENY_ALL, rule(True, "c", 1, 11, "r")], True, [
        ("c", 1, 11, "r", True), ("c", 1, 11, "w", False), ("c", 1, 11, "rw", False)]),
    ("two rules on one device merge", [DENY_ALL, rule(True, "c", 1, 11, "r"), rule(True, "c", 1, 11, "w")],
     False, [("c", 1, 11, "rw", True), ("c", 1, 11, "m", False)]),
    ("a later deny removes access", [DENY_ALL, rule(True, "c", 1, 11, "rw"), rule(False, "c", 1, 11, "w")],
     False, [("c", 1, 11, "r", True), ("c", 1, 11, "w", False), ("c", 1, 11, "rw", False)]),
    ("the last 'a' resets everything before it",
     [DENY_ALL, rule(True, "c", 1, 11), ALLOW_ALL, rule(False, "b", 8, None), DENY_ALL], False, [
         ("c", 1, 11, "r", False), ("b", 8, 0, "r", False), ("c", 1, 3, "r", False)]),
    ("wildcards by type and number", [DENY_ALL, rule(True, "b", 8, None, "r"), rule(True, "c", None, 2, "w")],
     False, [("b", 8, 0, "r", True), ("b", 8, 17, "r", True), ("b", 8, 0, "w", False),
             ("b", 9, 0, "r", False), ("c", 8, 0, "r", False), ("c", 77, 2, "w", True),
             ("c", 77, 3, "w", False), ("b", 77, 2, "w", False)]),
    ("allow-list of a block device", [DENY_ALL, rule(True, "b", 7, 0, "rw")], True, [
        ("b", 7, 0, "rw", True), ("b", 7, 1, "r", False), ("b", 8, 0, "r", False)]),
    ("type a with numbers is still everything", [DENY_ALL, {"allow": True, "type": "a", "major": 1,
                                                           "access": "r"}], False, [
        ("b", 8, 0, "rw", True), ("c", 5, 5, "m", True)]),
    ("numbers beyond what the kernel passes", [DENY_ALL, rule(True, "c", 4294967294, 0, "r"),
                                               rule(True, "c", 2147483648, None, "r")], False, [
        ("c", 4095, 0, "r", False), ("c", 0, 0, "r", False)]),
    ("mknod-only rule does not open", [DENY_ALL, rule(True, "c", 1, 11, "m")], False, [
        ("c", 1, 11, "m", True), ("c", 1, 11, "r", False)]),
]


def policy_of(spec, defaults):
    rules = devrules.all_rules(spec) if defaults else devrules.spec_rules(spec)
    return devrules.emulate(rules)


@pytest.mark.parametrize("name,spec,defaults,cases", TABLE, ids=[t[0] for t in TABLE])
def test_program_decides_as_the_table_says(name, spec, defaults, cases):
    policy = policy_of(spec, defaults)
    prog = E.build(policy)
    for type_, major, minor, access, expected in cases:
        assert run(prog, type_, major, minor, access) == expected, (name, type_, major, minor, access)
        assert policy.allows(type_, major, minor, access) == expected, (name, type_, major, minor, access)


GRID = [(t, ma, mi, acc) for t in "cb" for ma in (0, 1, 5, 7, 8, 10, 136, 4095)
        for mi in (0, 2, 3, 11, 200, (1 << 20) - 1) for acc in ("r", "w", "m", "rw")]


@pytest.mark.parametrize("name,spec,defaults,cases", TABLE, ids=[t[0] for t in TABLE])
def test_program_and_policy_agree_on_every_access(name, spec, defaults, cases):
    policy = policy_of(spec, defaults)
    prog = E.build(policy)
    wrong = [g for g in GRID if run(prog, *g) != policy.allows(*g)]
    assert wrong == []


def test_program_is_runc_shaped_and_deterministic():
    policy = policy_of([DENY_ALL], True)
    prog = E.build(policy)
    assert prog == E.build(policy_of([DENY_ALL], True))
    # prologue (6) + per exception: type, [access x3], [major], [minor], r0, exit; + default (2)
    assert len(prog) // 8 == 6 + sum(1 + (3 if a != "rwm" else 0) + (ma != -1) + (mi != -1) + 2
                                     for _, ma, mi, a in policy.entries()) + 2
    assert prog[-16:] == E.insn(E.MOV32_K, 0, imm=0) + E.insn(E.EXIT)  # default deny
    assert E.build(policy_of([ALLOW_ALL], True)) == b"".join(
        E._prologue()) + E.insn(E.MOV32_K, 0, imm=1) + E.insn(E.EXIT)


@pytest.mark.parametrize("spec,match", [
    ([DENY_ALL, rule(True, "c", 1, None), rule(False, "c", 1, 3, "w")],
     r"devices\[2\]: cannot deny 'c 1:3 w' after 'c 1:\* rwm': device rules cannot punch a hole"),
    ([DENY_ALL, rule(True, "c", None, None, "rw"), rule(False, "c", 1, None, "r")],
     r"devices\[2\]: cannot deny 'c 1:\* r' after 'c \*:\* rw'"),
    ([ALLOW_ALL, rule(False, "b", 8, None), rule(True, "b", 8, 0, "r")],
     r"devices\[2\]: cannot allow 'b 8:0 r' after 'b 8:\* rwm'"),
    ([rule(True, "c", -2, 3)], r"devices\[0\].major: invalid device number -2"),
    ([rule(True, "c", 1, 1 << 32)], r"devices\[0\].minor: invalid device number"),
    # v1 reads ~0 as "*": refused, so that v1 and the v2 program cannot disagree
    ([rule(True, "c", 4294967295, 3)], r"devices\[0\].major: invalid device number 4294967295"),
])
def test_rules_v1_would_ignore_are_refused(spec, match):
    with pytest.raises(CgroupError, match=match):
        devrules.emulate(devrules.spec_rules(spec))


def test_defaults_cannot_punch_holes_either():
    # runc appends its defaults: "allow /dev/null" after "deny c 1:*" is refused by runc too
    with pytest.raises(CgroupError, match=r"default device allow-list: cannot allow 'c 1:3 rwm'"):
        devrules.emulate(devrules.all_rules([ALLOW_ALL, rule(False, "c", 1, None)]))


def test_exact_deny_after_exact_allow_is_fine():
    policy = devrules.emulate(devrules.spec_rules([DENY_ALL, rule(True, "c", 1, 3), rule(False, "c", 1, 3)]))
    assert policy.exceptions == {} and not policy.default_allow


# --- the real kernel ----------------------------------------------------------------------

def _bpf_or_skip():
    if os.geteuid() != 0:
        pytest.skip("BPF_PROG_LOAD needs root")
    from pyrunc.linux import bpf
    return bpf


@pytest.mark.parametrize("name,spec,defaults,cases", TABLE, ids=[t[0] for t in TABLE])
def test_the_kernel_verifier_accepts_every_program(name, spec, defaults, cases):
    bpf = _bpf_or_skip()
    prog = E.build(policy_of(spec, defaults))
    fd = bpf.prog_load(bpf.BPF_PROG_TYPE_CGROUP_DEVICE, prog, E.LICENSE, E.NAME)
    try:
        prog_type, prog_id, prog_name = bpf.prog_info(fd)
        assert (prog_type, prog_name) == (bpf.BPF_PROG_TYPE_CGROUP_DEVICE, "pyrunc_devices") and prog_id
    finally:
        os.close(fd)


def test_a_refused_program_says_why():
    bpf = _bpf_or_skip()
    bad = E.insn(E.MOV32_X, 0, 7) + E.insn(E.EXIT)  # r7 was never written
    with pytest.raises(OSError) as err:
        bpf.prog_load(bpf.BPF_PROG_TYPE_CGROUP_DEVICE, bad, E.LICENSE, E.NAME)
    assert "BPF_PROG_LOAD" in str(err.value) and "verifier: " in str(err.value)
    assert "R7 !read_ok" in str(err.value)


V1_DEVICES = "/sys/fs/cgroup/devices"


@pytest.mark.skipif(not os.path.exists(V1_DEVICES + "/devices.list"), reason="no v1 devices hierarchy")
@pytest.mark.parametrize("name,spec,defaults,cases",
                         [t for t in TABLE if not t[2] or t[1][:1] == [DENY_ALL]], ids=lambda v: v if
                         isinstance(v, str) else None)
def test_v1_kernel_keeps_the_exceptions_the_program_is_built_from(name, spec, defaults, cases):
    """Same rule list, same meaning: write v1_writes to a real v1 devices cgroup and read back
    devices.list (allow-lists only: a v1 deny-list cannot be read back)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    rules = devrules.all_rules(spec) if defaults else devrules.spec_rules(spec)
    policy = devrules.emulate(rules)
    d = f"{V1_DEVICES}/pyrunc-test-{uuid.uuid4().hex[:8]}"
    os.mkdir(d)
    try:
        for name_, line, _field in devrules.v1_writes(rules):
            with open(f"{d}/{name_}", "w") as f:
                f.write(line)
        with open(f"{d}/devices.list") as f:
            listed = set(f.read().split("\n")) - {""}
    finally:
        os.rmdir(d)
    if policy.default_allow:
        assert listed == {"a *:* rwm"}
    else:
        assert listed == {devrules.Rule(True, t, ma, mi, acc, "").cgroup_string()
                          for t, ma, mi, acc in policy.entries()}


def test_install_errors_name_the_field_unless_nothing_is_restricted(tmp_path, monkeypatch):
    from pyrunc.cgroups import ebpf_attach
    from pyrunc.linux import bpf

    def refuse(*_a, **_k):
        raise OSError(1, "bpf(BPF_PROG_LOAD): Operation not permitted")

    monkeypatch.setattr(bpf, "prog_query", lambda fd, kind: [])
    monkeypatch.setattr(bpf, "prog_load", refuse)
    prog = E.build(policy_of([DENY_ALL], True))
    with pytest.raises(CgroupError, match=r"^linux.resources.devices: installing the eBPF device filter on "
                                          r".*: bpf\(BPF_PROG_LOAD\): Operation not permitted$"):
        ebpf_attach.install(str(tmp_path), prog)
    # privileged (allow all): a context without bpf(2) loses nothing (runc skips it too)
    ebpf_attach.install(str(tmp_path), E.build(policy_of([ALLOW_ALL], True)), allow_all=True)
    with pytest.raises(CgroupError, match=r"linux.resources.devices: opening .*/nope: no such file"):
        ebpf_attach.install(str(tmp_path / "nope"), prog)


def test_bpf_errors_name_the_command():
    bpf = _bpf_or_skip()
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError, match=r"^\[Errno \d+\] bpf\(BPF_PROG_QUERY\): "):
            bpf.prog_query(fd, bpf.BPF_CGROUP_DEVICE)  # not a cgroup
    finally:
        os.close(fd)
    with pytest.raises(OSError, match=r"bpf\(BPF_PROG_GET_FD_BY_ID\): No such file"):
        bpf.prog_get_fd_by_id(0xFFFFFFF0)


@pytest.mark.parametrize("access, kept", [("rx", "r"), ("rwa", "rw"), ("mwr", "rwm"), ("x", None)])
def test_access_letters_other_than_rwm_are_ignored(access, kept):
    """runc's devices.Permissions keeps r, w and m ("rwa" is in runc's own tests); a rule
    left with none of them has no effect."""
    rules = devrules.spec_rules([rule(True, "c", 1, 3, access)])
    assert [r.access for r in rules] == ([kept] if kept else [])
