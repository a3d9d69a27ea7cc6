// The lab through the page, on three real nodes: a link's delay set from the network graph
// (and seen on both nodes' /peers), a mining mode, a partition with a branch on each side
// and its heal with the reorganisation panel, and the tamper lesson refused by every peer.
// Forks are made by hand (manual mining on each side), so nothing waits for luck.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  launchBrowser, newPage, requireChromium, rowAction, startDemo, stopDemo, waitCells, waitFor,
} from './lib.mjs';

async function nodeGet(addr, path) {
  const r = await fetch(`http://${addr}${path}`);
  if (!r.ok) throw new Error(`GET ${addr}${path}: ${r.status}`);
  return r.json();
}

async function linkOf(from, to) {
  const { peers } = await nodeGet(from, '/peers');
  return (peers.find((p) => p.address === to) || {}).link || {};
}

/** Waits for a lab message (`ok`); a `bad` one fails at once with its text. */
async function waitOk(page, selector, what) {
  const msg = page.locator(selector);
  await waitFor(async () => {
    const cls = (await msg.getAttribute('class')) || '';
    if (/\bbad\b/.test(cls)) throw Object.assign(new Error(`${what} failed: ${await msg.textContent()}`), { fatal: true });
    return /\bok\b/.test(cls);
  }, what, 60_000);
}

test('lab: a link delay, mining mode, partition and heal, a tampered block', { timeout: 10 * 60_000 }, async (t) => {
  if (!requireChromium(t)) return;
  let demo, browser;
  try {
    demo = await startDemo({ nodes: 3 });
    const [a, b, c] = [demo.node(0), demo.node(1), demo.node(2)];
    browser = await launchBrowser();
    const page = await newPage(browser);
    await page.goto(demo.url);
    for (const n of [a, b, c]) await waitCells(page, n, { status: 'Online', length: '1' });

    // A link's delay, set from the graph, lands on both ends.
    const edge = page.locator(`[data-edge="${[a, b].sort().join('|')}"]`);
    await waitFor(async () => (await edge.count()) === 1, 'the a-b link in the graph');
    await edge.click();
    await page.getByLabel('Delay (ms)').fill('150');
    await page.locator('#link-apply').click();
    await waitOk(page, '#link-msg', 'setting the delay');
    assert.equal((await linkOf(a, b)).latency_ms, 150);
    assert.equal((await linkOf(b, a)).latency_ms, 150);
    await waitFor(async () => /150 ms/.test((await edge.textContent()) || ''), 'the edge label to show the delay');
    await page.getByLabel('Delay (ms)').fill('0');
    await page.locator('#link-apply').click();
    await waitOk(page, '#link-msg', 'clearing the delay');

    // A mining mode from the lab's table reaches the node.
    await page.getByLabel('Block interval (s, whole network)').fill('3600');
    await page.locator(`tr[data-mining-node="${c}"] select[data-field="mode"]`).selectOption('interval');
    await waitFor(async () => (await nodeGet(c, '/status')).mining_schedule.mode === 'interval', 'c to mine by interval');
    assert.equal((await nodeGet(c, '/status')).mining_schedule.block_time_s, 3600);
    await page.locator(`tr[data-mining-node="${c}"] select[data-field="mode"]`).selectOption('manual');
    await waitFor(async () => (await nodeGet(c, '/status')).mining_schedule.mode === 'manual', 'c back to manual');

    // Partition: {a, b} | {c}. A transaction mined on c's side, two blocks on the other.
    await page.locator('#split-half').click();
    // The chips are drawn on the next render, not within the click.
    const groupOfC = () => page.locator(`[data-group-node="${c}"]`).getAttribute('data-group');
    await waitFor(async () => (await groupOfC()) === 'b', 'c to be put in group b');
    await page.locator('#partition').click();
    await waitOk(page, '#partition-msg', 'the partition');
    await waitCells(page, c, { peers: '0' }, 60_000);
    await page.getByLabel('Sender').fill('Alice');
    await page.getByLabel('Recipient').fill('Bob');
    await page.getByLabel('Amount').fill('7');
    await page.getByLabel('Send to node').selectOption(c);
    await page.getByRole('button', { name: /transaction/i }).click();
    await waitCells(page, c, { pending: '1' });
    await rowAction(page, c, 'Mine');
    await waitCells(page, c, { length: '2' });
    const lost = (await nodeGet(c, '/status')).tip;
    await rowAction(page, a, 'Mine');
    await rowAction(page, a, 'Mine');
    await waitCells(page, b, { length: '3' });
    // Both branches grow in the fork tree, each in its group's colour.
    await waitFor(async () => (await page.locator('#fork-svg [data-group="a"]').count()) >= 2
      && (await page.locator(`#fork-svg [data-group="b"][data-block="${lost}"]`).count()) === 1, 'two coloured branches');

    // Heal: c reorganises onto the longer branch; the panel lists what left and what came back.
    await page.locator('#heal').click();
    await waitOk(page, '#partition-msg', 'the heal');
    await waitCells(page, c, { length: '3' }, 120_000);
    const item = page.locator('#reorg-list li', { has: page.locator(`[data-disconnected="${lost}"]`) });
    await waitFor(async () => (await item.count()) >= 1, 'the reorganisation panel to list c\'s lost block');
    assert.match(await item.first().textContent(), /Alice → Bob \(7\)/);
    await waitFor(async () => /^[1-9]/.test((await page.locator('[data-figure="stale"]').textContent()) || ''),
      'the figures to count a stale block');

    // Tamper: a block with a transaction, mined on a; a's altered copy of it is refused by
    // each of a's peers, by name.
    await page.getByLabel('Sender').fill('Carol');
    await page.getByLabel('Recipient').fill('Dave');
    await page.getByLabel('Amount').fill('5');
    await page.getByLabel('Send to node').selectOption(a);
    await page.getByRole('button', { name: /transaction/i }).click();
    await waitFor(async () => (await nodeGet(a, '/status')).pending >= 1, 'a to hold the transaction');
    await rowAction(page, a, 'Mine');
    await waitCells(page, a, { length: '4' });
    const tip = (await nodeGet(a, '/status')).tip;
    await page.locator(`[data-explorer-node="${a}"] button[data-block="${tip}"]`).click();
    await page.locator(`[data-tamper="${tip}"]`).click();
    await waitOk(page, '#tamper-msg', 'the tamper');
    const peers = (await nodeGet(a, '/peers')).peers.filter((p) => p.state === 'connected').length;
    assert.ok(peers >= 1);
    const rejected = page.locator('#activity li[data-rule="merkle-root"]');
    await waitFor(async () => (await rejected.count()) >= peers, `${peers} named rejection(s) in the feed`, 60_000);
    assert.match(await rejected.first().textContent(), /merkle-root/);
    assert.deepEqual(page.pageErrors, [], 'no script errors on the page');
  } finally {
    if (browser) await browser.close().catch(() => {});
    await stopDemo(demo);
  }
});
