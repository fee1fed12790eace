/* The two DWARF loops a stack of many native frames runs (DWARF 2-5, little-endian,
 * x86-64): a compile unit's line-number program, and the walk of a unit's DIEs down to
 * the subprogram and inlined calls that hold one address. Everything else (section
 * lookup, unit and line-program headers, names, file tables) is done in dwarf.py;
 * these are the parts where Python's per-byte cost made `bt --native` several times
 * slower than pystack (which has elfutils' libdw).
 *
 * Every read is bounds-checked: a damaged section ends the walk with ValueError, never
 * a read past the buffer. Sections come in as Python buffers, nothing is copied.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *p, *end;
    int bad;
} Rd;

static uint64_t rd_n(Rd *r, int n) {
    if (r->bad || n < 0 || r->end - r->p < n) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < n && i < 8; i++) v |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    return v;
}

static void rd_skip(Rd *r, uint64_t n) {
    if (r->bad || (uint64_t)(r->end - r->p) < n) {
        r->bad = 1;
        return;
    }
    r->p += n;
}

static uint64_t rd_uleb(Rd *r) {
    uint64_t v = 0;
    int shift = 0;
    while (!r->bad) {
        if (r->p >= r->end) {
            r->bad = 1;
            break;
        }
        uint8_t b = *r->p++;
        if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) break;
    }
    return v;
}

static int64_t rd_sleb(Rd *r) {
    int64_t v = 0;
    int shift = 0;
    uint8_t b = 0;
    while (!r->bad) {
        if (r->p >= r->end) {
            r->bad = 1;
            break;
        }
        b = *r->p++;
        if (shift < 64) v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
        shift += 7;
        if (!(b & 0x80)) break;
    }
    if (shift < 64 && (b & 0x40)) v |= -((int64_t)1 << shift);
    return v;
}

/* ---------------------------------------------------------------- line programs */

typedef struct {
    uint64_t addr;
    uint32_t file, line;     /* file 0xffffffff: the end of a sequence */
    uint64_t order;          /* position in the program, to keep sorting stable */
} Row;

static int row_cmp(const void *a, const void *b) {
    const Row *x = a, *y = b;
    if (x->addr != y->addr) return x->addr < y->addr ? -1 : 1;
    /* At one address an end of sequence sorts first: the row that starts there wins. */
    int xe = x->file == 0xffffffffu, ye = y->file == 0xffffffffu;
    if (xe != ye) return xe ? -1 : 1;
    return x->order < y->order ? -1 : (x->order > y->order);
}

/* line_rows(data, start, end, min_len, line_base, line_range, opcode_base,
 *           std_lengths) -> (addresses, files, lines) as bytes of uint64/uint32/uint32,
 * sorted by address; a file of 0xffffffff marks the end of a sequence. */
