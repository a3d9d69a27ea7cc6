// The activity feed: the latest events of every node, as sentences.

import { S, register } from './state.js';
import { t } from './i18n.js';
import { $, el, colorOf, portOf, clock, nameOf, shortHash } from './dom.js';

export function activityText(ev) {
  const d = ev.data || {};
  const via = d.from_peer ? ' ' + t('ev_via', { p: d.from_peer }) : '';
  switch (ev.kind) {
    case 'block': return (d.mined_here ? t('ev_block_here', { h: d.height }) : t('ev_block', { h: d.height })) + via;
    case 'tx': return t('ev_tx', { s: nameOf(String(d.sender ?? '?')), r: d.recipient ?? '?', a: d.amount ?? '?' }) + via;
    case 'reorg': return t('ev_reorg', { h: d.fork_height });
    case 'peer': return t('ev_peer', { a: d.address, s: d.state });
    case 'mining': return d.active ? t('ev_mining_on') : t('ev_mining_off');
    case 'block_rejected': return t('ev_rejected', { h: shortHash(String(d.hash ?? '?'), 10), r: d.rule ?? '?' }) + via;
    default: return null;
  }
}
export function renderActivity() {
  const list = $('activity');
  const items = S.activity.slice(-40).reverse();
  list.replaceChildren(...items.map((ev) => {
    const li = el('li', ev.kind === 'block_rejected' ? { class: 'bad', 'data-rule': String(ev.data?.rule ?? '') } : null);
    const sw = el('span', { class: 'swatch' });
    sw.style.background = colorOf(ev.node);
    li.append(el('time', { text: clock(ev.at) }), el('span', { class: 'who' }, sw, portOf(ev.node)), el('span', { text: activityText(ev) }));
    return li;
  }));
  $('no-activity').hidden = items.length > 0;
}

register({ activity: renderActivity });
