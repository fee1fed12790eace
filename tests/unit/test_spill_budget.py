"""heap/spill.py: the memory limits it finds (arthur.cgroups over cgroup v1 and v2 trees
as the kernel lays them out) and the arrays it makes in its scratch file."""

import os

import numpy as np
import pytest

import targets
from nsdebug import membudget
from nsdebug.heap import spill

# A data segment or address-space limit set under the preloaded sanitizer: its shadow
# and allocator mappings count against the limit too, and do not fit under such limits.
not_under_the_sanitizer = pytest.mark.skipif(
    bool(targets.SANITIZER_PRELOAD),
    reason="a data or address-space limit under the preloaded sanitizer")


def _tree(tmp_path, files):
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return str(tmp_path)


def _limits(tmp_path, files, cgroup_line, mount):
    """(arthur.cgroups.memory_limit, membudget.cgroup_headroom) over a cgroup tree laid out
    as the kernel does under `mount` ("memory" for v1's hierarchy, "" for v2's)."""
    from arthur.cgroups import controller_dir, memory_limit
    root = _tree(tmp_path / "fs", files)
    cgroup = os.path.join(_tree(tmp_path / "proc", {"cgroup": cgroup_line}), "cgroup")
    found = {"memory": os.path.join(root, "memory")} if mount == "memory" else {"v2": root}
    limit = memory_limit(controller_dir("self", "memory", found, cgroup))
    if limit is not None:
        limit = (limit[0], os.path.relpath(limit[1], root))
    return limit, membudget.cgroup_headroom(found, cgroup)


def test_v1_the_tightest_limit_of_the_cgroup_and_its_ancestors(tmp_path):
    assert _limits(tmp_path, {
        "memory/memory.limit_in_bytes": "9223372036854771712\n",
        "memory/svc/memory.limit_in_bytes": "800000000\n",
        "memory/svc/memory.stat": "cache 5\nrss 1000\ntotal_cache 7\ntotal_rss 300000000\n",
        "memory/svc/worker/memory.limit_in_bytes": "9223372036854771712\n",
    }, "5:cpu:/\n4:memory:/svc/worker\n0::/\n", "memory") == \
        ((800000000, "memory/svc"), (800000000, 300000000))


def test_v2_memory_max_and_anon(tmp_path):
    assert _limits(tmp_path, {
        "cgroup.controllers": "cpu memory pids\n",
        "pod/memory.max": "536870912\n",
        "pod/memory.stat": "anon 104857600\nfile 2000\n",
        "pod/app/memory.max": "max\n",
    }, "0::/pod/app\n", "") == ((536870912, "pod"), (536870912, 104857600))


def test_no_limit_anywhere(tmp_path):
    assert _limits(tmp_path, {"cgroup.controllers": "memory\n", "memory.max": "max\n"},
                   "0::/\n", "") == (None, None)


def test_spilled_arrays_live_in_an_unlinked_file(tmp_path):
    s = spill.Spill(str(tmp_path), "always")
    assert s.active and os.listdir(tmp_path) == []       # unlinked when made
    a = s.zeros(1 << 20, np.int64)
    assert spill.in_file(a) and not a.any()
    a[123] = 7
    kept = np.arange(100000, dtype=np.uint32)
    moved = s.park(kept)
    assert spill.in_file(moved) and np.array_equal(moved, kept)
    chunks = [np.ones(5000, np.uint8), np.ones(3, np.uint8)]
    s.park_all(chunks)
    assert spill.in_file(chunks[0]) and not spill.in_file(chunks[1])   # a page at least
    assert s.spilled == a.nbytes + moved.nbytes + 5000
    assert "spilled" in s.note() and "NSDEBUG_SPILL=always" in s.note()
    del s
    assert a[123] == 7                      # the mapping outlives the descriptor


def test_never_and_auto_without_pressure_stay_in_memory(tmp_path):
    for mode in ("never", "auto"):
        s = spill.Spill(str(tmp_path), mode)
        a = s.empty(1 << 20, np.int32)
        assert not spill.in_file(a) and s.note() is None
    assert membudget.anon_bytes() > 0 and membudget.anon_budget() > membudget.anon_bytes()


