"""Where the process's memory is: every mapped byte of the core in one category, the
categories summing to the total.

The mappings are split first by what the core says of them (a file's, a thread's
stack, pymalloc's arenas, malloc's heaps and mmapped chunks, an mmap an object owns),
then malloc's chunks by who claims them (nativemem.py: Python objects and their tables,
objects' buffers, native blocks of one object, shared or unattributed blocks, free
chunks). What an anonymous mapping holds that none of these explains is shown as
"other anonymous memory", never folded into another figure.

Each row has its mapped (address space) bytes and its resident bytes, the bytes on
pages that were in RAM (resident.py): exact from an arthur capture's record of the
page table, else estimated as the pages the core holds that are not all zero, which
only anonymous memory has whole (files' rows are then "not known"). A malloc chunk is
resident by the bytes of it on resident pages. Beside the rows, the anonymous memory by
kind of mapping, to set against the process's RssAnon.
"""

from __future__ import annotations

from ..errors import NsdebugError
from ..record import record
from .buffers import KINDS, MMAP, NATIVE
from .ranges import intersect, length, merge, subtract, thread_stack_ranges
from .resident import Residency


@record
class MemoryRow:
    category: str
    bytes: int                # mapped bytes
    resident: int | None      # of them, on resident pages; None: not known for this core
    how: str                  # how the figure was measured
    detail: list              # [(name, bytes)] where the category has parts


@record
class ResidentRow:
    region: str
    mapped: int
    resident: int             # bytes of its pages that were resident


