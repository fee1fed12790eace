"""Native stacks on real cores of every build: a kernel crash core in ctypes.memset,
threads parked in C (sleep, Lock.acquire, select, a sqlite3 query, a Python callback
under libc's qsort), merged with the Python frames; names with and without a debug
file; and the same function sequence as pystack wherever pystack can merge."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest


def debug_args(build):
    """Debian's builds are stripped: their -dbg package's files, found by build-id."""
    return ["--debug-dir", build.debug_dir] if build.debug_dir else []


def bt(nsdebug, core, *args):
    r = nsdebug(core, *args, "--json", timeout=600)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return [json.loads(x) for x in r.stdout.splitlines()]


def listing(thread):
    """[(kind, name, module)] oldest first; Python frames by their code's name."""
    out = []
    for row in thread["native"]:
        if row.get("kind") == "native":
            out.append(("C", row["function"] or "", row["module"]))
        else:
            out.append(("Py", row["function"].rsplit(".", 1)[-1], None))
    return out


def first(seq, pred):
    return next(i for i, x in enumerate(seq) if pred(x))


def test_crash_in_ctypes_memset(cores, build, nsdebug):
    cap = cores.native_crash(build)
    native, everything, info = bt(nsdebug, cap.core, *debug_args(build), "-c", "bt --native",
                                  "-c", "bt --native-all", "-c", "info")
    t = native["threads"][0]
    assert t["crashed"] and t["merged"], t
    inner = listing(t)[::-1]                           # innermost first
    # The fault: in libc's memset (named where libc's debug file is installed).
    assert inner[0][0] == "C" and inner[0][2] == "libc.so.6", inner[:3]
    if build.source == "pyenv":
        assert "memset" in inner[0][1], inner[:3]
    at = [first(inner, lambda x, n=n: x[1].startswith(n)) for n in
          ("ffi_call", "_ctypes_callproc", "PyCFuncPtr_call", "parse_record", "handle",
           "<module>")]
    assert at == sorted(at) and inner[at[3]][0] == "Py", inner
    # Every C frame: the eval loop and main below the Python frames.
    names = [x[1] for x in listing(everything["threads"][0])]
    assert any(n.startswith("_PyEval_EvalFrameDefault") for n in names)
    # main() (a tail call into Py_BytesMain where the compiler made it one).
    assert {"main", "Py_BytesMain"} & set(names[:names.index("<module>")]), names
    crash = info["crash"]
    # memset(8, 0, 64): the kernel reports the first store that faulted, and which store
    # libc's memset makes first depends on the variant its ifunc picked for this CPU
    # (the avx2 variant writes the tail first: 0x28), so any address of the buffer.
    m = re.match(r"SIGSEGV at (0x[0-9a-f]+) in ", crash)
    assert m and 8 <= int(m.group(1), 16) < 8 + 64 and ", called from " in crash, crash
    assert re.search(r"; Python: parse_record \(native_target\.py:\d+\)$", crash), crash


WANT = {   # thread: (C function it waits in, Python caller, system calls it may be in)
    # (3.8-3.10 sleep in select(); 3.15 renamed the lock's acquire)
    "sleeper": (("time_sleep",), "sleeper",
                {"clock_nanosleep", "select", "pselect6", "nanosleep"}),
    "locker": (("lock_PyThread_acquire_lock", "_thread_lock_acquire"), "locker", {"futex"}),
    "selecter": (("select_select",), "selecter", {"select", "pselect6", "poll"}),
    "querier": (("sqlite3_step",), "querier", None),
}


