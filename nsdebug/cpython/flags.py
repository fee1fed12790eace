"""CPython's type flags (Py_TPFLAGS_*) and the bounds that tell a sane object from garbage.

The one home of these facts: the object model, the sizes, the heap walk and its C
kernels' callers all take them from here (Include/object.h is the reference).
"""

# Type flags, as in Include/object.h.
TPFLAGS_INLINE_VALUES = 1 << 2      # 3.13+: instance attributes stored after the object
TPFLAGS_MANAGED_WEAKREF = 1 << 3    # 3.12+: weakref list in the pre-header
TPFLAGS_MANAGED_DICT = 1 << 4       # 3.11+: __dict__ (or values) in the pre-header
TPFLAGS_PREHEADER = TPFLAGS_MANAGED_WEAKREF | TPFLAGS_MANAGED_DICT
TPFLAGS_HEAPTYPE = 1 << 9
TPFLAGS_READY = 1 << 12
TPFLAGS_HAVE_GC = 1 << 14
TPFLAGS_LONG_SUBCLASS = 1 << 24
TPFLAGS_LIST_SUBCLASS = 1 << 25
TPFLAGS_TUPLE_SUBCLASS = 1 << 26
TPFLAGS_BYTES_SUBCLASS = 1 << 27
TPFLAGS_UNICODE_SUBCLASS = 1 << 28
TPFLAGS_DICT_SUBCLASS = 1 << 29
TPFLAGS_BASE_EXC_SUBCLASS = 1 << 30
TPFLAGS_TYPE_SUBCLASS = 1 << 31

# Bounds of sanity on x86-64.
MAX_USER_ADDRESS = 1 << 47          # user space: a larger pointer is garbage
MAX_OBJECT_SIZE = MAX_USER_ADDRESS  # no object is larger than user space
MAX_REFCOUNT = 1 << 36              # above this a "refcount" is a pointer (immortal: 2**32-1)
MAX_ITEMS = 1 << 24                 # a container claiming more is corrupt: items skipped
