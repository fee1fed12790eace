"""The heap index: a walked graph saved as memory-mappable arrays, so the next heap command
on the same core maps it instead of walking (Eclipse MAT's index files are the model).

One file per core: beside it (CORE.nsdebug-index) when that directory is writable, else
under $XDG_CACHE_HOME/nsdebug/ named by the core's identity. The header names what the
index is of: nsdebug's version, the core's size, mtime and a hash of its first and last
bytes (headers, notes), and the layout used. A checksum covers the rest. An index that
does not match in every respect, or fails its checksum or its shape checks, is ignored
(and rebuilt by the caller), never trusted.

Layout: 8-byte magic, u64 offset and u32 length of the header, the arrays from byte 64,
each 64-byte aligned, then the header as JSON (identity, metadata, and per array its
dtype, length, offset and crc32): written last, so that the arrays final after the
graph's assembly go to the file while the rest is computed. A walk that spilled names
its scratch file the index (IndexWriter): its arrays lie where the walk put them, page
aligned, with holes between them.
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
from ..errors import NsdebugError
from ..parallel import start_thread

MAGIC = b"NSDHIDX4"
ALIGN = 64
SUFFIX = ".nsdebug-index"
# What a walk and the dominator pass make. The reverse edges (refs) and the BFS tree
# (path) are cheap to derive from these in compiled code, so they are not stored.
ARRAYS = ("addr", "type_ix", "size", "flags", "edge_start", "e_to", "e_kind", "e_name",
          "key_refs", "buf_node", "buf_bytes", "buf_kind", "buf_data", "by_addr_order",
          "idom", "retained", "hist_count", "hist_size", "hist_retained", "hist_tracked",
          "hist_unreachable", "hist_reachable_size")
# The per-type columns (stats.HISTOGRAM): the next `objects` reads these, not every object.
HIST_ARRAYS = tuple(name for name in ARRAYS if name.startswith("hist_"))
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


def scratch_dir(core_path):
    """Where a walk spills its arrays (spill.py): where the index goes, beside the core
    when that directory is writable, else the user's cache directory."""
    beside = os.path.dirname(os.path.abspath(core_path))
    if os.access(beside, os.W_OK | os.X_OK):
        return beside
    return os.path.dirname(candidate_paths(core_path, {})[1])


def start(g, core_path, identity, spill=None):
    """An IndexWriter already writing the arrays of g that are final once the graph is
    assembled (while the native attribution and the dominators run), at the first
    candidate path that can be created; None when none can. `spill`: the walk's
    spill.Spill, whose scratch file becomes the index where it can."""
    for path in candidate_paths(core_path, identity):
        try:
            return _new_writer(g, path, identity, spill)
        except OSError:
            continue
    return None


def _new_writer(g, path, identity, spill=None):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return IndexWriter(g, path, identity, spill)


def save(g, core_path, identity, writer=None):
    """Write the index of graph g (finishing `writer`, from start(), when given), its
    dominators and retained sizes computed: beside the core, else in the cache
    directory (also when a write fails part way, as on a full disk). Returns the path
    written, or raises OSError."""
    errors = []
    paths = candidate_paths(core_path, identity)
    if writer is not None:
        paths = paths[paths.index(writer.path):]    # where start() could create it
    for path in paths:
        if writer is None:
            try:
                writer = _new_writer(g, path, identity)
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
        writer = None
    raise OSError("; ".join(errors))


# Final once the graph is assembled: written while the native attribution (which adds
# to `size` and the buffer rows) and the dominator pass run.
EARLY = ("addr", "type_ix", "flags", "edge_start", "e_to", "e_kind", "e_name", "key_refs")
# The element type each array is written as, where the graph's own may differ.
WRITE_AS = {"by_addr_order": np.int32, "idom": np.int32, "retained": np.uint64,
            **{name: np.uint64 for name in HIST_ARRAYS}}
PREFIX = struct.Struct("<8sQI")     # magic, header offset, header length
DATA_AT = ALIGN                     # the arrays start here, after the prefix


