// The image tree: a model loaded lazily by page from /v1/x-contree/tree/*, laid out top-down with d3-hierarchy,
// drawn as SVG, panned and zoomed with d3-zoom. Pending operations are drawn as dashed nodes under their input image.
import { hierarchy, tree as treeLayout } from 'd3-hierarchy';
import { select } from 'd3-selection';
import { zoom, zoomIdentity } from 'd3-zoom';
import { get } from './api.js';
import { clip, s, short } from './dom.js';

const W = 184, H = 62, GAP_X = 20, GAP_Y = 46;
/** Below this zoom, node text is too small to read: nodes are drawn as coloured boxes. */
const DETAIL_K = 0.35;
const PAGE = 100;
const TREE = '/v1/x-contree/tree';

export function outcomeLabel(op) {
  if (!op) return { cls: 'root', text: 'root' };
  switch (op.outcome) {
    case 'import': return { cls: 'import', text: 'import' };
    case 'ok': return { cls: 'ok', text: 'exit 0' };
    case 'nonzero': return { cls: 'nonzero', text: op.exit_code === -1 && op.signal > 0 ? `signal ${op.signal}` : `exit ${op.exit_code}` };
    case 'timed_out': return { cls: 'timed_out', text: 'timed out' };
    case 'failed': return { cls: 'failed', text: 'failed' };
    case 'cancelled': return { cls: 'failed', text: 'cancelled' };
    case 'running': return { cls: 'running', text: op.status === 'PENDING' ? 'queued' : 'running' };
    default: return { cls: 'root', text: op.outcome || '?' };
  }
}

export function commandText(op) {
  if (!op || !op.command) return '';
  const args = (op.args || []).join(' ');
  return op.shell && args === '' ? op.command : `${op.command}${args ? ' ' + args : ''}`;
}

export class Tree {
  constructor(svg, viewport, { onSelect, onChange }) {
    this.svg = svg;
    this.viewport = viewport;
    this.onSelect = onSelect;
    this.onChange = onChange || (() => {});
    this.nodes = new Map(); // id -> node; an image's id is its uuid, a pending node's is "op:<uuid>"
    this.roots = [];
    this.rootsNext = 0;
    this.pending = new Map(); // op uuid -> pending node
    this.selected = null;
    this.compare = null;
    this.positions = new Map();
    this.zoom = zoom().scaleExtent([0.05, 3]).on('zoom', (e) => {
      if (e.sourceEvent) this.userMoved = true;
      this.transform = e.transform;
      viewport.setAttribute('transform', e.transform.toString());
      this.redrawIfNeeded();
    });
    this.transform = zoomIdentity;
    select(svg).call(this.zoom).on('dblclick.zoom', null);
    svg.addEventListener('click', (e) => this.click(e));
  }

  /** A node record for an API node ({image, children, operation}); merged into the existing one if known. */
  upsert(api, parent) {
    const id = api.image.uuid;
    let n = this.nodes.get(id);
    if (!n) {
      n = { id, kind: 'image', children: [], nextOffset: 0, loaded: false, expanded: false };
      this.nodes.set(id, n);
    }
    n.image = api.image;
    n.op = api.operation;
    n.childCount = api.children;
    n.parent = parent;
    n.depth = parent ? parent.depth + 1 : 0;
    return n;
  }

  async loadRoots() {
    this.roots = [];
    this.rootsNext = 0;
    await this.moreRoots();
  }

  async moreRoots() {
    if (this.rootsNext === null) return;
    const page = await get(`${TREE}/roots?limit=${PAGE}&offset=${this.rootsNext}`);
    for (const api of page.nodes) {
      const n = this.upsert(api, null);
      if (!this.roots.includes(n)) this.roots.push(n);
    }
    this.rootsNext = page.next_offset;
    // A single fresh root opens by itself: the usual start is one import.
    if (this.roots.length === 1 && !this.roots[0].loaded && this.roots[0].childCount > 0) await this.expand(this.roots[0]);
    this.render();
  }

