// An import started from the page's Import dialog shows as a pending root with a progress bar that moves, then as
// its image. Input (env): BASE_URL, TOKEN_A, IMPORT_URL, IMPORT_TAG, SCREENSHOT. Output: one JSON line (with the
// import's operation uuid, read from its pending node).
import { launch } from './browser.mjs';

const base = process.env.BASE_URL;
const out = { ok: false, fractions: [] };
const browser = await launch();
try {
  const page = await browser.context.newPage();
  await page.goto(`${base}/ui/`);
  await page.locator('#token').fill(process.env.TOKEN_A);
  await page.locator('#signin-form button[type=submit]').click();
  await page.locator('#who').filter({ hasText: 'token' }).waitFor({ timeout: 20_000 });
  await page.locator('#import-open').click();
  await page.locator('#import-url').fill(process.env.IMPORT_URL);
  await page.locator('#import-tag').fill(process.env.IMPORT_TAG);
  await page.locator('#import-go').click();
  const pendingNode = page.locator('g.node.pending', { hasText: 'import docker://' });
  await pendingNode.waitFor({ timeout: 20_000 });
  const op = await pendingNode.getAttribute('data-uuid');
  out.op = op;
  const bar = page.locator(`g.node.pending[data-uuid="${op}"] rect.progress`);
  await bar.waitFor({ timeout: 20_000 });
  out.layers = await page.locator(`g.node.pending[data-uuid="${op}"]`).textContent();
  // Sample the bar until the pending node is gone.
  const deadline = Date.now() + 120_000;
  let shot = false;
  while (Date.now() < deadline) {
    const f = await bar.getAttribute('data-fraction', { timeout: 1000 }).catch(() => null);
    if (f === null) break;
    out.fractions.push(Number(f));
    if (!shot && Number(f) > 0.2) { await page.screenshot({ path: process.env.SCREENSHOT }); shot = true; }
    await page.waitForTimeout(200);
  }
  // Then the import's image is a root, drawn as an import.
  const image = await page.waitForFunction((opUuid) => {
    const pending = document.querySelector(`g.node[data-uuid="${opUuid}"]`);
    if (pending) return null;
    const roots = [...document.querySelectorAll('g.node[data-kind="image"][data-outcome="import"]')];
    return roots.length ? roots.map((g) => ({ uuid: g.dataset.uuid, tag: g.dataset.tag })) : null;
  }, op, { timeout: 20_000 }).then((h) => h.jsonValue());
  out.import_nodes = image;
  const moved = out.fractions.some((f) => f > 0 && f < 1);
  if (!moved) throw new Error(`the bar never showed a partial import: ${JSON.stringify(out.fractions)}`);
  out.ok = true;
} catch (e) {
  out.error = String(e && e.message ? e.message : e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);
