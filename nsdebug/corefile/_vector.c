/* Reads of a mapped core at many addresses at once: the inner loop of every heap walk.
 *
 * gather() reads one little-endian value of 1, 4 or 8 bytes at each address: a value is
 * valid when all its bytes lie inside one segment and the address is aligned to the
 * width; an invalid read gives 0. locate_sized() gives the file offsets, visit() keeps a
 * bit per 16 bytes of the file (which addresses were seen), and chase() follows a linked
 * list through the same buffer. These know ELF segments, not Python: the kernels that
 * know CPython's structures are heap/_kernels.c. The segment reader is _space.h.
 */
#include "_space.h"

#include <sys/mman.h>
#include <unistd.h>

/* gather(buf, starts, ends, offs, addrs, width, out, ok) -> number of valid reads */
static PyObject *gather(PyObject *self, PyObject *args) {
    Py_buffer b[8];
    int width;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*iw*w*", &b[0], &b[1], &b[2], &b[3], &b[4], &width,
                          &b[5], &b[6]))
        return NULL;
    PyObject *result = NULL;
    Space s;
    Py_ssize_t n = b[4].len / 8;
    if (width != 1 && width != 4 && width != 8) {
        PyErr_SetString(PyExc_ValueError, "width must be 1, 4 or 8");
        goto done;
    }
    if (b[5].len < n * width || b[6].len < n) {
        PyErr_SetString(PyExc_ValueError, "output arrays too small");
        goto done;
    }
    if (!space(&s, &b[0], &b[1], &b[2], &b[3])) goto done;
    const uint64_t *addrs = b[4].buf;
    uint8_t *ok = b[6].buf;
    Py_ssize_t good = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < n; k++) {
        uint64_t a = addrs[k];
        int64_t o = (a & (uint64_t)(width - 1)) ? -1 : locate(&s, a, (uint64_t)width);
        ok[k] = o >= 0;
        good += o >= 0;
        if (width == 8) {
            uint64_t v = 0;
            if (o >= 0) memcpy(&v, s.buf + o, 8);
            ((uint64_t *)b[5].buf)[k] = v;
        } else if (width == 4) {
            uint32_t v = 0;
            if (o >= 0) memcpy(&v, s.buf + o, 4);
            ((uint32_t *)b[5].buf)[k] = v;
        } else {
            ((uint8_t *)b[5].buf)[k] = o >= 0 ? s.buf[o] : 0;
        }
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(good);
done:
    for (int i = 0; i < 7; i++) PyBuffer_Release(&b[i]);
    return result;
}

/* locate_sized(size, starts, ends, offs, addrs, width, out_offsets): file offset of
 * each read in a core of `size` bytes, -1 where it is not in the core (for reads of
 * variable-sized data). The core's bytes are not needed, only their number: a mapped
 * core passes its length, corefile.windows a capture's core it has a window at a time. */
static PyObject *locate_sized(PyObject *self, PyObject *args) {
    Py_buffer b[5];
    Py_ssize_t size;
    long long width;
    if (!PyArg_ParseTuple(args, "ny*y*y*y*Lw*", &size, &b[0], &b[1], &b[2], &b[3], &width,
                          &b[4]))
        return NULL;
    PyObject *result = NULL;
    Py_buffer none = {.buf = NULL, .len = size < 0 ? 0 : size};   /* locate() reads no byte */
    Space s;
    Py_ssize_t n = b[3].len / 8;
    if (width < 1 || b[4].len < n * 8) {
        PyErr_SetString(PyExc_ValueError, "bad width or output too small");
        goto done;
    }
    if (!space(&s, &none, &b[0], &b[1], &b[2])) goto done;
    const uint64_t *addrs = b[3].buf;
    int64_t *out = b[4].buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < n; k++) out[k] = locate(&s, addrs[k], (uint64_t)width);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    for (int i = 0; i < 5; i++) PyBuffer_Release(&b[i]);
    return result;
}

