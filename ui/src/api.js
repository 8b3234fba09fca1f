// The API client: same origin, a Bearer token from this tab's sessionStorage, no cookies.
const KEY = 'contree.token';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

let onUnauthorized = () => {};
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

function headers(extra) {
  return { Authorization: `Bearer ${token.get()}`, ...extra };
}

async function failure(res) {
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body && body.error) message = body.error;
  } catch { /* not JSON */ }
  if (res.status === 401) onUnauthorized(message);
  return new ApiError(res.status, message);
}

export async function request(method, path, body, signal) {
  const init = { method, headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }), credentials: 'omit', signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  if (!res.ok) throw await failure(res);
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  return type.includes('json') ? res.json() : res.text();
}

export const get = (path, signal) => request('GET', path, undefined, signal);

/** The raw bytes of a GET (file download and view). */
export async function bytes(path, signal) {
  const res = await fetch(path, { headers: headers(), credentials: 'omit', signal });
  if (!res.ok) throw await failure(res);
  return new Uint8Array(await res.arrayBuffer());
}

/**
 * Follows an operation's Server-Sent Events with fetch (EventSource cannot send a header). Calls onEvent(type,
 * (payload, id, envelope) for each event until `completion` or the signal aborts; resumes after a dropped connection from the last id.
 */
export async function follow(opUuid, onEvent, signal) {
  let last = null;
  for (let attempt = 0; attempt < 20 && !signal.aborted; attempt++) {
    const h = headers({ Accept: 'text/event-stream' });
    if (last !== null) h['Last-Event-Id'] = String(last);
    let res;
    try {
      res = await fetch(`/v1/operations/${opUuid}/events?follow=1`, { headers: h, credentials: 'omit', signal });
    } catch (e) {
      if (signal.aborted) return;
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    if (!res.ok) throw await failure(res);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let type = 'message', data = '', id = null;
          for (const line of frame.split('\n')) {
            if (line.startsWith(':')) continue;
            const colon = line.indexOf(':');
            const field = colon < 0 ? line : line.slice(0, colon);
            const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'event') type = val;
            else if (field === 'data') data += val;
            else if (field === 'id') id = Number(val);
          }
          if (id !== null) last = id;
          if (!data) continue;
          let parsed;
          try { parsed = JSON.parse(data); } catch { parsed = data; }
          // Each event's data is an envelope {id, ts, spid, type, data}: the payload is its data.
          const envelope = parsed && typeof parsed === 'object' && 'data' in parsed ? parsed : null;
          onEvent(type, envelope ? envelope.data : parsed, id, envelope);
          if (type === 'completion') return;
        }
      }
    } catch (e) {
      if (signal.aborted) return;
    }
  }
}

/** Bytes of a StreamRepr or event chunk: {value, encoding: ascii|base64}. */
export function reprBytes(repr) {
  if (!repr || repr.value == null) return new Uint8Array();
  if (repr.encoding === 'base64') {
    const bin = atob(repr.value);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  return new TextEncoder().encode(repr.value);
}

/** Text when the bytes are UTF-8 without NULs, else null (the page then says "binary"). */
export function asText(u8) {
  if (u8.includes(0)) return null;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(u8);
  } catch {
    return null;
  }
}
