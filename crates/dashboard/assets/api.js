// Calling the dashboard: POSTs carry the page's token; failures become ApiFail with a code
// that failText turns into a sentence.

import { t } from './i18n.js';

const TOKEN = document.querySelector('meta[name="chainsim-token"]')?.content ?? '';

export class ApiFail extends Error {
  constructor(body, status) {
    super((body && body.error) || 'HTTP ' + status);
    this.code = (body && body.code) || (status === 0 ? 'network' : 'generic');
    this.status = status;
  }
}
export async function api(path, body, timeoutMs) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  let r;
  try {
    r = await fetch(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Chainsim-Token': TOKEN },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: ctl.signal,
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiFail({ error: t('err_network'), code: e.name === 'AbortError' ? 'timeout' : 'network' }, 0);
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try { data = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) throw new ApiFail(data, r.status);
  return data || {};
}
export async function apiGet(path, timeoutMs = 8000) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const r = await fetch(path, { signal: ctl.signal, cache: 'no-store' });
    let data = null;
    try { data = await r.json(); } catch (_) { /* not JSON */ }
    if (!r.ok) throw new ApiFail(data, r.status);
    return data;
  } catch (e) {
    if (e instanceof ApiFail) throw e;
    throw new ApiFail({ error: t('err_network'), code: 'network' }, 0);
  } finally {
    clearTimeout(timer);
  }
}
export function failText(e, node) {
  const vars = { node: node || '', detail: e.message };
  switch (e.code) {
    case 'unreachable': return t('err_unreachable', vars);
    case 'timeout': return t('err_timeout', vars);
    case 'unknown_node': return t('err_unknown_node', vars) + (node ? ` (${node})` : '');
    case 'forbidden': return t('err_forbidden', vars);
    case 'invalid': return t('err_invalid', vars);
    case 'network': return t('err_network', vars);
    case 'not_demo': return t('err_not_demo', vars);
    default: return e.message;
  }
}
export function say(target, kind, text) {
  target.className = target.className.replace(/\b(ok|bad|wait)\b/g, '').trim();
  target.classList.add('msg', kind);
  target.textContent = text;
  clearTimeout(target._fade);
  if (kind !== 'wait') target._fade = setTimeout(() => { target.textContent = ''; }, 15000);
}
