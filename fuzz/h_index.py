"""Harness: the heap index read back (heap/index.py), then used as the heap commands use
it (heap/graph.py over _graphc.c): a node's edges and their labels, its referrers, its
path from the root, the dominator tree, retained sizes per group, lookups by address.
An index is a file on disk: whatever it holds must be refused by the loader
(IndexProblem), or by the array's check when first used (IndexDamaged), or be safe for
everything after it.

The mutator knows the file: it changes values inside one array and gives the array its
new CRC-32 (so the loader's value checks, not the checksum, must stop it), or a header
field (a count, an array's length or offset, n, n_synth), or the file's length; else
libFuzzer's own mutations. Seeds: index files of small heaps (tools/fuzz.py seed)."""

from __future__ import annotations

import random
import zlib

try:
    from shape import HOSTILE, fuzz_main, instrumented, put, scratch_path
except ImportError:
    from fuzz.shape import HOSTILE, fuzz_main, instrumented, put, scratch_path
with instrumented():
    import numpy as np

    from nsdebug.heap import index
    from nsdebug.heap.graph import HeapGraph

SCRATCH = scratch_path("index")


def split(data):
    """(meta, data offset) of an index's bytes, or None."""
    try:
        meta, data_at, _, _ = index.layout(data)
    except index.IndexProblem:
        return None
    return meta, data_at


def join(data, meta):
    try:
        return index.with_header(data, meta)
    except index.IndexProblem:
        return data


def mutate(data, max_size, seed):
    rnd = random.Random(seed)
    parts = split(data)
    how = rnd.random()
    if parts is None or how < 0.2:
        import atheris
        return atheris.Mutate(data, max_size)
    meta, data_at = parts
    arrays = meta.get("arrays")
    if not isinstance(arrays, dict) or not arrays:
        return data
    if how < 0.7:                  # values inside one array, its CRC made right
        name = rnd.choice(sorted(arrays))
        spec = arrays[name]
        try:
            dtype = np.dtype(spec["dtype"])
            at = data_at + int(spec["offset"])
            count = int(spec["len"])
        except (KeyError, TypeError, ValueError):
            return data
        if count <= 0 or at + count * dtype.itemsize > len(data):
            return data
        a = np.frombuffer(data, dtype, count, at).copy()
        for _ in range(rnd.randint(1, 3)):
            v = rnd.choice(HOSTILE + [-1, -2, len(a), len(a) + 1])
            a[rnd.randrange(count)] = np.array(v).astype(dtype, casting="unsafe")
        raw = a.tobytes()
        spec["crc32"] = zlib.crc32(raw)
        return join(data[:at] + raw + data[at + len(raw):], meta)
    if how < 0.9:                  # a count, a length or an offset in the header
        key = rnd.choice(["n", "n_synth", "n_reachable", "array"])
        v = rnd.choice([0, 1, -1, 2, 1 << 31, 1 << 40]) if rnd.random() < 0.5 else None
        if key == "array":
            spec = arrays[rnd.choice(sorted(arrays))]
            field = rnd.choice(["len", "offset"])
            if isinstance(spec, dict):
                old = spec.get(field, 0)
                spec[field] = v if v is not None else \
                    (old if isinstance(old, int) else 0) + rnd.randint(-3, 3)
        else:
            old = meta.get(key, 0)
            meta[key] = v if v is not None else \
                (old if isinstance(old, int) else 0) + rnd.randint(-2, 2)
        return join(data, meta)
    return data[:rnd.randrange(len(data) + 1)]


class Names:
    """What a graph asks of the core for a lazily named dict key: its text (the core is
    not part of this harness; any address gets a name)."""

    @staticmethod
    def key_name(addr):
        return f"key@{addr:#x}"


def one(data):
    put(SCRATCH, data)
    parts = split(data)
    identity = parts[0].get("identity") if parts else None
    try:
        meta, arrays = index._load(SCRATCH, identity)
    except index.IndexProblem:
        return
    g = HeapGraph.from_index(meta, arrays, Names)
    try:
        use(g)
    except index.IndexDamaged:       # an array refused when first used: nothing of it ran
        return


def use(g):
    n = g.n
    picks = sorted({0, n - 1, n // 2, min(g.n_synth, n - 1)})
    for i in picks:
        g.type_name(i)
        g.edges(i)
        g.referrers(i, limit=8)
        g.path_edges(i)
        g.dominated_by(i, 8)
        addr = int(g.addr[i])
        assert g.index_of(addr) is None or 0 <= g.index_of(addr) < n
    g.dominator_tree()
    ngroups = 4
    g.group_retained(np.asarray(g.type_ix % ngroups, np.int32), ngroups)
    g.by_address()
    assert g.index_of(0) is None


if __name__ == "__main__":
    fuzz_main(one, mutate, SCRATCH)