def test_a_full_disk_leaves_the_array_in_memory(tmp_path):
    """The scratch file's blocks are allocated before its pages are used: a full disk
    gives the array in memory, not a SIGBUS when its pages are written."""
    import subprocess

    import pytest
    fs = tmp_path / "tiny"
    fs.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(fs)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {r.stderr.strip()}")
    try:
        s = spill.Spill(str(fs), "always")
        big = s.empty(1 << 20, np.int64)               # 8 MiB: more than the disk holds
        assert not spill.in_file(big) and s.spilled == 0
        big[:] = 3                                      # every page written: no SIGBUS
        small = s.empty(1 << 15, np.int64)             # 256 KiB: fits
        assert spill.in_file(small) and s.spilled == small.nbytes
        small[:] = 5
        del s, small, big
    finally:
        subprocess.run(["umount", "-l", str(fs)], check=True)    # -l: even while mapped


def test_copy_writes_through_the_file_what_an_assignment_would(tmp_path):
    """Spill.copy puts a chunk into a part of a spilled array by pwrite: the array then
    reads exactly as after part[:] = chunk, at any offset (mid-page included), and an
    array in memory or a chunk of another dtype gets the plain assignment."""
    s = spill.Spill(str(tmp_path), "always")
    out = s.zeros(300_001, np.int64)
    want = np.zeros(300_001, np.int64)
    rng = np.random.default_rng(5)
    at = 0
    for n in (1, 511, 4096, 100_000, 195_393):          # ends off every page boundary
        chunk = rng.integers(-2**62, 2**62, n, dtype=np.int64)
        s.copy(chunk, out[at:at + n])
        want[at:at + n] = chunk
        at += n
    assert at == len(out) and np.array_equal(out, want)
    widened = np.arange(1000, dtype=np.int32)            # cast, as drain_into's counts
    s.copy(widened, out[7:1007])
    assert np.array_equal(out[7:1007], widened.astype(np.int64))
    strided = rng.integers(0, 100, 2000, dtype=np.int64)[::2]
    s.copy(strided, out[:1000])
    assert np.array_equal(out[:1000], strided)
    plain = np.zeros(10, np.int64)
    s.copy(np.arange(10, dtype=np.int64), plain)
    assert list(plain) == list(range(10))
    moved = s.park(np.arange(70_000, dtype=np.uint32))
    assert spill.in_file(moved) and np.array_equal(moved, np.arange(70_000))



def test_running_sums_drain_chunks_into_one_cumsum(tmp_path):
    """The walk's edge starts: int32 counts a chunk at a time, summed on from chunk to
    chunk into one int64 column through Spill.copy, by pwrite into a spilled array or by
    assignment into one in memory: the cumsum of all the counts as one, empty chunks and
    counts past 2**31 in all included."""
    from nsdebug.heap.graph import drain_into, running_sums
    rng = np.random.default_rng(11)
    sizes = (0, 1, 4095, 70_000, 0, 131_072, 3)
    chunks = [rng.integers(0, 60_000, n, dtype=np.int32) for n in sizes]
    want = np.cumsum(np.concatenate(chunks), dtype=np.int64)
    assert want[-1] > 2**31
    s = spill.Spill(str(tmp_path), "always")
    in_file = s.zeros(len(want) + 1, np.int64)
    assert spill.in_file(in_file)
    for out in (in_file, np.zeros(len(want) + 1, np.int64)):
        drain_into([c.copy() for c in chunks], out[1:], running_sums(s.copy))
        assert out[0] == 0 and np.array_equal(out[1:], want)

def test_a_dropped_array_gives_its_blocks_back_and_the_file_closes_last(tmp_path):
    """A spilled array dropped before the end has its part of the scratch file punched
    out (no dirty pages left for the kernel to write); the descriptor stays open while
    an array remains, and closes with the last one (never while a finalizer may use
    it, when its number could name another file)."""
    import gc
    s = spill.Spill(str(tmp_path), "always")
    fd = s._file.fd
    kept = s.zeros(1 << 20, np.int64)
    dropped = s.empty(1 << 20, np.int64)
    s.copy(np.arange(1 << 20, dtype=np.int64), dropped)
    kept[:] = 9
    full = os.fstat(fd).st_blocks * 512
    assert full >= 16 << 20
    del dropped
    gc.collect()
    spill.punches_made()
    assert os.fstat(fd).st_blocks * 512 <= full - (8 << 20)
    del s
    gc.collect()
    os.fstat(fd)                                  # still open: `kept` holds it
    assert int(kept.sum()) == 9 << 20
    del kept
    gc.collect()
    spill.punches_made()
    try:
        os.fstat(fd)
        closed = False
    except OSError:
        closed = True
    assert closed


