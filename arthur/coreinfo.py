"""Just enough ELF to describe a core arthur wrote: its notes and PT_LOADs."""

from __future__ import annotations

import json
import struct

from .corewriter import NT_ARTHUR, NT_PRSTATUS, PT_LOAD, PT_NOTE
from .errors import ArthurError

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")


def describe(read, size):
    """A dict: threads, mappings, bytes kept, and arthur's own note (pause, mode...)."""
    head = read(0, _EHDR.size)
    if len(head) < _EHDR.size or head[:4] != b"\x7fELF" or head[4] != 2:
        raise ArthurError("not a 64-bit ELF core")
    _id, e_type, _m, _v, _e, phoff, shoff, _f, _eh, _phes, phnum, _shes, _shn, _shs = \
        _EHDR.unpack(head)
    if e_type != 4:
        raise ArthurError("not a core file")
    if phnum == 0xFFFF:
        phnum = struct.unpack_from("<I", read(shoff + 44, 4))[0]
    phdrs = list(_PHDR.iter_unpack(read(phoff, phnum * _PHDR.size)))
    loads = [p for p in phdrs if p[0] == PT_LOAD]
    out = {"mappings": len(loads), "memory": sum(p[6] for p in loads),
           "kept": sum(p[5] for p in loads), "threads": 0, "arthur": None, "size": size}
    for p in phdrs:
        if p[0] != PT_NOTE:
            continue
        data = read(p[2], p[5])
        off = 0
        while off + 12 <= len(data):
            namesz, descsz, ntype = struct.unpack_from("<III", data, off)
            name = data[off + 12:off + 12 + namesz].rstrip(b"\0")
            desc_at = off + 12 + ((namesz + 3) & ~3)
            desc = data[desc_at:desc_at + descsz]
            if ntype == NT_PRSTATUS and name == b"CORE":
                out["threads"] += 1
            elif ntype == NT_ARTHUR and name == b"ARTHUR":
                try:
                    out["arthur"] = json.loads(desc)
                except ValueError:
                    pass
            off = desc_at + ((descsz + 3) & ~3)
    return out
