// The Wallets panel, shown only when the nodes run the accounts ledger: every demo account's
// balance on each node, the transaction form's sender as a choice of demo accounts, and the
// double-spend lesson.

import { S, mark, register } from './state.js';
import { t } from './i18n.js';
import { $, el, nodeList, shortHash } from './dom.js';
import { api, apiGet, failText, say } from './api.js';
import { fieldMsg } from './txform.js';

// What the last GET /api/accounts said: {ledger, nodes: {address: {accounts, supply} | {error}}}.
let view = { ledger: null, nodes: {} };
let names = [];         // the demo accounts, in the nodes' order
let inFlight = false, again = false, lastAsk = 0;
let lesson = null;      // the double spend's answer, plus each transfer's lookups
let lessonTimer = 0;
let senderInput = null; // the form's free-text sender, put back on an open network

/** Asks the dashboard for every node's accounts; one request at a time, the latest wins. */
async function refresh() {
  if (inFlight) { again = true; return; }
  inFlight = true;
  lastAsk = Date.now();
  try {
    const v = await apiGet('/api/accounts', 8000);
    if (v && typeof v === 'object') view = { ledger: v.ledger ?? null, nodes: v.nodes || {} };
    const found = [];
    for (const n of Object.values(view.nodes)) {
      for (const a of n.accounts || []) if (a.name && !found.includes(a.name)) found.push(a.name);
    }
    if (found.length) names = found;
    mark('wallets');
  } catch (_) {
    // The dashboard is restarting or gone; the feed shows that. Try again later.
  } finally {
    inFlight = false;
    if (again) { again = false; setTimeout(refresh, 200); }
  }
}

/** Called on every change the live feed reports: balances follow pending counts and tips. */
function onFeed() {
  if (Date.now() - lastAsk > 300) refresh();
  else if (!again) { again = true; setTimeout(() => { again = false; refresh(); }, 300); }
}

function isAccounts() { return view.ledger === 'accounts'; }

function fillSelect(sel, values, label = (v) => v) {
  const keep = sel.value;
  const same = sel.options.length === values.length && values.every((v, i) => sel.options[i].value === v);
  if (!same) {
    sel.replaceChildren(...values.map((v) => el('option', { value: v }, label(v))));
    if (values.includes(keep)) sel.value = keep;
  }
}

/** The transaction form's sender: a choice of demo accounts on an accounts network. */
function renderSender() {
  const current = $('tx-sender');
  if (isAccounts() && names.length) {
    let sel = current;
    if (current.tagName !== 'SELECT') {
      senderInput = current;
      sel = el('select', { id: 'tx-sender', name: 'sender', 'aria-describedby': 'tx-sender-msg' });
      sel.addEventListener('change', () => fieldMsg('sender', ''));
      current.replaceWith(sel);
      const list = el('datalist', { id: 'tx-recipient-names' });
      $('tx-recipient').after(list);
      $('tx-recipient').setAttribute('list', 'tx-recipient-names');
    }
    fillSelect(sel, names);
    const list = $('tx-recipient-names');
    if (list && list.options.length !== names.length) list.replaceChildren(...names.map((n) => el('option', { value: n })));
  } else if (view.ledger === 'open' && current.tagName === 'SELECT' && senderInput) {
    current.replaceWith(senderInput);
    $('tx-recipient').removeAttribute('list');
    $('tx-recipient-names')?.remove();
  }
}

function balanceCell(account, node) {
  const td = el('td', { class: 'num', 'data-account': account, 'data-node': node });
  const n = view.nodes[node];
  const a = n && (n.accounts || []).find((x) => x.name === account);
  if (!a) {
    td.append(el('span', { 'data-field': 'balance' }, '—'));
    if (n && n.error) td.title = n.error;
    return td;
  }
  td.append(el('span', { 'data-field': 'balance' }, String(a.balance)));
  const pending = el('small', { 'data-field': 'pending' }, t('walletPending', { n: a.pending_balance }));
  if (a.pending_balance === a.balance) pending.classList.add('same');
  td.append(pending);
  return td;
}

function renderWallets() {
  renderSender();
  const card = $('wallets-card');
  card.hidden = !isAccounts();
  if (card.hidden) return;
  const nodes = nodeList().filter((a) => a in view.nodes);
  $('wallets-head').replaceChildren(
    el('th', { scope: 'col' }, t('walletAccount')),
    ...nodes.map((n) => el('th', { scope: 'col', class: 'num' }, n)),
  );
  $('wallets-rows').replaceChildren(...names.map((name) => el('tr', { 'data-account': name },
    el('th', { scope: 'row' }, name),
    ...nodes.map((n) => balanceCell(name, n)),
  )));
  const online = nodeList().filter((a) => S.nodes.get(a)?.online);
  fillSelect($('ds-sender'), names);
  fillSelect($('ds-to-a'), names);
  fillSelect($('ds-to-b'), names);
  fillSelect($('ds-node-a'), online);
  fillSelect($('ds-node-b'), online);
  // Sensible first choices: alice pays bob and carol, through the first two nodes.
  if (!$('ds-box').dataset.init && names.length >= 3 && online.length >= 2) {
    $('ds-box').dataset.init = '1';
    $('ds-sender').value = names[0];
    $('ds-to-a').value = names[1];
    $('ds-to-b').value = names[2];
    $('ds-node-a').value = online[0];
    $('ds-node-b').value = online[1];
  }
  renderLesson();
}

