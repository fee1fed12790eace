/* The loops of the heap graph that no numpy expression can do: a depth-first order,
 * dominators, retained sizes, a breadth-first tree, and the decimal text of the
 * snapshot's number arrays. Arrays come and go as Python buffers (numpy arrays, read
 * and written in place), so this module needs neither numpy's headers nor a copy.
 *
 * Dominators: the semi-NCA algorithm (Georgiadis, "Linear-Time Algorithms for Dominators
 * and Related Problems", 2005): semi-dominators as Lengauer and Tarjan compute them (eval
 * with path compression), then each immediate dominator as the nearest common ancestor
 * of its DFS parent and its semi-dominator, walking the partly built tree. Nodes are
 * renumbered in DFS preorder; a dominator always precedes what it dominates there.
 *
 * Sizes: nodes are int32 (under 2**31), edge positions int64. Every array is checked
 * against the counts it must hold before anything is read.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    Py_buffer b;
    int held;
} Buf;

static void release(Buf *bufs, int n) {
    for (int i = 0; i < n; i++)
        if (bufs[i].held) PyBuffer_Release(&bufs[i].b);
}

static int need(Buf *b, Py_ssize_t items, Py_ssize_t itemsize, const char *what) {
    if (b->b.len < items * itemsize) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd bytes, need %zd", what, b->b.len,
                     items * itemsize);
        return 0;
    }
    return 1;
}

/* Check the CSR arrays: starts non-decreasing within [0, m], targets within [0, n). */
static int check_csr(const int64_t *start, Py_ssize_t n, const int32_t *to, Py_ssize_t m) {
    if (start[0] != 0 || start[n] > m) {
        PyErr_SetString(PyExc_ValueError, "edge starts out of range");
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (start[i + 1] < start[i]) {
            PyErr_SetString(PyExc_ValueError, "edge starts decrease");
            return 0;
        }
    for (int64_t e = 0; e < start[n]; e++)
        if (to[e] < 0 || to[e] >= n) {
            PyErr_SetString(PyExc_ValueError, "edge target out of range");
            return 0;
        }
    return 1;
}

/* Iterative DFS from root: preorder vertex list and DFS-tree parents (as preorder
 * numbers). pre[v] = -1 for unreached nodes. Returns the number of reached nodes, or -1
 * when its stack could not be had (no Python error set: it runs without the GIL). Its
 * stack is `stack` and `next` (n items each) where given, else allocated. */
static Py_ssize_t dfs(const int64_t *start, const int32_t *to, Py_ssize_t n, int32_t root,
                      int32_t *pre, int32_t *vertex, int32_t *parent, int32_t *stack_in,
                      int64_t *next_in) {
    int32_t *stack = stack_in ? stack_in : malloc(sizeof(int32_t) * (size_t)n);
    int64_t *next = next_in ? next_in : malloc(sizeof(int64_t) * (size_t)n);
    if (!stack || !next) {
        if (!stack_in) free(stack);
        if (!next_in) free(next);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) pre[i] = -1;
    Py_ssize_t k = 0, top = 0;
    pre[root] = 0;
    vertex[0] = root;
    parent[0] = 0;
    k = 1;
    stack[0] = root;
    next[0] = start[root];
    top = 1;
    while (top) {
        int32_t v = stack[top - 1];
        if (next[top - 1] < start[v + 1]) {
            int32_t t = to[next[top - 1]++];
            if (pre[t] < 0) {
                pre[t] = (int32_t)k;
                vertex[k] = t;
                parent[k] = pre[v];
                k++;
                stack[top] = t;
                next[top] = start[t];
                top++;
            }
        } else {
            top--;
        }
    }
    if (!stack_in) free(stack);
    if (!next_in) free(next);
    return k;
}

/* The dominator pass's working arrays, in one caller's buffer (a spilled walk's scratch
 * file: pages the kernel may write out, where malloc's can only be kept): each piece
 * 8-aligned, in the order dominators() takes them. The predecessor lists get room for
 * every edge (only the backward ones are kept, counted later). */
#define ALIGN8(x) (((x) + 7) & ~(size_t)7)
static size_t dominator_scratch_bytes(Py_ssize_t n, Py_ssize_t m) {
    size_t n4 = ALIGN8(4 * (size_t)n);
    return 5 * n4 + ALIGN8(4 * ((size_t)n + 1)) + ALIGN8(4 * (size_t)(m ? m : 1));
}

/* The optional scratch argument of a pass: held in `b` unless None. 0 with the error set
 * when it is no writable buffer. */
static int hold_scratch(PyObject *obj, Buf *b) {
    if (obj == Py_None) return 1;
    if (PyObject_GetBuffer(obj, &b->b, PyBUF_WRITABLE) < 0) return 0;
    b->held = 1;
    return 1;
}

/* Where a held scratch buffer's pieces start: NULL with a ValueError when it holds fewer
 * than `want` bytes or is not 8-aligned (the pieces hold int64s). */
static uint8_t *scratch_start(Buf *b, size_t want) {
    if (b->b.len < 0 || (size_t)b->b.len < want) {
        PyErr_Format(PyExc_ValueError, "scratch holds %zd bytes, need %zu", b->b.len, want);
        return NULL;
    }
    if ((uintptr_t)b->b.buf & 7) {
        PyErr_SetString(PyExc_ValueError, "scratch is not 8-aligned");
        return NULL;
    }
    return b->b.buf;
}

/* group_retained()'s: the dominator tree's child offsets (int64, n + 1), the DFS's
 * next-child positions (int64), the children and the DFS stack (int32 each). */
static size_t group_scratch_bytes(Py_ssize_t n) {
    return 8 * ((size_t)n + 1) + 8 * (size_t)n + ALIGN8(4 * (size_t)n) + 4 * (size_t)n;
}

static PyObject *group_scratch(PyObject *self, PyObject *args) {
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "n", &n)) return NULL;
    if (n < 0 || n >= INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "bad node count");
        return NULL;
    }
    return PyLong_FromSize_t(group_scratch_bytes(n));
}