def test_threads_parked_in_c(cores, build, nsdebug):
    cap = cores.native_parked(build)
    (res,) = bt(nsdebug, cap.core, *debug_args(build), "-c", "bt --all --native")
    by_tid = {t["tid"]: t for t in res["threads"]}
    for name, tid in cap.truth["native_ids"].items():
        t = by_tid[tid]
        assert t["merged"], (name, t)
        seq = listing(t)
        names = [x[1] for x in seq]
        if name in WANT:
            c_func, py_func, calls = WANT[name]
            c_at = [i for i, n in enumerate(names) if n.startswith(c_func)]
            assert c_at and py_func in names, (name, names)
            assert names.index(py_func) < c_at[0], names
            if calls is not None:
                call = (t["state"] or "").rsplit("in system call ", 1)[-1]
                assert call in calls, (name, t["state"])
            if name == "querier":
                assert not t["holds_gil"] and "waiting for the GIL" not in (t["state"] or "")
        elif name == "signaled":
            # Interrupted in time.sleep by a signal whose C handler calls Python: the
            # unwinder goes through the signal trampoline into the interrupted code.
            rows = [r for r in t["native"] if r.get("kind") == "native"]
            trampoline = [r for r in rows if r["signal"]]
            assert len(trampoline) == 1 and trampoline[0]["module"] == "libc.so.6", rows
            if build.source == "pyenv":
                assert trampoline[0]["function"] == "__restore_rt"
            i_sig = t["native"].index(trampoline[0])
            outer = [r["function"] for r in t["native"][:i_sig]]
            inner = [r["function"] for r in t["native"][i_sig:]]
            assert "signaled" in outer and "on_signal" in inner, (outer, inner)
            assert any(n and n.startswith("time_sleep") for n in outer), outer
        else:
            # Python -> ctypes -> libc's qsort -> the callback in Python -> time.sleep.
            i_sorter, i_compare = names.index("sorter"), names.index("compare")
            between = seq[i_sorter + 1:i_compare]
            assert any(m == "libc.so.6" for _k, _n, m in between), between
            assert any(n.startswith("ffi_call") for n in names[i_sorter:i_compare])
            assert any(n.startswith("time_sleep") for n in names[i_compare:]), names


def test_frame_registers_and_disasm_on_a_native_frame(cores, build, nsdebug):
    cap = cores.native_crash(build)
    sel, regs, dis = bt(nsdebug, cap.core, *debug_args(build), "-c", "frame c2",
                        "-c", "registers", "-c", "disasm")
    assert sel["frame"]["index"] == 2
    values = dict(regs["registers"])
    assert values["rip"] == sel["frame"]["pc"] == dis["address"]
    assert values["rsp"] and values["rbx"] is not None        # callee-saved: recovered
    assert values["rax"] is None                               # caller-saved: unknown


def test_stripped_build_names_come_back_with_its_debug_file(cores, nsdebug):
    import targets
    builds = [b for b in targets.builds() if b.source == "debian" and b.exe]
    if not builds:
        pytest.skip("no Debian build fetched (tools/get_pythons.sh)")
    build = builds[-1]
    cap = cores.native_parked(build)
    tid = cap.truth["native_ids"]["sleeper"]
    (bare,) = bt(nsdebug, cap.core, "-c", "bt --all --native")
    (named,) = bt(nsdebug, cap.core, *debug_args(build), "-c", "bt --all --native")
    t_bare = next(t for t in bare["threads"] if t["tid"] == tid)
    t_named = next(t for t in named["threads"] if t["tid"] == tid)
    # Without symbols the stacks still merge (the 3.12+ entry shims mark the loop).
    assert t_bare["merged"] and t_named["merged"]
    sleeps = lambda t: [x[1] for x in listing(t) if x[1].startswith("time_sleep")]  # noqa: E731
    assert not sleeps(t_bare) and sleeps(t_named)       # time_sleep is static: no dynsym
    assert any(x[0] == "C" and x[1] == "" for x in listing(t_bare))


def pystack_threads(core):
    """{tid: [(name, file, line)]} from `pystack core CORE --native-all`, merged threads
    only; file and line as pystack prints them (libdw's reading of the DWARF)."""
    exe = shutil.which("pystack", path=os.path.dirname(sys.executable)) or \
        shutil.which("pystack")
    if exe is None:
        pytest.skip("pystack is not installed")
    out = subprocess.run([exe, "core", str(core), "--native-all"], capture_output=True,
                         text=True, timeout=600).stdout
    threads, cur = {}, None
    for line in out.splitlines():
        m = re.match(r"Traceback for thread (\d+)", line)
        if m:
            cur = threads.setdefault(int(m.group(1)), [])
        elif cur is not None and "Unable to merge" in line:
            cur.append(None)
        elif cur is not None:
            m = re.match(r'\s+\((C|Python)\) File "(.*)", line (\d+), in (\S+)', line)
            if m:
                cur.append((m.group(4), m.group(2) if m.group(1) == "C" else None,
                            int(m.group(3))))
    return {tid: rows for tid, rows in threads.items() if None not in rows}


