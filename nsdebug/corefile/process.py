"""Process: one core file opened as threads, mappings, modules and an address space."""

from __future__ import annotations

import os

from arthur.coreformat import (ARTHUR_NOTE_NAME, FRAME_MAGIC, NT_ARTHUR, NT_ARTHUR_FILE,
                               NT_ARTHUR_RESIDENT, NT_AUXV, SIGNO, decode_residency)

from ..errors import CoreFileError, SymbolError
from ..once import cached_property
from ..record import record
from . import elf
from .extracts import parse_extracts
from .memory import AddressSpace, Segment
from .notes import RegisterView, decode_notes
from .source import FileSource
from .symbols import ElfFile, Module

AT_PHDR, AT_ENTRY, AT_EXECFN = 3, 9, 31
UNKNOWN_PERMS = "r--"     # a file mapping absent from the core, until its file says
# Signals whose default action dumps core: only these mean the process crashed.
CORE_SIGNALS = {SIGNO[name] for name in ("SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS",
                                         "SIGFPE", "SIGSEGV", "SIGXCPU", "SIGXFSZ", "SIGSYS")}


@record
class Mapping:
    """One mapping of the process and where a reader gets its bytes."""
    start: int
    end: int
    perms: str
    size: int
    file: str | None
    offset: int | None
    source: str      # "core", "file", "core+file", "core (partial)", "missing"


@record
class AddressInfo:
    """What is at an address: its module and symbol, and the mapping that holds it."""
    address: int
    module: str | None          # the module's path
    symbol: str | None
    offset: int                 # from the symbol (or the module's start)
    mapping: str | None         # "start-end perms [file]"


@record
class Thread(RegisterView):
    """A thread as the core recorded it."""
    index: int
    tid: int
    regs: dict
    signo: int
    fpregs: bytes


class FileResolver:
    """Where to look on this machine for a file the process had mapped."""

    def __init__(self, sysroot=None, lib_path=(), overrides=None):
        self.sysroot = sysroot
        self.lib_path = list(lib_path or ())
        self.overrides = dict(overrides or {})

    def candidates(self, path):
        if path in self.overrides:
            yield self.overrides[path]
            return
        base = os.path.basename(path)
        for d in self.lib_path:
            yield os.path.join(d, base)
        if self.sysroot:
            yield os.path.join(self.sysroot, path.lstrip("/"))
        else:
            yield path

    def resolve(self, path):
        for cand in self.candidates(path):
            if os.path.isfile(cand):
                return cand
        return None


class PendingSource:
    """A mapped file's bytes for the segments the core left out, served once its
    module's build-id check (Module.defer_check) has passed."""

    def __init__(self, src, module, segments):
        self.src, self.module, self.segments = src, module, segments
        self.partial = getattr(src, "partial", False)

    def covers(self, offset, size):
        return self.src.covers(offset, size)

    def read(self, offset, size):
        if self.module.file is None:           # the check failed: nothing from it
            return b""
        for seg in self.segments:              # checked: read it directly from now on
            if seg.file_source is self:
                seg.file_source = self.src
        return self.src.read(offset, size)


