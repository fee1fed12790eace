"""asyncio as it really is, post mortem: every Task in the heap, its state, its coroutine's
await chain (innermost last) and what the innermost await waits on.

Tasks are found among the heap's objects by type: _asyncio.Task (the C one) and
asyncio.tasks.Task (the pure-Python one), and their subclasses. The C task's fields
come from the layout tables (gen_layouts.py reads _asyncio's DWARF); the Python one's
are its attributes. A coroutine's await chain follows what each suspended frame awaits
(the top of its value stack) down to a Future, a Task, or something else.
"""

from __future__ import annotations

import os

from ..errors import NsdebugError
from ..record import Factory, record

TASK_TYPES = ("_asyncio.Task", "asyncio.tasks.Task")
GATHER_TYPES = ("asyncio.tasks._GatheringFuture",)
MAX_CHILDREN = 10_000
FUTURE_TYPES = ("_asyncio.Future", "asyncio.futures.Future")
FUTURE_ITER_TYPES = ("_asyncio.FutureIter", "asyncio.futures._PyFutureIter")
COROUTINE_KINDS = ("coroutine", "generator", "async_generator")
# The innermost coroutine names what a bare Future stands for.
WAITS = {"sleep": "a sleep", "Queue.get": "a queue get", "Queue.put": "a queue put",
         "Event.wait": "an event", "Lock.acquire": "a lock", "Condition.wait": "a condition",
         "Semaphore.acquire": "a semaphore", "wait_for": "a wait_for", "gather": "a gather",
         "wait": "asyncio.wait"}
MAX_CHAIN = 256
STATES = {"STATE_PENDING": "pending", "STATE_CANCELLED": "cancelled",
          "STATE_FINISHED": "done", "PENDING": "pending", "CANCELLED": "cancelled",
          "FINISHED": "done"}


@record
class AwaitFrame:
    function: str
    file: str
    line: int
    coroutine: int                   # the coroutine (or generator) object
    locals: list | None = None       # [(name, address, type, preview)] when asked
    qualname: str | None = None      # the coroutine's __qualname__ (code has none < 3.11)


@record
class TaskInfo:
    address: int
    type: str
    name: str
    state: str                       # pending, done, cancelled
    loop: int
    coroutine: int
    chain: list = Factory(list)      # [AwaitFrame], outermost first, innermost last
    waits_on: str | None = None      # a sleep, a queue get, task 'x', a future...
    waits_on_address: int | None = None
    result: str | None = None
    children: list = Factory(list)   # a gather it awaits: the futures and tasks it runs


