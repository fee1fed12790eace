"""Results the shell shows as rich tables: result type -> (headers, rows[, title])."""

from ..commands import heap_cmds as hc
from ..commands import process_cmds as pc
from ..commands import python_cmds as py
from ..render import hexaddr, human_size

TABLES = {
    pc.ThreadsResult: lambda r: (
        ["", "#", "tid", "pc", "function", "sp", "signal", "state"],
        [["*" if t.selected else "", t.index, t.tid, hexaddr(t.pc),
          (t.symbol or "??") + (f" in {t.module}" if t.module else ""), hexaddr(t.sp),
          t.signal or "", t.state or ""] for t in r.threads]),
    pc.MapsResult: lambda r: (
        ["range", "perm", "size", "bytes from", "file"],
        [[f"{m.start:#x}-{m.end:#x}", m.perms, human_size(m.size), m.source,
          (f"{m.file} @{m.offset:#x}" if m.file else "")] for m in r.maps]),
    py.LocalsResult: lambda r: (
        ["name", "kind", "type", "value"],
        [[x.name, x.kind, x.type, x.value] for x in r.locals]),
    hc.ObjectsResult: lambda r: (
        ["count", "size", "retained", "unreach.", "type"],
        [[f"{t.count:,}", human_size(t.size), human_size(t.retained), t.unreachable or "",
          t.type] for t in r.rows],
        f"{r.total_objects:,} objects, {human_size(r.total_size)}; "
        f"{r.unreachable_objects:,} unreachable"),
    hc.InstancesResult: lambda r: (
        ["address", "size", "retained", "preview"],
        [[f"{x.address:#x}", x.size, x.retained, x.preview] for x in r.rows],
        f"{r.count:,} objects of type {r.type}"),
}