def layout(buf):
    """(meta, data offset, header offset, header length) of an index's bytes; raises
    IndexProblem when they are not an index's."""
    if len(buf) < DATA_AT:
        raise IndexProblem("truncated")
    magic, hat, hlen = PREFIX.unpack_from(buf, 0)
    if magic != MAGIC:
        if magic[:len(MAGIC) - 1] == MAGIC[:-1]:
            raise IndexProblem("made by another version of nsdebug")
        raise IndexProblem("not an nsdebug heap index")
    if hat < DATA_AT or hat + hlen > len(buf):
        raise IndexProblem("truncated header")
    try:
        meta = json.loads(buf[hat:hat + hlen])
    except ValueError:
        raise IndexProblem("garbled header") from None
    if not isinstance(meta, dict):
        raise IndexProblem("garbled header")
    return meta, DATA_AT, hat, hlen


def with_header(buf, meta):
    """An index's bytes with its header replaced by `meta` (tests and fuzzing craft
    indexes that pass every checksum)."""
    _, _, hat, _ = layout(buf)
    header = json.dumps(meta, separators=(",", ":")).encode()
    return PREFIX.pack(MAGIC, hat, len(header)) + bytes(buf[PREFIX.size:hat]) + header


class IndexWriter:
    """The index written in two steps: the arrays final once the graph is assembled
    (EARLY) and the address order, by a thread that starts then and runs while the
    native attribution and the dominator pass do (both leave the GIL: the file is
    written on the other core); then finish() writes the rest (sizes, buffer rows,
    dominators, the per-type columns) and the header, after the arrays, which the
    prefix points to.

    Where the walk spilled into a scratch file that can be named in the index's
    directory, that file becomes the index: the arrays already in it stay where they
    are, the others and the header are added at its end, the prefix goes in its first
    page (left for it), and it is named at the end. Its other pieces are the walk's
    dropped arrays, punched out (holes).

    The file is private and complete or absent (it holds names read from the process's
    memory); not synced to disk: an index torn by a crash fails its checks and is
    rebuilt."""

    def __init__(self, g, path, identity, spill=None):
        import threading
        from arthur.safefile import PrivateOutput
        self.g, self.path, self.identity = g, path, identity
        self.arrays = {}                # name: dtype, length, offset, crc32, as written
        self.at = 0                     # the next array's offset from DATA_AT
        self.scratch = spill if spill is not None and spill.active and \
            spill.can_become(os.path.dirname(os.path.abspath(path))) else None
        self.out = None if self.scratch else PrivateOutput(path, force=True, durable=False)
        self.error = None
        # The address order's sort (12 bytes an object at its peak) waits for finish():
        # not on top of the native attribution's peak.
        self.sort = threading.Event()
        self.thread = start_thread(self._write_early, "nsdebug-index")

    def _write_arrays(self, arrays):
        for name, a in arrays.items():
            a = np.ascontiguousarray(a, dtype=WRITE_AS.get(name))
            raw = memoryview(a).cast("B")
            if self.scratch is not None:
                offset = self._in_scratch(a, raw) - DATA_AT
            else:
                offset = self.at
                pad = -len(raw) % ALIGN
                self.out.write(raw)
                self.out.write(bytes(pad))
                self.at += len(raw) + pad
            self.arrays[name] = {"dtype": a.dtype.str, "len": len(a), "offset": offset,
                                 "crc32": zlib.crc32(raw)}

    def _in_scratch(self, a, raw):
        """The offset in the scratch file of array `a` (bytes `raw`): where it lies
        already (kept there), else where it is added."""
        at = self.scratch.offset_of(a)
        if at is not None and at >= DATA_AT and (at - DATA_AT) % ALIGN == 0:
            self.scratch.keep(a)
            return at
        return self.scratch.append(raw)

    def _write_early(self):
        try:
            g = self.g
            if self.scratch is None:
                self.out.write(bytes(DATA_AT))          # the prefix, written last
            self._write_arrays({name: getattr(g, name) for name in EARLY})
            self.sort.wait()
            # Sorted here, while the main thread sums the per-type columns.
            self._write_arrays({"by_addr_order": g.addr_order()})
        except BaseException as e:       # reported by finish(), in the caller's thread
            self.error = e

    def _meta(self):
        g = self.g
        return {"identity": self.identity, "n": g.n, "n_synth": g.n_synth,
                "n_reachable": g.n_reachable, "dropped_edges": g.dropped_edges,
                "names": g.names, "synth_names": g.synth_names,
                "synth_kinds": g.synth_kinds, "group_ix": g.group_ix,
                "warnings": g.warnings, "malloc": g.malloc,
                "problems": [[a, why] for a, why in g.problems.items()],
                "types": [[getattr(t, f) for f in TYPE_FIELDS] for t in g.types],
                "arrays": self.arrays}

    def finish(self):
        """Write the rest (the dominators computed) and give the file its name; returns
        the path, or raises OSError (nothing is left behind then)."""
        self.sort.set()
        try:
            from .stats import histogram_columns
            g = self.g
            try:
                h = histogram_columns(g)
            finally:
                self.thread.join()
            if self.error is not None:
                raise self.error
            self._write_arrays({"size": g.size,
                                **{f"buf_{k}": v for k, v in g.buffers.items()},
                                "idom": g.dominators(), "retained": g.retained()})
            self._write_arrays({name: h[name[len("hist_"):]] for name in HIST_ARRAYS})
            header = json.dumps(self._meta(), separators=(",", ":")).encode()
            if self.scratch is not None:
                from arthur.safefile import PrivateOutput
                hat = self.scratch.append(header)
                self.scratch.write_at(0, PREFIX.pack(MAGIC, hat, len(header)))
                self.out = PrivateOutput.adopt(self.path, self.scratch.descriptor(),
                                               force=True, durable=False)
            else:
                self.out.write(header)
                self.out.seek(0)
                self.out.write(PREFIX.pack(MAGIC, DATA_AT + self.at, len(header)))
            self.out.commit()
        except OSError as e:
            self._discard_output()
            raise OSError(f"{self.path}: {e.strerror or e}") from None
        except BaseException:
            self._discard_output()
            raise
        return self.path

    def _discard_output(self):
        # (A scratch file not yet named has no output: it goes with the walk's arrays.)
        if self.out is not None:
            self.out.discard()

    def discard(self):
        """Give up (the caller failed): no file is left."""
        self.sort.set()
        self.thread.join()
        self._discard_output()