class Process:
    """A core file: everything comes from here, nothing above reads the file itself."""

    def __init__(self, path, executable=None, sysroot=None, lib_path=(), source=None):
        self.path = path
        self.warnings: list[str] = []
        self.source = source if source is not None else open_source(path)
        self.core_size = self.source.size
        head = self.source.read(0, 64)
        self.header = elf.parse_header(head, path)
        if self.header.e_type != elf.ET_CORE:
            kind = {elf.ET_EXEC: "an executable", elf.ET_DYN: "a shared object"}.get(
                self.header.e_type, f"ELF type {self.header.e_type}")
            raise CoreFileError(f"{path} is {kind}, not a core file "
                                f"(give the core first, then the executable)")
        if self.header.e_machine != elf.EM_X86_64:
            raise CoreFileError(f"{path} is a core of machine {self.header.e_machine}; "
                                f"only x86-64 is supported")
        self.phdrs = elf.read_program_headers(self.source.read, self.source.size,
                                              self.header, path)
        self._check_truncation()
        raw_notes = []
        self._extract_segments = []
        for ph in self.phdrs:
            if ph.p_type != elf.PT_NOTE:
                continue
            if self._holds_extracts(ph):
                # Megabytes of file extracts a reader needs only where a file is not at
                # hand: read then (from a capture, every block read is decompressed).
                self._extract_segments.append(ph)
                continue
            raw_notes.extend(elf.iter_notes(self.source.read(ph.p_offset, ph.p_filesz),
                                            f"{path}: notes"))
        if not any(ph.p_type == elf.PT_NOTE for ph in self.phdrs):
            raise CoreFileError(f"{path} has no notes: not a core of a Linux process")
        self.raw_notes = raw_notes
        self.notes = decode_notes(raw_notes)
        if not self.notes.threads:
            raise CoreFileError(f"{path} holds no thread (no NT_PRSTATUS note)")
        self.threads = [Thread(i, t.tid, t.regs, t.cursig, t.fpregs)
                        for i, t in enumerate(self.notes.threads)]
        segments = []
        for ph in self.phdrs:
            if ph.p_type != elf.PT_LOAD or not ph.p_memsz:
                continue
            # No mapping is larger than the 128 TiB user address space.
            if ph.p_vaddr + ph.p_memsz > 1 << 64 or ph.p_memsz > 1 << 47 or \
                    ph.p_filesz > ph.p_memsz:
                self.warnings.append(f"a PT_LOAD at {ph.p_vaddr:#x} of {ph.p_memsz:#x} bytes "
                                     f"({ph.p_filesz:#x} in the file) is impossible; ignored")
                continue
            segments.append(Segment(ph.p_vaddr, ph.p_vaddr + ph.p_memsz, ph.p_offset,
                                    ph.p_filesz, ph.perms))
        self.memory = AddressSpace(self.source, segments)
        self.resolver = FileResolver(sysroot, lib_path, getattr(self.source, "files", None))
        self._executable_override = executable
        self.modules = self._attach_files()

    # -- opening -------------------------------------------------------------
    def _check_truncation(self):
        size = self.source.size
        short = [ph for ph in self.phdrs if ph.p_filesz and ph.p_offset + ph.p_filesz > size]
        if not short:
            return
        # Name the segment the cut falls inside, else the first one wholly missing.
        ph = min(short, key=lambda p: (not p.p_offset <= size, p.p_offset))
        kind = "notes" if ph.p_type == elf.PT_NOTE else \
            f"PT_LOAD at {ph.p_vaddr:#x}" if ph.p_type == elf.PT_LOAD else "a segment"
        where = "inside" if ph.p_offset <= size else "before"
        raise CoreFileError(
            f"{self.path} is truncated {where} its {kind}: the file has {size} bytes, "
            f"the headers promise {max(p.p_offset + p.p_filesz for p in short)}")

    @cached_property
    def arthur(self):
        """An arthur capture's metadata (its JSON note), {} when unreadable, None for a
        core arthur did not write; read when asked (JSON costs a plain `bt` a tenth)."""
        for note in self.raw_notes:
            if note.name == ARTHUR_NOTE_NAME and note.type == NT_ARTHUR:
                import json
                try:
                    return json.loads(note.desc.rstrip(b"\0").decode())
                except ValueError:
                    return {}
        return None

    def _holds_extracts(self, ph):
        """Whether a PT_NOTE is the segment of file extracts arthur writes after the
        memory (its first note is one), told from its first note's header alone."""
        head = self.source.read(ph.p_offset, elf.NHDR.size + 8)
        if len(head) < elf.NHDR.size + 8:
            return False
        namesz, _descsz, ntype = elf.NHDR.unpack_from(head, 0)
        name = bytes(head[elf.NHDR.size:elf.NHDR.size + min(namesz, 8)]).rstrip(b"\0")
        return ntype in TRAILING_NOTES and name == ARTHUR_NOTE_NAME

    @cached_property
    def residency(self):
        """(page size, [(start, page states)]) of an arthur capture's record of which
        pages were resident (arthur.coreformat: 2 in RAM, 1 swapped out, 0 neither), or
        None when the core has none (gcore's, the kernel's, older captures). Found by
        the notes' headers after the memory: no extract is read."""
        desc = self._trailing_note(NT_ARTHUR_RESIDENT)
        if desc is None:
            return None
        try:
            return decode_residency(desc)
        except ValueError as e:
            self.warnings.append(f"the capture's record of resident pages is unusable ({e})")
            return None

    def _trailing_note(self, ntype):
        """The description of the first arthur note of `ntype` in the segments after the
        memory, reading only note headers up to it; None when there is none."""
        for ph in self._extract_segments:
            off, end = ph.p_offset, ph.p_offset + ph.p_filesz
            while off + elf.NHDR.size <= end:
                head = self.source.read(off, elf.NHDR.size + 8)
                if len(head) < elf.NHDR.size:
                    break
                namesz, descsz, kind = elf.NHDR.unpack_from(head, 0)
                desc_at = off + elf.NHDR.size + (namesz + 3) // 4 * 4
                if desc_at + descsz > end:
                    break
                name = bytes(head[elf.NHDR.size:elf.NHDR.size + min(namesz, 8)])
                if kind == ntype and name.rstrip(b"\0") == ARTHUR_NOTE_NAME:
                    desc = self.source.read(desc_at, descsz)
                    return desc if len(desc) == descsz else None
                off = desc_at + (descsz + 3) // 4 * 4
        return None

    @cached_property
    def extracts(self):
        """{mapped path: ExtractSource} of the files a capture carries, parsed when a
        file is not at hand (or `bundle` asks)."""
        notes = list(self.raw_notes)
        for ph in self._extract_segments:
            notes.extend(elf.iter_notes(self.source.read(ph.p_offset, ph.p_filesz),
                                        f"{self.path}: file extracts"))
        return parse_extracts(notes, self.warnings.append)

    def file_bytes(self, offset, size):
        """Bytes of the core file itself (its headers, for a writer that copies it)."""
        data = self.source.read(offset, size)
        if len(data) != size:
            raise CoreFileError(f"{self.path}: cannot read {size} bytes at offset {offset}")
        return data

    def iter_file(self, chunk=1 << 20):
        """The whole core file, uncompressed, in chunks."""
        for pos in range(0, self.core_size, chunk):
            yield self.file_bytes(pos, min(chunk, self.core_size - pos))

    def core_bytes(self, addr, size):
        """Bytes the core itself holds at addr (never from a file on disk), or None."""
        seg = self.memory.find_segment(addr)
        if seg is None or addr - seg.start + size > seg.filesz:
            return None
        return self.source.read(seg.offset + addr - seg.start, size)

    def _core_build_id(self, start):
        """The build-id of the ELF image mapped at `start`, from the core's own bytes."""
        head = self.core_bytes(start, 64)
        if head is None or head[:4] != elf.ELF_MAGIC:
            return None
        try:
            hdr = elf.parse_header(head)
            phdrs = elf.read_program_headers(
                lambda off, n: self.core_bytes(start + off, n) or b"",
                1 << 32, hdr)
        except CoreFileError:
            return None
        bias = start - elf.link_delta(phdrs)
        for ph in phdrs:
            if ph.p_type == elf.PT_NOTE:
                data = self.core_bytes(bias + ph.p_vaddr, ph.p_filesz)
                if data:
                    bid = elf.build_id_from_notes(data)
                    if bid:
                        return bid
        return None

    def _attach_files(self):
        by_path: dict[str, list] = {}
        for fm in self.notes.files:
            by_path.setdefault(fm.path, []).append(fm)
        exe_path = self.executable_path
        if self._executable_override and exe_path:
            self.resolver.overrides[exe_path] = self._executable_override
        modules = []
        for path, maps in by_path.items():
            needed = self._segments_needing(maps)
            disk = None if path.endswith(" (deleted)") else self.resolver.resolve(path)
            src = None
            if disk is not None:
                try:
                    src = FileSource(disk)
                except CoreFileError as e:
                    self.warnings.append(str(e))
                    src = None
            is_elf = src is None or src.read(0, 4) == elf.ELF_MAGIC
            if src is not None and is_elf:
                # The build-ids are compared when the module is first used: reading
                # each file's header from the core would decompress a block of a
                # capture per mapped file.
                module, src = self._check_module(path, maps, disk, None, None, src)
                if src is not None:
                    module.defer_check(lambda m, needed=needed: self._late_check(m, needed))
                    pending = PendingSource(src, module, needed)
                    for seg in needed:
                        seg.file_source = pending
                    modules.append(module)
                    continue
            # No file here (or a data file: locale, fonts): the core says what was mapped.
            core_bid = self._core_build_id(min(m.start for m in maps)) if is_elf else None
            module = None
            if core_bid is not None:
                module = Module(path, maps)
                module.core_build_id = core_bid
            kept = self.extracts.get(path) if src is None else None
            if src is None and kept is not None and (
                    core_bid is None or kept.build_id in (None, core_bid)):
                # The capture carries what a reader needs of this file.
                module, src = self._check_module(path, maps, path, module, core_bid, kept)
            if src is None:
                if disk is None and needed and module is not None:
                    self.warnings.append(f"{path}: not found on this machine; its read-only "
                                         f"bytes are missing (try --sysroot or --lib-path)")
                if disk is None and module is not None and not module.problem:
                    module.problem = "file not found"
            if src is not None:
                for seg in needed:
                    seg.file_source = src
            if module is not None:
                modules.append(module)
        modules.sort(key=lambda m: m.start)
        return modules

    def _late_check(self, module, needed):
        """The build-id the core recorded for a module, against its file's: a file that
        differs is named and not used (nor its bytes for the segments it backed)."""
        core_bid = self._core_build_id(module.start)
        module.core_build_id = core_bid
        ef = module.file_unchecked
        disk_bid = ef.build_id if ef is not None else None
        if core_bid and disk_bid and core_bid != disk_bid:
            module.detach_file(f"build-id differs (core {core_bid[:12]}, disk "
                               f"{disk_bid[:12]})")
            self.warnings.append(f"{ef.path} is not the file the process mapped as "
                                 f"{module.path} (build-id {disk_bid[:12]} on disk, "
                                 f"{core_bid[:12]} in the core); not used")
            for seg in needed:
                seg.file_source = None

    def _check_module(self, path, maps, disk, module, core_bid, src):
        try:
            ef = ElfFile(disk, src)
        except CoreFileError as e:
            self.warnings.append(f"{path}: {e}")
            return module, None
        module = module or Module(path, maps)
        disk_bid = ef.build_id
        if core_bid and disk_bid and core_bid != disk_bid:
            module.problem = f"build-id differs (core {core_bid[:12]}, disk {disk_bid[:12]})"
            self.warnings.append(f"{disk} is not the file the process mapped as {path} "
                                 f"(build-id {disk_bid[:12]} on disk, {core_bid[:12]} in "
                                 f"the core); not used")
            return module, None
        module.problem = None
        module.attach_file(ef)
        self._perms_from_file(maps, ef)
        return module, src

    def _perms_from_file(self, maps, ef):
        """A mapping the core left out entirely (gcore skips read-only file mappings)
        has no recorded permissions: take them from the file's PT_LOAD at its offset."""
        for fm in maps:
            seg = self.memory.find_segment(fm.start)
            if seg is None or seg.start != fm.start or seg.offset or seg.filesz or \
                    seg.perms != UNKNOWN_PERMS:
                continue
            for ph in ef.phdrs:
                if ph.p_type == elf.PT_LOAD and \
                        ph.p_offset & ~0xFFF <= fm.offset < ph.p_offset + ph.p_filesz:
                    seg.perms = ph.perms
                    break

    def _segments_needing(self, maps):
        """Segments of these file mappings whose bytes are not all in the core."""
        out = []
        for fm in maps:
            seg = self.memory.find_segment(fm.start)
            if seg is not None and seg.start == fm.start:
                seg.file = fm
                if seg.filesz < seg.end - seg.start:
                    out.append(seg)
            elif seg is None:
                # Not in the core at all (some writers skip read-only mappings).
                seg = Segment(fm.start, fm.end, 0, 0, UNKNOWN_PERMS, fm)
                self.memory.add_segment(seg)
                out.append(seg)
        return out

    # -- what the process was -------------------------------------------------
    @property
    def pid(self):
        if self.notes.prpsinfo:
            return self.notes.prpsinfo.pid
        return self.threads[0].tid

    @cached_property
    def executable_path(self):
        auxv = self.notes.auxv
        if AT_EXECFN in auxv:
            try:
                name = self.memory.cstring(auxv[AT_EXECFN], 4096).decode("utf-8", "surrogateescape")
            except Exception:  # noqa: BLE001 - a garbage pointer just means "unknown"
                name = ""
            if name:
                for fm in self.notes.files:
                    if os.path.basename(fm.path) == os.path.basename(name):
                        return fm.path
        for key in (AT_PHDR, AT_ENTRY):
            if key in auxv:
                for fm in self.notes.files:
                    if fm.start <= auxv[key] < fm.end:
                        return fm.path
        return self.notes.files[0].path if self.notes.files else None

    @cached_property
    def initial_stack(self):
        """argv and environ as the process started (see initial_stack.py)."""
        from .initial_stack import read_initial_stack
        auxv_note = next((n.desc for n in self.raw_notes
                          if n.type == NT_AUXV and n.name == b"CORE"), b"")
        return read_initial_stack(self.memory, auxv_note, self.notes.auxv)

    @property
    def executable(self):
        return self.module_by_path(self.executable_path)

    @property
    def crashed_thread(self):
        """The thread that took the fatal signal (the kernel writes it first); None for a
        core of a live process (gcore's SIGSTOP is not a crash)."""
        si = self.notes.siginfo
        if si is None or si.signo not in CORE_SIGNALS:
            return None
        for t in self.threads:
            if t.signo == si.signo:
                return t
        return self.threads[0]

    @property
    def made_by(self):
        if self.arthur is not None:
            mode = self.arthur.get("mode")
            return "arthur" + {"stop": " (stopped capture)", "live": " (live, a frozen fork)",
                               "crash": " (crash handler)"}.get(mode, "")
        try:
            names = {s.name for s in elf.read_sections(self.source.read, self.source.size,
                                                       self.header)}
        except CoreFileError:
            names = set()
        if "note0" in names:
            return "gdb (gcore or generate-core-file)"
        if self.notes.siginfo and self.notes.siginfo.signo:
            return "the Linux kernel (fatal signal)"
        return "unknown"

    # -- modules and symbols --------------------------------------------------
    def module_at(self, addr):
        for m in self.modules:
            if m.contains(addr):
                return m
        return None

    def data_regions(self, module):
        """A module's writable segments, each with the anonymous (.bss) tail that follows
        it, as far as the module's own program headers say its data goes (an unrelated
        anonymous mapping can sit right after a module)."""
        segs = self.memory.segments
        bss_end = self._data_end(module)
        out = []
        for i, s in enumerate(segs):
            if "w" not in s.perms or s.file is None or s.file.path != module.path:
                continue
            out.append(s)
            nxt = segs[i + 1] if i + 1 < len(segs) else None
            if nxt is not None and nxt.start == s.end and nxt.file is None and \
                    bss_end is not None and nxt.start < bss_end:
                if nxt.end <= bss_end:
                    out.append(nxt)
                else:
                    out.append(Segment(nxt.start, bss_end, nxt.offset,
                                       min(nxt.filesz, bss_end - nxt.start), nxt.perms))
        return out

    def _data_end(self, module):
        """End in memory of the module's last writable PT_LOAD (its .bss), or None."""
        f = module.file
        if f is None:
            return None
        ends = [p.p_vaddr + p.p_memsz for p in f.phdrs
                if p.p_type == elf.PT_LOAD and p.p_flags & 2]
        return max(ends) + module.bias if ends else None

    def module_by_path(self, path):
        for m in self.modules:
            if m.path == path:
                return m
        return None

    def find_module(self, name_part):
        """The first module whose file name starts with `name_part` (e.g. 'libpython')."""
        for m in self.modules:
            if m.name.startswith(name_part):
                return m
        return None

    def symbol_address(self, name):
        """Address of a symbol in any module, executable first."""
        exe = self.executable
        order = ([exe] if exe else []) + [m for m in self.modules if m is not exe]
        for m in order:
            if m.file is None:
                continue
            hit = m.file.lookup(name)
            if hit is not None:
                return hit[0] + m.bias
        raise SymbolError(f"symbol {name!r} not found in any module")

    def symbolize(self, addr):
        """(module, name, offset) for an address; name None when unknown."""
        m = self.module_at(addr)
        if m is None:
            return None, None, 0
        hit = m.symbolize(addr)
        if hit is None:
            return m, None, addr - m.start
        return m, hit[0], hit[1]

    def mappings(self):
        """[Mapping] of every segment, in address order."""
        files = sorted(self.notes.files, key=lambda f: f.start)
        rows = []
        for seg in self.memory.segments:
            fm = seg.file or next((f for f in files if f.start == seg.start), None)
            size = seg.end - seg.start
            if seg.filesz >= size:
                source = "core"
            elif seg.file_source is not None:
                source = "core+file" if seg.filesz else "file"
            elif seg.filesz:
                source = "core (partial)"
            else:
                source = "missing"
            rows.append(Mapping(seg.start, seg.end, seg.perms, size,
                                fm.path if fm else None, fm.offset if fm else None, source))
        return rows

    def address_info(self, addr):
        """AddressInfo of an address."""
        m, name, off = self.symbolize(addr)
        seg = self.memory.find_segment(addr)
        mapping = None
        if seg is not None:
            fm = seg.file
            mapping = f"{seg.start:#x}-{seg.end:#x} {seg.perms}" + (f" {fm.path}" if fm else "")
        return AddressInfo(addr, m.path if m else None, name, off, mapping)

    def close(self):
        self.source.close()


# arthur's notes in a PT_NOTE after the memory, read when asked for, not at open.
TRAILING_NOTES = (NT_ARTHUR_FILE, NT_ARTHUR_RESIDENT)


def open_source(path):
    """The byte source for a core file: an arthur .lz4 container or a plain file."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise CoreFileError(f"cannot open {path}: {e.strerror}") from None
    if magic == FRAME_MAGIC:
        from .lz4source import LZ4Source
        return LZ4Source(path)
    return FileSource(path)


def open_core(path, executable=None, sysroot=None, lib_path=()):
    """Open a core file (plain ELF or arthur .lz4) as a Process."""
    return Process(path, executable, sysroot, lib_path)


def open_live(pid, log=lambda msg: None):
    """A running process as a Process, read from a frozen fork of it (the target paused
    only for the fork); close() releases the fork."""
    from .livesource import LiveSource
    source = LiveSource(pid, log)
    try:
        return Process(source.path, source=source)
    except BaseException:
        source.close()
        raise
