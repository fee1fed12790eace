"""Where the process's memory is: every mapped byte of the core in one category, the
categories summing to the total.

The mappings are split first by what the core says of them (a file's, a thread's
stack, pymalloc's arenas, malloc's heaps and mmapped chunks, an mmap an object owns),
then malloc's chunks by who claims them (nativemem.py: Python objects and their tables,
objects' buffers, native blocks of one object, shared or unattributed blocks, free
chunks). What an anonymous mapping holds that none of these explains is shown as
"other anonymous memory", never folded into another figure.

A core holds the mapped bytes, not which pages were resident: the rows are of mapped
(address space) bytes, and say how they were found. Beside them, the anonymous memory
by kind of mapping, resident estimated as the pages the core holds that are not all
zero (a page never touched reads as zeros; a touched page of zeros is missed, so it is
a lower bound), to set against the process's anonymous RSS.
"""

from __future__ import annotations

import numpy as np

from ..errors import NsdebugError
from ..record import record
from .buffers import KINDS, MMAP, NATIVE
from .ranges import intersect, length, merge, subtract, thread_stack_ranges


@record
class MemoryRow:
    category: str
    bytes: int
    how: str                  # how the figure was measured
    detail: list              # [(name, bytes)] where the category has parts


@record
class ResidentRow:
    region: str
    mapped: int
    resident: int             # bytes of its pages the core holds that are not all zero


@record
class MemoryResult:
    total: int                # bytes of every mapping in the core
    rows: list                # [MemoryRow], summing to total
    resident: list            # [ResidentRow] by kind of mapping (anonymous memory only)
    resident_total: int       # their sum: the anonymous memory the process touched
    largest_unattributed: list    # [(address, bytes, what)] of malloc blocks no object
    #                               claims; `what`: the symbol its first words point to
    unattributed_by_size: dict    # size class -> [count, bytes]
    warnings: list


def memory(target):
    """MemoryResult of a Target (its heap walked or indexed)."""
    g = target.heap
    process = target.runtime.process
    maps = process.mappings()
    m = g.malloc or {}
    ranges = _ranges(g, m, process)
    resident = _resident(target.vector_memory, maps, ranges)
    warnings = [] if m else ["no glibc malloc heap was read: malloc's memory is counted "
                             "with the anonymous mappings"]
    return MemoryResult(sum(mp.size for mp in maps), _rows(g, m, maps, ranges), resident,
                        sum(r.resident for r in resident),
                        [(a, n, _what(target.runtime, a))
                         for a, n in m.get("largest_unattributed", ())],
                        m.get("unattributed_by_size", {}), warnings + list(g.warnings))


def _ranges(g, m, process):
    """The address ranges of what the core says the mappings hold: pymalloc's arenas,
    malloc's heaps and mmapped chunks, thread stacks, the mmaps objects own."""
    b = g.buffers
    mm = b["kind"] == MMAP
    return {"pymalloc": [tuple(r) for r in m.get("pymalloc", ())],
            "malloc": [(r[1], r[2]) for r in m.get("regions", ()) if r[0] != "mmapped"] +
                      [(a, a + n) for a, n in m.get("mmapped", ())],
            "stacks": thread_stack_ranges(process),
            "mmaps": [(int(d), int(d) + int(n)) for d, n in zip(b["data"][mm], b["bytes"][mm])]}


def _resident(vm, maps, ranges):
    """[ResidentRow] of the anonymous memory by kind of mapping, each byte once."""
    anon = [(mp.start, mp.end) for mp in maps if not mp.file]
    rows, taken = [], []
    for name, key in (("pymalloc arenas", "pymalloc"),
                      ("malloc heaps and mmapped chunks", "malloc"),
                      ("thread stacks", "stacks"), ("mmaps owned by objects", "mmaps")):
        mine = subtract(intersect(merge(ranges[key]), anon), taken)
        taken = merge(taken + mine)
        rows.append(ResidentRow(name, length(mine), resident_pages(vm, mine)))
    rest = subtract(merge(anon), taken)
    rows.append(ResidentRow("other anonymous memory", length(rest), resident_pages(vm, rest)))
    return rows


def _what(rt, addr):
    """What a block's first words say of it, where the core can tell: a Python object
    the heap walk did not reach (at its start, or after a GC header), a symbol of a
    loaded library they point to (a C++ object's vtable, an allocator's or a parser's
    static table, a callback), else None. A core keeps no allocation stacks."""
    process = rt.process
    for pre in (0, 16):
        try:
            if rt.objects.refcount(addr + pre) > 0:
                info = rt.objects.info(addr + pre)
                return f"holds a {info.qualname} object at {addr + pre:#x} the heap " \
                    "walk did not reach"
        except NsdebugError:
            pass
    try:
        head = process.memory.read(addr, 32)
    except NsdebugError:
        return None
    for k in range(0, 32, 8):
        word = int.from_bytes(head[k:k + 8], "little")
        if word < 4096 or word >= 1 << 47:
            continue
        try:
            module, name, off = process.symbolize(word)
        except NsdebugError:
            continue
        if module is not None and name:
            lib = module.path.rsplit("/", 1)[-1]
            at = f"{name}+{off:#x}" if off else name
            return f"its word at +{k} points to {at} in {lib}"
    return None


