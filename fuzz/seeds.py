"""The seed corpora of the file harnesses (tools/fuzz.py seed), made from real things:
the note segments and the first blocks of gcore cores and arthur captures of
fixtures/stacks_target.py on every build the suite runs (pyenv's and Debian's), small
debug files of those builds, an index of a real heap cut down to its first nodes, and
cache entries nsdebug writes. Kept small (fuzz/corpus/, a few MiB in all); the
harnesses of C entry points start from the inputs their own runs kept."""

from __future__ import annotations

import glob
import os
import struct
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def _out(name):
    d = os.path.join(CORPUS, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    return d


def _captures(work):
    """[(build id, tool, core path)]: a gcore core and an arthur capture (plain ELF, so
    its notes can be read here) of the stacks target on every build available."""
    import targets
    out = []
    for build in targets.available_builds():
        for tool in ("gcore", "arthur"):
            cap = targets.gcore_capture(build, os.path.join(targets.FIXTURES,
                                                            "stacks_target.py"),
                                        os.path.join(work, f"{build.id}-{tool}"),
                                        tool=tool)
            out.append((build, tool, cap.core))
    return out


def _note_segments(core):
    with open(core, "rb") as f:
        head = f.read(64)
        phoff, = struct.unpack_from("<Q", head, 32)
        phnum, = struct.unpack_from("<H", head, 56)
        f.seek(phoff)
        table = f.read(56 * phnum)
        for k in range(phnum):
            p_type, _fl, off, _va, _pa, filesz, _ms, _al = \
                struct.unpack_from("<IIQQQQQQ", table, 56 * k)
            if p_type == 4:
                f.seek(off)
                yield f.read(filesz)


def _trim_extracts(segment, keep=4096):
    """A note segment with each file extract cut to its first `keep` bytes of data (its
    head rewritten to match): the extracts are megabytes, the parsing is in the head."""
    from arthur import coreformat
    out = []
    for name, ntype, desc in coreformat.iter_notes(segment):
        if ntype == coreformat.NT_ARTHUR_FILE:
            head, at = coreformat.decode_extract_head(desc)
            extents, used = [], 0
            for off, n in head["extents"]:
                n = min(n, keep - used)
                if n <= 0:
                    break
                extents.append([off, n])
                used += n
            head["extents"] = extents
            desc = coreformat.encode_extract_head(head) + bytes(desc[at:at + used])
        out.append(coreformat.note(name, ntype, bytes(desc)))
    return b"".join(out)


def notes_and_lz4(work):
    from arthur.lz4core import ContainerWriter
    notes, lz4 = _out("h_notes"), _out("h_lz4")
    for build, tool, core in _captures(work):
        for i, seg in enumerate(_note_segments(core)):
            with open(os.path.join(notes, f"{build.id}-{tool}-{i}"), "wb") as f:
                f.write(_trim_extracts(seg) if tool == "arthur" else seg)
        with open(core, "rb") as f:
            first = f.read(2 << 16)            # two blocks: headers, notes, memory
        with open(os.path.join(lz4, f"{build.id}-{tool}"), "wb") as f:
            w = ContainerWriter(f, workers=1)
            w.write(first)
            w.close()


def dwarf():
    """The smallest file with DWARF of each build: an extension module of pyenv's
    (built with -g), a detached debug file of Debian's -dbg (compressed sections)."""
    import targets
    out = _out("h_dwarf")
    for build in targets.available_builds():
        if build.source == "debian":
            files = glob.glob(os.path.join(build.debug_dir, ".build-id", "*", "*.debug"))
        else:
            lib = glob.glob(os.path.join(os.path.dirname(os.path.dirname(build.exe)), "lib",
                                         "python*", "lib-dynload", "*.so"))
            files = [f for f in lib if "_test" not in f]
        files = sorted((os.path.getsize(f), f) for f in files if os.path.getsize(f) > 4096)
        for size, path in files[:2]:
            with open(path, "rb") as src, open(os.path.join(
                    out, f"{build.id}-{os.path.basename(path)}"), "wb") as dst:
                dst.write(src.read())


def index(work, keep=400):
    """An index of a real heap (the heap target on the default build), its graph cut to
    the first `keep` nodes (edges to the rest dropped), written by index.py's writer."""
    import numpy as np

    import targets
    from nsdebug.cpython import attach
    from nsdebug.corefile import open_core
    from nsdebug.heap import index as idx
    from nsdebug.heap.walk import HeapWalker
    build = targets.default_build()
    cap = targets.gcore_capture(build, os.path.join(targets.FIXTURES, "heap_target.py"),
                                os.path.join(work, "heap"))
    g = HeapWalker(attach(open_core(cap.core))).run()
    k = min(keep, g.n)
    ends = g.edge_start[1:k + 1]
    starts = g.edge_start[:k]
    pick = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]).astype(np.int64)
    pick = pick[g.e_to[pick] < k]
    counts = np.array([int(((pick >= s) & (pick < e)).sum()) for s, e in zip(starts, ends)])
    g.e_to, g.e_kind, g.e_name = g.e_to[pick], g.e_kind[pick], g.e_name[pick]
    g.edge_start = np.concatenate([[0], np.cumsum(counts)]).astype(g.edge_start.dtype)
    for name in ("addr", "type_ix", "size", "flags"):
        setattr(g, name, getattr(g, name)[:k].copy())
    keepbuf = g.buffers["node"] < k
    g.buffers = {c: v[keepbuf] for c, v in g.buffers.items()}
    g.n = k
    g.n_reachable = min(g.n_reachable, k)
    g._idom = g._retained = g._order = g._addr_order = g._by_addr = None
    g.problems = dict(list(g.problems.items())[:8])
    # Only the names and types the kept nodes use (the header would be most of the file).
    from nsdebug.heap.fields import ELEMENT
    named = (g.e_kind != ELEMENT) & (g.e_name >= 0)
    used = np.unique(g.e_name[named])
    remap = np.full(len(g.names), -1, np.int64)
    remap[used] = np.arange(len(used))
    g.e_name = g.e_name.copy()
    g.e_name[named] = remap[g.e_name[named]].astype(g.e_name.dtype)
    g.names = [g.names[i] for i in used.tolist()]
    lazy = (g.e_kind != ELEMENT) & (g.e_name < 0)
    kused = np.unique(-g.e_name[lazy] - 1)
    kmap = np.zeros(len(g.key_refs), np.int64)
    kmap[kused] = np.arange(len(kused))
    g.e_name[lazy] = (-kmap[-g.e_name[lazy] - 1] - 1).astype(g.e_name.dtype)
    g.key_refs = g.key_refs[kused]
    tused = np.unique(g.type_ix[g.type_ix >= 0])
    tmap = np.full(len(g.types), -1, np.int64)
    tmap[tused] = np.arange(len(tused))
    g.type_ix = np.where(g.type_ix >= 0, tmap[np.maximum(g.type_ix, 0)],
                         g.type_ix).astype(g.type_ix.dtype)
    g.types = [g.types[i] for i in tused.tolist()]
    out = _out("h_index")
    identity = {"fuzz": "seed"}
    path = os.path.join(work, "seed.nsdebug-index")
    idx.IndexWriter(g, path, identity).finish()
    os.replace(path, os.path.join(out, "heap-first-nodes"))


def caches(work):
    """Entries as nsdebug writes them: an inflated section and a place table."""
    from nsdebug.native import dwarfcache, placecache
    out = _out("h_caches")
    dwarfcache._store(out, os.path.join(out, "dwarf-entry"), bytes(range(256)) * 8)
    pc = placecache.PlaceCache(out)
    key = pc.key("0" * 40, "seed", "places")
    pc.put(key, 0x1234, [("PyEval_EvalFrameDefault", "Python/ceval.c", 1000, False),
                         ("inlined", "Include/object.h", 20, True)])
    pc.put(key, 0x2000, [])
    pc.save()
    os.replace(os.path.join(out, key), os.path.join(out, "place-table"))


def make_seeds(names):
    with tempfile.TemporaryDirectory(prefix="nsdebug-seeds-") as work:
        if "h_notes" in names or "h_lz4" in names:
            notes_and_lz4(work)
        if "h_dwarf" in names:
            dwarf()
        if "h_index" in names:
            index(work)
        if "h_caches" in names:
            caches(work)
    for name in names:
        d = os.path.join(CORPUS, name)
        if os.path.isdir(d):
            size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
            print(f"{name}: {len(os.listdir(d))} seeds, {size >> 10} KiB")
    return 0
