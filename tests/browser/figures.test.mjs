// The lab's network-wide figures (crates/dashboard/assets/figures.js) are plain functions of
// what the page holds; checked here without a browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bestChain, networkFigures } from '../../crates/dashboard/assets/figures.js';

function block(hash, height, previous_hash, miner) { return [hash, { hash, height, previous_hash, miner }]; }

test('figures: stale rate, forks, reorganisations and each node\'s share of the best chain', () => {
  // g - 1a - 2a - 3a (best, mined x, y, x) and a stale 2b mined by y.
  const tree = new Map([
    block('g', 0, 'z', null), block('1a', 1, 'g', 'x'), block('2a', 2, '1a', 'y'), block('3a', 3, '2a', 'x'),
    block('2b', 2, '1a', 'y'),
  ]);
  const status = (tip, miner, extra) => ({ tip, miner, height: tree.get(tip).height, stale_blocks: 0, reorgs: 0,
    deepest_reorg: 0, propagation_median_ms: null, mining_schedule: { mode: 'manual' }, ...extra });
  const nodes = new Map([
    ['n1', { address: 'n1', status: status('3a', 'x', { stale_blocks: 1, reorgs: 1, deepest_reorg: 1, propagation_median_ms: 300,
      mining_schedule: { mode: 'auto', share: 0.6 } }) }],
    ['n2', { address: 'n2', status: status('3a', 'y', { propagation_median_ms: 500, mining_schedule: { mode: 'auto', share: 0.4 } }) }],
    ['n3', { address: 'n3', status: null }],
  ]);
  assert.deepEqual(bestChain(nodes, tree).map((b) => b.hash), ['3a', '2a', '1a']);
  const f = networkFigures(nodes, tree);
  assert.equal(f.stale, 1);
  assert.equal(f.staleRate, 1 / 4);
  assert.equal(f.forks, 1);
  assert.equal(f.reorgs, 1);
  assert.equal(f.deepestReorg, 1);
  assert.equal(f.propagationMs, 400);
  assert.equal(f.window, 3);
  assert.deepEqual(f.shares.map((s) => [s.node, s.mined, s.configured]), [['n1', 2, 0.6], ['n2', 1, 0.4]]);
  assert.equal(f.shares[0].share, 2 / 3);
});

test('figures: an empty network has no rates', () => {
  const f = networkFigures(new Map(), new Map());
  assert.equal(f.staleRate, null);
  assert.equal(f.propagationMs, null);
  assert.deepEqual(f.shares, []);
});
