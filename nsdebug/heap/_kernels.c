/* The heap walk's kernels: CPython structures read from a mapped core, many at once.
 *
 * Each is the compiled form of a numpy expression in nsdebug/heap that the tests compare
 * it with (tests/heap/test_kernels.py): pool_blocks (pymalloc's allocated blocks, in
 * arenas.py), entries and dict_tables (dict entries, keys tables and sizes, in
 * containers.py), str_texts (str text, in strtext.py). They read the core through
 * corefile/_space.h, and none can read outside it, whatever the addresses say.
 */
#include "_space.h"

/* pool_blocks(buf, starts, ends, offs, pools, szidx, nextoff, overhead, pool_size,
 * freeblock_off, bits, probes, out_block, out_bsize) -> count: the allocated blocks of
 * pymalloc pools that hold no object visit() marked. A pool's blocks are those below
 * its high-water mark (nextoffset) that are not on its free list (followed from
 * pool->freeblock, each link checked to be a block of the pool, at most one step per
 * block); a block is left out when the object it would hold, at any of the `probes`
 * offsets (its GC and pre-headers), was visited: one allocation holds one object.
 * out_* hold at least the pools' block count (the caller's bound). */
static PyObject *pool_blocks(PyObject *self, PyObject *args) {
    Py_buffer b[11];
    Py_ssize_t overhead, pool_size, freeblock_off;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*nnny*y*w*w*", &b[0], &b[1], &b[2], &b[3],
                          &b[4], &b[5], &b[6], &overhead, &pool_size, &freeblock_off, &b[7],
                          &b[8], &b[9], &b[10]))
        return NULL;
    PyObject *result = NULL;
    Space s;
    uint8_t *is_free = NULL;
    Py_ssize_t npools = b[4].len / 8, nprobes = b[8].len / 8, cap = b[9].len / 8;
    if (b[5].len / 8 != npools || b[6].len / 8 != npools || b[10].len / 8 < cap ||
        overhead < 0 || pool_size <= overhead || pool_size > (1 << 24) || nprobes > 8 ||
        b[7].len * 128 < b[0].len) {
        PyErr_SetString(PyExc_ValueError, "bad pool arrays or sizes");
        goto done;
    }
    if (!space(&s, &b[0], &b[1], &b[2], &b[3])) goto done;
    const uint64_t *pools = b[4].buf, *probes = b[8].buf;
    const int64_t *szidx = b[5].buf, *nextoff = b[6].buf;
    const uint8_t *bits = b[7].buf;
    uint64_t *out_block = b[9].buf;
    int64_t *out_bsize = b[10].buf;
    Py_ssize_t max_blocks = pool_size / 16 + 1, count = 0;
    int overflow = 0;
    is_free = malloc((size_t)max_blocks);
    if (!is_free) { PyErr_NoMemory(); goto done; }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t p = 0; p < npools && !overflow; p++) {
        uint64_t pool = pools[p];
        int64_t bsize = (szidx[p] + 1) << 4;
        if (szidx[p] < 0 || szidx[p] > 63 || nextoff[p] < 0 || nextoff[p] > pool_size)
            continue;
        int64_t limit = nextoff[p] < pool_size - bsize + 1 ? nextoff[p] : pool_size - bsize + 1;
        int64_t nblocks = (limit - overhead + bsize - 1) / bsize;
        if (nblocks <= 0) continue;
        if (nblocks > max_blocks) nblocks = max_blocks;
        memset(is_free, 0, (size_t)nblocks);
        int64_t o = locate(&s, pool + (uint64_t)freeblock_off, 8);
        uint64_t cur = 0;
        if (o >= 0 && !((pool + (uint64_t)freeblock_off) & 7)) memcpy(&cur, s.buf + o, 8);
        for (int64_t step = 0; step < pool_size / 16 && cur; step++) {
            int64_t off = (int64_t)(cur - pool) - overhead;
            if (cur < pool || off < 0 || off % bsize || off / bsize >= nblocks) break;
            is_free[off / bsize] = 1;
            o = (cur & 7) ? -1 : locate(&s, cur, 8);
            if (o < 0) break;
            memcpy(&cur, s.buf + o, 8);
        }
        for (int64_t j = 0; j < nblocks; j++) {
            if (is_free[j]) continue;
            uint64_t block = pool + (uint64_t)overhead + (uint64_t)(j * bsize);
            int known = 0;
            for (Py_ssize_t k = 0; k < nprobes && !known; k++)
                if ((int64_t)probes[k] + 16 <= bsize && seen_at(&s, bits, block + probes[k]))
                    known = 1;
            if (known) continue;
            if (count == cap) { overflow = 1; break; }
            out_block[count] = block;
            out_bsize[count] = bsize;
            count++;
        }
    }
    Py_END_ALLOW_THREADS
    if (overflow) {
        PyErr_SetString(PyExc_ValueError, "output arrays too small for the pools' blocks");
        goto done;
    }
    result = PyLong_FromSsize_t(count);
