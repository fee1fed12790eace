"""Running the per-core analysis over many cores: a local pool, or a Dask cluster.

Both engines run one function, analyze(), on each core: it runs the analysis in a
child process (child.py) with the time and memory limits, and returns the child's
result, or the reason it failed. A local pool needs threads only, as the work is in
the children. On Dask, the cores must be on storage the workers read at the same
paths, and nsdebug installed on them; the results are gathered as they complete."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor, as_completed

from ..corefile.notes import signal_name
from ..errors import NsdebugError
from ..selfcmd import module_command
from ..units import human_size
from .child import EXIT_MEMORY


def analyze(path, heap=None, timeout=600.0, memory_limit=0):
    """{"summary": ...} of one core, or {"error": ..., "kind": "error" | "timeout" |
    "memory" | "crash"}: the one per-core function both engines run."""
    heap_arg = "auto" if heap is None else ("1" if heap else "0")
    cmd, cwd = module_command("nsdebug.fleet.child", os.path.abspath(path), heap_arg,
                              int(memory_limit or 0))
    # One BLAS thread: numpy's OpenBLAS reserves a buffer per thread at import, which
    # would count against the memory limit for nothing (nsdebug does no linear algebra).
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout, env=env, cwd=cwd)
    except subprocess.TimeoutExpired:
        return {"error": f"the analysis took longer than {timeout:g} s (--timeout)",
                "kind": "timeout"}
    except OSError as e:
        return {"error": f"cannot run the analysis: {e.strerror or e}", "kind": "error"}
    if r.returncode == 0:
        try:
            return json.loads(r.stdout)
        except ValueError:
            return {"error": "the analysis wrote no result", "kind": "crash"}
    err = r.stderr.decode("utf-8", "replace")
    # Out of memory: our exit code, or whatever a library said as it failed to allocate
    # (MemoryError, OpenBLAS's "Memory allocation still failed").
    if r.returncode == EXIT_MEMORY or (memory_limit and "memory" in err.lower()):
        return {"error": f"the analysis needed more than {human_size(memory_limit)} "
                         f"(--memory-limit)", "kind": "memory"}
    if r.returncode < 0:
        return {"error": f"the analysis died of {signal_name(-r.returncode)}",
                "kind": "crash"}
    last = err.strip().splitlines()[-1:] or [f"exit status {r.returncode}"]
    return {"error": f"the analysis failed: {last[0]}", "kind": "crash"}


def run_local(paths, jobs, **options):
    """(path, result) for every core, as they complete, on `jobs` threads."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(analyze, p, **options): p for p in paths}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()


def run_dask(paths, address, **options):
    """(path, result) for every core, as they complete, on the Dask cluster at
    `address` (its scheduler: tcp://host:8786)."""
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError:
        raise NsdebugError("--dask needs the distributed package: "
                           "pip install 'nsdebug[dask]'") from None
    try:
        client = Client(address, timeout=10)
    except (OSError, TimeoutError) as e:
        raise NsdebugError(f"cannot reach the Dask scheduler at {address}: {e}") from None
    try:
        futures = client.map(analyze, list(paths), pure=False, **options)
        where = {f.key: p for f, p in zip(futures, paths)}
        for fut in dask_completed(futures):
            try:
                result = fut.result()
            except Exception as e:  # noqa: BLE001 - a worker lost: that core fails alone
                result = {"error": f"the Dask task failed: {type(e).__name__}: {e}",
                          "kind": "crash"}
            yield where[fut.key], result
    finally:
        client.close()


def default_jobs():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
