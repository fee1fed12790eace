"""The heap index: a walked graph saved as memory-mappable arrays, so the next heap command
on the same core maps it instead of walking (Eclipse MAT's index files are the model).

One file per core: beside it (CORE.nsdebug-index) when that directory is writable, else
under $XDG_CACHE_HOME/nsdebug/ named by the core's identity. The header names what the
index is of: nsdebug's version, the core's size, mtime and a hash of its first and last
bytes (headers, notes), and the layout used. A checksum covers the rest. An index that
does not match in every respect, or fails its checksum or its shape checks, is ignored
(and rebuilt by the caller), never trusted.

Layout: 8-byte magic, u32 header length, the header as JSON (identity, metadata, and
per array its dtype, length, offset and crc32), then the arrays, 64-byte aligned.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
import zlib

import numpy as np

from .. import __version__

MAGIC = b"NSDHIDX2"
ALIGN = 64
SUFFIX = ".nsdebug-index"
# What a walk and the dominator pass make. The reverse edges (refs) and the BFS tree
# (path) are cheap to derive from these in compiled code, so they are not stored.
ARRAYS = ("addr", "type_ix", "size", "flags", "edge_start", "e_to", "e_kind", "e_name",
          "key_refs", "buf_node", "buf_bytes", "buf_kind", "buf_data", "by_addr_order",
          "idom", "retained")
# The element types the writer gives arrays (numpy's dtype.str): the only ones read back.
DTYPES = frozenset(np.dtype(t).str for t in (np.int8, np.uint8, np.int16, np.uint16, np.int32,
                                              np.uint32, np.int64, np.uint64, np.bool_))
TYPE_FIELDS = ("address", "name", "qualname", "flags", "basicsize", "itemsize", "dictoffset",
               "kind", "is_heap")


class IndexProblem(Exception):
    """Why an index file cannot be used (it is then rebuilt)."""


def core_identity(path, layout_source):
    """What an index must match: nsdebug's version, the core's size and mtime, a hash of
    its first MiB and last 64 KiB (ELF and program headers, notes), and the layout."""
    st = os.stat(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if st.st_size > 1 << 20:
            f.seek(max(st.st_size - (64 << 10), 1 << 20))
            h.update(f.read(64 << 10))
    return {"nsdebug": __version__, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "head_sha256": h.hexdigest(), "layout": layout_source}


def candidate_paths(core_path, identity):
    """Where the index of a core lives: beside it, else in the user's cache directory."""
    beside = core_path + SUFFIX
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or
                         os.path.join(os.path.expanduser("~"), ".cache"), "nsdebug")
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode() +
                         os.path.realpath(core_path).encode()).hexdigest()[:32]
    return [beside, os.path.join(cache, f"heap-{key}{SUFFIX}")]


def save(g, core_path, identity):
    """Write the index of graph g, computing its dominators and retained sizes while
    the walk's arrays are written: beside the core, else in the cache directory (also
    when a write fails part way, as on a full disk). Returns the path written, or
    raises OSError."""
    errors = []
    for path in candidate_paths(core_path, identity):
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            writer = IndexWriter(g, path, identity)
        except OSError as e:
            errors.append(f"{path}: {e.strerror or e}")
            continue
        try:
            g.retained()
        except BaseException:
            writer.discard()
            raise
        try:
            return writer.finish()
        except OSError as e:
            errors.append(str(e))
    raise OSError("; ".join(errors))