static PyObject *line_rows(PyObject *self, PyObject *args) {
    Py_buffer data, lens;
    Py_ssize_t start, end;
    int min_len, line_base, line_range, opcode_base;
    if (!PyArg_ParseTuple(args, "y*nniiiiy*", &data, &start, &end, &min_len, &line_base,
                          &line_range, &opcode_base, &lens))
        return NULL;
    PyObject *result = NULL;
    Row *rows = NULL;
    size_t n = 0, cap = 0;
    if (start < 0 || end > data.len || start > end || line_range <= 0 || opcode_base < 1) {
        PyErr_SetString(PyExc_ValueError, "line program out of range");
        goto done;
    }
    const uint8_t *L = lens.buf;
    Rd r = {(const uint8_t *)data.buf + start, (const uint8_t *)data.buf + end, 0};
    uint64_t address = 0, order = 0;
    int64_t line = 1;
    uint64_t file = 1;
    while (r.p < r.end && !r.bad) {
        int op = *r.p++;
        int emit = 0, endseq = 0;
        if (op >= opcode_base) {
            int adj = op - opcode_base;
            address += (uint64_t)(adj / line_range) * min_len;
            line += line_base + adj % line_range;
            emit = 1;
        } else if (op == 0) {
            uint64_t len = rd_uleb(&r);
            if (r.bad || len == 0 || (uint64_t)(r.end - r.p) < len) {
                r.bad = 1;
                break;
            }
            const uint8_t *next = r.p + len;
            int sub = *r.p++;
            if (sub == 1) {
                emit = endseq = 1;
            } else if (sub == 2) {
                Rd a = {r.p, next, 0};
                address = rd_n(&a, (int)(len - 1 > 8 ? 8 : len - 1));
            }
            r.p = next;
        } else if (op == 1) {
            emit = 1;
        } else if (op == 2) {
            address += rd_uleb(&r) * (uint64_t)min_len;
        } else if (op == 3) {
            line += rd_sleb(&r);
        } else if (op == 4) {
            file = rd_uleb(&r);
        } else if (op == 8) {
            address += (uint64_t)((255 - opcode_base) / line_range) * min_len;
        } else if (op == 9) {
            address += rd_n(&r, 2);
        } else {
            int nargs = op - 1 < lens.len ? L[op - 1] : 0;
            for (int i = 0; i < nargs; i++) rd_uleb(&r);
        }
        if (emit && !r.bad) {
            if (n == cap) {
                cap = cap ? cap * 2 : 1024;
                Row *grown = realloc(rows, cap * sizeof(Row));
                if (!grown) {
                    PyErr_NoMemory();
                    goto done;
                }
                rows = grown;
            }
            rows[n].addr = address;
            rows[n].file = endseq ? 0xffffffffu : (uint32_t)(file > 0xfffffffeu ? 0xfffffffeu : file);
            rows[n].line = (uint32_t)(line < 0 ? 0 : line > 0xffffffffLL ? 0xffffffffu : line);
            rows[n].order = order++;
            n++;
            if (endseq) {
                address = 0;
                line = 1;
                file = 1;
            }
        }
    }
    if (r.bad) {
        PyErr_SetString(PyExc_ValueError, "line program runs past its end");
        goto done;
    }
    if (n) qsort(rows, n, sizeof(Row), row_cmp);   /* rows is NULL when none: UB for qsort */
    PyObject *a = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 8));
    PyObject *f = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 4));
    PyObject *l = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 4));
    if (a && f && l) {
        uint64_t *pa = (uint64_t *)PyBytes_AS_STRING(a);
        uint32_t *pf = (uint32_t *)PyBytes_AS_STRING(f), *pl = (uint32_t *)PyBytes_AS_STRING(l);
        for (size_t i = 0; i < n; i++) {
            pa[i] = rows[i].addr;
            pf[i] = rows[i].file;
            pl[i] = rows[i].line;
        }
        result = PyTuple_Pack(3, a, f, l);
    }
    Py_XDECREF(a);
    Py_XDECREF(f);
    Py_XDECREF(l);
done:
    free(rows);
    PyBuffer_Release(&data);
    PyBuffer_Release(&lens);
    return result;
}

/* ---------------------------------------------------------------- DIEs */