  async expand(n) {
    n.expanded = true;
    if (!n.loaded) {
      n.children = [];
      n.nextOffset = 0;
      n.loaded = true;
      await this.moreChildren(n, false);
    }
    this.render();
  }

  async moreChildren(n, render = true) {
    if (n.nextOffset === null) return;
    const page = await get(`${TREE}/${n.id}/children?limit=${PAGE}&offset=${n.nextOffset}`);
    for (const api of page.nodes) {
      const c = this.upsert(api, n);
      if (!n.children.includes(c)) n.children.push(c);
    }
    n.nextOffset = page.next_offset;
    n.childCount = Math.max(n.childCount || 0, n.children.length);
    if (render) this.render();
  }

  /** Reloads what was loaded of a node's children (after a child image appeared). */
  async refreshChildren(n) {
    const had = Math.max(PAGE, n.children.length + 1);
    n.children = [];
    n.nextOffset = 0;
    n.loaded = true;
    n.expanded = true;
    while (n.nextOffset !== null && n.children.length < had) await this.moreChildren(n, false);
    n.childCount = Math.max(n.childCount || 0, n.children.length);
    this.render();
  }

  /** Expands every node, page by page, up to {@code max} nodes (the benchmark, and a person's "show me everything"). */
  async expandAll(max = 5000) {
    const queue = [...this.roots];
    let seen = 0;
    while (queue.length && seen < max) {
      const n = queue.shift();
      seen++;
      if (n.childCount > 0) {
        n.expanded = true;
        if (!n.loaded) { n.loaded = true; n.children = []; n.nextOffset = 0; }
        while (n.nextOffset !== null) await this.moreChildren(n, false);
        queue.push(...n.children);
      }
    }
    this.render();
  }

  collapse(n) {
    n.expanded = false;
    this.render();
  }

  /** Opens every ancestor of a node (root first, as the search route gives them), loading pages until each is found. */
  async reveal(path, uuid) {
    let parent = null;
    for (const id of [...path, uuid]) {
      let n = this.nodes.get(id);
      let guard = 0;
      if (parent === null) {
        while (!n && this.rootsNext !== null && guard++ < 100) { await this.moreRoots(); n = this.nodes.get(id); }
      } else {
        if (!parent.loaded) await this.expand(parent);
        parent.expanded = true;
        while (!parent.children.some((c) => c.id === id) && parent.nextOffset !== null && guard++ < 1000) await this.moreChildren(parent, false);
        n = this.nodes.get(id);
      }
      if (!n) break;
      parent = n;
    }
    this.render();
    const target = this.nodes.get(uuid);
    if (target) {
      this.select(target);
      this.center(target.id);
    }
    return target;
  }

  /** The account's unfinished operations: pending nodes come and go with them. Returns the ones that ended. */
  setActive(ops) {
    const seen = new Set();
    for (const op of ops) {
      seen.add(op.uuid);
      let p = this.pending.get(op.uuid);
      if (!p) {
        p = { id: `op:${op.uuid}`, kind: 'pending', children: [], expanded: false, childCount: 0 };
        this.pending.set(op.uuid, p);
        this.nodes.set(p.id, p);
      }
      p.op = op;
      p.parentId = op.kind === 'instance' ? op.image_uuid : null;
    }
    const ended = [];
    for (const [uuid, p] of this.pending) {
      if (!seen.has(uuid) && p.kind === 'pending') ended.push(p);
    }
    return ended;
  }

  /** A pending node whose operation ended: gone once its image is drawn, else kept as a ghost showing the outcome. */
  finish(p, op) {
    if (op && op.result_image_uuid && op.result_image_uuid !== op.image_uuid) {
      this.pending.delete(op.uuid);
      this.nodes.delete(p.id);
      if (this.selected === p) this.selected = null;
    } else {
      p.kind = 'ghost';
      if (op) p.op = op;
    }
  }

