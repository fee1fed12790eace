"""Just enough ELF to describe a core arthur wrote: its notes and PT_LOADs."""

from __future__ import annotations

import json
import struct

from .coreformat import (ARTHUR_NOTE_NAME, EHDR, ELF_MAGIC, ET_CORE, NT_ARTHUR,
                         NT_PRSTATUS, PHDR, PN_XNUM, PT_LOAD, PT_NOTE, iter_notes)
from .errors import ArthurError


def describe(read, size):
    """A dict: threads, mappings, bytes kept, and arthur's own note (pause, mode...)."""
    head = read(0, EHDR.size)
    if len(head) < EHDR.size or head[:4] != ELF_MAGIC or head[4] != 2:
        raise ArthurError("not a 64-bit ELF core")
    _id, e_type, _m, _v, _e, phoff, shoff, _f, _eh, _phes, phnum, _shes, _shn, _shs = \
        EHDR.unpack(head)
    if e_type != ET_CORE:
        raise ArthurError("not a core file")
    if phnum == PN_XNUM:
        phnum = struct.unpack_from("<I", read(shoff + 44, 4))[0]
    phdrs = list(PHDR.iter_unpack(read(phoff, phnum * PHDR.size)))
    loads = [p for p in phdrs if p[0] == PT_LOAD]
    out = {"mappings": len(loads), "memory": sum(p[6] for p in loads),
           "kept": sum(p[5] for p in loads), "threads": 0, "arthur": None, "size": size}
    for p in phdrs:
        if p[0] != PT_NOTE:
            continue
        for name, ntype, desc in iter_notes(read(p[2], p[5])):
            if ntype == NT_PRSTATUS and name == b"CORE":
                out["threads"] += 1
            elif ntype == NT_ARTHUR and name == ARTHUR_NOTE_NAME:
                try:
                    out["arthur"] = json.loads(desc)
                except ValueError:
                    pass
    return out
