"""Decoders for the notes of a Linux x86-64 core: what each thread and the process were doing."""

from __future__ import annotations

import struct

from arthur.coreformat import (  # noqa: F401 - the note types, re-exported
    NT_AUXV,
    NT_FILE,
    NT_FPREGSET,
    NT_PRPSINFO,
    NT_PRSTATUS,
    NT_SIGINFO,
    NT_X86_XSTATE,
    REG_NAMES,
    SIGNALS,
    SIGNO,
)

from ..errors import CoreFileError
from ..record import Factory, record

# struct elf_prstatus: siginfo head, cursig, sigpend, sighold, pid..sid, 4 timevals, regs.
_PRSTATUS = struct.Struct("<iiih2xQQiiii64x27Qi4x")
_PRPSINFO = struct.Struct("<cccc4xQIIiiii16s80s")
_SIGINFO_HEAD = struct.Struct("<iii4x")

AUXV_NAMES = {
    3: "AT_PHDR", 4: "AT_PHENT", 5: "AT_PHNUM", 6: "AT_PAGESZ", 7: "AT_BASE",
    9: "AT_ENTRY", 11: "AT_UID", 16: "AT_HWCAP", 25: "AT_RANDOM", 31: "AT_EXECFN",
    33: "AT_SYSINFO_EHDR",
}

# si_code values that say who sent a signal (asm-generic/siginfo.h).
SI_USER, SI_KERNEL, SI_QUEUE, SI_TKILL = 0, 0x80, -1, -6
SEGV_CODES = {1: "SEGV_MAPERR", 2: "SEGV_ACCERR", 3: "SEGV_BNDERR", 4: "SEGV_PKUERR"}
BUS_CODES = {1: "BUS_ADRALN", 2: "BUS_ADRERR", 3: "BUS_OBJERR"}
FPE_CODES = {1: "FPE_INTDIV", 2: "FPE_INTOVF", 3: "FPE_FLTDIV", 4: "FPE_FLTOVF",
             5: "FPE_FLTUND", 6: "FPE_FLTRES", 7: "FPE_FLTINV", 8: "FPE_FLTSUB"}
ILL_CODES = {1: "ILL_ILLOPC", 2: "ILL_ILLOPN", 3: "ILL_ILLADR", 4: "ILL_ILLTRP",
             5: "ILL_PRVOPC", 6: "ILL_PRVREG", 7: "ILL_COPROC", 8: "ILL_BADSTK"}
GENERIC_CODES = {SI_USER: "SI_USER", SI_KERNEL: "SI_KERNEL", SI_QUEUE: "SI_QUEUE",
                 SI_TKILL: "SI_TKILL", -2: "SI_TIMER", -3: "SI_MESGQ", -4: "SI_ASYNCIO"}
FAULT_SIGNALS = {SIGNO["SIGSEGV"]: SEGV_CODES, SIGNO["SIGBUS"]: BUS_CODES,
                 SIGNO["SIGFPE"]: FPE_CODES, SIGNO["SIGILL"]: ILL_CODES}


def signal_name(signo):
    return SIGNALS.get(signo) or f"signal {signo}"


class RegisterView:
    """pc and sp of anything with a `regs` dict (user_regs_struct names)."""

    @property
    def pc(self):
        return self.regs["rip"]

    @property
    def sp(self):
        return self.regs["rsp"]


@record
class PrStatus(RegisterView):
    """One thread: its tid, the signal it holds, its general registers."""
    tid: int
    signo: int
    cursig: int
    sigpend: int
    sighold: int
    ppid: int
    pgrp: int
    sid: int
    regs: dict
    fpregs: bytes = b""
    xstate: bytes = b""


@record
class PrPsInfo:
    state: str
    zombie: bool
    nice: int
    flags: int
    uid: int
    gid: int
    pid: int
    ppid: int
    pgrp: int
    sid: int
    fname: str
    psargs: str


@record
class SigInfo:
    signo: int
    errno: int
    code: int
    addr: int | None = None
    sender_pid: int | None = None
    sender_uid: int | None = None

    @property
    def name(self):
        return signal_name(self.signo)

    @property
    def code_name(self):
        if self.code in GENERIC_CODES and (self.code <= 0 or self.code == SI_KERNEL):
            return GENERIC_CODES[self.code]
        return FAULT_SIGNALS.get(self.signo, {}).get(self.code, str(self.code))


