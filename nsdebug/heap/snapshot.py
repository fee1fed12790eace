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
    n = g.n
    ntype = np.full(n, N_OBJECT, dtype=np.int64)
    name = np.zeros(n, dtype=np.int64)
    # Objects named by their type: one string per type.
    kinds = [t.kind for t in g.types]
    per_type_type = np.array([N_CLOSURE if k == "function" else N_CODE if k == "code"
                              else N_NUMBER if k in NUMBER_KINDS else N_STRING if k == "str"
                              else N_OBJECT for k in kinds] + [N_HIDDEN], dtype=np.int64)
    per_type_name = np.array([strings.add(t.qualname) for t in g.types] +
                             [strings.add("<invalid>")], dtype=np.int64)
    tix = g.type_ix.astype(np.int64)
    tix = np.where(tix < 0, len(g.types), tix)
    ntype[:] = per_type_type[tix]
    name[:] = per_type_name[tix]
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

    def fill(sel, made):
        column = np.empty(len(made), dtype=object)
        column[:] = made                                # str objects, not a str array
        texts[np.nonzero(sel)[0]] = column
    if vm is not None:
        # Strings and the qualified names of functions, in bulk from the core.
        kind_of = np.array(kinds + ["<invalid>"], dtype=object)[g.type_ix[idx]]
        # Each read near an address it is given (per_window: a capture's are served a
        # window of its core at a time).
        is_str = kind_of == "str"          # str subclasses are not compact: per object
        L = objects.L
        fill(is_str, _str_texts(vm, L, g.addr[idx[is_str]], MAX_NAME))
        for kind, off in (("function", L.function.func_qualname),
                          ("code", L.code.co_qualname or L.code.co_name)):
            sel = kind_of == kind
            if sel.any() and off is not None:
                qual, ok = vm.per_window(g.addr[idx[sel]], off + 8,
                                         lambda v, a: v.u64(a + np.uint64(off)))
                fill(sel, _str_texts(vm, L, np.where(ok, qual, 0), 200))
        heap = np.array([t.is_heap for t in g.types] + [False])[g.type_ix[idx]]
        sel = (kind_of == "int") & ~heap        # IntEnum members and such: by preview
        if sel.any():
            fill(sel, vm.per_window(g.addr[idx[sel]], _int_reach(objects),
                                    lambda v, a: _small_ints(v, objects, a)))
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


def _str_texts(vm, layout, addrs, limit):
    """str_texts(), a window of the core at a time where vm reads so."""
    return vm.per_window(addrs, str_reach(layout, limit),
                         lambda v, a: str_texts(v, layout, a, limit))


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


def write_snapshot(g, objects, out, progress=None, vm=None, redact=False):
    """Write the snapshot to a text file object; returns (node count, edge count).
    vm: the core read in bulk (corefile.vector.VectorMemory, or a capture's
    corefile.windows.WindowedMemory), or a function giving it, called only once the
    columns that need no byte of the core are made.
    redact: str and number values held under a name that looks secret are replaced."""
    hide = secret_values(g) if redact else None
    cols = _plain_columns(g)
    if callable(vm):
        vm = vm()
    # The strings are added in the file's order of first use (nodes, then edges).
    strings = StringTable()
    ntype, name = node_columns(g, objects, strings, vm, hide)
    n, m = g.n, len(g.e_to)
    graph_name_to_string = np.array([strings.add(s) for s in g.names] or [0], dtype=np.int64)
    it, e_name, numeric = cols["it"], cols["e_name"], cols["numeric"]
    named = ~numeric & (e_name >= 0)
    ename = np.where(numeric, e_name, graph_name_to_string.astype(it)[np.where(named, e_name,
                                                                                 0)])
    lazy = cols["lazy"]
    if lazy is not None:
        # Dict entries named by their key object: read each distinct key's text once.
        refs, inv = cols["key_refs"]
        texts = np.array(strings.add_all(_key_texts(g, objects, vm, g.key_refs[refs])),
                         dtype=np.int64)
        ename[lazy] = texts[inv]
    if vm is not None:
        vm.release()    # the core is read: a capture's copy's pages go to the file's
    weak_named = cols["weak_named"]
    if weak_named.any():
        # Weak edges carry string names: name the unreachable by position.
        ename[weak_named] = [strings.add(str(int(x))) for x in e_name[weak_named]]
    etype, to, ids, size, counts = (cols[k] for k in ("etype", "to", "ids", "size",
                                                       "counts"))
    b = g.buffers
    nb = len(b["node"])
    if nb:
        from .buffers import KINDS
        ntype = np.concatenate([ntype, np.full(nb, N_NATIVE, np.int64)])
        kind_name = np.array([strings.add(k) for k in KINDS], np.int64)
        name = np.concatenate([name, kind_name[b["kind"].astype(np.int64)]])
        ename = np.insert(ename, cols["backing_at"], strings.add("backing_store"))
        n, m = n + nb, m + nb
    header = {"snapshot": {"meta": _meta(), "node_count": n, "edge_count": m,
                           "trace_function_count": 0}}
    out.write('{"snapshot":' + json.dumps(header["snapshot"], separators=(",", ":")))
    out.write(',\n"nodes":[')
    zeros = np.zeros(n, dtype=np.int64)
    _write_rows(out, [ntype, name, ids, size, counts, zeros, zeros], progress, 0)
    out.write('],\n"edges":[')
    to_row = to * np.int32(len(NODE_FIELDS)) if n * len(NODE_FIELDS) < 1 << 31 else \
        to.astype(np.int64) * len(NODE_FIELDS)
    _write_rows(out, [etype, ename, to_row], progress, n)
    out.write('],\n"trace_function_infos":[],\n"trace_tree":[],\n"samples":[],\n'
              '"locations":[],\n"strings":[')
    for k in range(0, len(strings.strings), CHUNK):
        # One encoder call per chunk: a list's JSON, its brackets cut off.
        part = printable_all(strings.strings[k:k + CHUNK])
        text = json.dumps(part, separators=(",\n", ":"))
        out.write(("," if k else "") + text[1:-1])
    out.write("]}\n")
    return n, m


