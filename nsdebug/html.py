"""Self-contained HTML pages (no script, no network): the fleet page of `nsdebug triage
--html`. Tables and expandable stacks in plain HTML and CSS, readable in light and dark
mode and in print."""

from __future__ import annotations

import html
import time

from .errors import NsdebugError

STYLE = """
:root { color-scheme: light dark; --fg: #1d1d1f; --bg: #ffffff; --muted: #6e6e73;
  --line: #d2d2d7; --accent: #0a5ad4; }
@media (prefers-color-scheme: dark) { :root { --fg: #e8e8ed; --bg: #161617;
  --muted: #a1a1a6; --line: #3a3a3c; --accent: #6aa7ff; } }
body { font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg);
  margin: 2em auto; max-width: 72em; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid var(--line);
  vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font: 12.5px/1.4 ui-monospace, monospace; }
pre { margin: .4em 0 0; white-space: pre-wrap; }
.muted { color: var(--muted); }
summary { cursor: pointer; color: var(--accent); }
summary:focus-visible, a:focus-visible { outline: 2px solid var(--accent); }
@media print { details { display: block; } details > * { display: block; }
  summary { color: inherit; } body { margin: 0; max-width: none; } }
"""


def _e(text):
    return html.escape("" if text is None else str(text))


def _when(t):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "?"


def page(title, body):
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width\">"
            f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
            f"<body><main>{body}</main></body></html>\n")


def fleet_page(r):
    """The fleet page of a triage.TriageResult: crash groups (count, when, versions,
    signature, the example's stack), growth across instances, failed cores."""
    crashes = sum(g.count for g in r.groups)
    out = [f"<h1>Fleet triage</h1><p>{r.cores} cores: {crashes} crashes in "
           f"{len(r.groups)} groups, {r.captures} captures without a crash, "
           f"{len(r.failed)} failed.</p>"]
    out.append("<h2 id=\"groups\">Crash groups</h2>")
    if r.groups:
        out.append("<table><thead><tr><th>#</th><th>count</th><th>first seen</th>"
                   "<th>last seen</th><th>Python</th><th>signature and stack</th></tr>"
                   "</thead><tbody>")
        for i, g in enumerate(r.groups, 1):
            cores = "".join(f"<li><code>{_e(c)}</code></li>" for c in g.cores)
            out.append(
                f"<tr><td class=\"n\">{i}</td><td class=\"n\">{g.count}</td>"
                f"<td>{_when(g.first_seen)}</td><td>{_when(g.last_seen)}</td>"
                f"<td>{_e(', '.join(g.versions))}</td><td><code>{_e(g.signature)}</code>"
                f"<div class=\"muted\">{_e(g.crash)}</div>"
                f"<details><summary>stack of {_e(g.example)}</summary>"
                f"<pre>{_e(chr(10).join(g.stack))}</pre></details>"
                f"<details><summary>{g.count} cores</summary><ul>{cores}</ul></details>"
                f"</td></tr>")
        out.append("</tbody></table>")
    else:
        out.append("<p class=\"muted\">No core of a crash.</p>")
    out.append("<h2 id=\"growth\">Growing across instances</h2>")
    if r.growth:
        out.append("<table><thead><tr><th>type</th><th>grows in</th><th>per capture</th>"
                   "<th>retained per capture</th><th>held at</th></tr></thead><tbody>")
        for g in r.growth:
            out.append(f"<tr><td><code>{_e(g.type)}</code></td>"
                       f"<td class=\"n\">{g.growing_in} of {g.compared}</td>"
                       f"<td class=\"n\">{g.count_per_capture:+,.0f}</td>"
                       f"<td class=\"n\">{g.retained_per_capture / 1024:+,.0f} KiB</td>"
                       f"<td><code>{_e(g.path)}</code></td></tr>")
        out.append("</tbody></table>")
    else:
        out.append("<p class=\"muted\">Nothing grows (or no heap was walked: --heap).</p>")
    if r.failed:
        out.append("<h2 id=\"failed\">Failed</h2><table><tbody>")
        out.extend(f"<tr><td><code>{_e(f['core'])}</code></td><td>{_e(f['error'])}</td>"
                   f"</tr>" for f in r.failed)
        out.append("</tbody></table>")
    return page("nsdebug triage", "".join(out))


def write_page(path, text, force=False):
    """Write a page to `path`, created 0600 (the page names cores and paths)."""
    from arthur.safefile import OutputError, PrivateOutput
    try:
        with PrivateOutput(path, force, binary=False) as f:
            f.write(text)
    except OutputError as e:
        raise NsdebugError(e.strerror) from None
    except OSError as e:
        raise NsdebugError(f"cannot write {path}: {e.strerror or e}") from None