class TaskReader:
    """Reads tasks and coroutines through a Runtime."""

    def __init__(self, rt, bounds=None):
        self.rt = rt
        self.o = rt.objects
        self.L = rt.layout
        self.walker = rt.frame_walker
        self.bounds = bounds
        self._states = {v: STATES.get(k, k.lower())
                        for k, v in self.L.enums.get("futstate", {}).items()}

    def kind_of(self, addr, names):
        """True when the object's type, or a base of it, is one of `names`."""
        try:
            t = self.o.info(addr)
        except NsdebugError:
            return False
        return self._type_is(t, names)

    def _type_is(self, info, names):
        seen, taddr = 0, info.address
        while taddr and seen < 64:
            try:
                ti = self.o.type_info(taddr)
            except NsdebugError:
                return False
            if ti.qualname in names:
                return True
            taddr = self.o.ptr(taddr + self.L.type.tp_base)
            seen += 1
        return False

    def is_task_type(self, info):
        return self._type_is(info, TASK_TYPES)

    # -- fields of a task or future ----------------------------------------------------
    def _field(self, addr, info, c_field, py_attr):
        """A C task's struct field, else a pure-Python task's attribute (0: absent)."""
        o = self.o
        if self._type_is(info, ("_asyncio.Task", "_asyncio.Future")):
            alias = "task" if self._type_is(info, ("_asyncio.Task",)) else "future"
            off = getattr(getattr(self.L, alias), c_field)
            return o.ptr(addr + off) if off is not None else 0
        for k, v in o.attributes(addr, info):
            try:
                if o.read_str(k) == py_attr:
                    return v
            except NsdebugError:
                continue
        return self._class_attr(o.type_of(addr), py_attr)

    def _class_attr(self, taddr, name):
        """An attribute of a class or its bases (a pending pure-Python Future has no
        _state of its own: Future._state is the class's _PENDING)."""
        o, T = self.o, self.L.type
        try:
            mro = o.ptr(taddr + T.tp_mro)
            for base in o.tuple_items(mro, 64) if mro else [taddr]:
                d = o.ptr(base + T.tp_dict)
                v = o.dict_get_str(d, name) if d else None
                if v:
                    return v
        except NsdebugError:
            pass
        return 0

    def _state(self, addr, info):
        o = self.o
        if self._type_is(info, ("_asyncio.Task", "_asyncio.Future")):
            alias = "task" if self._type_is(info, ("_asyncio.Task",)) else "future"
            off = getattr(self.L, alias).state
            if off is None:
                return "?"
            value = int.from_bytes(o.mem.read(addr + off, 4), "little", signed=True)
            return self._states.get(value, f"state {value}")
        s = self._field(addr, info, None, "_state")
        try:
            return STATES.get(o.read_str(s), o.read_str(s).lower()) if s else "?"
        except NsdebugError:
            return "?"

    def _name(self, addr, info):
        o = self.o
        n = self._field(addr, info, "name", "_name")
        if not n:
            return "?"
        try:
            k = o.kind(n)
            if k == "str":
                return o.read_str(n, 200)
            if k == "int":                      # 3.12+: named lazily, "Task-<n>"
                return f"Task-{o.read_int(n)}"
            return o.preview(n)
        except NsdebugError:
            return "?"

    # -- reading ---------------------------------------------------------------------
    def task(self, addr, with_locals=False):
        o = self.o
        info = o.info(addr)
        coro = self._field(addr, info, "coro", "_coro")
        t = TaskInfo(addr, info.qualname, self._name(addr, info), self._state(addr, info),
                     self._field(addr, info, "loop", "_loop"), coro)
        if t.state == "done":
            res = self._field(addr, info, "result", "_result")
            exc = self._field(addr, info, "exception", "_exception")
            exc = exc if exc and o.kind(exc) != "none" else 0     # Python's: None
            t.result = ("raised " + o.preview(exc, self.bounds)) if exc else \
                o.preview(res, self.bounds) if res else None
        if coro and t.state == "pending":
            t.chain, awaited = self.await_chain(coro, with_locals)
            t.waits_on, t.waits_on_address = self.describe_wait(awaited, t.chain)
            if t.waits_on_address and self.kind_of(t.waits_on_address, GATHER_TYPES):
                t.children = self.gather_children(t.waits_on_address)
                t.waits_on = f"a gather of {len(t.children)}"
        return t

    def gather_children(self, gathering):
        """The futures and tasks an asyncio.gather runs (its _children), in order."""
        o = self.o
        try:
            # A Python subclass of the (C or Python) Future: _children is an attribute.
            children = next((v for k, v in o.attributes(gathering, o.info(gathering))
                             if o.read_str(k, 32) == "_children"), 0)
            return list(o.list_items(children, MAX_CHILDREN)) if children and \
                o.kind(children) == "list" else []
        except NsdebugError:
            return []

    def await_chain(self, coro, with_locals=False):
        """([AwaitFrame] outermost first, the non-coroutine object the innermost awaits)."""
        chain, seen = [], set()
        cur = coro
        while cur and cur not in seen and len(chain) < MAX_CHAIN:
            seen.add(cur)
            try:
                kind = self.o.kind(cur)
            except NsdebugError:
                break
            if kind not in COROUTINE_KINDS:
                return chain, cur
            frame = self.walker.generator_frame(cur)
            if frame is None or frame.code is None:
                break
            if _is_future_await(frame):
                # A pure-Python Future's __await__ (yield self): what waits is the future.
                return chain, self._local(frame, "self")
            af = AwaitFrame(frame.function, frame.filename, frame.line, cur)
            try:
                af.qualname = self.o.read_str(self.o.ptr(cur + self.L.gen.gi_qualname), 200)
            except NsdebugError:
                af.qualname = frame.function
            if with_locals:
                af.locals = self._locals(frame)
            chain.append(af)
            cur = self.walker.awaiting(cur)
        return chain, 0

    def _local(self, frame, name):
        try:
            return next((loc.address for loc in self.walker.locals_of(frame)
                         if loc.name == name), 0)
        except NsdebugError:
            return 0

    def _locals(self, frame):
        o, out = self.o, []
        try:
            for loc in self.walker.locals_of(frame):
                try:
                    tname = o.info(loc.address).qualname
                except NsdebugError:
                    tname = "?"
                out.append([loc.name, loc.address, tname, o.preview(loc.address, self.bounds)])
        except NsdebugError as e:
            out.append(["<locals>", 0, "", f"<invalid: {e}>"])
        return out

    def describe_wait(self, awaited, chain):
        """(text, address) of what the innermost await waits on."""
        o = self.o
        if not awaited:
            return (None, None)
        target = awaited
        if self.kind_of(awaited, FUTURE_ITER_TYPES):
            off = self.L.futureiter.future
            try:
                target = o.ptr(awaited + off) if off is not None else awaited
            except NsdebugError:
                target = awaited
        if target and self.kind_of(target, TASK_TYPES):
            return f"task {self._name(target, o.info(target))!r}", target
        if target and self.kind_of(target, FUTURE_TYPES):
            inner = (chain[-1].qualname or chain[-1].function).rsplit(".<locals>.", 1)[-1] \
                if chain else ""
            for name, what in WAITS.items():
                if inner == name or inner.endswith("." + name):
                    return what, target
            return "a future", target
        try:
            return f"{o.info(target).qualname} at {target:#x}", target
        except NsdebugError:
            return f"<invalid {target:#x}>", target


