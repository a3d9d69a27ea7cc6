// The original's walkthrough, done through the control room page only:
// transaction → gossip → mine → stop a node → mine more → start it → it catches up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import {
  LONG, cell, launchBrowser, newPage, repoRoot, requireChromium, rowAction, rowButton, startDemo,
  stopDemo, waitCells, waitFor,
} from './lib.mjs';

test('walkthrough: transaction, mining, a node stopping and catching up', { timeout: 15 * 60_000 }, async (t) => {
  if (!requireChromium(t)) return;
  let demo, browser;
  try {
    demo = await startDemo({ nodes: 2 });
    const [a, b] = [demo.node(0), demo.node(1)];
    browser = await launchBrowser();
    const page = await newPage(browser);
    await page.goto(demo.url);

    await waitCells(page, a, { status: 'Online', length: '1' });
    await waitCells(page, b, { status: 'Online', length: '1' });

    // 3. A transaction sent to one node reaches both.
    await page.getByLabel('Sender').fill('Alice');
    await page.getByLabel('Recipient').fill('Bob');
    await page.getByLabel('Amount').fill('10');
    await page.getByLabel('Send to node').selectOption(a);
    await page.getByRole('button', { name: /transaction/i }).click();
    await waitFor(async () => /txid/.test((await page.locator('#tx-msg').textContent()) || ''),
      'the transaction to be accepted', 30_000);
    await waitCells(page, a, { pending: '1' });
    await waitCells(page, b, { pending: '1' });

    // 4. Mining on the first node: both have length 2 and nothing pending.
    await rowAction(page, a, 'Mine');
    await waitCells(page, a, { length: '2', pending: '0' });
    await waitCells(page, b, { length: '2', pending: '0' });

    // 5. The second node stops; the first mines two more blocks.
    await rowAction(page, b, 'Stop', 60_000);
    await waitCells(page, b, { status: 'Offline' }, 30_000);
    await rowAction(page, a, 'Mine');
    await waitCells(page, a, { length: '3' });
    await rowAction(page, a, 'Mine');
    await waitCells(page, a, { length: '4' });
    assert.equal(await cell(page, b, 'status'), 'Offline');

    // 6. It starts again and catches up by itself.
    await rowAction(page, b, 'Start', 60_000);
    await waitCells(page, b, { status: 'Online', length: '4' }, LONG);
    await waitCells(page, a, { status: 'Online', length: '4', pending: '0' });

    // The chart and the explorer followed along.
    await waitFor(async () => (await page.locator(`[data-explorer-node="${b}"] [data-block]`).count()) >= 4,
      'the explorer to list the second node\'s blocks');
    // The README's picture is refreshed on request only, so a test run leaves the tree clean.
    const shot = process.env.UPDATE_SCREENSHOT
      ? path.join(repoRoot, 'docs', 'screenshot.png')
      : path.join(os.tmpdir(), 'chainsim-walkthrough.png');
    await page.screenshot({ path: shot });

    // Explorer: block #1 holds Alice's transaction, with a Merkle proof the page checks.
    const block1 = page.locator(`[data-explorer-node="${a}"] .ex-block`).filter({ hasText: '#1' }).first();
    await block1.click();
    const detail = page.locator('#block-detail');
    await waitFor(async () => (await detail.locator('td', { hasText: 'Alice' }).count()) > 0, 'block #1 to show Alice');
    assert.ok((await detail.locator('.zeros').count()) > 0, 'the hash shows its leading zeros');
    await detail.locator('tr', { hasText: 'Alice' }).getByRole('button', { name: 'Proof' }).click();
    await waitFor(async () => /Checked in your browser|does not lead|pending|reachable|answer/.test((await detail.locator('.proof').textContent()) || ''),
      'the Merkle proof to be checked', 30_000);
    assert.match(await detail.locator('.proof').textContent(), /Checked in your browser/);

    // A node joining the network appears by itself and catches up.
    await page.getByRole('button', { name: 'Add node', exact: true }).click();
    const c = await waitFor(async () => {
      const nodes = await page.locator('tr[data-node]').evaluateAll((rows) => rows.map((r) => r.dataset.node));
      return nodes.find((n) => n !== a && n !== b);
    }, 'a third node row', 60_000);
    await waitCells(page, c, { status: 'Online', length: '4' }, LONG);
    assert.ok(await rowButton(page, c, 'Mine').isVisible());

    assert.deepEqual(page.pageErrors, [], 'no script errors on the page');
  } finally {
    await browser?.close().catch(() => {});
    await stopDemo(demo);
  }
});