static PyObject *dominator_scratch(PyObject *self, PyObject *args) {
    Py_ssize_t n, m;
    if (!PyArg_ParseTuple(args, "nn", &n, &m)) return NULL;
    if (n < 0 || m < 0 || n >= INT32_MAX || m >= UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "bad node or edge count");
        return NULL;
    }
    return PyLong_FromSize_t(dominator_scratch_bytes(n, m));
}

/* dominators(edge_start, e_to, n, root, idom_out, order_out[, scratch]) -> reached.
 * idom_out[v]: the immediate dominator of v (root: itself; unreached: -1).
 * order_out[0:reached]: reached nodes in DFS preorder (each after its dominator).
 * scratch: where given (not None), the working arrays are carved from it
 * (dominator_scratch(n, len(e_to)) bytes at least) instead of malloc'd. */
static PyObject *dominators(PyObject *self, PyObject *args) {
    Buf b[5] = {{.held = 0}};
    Py_ssize_t n;
    int root;
    PyObject *scratch_obj = Py_None;
    if (!PyArg_ParseTuple(args, "y*y*niw*w*|O", &b[0].b, &b[1].b, &n, &root, &b[2].b,
                          &b[3].b, &scratch_obj))
        return NULL;
    for (int i = 0; i < 4; i++) b[i].held = 1;
    if (!hold_scratch(scratch_obj, &b[4])) {
        release(b, 4);
        return NULL;
    }
    PyObject *result = NULL;
    int32_t *pre = NULL, *semi = NULL, *label = NULL, *anc = NULL, *rsrc = NULL, *path = NULL;
    int32_t path_cap = 0;
    int failed = 0;
    uint32_t *rstart = NULL;
    if (n <= 0 || n >= INT32_MAX || root < 0 || root >= n) {
        PyErr_SetString(PyExc_ValueError, "bad node count or root");
        goto done;
    }
    if (!need(&b[0], n + 1, 8, "edge_start") || !need(&b[2], n, 4, "idom_out") ||
        !need(&b[3], n, 4, "order_out"))
        goto done;
    const int64_t *start = b[0].b.buf;
    const int32_t *to = b[1].b.buf;
    Py_ssize_t m = b[1].b.len / 4;
    if (!check_csr(start, n, to, m)) goto done;
    int32_t *idom = b[2].b.buf, *order = b[3].b.buf;
    /* Memory: the preorder list is built in place in order_out, the DFS parents in
     * idom_out (read for the last time before the dominators are written there), and
     * the eval's path stack grows as deep as a compression goes (rarely far). */
    int32_t *vertex = order, *parent = idom;
    /* From a scratch buffer: pre, semi, rstart, fill, label, anc, rsrc, each 8-aligned
     * (dominator_scratch_bytes); the DFS's stack lies over semi and its next-edge array
     * over rstart and fill, all unused until it is done. None of them is freed at the
     * end. */
    int own = !b[4].held;
    int32_t *s_semi = NULL, *s_fill = NULL, *s_label = NULL, *s_anc = NULL, *s_rsrc = NULL;
    uint32_t *s_rstart = NULL;
    if (!own) {
        uint8_t *at = scratch_start(&b[4], dominator_scratch_bytes(n, m));
        if (!at) goto done;
        size_t n4 = ALIGN8(4 * (size_t)n);
        pre = (int32_t *)at; at += n4;
        s_semi = (int32_t *)at; at += n4;
        s_rstart = (uint32_t *)at; at += ALIGN8(4 * ((size_t)n + 1));
        s_fill = (int32_t *)at; at += n4;
        s_label = (int32_t *)at; at += n4;
        s_anc = (int32_t *)at; at += n4;
        s_rsrc = (int32_t *)at;
    } else {
        pre = malloc(sizeof(int32_t) * n);
        if (!pre) { PyErr_NoMemory(); goto done; }
    }
    Py_ssize_t k;
    Py_BEGIN_ALLOW_THREADS
    k = dfs(start, to, n, (int32_t)root, pre, vertex, parent, s_semi, (int64_t *)s_rstart);
    Py_END_ALLOW_THREADS
    if (k < 0) { PyErr_NoMemory(); goto done; }

    /* Predecessors of each reached node, in preorder numbers (edges between reached).
     * A predecessor v that precedes w in preorder is not yet linked when w's turn
     * comes: its eval is v itself, so only the least of those matters, and it goes
     * straight into semi[w]. Only predecessors after w (not the DFS tree's edges, for
     * one: they all go forward) are kept in lists, whose offsets are 32-bit: no heap
     * nsdebug can hold has 2**32 of them. */
    if (own) {
        semi = malloc(sizeof(int32_t) * (size_t)k);
        rstart = calloc((size_t)k + 1, sizeof(uint32_t));
        if (!semi || !rstart) { PyErr_NoMemory(); goto done; }
    } else {
        semi = s_semi;
        rstart = s_rstart;
    }
    uint64_t back = 0;
    Py_BEGIN_ALLOW_THREADS
    if (!own) memset(rstart, 0, sizeof(uint32_t) * ((size_t)k + 1));  /* (calloc'd when own) */
    for (Py_ssize_t i = 0; i < k; i++) semi[i] = (int32_t)i;
    for (Py_ssize_t i = 0; i < k; i++) {
        int32_t v = vertex[i];
        for (int64_t e = start[v]; e < start[v + 1]; e++) {
            int32_t t = pre[to[e]];
            if (t < 0 || t == i) continue;
            if (t > i) {
                if (i < semi[t]) semi[t] = (int32_t)i;
            } else {
                rstart[t + 1]++;
                back++;
            }
        }
    }
    Py_END_ALLOW_THREADS
    if (back >= UINT32_MAX) {
        PyErr_SetString(PyExc_MemoryError, "over 2**32 edges: too many for the dominator pass");
        goto done;
    }
    for (Py_ssize_t i = 0; i < k; i++) rstart[i + 1] += rstart[i];
    rsrc = own ? malloc(sizeof(int32_t) * (size_t)(back ? back : 1)) : s_rsrc;
    if (!rsrc) { PyErr_NoMemory(); goto done; }

    Py_BEGIN_ALLOW_THREADS
    {
        uint32_t *fill = own ? malloc(sizeof(uint32_t) * (size_t)k) : (uint32_t *)s_fill;
        if (fill) {
            memcpy(fill, rstart, sizeof(uint32_t) * (size_t)k);
            for (Py_ssize_t i = 0; i < k; i++) {
                int32_t v = vertex[i];
                for (int64_t e = start[v]; e < start[v + 1]; e++) {
                    int32_t t = pre[to[e]];
                    if (t >= 0 && t < i) rsrc[fill[t]++] = (int32_t)i;
                }
            }
            /* Only preorder numbers from here on: the per-node arrays of the eval
             * phase are made once the predecessor lists' scratch is gone (a lower
             * peak on a heap of millions of objects). */
            if (own) {
                free(fill);
                free(pre);
                pre = NULL;
                label = malloc(sizeof(int32_t) * k);
                anc = malloc(sizeof(int32_t) * k);
            } else {
                label = s_label;
                anc = s_anc;
            }
            if (!label || !anc) fill = NULL;
        }
        if (fill) {
            for (Py_ssize_t i = 0; i < k; i++) {
                label[i] = (int32_t)i;
                anc[i] = -1;
            }
            for (Py_ssize_t w = k - 1; w > 0; w--) {
                for (uint32_t j = rstart[w]; j < rstart[w + 1]; j++) {
                    int32_t v = rsrc[j], u;
                    if (anc[v] < 0) {
                        u = v;
                    } else {
                        /* eval(v) with path compression, iteratively. */
                        int32_t depth = 0, x = v;
                        while (anc[anc[x]] >= 0) {
                            if (depth == path_cap) {
                                size_t cap = path_cap ? 2 * (size_t)path_cap : 4096;
                                int32_t *grown = realloc(path, sizeof(int32_t) * cap);
                                if (!grown) { failed = 1; break; }
                                path = grown;
                                path_cap = (int32_t)(cap < (size_t)k ? cap : (size_t)k);
                            }
                            path[depth++] = x;
                            x = anc[x];
                        }
                        if (failed) break;
                        while (depth > 0) {
                            int32_t y = path[--depth];
                            if (semi[label[anc[y]]] < semi[label[y]]) label[y] = label[anc[y]];
                            anc[y] = anc[anc[y]];
                        }
                        u = label[v];
                    }
                    if (semi[u] < semi[w]) semi[w] = semi[u];
                }
                if (failed) break;
                anc[w] = parent[w];
            }
            if (failed) fill = NULL;
        }
        if (fill) {
            /* Immediate dominators: the NCA of the DFS parent and the semi-dominator. */
            int32_t *dom = anc;           /* reused: its eval use is over */
            dom[0] = 0;
            for (Py_ssize_t w = 1; w < k; w++) {
                int32_t d = parent[w];
                while (d > semi[w]) d = dom[d];
                dom[w] = d;
            }
            /* parent (in idom) is read no more; vertex is order already. The
             * dominators by preorder number go to semi, then to idom by node. */
            for (Py_ssize_t w = 0; w < k; w++) semi[w] = vertex[dom[w]];
            for (Py_ssize_t i = 0; i < n; i++) idom[i] = -1;
            for (Py_ssize_t w = 0; w < k; w++) idom[vertex[w]] = semi[w];
        }
        if (!fill) k = -1;
    }
    Py_END_ALLOW_THREADS
    if (k < 0) { PyErr_NoMemory(); goto done; }
    result = PyLong_FromSsize_t(k);
done:
    if (own) {
        free(pre); free(semi); free(label); free(anc);
        free(rsrc); free(rstart);
    }
    free(path);
    release(b, 5);
    return result;
}

