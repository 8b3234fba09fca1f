// The explorer page: sign-in, the tree, the side panel, live pending nodes, search, import.
import { follow, get, request, token, whenUnauthorized } from './api.js';
import { fill, h, short } from './dom.js';
import { Panel } from './panel.js';
import { commandText, outcomeLabel, Tree } from './tree.js';

const $ = (id) => document.getElementById(id);
const POLL_MS = 1000;

class App {
  constructor() {
    // A fresh SVG per sign-in: the previous account's tree keeps no listener on it.
    const svg = $('svg').cloneNode(false);
    svg.append(document.createElementNS('http://www.w3.org/2000/svg', 'g'));
    svg.firstChild.id = 'viewport';
    $('svg').replaceWith(svg);
    this.tree = new Tree(svg, svg.firstChild, {
      onSelect: (n) => this.panel.show(n),
      onChange: (t) => {
        $('empty').hidden = t.roots.length > 0 || t.pending.size > 0;
        $('status').textContent = `${t.lastRender.nodes} nodes`;
      },
    });
    this.panel = new Panel($('panel'), this);
    fill($('panel'), h('p', { class: 'hint' }, 'Select a node to see what made it.'));
    $('search').value = '';
    $('search-results').hidden = true;
    this.following = new Map(); // import op uuid -> abort controller for its progress stream
    window.contreeExplorer = this; // the tests and the benchmark read render times here
  }

  async start() {
    const who = await get('/v1/whoami');
    $('who').textContent = `token ${short(who.token_uuid)}`;
    await this.tree.loadRoots();
    this.tree.fit();
    this.poll();
  }

  stop() {
    clearTimeout(this.timer);
    this.stopped = true;
    this.tree.dead = true; // a request of the old session that answers late draws nothing
    this.panel.reset();
    for (const a of this.following.values()) a.abort();
  }

  async poll() {
    if (this.stopped) return;
    try {
      const { operations } = await get('/v1/x-contree/tree/active');
      const known = new Set(this.tree.pending.keys());
      const ended = this.tree.setActive(operations);
      for (const op of operations) {
        if (!known.has(op.uuid)) {
          if (op.image_uuid && this.tree.nodes.has(op.image_uuid)) {
            const parent = this.tree.nodes.get(op.image_uuid);
            if (!parent.expanded) await this.tree.expand(parent);
          }
          if (op.kind === 'image_import') this.followImport(op.uuid);
        }
      }
      for (const p of ended) await this.settle(p);
      this.tree.render();
    } catch (e) {
      if (!this.stopped) $('status').textContent = e.message;
    }
    if (this.stopped) return;
    this.timer = setTimeout(() => this.poll(), document.hidden ? POLL_MS * 5 : POLL_MS);
  }

  /** An import's progress events drive its pending node's bar. */
  followImport(opUuid) {
    const abort = new AbortController();
    this.following.set(opUuid, abort);
    follow(opUuid, (type, data) => {
      const p = this.tree.pending.get(opUuid);
      if (type === 'progress' && p) {
        // Bytes say more than layers (a big layer is most of an image); layers when the sizes are unknown.
        p.progress = data.bytes_total > 0 ? { done: data.bytes_fetched, total: data.bytes_total, layers: data }
          : { done: data.layers_done, total: data.layers_total, layers: data };
        this.tree.render();
      }
    }, abort.signal).catch(() => {}).finally(() => this.following.delete(opUuid));
  }

  /** A pending node's operation ended: draw its image (reloading the parent's children) or keep a ghost. */
  async settle(p) {
    let op = null;
    try {
      op = await get(`/v1/x-contree/tree/operation/${p.op.uuid}`);
    } catch { /* gone: the ghost keeps what it knew */ }
    this.tree.finish(p, op);
    if (op && op.result_image_uuid && op.result_image_uuid !== op.image_uuid) {
      if (op.image_uuid && this.tree.nodes.has(op.image_uuid)) await this.tree.refreshChildren(this.tree.nodes.get(op.image_uuid));
      else if (!op.image_uuid) await this.tree.loadRoots();
    }
  }