class IndexWriter:
    """The index written in two steps: the walk's arrays and the address order by a
    thread, which runs while the dominator pass does (both leave the GIL: the file is
    written on the other core), then finish() writes the dominator arrays and, at the
    start of the file, the header. Its space is reserved first, sized for the largest
    CRC-32 of the arrays still to come; JSON allows the spaces that pad it.

    The file is private and complete or absent (it holds names read from the process's
    memory); not synced to disk: an index torn by a crash fails its checks and is
    rebuilt."""

    def __init__(self, g, path, identity):
        import threading
        from arthur.safefile import PrivateOutput
        self.g, self.path = g, path
        n, n_synth = g.n, g.n_synth
        lengths = {name: (len(a), a.dtype) for name, a in self._early().items()}
        lengths.update(by_addr_order=(n - n_synth, np.dtype(np.int32)),
                       idom=(n, np.dtype(np.int32)), retained=(n, np.dtype(np.uint64)))
        self.meta = {"identity": identity, "n": n, "n_synth": n_synth,
                     "n_reachable": g.n_reachable, "dropped_edges": g.dropped_edges,
                     "names": g.names, "synth_names": g.synth_names,
                     "synth_kinds": g.synth_kinds, "group_ix": g.group_ix,
                     "warnings": g.warnings, "malloc": g.malloc,
                     "problems": [[a, why] for a, why in g.problems.items()],
                     "types": [[getattr(t, f) for f in TYPE_FIELDS] for t in g.types],
                     "arrays": {}}
        offset = 0
        for name in ARRAYS:
            count, dtype = lengths[name]
            self.meta["arrays"][name] = {"dtype": dtype.str, "len": int(count),
                                         "offset": offset, "crc32": 0xFFFFFFFF}
            offset += (count * dtype.itemsize + ALIGN - 1) // ALIGN * ALIGN
        self.header_size = self.data_at = None         # sized by the thread
        self.out = PrivateOutput(path, force=True, durable=False)
        self.error = None
        self.thread = threading.Thread(target=self._write_early, daemon=True)
        self.thread.start()

    def _early(self):
        g = self.g
        return {"addr": g.addr, "type_ix": g.type_ix, "size": g.size, "flags": g.flags,
                "edge_start": g.edge_start, "e_to": g.e_to, "e_kind": g.e_kind,
                "e_name": g.e_name, "key_refs": g.key_refs,
                **{f"buf_{k}": v for k, v in g.buffers.items()}}

    def _header(self):
        return json.dumps(self.meta, separators=(",", ":")).encode()

    def _write_arrays(self, arrays):
        for name, a in arrays.items():
            raw = memoryview(np.ascontiguousarray(a)).cast("B")
            self.meta["arrays"][name]["crc32"] = zlib.crc32(raw)
            self.out.write(raw)
            self.out.write(bytes(-len(raw) % ALIGN))

    def _write_early(self):
        try:
            self.header_size = len(self._header())
            self.data_at = (len(MAGIC) + 4 + self.header_size + ALIGN - 1) // ALIGN * ALIGN
            self.out.seek(self.data_at)
            self._write_arrays(self._early())
            # Not the dominators' either: sorted here, off the main thread's path.
            self._write_arrays({"by_addr_order": self.g.addr_order()})
        except BaseException as e:       # reported by finish(), in the caller's thread
            self.error = e

    def finish(self):
        """Write the rest (the dominators computed) and give the file its name; returns
        the path, or raises OSError (nothing is left behind then)."""
        self.thread.join()
        try:
            if self.error is not None:
                raise self.error
            g = self.g
            self._write_arrays({"idom": g.dominators(), "retained": g.retained()})
            header = self._header()
            if len(header) > self.header_size:        # cannot be: CRCs only shrink
                raise OSError(f"index header outgrew its space ({len(header)} bytes)")
            self.out.seek(0)
            self.out.write(MAGIC + struct.pack("<I", self.header_size) +
                           header.ljust(self.header_size) +
                           bytes(self.data_at - len(MAGIC) - 4 - self.header_size))
            self.out.commit()
        except OSError as e:
            self.out.discard()
            raise OSError(f"{self.path}: {e.strerror or e}") from None
        except BaseException:
            self.out.discard()
            raise
        return self.path

    def discard(self):
        """Give up (the caller failed): no file is left."""
        self.thread.join()
        self.out.discard()


def load(core_path, identity):
    """(meta, {name: array}) of the first index that matches the core, else None; and
    the reason each other candidate was not used."""
    reasons = []
    for path in candidate_paths(core_path, identity):
        if not os.path.isfile(path):
            continue
        try:
            return _load(path, identity), reasons
        except IndexProblem as e:
            reasons.append(f"{path}: {e}")
    return None, reasons


def _load(path, identity):
    from ..ownfile import NotOurs, open_own
    try:
        with open_own(path) as f:
            size = os.fstat(f.fileno()).st_size
            if size < len(MAGIC) + 4:
                raise IndexProblem("truncated")
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except NotOurs as e:
        raise IndexProblem(f"not trusted ({e})") from None
    except (OSError, ValueError) as e:
        raise IndexProblem(f"unreadable ({e})") from None
    if mm[:len(MAGIC)] != MAGIC:
        if mm[:len(MAGIC) - 1] == MAGIC[:-1]:
            raise IndexProblem("made by another version of nsdebug")
        raise IndexProblem("not an nsdebug heap index")
    (hlen,) = struct.unpack_from("<I", mm, len(MAGIC))
    if len(MAGIC) + 4 + hlen > size:
        raise IndexProblem("truncated header")
    try:
        meta = json.loads(mm[len(MAGIC) + 4:len(MAGIC) + 4 + hlen])
    except ValueError:
        raise IndexProblem("garbled header") from None
    if not isinstance(meta, dict) or meta.get("identity") != identity:
        raise IndexProblem("made for another core, file version or nsdebug version")
    data_at = (len(MAGIC) + 4 + hlen + ALIGN - 1) // ALIGN * ALIGN
    arrays = {}
    try:
        for name in ARRAYS:
            spec = meta["arrays"][name]
            if spec["dtype"] not in DTYPES:
                # Not handed to np.dtype(): it parses any string (found by
                # fuzz/h_index.py: a SyntaxError out of numpy's own parser).
                raise IndexProblem(f"array {name} has an unknown type")
            dtype = np.dtype(spec["dtype"])
            start = data_at + int(spec["offset"])
            nbytes = int(spec["len"]) * dtype.itemsize
            if start + nbytes > size or start < data_at:
                raise IndexProblem(f"array {name} runs past the end (truncated)")
            a = np.frombuffer(mm, dtype=dtype, count=int(spec["len"]), offset=start)
            if zlib.crc32(memoryview(a).cast("B")) != spec["crc32"]:
                raise IndexProblem(f"array {name} fails its checksum (garbled)")
            arrays[name] = a
    except (KeyError, TypeError, ValueError) as e:
        raise IndexProblem(f"garbled header ({e})") from None
    _check_shapes(meta, arrays)
    _check_meta(meta)
    _check_values(meta, arrays)
    return meta, arrays


