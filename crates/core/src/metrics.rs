//! What a node measures of the network's behaviour, counted where blocks are accepted so
//! that a simulator gets the same numbers as a live node: stale blocks (ones that left the
//! best chain or never joined it), reorganisations by depth, and how long relayed blocks
//! took to arrive (arrival time minus the block's timestamp).

use crate::chain::TipChange;

/// Upper bounds of the reorganisation depth histogram, in blocks.
pub const REORG_DEPTH_BUCKETS: [u64; 7] = [1, 2, 3, 5, 10, 20, 50];
/// Upper bounds of the block propagation histogram, in milliseconds.
pub const PROPAGATION_BUCKETS_MS: [u64; 11] = [10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000];
/// Propagation delays kept for the median.
const RECENT_DELAYS: usize = 256;

/// A cumulative histogram as Prometheus writes one: counts per upper bound, plus the
/// count and sum of every observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram<const N: usize> {
    bounds: &'static [u64; N],
    /// Observations at or below each bound (not cumulative; see [`Histogram::cumulative`]).
    /// In place: every block a node takes counts here, and a buffer of their own made each
    /// count a cache miss on a simulator's ten thousand nodes.
    counts: [u64; N],
    /// Every observation.
    pub count: u64,
    /// Their sum.
    pub sum: u64,
}

impl<const N: usize> Histogram<N> {
    /// An empty histogram with these upper bounds (ascending).
    pub fn new(bounds: &'static [u64; N]) -> Self {
        Self {
            bounds,
            counts: [0; N],
            count: 0,
            sum: 0,
        }
    }

    /// Counts one value.
    pub fn observe(&mut self, value: u64) {
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum = self.sum.saturating_add(value);
    }

    /// `(upper bound, observations at or below it)` for each bound, as `le` buckets; the
    /// `+Inf` bucket is [`Histogram::count`].
    pub fn cumulative(&self) -> Vec<(u64, u64)> {
        let mut total = 0;
        self.bounds
            .iter()
            .zip(&self.counts)
            .map(|(b, c)| {
                total += c;
                (*b, total)
            })
            .collect()
    }
}

/// The network measurements of one node. A node holds them boxed, apart from what its
/// announcements read: only a block taken touches them.
#[derive(Debug, Clone)]
pub struct ChainMetrics {
    /// Blocks that left the best chain or never joined it.
    pub stale_blocks: u64,
    /// Milliseconds from a relayed block's timestamp to its arrival here.
    pub propagation_ms: Histogram<{ PROPAGATION_BUCKETS_MS.len() }>,
    /// The latest propagation delays (up to [`RECENT_DELAYS`]), the oldest overwritten
    /// once full: the median needs no order.
    recent_delays: Vec<u64>,
    /// Where the next delay goes once `recent_delays` is full.
    next_delay: usize,
    /// Deepest reorganisation seen.
    pub deepest_reorg: u64,
    /// Depth (blocks disconnected) of each reorganisation.
    pub reorg_depth: Histogram<{ REORG_DEPTH_BUCKETS.len() }>,
}

impl Default for ChainMetrics {
    fn default() -> Self {
        Self {
            stale_blocks: 0,
            propagation_ms: Histogram::new(&PROPAGATION_BUCKETS_MS),
            recent_delays: Vec::new(),
            next_delay: 0,
            deepest_reorg: 0,
            reorg_depth: Histogram::new(&REORG_DEPTH_BUCKETS),
        }
    }
}

impl ChainMetrics {
    /// Metrics with room for the delays of `blocks` relayed blocks (up to the 256 kept),
    /// made at once rather than by doubling (see [`crate::NodeConfig::expected_blocks`]).
    pub fn with_room(blocks: usize) -> Self {
        Self {
            recent_delays: Vec::with_capacity(blocks.min(RECENT_DELAYS)),
            ..Self::default()
        }
    }

