"""Native memory held by objects: the malloc blocks an extension object's struct points
to, and what those point to, that nothing else claims.

Given the walk's objects and glibc malloc's chunks (mallocheap.py):
1. Claimed first, and never native: the chunks that hold Python objects (a large object
   is one malloc block), the item tables of lists, dicts and sets (their sizes count
   them already), and the buffers of buffers.py.
2. The sources: objects of C types with struct words nsdebug has no field for (zlib's
   streams, sqlite3 connections, hashlib contexts, _io's buffered files...). Every word
   of their struct that points into a chunk in use, within NEAR bytes of its start
   (allocators such as sqlite's hand out pointers past a size prefix; a word of the
   struct that lands deep inside a block is more likely a word past the object's own
   end, as in a naive datetime, than a pointer), makes the chunk a candidate; from a
   block on, a pointer anywhere into another leads to it (sqlite's page headers sit
   after the page).
3. A chunk an object's struct points to is that object's (several objects' structs:
   their common dominator's), whatever reaches it later. Beyond those, a chunk
   belongs to the object that alone reaches it, however deep; one that several
   objects reach belongs to their common dominator (as Eclipse MAT gives memory two
   objects keep alive to the object that holds both), and to no one when only the root
   holds them all: then it is "shared". Owners spread level by level and only move up
   the dominator tree, so each chunk is read a few times at most (up to SCAN_LIMIT
   bytes, MAX_SCAN in all). Whole reachability, not nearest first: a stale pointer in
   one object's blocks into another's (malloc does not clear what it hands out) is
   often the shorter path, and would give the memory to the wrong object; this way it
   moves it up to an object that holds both. (A stale pointer into blocks no object
   reaches, the interpreter's or a library's own, still gives them to its holder: the
   native figures are estimates, never exact.) A chunk leads on only when it reads as
   a struct (one word in DENSITY at least pointing to a block, or two of its first
   HEAD_WORDS): a data buffer malloc did not clear (zlib's window, a page cache's
   page) holds stale pointers into other objects' blocks.
The bytes (whole chunks, headers included) are added to their owners' sizes; what no
object claims stays "native, not attributed" in the memory breakdown.
"""

from __future__ import annotations

import numpy as np

from .vec import U64, distinct_pairs, ramp, runs_within

MAX_ROUNDS = 256                  # an owner only moves up the dominator tree
DENSITY = 8                       # a chunk leads on when 1 word in 8 points to a block,
HEAD_WORDS = 16                   # or 2 of its first 16 words do
LINK_WORDS = 2                    # a free chunk's list links (fd, bk) begin its user data
SCAN_LIMIT = 64 << 10
MAX_SCAN = 256 << 20
WORDS_STEP = 1 << 18              # words read and looked up at a time (~60 bytes each)
NEAR = 64                         # a pointer leads to a block when it is this near its start
PYTHON, BUFFER, SHARED, OWNED = 1, 2, 3, 4


