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
import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# NSDEBUG_SANITIZE=1 pip install .: every C module built with AddressSanitizer and
# UndefinedBehaviorSanitizer (undefined behaviour aborts), required rather than optional
# (a module that does not build fails the install instead of falling back to Python),
# and rebuilt even when an up-to-date one sits in build/. tools/sanitized_tests.sh
# installs it and runs the tests that drive the C code under it.
# NSDEBUG_SANITIZE=fuzz: the same, built by clang with libFuzzer's coverage counters
# (-fsanitize=fuzzer-no-link) for the atheris harnesses in fuzz/ (see fuzz/README.md):
# gcc has the sanitizers but not the counters libFuzzer steers by.
SANITIZE = os.environ.get("NSDEBUG_SANITIZE") in ("1", "fuzz")
FUZZ = os.environ.get("NSDEBUG_SANITIZE") == "fuzz"
SANITIZERS = "address,undefined" + (",fuzzer-no-link" if FUZZ else "")
COMPILE = (["-O1", "-g", "-fno-omit-frame-pointer", f"-fsanitize={SANITIZERS}",
            "-fno-sanitize-recover=undefined"] if SANITIZE else ["-O2"])
LINK = [f"-fsanitize={SANITIZERS}"] if SANITIZE else []
if FUZZ:
    # distutils takes the compiler and the linker from these (sysconfig's are gcc's).
    # clang links no sanitizer runtime into a shared object: atheris preloads its own.
    os.environ["CC"] = "clang"
    os.environ["LDSHARED"] = "clang -shared"


class BuildExt(build_ext):
    """Rebuilds when the flags differ from those of the modules build/ holds (pip builds
    in the source tree: a plain install after a sanitized one would otherwise keep the
    sanitized modules, which then fail to load without the sanitizer's runtime)."""

    def finalize_options(self):
        super().finalize_options()
        self._stamp = os.path.join(self.build_temp, "nsdebug-flags")
        try:
            with open(self._stamp) as f:
                same = f.read() == repr((COMPILE, LINK))
        except OSError:
            same = False
        if SANITIZE or not same:
            self.force = True

    def run(self):
        super().run()
        os.makedirs(self.build_temp, exist_ok=True)
        with open(self._stamp, "w") as f:
            f.write(repr((COMPILE, LINK)))


def c_module(name, source, **kw):
    return Extension(name, [source], optional=not SANITIZE, extra_compile_args=COMPILE,
                     extra_link_args=LINK, **kw)


setup(scripts=["bin/nsdebug"], cmdclass={"build_ext": BuildExt}, ext_modules=[
    c_module("nsdebug.corefile._vector", "nsdebug/corefile/_vector.c",
             depends=["nsdebug/corefile/_space.h"]),
    c_module("nsdebug.heap._kernels", "nsdebug/heap/_kernels.c",
             include_dirs=["nsdebug/corefile"], depends=["nsdebug/corefile/_space.h"]),
    c_module("nsdebug.corefile._symtab", "nsdebug/corefile/_symtab.c"),
    c_module("nsdebug.heap._graphc", "nsdebug/heap/_graphc.c"),
    c_module("nsdebug.native._dwarfc", "nsdebug/native/_dwarfc.c"),
])
