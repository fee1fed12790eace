"""The HTML pages (report, diff, fleet) in a real headless Chromium driven over the
DevTools protocol (puppeteer-core), and our .heapsnapshot in the real DevTools Memory
panel Chromium ships. Screenshots of each view go to $NSDEBUG_SCREENSHOTS (else the
test's temporary directory)."""

import json
import os
import subprocess

import browser
import pytest
import targets


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    where = os.environ.get("NSDEBUG_SCREENSHOTS") or str(tmp_path_factory.mktemp("shots"))
    os.makedirs(where, exist_ok=True)
    return where


@pytest.fixture(scope="module")
def heap_core(cores):
    return cores.heap(targets.default_build())


@pytest.fixture(scope="module")
def report_page(heap_core, tmp_path_factory):
    browser.node_modules()
    page = tmp_path_factory.mktemp("report") / "report.html"
    r = subprocess.run(targets.nsdebug_cmd() + ["report", heap_core.core, "--html", str(page)],
                       capture_output=True, text=True, env=targets.nsdebug_env(), timeout=600)
    assert r.returncode == 0, r.stderr
    return page


def test_report_page_in_chromium(report_page, heap_core, shots):
    truth = heap_core.truth
    holder = f"{truth['holders']['holder_a']:#x}"
    obj = f'a.obj[data-addr="{holder}"]'
    steps = [
        {"do": "shot", "path": f"{shots}/report-summary.png"},
        {"do": "eval", "as": "boxes", "expr":
         "[...document.querySelectorAll('#treemap svg text')].map(t => t.textContent)"},
        {"do": "eval", "as": "bounds", "expr": "document.querySelector('#bounds').innerText"},
        {"do": "eval", "as": "x", "expr": "document.querySelector('#memory').scrollIntoView()"},
        {"do": "shot", "path": f"{shots}/report-memory.png"},
        {"do": "eval", "as": "memrows", "expr":
         "[...document.querySelectorAll('#memory-table tbody tr')].map(r => "
         "[...r.cells].map(c => c.innerText))"},
        # A suspect expands to its path and dominator subtree.
        {"do": "eval", "as": "closed", "expr": "document.querySelector('#suspect-0').open"},
        {"do": "click", "sel": "#suspect-0 summary"},
        {"do": "eval", "as": "suspect", "expr":
         "(() => { const d = document.querySelector('#suspect-0'); const p = d.querySelector"
         "('.path'); return {open: d.open, path: p.innerText, shown: p.offsetParent !== null,"
         " subtree: d.querySelectorAll('ul.tree a.obj').length}; })()"},
        {"do": "shot", "path": f"{shots}/report-suspects.png"},
        # The search finds a class; a header sorts from the keyboard.
        {"do": "type", "sel": "#type-search", "text": "Widget"},
        {"do": "eval", "as": "found", "expr":
         "[...document.querySelectorAll('#type-table tbody tr')].map(r => "
         "[...r.cells].map(c => c.innerText))"},
        {"do": "key", "sel": "#type-table th[data-key=count]", "key": "Enter"},
        {"do": "eval", "as": "sorted", "expr":
         "document.querySelector('#type-table th[data-key=count]').getAttribute('aria-sort')"},
        {"do": "eval", "as": "x", "expr": "document.querySelector('#types').scrollIntoView()"},
        {"do": "shot", "path": f"{shots}/report-types.png"},
        # The threads and their flame graph.
        {"do": "eval", "as": "flame", "expr":
         "[...document.querySelectorAll('#flame .d3-flame-graph-label')].map(e => e.textContent)"},
        {"do": "eval", "as": "x", "expr": "document.querySelector('#threads').scrollIntoView()"},
        {"do": "shot", "path": f"{shots}/report-threads.png"},
        # The object view of a known object (a global of the target: a Holder).
        {"do": "click", "sel": obj},
        {"do": "wait", "sel": "#object-view[open]"},
        {"do": "eval", "as": "view", "expr":
         "(() => { const d = document.querySelector('#object-view'); return {title: "
         "d.querySelector('h3').innerText, fields: [...d.querySelectorAll("
         "'table.view-fields tbody tr')].map(r => r.cells[0].innerText), referrers: "
         "d.querySelectorAll('table.view-referrers tbody tr').length}; })()"},
        {"do": "shot", "path": f"{shots}/report-object-view.png"},
        {"do": "key", "sel": "#object-view", "key": "Escape"},
        {"do": "eval", "as": "closed_view", "expr": "document.querySelector('#object-view').open"},
        {"do": "print", "as": "print_nav", "path": f"{shots}/report.pdf"},
        # Every object the page links to has its view in the page.
        {"do": "eval", "as": "unviewed", "expr":
         "(() => { const l = new Set(JSON.parse(document.getElementById('nsdebug-data')"
         ".textContent).listed); return [...document.querySelectorAll('a.obj')].map(a => "
         "a.dataset.addr).filter(a => !l.has(a)); })()"},
        {"do": "eval", "as": "links", "expr": "document.querySelectorAll('a.obj').length"},
    ]
    out = browser.browse(report_page, steps)
    assert out["errors"] == []
    v = out["values"]
    # The treemap's boxes name the target's largest owners: its module, then the dict of
    # 5,000 lists and the list of 3,000 widgets it holds (by their global names).
    boxes = [b.replace("\u25b6", "").strip() for b in v["boxes"]]
    assert boxes[0].startswith("heap")
    assert boxes[1].startswith("sys.modules['__main__']")
    for name in ("table", "widgets"):
        assert name in boxes, (name, boxes[:40])
    assert "1,500 objects that retain most" in v["bounds"]
    # The memory table: resident and mapped bytes per row; a gcore core does not say
    # which file pages were resident.
    mem = {r[0]: r for r in v["memrows"]}
    assert len(mem) == 12 and mem["libraries and files"][1] == "not known"
    assert mem["Python objects in pymalloc arenas"][1].endswith("B"), mem
    assert v["closed"] is False
    s = v["suspect"]
    assert s["open"] and s["shown"] and s["path"].startswith("sys.modules['__main__'].")
    assert s["subtree"] > 1
    rows = {r[0]: r for r in v["found"]}
    assert "__main__.Widget" in rows and all("widget" in k.lower() for k in rows)
    assert int(rows["__main__.Widget"][1].replace(",", "")) == \
        truth["classes"]["__main__.Widget"]
    assert v["sorted"] == "descending"
    assert any(label.startswith("park (heap_target.py:") for label in v["flame"])
    assert v["view"]["title"] == f"__main__.Holder at {holder}"
    assert "ref" in v["view"]["fields"] and v["view"]["referrers"] >= 1
    assert v["closed_view"] is False
    assert v["print_nav"] == "none"
    assert out["paint"] is not None
    assert v["unviewed"] == [] and v["links"] > 100


