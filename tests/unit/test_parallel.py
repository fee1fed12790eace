"""nsdebug/parallel.py: work on a second CPU, and the same results on one."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from nsdebug import parallel


def test_halves_cover_the_range_once_each_part_in_its_thread():
    seen, threads = [], set()

    def fn(lo, hi):
        seen.append((lo, hi))
        threads.add(threading.get_ident())
    parallel.halves(fn, 1001, least=10)
    if parallel.two_cpus():
        assert sorted(seen) == [(0, 500), (500, 1001)] and len(threads) == 2
    else:
        assert seen == [(0, 1001)]
    seen.clear()
    parallel.halves(fn, 9, least=10)                    # too small to split
    assert seen == [(0, 9)]


def test_background_gives_the_value_or_raises_what_it_raised():
    assert parallel.Background(lambda: 42).result() == 42
    assert parallel.Background(lambda: 7, threaded=False).result() == 7

    def broken():
        raise ValueError("in the thread")
    with pytest.raises(ValueError, match="in the thread"):
        parallel.Background(broken).result()


def test_the_address_table_maps_the_same_in_two_halves():
    """AddressTable.map over more targets than MAP_IN_TWO (two threads, when the machine
    has two CPUs) gives what one call per target does."""
    from nsdebug.heap.graph import MAP_IN_TWO, SYNTH, AddressTable
    rng = np.random.default_rng(3)
    n_synth = 5
    addr = np.concatenate([np.zeros(n_synth, np.uint64),
                           np.unique(rng.integers(1 << 20, 1 << 40, 50_000)).astype(np.uint64)
                           * np.uint64(16)])
    table = AddressTable(addr, n_synth)
    targets = np.concatenate([addr[n_synth:], addr[n_synth:] + np.uint64(8),
                              np.uint64(SYNTH) | np.arange(10, dtype=np.uint64)])
    targets = rng.permutation(np.tile(targets, MAP_IN_TWO * 2 // len(targets) + 1))
    got = table.map(targets)
    one = np.concatenate([table.map(targets[k:k + 1]) for k in range(0, len(targets), 997)])
    assert np.array_equal(got[::997], one)
    where = {int(a): i for i, a in enumerate(addr) if i >= n_synth}
    expect = [where.get(int(t), -1) if not int(t) & SYNTH else
              (int(t) & ~SYNTH if (int(t) & ~SYNTH) < n_synth else -1)
              for t in targets[:5000]]
    assert got[:5000].tolist() == expect


def test_one_cpu_runs_everything_in_the_caller():
    """Under an affinity of one CPU, nothing starts a thread (a thread there would only
    take turns with the main one)."""
    code = ("import os, threading; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
            "from nsdebug import parallel\n"
            "seen = []\n"
            "parallel.halves(lambda lo, hi: seen.append((lo, hi, threading.get_ident())),"
            " 100, 1)\n"
            "b = parallel.Background(lambda: threading.active_count())\n"
            "assert not parallel.two_cpus() and len(seen) == 1 and seen[0][:2] == (0, 100)\n"
            "assert seen[0][2] == threading.get_ident() and b.result() == 1\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert r.returncode == 0, r.stderr


def test_runs_within_cover_every_item_in_bounded_pieces():
    """vec.runs_within: the pieces the native attribution reads words in."""
    from nsdebug.heap.vec import runs_within
    rng = np.random.default_rng(11)
    counts = rng.integers(0, 50, 1000)
    counts[[10, 500]] = 400                       # larger than a step alone
    pieces = list(runs_within(counts, 300))
    assert pieces[0][0] == 0 and pieces[-1][1] == len(counts)
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
    for lo, hi in pieces:
        assert hi > lo and (counts[lo:hi].sum() <= 300 or hi == lo + 1)
    assert list(runs_within(np.zeros(0, np.int64), 10)) == []


def test_of_types_agrees_with_isin():
    from nsdebug.heap.vec import of_types
    rng = np.random.default_rng(2)
    t = rng.integers(-1, 40, 100_000).astype(np.int32)
    for members in ([], [0], [3, 39, 17], list(range(40))):
        assert np.array_equal(of_types(t, members, 40), np.isin(t, members))


def test_nsdebugs_threads_take_small_stacks():
    """A thread's stack counts whole against a data segment limit (`nsdebug triage`'s):
    nsdebug's threads (start_thread, small_stacks) take THREAD_STACK, not the 8 MiB
    default, and the setting is given back for other threads. In a new process, since
    glibc hands a finished thread's stack to the next one."""
    import subprocess
    import sys
    code = """
import threading
from nsdebug import parallel
def vmdata():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) << 10 for l in f if l.startswith("VmData:"))
before_setting = threading.stack_size()
stop = threading.Event()
start = vmdata()
ts = [parallel.start_thread(stop.wait, "t") for _ in range(3)]
grown = vmdata() - start
assert threading.stack_size() == before_setting
with parallel.small_stacks():
    assert threading.stack_size() == parallel.THREAD_STACK
assert threading.stack_size() == before_setting
stop.set()
print(grown)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    from nsdebug.parallel import THREAD_STACK
    assert int(r.stdout) <= 3 * (THREAD_STACK + (1 << 20)), r.stdout    # not 3 x 8 MiB
