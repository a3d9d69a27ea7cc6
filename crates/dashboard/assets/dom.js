// DOM helpers and formatting. Everything a node says is put on the page with textContent or
// as SVG text, never as markup: a sender named <script> shows as those characters.

import { S } from './state.js';
import { lang, t } from './i18n.js';

const SVGNS = 'http://www.w3.org/2000/svg';
export const COLORS = ['#6366f1', '#f59e0b', '#10b981', '#ef4444', '#06b6d4', '#a855f7', '#84cc16', '#ec4899', '#0ea5e9', '#f97316'];

export function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}
export function sv(tag, attrs, ...kids) {
  const e = document.createElementNS(SVGNS, tag);
  setAttrs(e, attrs);
  for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}
export function setAttrs(e, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.setAttribute('class', v);
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
}
export const $ = (id) => document.getElementById(id);

export function shortHash(h, n = 12) {
  if (typeof h !== 'string') return '—';
  return h.length > n + 2 ? h.slice(0, n) + '…' : h;
}
export function hashWithZeros(h) {
  const span = el('span', { class: 'hash' });
  if (typeof h !== 'string') { span.textContent = '—'; return span; }
  const m = /^0*/.exec(h)[0].length;
  if (m) span.append(el('span', { class: 'zeros', title: t('zerosHint') }, h.slice(0, m)));
  span.append(h.slice(m));
  return span;
}
// A peer list may name an address that never answers (a stale or inbound-only one):
// such a node is shown once it has answered at least once.
export function nodeList() {
  return [...S.nodes.values()].filter((v) => v.origin !== 'peer' || v.seen).map((v) => v.address).sort(compareAddr);
}
export function compareAddr(a, b) {
  const [ha, pa] = splitAddr(a), [hb, pb] = splitAddr(b);
  return ha === hb ? pa - pb : ha < hb ? -1 : 1;
}
export function splitAddr(a) {
  const i = a.lastIndexOf(':');
  return [a.slice(0, i), Number(a.slice(i + 1)) || 0];
}
export function colorOf(addr) {
  const i = nodeList().indexOf(addr);
  return COLORS[(i < 0 ? 0 : i) % COLORS.length];
}
export function portOf(addr) { return String(splitAddr(addr)[1]); }
export function num(v) { return typeof v === 'number' && Number.isFinite(v) ? v : null; }
export function peerCount(view) {
  const p = view.status?.peers;
  if (typeof p === 'number') return p;
  if (Array.isArray(p)) return p.length;
  return (view.peers || []).filter((x) => x && x.state === 'connected').length;
}
export function nowMs() { return Date.now() + S.skew; }
export function ago(ms) {
  const s = Math.max(0, Math.round((nowMs() - ms) / 1000));
  if (s < 90) return t('agoS', { n: s });
  if (s < 90 * 60) return t('agoM', { n: Math.round(s / 60) });
  if (s < 36 * 3600) return t('agoH', { n: Math.round(s / 3600) });
  return t('agoD', { n: Math.round(s / 86400) });
}
export function clock(ms) {
  const d = new Date(ms);
  return d.toLocaleTimeString(lang === 'ko' ? 'ko-KR' : 'en-GB', { hour12: false });
}
export function fullTime(ms) {
  if (typeof ms !== 'number') return '—';
  return new Date(ms).toLocaleString(lang === 'ko' ? 'ko-KR' : 'en-GB');
}
export function nameOf(s) { return s === '0' ? t('coinbase') : s; }
export function setText(e, v) {
  const s = String(v);
  if (e.textContent !== s) e.textContent = s;
}