  pendingUnder(id) {
    const out = [];
    for (const p of this.pending.values()) if (p.parentId === id) out.push(p);
    return out;
  }

  visibleChildren(n) {
    if (n.virtual) {
      const list = [...this.roots, ...this.pendingUnder(null)];
      if (this.rootsNext !== null && this.roots.length > 0) list.push({ id: 'more:roots', kind: 'more', of: null });
      return list;
    }
    if (n.kind !== 'image') return [];
    const pend = this.pendingUnder(n.id);
    if (!n.expanded) return pend;
    // The child with the most descendants goes in the middle: a long mainline then runs straight down instead of
    // drifting sideways by a row of siblings at every step.
    const kids = [...n.children];
    let heavy = -1;
    kids.forEach((c, i) => { if ((c.childCount || 0) > 0 && (heavy < 0 || c.childCount > kids[heavy].childCount)) heavy = i; });
    // With an even count it cannot be exactly central: the extra sibling goes left and right by turns down the levels.
    const middle = (n.depth % 2 ? Math.ceil : Math.floor)((kids.length - 1) / 2);
    if (heavy >= 0 && kids.length > 2) kids.splice(middle, 0, ...kids.splice(heavy, 1));
    const list = [...kids, ...pend];
    if (n.nextOffset !== null && n.loaded) list.push({ id: `more:${n.id}`, kind: 'more', of: n });
    return list;
  }

  /** Lays the tree out (every visible node) and draws what is in view. */
  render() {
    if (this.dead) return;
    const t0 = performance.now();
    const rootData = { virtual: true, id: 'virtual' };
    const root = hierarchy(rootData, (d) => this.visibleChildren(d));
    treeLayout().nodeSize([W + GAP_X, H + GAP_Y]).separation((a, b) => (a.parent === b.parent ? 1 : 1.15))(root);
    this.positions.clear();
    this.laid = [];
    for (const d of root.descendants()) {
      if (d.data.virtual) continue;
      this.positions.set(d.data.id, { x: d.x, y: d.y });
      this.laid.push(d);
    }
    this.draw();
    this.lastRender = { ms: performance.now() - t0, nodes: this.laid.length, drawn: this.drawnCount };
    // Until the user pans or zooms, the first nodes to appear are brought into view.
    if (!this.fitted && !this.userMoved && this.laid.length > 0) this.fit();
    this.onChange(this);
  }

  /** The part of the tree's plane on screen, in layout coordinates, grown by {@code margin} screens each side. */
  view(margin) {
    const r = this.svg.getBoundingClientRect();
    const w = r.width || 1400, h = r.height || 900;
    const { x, y, k } = this.transform;
    return { x0: (-x - margin * w) / k, x1: (w - x + margin * w) / k, y0: (-y - margin * h) / k, y1: (h - y + margin * h) / k };
  }

  /**
   * Draws the laid-out nodes within a screen of the view (SVG for what is off screen only costs style and paint),
   * with text only when zoomed in enough to read it. Panning redraws when the view leaves what was drawn.
   */
  draw() {
    if (this.dead || !this.laid) return;
    const area = this.view(1);
    const detail = this.transform.k >= DETAIL_K;
    const inside = (x, y) => x + W / 2 >= area.x0 && x - W / 2 <= area.x1 && y + H >= area.y0 && y <= area.y1;
    const links = s('g', { class: 'links' });
    const nodes = s('g', { class: detail ? 'nodes' : 'nodes coarse' });
    let drawn = 0;
    for (const d of this.laid) {
      const here = inside(d.x, d.y);
      const p = d.parent && !d.parent.data.virtual ? d.parent : null;
      if (p && (here || inside(p.x, p.y))) {
        const x0 = p.x, y0 = p.y + H, x1 = d.x, y1 = d.y, my = (y0 + y1) / 2;
        links.append(s('path', { d: `M${x0},${y0}C${x0},${my} ${x1},${my} ${x1},${y1}`, class: d.data.kind === 'image' ? 'link' : 'link dashed' }));
      }
      if (!here) continue;
      nodes.append(detail ? this.drawNode(d.data, d.x, d.y) : this.drawCoarse(d.data, d.x, d.y));
      drawn++;
    }
    this.viewport.replaceChildren(links, nodes);
    this.drawn = { area: this.view(0.5), detail };
    this.drawnCount = drawn;
  }

