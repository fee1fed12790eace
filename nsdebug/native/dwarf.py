"""File, line and inlined calls for code addresses, from DWARF (pyelftools), read
lazily: for an address only its compile unit (found through .debug_aranges), that
unit's line table, and the one subprogram that holds the address are decoded; never
the whole of .debug_info."""

from __future__ import annotations

import os
from bisect import bisect_right

from ..errors import NsdebugError


class SourceInfo:
    def __init__(self):
        self._dwarf = {}            # path -> (DWARFInfo, aranges) or None
        self._lines = {}            # (path, cu offset) -> (addresses, rows)
        self._subprograms = {}      # (path, cu offset) -> sorted [(low, high, die)]
        self._line_bytes = {}       # path -> its .debug_line

    def _open(self, path):
        if path not in self._dwarf:
            self._dwarf[path] = None
            try:
                from elftools.elf.elffile import ELFFile
                f = open(path, "rb")  # noqa: SIM115 - kept open while the DWARF is used
                elf = ELFFile(f)
                if elf.has_dwarf_info() and elf.get_section_by_name(".debug_info"):
                    info = elf.get_dwarf_info(relocate_dwarf_sections=False)
                    self._dwarf[path] = (info, info.get_aranges())
            except Exception:  # noqa: BLE001 - pyelftools raises many kinds on bad DWARF
                self._dwarf[path] = None
        return self._dwarf[path]

    def locate(self, path, vaddr):
        """[(function, file, line, inlined)] innermost first for file address `vaddr` of
        the ELF file at `path` (the binary or its debug file); [] without DWARF."""
        try:
            return self._locate(path, vaddr)
        except NsdebugError:
            raise
        except Exception:  # noqa: BLE001 - damaged DWARF gives no location, not an error
            return []

    def _locate(self, path, vaddr):
        opened = self._open(path)
        if opened is None:
            return []
        info, aranges = opened
        cu_off = aranges.cu_offset_at_addr(vaddr) if aranges is not None else None
        if cu_off is None:
            return []
        cu = info.get_CU_at(cu_off)
        key = (path, cu_off)
        if key not in self._lines:
            if path not in self._line_bytes:
                self._line_bytes[path] = _section_bytes(info)
            self._lines[key] = _line_rows(info, cu, self._line_bytes[path])
        file, line = _lookup(self._lines[key], vaddr)
        names = _file_names(info, cu)
        chain = self._inline_chain(key, info, cu, vaddr)
        if not chain:
            return [(None, file, line, False)] if file else []
        out = []
        # chain: the subprogram, then each inlined call, outermost first.
        for depth in range(len(chain) - 1, -1, -1):
            die = chain[depth]
            name = _die_name(die)
            if depth == len(chain) - 1:
                loc_file, loc_line = file, line
            else:
                child = chain[depth + 1]
                loc_file = names.get(_attr(child, "DW_AT_call_file"), file)
                loc_line = _attr(child, "DW_AT_call_line") or 0
            out.append((name, loc_file, loc_line, depth > 0))
        return out

    def _inline_chain(self, key, info, cu, vaddr):
        if key not in self._subprograms:
            subs = []
            for die in cu.get_top_DIE().iter_children():
                if die.tag == "DW_TAG_subprogram":
                    for lo, hi in _ranges(info, cu, die):
                        subs.append((lo, hi, die))
            subs.sort(key=lambda s: s[0])
            self._subprograms[key] = ([s[0] for s in subs], subs)
        starts, subs = self._subprograms[key]
        i = bisect_right(starts, vaddr) - 1
        top = None
        for j in range(i, max(-1, i - 16), -1):
            lo, hi, die = subs[j]
            if lo <= vaddr < hi:
                top = die
                break
        if top is None:
            return []
        chain = [top]
        node = top
        for _ in range(64):
            nxt = None
            for child in node.iter_children():
                if child.tag in ("DW_TAG_inlined_subroutine", "DW_TAG_lexical_block") and \
                        any(lo <= vaddr < hi for lo, hi in _ranges(info, cu, child)):
                    nxt = child
                    break
            if nxt is None:
                break
            if nxt.tag == "DW_TAG_inlined_subroutine":
                chain.append(nxt)
            node = nxt
        return chain


def _attr(die, name):
    a = die.attributes.get(name)
    return a.value if a is not None else None


def _die_name(die, depth=0):
    name = _attr(die, "DW_AT_name")
    if name is not None:
        return name.decode("utf-8", "surrogateescape") if isinstance(name, bytes) else name
    for ref in ("DW_AT_abstract_origin", "DW_AT_specification"):
        if ref in die.attributes and depth < 4:
            return _die_name(die.get_DIE_from_attribute(ref), depth + 1)
    return None