done:
    free(is_free);
    for (int i = 0; i < 11; i++) PyBuffer_Release(&b[i]);
    return result;
}

/* entries(buf, starts, ends, offs, src, base, stride, koff, voff, vbase, counts,
 * out_src, out_key, out_val) -> count: the (key, value) pairs of many tables at once
 * (dict entries). Table r has counts[r] entries of stride[r] bytes from base[r]; entry
 * j's key is the word at +koff[r], its value the word at +voff[r], or, when vbase[r]
 * is not 0, the j-th word from vbase[r] (a split table's values). A pair is kept when
 * both words are readable and not NULL, with src[r]. out_* hold sum(counts). */
static PyObject *entries(PyObject *self, PyObject *args) {
    Py_buffer b[14];
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*y*y*y*y*w*w*w*", &b[0], &b[1], &b[2], &b[3],
                          &b[4], &b[5], &b[6], &b[7], &b[8], &b[9], &b[10], &b[11], &b[12],
                          &b[13]))
        return NULL;
    PyObject *result = NULL;
    Space s;
    Py_ssize_t n = b[4].len / 4;
    int ok = b[5].len / 8 == n && b[6].len / 8 == n && b[7].len / 8 == n &&
             b[8].len / 8 == n && b[9].len / 8 == n && b[10].len / 8 == n;
    const int64_t *counts = b[10].buf;
    int64_t total = 0;
    for (Py_ssize_t r = 0; ok && r < n; r++) {
        if (counts[r] < 0 || counts[r] > ((int64_t)1 << 40)) ok = 0;
        else total += counts[r];
    }
    if (!ok || b[11].len / 4 < total || b[12].len / 8 < total || b[13].len / 8 < total) {
        PyErr_SetString(PyExc_ValueError, "entries: arrays of different lengths or too small");
        goto done;
    }
    if (!space(&s, &b[0], &b[1], &b[2], &b[3])) goto done;
    const int32_t *src = b[4].buf;
    const uint64_t *base = b[5].buf, *vbase = b[9].buf;
    const int64_t *stride = b[6].buf, *koff = b[7].buf, *voff = b[8].buf;
    int32_t *out_src = b[11].buf;
    uint64_t *out_key = b[12].buf, *out_val = b[13].buf;
    Py_ssize_t count = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < n; r++) {
        uint64_t e = base[r];
        for (int64_t j = 0; j < counts[r]; j++, e += (uint64_t)stride[r]) {
            uint64_t key = word_at(&s, e + (uint64_t)koff[r]);
            if (!key) continue;
            uint64_t val = word_at(&s, vbase[r] ? vbase[r] + 8 * (uint64_t)j
                                                : e + (uint64_t)voff[r]);
            if (!val) continue;
            out_src[count] = src[r];
            out_key[count] = key;
            out_val[count] = val;
            count++;
        }
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(count);
done:
    for (int i = 0; i < 14; i++) PyBuffer_Release(&b[i]);
    return result;
}