def test_copy_into_a_slice_of_a_spilled_array_goes_by_pwrite(tmp_path, monkeypatch):
    """The walk drains its chunks into parts of a column (a slice of a slice of the
    mapped array): those too are written by pwrite, not through the mapping."""
    s = spill.Spill(str(tmp_path), "always")
    col = s.empty(10_000, np.int32)
    part = col[100:][50:]
    assert spill.in_file(part)
    calls = []
    real = os.pwrite
    monkeypatch.setattr(spill.os, "pwrite", lambda *a: calls.append(a[2]) or real(*a))
    s.copy(np.arange(9_850, dtype=np.int32), part)
    assert calls == [s.offset_of(col) + 150 * 4] and s.offset_of(part) == calls[0]
    assert np.array_equal(col[150:], np.arange(9_850))


NAMED_AT_EXIT = r"""
import sys
import numpy as np
from arthur.safefile import PrivateOutput
from nsdebug.heap import spill
s = spill.Spill(sys.argv[1], "always")
kept = s.empty(1 << 20, np.int64)            # 8 MiB the named file keeps
kept[:] = 7
s.keep(kept)
alive = s.empty(2 << 20, np.int64)          # 16 MiB still in use at exit
alive[:] = 1
dropped = s.empty(1 << 20, np.int64)        # 8 MiB dropped before the file is named
dropped[:] = 2
del dropped
PrivateOutput.adopt(sys.argv[2], s.descriptor(), force=True, durable=False).commit()
late = s.empty(1 << 20, np.int64)           # made after: dropped at once
late[:] = 3
del late
print(s.offset_of(kept))
"""


