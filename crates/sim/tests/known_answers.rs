//! Known-answer tests: small networks whose results follow from the model by hand, run
//! through the whole simulator (the real cores, the queue, the network model). No test here
//! looks at wall-clock time.

#![allow(clippy::unwrap_used)]

use chainsim_sim::results::Results;
use chainsim_sim::{Scenario, Simulation};

/// A one-region scenario: `latency` ms between any two nodes (no spread), the given
/// bandwidth in Mbit/s (`None`: unlimited), no processing delay, and explicit edges, pools
/// and relay mode.
struct Net<'a> {
    nodes: usize,
    blocks: u64,
    latency_ms: f64,
    mbps: Option<f64>,
    edges: &'a [(usize, usize)],
    pools: &'a [(usize, f64)],
    relay: &'a str,
    interval_s: f64,
    block_bytes: u64,
    seed: u64,
}

impl Net<'_> {
    fn scenario(&self) -> Scenario {
        let bw = self
            .mbps
            .map_or(String::new(), |m| format!("upload_mbps = [{m}]\ndownload_mbps = [{m}]"));
        let edges: Vec<String> = self.edges.iter().map(|(a, b)| format!("[{a}, {b}]")).collect();
        let shares: Vec<String> = self.pools.iter().map(|(_, s)| s.to_string()).collect();
        let miners: Vec<String> = self.pools.iter().map(|(n, _)| n.to_string()).collect();
        let text = format!(
            r#"
name = "test"
nodes = {nodes}
blocks = {blocks}
seed = {seed}
relay = "{relay}"
quiet_s = 600
[network]
regions = ["one"]
region_share = [1.0]
latency_ms = [[{latency}]]
{bw}
[topology]
max_inbound = 117
edges = [{edges}]
[mining]
interval_s = {interval}
block_bytes = {size}
pool_shares = [{shares}]
pool_nodes = [{miners}]
"#,
            nodes = self.nodes,
            blocks = self.blocks,
            seed = self.seed,
            relay = self.relay,
            latency = self.latency_ms,
            edges = edges.join(", "),
            interval = self.interval_s,
            size = self.block_bytes,
            shares = shares.join(", "),
            miners = miners.join(", "),
        );
        Scenario::parse("test", &text).unwrap()
    }
}

fn line(n: usize) -> Vec<(usize, usize)> {
    (0..n - 1).map(|i| (i, i + 1)).collect()
}

const BASE: Net<'static> = Net {
    nodes: 2,
    blocks: 1,
    latency_ms: 100.0,
    mbps: None,
    edges: &[(0, 1)],
    pools: &[(0, 1.0)],
    relay: "announce",
    interval_s: 600.0,
    block_bytes: 1_000_000,
    seed: 1,
};

/// Sorted reception delays (µs) of the first block mined.
fn receptions(net: &Net<'_>) -> Vec<u64> {
    let mut sim = Simulation::new(net.scenario());
    sim.run();
    let mut r = sim.recorder().blocks[0].receptions.clone();
    r.sort_unstable();
    r
}

#[test]
fn a_line_of_nodes_receives_one_hop_after_another() {
    let edges = line(6);
    // Announce: header, getdata, block — three latencies a hop.
    let net = Net {
        nodes: 6,
        edges: &edges,
        ..BASE
    };
    let expected: Vec<u64> = (1..6).map(|k| k * 300_000).collect();
    assert_eq!(receptions(&net), expected);
    // Push: the block itself — one latency a hop.
    let net = Net { relay: "push", ..net };
    let expected: Vec<u64> = (1..6).map(|k| k * 100_000).collect();
    assert_eq!(receptions(&net), expected);
}

#[test]
fn one_links_bandwidth_adds_size_over_bandwidth() {
    // 8 Mbit/s is one byte a microsecond: a message of s bytes takes s µs to send.
    let block = 24 + 1_000_000; // Bitcoin's message envelope plus the nominal block
    let net = Net {
        mbps: Some(8.0),
        relay: "push",
        ..BASE
    };
    assert_eq!(receptions(&net), vec![100_000 + block]);
    let headers = 24 + 1 + 97; // one header in a `headers` message
    let getdata = 24 + 1 + 36; // one inventory entry
    let net = Net {
        mbps: Some(8.0),
        ..BASE
    };
    assert_eq!(receptions(&net), vec![3 * 100_000 + headers + getdata + block]);
}

