"""CPython objects laid out here in memory, field by field from each version's layout table
(the tables nsdebug ships), and read back by the object model: types, str, int, float,
tuple, list, None and bool, their previews and sizes, and garbage where an object should
be. Then the layout tables' own checks (a field no table has is an error)."""

import struct

import pytest

from nsdebug.corefile.memory import AddressSpace, Segment
from nsdebug.cpython import flags, layouts
from nsdebug.cpython.objects import InvalidObject, ObjectReader, Preview
from nsdebug.cpython.sizes import SizeOf
from nsdebug.errors import FaultError

pytestmark = pytest.mark.unit

BASE = 0x7F0000000000
VERSIONS = [(3, 8), (3, 10), (3, 11), (3, 12), (3, 13), (3, 14), (3, 15)]


class BytesSource:
    buffer = None

    def __init__(self, data):
        self.data = data
        self.size = len(data)

    def read(self, offset, size):
        return bytes(self.data[offset:offset + size])


class Memory:
    """Objects placed one after another (16-aligned) at BASE, written through the
    layout L of one version."""

    def __init__(self, layout):
        self.L = layout
        self.buf = bytearray(1 << 16)
        self.at = 0x100
        self.types = {}

    def alloc(self, size):
        self.at = (self.at + 15) & ~15
        addr = BASE + self.at
        self.at += size
        return addr

    def put(self, addr, fmt, *values):
        struct.pack_into("<" + fmt, self.buf, addr - BASE, *values)

    def cstr(self, text):
        addr = self.alloc(len(text) + 1)
        self.buf[addr - BASE:addr - BASE + len(text)] = text.encode()
        return addr

    def head(self, addr, tp, refcnt=1):
        self.put(addr, "q", refcnt)
        self.put(addr + (self.L.object.ob_type or 8), "Q", tp)

    def type(self, name, tpflags, basicsize=16, itemsize=0):
        T = self.L.type
        addr = self.alloc(T.size)
        self.head(addr, addr)
        self.put(addr + T.tp_name, "Q", self.cstr(name))
        self.put(addr + T.tp_flags, "Q", tpflags | flags.TPFLAGS_READY)
        self.put(addr + T.tp_basicsize, "q", basicsize)
        self.put(addr + T.tp_itemsize, "q", itemsize)
        self.types[name] = addr
        return addr

    def builtins(self):
        L = self.L
        self.type("str", flags.TPFLAGS_UNICODE_SUBCLASS, L.ascii.size, 1)
        self.type("int", flags.TPFLAGS_LONG_SUBCLASS, L.long.ob_digit, 4)
        self.type("tuple", flags.TPFLAGS_TUPLE_SUBCLASS | flags.TPFLAGS_HAVE_GC,
                  L.tuple.ob_item, 8)
        self.type("list", flags.TPFLAGS_LIST_SUBCLASS | flags.TPFLAGS_HAVE_GC, L.list.size)
        self.type("float", 0, L.float.size)
        self.type("NoneType", 0)
        self.type("bool", flags.TPFLAGS_LONG_SUBCLASS, L.long.ob_digit, 4)

    def str(self, text):
        A = self.L.ascii
        addr = self.alloc(A.size + len(text) + 1)
        self.head(addr, self.types["str"])
        state = (1 << 2) | (1 << 5) | (1 << 6) | (1 << 7)    # 1-byte, compact, ascii, ready
        self.put(addr + A.length, "q", len(text))
        self.put(addr + A.state, "I", state)
        self.buf[addr - BASE + A.size:addr - BASE + A.size + len(text)] = text.encode()
        return addr

    def int(self, value):
        digits = []
        v = abs(value)
        while v:
            digits.append(v & ((1 << 30) - 1))
            v >>= 30
        L = self.L
        addr = self.alloc(L.long.ob_digit + 4 * max(len(digits), 1))
        self.head(addr, self.types["int"])
        if L.long.lv_tag is not None:                      # 3.12+: digits << 3 | sign
            sign = 1 if value == 0 else 0 if value > 0 else 2
            self.put(addr + L.long.lv_tag, "Q", len(digits) << 3 | sign)
        else:
            self.put(addr + L.varobject.ob_size, "q", len(digits) * (-1 if value < 0 else 1))
        for i, d in enumerate(digits):
            self.put(addr + L.long.ob_digit + 4 * i, "I", d)
        return addr

    def float(self, value):
        addr = self.alloc(self.L.float.size)
        self.head(addr, self.types["float"])
        self.put(addr + self.L.float.ob_fval, "d", value)
        return addr

    def tuple(self, items):
        L = self.L
        addr = self.alloc(L.tuple.ob_item + 8 * len(items))
        self.head(addr, self.types["tuple"])
        self.put(addr + L.varobject.ob_size, "q", len(items))
        for i, item in enumerate(items):
            self.put(addr + L.tuple.ob_item + 8 * i, "Q", item)
        return addr

    def list(self, items, allocated=None):
        L = self.L
        addr = self.alloc(L.list.size)
        array = self.alloc(8 * max(len(items), 1))
        self.head(addr, self.types["list"])
        self.put(addr + L.varobject.ob_size, "q", len(items))
        self.put(addr + L.list.ob_item, "Q", array)
        self.put(addr + L.list.allocated, "q", allocated or len(items))
        for i, item in enumerate(items):
            self.put(array + 8 * i, "Q", item)
        return addr

    def single(self, type_name):
        addr = self.alloc(self.L.long.ob_digit + 4 if type_name == "bool" else 16)
        self.head(addr, self.types[type_name])
        if type_name == "bool":
            if self.L.long.lv_tag is not None:
                self.put(addr + self.L.long.lv_tag, "Q", 1 << 3)
            else:
                self.put(addr + self.L.varobject.ob_size, "q", 1)
            self.put(addr + self.L.long.ob_digit, "I", 1)
        return addr

    def reader(self):
        mem = AddressSpace(BytesSource(self.buf), [Segment(BASE, BASE + len(self.buf), 0,
                                                           len(self.buf), "rw-")])
        return ObjectReader(mem, self.L)


