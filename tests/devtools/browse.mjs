// Drives a real headless Chromium over a page, for the tests: node browse.mjs PLAN.json
// PLAN: {"page": path, "chromium": path, "dark": bool, "steps": [{"do": ..., ...}]}
//   wait {sel}        until an element matches
//   click {sel}       a click (a real mouse event at the element)
//   type {sel, text}  keys typed into an element
//   key {sel, key}    focus an element, press a key ("Enter")
//   eval {expr, as}   an expression's JSON value, kept under `as`
//   shot {path}       a screenshot of the viewport (full: the whole page)
//   print {as}        the page laid out for print: whether nav is hidden, kept under `as`
//   sleep {ms}
// Prints {"errors": [console errors and page errors], "values": {...}, "paint": ms}.
import fs from 'node:fs';
import puppeteer from 'puppeteer-core';

const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
// plan.firefox: the page in Firefox instead (over WebDriver BiDi).
const browser = plan.firefox
  ? await puppeteer.launch({browser: 'firefox', executablePath: plan.firefox, headless: true})
  : await puppeteer.launch({executablePath: plan.chromium, headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--allow-file-access-from-files']});
const out = {errors: [], values: {}, paint: null};
try {
  const page = await browser.newPage();
  await page.setViewport({width: plan.width || 1400, height: plan.height || 1000});
  if (plan.dark) await page.emulateMediaFeatures([{name: 'prefers-color-scheme', value: 'dark'}]);
  page.on('console', m => { if (m.type() === 'error') out.errors.push('console: ' + m.text()); });
  page.on('pageerror', e => out.errors.push('page: ' + e.message));
  page.on('requestfailed', r => out.errors.push('request: ' + r.url()));
  page.on('request', r => { if (!r.url().startsWith('file:') && !r.url().startsWith('data:'))
    out.errors.push('network: ' + r.url()); });
  await page.goto('file://' + plan.page, {waitUntil: 'load', timeout: 60000});
  await page.waitForSelector('body[data-ready="1"]', {timeout: 60000});
  // The paint entry is recorded a frame after the paint itself.
  await page.waitForFunction(() => performance.getEntriesByName('first-contentful-paint')
    .length, {timeout: 10000}).catch(() => {});
  out.paint = await page.evaluate(() => {
    const p = performance.getEntriesByName('first-contentful-paint')[0];
    return p ? p.startTime : null;
  });
  for (const s of plan.steps || []) {
    if (s.do === 'wait') await page.waitForSelector(s.sel, {timeout: 20000});
    else if (s.do === 'click') { await page.waitForSelector(s.sel, {timeout: 20000}); await page.click(s.sel); }
    else if (s.do === 'type') await page.type(s.sel, s.text);
    else if (s.do === 'key') { await page.focus(s.sel); await page.keyboard.press(s.key); }
    else if (s.do === 'eval') out.values[s.as] = await page.evaluate(s.expr);
    else if (s.do === 'shot') await page.screenshot({path: s.path, fullPage: !!s.full});
    else if (s.do === 'print') {
      await page.emulateMediaType('print');
      out.values[s.as] = await page.evaluate(() =>
        getComputedStyle(document.querySelector('nav')).display);
      await page.pdf({path: s.path || '/dev/null'});
      await page.emulateMediaType(null);
    }
    else if (s.do === 'sleep') await new Promise(r => setTimeout(r, s.ms));
  }
} catch (e) {
  out.errors.push('driver: ' + e.message);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
