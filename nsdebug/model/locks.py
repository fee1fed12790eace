"""Who waits for whom: for each thread the lock it is blocked on and the locks it holds,
the wait-for graph between threads, and its cycles (deadlocks).

The lock a thread is blocked on: the futex address its system call waits at (rdi, the
call's first argument, as the kernel saved it), matched with the lock objects its own
and every other thread's Python frames refer to (locals, value stacks, and the
attributes of the instances there: a Condition's or a Queue's lock). Holders: an RLock
records its owner; a plain Lock does not, so its holder is the thread with a `with`
block open on it (its `__exit__` pending on a frame's value stack while the lock is
locked); where no thread shows one the holder is unknown and said so."""

from __future__ import annotations

from ..cpython.locks import BOUND_SELF, LOCK_TYPES, lock_kind, lock_state, waits_on
from ..errors import NsdebugError
from ..record import Factory, record
from .stacks import SYS_FUTEX


@record
class LockRow:
    address: int
    kind: str                      # "Lock" or "RLock"
    locked: bool
    owner: int | None = None       # native tid of the holder, None when unknown or free
    owner_name: str | None = None
    count: int = 0                 # RLock: times held by its owner
    how_known: str | None = None   # "RLock owner" or "open with in FUNCTION (FILE:LINE)"
    found_as: str | None = None    # where the frames refer to it: "Condition._lock", ...


@record
class ThreadLocks:
    tid: int
    name: str | None
    waits_for: int | None = None   # the lock's address
    holds: list = Factory(list)    # lock addresses
    where: str | None = None       # the Python line it waits at (FILE:LINE)
    phrase: str | None = None      # what it waits for, in a few words


@record
class Deadlock:
    threads: list                  # native tids around the cycle, in wait order
    text: str


@record
class LocksResult:
    threads: list                  # [ThreadLocks]
    locks: list                    # [LockRow]: every lock waited for or held
    deadlocks: list                # [Deadlock]


