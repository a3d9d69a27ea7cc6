// Network-wide figures, computed in one place from what the page holds: each node's
// /status (stale blocks, reorganisations, propagation, mining mode) and the fork tree's
// blocks (every node's latest blocks, each with its miner). Pure functions: no DOM.

function maxOf(values) {
  return values.reduce((m, v) => (typeof v === 'number' && v > m ? v : m), 0);
}

function median(values) {
  const xs = values.filter((v) => typeof v === 'number').sort((a, b) => a - b);
  if (!xs.length) return null;
  const mid = Math.floor(xs.length / 2);
  return xs.length % 2 ? xs[mid] : Math.round((xs[mid - 1] + xs[mid]) / 2);
}

/** The best tip the tree knows: the highest tip of any node (ties: the one most nodes share). */
export function bestTip(nodes, tree) {
  const count = new Map();
  for (const v of nodes.values()) {
    const tip = v.status && v.status.tip;
    if (typeof tip === 'string' && tree.has(tip)) count.set(tip, (count.get(tip) || 0) + 1);
  }
  let best = null;
  for (const [hash, n] of count) {
    const h = tree.get(hash).height;
    if (!best || h > best.height || (h === best.height && n > best.n)) best = { hash, height: h, n };
  }
  return best ? best.hash : null;
}

/** The best chain as far back as the tree reaches, tip first, without the genesis block. */
export function bestChain(nodes, tree) {
  const out = [];
  for (let h = bestTip(nodes, tree); h && tree.has(h); h = tree.get(h).previous_hash) {
    const b = tree.get(h);
    if (b.height === 0) break;
    out.push(b);
  }
  return out;
}

/**
 * Every figure of the lab's panel. `nodes` maps an address to its view ({status, online});
 * `tree` maps a hash to {hash, height, previous_hash, miner}.
 */
export function networkFigures(nodes, tree) {
  const statuses = [...nodes.values()].map((v) => v.status).filter(Boolean);
  const height = maxOf(statuses.map((s) => s.height));
  // Every node counts each stale block it knows of: the node that saw most saw them all.
  const stale = maxOf(statuses.map((s) => s.stale_blocks));
  const perHeight = new Map();
  for (const b of tree.values()) perHeight.set(b.height, (perHeight.get(b.height) || 0) + 1);
  const chain = bestChain(nodes, tree);
  const shares = [...nodes.values()].filter((v) => v.status).map((v) => {
    const st = v.status;
    const mined = chain.filter((b) => b.miner === st.miner).length;
    const sched = st.mining_schedule || {};
    return {
      node: v.address,
      miner: st.miner,
      mined,
      share: chain.length ? mined / chain.length : null,
      configured: sched.mode === 'auto' && typeof sched.share === 'number' ? sched.share : null,
      mode: sched.mode || 'manual',
    };
  });
  return {
    height,
    stale,
    staleRate: height + stale > 0 ? stale / (height + stale) : null,
    forks: [...perHeight.values()].filter((n) => n > 1).length,
    reorgs: maxOf(statuses.map((s) => s.reorgs)),
    deepestReorg: maxOf(statuses.map((s) => s.deepest_reorg)),
    propagationMs: median(statuses.map((s) => s.propagation_median_ms)),
    window: chain.length,
    shares,
  };
}