/* Offsets of dict_tables()' layout array (a -1 is a field the version does not have). */
enum { D_MA_KEYS, D_MA_VALUES, K_REFCNT, K_NENTRIES, K_USABLE, K_INDICES, K_LOG2_SIZE,
       K_LOG2_INDEX_BYTES, K_KIND, K_SIZE, K_SIZEOF, DE_SIZE, DE_KEY, DE_VALUE, UE_SIZE,
       UE_KEY, UE_VALUE, D_PY311, D_MAX_ITEMS, D_FIELDS };

/* dict_tables(buf, starts, ends, offs, dicts, basic, layout, out_entries, out_esize,
 * out_koff, out_voff, out_nentries, out_values, out_size, out_bad): each dict's keys
 * table read and checked as containers.keys_table does with numpy (entries address,
 * entry size, key and value offsets, entry count, 0 where bad), its values pointer,
 * and its getsizeof() as _PyDict_SizeOf computes it (basic where bad). One pass over
 * the dicts where the numpy form makes forty passes over them. */
static PyObject *dict_tables(PyObject *self, PyObject *args) {
    Py_buffer b[15];
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*w*w*w*w*w*w*w*w*", &b[0], &b[1], &b[2], &b[3],
                          &b[4], &b[5], &b[6], &b[7], &b[8], &b[9], &b[10], &b[11], &b[12],
                          &b[13], &b[14]))
        return NULL;
    PyObject *result = NULL;
    Space s;
    Py_ssize_t n = b[4].len / 8;
    int sized = b[5].len / 8 == n && b[6].len / 8 == D_FIELDS && b[14].len >= n;
    for (int i = 7; i < 14; i++) sized = sized && b[i].len / 8 >= n;
    if (!sized) {
        PyErr_SetString(PyExc_ValueError, "dict_tables: arrays of the wrong size");
        goto done;
    }
    if (!space(&s, &b[0], &b[1], &b[2], &b[3])) goto done;
    const uint64_t *dicts = b[4].buf;
    const int64_t *basic = b[5].buf, *L = b[6].buf;
    uint64_t *o_entries = b[7].buf, *o_values = b[12].buf, *o_size = b[13].buf;
    int64_t *o_esize = b[8].buf, *o_koff = b[9].buf, *o_voff = b[10].buf,
            *o_nentries = b[11].buf;
    uint8_t *o_bad = b[14].buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < n; k++) {
        int ok = 1, ok_ptrs = 1, ignore = 1;
        uint64_t keys = (uint64_t)i64_at(&s, dicts[k] + (uint64_t)L[D_MA_KEYS], &ok_ptrs);
        uint64_t values = (uint64_t)i64_at(&s, dicts[k] + (uint64_t)L[D_MA_VALUES], &ok_ptrs);
        int64_t nentries = i64_at(&s, keys + (uint64_t)L[K_NENTRIES], &ok);
        /* Sizes in uint64: a damaged table's numbers wrap (as numpy's int64 do) rather
         * than overflow; such a dict's size is its basic size anyway. */
        int64_t size, esize, koff, voff;
        uint64_t entries, keys_size = 0, split_extra;
        if (L[D_PY311]) {
            uint8_t log2 = u8_at(&s, keys + (uint64_t)L[K_LOG2_SIZE], &ok);
            uint8_t log2ib = u8_at(&s, keys + (uint64_t)L[K_LOG2_INDEX_BYTES], &ok);
            uint8_t dkind = u8_at(&s, keys + (uint64_t)L[K_KIND], &ok);
            ok = ok && log2 <= 40 && log2ib <= 43;
            size = (int64_t)1 << (log2 < 40 ? log2 : 40);
            uint64_t index_bytes = (uint64_t)1 << (log2ib < 43 ? log2ib : 43);
            entries = keys + (uint64_t)L[K_INDICES] + index_bytes;
            int general = dkind == 0;
            esize = general ? L[DE_SIZE] : L[UE_SIZE];
            koff = general ? L[DE_KEY] : L[UE_KEY];
            voff = general ? L[DE_VALUE] : L[UE_VALUE];
            keys_size = (uint64_t)L[K_SIZEOF] + index_bytes +
                        (uint64_t)((size << 1) / 3) * (uint64_t)esize;
        } else {
            size = i64_at(&s, keys + (uint64_t)L[K_SIZE], &ok);
            ok = ok && size > 0 && size <= ((int64_t)1 << 40) && (size & (size - 1)) == 0;
            int64_t width = size <= 0xFF ? 1 : size <= 0xFFFF ? 2 : size <= 0xFFFFFFFFLL ? 4 : 8;
            entries = keys + (uint64_t)L[K_INDICES] + (uint64_t)((ok ? size : 0) * width);
            esize = L[DE_SIZE];
            koff = L[DE_KEY];
            voff = L[DE_VALUE];
            if (ok)
                keys_size = (uint64_t)L[K_SIZEOF] + (uint64_t)(width * size) +
                            (uint64_t)L[DE_SIZE] * (uint64_t)((size << 1) / 3);
        }
        ok = ok && nentries >= 0 && nentries <= size && nentries <= L[D_MAX_ITEMS];
        if (!ok) nentries = 0;
        int bad = !(ok && ok_ptrs);
        int64_t refcnt = i64_at(&s, keys + (uint64_t)L[K_REFCNT], &ignore);
        int64_t usable = i64_at(&s, keys + (uint64_t)L[K_USABLE], &ignore);
        split_extra = L[D_PY311] ? ((uint64_t)nentries + (uint64_t)usable) * 8
                                 : (ok ? (uint64_t)((size << 1) / 3) * 8 : 0);
        uint64_t total = (uint64_t)basic[k] + (values ? split_extra : 0) +
                         (refcnt == 1 ? keys_size : 0);
        o_entries[k] = entries;
        o_esize[k] = esize;
        o_koff[k] = koff;
        o_voff[k] = voff;
        o_nentries[k] = bad ? 0 : nentries;
        o_values[k] = values;
        o_size[k] = bad ? (uint64_t)basic[k] : total;
        o_bad[k] = (uint8_t)bad;
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    for (int i = 0; i < 15; i++) PyBuffer_Release(&b[i]);
    return result;
}