#[test]
fn two_equal_miners_race_as_often_as_the_delay_allows() {
    // Blocks every T = 10 s, one-way delay d = 1 s (push, unlimited bandwidth): after one
    // miner's block, the other finds a competing one before it arrives with probability
    // p = 1 - e^(-d / 2T) (its half of the rate); each race leaves one block stale, so
    // stale blocks per best-chain block is about p.
    let net = Net {
        latency_ms: 1000.0,
        pools: &[(0, 1.0), (1, 1.0)],
        relay: "push",
        interval_s: 10.0,
        blocks: 3000,
        block_bytes: 1000,
        ..BASE
    };
    let mut sim = Simulation::new(net.scenario());
    let r = sim.run();
    let p = 1.0 - (-1.0f64 / 20.0).exp();
    let expected = p * r.height as f64;
    let sigma = expected.sqrt();
    let stale = r.stale_blocks as f64;
    assert!(
        (stale - expected).abs() < 4.0 * sigma,
        "{stale} stale blocks over height {}, expected {expected:.1} ± {sigma:.1}",
        r.height
    );
    assert_eq!(r.tips_at_end, 1);
}

#[test]
fn shorter_intervals_mean_more_stale_blocks_and_more_bandwidth_faster_blocks() {
    let run = |interval_s: f64, mbps: f64| {
        let mut s = Scenario::load("classroom").unwrap();
        s.mining.interval_s = interval_s;
        s.network.upload_mbps = vec![mbps];
        s.network.download_mbps = vec![mbps];
        s.blocks = 60;
        Simulation::new(s).run()
    };
    let slow = run(30.0, 20.0);
    let fast = run(1.0, 20.0);
    assert!(
        fast.stale_rate > slow.stale_rate,
        "{} vs {}",
        fast.stale_rate,
        slow.stale_rate
    );
    let wide = run(30.0, 200.0);
    assert!(wide.reception_ms.p50 < slow.reception_ms.p50);
}

#[test]
fn every_node_ends_on_one_tip_holding_every_best_block() {
    let mut sim = Simulation::new(Scenario::load("classroom").unwrap());
    let r = sim.run();
    assert_eq!(r.tips_at_end, 1);
    let tips: Vec<_> = sim.nodes().map(|n| n.tree().tip().hash).collect();
    assert!(tips.windows(2).all(|w| w[0] == w[1]));
    for b in &sim.recorder().blocks {
        if b.in_best_chain {
            assert_eq!(b.receptions.len(), r.nodes - 1, "block at height {} missed", b.height);
        }
    }
    assert_eq!(sim.recorder().mine_failures, 0);
}

fn json(r: &Results) -> String {
    serde_json::to_string(r).unwrap()
}

#[test]
fn the_same_scenario_and_seed_give_byte_identical_results() {
    let run = |seed: u64| {
        let mut s = Scenario::load("classroom").unwrap();
        s.seed = seed;
        s.network.loss = 0.001;
        json(&Simulation::new(s).run())
    };
    let a = run(7);
    assert_eq!(a, run(7));
    assert_ne!(a, run(8));
}

/// A partition splits the network for a while: both halves mine their own branch, so blocks
/// go stale and nodes reorganise deeper than any race does; after it heals the next blocks
/// bring everyone onto one tip again.
#[test]
fn a_partition_forks_the_network_and_healing_joins_it_again() {
    let base = || {
        let mut s = Scenario::load("classroom").unwrap();
        s.blocks = 40;
        s
    };
    let mut whole = Simulation::new(base());
    let whole = whole.run();
    let mut split = base();
    // Ten block intervals apart, from the fifth block's time on.
    split.partitions = vec![chainsim_sim::scenario::PartitionSpec {
        at_s: 50.0,
        heal_s: 150.0,
        share: 0.5,
    }];
    let mut sim = Simulation::new(split);
    let r = sim.run();
    assert!(
        r.stale_blocks > whole.stale_blocks + 2,
        "{} stale against {}",
        r.stale_blocks,
        whole.stale_blocks
    );
    let deepest = |r: &Results| r.reorg_depths.keys().max().copied().unwrap_or(0);
    assert!(deepest(&r) >= 2, "reorganisations {:?}", r.reorg_depths);
    assert!(
        deepest(&r) > deepest(&whole),
        "{:?} against {:?}",
        r.reorg_depths,
        whole.reorg_depths
    );
    assert_eq!(r.tips_at_end, 1, "healed: one tip");
}
