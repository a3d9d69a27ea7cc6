// The lab: a link's conditions (the dialog opened from the network graph), partitions
// (groups A and B), each node's mining mode and hash-power share, the network-wide figures
// and the tamper lesson. Everything goes through the dashboard's /api/link, /api/partition,
// /api/mining and /api/tamper.

import { S, mark, register } from './state.js';
import { t } from './i18n.js';
import { $, el, nodeList, colorOf, portOf, setText } from './dom.js';
import { api, failText, say } from './api.js';
import { networkFigures } from './figures.js';

// ---------------------------------------------------------------- partition groups
const groups = new Map(); // address -> 'a' | 'b'
let partitioned = null;   // the groups of the partition in force, for Heal

export function groupOf(addr) { return groups.get(addr) || null; }

/** No group, then A, then B, then no group again. */
export function toggleGroup(addr) {
  const g = groups.get(addr);
  if (!g) groups.set(addr, 'a');
  else if (g === 'a') groups.set(addr, 'b');
  else groups.delete(addr);
  mark('net', 'lab', 'tree');
}

function splitHalf() {
  const order = nodeList();
  const half = Math.ceil(order.length / 2);
  groups.clear();
  order.forEach((a, i) => groups.set(a, i < half ? 'a' : 'b'));
  mark('net', 'lab', 'tree');
}

function chosenGroups() {
  const order = nodeList();
  return [order.filter((a) => groups.get(a) === 'a'), order.filter((a) => groups.get(a) === 'b')];
}

async function partition(cut) {
  const msg = $('partition-msg');
  const pair = cut ? chosenGroups() : partitioned || chosenGroups();
  if (!pair[0].length || !pair[1].length) { say(msg, 'bad', t('needGroups')); return; }
  say(msg, 'wait', t(cut ? 'partitioning' : 'healing'));
  try {
    const res = await api('/api/partition', { groups: pair, cut }, 30000);
    partitioned = cut ? pair : null;
    const links = Array.isArray(res.links) ? res.links.length : res.links ?? '?';
    say(msg, 'ok', t(cut ? 'partitioned' : 'healed', { n: links }));
  } catch (e) {
    say(msg, 'bad', failText(e));
  }
}

// ---------------------------------------------------------------- link dialog
let dialog = null; // {a, b}

function peerLink(from, to) {
  const p = (S.nodes.get(from)?.peers || []).find((x) => x && x.address === to);
  return (p && p.link) || {};
}

const LINK_FIELDS = [
  // id suffix, request key, to the input, from the input
  ['latency', 'latency_ms', (l) => l.latency_ms ?? 0, Number],
  ['jitter', 'jitter_ms', (l) => l.jitter_ms ?? 0, Number],
  ['loss', 'loss', (l) => Math.round((l.loss ?? 0) * 100), (v) => Number(v) / 100],
  ['bandwidth', 'bandwidth_bps', (l) => Math.round((l.bandwidth_bps ?? 0) / 1000), (v) => Number(v) * 1000],
];

export function openLinkDialog(a, b) {
  dialog = { a, b };
  const box = $('link-dialog');
  box.hidden = false;
  setText($('link-title'), t('linkTitle', { a, b }));
  const l = peerLink(a, b);
  for (const [id, , get] of LINK_FIELDS) {
    $('link-' + id).value = String(get(l));
    $('link-' + id + '-range').value = String(get(l));
  }
  setText($('link-msg'), '');
  $('link-latency').focus();
}

async function sendLink(change, waitKey) {
  if (!dialog) return;
  const msg = $('link-msg');
  say(msg, 'wait', t(waitKey));
  try {
    await api('/api/link', { a: dialog.a, b: dialog.b, ...change }, 15000);
    say(msg, 'ok', t('linkSet'));
  } catch (e) {
    say(msg, 'bad', failText(e));
  }
}

