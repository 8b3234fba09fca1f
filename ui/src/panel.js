// The side panel for the selected node: its operation, output, files, diffs, event log and actions.
import { asText, bytes, follow, get, reprBytes, request } from './api.js';
import { commandText, outcomeLabel } from './tree.js';
import { bytesText, fill, h, short } from './dom.js';

const VIEW_MAX = 1 << 20; // files shown inline; bigger ones only download
const TABS = ['Operation', 'Output', 'Files', 'Diff', 'Events', 'Run'];

export class Panel {
  constructor(el, app) {
    this.el = el;
    this.app = app;
    this.tab = 'Operation';
    this.abort = null;
  }

  /** Stops whatever the previous selection was streaming. */
  reset() {
    if (this.abort) this.abort.abort();
    this.abort = new AbortController();
    return this.abort.signal;
  }

  show(n) {
    if (this.app.stopped) return;
    const signal = this.reset();
    this.node = n;
    if (n.kind !== 'image') return this.showPending(n, signal);
    const img = n.image;
    const label = outcomeLabel(n.op);
    const tagInput = h('input', { id: 'tag-input', placeholder: 'tag', value: img.tag || '', 'aria-label': 'tag' });
    const body = h('div', { class: 'tab-body', id: 'tab-body' });
    fill(this.el, 
      h('div', { class: 'panel-head' },
        h('h2', { id: 'panel-title' }, img.tag || short(img.uuid), ' ', h('span', { class: `badge-inline b-${label.cls}` }, label.text)),
        h('div', { class: 'mono small', id: 'panel-uuid' }, img.uuid),
        h('div', { class: 'small' }, `created ${img.created_at.slice(0, 19).replace('T', ' ')} UTC · size ${bytesText(img.size)}`,
          img.parent_uuid ? [' · parent ', h('a', { href: '#', onclick: (e) => { e.preventDefault(); this.app.reveal(img.parent_uuid); } }, short(img.parent_uuid))] : ' · root')),
      h('form', { class: 'tag-form', onsubmit: (e) => { e.preventDefault(); this.setTag(tagInput.value.trim()); } },
        tagInput, h('button', { type: 'submit', id: 'tag-set' }, img.tag ? 'Move tag here' : 'Set tag'),
        img.tag ? h('button', { type: 'button', id: 'tag-remove', onclick: () => this.removeTag() }, 'Remove tag') : null),
      h('p', { class: 'error', id: 'panel-error', role: 'alert' }),
      h('nav', { class: 'tabs' }, TABS.map((t) => h('button', {
        type: 'button', class: t === this.tab ? 'tab active' : 'tab', dataset: { tab: t },
        onclick: () => { this.tab = t; this.show(n); },
      }, t))),
      body);
    this.renderTab(n, body, signal).catch((e) => this.error(e));
  }

  error(e) {
    const el = this.el.querySelector('#panel-error');
    if (el) el.textContent = e && e.message ? e.message : String(e);
  }

  async renderTab(n, body, signal) {
    const op = n.op ? await get(`/v1/operations/${n.op.uuid}`, signal) : null;
    switch (this.tab) {
      case 'Operation': return fill(body, operationView(op));
      case 'Output': return fill(body, outputView(op));
      case 'Files': return this.files(n.image.uuid, '/', body, signal);
      case 'Diff': return this.diffs(n, body, signal);
      case 'Events': return this.events(op, body, signal);
      case 'Run': return fill(body, this.runForm(n));
    }
  }

  async setTag(tag) {
    if (!tag) return this.error(new Error('type a tag first'));
    try {
      const img = await request('PATCH', `/v1/images/${this.node.image.uuid}/tag`, { tag });
      await this.app.tagChanged(this.node, img);
    } catch (e) { this.error(e); }
  }

  async removeTag() {
    try {
      const img = await request('DELETE', `/v1/images/${this.node.image.uuid}/tag`);
      await this.app.tagChanged(this.node, img);
    } catch (e) { this.error(e); }
  }

