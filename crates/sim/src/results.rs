//! What a run measured. The [`Recorder`] watches the nodes' events as the run goes (a block
//! mined, a block accepted, a reorganisation); [`Results`] is computed from it at the end.
//! Everything in [`Results`] is deterministic; wall time and memory live in [`Summary`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chainsim_core::BlockTree;
use chainsim_core::keyed_hash::KeyedMap;
use chainsim_primitives::BlockHash;
use serde::Serialize;

use crate::queue::Micros;

/// One mined block as the run saw it.
#[derive(Debug, Clone)]
pub struct BlockRecord {
    /// Its hash.
    pub hash: BlockHash,
    /// Its height.
    pub height: u64,
    /// The node that mined it.
    pub miner: usize,
    /// When it was mined.
    pub mined_at: Micros,
    /// Delay from mining to acceptance at each other node that accepted it.
    pub receptions: Receptions,
    /// Whether it is in the final best chain (set at the end).
    pub in_best_chain: bool,
    /// Its size as the bandwidth model charged it.
    pub bytes: u64,
}

/// Delays from mining to acceptance, 4 bytes each: one for every (block, node) pair of a run
/// adds up (10,000 nodes and 10,000 blocks make 10^8). Microseconds as `u32` cover 71
/// minutes; a longer delay (a node that was away) is kept whole, apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receptions {
    short: Vec<u32>,
    long: Vec<Micros>,
}

impl Receptions {
    /// Room for `n` delays, so that the list does not grow past what a run needs.
    fn with_capacity(n: usize) -> Self {
        Self {
            short: Vec::with_capacity(n),
            long: Vec::new(),
        }
    }

    /// Adds a delay.
    pub fn push(&mut self, delay: Micros) {
        match u32::try_from(delay) {
            Ok(d) => self.short.push(d),
            Err(_) => self.long.push(delay),
        }
    }

    /// How many delays.
    pub fn len(&self) -> usize {
        self.short.len() + self.long.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The delays: in arrival order, those over 71 minutes last.
    pub fn iter(&self) -> impl Iterator<Item = Micros> + '_ {
        self.short
            .iter()
            .map(|&d| Micros::from(d))
            .chain(self.long.iter().copied())
    }

    /// The delays as a vector (see [`Receptions::iter`]).
    pub fn to_vec(&self) -> Vec<Micros> {
        self.iter().collect()
    }
}

/// Watches the run.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Every block mined, in mining order.
    pub blocks: Vec<BlockRecord>,
    /// Nodes of the run: a block can reach all but its miner.
    nodes: usize,
    /// Where each block's record is: looked up once per node per block, hashed with one
    /// multiply (a block hash is random) rather than SipHash.
    index: KeyedMap<BlockHash, usize>,
    /// Reorganisation depths (blocks disconnected) and how often each happened.
    pub reorgs: BTreeMap<usize, u64>,
    /// Mined blocks the miner's own core refused (should stay 0).
    pub mine_failures: u64,
}

impl Recorder {
    /// A recorder for a run of `nodes` nodes.
    pub fn new(nodes: usize) -> Self {
        Self {
            nodes,
            ..Self::default()
        }
    }

    /// `miner` mined block `hash` at `at`.
    pub fn mined(&mut self, hash: BlockHash, height: u64, miner: usize, at: Micros, bytes: u64) {
        self.index.insert(hash, self.blocks.len());
        self.blocks.push(BlockRecord {
            hash,
            height,
            miner,
            mined_at: at,
            receptions: Receptions::with_capacity(self.nodes.saturating_sub(1)),
            in_best_chain: false,
            bytes,
        });
    }

    /// A node accepted block `hash` at `at`.
    pub fn received(&mut self, hash: &BlockHash, at: Micros) {
        if let Some(&i) = self.index.get(hash) {
            let b = &mut self.blocks[i];
            b.receptions.push(at.saturating_sub(b.mined_at));
        }
    }

