"""Reads of a core at many addresses at once (the compiled gathers against their numpy
form, on a core built here), and line numbers of code objects decoded per version:
3.11+'s location table against the running interpreter's own answer, 3.8-3.10's
formats against tables written from their specification."""

import struct
import sys

import numpy as np
import pytest

import elfwriter as w
from nsdebug.corefile import open_core, vector
from nsdebug.cpython import linetable

pytestmark = pytest.mark.unit

A, B = 0x10000, 0x30000


@pytest.fixture
def vm(tmp_path):
    words = struct.pack("<512Q", *range(1000, 1512))
    ring = bytearray(0x1000)
    # A circular list of 5 nodes, next pointer at +8, low bits used as flags.
    nodes = [B + 0x100 * k for k in range(5)]
    for k, n in enumerate(nodes):
        struct.pack_into("<QQ", ring, n - B, 0, nodes[(k + 1) % 5] | 1)
    path = tmp_path / "core"
    path.write_bytes(w.core([(b"CORE", w.NT_PRSTATUS, w.prstatus(1))],
                            [(A, words, None, 6), (B, bytes(ring), 0x2000, 6)]))
    return vector.VectorMemory(open_core(str(path)))


def gathers(vm):
    addrs = np.array([A, A + 8, A + 4, A + 4088, A + 4096, B - 8, B, B + 0x1ff8,
                      0, (1 << 64) - 8], dtype=np.uint64)
    return [vm.u64(addrs), vm.u32(addrs), vm.u8(addrs), vm.offsets(addrs, 8)]


def test_gathers_read_what_is_there_and_flag_the_rest(vm):
    (q, qok), (d, dok), (b, bok), _ = gathers(vm)
    assert q[:2].tolist() == [1000, 1001] and qok[:2].all()
    assert not qok[2]                            # unaligned
    assert q[3] == 1511 and not qok[4] and not qok[5]
    assert not qok[7]                            # in memsz, not in the file
    assert not qok[8] and not qok[9]
    assert d[2] == 0 and dok[2] and d[0] == 1000   # A+4: the high half of 1000
    assert b[0] == 1000 & 0xFF and bok[0] and bok[2]


def test_compiled_and_numpy_gathers_agree(vm, monkeypatch):
    fast = gathers(vm)
    monkeypatch.setattr(vector, "_vector", None)
    slow = gathers(vm)
    for (x, ok), (y, ok2) in zip(fast, slow):
        assert np.array_equal(ok, ok2)
        assert np.array_equal(np.where(ok, x, 0), np.where(ok2, y, 0))


@pytest.mark.skipif(vector._vector is None, reason="the compiled module is not built")
def test_offsets_in_c_by_the_cores_size_agree_with_numpy(vm, monkeypatch):
    # C locates by the core's size alone (corefile.windows has no bytes of a capture's
    # whole core), numpy by the segments; a mapped core's offsets are the C ones.
    addrs = np.array([A, A + 8, A + 4088, A + 4095, A + 4096, B - 8, B, B + 0x1ff8,
                      B + 0x0fff, 0, (1 << 64) - 8, (1 << 64) - 1], dtype=np.uint64)
    size = len(vm.data)
    for width in (1, 8, 100):
        sized = vector.file_offsets(vm.start, vm.end, vm.off, addrs, width, size)
        plain = vector.file_offsets(vm.start, vm.end, vm.off, addrs, width)
        for got in (sized, vm.offsets(addrs, width)):
            assert np.array_equal(got[1], plain[1]) and np.array_equal(got[0], plain[0])
        assert sized[1][[0, 1, 6]].all() and not sized[1][[4, 7, 9, 10, 11]].any()
    # A core cut short: a read past its bytes is not valid, the rest still are.
    last = int(vm.offsets(np.array([B + 0xfff], dtype=np.uint64), 1)[0][0])
    off, ok = vector.file_offsets(vm.start, vm.end, vm.off, addrs, 1, last)
    assert not ok[8] and ok[0] and ok[6] and off[6] == vm.offsets(addrs, 1)[0][6]
    # numpy bounds by the size the same way (the build without the compiled module).
    for width in (1, 8, 100):
        c = vector.file_offsets(vm.start, vm.end, vm.off, addrs, width, last)
        with monkeypatch.context() as m:
            m.setattr(vector, "_vector", None)
            py = vector.file_offsets(vm.start, vm.end, vm.off, addrs, width, last)
        assert np.array_equal(c[0], py[0]) and np.array_equal(c[1], py[1]), width


