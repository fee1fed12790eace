"""StringTable: each distinct string once, by index (edge names, snapshot strings)."""


class StringTable:
    """strings[0] is "" (DevTools' convention; harmless elsewhere)."""

    def __init__(self):
        self.strings = [""]
        self.index = {"": 0}

    def add(self, s):
        ix = self.index.get(s)
        if ix is None:
            ix = self.index[s] = len(self.strings)
            self.strings.append(s)
        return ix

    def add_all(self, texts):
        """Index of each text (added where new), an int64 array: add() for a million
        names at once (in C where the graph's module is built)."""
        import numpy as np

        from .graph import _graphc      # read at call time: a test may set it to None
        if _graphc is not None:
            out = np.empty(len(texts), dtype=np.int64)
            self.index = _graphc.intern_all(self.index, self.strings, texts, out)
            return out
        index, strings = self.index, self.strings
        out = []
        append = out.append
        for s in texts:
            ix = index.get(s)
            if ix is None:
                ix = index[s] = len(strings)
                strings.append(s)
            append(ix)
        return np.array(out, dtype=np.int64)
