"""freeze -> fork -> thaw -> dump the child -> kill and reap it: a core with a pause of ms.

The target is stopped only while every thread is seized and one of them runs
a raw clone() (fork semantics, no atfork handlers, no SIGCHLD to the target),
injected so that the target returns to where it was by itself if arthur dies
(inject.py). Its registers are restored in a signal-path stop, so an interrupted
system call restarts exactly as it would have. The frozen child is dumped at
leisure; then it is killed, and the target is made to reap it with one injected
wait4(). Zombies a killed run left are reaped by the next capture or `arthur reap`.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from dataclasses import dataclass, field

from . import __version__, procfs
from . import ptrace as pt
from .corewriter import (
    PF_R,
    PF_W,
    PF_X,
    ProcessRecord,
    Segment,
    ThreadRecord,
    build_notes,
    write_core,
)
from .coreformat import ARTHUR_NOTE_NAME, NT_ARTHUR_RESIDENT, encode_residency, note
from .errors import ArthurError, NotPermitted, TargetGone
from .extracts import extract_files
from .faults import FAULT_ENV, InjectedFault, faultpoint, vanish_point
from .interrupts import check as check_interrupt

SKIP_MAPPINGS = ("[vvar]", "[vsyscall]", "[vvar_vclock]")
# Readable mappings larger than this in all (256 GiB) get no record of resident pages:
# reading their pagemap would cost more than the capture.
MAX_RESIDENT_PAGES = 1 << 26
MAX_SEIZE_ROUNDS = 64
@dataclass
class Seized:
    tid: int
    regs: pt.Regs
    fpregs: pt.FpRegs
    deliver: int = 0            # a signal caught in signal-delivery-stop, to pass on
    sigmask: int | None = None


@dataclass
class Result:
    path: str
    mode: str
    pause_ms: float
    fork_ms: float | None
    reap_ms: float | None
    threads: int
    segments: int
    raw_size: int
    file_size: int
    seconds: float
    unreadable: int
    warnings: list = field(default_factory=list)
    jobs: int = 0               # threads that compressed (0: not compressed)


class Session:
    """One capture; every path out of it leaves the target running and untraced."""

    def __init__(self, pid, log=lambda msg: None):
        self.pid = pid
        self.log = log
        self.seized: dict[int, Seized] = {}
        self.child = None
        self.warnings = []
        self._injector = None

    # -- freezing ------------------------------------------------------------------
    def seize_all(self):
        """Seize and interrupt every thread, re-listing until no new thread appears."""
        opts = pt.PTRACE_O_TRACESYSGOOD
        for _ in range(MAX_SEIZE_ROUNDS):
            new = [t for t in procfs.thread_ids(self.pid) if t not in self.seized]
            if not new:
                break
            attached = []
            for tid in new:
                try:
                    pt.seize(tid, opts)
                    pt.interrupt(tid)
                    attached.append(tid)
                except TargetGone:
                    continue            # the thread ended before we could seize it
                except NotPermitted:
                    # A thread of a busy server may be exiting right now: the kernel
                    # refuses it with EPERM too. It runs no more code: leave it.
                    if tid != self.pid and procfs.thread_exiting(self.pid, tid):
                        continue
                    tracer = procfs.status(f"{self.pid}/task/{tid}").get("TracerPid", "0")
                    if tracer not in ("0", str(os.getpid())):
                        raise NotPermitted(f"cannot trace pid {self.pid}: it is already "
                                           f"traced by pid {tracer} "
                                           f"({procfs.stat(int(tracer))['comm']})") from None
                    raise
            for tid in attached:
                self._wait_stopped(tid)
        else:
            raise ArthurError("threads keep appearing; cannot freeze the process")
        if not self.seized:
            raise TargetGone(f"process {self.pid} has no thread left")

    def _wait_stopped(self, tid):
        deliver = 0
        for _ in range(16):
            stop = pt.wait(tid)
            if stop.exited:
                return
            if stop.is_interrupt:
                break
            if stop.is_signal:
                deliver = stop.sig     # stopped on its way to a signal: pass it on later
                break
            pt.cont(tid)
        self.seized[tid] = Seized(tid, pt.get_regs(tid), pt.get_fpregs(tid), deliver,
                                  pt.sigmask(tid))

    def thaw(self):
        """Detach from every seized thread, passing on any signal caught on its way."""
        errors = []
        for tid, s in list(self.seized.items()):
            try:
                pt.detach(tid, s.deliver)
            except TargetGone:
                pass
            except ArthurError as e:
                errors.append(str(e))
            del self.seized[tid]
        if errors:
            self.warnings.extend(errors)

    # -- running a system call in the target, safely (inject.py) ---------------------------
    def injector(self):
        if self._injector is None:
            from .inject import Injector
            self._injector = Injector(self.pid, procfs.mappings(self.pid))
        return self._injector

    def _pick_thread(self):
        """A seized thread whose stack has room for the return frames, the main one
        first."""
        inj = self.injector()
        order = sorted(self.seized, key=lambda t: t != self.pid)
        for tid in order:
            if inj.usable(self.seized[tid]):
                return tid
        raise ArthurError("no thread of the target has room on its stack for the return "
                          "frame")

    def fork_child(self):
        """clone() the target in one of its threads; the child is born stopped, traced,
        and exits by itself if arthur is gone (inject.py)."""
        tid = self._pick_thread()
        pt.set_options(tid, pt.PTRACE_O_TRACESYSGOOD | pt.PTRACE_O_TRACECLONE |
                       pt.PTRACE_O_TRACEFORK)
        faultpoint("before-fork")
        # clone(flags=0): a fork with no exit signal, so the target gets no SIGCHLD and its
        # own waitpid(-1) never sees the child (only __WALL does).
        if os.environ.get(FAULT_ENV) == "fork-fails":
            result, child = -errno.EAGAIN, None       # as if clone() had failed
        else:
            result, child = self.injector().run(tid, self.seized[tid], pt.SYS_CLONE,
                                                (0, 0, 0, 0, 0), child=True,
                                                on_set=lambda: vanish_point("clone-set"))
            vanish_point("clone-done")
        pt.set_options(tid, pt.PTRACE_O_TRACESYSGOOD)
        if result < 0 or not child:
            raise ArthurError(f"clone() in the target failed: {os.strerror(-result)}"
                              if result < 0 else "clone() gave no child")
        self.child = child
        stop = pt.wait(child)
        if stop.exited:
            self.child = None
            raise ArthurError("the forked child died at birth")
        pt.set_options(child, pt.PTRACE_O_EXITKILL)
        vanish_point("child-held")
        return child

    def kill_child(self, also=()):
        """Kill the child and have the target reap it, and the zombies in `also` (an
        injected wait4 each)."""
        child, self.child = self.child, None
        todo = list(also)
        if child is not None:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
            for _ in range(100):
                try:
                    stop = pt.wait(child)
                except TargetGone:
                    break
                if stop.exited:
                    break
            todo.append(child)
        if not todo:
            return None
        try:
            return self.reap_in_target(todo)
        except (ArthurError, InjectedFault) as e:
            if isinstance(e, TargetGone):
                return None
            self.warnings.append(f"reaping the child failed once ({e}); retrying")
            return self.reap_in_target(todo)

    def reap_in_target(self, children):
        """The children are the target's: it must wait4() them or they stay zombies.
        Returns the milliseconds the target was held, or None if nothing was to do."""
        children = [c for c in children if procfs.is_zombie_child(c, self.pid)]
        if not children or not procfs.exists(self.pid):
            return None
        self.injector().maps = procfs.mappings(self.pid)
        tids = procfs.thread_ids(self.pid)
        start = time.perf_counter()
        try:
            for tid in sorted(tids, key=lambda t: t != self.pid):
                try:
                    pt.seize(tid, pt.PTRACE_O_TRACESYSGOOD)
                    pt.interrupt(tid)
                    self._wait_stopped(tid)
                except TargetGone:
                    continue
                except NotPermitted:
                    if tid != self.pid and procfs.thread_exiting(self.pid, tid):
                        continue
                    raise
                if tid in self.seized and self.injector().usable(self.seized[tid]):
                    break
                self.thaw()
            else:
                raise ArthurError("no thread of the target could run wait4()")
            faultpoint("during-reap")
            for child in children:
                result, _ = self.injector().run(
                    tid, self.seized[tid], pt.SYS_WAIT4, (child, 0, pt.WALL | pt.WNOHANG, 0),
                    on_set=lambda: vanish_point("reap-set"))
                vanish_point("reap-done")
                if result != child:
                    self.warnings.append(f"the target could not reap child {child}: "
                                         f"{os.strerror(-result) if result < 0 else result}")
        finally:
            self.thaw()
        return (time.perf_counter() - start) * 1000

    # -- describing the process -------------------------------------------------------
    def process_record(self):
        st = procfs.stat(self.pid)
        uid, gid = procfs.uid_gid(self.pid)
        main_first = sorted(self.seized.values(), key=lambda s: s.tid != self.pid)
        threads = [ThreadRecord(s.tid, s.regs.raw(), s.fpregs.raw(), s.deliver, 0,
                                s.sigmask or 0) for s in main_first]
        return ProcessRecord(self.pid, st["ppid"], st["pgrp"], st["session"], uid, gid,
                             st["state"], st["nice"], st["flags"], st["comm"],
                             procfs.cmdline(self.pid), procfs.auxv(self.pid), threads,
                             os.getpid())


def plan_segments(maps, read_head, anon_kb):
    """PT_LOADs from mappings, kept as the kernel's default coredump filter keeps them:
    anonymous memory, and file mappings with copy-on-write pages (.data, relro with the
    dynamic linker's DT_DEBUG), whole; other file mappings by their ELF header page only
    (nsdebug and gdb read the rest from the files)."""
    out = []
    for m in maps:
        if m.path in SKIP_MAPPINGS:
            continue
        flags = (PF_R if m.readable else 0) | (PF_W if m.writable else 0) | \
            (PF_X if "x" in m.perms else 0)
        if not m.readable:
            filesz = 0
        elif m.is_file and (m.perms[3] == "s" or not anon_kb.get(m.start)):
            filesz = 0
            if m.offset == 0 and read_head(m.start) == b"\x7fELF":
                filesz = min(4096, m.size)
        else:
            filesz = m.size
        out.append(Segment(m.start, m.end, flags, filesz, m.path, m.offset, m.is_file))
    return out


def shared_pages(pid):
    """{(start, end): page states} of the target's file and shared mappings, read before
    arthur touches it: its reads of the target's libraries through /proc/PID/mem (to
    find the code it injects) map in pages that are the capture's doing, not the
    process's. {} when pagemap cannot be read (resident_pages says why)."""
    try:
        rows = [(m.start, m.end) for m in procfs.mappings(pid) if _shared(m)]
        if sum(e - s for s, e in rows) // procfs.PAGE > MAX_RESIDENT_PAGES:
            return {}
        return {(s, s + len(st) * procfs.PAGE): st for s, st in procfs.page_states(pid, rows)}
    except (ArthurError, OSError):
        return {}


