//! Known-answer tests: small networks whose results follow from the model by hand, run
//! through the whole simulator (the real cores, the queue, the network model). No test here
//! looks at wall-clock time.

#![allow(clippy::unwrap_used)]

use chainsim_sim::results::Results;
use chainsim_sim::scenario::{ChurnSpec, LinkChangeSpec, TxSpec};
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
        Scenario::parse("test", &self.text()).unwrap()
    }

    /// The scenario file's text.
    fn text(&self) -> String {
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
        text
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
    let mut r = sim.recorder().blocks[0].receptions.to_vec();
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

fn change(at_s: f64, until_s: Option<f64>, nodes: [usize; 2]) -> LinkChangeSpec {
    LinkChangeSpec {
        at_s,
        until_s,
        nodes: nodes.to_vec(),
        regions: vec![],
        latency_ms: 0,
        loss: 0.0,
        bandwidth_mbps: 0.0,
        cut: false,
    }
}

/// 500 ms more on the link between nodes 2 and 3 of a pushed line: nodes 3, 4 and 5
/// receive the block exactly 500 ms later, nodes 1 and 2 as before.
#[test]
fn added_latency_on_one_link_delays_the_nodes_behind_it_by_exactly_that() {
    let edges = line(6);
    let net = Net {
        nodes: 6,
        edges: &edges,
        relay: "push",
        ..BASE
    };
    let mut s = net.scenario();
    s.link_changes = vec![LinkChangeSpec {
        latency_ms: 500,
        ..change(0.0, None, [2, 3])
    }];
    let mut sim = Simulation::new(s);
    sim.run();
    let mut r = sim.recorder().blocks[0].receptions.to_vec();
    r.sort_unstable();
    assert_eq!(r, vec![100_000, 200_000, 800_000, 900_000, 1_000_000]);
}

/// A cut in the middle of a line: the far end gets nothing until the link is restored,
/// then catches up through the cores' own sync, and all end on one tip.
#[test]
fn a_cut_link_delays_the_far_end_until_it_is_restored() {
    let edges = line(4);
    let net = Net {
        nodes: 4,
        edges: &edges,
        relay: "push",
        interval_s: 10.0,
        blocks: 15,
        block_bytes: 1000,
        ..BASE
    };
    let mut s = net.scenario();
    s.link_changes = vec![LinkChangeSpec {
        cut: true,
        ..change(0.0, Some(60.0), [1, 2])
    }];
    let mut sim = Simulation::new(s);
    let res = sim.run();
    let restored = sim.mining_start() + 60_000_000;
    let mut during = 0;
    for b in &sim.recorder().blocks {
        let mut r = b.receptions.to_vec();
        r.sort_unstable();
        assert_eq!(r.len(), 3, "every node got block {}", b.height);
        if b.mined_at < restored {
            during += 1;
            assert_eq!(r[0], 100_000, "node 1 is on the miner's side");
            assert!(
                r[1..].iter().all(|&d| b.mined_at + d >= restored),
                "nodes 2 and 3 only after the restore: {r:?}"
            );
        }
    }
    assert!(during >= 2, "{during} blocks mined during the cut");
    assert_eq!(res.stale_blocks, 0);
    assert_eq!(res.tips_at_end, 1);
}

/// The same line read from an edge-list file next to the scenario file.
#[test]
fn an_edges_file_beside_the_scenario_gives_the_same_line() {
    let dir = std::env::temp_dir().join(format!("chainsim-edges-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("line.txt"),
        "# a line of six\n0 1\n1 2\n2 3\n3 4\n4 5 # the far end\n",
    )
    .unwrap();
    let edges = line(6);
    let net = Net {
        nodes: 6,
        edges: &edges,
        ..BASE
    };
    let text = net.text().replace(
        "edges = [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]",
        "edges_file = \"line.txt\"",
    );
    let file = dir.join("line.toml");
    std::fs::write(&file, text).unwrap();
    let s = Scenario::load(file.to_str().unwrap()).unwrap();
    assert_eq!(s.topology.edges, edges);
    let mut sim = Simulation::new(s);
    sim.run();
    let mut r = sim.recorder().blocks[0].receptions.to_vec();
    r.sort_unstable();
    assert_eq!(r, (1..6).map(|k| k * 300_000).collect::<Vec<u64>>());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Checks the invariant of a run with transaction load: every transaction a node took is
/// in the final best chain or in some node's mempool.
fn assert_no_transaction_lost(sim: &Simulation) {
    let load = sim.tx_load().unwrap();
    let best_tip = sim.nodes().next().unwrap().tree().tip().hash;
    let best = sim.nodes().find(|n| n.tree().tip().hash == best_tip).unwrap().tree();
    for (txid, _) in load.submitted() {
        let kept = best.find_tx(txid).is_some() || sim.nodes().any(|n| n.mempool().contains(txid));
        assert!(kept, "transaction {txid:?} lost");
    }
}

#[test]
fn synthetic_transactions_are_relayed_mined_and_none_is_lost() {
    let mut s = Scenario::load("classroom").unwrap();
    s.blocks = 10;
    s.transactions = Some(TxSpec { rate_per_s: 2.0 });
    let mut sim = Simulation::new(s.clone());
    let r = sim.run();
    let t = r.transactions.clone().unwrap();
    assert!(t.submitted > 50, "{t:?}");
    assert!(t.confirmed > t.submitted / 2, "most are mined: {t:?}");
    assert_eq!(t.lost, 0);
    assert_eq!(t.submitted, t.confirmed + t.pending);
    assert!(t.confirmation_ms.p50 > 0.0);
    assert_no_transaction_lost(&sim);
    // Blocks hold them: every confirmed one is in every node's best chain at the end.
    assert_eq!(r.tips_at_end, 1);
    assert_eq!(json(&Simulation::new(s).run()), json(&r), "deterministic with load");
}

#[test]
fn transactions_survive_a_partition_and_its_reorganisations() {
    let mut s = Scenario::load("classroom").unwrap();
    s.blocks = 30;
    s.transactions = Some(TxSpec { rate_per_s: 1.0 });
    s.partitions = vec![chainsim_sim::scenario::PartitionSpec {
        at_s: 50.0,
        heal_s: 150.0,
        share: 0.5,
    }];
    let mut sim = Simulation::new(s);
    let r = sim.run();
    assert!(r.stale_blocks > 0 && !r.reorg_depths.is_empty(), "{r:?}");
    let t = r.transactions.clone().unwrap();
    assert_eq!(t.lost, 0, "{t:?}");
    assert_no_transaction_lost(&sim);
}

#[test]
fn without_load_the_results_have_no_transactions_field() {
    let mut s = Scenario::load("classroom").unwrap();
    s.blocks = 3;
    let r = Simulation::new(s).run();
    assert!(r.transactions.is_none());
    assert!(!json(&r).contains("transactions"));
}

/// A node at the end of a line leaves for the first 60 s of mining: it receives nothing
/// meanwhile, and when it rejoins it redials its peer (it is the one that dials: a node
/// that was only dialled may find its peer has filled the slot with another address) and
/// catches up through the cores' sync, ending on the same tip with every block.
#[test]
fn a_node_that_leaves_and_returns_catches_up() {
    let edges = [(0, 1), (1, 2), (3, 2)];
    let net = Net {
        nodes: 4,
        edges: &edges,
        relay: "push",
        interval_s: 10.0,
        blocks: 15,
        block_bytes: 1000,
        ..BASE
    };
    let mut s = net.scenario();
    s.churn = vec![ChurnSpec {
        nodes: vec![3],
        leave_s: 0.0,
        return_s: Some(60.0),
    }];
    let mut sim = Simulation::new(s);
    let res = sim.run();
    let back = sim.mining_start() + 60_000_000;
    let mut during = 0;
    for b in &sim.recorder().blocks {
        let mut r = b.receptions.to_vec();
        r.sort_unstable();
        assert_eq!(r.len(), 3, "every node got block {}", b.height);
        if b.mined_at < back {
            during += 1;
            assert_eq!(&r[..2], &[100_000, 200_000], "nodes 1 and 2 as usual");
            assert!(b.mined_at + r[2] >= back, "node 3 only after it rejoined: {r:?}");
        }
    }
    assert!(during >= 2, "{during} blocks mined while node 3 was away");
    assert_eq!(res.tips_at_end, 1);
    let tips: Vec<_> = sim.nodes().map(|n| n.tree().tip().hash).collect();
    assert!(tips.windows(2).all(|w| w[0] == w[1]));
}
