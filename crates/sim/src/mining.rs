//! Who finds the next block, and when. Blocks are a Poisson process at the scenario's
//! expected interval: the time to the next block anywhere is exponential (`-ln U × T`), and
//! the finder is drawn in proportion to hash power. That is the same as every miner running
//! its own Poisson process at its share of the rate, without a timer per miner. No
//! proof-of-work search happens: the simulation network's target is met by half of all
//! hashes, so the finder's core builds its block from its template, a nonce is found in a
//! couple of hashes, and the block is handed in exactly as a live miner's is.

use chainsim_core::keyed_hash::{KeyedHash, KeyedMap};

use crate::queue::Micros;
use crate::scenario::MiningSpec;

/// The miners and their hash power.
#[derive(Debug)]
pub struct Miners {
    nodes: Vec<usize>,
    /// Whether `nodes` are the pools' nodes (rather than every node).
    pools: bool,
    /// Running sums of power, for drawing a finder by binary search.
    cumulative: Vec<f64>,
    interval_us: f64,
    rng: fastrand::Rng,
}

impl Miners {
    /// The scenario's miners over `n` nodes; `seed` drives power draws, pool placement and
    /// block times.
    pub fn new(spec: &MiningSpec, n: usize, seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let (nodes, power) = if spec.pool_shares.is_empty() {
            let power = (0..n)
                .map(|_| normal(&mut rng, spec.power_mean, spec.power_sd))
                .collect();
            ((0..n).collect(), power)
        } else {
            (pool_nodes(spec, n, &mut rng), spec.pool_shares.clone())
        };
        let mut sum = 0.0;
        let cumulative = power
            .iter()
            .map(|p| {
                sum += p;
                sum
            })
            .collect();
        Self {
            pools: !spec.pool_shares.is_empty(),
            nodes,
            cumulative,
            interval_us: spec.interval_s * 1e6,
            rng,
        }
    }

    /// The nodes running mining pools (empty when every node mines).
    pub fn pool_nodes(&self) -> &[usize] {
        if self.pools { &self.nodes } else { &[] }
    }

    /// When the next block after `now` is found, and by which node.
    pub fn next_block(&mut self, now: Micros) -> (Micros, usize) {
        let u = 1.0 - self.rng.f64(); // in (0, 1]: ln never sees zero
        let wait = -u.ln() * self.interval_us;
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let x = self.rng.f64() * total;
        let k = self.cumulative.partition_point(|&c| c <= x).min(self.nodes.len() - 1);
        (now + wait.round() as Micros, self.nodes[k])
    }

    /// Share of the hash power of `node` (0 for a node that does not mine).
    pub fn share(&self, node: usize) -> f64 {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let mut prev = 0.0;
        let mut share = 0.0;
        for (k, &c) in self.cumulative.iter().enumerate() {
            if self.nodes[k] == node {
                share += c - prev;
            }
            prev = c;
        }
        share / total
    }
}

/// The nodes running the pools: as listed, or distinct nodes at random.
fn pool_nodes(spec: &MiningSpec, n: usize, rng: &mut fastrand::Rng) -> Vec<usize> {
    if !spec.pool_nodes.is_empty() {
        return spec.pool_nodes.clone();
    }
    let mut all: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut all);
    all.truncate(spec.pool_shares.len());
    all
}

/// A normal draw (Box–Muller), cut at 1% of the mean so that no node has no power.
fn normal(rng: &mut fastrand::Rng, mean: f64, sd: f64) -> f64 {
    (mean + sd * standard_normal(rng)).max(mean * 0.01)
}

/// A draw from the standard normal distribution (Box–Muller).
fn standard_normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = 1.0 - rng.f64();
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// The size of each block the run mines: the scenario's nominal size, or a draw around it.
#[derive(Debug)]
pub struct BlockSizes {
    mean: u64,
    sd: f64,
    rng: fastrand::Rng,
    /// Sizes by Merkle root: a message carrying a block is charged without hashing it (and
    /// the root, already a hash, looked up with one multiply rather than SipHash).
    by_root: KeyedMap<chainsim_primitives::MerkleRoot, u64>,
}