  async files(uuid, path, body, signal) {
    const listing = await get(`/v1/inspect/${uuid}/list?path=${encodeURIComponent(path)}&limit=1000`, signal);
    const viewer = h('div', { class: 'viewer', id: 'file-viewer' });
    const rows = listing.files.map((f) => {
      const name = f.path.split('/').filter(Boolean).pop() || f.path;
      const full = (path.endsWith('/') ? path : path + '/') + name;
      const open = f.is_dir
        ? h('a', { href: '#', class: 'dir', onclick: (e) => { e.preventDefault(); this.files(uuid, full, body, signal).catch((x) => this.error(x)); } }, name + '/')
        : h('a', { href: '#', class: 'file', onclick: (e) => { e.preventDefault(); this.viewFile(uuid, full, f, viewer).catch((x) => this.error(x)); } }, name);
      return h('tr', {}, h('td', { class: 'mono' }, f.is_symlink ? [name, ' → ', f.symlink_to] : open),
        h('td', { class: 'num' }, f.is_dir ? '' : bytesText(f.size)), h('td', { class: 'mono small' }, (f.mode >>> 0).toString(8).slice(-4)));
    });
    const parent = path === '/' ? null : path.replace(/\/[^/]+\/?$/, '') || '/';
    fill(body, 
      h('div', { class: 'crumbs mono' }, 'path ', path, parent ? [' · ', h('a', { href: '#', onclick: (e) => { e.preventDefault(); this.files(uuid, parent, body, signal); } }, 'up')] : null),
      h('table', { class: 'files', id: 'file-list' }, rows),
      listing.next_offset != null ? h('p', { class: 'small' }, `first 1000 of ${listing.total} entries`) : null,
      viewer);
  }

  async viewFile(uuid, path, entry, viewer) {
    const url = `/v1/inspect/${uuid}/download?path=${encodeURIComponent(path)}`;
    const download = h('button', { type: 'button', onclick: async () => {
      const data = await bytes(url);
      const a = h('a', { href: URL.createObjectURL(new Blob([data])), download: path.split('/').pop() });
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    } }, 'Download');
    if (!entry.is_regular || entry.size > VIEW_MAX) {
      fill(viewer, h('div', { class: 'mono' }, path, ' ', download), h('p', {}, entry.is_regular ? `${bytesText(entry.size)}: too big to show here` : 'not a regular file'));
      return;
    }
    const text = asText(await bytes(url));
    fill(viewer, h('div', { class: 'mono' }, path, ' ', download),
      text === null ? h('p', {}, `binary (${bytesText(entry.size)})`) : h('pre', { class: 'out', id: 'file-text' }, text));
  }

  async diffs(n, body, signal) {
    const img = n.image;
    const parentDiff = h('div', { id: 'diff-parent' });
    const otherDiff = h('div', { id: 'diff-other' });
    const pick = h('button', { type: 'button', id: 'diff-pick', onclick: () => {
      pick.textContent = 'click a node in the tree…';
      this.app.tree.pick(async (other) => {
        pick.textContent = 'Compare with another node…';
        if (other.kind !== 'image') return;
        fill(otherDiff, h('h3', {}, `from ${other.image.tag || short(other.image.uuid)} to this`), h('p', {}, 'computing…'));
        try {
          const d = await get(`/v1/inspect/${other.image.uuid}/diff/${img.uuid}`);
          fill(otherDiff, h('h3', {}, `from ${other.image.tag || short(other.image.uuid)} to this`), diffView(d));
        } catch (e) { fill(otherDiff, h('p', { class: 'error' }, e.message)); }
      });
    } }, 'Compare with another node…');
    fill(body, h('h3', {}, 'Against its parent'), parentDiff, h('p', {}, pick), otherDiff);
    if (!img.parent_uuid) { parentDiff.append(h('p', {}, 'a root: no parent')); return; }
    parentDiff.append(h('p', {}, 'computing…'));
    const d = await get(`/v1/inspect/${img.parent_uuid}/diff/${img.uuid}`, signal);
    fill(parentDiff, diffView(d));
  }

  async events(op, body, signal) {
    if (!op) { fill(body, h('p', {}, 'no operation made this image')); return; }
    const list = h('ol', { class: 'events mono small', id: 'event-log' });
    fill(body, list);
    await follow(op.uuid, (type, data, id, env) => list.append(eventLine(type, data, id, env)), signal);
  }