    /// Counts what inserting one new block did to the best chain. A block that stays off
    /// it is stale; a reorganisation makes its disconnected blocks stale and the earlier
    /// side blocks it connects (counted stale when they came) not stale any more.
    pub fn on_block_inserted(&mut self, change: &TipChange) {
        if change.is_unchanged() {
            self.stale_blocks += 1;
            return;
        }
        if change.is_reorg() {
            let depth = change.disconnected.len() as u64;
            let revived = change.connected.len().saturating_sub(1) as u64;
            self.stale_blocks = (self.stale_blocks + depth).saturating_sub(revived);
            self.reorg_depth.observe(depth);
            self.deepest_reorg = self.deepest_reorg.max(depth);
        }
    }

    /// Counts a relayed block that arrived at `arrival_ms` carrying `timestamp_ms` (a
    /// timestamp ahead of our clock counts as no delay).
    pub fn on_block_relayed(&mut self, timestamp_ms: u64, arrival_ms: u64) {
        let delay = arrival_ms.saturating_sub(timestamp_ms);
        self.propagation_ms.observe(delay);
        if self.recent_delays.len() < RECENT_DELAYS {
            self.recent_delays.push(delay);
        } else {
            self.recent_delays[self.next_delay] = delay;
            self.next_delay = (self.next_delay + 1) % RECENT_DELAYS;
        }
    }

    /// The median delay of the latest relayed blocks (up to 256).
    pub fn median_propagation_ms(&self) -> Option<u64> {
        let mut v = self.recent_delays.clone();
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chainsim_primitives::BlockHash;

    fn change(disconnected: usize, connected: usize) -> TipChange {
        TipChange {
            disconnected: vec![BlockHash::ZERO; disconnected],
            connected: vec![BlockHash::ZERO; connected],
        }
    }

    #[test]
    fn side_blocks_and_reorgs_count_stale_blocks() {
        let mut m = ChainMetrics::default();
        m.on_block_inserted(&change(0, 1)); // extends the tip
        m.on_block_inserted(&change(0, 0)); // a rival at the same height: stale
        assert_eq!(m.stale_blocks, 1);
        // The rival's child wins: our old tip leaves, the rival comes back.
        m.on_block_inserted(&change(1, 2));
        assert_eq!((m.stale_blocks, m.deepest_reorg), (1, 1));
        m.on_block_inserted(&change(3, 4));
        assert_eq!(m.deepest_reorg, 3);
        assert_eq!(m.reorg_depth.count, 2);
        assert_eq!(m.reorg_depth.cumulative()[..3], [(1, 1), (2, 1), (3, 2)]);
    }

    #[test]
    fn propagation_is_arrival_minus_timestamp() {
        let mut m = ChainMetrics::default();
        assert_eq!(m.median_propagation_ms(), None);
        for (ts, at) in [(1_000, 1_030), (1_000, 1_300), (2_000, 1_990)] {
            m.on_block_relayed(ts, at);
        }
        assert_eq!(m.propagation_ms.sum, 330);
        assert_eq!(m.median_propagation_ms(), Some(30));
        let buckets = m.propagation_ms.cumulative();
        assert_eq!(buckets[0], (10, 1), "a timestamp ahead of the clock counts as 0");
        assert_eq!(buckets.last(), Some(&(30_000, 3)));
    }

    #[test]
    fn the_median_is_of_the_latest_delays_only() {
        let mut m = ChainMetrics::with_room(4);
        for _ in 0..RECENT_DELAYS {
            m.on_block_relayed(0, 1_000);
        }
        assert_eq!(m.median_propagation_ms(), Some(1_000));
        // A full ring: each new delay takes the oldest one's place.
        for _ in 0..RECENT_DELAYS {
            m.on_block_relayed(0, 10);
            assert_eq!(m.recent_delays.len(), RECENT_DELAYS);
        }
        assert_eq!(m.median_propagation_ms(), Some(10));
        assert_eq!(m.propagation_ms.count, 2 * RECENT_DELAYS as u64);
        assert_eq!(m.next_delay, 0, "round again to the first slot");
    }
}
