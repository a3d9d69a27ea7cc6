// The block explorer: each node's latest blocks, a block's detail, and a transaction's
// Merkle proof checked in the browser.

import { S, mark, register } from './state.js';
import { t } from './i18n.js';
import { $, el, nodeList, colorOf, shortHash, hashWithZeros, fullTime, nameOf } from './dom.js';
import { apiGet, failText } from './api.js';
import { tamperBlock } from './lab.js';

export function renderExplorer() {
  const wrap = $('explorer-cols');
  wrap.replaceChildren(...nodeList().map((a) => {
    const blocks = (S.chains.get(a) || []).slice(-8).reverse();
    const sw = el('span', { class: 'swatch' });
    sw.style.background = colorOf(a);
    const col = el('div', { class: 'ex-col', 'data-explorer-node': a }, el('h3', {}, sw, a));
    if (!blocks.length) col.append(el('p', { class: 'empty', text: t('noBlocks') }));
    const ol = el('ol');
    for (const b of blocks) {
      const txs = Array.isArray(b.transactions) ? b.transactions.length : 0;
      const sel = S.selected && S.selected.hash === b.hash;
      const btn = el('button', { type: 'button', class: 'ex-block' + (sel ? ' selected' : ''), 'data-block': b.hash, title: b.hash },
        el('span', { class: 'h', text: '#' + b.height }),
        el('code', { text: shortHash(b.hash, 14) }),
        el('small', { text: `${txs} tx` }));
      btn.addEventListener('click', () => selectBlock(b.hash, a));
      ol.append(el('li', {}, btn));
    }
    col.append(ol);
    return col;
  }));
}

export function findBlock(hash) {
  for (const [a, blocks] of S.chains) {
    const b = blocks.find((x) => x.hash === hash);
    if (b) return { block: b, node: a };
  }
  return null;
}

export async function selectBlock(hash, node) {
  const found = findBlock(hash);
  S.selected = { hash, node: found ? found.node : node, block: found ? found.block : null, proof: null, loading: !found };
  mark('detail', 'explorer');
  $('block-detail').scrollIntoView({ behavior: 'smooth', block: 'nearest' });
  if (!found) {
    try {
      const q = node ? `?node=${encodeURIComponent(node)}` : '';
      const b = await apiGet(`/api/blocks/${encodeURIComponent(hash)}${q}`);
      if (S.selected && S.selected.hash === hash) { S.selected.block = b; S.selected.loading = false; }
    } catch (e) {
      if (S.selected && S.selected.hash === hash) { S.selected.error = failText(e, node); S.selected.loading = false; }
    }
    mark('detail');
  }
}

export function renderDetail() {
  const box = $('block-detail');
  const sel = S.selected;
  if (!sel) { box.hidden = true; box.replaceChildren(); return; }
  box.hidden = false;
  const close = el('button', { type: 'button', text: t('close') });
  close.addEventListener('click', () => { S.selected = null; mark('detail', 'explorer'); });
  const b = sel.block;
  const head = el('div', { class: 'detail-head' },
    el('h3', { text: b ? t('blockTitle', { h: b.height }) + (sel.node ? ' · ' + t('seenOn', { node: sel.node }) : '') : t('loading') }), close);
  const kids = [head];
  if (sel.error) kids.push(el('p', { class: 'msg bad', text: sel.error }));
  if (b) {
    const dl = el('dl', { class: 'kv' });
    const row = (k, v) => dl.append(el('dt', { text: t(k) }), el('dd', {}, v));
    row('f_hash', hashWithZeros(b.hash));
    row('f_height', String(b.height ?? '—'));
    row('f_index', String(b.index ?? '—'));
    const prev = el('button', { type: 'button', class: 'link', text: String(b.previous_hash ?? '—') });
    prev.addEventListener('click', () => { if (typeof b.previous_hash === 'string') selectBlock(b.previous_hash, sel.node); });
    row('f_prev', prev);
    row('f_merkle', el('span', { class: 'hash', text: String(b.merkle_root ?? '—') }));
    row('f_time', fullTime(b.timestamp));
    row('f_target', hashWithZeros(b.target));
    row('f_bits', String(b.bits ?? '—'));
    row('f_nonce', String(b.nonce ?? '—'));
    row('f_size', String(b.size ?? '—'));
    row('f_version', String(b.version ?? '—'));
    kids.push(dl);
    kids.push(el('p', { class: 'hint', text: t('zerosHint') }));
    if (sel.node && b.height > 0) kids.push(tamperBox(sel.node, b.hash));
    const txs = Array.isArray(b.transactions) ? b.transactions : [];
    kids.push(el('h3', { text: `${t('txs')} (${txs.length})` }));
    const tb = el('tbody');
    for (const tx of txs) {
      const pb = el('button', { type: 'button', text: t('showProof'), 'data-proof': String(tx.txid) });
      pb.addEventListener('click', () => showProof(String(tx.txid)));
      tb.append(el('tr', {},
        el('td', {}, el('code', { class: 'hash', text: shortHash(String(tx.txid), 16), title: String(tx.txid) })),
        el('td', { text: nameOf(String(tx.sender)) }),
        el('td', { text: String(tx.recipient) }),
        el('td', { class: 'num', text: String(tx.amount) }),
        el('td', {}, pb)));
    }
    kids.push(el('div', { class: 'table-wrap' }, el('table', { class: 'small' },
      el('thead', {}, el('tr', {}, el('th', { text: t('txid') }), el('th', { text: t('from') }), el('th', { text: t('to') }),
        el('th', { class: 'num', text: t('amount') }), el('th', { text: t('proof') }))), tb)));
    if (sel.proof) kids.push(proofBox(sel.proof));
  }
  box.replaceChildren(...kids);
}