def load(core_path, identity):
    """(meta, IndexArrays) of the first index that matches the core, else None; and
    the reason each other candidate was not used. The header is checked here, each
    array when first used (IndexArrays)."""
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
            ino = os.fstat(f.fileno()).st_ino
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except NotOurs as e:
        raise IndexProblem(f"not trusted ({e})") from None
    except (OSError, ValueError) as e:
        raise IndexProblem(f"unreadable ({e})") from None
    meta, data_at, hat, _ = layout(mm)
    if meta.get("identity") != identity:
        raise IndexProblem("made for another core, file version or nsdebug version")
    specs = {}
    try:
        for name in ARRAYS:
            spec = meta["arrays"][name]
            if spec["dtype"] not in DTYPES:
                # Not handed to np.dtype(): it parses any string (found by
                # fuzz/h_index.py: a SyntaxError out of numpy's own parser).
                raise IndexProblem(f"array {name} has an unknown type")
            dtype = np.dtype(spec["dtype"])
            offset, count, crc = (_json_int(spec[k]) for k in ("offset", "len", "crc32"))
            start = data_at + offset
            if count < 0 or start < data_at or start + count * dtype.itemsize > hat:
                raise IndexProblem(f"array {name} runs past the end (truncated)")
            specs[name] = (dtype, start, count, crc)
    except (KeyError, TypeError, ValueError) as e:
        raise IndexProblem(f"garbled header ({e})") from None
    _check_shapes(meta, {name: spec[2] for name, spec in specs.items()})
    _check_meta(meta)
    return meta, IndexArrays(path, mm, meta, specs, ino)


def _json_int(value):
    """A header number, which JSON must give as an integer: not a float, which may be
    Infinity or NaN (found by fuzz/h_index.py: OverflowError out of int())."""
    if type(value) is not int:
        raise TypeError(f"{value!r} is not an integer")
    return value


class IndexDamaged(NsdebugError):
    """An array of a heap index in use failed its checks: the index is removed."""


