"""Spilling the heap walk's arrays to disk when this process's memory is short.

A walk holds about 100 bytes per object at its peak (columns per node, edges, the
dominator pass). In a container, a memory cgroup's limit smaller than that gets the
process killed by the kernel, with nothing said. So the walk watches its anonymous
memory; once it has used half of what it may, it moves the arrays it has made into a
scratch file in the directory the heap index goes to, and makes the rest there: the
kernel then writes those pages to the file and drops them when memory is short, where it
would otherwise kill the process. Slower (the pages go to disk and come back), but done.
The C passes over the finished graph (dominators, retained sizes by type) take their
working arrays from the same file then, where a limit started the spill
(HeapGraph._spilled_scratch).

The scratch file has no name (O_TMPFILE; else it is unlinked as soon as it is created):
its space goes when the last array mapped from it does, whatever happens to the process.
A walk that wants its heap index names it the index at the end (index.IndexWriter).

What "may use" means is membudget.anon_budget's: the tightest memory cgroup limit over
this process, the system's available memory and the data segment limit. The last
(`ulimit -d`, `prlimit --data`; `nsdebug triage` sets one per analysis) counts what is
reserved, not what is resident: numpy's untouched pages, threads' stacks. So under it
the walk also spills once its data segment (VmData) passes SPILL_AT of the limit; the
scratch file's pages are a shared mapping, which the limit does not count. An
address-space limit (`ulimit -v`,
`prlimit --as`) counts mapped files as much as anonymous memory: no file helps under it,
so it is not a reason to spill (running out of it is reported as such by the command
line).

A large heap spills too, with no limit in sight: past KEEP_PER_OBJECT bytes of
anonymous memory per object found (and a floor), the walk's arrays go to the scratch
file as they would under a limit, without a note (it is the usual way, not a warning).
Where a limit bounds the budget (a memory cgroup's, the data segment's), the same spill
is noted with that budget: there it is what keeps the walk alive.

NSDEBUG_SPILL=never|always|auto (the default) overrides the decision.
"""

from __future__ import annotations

import mmap
import os
import tempfile
import threading
import weakref

import numpy as np

from arthur.safefile import unnamed_file

from ..membudget import anon_and_data_bytes, budget_and_limit, data_limit, pinned_bytes
from ..parallel import start_thread, two_cpus

SPILL_AT = 0.5           # spill once anonymous memory passes this share of the budget
# And, whatever the budget, once the walk holds more than this much anonymous memory
# per object it has found (past a floor: the interpreter, numpy, a small heap): a heap
# of tens of millions of objects then peaks under 50 bytes an object, not 150, for a
# fifth more time. Its finished arrays are pages of a file the kernel may write out
# and drop, where anonymous memory can only be kept or killed for.
KEEP_PER_OBJECT = 40
KEEP_FLOOR = 48 << 20
CHECK_FROM = 1 << 20     # allocations from this size look at the budget first


FALLOC_PUNCH_HOLE = 0x03    # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE (linux/falloc.h)
_fallocate = None


def punch_hole(fd, at, size):
    """The file's blocks and cached pages from `at` for `size` bytes dropped (Linux's
    fallocate PUNCH_HOLE); False where it cannot be done."""
    global _fallocate
    if _fallocate is None:
        try:
            import ctypes
            f = ctypes.CDLL(None, use_errno=True).fallocate
            f.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
            _fallocate = f
        except (OSError, AttributeError):
            _fallocate = False
    return bool(_fallocate) and _fallocate(fd, FALLOC_PUNCH_HOLE, at, size) == 0


class _ScratchFile:
    """The scratch file's descriptor, closed when neither the Spill nor a finalizer of
    one of its arrays nor a punch waiting to be made holds it any more (a number closed
    early could name another file by the time an array is dropped)."""

    def __init__(self, fd):
        self.fd = fd
        self.named = False          # the heap index now: every hole punched before exit

    def punch(self, at, size):
        """The hole punched on the second CPU where there is one: the kernel takes a
        millisecond per array to drop its pages and blocks (2.5 s over a 48M-object
        walk), which the walk need not wait for."""
        if two_cpus() and not self.named:
            _punch_later(self, at, size)
        else:
            punch_hole(self.fd, at, size)

    def __del__(self):
        os.close(self.fd)


_punches = None             # (scratch file, offset, size) for the punching thread


def _punch_later(file, at, size):
    global _punches
    if _punches is None:
        import queue
        _punches = queue.Queue()
        start_thread(_punch_all, "nsdebug-punch")
    _punches.put((file, at, size))


def _punch_all():
    while True:
        item = _punches.get()
        punch_hole(item[0].fd, item[1], item[2])
        del item            # (the file closes once nothing else holds it)
        _punches.task_done()


def punches_made():
    """Wait until every hole asked for is punched (for tests)."""
    if _punches is not None:
        _punches.join()