  /** After a pan or zoom: redraw when the screen left the drawn area or crossed the level of detail. */
  redrawIfNeeded() {
    if (!this.drawn || this.redrawQueued) return;
    const v = this.view(0);
    const a = this.drawn.area;
    const detail = this.transform.k >= DETAIL_K;
    if (detail === this.drawn.detail && v.x0 >= a.x0 && v.x1 <= a.x1 && v.y0 >= a.y0 && v.y1 <= a.y1) return;
    this.redrawQueued = true;
    requestAnimationFrame(() => { this.redrawQueued = false; this.draw(); });
  }

  /** A node too small to read: its outcome's colour only (still clickable). */
  drawCoarse(n, x, y) {
    const label = n.kind === 'image' ? outcomeLabel(n.op) : outcomeLabel(n.op && n.kind === 'pending' ? { ...n.op, outcome: 'running' } : n.op);
    const cls = ['node', n.kind, `o-${label.cls}`, `c-${label.cls}`];
    if (this.selected === n) cls.push('selected');
    const uuid = n.kind === 'image' ? n.image.uuid : n.kind === 'more' ? null : n.op.uuid;
    return s('g', { class: cls.join(' '), transform: `translate(${x - W / 2},${y})`,
      dataset: n.kind === 'more' ? { more: n.of ? n.of.id : 'roots' } : { id: n.id, uuid, outcome: label.cls, kind: n.kind } },
    s('rect', { width: W, height: n.kind === 'more' ? 30 : H, rx: 7 }));
  }

  drawNode(n, x, y) {
    if (n.kind === 'more') {
      return s('g', { class: 'node more', transform: `translate(${x - W / 2},${y})`, dataset: { more: n.of ? n.of.id : 'roots' } },
        s('rect', { width: W, height: 30, rx: 6 }),
        s('text', { x: W / 2, y: 19, 'text-anchor': 'middle' }, 'load more…'));
    }
    const op = n.op;
    const label = n.kind === 'image' ? outcomeLabel(op) : outcomeLabel(op && n.kind === 'pending' ? { ...op, outcome: 'running' } : op);
    const cls = ['node', n.kind, `o-${label.cls}`];
    if (this.selected === n) cls.push('selected');
    if (this.compare === n) cls.push('compare');
    const uuid = n.kind === 'image' ? n.image.uuid : op.uuid;
    const title = n.kind === 'image' ? (n.image.tag || short(uuid)) : (n.kind === 'ghost' ? 'no image' : (op.kind === 'image_import' ? 'importing' : 'pending'));
    const sub = n.kind === 'image' ? (n.image.tag ? short(uuid) : '') : `op ${short(uuid)}`;
    const g = s('g', {
      class: cls.join(' '), transform: `translate(${x - W / 2},${y})`,
      dataset: { id: n.id, uuid, outcome: label.cls, kind: n.kind, tag: n.image && n.image.tag ? n.image.tag : '' },
    },
    s('title', {}, `${uuid}\n${commandText(op)}`),
    s('rect', { width: W, height: H, rx: 7 }),
    s('text', { x: 10, y: 18, class: 'title' }, clip(title, 12)),
    s('text', { x: 10, y: 34, class: 'sub' }, sub),
    s('text', { x: 10, y: 51, class: 'cmd' }, clip(commandText(op), 25)),
    s('g', { class: `badge b-${label.cls}`, transform: `translate(${W - 74},7)` },
      s('rect', { width: 66, height: 16, rx: 8 }),
      s('text', { x: 33, y: 12, 'text-anchor': 'middle', class: 'badge-text' }, label.text)));
    if (n.progress && n.kind === 'pending') {
      const f = n.progress.total > 0 ? n.progress.done / n.progress.total : 0;
      // In a group of their own: the node's own box styles (`.node > rect`) must not reach the bar.
      g.append(s('g', { class: 'bar' },
        s('rect', { class: 'progress-bg', x: 10, y: 54, width: W - 20, height: 5, rx: 2 }),
        s('rect', { class: 'progress', x: 10, y: 54, width: Math.max(2, (W - 20) * Math.min(1, f)), height: 5, rx: 2,
          dataset: { fraction: f.toFixed(3) } })),
        s('text', { x: W - 10, y: 34, 'text-anchor': 'end', class: 'sub' }, `${n.progress.layers.layers_done}/${n.progress.layers.layers_total} layers`));
    }
    const kids = n.kind === 'image' ? (n.childCount || 0) : 0;
    if (kids > 0) {
      g.append(s('g', { class: 'toggle', transform: `translate(${W / 2},${H})`, dataset: { toggle: n.id } },
        s('circle', { r: 8 }),
        s('text', { y: 4, 'text-anchor': 'middle' }, n.expanded ? '−' : '+')),
      n.expanded ? null : s('text', { x: W / 2 + 12, y: H + 4, class: 'count' }, String(kids)));
    }
    return g;
  }