    /// A node reorganised, disconnecting `depth` blocks.
    pub fn reorg(&mut self, depth: usize) {
        *self.reorgs.entry(depth).or_default() += 1;
    }
}

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Distribution {
    /// How many values.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// Mean.
    pub mean: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Distribution {
    /// Nearest-rank percentiles of `values` (microseconds), reported in milliseconds.
    pub fn of(values: &mut [Micros]) -> Self {
        values.sort_unstable();
        let sum: u128 = values.iter().map(|&v| u128::from(v)).sum();
        Self::of_sorted(values.len(), sum, |i| values[i])
    }

    /// [`Distribution::of`] every delay of `lists`, without gathering them: the few ranks
    /// asked for are found by counting (see [`select`]), so that 10^8 delays take no copy.
    /// Every short delay is below every long one, so a rank past the short ones is a rank
    /// among the (few) long ones.
    pub fn of_receptions<'a>(lists: impl Iterator<Item = &'a Receptions> + Clone) -> Self {
        let shorts = || lists.clone().map(|r| r.short.as_slice());
        let short_len: usize = shorts().map(<[u32]>::len).sum();
        let mut long: Vec<Micros> = lists.clone().flat_map(|r| r.long.iter().copied()).collect();
        long.sort_unstable();
        let len = short_len + long.len();
        if len == 0 {
            return Self::default();
        }
        let sum = shorts().flatten().map(|&v| u128::from(v)).sum::<u128>()
            + long.iter().map(|&v| u128::from(v)).sum::<u128>();
        let wanted = [rank(len, 0.5), rank(len, 0.9), rank(len, 0.99), len - 1];
        let short_ranks: Vec<usize> = wanted.iter().copied().filter(|&i| i < short_len).collect();
        let found = select(shorts, &short_ranks);
        let at = |i: usize| match short_ranks.iter().position(|&r| r == i) {
            Some(k) => Micros::from(found[k]),
            None => long[i - short_len],
        };
        Self::of_sorted(len, sum, at)
    }

    /// The percentiles of `len` sorted values summing to `sum`, the `i`th being `at(i)`.
    fn of_sorted(len: usize, sum: u128, at: impl Fn(usize) -> Micros) -> Self {
        if len == 0 {
            return Self::default();
        }
        Self {
            count: len as u64,
            p50: ms(at(rank(len, 0.5))),
            mean: round3(sum as f64 / len as f64 / 1000.0),
            p90: ms(at(rank(len, 0.9))),
            p99: ms(at(rank(len, 0.99))),
            max: ms(at(len - 1)),
        }
    }
}

/// The values at `ranks` (0-based positions in sorted order) among all values of `lists`,
/// in the order of `ranks`, found by counting rather than sorting: one pass counts the values
/// by their top 16 bits, which tells the bucket each rank falls in and its place there; a
/// second pass counts, by their low 16 bits, the values of just those buckets. Exact, two
/// reads of the lists, and about a megabyte of counters whatever their length.
fn select<'a, I: Iterator<Item = &'a [u32]>>(lists: impl Fn() -> I, ranks: &[usize]) -> Vec<u32> {
    const SPAN: usize = 1 << 16;
    let mut high = vec![0usize; SPAN];
    for v in lists().flatten() {
        high[(*v >> 16) as usize] += 1;
    }
    // For each rank: its bucket and its place among the bucket's values.
    let places: Vec<(usize, usize)> = ranks
        .iter()
        .map(|&r| {
            let mut before = 0;
            for (bucket, &count) in high.iter().enumerate() {
                if r < before + count {
                    return (bucket, r - before);
                }
                before += count;
            }
            (SPAN - 1, 0) // unreachable for a rank below the number of values
        })
        .collect();
    let mut buckets: Vec<usize> = places.iter().map(|p| p.0).collect();
    buckets.sort_unstable();
    buckets.dedup();
    let mut low = vec![vec![0usize; SPAN]; buckets.len()];
    for v in lists().flatten() {
        if let Ok(k) = buckets.binary_search(&((*v >> 16) as usize)) {
            low[k][(*v & 0xffff) as usize] += 1;
        }
    }
    places
        .iter()
        .map(|&(bucket, place)| {
            let counts = buckets.binary_search(&bucket).ok().and_then(|k| low.get(k));
            let mut before = 0;
            for (value, &count) in counts.into_iter().flatten().enumerate() {
                if place < before + count {
                    return ((bucket << 16) | value) as u32;
                }
                before += count;
            }
            u32::MAX
        })
        .collect()
}

