"""arthur crash-handler with the real kernel: core_pattern pipes real CPython crashes into
arthur, whose captures open elsewhere (--sysroot at an empty directory) to the stacks
the kernel's own core of the same crash gives. core_pattern and core_pipe_limit are put
back in every path (the `kernel_pattern` fixture), also when a test fails."""

import glob
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import pytest
import targets
from helpers import record_of, run_arthur

PATTERN = "/proc/sys/kernel/core_pattern"
PIPE_LIMIT = "/proc/sys/kernel/core_pipe_limit"
CONFIG = "/etc/arthur/crash-handler.json"
SCRIPT = os.path.join(targets.FIXTURES, "crash_target.py")
NOBODY = 65534


def _read(path):
    with open(path) as f:
        return f.read().rstrip("\n")


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


@pytest.fixture
def kernel_pattern():
    """The kernel's core settings, restored exactly whatever the test does."""
    if not os.access(PATTERN, os.W_OK):
        pytest.skip(f"{PATTERN} is not writable here (not root, or in a container)")
    saved = _read(PATTERN), _read(PIPE_LIMIT)
    config = open(CONFIG, "rb").read() if os.path.exists(CONFIG) else None
    try:
        yield saved
    finally:
        _write(PATTERN, saved[0])
        _write(PIPE_LIMIT, saved[1])
        if config is None:
            if os.path.exists(CONFIG):
                os.unlink(CONFIG)
        else:
            with open(CONFIG, "wb") as f:
                f.write(config)


@pytest.fixture
def python():
    return targets.default_build().exe


def install(spool, *options):
    r = run_arthur("crash-handler", "install", "--spool", spool, "--min-free", "64M",
                   *options)
    assert r.returncode == 0, r.stderr
    return r.stdout


def crash(python, workdir, mode, mib=0, user=None, code=None):
    """Run a crashing target; returns (its pid, the signal it died of)."""
    os.makedirs(workdir, exist_ok=True)
    args = [python, "-c", code] if code else \
        [python, SCRIPT, os.path.join(workdir, "truth.json"), mode, str(mib)]
    def pre():
        # A plain pattern's core obeys RLIMIT_CORE (a pipe's ignores it).
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,) * 2)
        if user:
            os.setgid(user)
            os.setuid(user)
    p = subprocess.Popen(args, cwd=workdir, preexec_fn=pre, stderr=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL)
    p.wait(timeout=120)
    assert p.returncode < 0, f"the target exited with {p.returncode}, not by a signal"
    return p.pid, -p.returncode


def stacks(core, *extra):
    """`bt --all` of a core as its threads' blocks, sorted (two runs start their threads
    in their own order), thread ids and addresses written as N."""
    r = subprocess.run([*targets.nsdebug_cmd(), core, *extra, "-c", "bt --all"],
                       capture_output=True, text=True, env=targets.nsdebug_env(),
                       timeout=120)
    assert r.returncode == 0, r.stderr
    text = re.sub(r"0x[0-9a-f]+", "ADDR", r.stdout)
    # Each block stripped: the last one printed ends with the output's newline, and which
    # thread is last depends on the order the kernel listed them in.
    return sorted(b.strip() for b in re.sub(r"Thread \d+", "Thread N", text).split("\n\n")
                  if b.strip())


def resident_record(capture):
    import nsdebug
    with nsdebug.open(capture) as c:
        page, rows = c.target.process.residency
        return page, [(s, bytes(st)) for s, st in rows]


def kernel_core(python, workdir, mode, mib=0):
    """The kernel's own core of the same crash (a plain core_pattern)."""
    os.makedirs(workdir, exist_ok=True)
    _write(PATTERN, os.path.join(str(workdir), "kcore.%p"))
    pid, _sig = crash(python, workdir, mode, mib)
    return os.path.join(str(workdir), f"kcore.{pid}")


# mode, MiB, signal, a function of the crashed thread's stack, the crash line's frame
CASES = [("segv", 0, 11, "crash_in_c", "string_at (__init__.py:"),
         ("abort", 0, 6, "abort_here", "abort_here (crash_target.py:"),
         ("signal16", 0, 3, "deliver_quit", "deliver_quit (crash_target.py:"),
         ("big", 1024, 11, "crash_in_c", "string_at (__init__.py:")]


@pytest.mark.parametrize("mode,mib,signo,function,top", CASES,
                         ids=[c[0] for c in CASES])