/* visit(buf, starts, ends, offs, addrs, bits, fresh) -> count: for each address inside
 * the core, test and set its bit in `bits` (one per 16 bytes of the file: objects are
 * 16-aligned); fresh[k] = 1 for the first sighting of an address not seen before, 2 for
 * an address outside the core's bytes (the caller keeps those apart), else 0. One pass:
 * later copies of a new address in the same batch find its bit set. */
static PyObject *visit(PyObject *self, PyObject *args) {
    Py_buffer b[7];
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*w*w*", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
                          &b[6]))
        return NULL;
    PyObject *result = NULL;
    Space s;
    Py_ssize_t n = b[4].len / 8;
    if (b[6].len < n || b[5].len * 128 < b[0].len) {
        PyErr_SetString(PyExc_ValueError, "output or bit array too small");
        goto done;
    }
    if (!space(&s, &b[0], &b[1], &b[2], &b[3])) goto done;
    const uint64_t *addrs = b[4].buf;
    uint8_t *bits = b[5].buf, *fresh = b[6].buf;
    Py_ssize_t count = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < n; k++) {
        int64_t slot = seen_slot(&s, addrs[k]);
        if (slot < 0) {
            fresh[k] = 2;
            continue;
        }
        uint8_t m = (uint8_t)(1u << (slot & 7));
        if (bits[slot >> 3] & m) {
            fresh[k] = 0;
        } else {
            bits[slot >> 3] |= m;
            fresh[k] = 1;
            count++;
        }
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(count);
done:
    for (int i = 0; i < 7; i++) PyBuffer_Release(&b[i]);
    return result;
}

/* chase(buf, starts, ends, offs, head, next_off, mask, limit, out[, start]) -> count: the
 * nodes of a circular list after `start` (the head by default; a node already found, to
 * go on from it): next = *(node + next_off) & mask, until the head comes back, a NULL, an
 * unreadable node, or `limit` nodes (out holds `limit`). Returns -count - 1 when the list
 * did not come back to its head. */