def _is_future_await(frame):
    return frame.function in ("Future.__await__", "__await__") and \
        (frame.filename or "").endswith(os.path.join("asyncio", "futures.py"))


@record
class TasksResult:
    tasks: list                 # [TaskInfo]
    loops: list                 # addresses of the event loops the tasks belong to


def tasks(target, with_locals=False, every=False, bounds=None):
    """TasksResult: the pending asyncio tasks of a Target's heap (`every`: finished and
    cancelled ones too), with their coroutines' locals previewed within `bounds`."""
    found = find_tasks(target.heap, target.runtime, with_locals, bounds)
    shown = [t for t in found if every or t.state == "pending"]
    return TasksResult(shown, sorted({t.loop for t in found if t.loop}))


def name_order(task):
    """A task's place in a listing: by name with its numbers compared as numbers
    (Task-2 before Task-10), then by address. Address order alone changes from run to
    run of the same program (pymalloc reuses freed slots), and a listing that moves
    cannot be compared between cores."""
    key, digits, text = [], "", ""
    for ch in task.name or "":
        if ch.isdigit():
            if text:
                key.append((1, text, 0))
                text = ""
            digits += ch
        else:
            if digits:
                key.append((0, "", int(digits)))
                digits = ""
            text += ch
    if digits:
        key.append((0, "", int(digits)))
    if text:
        key.append((1, text, 0))
    return key, task.address


def find_tasks(g, rt, with_locals=False, bounds=None):
    """Every task in the heap graph g, in name order (see name_order)."""
    reader = TaskReader(rt, bounds)
    task_types = [i for i, t in enumerate(g.types) if reader.is_task_type(t)]
    if not task_types:
        return []
    import numpy as np

    from .vec import of_types
    idx = np.nonzero(of_types(g.type_ix, task_types, len(g.types)))[0]
    out = []
    for i in idx.tolist():
        try:
            out.append(reader.task(int(g.addr[i]), with_locals))
        except NsdebugError:
            continue
    return sorted(out, key=name_order)