def _check_shapes(meta, a):
    n = meta.get("n")
    if not isinstance(n, int) or n <= 0:
        raise IndexProblem("bad node count")
    for name in ("addr", "type_ix", "size", "flags", "idom", "retained"):
        if len(a[name]) != n:
            raise IndexProblem(f"array {name} has {len(a[name])} entries, not {n}")
    m = len(a["e_to"])
    if len(a["edge_start"]) != n + 1 or int(a["edge_start"][-1]) != m or \
            len(a["e_kind"]) != m or len(a["e_name"]) != m or \
            len(a["by_addr_order"]) != n - meta.get("n_synth", 0):
        raise IndexProblem("arrays do not fit together")
    nb = len(a["buf_node"])
    if any(len(a[f"buf_{k}"]) != nb for k in ("bytes", "kind", "data")) or \
            (nb and not (0 <= int(a["buf_node"].min()) and int(a["buf_node"].max()) < n)):
        raise IndexProblem("buffer arrays do not fit together")


def _check_meta(meta):
    """The header's fields have the types the graph takes them as (HeapGraph.from_index)."""
    def ints(v):
        return isinstance(v, list) and all(type(x) is int for x in v)

    def strs(v):
        return isinstance(v, list) and all(isinstance(x, str) for x in v)

    n_synth = meta.get("n_synth")
    ok = type(n_synth) is int and 0 <= n_synth <= meta["n"] and \
        type(meta.get("n_reachable")) is int and type(meta.get("dropped_edges")) is int and \
        strs(meta.get("names")) and strs(meta.get("synth_names")) and \
        len(meta["synth_names"]) == n_synth and strs(meta.get("synth_kinds")) and \
        isinstance(meta.get("group_ix"), (dict, list)) and strs(meta.get("warnings")) and \
        isinstance(meta.get("problems"), list) and isinstance(meta.get("types"), list) and \
        isinstance(meta.get("malloc"), (dict, type(None)))
    if ok:
        try:
            group_ix = dict(meta["group_ix"])
            ok = all(type(v) is int and 0 <= v < n_synth for v in group_ix.values()) and \
                all(isinstance(p, list) and len(p) == 2 and type(p[0]) is int and
                    isinstance(p[1], str) for p in meta["problems"]) and \
                all(isinstance(t, list) and len(t) == len(TYPE_FIELDS) and
                    type(t[0]) is int and isinstance(t[1], str) and isinstance(t[2], str)
                    and all(type(x) is int for x in t[3:7]) and isinstance(t[7], str)
                    and type(t[8]) is bool for t in meta["types"])
        except (TypeError, ValueError):
            ok = False
    if not ok:
        raise IndexProblem("garbled header (fields of the wrong type)")


def _check_values(meta, a):
    """Every index an array holds points inside what it indexes: the file is input, and
    these arrays reach compiled code and the graph's lookups unchecked after this."""
    n, m = meta["n"], len(a["e_to"])
    start = a["edge_start"]

    def within(x, lo, hi):
        return not len(x) or (lo <= int(x.min()) and int(x.max()) < hi)

    from .fields import ELEMENT, KIND_NAMES
    problem = None
    if int(start[0]) != 0 or (n > 0 and bool((np.diff(start) < 0).any())):
        problem = "edge starts out of order"
    elif not within(a["e_to"], 0, n):
        problem = "edge targets out of range"
    elif not within(a["e_kind"], 0, len(KIND_NAMES)):
        problem = "edge kinds out of range"
    elif not within(a["e_name"][a["e_kind"] != ELEMENT], -len(a["key_refs"]),
                    len(meta["names"])):
        problem = "edge names out of range"
    elif not within(a["type_ix"], -1, len(meta["types"])):
        problem = "type indices out of range"
    elif not within(a["idom"], -1, n) or not within(a["by_addr_order"], 0, n):
        problem = "dominators or address order out of range"
    if m and int(start[-1]) != m:
        problem = problem or "edge starts out of range"
    if problem:
        raise IndexProblem(f"garbled arrays ({problem})")