static PyObject *chase(PyObject *self, PyObject *args) {
    Py_buffer b[5];
    unsigned long long head, next_off, mask, start = 0;
    Py_ssize_t limit;
    int has_start = PyTuple_GET_SIZE(args) > 9;
    if (!PyArg_ParseTuple(args, "y*y*y*y*KKKnw*|K", &b[0], &b[1], &b[2], &b[3], &head,
                          &next_off, &mask, &limit, &b[4], &start))
        return NULL;
    if (!has_start) start = head;
    PyObject *result = NULL;
    Space s;
    if (limit < 0 || b[4].len < limit * 8) {
        PyErr_SetString(PyExc_ValueError, "output too small");
        goto done;
    }
    if (!space(&s, &b[0], &b[1], &b[2], &b[3])) goto done;
    uint64_t *out = b[4].buf;
    Py_ssize_t count = 0;
    int closed = 0;
    Py_BEGIN_ALLOW_THREADS
    uint64_t node = start;
    while (count < limit) {
        int64_t o = locate(&s, node + next_off, 8);
        if (o < 0) break;
        uint64_t next;
        memcpy(&next, s.buf + o, 8);
        next &= mask;
        if (next == head) { closed = 1; break; }
        if (next == 0) break;
        out[count++] = next;
        node = next;
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(closed ? count : -count - 1);
done:
    for (int i = 0; i < 5; i++) PyBuffer_Release(&b[i]);
    return result;
}

/* The LZ4 block decoder a capture's blocks are handed to: LZ4_decompress_safe's
 * signature (liblz4's stable API; the address comes from the lz4 package's own module,
 * lz4source.py), which never writes past `capacity` nor reads past `size`. */
typedef int (*lz4_decode_fn)(const char *src, char *dst, int size, int capacity);

/* lz4_blocks(decoder, data, rows, runs, base, block_size, total, limit, out) -> None or
 * (block, why): the blocks of each run [first, end) of `runs` (pairs of int64) of an
 * arthur container decompressed into `out`, block b at (b - base) * block_size, all in
 * one call with the GIL left (a window of a capture is many runs: one call each made a
 * thread wait for the GIL once a run). `rows` is the container's index: per block a u64
 * offset of its stored size (u32) in `data`, the u32 stored size and u32 flags (bit 31:
 * stored raw); `limit` is where the index starts (nothing stored lies past it). why: 1 a
 * block lies past the data, 2 a raw block of the wrong size, 3 a block that does not
 * decompress to its size, 4 `out` has no place for the block. */
static PyObject *lz4_blocks(PyObject *self, PyObject *args) {
    unsigned long long fn_addr, total, limit;
    Py_ssize_t base;
    unsigned int block_size;
    Py_buffer data, rows, runs, out;
    if (!PyArg_ParseTuple(args, "Ky*y*y*nIKKw*", &fn_addr, &data, &rows, &runs, &base,
                          &block_size, &total, &limit, &out))
        return NULL;
    PyObject *result = NULL;
    lz4_decode_fn decode = (lz4_decode_fn)(uintptr_t)fn_addr;
    const int64_t *run = runs.buf;
    Py_ssize_t nruns = runs.len / 16, count = rows.len / 16;
    if (!fn_addr || block_size == 0 || block_size > (1u << 22) || base < 0 ||
            runs.len % 16 || limit > (uint64_t)data.len) {
        PyErr_SetString(PyExc_ValueError, "bad arguments");
        goto done;
    }
    for (Py_ssize_t r = 0; r < nruns; r++) {
        if (run[2 * r] < base || run[2 * r + 1] < run[2 * r] || run[2 * r + 1] > count) {
            PyErr_SetString(PyExc_ValueError, "bad arguments");
            goto done;
        }
    }
    Py_ssize_t bad = -1;
    int why = 0;
    const uint8_t *src = data.buf, *row = rows.buf;
    uint8_t *dst = out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < nruns && bad < 0; r++) {
        for (Py_ssize_t i = run[2 * r]; i < run[2 * r + 1]; i++) {
            uint64_t coff;
            uint32_t stored, flags;
            memcpy(&coff, row + 16 * i, 8);
            memcpy(&stored, row + 16 * i + 8, 4);
            memcpy(&flags, row + 16 * i + 12, 4);
            uint64_t start = (uint64_t)i * block_size;
            uint64_t want = start >= total ? 0 : total - start;
            if (want > block_size) want = block_size;
            uint64_t at = (uint64_t)(i - base) * block_size;
            if (coff > limit || limit - coff < 4 || limit - coff - 4 < stored) {
                bad = i, why = 1;
                break;
            }
            if (at > (uint64_t)out.len || (uint64_t)out.len - at < want) {
                bad = i, why = 4;
                break;
            }
            const char *body = (const char *)src + coff + 4;
            if (flags & 0x80000000u) {
                if (stored != want) {
                    bad = i, why = 2;
                    break;
                }
                memcpy(dst + at, body, want);
            } else if (stored > INT32_MAX ||
                       decode(body, (char *)dst + at, (int)stored, (int)want) != (int)want) {
                bad = i, why = 3;
                break;
            }
        }
    }
    Py_END_ALLOW_THREADS
    if (bad < 0) {
        result = Py_NewRef(Py_None);
    } else {
        result = Py_BuildValue("ni", bad, why);
    }
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&rows);
    PyBuffer_Release(&runs);
    PyBuffer_Release(&out);
    return result;
}

/* overlay(mapping, offset, length, fd): the first `length` bytes of file `fd` mapped
 * read-only and shared over mapping[offset:offset + length] (MAP_FIXED), in place of what
 * `mapping` (a read-only mmap) showed there. A capture's copy is written into one file per
 * thread, as a file takes its writers one at a time, and its mapping is made one range
 * again this way (lz4source.py). mmap.close() unmaps the whole range, overlays included.
 * The place must lie inside the mapping and start on a page. If the call fails, Linux
 * may have unmapped the place already: the caller must not read the mapping again. */