def _ranges(info, cu, die):
    lo = _attr(die, "DW_AT_low_pc")
    if lo is not None and "DW_AT_high_pc" in die.attributes:
        hi_attr = die.attributes["DW_AT_high_pc"]
        hi = hi_attr.value if hi_attr.form == "DW_FORM_addr" else lo + hi_attr.value
        return [(lo, hi)]
    if "DW_AT_ranges" not in die.attributes:
        return []
    out = []
    base = _attr(cu.get_top_DIE(), "DW_AT_low_pc") or 0
    for e in info.range_lists().get_range_list_at_offset(
            die.attributes["DW_AT_ranges"].value, cu=cu):
        if hasattr(e, "base_address"):
            base = e.base_address
        elif getattr(e, "is_absolute", False):
            out.append((e.begin_offset, e.end_offset))
        else:
            out.append((base + e.begin_offset, base + e.end_offset))
    return out


def _file_names(info, cu):
    lp = info.line_program_for_CU(cu)
    if lp is None:
        return {}
    v5 = lp.header.version >= 5
    dirs = lp["include_directory"]
    out = {}
    for i, fe in enumerate(lp["file_entry"]):
        name = fe.name.decode("utf-8", "surrogateescape")
        d = fe.dir_index
        if (d or v5) and d < len(dirs) and not name.startswith("/"):
            dirname = dirs[d].decode("utf-8", "surrogateescape")
            if not os.path.isabs(dirname) or not v5 or d:
                name = os.path.join(dirname, name) if not os.path.isabs(dirname) else name
        out[i if v5 else i + 1] = name
    return out


def _line_rows(info, cu, data):
    """(sorted addresses, rows) of a compile unit's line table: (file, line) per row,
    None where a sequence ends. The header is pyelftools'; the program is run here, a
    few times faster than pyelftools' decoder, which made a stack of many frames slow."""
    lp = info.line_program_for_CU(cu)
    if lp is None:
        return [], []
    names = _file_names(info, cu)
    h = lp.header
    pos, end = lp.program_start_offset, lp.program_end_offset
    min_len = h["minimum_instruction_length"]
    line_base, line_range, opcode_base = h["line_base"], h["line_range"], h["opcode_base"]
    arg_counts = list(h["standard_opcode_lengths"])
    first_file = 1
    addrs, rows = [], []
    address, file, line = 0, first_file, 1

    def uleb():
        nonlocal pos
        out = shift = 0
        while True:
            b = data[pos]
            pos += 1
            out |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return out

    def sleb():
        nonlocal pos
        out = shift = 0
        while True:
            b = data[pos]
            pos += 1
            out |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return out - (1 << shift) if b & 0x40 else out

    while pos < end:
        op = data[pos]
        pos += 1
        if op >= opcode_base:
            adj = op - opcode_base
            address += (adj // line_range) * min_len
            line += line_base + adj % line_range
            addrs.append(address)
            rows.append((names.get(file, "?"), line))
        elif op == 0:
            n = uleb()
            sub = data[pos]
            if sub == 1:                                   # end_sequence
                addrs.append(address)
                rows.append(None)
                address, file, line = 0, first_file, 1
            elif sub == 2:                                 # set_address
                address = int.from_bytes(data[pos + 1:pos + n], "little")
            pos += n
        elif op == 1:                                      # copy
            addrs.append(address)
            rows.append((names.get(file, "?"), line))
        elif op == 2:
            address += uleb() * min_len
        elif op == 3:
            line += sleb()
        elif op == 4:
            file = uleb()
        elif op == 8:                                      # const_add_pc
            address += ((255 - opcode_base) // line_range) * min_len
        elif op == 9:
            address += int.from_bytes(data[pos:pos + 2], "little")
            pos += 2
        else:                                              # operands we do not need
            for _ in range(arg_counts[op - 1] if op - 1 < len(arg_counts) else 0):
                uleb()
    order = sorted(range(len(addrs)), key=lambda k: (addrs[k], rows[k] is not None))
    return [addrs[k] for k in order], [rows[k] for k in order]


def _section_bytes(info):
    stream = info.debug_line_sec.stream
    stream.seek(0)
    return stream.read()


def _lookup(table, vaddr):
    addrs, rows = table
    i = bisect_right(addrs, vaddr) - 1
    if i < 0 or rows[i] is None:
        return None, 0
    return rows[i]
