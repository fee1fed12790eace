"""Shared by the benchmarks: timing whole commands, finding tools, making cores."""

import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import targets  # noqa: E402,F401  (re-exported for the scripts)


def tool(name):
    """A console script next to this interpreter, else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    return here if os.access(here, os.X_OK) else shutil.which(name)


def warn_if_editable():
    """Say so when the tools run from an editable install: setuptools' import hook
    loads pathlib and urllib at every start of this interpreter (~10 ms here, in
    nsdebug's runs and pystack's alike), which an installed tool does not pay."""
    import glob
    import sysconfig
    pth = glob.glob(os.path.join(sysconfig.get_paths()["purelib"], "__editable__*nsdebug*"))
    if pth:
        print("note: nsdebug is an editable install here; its import hook adds to every "
              "start of both tools. For figures, time `pip install '.[bench]'` in a venv.",
              file=sys.stderr)


def byte_compile_nsdebug():
    """Compile nsdebug's modules as `pip install` does, so that an editable checkout is
    timed like an installed tool (PYTHONDONTWRITEBYTECODE would otherwise make every run
    compile from source)."""
    import compileall
    warn_if_editable()
    compileall.compile_dir(os.path.join(ROOT, "nsdebug"), quiet=1)
    compileall.compile_dir(os.path.join(ROOT, "arthur"), quiet=1)


def timed(cmd, env=None):
    """(seconds, stdout) of a command that must succeed; exits with its stderr if not."""
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode:
        sys.exit(f"{' '.join(map(str, cmd))}: {r.stderr[-2000:]}")
    return time.perf_counter() - start, r.stdout


def median_time(cmd, runs=7, warmup=1, env=None):
    """Median wall time in seconds of a command (output discarded)."""
    times = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        elapsed = time.perf_counter() - start
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}")
        if i >= warmup:
            times.append(elapsed)
    return statistics.median(times)


def paired_times(cmd_a, cmd_b, runs=7, warmup=1, env_a=None, env_b=None,
                 before_a=None, before_b=None):
    """(median of A, median of B, median of A/B) in seconds, the two commands run in
    turn (A B A B ...): each ratio is of two neighbouring runs, so a machine whose
    speed drifts during the measurement moves both sides of it alike. before_a and
    before_b, if given, are called before each run of their command, untimed."""
    a, b = [], []
    for i in range(warmup + runs):
        if before_a:
            before_a()
        ta = median_time(cmd_a, 1, 0, env_a)
        if before_b:
            before_b()
        tb = median_time(cmd_b, 1, 0, env_b)
        if i >= warmup:
            a.append(ta)
            b.append(tb)
    return (statistics.median(a), statistics.median(b),
            statistics.median(x / y for x, y in zip(a, b)))


def drop_page_cache(path):
    """The kernel's cached pages of `path` dropped (the clean ones: all of a file
    written long ago), so that the next reader reads it from the disk: a core as the
    first command meets it when it was made or copied in elsewhere."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_into_cache(path, piece=8 << 20, limit=None):
    """The whole of `path` (or its first `limit` bytes) read once, so that its pages
    are in the kernel's cache."""
    left = os.path.getsize(path) if limit is None else limit
    with open(path, "rb", buffering=0) as f:
        while left > 0:
            got = f.read(min(piece, left))
            if not got:
                break
            left -= len(got)


def print_table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(str(h).rjust(w) for h, w in zip(headers, widths)))
    for r in rows:
        print("  ".join(str(c).rjust(w) for c, w in zip(r, widths)))