/// Where the nearest-rank `q` quantile of `len` sorted values is.
fn rank(len: usize, q: f64) -> usize {
    ((q * len as f64).ceil() as usize).clamp(1, len) - 1
}

fn ms(us: Micros) -> f64 {
    round3(us as f64 / 1000.0)
}

/// Rounded to three decimals, so that the JSON has no float noise.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The deterministic results of one run (`--json` prints these plus [`Summary`]'s fields).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Results {
    /// Scenario name.
    pub scenario: String,
    /// Seed of the run.
    pub seed: u64,
    /// Relay mode.
    pub relay: String,
    /// Nodes simulated.
    pub nodes: usize,
    /// Expected seconds between blocks.
    pub interval_s: f64,
    /// Nominal block size, bytes.
    pub block_bytes: u64,
    /// Links up when mining started.
    pub links: u64,
    /// Blocks mined, stale ones included.
    pub blocks_mined: u64,
    /// Height of the final best chain.
    pub height: u64,
    /// Mined blocks not in the final best chain.
    pub stale_blocks: u64,
    /// `stale_blocks / blocks_mined`.
    pub stale_rate: f64,
    /// Time from mining to acceptance over every (block, other node) pair.
    pub reception_ms: Distribution,
    /// Per block, the time until 50% of all nodes held it; median and p90 over blocks.
    pub reach_50_ms: Distribution,
    /// Per block, the time until 90% of all nodes held it; median and p90 over blocks.
    pub reach_90_ms: Distribution,
    /// (block, node) pairs that never accepted a block by the end.
    pub missed_receptions: u64,
    /// Reorganisations over all nodes, by depth (blocks disconnected).
    pub reorg_depths: BTreeMap<usize, u64>,
    /// Messages sent.
    pub messages: u64,
    /// Bytes sent (Bitcoin wire sizes, blocks at their nominal size).
    pub bytes: u64,
    /// Events simulated (popped from the queue).
    pub events: u64,
    /// Inputs handed to node cores.
    pub inputs: u64,
    /// Virtual seconds simulated, warm-up included.
    pub virtual_s: f64,
    /// Distinct tips held by the nodes at the end (1 when all agree).
    pub tips_at_end: usize,
    /// The quiet period ran out (`quiet_s`) with the nodes still on several tips and
    /// messages still on their way: the last blocks had not spread yet. Absent otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quiet_cut_short: bool,
    /// What became of the synthetic transactions (absent without a load).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactions: Option<crate::txload::TxResults>,
}

/// What the recorder, the nodes and the counters give at the end of a run.
pub struct Tally<'a> {
    /// The recorder.
    pub recorder: &'a mut Recorder,
    /// A tree holding the final best chain (of a node on the most common tip).
    pub best: &'a BlockTree,
    /// Node count.
    pub nodes: usize,
    /// Distinct tips.
    pub tips: usize,
}

impl Results {
    /// Marks blocks in the best chain and computes the statistics; counters come from
    /// `base`, whose other fields are replaced.
    pub fn compute(tally: Tally<'_>, base: Results) -> Results {
        let Tally {
            recorder,
            best,
            nodes,
            tips,
        } = tally;
        let (mut reach50, mut reach90) = (Vec::new(), Vec::new());
        let mut missed = 0u64;
        for b in &mut recorder.blocks {
            b.in_best_chain = best.is_active(&b.hash);
            missed += (nodes - 1).saturating_sub(b.receptions.len()) as u64;
            let mut r = b.receptions.to_vec();
            r.sort_unstable();
            // The miner holds its block at 0: it is one of the nodes counted.
            reach50.extend(time_to_fraction(&r, nodes, 0.5));
            reach90.extend(time_to_fraction(&r, nodes, 0.9));
        }
        let mined = recorder.blocks.len() as u64;
        let stale = recorder.blocks.iter().filter(|b| !b.in_best_chain).count() as u64;
        Results {
            blocks_mined: mined,
            height: best.height(),
            stale_blocks: stale,
            stale_rate: if mined == 0 { 0.0 } else { stale as f64 / mined as f64 },
            reception_ms: Distribution::of_receptions(recorder.blocks.iter().map(|b| &b.receptions)),
            reach_50_ms: Distribution::of(&mut reach50),
            reach_90_ms: Distribution::of(&mut reach90),
            missed_receptions: missed,
            reorg_depths: recorder.reorgs.clone(),
            tips_at_end: tips,
            ..base
        }
    }
}