def test_report_page_in_firefox(report_page, heap_core, shots):
    holder = f"{heap_core.truth['holders']['holder_a']:#x}"
    out = browser.browse(report_page, [
        {"do": "eval", "as": "boxes", "expr":
         "[...document.querySelectorAll('#treemap svg text')].map(t => t.textContent)"},
        {"do": "click", "sel": "#suspect-0 summary"},
        {"do": "eval", "as": "open", "expr": "document.querySelector('#suspect-0').open"},
        {"do": "type", "sel": "#type-search", "text": "Widget"},
        {"do": "eval", "as": "found", "expr":
         "[...document.querySelectorAll('#type-table tbody tr')].map(r => r.cells[0]"
         ".innerText)"},
        {"do": "click", "sel": f'a.obj[data-addr="{holder}"]'},
        {"do": "wait", "sel": "#object-view[open]"},
        {"do": "eval", "as": "fields", "expr":
         "[...document.querySelectorAll('#object-view table.view-fields tbody tr')]"
         ".map(r => r.cells[0].innerText)"},
        {"do": "shot", "path": f"{shots}/report-firefox.png"}], in_firefox=True)
    assert out["errors"] == []
    v = out["values"]
    boxes = [b.replace("\u25b6", "").strip() for b in v["boxes"]]
    assert boxes[1].startswith("sys.modules['__main__']") and "widgets" in boxes
    assert v["open"] is True and "__main__.Widget" in v["found"]
    assert v["fields"] == ["ref"]


def test_report_page_dark_mode(report_page, shots):
    out = browser.browse(report_page, [
        {"do": "eval", "as": "bg", "expr": "getComputedStyle(document.body).backgroundColor"},
        {"do": "shot", "path": f"{shots}/report-dark.png"}], dark=True)
    assert out["errors"] == []
    r, g, b = (int(x) for x in out["values"]["bg"][4:-1].split(",")[:3])
    assert r + g + b < 150, out["values"]["bg"]


def test_report_redacts_unless_asked(cores, tmp_path):
    """The crash core's process had NSDEBUG_FIXTURE_API_TOKEN in its environment: hidden
    in the page, shown with --no-redact."""
    cap = cores.crash(targets.default_build())
    secret = "tok-5ecret-value"
    pages = {}
    for flag in ((), ("--no-redact",)):
        page = tmp_path / f"r{len(flag)}.html"
        r = subprocess.run(targets.nsdebug_cmd() + ["report", cap.core, "--html", str(page),
                                                    "--no-heap", *flag],
                           capture_output=True, text=True, env=targets.nsdebug_env(),
                           timeout=600)
        assert r.returncode == 0, r.stderr
        pages[bool(flag)] = page.read_text()
    assert secret not in pages[False] and "<redacted>" in pages[False]
    assert secret in pages[True]
    assert os.stat(tmp_path / "r0.html").st_mode & 0o777 == 0o600


