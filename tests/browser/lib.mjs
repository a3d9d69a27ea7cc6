// Shared helpers of the browser tests: start `chainsim demo` on free ports with a fresh
// data directory, drive headless Chromium, and always clean up.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
export const chainsimBin = process.env.CHAINSIM_BIN || path.join(repoRoot, 'target', 'release', 'chainsim');
export const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'];

// Generous everywhere: CI is a noisy 2-core machine. Nothing asserts wall-clock times.
export const LONG = 180_000;

/** Skips the test without Chromium, except on CI where a missing browser is a failure. */
export function requireChromium(t) {
  if (fs.existsSync(chromiumPath)) return true;
  if (process.env.CI === 'true') throw new Error(`Chromium not found at ${chromiumPath} (CI=true: this is a failure)`);
  t.skip(`Chromium not found at ${chromiumPath}`);
  return false;
}

export async function launchBrowser() {
  return chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS });
}

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** `count` consecutive free loopback ports, away from 5000/8000 and the ephemeral range. */
export async function freePorts(count) {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 20000);
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error('no free ports found');
}

/**
 * Starts `chainsim demo` and resolves once it prints its address. The demo runs in its
 * own process group so that stopDemo can end it and all of its nodes together.
 */
export async function startDemo({ nodes = 2, ledger = null } = {}) {
  if (!fs.existsSync(chainsimBin)) throw new Error(`${chainsimBin} missing: run cargo build --release --bin chainsim`);
  // Room for the demo's nodes plus one added by the page.
  const basePort = await freePorts(nodes + 2);
  let dashboardPort;
  do { dashboardPort = await freePorts(1); } while (dashboardPort >= basePort - 1 && dashboardPort <= basePort + nodes + 2);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chainsim-browser-'));
  const args = ['demo', '--nodes', String(nodes), '--base-port', String(basePort),
    '--dashboard-port', String(dashboardPort), '--data-dir', dataDir];
  if (ledger) args.push('--ledger', ledger);
  const proc = spawn(chainsimBin, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const demo = { proc, basePort, dashboardPort, dataDir, output: '', exited: false,
    node: (i) => `127.0.0.1:${basePort + i}` };
  proc.stdout.on('data', (d) => { demo.output += d; });
  proc.stderr.on('data', (d) => { demo.output += d; });
  proc.on('exit', () => { demo.exited = true; });
  try {
    await waitFor(() => {
      if (demo.exited) throw fatal(`chainsim demo exited early:\n${demo.output}`);
      return /control room: (http:\/\/\S+)/.exec(demo.output);
    }, 'the demo to print its address', 60_000);
  } catch (e) {
    await stopDemo(demo);
    throw e;
  }
  demo.url = `http://127.0.0.1:${dashboardPort}/`;
  return demo;
}

/** Ctrl+C for the whole process group, then a kill if it does not stop in time. */
export async function stopDemo(demo) {
  if (!demo || !demo.proc) return;
  const group = -demo.proc.pid;
  const signal = (s) => { try { process.kill(group, s); } catch (_) { /* already gone */ } };
  if (!demo.exited) {
    signal('SIGINT');
    const deadline = Date.now() + 30_000;
    while (!demo.exited && Date.now() < deadline) await sleep(200);
  }
  // Whatever is left of the group (a node that ignored the signal) goes too.
  signal('SIGKILL');
  if (!process.env.KEEP_DATA) fs.rmSync(demo.dataDir, { recursive: true, force: true });
}

/** An error that stops a waitFor at once instead of being retried. */
export function fatal(message) { return Object.assign(new Error(message), { fatal: true }); }

export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

/** Polls `check` until it returns something truthy; the error names what was awaited. */
export async function waitFor(check, what, timeout = LONG, interval = 250) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      if (e && e.fatal) throw e;
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    }
    await sleep(interval);
  }
}

/** The text of one cell of the node table. */
export async function cell(page, node, field) {
  const loc = page.locator(`tr[data-node="${node}"] [data-field="${field}"]`);
  if ((await loc.count()) === 0) return null;
  return ((await loc.first().textContent()) || '').trim();
}

/** Waits until the named cells of a node's row show the given texts. */
export async function waitCells(page, node, want, timeout = LONG) {
  let seen = {};
  await waitFor(async () => {
    seen = {};
    for (const field of Object.keys(want)) seen[field] = await cell(page, node, field);
    return Object.entries(want).every(([f, v]) => seen[f] === String(v));
  }, `${node} to show ${JSON.stringify(want)}`, timeout).catch((e) => {
    throw new Error(`${e.message}; it shows ${JSON.stringify(seen)}`);
  });
}

export function rowButton(page, node, name) {
  return page.locator(`tr[data-node="${node}"]`).getByRole('button', { name, exact: true });
}

/** The in-place message of a node's row. */
export function rowMessage(page, node) {
  return page.locator(`tr[data-node="${node}"] [data-field="message"]`);
}

/** Clicks a row button and waits for its success message; a failure message fails fast. */
export async function rowAction(page, node, name, timeout = LONG) {
  const msg = rowMessage(page, node);
  await rowButton(page, node, name).click();
  await waitFor(async () => {
    const cls = (await msg.getAttribute('class')) || '';
    if (/\bbad\b/.test(cls)) throw fatal(`${name} on ${node} failed: ${await msg.textContent()}`);
    return /\bok\b/.test(cls);
  }, `${name} on ${node} to succeed`, timeout);
}

export async function newPage(browser, { locale = 'en-US' } = {}) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, locale });
  const page = await context.newPage();
  page.pageErrors = [];
  page.on('pageerror', (e) => page.pageErrors.push(e.message));
  return page;
}
