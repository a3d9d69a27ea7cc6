// chainsim control room. Plain JS modules, no build step, no dependencies; this one wires
// the page together.

import { mark, markAll } from './state.js';
import { I18N, lang, t, useLang } from './i18n.js';
import { $ } from './dom.js';
import { FIELDS, fieldInput, fieldMsg, submitTx, validateForm } from './txform.js';
import { addNode } from './nodes.js';
import { connect } from './feed.js';
import './graph.js';
import './heights.js';
import './activity.js';
import './forktree.js';
import './explorer.js';
import { initLab } from './lab.js';
import { initWallets } from './wallets.js';

function applyLang() {
  document.documentElement.lang = lang;
  document.title = t('title');
  for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  for (const b of document.querySelectorAll('.lang button')) b.setAttribute('aria-pressed', String(b.dataset.lang === lang));
  // Field messages are in the old language: validate again only where one is shown.
  if (FIELDS.some((f) => $('tx-' + f + '-msg').textContent)) validateForm(false);
  markAll();
}
function setLang(l) {
  useLang(l);
  applyLang();
}

function showFlash() {
  const q = new URLSearchParams(location.search);
  const code = q.get('flash');
  if (!code || !(('flash_' + code) in I18N.en)) return;
  const box = $('flash');
  box.textContent = t('flash_' + code, { node: q.get('node') || '' });
  box.classList.toggle('bad', /fail|blocked|unknown/.test(code));
  box.hidden = false;
  history.replaceState(null, '', location.pathname);
  setTimeout(() => { box.hidden = true; }, 10000);
}

function init() {
  for (const b of document.querySelectorAll('.lang button')) b.addEventListener('click', () => setLang(b.dataset.lang));
  $('tx-form').addEventListener('submit', submitTx);
  for (const f of FIELDS) fieldInput(f).addEventListener('input', () => fieldMsg(f, ''));
  $('add-node').addEventListener('click', addNode);
  initLab();
  initWallets();
  applyLang();
  showFlash();
  connect();
  // Ages ("12 s ago") and the chart's time axis move even when nothing happens.
  setInterval(() => mark('table', 'heights'), 1000);
  let resizeTimer = 0;
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => mark('net', 'heights'), 150); });
}

// A module runs after the document is parsed.
init();