def test_report_page_shows_the_tasks(cores, tmp_path):
    cap = cores.asyncio(targets.default_build())
    page = tmp_path / "tasks.html"
    r = subprocess.run(targets.nsdebug_cmd() + ["report", cap.core, "--html", str(page)],
                       capture_output=True, text=True, env=targets.nsdebug_env(), timeout=600)
    assert r.returncode == 0, r.stderr
    out = browser.browse(page, [{"do": "eval", "as": "tasks", "expr":
                                 "[...document.querySelectorAll('#tasks li > a.obj')]"
                                 ".map(a => a.innerText)"}])
    assert out["errors"] == []
    want = {f'Task "{name}"' for name, t in cap.truth["tasks"].items()
            if t["state"] == "pending"}         # the report lists the pending ones
    assert want <= set(out["values"]["tasks"]), out["values"]["tasks"]


def test_snapshot_in_the_devtools_memory_panel(heap_core, tmp_path, shots):
    """Our .heapsnapshot in DevTools' own Memory panel: the Summary's constructor counts
    are those of `objects` (classes of one name counted together, as DevTools does)."""
    browser.node_modules()
    snap = tmp_path / "heap.heapsnapshot"
    run = targets.nsdebug_cmd()
    r = subprocess.run(run + [heap_core.core, "--snapshot", str(snap)], capture_output=True,
                       text=True, env=targets.nsdebug_env(), timeout=600)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["node", "panel.mjs", browser.chromium(), str(snap)],
                       cwd=browser.DEVTOOLS, capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, NSDEBUG_SCREENSHOTS=shots))
    assert r.returncode == 0, r.stderr
    panel = json.loads(r.stdout.strip().splitlines()[-1])
    assert panel["errors"] == [] and len(panel["rows"]) > 20
    r = subprocess.run(run + [heap_core.core, "-c", "objects --top 1000000 --sort count",
                              "--json"], capture_output=True, text=True,
                       env=targets.nsdebug_env(), timeout=600)
    ours = {}
    for row in json.loads(r.stdout)["rows"]:
        ours[row["type"]] = ours.get(row["type"], 0) + row["count"]
    matched = [(name, n) for name, n in panel["rows"] if name in ours]
    assert len(matched) >= 20
    assert [(name, ours[name]) for name, _ in matched] == matched
    shown = dict(panel["rows"])
    assert shown["__main__.Widget"] == heap_core.truth["classes"]["__main__.Widget"]


def test_diff_page(cores, tmp_path, shots):
    browser.node_modules()
    old, new = cores.leak(targets.default_build())
    page = tmp_path / "diff.html"
    r = subprocess.run(targets.nsdebug_cmd() + ["diff", old.core, new.core, "--html",
                                                str(page)],
                       capture_output=True, text=True, env=targets.nsdebug_env(), timeout=600)
    assert r.returncode == 0, r.stderr
    out = browser.browse(page, [
        {"do": "eval", "as": "boxes", "expr":
         "[...document.querySelectorAll('#treemap svg text')].map(t => t.textContent)"},
        {"do": "eval", "as": "paths", "expr":
         "[...document.querySelectorAll('#paths code.path')].map(e => e.innerText)"},
        {"do": "shot", "path": f"{shots}/diff.png", "full": True}])
    assert out["errors"] == []
    assert any("__main__.AuditRecord" in b for b in out["values"]["boxes"])
    assert out["values"]["paths"][0] == "sys.modules['__main__'].BUS.listeners[*]"


def test_fleet_page(cores, tmp_path, shots):
    browser.node_modules()
    build = targets.default_build()
    crash = cores.crash(build)
    old, new = cores.leak(build)
    page = tmp_path / "fleet.html"
    r = subprocess.run(targets.nsdebug_cmd() + ["triage", crash.core, old.core, new.core,
                                                "--heap", "--no-cache", "--html", str(page)],
                       capture_output=True, text=True, env=targets.nsdebug_env(), timeout=600)
    assert r.returncode == 0, r.stderr
    out = browser.browse(page, [
        {"do": "click", "sel": "#group-1 summary"},
        {"do": "eval", "as": "group", "expr":
         "(() => { const g = document.querySelector('#group-1'); return {open: g.open, "
         "signature: g.querySelector('.signature').innerText, stack: g.querySelector('pre')"
         ".innerText}; })()"},
        {"do": "eval", "as": "bars", "expr":
         "document.querySelectorAll('#over-time svg path').length"},
        {"do": "eval", "as": "growth", "expr":
         "[...document.querySelectorAll('#growth-table tbody tr')].map(r => r.cells[0]"
         ".innerText)"},
        {"do": "shot", "path": f"{shots}/fleet.png", "full": True}])
    assert out["errors"] == []
    v = out["values"]
    assert v["group"]["open"] and v["group"]["signature"].startswith("SIGSEGV | ")
    assert "stacks_target.py:" in v["group"]["stack"] and v["bars"] > 0
    assert v["growth"][0] == "__main__.AuditRecord"
