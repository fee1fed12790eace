/* One reader of a mapped core's segments for every C module that reads a core at
 * addresses (corefile/_vector.c, heap/_kernels.c): the core is a byte buffer, its PT_LOAD
 * segments three sorted uint64 arrays (start, end of the bytes the core holds, file
 * offset). locate() turns an address into a checked offset in the buffer; nothing here
 * can read outside it, whatever the addresses or the segment arrays say.
 */
#ifndef NSDEBUG_SPACE_H
#define NSDEBUG_SPACE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const uint8_t *buf;
    Py_ssize_t size;
    const uint64_t *start, *end, *off;
    Py_ssize_t nseg;
    Py_ssize_t last;          /* the segment of the previous lookup: addresses cluster */
} Space;

/* Offset in the buffer of `width` bytes at addr, or -1. */
static inline int64_t locate(Space *s, uint64_t addr, uint64_t width) {
    Py_ssize_t i = s->last;
    if (!(i < s->nseg && s->start[i] <= addr && addr < s->end[i])) {
        Py_ssize_t lo = 0, hi = s->nseg;
        while (lo < hi) {          /* the last segment starting at or below addr */
            Py_ssize_t mid = (lo + hi) / 2;
            if (s->start[mid] <= addr) lo = mid + 1; else hi = mid;
        }
        i = lo - 1;
        if (i < 0 || addr >= s->end[i]) return -1;
        s->last = i;
    }
    if (addr + width > s->end[i] || addr + width < addr) return -1;
    uint64_t o = s->off[i] + (addr - s->start[i]);
    /* A segment's file offset near 2^64 wraps the sum back into the buffer: bytes of
     * another place, read as if they were these (found by fuzz/h_space.py). */
    if (o < s->off[i] || o + width > (uint64_t)s->size || o + width < o) return -1;
    return (int64_t)o;
}

static inline int space(Space *s, Py_buffer *buf, Py_buffer *st, Py_buffer *en, Py_buffer *of) {
    Py_ssize_t n = st->len / 8;
    if (en->len / 8 != n || of->len / 8 != n) {
        PyErr_SetString(PyExc_ValueError, "segment arrays differ in length");
        return 0;
    }
    s->buf = buf->buf;
    s->size = buf->len;
    s->start = st->buf;
    s->end = en->buf;
    s->off = of->buf;
    s->nseg = n;
    s->last = 0;
    return 1;
}

/* The bit of visit()'s bit array for the object at addr (one per 16 bytes of the
 * file), or -1 when the core does not hold addr. */
static inline int64_t seen_slot(Space *s, uint64_t addr) {
    int64_t o = locate(s, addr, 1);
    return o < 0 ? -1 : o >> 4;
}

/* Whether the object at addr was marked by visit() (same bits: one per 16 bytes). */
static inline int seen_at(Space *s, const uint8_t *bits, uint64_t addr) {
    int64_t slot = seen_slot(s, addr);
    return slot >= 0 && (bits[slot >> 3] >> (slot & 7)) & 1;
}

/* The 8-byte word at addr (aligned), or 0 with *ok cleared when the core lacks it. */
static inline int64_t i64_at(Space *s, uint64_t addr, int *ok) {
    int64_t v = 0;
    int64_t o = (addr & 7) ? -1 : locate(s, addr, 8);
    if (o >= 0) memcpy(&v, s->buf + o, 8);
    else *ok = 0;
    return v;
}

static inline uint8_t u8_at(Space *s, uint64_t addr, int *ok) {
    int64_t o = locate(s, addr, 1);
    if (o < 0) { *ok = 0; return 0; }
    return s->buf[o];
}

/* The 8-byte word at addr, 0 when the core does not hold it. */
static inline uint64_t word_at(Space *s, uint64_t addr) {
    int ok = 1;
    return (uint64_t)i64_at(s, addr, &ok);
}

#endif