impl BlockSizes {
    /// Sizes for `spec`, drawn from `seed`.
    pub fn new(spec: &MiningSpec, seed: u64) -> Self {
        Self {
            mean: spec.block_bytes,
            sd: spec.block_bytes_sd,
            rng: fastrand::Rng::with_seed(seed),
            by_root: KeyedMap::with_hasher(KeyedHash::new(seed)),
        }
    }

    /// Draws the size of a newly mined block and remembers it.
    pub fn draw(&mut self, block: &chainsim_primitives::Block) -> u64 {
        let size = if self.sd == 0.0 {
            self.mean
        } else {
            let x = self.mean as f64 + self.sd * standard_normal(&mut self.rng);
            x.clamp(1.0, 2.0 * self.mean as f64).round() as u64
        };
        self.by_root.insert(block.header.merkle_root, size);
        size
    }

    /// The size a block was given (the nominal size for one not mined in this run, such
    /// as genesis).
    pub fn of(&self, block: &chainsim_primitives::Block) -> u64 {
        self.by_root
            .get(&block.header.merkle_root)
            .copied()
            .unwrap_or(self.mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(shares: Vec<f64>) -> MiningSpec {
        MiningSpec {
            interval_s: 10.0,
            block_bytes: 1,
            block_bytes_sd: 0.0,
            pool_shares: shares,
            pool_nodes: vec![],
            power_mean: 1.0,
            power_sd: 0.0,
        }
    }

    #[test]
    fn block_times_are_exponential_and_finders_follow_power() {
        let mut m = Miners::new(&spec(vec![3.0, 1.0]), 10, 5);
        let (mut now, mut first) = (0, 0);
        let big = m.nodes[0];
        let n = 20_000;
        for _ in 0..n {
            let (t, who) = m.next_block(now);
            now = t;
            first += usize::from(who == big);
        }
        let mean_s = now as f64 / n as f64 / 1e6;
        assert!((mean_s - 10.0).abs() < 0.3, "mean interval {mean_s}");
        let frac = first as f64 / n as f64;
        assert!((frac - 0.75).abs() < 0.02, "share {frac}");
        assert!((m.share(big) - 0.75).abs() < 1e-9);
    }

    #[test]
    fn block_sizes_are_fixed_or_drawn_around_the_nominal_size() {
        let block = |n: u8| {
            let mut b =
                chainsim_primitives::genesis_block(chainsim_primitives::CompactTarget::from_leading_zero_bits(1));
            b.header.merkle_root = chainsim_primitives::MerkleRoot([n; 32]);
            b
        };
        let mut fixed = BlockSizes::new(
            &MiningSpec {
                block_bytes: 500_000,
                ..spec(vec![])
            },
            1,
        );
        assert_eq!(fixed.draw(&block(1)), 500_000);
        let drawn_spec = MiningSpec {
            block_bytes: 500_000,
            block_bytes_sd: 100_000.0,
            ..spec(vec![])
        };
        let mut drawn = BlockSizes::new(&drawn_spec, 7);
        let sizes: Vec<u64> = (0..200u8).map(|n| drawn.draw(&block(n))).collect();
        let mean = sizes.iter().sum::<u64>() as f64 / sizes.len() as f64;
        assert!((mean - 500_000.0).abs() < 30_000.0, "mean {mean}");
        assert!(
            sizes.iter().all(|&s| (1..=1_000_000).contains(&s)),
            "cut at 1 byte and twice the mean"
        );
        assert!(sizes.iter().any(|&s| s != sizes[0]), "sizes vary");
        assert_eq!(drawn.of(&block(3)), sizes[3], "a block keeps its size");
        assert_eq!(drawn.of(&block(250)), 500_000, "an unknown block is nominal");
        let mut again = BlockSizes::new(&drawn_spec, 7);
        assert_eq!(again.draw(&block(0)), sizes[0], "the same seed, the same sizes");
    }
}
