// End-to-end check of the explorer in headless Chromium against a real server that the JUnit side filled.
// Input (env): BASE_URL, TOKEN_A, TOKEN_B, EXPECT (JSON: root, ok, nonzero, timed_out, ok_stdout, b_root),
// SCREENSHOT (path of the tree's picture). Output: one JSON line on stdout; exit 0 when every check held.
import { launch } from './browser.mjs';

const base = process.env.BASE_URL;
const expect = JSON.parse(process.env.EXPECT);
const steps = [];
const out = { ok: false, steps };
let step = 'start';
const TIMEOUT = 20_000;

function check(cond, message) {
  if (!cond) throw new Error(`${step}: ${message}`);
}

async function nodeOf(page, uuid) {
  const g = page.locator(`g.node[data-uuid="${uuid}"]`);
  await g.waitFor({ timeout: TIMEOUT });
  return g;
}

async function allUuidsOnPage(page) {
  return page.evaluate(() => [...document.querySelectorAll('[data-uuid]')].map((e) => e.dataset.uuid).join(' ') + ' ' + document.body.innerText);
}

async function signIn(page, token) {
  await page.goto(`${base}/ui/`);
  await page.locator('#token').fill(token);
  await page.locator('#signin-form button[type=submit]').click();
}

const browser = await launch();
try {
  const page = await browser.context.newPage();
  const consoleErrors = [];
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  step = 'wrong token is refused with a message';
  await signIn(page, 'not-a-token');
  await page.locator('#signin-error').filter({ hasText: 'Token refused' }).waitFor({ timeout: TIMEOUT });
  check(await page.locator('#signin').isVisible(), 'the sign-in form is not shown again');
  check(await page.evaluate(() => sessionStorage.getItem('contree.token')) === null, 'a refused token was kept');
  steps.push(step);

  step = 'account B sees only its own images';
  await signIn(page, process.env.TOKEN_B);
  await nodeOf(page, expect.b_root);
  await page.waitForTimeout(300);
  let seen = await allUuidsOnPage(page);
  for (const u of [expect.root, expect.ok, expect.nonzero, expect.timed_out]) check(!seen.includes(u), `A's image ${u} shown to B`);
  await page.locator('#signout').click();
  await page.locator('#signin').waitFor({ timeout: TIMEOUT });
  steps.push(step);

  step = 'sign in as A: the import and its three branches with their outcomes';
  await signIn(page, process.env.TOKEN_A);
  await nodeOf(page, expect.root);
  // Several roots are drawn collapsed: open this one as a person would.
  if (await page.locator(`g.node[data-uuid="${expect.ok}"]`).count() === 0) await page.locator(`[data-toggle="${expect.root}"]`).click();
  const outcomes = {};
  for (const name of ['ok', 'nonzero', 'timed_out']) {
    const g = await nodeOf(page, expect[name]);
    outcomes[name] = await g.getAttribute('data-outcome');
  }
  check(outcomes.ok === 'ok' && outcomes.nonzero === 'nonzero' && outcomes.timed_out === 'timed_out', `outcomes ${JSON.stringify(outcomes)}`);
  check((await (await nodeOf(page, expect.root)).getAttribute('data-outcome')) === 'import', 'the root is not drawn as an import');
  const badges = {};
  for (const name of ['ok', 'nonzero', 'timed_out']) badges[name] = (await page.locator(`g.node[data-uuid="${expect[name]}"] .badge-text`).textContent()).trim();
  check(badges.ok === 'exit 0' && badges.nonzero === `exit ${expect.nonzero_exit}` && badges.timed_out === 'timed out', `badges ${JSON.stringify(badges)}`);
  seen = await allUuidsOnPage(page);
  check(!seen.includes(expect.b_root), "B's image shown to A");
  await page.locator('#fit').click();
  await page.waitForTimeout(300);
  await page.screenshot({ path: process.env.SCREENSHOT });
  out.outcomes = outcomes;
  out.badges = badges;
  steps.push(step);

  step = 'clicking a node shows its stdout and its diff against the parent';
  await (await nodeOf(page, expect.ok)).click();
  await page.locator('#panel-uuid', { hasText: expect.ok }).waitFor({ timeout: TIMEOUT });
  await page.locator('.tab[data-tab="Output"]').click();
  const stdout = await page.locator('#stdout').textContent({ timeout: TIMEOUT });
  check(stdout === expect.ok_stdout, `stdout ${JSON.stringify(stdout)}`);
  await page.locator('.tab[data-tab="Diff"]').click();
  const diff = page.locator('#diff-parent ul.diff');
  await diff.waitFor({ timeout: TIMEOUT });
  const diffText = await diff.textContent();
  check(diffText.includes(`+ ${expect.ok_added}`), `diff against the parent: ${diffText}`);
  out.diff = diffText;
  steps.push(step);

  step = 'a tag set, moved and removed on the page';
  await (await nodeOf(page, expect.nonzero)).click();
  await page.locator('#panel-uuid', { hasText: expect.nonzero }).waitFor({ timeout: TIMEOUT });
  await page.locator('#tag-input').fill(expect.new_tag);
  await page.locator('#tag-set').click();
  await page.locator('#panel-title', { hasText: expect.new_tag }).waitFor({ timeout: TIMEOUT });
  await page.locator(`g.node[data-uuid="${expect.nonzero}"][data-tag="${expect.new_tag}"]`).waitFor({ timeout: TIMEOUT });
  // Moving it to another node takes it off the first; removing it leaves it nowhere; then it goes back.
  await (await nodeOf(page, expect.timed_out)).click();
  await page.locator('#panel-uuid', { hasText: expect.timed_out }).waitFor({ timeout: TIMEOUT });
  await page.locator('#tag-input').fill(expect.new_tag);
  await page.locator('#tag-set').click();
  await page.locator(`g.node[data-uuid="${expect.timed_out}"][data-tag="${expect.new_tag}"]`).waitFor({ timeout: TIMEOUT });
  check(await page.locator(`g.node[data-uuid="${expect.nonzero}"]`).getAttribute('data-tag') === '', 'a moved tag stayed on its old node');
  await page.locator('#tag-remove').click();
  await page.locator(`g.node[data-uuid="${expect.timed_out}"][data-tag=""]`).waitFor({ timeout: TIMEOUT });
  check(await page.locator(`g.node[data-tag="${expect.new_tag}"]`).count() === 0, 'a removed tag is still drawn');
  await (await nodeOf(page, expect.nonzero)).click();
  await page.locator('#panel-uuid', { hasText: expect.nonzero }).waitFor({ timeout: TIMEOUT });
  await page.locator('#tag-input').fill(expect.new_tag);
  await page.locator('#tag-set').click();
  await page.locator(`g.node[data-uuid="${expect.nonzero}"][data-tag="${expect.new_tag}"]`).waitFor({ timeout: TIMEOUT });
  steps.push(step);

  step = 'search by tag prefix jumps to the node';
  await page.locator('#search').fill(expect.new_tag.slice(0, 6));
  await page.locator(`#search-results li[data-uuid="${expect.nonzero}"]`).click({ timeout: TIMEOUT });
  await page.locator(`g.node.selected[data-uuid="${expect.nonzero}"]`).waitFor({ timeout: TIMEOUT });
  await page.locator('#search').fill(expect.b_root.slice(0, 8));
  await page.locator('#search-results li', { hasText: 'nothing found' }).waitFor({ timeout: TIMEOUT });
  steps.push(step);

  step = 'running a command from the page adds a child node with its output';
  await (await nodeOf(page, expect.ok)).click();
  await page.locator('#panel-uuid', { hasText: expect.ok }).waitFor({ timeout: TIMEOUT });
  const drawnBefore = await page.evaluate(() => [...document.querySelectorAll('g.node')].map((n) => n.dataset.uuid));
  await page.locator('.tab[data-tab="Run"]').click();
  await page.locator('#run-command').fill(expect.run_command);
  await page.locator('#run-go').click();
  await page.locator('#live-state[data-done="SUCCESS"]').waitFor({ timeout: 60_000 });
  const live = await page.locator('#live-output').textContent();
  check(live.includes(expect.run_stdout), `live output ${JSON.stringify(live)}`);
  // The new image's node: one not drawn before the run, showing the command.
  const newUuid = await page.waitForFunction(({ known, text }) => {
    const g = [...document.querySelectorAll('g.node[data-kind="image"]')]
      .find((n) => !known.includes(n.dataset.uuid) && n.textContent.includes(text));
    return g ? g.dataset.uuid : null;
  }, { known: drawnBefore, text: expect.run_command.slice(0, 20) }, { timeout: TIMEOUT }).then((h) => h.jsonValue());
  const child = page.locator(`g.node[data-uuid="${newUuid}"]`);
  check((await child.getAttribute('data-outcome')) === 'ok', 'the new node is not exit 0');
  await child.click();
  await page.locator('#panel-uuid', { hasText: newUuid }).waitFor({ timeout: TIMEOUT });
  await page.locator('.tab[data-tab="Output"]').click();
  const childStdout = await page.locator('#stdout').textContent({ timeout: TIMEOUT });
  check(childStdout.includes(expect.run_stdout), `new node's stdout ${JSON.stringify(childStdout)}`);
  out.new_image = newUuid;
  steps.push(step);

  step = 'cancel a running operation from the page';
  await (await nodeOf(page, expect.ok)).click();
  await page.locator('#panel-uuid', { hasText: expect.ok }).waitFor({ timeout: TIMEOUT });
  await page.locator('.tab[data-tab="Run"]').click();
  await page.locator('#run-command').fill('sleep 30');
  await page.locator('#run-go').click();
  const pending = page.locator('g.node.pending', { hasText: 'sleep 30' });
  await pending.waitFor({ timeout: TIMEOUT });
  const cancelled = await pending.getAttribute('data-uuid');
  await pending.click();
  await page.locator('#cancel-op').click({ timeout: TIMEOUT });
  const ghost = page.locator(`g.node.ghost[data-uuid="${cancelled}"]`);
  await ghost.waitFor({ timeout: TIMEOUT });
  const ghostBadge = (await ghost.locator('.badge-text').textContent()).trim();
  check(ghostBadge === 'cancelled', `the cancelled node says ${ghostBadge}`);
  out.cancelled = cancelled;
  steps.push(step);

  step = 'no page errors';
  seen = await allUuidsOnPage(page);
  check(!seen.includes(expect.b_root), "B's image shown to A");
  check(consoleErrors.length === 0, `page errors: ${consoleErrors.join('; ')}`);
  out.render = await page.evaluate(() => window.contreeExplorer.tree.lastRender);
  steps.push(step);
  out.ok = true;
} catch (e) {
  out.error = String(e && e.message ? e.message : e);
  out.step = step;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);