def test_a_named_scratch_file_keeps_only_what_it_was_told_to(tmp_path):
    """The scratch file named (as the heap index is) outlives the process: of its
    pieces it keeps only those kept; arrays dropped before or after the naming, and
    those still in use at exit, are punched out. An old file of that name is replaced."""
    import subprocess
    import sys
    out = tmp_path / "named"
    out.write_bytes(b"an old index, replaced")
    r = subprocess.run([sys.executable, "-c", NAMED_AT_EXIT, str(tmp_path), str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    st = os.stat(out)
    assert oct(st.st_mode & 0o777) == "0o600"
    assert st.st_size >= 40 << 20                           # every piece's room
    assert (8 << 20) <= st.st_blocks * 512 <= (8 << 20) + (64 << 10)
    at = int(r.stdout)
    with open(out, "rb") as f:
        f.seek(at)
        assert np.all(np.frombuffer(f.read(8 << 20), np.int64) == 7)
    assert sorted(os.listdir(tmp_path)) == ["named"]


def test_a_scratch_file_on_another_file_system_is_not_named_there(tmp_path):
    s = spill.Spill(str(tmp_path), "always")
    assert s.linkable and s.can_become(str(tmp_path))
    if os.stat("/dev/shm").st_dev != os.stat(tmp_path).st_dev:
        assert not s.can_become("/dev/shm")
    assert not spill.Spill(str(tmp_path), "never").can_become(str(tmp_path))


def test_a_copy_held_in_memory_is_not_the_walks_and_leaves_it_less(tmp_path):
    """A capture's copy made in memory (vector.memory_copy) is this process's anonymous
    memory but not the walk's: anon_bytes() leaves it out. Made after a Spill took its
    budget, it is taken off that budget: a budget the walk's memory is under without
    the copy, and over with it, spills at the next check, and says of how much."""
    import gc
    from nsdebug.corefile.vector import memory_copy
    copy_size = 64 << 20
    gc.collect()
    own = membudget.anon_bytes()
    budget = int(own / spill.SPILL_AT) + copy_size // 2
    without, s = spill.Spill(str(tmp_path), "auto"), spill.Spill(str(tmp_path), "auto")
    without.budget = s.budget = budget         # as a limit of that size would set it
    assert not without.check(), without.why
    copy = memory_copy(copy_size)
    try:
        rss = membudget._kib_field("/proc/self/status", b"RssAnon:")
        view = np.frombuffer(copy, dtype=np.uint8)
        view[:] = 1         # every page written (no temporary: malloc may keep one's pages)
        del view
        assert membudget._kib_field("/proc/self/status", b"RssAnon:") >= \
            rss + copy_size - (4 << 20)
        assert abs(membudget.anon_bytes() - own) < 16 << 20, (membudget.anon_bytes(), own)
        assert s.check() and s.why.endswith("MiB this process may use"), s.why
        left = int(s.why.split(" MiB in use of ")[1].split()[0])
        assert left == (budget - copy_size) >> 20, (s.why, budget)
    finally:
        copy.close()
        del copy
        gc.collect()
    assert membudget.pinned_bytes() == 0


def test_a_data_limit_bounds_the_budget_and_the_copy_in_memory():
    """`nsdebug triage` gives each core's analysis a data segment limit (RLIMIT_DATA):
    the budget is no more than it, and a copy in memory (which the limit counts, a
    private mapping) takes at most a third of it."""
    code = """
import resource, sys
from nsdebug import membudget
limit = 1 << 30
resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.RLIM_INFINITY))
assert membudget.data_limit() == limit
assert membudget.anon_budget() <= limit, membudget.anon_budget()
assert not membudget.fits_in_memory(400 << 20)
assert membudget.fits_in_memory(200 << 20)
from nsdebug.corefile.vector import memory_copy
copy = memory_copy(200 << 20)
assert membudget.anon_budget() <= limit - (200 << 20), membudget.anon_budget()
assert not membudget.fits_in_memory(300 << 20)
print("ok")
"""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    assert membudget.data_limit() is None or membudget.data_limit() > 1 << 30


@not_under_the_sanitizer
def test_a_small_allocation_refused_at_the_limit_ends_the_process_at_once(tmp_path):
    """The end at a memory limit of the triage child and the CLI (freemem and
    _vector.exit_when_exhausted). The function below makes CPython 3.11-3.13 spin for
    ever without it: ints of the size the handler's last-instruction int needs fill the
    memory inside a `with` past offset 256, so that int cannot be made and the unwinding
    comes back to the same handler. With it, the process ends at once with the status
    asked for, one line and no traceback; a large request refused is still a MemoryError
    the program handles."""
    import subprocess
    import sys

    code = r"""
import resource
def vmdata():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
from nsdebug import freemem
print(freemem.exit_when_exhausted(7, "nsdebug: out"), freemem.exit_when_exhausted(7, "again"))
slots = [None] * 4_000_000
src = ("def fill(slots):\n    i = 0\n" + "    x = 1\n" * 400 +
       "    with open('/dev/null'):\n        while True:\n"
       "            slots[i] = 1_000_000 + i\n            i += 1\n")
space = {}
exec(src, space)
limit = vmdata() + (2 << 20)
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
try:
    bytearray(64 << 20)
except MemoryError:
    print("large refused", flush=True)
try:
    space["fill"](slots)
except MemoryError:
    print("small refused, and the program went on")
"""
    # (From elsewhere than the work tree: the installed package has the compiled module.)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, cwd=str(tmp_path))     # (spinning: TimeoutExpired)
    assert r.returncode == 7, (r.returncode, r.stdout, r.stderr)
    assert r.stdout.splitlines() == ["True False", "large refused"], r.stdout
    assert r.stderr == "nsdebug: out\n", r.stderr


@not_under_the_sanitizer
def test_the_cli_ends_at_the_limit_only_under_one(tmp_path):
    """nsdebug's main() sets up that end under a data segment or address-space limit
    (with the line its MemoryError gets), and not without one."""
    import subprocess
    import sys

    code = r"""
import resource, sys
if sys.argv[1] != "none":
    which = getattr(resource, sys.argv[1])
    resource.setrlimit(which, (64 << 30, resource.RLIM_INFINITY))
from nsdebug import cli, freemem
try:
    cli.main(["--version"])
except SystemExit:
    pass
print(freemem.exit_when_exhausted(1, "x"))      # False: set up already
"""
    got = {}
    for limit in ("none", "RLIMIT_DATA", "RLIMIT_AS"):
        r = subprocess.run([sys.executable, "-c", code, limit], capture_output=True,
                           text=True, timeout=60, cwd=str(tmp_path))
        assert r.returncode == 0, r.stderr
        got[limit] = r.stdout.split()[-1]
    assert got == {"none": "True", "RLIMIT_DATA": "False", "RLIMIT_AS": "False"}, got