def locks(target, everything=True):
    """LocksResult of a core (PythonNotFoundError without CPython).

    The frames' references are followed in two rounds: the values the frames hold
    themselves (locals, value stacks, a bound method's self), which name the lock of a
    `with`, of Condition.wait's waiter and of join; then the attributes of the
    instances there (a Condition's or a Queue's lock, two deep). Without `everything`
    (the one phrase `threads` and `bt` show per thread), the second round runs only
    when a thread blocked in futex is left unmatched by the first."""
    rt = target.runtime
    o, walker = rt.objects, rt.frame_walker
    version = rt.version.key
    by_ident = {t.thread_id: t for t in rt.threads}
    futex_waits = _futex_waits(target, rt)
    if not everything and not futex_waits:
        return LocksResult([ThreadLocks(t.native_tid, t.name) for t in rt.threads], [], [])
    found = {}                                   # lock address -> how the frames refer to it
    exits = {}                                   # python thread -> [(lock, frame)]
    frames_of = {t.address: rt.frames(t) for t in rt.threads}
    instances = []                               # (value, where): for the second round
    # Without `everything`, the frames of the threads not blocked in futex are looked
    # into only as needed: their values when a waiter is left unmatched, their open
    # `with` blocks when a lock waited for may have a holder there.
    rest = []                                    # (thread, frame), without `everything`
    seen = {}                                    # lock address -> its state, or None
    for t in rt.threads:
        frames = [f for f in frames_of[t.address] if f.code is not None]
        if not everything and t.address not in futex_waits:
            rest += [(t, f) for f in frames]
            continue
        for k, f in enumerate(frames):
            _collect(o, walker, f, found, exits.setdefault(t.address, []), version,
                     instances)
            if not everything and _matched(o, futex_waits[t.address], found, seen):
                # Its lock is found (a waiter's is in its innermost frames): its outer
                # frames are looked into only as the others' are.
                rest += [(t, g) for g in frames[k + 1:]]
                break
    rest_values = everything or not _all_matched(o, futex_waits, found)
    if rest_values:
        for _t, f in rest:
            _collect(o, walker, f, found, [], version, instances, exits_too=False)
        for v, where in instances:
            _refer(o, v, where, found, 2)
    states = {}
    for addr, where in found.items():
        try:
            states[addr] = (lock_state(o, addr, lock_kind(o, addr)), where)
        except NsdebugError:
            continue
    threads, rows, holder_of = [], {}, {}
    for addr, (st, where) in states.items():
        if st.kind == "RLock" and st.owner_ident:
            owner = by_ident.get(st.owner_ident)
            if owner is not None:
                holder_of[addr] = (owner, "RLock owner")
    waits = {}
    for t in rt.threads:
        uaddr = futex_waits.get(t.address)
        if uaddr is None:
            continue
        for addr, (st, _where) in states.items():
            if waits_on(st, uaddr, o.ptr):
                waits[t.address] = addr
                break
    for t_addr, a in waits.items():
        # A lock waited for that its waiter's frames hold only as a bare stack value
        # (`LOCK.acquire()`): a global of their module names it as the module's frame
        # would (its locals are those globals).
        if states[a][1].startswith(ON_STACK):
            name = _global_name(o, walker, frames_of[t_addr], a)
            if name:
                found[a] = name
                states[a] = (states[a][0], name)
    if rest and not rest_values and any(states[a][1].startswith(ON_STACK)
                                        for a in waits.values()):
        # Still unnamed: the other threads' values may give it a name.
        for _t, f in rest:
            _collect(o, walker, f, found, [], version, [], exits_too=False)
        states = {a: (st, found.get(a, where)) for a, (st, where) in states.items()}
    if rest and any(_may_have_holder(states[a][0]) and not _is_waiter(walker, frames_of[t], a)
                    for t, a in waits.items()):
        for t, f in rest:
            _collect(o, walker, f, found, exits.setdefault(t.address, []), version, [],
                     values=False)
    for t in rt.threads:
        for addr, frame in exits.get(t.address, []):
            st = states.get(addr, (None,))[0]
            if st is None or not st.locked or waits.get(t.address) == addr or \
                    addr in holder_of:
                continue
            where = f"{frame.filename}:{frame.line}"
            holder_of[addr] = (t, f"open with in {frame.function} ({where})")
    involved = set(waits.values()) | set(holder_of)
    for addr in involved:
        st, where = states[addr]
        owner, how = holder_of.get(addr, (None, None))
        rows[addr] = LockRow(addr, st.kind, st.locked, owner.native_tid if owner else None,
                             owner.name if owner else None, st.count if owner else 0, how,
                             where)
    for t in rt.threads:
        # A thread in an import that another thread is running waits for that
        # module's lock (importlib's _ModuleLock, which records its owner), whatever
        # Lock its wakeup is.
        if t.address not in futex_waits:
            continue
        found = _import_lock(o, walker, frames_of.get(t.address) or [], by_ident)
        if found is None:
            continue
        lock, module, owner = found
        waits[t.address] = lock
        rows[lock] = LockRow(lock, "import lock", True,
                             owner.native_tid if owner else None,
                             owner.name if owner else None, 1 if owner else 0,
                             "_ModuleLock owner" if owner else None, f"module {module!r}")
        if owner is not None:
            holder_of[lock] = (owner, "_ModuleLock owner")
    for t in rt.threads:
        addr = waits.get(t.address)
        frames = frames_of.get(t.address) or []
        top = next((f for f in frames if f.code is not None), None)
        held = sorted(a for a, (h, _) in holder_of.items() if h is t)
        phrase = _joining(o, walker, frames)
        if addr is not None and phrase is None and rows[addr].kind == "import lock":
            row = rows[addr]
            phrase = f"waiting for the import lock {addr:#x} of {row.found_as}" + (
                f" held by {_who(row.owner_name, row.owner)}" if row.owner else "")
        if addr is not None and phrase is None and not rows[addr].owner:
            phrase = _waiting_in(o, walker, frames, addr)
        if addr is not None and phrase is None:
            row = rows[addr]
            phrase = f"waiting for {row.kind} {addr:#x}" + (
                f" ({row.found_as})" if row.found_as and not row.found_as.startswith(ON_STACK)
                else "") + (
                f" held by {_who(row.owner_name, row.owner)}" if row.owner else
                f", {HOLDER_UNKNOWN}" if row.locked else "")
        threads.append(ThreadLocks(t.native_tid, t.name, addr, held,
                                   f"{top.filename}:{top.line}" if top else None, phrase))
    return LocksResult(threads, sorted(rows.values(), key=lambda r: r.address),
                       _cycles(threads, rows))


def _joining(o, walker, frames):
    """"joining thread NAME" when the thread waits in Thread.join (from 3.13 on a thread
    handle, not a lock), else None."""
    for f in frames[:4]:
        if f.code is None or not f.function.endswith(("Thread.join", "join")) or \
                "threading" not in f.filename:
            continue
        try:
            me = _local(walker, f, "self")
            name = next((v for k, v in (o.attributes(me) if me else [])
                         if o.read_str(k, 16) == "_name"), 0)
            return f"joining thread {o.read_str(name, 80)!r}" if name else "joining a thread"
        except (NsdebugError, TypeError):
            return "joining a thread"
    return None


# The blocking calls of threading and queue that wait on a Condition's waiter lock (one
# only notify() releases): a thread in them waits for that object, not for a holder.
WAITS_IN = {"Condition.wait", "Condition.wait_for", "Event.wait", "Semaphore.acquire",
            "BoundedSemaphore.acquire", "Barrier.wait", "Barrier._wait", "Queue.get",
            "Queue.put", "Queue.join"}


