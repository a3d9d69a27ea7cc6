// The fork tree (all nodes' recent blocks merged) and the list of reorganisations.

import { S, register } from './state.js';
import { t } from './i18n.js';
import { $, el, sv, nodeList, colorOf, portOf, shortHash, clock, nameOf } from './dom.js';
import { selectBlock } from './explorer.js';
import { groupOf } from './lab.js';

export function allBlocks() {
  const m = new Map(S.tree);
  for (const blocks of S.chains.values()) {
    for (const b of blocks) {
      if (b && typeof b.hash === 'string') {
        const txs = Array.isArray(b.transactions) ? b.transactions : [];
        const miner = txs[0] && txs[0].sender === '0' ? txs[0].recipient : null;
        m.set(b.hash, { hash: b.hash, height: b.height, previous_hash: b.previous_hash, txs: txs.length, miner });
      }
    }
  }
  return m;
}
/**
 * For each block, the partition groups (lab.js) whose nodes have it in their chain: a block
 * only one group's nodes build on is drawn in that group's colour, so a partition's two
 * branches are told apart as they grow.
 */
function branchGroups(blocks) {
  const out = new Map(); // hash -> Set of 'a' | 'b'
  for (const a of nodeList()) {
    const g = groupOf(a);
    const tip = S.nodes.get(a).status?.tip;
    if (!g || typeof tip !== 'string') continue;
    for (let h = tip; h && blocks.has(h); h = blocks.get(h).previous_hash) {
      if (!out.has(h)) out.set(h, new Set());
      out.get(h).add(g);
    }
  }
  return out;
}

export function renderTree() {
  const svg = $('fork-svg');
  const blocks = allBlocks();
  const groupsOf = branchGroups(blocks);
  const tips = new Map(); // hash -> [address]
  let best = null;
  for (const a of nodeList()) {
    const st = S.nodes.get(a).status;
    if (!st || typeof st.tip !== 'string') continue;
    if (!tips.has(st.tip)) tips.set(st.tip, []);
    tips.get(st.tip).push(a);
    if (blocks.has(st.tip)) {
      const hb = blocks.get(st.tip).height;
      if (!best || hb > best.h || (hb === best.h && tips.get(st.tip).length > tips.get(best.hash).length)) best = { hash: st.tip, h: hb };
    }
  }
  let maxH = 0;
  for (const b of blocks.values()) if (typeof b.height === 'number') maxH = Math.max(maxH, b.height);
  const minH = Math.max(0, maxH - 11);
  const visible = [...blocks.values()].filter((b) => typeof b.height === 'number' && b.height >= minH);
  const main = new Set();
  for (let h = best && best.hash; h && blocks.has(h); h = blocks.get(h).previous_hash) main.add(h);
  visible.sort((a, b) => a.height - b.height || (main.has(b.hash) - main.has(a.hash)) || (a.hash < b.hash ? -1 : 1));
  const lane = new Map(), used = new Map();
  let next = 1;
  for (const b of visible) {
    let l;
    if (main.has(b.hash)) l = 0;
    else {
      const pl = lane.get(b.previous_hash);
      const taken = used.get(b.height) || new Set();
      l = pl !== undefined && pl !== 0 && !taken.has(pl) ? pl : next++;
    }
    lane.set(b.hash, l);
    if (!used.has(b.height)) used.set(b.height, new Set());
    used.get(b.height).add(l);
  }
  const BW = 104, BH = 42, GX = 40, LANE = 96, PX = 16, PY = 14;
  const X = (b) => PX + (b.height - minH) * (BW + GX);
  const Yl = (l) => PY + l * LANE;
  const lanes = Math.max(1, next);
  const w = PX * 2 + (maxH - minH + 1) * (BW + GX);
  const h = PY + lanes * LANE + 10;
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('width', w);
  svg.setAttribute('height', h);
  svg.style.minWidth = w + 'px';
  const kids = [];
  for (const b of visible) {
    const p = blocks.get(b.previous_hash);
    if (!p || !lane.has(p.hash)) continue;
    const x1 = X(p) + BW, y1 = Yl(lane.get(p.hash)) + BH / 2, x2 = X(b), y2 = Yl(lane.get(b.hash)) + BH / 2;
    const mx = (x1 + x2) / 2;
    kids.push(sv('path', { class: 'tree-edge' + (main.has(b.hash) ? '' : ' stale'), d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}` }));
  }
  for (const b of visible) {
    const x = X(b), y = Yl(lane.get(b.hash));
    const stale = !main.has(b.hash);
    const gs = groupsOf.get(b.hash);
    const group = gs && gs.size === 1 ? [...gs][0] : null;
    const g = sv('g', { class: 'block-g', tabindex: 0, role: 'button', 'data-block': b.hash, 'data-group': group,
      'aria-label': `#${b.height} ${b.hash}` });
    g.append(
      sv('rect', { class: 'block-rect' + (stale ? ' stale' : '') + (group ? ' group-' + group : ''), x, y, width: BW, height: BH, rx: 8 }),
      sv('text', { class: 'h', x: x + 8, y: y + 17 }, `#${b.height}`),
      sv('text', { x: x + 8, y: y + 33 }, shortHash(b.hash, 10)),
      sv('text', { x: x + BW - 8, y: y + 17, 'text-anchor': 'end', fill: '#667085' }, `${b.txs ?? 0} tx`),
      sv('title', {}, b.hash),
    );
    const open = () => selectBlock(b.hash, (tips.get(b.hash) || [])[0] || null);
    g.addEventListener('click', open);
    g.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(); } });
    kids.push(g);
    const at = tips.get(b.hash) || [];
    at.forEach((a, i) => {
      const label = portOf(a);
      const tw = 10 + label.length * 7;
      const tx = x + 4 + i * (tw + 4), ty = y + BH + 6;
      const tag = sv('g', { class: 'tip-tag' });
      tag.append(
        sv('rect', { x: tx, y: ty, width: tw, height: 17, rx: 8, fill: colorOf(a), opacity: S.nodes.get(a).online ? 1 : 0.45 }),
        sv('text', { x: tx + tw / 2, y: ty + 12.5, 'text-anchor': 'middle' }, label),
        sv('title', {}, a),
      );
      kids.push(tag);
    });
  }
  svg.replaceChildren(...kids);
}