/* retained(order, reached, idom, size, out): out[v] = size[v] plus all v dominates. */
static PyObject *retained(PyObject *self, PyObject *args) {
    Buf b[4] = {{.held = 0}};
    Py_ssize_t k;
    if (!PyArg_ParseTuple(args, "y*ny*y*w*", &b[0].b, &k, &b[1].b, &b[2].b, &b[3].b))
        return NULL;
    for (int i = 0; i < 4; i++) b[i].held = 1;
    PyObject *result = NULL;
    Py_ssize_t n = b[1].b.len / 4;
    if (!need(&b[0], k, 4, "order") || !need(&b[2], n, 8, "size") ||
        !need(&b[3], n, 8, "out"))
        goto done;
    const int32_t *order = b[0].b.buf, *idom = b[1].b.buf;
    const uint64_t *size = b[2].b.buf;
    uint64_t *out = b[3].b.buf;
    for (Py_ssize_t i = 0; i < k; i++)
        if (order[i] < 0 || order[i] >= n || idom[order[i]] < 0 || idom[order[i]] >= n) {
            PyErr_SetString(PyExc_ValueError, "order or idom out of range");
            goto done;
        }
    Py_BEGIN_ALLOW_THREADS
    memcpy(out, size, sizeof(uint64_t) * (size_t)n);
    for (Py_ssize_t i = k - 1; i > 0; i--) {
        int32_t v = order[i];
        out[idom[v]] += out[v];
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    release(b, 4);
    return result;
}

/* bfs_parents(edge_start, e_to, n, root, parent_out, phase, found_out): parent_out[v] =
 * the edge by which a breadth-first search from root first reached v (-1: root, or not
 * reached); parent_out may be None when only the phases are wanted (8 bytes per node
 * less). A node with phase[v] > 0 is expanded only once every node of lower phases
 * has been (Python's roots before C's, the unreachable last); found_out[v] = the phase
 * in which v was reached (255: never). */
static PyObject *bfs_parents(PyObject *self, PyObject *args) {
    Buf b[5] = {{.held = 0}};
    Py_ssize_t n;
    int root;
    PyObject *parent_obj;
    if (!PyArg_ParseTuple(args, "y*y*niOy*w*", &b[0].b, &b[1].b, &n, &root, &parent_obj,
                          &b[3].b, &b[4].b))
        return NULL;
    b[0].held = b[1].held = b[3].held = b[4].held = 1;
    PyObject *result = NULL;
    int32_t *queue = NULL, *deferred = NULL;
    if (parent_obj != Py_None) {
        if (PyObject_GetBuffer(parent_obj, &b[2].b, PyBUF_WRITABLE) < 0) goto done;
        b[2].held = 1;
    }
    if (n <= 0 || n >= INT32_MAX || root < 0 || root >= n) {
        PyErr_SetString(PyExc_ValueError, "bad node count or root");
        goto done;
    }
    if (!need(&b[0], n + 1, 8, "edge_start") || (b[2].held && !need(&b[2], n, 8, "parent_out")) ||
        !need(&b[3], n, 1, "phase") || !need(&b[4], n, 1, "found_out"))
        goto done;
    const int64_t *start = b[0].b.buf;
    const int32_t *to = b[1].b.buf;
    if (!check_csr(start, n, to, b[1].b.len / 4)) goto done;
    int64_t *parent = b[2].held ? b[2].b.buf : NULL;
    const uint8_t *phase = b[3].b.buf;
    uint8_t *found = b[4].b.buf;
    for (Py_ssize_t i = 0; i < n; i++)
        if (phase[i] == 255) {                    /* 255 marks "not seen" in found */
            PyErr_SetString(PyExc_ValueError, "phase 255 is reserved");
            goto done;
        }
    queue = malloc(sizeof(int32_t) * n);
    deferred = malloc(sizeof(int32_t) * n);
    if (!queue || !deferred) { PyErr_NoMemory(); goto done; }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) found[i] = 255;        /* 255: not seen yet */
    if (parent)
        for (Py_ssize_t i = 0; i < n; i++) parent[i] = -1;
    Py_ssize_t head = 0, tail = 0, ndef = 0;
    int current = 0;
    queue[tail++] = root;
    found[root] = 0;
    for (;;) {
        while (head < tail) {
            int32_t v = queue[head++];
            if (phase[v] > current) {             /* its turn comes later */
                deferred[ndef++] = v;
                continue;
            }
            for (int64_t e = start[v]; e < start[v + 1]; e++) {
                int32_t t = to[e];
                if (found[t] == 255) {
                    if (parent) parent[t] = e;
                    found[t] = (uint8_t)current;
                    queue[tail++] = t;
                }
            }
        }
        /* The deferred nodes of the next phase go back into the queue. */
        int next = 256;
        for (Py_ssize_t i = 0; i < ndef; i++)
            if (phase[deferred[i]] < next) next = phase[deferred[i]];
        if (next == 256) break;
        current = next;
        head = tail = 0;
        Py_ssize_t keep = 0;
        for (Py_ssize_t i = 0; i < ndef; i++) {
            if (phase[deferred[i]] == next) queue[tail++] = deferred[i];
            else deferred[keep++] = deferred[i];
        }
        ndef = keep;
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    free(queue);
    free(deferred);
    release(b, 5);
    return result;
}

/* bfs_more(edge_start, e_to, n, seeds, phase, found): a breadth-first search from the
 * nodes `seeds` over the nodes not yet found (found[v] == 255), which it marks `phase`;
 * returns how many it marked. It finishes a BFS that bfs_parents made before edges were
 * added out of the seeds: only what those edges reach is visited, not the whole graph
 * again. Each start and target is checked as it is used (no pass over every edge). */
static PyObject *bfs_more(PyObject *self, PyObject *args) {
    Buf b[4] = {{.held = 0}};
    Py_ssize_t n;
    int phase;
    if (!PyArg_ParseTuple(args, "y*y*ny*iw*", &b[0].b, &b[1].b, &n, &b[2].b, &phase, &b[3].b))
        return NULL;
    b[0].held = b[1].held = b[2].held = b[3].held = 1;
    PyObject *result = NULL;
    int32_t *queue = NULL;
    if (n <= 0 || n >= INT32_MAX || phase < 0 || phase >= 255) {
        PyErr_SetString(PyExc_ValueError, "bad node count or phase");
        goto done;
    }
    if (!need(&b[0], n + 1, 8, "edge_start") || !need(&b[3], n, 1, "found"))
        goto done;
    const int64_t *start = b[0].b.buf;
    const int32_t *to = b[1].b.buf, *seeds = b[2].b.buf;
    const int64_t m = b[1].b.len / 4;
    const Py_ssize_t nseeds = b[2].b.len / 4;
    uint8_t *found = b[3].b.buf;
    /* Each node is queued once when marked, each seed once: n + seeds at most. */
    const Py_ssize_t cap = n + nseeds;
    queue = malloc(sizeof(int32_t) * (size_t)cap);
    if (!queue) { PyErr_NoMemory(); goto done; }
    Py_ssize_t head = 0, tail = 0, marked = 0;
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < nseeds && !bad; i++) {
        int32_t v = seeds[i];
        if (v < 0 || v >= n) bad = 1;
        else queue[tail++] = v;
    }
    while (head < tail && !bad) {
        int32_t v = queue[head++];
        int64_t lo = start[v], hi = start[v + 1];
        if (lo < 0 || hi < lo || hi > m) { bad = 2; break; }
        for (int64_t e = lo; e < hi; e++) {
            int32_t t = to[e];
            if (t < 0 || t >= n) { bad = 3; break; }
            if (found[t] == 255) {
                found[t] = (uint8_t)phase;
                marked++;
                queue[tail++] = t;
            }
        }
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, bad == 1 ? "seed out of range" :
                        bad == 3 ? "edge target out of range" : "edge starts out of range");
        goto done;
    }
    result = PyLong_FromSsize_t(marked);