  runForm(n) {
    const cmd = h('input', { id: 'run-command', placeholder: 'command, e.g. make test', required: true, 'aria-label': 'command' });
    const shell = h('input', { type: 'checkbox', id: 'run-shell', checked: true });
    const disposable = h('input', { type: 'checkbox', id: 'run-disposable' });
    const timeout = h('input', { type: 'number', id: 'run-timeout', min: 1, value: 60, 'aria-label': 'timeout' });
    const live = h('div', { id: 'run-live' });
    const form = h('form', { class: 'run', onsubmit: (e) => {
      e.preventDefault();
      this.run(n, { command: cmd.value, shell: shell.checked, disposable: disposable.checked, timeout: Number(timeout.value) || 60 }, live)
        .catch((x) => this.error(x));
    } },
    h('label', {}, 'Command ', cmd),
    h('label', {}, shell, ' through /bin/sh -c'),
    h('label', {}, disposable, ' disposable (keep no image)'),
    h('label', {}, 'timeout (s) ', timeout),
    h('button', { type: 'submit', id: 'run-go' }, 'Run from this node'));
    return h('div', {}, form, live);
  }

  async run(n, spec, live) {
    const accepted = await request('POST', '/v1/instances', { ...spec, image: n.image.uuid });
    const signal = this.abort.signal;
    this.app.started(accepted.uuid, n.image.uuid);
    fill(live, liveView(accepted.uuid, signal, this.app, (done) => this.app.operationEnded(accepted.uuid, done)));
  }

  showPending(n, signal) {
    const op = n.op;
    const label = outcomeLabel(n.kind === 'pending' ? { ...op, outcome: 'running' } : op);
    fill(this.el, 
      h('div', { class: 'panel-head' },
        h('h2', { id: 'panel-title' }, n.kind === 'ghost' ? 'no image kept' : 'pending', ' ', h('span', { class: `badge-inline b-${label.cls}` }, label.text)),
        h('div', { class: 'mono small' }, `operation ${op.uuid}`),
        h('div', { class: 'small' }, commandText(op))),
      h('p', { class: 'error', id: 'panel-error', role: 'alert' }),
      n.kind === 'pending' ? h('button', { type: 'button', id: 'cancel-op', onclick: async () => {
        try { await request('DELETE', `/v1/operations/${op.uuid}`); } catch (e) { this.error(e); }
      } }, 'Cancel operation') : null,
      op.error ? h('p', { class: 'error' }, op.error) : null,
      liveView(op.uuid, signal, this.app, () => {}));
  }
}

/** Output of an operation as it happens: stdout and stderr from the event stream, and the exit when it comes. */
function liveView(opUuid, signal, app, onDone) {
  const out = h('pre', { class: 'out', id: 'live-output' });
  const state = h('p', { class: 'small', id: 'live-state' }, `operation ${short(opUuid)}: waiting…`);
  const progress = h('progress', { id: 'import-progress', max: 1, value: 0, hidden: true });
  const decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
  follow(opUuid, (type, data) => {
    if (type === 'stdout' || type === 'stderr') {
      const text = decoders[type].decode(reprBytes(data), { stream: true });
      out.append(type === 'stderr' ? h('span', { class: 'stderr' }, text) : text);
    } else if (type === 'spawn') state.textContent = `running: ${data.command}`;
    else if (type === 'exit') state.textContent = data.timed_out ? 'timed out' : `exit ${data.code}${data.signal > 0 ? `, signal ${data.signal}` : ''}`;
    else if (type === 'progress') {
      progress.hidden = false;
      progress.max = data.bytes_total > 0 ? data.bytes_total : Math.max(1, data.layers_total);
      progress.value = data.bytes_total > 0 ? data.bytes_fetched : data.layers_done;
      state.textContent = `importing: ${data.layers_done}/${data.layers_total} layers, ${bytesText(data.bytes_fetched)} fetched, ${bytesText(data.bytes_unpacked)} unpacked`;
    } else if (type === 'completion') {
      state.textContent = `${state.textContent} · ${data.status}${data.error ? `: ${data.error}` : ''}`;
      state.dataset.done = data.status;
      onDone(data);
    }
  }, signal).catch((e) => { state.textContent = e.message; });
  return h('div', { class: 'live' }, state, progress, out);
}

