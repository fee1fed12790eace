"""The compiled parts: nsdebug/corefile/_vector.c (reads of a core at many addresses),
nsdebug/corefile/_symtab.c (symbol tables sorted by address), nsdebug/heap/_kernels.c
(CPython structures read in bulk: pymalloc pools, dict tables, str text; both read the
core through nsdebug/corefile/_space.h), nsdebug/heap/_graphc.c (dominators, BFS,
snapshot text) and nsdebug/native/_dwarfc.c (DWARF line programs and the walk to the
entries that hold an address).

bin/nsdebug is installed as a script (see the file for why it is not an entry point).
Everything else is in pyproject.toml. The extensions are optional: without a C compiler
the install still succeeds, the heap walk and graph fall back to numpy and pure Python
(correct, but far slower on large heaps), and native frames have names but no file and
line. tests/packaging/test_packaging.py checks that a built wheel carries all five.
"""
from setuptools import Extension, setup

setup(scripts=["bin/nsdebug"], ext_modules=[
    Extension("nsdebug.corefile._vector", ["nsdebug/corefile/_vector.c"], optional=True,
              depends=["nsdebug/corefile/_space.h"], extra_compile_args=["-O2"]),
    Extension("nsdebug.heap._kernels", ["nsdebug/heap/_kernels.c"], optional=True,
              include_dirs=["nsdebug/corefile"], depends=["nsdebug/corefile/_space.h"],
              extra_compile_args=["-O2"]),
    Extension("nsdebug.corefile._symtab", ["nsdebug/corefile/_symtab.c"], optional=True,
              extra_compile_args=["-O2"]),
    Extension("nsdebug.heap._graphc", ["nsdebug/heap/_graphc.c"], optional=True,
              extra_compile_args=["-O2"]),
    Extension("nsdebug.native._dwarfc", ["nsdebug/native/_dwarfc.c"], optional=True,
              extra_compile_args=["-O2"]),
])