static PyObject *overlay(PyObject *self, PyObject *args) {
    Py_buffer map;
    Py_ssize_t offset, length;
    int fd;
    if (!PyArg_ParseTuple(args, "y*nni", &map, &offset, &length, &fd))
        return NULL;
    PyObject *result = NULL;
    long page = sysconf(_SC_PAGESIZE);
    char *at = (char *)map.buf + offset;
    if (page <= 0 || offset < 0 || length <= 0 || offset > map.len ||
            length > map.len - offset || (uintptr_t)map.buf % (uintptr_t)page ||
            offset % page) {
        PyErr_SetString(PyExc_ValueError, "overlay: not a page-aligned place in the mapping");
        goto done;
    }
    void *got = mmap(at, (size_t)length, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
    if (got == MAP_FAILED) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&map);
    return result;
}

/* populate(buffer) -> bool: the pages of a writable buffer (page-aligned at its start)
 * given memory now, all in one madvise(MADV_POPULATE_WRITE) with the GIL left, rather
 * than one fault at a time as they are first written. Where each first write is a trap
 * (and on a VM, often an exit to the host as well), the batch costs less: a 2 GiB mapping
 * here, populated then written in a median of 1.1 s, against 2.4 s written page by page
 * (6 runs each). Not Python's mmap.madvise: it keeps the GIL, and two threads populating
 * a GiB each took as long as one doing both (1.1-1.2 s; here 0.65 s). False where the
 * kernel does not know the advice (before Linux 5.14) or refuses it (no memory left: the
 * writes fault then, as without it). */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
static PyObject *populate(PyObject *self, PyObject *args) {
    Py_buffer buf;
    if (!PyArg_ParseTuple(args, "w*", &buf))
        return NULL;
    long page = sysconf(_SC_PAGESIZE);
    int ok = 0;
    if (page > 0 && buf.len > 0 && (uintptr_t)buf.buf % (uintptr_t)page == 0) {
        Py_BEGIN_ALLOW_THREADS
        ok = madvise(buf.buf, (size_t)buf.len, MADV_POPULATE_WRITE) == 0;
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&buf);
    return PyBool_FromLong(ok);
}

/* The end of a process whose interpreter has run out of memory at a limit (a data
 * segment or address space limit: `nsdebug triage --memory-limit` sets one per
 * analysis, a user may run nsdebug under `ulimit -d` or `-v`). CPython does not survive
 * every small allocation refused: 3.11 to 3.13 make an int of the frame's last instruction
 * before they enter a handler that needs it (a `with`, an `except` cleanup), and when that
 * int cannot be made they unwind to the same handler again, for ever, at 100% CPU (seen in
 * CI: a heap walk under Dask, whose workers set MALLOC_TRIM_THRESHOLD_). A small request
 * refused means the interpreter itself has no room left, whatever would come next. So
 * exit_when_exhausted(status, small, line) wraps the allocators of the three domains and
 * the arena allocator: a request of at most `small` bytes, or an arena, refused ends the
 * process at once with `status` and `line` on stderr. A larger request fails as before,
 * a MemoryError its caller may handle (a damaged length asking for gigabytes is not the
 * limit's doing). Once per process, before any other thread runs. */
static int exhausted_status = 0;
static size_t exhausted_small = 0;
static char exhausted_line[512];              /* made when wrapped: no allocation at the end */
static size_t exhausted_len = 0;
static PyMemAllocatorEx guarded[3];           /* the allocators wrapped, by domain */
static PyObjectArenaAllocator guarded_arena = {NULL, NULL, NULL};

static void exhausted(void) {
    ssize_t unused = write(2, exhausted_line, exhausted_len);
    (void)unused;
    _exit(exhausted_status);
}

static void *guard_malloc(void *ctx, size_t size) {
    PyMemAllocatorEx *base = ctx;
    void *p = base->malloc(base->ctx, size);
    if (p == NULL && size <= exhausted_small) exhausted();
    return p;
}

