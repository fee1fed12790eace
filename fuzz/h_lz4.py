"""Harness: the .lz4 container reader (arthur/lz4core.py under corefile/lz4source.py), as
nsdebug opens a capture: the index read from the end, blocks decompressed on demand
(python-lz4's C block decoder), reads across block edges, the whole copied out as a
heap walk copies it (_vector.lz4_blocks, checked against the copy lz4's Python API
makes), and runs of blocks decompressed as a capture's windows are (decompress_runs).
Only CoreFileError may come out.

The mutator knows the container: the footer's index offset, the skippable frame's
length, the index head (block size, total, count), one row (offset, stored size, raw
flag), or the bytes of one compressed block; else libFuzzer's own mutations. Seeds:
containers of the first blocks of real cores of the nine builds (tools/fuzz.py seed)."""

from __future__ import annotations

import random
import struct

try:
    from shape import field_mutation, fuzz_main, instrumented, put, scratch_path
except ImportError:
    from fuzz.shape import field_mutation, fuzz_main, instrumented, put, scratch_path
with instrumented():
    import arthur.lz4core  # noqa: F401  (imported here to be instrumented)
    from nsdebug.corefile.lz4source import LZ4Source, lz4_decoder
    from nsdebug.errors import CoreFileError

SCRATCH = scratch_path("lz4")
FOOTER, SKIP, HEAD, ROW = 16, 8, struct.calcsize("<8sIIQQ"), 16


def fields(data):
    """(offset, fmt) of the container's lengths and offsets, as far as they are found."""
    out = []
    if len(data) < FOOTER + SKIP + HEAD:
        return out
    index_at, = struct.unpack_from("<Q", data, len(data) - FOOTER)
    out.append((len(data) - FOOTER, "<Q"))
    if not 0 < index_at < len(data) - SKIP - HEAD:
        return out
    out += [(index_at + 4, "<I"), (index_at + 8 + 12, "<I"), (index_at + 8 + 16, "<Q"),
            (index_at + 8 + 24, "<Q")]
    rows_at = index_at + SKIP + HEAD
    count = (len(data) - FOOTER - rows_at) // ROW
    for i in range(min(count, 64)):
        out += [(rows_at + i * ROW, "<Q"), (rows_at + i * ROW + 8, "<I"),
                (rows_at + i * ROW + 12, "<I")]
    return out


def mutate(data, max_size, seed):
    rnd = random.Random(seed)
    how = rnd.random()
    found = fields(data)
    if how < 0.3 or not found:
        import atheris
        return atheris.Mutate(data, max_size)
    if how < 0.75:
        return field_mutation(data, rnd, found)
    index_at = struct.unpack_from("<Q", data, len(data) - FOOTER)[0]
    at = rnd.randrange(4, max(min(index_at, len(data)), 5))
    b = bytearray(data)
    for _ in range(rnd.randint(1, 8)):
        if at < len(b):
            b[at] = rnd.randrange(256)
        at += rnd.randint(1, 64)
    return bytes(b)


def one(data):
    put(SCRATCH, data)
    try:
        src = LZ4Source(SCRATCH)
    except CoreFileError:
        return
    try:
        bs = src._reader.block_size
        for off in (0, bs - 8, src.size - 4, src.size // 2, src.size + 8):
            got = src.read(off, 16)
            assert len(got) <= 16
        if src.size <= 4 << 20:
            copy = src.materialize(src.size)
            assert len(copy) == max(src.size, 1)
            # The compiled copy (when built) and lz4's Python API agree on every byte.
            other = LZ4Source(SCRATCH)
            try:
                theirs = other._copy_in_python(src.size)[:src.size]
            except CoreFileError:
                theirs = None
            other.close()
            assert theirs == copy[:src.size]
            if lz4_decoder():
                # A capture's window (corefile.windows): runs of blocks in one C call,
                # each where the copy has it, the gap between them untouched.
                count = -(-src.size // bs)
                runs = [(0, min(1, count)), (min(2, count), count)]
                out = bytearray(b"\xee" * (count * bs))
                src.decompress_runs(runs, out, 0)
                for a, b in runs:
                    end = min(b * bs, src.size)
                    assert out[a * bs:end] == copy[a * bs:end]
                assert out[bs:2 * bs] == b"\xee" * len(out[bs:2 * bs])
    except CoreFileError:
        pass
    finally:
        src.close()


if __name__ == "__main__":
    fuzz_main(one, mutate, SCRATCH)
