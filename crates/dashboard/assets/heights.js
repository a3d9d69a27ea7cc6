// The chart of each node's chain height over time.

import { S, register } from './state.js';
import { t } from './i18n.js';
import { $, el, sv, nodeList, colorOf, nowMs } from './dom.js';

export function renderHeights() {
  const svg = $('height-svg');
  const w = Math.max(300, svg.clientWidth || 600), h = 200;
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  const pad = { l: 36, r: 12, t: 10, b: 24 };
  const samples = S.heights;
  const order = nodeList();
  const tEnd = nowMs();
  const tStart = Math.max(samples.length ? samples[0].t : tEnd - 60000, tEnd - 10 * 60000);
  const span = Math.max(20000, tEnd - tStart);
  let maxH = 1;
  for (const s of samples) for (const v of Object.values(s.h || {})) if (typeof v === 'number') maxH = Math.max(maxH, v);
  const yMax = Math.max(2, maxH + 1);
  const X = (tm) => pad.l + ((tm - (tEnd - span)) / span) * (w - pad.l - pad.r);
  const Y = (v) => h - pad.b - (v / yMax) * (h - pad.t - pad.b);
  const kids = [];
  const step = Math.max(1, Math.ceil(yMax / 5));
  for (let v = 0; v <= yMax; v += step) {
    kids.push(sv('line', { class: 'axis', x1: pad.l, x2: w - pad.r, y1: Y(v), y2: Y(v) }));
    kids.push(sv('text', { class: 'axis-label', x: pad.l - 6, y: Y(v) + 4, 'text-anchor': 'end' }, v));
  }
  const minutes = Math.round(span / 60000);
  kids.push(sv('text', { class: 'axis-label', x: pad.l, y: h - 6 }, minutes >= 1 ? t('minAgo', { n: minutes }) : ''));
  kids.push(sv('text', { class: 'axis-label', x: w - pad.r, y: h - 6, 'text-anchor': 'end' }, t('now')));
  order.forEach((a, i) => {
    // Nodes at the same height would hide each other's lines: nudge each a little.
    const nudge = (i - (order.length - 1) / 2) * 2.5;
    let d = '', prev = null, lastY = null;
    for (const s of samples) {
      if (s.t < tEnd - span) continue;
      const v = s.h ? s.h[a] : null;
      if (typeof v !== 'number') { prev = null; continue; }
      const x = X(s.t).toFixed(1), y = (Y(v) + nudge).toFixed(1);
      d += prev === null ? `M${x},${y}h1` : `H${x}V${y}`;
      prev = v; lastY = y;
    }
    const live = S.nodes.get(a);
    if (prev !== null && live && live.online) d += `H${X(tEnd).toFixed(1)}`;
    if (d) kids.push(sv('path', { d, fill: 'none', stroke: colorOf(a), 'stroke-width': 2.5, 'stroke-linejoin': 'round', 'stroke-linecap': 'round', opacity: 0.9 }));
    if (lastY !== null && live && live.online) kids.push(sv('circle', { cx: X(tEnd), cy: lastY, r: 3.5, fill: colorOf(a) }));
  });
  svg.replaceChildren(...kids);
  $('height-legend').replaceChildren(...order.map((a) => {
    const i = el('i');
    i.style.background = colorOf(a);
    return el('span', {}, i, a);
  }));
}

register({ heights: renderHeights });
