"""The bytes of a core as arthur writes it and nsdebug reads it: one home for both sides.

ELF64 little-endian structures and constants (x86-64 only), the note types of a
Linux core, the register order of struct user_regs_struct, arthur's own notes
(the capture's metadata and its file extracts) and the magic of the LZ4
container. Standard library only: arthur runs on production hosts, and
nsdebug/corefile imports this module rather than restating any of it.
The exact bytes are documented in docs/formats.md.
"""

from __future__ import annotations

import struct

# -- ELF64 (little-endian, x86-64) --------------------------------------------------------
ELF_MAGIC = b"\x7fELF"
ELFCLASS64 = 2
ELFDATA2LSB = 1
ET_EXEC, ET_DYN, ET_CORE = 2, 3, 4
EM_X86_64 = 62
PT_LOAD, PT_DYNAMIC, PT_NOTE, PT_GNU_EH_FRAME = 1, 2, 4, 0x6474E550
PF_X, PF_W, PF_R = 1, 2, 4
PN_XNUM = 0xFFFF                  # e_phnum: the real count is in section 0's sh_info
SHT_SYMTAB, SHT_STRTAB, SHT_NOTE, SHT_NOBITS, SHT_DYNSYM = 2, 3, 7, 8, 11
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR, SHF_COMPRESSED = 1, 2, 4, 0x800

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")    # Elf64_Ehdr
PHDR = struct.Struct("<IIQQQQQQ")             # Elf64_Phdr
SHDR = struct.Struct("<IIQQQQIIQQ")          # Elf64_Shdr
NHDR = struct.Struct("<III")                 # Elf64_Nhdr: namesz, descsz, type
SYM = struct.Struct("<IBBHQQ")               # Elf64_Sym

# -- notes of a Linux core (name "CORE") and of ELF files (name "GNU") --------------------
NT_PRSTATUS, NT_FPREGSET, NT_PRPSINFO, NT_AUXV = 1, 2, 3, 6
NT_X86_XSTATE = 0x202
NT_SIGINFO = 0x53494749
NT_FILE = 0x46494C45
NT_GNU_BUILD_ID = 3

# struct user_regs_struct (x86-64), in the kernel's order: NT_PRSTATUS and ptrace.
REG_NAMES = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
             "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags",
             "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs")

# Linux's signal numbers (x86-64), named as Python's signal.Signals names them: a core's
# signals are the Linux kernel's whatever the machine that reads it.
SIGNALS = {1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
           7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV",
           12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT",
           17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP", 21: "SIGTTIN",
           22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM",
           27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS",
           34: "SIGRTMIN", 64: "SIGRTMAX"}
SIGNO = {name: n for n, name in SIGNALS.items()}

# Linux x86-64 system call numbers (orig_rax) a parked service thread is usually in.
SYSCALLS = {
    0: "read", 1: "write", 7: "poll", 17: "pread64", 18: "pwrite64", 19: "readv",
    20: "writev", 23: "select", 24: "sched_yield", 34: "pause", 35: "nanosleep",
    40: "sendfile", 42: "connect", 43: "accept", 44: "sendto", 45: "recvfrom",
    46: "sendmsg", 47: "recvmsg", 61: "wait4", 72: "fcntl", 73: "flock", 74: "fsync",
    75: "fdatasync", 128: "rt_sigtimedwait", 130: "rt_sigsuspend", 202: "futex",
    230: "clock_nanosleep", 232: "epoll_wait", 247: "waitid", 257: "openat",
    270: "pselect6", 271: "ppoll", 281: "epoll_pwait", 288: "accept4", 299: "recvmmsg",
    307: "sendmmsg", 426: "io_uring_enter", 441: "epoll_pwait2",
}
SYSCALL_NUMBERS = {name: n for n, name in SYSCALLS.items()}

# -- arthur's own notes (name "ARTHUR") ---------------------------------------------------
ARTHUR_NOTE_NAME = b"ARTHUR"
NT_ARTHUR = 0x41525448          # "ARTH": the capture's metadata, a JSON object
NT_ARTHUR_FILE = 0x41525446     # "ARTF": one mapped file's extracts (see below)
NT_ARTHUR_RESIDENT = 0x41525452  # "ARTR": which pages were resident (see below)
# A file extract's description: u32 length of a JSON header, the header, zero padding
# to a multiple of 8, then the bytes of each extent in order. Header: {"path",
# "build_id", "size", "extents": [[file offset, length], ...]}.
EXTRACT_HEAD = struct.Struct("<I")
EXTRACT_ALIGN = 8

