// The Wallets panel on an accounts network of two real nodes: every node's balances, a
// transfer sent through the form (the sender picked among the demo accounts) and mined,
// and the double-spend lesson: one transfer kept, the other refused by a named rule.
// Every block is mined by hand, so nothing waits for luck.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  fatal, launchBrowser, newPage, requireChromium, rowAction, startDemo, stopDemo, waitCells, waitFor,
} from './lib.mjs';

async function nodeGet(addr, path) {
  const r = await fetch(`http://${addr}${path}`);
  if (!r.ok) throw new Error(`GET ${addr}${path}: ${r.status}`);
  return r.json();
}

/** The balance (or the pending balance) the Wallets table shows for an account on a node. */
async function walletCell(page, account, node, field = 'balance') {
  const loc = page.locator(`#wallets-rows tr[data-account="${account}"] td[data-node="${node}"] [data-field="${field}"]`);
  if ((await loc.count()) === 0) return null;
  return ((await loc.first().textContent()) || '').trim();
}

async function waitWallet(page, account, nodes, want, field = 'balance') {
  let seen = [];
  await waitFor(async () => {
    seen = [];
    for (const n of nodes) seen.push(await walletCell(page, account, n, field));
    return seen.every((v) => v === want);
  }, `${account}'s ${field} to read ${want} on every node`).catch((e) => {
    throw new Error(`${e.message}; it reads ${JSON.stringify(seen)}`);
  });
}

/** Waits for a message with class `ok`; a `bad` one fails at once with its text. */
async function waitOk(page, selector, what) {
  const msg = page.locator(selector);
  await waitFor(async () => {
    const cls = (await msg.getAttribute('class')) || '';
    if (/\bbad\b/.test(cls)) throw fatal(`${what} failed: ${await msg.textContent()}`);
    return /\bok\b/.test(cls);
  }, what, 60_000);
}

test('wallets: balances on every node, a transfer through the form, a double spend', { timeout: 10 * 60_000 }, async (t) => {
  if (!requireChromium(t)) return;
  let demo, browser;
  try {
    demo = await startDemo({ nodes: 2, ledger: 'accounts' });
    const [a, b] = [demo.node(0), demo.node(1)];
    const both = [a, b];
    browser = await launchBrowser();
    const page = await newPage(browser);
    await page.goto(demo.url);
    for (const n of both) await waitCells(page, n, { status: 'Online', length: '1' });

    // The panel shows itself on an accounts network, with alice's genesis funds on each node.
    await waitFor(() => page.locator('#wallets-card').isVisible(), 'the Wallets panel');
    await waitWallet(page, 'alice', both, '1000');
    await waitWallet(page, 'bob', both, '1000');
    // Blocks are mined on a, whose reward pays a demo account drawn at random: the lesson's
    // accounts are three others, so that only transfers move their balances.
    const minerA = (await nodeGet(a, '/status')).miner;
    const names = (await nodeGet(a, '/accounts')).accounts.filter((x) => x.name && x.address !== minerA).map((x) => x.name);
    const [payer, payee, other] = names;

    // The form's sender is a choice of demo accounts; the node signs for the payer.
    assert.equal(await page.locator('#tx-sender').evaluate((e) => e.tagName), 'SELECT');
    await page.locator('#tx-sender').selectOption(payer);
    await page.getByLabel('Recipient').fill(payee);
    await page.getByLabel('Amount').fill('10');
    await page.getByLabel('Send to node').selectOption(a);
    await page.locator('#tx-submit').click();
    await waitOk(page, '#tx-msg', 'the transfer through the form');
    await waitWallet(page, payer, both, 'pending 990', 'pending');
    await waitWallet(page, payee, both, 'pending 1010', 'pending');
    await waitWallet(page, payer, both, '1000');

    // Mined: the confirmed balances change on every node.
    await rowAction(page, a, 'Mine');
    for (const n of both) await waitCells(page, n, { length: '2' });
    await waitWallet(page, payer, both, '990');
    await waitWallet(page, payee, both, '1010');

    // The lesson: the payer pays 100 to payee through a and to other through b, at one nonce.
    await page.locator('#ds-sender').selectOption(payer);
    await page.getByLabel('Coins').fill('100');
    await page.locator('#ds-to-a').selectOption(payee);
    await page.locator('#ds-node-a').selectOption(a);
    await page.locator('#ds-to-b').selectOption(other);
    await page.locator('#ds-node-b').selectOption(b);
    await page.locator('#ds-run').click();
    await waitOk(page, '#ds-msg', 'the double spend');
    const items = page.locator('#ds-result > li');
    await waitFor(async () => (await items.count()) === 2, 'both transfers listed');
    // Before a block, each was refused somewhere with a named rule.
    const answers = (await page.locator('#ds-result').textContent()) || '';
    assert.match(answers, /refused it: (conflict-in-mempool|nonce-conflict-chain)/, answers);
    assert.match(answers, /conflicts with [0-9a-f]{10}/, answers);

    await page.locator('#ds-mine').click();
    await waitFor(async () => (await page.locator('#ds-result > li[data-verdict="kept"]').count()) === 1
      && (await page.locator('#ds-result > li[data-verdict="refused"]').count()) === 1,
    'one transfer kept and the other refused');
    const refused = page.locator('#ds-result > li[data-verdict="refused"]');
    assert.match((await refused.getAttribute('data-rule')) || '', /^(conflict-in-mempool|nonce-conflict-chain)$/);
    assert.match((await refused.locator('[data-field="verdict"]').textContent()) || '',
      /refused: (conflict-in-mempool|nonce-conflict-chain)/);
    const kept = page.locator('#ds-result > li[data-verdict="kept"]');
    assert.match((await kept.locator('[data-field="verdict"]').textContent()) || '', /confirmed in block #2/);

    // The coins left the payer once, on every node.
    for (const n of both) await waitCells(page, n, { length: '3' });
    await waitWallet(page, payer, both, '890');
    for (const n of both) {
      const acct = await nodeGet(n, `/accounts/${payer}`);
      assert.equal(acct.balance, 890);
      assert.equal(acct.pending_balance, 890);
    }
    const p1 = await nodeGet(a, `/accounts/${payee}`), p2 = await nodeGet(a, `/accounts/${other}`);
    assert.equal(p1.balance + p2.balance, 1010 + 1000 + 100, 'exactly one of them was paid');

    // Coins the payer does not have: every node refuses both, by name, and nothing waits.
    await page.getByLabel('Coins').fill('100000');
    await page.locator('#ds-run').click();
    await waitFor(async () => (await page.locator('#ds-result > li[data-rule="insufficient-funds"][data-verdict="refused"]').count()) === 2,
      'both transfers refused for insufficient funds');
    assert.equal(await page.locator('#ds-mine').isVisible(), false);
    assert.deepEqual(page.pageErrors, []);
  } finally {
    if (browser) await browser.close().catch(() => {});
    await stopDemo(demo);
  }
});
