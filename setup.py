"""The compiled parts: nsdebug/corefile/_vector.c (reads of a core at many addresses)
and nsdebug/heap/_graphc.c (dominators, BFS, snapshot text).

Everything else is in pyproject.toml. The extension is optional: without a C compiler
the install still succeeds, and the heap graph falls back to pure Python (correct,
but far slower on large heaps; `nsdebug --version` says which is in use).
"""
from setuptools import Extension, setup

setup(ext_modules=[
    Extension("nsdebug.corefile._vector", ["nsdebug/corefile/_vector.c"], optional=True,
              extra_compile_args=["-O2"]),
    Extension("nsdebug.heap._graphc", ["nsdebug/heap/_graphc.c"], optional=True,
              extra_compile_args=["-O2"]),
])