def resident_pages(vm, ranges):
    """Bytes of the pages in `ranges` that the core holds and that are not all zero."""
    data, starts, ends, offs = vm.segments()
    buf = np.frombuffer(data, dtype=np.uint8)
    total = 0
    for s, e in ranges:
        k = max(int(np.searchsorted(starts, np.uint64(s), side="right")) - 1, 0)
        while k < len(starts) and int(starts[k]) < e:
            lo, hi = max(s, int(starts[k])), min(e, int(ends[k]))
            lo = (lo + 4095) & ~4095                      # whole pages only
            n = (hi - lo) // 4096
            if n > 0:
                o = int(offs[k]) + lo - int(starts[k])
                if o >= 0 and o + n * 4096 <= len(buf):
                    for c in range(0, n, 1 << 14):        # 64 MiB at a time
                        m = min(n - c, 1 << 14)
                        pages = buf[o + c * 4096:o + (c + m) * 4096]
                        pages = pages.view(np.uint64).reshape(m, 512)
                        total += int(np.count_nonzero(pages.any(axis=1))) * 4096
            k += 1
    return total


def _rows(g, m, maps, ranges):
    """[MemoryRow] of every mapped byte, by category."""
    malloc_mapped = _covered(maps, ranges["malloc"], anonymous=True)
    pymalloc = _covered(maps, ranges["pymalloc"], anonymous=True)
    stacks = _covered(maps, ranges["stacks"], anonymous=True)
    mmap_ranges = ranges["mmaps"]
    mmaps = _covered(maps, mmap_ranges, anonymous=False)
    files = {}
    for mp in maps:
        if mp.file and not _inside(mp, mmap_ranges):
            files[mp.file] = files.get(mp.file, 0) + mp.size
    anon = sum(mp.size for mp in maps if not mp.file)
    file_mmaps = sum(mp.size for mp in maps if mp.file and _inside(mp, mmap_ranges))
    other = anon - malloc_mapped - pymalloc - stacks - (mmaps - file_mmaps)
    b = g.buffers
    buffers = {KINDS[k]: int(b["bytes"][b["kind"] == k].sum()) for k in range(len(KINDS))
               if k not in (NATIVE, MMAP)}
    return [MemoryRow("Python objects in pymalloc arenas", pymalloc,
                      "the mapped size of pymalloc's arenas (its arena table)", []),
            MemoryRow("Python objects and their tables in malloc", m.get("python", 0),
                      "malloc chunks holding an object, or a list's, dict's or set's "
                      "table", []),
            MemoryRow("buffers owned by objects (in malloc)", m.get("buffers", 0),
                      "malloc chunks holding a numpy array's data, an array.array's or a "
                      "bytearray's storage",
                      sorted(buffers.items(), key=lambda kv: -kv[1])),
            MemoryRow("mmaps owned by objects", mmaps,
                      "the mappings an mmap.mmap object maps", []),
            MemoryRow("native blocks attributed to objects", m.get("attributed", 0),
                      "malloc chunks the objects reach from their structs (reached by "
                      "several: their common dominator's)",
                      []),
            MemoryRow("native blocks shared by objects", m.get("shared", 0),
                      "malloc chunks objects reach that only the root holds in common",
                      []),
            MemoryRow("native blocks not attributed", m.get("unattributed", 0),
                      "malloc chunks in use that no object is found to reach", []),
            MemoryRow("malloc free memory", _free(m),
                      "free chunks (bins, tcache, fastbins) and each arena's top chunk",
                      [(f"{r[0]} at {r[1]:#x}", r[6]) for r in m.get("regions", ())
                       if r[6]]),
            MemoryRow("malloc overhead and unwalked", malloc_mapped - _in_chunks(m),
                      "malloc's mappings less their chunks: arena headers, the part of a "
                      "heap past a damaged chunk, mmapped chunks' page rounding", []),
            MemoryRow("thread stacks", stacks, "the mappings that hold a thread's stack "
                      "pointer", []),
            MemoryRow("libraries and files", sum(files.values()),
                      "file-backed mappings, by file (code, data, read-only data)",
                      sorted(files.items(), key=lambda kv: -kv[1])[:20]),
            MemoryRow("other anonymous memory", other,
                      "anonymous mappings nothing above explains (allocators other than "
                      "malloc and pymalloc, guard pages, the loader's)", [])]


def _free(m):
    return sum(r[6] for r in m.get("regions", ()))


def _in_chunks(m):
    """Bytes of malloc's chunks that the core holds (a top chunk may run past it)."""
    return sum(r[5] + r[6] - (r[9] if len(r) > 9 else 0) for r in m.get("regions", ()))


def _inside(mp, ranges):
    return any(s <= mp.start and mp.end <= e for s, e in ranges)


def _covered(maps, ranges, anonymous):
    """Bytes of the mappings (anonymous ones only, or file-backed too) inside the union
    of `ranges`, each byte once."""
    return length(intersect(merge(ranges), [(mp.start, mp.end) for mp in maps
                                             if not (anonymous and mp.file)]))
