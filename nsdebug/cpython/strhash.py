"""hash() of a str as the process computed it: SipHash keyed by the process's own
_Py_HashSecret, so a dict can be probed for a key (sys.modules["threading"]) instead of
every key object being read to compare its text.

CPython hashes a str's data in its own width (1, 2 or 4 bytes a character) with
SipHash-2-4 before 3.11 and SipHash-1-3 from 3.11 (the configure default; a build may
choose another). The answer is checked against the hash the found key object caches,
so a build with another algorithm costs only the scan this would have saved.
"""

from __future__ import annotations

import struct

_MASK = (1 << 64) - 1
_WORD = struct.Struct("<Q")


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & _MASK


def _rounds(v0, v1, v2, v3, n):
    for _ in range(n):
        v0 = (v0 + v1) & _MASK
        v1 = _rotl(v1, 13) ^ v0
        v0 = _rotl(v0, 32)
        v2 = (v2 + v3) & _MASK
        v3 = _rotl(v3, 16) ^ v2
        v0 = (v0 + v3) & _MASK
        v3 = _rotl(v3, 21) ^ v0
        v2 = (v2 + v1) & _MASK
        v1 = _rotl(v1, 17) ^ v2
        v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


def siphash(k0, k1, data, c_rounds, d_rounds):
    """SipHash-c-d of `data` under the key (k0, k1), as an unsigned 64-bit number."""
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573
    whole = len(data) & ~7
    for i in range(0, whole, 8):
        m = _WORD.unpack_from(data, i)[0]
        v3 ^= m
        v0, v1, v2, v3 = _rounds(v0, v1, v2, v3, c_rounds)
        v0 ^= m
    tail = int.from_bytes(data[whole:], "little") | ((len(data) & 0xFF) << 56)
    v3 ^= tail
    v0, v1, v2, v3 = _rounds(v0, v1, v2, v3, c_rounds)
    v0 ^= tail
    v2 ^= 0xFF
    v0, v1, v2, v3 = _rounds(v0, v1, v2, v3, d_rounds)
    return v0 ^ v1 ^ v2 ^ v3


def str_data(text):
    """A str's characters as CPython stores them: the narrowest of 1, 2 or 4 bytes."""
    top = max(map(ord, text), default=0)
    if top < 0x100:
        return text.encode("latin-1")
    if top < 0x10000:
        return text.encode("utf-16-le", "surrogatepass")
    return text.encode("utf-32-le", "surrogatepass")


class StrHasher:
    """hash(text) in a process of `version`, keyed by what `secret()` returns: its
    (k0, k1), or None when the core does not say (then every hash is None)."""

    def __init__(self, secret, version):
        self._secret = secret
        self.key = None
        self.rounds = (1, 3) if version >= (3, 11) else (2, 4)
        self._seen = {}
        # Set by a dict probe once this hash has found a key whose cached hash and text
        # match: then the process hashes as this does, and an empty slot on a probe's
        # path means the key is absent (no scan of the dict's every key to be sure).
        self.confirmed = False

    def __call__(self, text):
        if self.key is None:
            self.key = self._secret() or ()
        if not self.key:
            return None
        h = self._seen.get(text)
        if h is None:
            data = str_data(text)
            h = siphash(*self.key, data, *self.rounds) if data else 0
            h -= (h >> 63) << 64           # Py_hash_t is signed
            if h == -1:
                h = -2                     # -1 means "not computed" to CPython
            if len(self._seen) < 1024:
                self._seen[text] = h
        return h
