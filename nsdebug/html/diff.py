"""The diff page's data: what grew between two cores of one process, by type (a
treemap of the growth) and where the new objects hang (the paths)."""

from __future__ import annotations

from ..record import as_data
from . import page


def diff_page(result):
    """HTML of a heap.diff.DiffResult."""
    d = result.diff
    data = {"old": result.old, "new": result.new, "warnings": list(result.warnings),
            "totals": {"objects_before": d.objects_before, "objects_after": d.objects_after,
                       "size_before": d.size_before, "size_after": d.size_after,
                       "new_objects": d.new_objects, "gone_objects": d.gone_objects},
            "types": [as_data(t) for t in d.types], "locations": [as_data(x) for x in d.locations],
            "sort": d.sort, "bounds": [f"the {len(d.types)} types that changed most and the "
                                       f"{len(d.locations)} places that grew most"]}
    return page("diff", f"nsdebug diff: {result.old} -> {result.new}", data)