/* str_texts(buf, starts, ends, offs, addrs, limit, state_off, length_off, ascii_size,
 * compact_size) -> list: the text of each str object whose characters are one byte
 * each and follow its header (compact ASCII; compact Latin-1 when compact_size >= 0),
 * cut at `limit` characters, all read from the core; None for any other str (two- and
 * four-byte kinds, legacy, damaged, not all in the core). strtext.str_texts in one
 * pass. */
static PyObject *str_texts(PyObject *self, PyObject *args) {
    Py_buffer b[5];
    long long limit, state_off, length_off, ascii_size, compact_size;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*LLLLL", &b[0], &b[1], &b[2], &b[3], &b[4], &limit,
                          &state_off, &length_off, &ascii_size, &compact_size))
        return NULL;
    PyObject *result = NULL;
    Space s;
    if (limit < 0) {
        PyErr_SetString(PyExc_ValueError, "negative limit");
        goto done;
    }
    if (!space(&s, &b[0], &b[1], &b[2], &b[3])) goto done;
    const uint64_t *addrs = b[4].buf;
    Py_ssize_t n = b[4].len / 8;
    result = PyList_New(n);
    if (!result) goto done;
    for (Py_ssize_t k = 0; k < n; k++) {
        uint64_t a = addrs[k];
        PyObject *t = NULL;
        uint64_t sa = a + (uint64_t)state_off, la = a + (uint64_t)length_off;
        int64_t so = (sa & 3) ? -1 : locate(&s, sa, 4);
        int64_t lo = (la & 7) ? -1 : locate(&s, la, 8);
        if (so >= 0 && lo >= 0) {
            uint32_t state;
            int64_t length;
            memcpy(&state, s.buf + so, 4);
            memcpy(&length, s.buf + lo, 8);
            unsigned kind = (state >> 2) & 7, compact = (state >> 5) & 1, ascii = (state >> 6) & 1;
            if (compact && kind == 1 && length >= 0 && length < ((int64_t)1 << 40) &&
                (ascii || compact_size >= 0)) {
                int64_t m = length < limit ? length : limit;
                uint64_t at = a + (uint64_t)(ascii ? ascii_size : compact_size);
                int64_t o = locate(&s, at, (uint64_t)(m > 0 ? m : 1));
                if (o >= 0)
                    t = ascii ? PyUnicode_DecodeASCII((const char *)s.buf + o, m, "replace")
                              : PyUnicode_DecodeLatin1((const char *)s.buf + o, m, "replace");
                else
                    t = Py_NewRef(Py_None);
                if (!t) {
                    Py_CLEAR(result);
                    goto done;
                }
            }
        }
        PyList_SET_ITEM(result, k, t ? t : Py_NewRef(Py_None));
    }