enum {
    FORM_addr = 0x01, FORM_block2 = 0x03, FORM_block4 = 0x04, FORM_data2 = 0x05,
    FORM_data4 = 0x06, FORM_data8 = 0x07, FORM_string = 0x08, FORM_block = 0x09,
    FORM_block1 = 0x0a, FORM_data1 = 0x0b, FORM_flag = 0x0c, FORM_sdata = 0x0d,
    FORM_strp = 0x0e, FORM_udata = 0x0f, FORM_ref_addr = 0x10, FORM_ref1 = 0x11,
    FORM_ref2 = 0x12, FORM_ref4 = 0x13, FORM_ref8 = 0x14, FORM_ref_udata = 0x15,
    FORM_indirect = 0x16, FORM_sec_offset = 0x17, FORM_exprloc = 0x18,
    FORM_flag_present = 0x19, FORM_strx = 0x1a, FORM_addrx = 0x1b, FORM_ref_sup4 = 0x1c,
    FORM_strp_sup = 0x1d, FORM_data16 = 0x1e, FORM_line_strp = 0x1f, FORM_ref_sig8 = 0x20,
    FORM_implicit_const = 0x21, FORM_loclistx = 0x22, FORM_rnglistx = 0x23,
    FORM_ref_sup8 = 0x24, FORM_strx1 = 0x25, FORM_strx2 = 0x26, FORM_strx3 = 0x27,
    FORM_strx4 = 0x28, FORM_addrx1 = 0x29, FORM_addrx2 = 0x2a, FORM_addrx3 = 0x2b,
    FORM_addrx4 = 0x2c, FORM_GNU_addr_index = 0x1f01, FORM_GNU_str_index = 0x1f02,
    FORM_GNU_ref_alt = 0x1f20, FORM_GNU_strp_alt = 0x1f21,
};
enum {
    AT_sibling = 0x01, AT_low_pc = 0x11, AT_high_pc = 0x12, AT_ranges = 0x55,
};
enum {
    TAG_lexical_block = 0x0b, TAG_inlined_subroutine = 0x1d, TAG_subprogram = 0x2e,
    TAG_namespace = 0x39, TAG_module = 0x1e, TAG_partial_unit = 0x3c,
};

typedef struct {
    uint32_t at, form;
    int64_t implicit;
} Spec;

typedef struct {
    uint32_t tag;
    int children;
    uint32_t nspecs;
    Spec *specs;
} Abbrev;

typedef struct {
    Abbrev *by_code;         /* index = abbreviation code */
    uint64_t ncodes;
    Spec *all;
} Abbrevs;

static void abbrevs_free(Abbrevs *t) {
    free(t->by_code);
    free(t->all);
}

/* Parse the abbreviation table at `off`: codes must be below 1<<20 (they are small and
 * dense in practice; a larger one means damage). */
static int abbrevs_parse(Abbrevs *t, const uint8_t *buf, Py_ssize_t len, uint64_t off) {
    memset(t, 0, sizeof *t);
    if (off >= (uint64_t)len) return 0;
    Rd r = {buf + off, buf + len, 0};
    /* First pass: the largest code and the number of specs. */
    uint64_t maxcode = 0, nspecs = 0;
    for (;;) {
        uint64_t code = rd_uleb(&r);
        if (r.bad) return 0;
        if (code == 0) break;
        if (code >= (1u << 20)) return 0;
        if (code > maxcode) maxcode = code;
        rd_uleb(&r);
        rd_skip(&r, 1);
        for (;;) {
            uint64_t at = rd_uleb(&r), form = rd_uleb(&r);
            if (r.bad) return 0;
            if (at == 0 && form == 0) break;
            if (form == FORM_implicit_const) rd_sleb(&r);
            nspecs++;
        }
    }
    t->ncodes = maxcode + 1;
    t->by_code = calloc(t->ncodes, sizeof(Abbrev));
    t->all = calloc(nspecs ? nspecs : 1, sizeof(Spec));
    if (!t->by_code || !t->all) return 0;
    r.p = buf + off;
    size_t k = 0;
    for (;;) {
        uint64_t code = rd_uleb(&r);
        if (code == 0) break;
        Abbrev *a = &t->by_code[code];
        a->tag = (uint32_t)rd_uleb(&r);
        a->children = *r.p++ != 0;
        a->specs = &t->all[k];
        a->nspecs = 0;
        for (;;) {
            uint64_t at = rd_uleb(&r), form = rd_uleb(&r);
            if (at == 0 && form == 0) break;
            Spec *s = &t->all[k++];
            s->at = (uint32_t)at;
            s->form = (uint32_t)form;
            s->implicit = form == FORM_implicit_const ? rd_sleb(&r) : 0;
            a->nspecs++;
        }
    }
    return !r.bad;
}

typedef struct {
    /* sections */
    const uint8_t *info, *addr, *rnglists, *ranges;
    Py_ssize_t info_len, addr_len, rnglists_len, ranges_len;
    /* the unit */
    uint64_t cu_off, cu_end, die_start;
    int version, offset_size, addr_size;
    uint64_t base, addr_base, rnglists_base;
} Unit;