done:
    free(queue);
    release(b, 4);
    return result;
}

/* "00" to "99": two digits at a time, half the divisions of one at a time. */
static const char DIGIT_PAIRS[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* The decimal digits of u at p; returns the end. Their count first (the values are
 * mostly a few digits), then written from the last two digits back. */
static inline char *put_decimal(char *p, uint64_t u) {
    int len = 1;
    for (uint64_t v = u;; v /= 10000, len += 4) {
        if (v < 10) break;
        if (v < 100) { len += 1; break; }
        if (v < 1000) { len += 2; break; }
        if (v < 10000) { len += 3; break; }
    }
    char *end = p + len, *q = end;
    while (u >= 100) {
        unsigned r = (unsigned)(u % 100);
        u /= 100;
        q -= 2;
        memcpy(q, DIGIT_PAIRS + 2 * r, 2);
    }
    if (u >= 10) {
        q -= 2;
        memcpy(q, DIGIT_PAIRS + 2 * u, 2);
    } else {
        *--q = (char)('0' + u);
    }
    return end;
}

/* format_rows(table, cols) -> bytes: int64 rows as "a,b,c" joined by ",\n" (the
 * .heapsnapshot arrays, one node or edge per line). */
static PyObject *format_rows(PyObject *self, PyObject *args) {
    Buf b[1] = {{.held = 0}};
    Py_ssize_t cols;
    if (!PyArg_ParseTuple(args, "y*n", &b[0].b, &cols)) return NULL;
    b[0].held = 1;
    PyObject *result = NULL;
    Py_ssize_t count = b[0].b.len / 8;
    if (cols <= 0 || count % cols) {
        PyErr_SetString(PyExc_ValueError, "table size is not a multiple of the columns");
        goto done;
    }
    const int64_t *v = b[0].b.buf;
    /* At most 20 digits, a sign and a separator per value, plus a newline per row. */
    char *out = malloc((size_t)count * 22 + (size_t)(count / cols) + 1);
    if (!out) { PyErr_NoMemory(); goto done; }
    char *p = out;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i += cols) {
        if (i) {
            *p++ = ',';
            *p++ = '\n';
        }
        for (Py_ssize_t c = 0; c < cols; c++) {
            if (c) *p++ = ',';
            int64_t x = v[i + c];
            if (x < 0) *p++ = '-';
            p = put_decimal(p, x < 0 ? (uint64_t)(-(x + 1)) + 1 : (uint64_t)x);
        }
    }
    Py_END_ALLOW_THREADS
    result = PyBytes_FromStringAndSize(out, p - out);
    free(out);
done:
    release(b, 1);
    return result;
}

