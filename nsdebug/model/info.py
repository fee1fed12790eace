"""What the process was and why the core exists: process facts, the signal, and the
one-line crash summary ("SIGSEGV at 0x8 in memset (libc.so.6) in thread 12; Python:
parse_record (app.py:112)")."""

from __future__ import annotations

import os

from ..errors import NsdebugError
from ..record import Factory, record


@record
class SignalInfo:
    number: int
    name: str
    code: int
    code_name: str
    fault_address: int | None
    sender_pid: int | None
    thread: int | None          # tid of the thread that took it (a crash), else None


@record
class InfoResult:
    core: str
    core_size: int
    made_by: str
    pid: int
    ppid: int | None
    uid: int | None
    state: str | None
    command_line: str
    executable: str | None
    threads: int
    signal: SignalInfo | None
    python: dict | None = None   # version, library, _PyRuntime and how each was found
    crash: str | None = None     # crash_summary()
    warnings: list = Factory(list)


def signal_info(process):
    """The signal that ended or stopped the process (SignalInfo), or None."""
    si = process.notes.siginfo
    if si is None or si.signo == 0:
        return None
    crashed = process.crashed_thread
    return SignalInfo(si.signo, si.name, si.code, si.code_name, si.addr, si.sender_pid,
                      crashed.tid if crashed else None)


def process_info(target):
    """InfoResult: process, signal, threads and how the core was made; with Python, its
    version and the crash summary."""
    p = target.process
    ps = p.notes.prpsinfo
    argv = p.initial_stack.argv
    cmdline = " ".join(argv) if argv else (ps.psargs if ps else "")
    result = InfoResult(
        core=p.path, core_size=p.core_size, made_by=p.made_by, pid=p.pid,
        ppid=ps.ppid if ps else None, uid=ps.uid if ps else None,
        state=ps.state if ps else None, command_line=cmdline,
        executable=p.executable_path, threads=len(p.threads), signal=signal_info(p),
        warnings=list(p.warnings))
    try:
        rt = target.runtime
    except NsdebugError as e:
        result.python = {"error": str(e)}
        return result
    result.python = {"version": str(rt.version), "found_by": rt.version.how,
                     "library": rt.module.path, "runtime": rt.address,
                     "runtime_found_by": rt.found_by, "layout": rt.layout.source}
    result.warnings.extend(rt.warnings)
    result.crash = crash_summary(target, result.signal)
    return result


def crash_summary(target, sig=None):
    """One line on the crash: the signal, where in C and where in Python; None when no
    thread took a fatal signal."""
    sig = sig or signal_info(target.process)
    if sig is None or sig.thread is None:
        return None
    rt = target.runtime
    text = f"{sig.name}"
    if sig.fault_address is not None:
        text += f" at {sig.fault_address:#x}"
    text += native_place(target, sig.thread)
    text += f" in thread {sig.thread}"
    crashed = next((t for t in rt.threads if t.native_tid == sig.thread), None)
    if crashed is not None:
        frames = [f for f in rt.frames(crashed) if f.code is not None]
        if frames:
            f = frames[0]
            text += f"; Python: {f.function} ({os.path.basename(f.filename)}:{f.line})"
        else:
            text += ", no Python frames"
    else:
        text += ", not a Python thread"
    return text


def native_place(target, tid):
    """' in fn (lib), called from caller (lib)' for the crashed thread's C stack."""
    core = next((t for t in target.process.threads if t.tid == tid), None)
    if core is None:
        return ""
    try:
        frames = target.native.frames(core.index)
    except NsdebugError:
        return ""
    if not frames or not frames[0].function:
        return ""
    top = frames[0]
    text = f" in {top.function} ({top.module})"
    # The nearest caller with a name (a stripped library's local helpers have none).
    caller = next((f for f in frames[1:4] if f.function), None)
    if caller is not None:
        text += f", called from {caller.function} ({caller.module})"
    return text