def layout(version):
    tables = layouts.candidates(*version)
    if not tables:
        pytest.skip(f"no layout table for {version}")
    return tables[0].layout()


@pytest.fixture(params=VERSIONS, ids=lambda v: f"{v[0]}.{v[1]}")
def heap(request):
    m = Memory(layout(request.param))
    m.builtins()
    return m


def test_types_and_kinds(heap):
    o = heap.reader()
    s = heap.str("hello")
    info = o.info(s)
    assert (info.name, info.kind, info.is_heap) == ("str", "str", False)
    assert o.kind(heap.int(5)) == "int" and o.kind(heap.tuple([])) == "tuple"
    assert o.kind(heap.single("NoneType")) == "none"


def test_scalars_read_back(heap):
    o = heap.reader()
    assert o.read_str(heap.str("widget-42")) == "widget-42"
    assert o.read_str(heap.str("abcdef"), 3) == "abc"
    for v in (0, 7, -7, 2 ** 30, 2 ** 100 + 12345, -(2 ** 64)):
        assert o.read_int(heap.int(v)) == v
    assert o.read_float(heap.float(2.5)) == 2.5


def test_containers_read_back(heap):
    o = heap.reader()
    a, b = heap.int(1), heap.str("two")
    t = heap.tuple([a, b])
    lst = heap.list([t, a], allocated=8)
    assert o.tuple_items(t) == [a, b] and o.list_items(lst) == [t, a]
    assert o.list_items(lst, 1) == [t]


def test_previews_as_repr_shows_them(heap):
    o = heap.reader()
    inner = heap.tuple([heap.int(1), heap.str("x")])
    lst = heap.list([inner, heap.float(0.5), heap.single("NoneType"), heap.single("bool")])
    assert o.preview(lst) == "[(1, 'x'), 0.5, None, True]"
    assert o.preview(heap.tuple([heap.int(3)])) == "(3,)"
    assert o.preview(lst, Preview(depth=1)) == "[(...2 items), 0.5, None, True]"
    long_text = heap.str("y" * 100)
    assert o.preview(long_text, Preview(string=5)) == "'yyyyy'...(+95 chars)"
    many = heap.list([heap.int(i) for i in range(15)])
    assert o.preview(many, Preview(items=3)) == "[0, 1, 2, ...(+12 more)]"