/* One attribute value: an integer (refs made absolute .debug_info offsets), or bytes. */
typedef struct {
    uint64_t u;
    const uint8_t *bytes;    /* for strings and blocks */
    uint64_t nbytes;
    int is_bytes;
} Value;

static int read_value(Rd *r, const Unit *u, uint32_t form, int64_t implicit, Value *v,
                      int depth) {
    v->is_bytes = 0;
    v->bytes = NULL;
    v->nbytes = 0;
    v->u = 0;
    switch (form) {
    case FORM_addr: v->u = rd_n(r, u->addr_size); break;
    case FORM_data1: case FORM_ref1: case FORM_flag: case FORM_strx1: case FORM_addrx1:
        v->u = rd_n(r, 1); break;
    case FORM_data2: case FORM_ref2: case FORM_strx2: case FORM_addrx2:
        v->u = rd_n(r, 2); break;
    case FORM_strx3: case FORM_addrx3: v->u = rd_n(r, 3); break;
    case FORM_data4: case FORM_ref4: case FORM_ref_sup4: case FORM_strx4: case FORM_addrx4:
        v->u = rd_n(r, 4); break;
    case FORM_data8: case FORM_ref8: case FORM_ref_sig8: case FORM_ref_sup8:
        v->u = rd_n(r, 8); break;
    case FORM_sdata: v->u = (uint64_t)rd_sleb(r); break;
    case FORM_udata: case FORM_ref_udata: case FORM_strx: case FORM_addrx:
    case FORM_loclistx: case FORM_rnglistx: case FORM_GNU_addr_index:
    case FORM_GNU_str_index:
        v->u = rd_uleb(r); break;
    case FORM_strp: case FORM_sec_offset: case FORM_line_strp: case FORM_strp_sup:
    case FORM_GNU_ref_alt: case FORM_GNU_strp_alt:
        v->u = rd_n(r, u->offset_size); break;
    case FORM_ref_addr: v->u = rd_n(r, u->version <= 2 ? u->addr_size : u->offset_size); break;
    case FORM_flag_present: v->u = 1; break;
    case FORM_implicit_const: v->u = (uint64_t)implicit; break;
    case FORM_string: {
        const uint8_t *s = r->p;
        while (r->p < r->end && *r->p) r->p++;
        if (r->p >= r->end) { r->bad = 1; break; }
        v->is_bytes = 1;
        v->bytes = s;
        v->nbytes = (uint64_t)(r->p - s);
        r->p++;
        break;
    }
    case FORM_block1: case FORM_block2: case FORM_block4: case FORM_block:
    case FORM_exprloc: case FORM_data16: {
        uint64_t n = form == FORM_block1 ? rd_n(r, 1) : form == FORM_block2 ? rd_n(r, 2)
                   : form == FORM_block4 ? rd_n(r, 4) : form == FORM_data16 ? 16
                   : rd_uleb(r);
        const uint8_t *s = r->p;
        rd_skip(r, n);
        v->is_bytes = 1;
        v->bytes = s;
        v->nbytes = n;
        break;
    }
    case FORM_indirect: {
        uint64_t f = rd_uleb(r);
        if (depth > 2 || f == FORM_indirect || f > 0xffff) { r->bad = 1; break; }
        return read_value(r, u, (uint32_t)f, 0, v, depth + 1);
    }
    default:
        r->bad = 1;
        return 0;
    }
    if (form == FORM_ref1 || form == FORM_ref2 || form == FORM_ref4 || form == FORM_ref8
        || form == FORM_ref_udata)
        v->u += u->cu_off;
    return !r->bad;
}

static int read_addrx(const Unit *u, uint64_t index, uint64_t *out) {
    uint64_t off = u->addr_base + index * (uint64_t)u->addr_size;
    if (index > (1ull << 40) || off + u->addr_size > (uint64_t)u->addr_len) return 0;
    Rd r = {u->addr + off, u->addr + u->addr_len, 0};
    *out = rd_n(&r, u->addr_size);
    return !r.bad;
}

