//! `bench relay`: what relaying a block costs the network, announce-then-fetch against push.
//!
//! Twenty core nodes in the in-memory test network (`chainsim_core::testnet`), each dialling
//! three others drawn at random (seeded, so both modes get the same graph), link delays 5–50
//! ms (peer exchange then fills each node's outbound slots). Once the links are up, each
//! round submits transactions (1, then in a second run 100) at random nodes and mines a block
//! at a random node at once, then runs until every node has that block as its tip and the
//! network is idle again; so a block carries the transactions of the round before, which
//! have spread by then. Every message sent in the rounds is counted by kind with the size
//! of its JSON encoding (the body of the frame the live node sends), and divided by the
//! number of blocks.

use anyhow::{Context, bail, ensure};
use chainsim_core::testnet::{TestNet, Traffic};
use chainsim_core::{Message, RelayMode};
use chainsim_primitives::Transaction;

/// Nodes in the graph, and how many others each dials.
const NODES: usize = 20;
const DIALS: usize = 3;
/// The graph's seed.
const SEED: u64 = 7;
/// Virtual time allowed for the links to form, and for each round.
const SETTLE_MS: u64 = 120_000;

/// What one mode cost.
struct Run {
    links: usize,
    traffic: Traffic,
    /// Virtual ms from mining to the last node taking the block, per round.
    spread_ms: Vec<u64>,
}

pub fn run(rounds: usize) -> anyhow::Result<()> {
    let rounds = rounds.max(1);
    println!(
        "== relay: a {NODES}-node random graph ({DIALS} dials per node, seed {SEED}), {rounds} rounds, \
         in the in-memory test network"
    );
    for txs in [1, 100] {
        let announce = measure(RelayMode::Announce, rounds, txs)?;
        let push = measure(RelayMode::Push, rounds, txs)?;
        report(rounds, txs, &announce, &push);
    }
    Ok(())
}

fn report(rounds: usize, txs: usize, announce: &Run, push: &Run) {
    let r = rounds as f64;
    let per = |x: u64| x as f64 / r;
    println!();
    println!(
        "-- each round: {txs} transaction(s) at random nodes, then a block at a random node; \
         links: {} (announce run), {} (push run); one body per node is {} bodies; \
         mean block body {:.0} bytes of JSON",
        announce.links,
        push.links,
        NODES - 1,
        announce
            .traffic
            .by_kind
            .get("block")
            .map_or(0.0, |k| k.bytes as f64 / k.messages.max(1) as f64),
    );
    println!(
        "| per block relayed | announce then fetch | push |\n|---|---:|---:|\n\
         | messages sent | {:.1} | {:.1} |\n| bytes sent (JSON) | {:.0} | {:.0} |\n\
         | block bodies sent | {:.1} | {:.1} |\n| links | {} | {} |\n\
         | virtual ms until every tip is the block, p50 / max | {} / {} | {} / {} |",
        per(announce.traffic.messages),
        per(push.traffic.messages),
        per(announce.traffic.bytes),
        per(push.traffic.bytes),
        per(announce.traffic.bodies),
        per(push.traffic.bodies),
        announce.links,
        push.links,
        percentile(&announce.spread_ms, 50),
        percentile(&announce.spread_ms, 100),
        percentile(&push.spread_ms, 50),
        percentile(&push.spread_ms, 100),
    );
    println!();
    println!("| kind, per block | announce: messages | bytes | push: messages | bytes |\n|---|---:|---:|---:|---:|");
    let mut kinds: Vec<&str> = announce.traffic.by_kind.keys().copied().collect();
    kinds.extend(push.traffic.by_kind.keys().copied());
    kinds.sort_unstable();
    kinds.dedup();
    for kind in kinds {
        let a = announce.traffic.by_kind.get(kind).copied().unwrap_or_default();
        let p = push.traffic.by_kind.get(kind).copied().unwrap_or_default();
        println!(
            "| {kind} | {:.1} | {:.0} | {:.1} | {:.0} |",
            per(a.messages),
            per(a.bytes),
            per(p.messages),
            per(p.bytes)
        );
    }
    println!(
        "(push sends {:.1}x the bytes and {:.1}x the bodies of announce then fetch)",
        push.traffic.bytes as f64 / announce.traffic.bytes.max(1) as f64,
        push.traffic.bodies as f64 / announce.traffic.bodies.max(1) as f64
    );
}

fn measure(mode: RelayMode, rounds: usize, txs: usize) -> anyhow::Result<Run> {
    let mut net = TestNet::with_nodes(NODES, SEED, |_, mut config| {
        config.relay = mode;
        config
    });
    net.record_sends = false;
    net.record_events = false;
    net.connect_random(DIALS);
    ensure!(net.run_until_idle(SETTLE_MS), "{mode:?}: the links did not settle");
    let links = net.link_count();
    net.count_traffic = Some(json_len);
    let mut spread_ms = Vec::with_capacity(rounds);
    for r in 0..rounds {
        for t in 0..txs {
            let payer = net.rng.usize(..NODES);
            let tx = Transaction::new(format!("payer{r}-{t}"), "payee", 1 + t as u64, net.now);
            net.submit_tx(payer, tx).context("submitting a transaction")?;
        }
        let miner = net.rng.usize(..NODES);
        let hash = net.mine(miner).context("mining a block")?;
        let start = net.now;
        let reached = net.run_until(SETTLE_MS, |n| (0..NODES).all(|i| n.tip(i) == hash));
        if !reached {
            bail!("{mode:?}: block {hash:?} of round {r} did not reach every node");
        }
        spread_ms.push(net.now - start);
        ensure!(net.run_until_idle(SETTLE_MS), "{mode:?}: round {r} did not settle");
    }
    ensure!(net.all_same_tip(), "{mode:?}: tips differ at the end");
    Ok(Run {
        links,
        traffic: net.traffic,
        spread_ms,
    })
}

/// Length of `msg` encoded as JSON (what `serde_json::to_vec` returns), without keeping
/// the encoding.
fn json_len(msg: &Message) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail, and every message serialises.
    let _ = serde_json::to_writer(&mut count, msg);
    count.0
}

/// The `p`th percentile (nearest rank) of `values`; 0 when there are none.
fn percentile(values: &[u64], p: usize) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    if v.is_empty() {
        return 0;
    }
    let rank = (p * v.len()).div_ceil(100).clamp(1, v.len());
    v[rank - 1]
}
