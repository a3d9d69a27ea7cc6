// The node table (one row per node, with its actions) and the node choice of the form.

import { S, mark, register } from './state.js';
import { t } from './i18n.js';
import { $, el, setText, nodeList, colorOf, shortHash, num, peerCount, ago } from './dom.js';
import { api, failText, say } from './api.js';

const rows = new Map(); // address -> {tr, cells, buttons, msg}

export function makeRow(addr) {
  const cells = {};
  const td = (field, cls) => (cells[field] = el('td', { 'data-field': field, class: cls }));
  const tr = el('tr', { 'data-node': addr });
  const addrCell = el('td', { class: 'addr' });
  const swatch = el('span', { class: 'swatch', 'aria-hidden': 'true' });
  const mining = el('span', { class: 'tag', hidden: true });
  addrCell.append(swatch, el('span', { text: addr }), mining);
  tr.append(addrCell, td('status'), td('length'), td('tip'), td('pending'), td('peers'), td('miner'), td('age'));
  const actions = el('td', { class: 'actions' });
  const btns = el('div', { class: 'btns' });
  const msg = el('span', { class: 'msg', 'data-field': 'message', role: 'status' });
  const buttons = {
    mine: el('button', { type: 'button', class: 'mine', 'data-action': 'mine' }),
    sync: el('button', { type: 'button', 'data-action': 'sync' }),
    stop: el('button', { type: 'button', 'data-action': 'stop', hidden: true }),
    start: el('button', { type: 'button', 'data-action': 'start', hidden: true }),
  };
  for (const [action, b] of Object.entries(buttons)) {
    b.addEventListener('click', () => nodeAction(addr, action));
    btns.append(b);
  }
  actions.append(btns, msg);
  tr.append(actions);
  return { tr, cells, buttons, msg, swatch, mining, busy: null };
}

export function renderTable() {
  const tbody = $('node-rows');
  const order = nodeList();
  for (const [addr, r] of rows) {
    if (!order.includes(addr)) { r.tr.remove(); rows.delete(addr); }
  }
  order.forEach((addr, i) => {
    let r = rows.get(addr);
    if (!r) { r = makeRow(addr); rows.set(addr, r); }
    if (tbody.children[i] !== r.tr) tbody.insertBefore(r.tr, tbody.children[i] || null);
    fillRow(addr, r);
  });
  $('no-nodes').hidden = order.length > 0;
  $('add-node').hidden = !S.demo;
  $('demo-badge').hidden = !S.demo;
}

export function fillRow(addr, r) {
  const v = S.nodes.get(addr);
  const st = v.status || {};
  const online = !!v.online;
  r.tr.classList.toggle('offline', !online);
  r.swatch.style.background = colorOf(addr);
  setText(r.cells.status, online ? t('online') : t('offline'));
  r.cells.status.className = online ? 'is-online' : 'is-offline';
  r.cells.status.title = !online && v.error ? v.error : '';
  setText(r.cells.length, num(st.length) ?? '—');
  setText(r.cells.tip, st.tip ? shortHash(st.tip, 12) : '—');
  r.cells.tip.title = st.tip || '';
  setText(r.cells.pending, num(st.pending) ?? '—');
  setText(r.cells.peers, v.status ? peerCount(v) : '—');
  setText(r.cells.miner, st.miner ?? '—');
  r.cells.miner.title = st.miner ?? '';
  setText(r.cells.age, st.height === 0 ? t('genesis') : typeof st.tip_time === 'number' ? ago(st.tip_time) : '—');
  r.mining.hidden = !(online && st.mining);
  setText(r.mining, t('miningNow'));
  for (const [action, b] of Object.entries(r.buttons)) {
    setText(b, r.busy === action ? t(busyKey(action)) : t(action));
    b.classList.toggle('busy', r.busy === action);
  }
  const managed = S.demo && v.managed;
  r.buttons.stop.hidden = !managed;
  r.buttons.start.hidden = !managed;
  r.buttons.mine.disabled = r.busy === 'mine';
  r.buttons.sync.disabled = r.busy === 'sync';
  r.buttons.stop.disabled = !!r.busy && r.busy !== 'mine' && r.busy !== 'sync' || !online;
  r.buttons.start.disabled = !!r.busy && r.busy !== 'mine' && r.busy !== 'sync' || online;
}
export function busyKey(action) {
  return { mine: 'mining', sync: 'syncing', stop: 'stopping', start: 'starting' }[action];
}

export function renderSelect() {
  const sel = $('tx-node');
  const keep = sel.value;
  const order = nodeList();
  const want = order.map((a) => [a, a + (S.nodes.get(a).online ? '' : ' — ' + t('offline'))]);
  const have = [...sel.options].map((o) => [o.value, o.textContent]);
  if (JSON.stringify(want) !== JSON.stringify(have)) {
    sel.replaceChildren(...want.map(([v, label]) => el('option', { value: v, text: label })));
    if (order.includes(keep)) sel.value = keep;
    else {
      const firstOnline = order.find((a) => S.nodes.get(a).online);
      if (firstOnline) sel.value = firstOnline;
    }
  }
}

export const ACTION_TIMEOUT = { mine: 200000, sync: 70000, stop: 30000, start: 30000 };
export async function nodeAction(addr, action) {
  const r = rows.get(addr);
  if (!r || r.busy) return;
  r.busy = action;
  fillRow(addr, r);
  say(r.msg, 'wait', t(busyKey(action)));
  try {
    const res = await api(`/api/nodes/${encodeURIComponent(addr)}/${action}`, undefined, ACTION_TIMEOUT[action]);
    let text;
    if (action === 'mine') text = t('mined', { height: res.height ?? '?', txs: res.txs ?? 0 });
    else if (action === 'sync') text = t(res.replaced ? 'synced' : 'syncedSame', { length: res.length ?? '?' });
    else text = t(action === 'stop' ? 'stopped' : 'started');
    say(r.msg, 'ok', text);
  } catch (e) {
    say(r.msg, 'bad', failText(e, addr));
  } finally {
    r.busy = null;
    if (S.nodes.has(addr)) fillRow(addr, r);
  }
}

export async function addNode() {
  const b = $('add-node'), msg = $('add-node-msg');
  b.disabled = true;
  say(msg, 'wait', t('adding'));
  try {
    const res = await api('/api/nodes', undefined, 30000);
    say(msg, 'ok', t('added', { node: res.node }));
  } catch (e) {
    say(msg, 'bad', failText(e));
  } finally {
    b.disabled = false;
  }
}

register({ table: renderTable, select: renderSelect });