static int is_addrx(uint32_t form) {
    return form == FORM_addrx || form == FORM_addrx1 || form == FORM_addrx2
        || form == FORM_addrx3 || form == FORM_addrx4 || form == FORM_GNU_addr_index;
}

/* Does the range list at `off` (a .debug_rnglists or .debug_ranges offset) hold `pc`?
 * -1 when the list is damaged. */
static int ranges_hold(const Unit *u, uint64_t off, uint64_t pc) {
    uint64_t base = u->base;
    if (u->version >= 5) {
        if (off >= (uint64_t)u->rnglists_len) return -1;
        Rd r = {u->rnglists + off, u->rnglists + u->rnglists_len, 0};
        for (int guard = 0; guard < 1000000 && !r.bad; guard++) {
            int kind = (int)rd_n(&r, 1);
            uint64_t lo = 0, hi = 0, a, b;
            switch (kind) {
            case 0: return 0;                                          /* end_of_list */
            case 1: if (!read_addrx(u, rd_uleb(&r), &base)) return -1; continue;
            case 2: a = rd_uleb(&r); b = rd_uleb(&r);                  /* startx_endx */
                if (!read_addrx(u, a, &lo) || !read_addrx(u, b, &hi)) return -1;
                break;
            case 3: a = rd_uleb(&r); b = rd_uleb(&r);                  /* startx_length */
                if (!read_addrx(u, a, &lo)) return -1;
                hi = lo + b;
                break;
            case 4: a = rd_uleb(&r); b = rd_uleb(&r);                  /* offset_pair */
                lo = base + a;
                hi = base + b;
                break;
            case 5: base = rd_n(&r, u->addr_size); continue;           /* base_address */
            case 6: lo = rd_n(&r, u->addr_size); hi = rd_n(&r, u->addr_size); break;
            case 7: lo = rd_n(&r, u->addr_size); hi = lo + rd_uleb(&r); break;
            default: return -1;
            }
            if (!r.bad && lo <= pc && pc < hi) return 1;
        }
        return -1;
    }
    if (off >= (uint64_t)u->ranges_len) return -1;
    Rd r = {u->ranges + off, u->ranges + u->ranges_len, 0};
    uint64_t all = u->addr_size == 8 ? ~0ull : 0xffffffffull;
    for (int guard = 0; guard < 1000000 && !r.bad; guard++) {
        uint64_t lo = rd_n(&r, u->addr_size), hi = rd_n(&r, u->addr_size);
        if (r.bad) break;
        if (lo == 0 && hi == 0) return 0;
        if (lo == all) {
            base = hi;
            continue;
        }
        if (base + lo <= pc && pc < base + hi) return 1;
    }
    return -1;
}

typedef struct {
    uint64_t low, high, ranges, sibling;
    uint32_t low_form, high_form, ranges_form;
    int has_low, has_high, has_ranges, has_sibling;
} Extent;

/* Parse the DIE at r->p; its abbreviation in *out (NULL for a null entry). */
static int parse_die(Rd *r, const Unit *u, const Abbrevs *t, const Abbrev **out,
                     Extent *ext) {
    uint64_t code = rd_uleb(r);
    *out = NULL;
    if (r->bad) return 0;
    if (code == 0) return 1;
    if (code >= t->ncodes || t->by_code[code].specs == NULL) {
        r->bad = 1;
        return 0;
    }
    const Abbrev *a = &t->by_code[code];
    if (ext) memset(ext, 0, sizeof *ext);
    for (uint32_t i = 0; i < a->nspecs; i++) {
        Value v;
        if (!read_value(r, u, a->specs[i].form, a->specs[i].implicit, &v, 0)) return 0;
        if (!ext) continue;
        switch (a->specs[i].at) {
        case AT_low_pc: ext->low = v.u; ext->low_form = a->specs[i].form; ext->has_low = 1; break;
        case AT_high_pc: ext->high = v.u; ext->high_form = a->specs[i].form; ext->has_high = 1; break;
        case AT_ranges: ext->ranges = v.u; ext->ranges_form = a->specs[i].form; ext->has_ranges = 1; break;
        case AT_sibling: ext->sibling = v.u; ext->has_sibling = 1; break;
        }
    }
    *out = a;
    return 1;
}