function operationView(op) {
  if (!op) return h('p', {}, 'No operation made this image (a root recorded without one).');
  const m = op.metadata || {};
  const rows = [['operation', op.uuid], ['kind', op.kind], ['status', op.status]];
  if (op.kind === 'image_import') {
    rows.push(['source', m.registry && m.registry.url], ['tag', m.tag], ['timeout', `${m.timeout} s`]);
  } else {
    const st = m.result && m.result.state;
    rows.push(['command', m.command], ['args', JSON.stringify(m.args || [])], ['shell', String(m.shell)],
      ['env (names)', Object.keys(m.env || {}).join(' ') || '–'], ['cwd', m.cwd || '(image default)'],
      ['disposable', String(m.disposable)], ['timeout', `${m.timeout} s`]);
    if (st) rows.push(['exit code', String(st.exit_code)], ['signal', String(st.signal)], ['timed out', String(st.timed_out)]);
    const r = m.result && m.result.resources;
    if (r) {
      rows.push(['CPU', `${fmt(r.user_cpu_time)} s user, ${fmt(r.system_cpu_time)} s sys${r.cgroup_cpu_time >= 0 ? `, ${fmt(r.cgroup_cpu_time)} s cgroup` : ''}`],
        ['memory', `max RSS ${bytesText(r.max_rss * 1024)}${r.cgroup_memory_peak > 0 ? `, cgroup peak ${bytesText(r.cgroup_memory_peak)}` : ''}`],
        ['block I/O', `${r.block_input} in, ${r.block_output} out`], ['layer', bytesText(r.layer_bytes)]);
    }
  }
  rows.push(['duration', op.duration == null ? '–' : `${fmt(op.duration)} s`], ['created', op.created_at]);
  if (op.error) rows.push(['error', op.error]);
  return h('table', { class: 'kv', id: 'op-table' }, rows.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', { class: 'mono' }, v ?? '–'))));
}

function fmt(x) {
  return typeof x === 'number' ? (Math.round(x * 1000) / 1000).toString() : '–';
}

function outputView(op) {
  const res = op && op.metadata && op.metadata.result;
  if (!res) return h('p', {}, op && op.kind === 'image_import' ? 'an import has no output' : 'no output recorded');
  const stream = (name, repr) => {
    const u8 = reprBytes(repr);
    const text = asText(u8);
    return [h('h3', {}, name, repr && repr.truncated ? ' (truncated)' : ''),
      text === null ? h('p', { id: `${name}-binary` }, `binary (${bytesText(u8.length)})`)
        : h('pre', { class: 'out', id: name }, text === '' ? '(empty)' : text)];
  };
  return h('div', {}, stream('stdout', res.stdout), stream('stderr', res.stderr));
}

function diffView(d) {
  const total = d.added.length + d.modified.length + d.deleted.length;
  if (total === 0) return h('p', { class: 'diff-empty' }, 'no changes');
  const row = (sign, c) => h('li', { class: `d-${sign === '+' ? 'add' : sign === '-' ? 'del' : 'mod'}` }, `${sign} ${c.path}`,
    h('span', { class: 'small' }, ` ${c.type}${c.size_before != null ? `, ${bytesText(c.size_before)} → ${bytesText(c.size)}` : `, ${bytesText(c.size)}`}`));
  return h('ul', { class: 'diff mono' }, d.added.map((c) => row('+', c)), d.modified.map((c) => row('~', c)), d.deleted.map((c) => row('-', c)));
}

function eventLine(type, data, id, env) {
  let text;
  if (type === 'stdout' || type === 'stderr') {
    const u8 = reprBytes(data);
    const t = asText(u8);
    text = t === null ? `binary ${u8.length} bytes` : JSON.stringify(t.length > 200 ? t.slice(0, 200) + '…' : t);
  } else if (type === 'spawn' && data && data.env) {
    // Environment values may hold secrets the server did not recognise: the page shows names only.
    text = JSON.stringify({ ...data, env: Object.keys(data.env) });
  } else text = JSON.stringify(data);
  const when = env && env.ts ? env.ts.slice(11, 23) : '';
  return h('li', { dataset: { type } }, h('span', { class: 'small' }, `${when} `), h('b', {}, `#${id ?? ''} ${type}${env && env.spid > 1 ? ` (spid ${env.spid})` : ''} `), text);
}