// One message element for the tamper lesson, kept across redraws of the detail (the
// detail is redrawn whenever a chain changes, and the peers' answers come meanwhile).
const tamperMsg = el('span', { class: 'msg', id: 'tamper-msg', role: 'status' });

function tamperBox(node, hash) {
  const b = el('button', { type: 'button', class: 'secondary', 'data-tamper': hash, text: t('tamper') });
  b.addEventListener('click', () => tamperBlock(node, hash, tamperMsg));
  return el('div', { class: 'tamper' }, b, el('p', { class: 'hint', text: t('tamperHint', { node }) }), tamperMsg);
}

export async function showProof(txid) {
  const sel = S.selected;
  if (!sel) return;
  sel.proof = { txid, loading: true };
  mark('detail');
  try {
    const q = sel.node ? `?node=${encodeURIComponent(sel.node)}` : '';
    const res = await apiGet(`/api/tx/${encodeURIComponent(txid)}${q}`);
    const p = { txid, res };
    if (res && res.status === 'confirmed' && res.proof) p.ok = await verifyProof(txid, res.proof);
    if (S.selected === sel) sel.proof = p;
  } catch (e) {
    if (S.selected === sel) sel.proof = { txid, error: failText(e, sel.node) };
  }
  mark('detail');
}

export function proofBox(p) {
  const box = el('div', { class: 'proof' + (p.error || p.ok === false ? ' bad' : '') });
  box.append(el('strong', { text: `${t('proof')} · ${shortHash(p.txid, 16)}` }));
  if (p.loading) { box.append(el('div', { text: t('loading') })); return box; }
  if (p.error) { box.append(el('div', { text: p.error })); return box; }
  const res = p.res || {};
  if (res.status !== 'confirmed' || !res.proof) { box.append(el('div', { text: t('pendingTx') })); return box; }
  const pr = res.proof;
  const dl = el('dl', { class: 'kv' });
  dl.append(el('dt', { text: t('proofIndex') }), el('dd', { text: String(pr.index) }));
  const ol = el('ol');
  for (const s of pr.siblings || []) ol.append(el('li', {}, el('code', { text: String(s) })));
  dl.append(el('dt', { text: t('siblings') }), el('dd', {}, (pr.siblings || []).length ? ol : '—'));
  dl.append(el('dt', { text: t('root') }), el('dd', {}, el('code', { text: String(pr.root) })));
  box.append(dl);
  if (p.ok === true) box.append(el('div', { text: t('verified') }));
  else if (p.ok === false) box.append(el('div', { text: t('notVerified') }));
  return box;
}

export function hexBytes(h) {
  if (typeof h !== 'string' || !/^[0-9a-fA-F]{64}$/.test(h)) return null;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(h.slice(i * 2, i * 2 + 2), 16);
  return out;
}
// As docs/API.md says: h = sha256(0xff || left || right), climbing by the index's bits.
export async function verifyProof(txid, proof) {
  if (!window.crypto || !crypto.subtle) return null;
  let h = hexBytes(txid);
  let idx = Number(proof.index);
  if (!h || !Number.isInteger(idx)) return false;
  for (const s of proof.siblings || []) {
    const sb = hexBytes(s);
    if (!sb) return false;
    const buf = new Uint8Array(65);
    buf[0] = 0xff;
    if (idx % 2 === 0) { buf.set(h, 1); buf.set(sb, 33); } else { buf.set(sb, 1); buf.set(h, 33); }
    h = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
    idx = Math.floor(idx / 2);
  }
  const hex = [...h].map((x) => x.toString(16).padStart(2, '0')).join('');
  return hex === String(proof.root).toLowerCase();
}

register({ explorer: renderExplorer, detail: renderDetail });
