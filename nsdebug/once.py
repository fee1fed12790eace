"""Values computed once: a property kept in the instance after its first read, and a
function's results kept by its arguments.

functools has both (cached_property, lru_cache), but importing it loads collections,
operator, reprlib and keyword: 3-5 ms of a cold `bt --all` that lasts 50, in every
process. The modules a backtrace imports use these instead; the rest may use functools.
"""


class cached_property:
    """A property computed on first read and kept in the instance's __dict__ (so the
    next read finds the attribute there and never calls this again), as
    functools.cached_property does."""

    def __init__(self, func):
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


def once(func):
    """func's result per tuple of (hashable, positional) arguments, computed once: for
    module-level tables read on first need."""
    results = {}

    def wrapper(*args):
        try:
            return results[args]
        except KeyError:
            value = results[args] = func(*args)
            return value
    wrapper.__name__, wrapper.__doc__ = func.__name__, func.__doc__
    wrapper.__wrapped__ = func
    return wrapper