/* 1 if the DIE's extent holds pc, 0 if not, -1 if it has no extent, -2 when damaged. */
static int extent_holds(const Unit *u, const Extent *e, uint64_t pc) {
    if (e->has_low && e->has_high) {
        uint64_t lo = e->low, hi = e->high;
        if (is_addrx(e->low_form) && !read_addrx(u, e->low, &lo)) return -2;
        if (e->high_form == FORM_addr) {
        } else if (is_addrx(e->high_form)) {
            if (!read_addrx(u, e->high, &hi)) return -2;
        } else {
            hi = lo + e->high;
        }
        return lo <= pc && pc < hi;
    }
    if (e->has_ranges) {
        uint64_t off = e->ranges;
        if (e->ranges_form == FORM_rnglistx) {
            uint64_t at = u->rnglists_base + e->ranges * (uint64_t)u->offset_size;
            if (e->ranges > (1ull << 40) || at + u->offset_size > (uint64_t)u->rnglists_len)
                return -2;
            Rd r = {u->rnglists + at, u->rnglists + u->rnglists_len, 0};
            off = u->rnglists_base + rd_n(&r, u->offset_size);
        }
        int h = ranges_hold(u, off, pc);
        return h < 0 ? -2 : h;
    }
    return -1;
}

/* Skip the children of a DIE whose own attributes were just read. */
static int skip_children(Rd *r, const Unit *u, const Abbrevs *t) {
    int depth = 1;
    while (depth > 0) {
        const Abbrev *a;
        if (!parse_die(r, u, t, &a, NULL)) return 0;
        if (a == NULL) depth--;
        else if (a->children) depth++;
        if (depth > 100000) return 0;
    }
    return 1;
}

static int unit_from(PyObject *secs, PyObject *unit, Unit *u, Py_buffer bufs[4]) {
    memset(u, 0, sizeof *u);
    for (int i = 0; i < 4; i++) bufs[i].obj = NULL;
    unsigned long long cu_off, cu_end, die_start, base, addr_base, rng_base;
    if (!PyArg_ParseTuple(unit, "KKKiiiKKK", &cu_off, &cu_end, &die_start, &u->version,
                          &u->offset_size, &u->addr_size, &base, &addr_base, &rng_base))
        return 0;
    if (!PyArg_ParseTuple(secs, "y*y*y*y*", &bufs[0], &bufs[1], &bufs[2], &bufs[3]))
        return 0;
    u->info = bufs[0].buf; u->info_len = bufs[0].len;
    u->addr = bufs[1].buf; u->addr_len = bufs[1].len;
    u->rnglists = bufs[2].buf; u->rnglists_len = bufs[2].len;
    u->ranges = bufs[3].buf; u->ranges_len = bufs[3].len;
    u->cu_off = cu_off; u->cu_end = cu_end; u->die_start = die_start;
    u->base = base; u->addr_base = addr_base; u->rnglists_base = rng_base;
    if (cu_end > (uint64_t)u->info_len || die_start > cu_end || cu_off > die_start
        || (u->offset_size != 4 && u->offset_size != 8)
        || (u->addr_size != 4 && u->addr_size != 8)) {
        PyErr_SetString(PyExc_ValueError, "compile unit out of range");
        return 0;
    }
    return 1;
}

static void unit_release(Py_buffer bufs[4]) {
    for (int i = 0; i < 4; i++)
        if (bufs[i].obj) PyBuffer_Release(&bufs[i]);
}

/* The set-up every DIE entry point shares: its arguments (sections, unit, abbrev,
 * abbrev_offset, then `extra` of its own, "K" each), the unit checked, the abbreviation
 * table parsed. call_end() releases what call_begin() took, whatever happened. */
