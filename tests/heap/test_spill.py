"""A heap walk under a memory limit smaller than its usual peak (a memory cgroup, as in a
container) spills its arrays to disk and completes with a note (heap/spill.py), where
without spilling the kernel kills it; its answer and its heap index are the same."""

import json
import os
import subprocess
import threading
import time

import memcg
import pytest
import targets

SCALE = 25               # heap_target.py at about a million objects: the walk's arrays
                         # are then most of the process's memory
LIMIT_SHARE = 0.75       # the limit, as a share of the peak without one


def _need_memory_cgroups():
    why = memcg.why_unavailable()
    if why:
        pytest.skip(f"no memory cgroup can be made here: {why}")


@pytest.fixture(scope="module")
def big_core(tmp_path_factory):
    _need_memory_cgroups()
    work = str(tmp_path_factory.mktemp("spill"))
    return targets.gcore_capture(targets.default_build(), "heap_target.py", work, str(SCALE))


def _objects(cg, core, spill, *extra):
    cmd = targets.nsdebug_cmd() + [core, *extra, "-c", "objects --top 5", "--json"]
    env = dict(targets.nsdebug_env(), NSDEBUG_SPILL=spill)
    return cg.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def test_a_walk_over_its_memory_limit_spills_and_completes(big_core):
    core = big_core.core
    with memcg.memory_cgroup("nsdebug-spill") as cg:
        free = _objects(cg, core, "never", "--no-cache")
        assert free.returncode == 0, free.stderr
        want = json.loads(free.stdout)
        peak = cg.peak()
        limit = int(peak * LIMIT_SHARE)
        cg.set_limit(limit)
        cg.reset_peak()
        # The limit binds: without spilling, the kernel kills the walk.
        killed = _objects(cg, core, "never", "--no-cache")
        assert killed.returncode == -9, (killed.returncode, killed.stderr[-500:])
        # With it (the default), the walk completes under the same limit and says so.
        cg.reset_peak()
        spilled = _objects(cg, core, "auto")
        assert spilled.returncode == 0, (spilled.returncode, spilled.stderr[-500:])
        assert cg.peak() <= limit
        notes = [line for line in spilled.stderr.splitlines() if "spilled" in line]
        assert len(notes) == 1 and "MiB this process may use" in notes[0], spilled.stderr
        assert "Traceback" not in spilled.stderr
        assert json.loads(spilled.stdout) == want
    # The scratch file was unlinked when made: nothing is left beside the core but the
    # index, which the next command maps and answers the same from.
    work = os.path.dirname(core)
    assert not [f for f in os.listdir(work) if f.startswith(".nsdebug-spill-")]
    assert os.path.exists(core + ".nsdebug-index")
    with memcg.memory_cgroup("nsdebug-spill-index") as cg:
        again = _objects(cg, core, "never")
        assert again.returncode == 0 and "spilled" not in again.stderr, again.stderr
        assert json.loads(again.stdout) == dict(want, heap_source="index")


DATA_SHARE = 0.8        # a data segment limit, as a share of the peak without spilling


def _objects_peak_data(core, spill, limit=None):
    """`objects` of `core` as JSON, under a data segment limit (RLIMIT_DATA) when given:
    (result, the most VmData seen while it ran, sampled every few milliseconds)."""
    import resource
    cmd = targets.nsdebug_cmd() + [core, "--no-cache", "-c", "objects --top 5", "--json"]
    env = dict(targets.nsdebug_env(), NSDEBUG_SPILL=spill)

    def set_limit():
        if limit:
            resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.RLIM_INFINITY))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, preexec_fn=set_limit)
    peak = [0]

    def sample():
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmData:"):
                            peak[0] = max(peak[0], int(line.split()[1]) << 10)
            except (OSError, ValueError):
                pass
            time.sleep(0.003)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, err = proc.communicate(timeout=300)
    t.join()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), peak[0]


