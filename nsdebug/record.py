"""`@record`: plain data classes that cost microseconds to define.

dataclasses generate code with exec() and import `inspect`; over the ~60
classes of nsdebug that was 20-30 ms of a 60 ms `bt`. A record gets an
__init__ from its annotations (positional or keyword, defaults, Factory for
mutable defaults), a repr, and `__record_fields__` for rendering.
"""

from __future__ import annotations


class Factory:
    """A default made fresh for each instance: `items: list = Factory(list)`."""

    __slots__ = ("make",)

    def __init__(self, make):
        self.make = make


def _fields(cls):
    names = []
    for klass in reversed(cls.__mro__):
        for name in klass.__dict__.get("__annotations__", {}):
            if name not in names:
                names.append(name)
    return tuple(names)


def record(cls):
    names = _fields(cls)
    defaults = {n: cls.__dict__[n] for n in names if n in cls.__dict__}
    for base in cls.__mro__[1:]:
        for n in getattr(base, "__record_defaults__", {}):
            defaults.setdefault(n, base.__record_defaults__[n])
    required = [n for n in names if n not in defaults]
    for n in defaults:
        if n in cls.__dict__:
            delattr(cls, n)

    count = len(names)

    def __init__(self, *args, **kwargs):
        if len(args) == count and not kwargs:
            # Every field given in order (most records made in bulk): one C call.
            self.__dict__.update(zip(names, args))
            post = getattr(self, "__post_init__", None)
            if post is not None:
                post()
            return
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__}() takes {len(names)} arguments, "
                            f"got {len(args)}")
        for name, value in zip(names, args):
            setattr(self, name, value)
        for name in names[len(args):]:
            if name in kwargs:
                setattr(self, name, kwargs.pop(name))
            elif name in defaults:
                d = defaults[name]
                setattr(self, name, d.make() if isinstance(d, Factory) else d)
            else:
                raise TypeError(f"{cls.__name__}() missing argument {name!r}")
        if kwargs:
            raise TypeError(f"{cls.__name__}() got unexpected arguments {sorted(kwargs)}")
        post = getattr(self, "__post_init__", None)
        if post is not None:
            post()

    def __repr__(self):
        inner = ", ".join(f"{n}={getattr(self, n, None)!r}" for n in names)
        return f"{cls.__name__}({inner})"

    cls.__init__ = __init__
    if "__repr__" not in cls.__dict__:
        cls.__repr__ = __repr__
    cls.__record_fields__ = names
    cls.__record_defaults__ = defaults
    cls.__record_required__ = tuple(required)
    return cls


def is_record(obj):
    return hasattr(type(obj), "__record_fields__")


def fields_of(obj):
    return type(obj).__record_fields__


def as_data(obj, text=None):
    """A result as JSON-ready data: records become dicts, tuples lists, bytes hex;
    `text(str)` rewrites each string (render makes them printable)."""
    if isinstance(obj, str):
        return text(obj) if text else obj
    if is_record(obj):
        return {name: as_data(getattr(obj, name), text) for name in fields_of(obj)}
    if isinstance(obj, dict):
        return {(text(str(k)) if text else str(k)): as_data(v, text) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [as_data(v, text) for v in obj]
    if isinstance(obj, (bytes, bytearray)):
        return obj.hex()
    return obj
