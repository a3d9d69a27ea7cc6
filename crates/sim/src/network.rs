//! The Internet between the simulated nodes: where each node is, how long a message takes
//! from one to another, and how long a node is busy with what it receives.
//!
//! - **Regions.** Each node is placed in a region, drawn from the region shares.
//! - **Latency.** Each pair of nodes gets a one-way latency, drawn once when they first
//!   talk from a Pareto distribution whose mean is the regions' mean (SimBlock's model:
//!   shape `0.2 × mean`); fixed per pair, so a link delivers in order as TCP does.
//! - **Bandwidth.** A message of `s` bytes from `a` to `b` takes `8s / min(up(a), down(b))`
//!   to transmit, and a node's uploads are serialised: a block sent to eight peers over a
//!   slow uplink takes eight transmission times. Downloads are not serialised.
//! - **Processing.** A node validates one block at a time, `processing_ms` each; everything
//!   arriving while it is busy waits behind (in order), so a link still delivers in order.
//! - **Loss.** With probability `loss` a message is lost and its link breaks.

use chainsim_core::keyed_hash::{KeyedHash, KeyedMap};

use crate::queue::Micros;
use crate::scenario::NetworkSpec;

/// The network model and its per-node state (uplink and CPU queues).
#[derive(Debug)]
pub struct Network {
    region_of: Vec<u8>,
    latency_ms: Vec<Vec<f64>>,
    shape_per_ms: f64,
    /// Bits per microsecond from one region to another (`from × regions + to`): the
    /// narrower of the sender's upload and the receiver's download; `None` when both are
    /// unlimited. Read for every message, so worked out once.
    pipe: Vec<Option<f64>>,
    processing_us: Micros,
    loss: f64,
    up_free: Vec<Micros>,
    busy_until: Vec<Micros>,
    /// Looked up for every message: hashed with one multiply, not SipHash.
    pair_latency: KeyedMap<(u32, u32), Micros>,
    rng: fastrand::Rng,
}

/// The table of [`Network::pipe`]. Mbit/s are bits per microsecond; an empty list of
/// bandwidths is unlimited.
fn pipes(spec: &NetworkSpec) -> Vec<Option<f64>> {
    let regions = spec.latency_ms.len();
    let rate = |v: &[f64], r: usize| v.get(r).copied();
    let mut pipe = Vec::with_capacity(regions * regions);
    for from in 0..regions {
        for to in 0..regions {
            pipe.push(match (rate(&spec.upload_mbps, from), rate(&spec.download_mbps, to)) {
                (Some(u), Some(d)) => Some(u.min(d)),
                (Some(x), None) | (None, Some(x)) => Some(x),
                (None, None) => None,
            });
        }
    }
    pipe
}

/// `us.round()` as whole microseconds, for a non-negative time: the same value as
/// `f64::round` (halves away from zero; saturating, 0 for NaN), without its call into the
/// C library, which the baseline x86-64 instruction set has no instruction for. Every
/// message's transmission time is rounded so. Exact: `us` less its whole part is exactly
/// representable, so the comparison with a half sees the true fraction.
fn round_us(us: f64) -> Micros {
    let whole = us as Micros;
    if us - whole as f64 >= 0.5 {
        whole.saturating_add(1)
    } else {
        whole
    }
}

impl Network {
    /// Places `n` nodes in regions and prepares their queues; `seed` drives placement and
    /// latency draws.
    pub fn new(spec: &NetworkSpec, n: usize, seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let total: f64 = spec.region_share.iter().sum();
        let region_of = (0..n)
            .map(|_| {
                let mut u = rng.f64() * total;
                let mut region = spec.region_share.len() - 1;
                for (r, share) in spec.region_share.iter().enumerate() {
                    if u < *share {
                        region = r;
                        break;
                    }
                    u -= share;
                }
                region as u8
            })
            .collect();
        Self {
            region_of,
            latency_ms: spec.latency_ms.clone(),
            shape_per_ms: spec.latency_shape_per_ms,
            pipe: pipes(spec),
            processing_us: (spec.processing_ms * 1000.0).round() as Micros,
            loss: spec.loss,
            up_free: vec![0; n],
            busy_until: vec![0; n],
            pair_latency: KeyedMap::with_hasher(KeyedHash::new(seed)),
            rng,
        }
    }

    /// The region index of `node`.
    pub fn region(&self, node: usize) -> usize {
        usize::from(self.region_of[node])
    }

