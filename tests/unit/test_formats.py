"""The capture's formats, both halves: the LZ4 container (written, read at random, and
damaged in every part), arthur's notes, and file extracts (kept from an ELF file built
here, and read back sparse)."""

import contextlib
import io
import os
import re
import struct
import time

import pytest

import elfwriter as w
from arthur import coreformat, extracts, lz4core
from nsdebug.corefile.extracts import parse_extracts
from nsdebug.corefile.elf import Note, iter_notes
from nsdebug.corefile.lz4source import LZ4Source
from nsdebug.corefile.memory import AddressSpace, Segment
from nsdebug.errors import CoreFileError

pytestmark = pytest.mark.unit


def container(data, level=0):
    out = io.BytesIO()
    wr = lz4core.ContainerWriter(out, level)
    for k in range(0, len(data), 100_000):          # written in pieces of any size
        wr.write(data[k:k + 100_000])
    wr.close()
    return out.getvalue()


def payload(n):
    """Compressible and incompressible stretches, so both block kinds are written."""
    return b"".join((os.urandom(1 << 20) if k % 2 else bytes([k]) * (1 << 20))
                    for k in range(n // (1 << 20))) + b"tail"


def reader(blob, cache=4):
    return lz4core.ContainerReader(lambda o, n: blob[o:o + n], len(blob),
                                   cache * lz4core.BLOCK_SIZE)


def test_random_reads_equal_the_plain_bytes():
    data = payload(5 << 20)
    r = reader(container(data))
    assert r.size == len(data)
    for off, n in ((0, 10), (1 << 20, 5), ((1 << 20) - 3, 9), (3 << 20, 3 << 20),
                   (len(data) - 4, 100), (len(data), 5)):
        assert r.read(off, n) == data[off:off + n], (off, n)


@pytest.mark.parametrize("block", [lz4core.BLOCK_SIZE, 12_000])
def test_memory_reads_a_capture_of_any_block_size(tmp_path, monkeypatch, block):
    """A power of two (arthur's) is sliced from the kept blocks by a shift and a mask;
    another size is read through the source. Both give the plain bytes, within a block
    and across blocks (every 8 bytes of the data are their own offset)."""
    monkeypatch.setattr(lz4core, "BLOCK_SIZE", block)
    data = b"".join(struct.pack("<Q", k) for k in range(0, 2 << 20, 8))
    path = tmp_path / "c.lz4"
    path.write_bytes(container(data))
    src = LZ4Source(str(path))
    try:
        base = 0x7f0000000000
        space = AddressSpace(src, [Segment(base, base + len(data), 0, len(data), "rw-")])
        assert (space._blocks is not None) == (block == 1 << 14)
        for off, n in ((0, 8), (block - 4, 8), (block, 16), (5 * block + 3, 100),
                       (1 << 20, 3 * block), (len(data) - 8, 8)):
            assert space.read(base + off, n) == data[off:off + n], (off, n)
    finally:
        src.close()


def test_a_captures_index_rows_are_a_view_of_its_mapping(tmp_path):
    """The block index is read in place: a capture of gigabytes has megabytes of rows,
    and a command that reads little needs a few. The view is let go at close, so the
    mapping can be closed."""
    data = payload(3 << 20)
    path = tmp_path / "c.lz4"
    path.write_bytes(container(data))
    src = LZ4Source(str(path))
    rows = src._reader.index.raw_rows
    assert isinstance(rows, memoryview) and rows.obj is src._file.view.obj
    assert len(rows) == 16 * src._reader.index.count
    assert src.read(len(data) - 4, 4) == b"tail" and src.read(5, 3) == data[5:8]
    src.close()
    with pytest.raises(ValueError):
        rows[0]                     # released


def test_a_raw_block_and_a_high_compression_level():
    data = payload(3 << 20)
    blob = container(data, level=9)
    idx = lz4core.ContainerIndex(lambda o, n: blob[o:o + n], len(blob))
    assert any(flag & lz4core.RAW_FLAG for _o, _s, flag in idx.rows)
    assert b"".join(reader(blob).iter_blocks()) == data


@pytest.mark.parametrize("damage, why", [
    ("footer", "without arthur's block index"),
    ("index magic", "index"),
    ("truncated", "block index"),
    ("block", "corrupt"),
    ("magic", "not an LZ4 frame"),
])
def test_damaged_containers_say_so(damage, why):
    blob = bytearray(container(payload(2 << 20)))
    if damage == "footer":
        blob[-8:] = b"XXXXXXXX"
    elif damage == "index magic":
        at = struct.unpack_from("<Q", blob, len(blob) - 16)[0]
        blob[at + 8:at + 16] = b"NOTINDEX"
    elif damage == "truncated":
        del blob[len(blob) // 2:]
    elif damage == "block":
        idx = lz4core.ContainerIndex(lambda o, n: bytes(blob[o:o + n]), len(blob))
        off, stored, flag = next(r for r in idx.rows if not r[2] & lz4core.RAW_FLAG)
        blob[off + 4:off + 4 + stored] = bytes(stored)
    else:
        blob[:4] = b"ELF!"
    blob = bytes(blob)
    with pytest.raises(lz4core.ContainerError, match=why):
        r = reader(blob)
        for i in range(len(r.index.rows)):
            r.index.block(i)


def test_lz4source_wraps_errors_in_nsdebugs(tmp_path):
    path = tmp_path / "c.lz4"
    path.write_bytes(container(b"x" * 100)[:-3])
    with pytest.raises(CoreFileError, match="c.lz4"):
        LZ4Source(str(path))


@contextlib.contextmanager
def _copies_in(in_memory):
    """Copies of cores made in memory, or in temporary files, whatever their size and
    the machine's state (vector.copy_in_memory's choice made for it)."""
    from nsdebug.corefile import vector
    chosen = vector.copy_in_memory
    vector.copy_in_memory = lambda nbytes: in_memory
    try:
        yield
    finally:
        vector.copy_in_memory = chosen


def _copies(tmp_path, blob, upto):
    """The whole-core copy a heap walk makes of container `blob` (or the error each
    gives): by the compiled loop in memory, by it in files, and by lz4's Python API."""
    from nsdebug.corefile.lz4source import lz4_decoder
    path = tmp_path / "c.lz4"
    path.write_bytes(blob)
    decoder = lz4_decoder()
    assert decoder, "the compiled copy is not built (nsdebug.corefile._vector)"
    out = []
    for in_memory, make in ((True, lambda s: s._copy_in_c(upto, decoder)),
                            (False, lambda s: s._copy_in_c(upto, decoder)),
                            (None, lambda s: s._copy_in_python(upto))):
        src = LZ4Source(str(path))
        try:
            if in_memory is None:
                out.append(make(src))
            else:
                with _copies_in(in_memory):
                    out.append(make(src))
        except CoreFileError as e:
            out.append(str(e))          # (not the error: its frames hold views of the file)
        finally:
            src.close()
    return out


@pytest.mark.parametrize("piece", [None, 3 * lz4core.BLOCK_SIZE])
@pytest.mark.parametrize("upto", [None, 3 << 20, (1 << 20) + 5])
def test_the_compiled_copy_is_the_plain_bytes(tmp_path, monkeypatch, upto, piece):
    """piece: the copy in memory given its pages a few blocks at a time (many pieces a
    thread, the last one short), not a share's whole in one piece."""
    from nsdebug.corefile import lz4source
    if piece:
        monkeypatch.setattr(lz4source, "POPULATE_BYTES", piece)
    data = payload(5 << 20)
    upto = upto or len(data)
    for level in (0, 9):                 # 9: some blocks stored raw
        in_memory, in_files, py_copy = _copies(tmp_path, container(data, level), upto)
        assert in_memory[:upto] == in_files[:upto] == py_copy[:upto] == data[:upto]


@pytest.mark.parametrize("damage, why", [
    ("block", "block 2 is corrupt"),
    ("raw size", "block {raw} is stored raw with the wrong size"),
    ("offset", "points past the data at block 3"),
])
def test_the_compiled_copy_names_a_damaged_block(tmp_path, damage, why):
    blob = bytearray(container(payload(2 << 20), level=9))
    idx = lz4core.ContainerIndex(lambda o, n: bytes(blob[o:o + n]), len(blob))
    rows_at = idx.index_at + 8 + struct.calcsize("<8sIIQQ")
    raw = [i for i, r in enumerate(idx.rows) if r[2] & lz4core.RAW_FLAG]
    packed = [i for i, r in enumerate(idx.rows) if not r[2] & lz4core.RAW_FLAG]
    assert raw and 2 in packed           # payload(): a MiB of zeros, then random bytes
    why = why.format(raw=raw[0])
    if damage == "block":
        off, stored, _ = idx.row(2)
        blob[off + 4:off + 4 + stored] = b"\xff" * stored
    elif damage == "raw size":
        struct.pack_into("<I", blob, rows_at + 16 * raw[0] + 8, idx.row(raw[0])[1] - 1)
    else:
        struct.pack_into("<Q", blob, rows_at + 16 * 3, idx.index_at)
    in_memory, in_files, py_err = _copies(tmp_path, bytes(blob), len(payload(2 << 20)))
    for c_err in (in_memory, in_files):
        assert isinstance(c_err, str) and why in c_err, c_err
    assert isinstance(py_err, str), py_err


def test_runs_of_blocks_decompress_to_their_places_and_name_a_damaged_block(tmp_path):
    """decompress_runs (a capture's windows): each run of blocks lands at its place in
    the buffer, counted from the base block, all in one C call; the bytes between runs
    are left as they were; a buffer too small for a run and a damaged block are named; C
    refuses a run before the base or past the blocks (no write outside the buffer)."""
    data = payload(3 << 20)
    path = tmp_path / "c.lz4"
    path.write_bytes(container(data, level=9))
    bs = lz4core.BLOCK_SIZE
    runs = [(10, 12), (20, 21), (30, 30 + 70)]
    src = LZ4Source(str(path))
    try:
        out = bytearray(b"\xee" * (100 * bs))
        src.decompress_runs(runs, out, 10)
        for first, end in runs:
            at = (first - 10) * bs
            assert out[at:at + (end - first) * bs] == data[first * bs:end * bs], first
        assert out[2 * bs:10 * bs] == b"\xee" * (8 * bs)
        with pytest.raises(CoreFileError, match="block 99: no room for it in the buffer"):
            src.decompress_runs(runs, bytearray(89 * bs), 10)
        for bad in ([(9, 12)], [(10, 10 ** 6)], [(12, 11)]):
            with pytest.raises(ValueError, match="bad arguments"):
                src.decompress_runs(bad, bytearray(100 * bs), 10)
    finally:
        src.close()
    blob = bytearray(container(data, level=9))
    idx = lz4core.ContainerIndex(lambda o, n: bytes(blob[o:o + n]), len(blob))
    off, stored, _ = idx.row(40)           # a compressed block (a random one is stored raw)
    blob[off + 4:off + 4 + stored] = b"\xff" * stored
    path.write_bytes(bytes(blob))
    src = LZ4Source(str(path))
    try:
        with pytest.raises(CoreFileError, match="block 40 is corrupt"):
            src.decompress_runs(runs, bytearray(100 * bs), 10)
    finally:
        src.close()


def test_a_note_is_padded_to_four():
    n = coreformat.note(b"ARTHUR", 7, b"abcde")
    namesz, descsz, ntype = struct.unpack_from("<III", n)
    assert (namesz, descsz, ntype) == (7, 5, 7) and len(n) == 12 + 8 + 8


def test_extract_head_round_trip():
    head = coreformat.encode_extract_head({"path": "/x", "build_id": None, "size": 9,
                                           "extents": [[0, 4]]})
    assert len(head) % 8 == 0
    got, at = coreformat.decode_extract_head(head + b"data")
    assert got["path"] == "/x" and at == len(head)
    for bad in (b"\x01", struct.pack("<I", 100) + b"{}", struct.pack("<I", 2) + b"[]"):
        with pytest.raises(ValueError):
            coreformat.decode_extract_head(bad)


def library(tmp_path):
    img = w.Image()
    img.add_build_id("cd" * 20)
    img.add(".text", b"\xcc" * 64, flags=w.SHF_ALLOC | w.SHF_EXECINSTR, align=0x1000)
    img.add(".rodata", b"the read-only data" * 10)
    img.add(".data", b"\x01" * 32, flags=w.SHF_ALLOC | w.SHF_WRITE, align=0x1000)
    img.add_symbols([("f", 0x1000, 64, "func")])
    path = tmp_path / "libx.so"
    path.write_bytes(img.build())
    return str(path), img


def test_extracts_keep_what_a_reader_needs_and_not_code(tmp_path):
    path, img = library(tmp_path)
    data = open(path, "rb").read()
    fd = os.open(path, os.O_RDONLY)
    try:
        ranges = extracts.kept_ranges(fd)
        assert extracts.build_id(fd) == "cd" * 20
    finally:
        os.close(fd)
    offs = {name: off for name, _t, _f, off, *_ in img.sections}

    def kept(off, n=1):
        return any(o <= off and off + n <= o + k for o, k in ranges)
    assert kept(0, 64) and kept(offs[".rodata"], 180) and kept(offs[".symtab"])
    assert not kept(offs[".text"]) and not kept(offs[".data"])
    # Read back through the note, as nsdebug reads a capture.
    blob, count = extracts.extract_files({"/lib/libx.so": path})
    assert count == 1
    notes = list(iter_notes(blob))
    src = parse_extracts(notes, pytest.fail)["/lib/libx.so"]
    assert src.build_id == "cd" * 20 and src.size == len(data)
    at = offs[".rodata"]
    assert src.read(at, 18) == data[at:at + 18] and src.covers(at, 18)
    assert src.read(offs[".text"], 4) == b"" and not src.covers(offs[".text"], 4)


def test_a_malformed_extract_is_left_out_with_a_warning():
    warned = []
    good = coreformat.encode_extract_head({"path": "/a", "build_id": None, "size": 8,
                                           "extents": [[0, 4]]}) + b"abcd"
    bad = coreformat.encode_extract_head({"path": "/b", "build_id": None, "size": 8,
                                          "extents": [[0, 400]]}) + b"abcd"
    notes = [Note(b"ARTHUR", coreformat.NT_ARTHUR_FILE, good),
             Note(b"ARTHUR", coreformat.NT_ARTHUR_FILE, bad),
             Note(b"ARTHUR", coreformat.NT_ARTHUR_FILE, b"\xff\xff")]
    got = parse_extracts(notes, warned.append)
    assert list(got) == ["/a"] and len(warned) == 2


def test_residency_record_round_trip_and_every_malformed_shape():
    rows = [(0x10000, bytes([2, 0, 1, 2])), (0x20000, bytes([2] * 9)), (0x7f0000000000, b"")]
    page, back = coreformat.decode_residency(coreformat.encode_residency(rows))
    assert page == 4096 and [(s, bytes(st)) for s, st in back] == rows
    good = coreformat.encode_residency(rows)
    head = coreformat.RESIDENT_HEAD
    row = coreformat.RESIDENT_ROW
    bad = {
        "short": good[:10],
        "version": head.pack(9, 4096, 0),
        "page size": head.pack(1, 4097, 0),
        "too many rows": head.pack(1, 4096, 1 << 40),
        "rows past the end": head.pack(1, 4096, 1) + row.pack(0x1000, 1 << 30),
        "overlapping": head.pack(1, 4096, 2) + row.pack(0x3000, 2) + row.pack(0x4000, 1) +
        bytes(8),
        "unaligned": head.pack(1, 4096, 1) + row.pack(0x3001, 1) + bytes(8),
        "wraps": head.pack(1, 4096, 1) + row.pack(0xfffffffffffff000, 2) + bytes(8),
    }
    for name, desc in bad.items():
        with pytest.raises(ValueError):
            coreformat.decode_residency(desc)
        print(name, "refused")


def test_the_container_is_the_same_bytes_whatever_the_workers():
    data = payload(6 << 20)
    outs = []
    for workers in (1, 2, 5):
        out = io.BytesIO()
        wr = lz4core.ContainerWriter(out, 0, workers)
        assert wr.workers == workers
        for k in range(0, len(data), 300_000):
            wr.write(data[k:k + 300_000])
        wr.close()
        outs.append(out.getvalue())
    assert outs[0] == outs[1] == outs[2]


def _range_of(copy):
    """The addresses [lo, hi) a mapped copy takes."""
    import numpy as np
    view = np.frombuffer(copy, dtype=np.uint8)
    lo = view.ctypes.data
    del view
    return lo, lo + len(copy)


def _maps_within(lo, hi):
    """(start, end, inode, path) of each line of /proc/self/maps that meets [lo, hi)."""
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(maxsplit=5)
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if start < hi and end > lo:
                out.append((start, end, fields[4], fields[5].strip() if len(fields) > 5
                            else ""))
    return out


def _lz4_copies(path, n):
    """The whole-core copy a heap walk makes of the capture at `path` (`n` bytes), by
    the compiled copy and by lz4's Python calls: (copy, the lines of /proc/self/maps
    over its range) each."""
    from nsdebug.corefile.lz4source import lz4_decoder
    for make in (lambda s: s._copy_in_c(n, lz4_decoder()),
                 lambda s: s._copy_in_python(n)):
        src = LZ4Source(str(path))
        copy = make(src)
        yield copy, _maps_within(*_range_of(copy))
        src.close()
        del copy, src


@pytest.mark.skipif(tuple(int(x) for x in re.findall(r"\d+", os.uname().release)[:2])
                    < (5, 14), reason="MADV_POPULATE_WRITE is Linux 5.14's")
def test_populate_gives_a_mapping_its_pages_in_one_call():
    """_vector.populate: a new anonymous mapping has no page until written; populated,
    every page is there (what the copy of a capture asks before decompressing into a
    piece of it), its bytes still zeros. A buffer not starting on a page is refused."""
    import mmap
    from arthur.procfs import anonymous_kb
    from nsdebug.corefile import _vector
    buf = mmap.mmap(-1, 8 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    [(start, _, _, _)] = _maps_within(*_range_of(buf))
    try:
        assert anonymous_kb(os.getpid())[start] == 0
        assert _vector.populate(buf) is True
        assert anonymous_kb(os.getpid())[start] == 8 << 10
        assert buf[:] == bytes(8 << 20)
        with memoryview(buf) as view:
            assert _vector.populate(view[100:4096]) is False
        with pytest.raises(TypeError):
            _vector.populate(bytes(4096))           # not writable
    finally:
        buf.close()


def _rss_anon():
    from nsdebug import membudget
    return membudget._kib_field("/proc/self/status", b"RssAnon:")


@pytest.mark.skipif(os.geteuid() != 0, reason="sets vm.dirty_background_bytes: root only")
def test_a_copy_past_the_dirty_limit_is_made_in_memory_and_pinned_while_it_lives(tmp_path):
    """Where a file's pages would pass the kernel's background dirty limit (set to 1 MiB
    here, as on a machine busy writing), a capture's whole-core copy is made in this
    process's anonymous memory, by both copies: one private mapping of no file, in
    RssAnon, pinned (counted as a copy's, not the walk's) until it goes."""
    import gc
    import memcg
    from nsdebug import membudget
    data = payload(8 << 20)
    path = tmp_path / "c.lz4"
    path.write_bytes(container(data))
    gc.collect()
    before = membudget.pinned_bytes()
    with memcg.dirty_limit(1 << 20):
        assert membudget.copy_in_memory(len(data))
        for copy, maps in _lz4_copies(path, len(data)):
            assert copy[:] == data
            [(start, end, inode, name)] = maps
            assert inode == "0" and name == "" and end - start >= len(data), maps
            assert membudget.pinned_bytes() == before + len(copy)
            # Its pages are this process's anonymous memory (7 MiB of them at least: the
            # first MiB of zeros may be left a hole), and not the walk's. (RssAnon read
            # here, after the comparison's temporaries: a sanitizer's allocator keeps
            # freed blocks a while.)
            anon = _rss_anon()
            assert membudget.anon_bytes() <= anon - len(copy) + (1 << 20)
            copy.close()
            del copy
            gc.collect()
            assert _rss_anon() <= anon - (6 << 20), (anon, _rss_anon())
    gc.collect()
    assert membudget.pinned_bytes() == before


def test_a_copy_under_the_dirty_limit_is_a_file(tmp_path):
    """A copy the page cache can take as dirty pages, twice over, stays a temporary
    file's pages, which can be dropped."""
    from nsdebug import membudget
    data = payload(4 << 20)
    path = tmp_path / "c.lz4"
    path.write_bytes(container(data))
    room = membudget.dirty_room()
    assert room is not None
    if room < 4 * len(data):
        pytest.skip(f"the page cache is this close to its dirty limit: {room} bytes")
    assert not membudget.copy_in_memory(len(data))
    for copy, maps in _lz4_copies(path, len(data)):
        assert copy[:] == data
        assert maps and all("nsdebug-core-" in name and "(deleted)" in name
                            for _, _, _, name in maps), maps
        del copy


def _compiled_copy(tmp_path, in_memory, level=0):
    """(source, its compiled copy, the plain bytes) of a 4 MiB capture (four tasks of
    1 MiB and a tail of 4 bytes), the copy made in memory or in files."""
    from nsdebug.corefile.lz4source import lz4_decoder
    data = payload(4 << 20)
    path = tmp_path / "c.lz4"
    path.write_bytes(container(data, level))
    src = LZ4Source(str(path))
    with _copies_in(in_memory):
        return src, src._copy_in_c(len(data), lz4_decoder()), data


def test_the_compiled_copy_in_memory_is_written_in_place_by_each_thread(tmp_path):
    """In memory, each copy thread decompresses its share straight into the one
    mapping: one anonymous range holding the plain bytes, which closing gives back."""
    src, copy, data = _compiled_copy(tmp_path, True)
    lo, hi = _range_of(copy)
    [(start, end, inode, name)] = _maps_within(lo, hi)
    assert copy[:] == data and inode == "0" and name == "" and start <= lo and end >= hi
    copy.close()
    assert not [m for m in _maps_within(lo, hi) if (m[0], m[1]) == (start, end)]
    src.close()


def test_the_compiled_copy_in_files_is_a_file_per_thread_mapped_as_one_range(tmp_path):
    """In files, each copy thread writes its share into a file of its own (one file
    takes its writers one at a time); the files are mapped back to back, as one range
    of addresses holding the plain bytes, and closing the copy unmaps the whole range."""
    from nsdebug.corefile.lz4source import COPY_THREADS
    src, copy, data = _compiled_copy(tmp_path, False)
    lo, hi = _range_of(copy)
    maps = _maps_within(lo, hi)
    assert copy[:] == data
    assert len(maps) == COPY_THREADS == 2, maps
    (s1, e1, inode1, _), (s2, e2, inode2, _) = maps
    assert (s1, e1, s2) == (lo, lo + (2 << 20), e1) and e2 >= hi and inode1 != inode2
    copy.close()
    assert not [m for m in _maps_within(lo, hi) if m[2] in (inode1, inode2)]
    src.close()


def test_where_a_share_cannot_be_mapped_over_the_copy_it_is_copied_in(tmp_path,
                                                                      monkeypatch):
    """If the kernel refuses to map a share's file over the first file's range (its
    limit on a process's mappings), the share is copied into the first file instead:
    the same bytes, one mapping."""
    from nsdebug.corefile import vector

    def refused(*args):
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(vector._vector, "overlay", refused)
    src, copy, data = _compiled_copy(tmp_path, False, level=9)
    assert copy[:] == data
    assert len(_maps_within(*_range_of(copy))) == 1
    del copy
    src.close()


def test_a_copy_too_large_for_memory_goes_to_a_file(tmp_path):
    """Past a third of what the process may use (the system's available memory here),
    the copy is a temporary file's pages, which the kernel may drop: fits_in_memory says
    no to a copy larger than the machine's available memory."""
    from nsdebug import membudget
    avail = membudget.available_bytes()
    assert avail and not membudget.fits_in_memory(avail)
    assert membudget.fits_in_memory(avail // 100)


@pytest.mark.parametrize("in_memory", [True, False])
def test_a_captures_copy_given_back_goes_and_is_made_again_when_read(tmp_path, in_memory):
    """VectorMemory.release (a walk's, once it has read the core): the copy's mapping
    goes, along with its pin; scalar reads come from the blocks again, and the next bulk
    read makes the copy again, the same bytes."""
    import gc
    import struct

    import numpy as np

    from nsdebug import membudget
    from nsdebug.corefile import open_core
    from nsdebug.corefile.vector import VectorMemory
    at = 0x10000
    words = struct.pack("<4096Q", *range(7, 7 + 4096))         # 32 KiB
    core = w.core([(b"CORE", w.NT_PRSTATUS, w.prstatus(1))], [(at, words, None, 6)])
    path = tmp_path / "core.lz4"
    path.write_bytes(container(core))
    addrs = np.arange(at, at + len(words), 8, dtype=np.uint64)
    process = open_core(str(path))
    try:
        assert process.source.buffer is None
        gc.collect()
        pinned = membudget.pinned_bytes()
        with _copies_in(in_memory):
            vm = VectorMemory(process)
            first, ok = vm.u64(addrs)
            lo, hi = _range_of(vm.buf)
            mapped = _maps_within(lo, hi)
            assert ok.all() and first.tolist() == list(range(7, 7 + 4096))
            assert membudget.pinned_bytes() == pinned + (len(vm.buf) if in_memory else 0)
            vm.release()
            gc.collect()
            assert not [m for m in _maps_within(lo, hi) if m in mapped], (mapped, lo, hi)
            assert membudget.pinned_bytes() == pinned
            assert process.memory.read(at + 8 * 100, 8) == words[800:808]
            again, ok = vm.u64(addrs)
            assert ok.all() and np.array_equal(again, first)
            vm.release()
    finally:
        process.close()


def _windowed_pair(tmp_path, monkeypatch, damage=False):
    """A core of three segments, every word its own address, opened plain and as a
    capture; the capture's windows made small (many of them, with blocks skipped)."""
    from nsdebug.corefile import open_core, windows
    monkeypatch.setattr(windows, "WINDOW_BYTES", 96 << 10)     # six blocks
    segs = [(0x10000, 300 << 10), (0x7f0000001000, 1 << 20), (0x7f0000200000, 200 << 10)]
    loads = [(at, struct.pack(f"<{n // 8}Q", *range(at, at + n, 8)), None, 6)
             for at, n in segs]
    core = w.core([(b"CORE", w.NT_PRSTATUS, w.prstatus(1))], loads)
    (tmp_path / "core").write_bytes(core)
    blob = bytearray(container(core))
    if damage:
        idx = lz4core.ContainerIndex(lambda o, n: bytes(blob[o:o + n]), len(blob))
        off, stored, _ = idx.row(40)
        blob[off + 4:off + 4 + stored] = b"\xff" * stored
    (tmp_path / "core.lz4").write_bytes(bytes(blob))
    return (open_core(str(tmp_path / "core")), open_core(str(tmp_path / "core.lz4")), segs)


def test_windowed_reads_of_a_capture_equal_the_plain_cores(tmp_path, monkeypatch):
    """WindowedMemory (a capture's snapshot reads): reads at addresses in any order,
    within and at the ends of segments, across a window's edge and outside the core,
    give what VectorMemory gives over the plain core, in the order asked; lists, arrays
    and tuples of arrays come back whole; no copy of the whole core is made."""
    import numpy as np

    from nsdebug.corefile import windows
    from nsdebug.corefile.vector import VectorMemory
    from nsdebug.corefile.windows import WindowedMemory
    plain, cap, segs = _windowed_pair(tmp_path, monkeypatch)
    whole = None
    try:
        rng = np.random.default_rng(5)
        inside = np.concatenate([at + 8 * rng.integers(0, n // 8, 3000) for at, n in segs])
        ends = [at + n - 8 for at, n in segs] + [at + n - 4 for at, n in segs]
        outside = [0, 0x8000, segs[0][0] + segs[0][1], 0x7f0000200000 - 8, 1 << 63]
        addrs = rng.permutation(np.concatenate([inside, ends, outside]).astype(np.uint64))
        whole = VectorMemory(plain)
        reads = WindowedMemory.of(cap)
        assert reads is not None and WindowedMemory.of(plain) is None
        seen = []

        def u64_and_texts(vm, a):
            seen.append(len(a))
            v, ok = vm.u64(a)
            return v, ok

        want = whole.u64(addrs)
        got = reads.per_window(addrs, 8, u64_and_texts)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        assert got[1].sum() == len(inside) + len(segs) and len(seen) > 6
        assert sum(seen) == len(addrs)
        texts = reads.per_window(addrs, 16, lambda vm, a: [str(int(x)) for x in
                                                            vm.u64(a + np.uint64(8))[0]])
        # An address outside the core has no bytes, even where its reach ends inside.
        at_core = whole.u64(addrs)[1]
        wanted = np.where(at_core, whole.u64(addrs + np.uint64(8))[0], 0)
        assert texts == [str(int(x)) for x in wanted]
        assert texts[addrs.tolist().index(0x7f0000200000 - 8)] == "0"
        # With put, each window's results are given with their positions in `addrs`,
        # every position once, and nothing is returned; over the plain core once.
        as_read = [str(int(x)) for x in whole.u64(addrs + np.uint64(8))[0]]
        for memory, want_texts in ((reads, texts), (whole, as_read)):
            placed = np.full(len(addrs), None, dtype=object)
            puts = []

            def put(at, made):
                puts.append(at)
                assert all(x is None for x in placed[at])
                placed[at] = made
            assert memory.per_window(addrs, 16, lambda vm, a: [
                str(int(x)) for x in vm.u64(a + np.uint64(8))[0]], put) is None
            assert placed.tolist() == want_texts
            assert len(puts) > 6 if memory is reads else puts == [slice(None)]
        del memory                          # `whole` is closed with the core below
        empty = []
        reads.per_window(np.zeros(0, np.uint64), 8, lambda vm, a: [],
                         lambda at, made: empty.append(made))
        assert empty == [[]]
        # A read past its reach finds no bytes there (invalid), never another window's.
        far = np.array([segs[1][0] + (200 << 10)], dtype=np.uint64)
        v, ok = reads.per_window(far, 8, lambda vm, a: vm.u64(a + np.uint64(300 << 10)))
        assert not ok[0]
        assert reads.per_window(np.zeros(0, np.uint64), 8, lambda vm, a: vm.u64(a))[0].size == 0
        # Few reads after many: the blocks between their runs are not decompressed and
        # hold what the last windows left, which no read reaches.
        sparse = np.sort(inside)[::700]
        assert np.array_equal(reads.per_window(sparse, 8, lambda vm, a: vm.u64(a))[0],
                              whole.u64(sparse)[0])
        off = np.array([0, 96 << 10, (96 << 10) - 1, 5 << 20, 7], dtype=np.uint64)
        valid = np.array([True, True, True, True, False])
        for piece in (2, 3, 1 << 20):          # made a piece at a time, the same keys
            assert windows._window_keys(off, valid, 60, piece).tolist() == [0, 1, 0, 53, 60]
        assert windows._window_keys(off, valid, 1 << 16).dtype == np.uint32
        assert windows._runs(np.array([200_000, 5, 30_000, 20_000]), 8, 1 << 14, 0,
                             99).tolist() == [[0, 2], [12, 13]]
        assert windows._runs(np.array([16_380, 500_000]), 40_000, 1 << 14, 0,
                             40).tolist() == [[0, 4], [30, 33]]
        assert cap.source._copy is None
        reads.release()
    finally:
        del whole                           # its views of the plain core, before close
        plain.close()
        cap.close()


def test_windowed_reads_name_a_damaged_block(tmp_path, monkeypatch):
    import numpy as np

    from nsdebug.corefile.windows import WindowedMemory
    plain, cap, segs = _windowed_pair(tmp_path, monkeypatch, damage=True)
    try:
        addrs = np.arange(segs[1][0], segs[1][0] + segs[1][1], 4096, dtype=np.uint64)
        with pytest.raises(CoreFileError, match="block 40 is corrupt"):
            WindowedMemory.of(cap).per_window(addrs, 8, lambda vm, a: vm.u64(a))
    finally:
        plain.close()
        cap.close()


def test_windowed_reads_stopped_by_their_reader_leave_no_window_half_made(tmp_path,
                                                                         monkeypatch):
    """The next window decompresses in a thread while fn reads the last: when fn raises,
    what it raised comes out, once the thread is done, and the same reads then give what
    the plain core gives (no buffer left half written)."""
    import numpy as np

    from nsdebug.corefile.vector import VectorMemory
    from nsdebug.corefile.windows import WindowedMemory
    plain, cap, segs = _windowed_pair(tmp_path, monkeypatch)
    whole = None
    try:
        whole = VectorMemory(plain)
        addrs = np.arange(segs[1][0], segs[1][0] + segs[1][1], 4096, dtype=np.uint64)
        reads, calls, done = WindowedMemory.of(cap), [], []
        decompress = cap.source.decompress_runs

        def slow_third(runs, out, base):
            if len(done) == 2:
                time.sleep(0.3)         # still writing when the reader stops
            decompress(runs, out, base)
            done.append(base)
        monkeypatch.setattr(cap.source, "decompress_runs", slow_third)

        def second_fails(vm, a):
            calls.append(len(a))
            if len(calls) == 2:
                raise KeyError("stop")
            return vm.u64(a)[0]
        with pytest.raises(KeyError, match="stop") as stopped:
            reads.per_window(addrs, 8, second_fails)
        # The third window's thread is done though the error (kept, with its frames) is.
        assert len(calls) == 2 and len(done) == 3 and stopped.traceback
        assert np.array_equal(reads.per_window(addrs, 8, lambda vm, a: vm.u64(a)[0]),
                              whole.u64(addrs)[0])
    finally:
        del whole
        plain.close()
        cap.close()