done:
    for (int i = 0; i < 5; i++) PyBuffer_Release(&b[i]);
    return result;
}


/* malloc_chunks(buf, starts, ends, offs, start, end, out_addr, out_word) -> count: glibc
 * malloc's chunks laid end to end from `start` (a chunk's header: prev_size, then its
 * size with the flag bits A=4, M=2, P=1; the next chunk starts `size` bytes on), up to
 * `end`. Each chunk's address and raw size word go out; the walk stops at a chunk that
 * is unreadable, smaller than 32 bytes, not 16-aligned in size, or would pass `end`
 * (then its address is the last one out, with word 0). out_* bound the count. The
 * numpy form is mallocheap.walk_chunks. */
static PyObject *malloc_chunks(PyObject *self, PyObject *args) {
    Py_buffer b[6];
    unsigned long long start, end;
    if (!PyArg_ParseTuple(args, "y*y*y*y*KKw*w*", &b[0], &b[1], &b[2], &b[3], &start, &end,
                          &b[4], &b[5]))
        return NULL;
    PyObject *result = NULL;
    Space s;
    Py_ssize_t cap = b[4].len / 8, count = 0;
    if (b[5].len / 8 < cap) {
        PyErr_SetString(PyExc_ValueError, "output arrays differ in length");
        goto done;
    }
    if (!space(&s, &b[0], &b[1], &b[2], &b[3])) goto done;
    uint64_t *out_addr = b[4].buf, *out_word = b[5].buf;
    Py_BEGIN_ALLOW_THREADS
    uint64_t c = start;
    while (count < cap && c < end && !(c & 15)) {
        int ok = 1;
        uint64_t word = (uint64_t)i64_at(&s, c + 8, &ok);
        uint64_t size = word & ~(uint64_t)7;
        int good = ok && size >= 32 && !(size & 15) && size <= end - c;
        out_addr[count] = c;
        out_word[count] = good ? word : 0;
        count++;
        if (!good) break;
        c += size;
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(count);
done:
    for (int i = 0; i < 6; i++) PyBuffer_Release(&b[i]);
    return result;
}

static PyMethodDef methods[] = {
    {"pool_blocks", pool_blocks, METH_VARARGS,
     "pool_blocks(buf, starts, ends, offs, pools, szidx, nextoff, overhead, pool_size, "
     "freeblock_off, bits, probes, out_block, out_bsize) -> count of unvisited blocks"},
    {"entries", entries, METH_VARARGS,
     "entries(buf, starts, ends, offs, src, base, stride, koff, voff, vbase, counts, "
     "out_src, out_key, out_val) -> count of (key, value) pairs"},
    {"dict_tables", dict_tables, METH_VARARGS,
     "dict_tables(buf, starts, ends, offs, dicts, basic, layout, out_entries, out_esize, "
     "out_koff, out_voff, out_nentries, out_values, out_size, out_bad)"},
    {"str_texts", str_texts, METH_VARARGS,
     "str_texts(buf, starts, ends, offs, addrs, limit, state_off, length_off, ascii_size, "
     "compact_size) -> [str or None]"},
    {"malloc_chunks", malloc_chunks, METH_VARARGS,
     "malloc_chunks(buf, starts, ends, offs, start, end, out_addr, out_word) -> count"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels",
    "The heap walk's kernels: CPython structures read from a mapped core, many at once.",
    -1, methods,
};

PyMODINIT_FUNC PyInit__kernels(void) {
    return PyModule_Create(&module);
}