@pytest.mark.parametrize("compiled", [True, False])
def test_within_says_which_addresses_lie_in_sorted_ranges(monkeypatch, compiled):
    """vector.within (pymalloc's arenas against every object of a walk) against the plain
    question asked of each range; ranges of other lengths, addresses at both ends of each
    range, between them, before the first and near 2**64; in an order that jumps from
    range to range (the compiled lookup keeps the last range found)."""
    if not compiled:
        monkeypatch.setattr(vector, "_vector", None)
    top = (1 << 64) - 0x100
    starts = np.array([0x1000, 0x5000, 0x5800, 0x100000, top], dtype=np.uint64)
    ends = np.array([0x2000, 0x5800, 0x9000, 0x100010, top + 0x80], dtype=np.uint64)
    picks = [0, 0xfff, 0x1000, 0x1fff, 0x2000, 0x4fff, 0x5000, 0x57ff, 0x5800, 0x8fff,
             0x9000, 0x100000, 0x10000f, 0x100010, top - 1, top, top + 0x7f, top + 0x80,
             (1 << 64) - 1]
    rng = np.random.default_rng(7)
    addrs = np.concatenate([np.array(picks, dtype=np.uint64),
                            rng.permutation(np.array(picks * 5, dtype=np.uint64)),
                            rng.integers(0, 0x110000, 2000).astype(np.uint64)])
    truth = [any(int(a) <= int(x) < int(b) for a, b in zip(starts, ends)) for x in addrs]
    got = vector.within(starts, ends, addrs)
    assert got.dtype == np.bool_ and got.tolist() == truth
    assert got[:len(picks)].tolist() == [False, False, True, True, False, False, True, True,
                                         True, True, False, True, True, False, False, True,
                                         True, False, False]
    assert not vector.within(starts[:0], ends[:0], addrs).any()


@pytest.mark.parametrize("compiled", [True, False])
def test_chase_follows_a_ring_back_to_its_head(vm, monkeypatch, compiled):
    if not compiled:
        monkeypatch.setattr(vector, "_vector", None)
    nodes, closed = vm.chase(B, 8, ~3)
    assert closed and nodes.tolist() == [B + 0x100 * k for k in range(1, 5)]
    nodes, closed = vm.chase(A + 8, 8, ~0)         # words, not pointers: stops, not loops
    assert not closed


@pytest.mark.parametrize("piece", [1, 2, 3, 4, 5])
def test_a_chase_in_pieces_finds_what_one_piece_does(vm, monkeypatch, piece):
    """The compiled chase takes CHASE_PIECE nodes at a time, each piece going on from
    the last node found: the ring and its end are the same whatever the piece's size."""
    monkeypatch.setattr(vector, "CHASE_PIECE", piece)
    nodes, closed = vm.chase(B, 8, ~3)
    assert closed and nodes.tolist() == [B + 0x100 * k for k in range(1, 5)]
    nodes, closed = vm.chase(B, 8, ~3, limit=3)
    assert not closed and nodes.tolist() == [B + 0x100 * k for k in range(1, 4)]
    nodes, closed = vm.chase(A + 8, 8, ~0)
    assert not closed


def _entries(code):
    """(instruction offset // 2, line) for every code unit, from dis's positions."""
    return [(i, pos[0]) for i, pos in enumerate(code.co_positions())]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the location table is 3.11's")
def test_location_table_against_the_interpreter():
    src = "def f(a):\n    x = a + 1\n\n    if x:\n        return [x,\n                a]\n" \
          "    return None\n"
    ns = {}
    exec(compile(src, "<t>", "exec"), ns)
    code = ns["f"].__code__
    for unit, line in _entries(code):
        got = linetable.addr2line_311(code.co_linetable, code.co_firstlineno, unit * 2)
        assert got == (line if line is not None else -1) or line is None, (unit, got, line)


def test_lnotab_of_38():
    # Lines 10 (bytes 0-5), 12 (6-13), 11 (14-): (addr delta, line delta) pairs.
    lnotab = bytes([6, 2, 8, 255])
    assert [linetable.addr2line_lnotab(lnotab, 10, a) for a in (0, 5, 6, 13, 14, 40)] == \
        [10, 10, 12, 12, 11, 11]


def test_linetable_of_310():
    # (start delta, line delta) ranges: 0-8 line 5, 8-20 no line (-128), 20-30 line 7.
    table = bytes([8, 0, 12, 128, 10, 2])
    got = [linetable.addr2line_310(table, 5, a) for a in (0, 7, 8, 19, 20, 29)]
    assert got[:2] == [5, 5] and got[4:] == [7, 7] and got[2] == got[3] == -1
