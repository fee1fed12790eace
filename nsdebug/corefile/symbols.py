"""Mapped ELF modules: load bias, build-id, and their symbols (dynsym + symtab), on first use."""

from __future__ import annotations

import os
import struct
from bisect import bisect_right

from ..bytescan import aligned_finds
from ..errors import CoreFileError, SymbolError
from . import elf
from .source import FileSource

try:
    from . import _symtab      # compiled at install (setup.py); a Python loop otherwise
except ImportError:            # pragma: no cover - only without a C compiler
    _symtab = None

STT_OBJECT, STT_FUNC, STT_TLS = 1, 2, 6
BIND_RANK = (0, 2, 1, 0)          # rank by STB_ value: LOCAL 0, GLOBAL 2, WEAK 1, other 0
SHT_GNU_HASH = 0x6FFFFFF6


class ElfFile:
    """An ELF file (on disk, or as a capture's extract of it): headers at once, sections
    and symbols when asked."""

    def __init__(self, path, source=None):
        self.path = path
        self.source = source or FileSource(path)
        self.header = elf.parse_header(self.source.read(0, 64), path)
        self.phdrs = elf.read_program_headers(self.source.read, self.source.size,
                                              self.header, path)
        self._sections = None
        self._symbols = None
        self._values = None              # symbol arrays (see _load_symbols)
        self._found = {}                 # name -> lookup() answer
        self._gnu_hash = None

    @property
    def sections(self):
        if self._sections is None:
            self._sections = elf.read_sections(self.source.read, self.source.size,
                                               self.header, self.path)
        return self._sections

    def section(self, name):
        for s in self.sections:
            if s.name == name:
                return s
        return None

    @property
    def build_id(self):
        for ph in self.phdrs:
            if ph.p_type == elf.PT_NOTE:
                bid = elf.build_id_from_notes(self.source.read(ph.p_offset, ph.p_filesz))
                if bid:
                    return bid
        return None

    def _load_symbols(self):
        """Every defined function/object symbol, sorted by address, in parallel arrays;
        a name is decoded only when asked for (a debug file's .symtab has tens of
        thousands). Sorted by _symtab.c, else by the loop below (numpy's import would
        cost more than the tables)."""
        tables = []
        self._strtabs = []
        self._names_read = {}
        self._complete = False
        for sec in self.sections:
            if sec.sh_type not in (elf.SHT_SYMTAB, elf.SHT_DYNSYM):
                continue
            self._complete |= sec.sh_type == elf.SHT_SYMTAB
            if sec.sh_link >= len(self.sections):
                continue
            strsec = self.sections[sec.sh_link]
            self._strtabs.append(bytes(self.source.read(strsec.sh_offset, strsec.sh_size)))
            data = self.source.read(sec.sh_offset, sec.sh_size)
            tables.append((data[:len(data) // elf.SYM.size * elf.SYM.size],
                           len(self._strtabs[-1])))
        if _symtab is not None:
            # Views of the bytes, not `array`s: the array module imports collections
            # (1.8 ms, a tenth of a `bt --all`).
            values, sizes, names, tabs = _symtab.sorted_symbols(tables)
            self._values, self._sizes = memoryview(values).cast("Q"), \
                memoryview(sizes).cast("Q")
            self._name_offs, self._name_tabs = memoryview(names).cast("I"), tabs
            return
        rows = []
        for t, (data, limit) in enumerate(tables):
            for st_name, st_info, _other, shndx, value, size in elf.SYM.iter_unpack(data):
                if shndx and value and (st_info & 0xF) <= STT_FUNC and 0 < st_name < limit:
                    # Of the names at one address, the one gdb and elfutils show sorts
                    # last (symbolize() takes the last that covers an address): global
                    # before weak before local, then the first in the tables.
                    rows.append((value, BIND_RANK[min(st_info >> 4, 3)], -len(rows), size,
                                 st_name, t))
        rows.sort()
        self._values = [r[0] for r in rows]
        self._sizes = [r[3] for r in rows]
        self._name_offs = [r[4] for r in rows]
        self._name_tabs = [r[5] for r in rows]

    def _name(self, i):
        name = self._names_read.get(i)
        if name is None:
            tab = self._strtabs[self._name_tabs[i]]
            start = self._name_offs[i]
            end = tab.find(b"\0", start)
            name = tab[start:end if end >= 0 else len(tab)].decode("utf-8", "surrogateescape")
            self._names_read[i] = name       # a heap walk names many words of one global
        return name

    @property
    def symbols(self):
        """(value, size, name) of every symbol, sorted by address (built on first use;
        the first name kept per address and name, as the tables repeat each other)."""
        if self._symbols is None:
            if self._values is None:
                self._load_symbols()
            out = {}
            for i in range(len(self._values)):
                name = self._name(i)
                if name and not name.startswith("$"):
                    key = (self._values[i], name)
                    out.setdefault(key, (key[0], self._sizes[i], name))
            self._symbols = sorted(out.values(), key=lambda r: r[0])
        return self._symbols

    def _gnu_hash_lookup(self, name):
        """(value, size) of an exported symbol through .gnu.hash, as ld.so finds it;
        None when absent. Costs microseconds instead of reading every symbol."""
        if self._gnu_hash is None:
            self._gnu_hash = False
            for sec in self.sections:
                if sec.sh_type == SHT_GNU_HASH and sec.sh_link < len(self.sections):
                    dynsym = self.sections[sec.sh_link]
                    strtab = self.sections[dynsym.sh_link] \
                        if dynsym.sh_link < len(self.sections) else None
                    if strtab is not None:
                        self._gnu_hash = (sec, dynsym, strtab)
                    break
        if not self._gnu_hash:
            return None
        sec, dynsym, strtab = self._gnu_hash
        read = self.source.read
        nbuckets, symoffset, bloom_size, _shift = struct.unpack("<IIII", read(sec.sh_offset, 16))
        if nbuckets == 0:
            return None
        h = 5381
        for c in name.encode():
            h = (h * 33 + c) & 0xFFFFFFFF
        buckets_at = sec.sh_offset + 16 + 8 * bloom_size
        (index,) = struct.unpack("<I", read(buckets_at + 4 * (h % nbuckets), 4))
        if index < symoffset:
            return None
        chain_at = buckets_at + 4 * nbuckets
        want = name.encode()
        for _ in range(1 << 20):
            (chain_hash,) = struct.unpack("<I", read(chain_at + 4 * (index - symoffset), 4))
            if (chain_hash | 1) == (h | 1):
                st_name, _info, _other, shndx, value, size = elf.SYM.unpack(
                    read(dynsym.sh_offset + index * elf.SYM.size, elf.SYM.size))
                got = read(strtab.sh_offset + st_name, len(want) + 1)
                if got == want + b"\0" and shndx != 0:
                    return value, size
            if chain_hash & 1:
                return None
            index += 1
        return None

    def lookup(self, name, exported=False):
        """(value, size) of a symbol by name, or None. With `exported`, look only in the
        dynamic symbol table's hash (fast; enough for CPython's public symbols)."""
        hit = self._gnu_hash_lookup(name)
        if hit is not None or (exported and self._gnu_hash):
            return hit
        if name not in self._found:
            self._found[name] = self._find_in_strtabs(name)
        return self._found[name]

    def _find_in_strtabs(self, name):
        """(value, size) of the lowest-addressed symbol called `name`, by finding the
        name's bytes in the string tables and then the symbols that point there, instead
        of decoding every name (a libpython's .symtab has tens of thousands). A name may
        sit at the tail of a longer one (linkers merge suffixes): every place counts."""
        if self._values is None:
            self._load_symbols()
        if not name or name.startswith("$"):
            return None
        want = name.encode("utf-8", "surrogateescape") + b"\0"
        offs, tabs, best = self._name_offs, self._name_tabs, None
        for t, tab in enumerate(self._strtabs):
            p = tab.find(want)
            while p >= 0:
                for i in _positions(offs, p):
                    if tabs[i] == t and (best is None or self._values[i] < best[0]):
                        best = (self._values[i], self._sizes[i])
                p = tab.find(want, p + 1)
        return best

    def symbolize(self, vaddr):
        """(name, offset, size) of the symbol at or before `vaddr` in file addresses."""
        return self.symbolize_many([vaddr])[0]

    def symbolize_many(self, vaddrs):
        """symbolize() of each address, for many at once (a heap walk names thousands
        of words of data): one loop, no call per address."""
        if not vaddrs:
            return []
        if self._values is None:
            self._load_symbols()
        values, sizes, name_of, out = self._values, self._sizes, self._name, []
        last = len(values) - 1
        for vaddr in vaddrs:
            i = bisect_right(values, vaddr) - 1
            hit = None
            if i >= 0:
                # A symbol names an address only when its extent covers it (a few may
                # share a start). One without a size (assembly, some data) names what
                # lies before the next symbol, but only where the table is complete
                # (.symtab): a .dynsym alone leaves out every static function, so the
                # nearest export below may be far from the code that runs there.
                for j in range(i, max(i - 8, -1), -1):
                    value, size = values[j], sizes[j]
                    if size and value <= vaddr < value + size:
                        name = name_of(j)
                        if name and not name.startswith("$"):
                            hit = (name, vaddr - value, size)
                            break
                else:
                    value, size, name = values[i], sizes[i], name_of(i)
                    if not size and self._complete and i < last and \
                            name and not name.startswith("$"):
                        hit = (name, vaddr - value, size)
            out.append(hit)
        return out


def _positions(offs, value):
    """Every index at which `offs` (a list, or a memoryview of uint32) holds `value`."""
    if not isinstance(offs, memoryview):
        return [i for i, v in enumerate(offs) if v == value]
    return [at // 4 for at in aligned_finds(offs.obj, struct.pack("<I", value), 4)]


class Module:
    """One ELF file mapped in the process: where it was, where it is now, and its symbols."""

    def __init__(self, path, mappings):
        self.path = path                 # as the core recorded it
        self.mappings = sorted(mappings, key=lambda m: m.start)
        self.start = self.mappings[0].start
        self.end = max(m.end for m in self.mappings)
        self._file: ElfFile | None = None  # the file on disk, when found and matching
        self.disk_path: str | None = None
        self._core_build_id: str | None = None
        self._problem: str | None = None  # why the disk file is not used
        self._check = None                # the build-id check still to run (see file)
        self.bias = self.start

    def defer_check(self, check):
        """Run check(module) before the first use of file, problem or core_build_id."""
        self._check = check

    def _checked(self):
        if self._check is not None:
            check, self._check = self._check, None
            check(self)

    @property
    def file(self):
        """The ElfFile of the file on disk (or the capture's extract), None when none
        was found or it is not the file the process mapped."""
        self._checked()
        return self._file

    @property
    def file_unchecked(self):
        return self._file

    @property
    def core_build_id(self):
        self._checked()
        return self._core_build_id

    @core_build_id.setter
    def core_build_id(self, value):
        self._core_build_id = value

    @property
    def problem(self):
        self._checked()
        return self._problem

    @problem.setter
    def problem(self, value):
        self._problem = value

    def detach_file(self, problem):
        self._file, self.disk_path, self._problem = None, None, problem

    @property
    def name(self):
        return os.path.basename(self.path)

    def attach_file(self, elf_file):
        self._file = elf_file
        self.disk_path = elf_file.path
        base = next((m for m in self.mappings if m.offset == 0), self.mappings[0])
        self.bias = base.start - base.offset - elf.link_delta(elf_file.phdrs, base.offset)

    def contains(self, addr):
        return self.start <= addr < self.end

    def address_of(self, name):
        """Runtime address of a symbol, or SymbolError."""
        if self.file is None:
            raise SymbolError(f"no symbols for {self.path}: {self.problem or 'file not loaded'}")
        hit = self.file.lookup(name)
        if hit is None:
            raise SymbolError(f"symbol {name!r} not found in {self.name}")
        return hit[0] + self.bias

    def symbolize(self, addr):
        return self.symbolize_many([addr])[0]

    def symbolize_many(self, addrs):
        """(name, offset, size) or None per address (see ElfFile.symbolize_many)."""
        if self.file is not None:
            try:
                return self.file.symbolize_many([a - self.bias for a in addrs])
            except CoreFileError:
                pass
        return [None] * len(addrs)

    def section_range(self, name):
        """Runtime [start, end) of a section of the file, or None."""
        if self.file is None:
            return None
        try:
            sec = self.file.section(name)
        except CoreFileError:
            return None
        if sec is None or sec.sh_addr == 0:
            return None
        return sec.sh_addr + self.bias, sec.sh_addr + self.bias + sec.sh_size