typedef struct {
    Py_buffer bufs[4], abbrev;
    int have_abbrev;
    Unit u;
    Abbrevs t;
} Call;

static int call_begin(Call *c, PyObject *args, const char *extra, unsigned long long *x0,
                      unsigned long long *x1) {
    PyObject *secs, *unit;
    unsigned long long abbrev_off;
    char fmt[16];
    memset(c, 0, sizeof *c);
    for (int i = 0; i < 4; i++) c->bufs[i].obj = NULL;
    snprintf(fmt, sizeof fmt, "OOy*K%s", extra);
    if (!PyArg_ParseTuple(args, fmt, &secs, &unit, &c->abbrev, &abbrev_off, x0, x1))
        return 0;
    c->have_abbrev = 1;
    if (!unit_from(secs, unit, &c->u, c->bufs)) return 0;
    if (!abbrevs_parse(&c->t, c->abbrev.buf, c->abbrev.len, abbrev_off)) {
        PyErr_SetString(PyExc_ValueError, "damaged abbreviation table");
        return 0;
    }
    return 1;
}

/* A reader at the DIE at `off`, which must lie inside the unit's entries. */
static int entry_reader(const Unit *u, uint64_t off, Rd *r) {
    if (off < u->die_start || off >= u->cu_end) {
        PyErr_SetString(PyExc_ValueError, "entry outside its unit");
        return 0;
    }
    r->p = u->info + off;
    r->end = u->info + u->cu_end;
    r->bad = 0;
    return 1;
}

static void call_end(Call *c) {
    abbrevs_free(&c->t);
    unit_release(c->bufs);
    if (c->have_abbrev) PyBuffer_Release(&c->abbrev);
}

/* chain(sections, unit, abbrev, abbrev_offset, pc) -> [(die offset, tag)]: the DIEs
 * that hold pc, outermost first (subprogram, inlined subroutines, lexical blocks).
 * sections = (info, addr, rnglists, ranges); unit = (cu_off, cu_end, die_start, version,
 * offset_size, addr_size, base address, addr_base, rnglists_base). Only DIEs whose
 * extent holds pc are entered, and namespaces (which have none). */
static PyObject *chain(PyObject *self, PyObject *args) {
    Call c;
    unsigned long long pc, unused = 0;
    PyObject *out = NULL;
    if (!call_begin(&c, args, "K", &pc, &unused)) goto done;
    const Unit u = c.u;
    const Abbrevs t = c.t;
    out = PyList_New(0);
    if (!out) goto done;
    Rd r = {u.info + u.die_start, u.info + u.cu_end, 0};
    /* The unit DIE itself: enter its children. */
    const Abbrev *a;
    if (!parse_die(&r, &u, &t, &a, NULL) || a == NULL || !a->children) goto check;
    int depth = 1, found = 0;
    for (long guard = 0; depth > 0 && guard < 50000000; guard++) {
        const uint8_t *at = r.p;
        Extent e;
        if (!parse_die(&r, &u, &t, &a, &e)) break;
        if (a == NULL) {
            /* Extents nest: once the subprogram that holds pc is left, nothing after it
             * in the unit holds pc more closely. */
            if (--depth < found) break;
            continue;
        }
        int holds = extent_holds(&u, &e, pc);
        if (holds == -2) {
            r.bad = 1;
            break;
        }
        int enter = holds == 1 || (holds == -1 && (a->tag == TAG_namespace
                                                    || a->tag == TAG_module));
        if (holds == 1 && (a->tag == TAG_subprogram || a->tag == TAG_inlined_subroutine
                           || a->tag == TAG_lexical_block)) {
            PyObject *item = Py_BuildValue("(KI)", (unsigned long long)(at - u.info), a->tag);
            if (!item || PyList_Append(out, item) < 0) {
                Py_XDECREF(item);
                Py_CLEAR(out);
                goto done;
            }
            Py_DECREF(item);
            if (!a->children) break;            /* nothing nests inside it */
            if (!found) found = depth + 1;
        }
        if (!a->children) continue;
        if (enter) {
            depth++;
            continue;
        }
        if (e.has_sibling && e.sibling > (uint64_t)(r.p - u.info) && e.sibling <= u.cu_end) {
            r.p = u.info + e.sibling;
        } else if (!skip_children(&r, &u, &t)) {
            r.bad = 1;
            break;
        }
    }
check:
    if (r.bad && out && PyList_GET_SIZE(out) == 0) {
        Py_CLEAR(out);
        PyErr_SetString(PyExc_ValueError, "damaged debugging information entries");
    }
done:
    call_end(&c);
    return out;
}

