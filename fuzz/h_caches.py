"""Harness: the readers of nsdebug's caches on disk: the inflated DWARF sections
(native/dwarfcache.py: a body and a CRC trailer) and the place and call-frame-row tables
(native/placecache.py: a CRC head and a marshal payload, validated after loading). A
damaged entry is a miss (None or {}), never an exception, never a table of the wrong
shape.

The mutator rewrites the checksum after changing the body most of the time, so the
validation after the checksum is what meets the damage; else libFuzzer's mutations.
Seeds: entries written by nsdebug's own writers from a real libpython's places."""

from __future__ import annotations

import random
import zlib

try:
    from shape import fuzz_main, instrumented, put, scratch_path
except ImportError:
    from fuzz.shape import fuzz_main, instrumented, put, scratch_path
with instrumented():
    from nsdebug.native import dwarfcache, placecache

SCRATCH = scratch_path("cache")


def mutate(data, max_size, seed):
    import atheris
    rnd = random.Random(seed)
    data = atheris.Mutate(data, max_size)
    if rnd.random() < 0.3 or len(data) < 12:
        return data
    if data[:8] == placecache.MAGIC:
        body = data[placecache.HEAD.size:]
        return placecache.HEAD.pack(placecache.MAGIC, zlib.crc32(body)) + body
    # else a DWARF entry: trailer after the body
    size = dwarfcache.TRAILER.size
    body = data[:-size] if len(data) >= size and data[-size:-size + 8] == dwarfcache.MAGIC \
        else data
    return body + dwarfcache.TRAILER.pack(dwarfcache.MAGIC, zlib.crc32(body), 0, len(body))


def one(data):
    put(SCRATCH, data)
    got = dwarfcache._load(SCRATCH)
    assert got is None or isinstance(got, bytes)
    for valid in (placecache._is_places, placecache._is_row):
        table = placecache._load(SCRATCH, valid)
        assert isinstance(table, dict)
        assert all(isinstance(k, int) and valid(v) for k, v in table.items())


if __name__ == "__main__":
    fuzz_main(one, mutate, SCRATCH)
