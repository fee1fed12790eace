"""Self-contained HTML pages: the report of a core, of a diff, and the fleet page of
triage. One file each, nothing fetched: the page's data as JSON, our script (app.js)
and style (style.css), and the libraries it draws with (vendor/: ECharts for the
treemaps and charts, d3 and d3-flame-graph for the flame graph, pinned by
tools/vendor_js.sh) are all inlined.

The builders (report.py, diff.py, fleet.py here) turn library results into the page's
data; app.js draws it. Nothing here reads a core: the data comes from the library."""

from __future__ import annotations

import json
import os
import time
from html import escape


HERE = os.path.dirname(os.path.abspath(__file__))
# What each kind of page draws with (vendor/ file names).
LIBRARIES = {
    "report": ["echarts.min.js", "d3.min.js", "d3-flamegraph.umd.min.js"],
    "diff": ["echarts.min.js"],
    "fleet": ["echarts.min.js"],
}


def _read(*parts):
    with open(os.path.join(HERE, *parts), encoding="utf-8") as f:
        return f.read()


def _script(text):
    # A script's text ends at the first "</script": none may appear inside it.
    return "<script>" + text.replace("</script", "<\\/script") + "</script>"


def _json(value):
    # In a JSON script block only "</" could end it early; "<\/" is the same JSON text.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace("</", "<\\/")


def page(kind, title, data, objects=None):
    """The page's HTML: `data` (plain JSON-ready values) drawn by app.js as `kind`;
    `objects` ({hex address: view}) in a block of its own, read on first use."""
    data = dict(data, kind=kind, title=title, listed=sorted(objects or ()),
                generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    blob = _json(data)
    views = (f"<script type=\"application/json\" id=\"nsdebug-objects\">"
             f"{_json(objects)}</script>") if objects else ""
    styles = _read("style.css")          # (d3-flame-graph brings its own, in its script)
    libs = "".join(_script(_read("vendor", lib)) for lib in LIBRARIES[kind])
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<meta name=\"generator\" content=\"nsdebug\">"
            f"<title>{escape(title)}</title><style>{styles}</style></head><body>"
            f"<noscript>This page draws with JavaScript; its data is in the "
            f"nsdebug-data block of its source.</noscript>"
            f"<script type=\"application/json\" id=\"nsdebug-data\">{blob}</script>"
            f"{views}{libs}{_script(_read('app.js'))}</body></html>\n")