/* attrs(sections, unit, abbrev, abbrev_offset, die_offset) -> (tag, [(at, form, value)])
 * with value an int (references as absolute .debug_info offsets) or bytes. */
static PyObject *attrs(PyObject *self, PyObject *args) {
    Call c;
    unsigned long long off, unused = 0;
    PyObject *out = NULL, *list = NULL;
    if (!call_begin(&c, args, "K", &off, &unused)) goto done;
    const Unit u = c.u;
    const Abbrevs t = c.t;
    Rd r;
    if (!entry_reader(&u, off, &r)) goto done;
    uint64_t code = rd_uleb(&r);
    if (r.bad || code == 0 || code >= t.ncodes || !t.by_code[code].specs) {
        PyErr_SetString(PyExc_ValueError, "damaged debugging information entry");
        goto done;
    }
    const Abbrev *a = &t.by_code[code];
    list = PyList_New(0);
    if (!list) goto done;
    for (uint32_t i = 0; i < a->nspecs; i++) {
        Value v;
        uint32_t form = a->specs[i].form;
        if (!read_value(&r, &u, form, a->specs[i].implicit, &v, 0)) {
            PyErr_SetString(PyExc_ValueError, "damaged debugging information entry");
            goto done;
        }
        PyObject *val = v.is_bytes ? PyBytes_FromStringAndSize((const char *)v.bytes,
                                                               (Py_ssize_t)v.nbytes)
                                   : PyLong_FromUnsignedLongLong(v.u);
        PyObject *item = val ? Py_BuildValue("(IIN)", a->specs[i].at, form, val) : NULL;
        if (!item || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            goto done;
        }
        Py_DECREF(item);
    }
    out = Py_BuildValue("(IO)", a->tag, list);
done:
    Py_XDECREF(list);
    call_end(&c);
    return out;
}

/* holds(sections, unit, abbrev, abbrev_offset, die_offset, pc) -> bool: whether the
 * extent of one DIE (low/high pc or ranges) holds pc; False when it has none. */
static PyObject *holds(PyObject *self, PyObject *args) {
    Call c;
    unsigned long long off, pc;
    PyObject *out = NULL;
    if (!call_begin(&c, args, "KK", &off, &pc)) goto done;
    const Unit u = c.u;
    const Abbrevs t = c.t;
    Rd r;
    if (!entry_reader(&u, off, &r)) goto done;
    const Abbrev *a;
    Extent e;
    if (!parse_die(&r, &u, &t, &a, &e) || a == NULL) {
        PyErr_SetString(PyExc_ValueError, "damaged debugging information entry");
        goto done;
    }
    int h = extent_holds(&u, &e, pc);
    if (h == -2) {
        PyErr_SetString(PyExc_ValueError, "damaged range list");
        goto done;
    }
    out = PyBool_FromLong(h == 1);
done:
    call_end(&c);
    return out;
}

static PyMethodDef methods[] = {
    {"holds", holds, METH_VARARGS, "Whether one DIE's extent holds an address."},
    {"line_rows", line_rows, METH_VARARGS, "Run a line-number program: sorted rows."},
    {"chain", chain, METH_VARARGS, "The DIEs of a unit that hold an address."},
    {"attrs", attrs, METH_VARARGS, "The attributes of one DIE."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_dwarfc", NULL, -1, methods};

PyMODINIT_FUNC PyInit__dwarfc(void) { return PyModule_Create(&module); }
