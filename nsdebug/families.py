"""Modules of a package imported one by one, in a fixed order, when first needed: the
command table and the formatters are each split by family, and a `bt` should not import
the heap's (commands/registry.py, formatters/__init__.py)."""

from importlib import import_module


class Families:
    """The modules `names` of `package`, each imported once, in that order."""

    def __init__(self, package, names):
        self.package, self.names = package, tuple(names)
        self._loaded = set()

    def load_until(self, done):
        """Import the next families until `done()` is true or none is left; done()."""
        for name in self.names:
            if done():
                break
            if name not in self._loaded:
                self._loaded.add(name)
                import_module(f"{self.package}.{name}")
        return done()

    def load_all(self):
        self.load_until(lambda: False)