  async click(e) {
    const toggle = e.target.closest('[data-toggle]');
    if (toggle) {
      const n = this.nodes.get(toggle.dataset.toggle);
      if (n.expanded) this.collapse(n);
      else await this.expand(n);
      return;
    }
    const more = e.target.closest('[data-more]');
    if (more) {
      if (more.dataset.more === 'roots') await this.moreRoots();
      else await this.moreChildren(this.nodes.get(more.dataset.more));
      return;
    }
    const g = e.target.closest('g.node');
    if (g) this.select(this.nodes.get(g.dataset.id), e);
  }

  select(n, e) {
    if (!n) return;
    if (this.picking) {
      this.picking(n);
      this.picking = null;
      return;
    }
    this.selected = n;
    this.render();
    this.onSelect(n, e);
  }

  /** The next click on a node picks it (for a diff) instead of selecting it. */
  pick(fn) {
    this.picking = (n) => { this.compare = n; this.render(); fn(n); };
  }

  center(id) {
    const p = this.positions.get(id);
    if (!p) return;
    const { width, height } = this.svg.getBoundingClientRect();
    const k = this.transform.k;
    select(this.svg).call(this.zoom.transform, zoomIdentity.translate(width / 2 - p.x * k, height / 3 - p.y * k).scale(k));
  }

  fit() {
    if (this.positions.size === 0) return;
    this.fitted = true;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const p of this.positions.values()) {
      x0 = Math.min(x0, p.x - W / 2); x1 = Math.max(x1, p.x + W / 2);
      y0 = Math.min(y0, p.y); y1 = Math.max(y1, p.y + H);
    }
    const { width, height } = this.svg.getBoundingClientRect();
    const k = Math.min(1.2, 0.92 * Math.min(width / (x1 - x0 || 1), height / (y1 - y0 || 1)));
    const t = zoomIdentity.translate(width / 2 - k * (x0 + x1) / 2, 24 - k * y0).scale(k);
    select(this.svg).call(this.zoom.transform, t);
  }

  /** Pans by (dx, dy) screen pixels (the benchmark drives this). */
  panBy(dx, dy) {
    select(this.svg).call(this.zoom.translateBy, dx / this.transform.k, dy / this.transform.k);
  }
}