/* reverse(e_to, n, rev_start_out, rev_edge_out): the edges into each node, grouped by
 * target in edge order (a counting sort: rev_edge[rev_start[t]:rev_start[t+1]]). */
static PyObject *reverse(PyObject *self, PyObject *args) {
    Buf b[3] = {{.held = 0}};
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "y*nw*w*", &b[0].b, &n, &b[1].b, &b[2].b)) return NULL;
    for (int i = 0; i < 3; i++) b[i].held = 1;
    PyObject *result = NULL;
    Py_ssize_t m = b[0].b.len / 4;
    if (n <= 0 || n >= INT32_MAX || m >= INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "bad node or edge count");
        goto done;
    }
    if (!need(&b[1], n + 1, 8, "rev_start_out") || !need(&b[2], m, 4, "rev_edge_out"))
        goto done;
    const int32_t *to = b[0].b.buf;
    int64_t *start = b[1].b.buf;
    int32_t *edge = b[2].b.buf;
    for (Py_ssize_t e = 0; e < m; e++)
        if (to[e] < 0 || to[e] >= n) {
            PyErr_SetString(PyExc_ValueError, "edge target out of range");
            goto done;
        }
    int64_t *fill = malloc(sizeof(int64_t) * (size_t)n);
    if (!fill) { PyErr_NoMemory(); goto done; }
    Py_BEGIN_ALLOW_THREADS
    memset(start, 0, sizeof(int64_t) * (size_t)(n + 1));
    for (Py_ssize_t e = 0; e < m; e++) start[to[e] + 1]++;
    for (Py_ssize_t i = 0; i < n; i++) start[i + 1] += start[i];
    memcpy(fill, start, sizeof(int64_t) * (size_t)n);
    for (Py_ssize_t e = 0; e < m; e++) edge[fill[to[e]]++] = (int32_t)e;
    Py_END_ALLOW_THREADS
    free(fill);
    result = Py_NewRef(Py_None);
done:
    release(b, 3);
    return result;
}

/* group_retained(idom, group, retained, ngroups, out): out[g] = the memory the nodes of
 * group g keep alive together (the union of their retained sets, as Eclipse MAT counts a
 * class): the retained size of every node of g with no other node of g above it in the
 * dominator tree. group[v] < 0: in no group. A DFS of the dominator tree counts, per
 * group, the nodes of that group on the current path. scratch: as dominators()'s, for
 * its per-node arrays (group_scratch(n) bytes). */
