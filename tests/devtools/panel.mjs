// Loads a .heapsnapshot into the real DevTools Memory panel that Chromium ships (its
// bundled front end, served by the browser itself) and reads the Summary view's rows:
// node panel.mjs CHROMIUM SNAPSHOT -> {"header": ..., "rows": [[constructor, count]...]}
import fs from 'node:fs';
import puppeteer from 'puppeteer-core';

const [chromium, snapshot] = process.argv.slice(2);
const port = 9300 + (process.pid % 500);
const browser = await puppeteer.launch({executablePath: chromium, headless: true,
  args: ['--no-sandbox', '--disable-gpu', `--remote-debugging-port=${port}`,
         '--remote-allow-origins=*']});
const out = {errors: [], header: null, rows: []};
try {
  const blank = await browser.newPage();
  await blank.goto('about:blank');
  const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const target = list.find(t => t.type === 'page' && t.url === 'about:blank');
  const url = `http://127.0.0.1:${port}/devtools/inspector.html?ws=127.0.0.1:${port}` +
              `/devtools/page/${target.id}&panel=heap-profiler`;
  const page = await browser.newPage();
  await page.setViewport({width: 1600, height: 1000});
  await page.goto(url, {waitUntil: 'load'});
  // The screencast of the inspected page takes most of the window: hidden.
  const cast = await page.waitForSelector('pierce/[aria-label="Toggle screencast"]',
                                          {timeout: 20000}).catch(() => null);
  if (cast) await cast.click();
  const load = await page.waitForSelector('pierce/devtools-button[aria-label="Load profile\u2026"]',
                                          {timeout: 60000});
  const [chooser] = await Promise.all([page.waitForFileChooser({timeout: 60000}), load.click()]);
  await chooser.accept([snapshot]);
  // The snapshot's sidebar item shows its size ("a (7.4 MB)") once it is loaded.
  let item = null;
  for (let waited = 0; !item && waited < 300000; waited += 250) {
    for (const li of await page.$$('pierce/li[role="treeitem"]')) {
      if (/\(\d[\d.,]*\s*[kMG]?B\)/.test(await li.evaluate(e => e.innerText))) item = li;
    }
    if (!item) await new Promise(r => setTimeout(r, 250));
  }
  if (!item) throw new Error('the snapshot never loaded');
  await item.click();
  await page.waitForSelector('pierce/tr.data-grid-data-grid-node', {timeout: 300000});
  await new Promise(r => setTimeout(r, 1000));
  const rows = await page.$$('pierce/tr.data-grid-data-grid-node');
  for (const r of rows) {
    const text = await r.evaluate(e => e.innerText);
    // "__main__.Widget×12,345 ..." : the constructor, then × and its count.
    const m = /^(.*?)\s*×\s*([\d,]+)/s.exec(text);
    if (m) out.rows.push([m[1].trim(), parseInt(m[2].replace(/,/g, ''), 10)]);
  }
  out.header = await page.evaluate(() => {
    const find = (root) => {
      for (const e of root.querySelectorAll('*')) {
        if (e.shadowRoot) { const x = find(e.shadowRoot); if (x) return x; }
        if (/objects \(/.test(e.textContent || '') && e.children.length === 0) return e.textContent;
      }
      return null;
    };
    return find(document);
  });
  const shot = process.env.NSDEBUG_SCREENSHOTS;
  if (shot) await page.screenshot({path: `${shot}/devtools-summary.png`});
} catch (e) {
  out.errors.push(e.message);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