@pytest.mark.parametrize("which", ["crash", "parked"])
def test_same_functions_as_pystack(cores, build, nsdebug, which):
    """The same functions in the same order, and for every C frame where pystack has a
    file and line from the DWARF, the same file and line."""
    cap = cores.native_crash(build) if which == "crash" else cores.native_parked(build)
    theirs = pystack_threads(cap.core)
    (ours,) = bt(nsdebug, cap.core, *debug_args(build), "-c", "bt --all --native")
    compared = lines = 0
    for t in ours["threads"]:
        if t["tid"] in theirs:
            assert [x[1] or "???" for x in listing(t)] == [r[0] for r in theirs[t["tid"]]], \
                t["tid"]
            for row, (_name, file, line) in zip(t["native"], theirs[t["tid"]]):
                if row.get("kind") == "native" and line:   # line 0: no DWARF there
                    assert (row["file"], row["line"]) == (file, line), (row, file, line)
                    lines += 1
            compared += 1
    if build.source == "pyenv":
        assert compared == len(ours["threads"]), "pystack merges every thread of these"
        assert lines >= 10, "libpython and libc have DWARF here: lines must be compared"


def minidebuginfo_copy(lib, dest):
    """A copy of `lib` as Fedora ships libraries: stripped, with its symbol table kept
    xz-compressed in .gnu_debugdata (MiniDebugInfo)."""
    out = str(dest / os.path.basename(lib))
    mini = str(dest / "mini")
    shutil.copyfile(lib, out)
    subprocess.run(["objcopy", "--only-keep-debug", lib, mini], check=True)
    subprocess.run(["strip", "--strip-debug", "--remove-section=.comment", mini], check=True)
    subprocess.run(["xz", "-f", mini], check=True)
    subprocess.run(["strip", "--strip-all", out], check=True)
    subprocess.run(["objcopy", "--add-section", f".gnu_debugdata={mini}.xz", out],
                   check=True)
    return out


@pytest.mark.skipif(not all(shutil.which(t) for t in ("strip", "objcopy", "xz")),
                    reason="binutils or xz not installed")
def test_minidebuginfo_names_a_stripped_library(cores, nsdebug, tmp_path):
    import targets
    build = targets.build("3.11")
    if not build.exe:
        pytest.skip("pyenv 3.11 is not installed")
    cap = cores.native_parked(build)
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(build.exe)))
    lib = os.path.realpath(os.path.join(prefix, "lib", "libpython3.11.so.1.0"))
    (tmp_path / "mini").mkdir()
    (tmp_path / "bare").mkdir()
    minidebuginfo_copy(lib, tmp_path / "mini")
    shutil.copyfile(lib, tmp_path / "bare" / os.path.basename(lib))
    subprocess.run(["strip", "--strip-all", str(tmp_path / "bare" / os.path.basename(lib))],
                   check=True)
    tid = cap.truth["native_ids"]["locker"]

    def names(libdir):
        (res,) = bt(nsdebug, cap.core, "--lib-path", str(libdir), "--debug-dir",
                    str(tmp_path / "no-debug-files"), "-c", "bt --all --native-all")
        t = next(t for t in res["threads"] if t["tid"] == tid)
        return [x[1] for x in listing(t)]

    # acquire_timed is static: only .symtab has it, which strip removes.
    assert "acquire_timed" not in names(tmp_path / "bare")
    assert "acquire_timed" in names(tmp_path / "mini")


def test_a_garbled_stack_ends_the_walk_cleanly(cores, nsdebug, tmp_path):
    """Every word of each thread's stack above its stack pointer overwritten (return
    addresses, saved registers): the unwinder stops, bounded, and says what it has."""
    import struct

    import targets
    from corepatch import patch_core
    from nsdebug.corefile import open_core
    cap = cores.native_parked(targets.default_build())
    p = open_core(cap.core)
    patches = {}
    for k, t in enumerate(p.threads):
        seg = p.memory.find_segment(t.sp)
        n = min(4096, seg.start + seg.filesz - t.sp) // 8
        words = [t.sp + 8 * i if (i + k) % 3 else 0xDEADBEEF0000 + i for i in range(n)]
        patches[t.sp] = struct.pack(f"<{n}Q", *words)     # self-references and garbage
    bad = tmp_path / "garbled.core"
    patch_core(cap.core, bad, patches)
    for args in (["-c", "bt --all --native-all"], ["-c", "threads"], ["-c", "info"]):
        r = nsdebug(bad, *args, "--json", timeout=120)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    (res,) = [json.loads(x) for x in nsdebug(bad, "-c", "bt --all --native-all",
                                             "--json").stdout.splitlines()]
    for t in res["threads"]:
        assert len([r for r in t["native"] if r.get("kind") == "native"]) < 64