    /// The one-way latency between two nodes (the same both ways, drawn on first use).
    pub fn latency(&mut self, a: usize, b: usize) -> Micros {
        let key = (a.min(b) as u32, a.max(b) as u32);
        if let Some(&l) = self.pair_latency.get(&key) {
            return l;
        }
        let mean = self.latency_ms[self.region(a)][self.region(b)];
        let ms = self.draw_latency(mean);
        let us = (ms * 1000.0).round() as Micros;
        self.pair_latency.insert(key, us);
        us
    }

    /// A Pareto draw with mean `mean` and shape `shape_per_ms × mean` (SimBlock's
    /// `Network.getLatency`); the mean itself when the shape leaves no finite mean.
    fn draw_latency(&mut self, mean: f64) -> f64 {
        let shape = self.shape_per_ms * mean;
        if shape <= 1.0 {
            return mean;
        }
        let scale = mean * (shape - 1.0) / shape;
        let u = 1.0 - self.rng.f64(); // in (0, 1]
        scale / u.powf(1.0 / shape)
    }

    /// Microseconds to push `bytes` from `from` to `to` through the narrower of the two
    /// pipes (zero when both are unlimited).
    pub fn transmission(&self, from: usize, to: usize, bytes: u64) -> Micros {
        self.transmission_on(self.pipe_of(from, to), bytes)
    }

    /// Which pipe messages from `from` to `to` go through (by the two nodes' regions): a
    /// driver keeps it with the link, and each message then reads neither region (the
    /// receiver's was a cache miss per message at ten thousand nodes).
    pub fn pipe_of(&self, from: usize, to: usize) -> usize {
        self.region(from) * self.latency_ms.len() + self.region(to)
    }

    /// [`Network::transmission`] through pipe `pipe` (as [`Network::pipe_of`] gives it).
    fn transmission_on(&self, pipe: usize, bytes: u64) -> Micros {
        match self.pipe[pipe] {
            Some(bits_per_us) => round_us(bytes as f64 * 8.0 / bits_per_us),
            None => 0,
        }
    }

    /// Sends `bytes` from `from` to `to` at `now`: queues it behind the sender's earlier
    /// uploads and returns when it arrives.
    pub fn transmit(&mut self, now: Micros, from: usize, to: usize, bytes: u64) -> Micros {
        let latency = self.latency(from, to);
        self.transmit_over(now, from, to, bytes, latency)
    }

    /// [`Network::transmit`] over a link whose latency the caller kept (the pair's, as
    /// [`Network::latency`] gives it), sparing the lookup of the pair.
    pub fn transmit_over(&mut self, now: Micros, from: usize, to: usize, bytes: u64, latency: Micros) -> Micros {
        self.transmit_through(now, from, self.pipe_of(from, to), bytes, latency)
    }

    /// [`Network::transmit_over`] through pipe `pipe` (as [`Network::pipe_of`] gives it for
    /// the two nodes), kept with the link by the caller.
    pub fn transmit_through(&mut self, now: Micros, from: usize, pipe: usize, bytes: u64, latency: Micros) -> Micros {
        let start = now.max(self.up_free[from]);
        let done = start + self.transmission_on(pipe, bytes);
        self.up_free[from] = done;
        done + latency
    }

    /// [`Network::transmit`], taking at least `min_us` to transmit (a link whose bandwidth
    /// a link change caps below the nodes' own).
    pub fn transmit_at_least(&mut self, now: Micros, from: usize, to: usize, bytes: u64, min_us: Micros) -> Micros {
        let start = now.max(self.up_free[from]);
        let done = start + self.transmission(from, to, bytes).max(min_us);
        self.up_free[from] = done;
        done + self.latency(from, to)
    }

    /// A message carrying `blocks` block bodies arrived at `node` at `now`: `None` when the
    /// node takes it at once, or the time it is done validating it (after what it is busy
    /// with).
    pub fn process(&mut self, now: Micros, node: usize, blocks: usize) -> Option<Micros> {
        let busy = self.busy_until[node];
        if !self.validates(blocks) && busy <= now {
            return None;
        }
        let done = now.max(busy) + self.processing_us * blocks as u64;
        self.busy_until[node] = done;
        Some(done)
    }

    /// Whether a message carrying `blocks` block bodies takes its receiver time to
    /// validate: such a message waits for it before its core sees it.
    pub fn validates(&self, blocks: usize) -> bool {
        self.processing_us * blocks as u64 > 0
    }