export function renderReorgs() {
  const list = $('reorg-list');
  const items = [...S.reorgs.values()].sort((a, b) => b.id - a.id).slice(0, 10);
  $('no-reorgs').hidden = items.length > 0;
  list.replaceChildren(...items.map((r) => {
    const returned = Array.isArray(r.returned) ? r.returned : [];
    const li = el('li');
    li.append(el('div', {}, el('time', { text: clock(r.at) + ' · ' }),
      t('reorgLine', { node: r.node, h: r.fork_height ?? '?', d: (r.disconnected || []).length, c: (r.connected || []).length })));
    const gone = el('div', { class: 'returned disconnected' });
    gone.append(t('disconnected') + ' ');
    for (const h of Array.isArray(r.disconnected) ? r.disconnected : []) {
      const b = S.tree.get(String(h));
      const btn = el('button', { type: 'button', class: 'link', 'data-disconnected': String(h), title: String(h),
        text: (b ? `#${b.height} ` : '') + shortHash(String(h), 10) });
      btn.addEventListener('click', () => selectBlock(String(h), r.node));
      gone.append(btn);
    }
    li.append(gone);
    const ret = el('div', { class: 'returned' });
    if (returned.length) {
      ret.append(t('returned') + ' ');
      for (const txid of returned) {
        const info = S.txInfo.get(txid);
        const text = info ? `${nameOf(String(info.sender))} → ${info.recipient} (${info.amount})` : shortHash(String(txid), 10);
        ret.append(el('span', { title: String(txid), text }));
      }
    } else ret.append(t('noneReturned'));
    li.append(ret);
    return li;
  }));
}

register({ tree: renderTree, reorgs: renderReorgs });