function applyLink() {
  const change = {};
  for (const [id, key, , parse] of LINK_FIELDS) {
    const v = parse($('link-' + id).value);
    if (!Number.isFinite(v) || v < 0) { say($('link-msg'), 'bad', t('v_number')); return; }
    change[key] = key === 'loss' ? Math.min(1, v) : Math.round(v);
  }
  sendLink(change, 'applying');
}

function initLinkDialog() {
  for (const [id] of LINK_FIELDS) {
    const n = $('link-' + id), r = $('link-' + id + '-range');
    r.addEventListener('input', () => { n.value = r.value; });
    n.addEventListener('input', () => { r.value = n.value; });
  }
  $('link-apply').addEventListener('click', applyLink);
  $('link-cut').addEventListener('click', () => sendLink({ cut: true }, 'cutting'));
  $('link-restore').addEventListener('click', () => sendLink({ cut: false }, 'restoring'));
  $('link-close').addEventListener('click', () => { dialog = null; $('link-dialog').hidden = true; });
}

// ---------------------------------------------------------------- mining controls
const miningRows = new Map(); // address -> {tr, mode, share, shareN, msg, shown}

function blockInterval() {
  const v = Number($('block-interval').value);
  return Number.isFinite(v) && v > 0 ? v : null;
}

async function setMining(addr) {
  const r = miningRows.get(addr);
  const mode = r.mode.value;
  const body = { node: addr, mode };
  if (mode !== 'manual') {
    const interval = blockInterval();
    if (interval === null) { say(r.msg, 'bad', t('v_interval')); return; }
    body.block_time_s = interval;
  }
  if (mode === 'auto') body.share = Number(r.share.value);
  say(r.msg, 'wait', t('applying'));
  try {
    await api('/api/mining', body, 15000);
    say(r.msg, 'ok', t('miningSet', { mode: t('mode_' + mode) }));
  } catch (e) {
    say(r.msg, 'bad', failText(e, addr));
  }
}

function makeMiningRow(addr) {
  const mode = el('select', { 'data-field': 'mode', 'aria-label': t('miningMode') + ' ' + addr },
    ...['manual', 'interval', 'auto'].map((m) => el('option', { value: m, 'data-i18n': 'mode_' + m, text: t('mode_' + m) })));
  const share = el('input', { type: 'range', min: '0.05', max: '1', step: '0.05', value: '1', 'data-field': 'share',
    'aria-label': t('hashShare') + ' ' + addr });
  const shareN = el('output', { class: 'num' });
  const msg = el('span', { class: 'msg', role: 'status' });
  const sw = el('span', { class: 'swatch' });
  const tr = el('tr', { 'data-mining-node': addr },
    el('td', { class: 'addr' }, sw, addr), el('td', {}, mode), el('td', { class: 'share' }, share, shareN), el('td', {}, msg));
  const r = { tr, sw, mode, share, shareN, msg, shown: null };
  mode.addEventListener('change', () => setMining(addr));
  share.addEventListener('input', () => { shareN.textContent = Number(share.value).toFixed(2); });
  share.addEventListener('change', () => { if (mode.value === 'auto') setMining(addr); });
  return r;
}

/** Shows each node's mode as the node reports it, unless the user is changing it. */
function fillMiningRow(addr, r) {
  const sched = S.nodes.get(addr)?.status?.mining_schedule || {};
  const key = JSON.stringify(sched);
  r.sw.style.background = colorOf(addr);
  if (key !== r.shown && document.activeElement !== r.mode && document.activeElement !== r.share) {
    r.shown = key;
    r.mode.value = sched.mode || 'manual';
    if (typeof sched.share === 'number') r.share.value = String(sched.share);
    if (typeof sched.block_time_s === 'number' && document.activeElement !== $('block-interval') && !$('block-interval').dataset.touched) {
      $('block-interval').value = String(sched.block_time_s);
    }
  }
  r.shareN.textContent = Number(r.share.value).toFixed(2);
  r.share.disabled = r.mode.value !== 'auto';
}

