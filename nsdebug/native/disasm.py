"""x86-64 disassembly with symbol names on branch and call targets."""

from __future__ import annotations

from ..errors import FaultError
from ..record import record

MAX_INSN = 15


@record
class Instruction:
    address: int
    size: int
    bytes: str
    mnemonic: str
    operands: str
    target: int | None = None
    target_symbol: str | None = None


@record
class DisasmResult:
    address: int
    instructions: list          # [Instruction]
    error: str | None = None    # why it stopped short, when memory was unreadable


def disassembly(process, addr, count):
    """DisasmResult of `count` instructions from `addr`: the unreadable says so."""
    try:
        return DisasmResult(addr, disassemble(process, addr, count))
    except FaultError as e:
        return DisasmResult(addr, [], str(e))


def _capstone():
    import capstone
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.detail = True
    return md, capstone


def disassemble(process, addr, count):
    """`count` instructions from `addr`; stops early at unreadable memory."""
    md, cs = _capstone()
    groups = {cs.x86.X86_GRP_CALL, cs.x86.X86_GRP_JUMP}
    need = count * MAX_INSN
    data = b""
    while need > 0 and not data:
        try:
            data = process.memory.read(addr, need)
        except FaultError as e:
            if e.address == addr:
                raise
            need = e.address - addr
    out = []
    for insn in md.disasm(data, addr):
        target = None
        if any(g in groups for g in insn.groups) and insn.operands:
            op = insn.operands[0]
            if op.type == cs.x86.X86_OP_IMM:
                target = op.imm & (1 << 64) - 1
        sym = None
        if target is not None:
            desc = process.symbolize(target)
            if desc[1] is not None:
                sym = desc[1] + (f"+{desc[2]:#x}" if desc[2] else "")
        out.append(Instruction(insn.address, insn.size, insn.bytes.hex(), insn.mnemonic,
                               insn.op_str, target, sym))
        if len(out) >= count:
            break
    return out