def _shared(m):
    """A mapping whose page table fork does not copy (a file's, a shared one), readable."""
    return m.readable and m.path not in SKIP_MAPPINGS and (m.is_file or m.perms[3] != "p")


def resident_pages(maps, pid, reader_pid, early, warn):
    """[(start, page states)] of every readable mapping (procfs.page_states), or None
    when pagemap cannot be read. A private anonymous mapping's come from the frozen copy,
    whose page table fork copied: the target's at the freeze. A file's or a shared
    mapping's come from `early` (shared_pages, before the freeze), else from the target
    now: fork leaves those page tables to be faulted in again, so the copy would show
    them empty."""
    rows = [m for m in maps if m.readable and m.path not in SKIP_MAPPINGS]
    if sum(m.size for m in rows) // procfs.PAGE > MAX_RESIDENT_PAGES:
        warn("the readable mappings are too large to record which pages were resident")
        return None
    private = [m for m in rows if not _shared(m)]
    late = [m for m in rows if _shared(m) and (m.start, m.end) not in early]
    try:
        got = dict(procfs.page_states(reader_pid, [(m.start, m.end) for m in private]))
        got.update(procfs.page_states(pid, [(m.start, m.end) for m in late]))
    except (ArthurError, OSError) as e:
        warn(f"no record of which pages were resident ({e})")
        return None
    return [(m.start, got[m.start] if m.start in got else early[(m.start, m.end)])
            for m in rows]