// --- the double-spend lesson ---

async function runDoubleSpend() {
  const msg = $('ds-msg');
  const body = {
    sender: $('ds-sender').value,
    amount: $('ds-amount').value.trim(),
    to: [$('ds-to-a').value, $('ds-to-b').value],
    nodes: [$('ds-node-a').value, $('ds-node-b').value],
  };
  const button = $('ds-run');
  button.disabled = true;
  say(msg, 'wait', t('dsSending'));
  try {
    const res = await api('/api/double-spend', body, 20000);
    lesson = { ...res, lookups: {} };
    say(msg, 'ok', t('dsSent', { nonce: res.nonce }));
    clearInterval(lessonTimer);
    lessonTimer = setInterval(checkLesson, 1000);
    checkLesson();
  } catch (e) {
    say(msg, 'bad', failText(e));
  } finally {
    button.disabled = false;
  }
  mark('wallets');
}

/** Where each transfer stands on the nodes it was sent to. */
async function checkLesson() {
  if (!lesson) return;
  for (const tr of lesson.transfers) {
    for (const node of lesson.transfers.map((x) => x.node)) {
      try {
        const r = await apiGet(`/api/tx/${tr.txid}?node=${encodeURIComponent(node)}`, 4000);
        lesson.lookups[tr.txid + '@' + node] = r;
      } catch (_) {
        delete lesson.lookups[tr.txid + '@' + node];
      }
    }
  }
  if (kept() || !lesson.transfers.some((tr) => tr.answers.some((a) => a.accepted))) clearInterval(lessonTimer);
  mark('wallets');
}

/** The transfer some node holds in a block, and where. */
function kept() {
  for (const [key, r] of Object.entries(lesson.lookups)) {
    if (r && r.status === 'confirmed') return { txid: key.split('@')[0], height: r.height };
  }
  return null;
}

async function mineForLesson() {
  if (!lesson) return;
  const node = lesson.transfers[0].node;
  const button = $('ds-mine'), msg = $('ds-msg');
  button.disabled = true;
  say(msg, 'wait', t('mining'));
  try {
    const res = await api(`/api/nodes/${encodeURIComponent(node)}/mine`, undefined, 190000);
    say(msg, 'ok', t('mined', { height: res.height ?? '?', txs: res.txs ?? 0 }));
    checkLesson();
  } catch (e) {
    say(msg, 'bad', failText(e, node));
  } finally {
    button.disabled = false;
  }
}

function answerText(a) {
  if (a.accepted) return t('dsAccepted', { node: a.node });
  const why = a.rule || a.message;
  const with_ = a.conflicts_with ? ' ' + t('dsConflictsWith', { txid: shortHash(a.conflicts_with, 10) }) : '';
  return t('dsRefused', { node: a.node, rule: why }) + with_;
}

function renderLesson() {
  const list = $('ds-result'), mine = $('ds-mine');
  if (!lesson) { list.replaceChildren(); mine.hidden = true; return; }
  const winner = kept();
  // Refused by every node (insufficient funds, say): no block will hold either.
  const nowhere = !lesson.transfers.some((tr) => tr.answers.some((a) => a.accepted));
  mine.hidden = !!winner || nowhere;
  mine.textContent = t('dsMine', { node: lesson.transfers[0].node });
  list.replaceChildren(...lesson.transfers.map((tr) => {
    const refusal = tr.answers.find((a) => !a.accepted && a.rule);
    let verdict = 'pending', head;
    if (winner && winner.txid === tr.txid) {
      verdict = 'kept';
      head = t('dsKept', { height: winner.height });
    } else if (winner) {
      verdict = 'refused';
      head = t('dsDropped', { rule: refusal ? refusal.rule : '?' });
    } else if (nowhere) {
      verdict = 'refused';
      head = t('dsNowhere', { rule: refusal ? refusal.rule : tr.answers[0].message });
    } else {
      head = t('dsWaiting');
    }
    return el('li', { 'data-txid': tr.txid, 'data-verdict': verdict, 'data-rule': refusal ? refusal.rule : null },
      el('strong', null, t('dsTransfer', { amount: lesson.amount, sender: lesson.sender, to: tr.to, txid: shortHash(tr.txid, 10) })),
      ' — ', el('span', { 'data-field': 'verdict' }, head),
      el('ul', null, ...tr.answers.map((a) => el('li', { 'data-field': 'answer' }, answerText(a)))));
  }));
}

export function initWallets() {
  $('ds-run').addEventListener('click', runDoubleSpend);
  $('ds-mine').addEventListener('click', mineForLesson);
  refresh();
  setInterval(() => { if (!document.hidden) refresh(); }, 3000);
}

register({ wallets: renderWallets, walletsFeed: onFeed });
