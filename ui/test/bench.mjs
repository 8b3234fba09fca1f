// Explorer benchmark (not a test): time to first render after sign-in, time to load and draw the whole tree,
// the render time of the full tree, and frame times while panning it. Env: BASE_URL, TOKEN, SCREENSHOT (optional).
import { launch } from './browser.mjs';

// One panBy per animation frame for 3 s (back and forth, 12 px a frame); the intervals between frames.
function pan(page) {
  return page.evaluate(() => new Promise((resolve) => {
    const t = window.contreeExplorer.tree;
    const gaps = [];
    let last = performance.now();
    const end = last + 3000;
    let dir = 1;
    function frame(now) {
      gaps.push(now - last);
      last = now;
      t.panBy(0, -12 * dir);
      if (gaps.length % 120 === 0) dir = -dir;
      if (now < end) requestAnimationFrame(frame);
      else {
        gaps.sort((a, b) => a - b);
        const q = (p) => gaps[Math.min(gaps.length - 1, Math.floor(p * gaps.length))];
        resolve({ frames: gaps.length, median_ms: q(0.5), p95_ms: q(0.95), max_ms: gaps[gaps.length - 1] });
      }
    }
    requestAnimationFrame(frame);
  }));
}

const browser = await launch();
const out = {};
try {
  const page = await browser.context.newPage();
  await page.goto(`${process.env.BASE_URL}/ui/`);
  await page.locator('#token').fill(process.env.TOKEN);
  const t0 = Date.now();
  await page.locator('#signin-form button[type=submit]').click();
  await page.locator('g.node[data-kind="image"]').first().waitFor({ timeout: 60_000 });
  // first paint after the first nodes are in the DOM
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  out.first_render_ms = Date.now() - t0;
  out.first_nodes = await page.locator('g.node').count();

  const t1 = Date.now();
  await page.evaluate(() => window.contreeExplorer.tree.expandAll(5000));
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  out.expand_all_ms = Date.now() - t1;
  out.nodes = await page.evaluate(() => window.contreeExplorer.tree.lastRender.nodes);
  out.drawn_at_expand = await page.locator('g.node').count();
  // re-render of the whole tree, measured in the page (layout + DOM rebuild), 5 times
  out.render_ms = await page.evaluate(() => {
    const t = window.contreeExplorer.tree;
    const ms = [];
    for (let i = 0; i < 5; i++) { t.render(); ms.push(t.lastRender.ms); }
    return ms;
  });
  // the same, up to the next painted frame (style, layout and paint of the rebuilt SVG included)
  out.render_paint_ms = await page.evaluate(async () => {
    const t = window.contreeExplorer.tree;
    const ms = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      t.render();
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      ms.push(performance.now() - t0);
    }
    return ms;
  });
  await page.evaluate(() => window.contreeExplorer.tree.fit());
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT });
  out.drawn_fitted = await page.locator('g.node').count();
  out.pan_fitted = await pan(page); // the whole tree on screen, as coloured boxes
  await page.evaluate(() => {
    const t = window.contreeExplorer.tree;
    t.transform = t.transform.scale(1 / t.transform.k); // k = 1
    t.center(t.roots[0].id);
  });
  await page.waitForTimeout(300);
  out.drawn_zoomed = await page.locator('g.node').count();
  out.pan_zoomed = await pan(page); // at 100 %: readable nodes, redrawn as the view moves on
  out.ok = true;
} catch (e) {
  out.error = String(e && e.message ? e.message : e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
