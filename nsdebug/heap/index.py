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

MAGIC = b"NSDHIDX1"
ALIGN = 64
SUFFIX = ".nsdebug-index"
# What a walk and the dominator pass make. The reverse edges (refs) and the BFS tree
# (path) are cheap to derive from these in compiled code, so they are not stored.
ARRAYS = ("addr", "type_ix", "size", "flags", "edge_start", "e_to", "e_kind", "e_name",
          "key_refs", "by_addr_order", "idom", "retained")
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
    """Write the index of graph g (its dominators and retained sizes computed first).
    Returns the path written, or raises OSError."""
    g.retained()
    arrays = {
        "addr": g.addr, "type_ix": g.type_ix, "size": g.size, "flags": g.flags,
        "edge_start": g.edge_start, "e_to": g.e_to, "e_kind": g.e_kind, "e_name": g.e_name,
        "key_refs": g.key_refs, "by_addr_order": g.addr_order(), "idom": g._idom,
        "retained": g._retained}
    meta = {"identity": identity, "n": g.n, "n_synth": g.n_synth,
            "n_reachable": g.n_reachable, "dropped_edges": g.dropped_edges,
            "names": g.names, "synth_names": g.synth_names, "synth_kinds": g.synth_kinds,
            "group_ix": g.group_ix,
            "warnings": g.warnings,
            "problems": [[a, why] for a, why in g.problems.items()],
            "types": [[getattr(t, f) for f in TYPE_FIELDS] for t in g.types],
            "arrays": {}}
    blobs = []
    offset = 0
    for name in ARRAYS:
        a = np.ascontiguousarray(arrays[name])
        raw = memoryview(a).cast("B")
        meta["arrays"][name] = {"dtype": a.dtype.str, "len": int(len(a)), "offset": offset,
                                "crc32": zlib.crc32(raw)}
        blobs.append(raw)
        offset += (len(raw) + ALIGN - 1) // ALIGN * ALIGN
    header = json.dumps(meta, separators=(",", ":")).encode()
    data_at = (len(MAGIC) + 4 + len(header) + ALIGN - 1) // ALIGN * ALIGN
    errors = []
    for path in candidate_paths(core_path, identity):
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            _write(path, header, data_at, blobs)
            return path
        except OSError as e:
            errors.append(f"{path}: {e.strerror or e}")
    raise OSError("; ".join(errors))


def _write(path, header, data_at, blobs):
    # Private, complete or absent (it holds names read from the process's memory). Not
    # synced to disk: an index torn by a crash fails its checks and is rebuilt.
    from arthur.safefile import PrivateOutput
    with PrivateOutput(path, force=True, durable=False) as f:
        f.write(MAGIC + struct.pack("<I", len(header)) + header)
        f.write(bytes(data_at - len(MAGIC) - 4 - len(header)))
        for raw in blobs:
            f.write(raw)
            f.write(bytes(-len(raw) % ALIGN))


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
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < len(MAGIC) + 4:
                raise IndexProblem("truncated")
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as e:
        raise IndexProblem(f"unreadable ({e})") from None
    if mm[:len(MAGIC)] != MAGIC:
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
