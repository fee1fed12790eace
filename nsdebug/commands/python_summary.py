"""Adds the Python version and crash summary to `info` when the core holds an interpreter."""

import os

from ..errors import NsdebugError


def add_to_info(session, result):
    try:
        rt = session.runtime
    except NsdebugError as e:
        result.python = {"error": str(e)}
        return result
    result.python = {"version": str(rt.version), "found_by": rt.version.how,
                     "library": rt.module.path, "runtime": rt.address,
                     "runtime_found_by": rt.found_by, "layout": rt.layout.source}
    result.warnings.extend(rt.warnings)
    sig = result.signal
    if sig is not None and sig.thread is not None:
        text = f"{sig.name}"
        if sig.fault_address is not None:
            text += f" at {sig.fault_address:#x}"
        text += native_place(session, sig.thread)
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
        result.crash = text
    return result


def native_place(session, tid):
    """' in fn (lib), called from caller (lib)' for the crashed thread's C stack."""
    core = next((t for t in session.process.threads if t.tid == tid), None)
    if core is None:
        return ""
    try:
        frames = session.native.frames(core.index)
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
