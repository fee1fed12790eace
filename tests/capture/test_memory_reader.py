"""arthur's reader of a process's memory across a page it cannot read (a hole, or the
guard pages glibc 2.42 puts inside thread stacks; here, a page unmapped between two
others): the pages after it are read, the page itself is zeros and counted. A read that
stopped at such a page once zero-filled the rest of its megabyte in captures, and sent
`nsdebug --pid` into a loop."""

import subprocess
import sys
import textwrap

from arthur.capture import MemoryReader

TARGET = textwrap.dedent("""
    import ctypes, mmap, sys
    PAGE = mmap.PAGESIZE
    m = mmap.mmap(-1, 3 * PAGE)
    for i, b in enumerate(b"ABC"):
        m[i * PAGE:(i + 1) * PAGE] = bytes([b]) * PAGE
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    # A hole in the middle (PROT_NONE would not do: /proc/PID/mem reads through it).
    assert libc.munmap(addr + PAGE, PAGE) == 0
    print(addr, flush=True)
    sys.stdin.read()
""")


def test_read_across_an_unreadable_page():
    p = subprocess.Popen([sys.executable, "-c", TARGET], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        addr = int(p.stdout.readline())
        r = MemoryReader(p.pid)
        assert r.read(addr, 3 * 4096) == b"A" * 4096 + bytes(4096) + b"C" * 4096
        assert r.unreadable == 4096
        # Unaligned: from inside the first page to inside the last.
        assert r.read(addr + 4000, 4096 + 200) == b"A" * 96 + bytes(4096) + b"C" * 104
        r.close()
    finally:
        p.stdin.close()
        p.wait()