@record
class FileMapping:
    start: int
    end: int
    offset: int
    path: str


@record
class CoreNotes:
    """Every note of a core, decoded; threads in the order the core lists them."""
    threads: list = Factory(list)
    prpsinfo: PrPsInfo | None = None
    siginfo: SigInfo | None = None
    auxv: dict = Factory(dict)
    files: list = Factory(list)
    page_size: int = 4096
    other: list = Factory(list)


def _need(desc, size, what):
    if len(desc) < size:
        raise CoreFileError(f"{what} note is {len(desc)} bytes, expected at least {size}")


def parse_prstatus(desc):
    _need(desc, _PRSTATUS.size, "NT_PRSTATUS")
    v = _PRSTATUS.unpack_from(desc)
    signo, _code, _errno, cursig, sigpend, sighold, pid, ppid, pgrp, sid = v[:10]
    regs = dict(zip(REG_NAMES, v[10:37]))
    return PrStatus(pid, signo, cursig, sigpend, sighold, ppid, pgrp, sid, regs)


def parse_prpsinfo(desc):
    _need(desc, _PRPSINFO.size, "NT_PRPSINFO")
    state, sname, zomb, nice, flag, uid, gid, pid, ppid, pgrp, sid, fname, psargs = \
        _PRPSINFO.unpack_from(desc)
    cstr = lambda b: b.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    return PrPsInfo(sname.decode("latin-1"), zomb != b"\0", struct.unpack("b", nice)[0],
                    flag, uid, gid, pid, ppid, pgrp, sid, cstr(fname), cstr(psargs).strip())


def parse_siginfo(desc):
    _need(desc, 24, "NT_SIGINFO")
    signo, errno, code = _SIGINFO_HEAD.unpack_from(desc)
    info = SigInfo(signo, errno, code)
    if signo in FAULT_SIGNALS and code > 0:
        info.addr = struct.unpack_from("<Q", desc, 16)[0]
    elif code <= 0 or code == SI_KERNEL:
        # kill(), tkill(), sigqueue(): the union holds the sender.
        info.sender_pid, info.sender_uid = struct.unpack_from("<iI", desc, 16)
    return info


def parse_auxv(desc):
    out = {}
    for key, value in struct.iter_unpack("<QQ", desc[:len(desc) // 16 * 16]):
        if key == 0:
            break
        out[key] = value
    return out


def parse_file_note(desc):
    _need(desc, 16, "NT_FILE")
    count, page_size = struct.unpack_from("<QQ", desc)
    table_end = 16 + count * 24
    if count > len(desc) // 24 or table_end > len(desc):
        raise CoreFileError(f"NT_FILE note claims {count} files but holds {len(desc)} bytes")
    names = desc[table_end:].split(b"\0")
    if len(names) < count:
        raise CoreFileError("NT_FILE note has fewer names than entries")
    maps = []
    for i, (start, end, pgoff) in enumerate(struct.iter_unpack("<QQQ", desc[16:table_end])):
        maps.append(FileMapping(start, end, pgoff * page_size,
                                names[i].decode("utf-8", "surrogateescape")))
    return maps, page_size


def decode_notes(notes):
    """Sort raw notes by type into CoreNotes. Per-thread notes follow their NT_PRSTATUS."""
    out = CoreNotes()
    for note in notes:
        t, name = note.type, note.name
        if t == NT_PRSTATUS and name == b"CORE":
            out.threads.append(parse_prstatus(note.desc))
        elif t == NT_FPREGSET and name == b"CORE" and out.threads:
            out.threads[-1].fpregs = note.desc
        elif t == NT_X86_XSTATE and out.threads:
            out.threads[-1].xstate = note.desc
        elif t == NT_PRPSINFO and name == b"CORE":
            out.prpsinfo = parse_prpsinfo(note.desc)
        elif t == NT_SIGINFO and name == b"CORE" and out.siginfo is None:
            out.siginfo = parse_siginfo(note.desc)
        elif t == NT_AUXV and name == b"CORE":
            out.auxv = parse_auxv(note.desc)
        elif t == NT_FILE and name == b"CORE":
            out.files, out.page_size = parse_file_note(note.desc)
        else:
            out.other.append((name.decode("latin-1", "replace"), t, len(note.desc)))
    return out