static PyObject *group_retained(PyObject *self, PyObject *args) {
    Buf b[5] = {{.held = 0}};
    Py_ssize_t ngroups;
    PyObject *scratch_obj = Py_None;
    if (!PyArg_ParseTuple(args, "y*y*y*nw*|O", &b[0].b, &b[1].b, &b[2].b, &ngroups, &b[3].b,
                          &scratch_obj))
        return NULL;
    for (int i = 0; i < 4; i++) b[i].held = 1;
    if (!hold_scratch(scratch_obj, &b[4])) {
        release(b, 4);
        return NULL;
    }
    int own = !b[4].held;
    PyObject *result = NULL;
    Py_ssize_t n = b[0].b.len / 4;
    int64_t *cstart = NULL;
    int32_t *kids = NULL, *stack = NULL, *onpath = NULL;
    int64_t *next = NULL;
    if (n <= 0 || ngroups < 0 || !need(&b[1], n, 4, "group") || !need(&b[2], n, 8, "retained") ||
        !need(&b[3], ngroups, 8, "out"))
        goto done;
    const int32_t *idom = b[0].b.buf, *group = b[1].b.buf;
    const uint64_t *ret = b[2].b.buf;
    uint64_t *out = b[3].b.buf;
    for (Py_ssize_t v = 0; v < n; v++)
        if (idom[v] < -1 || idom[v] >= n || group[v] >= ngroups) {
            PyErr_SetString(PyExc_ValueError, "idom or group out of range");
            goto done;
        }
    if (own) {
        cstart = calloc((size_t)n + 1, sizeof(int64_t));
        kids = malloc(sizeof(int32_t) * (size_t)n);
        stack = malloc(sizeof(int32_t) * (size_t)n);
        next = malloc(sizeof(int64_t) * (size_t)n);
    } else {
        /* cstart, next, kids, stack from the caller's buffer (group_scratch_bytes) */
        uint8_t *at = scratch_start(&b[4], group_scratch_bytes(n));
        if (!at) goto done;
        cstart = (int64_t *)at; at += 8 * ((size_t)n + 1);
        next = (int64_t *)at; at += 8 * (size_t)n;
        kids = (int32_t *)at; at += ALIGN8(4 * (size_t)n);
        stack = (int32_t *)at;
    }
    onpath = calloc((size_t)(ngroups ? ngroups : 1), sizeof(int32_t));
    if (!cstart || !kids || !stack || !next || !onpath) { PyErr_NoMemory(); goto done; }
    Py_BEGIN_ALLOW_THREADS
    if (!own) memset(cstart, 0, 8 * ((size_t)n + 1));      /* (calloc'd when own) */
    memset(out, 0, sizeof(uint64_t) * (size_t)ngroups);
    for (Py_ssize_t v = 1; v < n; v++)
        if (idom[v] >= 0 && idom[v] != v) cstart[idom[v] + 1]++;
    for (Py_ssize_t v = 0; v < n; v++) cstart[v + 1] += cstart[v];
    int64_t *fill = next;                 /* as a cursor first, then as DFS positions */
    memcpy(fill, cstart, sizeof(int64_t) * (size_t)n);
    for (Py_ssize_t v = 1; v < n; v++)
        if (idom[v] >= 0 && idom[v] != v) kids[fill[idom[v]]++] = (int32_t)v;
    Py_ssize_t top = 0;
    stack[top] = 0;
    next[top] = cstart[0];
    top = 1;
    if (group[0] >= 0) onpath[group[0]]++;
    while (top) {
        int32_t v = stack[top - 1];
        if (next[top - 1] < cstart[v + 1]) {
            int32_t c = kids[next[top - 1]++];
            int32_t g = group[c];
            if (g >= 0) {
                if (onpath[g] == 0) out[g] += ret[c];
                onpath[g]++;
            }
            stack[top] = c;
            next[top] = cstart[c];
            top++;
        } else {
            if (group[v] >= 0) onpath[group[v]]--;
            top--;
        }
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    if (own) {
        free(cstart); free(kids); free(stack); free(next);
    }
    free(onpath);
    release(b, 5);
    return result;
}

/* Node index by address: an open-addressing table of int32 node indices (-1: empty),
 * probed linearly, each candidate confirmed against the node's own address. A lookup
 * touches one or two cache lines where a binary search over a million sorted
 * addresses touches twenty. The table has any number of slots (1.5 per node: 6 bytes
 * per node while the edges are mapped, where a power of two would take up to 16): the
 * hash is mapped onto them by a multiply, not a mask. Objects are 16-aligned: the hash
 * drops those bits. */
static inline uint64_t addr_slot(uint64_t a, uint64_t cap) {
    uint64_t h = (a >> 4) * 0x9E3779B97F4A7C15ull;
    return (uint64_t)(((unsigned __int128)h * cap) >> 64);
}

/* addr_table(addr, first, table): index nodes first..n-1 of addr into table (int32
 * slots filled with -1 by the caller, more slots than nodes). */
static PyObject *addr_table(PyObject *self, PyObject *args) {
    Buf b[2] = {{.held = 0}};
    Py_ssize_t first;
    if (!PyArg_ParseTuple(args, "y*nw*", &b[0].b, &first, &b[1].b)) return NULL;
    b[0].held = b[1].held = 1;
    PyObject *result = NULL;
    Py_ssize_t n = b[0].b.len / 8;
    uint64_t cap = (uint64_t)(b[1].b.len / 4);
    if (first < 0 || (uint64_t)(n - (first < n ? first : n)) >= cap || n >= INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "address table too small");
        goto done;
    }
    const uint64_t *addr = b[0].b.buf;
    int32_t *table = b[1].b.buf;
    for (Py_ssize_t i = first; i < n; i++) {
        uint64_t h = addr_slot(addr[i], cap);
        while (table[h] >= 0) {
            if (addr[table[h]] == addr[i]) break;       /* a duplicate keeps the first */
            if (++h == cap) h = 0;
        }
        if (table[h] < 0) table[h] = (int32_t)i;
    }
    result = Py_NewRef(Py_None);
done:
    release(b, 2);
    return result;
}

/* map_addresses(addr, table, n_synth, targets, out): node index of each target address,
 * -1 for none; a target with the top bit set names synthetic node (t & ~top) when that
 * is below n_synth. */
