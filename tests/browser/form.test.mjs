// The transaction form, hostile input, the dashboard's request guards, and the Korean page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  launchBrowser, newPage, requireChromium, startDemo, stopDemo, waitCells, waitFor,
} from './lib.mjs';

test('form validation, escaping, request guards and Korean', { timeout: 10 * 60_000 }, async (t) => {
  if (!requireChromium(t)) return;
  let demo, browser;
  try {
    demo = await startDemo({ nodes: 2 });
    const [a, b] = [demo.node(0), demo.node(1)];
    browser = await launchBrowser();
    const page = await newPage(browser);
    const posted = [];
    page.on('request', (r) => { if (r.method() === 'POST' && r.url().includes('/api/tx')) posted.push(r.postData()); });
    let dialogs = 0;
    page.on('dialog', (d) => { dialogs++; d.dismiss().catch(() => {}); });
    await page.goto(demo.url);
    await waitCells(page, a, { status: 'Online' });
    await waitCells(page, b, { status: 'Online' });

    const sender = page.getByLabel('Sender');
    const recipient = page.getByLabel('Recipient');
    const amount = page.getByLabel('Amount');
    const submit = page.getByRole('button', { name: /transaction/i });
    const fieldMsg = (f) => page.locator(`#tx-${f}-msg`);

    await t.test('bad input shows a message next to the field and sends nothing', async () => {
      await sender.fill('');
      await recipient.fill('Bob');
      await amount.fill('10');
      await submit.click();
      assert.notEqual((await fieldMsg('sender').textContent()).trim(), '');
      assert.equal(await sender.getAttribute('aria-invalid'), 'true');
      await sender.fill('Alice');
      for (const bad of ['0', '-5', '1.5', 'abc', '']) {
        await amount.fill(bad);
        await submit.click();
        const msg = (await fieldMsg('amount').textContent()).trim();
        assert.notEqual(msg, '', `amount ${JSON.stringify(bad)} must be refused`);
        assert.equal((await fieldMsg('sender').textContent()).trim(), '');
      }
      // The message sits next to its field.
      const field = page.locator('.field', { has: page.locator('#tx-amount') });
      assert.equal(await field.locator('#tx-amount-msg').count(), 1);
      await page.waitForTimeout(500);
      assert.deepEqual(posted, [], 'no request was sent');
      await waitCells(page, a, { pending: '0' });
    });

    await t.test('a sender named <script> is shown as text', async () => {
      const evil = '<script>alert(1)</script>';
      await sender.fill(evil);
      await recipient.fill('<img src=x onerror=alert(2)>');
      await amount.fill('7');
      await submit.click();
      await waitFor(async () => /txid/.test((await page.locator('#tx-msg').textContent()) || ''),
        'the transaction to be accepted', 30_000);
      assert.equal(posted.length, 1);
      await waitCells(page, b, { pending: '1' });
      await waitFor(async () => ((await page.locator('#activity').textContent()) || '').includes(evil),
        'the activity list to show the sender as text');
      await waitFor(async () => ((await page.locator('#prop-table').textContent()) || '').includes(evil),
        'the propagation table to show the sender as text');
      const injected = await page.evaluate(() => document.querySelectorAll('main script, main img').length);
      assert.equal(injected, 0, 'no markup from node data');
      assert.equal(dialogs, 0, 'no script ran');
    });

    await t.test('state changes are refused without the page token or from another origin', async () => {
      const body = JSON.stringify({ sender: 'Mallory', recipient: 'Bob', amount: 1, node: a });
      const res = await page.evaluate(async (body) => {
        const r = await fetch('/api/tx', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
        return { status: r.status, body: await r.json() };
      }, body);
      assert.equal(res.status, 403);
      assert.ok(res.body.error);
      const token = await page.evaluate(() => document.querySelector('meta[name="chainsim-token"]').content);
      const cross = await fetch(`${demo.url}api/tx`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Origin: 'http://evil.example', 'X-Chainsim-Token': token },
        body,
      });
      assert.equal(cross.status, 403);
      const bad = await page.evaluate(async ([token, node]) => {
        const r = await fetch('/api/tx', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'X-Chainsim-Token': token },
          body: JSON.stringify({ sender: 'Alice', recipient: 'Bob', amount: 1.5, node }),
        });
        return { status: r.status, body: await r.json() };
      }, [token, a]);
      assert.equal(bad.status, 400);
      assert.match(bad.body.error, /amount/);
    });

    await t.test('the Korean page', async () => {
      await page.getByRole('button', { name: '한국어' }).click();
      await page.getByLabel('보내는 사람').waitFor();
      assert.equal(await page.locator('html').getAttribute('lang'), 'ko');
      await waitCells(page, a, { status: '온라인' });
      assert.equal(await page.locator(`tr[data-node="${a}"]`).getByRole('button', { name: '채굴', exact: true }).count(), 1);
      assert.equal(await page.locator(`tr[data-node="${a}"]`).getByRole('button', { name: '동기화', exact: true }).count(), 1);
      assert.equal((await page.locator('#tx-title').textContent()).trim(), '거래 생성 및 전파');
      assert.ok(await page.getByRole('button', { name: /거래/ }).first().isVisible());
      // Korean validation messages too.
      await page.getByLabel('금액').fill('abc');
      await page.getByRole('button', { name: '거래 보내기' }).click();
      assert.match(await page.locator('#tx-amount-msg').textContent(), /정수/);
      // Back to English.
      await page.getByRole('button', { name: 'English' }).click();
      await waitCells(page, a, { status: 'Online' });

      // A browser set to Korean gets the Korean page by default.
      const ko = await newPage(browser, { locale: 'ko-KR' });
      await ko.goto(demo.url);
      await ko.getByLabel('받는 사람').waitFor();
      await waitCells(ko, a, { status: '온라인' });
      assert.deepEqual(ko.pageErrors, []);
    });

    assert.deepEqual(page.pageErrors, []);
  } finally {
    await browser?.close().catch(() => {});
    await stopDemo(demo);
  }
});