  /** The page started an operation: draw its pending node at once rather than at the next poll. */
  started(opUuid, parentUuid) {
    clearTimeout(this.timer);
    this.poll();
  }

  /** The panel's live view saw an operation's completion: select its image once the tree has it. */
  async operationEnded(opUuid, completion) {
    const p = this.tree.pending.get(opUuid);
    if (p && p.kind === 'pending') await this.settle(p);
    this.tree.render();
    const img = completion.result_image_uuid && this.tree.nodes.get(completion.result_image_uuid);
    if (img && img.kind === 'image') this.tree.center(img.id);
  }

  async tagChanged(node, image) {
    // Tags are unique per account: a moved tag leaves whichever loaded node had it.
    if (image.tag) for (const n of this.tree.nodes.values()) if (n.kind === 'image' && n.image.tag === image.tag && n.id !== image.uuid) n.image = { ...n.image, tag: null };
    node.image = image;
    this.tree.render();
    this.panel.show(node);
  }

  async reveal(uuid) {
    const node = await get(`/v1/x-contree/tree/${uuid}`);
    await this.tree.reveal(node.path, uuid);
  }
}

let app = null;

function showSignin(message) {
  if (app) app.stop();
  app = null;
  $('app').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message || '';
  $('token').focus();
}

async function signIn(t) {
  token.set(t);
  $('signin').hidden = true;
  $('app').hidden = false;
  app = new App();
  try {
    await app.start();
  } catch (e) {
    if (e.status !== 401) $('status').textContent = e.message;
  }
}

whenUnauthorized((message) => {
  token.clear();
  showSignin(`Token refused: ${message}`);
});

$('signin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const t = $('token').value.trim();
  $('token').value = '';
  if (t) signIn(t);
});
$('signout').addEventListener('click', () => { token.clear(); showSignin(''); });
$('fit').addEventListener('click', () => app && app.tree.fit());

// Search: tag or uuid prefix; choosing a hit opens the path to it.
let searchTimer = null;
$('search').addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(async () => {
    const q = $('search').value.trim();
    const list = $('search-results');
    if (!q || !app) { list.hidden = true; return; }
    try {
      const { nodes } = await get(`/v1/x-contree/tree/search?q=${encodeURIComponent(q)}&limit=20`);
      fill(list, ...(nodes.length ? nodes.map((n) => h('li', {
        dataset: { uuid: n.image.uuid },
        onclick: async () => { list.hidden = true; await app.reveal(n.image.uuid); },
      }, h('b', {}, n.image.tag || short(n.image.uuid)), ' ', h('span', { class: 'mono small' }, short(n.image.uuid)),
      ' ', h('span', { class: 'small' }, `${outcomeLabel(n.operation).text} · ${commandText(n.operation)}`))) : [h('li', { class: 'small' }, 'nothing found')]));
      list.hidden = false;
    } catch (e) {
      fill(list, h('li', { class: 'error' }, e.message));
      list.hidden = false;
    }
  }, 200);
});
$('search').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') { const first = $('search-results').querySelector('li[data-uuid]'); if (first) first.click(); }
  if (e.key === 'Escape') $('search-results').hidden = true;
});

// Import: a registry reference; its pending root shows a progress bar from the import's progress events.
$('import-open').addEventListener('click', () => $('import-dialog').showModal());
$('import-form').addEventListener('submit', async (e) => {
  if (e.submitter && e.submitter.value !== 'ok') return;
  const url = $('import-url').value.trim();
  const tag = $('import-tag').value.trim();
  try {
    await request('POST', '/v1/images/import', { registry: { url }, ...(tag ? { tag } : {}) });
    if (app) app.started();
  } catch (err) {
    $('status').textContent = `import refused: ${err.message}`;
  }
});

if (token.get()) signIn(token.get());
else showSignin('');
