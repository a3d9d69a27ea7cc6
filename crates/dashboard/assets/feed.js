// The dashboard's live feed (Server-Sent Events): a snapshot first, then every change.

import { S, mark, markAll } from './state.js';
import { t } from './i18n.js';
import { $ } from './dom.js';
import { findBlock } from './explorer.js';
import { pulse } from './graph.js';
import { activityText } from './activity.js';

export function noteTxs(blocks) {
  for (const b of blocks || []) for (const tx of b.transactions || []) {
    if (tx && tx.txid) S.txInfo.set(tx.txid, { sender: tx.sender, recipient: tx.recipient, amount: tx.amount });
  }
}
export function applySnapshot(s) {
  if (typeof s.now === 'number') S.skew = s.now - Date.now();
  S.demo = !!s.demo;
  S.nodes = new Map((s.nodes || []).map((v) => [v.address, v]));
  S.chains = new Map(Object.entries(s.chains || {}));
  for (const blocks of S.chains.values()) noteTxs(blocks);
  S.tree = new Map((s.tree || []).map((b) => [b.hash, b]));
  S.heights = s.heights || [];
  S.arrivals = new Map((s.arrivals || []).map((r) => [r.kind + ':' + r.id, r]));
  for (const r of S.arrivals.values()) if (r.kind === 'tx' && r.info) S.txInfo.set(r.id, r.info);
  S.reorgs = new Map((s.reorgs || []).map((r) => [r.id, r]));
  markAll();
}
export const HANDLERS = {
  snapshot: applySnapshot,
  node(v) {
    const isNew = !S.nodes.has(v.address);
    S.nodes.set(v.address, v);
    mark('table', 'select', 'net', 'tree', 'lab', 'walletsFeed');
    if (isNew) mark('prop', 'heights', 'explorer');
  },
  removed(d) {
    S.nodes.delete(d.address);
    S.chains.delete(d.address);
    markAll();
  },
  chain(d) {
    S.chains.set(d.node, d.blocks || []);
    noteTxs(d.blocks);
    for (const b of d.blocks || []) {
      if (!b || !b.hash) continue;
      const txs = b.transactions || [];
      const miner = txs[0] && txs[0].sender === '0' ? txs[0].recipient : null;
      S.tree.set(b.hash, { hash: b.hash, height: b.height, previous_hash: b.previous_hash, txs: txs.length, miner });
    }
    if (S.selected && !S.selected.block) { const f = findBlock(S.selected.hash); if (f) S.selected.block = f.block; }
    mark('explorer', 'tree', 'detail', 'lab', 'walletsFeed');
  },
  heights(s) {
    S.heights.push(s);
    if (S.heights.length > 600) S.heights.splice(0, S.heights.length - 600);
    mark('heights');
  },
  arrival(r) {
    S.arrivals.set(r.kind + ':' + r.id, r);
    if (S.arrivals.size > 30) {
      const oldest = [...S.arrivals.entries()].sort((a, b) => a[1].first_at - b[1].first_at)[0];
      S.arrivals.delete(oldest[0]);
    }
    if (r.kind === 'tx' && r.info) S.txInfo.set(r.id, r.info);
    mark('prop');
  },
  reorg(r) { S.reorgs.set(r.id, r); mark('reorgs', 'tree'); },
  nodeevent(ev) {
    const v = S.nodes.get(ev.node);
    if (ev.kind === 'tip' && v && v.status) {
      // The next poll confirms it; showing it now makes the page feel instant.
      Object.assign(v.status, ev.data);
      mark('table', 'tree', 'net', 'lab');
    }
    if (ev.kind === 'mining' && v && v.status) { v.status.mining = !!(ev.data && ev.data.active); mark('table'); }
    if (ev.kind === 'block') pulse(ev.node);
    if (activityText(ev) !== null) {
      S.activity.push(ev);
      if (S.activity.length > 100) S.activity.splice(0, S.activity.length - 100);
      mark('activity');
    }
  },
};

export let es = null;
export function connect() {
  const live = $('live'), text = $('live-text');
  es = new EventSource('/api/events');
  es.onopen = () => { live.dataset.state = 'live'; text.dataset.i18n = 'live'; text.textContent = t('live'); };
  es.onerror = () => { live.dataset.state = 'down'; text.dataset.i18n = 'reconnecting'; text.textContent = t('reconnecting'); };
  for (const [kind, fn] of Object.entries(HANDLERS)) {
    es.addEventListener(kind, (e) => {
      let data;
      try { data = JSON.parse(e.data); } catch (_) { return; }
      try { fn(data); } catch (err) { console.error(kind, err); }
    });
  }
}
