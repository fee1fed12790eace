"""Stream a HeapGraph out as a Chrome DevTools .heapsnapshot (JSON), in bounded memory.

Layout and mapping: docs/formats.md. DevTools keeps node fields in a
Uint32Array, so an id cannot be a 47-bit address; it is derived from it
(HeapGraph.snapshot_ids): even, stable across cores of one process, and any
id seen in DevTools opens in nsdebug with `inspect @<id>`.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import NsdebugError
from ..escape import printable_all
from .graph import _graphc
from .referents import ELEMENT, HIDDEN, INTERNAL, KEY_TEXT_LIMIT, PROPERTY, WEAK
from .string_table import StringTable
from .strtext import of_builtin_kind, str_key_texts, str_reach, str_texts
from .vec import distinct, of_types

REDACTED = "<redacted>"

NODE_TYPES = ["hidden", "array", "string", "object", "code", "closure", "regexp", "number",
              "native", "synthetic", "concatenated string", "sliced string", "symbol",
              "bigint", "object shape"]
EDGE_TYPES = ["context", "element", "property", "internal", "hidden", "shortcut", "weak"]
NODE_FIELDS = ["type", "name", "id", "self_size", "edge_count", "trace_node_id",
               "detachedness"]
EDGE_FIELDS = ["type", "name_or_index", "to_node"]
N_HIDDEN, N_STRING, N_OBJECT, N_CODE, N_CLOSURE, N_NUMBER, N_NATIVE, N_SYNTHETIC = \
    0, 2, 3, 4, 5, 7, 8, 9
E_INTERNAL = 3
KIND_TO_EDGE = {ELEMENT: 1, PROPERTY: 2, INTERNAL: 3, HIDDEN: 4, WEAK: 6}
NUMBER_KINDS = ("int", "bool", "float", "complex")
MAX_NAME = 1000
CHUNK = 1 << 16


def _meta():
    return {
        "node_fields": NODE_FIELDS,
        "node_types": [NODE_TYPES, "string", "number", "number", "number", "number", "number"],
        "edge_fields": EDGE_FIELDS,
        "edge_types": [EDGE_TYPES, "string_or_number", "node"],
        "trace_function_info_fields": ["function_id", "name", "script_name", "script_id",
                                       "line", "column"],
        "trace_node_fields": ["id", "function_info_index", "count", "size", "children"],
        "sample_fields": ["timestamp_us", "last_assigned_id"],
        "location_fields": ["object_index", "script_id", "line", "column"],
    }


def node_columns(g, objects, strings, vm=None, hide=None):
    """(node type, name string index) per node, vectorized by type where names are shared;
    str values read in bulk from the mapped core (vm) where it can. Nodes in `hide` are
    named <redacted>: their values are not read at all."""
    # Objects named by their type: one string per type. (Columns as narrow as their
    # values: each is as long as the nodes, and new memory is slow to come by.)
    kinds = [t.kind for t in g.types]
    per_type_type = np.array([N_CLOSURE if k == "function" else N_CODE if k == "code"
                              else N_NUMBER if k in NUMBER_KINDS else N_STRING if k == "str"
                              else N_OBJECT for k in kinds] + [N_HIDDEN], dtype=np.int8)
    per_type_name = np.array([strings.add(t.qualname) for t in g.types] +
                             [strings.add("<invalid>")], dtype=np.int32)
    tix = np.where(g.type_ix < 0, len(g.types), g.type_ix)
    ntype = per_type_type[tix]
    name = per_type_name[tix]
    del tix
    for i in range(g.n_synth):
        ntype[i] = N_SYNTHETIC
        name[i] = strings.add(g.synth_names[i])
    # Strings, numbers, functions and code are named by their value or qualified name.
    valued = [i for i, k in enumerate(kinds) if k in ("str", "function", "code") or
              k in NUMBER_KINDS]
    idx = np.nonzero(of_types(g.type_ix, valued, len(g.types)))[0]
    if hide is not None and len(hide):
        idx = np.setdiff1d(idx, hide)
        name[hide] = strings.add(REDACTED)
    texts = np.full(len(idx), None, dtype=object)   # filled by kind, in bulk

    def into(sel):
        """put(at, made) for per_window: the texts made for sel's nodes at positions
        `at` of them, put in place (a capture's come a window at a time, in its order)."""
        where = np.flatnonzero(sel)

        def put(at, made):
            column = np.empty(len(made), dtype=object)
            column[:] = made                            # str objects, not a str array
            texts[where[at]] = column
        return put
    if vm is not None:
        # Strings and the qualified names of functions, in bulk from the core. Each
        # node's kind by a lookup of its type (a column of kind names, compared as
        # objects, took 0.5 s for the 14.4M-object core's 5.5M valued nodes).
        valued_types = g.type_ix[idx]

        def of_kind(kind):
            return of_types(valued_types, [i for i, k in enumerate(kinds) if k == kind],
                            len(kinds))
        # Each read near an address it is given (per_window: a capture's are served a
        # window of its core at a time).
        is_str = of_kind("str")                # str subclasses are not compact: per object
        L = objects.L
        _str_texts(vm, L, g.addr[idx[is_str]], MAX_NAME, into(is_str))
        for kind, off in (("function", L.function.func_qualname),
                          ("code", L.code.co_qualname or L.code.co_name)):
            sel = of_kind(kind)
            if sel.any() and off is not None:
                qual, ok = vm.per_window(g.addr[idx[sel]], off + 8,
                                         lambda v, a: v.u64(a + np.uint64(off)))
                _str_texts(vm, L, np.where(ok, qual, 0), 200, into(sel))
        heap = np.array([t.is_heap for t in g.types] + [False])[valued_types]
        sel = of_kind("int") & ~heap            # IntEnum members and such: by preview
        if sel.any():
            vm.per_window(g.addr[idx[sel]], _int_reach(objects),
                          lambda v, a: _small_ints(v, objects, a), into(sel))
    for k in np.nonzero(np.equal(texts, None))[0].tolist():
        i = int(idx[k])
        texts[k] = _value_name(objects, g, i, kinds[int(g.type_ix[i])])
    name[idx] = strings.add_all(texts)
    return ntype, name


def _key_texts(g, objects, vm, keys):
    """The text naming each dict entry by its key object (Referents.key_name): str keys
    and small int keys read in bulk from the core, others one by one."""
    keys = np.asarray(keys, dtype=np.uint64)
    if vm is None:
        return [g.key_text(a) for a in keys.tolist()]
    reach = max(str_reach(objects.L, KEY_TEXT_LIMIT), _int_reach(objects))
    texts = vm.per_window(keys, reach, lambda v, a: _bulk_key_texts(g, objects, v, a))
    return [t if t is not None else g.key_text(a) for t, a in zip(texts, keys.tolist())]


def _bulk_key_texts(g, objects, vm, keys):
    """_key_texts' reads in bulk: str keys and small int keys; None for the others."""
    texts = str_key_texts(vm, objects.L, g.types, keys, KEY_TEXT_LIMIT)
    rest = np.array([k for k, t in enumerate(texts) if t is None], dtype=np.int64)
    if len(rest):
        sel = rest[of_builtin_kind(vm, objects.L, g.types, keys[rest], "int")]
        for k, t in zip(sel.tolist(), _small_ints(vm, objects, keys[sel])):
            texts[k] = t
    return texts


def _str_texts(vm, layout, addrs, limit, put=None):
    """str_texts(), a window of the core at a time where vm reads so (per_window)."""
    return vm.per_window(addrs, str_reach(layout, limit),
                         lambda v, a: str_texts(v, layout, a, limit), put)


def _int_reach(o):
    """How far past an int's address _small_ints reads: to its second digit (the size
    or tag it reads first lies before the digits)."""
    return o.L.long.ob_digit + 8


def _small_ints(vm, o, addrs):
    """repr() of ints of at most two 30-bit digits, read in bulk; None for the others."""
    L = o.L
    if o.version >= (3, 12):
        tag, ok = vm.u64(addrs + np.uint64(L.long.lv_tag))
        ndigits = (tag >> np.uint64(3)).astype(np.int64)
        sign = 1 - (tag & np.uint64(3)).astype(np.int64)         # 3.12: 0 +, 1 zero, 2 -
    else:
        size, ok = vm.i64(addrs + np.uint64(o.ob_size_offset))
        ndigits, sign = np.abs(size), np.sign(size)
    d0, ok0 = vm.u32(addrs + np.uint64(L.long.ob_digit))
    d1, ok1 = vm.u32(addrs + np.uint64(L.long.ob_digit + 4))
    value = (d0.astype(np.int64) & 0x3FFFFFFF) + \
        np.where(ndigits > 1, (d1.astype(np.int64) & 0x3FFFFFFF) << 30, 0)
    good = ok & ok0 & (ndigits <= 2) & (ok1 | (ndigits <= 1)) & (np.abs(sign) <= 1)
    value = np.where(ndigits == 0, 0, value) * np.where(sign < 0, -1, 1)
    return [str(v) if g else None for v, g in zip(value.tolist(), good.tolist())]


def _value_name(o, g, i, kind):
    addr = int(g.addr[i])
    try:
        if kind == "str":
            return o.read_str(addr, MAX_NAME)
        if kind == "function":
            return o.read_str(o.ptr(addr + o.L.function.func_qualname), 200)
        if kind == "code":
            return o.code_names(addr)[1]
        return o.preview(addr)[:MAX_NAME]
    except NsdebugError:
        return g.type_name(i)


def secret_values(g):
    """Nodes whose value must not be shown: strings and numbers held under a key, an
    attribute or a local whose name looks secret (token, password, key...), directly
    or as the items of a container held so."""
    from ..cpython.environment import is_secret
    kinds = np.array([t.kind for t in g.types] + ["<invalid>"], dtype=object)
    valued = np.array([k == "str" or k in NUMBER_KINDS for k in kinds], dtype=bool)
    node_valued = valued[g.type_ix.astype(np.int64)]
    node_valued[:g.n_synth] = False
    e_kind, e_name = g.e_kind, g.e_name.astype(np.int64)
    named = ~_numeric(e_kind)
    secret = np.zeros(len(g.e_to), dtype=bool)
    plain = named & (e_name >= 0)
    secret_name = np.array([is_secret(n) for n in g.names] + [False], dtype=bool)
    secret[plain] = secret_name[e_name[plain]]
    lazy = np.nonzero(named & (e_name < 0))[0]
    if len(lazy):
        refs, inv = np.unique(-e_name[lazy] - 1, return_inverse=True)
        key_secret = np.array([is_secret(g.key_text(int(g.key_refs[r]))) for r in refs],
                              dtype=bool)
        secret[lazy] = key_secret[inv]
    held = distinct(g.e_to[secret])
    # One level into containers: a list of tokens, a dict of passwords.
    inner = [g.e_to[g.edge_start[c]:g.edge_start[c + 1]] for c in held[~node_valued[held]]]
    nodes = distinct(np.concatenate([held] + inner)) if inner else held
    return nodes[node_valued[nodes]]


def write_snapshot(g, objects, out, progress=None, vm=None, redact=False):
    """Write the snapshot to a text file object; returns (node count, edge count).
    vm: the core read in bulk (corefile.vector.VectorMemory, or a capture's
    corefile.windows.WindowedMemory), or a function giving it, called only once the
    pass over the edges that needs no byte of the core is made.
    redact: str and number values held under a name that looks secret are replaced.
    The node and edge rows are made a chunk at a time as they are written: no column
    as long as the edges is made (at 48M objects each was 600 MB-1.2 GB of new memory)."""
    hide = secret_values(g) if redact else None
    refs = _used_key_refs(g)
    if callable(vm):
        vm = vm()
    # The strings are added in the file's order of first use (nodes, then edges).
    strings = StringTable()
    ntype, name = node_columns(g, objects, strings, vm, hide)
    # Dict entries named by their key object: read each distinct key's text once.
    key_texts = _key_texts(g, objects, vm, g.key_refs[refs]) if len(refs) else []
    if vm is not None:
        vm.release()    # the core is read: a capture's copy's pages go to the file's
    names = _EdgeNames(g, strings, refs, key_texts)
    native = _Natives(g, strings)
    n, m = g.n + native.count, len(g.e_to) + native.count
    header = {"snapshot": {"meta": _meta(), "node_count": n, "edge_count": m,
                           "trace_function_count": 0}}
    out.write('{"snapshot":' + json.dumps(header["snapshot"], separators=(",", ":")))
    out.write(',\n"nodes":[')
    _write_rows(out, _node_rows(g, ntype, name, native), progress, 0)
    out.write('],\n"edges":[')
    _write_rows(out, _edge_rows(g, names, native), progress, n)
    out.write('],\n"trace_function_infos":[],\n"trace_tree":[],\n"samples":[],\n'
              '"locations":[],\n"strings":[')
    for k in range(0, len(strings.strings), CHUNK):
        # One encoder call per chunk: a list's JSON, its brackets cut off.
        part = printable_all(strings.strings[k:k + CHUNK])
        text = json.dumps(part, separators=(",\n", ":"))
        out.write(("," if k else "") + text[1:-1])
    out.write("]}\n")
    return n, m


def _edge_chunks(g):
    """(start, e_kind, e_name as int64) of the edges, CHUNK at a time."""
    for k in range(0, max(len(g.e_to), 1), CHUNK):   # once at least: see _edge_rows
        yield k, g.e_kind[k:k + CHUNK], g.e_name[k:k + CHUNK].astype(np.int64)


def _used_key_refs(g):
    """The key_refs (sorted) that name an edge: dict entries named by their key object,
    e_name -k-1 for key_refs[k]."""
    used = np.zeros(len(g.key_refs), dtype=bool)
    for _, kind, name in _edge_chunks(g):
        lazy = ~_numeric(kind) & (name < 0)
        used[-name[lazy] - 1] = True
    return np.flatnonzero(used)


def _numeric(kind):
    """Edges named by a number (DevTools' element and hidden edges), not a string."""
    return (kind == ELEMENT) | (kind == HIDDEN)


class _EdgeNames:
    """What an edge's name_or_index is: a position for element edges and for hidden ones
    (their own index), else a string index: of the graph's name (graph), of the key's
    text (keys, per key_refs), or, for the weak edges of (Unreachable), of the position
    written as a string (weak, per edge of its range lo:hi). Made with the texts of the
    keys `refs` (_used_key_refs), their strings added in the file's order: the graph's
    names, the keys' texts, the weak edges' positions."""

    def __init__(self, g, strings, refs, key_texts):
        self.graph = np.array([strings.add(s) for s in g.names] or [0], dtype=np.int64)
        self.keys = np.zeros(len(g.key_refs), dtype=np.int64)
        if len(refs):
            self.keys[refs] = strings.add_all(key_texts)
        # (Unreachable) holds its objects by weak edges, and DevTools wants a weak edge
        # named by a string: a numeric one is named by its position.
        ug = g.synth_names.index("(Unreachable)")
        lo, hi = self.lo, self.hi = int(g.edge_start[ug]), int(g.edge_start[ug + 1])
        kind = g.e_kind[lo:hi]
        position = self.numbers(lo, kind, g.e_name[lo:hi].astype(np.int64))
        numeric = _numeric(kind)
        self.weak = np.zeros(hi - lo, dtype=np.int64)
        self.weak[numeric] = [strings.add(str(x)) for x in position[numeric].tolist()]

    def numbers(self, start, kind, name):
        """name with each hidden edge's name made its own index (start: the first's)."""
        hidden = np.flatnonzero(kind == HIDDEN)
        name[hidden] = start + hidden
        return name

    def of(self, start, kind, name):
        """name_or_index of the edges from index start on (kind, name: their columns)."""
        name = self.numbers(start, kind, name)
        numeric = _numeric(kind)
        named = np.flatnonzero(~numeric & (name >= 0))
        lazy = np.flatnonzero(~numeric & (name < 0))
        name[named] = self.graph[name[named]]
        name[lazy] = self.keys[-name[lazy] - 1]
        lo, hi = max(self.lo - start, 0), min(self.hi - start, len(name))
        if lo < hi:
            weak = numeric[lo:hi]
            name[lo:hi][weak] = self.weak[start + lo - self.lo:start + hi - self.lo][weak]
        return name


class _Natives:
    """Buffers and native blocks as DevTools shows an ArrayBuffer's backing store: a
    native node of their size after the objects, held by its owner through an internal
    edge written after the owner's own, the owner's own size less it (so Summary,
    Retainers and `objects` agree). Sorted by owner (stably)."""

    def __init__(self, g, strings):
        b = g.buffers
        self.count = nb = len(b["node"])
        order = np.argsort(b["node"].astype(np.int64), kind="stable")
        self.owners = b["node"].astype(np.int64)[order]
        self.bytes = b["bytes"].astype(np.int64)[order]
        self.node = g.n + order                     # each one's node, by owner
        self.at = g.edge_start[self.owners + 1]
        from .buffers import KINDS
        kind_name = np.array([strings.add(k) for k in KINDS], np.int64) if nb else None
        self.backing = strings.add("backing_store") if nb else 0
        ids = g.snapshot_ids()
        first = int(ids.max()) + 2 if len(ids) else 2
        self.rows = np.zeros((nb, len(NODE_FIELDS)), dtype=np.int64)   # in b's order
        if nb:
            self.rows[:, 0] = N_NATIVE
            self.rows[:, 1] = kind_name[b["kind"].astype(np.int64)]
            self.rows[:, 2] = first + 2 * np.arange(nb, dtype=np.int64)
            self.rows[:, 3] = b["bytes"].astype(np.int64)

    def owned(self, lo, hi):
        """The slice of (owners, bytes, node, at) owned by nodes lo:hi."""
        return slice(*np.searchsorted(self.owners, [lo, hi]).tolist())


def _node_rows(g, ntype, name, native):
    """The node rows, CHUNK at a time, then the native nodes'."""
    ids = g.snapshot_ids()
    for k in range(0, g.n, CHUNK):
        e = min(k + CHUNK, g.n)
        rows = np.zeros((e - k, len(NODE_FIELDS)), dtype=np.int64)
        rows[:, 0] = ntype[k:e]
        rows[:, 1] = name[k:e]
        rows[:, 2] = ids[k:e]
        rows[:, 3] = g.size[k:e]
        rows[:, 4] = np.diff(g.edge_start[k:e + 1])
        mine = native.owned(k, e)
        owners = native.owners[mine] - k
        np.subtract.at(rows[:, 3], owners, native.bytes[mine])
        np.maximum(rows[:, 3], 0, out=rows[:, 3])
        np.add.at(rows[:, 4], owners, 1)
        yield rows
    if native.count:
        yield native.rows


def _edge_rows(g, names, native):
    """The edge rows, CHUNK at a time, each owner's backing-store edges after its own."""
    types = np.array([KIND_TO_EDGE.get(k, 3) for k in range(8)], dtype=np.int64)
    m, width = len(g.e_to), len(NODE_FIELDS)
    for k, kind, name in _edge_chunks(g):
        e = k + len(kind)
        rows = np.empty((e - k, len(EDGE_FIELDS)), dtype=np.int64)
        rows[:, 0] = types[kind]
        rows[max(names.lo - k, 0):max(names.hi - k, 0), 0] = 6
        rows[:, 1] = names.of(k, kind, name)
        np.multiply(g.e_to[k:e], width, out=rows[:, 2], dtype=np.int64)
        # A backing edge goes before edge `at` (the first after its owner's), as
        # np.insert puts it; those at the very end, after the last chunk's rows.
        mine = slice(*np.searchsorted(native.at, [k, e] if e < m else [k, m + 1],
                                      side="left").tolist())
        if mine.start < mine.stop:
            extra = np.empty((mine.stop - mine.start, len(EDGE_FIELDS)), dtype=np.int64)
            extra[:, 0] = E_INTERNAL
            extra[:, 1] = native.backing
            extra[:, 2] = native.node[mine] * width
            rows = np.insert(rows, native.at[mine] - k, extra, axis=0)
        yield rows


def _write_rows(out, blocks, progress, done):
    """Rows given a block at a time (2-D int64 arrays), written as JSON numbers (never
    the whole table as one array: at millions of nodes that was hundreds of MB)."""
    write = _bytes_writer(out)
    first = True
    for rows in blocks:
        if not first:
            write(b",\n")                    # a row a line, as in each block
        if _graphc is not None:
            write(_graphc.format_rows(rows, rows.shape[1]))
        else:
            write(",\n".join(",".join(map(str, r)) for r in rows.tolist()).encode("ascii"))
        first = False
        done += len(rows)
        if progress:
            progress(done)


def _bytes_writer(out):
    """A function writing ASCII bytes to the text file `out`: to its binary buffer
    where it has one (its pending text flushed first), not decoded, joined and encoded
    again (at 48M objects the rows are 4 GB of text)."""
    raw = getattr(out, "buffer", None)
    if raw is None:
        return lambda data: out.write(data.decode("ascii"))
    out.flush()
    return raw.write
