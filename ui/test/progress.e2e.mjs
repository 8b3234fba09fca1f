// The explorer shows a running import as a pending root with a progress bar that moves, then as its image.
// Input (env): BASE_URL, TOKEN_A, OP (the import's operation uuid), SCREENSHOT. Output: one JSON line.
import { launch } from './browser.mjs';

const base = process.env.BASE_URL;
const op = process.env.OP;
const out = { ok: false, fractions: [] };
const browser = await launch();
try {
  const page = await browser.context.newPage();
  await page.goto(`${base}/ui/`);
  await page.locator('#token').fill(process.env.TOKEN_A);
  await page.locator('#signin-form button[type=submit]').click();
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
    return roots.length ? roots.map((g) => g.dataset.uuid) : null;
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
