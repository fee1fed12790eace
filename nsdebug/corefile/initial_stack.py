"""argv and the environment, read from the process's initial stack.

The kernel lays out, at the top of the main thread's stack: argc, argv[],
NULL, envp[], NULL, then the auxiliary vector. The core's NT_AUXV note holds
that vector's exact bytes, so finding them in the stack finds argv and envp,
with no fixed offset and no 80-byte limit (as NT_PRPSINFO has).
"""

from __future__ import annotations

import struct

from ..errors import FaultError
from ..record import Factory, record

AT_EXECFN = 31
MAX_STRINGS = 1 << 16


@record
class InitialStack:
    argv: list = Factory(list)
    environ: list = Factory(list)


def read_initial_stack(memory, auxv_bytes, auxv):
    """InitialStack from memory; empty when the layout cannot be found."""
    execfn = auxv.get(AT_EXECFN)
    if not auxv_bytes or execfn is None:
        return InitialStack()
    seg = memory.find_segment(execfn)
    if seg is None:
        return InitialStack()
    # The auxv sits below the strings; search the last 256 KiB below execfn.
    lo = max(seg.start, execfn - (256 << 10))
    try:
        blob = memory.read(lo, execfn - lo)
    except FaultError:
        return InitialStack()
    key = auxv_bytes[:32]
    pos = blob.rfind(key)
    if pos < 0 or pos % 8:
        return InitialStack()
    # Walk back: envp's NULL, envp[], argv's NULL, argv[], then argc.
    def word(off):
        return struct.unpack_from("<Q", blob, off)[0] if off >= 0 else None

    i = pos - 8
    if word(i) != 0:
        return InitialStack()
    env_ptrs = []
    i -= 8
    while (w := word(i)) not in (0, None) and len(env_ptrs) < MAX_STRINGS:
        env_ptrs.append(w)
        i -= 8
    if w != 0:
        return InitialStack()
    argv_ptrs = []
    i -= 8
    while (w := word(i)) is not None and w != len(argv_ptrs) and len(argv_ptrs) < MAX_STRINGS:
        argv_ptrs.append(w)
        i -= 8
    if w != len(argv_ptrs):
        return InitialStack()
    env_ptrs.reverse()
    argv_ptrs.reverse()

    def strings(ptrs):
        out = []
        for p in ptrs:
            try:
                out.append(memory.cstring(p, 1 << 17).decode("utf-8", "surrogateescape"))
            except FaultError:
                out.append(f"<unreadable {p:#x}>")
        return out

    return InitialStack(strings(argv_ptrs), strings(env_ptrs))