def _waiting_in(o, walker, frames, lock):
    """"waiting in Event.wait on Event 0x..." when the thread waits for `lock` as the
    waiter of a Condition, named after the outermost of threading's or queue's blocking
    calls it is in; else None."""
    if not frames or frames[0].code is None or \
            _local(walker, frames[0], "waiter") != lock:
        return None
    found = None
    for f in frames[:6]:
        if f.code is None or not f.filename.endswith(("threading.py", "queue.py")):
            break
        me = _local(walker, f, "self")
        try:
            kind = o.info(me).qualname if me else None
        except NsdebugError:
            kind = None
        name = f"{kind.rsplit('.', 1)[-1]}.{f.function.rsplit('.', 1)[-1]}" if kind else None
        if name in WAITS_IN:
            found = f"waiting in {name} on {kind} {me:#x}"
    return found


def _import_lock(o, walker, frames, by_ident):
    """(the _ModuleLock, its module's name, the Python thread that owns it or None)
    when the thread waits in importlib's _ModuleLock.acquire, else None."""
    for f in frames[:3]:
        if f.code is None or not f.function.endswith("acquire") or \
                "importlib._bootstrap" not in (f.filename or ""):
            continue
        me = _local(walker, f, "self")
        try:
            if not me or not o.info(me).qualname.endswith("_ModuleLock"):
                continue
            attrs = {o.read_str(k, 16): v for k, v in o.attributes(me)[:32]}
            name = o.read_str(attrs["name"], 200) if attrs.get("name") else "?"
            owner = attrs.get("owner")
            ident = o.read_int(owner) if owner and o.kind(owner) == "int" else None
        except (NsdebugError, KeyError):
            continue
        return me, name, by_ident.get(ident)
    return None


def _local(walker, frame, name):
    """The address a frame's local `name` holds, 0 when it has none."""
    return next((loc.address for loc in walker.locals_of(frame) if loc.name == name), 0)


def _who(name, tid):
    return f"thread {name!r}" if name else f"thread {tid}"


def _may_have_holder(st):
    """Whether a thread's open `with` may be what holds a lock: it is locked, and not an
    RLock that names its owner."""
    return st.locked and not (st.kind == "RLock" and st.owner_ident)


def _is_waiter(walker, frames, lock):
    """Whether `lock` is the waiter lock of the Condition.wait the thread is in (its
    own, which no `with` holds)."""
    return bool(frames) and frames[0].code is not None and \
        _local(walker, frames[0], "waiter") == lock


def _futex_waits(target, rt):
    """{python thread address: the futex address it sleeps on}, for the threads blocked
    in futex on something other than the GIL."""
    out = {}
    for t in rt.threads:
        core = target.process.threads[t.core_index] if t.core_index is not None else None
        if core is None or core.regs.get("orig_rax") != SYS_FUTEX:
            continue
        uaddr = core.regs.get("rdi") or 0
        if uaddr and not rt.waits_for_gil(uaddr):
            out[t.address] = uaddr
    return out


def _matched(o, uaddr, found, seen):
    """Whether a lock found so far is the one sleeping on futex `uaddr` (`seen` keeps
    the states read)."""
    for addr in found:
        if addr not in seen:
            try:
                seen[addr] = lock_state(o, addr, lock_kind(o, addr))
            except NsdebugError:
                seen[addr] = None
        if seen[addr] is not None and waits_on(seen[addr], uaddr, o.ptr):
            return True
    return False


def _global_name(o, walker, frames, lock):
    """"NAME in <module>" when the globals of one of the frames hold `lock` as NAME (the
    first from the innermost), else None."""
    done = set()
    for f in frames[:8]:
        if f.code is None:
            continue
        try:
            g = walker.globals_of(f)
            if not g or g in done:
                continue
            done.add(g)
            key = o.key_of_value(g, lock)
            if key:
                return f"{o.read_str(key, 200)} in <module>"
        except NsdebugError:
            continue
    return None


def _all_matched(o, futex_waits, found):
    """Whether every futex waiter's lock is among the locks found so far."""
    states = []
    for addr in found:
        try:
            states.append(lock_state(o, addr, lock_kind(o, addr)))
        except NsdebugError:
            continue
    return all(any(waits_on(st, uaddr, o.ptr) for st in states)
               for uaddr in futex_waits.values())