# Which pages were resident when the capture was taken: u32 version, u32 page size,
# u64 count of rows; per row u64 start address and u64 page count; then each row's
# pages, one byte each (2 in RAM, 1 swapped out, 0 neither, as /proc/PID/pagemap
# said), zero padding to a multiple of 8. Rows are in address order, not overlapping.
RESIDENT_HEAD = struct.Struct("<IIQ")
RESIDENT_ROW = struct.Struct("<QQ")
RESIDENT_VERSION = 1
PAGE_IN_RAM, PAGE_SWAPPED = 2, 1


def encode_residency(rows, page=4096):
    """The description of an NT_ARTHUR_RESIDENT note for [(start, page states)]."""
    head = RESIDENT_HEAD.pack(RESIDENT_VERSION, page, len(rows)) + b"".join(
        RESIDENT_ROW.pack(start, len(states)) for start, states in rows)
    body = b"".join(states for _start, states in rows)
    return head + body + bytes(-len(body) % 8)


def decode_residency(desc):
    """(page size, [(start, page states as a memoryview)]) of an NT_ARTHUR_RESIDENT
    description; ValueError when it is malformed (rows out of order or overlapping,
    pages past its end, a page size that is not a power of two)."""
    desc = memoryview(desc)
    if len(desc) < RESIDENT_HEAD.size:
        raise ValueError("residency record shorter than its head")
    version, page, count = RESIDENT_HEAD.unpack_from(desc, 0)
    if version != RESIDENT_VERSION:
        raise ValueError(f"residency record of unknown version {version}")
    if page < 4096 or page & (page - 1) or page > 1 << 30:
        raise ValueError(f"residency record with a page size of {page}")
    at = RESIDENT_HEAD.size + count * RESIDENT_ROW.size
    if count > len(desc) // RESIDENT_ROW.size or at > len(desc):
        raise ValueError("residency record with more rows than it holds")
    rows, last_end = [], 0
    for k in range(count):
        start, pages = RESIDENT_ROW.unpack_from(desc, RESIDENT_HEAD.size +
                                                k * RESIDENT_ROW.size)
        end = start + pages * page
        if start % page or start < last_end or end >= 1 << 64 or at + pages > len(desc):
            raise ValueError("residency record with rows out of order or past its end")
        rows.append((start, desc[at:at + pages]))
        at += pages
        last_end = end
    return page, rows


# -- the LZ4 container (arthur/lz4core.py) ---------------------------------------------------
FRAME_MAGIC = b"\x04\x22\x4d\x18"            # an LZ4 frame: what a capture starts with


def note(name, ntype, desc):
    """One ELF note: header, NUL-terminated name and description, each padded to 4."""
    name = name + b"\0"
    return (NHDR.pack(len(name), len(desc), ntype)
            + name + bytes(-len(name) % 4) + desc + bytes(-len(desc) % 4))


def iter_notes(data):
    """(name without its NUL, type, description) of each note in a note segment's bytes,
    up to the first header that does not fit."""
    off = 0
    while off + NHDR.size <= len(data):
        namesz, descsz, ntype = NHDR.unpack_from(data, off)
        name_at = off + NHDR.size
        desc_at = name_at + (namesz + 3) // 4 * 4
        yield (bytes(data[name_at:name_at + namesz]).rstrip(b"\0"), ntype,
               data[desc_at:desc_at + descsz])
        off = desc_at + (descsz + 3) // 4 * 4


def encode_extract_head(header):
    """The head of a file extract's description for a header dict (data follows)."""
    import json
    raw = json.dumps(header).encode()
    head = EXTRACT_HEAD.pack(len(raw)) + raw
    return head + bytes(-len(head) % EXTRACT_ALIGN)


def decode_extract_head(desc):
    """(header dict, offset of the data) of a file extract's description; ValueError
    when the head is malformed."""
    if len(desc) < EXTRACT_HEAD.size:
        raise ValueError("extract shorter than its head")
    (hlen,) = EXTRACT_HEAD.unpack_from(desc, 0)
    end = EXTRACT_HEAD.size + hlen
    if end > len(desc):
        raise ValueError("extract header runs past the note")
    import json
    header = json.loads(bytes(desc[EXTRACT_HEAD.size:end]))
    if not isinstance(header, dict):
        raise ValueError("extract header is not an object")
    return header, end + (-end % EXTRACT_ALIGN)