def mapped_files(maps, pid):
    """{mapped path: a path that opens that file}, one per file-backed mapping's file:
    map_files (the very file mapped), else the path through the process's own root (a
    container's file as the process saw it; the same file for a process outside one)."""
    out = {}
    for m in maps:
        if m.is_file and m.path not in out:
            via = f"/proc/{pid}/map_files/{m.start:x}-{m.end:x}"
            out[m.path] = via if os.path.exists(via) else f"/proc/{pid}/root{m.path}"
    return out


def alive(pid):
    """True while a process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return False
    return raw[raw.rindex(")") + 2] not in "ZX"


class MemoryReader:
    """pread() on /proc/<pid>/mem; unreadable pages come back as zeros and are counted,
    and a process that died under us is an error, not a core full of zeros."""

    def __init__(self, pid):
        self.pid = pid
        self.unreadable = 0
        try:
            self.fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
        except FileNotFoundError:
            raise TargetGone(f"process {pid} is gone") from None

    def read(self, addr, n):
        """Exactly n bytes: pages that cannot be read (a hole, or guard pages that glibc
        2.42 installs inside thread stacks, where a read stops short) are zeros."""
        try:
            data = os.pread(self.fd, n, addr)
            if len(data) == n:
                return data
        except OSError:
            data = b""
        self._check_alive()
        # A hole inside the range: the rest read page by page.
        out = bytearray(data)
        while len(out) < n:
            step = min(4096 - (addr + len(out)) % 4096, n - len(out))
            try:
                piece = os.pread(self.fd, step, addr + len(out))
            except OSError:
                piece = b""
            if len(piece) < step:
                self.unreadable += step - len(piece)
                piece += bytes(step - len(piece))
            out += piece
        return bytes(out)

    def _check_alive(self):
        if not alive(self.pid):
            raise TargetGone(f"process {self.pid} (the frozen copy being dumped) died "
                             f"during the dump")

    def head(self, addr):
        try:
            return os.pread(self.fd, 4, addr)
        except OSError:
            return b""

    def close(self):
        os.close(self.fd)


def default_output(pid, compress):
    return f"core.{pid}.lz4" if compress else f"core.{pid}"


_DEFERRED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class held_signals:
    """SIGINT, SIGTERM and SIGHUP wait while the block runs (the target frozen, or the
    clean-up that leaves it running); they are acted on after it."""

    def __enter__(self):
        self.old = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED)

    def __exit__(self, *exc):
        signal.pthread_sigmask(signal.SIG_SETMASK, self.old)
        return False


def freeze(sess, pid, mode):
    """Seize every thread of `pid`, describe it, and (mode "fork") clone the frozen child
    and thaw the target. Returns (start time, mappings, ProcessRecord, mode, fork ms,
    pause ms); the mode is "stop" when the fork failed (the target then stays stopped,
    pause None). Called with the stop signals held."""
    fork_ms = pause_ms = None
    t0 = time.perf_counter()
    vanish_point("seize")
    sess.seize_all()
    faultpoint("after-seize")
    maps = procfs.mappings(pid)
    proc = sess.process_record()
    if mode == "fork":
        sess.injector().maps = maps
        try:
            f0 = time.perf_counter()
            sess.fork_child()
            fork_ms = (time.perf_counter() - f0) * 1000
            faultpoint("after-fork")
        except TargetGone:
            raise
        except ArthurError as e:
            sess.warnings.append(f"fork failed ({e}); falling back to --stop: the "
                                 f"process stays stopped for the whole dump")
            mode = "stop"
    if mode == "fork":
        sess.thaw()
        vanish_point("thawed")
        pause_ms = (time.perf_counter() - t0) * 1000
        sess.log(f"arthur: paused pid {pid} for {pause_ms:.1f} ms "
                 f"(clone {fork_ms:.1f} ms, {len(proc.threads)} threads)")
    return t0, maps, proc, mode, fork_ms, pause_ms


def capture(pid, output=None, force=False, level=0, compress=True, stop_mode=False,
            lean=False, log=lambda msg: None, reason=None, jobs=None):
    """Capture a core of `pid`; returns a Result. The target is left running, untraced.
    `reason`: why an unattended mode captured it (arthur watch), kept in the note.
    `jobs`: threads compressing (default: the spare CPUs, at most 4); the target is
    running again by then, so they cost only CPU."""
    from .lz4core import ContainerWriter
    from .safefile import OutputError, PrivateOutput
    if not procfs.exists(pid):
        raise TargetGone(f"no process {pid}")
    if pid == os.getpid():
        raise ArthurError("arthur cannot capture itself")
    try:
        out = PrivateOutput(output or default_output(pid, compress), force)
    except OutputError as e:
        raise ArthurError(e.strerror) from None
    sess = Session(pid, log)
    started = time.perf_counter()
    fork_ms = reap_ms = None
    mode = "stop" if stop_mode else "fork"
    maps = proc = None
    ok = False
    leftovers = procfs.leftover_children(pid)
    if leftovers:
        sess.warnings.append(f"{len(leftovers)} zombie child(ren) of pid {pid} left by an "
                             f"arthur run that was killed ({', '.join(map(str, leftovers))})"
                             f"; reaping them")
    try:
        # Before anything of arthur's touches the target: finding the code to inject
        # reads its libraries through /proc/PID/mem, which maps their pages in.
        early = shared_pages(pid)
        try:
            rss = procfs.rss_bytes(pid)          # the resident size the capture shows
        except (ArthurError, OSError, ValueError):
            rss = None
        if not stop_mode:
            try:
                sess.injector()                 # find the code it needs before freezing
            except ArthurError as e:
                sess.warnings.append(f"{e}; falling back to --stop: the process stays "
                                     f"stopped for the whole dump")
                mode = "stop"
        check_interrupt()
        with held_signals():
            t0, maps, proc, mode, fork_ms, pause_ms = freeze(sess, pid, mode)
        check_interrupt()
        reader = MemoryReader(sess.child if mode == "fork" else pid)
        try:
            segments = plan_segments(maps, reader.head, procfs.anonymous_kb(
                sess.child if mode == "fork" else pid))
            # The read-only bytes of the mapped files, so the capture opens anywhere;
            # read through map_files: the very file mapped, even if since replaced.
            extracts, kept = b"", 0
            if not lean:
                extracts, kept = extract_files(
                    mapped_files(maps, reader.pid), sess.warnings.append)
            meta = {"tool": "arthur", "version": __version__, "pid": pid, "mode": mode,
                    "pause_ms": round(pause_ms, 3) if mode == "fork" else None,
                    "fork_ms": round(fork_ms, 3) if fork_ms is not None else None,
                    "captured_at": time.time(), "threads": len(proc.threads),
                    "compressed": compress, "files_kept": kept,
                    "started_at": procfs.started_at(pid), "rss": rss, "reason": reason}
            notes = build_notes(proc, segments, meta)
            # Which pages were resident: after the memory, before the extracts (read
            # only by `memory`, never at open).
            resident = resident_pages(maps, pid, reader.pid, early, sess.warnings.append)
            if resident:
                extracts = note(ARTHUR_NOTE_NAME, NT_ARTHUR_RESIDENT,
                                encode_residency(resident)) + extracts
            sink = ContainerWriter(out.f, level, jobs) if compress else out.f

            halfway = []

            def progress(done, total):
                check_interrupt()
                if done > total // 2 and not halfway:
                    halfway.append(done)
                    faultpoint("during-dump")
                    vanish_point("during-dump")

            try:
                raw_size, unreadable = write_core(sink, segments, notes, reader.read, progress,
                                                  extracts)
                if compress:
                    sink.close()
            except BaseException:
                if compress:
                    sink.abort()
                raise
            unreadable += reader.unreadable
        finally:
            reader.close()
        if mode == "stop":
            with held_signals():
                sess.thaw()
            pause_ms = (time.perf_counter() - t0) * 1000
            log(f"arthur: paused pid {pid} for {pause_ms:.1f} ms (stopped for the whole dump)")
        out.commit()
        ok = True
    except OSError as e:
        raise ArthurError(f"cannot write {out.shown}: {e.strerror or e}") from None
    finally:
        with held_signals():
            if not ok:
                out.discard()
            try:
                reap_ms = sess.kill_child(leftovers)
            finally:
                sess.thaw()
    for w in sess.warnings:
        log(f"arthur: warning: {w}")
    return Result(out.path, mode, pause_ms, fork_ms, reap_ms, len(proc.threads),
                  len(segments), raw_size, os.path.getsize(out.path),
                  time.perf_counter() - started, unreadable, sess.warnings,
                  sink.workers if compress else 0)


def reap(pid, log=lambda msg: None):
    """`arthur reap PID`: reap the zombie children killed arthur runs left under PID."""
    if not procfs.exists(pid):
        raise TargetGone(f"no process {pid}")
    found = procfs.leftover_children(pid)
    if not found:
        return []
    sess = Session(pid, log)
    with held_signals():
        try:
            sess.reap_in_target(found)
        finally:
            sess.thaw()
    for w in sess.warnings:
        log(f"arthur: warning: {w}")
    return [c for c in found if not procfs.exists(c)]