def test_a_walk_over_its_data_segment_limit_spills_and_completes(big_core):
    """`nsdebug triage` gives each analysis a data segment limit (RLIMIT_DATA), which
    counts what is reserved, not what is resident. Under one below the walk's peak
    without spilling, the walk spills and completes with the same answer and a note;
    without spilling, it stops with a one-line error that names the limit."""
    core = big_core.core
    free, peak = _objects_peak_data(core, "never")
    assert free.returncode == 0 and peak, free.stderr
    want = json.loads(free.stdout)
    limit = int(peak * DATA_SHARE)
    stopped, _ = _objects_peak_data(core, "never", limit)
    assert stopped.returncode != 0, stopped.stderr[-500:]
    lines = stopped.stderr.strip().splitlines()
    assert lines[-1].startswith("nsdebug: out of memory under a data segment limit "
                                "(ulimit -d, "), stopped.stderr[-500:]
    assert "Traceback" not in stopped.stderr
    spilled, under = _objects_peak_data(core, "auto", limit)
    assert spilled.returncode == 0, (spilled.returncode, spilled.stderr[-500:])
    assert under <= limit
    notes = [line for line in spilled.stderr.splitlines() if "spilled" in line]
    assert len(notes) == 1, spilled.stderr
    assert f"of a limit of {limit >> 20} MiB" in notes[0] or \
        "MiB this process may use" in notes[0], notes
    assert json.loads(spilled.stdout) == want


@pytest.fixture(scope="module")
def big_capture(tmp_path_factory):
    """An arthur .lz4 capture of the same target: a heap walk copies it whole first."""
    _need_memory_cgroups()
    work = str(tmp_path_factory.mktemp("spill-capture"))
    build = targets.default_build()
    proc, _truth = targets.start_target(build.exe, "heap_target.py", work, str(SCALE))
    try:
        return targets.arthur(proc.pid, os.path.join(work, "core.lz4"))
    finally:
        targets.stop(proc)


def _objects_and_copy(cg, capture):
    """(`objects` on a capture in the cgroup, where its whole-core copy was made:
    "file" where a temporary file's copy was mapped, else "memory" (anonymous memory,
    which no line of the maps names)), the process's mappings looked at every few
    milliseconds while it runs."""
    cmd = targets.nsdebug_cmd() + [capture, "--no-cache", "-c", "objects --top 5", "--json"]
    proc = cg.popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                    env=targets.nsdebug_env())
    seen = set()

    def watch():
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/maps") as f:
                    for line in f:
                        if "nsdebug-core-" in line:
                            seen.add("file")
            except OSError:
                pass
            time.sleep(0.005)
    watcher = threading.Thread(target=watch)
    watcher.start()
    out, err = proc.communicate(timeout=300)
    watcher.join()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), \
        ("file" if seen else "memory")


def test_a_captures_copy_is_in_memory_only_where_it_fits(big_capture):
    """Where a file's pages would pass the kernel's dirty limit (1 MiB here, as on a
    machine busy writing), a capture's decompressed copy is made in memory, free of
    limits; under a memory cgroup limit where it would take more than a third of what
    the process may use, it is a temporary file's pages, and the walk completes with the
    same answer."""
    with memcg.dirty_limit(1 << 20), memcg.memory_cgroup("nsdebug-copy") as cg:
        free, where = _objects_and_copy(cg, big_capture)
        assert free.returncode == 0, free.stderr
        assert where == "memory"
        peak = cg.peak()
        size = os.path.getsize(big_capture)
        cg.set_limit(int(peak * LIMIT_SHARE))
        cg.reset_peak()
        limited, where = _objects_and_copy(cg, big_capture)
        assert limited.returncode == 0, (limited.returncode, limited.stderr[-500:])
        assert where == "file", (where, peak, size)
        assert "Traceback" not in limited.stderr
        assert json.loads(limited.stdout) == json.loads(free.stdout)