class IndexArrays:
    """The arrays of a loaded index, each checked on first use: its CRC-32, then every
    index it holds against what it indexes (the file is input: these arrays reach
    compiled code and the graph's lookups unchecked after this). A command maps and
    checks only what it reads: the next `objects` the per-type columns, not the edges.
    An array that fails raises IndexDamaged, after removing the file (the next command
    walks the heap again); nothing of it is used."""

    def __init__(self, path, mm, meta, specs, ino=None):
        self.path, self.meta, self._mm, self._specs = path, meta, mm, specs
        self._ino = ino                 # the file's inode when mapped
        self._ok = {}

    def __getitem__(self, name):
        a = self._ok.get(name)
        if a is None:
            try:
                a = self._ok[name] = self._checked(name)
            except IndexProblem as e:
                self._remove()
                raise IndexDamaged(f"heap index {self.path}: {e}; removed it: run the "
                                   f"command again to walk the heap") from None
        return a

    def _checked(self, name):
        dtype, start, count, crc = self._specs[name]
        a = np.frombuffer(self._mm, dtype=dtype, count=count, offset=start)
        if zlib.crc32(memoryview(a).cast("B")) != crc:
            raise IndexProblem(f"array {name} fails its checksum (garbled)")
        why = _bad_values(self.meta, name, a, self)
        if why:
            raise IndexProblem(f"garbled arrays ({why})")
        return a

    def _remove(self):
        # Only the file this was mapped from (not one another process wrote there since).
        try:
            if self._ino is not None and os.stat(self.path).st_ino == self._ino:
                os.unlink(self.path)
        except OSError:
            pass


def _check_shapes(meta, lengths):
    """The arrays' lengths (from the header) fit together and the node count."""
    n = meta.get("n")
    if not isinstance(n, int) or n <= 0:
        raise IndexProblem("bad node count")
    for name in ("addr", "type_ix", "size", "flags", "idom", "retained"):
        if lengths[name] != n:
            raise IndexProblem(f"array {name} has {lengths[name]} entries, not {n}")
    m = lengths["e_to"]
    if lengths["edge_start"] != n + 1 or lengths["e_kind"] != m or \
            lengths["e_name"] != m or lengths["by_addr_order"] != n - meta.get("n_synth", 0):
        raise IndexProblem("arrays do not fit together")
    types = meta.get("types")
    if not isinstance(types, list) or any(lengths[name] != len(types) + 1
                                          for name in HIST_ARRAYS):
        raise IndexProblem("per-type arrays do not fit the types")
    nb = lengths["buf_node"]
    if any(lengths[f"buf_{k}"] != nb for k in ("bytes", "kind", "data")):
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


CHECK_STEP = 1 << 20        # elements an array's check compares at once


def _bad_values(meta, name, a, arrays):
    """Why array `name` (values `a`) holds an index outside what it indexes, or None.
    `arrays` gives the others it is checked with (e_name needs e_kind)."""
    n = meta["n"]
    length = {k: spec[2] for k, spec in arrays._specs.items()}

    def within(x, lo, hi):
        return not len(x) or (lo <= int(x.min()) and int(x.max()) < hi)

    from .fields import ELEMENT, KIND_NAMES
    if name == "edge_start":
        if int(a[0]) != 0 or int(a[-1]) != length["e_to"]:
            return "edge starts out of range"
        # (Compared a piece at a time: its temporaries are made once and reused.)
        def decreases(piece):
            return bool((piece[1:] < piece[:-1]).any())
        if any(decreases(a[i:i + CHECK_STEP + 1]) for i in range(0, len(a) - 1, CHECK_STEP)):
            return "edge starts out of order"
    elif name == "e_to" and not within(a, 0, n):
        return "edge targets out of range"
    elif name == "e_kind" and not within(a, 0, len(KIND_NAMES)):
        return "edge kinds out of range"
    elif name == "e_name":
        kinds, lo, hi = arrays["e_kind"], -length["key_refs"], len(meta["names"])
        if not all(within(a[i:i + CHECK_STEP][kinds[i:i + CHECK_STEP] != ELEMENT], lo, hi)
                   for i in range(0, len(a), CHECK_STEP)):
            return "edge names out of range"
    elif name == "type_ix" and not within(a, -1, len(meta["types"])):
        return "type indices out of range"
    elif name in ("idom", "by_addr_order") and not within(a, -1 if name == "idom" else 0, n):
        return "dominators or address order out of range"
    elif name == "buf_node" and not within(a, 0, n):
        return "buffer arrays do not fit together"
    return None