static void *guard_calloc(void *ctx, size_t nelem, size_t elsize) {
    PyMemAllocatorEx *base = ctx;
    void *p = base->calloc(base->ctx, nelem, elsize);
    if (p == NULL && (elsize == 0 || nelem <= exhausted_small / elsize)) exhausted();
    return p;
}

static void *guard_realloc(void *ctx, void *ptr, size_t size) {
    PyMemAllocatorEx *base = ctx;
    void *p = base->realloc(base->ctx, ptr, size);
    if (p == NULL && size <= exhausted_small) exhausted();
    return p;
}

static void guard_free(void *ctx, void *ptr) {
    PyMemAllocatorEx *base = ctx;
    base->free(base->ctx, ptr);
}

static void *guard_arena_alloc(void *ctx, size_t size) {
    void *p = guarded_arena.alloc(guarded_arena.ctx, size);
    if (p == NULL) exhausted();
    return p;
}

static void guard_arena_free(void *ctx, void *ptr, size_t size) {
    guarded_arena.free(guarded_arena.ctx, ptr, size);
}

static PyObject *exit_when_exhausted(PyObject *self, PyObject *args) {
    int status;
    Py_ssize_t small, len;
    const char *line;
    if (!PyArg_ParseTuple(args, "iny#", &status, &small, &line, &len)) return NULL;
    if (status < 0 || status > 255 || small < 0 || len > (Py_ssize_t)sizeof exhausted_line) {
        PyErr_SetString(PyExc_ValueError, "exit_when_exhausted: a status of 0 to 255, a "
                        "size of 0 or more, a line of at most 512 bytes");
        return NULL;
    }
    if (guarded_arena.alloc != NULL) Py_RETURN_FALSE;       /* wrapped already */
    exhausted_status = status;
    exhausted_small = (size_t)small;
    memcpy(exhausted_line, line, (size_t)len);
    exhausted_len = (size_t)len;
    static const PyMemAllocatorDomain domains[3] = {
        PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ};
    for (int i = 0; i < 3; i++) {
        PyMem_GetAllocator(domains[i], &guarded[i]);
        PyMemAllocatorEx wrap = {&guarded[i], guard_malloc, guard_calloc, guard_realloc,
                                 guard_free};
        PyMem_SetAllocator(domains[i], &wrap);
    }
    PyObject_GetArenaAllocator(&guarded_arena);
    PyObjectArenaAllocator wrap = {NULL, guard_arena_alloc, guard_arena_free};
    PyObject_SetArenaAllocator(&wrap);
    Py_RETURN_TRUE;
}

static PyMethodDef methods[] = {
    {"gather", gather, METH_VARARGS,
     "gather(buf, starts, ends, offs, addrs, width, out, ok) -> valid count"},
    {"locate_sized", locate_sized, METH_VARARGS,
     "locate_sized(size, starts, ends, offs, addrs, width, out): file offsets or -1"},
    {"visit", visit, METH_VARARGS,
     "visit(buf, starts, ends, offs, addrs, bits, fresh) -> new count"},
    {"chase", chase, METH_VARARGS,
     "chase(buf, starts, ends, offs, head, next_off, mask, limit, out[, start]) -> count"},
    {"lz4_blocks", lz4_blocks, METH_VARARGS,
     "lz4_blocks(decoder, data, rows, runs, base, block_size, total, limit, out) -> "
     "None or (block, why)"},
    {"populate", populate, METH_VARARGS,
     "populate(buffer) -> bool: its pages given memory now, in one call"},
    {"overlay", overlay, METH_VARARGS,
     "overlay(mapping, offset, length, fd): file fd mapped over mapping[offset:]"},
    {"exit_when_exhausted", exit_when_exhausted, METH_VARARGS,
     "exit_when_exhausted(status, small, line) -> wrapped: exit at once, saying line, when "
     "a request of at most small bytes is refused"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_vector", "Reads of a mapped core at many addresses at once.",
    -1, methods,
};

PyMODINIT_FUNC PyInit__vector(void) {
    return PyModule_Create(&module);
}
