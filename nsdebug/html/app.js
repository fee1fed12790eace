// nsdebug's HTML pages: draws the page's data (the nsdebug-data block) as a report of
// one core, a diff of two, or the fleet page of triage. Charts are ECharts' (treemaps,
// pie, bars) and d3-flame-graph's; tables, lists and the object view are plain DOM.
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("nsdebug-data").textContent);
  performance.mark("nsdebug-parsed");
  // The object views are the page's bulk: read when the first one is asked for.
  var OBJECTS = null;
  function objects() {
    if (OBJECTS === null) {
      var block = document.getElementById("nsdebug-objects");
      OBJECTS = block ? JSON.parse(block.textContent) : {};
    }
    return OBJECTS;
  }
  var LISTED = {};
  (DATA.listed || []).forEach(function (a) { LISTED[a] = true; });
  var DARK = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  var charts = [];

  // -- small helpers ------------------------------------------------------------------
  function el(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") e.textContent = attrs[k];
        else if (k === "cls") e.className = attrs[k];
        else e.setAttribute(k, attrs[k]);
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return e;
  }
  function bytes(n) {
    if (n === null || n === undefined) return "";
    var a = Math.abs(n), units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (a >= 1024 && i < units.length - 1) { a /= 1024; i++; }
    return (n < 0 ? "-" : "") + (i ? a.toFixed(1) : String(a)) + " " + units[i];
  }
  function num(n) { return n === null || n === undefined ? "" : Number(n).toLocaleString("en-US"); }
  function signed(n) { return (n > 0 ? "+" : "") + num(n); }
  function when(t) {
    if (!t) return "?";
    var d = new Date(t * 1000);
    return d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }
  function section(id, title) {
    performance.mark("nsdebug-section-" + id);
    var s = el("section", { id: id, "aria-labelledby": id + "-h" },
      el("h2", { id: id + "-h", text: title }));
    document.querySelector("main").appendChild(s);
    var nav = document.querySelector("nav");
    if (nav) nav.appendChild(el("a", { href: "#" + id, text: title }));
    return s;
  }
  function chart(parent, cls, option, label) {
    var div = el("div", { cls: "chart " + (cls || ""), role: "img", "aria-label": label });
    parent.appendChild(div);
    var c = echarts.init(div, DARK ? "dark" : null, { renderer: "svg" });
    option.backgroundColor = "transparent";
    c.setOption(option);
    charts.push(c);
    return c;
  }
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  // Printing: every collapsed part open, so the paper has all of it.
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  });

  // -- the object view: any object listed anywhere opens here ------------------------
  var dialog = null;
  function objLink(addr, text) {
    var a = el("a", { href: "#", cls: "obj mono", "data-addr": addr, text: text || addr });
    a.addEventListener("click", function (ev) { ev.preventDefault(); showObject(addr); });
    return a;
  }
  function showObject(addr) {
    var v = objects()[addr];
    if (!dialog) {
      dialog = el("dialog", { id: "object-view", "aria-label": "object view" });
      document.body.appendChild(dialog);
    }
    dialog.textContent = "";
    var close = el("button", { type: "button", text: "Close" });
    close.addEventListener("click", function () { dialog.close(); });
    if (!v) {
      dialog.appendChild(el("p", { text: addr + " is not in this page's bounds." }));
      dialog.appendChild(close);
      dialog.showModal();
      return;
    }
    dialog.appendChild(el("h3", null, el("span", { text: v.type + " at " + addr })));
    dialog.appendChild(el("p", { cls: "muted" }, "size " + bytes(v.size) + ", retains " +
      bytes(v.retained) + (v.path ? ", at " : ""), v.path ? el("code", { text: v.path }) : null));
    dialog.appendChild(el("pre", { text: v.preview || "" }));
    if (v.error) dialog.appendChild(el("p", { cls: "warn", text: v.error }));
    function table(title, headers, rows, more) {
      dialog.appendChild(el("h3", { text: title + (more ? " (" + more + " more)" : "") }));
      if (!rows.length) { dialog.appendChild(el("p", { cls: "muted", text: "none" })); return; }
      var t = el("table", { cls: "view-" + title.toLowerCase() });
      t.appendChild(el("thead", null, el("tr", null, headers.map(function (h) {
        return el("th", { text: h });
      }).reduce(function (f, x) { f.appendChild(x); return f; }, document.createDocumentFragment()))));
      var tb = el("tbody");
      rows.forEach(function (r) { tb.appendChild(r); });
      t.appendChild(tb);
      dialog.appendChild(t);
    }
    table("Fields", ["name", "value"], (v.fields || []).map(function (f) {
      return el("tr", null, el("td", null, el("code", { text: String(f[0]) })),
        el("td", null, el("code", { text: String(f[1]) })));
    }));
    function ref(r) {
      return el("tr", null, el("td", null, el("code", { text: r[0] })),
        el("td", null, r[1] ? (LISTED[r[1]] ? objLink(r[1]) : el("code", { text: r[1] })) : ""),
        el("td", { text: r[2] || "" }));
    }
    var more = v.more || {};
    table("Referents", ["how", "object", "type"], (v.referents || []).map(ref), more.referents);
    table("Referrers", ["how", "object", "type"], (v.referrers || []).map(ref), more.referrers);
    dialog.appendChild(close);
    if (!dialog.open) dialog.showModal();
    close.focus();
  }

  // -- shared page parts ---------------------------------------------------------------
  function frame() {
    var header = el("header", null, el("h1", { text: DATA.title }),
      el("div", { cls: "muted", text: "made by nsdebug, " + DATA.generated }), el("nav"));
    document.body.appendChild(header);
    document.body.appendChild(el("main", { id: "main" }));
  }
  function boundsNote(parent) {
    if (!DATA.bounds || !DATA.bounds.length) return;
    var box = el("div", { cls: "box bounds", id: "bounds" },
      el("strong", { text: "This page carries a bounded part of the heap: " }));
    var ul = el("ul");
    DATA.bounds.forEach(function (b) { ul.appendChild(el("li", { text: b })); });
    box.appendChild(ul);
    parent.appendChild(box);
  }
  function treeData(nodes) {
    return (nodes || []).map(function (n) {
      var d = { name: n.name, value: Math.max(n.value, 0), addr: n.address || null,
                kind: n.kind, type: n.type || null, count: n.count, path: n.path || null };
      if (n.children) d.children = treeData(n.children);
      return d;
    });
  }
  function treemap(parent, nodes, label, title, depth) {
    var c = chart(parent, "", {
      tooltip: { formatter: function (p) {
        var d = p.data || {};
        return echarts.format.encodeHTML(d.path || p.name) + "<br>" + bytes(p.value) +
          (d.type && d.kind === "object" ? "<br>" + echarts.format.encodeHTML(d.type) : "") +
          (d.count && d.kind !== "object" ? "<br>" + num(d.count) + " objects" : "");
      } },
      series: [{ type: "treemap", name: title, data: treeData(nodes), leafDepth: depth || 2,
        visibleMin: 300, childrenVisibleMin: 2000,
        roam: "move", width: "100%", height: "88%", top: 0,
        label: { show: true, position: "insideTopLeft", overflow: "truncate",
          formatter: function (p) { return p.name + "\n" + bytes(p.value); } },
        upperLabel: { show: true, height: 22, formatter: function (p) {
          return p.name + "  " + bytes(p.value); } },
        breadcrumb: { show: true, bottom: 0 },
        levels: [{ itemStyle: { borderWidth: 2, gapWidth: 2 } },
                 { itemStyle: { gapWidth: 1 } }, { itemStyle: { gapWidth: 1 } }] }]
    }, label);
    c.on("click", function (p) {
      if (p.data && p.data.addr && !(p.data.children && p.data.children.length)) showObject(p.data.addr);
    });
    return c;
  }
  function sortable(table, rows, columns, render, searchBox) {
    var key = null, dir = -1, filter = "";
    var tbody = el("tbody");
    table.appendChild(tbody);
    function draw() {
      var shown = rows.filter(function (r) {
        return !filter || String(r[columns[0].key]).toLowerCase().indexOf(filter) >= 0;
      });
      if (key) shown.sort(function (a, b) {
        var x = a[key], y = b[key];
        return (x < y ? -1 : x > y ? 1 : 0) * dir;
      });
      tbody.textContent = "";
      shown.slice(0, 2000).forEach(function (r) { tbody.appendChild(render(r)); });
      table.setAttribute("data-shown", String(shown.length));
    }
    var tr = el("tr");
    columns.forEach(function (col) {
      var th = el("th", { "data-key": col.key, tabindex: "0", scope: "col", cls: col.n ? "n" : "",
                          text: col.label });
      function go() {
        dir = key === col.key ? -dir : (col.n ? -1 : 1);
        key = col.key;
        table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
        draw();
      }
      th.addEventListener("click", go);
      th.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); }
      });
      tr.appendChild(th);
    });
    table.insertBefore(el("thead", null, tr), tbody);
    if (searchBox) searchBox.addEventListener("input", function () {
      filter = searchBox.value.trim().toLowerCase();
      draw();
    });
    draw();
  }

  // -- the report of one core ------------------------------------------------------------
  function report() {
    var s = section("summary", "Summary");
    var t = el("table", { cls: "summary" });
    DATA.summary.rows.forEach(function (r) {
      t.appendChild(el("tr", null, el("th", { text: r[0] }), el("td", null, el("code", { text: r[1] }))));
    });
    s.appendChild(t);
    (DATA.summary.warnings || []).concat(DATA.errors || []).forEach(function (w) {
      s.appendChild(el("p", { cls: "warn", text: "warning: " + w }));
    });
    function listing(title, id, rows) {
      if (!rows || !rows.length) return;
      var d = el("details", { id: id }, el("summary", { text: title + " (" + rows.length + ")" }));
      var tb = el("tbody");
      rows.forEach(function (r) {
        var tr = el("tr");
        r.forEach(function (c) { tr.appendChild(el("td", null, el("code", { text: c }))); });
        tb.appendChild(tr);
      });
      d.appendChild(el("table", null, tb));
      s.appendChild(d);
    }
    listing("Environment (secrets redacted unless --no-redact)", "environment", DATA.environment);
    listing("Python modules", "modules", DATA.modules);
    if (DATA.deadlocks && DATA.deadlocks.length) {
      var box = el("div", { cls: "box", id: "deadlocks" }, el("strong", { cls: "bad", text: "Deadlock" }));
      DATA.deadlocks.forEach(function (d) { box.appendChild(el("p", { text: d })); });
      s.appendChild(box);
    }
    boundsNote(s);
    // The first screen first; the rest a step at a time, so the page paints at once.
    later(memory);
    if (DATA.suspects) later(suspects);
    later(threads);
    if (DATA.tasks && DATA.tasks.length) later(tasks);
    if (DATA.types) later(types);
  }
  function memory() {
    if (DATA.treemap) {
      var m = section("memory", "Memory");
      m.appendChild(el("p", { cls: "muted", text: "Retained memory by owner (a module, or a root " +
        "of the interpreter), then type, then object, then what each object alone keeps alive. " +
        "Click a box to zoom in, the path below to zoom out; an object opens its view." }));
      var holder = el("div", { id: "treemap" });
      m.appendChild(holder);
      treemap(holder, DATA.treemap, "treemap of retained memory", "heap", 3);
      if (DATA.memory) memoryBreakdown(m, DATA.memory);
    }
  }
  function memoryBreakdown(parent, mem) {
    // The pie is of resident bytes where every row's are known (an arthur capture), else
    // of mapped bytes; the table has both.
    var known = mem.rows.every(function (r) { return r.resident !== null; });
    var key = known ? "resident" : "bytes";
    parent.appendChild(el("h3", { text: known ?
      "Every resident byte (" + bytes(mem.resident) + "), by what holds it" :
      "Every mapped byte (" + bytes(mem.total) + "), by what holds it" }));
    parent.appendChild(el("p", { cls: "muted", text: "Resident: " + mem.resident_how +
      (mem.rss ? "; the process's VmRSS before the capture: " + bytes(mem.rss) : "") + "." }));
    var rows = mem.rows.filter(function (r) { return r[key] > 0; });
    var holder = el("div", { id: "breakdown" });
    parent.appendChild(holder);
    chart(holder, "small", {
      tooltip: { trigger: "item", formatter: function (p) {
        return echarts.format.encodeHTML(p.name) + "<br>" + bytes(p.value) + " (" + p.percent + "%)"; } },
      series: [{ type: "pie", radius: ["35%", "70%"], data: rows.map(function (r) {
        return { name: r.category, value: r[key] }; }),
        label: { formatter: function (p) { return p.name + "\n" + bytes(p.value); } } }]
    }, "memory breakdown");
    var t = el("table", { id: "memory-table" });
    t.appendChild(el("thead", null, el("tr", null, el("th", { text: "what" }),
      el("th", { cls: "n", text: "resident" }), el("th", { cls: "n", text: "mapped" }),
      el("th", { text: "how it is measured" }))));
    var tb = el("tbody");
    mem.rows.forEach(function (r) {
      tb.appendChild(el("tr", null, el("td", { text: r.category }),
        el("td", { cls: "n", text: r.resident === null ? "not known" : bytes(r.resident) }),
        el("td", { cls: "n", text: bytes(r.bytes) }), el("td", { cls: "muted", text: r.how })));
    });
    t.appendChild(tb);
    parent.appendChild(t);
  }
  function subtreeList(node) {
    var li = el("li");
    if (node.address) li.appendChild(objLink(node.address, node.name));
    else li.appendChild(el("span", { text: node.name }));
    li.appendChild(el("span", { cls: "muted", text: "  " + bytes(node.value) +
      (node.kind === "object" && node.type && node.type !== node.name ? "  " + node.type : "") }));
    if (node.children && node.children.length) {
      var ul = el("ul", { cls: "tree" });
      node.children.forEach(function (c) { ul.appendChild(subtreeList(c)); });
      li.appendChild(ul);
    }
    return li;
  }
  function suspects() {
    var s = section("suspects", "Leak suspects");
    if (!DATA.suspects.length) { s.appendChild(el("p", { cls: "muted", text: "No object holds a large share of the heap." })); return; }
    DATA.suspects.forEach(function (x, i) {
      var d = el("details", { cls: "suspect", id: "suspect-" + i });
      d.appendChild(el("summary", { text: x.summary }));
      var body = el("div", { cls: "box" });
      body.appendChild(el("p", null, "Path from a root: ", el("code", { cls: "path", text: x.path || "(none)" })));
      body.appendChild(el("p", null, "The object: ", objLink("0x" + x.address.toString(16), x.type + " at 0x" + x.address.toString(16)),
        el("span", { cls: "muted", text: ", retains " + bytes(x.retained) + " (" + (x.share * 100).toFixed(1) + "% of the heap)" })));
      if (x.subtree) {
        body.appendChild(el("p", { cls: "muted", text: "What it alone keeps alive (its dominator subtree):" }));
        var ul = el("ul", { cls: "tree" });
        ul.appendChild(subtreeList(x.subtree));
        body.appendChild(ul);
      }
      d.appendChild(body);
      s.appendChild(d);
    });
  }
  function threads() {
    var s = section("threads", "Threads");
    if (DATA.flame && DATA.flame.children.length) {
      s.appendChild(el("h3", { text: "Flame graph of every thread's stack (one sample per thread)" }));
      var div = el("div", { id: "flame", role: "img", "aria-label": "flame graph of the threads' stacks" });
      s.appendChild(div);
      var width = Math.max(600, (document.querySelector("main").clientWidth || 900) - 20);
      var fg = flamegraph.default().width(width).cellHeight(18).minFrameSize(1)
        .title("").inverted(false).sort(false).transitionDuration(0);
      d3.select(div).datum(DATA.flame).call(fg);
    }
    DATA.threads.forEach(function (t) {
      var d = el("details", { cls: "thread", open: "" });
      var head = t.title + (t.crashed ? "  [CRASHED]" : "") + (t.holds_gil ? "  [holds the GIL]" : "") +
        (t.state ? "  (" + t.state + ")" : "");
      d.appendChild(el("summary", { cls: t.crashed ? "bad" : "", text: head }));
      var ol = el("ol", { cls: "stack", reversed: "" });
      t.rows.slice().reverse().forEach(function (r) {
        var li = el("li", { cls: r.kind });
        if (r.kind === "python") {
          li.appendChild(el("code", { text: r.function + "  (" + r.where + ")" }));
          if (r.source) li.appendChild(el("pre", { text: "    " + r.source.trim() }));
          if (r.locals && r.locals.length) {
            var ul = el("ul", { cls: "locals tree" });
            r.locals.forEach(function (v) {
              var addr = "0x" + v.address.toString(16);
              ul.appendChild(el("li", null, el("code", { text: v.name + " = " }),
                LISTED[addr] ? objLink(addr, v.value) : el("code", { text: v.value }),
                el("span", { cls: "muted", text: "  " + v.type })));
            });
            li.appendChild(ul);
          }
        } else {
          li.appendChild(el("code", { text: r.function + (r.inlined ? " (inlined)" : "") +
            " in " + r.module + (r.where ? " at " + r.where : "") }));
        }
        ol.appendChild(li);
      });
      d.appendChild(ol);
      s.appendChild(d);
    });
  }
  function taskTree(t) {
    var li = el("li");
    li.appendChild(t.address ? objLink("0x" + t.address.toString(16), "Task " + JSON.stringify(t.name)) :
      el("span", { text: t.name }));
    if (t.state) li.appendChild(el("span", { cls: "muted", text: "  " + t.state + (t.waits_on ? ", waits on " + t.waits_on : "") }));
    if (t.chain && t.chain.length) li.appendChild(el("pre", { text: t.chain.map(function (c) { return "  await " + c; }).join("\n") }));
    if (t.children && t.children.length) {
      var ul = el("ul", { cls: "tree" });
      t.children.forEach(function (c) { ul.appendChild(taskTree(c)); });
      li.appendChild(ul);
    }
    return li;
  }
  function tasks() {
    var s = section("tasks", "asyncio tasks");
    var ul = el("ul", { cls: "tree" });
    DATA.tasks.forEach(function (t) { ul.appendChild(taskTree(t)); });
    s.appendChild(ul);
  }
  function types() {
    var s = section("types", "Types");
    var search = el("input", { type: "search", id: "type-search", placeholder: "Find a type…",
                               "aria-label": "find a type" });
    s.appendChild(search);
    var t = el("table", { id: "type-table" });
    s.appendChild(t);
    sortable(t, DATA.types, [{ key: "type", label: "type" }, { key: "count", label: "instances", n: 1 },
      { key: "size", label: "size", n: 1 }, { key: "retained", label: "retained", n: 1 }],
      function (r) {
        return el("tr", null, el("td", null, el("code", { text: r.type })), el("td", { cls: "n", text: num(r.count) }),
          el("td", { cls: "n", text: bytes(r.size) }), el("td", { cls: "n", text: bytes(r.retained) }));
      }, search);
  }

  // -- the diff of two cores -------------------------------------------------------------
  function diff() {
    var s = section("summary", "Summary");
    var x = DATA.totals;
    s.appendChild(el("p", { text: "from " + DATA.old + " to " + DATA.new + ": objects " + num(x.objects_before) +
      " -> " + num(x.objects_after) + " (" + signed(x.new_objects) + " new, " + num(x.gone_objects) +
      " gone), size " + bytes(x.size_before) + " -> " + bytes(x.size_after) }));
    (DATA.warnings || []).forEach(function (w) { s.appendChild(el("p", { cls: "warn", text: "warning: " + w })); });
    boundsNote(s);
    var g = section("growth", "What grew");
    var grew = DATA.types.filter(function (t) { return t.size_change > 0; });
    var holder = el("div", { id: "treemap" });
    g.appendChild(holder);
    treemap(holder, grew.map(function (t) {
      return { name: t.type, value: t.size_change, kind: "type", count: t.count_change };
    }), "treemap of the growth by type", "growth");
    var t = el("table", { id: "diff-table" });
    g.appendChild(t);
    sortable(t, DATA.types, [{ key: "type", label: "type" }, { key: "count_change", label: "count", n: 1 },
      { key: "size_change", label: "size", n: 1 }, { key: "retained_change", label: "retained", n: 1 }],
      function (r) {
        return el("tr", null, el("td", null, el("code", { text: r.type })),
          el("td", { cls: "n", text: signed(r.count_change) }), el("td", { cls: "n", text: bytes(r.size_change) }),
          el("td", { cls: "n", text: bytes(r.retained_change) }));
      });
    var p = section("paths", "Where the new objects hang");
    var ul = el("ul", { cls: "tree" });
    DATA.locations.forEach(function (l) {
      ul.appendChild(el("li", null, el("code", { cls: "path", text: l.path }),
        el("span", { cls: "muted", text: "  " + signed(l.count) + " objects, " + bytes(l.size) + "  (" +
          l.types.map(function (t) { return t[0] + " " + signed(t[1]); }).join(", ") + ")" })));
    });
    p.appendChild(ul);
  }

  // -- the fleet page --------------------------------------------------------------------
  function fleet() {
    var crashes = DATA.groups.reduce(function (a, g) { return a + g.count; }, 0);
    var s = section("summary", "Summary");
    s.appendChild(el("p", { text: DATA.cores + " cores: " + crashes + " crashes in " + DATA.groups.length +
      " groups, " + DATA.captures + " captures without a crash, " + DATA.failed.length + " failed." }));
    boundsNote(s);
    var g = section("groups", "Crash groups");
    if (DATA.groups.length && DATA.bins.length) {
      var holder = el("div", { id: "over-time" });
      g.appendChild(holder);
      chart(holder, "small", {
        tooltip: { trigger: "axis" }, legend: { type: "scroll", top: 0 },
        grid: { top: 40, left: 50, right: 20, bottom: 40 },
        xAxis: { type: "category", data: DATA.bins.map(function (t) { return when(t).slice(0, 16); }) },
        yAxis: { type: "value", name: "crashes", minInterval: 1 },
        series: DATA.groups.slice(0, 10).map(function (grp, i) {
          return { type: "bar", stack: "all", name: "#" + (i + 1) + " " + grp.signature, data: grp.over_time };
        })
      }, "crashes over time by group");
    }
    DATA.groups.forEach(function (grp, i) {
      var d = el("details", { cls: "group", id: "group-" + (i + 1) });
      d.appendChild(el("summary", null, el("strong", { text: "#" + (i + 1) + "  " + grp.count + " x  " }),
        el("code", { cls: "signature", text: grp.signature })));
      var body = el("div", { cls: "box" });
      body.appendChild(el("p", { text: "seen " + when(grp.first_seen) + " .. " + when(grp.last_seen) +
        "; Python " + grp.versions.join(", ") + "; " + grp.executables.join(", ") }));
      if (grp.crash) body.appendChild(el("p", { cls: "muted", text: grp.crash }));
      body.appendChild(el("p", null, "stack of ", el("code", { text: grp.example })));
      body.appendChild(el("pre", { text: grp.stack.join("\n") }));
      var cores = el("details", null, el("summary", { text: grp.count + " cores" }));
      var ul = el("ul");
      grp.cores.forEach(function (c) { ul.appendChild(el("li", null, el("code", { text: c }))); });
      cores.appendChild(ul);
      body.appendChild(cores);
      d.appendChild(body);
      g.appendChild(d);
    });
    if (!DATA.groups.length) g.appendChild(el("p", { cls: "muted", text: "No core of a crash." }));
    var w = section("growth", "Growing across instances");
    if (DATA.growth.length) {
      var t = el("table", { id: "growth-table" });
      w.appendChild(t);
      sortable(t, DATA.growth, [{ key: "type", label: "type" }, { key: "growing_in", label: "grows in", n: 1 },
        { key: "count_per_capture", label: "per capture", n: 1 },
        { key: "retained_per_capture", label: "retained per capture", n: 1 }, { key: "path", label: "held at" }],
        function (r) {
          return el("tr", null, el("td", null, el("code", { text: r.type })),
            el("td", { cls: "n", text: r.growing_in + " of " + r.compared }),
            el("td", { cls: "n", text: signed(Math.round(r.count_per_capture)) }),
            el("td", { cls: "n", text: bytes(Math.round(r.retained_per_capture)) }),
            el("td", null, el("code", { text: r.path || "" })));
        });
    } else {
      w.appendChild(el("p", { cls: "muted", text: "Nothing grows (or no heap was walked: --heap)." }));
    }
    if (DATA.failed.length) {
      var f = section("failed", "Failed");
      var ft = el("table", { id: "failed-table" });
      DATA.failed.forEach(function (x) {
        ft.appendChild(el("tr", null, el("td", null, el("code", { text: x.core })), el("td", { text: x.error })));
      });
      f.appendChild(ft);
    }
  }

  // Steps run one per task after the first paint; the page is ready after the last.
  var steps = [];
  function later(fn) { steps.push(fn); }
  function next() {
    var fn = steps.shift();
    if (!fn) { document.body.setAttribute("data-ready", "1"); return; }
    fn();
    setTimeout(next, 0);
  }
  frame();
  ({ report: report, diff: diff, fleet: fleet })[DATA.kind]();
  requestAnimationFrame(function () { setTimeout(next, 0); });
})();