/// When a block (receptions sorted, the miner not among them) was held by `frac` of
/// `nodes`; `None` if it never was.
fn time_to_fraction(sorted: &[Micros], nodes: usize, frac: f64) -> Option<Micros> {
    let need = ((frac * nodes as f64).ceil() as usize).max(1);
    if need <= 1 {
        return Some(0);
    }
    sorted.get(need - 2).copied()
}

/// Results plus what is not deterministic: wall time and memory.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The deterministic part.
    #[serde(flatten)]
    pub results: Results,
    /// Wall-clock seconds of the run (warm-up, mining and quiet period).
    pub wall_s: f64,
    /// Of which the warm-up (links forming, peer exchange).
    pub warmup_wall_s: f64,
    /// Events per wall second.
    pub events_per_s: f64,
    /// Resident memory at the end, MB (0 where unknown).
    pub rss_mb: f64,
}

/// `blocks.csv`: one row per mined block.
pub fn blocks_csv(recorder: &Recorder) -> String {
    let mut out = String::from(
        "hash,height,miner,mined_s,size_bytes,in_best_chain,reached,reception_p50_ms,reception_p90_ms,reception_max_ms\n",
    );
    for b in &recorder.blocks {
        let mut r = b.receptions.to_vec();
        let d = Distribution::of(&mut r);
        let _ = writeln!(
            out,
            "{},{},{},{:.6},{},{},{},{},{},{}",
            b.hash.to_hex(),
            b.height,
            b.miner,
            b.mined_at as f64 / 1e6,
            b.bytes,
            b.in_best_chain,
            d.count,
            d.p50,
            d.p90,
            d.max
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<Micros> = (1..=100).map(|x| x * 1000).collect();
        let d = Distribution::of(&mut v);
        assert_eq!((d.p50, d.p90, d.p99, d.max, d.mean), (50.0, 90.0, 99.0, 100.0, 50.5));
    }

    #[test]
    fn compact_receptions_give_the_percentiles_of_the_values() {
        let long = u64::from(u32::MAX) + 5;
        let values = [long, 3, 1_000, long + 7, 0, 999_999, 12];
        let mut lists = [Receptions::default(), Receptions::default()];
        for (i, v) in values.iter().enumerate() {
            lists[i % 2].push(*v);
        }
        assert_eq!(lists.iter().map(Receptions::len).sum::<usize>(), values.len());
        let mut plain = values.to_vec();
        assert_eq!(Distribution::of_receptions(lists.iter()), Distribution::of(&mut plain));
        assert_eq!(Distribution::of_receptions([].iter()), Distribution::default());
    }

    proptest::proptest! {
        /// Counting finds the percentiles sorting finds, however the delays spread over the
        /// 16-bit buckets and however many exceed the compact range.
        #[test]
        fn counting_selects_what_sorting_does(
            values in proptest::collection::vec(
                proptest::prop_oneof![0u64..70_000, 0u64..5_000_000_000, proptest::strategy::Just(65_536u64), proptest::strategy::Just(u64::from(u32::MAX))],
                1..300,
            ),
            lists in 1usize..5,
        ) {
            let mut compact = vec![Receptions::default(); lists];
            for (i, v) in values.iter().enumerate() {
                compact[i % lists].push(*v);
            }
            let mut plain = values.clone();
            proptest::prop_assert_eq!(Distribution::of_receptions(compact.iter()), Distribution::of(&mut plain));
        }
    }

    #[test]
    fn reach_counts_the_miner() {
        // 4 nodes: the miner at 0, others at 10, 20, 30.
        assert_eq!(time_to_fraction(&[10, 20, 30], 4, 0.5), Some(10));
        assert_eq!(time_to_fraction(&[10, 20, 30], 4, 0.9), Some(30));
        assert_eq!(time_to_fraction(&[10], 4, 0.9), None);
    }
}