static PyObject *map_addresses(PyObject *self, PyObject *args) {
    Buf b[4] = {{.held = 0}};
    Py_ssize_t n_synth;
    if (!PyArg_ParseTuple(args, "y*y*ny*w*", &b[0].b, &b[1].b, &n_synth, &b[2].b, &b[3].b))
        return NULL;
    for (int i = 0; i < 4; i++) b[i].held = 1;
    PyObject *result = NULL;
    Py_ssize_t m = b[2].b.len / 8, n = b[0].b.len / 8;
    uint64_t cap = (uint64_t)(b[1].b.len / 4);
    if (cap == 0) {
        PyErr_SetString(PyExc_ValueError, "empty address table");
        goto done;
    }
    if (!need(&b[3], m, 4, "out")) goto done;
    const uint64_t *addr = b[0].b.buf, *targets = b[2].b.buf;
    const int32_t *table = b[1].b.buf;
    int32_t *out = b[3].b.buf;
    const uint64_t top = (uint64_t)1 << 63;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < m; k++) {
        uint64_t t = targets[k];
        int32_t found = -1;
        if (t & top) {
            uint64_t s = t & ~top;
            found = s < (uint64_t)n_synth && s < (uint64_t)n ? (int32_t)s : -1;
        } else {
            uint64_t h = addr_slot(t, cap);
            for (uint64_t probes = 0; probes < cap; probes++) {
                int32_t i = table[h];
                if (i < 0) break;
                if (i < n && addr[i] == t) {
                    found = i;
                    break;
                }
                if (++h == cap) h = 0;
            }
        }
        out[k] = found;
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    release(b, 4);
    return result;
}

/* first_seen(values, uniq_out, inverse_out) -> count: the distinct values in the order
 * first seen (uniq_out[:count]) and, per value, its position among them: np.unique's
 * inverse, by a hash table instead of a sort (dict keys of a wave: mostly repeats).
 * The values are object addresses (any value works; addr_slot, shared with the node
 * table, drops the bits alignment leaves at 0). */
static PyObject *first_seen(PyObject *self, PyObject *args) {
    Buf b[3] = {{.held = 0}};
    if (!PyArg_ParseTuple(args, "y*w*w*", &b[0].b, &b[1].b, &b[2].b)) return NULL;
    for (int i = 0; i < 3; i++) b[i].held = 1;
    PyObject *result = NULL;
    int32_t *table = NULL;
    Py_ssize_t n = b[0].b.len / 8;
    if (!need(&b[1], n, 8, "uniq_out") || !need(&b[2], n, 4, "inverse_out")) goto done;
    if (n >= INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "too many values");
        goto done;
    }
    const uint64_t *v = b[0].b.buf;
    uint64_t *uniq = b[1].b.buf;
    int32_t *inv = b[2].b.buf;
    uint64_t cap = (uint64_t)n * 2 + 16;                        /* any size: addr_slot */
    table = malloc(sizeof(int32_t) * cap);
    if (!table) { PyErr_NoMemory(); goto done; }
    memset(table, 0xFF, sizeof(int32_t) * cap);                  /* -1: empty */
    Py_ssize_t count = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < n; k++) {
        uint64_t h = addr_slot(v[k], cap);
        for (;;) {
            int32_t at = table[h];
            if (at < 0) {
                table[h] = (int32_t)count;
                uniq[count] = v[k];
                inv[k] = (int32_t)count++;
                break;
            }
            if (uniq[at] == v[k]) {
                inv[k] = at;
                break;
            }
            if (++h == cap) h = 0;
        }
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(count);
done:
    free(table);
    release(b, 3);
    return result;
}

/* tree_children(idom, start_out, kids_out) -> count: the dominator tree's children as
 * CSR arrays, by a counting sort in two passes: kids_out[start_out[v]:start_out[v + 1]]
 * = the nodes whose immediate dominator is v (other than v itself), in node order.
 * idom, start_out (n + 1) and kids_out (n) are int32; idom's values are -1 (not
 * reached) or node numbers. No temporary but a cursor per node. */
static PyObject *tree_children(PyObject *self, PyObject *args) {
    Buf b[3] = {{.held = 0}};
    if (!PyArg_ParseTuple(args, "y*w*w*", &b[0].b, &b[1].b, &b[2].b)) return NULL;
    for (int i = 0; i < 3; i++) b[i].held = 1;
    PyObject *result = NULL;
    int32_t *cursor = NULL;
    const Py_ssize_t n = b[0].b.len / 4;
    if (n >= INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "too many nodes");
        goto done;
    }
    if (!need(&b[1], n + 1, 4, "start_out") || !need(&b[2], n, 4, "kids_out")) goto done;
    const int32_t *idom = b[0].b.buf;
    int32_t *start = b[1].b.buf, *kids = b[2].b.buf;
    cursor = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    if (!cursor) { PyErr_NoMemory(); goto done; }
    int bad = 0;
    Py_ssize_t count = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t v = 0; v <= n; v++) start[v] = 0;
    for (Py_ssize_t v = 0; v < n; v++) {
        int32_t p = idom[v];
        if (p < -1 || p >= n) { bad = 1; break; }
        if (p >= 0 && p != v) start[p + 1]++;
    }
    if (!bad) {
        for (Py_ssize_t v = 0; v < n; v++) {
            start[v + 1] += start[v];
            cursor[v] = start[v];
        }
        for (Py_ssize_t v = 0; v < n; v++) {
            int32_t p = idom[v];
            if (p >= 0 && p != v) kids[cursor[p]++] = (int32_t)v;
        }
        count = start[n];
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "dominator out of range");
        goto done;
    }
    result = PyLong_FromSsize_t(count);
done:
    free(cursor);
    release(b, 3);
    return result;
}

/* by_source(src, base, counts_out, order_out): a stable counting sort of edges by
 * source node: counts_out[i] = the edges from node base + i (counts_out holds one slot
 * per node of the range), order_out = the edge positions grouped by source, in emission
 * order within a source. O(edges), where a comparison sort of a wave is O(m log m). */
static PyObject *by_source(PyObject *self, PyObject *args) {
    Buf b[3] = {{.held = 0}};
    Py_ssize_t base;
    if (!PyArg_ParseTuple(args, "y*nw*w*", &b[0].b, &base, &b[1].b, &b[2].b)) return NULL;
    for (int i = 0; i < 3; i++) b[i].held = 1;
    PyObject *result = NULL;
    int64_t *fill = NULL;
    Py_ssize_t m = b[0].b.len / 4, n = b[1].b.len / 4;
    if (!need(&b[2], m, 8, "order_out")) goto done;
    const int32_t *src = b[0].b.buf;
    int32_t *counts = b[1].b.buf;
    int64_t *order = b[2].b.buf;
    for (Py_ssize_t i = 0; i < n; i++) counts[i] = 0;
    for (Py_ssize_t e = 0; e < m; e++) {
        int64_t s = (int64_t)src[e] - base;
        if (s < 0 || s >= n) {
            PyErr_SetString(PyExc_ValueError, "edge source outside the node range");
            goto done;
        }
        counts[s]++;
    }
    fill = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!fill) { PyErr_NoMemory(); goto done; }
    int64_t at = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        fill[i] = at;
        at += counts[i];
    }
    for (Py_ssize_t e = 0; e < m; e++) order[fill[src[e] - base]++] = e;
    result = Py_NewRef(Py_None);
