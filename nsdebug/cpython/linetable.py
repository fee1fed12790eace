"""Line numbers from code objects, decoded per version exactly as CPython does it.

3.8-3.9: co_lnotab, (address delta, signed line delta) byte pairs.
3.10:    co_linetable, (address delta, signed line delta) pairs, -128 = no line.
3.11+:   co_linetable, the PEP 657 location table of variable-length entries.
"""


def addr2line_lnotab(lnotab, firstlineno, addrq):
    """PyCode_Addr2Line of 3.8/3.9: `addrq` is a byte offset into co_code."""
    line = firstlineno
    addr = 0
    for i in range(0, len(lnotab) - 1, 2):
        addr += lnotab[i]
        if addr > addrq:
            break
        delta = lnotab[i + 1]
        line += delta - 256 if delta >= 128 else delta
    return line


def addr2line_310(linetable, firstlineno, addrq):
    """PyCode_Addr2Line of 3.10: walk the (sdelta, ldelta) ranges to the one holding addrq."""
    line = firstlineno
    start = end = 0
    ar_line = -1
    i = 0
    n = len(linetable) - 1
    while i < n:
        sdelta, ldelta = linetable[i], linetable[i + 1]
        i += 2
        start, end = end, end + sdelta
        if ldelta == 128:          # -128 as a signed byte: no line for this range
            ar_line = -1
        else:
            line += ldelta - 256 if ldelta > 128 else ldelta
            ar_line = line
        if start <= addrq < end:
            return ar_line
    return -1


def _varint(data, i):
    value = data[i] & 63
    shift = 0
    while data[i] & 64:
        i += 1
        shift += 6
        value |= (data[i] & 63) << shift
    return value, i + 1


def _svarint(data, i):
    value, i = _varint(data, i)
    return (-(value >> 1) if value & 1 else value >> 1), i


def addr2line_311(linetable, firstlineno, addrq):
    """PyCode_Addr2Line of 3.11+: `addrq` is a byte offset into the code units."""
    if addrq < 0:
        return firstlineno
    line = firstlineno
    addr = 0
    i = 0
    n = len(linetable)
    while i < n:
        first = linetable[i]
        code = (first >> 3) & 15
        end = addr + ((first & 7) + 1) * 2
        i += 1
        if code == 15:             # no location
            this_line = -1
        elif code == 14:           # long form: line delta, end line, column, end column
            delta, i = _svarint(linetable, i)
            line += delta
            this_line = line
            for _ in range(3):
                _, i = _varint(linetable, i)
        elif code == 13:           # no column
            delta, i = _svarint(linetable, i)
            line += delta
            this_line = line
        elif code >= 10:           # one-line forms: line delta in the code, two columns
            line += code - 10
            this_line = line
            i += 2
        else:                      # short form: same line, one column byte
            this_line = line
            i += 1
        if addr <= addrq < end:
            return this_line
        addr = end
    return -1