def test_crash_is_kept_and_reads_as_the_kernels_core(kernel_pattern, python, tmp_path, mode,
                                                     mib, signo, function, top):
    spool = str(tmp_path / "spool")
    install(spool)
    assert _read(PATTERN).startswith("|") and int(_read(PIPE_LIMIT)) >= 16
    pid, sig = crash(python, tmp_path / "run", mode, mib)
    assert sig == signo
    rec = record_of(spool, pid)
    assert rec["pid"] == pid and rec["signal"] == signo and rec["uid"] == 0
    assert rec["core"].endswith(".lz4") and rec["executable"].startswith(
        os.path.dirname(os.path.realpath(python)))
    assert rec["python"] and rec["python"].startswith("3.")
    assert f"Python: {top}" in rec["crash"], rec["crash"]
    assert rec["held_ms"] > 0 and rec["handler_peak_rss_kb"] < 200 * 1024
    if mode == "big":
        assert rec["rss"] > 1 << 30 and rec["raw_size"] > 1 << 30
    if mode == "signal16":
        assert rec["threads"] == 16
    capture = os.path.join(spool, rec["core"])
    st = os.stat(capture)
    assert st.st_uid == 0 and st.st_mode & 0o077 == 0
    # Which pages were resident, read while the kernel waited on the pipe: their sum is
    # the crashed process's RSS (VmRSS in the record, read by the handler as well).
    page, rows = resident_record(capture)
    in_ram = sum(bytes(st).count(2) for _start, st in rows) * page
    assert 0.9 * rec["rss"] <= in_ram <= 1.1 * rec["rss"], (in_ram, rec["rss"])
    empty = tmp_path / "empty"
    empty.mkdir()
    ours = stacks(capture, "--sysroot", str(empty))
    run_arthur("crash-handler", "uninstall")
    plain = kernel_core(python, tmp_path / "kernel", mode, mib)
    theirs = stacks(plain)
    os.unlink(plain)                        # a gigabyte the next runs need not keep
    assert any(f"in {function}" in block for block in ours)
    if ours != theirs:
        import difflib
        pytest.fail("\n".join(difflib.unified_diff(
            "\n\n".join(theirs).splitlines(), "\n\n".join(ours).splitlines(),
            "the kernel's core", "arthur's capture", lineterm="")))


def test_non_root_crash_is_readable_by_its_owner_only(kernel_pattern, request):
    """A process of user nobody (Debian's own python3: pyenv's are under /root): its
    capture and record are root's, 0600, with an ACL entry for nobody alone."""
    # pytest's own temporary directories are root's alone: the spool is made beside them.
    top = tempfile.mkdtemp(prefix="nsdebug-spool-", dir="/tmp")
    request.addfinalizer(lambda: shutil.rmtree(top, ignore_errors=True))
    os.chmod(top, 0o755)
    spool = os.path.join(top, "spool")
    install(spool)
    work = os.path.join(top, "run")
    os.mkdir(work)
    os.chmod(work, 0o777)
    code = "import ctypes\ndef crash_in_c():\n    ctypes.string_at(0)\ncrash_in_c()\n"
    pid, sig = crash("/usr/bin/python3", work, None, user=NOBODY, code=code)
    rec = record_of(spool, pid)
    assert rec["uid"] == NOBODY and rec["signal"] == 11 and rec["core"]
    for name in (rec["core"], rec["core"][:-4] + ".json"):
        path = os.path.join(spool, name)
        st = os.stat(path)
        assert st.st_uid == 0 and st.st_mode & 0o007 == 0
        read = ["/usr/bin/python3", "-c", f"open({path!r}, 'rb').read(4)"]
        as_owner = subprocess.run(read, preexec_fn=lambda: os.setuid(NOBODY),
                                  capture_output=True)
        assert as_owner.returncode == 0, as_owner.stderr
        as_other = subprocess.run(read, preexec_fn=lambda: os.setuid(NOBODY - 1),
                                  capture_output=True, text=True)
        assert as_other.returncode != 0 and "Permission denied" in as_other.stderr
    assert "Python: string_at (__init__.py:" in rec["crash"]


def test_the_crash_line_is_the_installed_nsdebugs_whatever_the_directory(cores, tmp_path,
                                                                          monkeypatch):
    """The kernel starts the handler in "/", and `python -m` puts the directory it runs
    in first on sys.path: an `nsdebug` folder there (here, a decoy in the test's own
    directory) must not be the one that reads the crash."""
    from arthur import crashhandler
    cap = cores.crash(targets.default_build())
    decoy = tmp_path / "nsdebug"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("")
    (decoy / "__main__.py").write_text("print('{\"crash\": \"the decoy\"}')\n")
    monkeypatch.chdir(tmp_path)
    summary = crashhandler._summary(cap.core)
    assert "summary_error" not in summary, summary
    assert "Python: parse_record (stacks_target.py:" in summary["crash"], summary
    assert summary["python"].startswith(cap.build.version + "."), summary