def _plain_columns(g):
    """The snapshot's columns (and the parts of columns) that need neither a string of
    the table nor a byte of the core: node ids, sizes and edge counts; edge types,
    targets and the edges named by number or by key; the native nodes' rows."""
    m = len(g.e_to)
    ids = g.snapshot_ids().astype(np.int64)
    counts = np.diff(g.edge_start)
    # Edge columns in 32 bits where the values fit (each 64-bit column of a heap of
    # millions of edges is tens of MB more to fill); _write_rows widens a chunk at a time.
    it = np.int32 if m < 1 << 31 and len(g.names) < 1 << 30 else np.int64
    # (Unreachable) holds its objects by weak edges: kept in the file, not retained by root.
    e_kind = g.e_kind
    etype = np.array([KIND_TO_EDGE.get(k, 3) for k in range(8)], dtype=np.int8)[e_kind]
    ug = g.synth_names.index("(Unreachable)")
    lo, hi = int(g.edge_start[ug]), int(g.edge_start[ug + 1])
    etype[lo:hi] = 6
    numeric = (e_kind == ELEMENT) | (e_kind == HIDDEN)
    hidden = e_kind == HIDDEN
    e_name = np.where(hidden, np.arange(m, dtype=it), g.e_name.astype(it, copy=False))
    lazy = ~numeric & (e_name < 0)
    key_refs = None
    if lazy.any():
        key_refs = np.unique(-e_name[lazy] - 1, return_inverse=True)
    else:
        lazy = None
    cols = {"it": it, "e_name": e_name, "numeric": numeric, "lazy": lazy,
            "key_refs": key_refs, "weak_named": (etype == 6) & numeric}
    # Buffers and native blocks as DevTools shows an ArrayBuffer's backing store: a
    # native node of their size, held by its owner through an internal edge, the
    # owner's own size less it (so Summary, Retainers and `objects` agree).
    size, to = g.size.astype(np.int64), g.e_to
    b = g.buffers
    nb = len(b["node"])
    if nb:
        n = g.n
        owners = b["node"].astype(np.int64)
        nbytes = b["bytes"].astype(np.int64)
        size = size.copy()
        np.subtract.at(size, owners, nbytes)
        size = np.concatenate([np.maximum(size, 0), nbytes])
        ids = np.concatenate([ids, int(ids.max()) + 2 + 2 * np.arange(nb, dtype=np.int64)])
        counts = counts.copy()
        np.add.at(counts, owners, 1)
        counts = np.concatenate([counts, np.zeros(nb, counts.dtype)])
        order = np.argsort(owners, kind="stable")
        at = g.edge_start[owners[order] + 1]
        etype = np.insert(etype, at, E_INTERNAL)
        to = np.insert(to.astype(np.int64), at, n + order)
        cols["backing_at"] = at
    cols.update(etype=etype, to=to, ids=ids, size=size, counts=counts)
    return cols


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
    named = ~np.isin(e_kind, (ELEMENT, HIDDEN))
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


def _write_rows(out, columns, progress, done):
    """The rows of equal-length columns, a chunk at a time (never the whole table as
    one array: at millions of nodes that was hundreds of MB and a third of the time)."""
    total = len(columns[0])
    for k in range(0, total, CHUNK):
        rows = np.empty((min(CHUNK, total - k), len(columns)), dtype=np.int64)
        for c, col in enumerate(columns):
            rows[:, c] = col[k:k + CHUNK]
        if _graphc is not None:
            text = _graphc.format_rows(rows, rows.shape[1]).decode("ascii")
        else:
            text = ",\n".join(",".join(map(str, r)) for r in rows.tolist())
        out.write(("," if k else "") + text)
        if progress:
            progress(done + k + len(rows))