@record
class MemoryResult:
    total: int                # bytes of every mapping in the core
    rows: list                # [MemoryRow]: their bytes sum to total, resident to resident
    resident: int             # resident bytes, the rows' sum (the known ones)
    resident_how: str         # how residency was measured
    resident_exact: bool      # from the capture's record of the page table
    rss: int | None           # the process's VmRSS as arthur read it before the capture
    anonymous: list           # [ResidentRow] by kind of mapping (anonymous memory only)
    anonymous_resident: int   # their sum: to set against the process's RssAnon
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
    res = Residency(process, lambda: target.vector_memory)
    anonymous = _anonymous(res, maps, ranges)
    warnings = [] if m else ["no glibc malloc heap was read: malloc's memory is counted "
                             "with the anonymous mappings"]
    if m and (m.get("resident_exact") != res.exact or "resident" not in m):
        warnings.append("the heap index holds no residency measured as this core's is: "
                        "malloc's rows have no resident figure (rebuild it with --no-cache)")
    rows = _rows(g, m, maps, ranges, res)
    arthur = process.arthur or {}
    rss = arthur.get("rss") if isinstance(arthur.get("rss"), int) else None
    return MemoryResult(sum(mp.size for mp in maps), rows,
                        sum(r.resident for r in rows if r.resident is not None), res.how,
                        res.exact, rss, anonymous, sum(r.resident for r in anonymous),
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


def _anonymous(res, maps, ranges):
    """[ResidentRow] of the anonymous memory by kind of mapping, each byte once."""
    anon = [(mp.start, mp.end) for mp in maps if not mp.file]
    rows, taken = [], []
    for name, key in (("pymalloc arenas", "pymalloc"),
                      ("malloc heaps and mmapped chunks", "malloc"),
                      ("thread stacks", "stacks"), ("mmaps owned by objects", "mmaps")):
        mine = subtract(intersect(merge(ranges[key]), anon), taken)
        taken = merge(taken + mine)
        rows.append(ResidentRow(name, length(mine), res.bytes_in(mine)))
    rest = subtract(merge(anon), taken)
    rows.append(ResidentRow("other anonymous memory", length(rest), res.bytes_in(rest)))
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


def _rows(g, m, maps, ranges, res):
    """[MemoryRow] of every mapped byte, by category, with its resident bytes."""
    anon = [(mp.start, mp.end) for mp in maps if not mp.file]
    malloc_ranges = intersect(merge(ranges["malloc"]), anon)
    malloc_mapped = length(malloc_ranges)
    pymalloc_ranges = intersect(merge(ranges["pymalloc"]), anon)
    stack_ranges = intersect(merge(ranges["stacks"]), anon)
    mmap_ranges = ranges["mmaps"]
    mmaps = _covered(maps, mmap_ranges, anonymous=False)
    files, file_ranges = {}, []
    for mp in maps:
        if mp.file and not _inside(mp, mmap_ranges):
            files[mp.file] = files.get(mp.file, 0) + mp.size
            file_ranges.append((mp.start, mp.end))
    anon_bytes = length(merge(anon))
    file_mmaps = sum(mp.size for mp in maps if mp.file and _inside(mp, mmap_ranges))
    other = anon_bytes - malloc_mapped - length(pymalloc_ranges) - length(stack_ranges) - \
        (mmaps - file_mmaps)
    taken = merge(malloc_ranges + pymalloc_ranges + stack_ranges + merge(mmap_ranges))
    b = g.buffers
    buffers = {KINDS[k]: int(b["bytes"][b["kind"] == k].sum()) for k in range(len(KINDS))
               if k not in (NATIVE, MMAP)}
    got = m.get("resident") or {}

    def chunks(name):
        return got.get(name) if got else None
    in_chunks = sum(got.values()) if got else None
    overhead = max(res.bytes_in(malloc_ranges) - in_chunks, 0) if got else None
    return [MemoryRow("Python objects in pymalloc arenas", length(pymalloc_ranges),
                      res.bytes_in(pymalloc_ranges),
                      "the mapped size of pymalloc's arenas (its arena table)", []),
            MemoryRow("Python objects and their tables in malloc", m.get("python", 0),
                      chunks("python"), "malloc chunks holding an object, or a list's, "
                      "dict's or set's table", []),
            MemoryRow("buffers owned by objects (in malloc)", m.get("buffers", 0),
                      chunks("buffers"), "malloc chunks holding a numpy array's data, an "
                      "array.array's or a bytearray's storage",
                      sorted(buffers.items(), key=lambda kv: -kv[1])),
            MemoryRow("mmaps owned by objects", mmaps, res.bytes_in(merge(mmap_ranges)),
                      "the mappings an mmap.mmap object maps", []),
            MemoryRow("native blocks attributed to objects", m.get("attributed", 0),
                      chunks("attributed"), "malloc chunks the objects reach from their "
                      "structs (reached by several: their common dominator's)", []),
            MemoryRow("native blocks shared by objects", m.get("shared", 0),
                      chunks("shared"),
                      "malloc chunks objects reach that only the root holds in common", []),
            MemoryRow("native blocks not attributed", m.get("unattributed", 0),
                      chunks("unattributed"),
                      "malloc chunks in use that no object is found to reach", []),
            MemoryRow("malloc free memory", _free(m), chunks("free"),
                      "free chunks (bins, tcache, fastbins) and each arena's top chunk; "
                      "per heap, the free memory outside the top chunk (fragmentation) "
                      "as a share of the heap",
                      [(_fragmentation(r), r[6]) for r in m.get("regions", ()) if r[6]]),
            MemoryRow("malloc overhead and unwalked", malloc_mapped - _in_chunks(m), overhead,
                      "malloc's mappings less their chunks: arena headers, the part of a "
                      "heap past a damaged chunk, mmapped chunks' page rounding", []),
            MemoryRow("thread stacks", length(stack_ranges), res.bytes_in(stack_ranges),
                      "the mappings that hold a thread's stack pointer", []),
            MemoryRow("libraries and files", sum(files.values()),
                      res.bytes_in(merge(file_ranges)) if res.exact else None,
                      "file-backed mappings, by file (code, data, read-only data)",
                      sorted(files.items(), key=lambda kv: -kv[1])[:20]),
            MemoryRow("other anonymous memory", other,
                      res.bytes_in(subtract(merge(anon), taken)),
                      "anonymous mappings nothing above explains (allocators other than "
                      "malloc and pymalloc, guard pages, the loader's)", [])]


def _fragmentation(region):
    """A heap's name with what of its free memory lies in holes between chunks in use:
    memory malloc keeps that only a request of a fitting size can use again."""
    kind, start, end, _arena, _chunks, _used, free, top = region[:8]
    holes = max(free - top, 0)
    share = 100 * holes / (end - start) if end > start else 0
    return f"{kind} at {start:#x}: {holes:,} bytes in holes ({share:.1f}% of it), " \
        f"{top:,} in the top chunk"


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