    /// Whether the next message is lost.
    pub fn lost(&mut self) -> bool {
        self.loss > 0.0 && self.rng.f64() < self.loss
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NetworkSpec {
        NetworkSpec {
            regions: vec!["a".into()],
            region_share: vec![1.0],
            latency_ms: vec![vec![100.0]],
            latency_shape_per_ms: 0.0,
            upload_mbps: vec![8.0],
            download_mbps: vec![16.0],
            processing_ms: 2.0,
            loss: 0.0,
        }
    }

    #[test]
    fn uploads_queue_behind_each_other() {
        let mut net = Network::new(&spec(), 3, 1);
        // 1,000 bytes at 8 Mbit/s: 1 ms each, then 100 ms of latency.
        assert_eq!(net.transmit(0, 0, 1, 1_000), 101_000);
        assert_eq!(net.transmit(0, 0, 2, 1_000), 102_000);
        assert_eq!(net.transmit(5_000, 0, 1, 1_000), 106_000);
    }

    #[test]
    fn a_message_goes_at_the_narrower_of_the_senders_upload_and_the_receivers_download() {
        let two = NetworkSpec {
            regions: vec!["a".into(), "b".into()],
            region_share: vec![1.0, 0.0],
            latency_ms: vec![vec![100.0, 100.0], vec![100.0, 100.0]],
            upload_mbps: vec![8.0, 4.0],
            download_mbps: vec![16.0, 2.0],
            ..spec()
        };
        let mut net = Network::new(&two, 2, 1);
        // Every node is in region a (its share is all); place the second in b by hand.
        net.region_of[1] = 1;
        // 1,000 bytes are 8,000 bits: a to b at min(8, 2) Mbit/s, b to a at min(4, 16).
        assert_eq!(net.transmission(0, 1, 1_000), 4_000);
        assert_eq!(net.transmission(1, 0, 1_000), 2_000);
        assert_eq!(net.transmission(0, 0, 1_000), 1_000);
        // The pipe a link keeps gives the same times as the two regions looked up.
        assert_ne!(net.pipe_of(0, 1), net.pipe_of(1, 0));
        let mut kept = Network::new(&two, 2, 1);
        kept.region_of[1] = 1;
        for (from, to) in [(0, 1), (1, 0), (0, 1), (0, 0)] {
            let pipe = kept.pipe_of(from, to);
            let by_pipe = kept.transmit_through(5, from, pipe, 1_000, 100);
            assert_eq!(by_pipe, net.transmit_over(5, from, to, 1_000, 100));
        }
        let only_up = NetworkSpec {
            download_mbps: vec![],
            ..spec()
        };
        assert_eq!(Network::new(&only_up, 2, 1).transmission(0, 1, 1_000), 1_000);
        let unlimited = NetworkSpec {
            upload_mbps: vec![],
            download_mbps: vec![],
            ..spec()
        };
        assert_eq!(Network::new(&unlimited, 2, 1).transmission(0, 1, 1_000), 0);
    }

    #[test]
    fn rounding_matches_the_standard_librarys_at_the_edges() {
        let edges = [
            0.0,
            0.49999999999999994,
            0.5,
            1.5,
            2.5,
            4_503_599_627_370_495.5,
            4_503_599_627_370_497.0,
            1e300,
            f64::INFINITY,
            f64::NAN,
        ];
        for us in edges {
            assert_eq!(round_us(us), us.round() as Micros, "{us}");
        }
    }

    proptest::proptest! {
        #[test]
        fn rounding_matches_the_standard_librarys(bytes in 0u64..1 << 40, bits_per_us in 0.001f64..1e5) {
            let us = bytes as f64 * 8.0 / bits_per_us;
            proptest::prop_assert_eq!(round_us(us), us.round() as Micros);
        }
    }

    #[test]
    fn processing_is_one_block_at_a_time_and_keeps_order() {
        let mut net = Network::new(&spec(), 2, 1);
        assert_eq!(net.process(0, 1, 0), None);
        assert_eq!(net.process(0, 1, 1), Some(2_000));
        assert_eq!(
            net.process(1_000, 1, 0),
            Some(2_000),
            "a small message waits behind the block"
        );
        assert_eq!(net.process(3_000, 1, 0), None);
    }

    #[test]
    fn only_what_carries_blocks_waits_for_validation() {
        let net = Network::new(&spec(), 2, 1);
        assert!(net.validates(1) && net.validates(3));
        assert!(!net.validates(0));
        let instant = Network::new(
            &NetworkSpec {
                processing_ms: 0.0,
                ..spec()
            },
            2,
            1,
        );
        assert!(
            !instant.validates(1),
            "no processing time: a block goes to its core as it arrives"
        );
    }

    #[test]
    fn pareto_latency_keeps_its_mean() {
        let mut s = spec();
        s.latency_shape_per_ms = 0.2;
        let mut net = Network::new(&s, 2, 7);
        let n = 20_000;
        let mean = (0..n).map(|_| net.draw_latency(100.0)).sum::<f64>() / n as f64;
        assert!((mean - 100.0).abs() < 1.0, "mean {mean}");
    }
}
