// The transaction form: checked in the page first (the same name and amount rules as the
// nodes), then sent to one node through the dashboard.

import { t } from './i18n.js';
import { $, shortHash } from './dom.js';
import { api, failText, say } from './api.js';

const MAX_U64 = 18446744073709551615n;
export const FIELDS = ['sender', 'recipient', 'amount', 'node'];
export function fieldInput(f) { return $('tx-' + f); }
export function fieldMsg(f, text) {
  $('tx-' + f + '-msg').textContent = text || '';
  const input = fieldInput(f);
  if (text) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}
// Mirrors the one name rule (primitives' normalize_name): trimmed, then 1 to 64 bytes
// without control characters; the sender may not be the coinbase's "0".
export function checkName(v, isSender) {
  const s = v.trim();
  if (!s) return t('v_required');
  if (new TextEncoder().encode(s).length > 64) return t('v_long');
  if (/[\u0000-\u001f\u007f-\u009f]/.test(s)) return t('v_control');
  if (isSender && s === '0') return t('v_zero');
  return '';
}
export function checkAmount(v) {
  const s = v.trim();
  if (!s) return t('v_required');
  if (!/^[0-9]+$/.test(s)) return t('v_amount');
  const n = BigInt(s);
  if (n < 1n) return t('v_amount');
  if (n > MAX_U64) return t('v_big');
  return '';
}
export function validateForm(focus = true) {
  const errs = {
    sender: checkName(fieldInput('sender').value, true),
    recipient: checkName(fieldInput('recipient').value, false),
    amount: checkAmount(fieldInput('amount').value),
    node: fieldInput('node').value ? '' : t('v_node'),
  };
  for (const f of FIELDS) fieldMsg(f, errs[f]);
  const bad = FIELDS.find((f) => errs[f]);
  if (bad && focus) fieldInput(bad).focus();
  return !bad;
}
export async function submitTx(ev) {
  ev.preventDefault();
  const msg = $('tx-msg');
  msg.textContent = '';
  if (!validateForm()) return;
  const node = fieldInput('node').value;
  const body = {
    sender: fieldInput('sender').value,
    recipient: fieldInput('recipient').value,
    amount: fieldInput('amount').value.trim(),
    node,
  };
  const button = $('tx-submit');
  button.disabled = true;
  button.textContent = t('sending');
  try {
    const res = await api('/api/tx', body, 15000);
    say(msg, 'ok', t('txSent', { node, txid: shortHash(res.txid, 10) }));
  } catch (e) {
    say(msg, 'bad', failText(e, node));
  } finally {
    button.disabled = false;
    button.textContent = t('sendTx');
  }
}