def test_a_list_that_holds_itself_is_shown_once(heap):
    o = heap.reader()
    lst = heap.list([0])
    array = o.ptr(lst + heap.L.list.ob_item)
    heap.put(array, "Q", lst)
    assert o.preview(lst, Preview(depth=5)) == "[[...]]"


def test_sizes_as_getsizeof(heap):
    o = heap.reader()
    L = heap.L
    s = SizeOf(o)
    addr = heap.str("hello")
    assert s.getsizeof(addr, o.info(addr)) == L.ascii.size + 6
    t = heap.tuple([heap.int(1)] * 3)
    pre = L.gchead.size
    assert s.getsizeof(t, o.info(t)) == L.tuple.ob_item + 24 + pre


@pytest.mark.parametrize("damage, why", [
    ("null type", "bad type pointer"),
    ("type not ready", "not a type object"),
    ("type name not text", "not text"),
    ("huge tuple", "tuple with"),
    ("str length", "str with kind"),
])
def test_damage_is_an_invalid_object_never_a_wrong_value(heap, damage, why):
    o = heap.reader()
    L = heap.L
    if damage == "null type":
        addr = heap.alloc(16)
        heap.head(addr, 0)
        call = lambda: o.info(addr)  # noqa: E731
    elif damage == "type not ready":
        tp = heap.type("Broken", 0)
        heap.put(tp + L.type.tp_flags, "Q", 0)
        addr = heap.alloc(16)
        heap.head(addr, tp)
        call = lambda: o.info(addr)  # noqa: E731
    elif damage == "type name not text":
        tp = heap.type("Fine", 0)
        heap.put(tp + L.type.tp_name, "Q", heap.cstr("\x01\x02"))
        addr = heap.alloc(16)
        heap.head(addr, tp)
        call = lambda: o.info(addr)  # noqa: E731
    elif damage == "huge tuple":
        addr = heap.tuple([])
        heap.put(addr + L.varobject.ob_size, "q", 1 << 40)
        call = lambda: o.tuple_items(addr)  # noqa: E731
    else:
        addr = heap.str("abc")
        heap.put(addr + L.ascii.length, "q", -5)
        call = lambda: o.read_str(addr)  # noqa: E731
    with pytest.raises(InvalidObject, match=why):
        call()
    assert o.preview(addr).startswith(f"<invalid {addr:#x}")


def test_pointers_out_of_memory(heap):
    o = heap.reader()
    lst = heap.list([0x1234000])                         # an item nowhere in memory
    assert "<invalid 0x1234000" in o.preview(lst)
    with pytest.raises(FaultError):
        o.info(0x10)


def test_a_misspelt_field_is_an_error_not_an_absent_one():
    L = layout((3, 12))
    assert L.long.lv_tag is not None
    assert layout((3, 11)).long.lv_tag is None          # absent in 3.11: None
    with pytest.raises(AttributeError, match="long.lv_tagg"):
        L.long.lv_tagg
    with pytest.raises(AttributeError, match="no CPython layout table has a struct"):
        L.lnog


def test_candidates_prefer_the_same_release():
    known = [t.version for t in layouts.candidates(3, 13)]
    assert known and all(v[:2] == (3, 13) for v in known)
    best = layouts.candidates(3, 13, known[-1][2])[0]
    assert best.version == known[-1]


def test_debug_offsets_parsed_and_checked():
    table = next((t for t in layouts.candidates(3, 13) if t.debug_offsets), None)
    assert table is not None
    spec = table.debug_offsets
    raw = bytearray(spec["size"])
    struct.pack_into("<8sQQ", raw, 0, layouts.DEBUG_COOKIE, 0x030D00F0, 0)
    for sec, row in spec["sections"].items():
        if sec and "size" in row["fields"]:
            struct.pack_into("<Q", raw, row["at"] + row["fields"]["size"], 64)
    d = layouts.parse_debug_offsets(bytes(raw), spec, table)
    assert d.version == (3, 13, 0) and not d.free_threaded
    assert not d.problems()
    key = ("runtime_state", "size")
    d.values[key] = 1 << 40
    assert any("runtime_state.size" in p for p in d.problems())
    assert layouts.parse_debug_offsets(b"notacookie" + bytes(64), spec) is None