def test_the_handler_is_the_installed_arthur_whatever_the_directory(tmp_path):
    """The kernel runs core_pattern's command in "/": a folder `arthur` there (here, a
    decoy in the directory the command runs in) must not be what handles crashes, as
    root. The installed handler, given no crash's arguments, fails and says so."""
    from arthur import crashhandler
    decoy = tmp_path / "arthur"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("")
    (decoy / "crashhandler.py").write_text("open('the-decoy-ran', 'w').close()\n")
    r = subprocess.run(crashhandler.handler_command().split(), cwd=tmp_path, env={},
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert not (tmp_path / "the-decoy-ran").exists()
    assert r.returncode == 1 and not r.stdout, r
    # A pattern installed before the handler ran isolated is still arthur's to uninstall.
    assert crashhandler.is_ours(f"|{crashhandler.handler_command()} %P")
    assert crashhandler.is_ours(f"|{sys.executable} -m arthur.crashhandler %P")
    assert not crashhandler.is_ours(f"|{sys.executable} -m other.handler %P")


def test_ten_crashes_at_once(kernel_pattern, python, tmp_path):
    spool = str(tmp_path / "spool")
    install(spool, "--rate", "100/60")
    procs = []
    for i in range(10):
        work = tmp_path / f"run{i}"
        work.mkdir()
        procs.append(subprocess.Popen(
            [python, SCRIPT, str(work / "truth.json"), "segv"], cwd=work,
            stderr=subprocess.DEVNULL))
    for p in procs:
        p.wait(timeout=120)
        assert p.returncode == -11
    recs = [record_of(spool, p.pid) for p in procs]
    assert all(r["core"] and r["core"].endswith(".lz4") for r in recs), recs
    assert all("Python: string_at (__init__.py:" in r["crash"] for r in recs)
    assert len(glob.glob(os.path.join(spool, "core.*.lz4"))) == 10


def test_triage_reads_the_spool_with_its_records(kernel_pattern, python, tmp_path):
    """`nsdebug triage` over the handler's spool: the crashes grouped by bug, times from
    the records."""
    spool = str(tmp_path / "spool")
    install(spool, "--rate", "100/60")
    pids = {mode: [crash(python, tmp_path / f"{mode}{i}", mode)[0] for i in range(n)]
            for mode, n in (("segv", 3), ("abort", 2))}
    recs = {pid: record_of(spool, pid) for group in pids.values() for pid in group}
    r = subprocess.run([*targets.nsdebug_cmd(), "triage", spool, "--json", "--no-cache"],
                       capture_output=True, text=True, env=targets.nsdebug_env(),
                       timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["cores"] == 5 and doc["failed"] == []
    groups = {g["signature"]: g for g in doc["groups"]}
    assert set(groups) == {"SIGSEGV | string_at | ctypes:string_at | crash_target:crash_in_c",
                           "SIGABRT | crash_target:abort_here"}, list(groups)
    for mode, sig in (("segv", "SIGSEGV |"), ("abort", "SIGABRT |")):
        g = next(g for s, g in groups.items() if s.startswith(sig))
        mine = [recs[pid] for pid in pids[mode]]
        assert g["count"] == len(mine)
        assert sorted(g["cores"]) == sorted(os.path.join(spool, x["core"]) for x in mine)
        assert g["first_seen"] == min(x["time"] for x in mine)
        assert g["last_seen"] == max(x["time"] for x in mine)
        assert g["versions"] == sorted({x["python"] for x in mine})


def test_spool_keep_and_total(kernel_pattern, python, tmp_path):
    spool = str(tmp_path / "spool")
    install(spool, "--keep", "2")
    pids = []
    for i in range(3):
        pids.append(crash(python, tmp_path / f"run{i}", "segv")[0])
        record_of(spool, pids[-1])
    kept = sorted(glob.glob(os.path.join(spool, "core.*.lz4")))
    assert len(kept) == 2 and not glob.glob(os.path.join(spool, f"core.*.{pids[0]}.*"))
    size = os.path.getsize(kept[-1])
    install(spool, "--keep", "20", "--max-total", str(int(size * 1.5)))
    pid = crash(python, tmp_path / "run3", "segv")[0]
    assert record_of(spool, pid)["core"]
    kept = glob.glob(os.path.join(spool, "core.*.lz4"))
    assert len(kept) == 1 and f".{pid}." in kept[0]
    st = json.loads(run_arthur("crash-handler", "status", "--json").stdout)
    assert st["installed"] and st["captures"] == 1 and st["spool"] == spool
    assert st["handler_runs"] and os.path.samefile(st["handler"], sys.executable)
    assert st["rules"]["max_total"] == int(size * 1.5)


def test_rate_limit_per_executable(kernel_pattern, python, tmp_path):
    spool = str(tmp_path / "spool")
    install(spool, "--rate", "2/600")
    recs = []
    for i in range(3):
        recs.append(record_of(spool, crash(python, tmp_path / f"run{i}", "segv")[0]))
    assert [bool(r["core"]) for r in recs] == [True, True, False]
    assert "rate limit" in recs[2]["dropped"]


def test_min_free_drops_the_core_keeps_the_record(kernel_pattern, python, tmp_path):
    """A 64 MiB tmpfs spool with --min-free 48M: 32 MiB of random bytes cannot be kept
    without eating into it; the record says so and no partial file is left."""
    spool = tmp_path / "small"
    spool.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64M,mode=0755", "tmpfs",
                        str(spool)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        r = run_arthur("crash-handler", "install", "--spool", str(spool), "--min-free",
                       "48M")
        assert r.returncode == 0, r.stderr
        pid = crash(python, tmp_path / "run", "random", 32)[0]
        rec = record_of(str(spool), pid)
        assert rec["core"] is None and "min-free" in rec["dropped"]
        assert [n for n in os.listdir(spool) if not n.startswith(".arthur") and
                not n.endswith(".json")] == []
        # A small crash still fits.
        pid = crash(python, tmp_path / "run2", "segv")[0]
        assert record_of(str(spool), pid)["core"]
        run_arthur("crash-handler", "uninstall")
    finally:
        _write(PATTERN, kernel_pattern[0])
        subprocess.run(["umount", "-l", str(spool)])


def test_uninstall_restores_exactly(kernel_pattern, tmp_path):
    odd = str(tmp_path / "cores" / "core.%e.%p.%t")
    _write(PATTERN, odd)
    _write(PIPE_LIMIT, "3")
    spool = str(tmp_path / "spool")
    install(spool, "--keep", "3")
    install(spool, "--keep", "4")             # reinstalled: the original is still known
    assert int(_read(PIPE_LIMIT)) == 64
    r = run_arthur("crash-handler", "status")
    assert "installed: spool" in r.stdout and repr(odd) in r.stdout
    r = run_arthur("crash-handler", "uninstall")
    assert r.returncode == 0, r.stderr
    assert _read(PATTERN) == odd and _read(PIPE_LIMIT) == "3"
    r = run_arthur("crash-handler", "uninstall")
    assert r.returncode == 1 and "no arthur crash handler is installed" in r.stderr
    assert "Traceback" not in r.stderr


def _handle(core_path, pid, mode=1, env=None, uid=0):
    """The handler run as the kernel would, on a core file given as its stdin."""
    with open(core_path, "rb") as stdin:
        return subprocess.run(
            [sys.executable, "-m", "arthur.crashhandler", str(pid), str(pid), str(uid),
             str(uid), "11", str(int(time.time())), str(mode), "!bin!sleep"],
            stdin=stdin, capture_output=True, text=True, timeout=120,
            env=dict(os.environ, **(env or {})))


@pytest.fixture
def kernel_core_file(kernel_pattern, python, tmp_path):
    return kernel_core(python, tmp_path / "k", "segv")


@pytest.fixture
def bystander():
    p = subprocess.Popen(["sleep", "60"])
    yield p.pid
    p.kill()
    p.wait()


def test_a_failure_part_way_keeps_the_kernels_core(kernel_core_file, bystander, tmp_path):
    spool = str(tmp_path / "spool")
    install(spool)
    _write(PATTERN, "core")         # the handler configured, the kernel not piping to it
    r = _handle(kernel_core_file, bystander, env={"ARTHUR_FAULT": "crash-mid-stream"})
    assert r.returncode == 0, r.stderr
    rec = record_of(spool, bystander)
    assert rec["core"].endswith(".core")
    assert any("the plain core is kept" in w for w in rec["warnings"])
    with open(kernel_core_file, "rb") as a, open(os.path.join(spool, rec["core"]), "rb") as b:
        assert a.read() == b.read()


def test_garbage_is_kept_as_sent_and_setuid_cores_stay_roots(kernel_pattern, bystander,
                                                            tmp_path):
    spool = str(tmp_path / "spool")
    install(spool)
    _write(PATTERN, "core")
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a core at all" * 1000)
    r = _handle(str(junk), bystander, mode=2, uid=NOBODY)
    assert r.returncode == 0, r.stderr
    rec = record_of(spool, bystander)
    path = os.path.join(spool, rec["core"])
    assert rec["core"].endswith(".core") and rec["dump_mode"] == 2
    with open(path, "rb") as f:
        assert f.read() == junk.read_bytes()
    with pytest.raises(OSError):
        os.getxattr(path, "system.posix_acl_access")
