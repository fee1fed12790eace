/* The symbol tables of an ELF file (.symtab, .dynsym) as one array sorted by address:
 * the loop a debug file's tens of thousands of symbols made the slowest part of naming
 * a few native frames (symbols.py keeps a pure-Python loop doing the same).
 *
 * sorted_symbols([(symbol bytes, string table length), ...]) -> (values, sizes,
 * name offsets, table numbers) as bytes of uint64, uint64, uint32, uint8. Kept: defined
 * (section index not 0), non-zero value, NOTYPE/OBJECT/FUNC, a name inside its string
 * table. Order: by value, then by binding rank (local < weak < global), then later rows
 * first, so that the last entry at an address is the name gdb and elfutils show.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t value, size;
    uint32_t name;
    uint8_t table, rank;
    uint64_t row;
} Sym;

static int sym_cmp(const void *a, const void *b) {
    const Sym *x = a, *y = b;
    if (x->value != y->value) return x->value < y->value ? -1 : 1;
    if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
    return x->row > y->row ? -1 : (x->row < y->row);
}

static const uint8_t BIND_RANK[4] = {0, 2, 1, 0};   /* LOCAL 0, GLOBAL 2, WEAK 1, other 0 */

static PyObject *sorted_symbols(PyObject *self, PyObject *args) {
    PyObject *tables;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &tables)) return NULL;
    Py_ssize_t ntab = PyList_GET_SIZE(tables);
    if (ntab > 255) {
        PyErr_SetString(PyExc_ValueError, "too many symbol tables");
        return NULL;
    }
    size_t cap = 0, n = 0;
    for (Py_ssize_t t = 0; t < ntab; t++) {
        PyObject *item = PyList_GET_ITEM(tables, t);
        Py_buffer b;
        Py_ssize_t strlen_;
        if (!PyArg_ParseTuple(item, "y*n", &b, &strlen_)) return NULL;
        cap += (size_t)b.len / 24;
        PyBuffer_Release(&b);
    }
    Sym *syms = malloc((cap ? cap : 1) * sizeof(Sym));
    if (!syms) return PyErr_NoMemory();
    uint64_t row = 0;
    for (Py_ssize_t t = 0; t < ntab; t++) {
        Py_buffer b;
        Py_ssize_t strtab_len;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(tables, t), "y*n", &b, &strtab_len)) {
            free(syms);
            return NULL;
        }
        const uint8_t *p = b.buf;
        Py_ssize_t count = b.len / 24;
        for (Py_ssize_t i = 0; i < count && n < cap; i++, p += 24) {
            uint32_t st_name;
            uint16_t shndx;
            uint64_t value, size;
            memcpy(&st_name, p, 4);
            uint8_t info = p[4];
            memcpy(&shndx, p + 6, 2);
            memcpy(&value, p + 8, 8);
            memcpy(&size, p + 16, 8);
            if (shndx && value && (info & 0xf) <= 2 && st_name > 0
                && (Py_ssize_t)st_name < strtab_len) {
                Sym *s = &syms[n++];
                s->value = value;
                s->size = size;
                s->name = st_name;
                s->table = (uint8_t)t;
                s->rank = BIND_RANK[(info >> 4) > 3 ? 3 : (info >> 4)];
                s->row = row;
            }
            row++;
        }
        PyBuffer_Release(&b);
    }
    qsort(syms, n, sizeof(Sym), sym_cmp);
    PyObject *v = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 8));
    PyObject *z = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 8));
    PyObject *nm = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * 4));
    PyObject *tb = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    PyObject *out = NULL;
    if (v && z && nm && tb) {
        uint64_t *pv = (uint64_t *)PyBytes_AS_STRING(v), *pz = (uint64_t *)PyBytes_AS_STRING(z);
        uint32_t *pn = (uint32_t *)PyBytes_AS_STRING(nm);
        uint8_t *pt = (uint8_t *)PyBytes_AS_STRING(tb);
        for (size_t i = 0; i < n; i++) {
            pv[i] = syms[i].value;
            pz[i] = syms[i].size;
            pn[i] = syms[i].name;
            pt[i] = syms[i].table;
        }
        out = PyTuple_Pack(4, v, z, nm, tb);
    }
    Py_XDECREF(v);
    Py_XDECREF(z);
    Py_XDECREF(nm);
    Py_XDECREF(tb);
    free(syms);
    return out;
}

static PyMethodDef methods[] = {
    {"sorted_symbols", sorted_symbols, METH_VARARGS,
     "sorted_symbols([(symbols, strtab_len)]) -> (values, sizes, names, tables)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_symtab", "ELF symbol tables sorted by address.", -1, methods,
};

PyMODINIT_FUNC PyInit__symtab(void) { return PyModule_Create(&module); }
