"""The one compiled part: nsdebug/heap/_graphc.c (dominators, BFS, snapshot text).

Everything else is in pyproject.toml. The extension is optional: without a C compiler
the install still succeeds, and the heap graph falls back to pure Python (correct,
but far slower on large heaps; `nsdebug --version` says which is in use).
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("nsdebug.heap._graphc", ["nsdebug/heap/_graphc.c"],
                             optional=True, extra_compile_args=["-O2"])])