function renderMining() {
  const tbody = $('mining-rows');
  const order = nodeList();
  for (const [addr, r] of miningRows) if (!order.includes(addr)) { r.tr.remove(); miningRows.delete(addr); }
  order.forEach((addr, i) => {
    let r = miningRows.get(addr);
    if (!r) { r = makeMiningRow(addr); miningRows.set(addr, r); }
    if (tbody.children[i] !== r.tr) tbody.insertBefore(r.tr, tbody.children[i] || null);
    fillMiningRow(addr, r);
  });
}

function applyIntervalToAll() {
  $('block-interval').dataset.touched = '1';
  for (const [addr, r] of miningRows) if (r.mode.value !== 'manual') setMining(addr);
}

// ---------------------------------------------------------------- figures
function pct(x) { return x === null ? '—' : `${(x * 100).toFixed(1)}%`; }

function renderFigures() {
  const f = networkFigures(S.nodes, S.tree);
  const dl = $('figures');
  const row = (key, value, field) => [el('dt', { text: t(key) }), el('dd', { 'data-figure': field, text: value })];
  dl.replaceChildren(
    ...row('fig_stale', `${f.stale} (${pct(f.staleRate)})`, 'stale'),
    ...row('fig_forks', String(f.forks), 'forks'),
    ...row('fig_reorgs', String(f.reorgs), 'reorgs'),
    ...row('fig_deepest', String(f.deepestReorg), 'deepest'),
    ...row('fig_propagation', f.propagationMs === null ? '—' : `${f.propagationMs} ms`, 'propagation'),
  );
  setText($('share-hint'), t('shareHint', { n: f.window }));
  $('share-rows').replaceChildren(...f.shares.map((s) => {
    const sw = el('span', { class: 'swatch' });
    sw.style.background = colorOf(s.node);
    const bar = el('span', { class: 'bar' });
    bar.style.width = `${Math.round((s.share ?? 0) * 100)}%`;
    const want = el('span', { class: 'bar want' });
    want.style.width = `${Math.round((s.configured ?? 0) * 100)}%`;
    return el('tr', { 'data-share-node': s.node },
      el('td', { class: 'addr' }, sw, portOf(s.node)),
      el('td', { class: 'num', text: `${s.mined}` }),
      el('td', { class: 'num', text: pct(s.share) }),
      el('td', { class: 'num', text: s.configured === null ? t('mode_' + s.mode) : pct(s.configured) }),
      el('td', { class: 'bars' }, bar, want));
  }));
}

// ---------------------------------------------------------------- partition chips
function renderLab() {
  const order = nodeList();
  $('group-chips').replaceChildren(...order.map((a) => {
    const g = groups.get(a);
    const b = el('button', { type: 'button', class: 'chip' + (g ? ' group-' + g : ''), 'data-group-node': a, 'data-group': g || null,
      text: `${portOf(a)}${g ? ' · ' + g.toUpperCase() : ''}` });
    b.addEventListener('click', () => toggleGroup(a));
    return b;
  }));
  $('partition-state').textContent = partitioned ? t('partitionOn') : '';
  renderMining();
  renderFigures();
}

// ---------------------------------------------------------------- tamper lesson
/** Asks `node` to offer its peers an altered copy of block `hash`; `msg` shows the outcome. */
export async function tamperBlock(node, hash, msg) {
  say(msg, 'wait', t('tampering'));
  try {
    const res = await api('/api/tamper', { node, hash }, 60000);
    const tp = res.tamper || {};
    say(msg, 'ok', t('tampered', { n: (tp.sent_to || []).length, before: tp.amount_before, after: tp.amount_after }));
  } catch (e) {
    say(msg, 'bad', failText(e, node));
  }
}

export function initLab() {
  initLinkDialog();
  $('split-half').addEventListener('click', splitHalf);
  $('clear-groups').addEventListener('click', () => { groups.clear(); mark('net', 'lab', 'tree'); });
  $('partition').addEventListener('click', () => partition(true));
  $('heal').addEventListener('click', () => partition(false));
  $('block-interval').addEventListener('change', applyIntervalToAll);
}

register({ lab: renderLab });
