"""Text for info, threads, maps, x, sym, disasm and help."""

from ..units import human_size
from .base import formatter, hexaddr, table, tabular


@formatter("nsdebug.commands.process.HelpResult")
def _help(r):
    yield from r.help


@formatter("nsdebug.model.info.InfoResult")
def format_info(r):
    yield f"core:        {r.core} ({human_size(r.core_size)}, made by {r.made_by})"
    yield f"pid:         {r.pid}" + (f"  ppid: {r.ppid}" if r.ppid is not None else "") + \
        (f"  uid: {r.uid}" if r.uid is not None else "") + \
        (f"  state: {r.state}" if r.state else "")
    yield f"command:     {r.command_line}"
    yield f"executable:  {r.executable}"
    yield f"threads:     {r.threads}"
    s = r.signal
    if s is None:
        yield "signal:      none (the process was not stopped by a signal)"
    else:
        text = f"signal:      {s.name} ({s.number}), code {s.code_name}"
        if s.fault_address is not None:
            text += f", fault address {s.fault_address:#x}"
        if s.sender_pid:
            text += f", sent by pid {s.sender_pid}"
        if s.thread is not None:
            text += f", thread {s.thread}"
        yield text
    if r.python:
        py = r.python
        yield f"python:      {py.get('version')}" + \
            (f" ({py['library']})" if py.get("library") else "")
    if r.crash:
        yield f"crash:       {r.crash}"
    for w in r.warnings:
        yield f"warning:     {w}"


@tabular("nsdebug.model.stacks.ThreadsResult")
def threads_table(r):
    rows = []
    for t in r.threads:
        if t.symbol:
            where = f"{t.symbol} in {t.module}" if t.module else t.symbol
        else:       # no symbol covers the pc: where it is in its file, not a guess
            where = f"{t.module}+{t.module_offset:#x}" if t.module else "??"
        rows.append(["*" if t.selected else " ", t.index, t.tid, hexaddr(t.pc), where,
                     hexaddr(t.sp), t.signal or "", t.state or ""])
    return None, ["", "#", "tid", "pc", "function", "sp", "signal", "state"], rows


@formatter("nsdebug.model.stacks.ThreadsResult")
def format_threads(r):
    yield from table(*threads_table(r)[1:], "lrrlllll")


@tabular("nsdebug.commands.process.MapsResult")
def maps_table(r):
    rows = [[f"{m.start:#x}-{m.end:#x}", m.perms, human_size(m.size), m.source,
             (f"{m.file} @{m.offset:#x}" if m.file else "")] for m in r.maps]
    return None, ["range", "perm", "size", "bytes from", "file"], rows


@formatter("nsdebug.commands.process.MapsResult")
def format_maps(r):
    yield from table(*maps_table(r)[1:], "llrll")


@formatter("nsdebug.commands.process.HexdumpResult")
def format_hexdump(r):
    data = bytes.fromhex(r.data)
    for off in range(0, len(data), 16):
        chunk = data[off:off + 16]
        hexpart = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        yield f"{r.address + off:#018x}: {hexpart:<47}  |{text}|"
    if r.error:
        yield f"({r.error})"


@formatter("nsdebug.corefile.process.AddressInfo")
def format_sym(r):
    if r.symbol:
        where = r.symbol + (f"+{r.offset:#x}" if r.offset else "")
        yield f"{r.address:#x} is {where} in {r.module}"
    elif r.module:
        yield f"{r.address:#x} is in {r.module} (no symbol)"
    elif r.mapping:
        yield f"{r.address:#x} is in mapping {r.mapping} (no module)"
    else:
        yield f"{r.address:#x} is not mapped"
    if r.mapping and r.module:
        yield f"  mapping {r.mapping}"


@formatter("nsdebug.native.disasm.DisasmResult")
def format_disasm(r):
    for i in r.instructions:
        mark = "=>" if i.address == r.address else "  "
        line = f"{mark} {i.address:#x}: {i.bytes:<24} {i.mnemonic:<7} {i.operands}"
        if i.target_symbol:
            line += f"  <{i.target_symbol}>"
        yield line.rstrip()
    if r.error:
        yield f"({r.error})"


@formatter("nsdebug.model.locks.LocksResult")
def locks_text(r):
    for d in r.deadlocks:
        yield d.text
    if r.deadlocks:
        yield ""
    by_addr = {lock.address: lock for lock in r.locks}
    for t in r.threads:
        if t.phrase is None and not t.holds:
            continue
        who = f"{t.tid} {t.name!r}" if t.name else str(t.tid)
        yield f"thread {who}: {t.phrase or 'not waiting for a lock'}" + \
            (f" at {t.where}" if t.phrase and t.where else "")
        for a in t.holds:
            lock = by_addr.get(a)
            if lock is not None:
                count = f", {lock.count} times" if lock.kind == "RLock" and lock.count > 1 \
                    else ""
                yield f"    holds {lock.kind} {a:#x}{count} ({lock.how_known})"
    if any(t.phrase and t.phrase.endswith(", holder unknown") for t in r.threads):
        yield ("(holder unknown: a plain Lock records no owner, and no thread has a "
               "`with` open on it: it was taken by acquire() or from C)")
    if not r.deadlocks:
        yield "no deadlock: no cycle among the threads that wait for locks"