class NativeOwners:
    """The attribution over one walk's columns. `owner` per chunk (node index, -1: none)
    and `claim` per chunk (0: free or not reached, PYTHON, BUFFER, SHARED, OWNED)."""

    def __init__(self, heap, vm):
        self.heap, self.vm = heap, vm
        n = len(heap.addr)
        self.owner = np.full(n, -1, np.int64)
        self.claim = np.zeros(n, np.uint8)
        self.pinned = np.zeros(n, np.bool_)     # settled by the objects' structs

    def claim_python(self, addrs):
        """Chunks that hold these Python-side addresses (objects, their tables)."""
        k = self.heap.chunk_of(addrs)
        k = k[k >= 0]
        self.claim[k[self.claim[k] == 0]] = PYTHON

    def claim_buffers(self, data):
        k = self.heap.chunk_of(data)
        k = k[k >= 0]
        self.claim[k] = BUFFER

    def attribute(self, word_slices, common):
        """Chunks reached from the structs of objects (for each (word_src, word_at) of
        `word_slices`: the words at `word_at` of the objects' nodes `word_src`) ->
        (owner nodes, native bytes each). `common(a, b)` is the node both a and b hang
        under (their common dominator), or -1. The slices are read one at a time: only
        the words that reach a chunk are kept (few: most point at other objects)."""
        self.common = common
        found = []
        for word_src, word_at in word_slices:
            for lo in range(0, len(word_at), WORDS_STEP):
                src, at = word_src[lo:lo + WORDS_STEP], word_at[lo:lo + WORDS_STEP]
                words, ok = self.vm.u64(at)
                found.append(self._targets(src[ok], words[ok], near=NEAR))
        src = np.concatenate([f[0] for f in found]) if found else np.zeros(0, np.int64)
        k = np.concatenate([f[1] for f in found]) if found else np.zeros(0, np.int64)
        scanned = 0
        for round_ in range(MAX_ROUNDS):
            if not len(k):
                break
            changed = self._take(src, k)
            if round_ == 0:
                # What an object's own struct points to is settled by the structs
                # alone: a block reached later, through others, cannot move it.
                self.pinned[changed] = True
            small = changed[self.heap.size[changed] <= SCAN_LIMIT]
            sizes = self.heap.size[small].astype(np.int64)
            small = small[np.cumsum(sizes) <= MAX_SCAN - scanned]
            if not len(small):
                break
            scanned += int(self.heap.size[small].sum())
            src, k = self._scan_round(small)
        mine = self.claim == OWNED
        owners, inv = np.unique(self.owner[mine], return_inverse=True)
        nbytes = np.zeros(len(owners), np.int64)
        np.add.at(nbytes, inv, self.heap.size[mine].astype(np.int64))
        return owners, nbytes

    def _scan_round(self, small):
        """(owner, chunk) pairs to take next: the words of the chunks `small` whose
        owner changed, read WORDS_STEP words at a time (a round's chunks may hold
        millions of words, each some 50 bytes of temporaries when read at once), for
        the chunks that read as structs."""
        n = len(self.heap.addr)
        nhits = np.zeros(n, np.int64)
        head = np.zeros(n, np.int64)
        past_links = np.zeros(n, np.int64)
        parts = []
        nwords_all = (self.heap.size[small].astype(np.int64) - 16) // 8
        for lo, hi in runs_within(nwords_all, WORDS_STEP):
            part, nwords = small[lo:hi], nwords_all[lo:hi]
            rep = np.repeat(part, nwords)
            pos = ramp(nwords)
            at = self.heap.addr[rep] + U64(16) + U64(8) * pos.astype(np.uint64)
            words, ok = self.vm.u64(at)
            del at
            label = np.where(self.claim[rep] == SHARED, -1, self.owner[rep])
            src, k, came_from, hits, hit_pos = self._targets(label[ok], words[ok], rep[ok],
                                                             pos=pos[ok])
            del rep, pos, words, ok, label
            nhits += np.bincount(hits, minlength=n)
            head += np.bincount(hits[hit_pos < HEAD_WORDS], minlength=n)
            past_links += np.bincount(hits[hit_pos >= LINK_WORDS], minlength=n)
            parts.append((src, k, came_from))
        # Only chunks that read as structs lead on: a data buffer (zlib's window, a
        # page) malloc did not clear holds stale pointers to others' blocks. A struct
        # begins with pointers, or is dense with them.
        wordsof = (self.heap.size.astype(np.int64) - 16) // 8
        # A lone hit in the first two words is no evidence: malloc's free lists keep
        # their links there, and a block reused for fewer bytes (a 1-byte lock in a
        # 32-byte chunk, 3.13+) keeps a stale one.
        struct = ((nhits * DENSITY >= wordsof) | (head >= 2)) & \
            ((nhits >= 2) | (past_links > 0))
        src = np.concatenate([p[0] for p in parts])
        k = np.concatenate([p[1] for p in parts])
        follow = struct[np.concatenate([p[2] for p in parts])]
        return src[follow], k[follow]

    def _targets(self, src, words, where=None, near=None, pos=None):
        """(owner, chunk) for the words that point into chunks still open (no one's, or
        an object's); with `where` (the chunk each word is in), also the chunk each
        target came from, and those of every word that hits a chunk."""
        plausible = (words >= U64(4096)) & (words < U64(1 << 47))
        k = self.heap.chunk_of(words[plausible], near=near)
        src = src[plausible]
        keep = k >= 0
        hits = where[plausible][keep] if where is not None else None
        k, src = k[keep], src[keep]
        fresh = ((self.claim[k] == 0) | (self.claim[k] == OWNED)) & ~self.pinned[k]
        if where is None:
            return src[fresh], k[fresh]
        return src[fresh], k[fresh], hits[fresh], hits, pos[plausible][keep]

    def _take(self, src, k):
        """One round of owners (nodes; -1: shared) reaching chunks. A chunk no one had
        becomes its reacher's; one reached by several, or already another's, becomes
        their common dominator's (SHARED when there is none below the root). Returns
        the chunks whose owner changed: they pass the new owner on."""
        pairs = distinct_pairs(k, src)
        ks, first, counts = np.unique(pairs[0], return_index=True, return_counts=True)
        label = pairs[1][first].copy()
        had = self.claim[ks] == OWNED
        old = self.owner[ks]
        easy = (counts == 1) & ~had
        changed = np.zeros(len(ks), np.bool_)
        self.claim[ks[easy & (label < 0)]] = SHARED
        take = easy & (label >= 0)
        self.claim[ks[take]] = OWNED
        self.owner[ks[take]] = label[take]
        changed |= easy
        for j in np.nonzero(~easy)[0].tolist():
            labels = pairs[1][first[j]:first[j] + counts[j]].tolist()
            if had[j]:
                labels.append(int(old[j]))
            owner = labels[0]
            for other in labels[1:]:
                if owner < 0:
                    break
                owner = self.common(owner, other) if other >= 0 else -1
            kj = ks[j]
            if owner < 0:
                self.claim[kj], self.owner[kj] = SHARED, -1
                changed[j] = True
            elif not had[j] or owner != old[j]:
                self.claim[kj], self.owner[kj] = OWNED, owner
                changed[j] = True
        return ks[changed]

    def shared_owners(self, idom, n_synth):
        """common(a, b) over a dominator tree: the deepest node that dominates both, -1
        when that is a synthetic node (the root, a group) or there is none."""
        chains = {}

        def chain(start):
            """The set of start's dominators, start included."""
            c = chains.get(start)
            if c is None:
                c, v = set(), start
                while v >= 0 and v not in c and len(c) < 1 << 16:
                    c.add(v)
                    nxt = int(idom[v])
                    v = nxt if nxt != v else -1
                chains[start] = c
            return c

        def common(a, b):
            if a == b:
                return a
            ca = chain(a)
            v, steps = b, 0
            while v >= 0 and v not in ca and steps < 1 << 16:
                nxt = int(idom[v])
                v, steps = (nxt if nxt != v else -1), steps + 1
            return v if v >= n_synth else -1
        return common

    def summary(self, resident):
        """Bytes of chunks in use by claim, and the largest unclaimed; under "resident",
        the bytes of each claim's chunks (and of the free ones) on resident pages, given
        those of each chunk."""
        h = self.heap
        used = ~h.free
        size = h.size.astype(np.int64)
        claims = (("python", PYTHON), ("buffers", BUFFER), ("shared", SHARED),
                  ("attributed", OWNED), ("unattributed", 0))
        out = {name: int(size[used & (self.claim == c)].sum()) for name, c in claims}
        out["resident"] = {name: int(resident[used & (self.claim == c)].sum())
                           for name, c in claims}
        out["resident"]["free"] = int(resident[h.free].sum())
        loose = np.nonzero(used & (self.claim == 0))[0]
        top = loose[np.argsort(size[loose])[::-1][:20]]
        out["largest_unattributed"] = [[int(h.addr[k]) + 16, int(size[k])] for k in top]
        classes = {}
        for name, lo, hi in SIZE_CLASSES:
            sel = (size[loose] >= lo) & (size[loose] < hi)
            classes[name] = [int(sel.sum()), int(size[loose][sel].sum())]
        out["unattributed_by_size"] = classes
        return out


SIZE_CLASSES = (("< 1 KiB", 0, 1 << 10), ("1-64 KiB", 1 << 10, 64 << 10),
                ("64 KiB-1 MiB", 64 << 10, 1 << 20), (">= 1 MiB", 1 << 20, 1 << 62))