done:
    free(fill);
    release(b, 3);
    return result;
}

/* A dict holding index's items with room for `more` others without a resize (a table
 * grown a doubling at a time is rehashed each time, into new memory): a new reference,
 * or index itself (a new reference too) where CPython's presized dicts are not known. */
static PyObject *with_room(PyObject *index, Py_ssize_t more) {
#if PY_VERSION_HEX < 0x030E0000
    if (more > (1 << 16) && more > PyDict_GET_SIZE(index)) {
        PyObject *roomy = _PyDict_NewPresized(PyDict_GET_SIZE(index) + more);
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        if (!roomy) return NULL;
        /* One item at a time: a merge into an empty dict may take a copy of the other's
         * table instead, room and all. */
        while (PyDict_Next(index, &pos, &key, &value)) {
            if (PyDict_SetItem(roomy, key, value) < 0) {
                Py_DECREF(roomy);
                return NULL;
            }
        }
        return roomy;
    }
#endif
    return Py_NewRef(index);
}

/* intern_all(index, strings, texts, out) -> index: out[k] = the index of texts[k] in the
 * string table (index: {text: int}, strings: [text]), added at the end where new: the
 * loop of StringTable.add_all, for a million node names. Returns the index to keep: a
 * copy made with room for every text where they are many (the 14.4M-object core's 5.5M
 * names, 2.8M of them new: 1.45-1.61 s to 1.13-1.25 s), else `index`. */
static PyObject *intern_all(PyObject *self, PyObject *args) {
    PyObject *index, *strings, *texts;
    Buf b[1] = {{.held = 0}};
    if (!PyArg_ParseTuple(args, "O!O!Ow*", &PyDict_Type, &index, &PyList_Type, &strings,
                          &texts, &b[0].b))
        return NULL;
    b[0].held = 1;
    PyObject *result = NULL, *table = NULL;
    PyObject *seq = PySequence_Fast(texts, "texts must be a sequence");
    if (!seq) goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (!need(&b[0], n, 8, "out")) goto done;
    int64_t *out = b[0].b.buf;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    table = with_room(index, n);
    if (!table) goto done;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *ix = PyDict_GetItemWithError(table, items[k]);     /* borrowed */
        if (ix) {
            out[k] = PyLong_AsLongLong(ix);
            if (out[k] == -1 && PyErr_Occurred()) goto done;
            continue;
        }
        if (PyErr_Occurred()) goto done;
        Py_ssize_t at = PyList_GET_SIZE(strings);
        PyObject *num = PyLong_FromSsize_t(at);
        if (!num) goto done;
        int bad = PyDict_SetItem(table, items[k], num) < 0 ||
                  PyList_Append(strings, items[k]) < 0;
        Py_DECREF(num);
        if (bad) goto done;
        out[k] = at;
    }
    result = Py_NewRef(table);
done:
    Py_XDECREF(table);
    Py_XDECREF(seq);
    release(b, 1);
    return result;
}

static PyMethodDef methods[] = {
    {"addr_table", addr_table, METH_VARARGS,
     "addr_table(addr, first, table): hash table of node addresses"},
    {"map_addresses", map_addresses, METH_VARARGS,
     "map_addresses(addr, table, n_synth, targets, out): node index per address"},
    {"group_retained", group_retained, METH_VARARGS,
     "group_retained(idom, group, retained, ngroups, out[, scratch]): union retained size "
     "per group"},
    {"reverse", reverse, METH_VARARGS,
     "reverse(e_to, n, rev_start_out, rev_edge_out): edges grouped by target"},
    {"dominators", dominators, METH_VARARGS,
     "dominators(edge_start, e_to, n, root, idom_out, order_out[, scratch]) -> reached "
     "count"},
    {"group_scratch", group_scratch, METH_VARARGS,
     "group_scratch(n) -> bytes of scratch group_retained() takes for n nodes"},
    {"dominator_scratch", dominator_scratch, METH_VARARGS,
     "dominator_scratch(n, m) -> bytes of scratch dominators() takes for n nodes and m "
     "edges"},
    {"retained", retained, METH_VARARGS,
     "retained(order, reached, idom, size, out): retained size of every node"},
    {"bfs_parents", bfs_parents, METH_VARARGS,
     "bfs_parents(edge_start, e_to, n, root, parent_out, phase, found_out): BFS tree"},
    {"bfs_more", bfs_more, METH_VARARGS,
     "bfs_more(edge_start, e_to, n, seeds, phase, found) -> nodes newly found"},
    {"tree_children", tree_children, METH_VARARGS,
     "tree_children(idom, start_out, kids_out) -> children in the dominator tree"},
    {"first_seen", first_seen, METH_VARARGS,
     "first_seen(values, uniq_out, inverse_out) -> count of distinct values"},
    {"by_source", by_source, METH_VARARGS,
     "by_source(src, base, counts_out, order_out): edges grouped by source node"},
    {"intern_all", intern_all, METH_VARARGS,
     "intern_all(index, strings, texts, out) -> index: string table index of each text"},
    {"format_rows", format_rows, METH_VARARGS,
     "format_rows(int64 table, cols) -> bytes of rows 'a,b,c' joined by ',\\n'"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_graphc",
    "Compiled loops of the heap graph: dominators, retained sizes, BFS, row text.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__graphc(void) {
    return PyModule_Create(&module);
}
