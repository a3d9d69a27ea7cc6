//! What a node measures of the network's behaviour, counted where blocks are accepted so
//! that a simulator gets the same numbers as a live node: stale blocks (ones that left the
//! best chain or never joined it), reorganisations by depth, and how long relayed blocks
//! took to arrive (arrival time minus the block's timestamp).

use std::collections::VecDeque;

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
pub struct Histogram {
    bounds: &'static [u64],
    /// Observations at or below each bound (not cumulative; see [`Histogram::cumulative`]).
    counts: Vec<u64>,
    /// Every observation.
    pub count: u64,
    /// Their sum.
    pub sum: u64,
}

impl Histogram {
    /// An empty histogram with these upper bounds (ascending).
    pub fn new(bounds: &'static [u64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
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

/// The network measurements of one node.
#[derive(Debug, Clone)]
pub struct ChainMetrics {
    /// Blocks that left the best chain or never joined it.
    pub stale_blocks: u64,
    /// Depth (blocks disconnected) of each reorganisation.
    pub reorg_depth: Histogram,
    /// Deepest reorganisation seen.
    pub deepest_reorg: u64,
    /// Milliseconds from a relayed block's timestamp to its arrival here.
    pub propagation_ms: Histogram,
    recent_delays: VecDeque<u64>,
}

impl Default for ChainMetrics {
    fn default() -> Self {
        Self {
            stale_blocks: 0,
            reorg_depth: Histogram::new(&REORG_DEPTH_BUCKETS),
            deepest_reorg: 0,
            propagation_ms: Histogram::new(&PROPAGATION_BUCKETS_MS),
            recent_delays: VecDeque::new(),
        }
    }
}

impl ChainMetrics {
    /// Metrics with room for the delays of `blocks` relayed blocks (up to the 256 kept),
    /// made at once rather than by doubling (see [`crate::NodeConfig::expected_blocks`]).
    pub fn with_room(blocks: usize) -> Self {
        Self {
            recent_delays: VecDeque::with_capacity(blocks.min(RECENT_DELAYS)),
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
        if self.recent_delays.len() == RECENT_DELAYS {
            self.recent_delays.pop_front();
        }
        self.recent_delays.push_back(delay);
    }

    /// The median delay of the latest relayed blocks (up to 256).
    pub fn median_propagation_ms(&self) -> Option<u64> {
        let mut v: Vec<u64> = self.recent_delays.iter().copied().collect();
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
}
