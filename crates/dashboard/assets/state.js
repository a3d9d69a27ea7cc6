// What the page knows (filled from the dashboard's live feed) and the batched rendering:
// a change marks the parts to redraw, and they are drawn once on the next animation frame.

export const S = {
  demo: false,
  nodes: new Map(),     // address -> view {address, online, managed, status, peers, error}
  chains: new Map(),    // address -> [Block] oldest first
  tree: new Map(),      // hash -> {hash, height, previous_hash, txs}
  heights: [],          // [{t, h: {address: height|null}}]
  arrivals: new Map(),  // kind:id -> record
  reorgs: new Map(),    // id -> record
  txInfo: new Map(),    // txid -> {sender, recipient, amount}
  activity: [],
  selected: null,       // {hash, node}
  skew: 0,              // dashboard clock minus page clock, ms
};

const RENDER = new Map(); // part name -> function drawing it
const dirty = new Set();
let frame = 0;

/** Each module registers the parts of the page it draws, by name. */
export function register(parts) {
  for (const [name, fn] of Object.entries(parts)) RENDER.set(name, fn);
}
export function mark(...parts) {
  for (const p of parts) dirty.add(p);
  if (!frame) frame = requestAnimationFrame(flush);
}
export function markAll() { mark(...RENDER.keys()); }
function flush() {
  frame = 0;
  const parts = [...dirty];
  dirty.clear();
  for (const p of parts) {
    const fn = RENDER.get(p);
    if (!fn) continue;
    try { fn(); } catch (e) { console.error('render', p, e); }
  }
}