def _collect(o, walker, frame, found, exits, version, instances, values=True,
             exits_too=True):
    """Lock objects a frame refers to itself (into `found`, with `values`), those with
    a `with` open on them (into `exits`, with the frame, with `exits_too`), and the
    other values, whose attributes the second round looks into (into `instances`)."""
    if values:
        slots, _depth = walker.stack_slots(frame)
        refs = [(loc.address, f"{loc.name} in {frame.function}")
                for loc in walker.locals_of(frame) if loc.address]
        refs += [(v, f"{ON_STACK}{frame.function}") for _slot, v in slots]
        for v, where in refs:
            if not _refer(o, v, where, found, 0):
                instances.append((v, where))
    if not exits_too:
        return
    # An open `with` keeps its __exit__ below the depth the exception table gives the
    # block the frame is in (3.11+): a slot above it may hold a stale pointer to another
    # thread's live __exit__, which would give that thread's lock to this one.
    live = walker.handler_depth(frame) if version >= (3, 11) else None
    if version >= (3, 11) and live is None:
        return
    if not values:
        # Only the slots below `live` (_exit_of checks each value it reads).
        slots, _depth = walker.stack_slots(frame, 256 if live is None else live,
                                           checked=False)
    below = dict(slots)
    for slot, v in slots:
        if live is not None and slot >= live:
            continue
        lock = _exit_of(o, v, below.get(slot - 1, 0), version)
        if lock:
            found.setdefault(lock, f"with in {frame.function}")
            exits.append((lock, frame))


def _refer(o, v, where, found, depth):
    """Note v if it is a lock, the self of a bound method if a lock, and the locks among
    an instance's attributes (to `depth` instances deep). Whether v was a lock or a
    bound method (nothing deeper to look into)."""
    try:
        info = o.info(v)
    except NsdebugError:
        return True
    if info.name in LOCK_TYPES:
        _note(found, v, where)
        return True
    if info.name in ("builtin_function_or_method", "method"):
        try:
            _refer(o, o.ptr(v + BOUND_SELF), where, found, 0)
        except NsdebugError:
            pass
        return True
    if depth and info.kind == "instance":
        try:
            attrs = o.attributes(v, info)[:64]
        except NsdebugError:
            return False
        for key, value in attrs:
            try:
                name = o.read_str(key, 64)
            except NsdebugError:
                continue
            _refer(o, value, f"{info.qualname}.{name}", found, depth - 1)
    return info.kind != "instance"


def _note(found, lock, where):
    """Keep the first way a lock was found, unless a name (a local, `Class.attr`) comes
    after a bare place on a value stack."""
    known = found.get(lock)
    if known is None or (known.startswith(ON_STACK) and not where.startswith(ON_STACK)):
        found[lock] = where


ON_STACK = "on the stack of "
# A locked plain Lock whose `with` no thread has open: taken by acquire() or in C.
HOLDER_UNKNOWN = "holder unknown"


def _exit_of(o, v, below, version):
    """The lock whose `__exit__` is pending at stack value v (with the value below it):
    a bound builtin method up to 3.13, a method descriptor and its self from 3.14."""
    try:
        if version >= (3, 14):              # LOAD_SPECIAL: the descriptor, then self
            if not below or lock_kind(o, v) is None:
                return 0
            if o.info(below).name != "method_descriptor":
                return 0
            return v if o.read_str(o.ptr(below + 24), 16) == "__exit__" else 0
        if o.info(v).name != "builtin_function_or_method" or o.refcount(v) < 1:
            return 0
        this = o.ptr(v + BOUND_SELF)
        if lock_kind(o, this) is None:
            return 0
        name = o.mem.cstring(o.ptr(o.ptr(v + 16)), 16)
        return this if name == b"__exit__" else 0
    except NsdebugError:
        return 0


def _cycles(threads, rows):
    """Deadlocks: cycles of the wait-for graph (each thread waits for at most one lock
    and each lock has at most one holder, so each thread has at most one successor)."""
    by_tid = {t.tid: t for t in threads}
    nxt = {}
    for t in threads:
        row = rows.get(t.waits_for) if t.waits_for is not None else None
        if row is not None and row.owner is not None and row.owner != t.tid:
            nxt[t.tid] = row.owner
    seen, out = set(), []
    for start in nxt:
        path, tid = [], start
        while tid in nxt and tid not in seen and tid not in path:
            path.append(tid)
            tid = nxt[tid]
        if tid in path:
            cycle = path[path.index(tid):]
            out.append(Deadlock(cycle, _describe(cycle, by_tid, rows)))
        seen.update(path)
    return out


def _describe(cycle, by_tid, rows):
    parts = []
    for tid in cycle:
        t = by_tid[tid]
        held = [rows[a] for a in t.holds if a in rows]
        want = rows[t.waits_for]
        holds = " and ".join(f"{r.kind} at {r.address:#x}" for r in held) or "nothing known"
        parts.append(f"{_who(t.name, tid)} holds {holds} and waits for {want.kind} at "
                     f"{want.address:#x} ({t.where}), owned by "
                     f"{_who(want.owner_name, want.owner)}")
    return "deadlock: " + "; ".join(parts)
