// The network graph (nodes and their peer links) and the propagation table. Click a link
// for its conditions, a node to put it in partition group A or B (lab.js).

import { S, register } from './state.js';
import { t } from './i18n.js';
import { $, el, sv, nodeList, colorOf, portOf, num, shortHash, nameOf } from './dom.js';
import { groupOf, openLinkDialog, toggleGroup } from './lab.js';

export function netLayout(order, w, h) {
  const pos = new Map();
  const cx = w / 2, cy = h / 2 - 6, rad = Math.min(w, h) / 2 - 48;
  order.forEach((a, i) => {
    if (order.length === 1) { pos.set(a, [cx, cy]); return; }
    const ang = -Math.PI / 2 + (2 * Math.PI * i) / order.length + (order.length === 2 ? Math.PI / 2 : 0);
    pos.set(a, [cx + rad * Math.cos(ang), cy + rad * Math.sin(ang)]);
  });
  return pos;
}
/**
 * Every link between two watched nodes, once: connected, or cut (blocked) from either end.
 * The conditions shown are each end's own (a node slows what it sends).
 */
export function netEdges(order) {
  const known = new Set(order);
  const edges = new Map(); // "a|b" (sorted) -> {a, b, up, cut, ends: {addr: link}}
  for (const a of order) {
    for (const p of S.nodes.get(a).peers || []) {
      if (!p || typeof p.address !== 'string' || !known.has(p.address) || p.address === a) continue;
      const cut = !!(p.link && p.link.cut) || p.state === 'blocked';
      if (p.state !== 'connected' && !cut) continue;
      const [x, y] = [a, p.address].sort();
      const key = x + '|' + y;
      const e = edges.get(key) || { a: x, b: y, up: false, cut: false, ends: {} };
      e.up = e.up || p.state === 'connected';
      e.cut = e.cut || cut;
      e.ends[a] = p.link || null;
      edges.set(key, e);
    }
  }
  return [...edges.values()];
}

/** The label of an edge: the larger one-way delay of its two ends, and jitter and loss if any. */
function edgeLabel(e) {
  const links = Object.values(e.ends).filter(Boolean);
  const most = (k) => Math.max(0, ...links.map((l) => Number(l[k]) || 0));
  if (e.cut) return t('cutLabel');
  const parts = [];
  if (most('latency_ms') || most('jitter_ms')) parts.push(`${most('latency_ms')} ms` + (most('jitter_ms') ? ` ±${most('jitter_ms')}` : ''));
  if (most('loss')) parts.push(`${Math.round(most('loss') * 100)}%`);
  if (most('bandwidth_bps')) parts.push(`${Math.round(most('bandwidth_bps') / 1000)} kB/s`);
  return parts.join(' · ');
}

export function renderNetwork() {
  const svg = $('net-svg');
  const w = Math.max(300, svg.clientWidth || 600), h = 240;
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  const order = nodeList();
  const pos = netLayout(order, w, h);
  const kids = [];
  for (const e of netEdges(order)) {
    const [x1, y1] = pos.get(e.a), [x2, y2] = pos.get(e.b);
    const g = sv('g', { class: 'net-edge' + (e.cut ? ' cut' : ''), 'data-edge': e.a + '|' + e.b, tabindex: 0, role: 'button',
      'aria-label': t('edgeAria', { a: e.a, b: e.b }) });
    const label = edgeLabel(e);
    g.append(
      sv('line', { class: 'net-hit', x1, y1, x2, y2 }),
      sv('line', { class: 'net-link' + (e.cut ? ' cut' : ''), x1, y1, x2, y2 }),
      sv('title', {}, `${e.a} ↔ ${e.b}`),
    );
    if (label) g.append(sv('text', { class: 'edge-label', x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 5 }, label));
    const open = () => openLinkDialog(e.a, e.b);
    g.addEventListener('click', open);
    g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); open(); } });
    kids.push(g);
  }
  for (const a of order) {
    const v = S.nodes.get(a);
    const [x, y] = pos.get(a);
    const group = groupOf(a);
    const g = sv('g', { class: 'net-node' + (v.online ? '' : ' off') + (group ? ' group-' + group : ''), 'data-net-node': a,
      'data-group': group || null });
    g.append(
      sv('circle', { class: 'ring', cx: x, cy: y, r: 26, stroke: colorOf(a) }),
      sv('circle', { class: 'body', cx: x, cy: y, r: 26, fill: colorOf(a) }),
      sv('text', { x, y }, portOf(a)),
      sv('text', { class: 'below', x, y: y + 40 },
        (v.online ? `#${num(v.status?.height) ?? '?'}` : t('offline')) + (group ? ` · ${group.toUpperCase()}` : '')),
      sv('title', {}, a + ' — ' + t('groupHint')),
    );
    g.addEventListener('click', () => toggleGroup(a));
    kids.push(g);
  }
  svg.replaceChildren(...kids);
}
export function pulse(addr) {
  const ring = document.querySelector(`[data-net-node="${CSS.escape(addr)}"] .ring`);
  if (!ring) return;
  ring.classList.remove('pulse');
  void ring.getBoundingClientRect();
  ring.classList.add('pulse');
}

export function renderPropagation() {
  const table = $('prop-table');
  const order = nodeList();
  const items = [...S.arrivals.values()].sort((a, b) => b.first_at - a.first_at).slice(0, 6);
  $('no-prop').hidden = items.length > 0;
  if (!items.length) { table.replaceChildren(); return; }
  const head = el('tr', {}, el('th', { text: t('item') }), ...order.map((a) => {
    const th = el('th', { class: 'num' });
    th.append(el('span', { class: 'swatch', style: null }), portOf(a));
    th.firstChild.style.background = colorOf(a);
    return th;
  }));
  const body = items.map((r) => {
    const info = r.info || {};
    const label = r.kind === 'block'
      ? `${t('blockWord')} #${info.height ?? '?'} · ${shortHash(r.id, 8)}`
      : `${t('txWord')} ${nameOf(String(info.sender ?? '?'))} → ${info.recipient ?? '?'} (${info.amount ?? '?'})`;
    const tr = el('tr', {}, el('td', { text: label, title: r.id }));
    for (const a of order) {
      const at = r.at ? r.at[a] : undefined;
      let text = '—';
      if (typeof at === 'number') text = a === r.first_node ? t('first') : `+${Math.max(0, at - r.first_at)} ms`;
      tr.append(el('td', { class: 'num', text }));
    }
    return tr;
  });
  table.replaceChildren(el('thead', {}, head), el('tbody', {}, ...body));
}

register({ net: renderNetwork, prop: renderPropagation });
