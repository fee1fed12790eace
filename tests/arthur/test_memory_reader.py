"""arthur's reader of a process's memory across a page it cannot read (a hole, or the
guard pages glibc 2.42 puts inside thread stacks; here, a page unmapped between two
others): the pages after it are read, the
page itself is zeros and counted. A read that stopped at such a page once zero-filled
the rest of its megabyte in captures, and sent `nsdebug --pid` into a loop."""

import json
import subprocess
import sys
import textwrap

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


# Run apart from the test process, whose path holds tests/arthur (no package there).
READER = textwrap.dedent("""
    import json, sys
    from arthur.capture import MemoryReader
    pid, addr = int(sys.argv[1]), int(sys.argv[2])
    r = MemoryReader(pid)
    whole = r.read(addr, 3 * 4096)
    first = r.unreadable
    # Unaligned: from inside the first page to inside the last.
    part = r.read(addr + 4000, 4096 + 200)
    print(json.dumps([whole.hex(), first, part.hex()]))
""")


def test_read_across_an_unreadable_page():
    p = subprocess.Popen([sys.executable, "-c", TARGET], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        addr = int(p.stdout.readline())
        r = subprocess.run([sys.executable, "-c", READER, str(p.pid), str(addr)],
                           capture_output=True, text=True, cwd="/")
        assert r.returncode == 0, r.stderr
        whole, unreadable, part = json.loads(r.stdout)
        assert bytes.fromhex(whole) == b"A" * 4096 + bytes(4096) + b"C" * 4096
        assert unreadable == 4096
        assert bytes.fromhex(part) == b"A" * 96 + bytes(4096) + b"C" * 104
    finally:
        p.stdin.close()
        p.wait()
