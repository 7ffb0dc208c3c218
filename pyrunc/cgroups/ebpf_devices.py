"""A devices.Policy -> an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE (pure Python).

cgroup v2 has no devices controller: the kernel runs the programs attached to the cgroup
(and its ancestors) on every mknod and every open of a device node, and refuses the access
when one returns 0. The program is runc's (libcontainer/cgroups/devices/devicefilter.go,
after crun's ebpf.c): one block per exception, first match decides, else the default.

    r2 = ctx->access_type & 0xffff      device type: BPF_DEVCG_DEV_BLOCK 1, _CHAR 2
    r3 = ctx->access_type >> 16         access: BPF_DEVCG_ACC_MKNOD 1, _READ 2, _WRITE 4
    r4 = ctx->major; r5 = ctx->minor
    per exception:  if r2 != TYPE goto next
                    [r1 = r3 & ACCESS; allow: if r1 != r3 goto next   (all of it covered)
                                       deny:  if r1 == 0 goto next]   (any of it touched)
                    [if r4 != MAJOR goto next] [if r5 != MINOR goto next]
                    r0 = verdict; exit
    r0 = default; exit

An exception's verdict is always the opposite of the default (devices.emulate), so their
order does not matter. Deny exceptions match on ANY shared access bit, as the v1 kernel's
blacklist does; runc's program asks for the whole access there too, so an allow-all config
denying "w" on a device still lets O_RDWR through runc (r|w is not a subset of w).
"""

import struct

LICENSE = "Apache"        # runc's; the program calls no GPL-only helper
NAME = b"pyrunc_devices"  # shows in bpftool; ours are told apart by the cgroup they sit on

DEV_TYPE = {"b": 1, "c": 2}
ACCESS_BIT = {"m": 1, "r": 2, "w": 4}
ALL_ACCESS = 7

# opcodes (include/uapi/linux/bpf.h, bpf_common.h)
LDX_W = 0x61      # BPF_LDX | BPF_MEM | BPF_W       dst = *(u32 *)(src + off)
AND32_K = 0x54    # BPF_ALU | BPF_AND | BPF_K        dst32 &= imm
RSH32_K = 0x74    # BPF_ALU | BPF_RSH | BPF_K        dst32 >>= imm
MOV32_K = 0xB4    # BPF_ALU | BPF_MOV | BPF_K        dst32 = imm
MOV32_X = 0xBC    # BPF_ALU | BPF_MOV | BPF_X        dst32 = src32
JEQ_K = 0x15      # BPF_JMP | BPF_JEQ | BPF_K        if dst == imm: pc += off
JNE_K = 0x55      # BPF_JMP | BPF_JNE | BPF_K        if dst != imm: pc += off
JNE_X = 0x5D      # BPF_JMP | BPF_JNE | BPF_X        if dst != src: pc += off
EXIT = 0x95


def insn(code, dst=0, src=0, off=0, imm=0):
    """One struct bpf_insn: u8 code, u8 dst:4 src:4, s16 off, s32 imm (little endian)."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _imm32(value):
    # the kernel sign-extends imm to 64 bits before comparing with the zero-extended u32 it
    # loaded, so numbers >= 2**31 would never be equal; real ones never are that big
    # (major: 12 bits, minor: 20 bits), so such a rule matches nothing either way
    return value - (1 << 32) if value >= 1 << 31 else value


def _prologue():
    return [insn(LDX_W, 2, 1, 0), insn(AND32_K, 2, imm=0xFFFF),
            insn(LDX_W, 3, 1, 0), insn(RSH32_K, 3, imm=16),
            insn(LDX_W, 4, 1, 4), insn(LDX_W, 5, 1, 8)]


def _block(type_, major, minor, access, allow):
    """(code, dst, src, imm, jumps_to_next) tuples of one exception; offsets filled later."""
    out = [(JNE_K, 2, 0, DEV_TYPE[type_], True)]
    bits = 0
    for c in access:
        bits |= ACCESS_BIT[c]
    if bits != ALL_ACCESS:  # rwm matches every access
        out.append((MOV32_X, 1, 3, 0, False))
        out.append((AND32_K, 1, 0, bits, False))
        out.append((JNE_X, 1, 3, 0, True) if allow else (JEQ_K, 1, 0, 0, True))
    if major != -1:
        out.append((JNE_K, 4, 0, _imm32(major), True))
    if minor != -1:
        out.append((JNE_K, 5, 0, _imm32(minor), True))
    out.append((MOV32_K, 0, 0, 1 if allow else 0, False))
    out.append((EXIT, 0, 0, 0, False))
    return [insn(code, dst, src, len(out) - i - 1 if jump else 0, imm)
            for i, (code, dst, src, imm, jump) in enumerate(out)]


def build(policy):
    """The program (bytes of struct bpf_insn) enforcing a devices.Policy."""
    verdict = not policy.default_allow
    code = _prologue()
    for type_, major, minor, access in policy.entries():
        code += _block(type_, major, minor, access, verdict)
    code += [insn(MOV32_K, 0, imm=1 if policy.default_allow else 0), insn(EXIT)]
    return b"".join(code)