class _Mapping(mmap.mmap):
    """A piece of the scratch file mapped: `at`, its offset in the file, `addr`, where
    it is mapped (for Spill.copy), `owner`, the file's _ScratchFile, and `release`, the
    finalizer that punches the piece out once it is dropped."""
    at = addr = 0
    owner = release = None


def _mapping_of(a):
    """The mmap an array (or a slice or view of one) was made on, else None."""
    base = a.base
    while isinstance(base, np.ndarray):
        base = base.base
    m = base.obj if isinstance(base, memoryview) else None
    return m if isinstance(m, mmap.mmap) else None


def in_file(a):
    """Whether an array is mapped from a file (np.frombuffer of an mmap, or a part)."""
    return _mapping_of(a) is not None


class Spill:
    """Where the walk's large arrays go: anonymous memory until the budget is half used,
    then pages of a scratch file in `directory`. `mode`: auto, always or never
    (NSDEBUG_SPILL when not given)."""

    def __init__(self, directory, mode=None):
        self.directory = directory
        self.mode = mode or os.environ.get("NSDEBUG_SPILL", "auto")
        if self.mode not in ("auto", "always", "never"):
            self.mode = "auto"
        # (limited: a memory cgroup's or the data segment's limit bounds the budget)
        self.budget, self.limited = budget_and_limit() if self.mode == "auto" else \
            (None, False)
        self._pinned = pinned_bytes()
        self.data_limit = data_limit() if self.mode == "auto" else None
        self.active = False
        self.objects = 0            # objects the walk has found so far (0: not a walk's)
        self.spilled = 0            # bytes put in the scratch file
        self._file = None           # the scratch file (_ScratchFile), once active
        self.linkable = False       # made unnamed (O_TMPFILE): it can be given a name
        self._live = weakref.WeakSet()  # the pieces mapped (_Mapping), while mapped
        self._size = 0
        self._lock = threading.Lock()   # arrays are made from two threads (parallel.py)
        self.why = None
        self.quiet = False
        if self.mode == "always":
            self._activate("NSDEBUG_SPILL=always")

    def check(self):
        """Whether arrays go to the scratch file from now on (it starts so when this
        process's anonymous memory has passed SPILL_AT of its budget, or its data
        segment SPILL_AT of its limit)."""
        if not self.active and self.mode == "auto":
            anon, data = anon_and_data_bytes()      # the walk's: copies held left out
            budget = self.budget
            if budget is not None:
                # A copy of the core made in memory since (a capture's, vector.memory_copy)
                # leaves that much less.
                budget = max(budget - (pinned_bytes() - self._pinned), 0)
            over = budget is not None and anon > SPILL_AT * budget
            large = self.objects and anon > KEEP_FLOOR + KEEP_PER_OBJECT * self.objects
            held = pinned_bytes()
            if not over and self.data_limit is not None and \
                    data > SPILL_AT * max(self.data_limit - held, 0):
                self._activate(f"its data segment at {(data + held) >> 20} MiB of a limit "
                               f"of {self.data_limit >> 20} MiB")
            elif over or (large and self.limited):
                # Under a limit, a spill is what keeps the walk alive, whichever rule
                # started it: the user is told of the limit.
                self._activate(f"{anon >> 20} MiB in use of {budget >> 20} MiB this "
                               f"process may use")
            elif large:
                self._activate(f"{self.objects:,} objects", quiet=True)
        return self.active

    def _activate(self, why, quiet=False):
        try:
            os.makedirs(self.directory, exist_ok=True)
            fd = unnamed_file(self.directory, os.O_RDWR)
            self.linkable = fd is not None
            if fd is None:
                fd, path = tempfile.mkstemp(prefix=".nsdebug-spill-", dir=self.directory)
                os.unlink(path)
        except OSError:
            # Nowhere to write: go on in memory (the limit may still hold).
            self.mode = "never"
            return
        self._file = _ScratchFile(fd)
        # The first page left for the prefix of the heap index it may become.
        self._size = mmap.PAGESIZE
        self.active, self.why, self.quiet = True, why, quiet

    @property
    def for_a_limit(self):
        """Whether arrays go to the scratch file because a limit was met (or the spill
        was asked for): then a pass's working arrays and a wave's large temporaries go
        there too. A large heap's spill with no limit (quiet) keeps those in memory,
        where they are faster."""
        return self.active and not self.quiet

    def empty(self, n, dtype):
        """An uninitialised array of n items (zeros, when in the scratch file)."""
        dtype = np.dtype(dtype)
        nbytes = int(n) * dtype.itemsize
        with self._lock:
            if nbytes >= CHECK_FROM:
                self.check()
            if not self.active or nbytes < mmap.PAGESIZE:
                return np.empty(n, dtype=dtype)
            at = self._size
            size = (nbytes + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
            try:
                # The blocks allocated now, not when the pages are first written: a full
                # disk is then this OSError (the array made in memory instead), never a
                # SIGBUS in the middle of the walk.
                os.posix_fallocate(self._file.fd, at, size)
                m = _Mapping(self._file.fd, size, offset=at)
            except OSError:
                return np.empty(n, dtype=dtype)
            self._size += size
            self.spilled += nbytes
        a = np.frombuffer(m, dtype=dtype, count=n)
        m.at, m.addr, m.owner = at, a.ctypes.data, self._file
        # An array dropped before the end (a wave's chunks once drained, the address
        # table after the assembly) gives its pages back at once: they are dirty page
        # cache the kernel would otherwise write to disk, and free only when the file
        # goes (1.7 s at the end of a 48M-object walk).
        m.release = weakref.finalize(m, self._file.punch, at, size)
        m.release.atexit = self._file.named
        self._live.add(m)
        return a

    def copy(self, chunk, part):
        """part[:] = chunk; into the scratch file by pwrite where `part` lies in it.
        Written through the mapping, each page would fault, be zeroed by the kernel and
        then be overwritten (a third of a large walk's system time); pwrite fills the
        file's pages whole, and the mapping then finds them in the page cache."""
        m = _mapping_of(part)
        if not isinstance(m, _Mapping) or m.owner is not self._file or \
                chunk.dtype != part.dtype or \
                len(chunk) != len(part) or not part.flags.c_contiguous:
            part[:] = chunk
            return
        self.write_at(m.at + part.ctypes.data - m.addr,
                      memoryview(np.ascontiguousarray(chunk)).cast("B"))

    def zeros(self, n, dtype):
        a = self.empty(n, dtype)
        if not in_file(a):
            a[:] = 0            # (a file's new pages are zeros)
        return a

    def park(self, a):
        """`a`, moved into the scratch file when spilling (else `a` itself)."""
        if not self.active or a.nbytes < mmap.PAGESIZE or in_file(a):
            return a
        out = self.empty(len(a), a.dtype)
        self.copy(a, out)
        return out

    def park_all(self, arrays, start=0):
        """Each array of a list from `start` on moved into the scratch file, in place;
        returns the list's length (where the next call on it may start)."""
        for i in range(start, len(arrays)):
            arrays[i] = self.park(arrays[i])
        return len(arrays)

    # -- the scratch file made the heap index (index.IndexWriter) ----------------------
    # The arrays the index holds are mostly in the scratch file already, written by the
    # walk. Named as the index, it is the index: they are kept where they are, not
    # copied into a new file (a new file's pages are the most costly the walk touches:
    # at 14.4M objects the copy took half the first command's time on this machine).

    def can_become(self, directory):
        """Whether the scratch file can be named in `directory` (linkat): made unnamed,
        and on the same file system."""
        if not self.linkable:
            return False
        try:
            return os.stat(directory).st_dev == os.fstat(self._file.fd).st_dev
        except OSError:
            return False

    def offset_of(self, a):
        """Where array `a`'s bytes lie in the scratch file, or None where they do not (in
        memory, not contiguous, or another file's)."""
        m = _mapping_of(a)
        if not isinstance(m, _Mapping) or m.owner is not self._file or \
                not a.flags.c_contiguous:
            return None
        return m.at + a.ctypes.data - m.addr

    def keep(self, a):
        """`a`'s piece of the file kept when `a` is dropped (the index holds it now)."""
        m = _mapping_of(a)
        if isinstance(m, _Mapping) and m.release is not None:
            m.release.detach()

    def append(self, data):
        """`data` written in a new piece at the end of the file, kept; its offset."""
        data = memoryview(data).cast("B")
        with self._lock:
            at = self._size
            size = (len(data) + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
            if size:
                os.posix_fallocate(self._file.fd, at, size)
            self._size += size
        self.write_at(at, data)
        return at

    def write_at(self, at, data):
        data = memoryview(data).cast("B")
        while len(data):
            done = os.pwrite(self._file.fd, data, at)
            data, at = data[done:], at + done

    def descriptor(self):
        """The scratch file's descriptor duplicated, for the output that names it. A
        named file outlives the process: the pieces of arrays still in use are punched
        out at exit (their finalizers run then), and every punch from now on is made at
        once, not by the thread, which exit does not wait for."""
        punches_made()
        self._file.named = True
        for m in list(self._live):
            if m.release is not None and m.release.alive:
                m.release.atexit = True
        return os.dup(self._file.fd)

    def note(self):
        """What the user is told when the walk spilled, else None."""
        if not self.spilled or self.quiet:
            return None         # (a large heap's usual way: nothing to warn about)
        return (f"the heap walk spilled {self.spilled >> 20} MiB of its arrays to "
                f"{self.directory} ({self.why}): slower, but not out of memory")

    # (No __del__: the descriptor closes with the last holder of _file; the arrays
    # mapped from the scratch file stay valid without it.)

