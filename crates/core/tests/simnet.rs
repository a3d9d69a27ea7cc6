//! Networks of core nodes on a deterministic in-memory network (see `support::Sim`): gossip,
//! peer exchange, partitions, loss, restarts, catch-up and a hostile peer. Seeds are pinned,
//! so each scenario is a regression test; no test looks at the wall clock (time is the
//! simulator's virtual clock).
#![allow(clippy::unwrap_used)]

mod support;

use chainsim_core::peers::{BAN_SCORE, PeerState};
use chainsim_core::protocol::{MAX_ADDRS_PER_MESSAGE, Message, WireBlock};
use chainsim_core::{Event, PeerAddr};
use chainsim_primitives::{BlockHash, MerkleRoot, Transaction, Txid};
use support::{Sim, addr, seal, solve, tx};

/// Plenty of virtual time for anything to spread (backoffs are at most 30 s).
const SETTLE_MS: u64 = 120_000;

fn all(sim: &Sim) -> Vec<usize> {
    (0..sim.nodes.len()).collect()
}

/// Runs until every node has the same tip (and at least `height`), or fails.
fn converge(sim: &mut Sim, nodes: &[usize], height: u64) {
    let ok = sim.run_until(SETTLE_MS, |s| {
        s.same_tip(nodes) && s.node(nodes[0]).tree().height() >= height
    });
    if !ok {
        let tips: Vec<_> = nodes
            .iter()
            .map(|&i| (i, sim.node(i).tree().height(), sim.tip(i)))
            .collect();
        panic!("no convergence: {tips:?}");
    }
}

/// Runs until every listed node holds `txid` in its mempool or best chain.
fn spread_tx(sim: &mut Sim, nodes: &[usize], txid: &Txid) {
    if !sim.run_until(SETTLE_MS, |s| s.everyone_has_tx(nodes, txid)) {
        let state: Vec<_> = nodes
            .iter()
            .map(|&i| {
                let n = sim.node(i);
                (
                    i,
                    n.mempool().contains(txid),
                    n.tree().find_tx(txid).map(|(e, _)| e.height()),
                )
            })
            .collect();
        panic!("tx {txid:?} did not spread; (node, in mempool, mined at height): {state:?}");
    }
}

/// Each node configures `k` distinct random others as peers.
fn random_graph(sim: &mut Sim, k: usize) {
    let n = sim.nodes.len();
    for i in 0..n {
        let mut others: Vec<usize> = (0..n).filter(|&j| j != i).collect();
        sim.rng.shuffle(&mut others);
        for &j in others.iter().take(k) {
            sim.connect(i, j);
        }
    }
}

/// Asserts that no item crossed any link more than once in each direction.
fn at_most_once(counts: &std::collections::BTreeMap<(usize, usize), usize>, what: &str) {
    for ((from, to), n) in counts {
        assert!(*n <= 1, "{what} went from node {from} to {to} {n} times");
    }
}

#[test]
fn two_nodes_share_transactions_and_blocks() {
    let mut sim = Sim::new(2, 1);
    sim.connect(1, 0);
    assert!(sim.run_until(10_000, |s| s.links_up(&[(0, 1)])));
    let txid = sim.submit_tx(0, tx(1));
    assert!(sim.run_until(10_000, |s| s.node(1).mempool().contains(&txid)));
    // Node 1 mines it; the block reaches node 0 and empties its mempool too.
    let hash = sim.mine(1);
    assert!(sim.run_until(10_000, |s| s.tip(0) == hash));
    for i in 0..2 {
        assert!(sim.node(i).mempool().is_empty());
        assert_eq!(sim.node(i).tree().find_tx(&txid).unwrap().0.hash, hash);
    }
    // Node 0 learned of node 1 from its hello alone.
    assert!(sim.is_connected(0, 1));
    sim.assert_invariants(&[0, 1]);
}

#[test]
fn line_of_ten_gossip_and_peer_exchange() {
    let mut sim = Sim::new(10, 2);
    for i in 1..10 {
        sim.connect(i, i - 1);
    }
    let line: Vec<(usize, usize)> = (1..10).map(|i| (i, i - 1)).collect();
    assert!(sim.run_until(30_000, |s| s.links_up(&line)));
    let txid = sim.submit_tx(0, tx(7));
    let every = all(&sim);
    spread_tx(&mut sim, &every, &txid);
    let hash = sim.mine(0);
    assert!(
        sim.run_until(30_000, |s| s.tip(9) == hash),
        "the block reaches the far end"
    );
    sim.run_for(10_000);
    for i in 0..10 {
        assert_eq!(sim.tip(i), hash);
        assert!(sim.node(i).tree().find_tx(&txid).is_some());
    }
    // Relaying: each item crossed each link at most once per direction.
    at_most_once(&sim.tx_sends(&txid), "the transaction");
    at_most_once(&sim.block_sends(&hash), "the block");
    // Peer exchange: the ends of the line know (and talk to) more than their neighbour.
    for i in [0, 9] {
        assert!(
            sim.node(i).peers().len() > 2,
            "node {i} knows {} peers",
            sim.node(i).peers().len()
        );
        assert!(
            sim.connected_count(i) > 1,
            "node {i} has {} links",
            sim.connected_count(i)
        );
    }
    sim.assert_invariants(&all(&sim));
}

/// Mines `blocks` blocks at random nodes, each after a random transaction at a random
/// node, letting the network work in between; then converges and checks invariants.
fn mine_randomly(sim: &mut Sim, blocks: usize, gap_ms: u64) {
    let n = sim.nodes.len();
    for b in 0..blocks {
        let at = sim.rng.usize(..n);
        let t = Transaction::new(format!("payer{b}"), "payee", 1 + b as u64, sim.now + b as u64);
        sim.submit_tx(at, t);
        let wait = sim.rng.u64(0..gap_ms);
        sim.run_for(wait);
        let miner = sim.rng.usize(..n);
        sim.mine(miner);
        let wait = sim.rng.u64(0..gap_ms);
        sim.run_for(wait);
    }
}

/// Lets the network settle, then mines one more block at a random node, which everyone
/// must end up on. Branches of equal work may both survive a burst of mining (each node
/// keeps the one it saw first); the next block decides, as in any proof-of-work network.
fn decide_and_converge(sim: &mut Sim) -> BlockHash {
    sim.run_for(30_000);
    let n = sim.nodes.len();
    let miner = sim.rng.usize(..n);
    let hash = sim.mine(miner);
    let every = all(sim);
    if !sim.run_until(SETTLE_MS, |s| every.iter().all(|&i| s.tip(i) == hash)) {
        let tips: Vec<_> = every
            .iter()
            .map(|&i| (i, sim.node(i).tree().height(), sim.tip(i)))
            .collect();
        let detail: Vec<String> = every
            .iter()
            .filter(|&&i| sim.tip(i) != hash)
            .map(|&i| {
                let n = sim.node(i);
                let links: Vec<String> = n
                    .peering()
                    .links()
                    .iter()
                    .map(|l| {
                        format!(
                            "{:?} {:?} ready={} h={} w={:?}",
                            l.id, l.addr, l.ready, l.height, l.work
                        )
                    })
                    .collect();
                let bans: Vec<String> = sim.nodes[i]
                    .events
                    .iter()
                    .filter_map(|e| match e {
                        Event::Peer {
                            state: PeerState::Banned,
                            reason,
                            ..
                        } => reason.clone(),
                        _ => None,
                    })
                    .collect();
                format!(
                    "node {i}: bans {bans:?} download {:?}, syncing {}, links {links:?}, peers {:?}",
                    n.sync().download(),
                    n.is_syncing(),
                    n.peers()
                )
            })
            .collect();
        panic!(
            "not everyone reached block {hash:?} of node {miner}: {tips:?}\n{}",
            detail.join("\n")
        );
    }
    hash
}

#[test]
fn ring_converges() {
    ring_run(3);
}

fn ring_run(seed: u64) {
    let mut sim = Sim::new(8, seed);
    for i in 0..8 {
        sim.connect(i, (i + 1) % 8);
    }
    sim.run_for(5_000);
    mine_randomly(&mut sim, 12, 400);
    decide_and_converge(&mut sim);
    // Transactions returned by the last reorganisation are still being announced when the
    // tips agree: nothing lost means "everywhere, once the network has settled".
    sim.run_for(10_000);
    sim.assert_invariants(&all(&sim));
    sim.assert_blocks_relayed_once();
    // Thirteen blocks mined, some perhaps on short-lived side branches.
    assert!(sim.node(0).tree().height() >= 6);
}

#[test]
fn random_graph_with_three_links_converges() {
    random_graph_run(4);
}

fn random_graph_run(seed: u64) {
    let mut sim = Sim::new(12, seed);
    random_graph(&mut sim, 3);
    sim.run_for(5_000);
    // Blocks found close together make competing branches.
    mine_randomly(&mut sim, 15, 60);
    decide_and_converge(&mut sim);
    sim.run_for(10_000);
    sim.assert_invariants(&all(&sim));
    sim.assert_blocks_relayed_once();
}

#[test]
fn partition_heals_to_the_heavier_side_and_loses_nothing() {
    partition_run(5);
}

fn partition_run(seed: u64) {
    let mut sim = Sim::new(6, seed);
    random_graph(&mut sim, 2);
    sim.run_for(5_000);
    sim.mine(0);
    let every = all(&sim);
    converge(&mut sim, &every, 1);

    let (a, b) = ([0, 1, 2], [3, 4, 5]);
    sim.partition(&a, &b);
    // A transaction only side A sees, mined only on side A.
    let lost_side_tx = sim.submit_tx(1, tx(42));
    sim.run_for(2_000);
    assert!(!sim.node(4).mempool().contains(&lost_side_tx));
    sim.mine(0);
    sim.run_for(1_000);
    sim.mine(2);
    sim.run_for(2_000);
    // Side B mines more.
    for m in [3, 4, 5] {
        sim.mine(m);
        sim.run_for(1_000);
    }
    converge(&mut sim, &a, 3);
    converge(&mut sim, &b, 4);
    let b_tip = sim.tip(3);
    assert_ne!(sim.tip(0), b_tip);
    assert!(sim.node(0).tree().find_tx(&lost_side_tx).is_some());

    sim.heal();
    let every = all(&sim);
    converge(&mut sim, &every, 4);
    assert_eq!(sim.tip(0), b_tip, "the heavier side wins");
    // Nothing lost: side A put it back in its mempools, side B got it relayed.
    let every = all(&sim);
    spread_tx(&mut sim, &every, &lost_side_tx);
    sim.assert_invariants(&all(&sim));
    assert!(
        sim.nodes[0]
            .events
            .iter()
            .any(|e| matches!(e, Event::Reorg { returned, .. } if returned.contains(&lost_side_tx)))
    );

    // One more block, from whichever side, confirms it everywhere.
    let hash = sim.mine(4);
    assert!(sim.run_until(SETTLE_MS, |s| (0..6).all(|i| s.tip(i) == hash)));
    for i in 0..6 {
        assert!(sim.node(i).tree().find_tx(&lost_side_tx).is_some(), "node {i}");
        assert!(!sim.node(i).mempool().contains(&lost_side_tx));
    }
    sim.assert_invariants(&all(&sim));
}

/// 10% of requests are lost; failed peers back off and come back, pings carry the tips,
/// and the network still converges once a partition heals.
fn lossy_run(seed: u64) {
    let mut sim = Sim::new(6, seed);
    sim.loss = 0.10;
    random_graph(&mut sim, 3);
    sim.run_for(10_000);
    mine_randomly(&mut sim, 4, 500);
    sim.partition(&[0, 1, 2], &[3, 4, 5]);
    for m in [0, 3, 4, 1, 5] {
        sim.submit_tx(m, Transaction::new(format!("p{m}"), "q", 3, sim.now));
        sim.mine(m);
        sim.run_for(700);
    }
    sim.heal();
    decide_and_converge(&mut sim);
    // The transactions of the losing side reach everyone too.
    let txids: Vec<Txid> = sim.accepted_txs.iter().copied().collect();
    for txid in &txids {
        let every = all(&sim);
        spread_tx(&mut sim, &every, txid);
    }
    sim.assert_invariants(&all(&sim));
}

#[test]
fn lossy_network_converges_after_healing() {
    lossy_run(6);
}

#[test]
fn lossy_network_converges_for_many_seeds() {
    let seeds: u64 = std::env::var("SIMNET_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    for seed in 100..100 + seeds {
        lossy_run(seed);
    }
}

#[test]
fn restarted_node_catches_up_from_where_it_was() {
    let mut sim = Sim::new(4, 7);
    random_graph(&mut sim, 2);
    sim.connect(3, 0);
    sim.run_for(5_000);
    for m in [0, 1, 2, 3, 0] {
        sim.mine(m);
        sim.run_for(500);
    }
    let every = all(&sim);
    converge(&mut sim, &every, 5);
    let before = sim.tip(3);

    sim.take_down(3);
    for b in 0..30 {
        sim.mine(b % 3);
        sim.run_for(200);
    }
    converge(&mut sim, &[0, 1, 2], 35);
    assert_eq!(sim.node(3).tree().height(), 5);

    let sent_before = sim.sent.len();
    let report = sim.restart(3);
    assert_eq!(report.tip, before);
    assert_eq!(report.height, 5);
    assert_eq!(report.blocks_verified, 5);
    for j in 0..3 {
        sim.connect(3, j);
    }
    let every = all(&sim);
    converge(&mut sim, &every, 35);
    // It asked with a locator starting from its own tip, not from genesis.
    let asks: Vec<Vec<BlockHash>> = sim.sent[sent_before..]
        .iter()
        .filter(|s| s.from == 3)
        .filter_map(|s| match &s.msg {
            Message::GetBlocks { locator, .. } => Some(locator.clone()),
            _ => None,
        })
        .collect();
    assert!(!asks.is_empty(), "it synced with GetBlocks");
    assert_eq!(asks[0][0], before);
    assert_eq!(asks[0].len(), 6, "five blocks then genesis");
    assert_eq!(*asks[0].last().unwrap(), sim.params.genesis_hash());
    sim.assert_invariants(&all(&sim));
}

#[test]
fn catch_up_of_1200_blocks_takes_several_batches() {
    let mut sim = Sim::new(2, 8);
    // Node 0 mines 1,200 blocks alone (block times a millisecond apart).
    for _ in 0..1_200 {
        sim.mine(0);
    }
    sim.now += 2_000;
    assert_eq!(sim.node(0).tree().height(), 1_200);
    sim.connect(1, 0);
    converge(&mut sim, &[0, 1], 1_200);
    let batches: Vec<usize> = sim
        .sent
        .iter()
        .filter(|s| s.from == 1)
        .filter_map(|s| match &s.msg {
            Message::GetBlocks { .. } => Some(1),
            _ => None,
        })
        .collect();
    // 500 + 500 + 200: three requests at least.
    assert!(batches.len() >= 3, "{} GetBlocks", batches.len());
    let syncs: Vec<(u64, bool)> = sim.nodes[1]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Sync { height, done, .. } => Some((*height, *done)),
            _ => None,
        })
        .collect();
    assert_eq!(syncs, vec![(500, false), (1_000, false), (1_200, true)]);
    sim.assert_invariants(&[0, 1]);
}

/// A hand-driven peer misbehaves in several ways; the honest node keeps its state, scores
/// the peer and bans it.
#[test]
fn hostile_peer_is_scored_then_banned() {
    let mut sim = Sim::new(2, 9);
    sim.connect(1, 0);
    sim.run_for(5_000);
    let hash = sim.mine(1);
    let txid = sim.submit_tx(0, tx(1));
    converge(&mut sim, &[0, 1], 1);
    spread_tx(&mut sim, &[0, 1], &txid);
    let tip = sim.tip(0);
    assert_eq!(tip, hash);
    let pool_before: Vec<Txid> = sim.node(0).mempool().iter_oldest().map(|(id, _)| *id).collect();

    let evil_addr: PeerAddr = "10.0.0.66:5000".parse().unwrap();
    let params = sim.params.clone();
    let evil = sim.open_external(0);
    let hello = support::hello_from(sim.node(0), &evil_addr, 0, Default::default());
    sim.inject(evil, 0, hello.clone());
    assert!(matches!(sim.external_inbox.first(), Some((0, _, Message::Hello(h))) if h.listen == addr(0)));
    assert!(
        sim.node(0)
            .peers()
            .iter()
            .any(|p| p.address == evil_addr && p.state == PeerState::Connected)
    );
    let score = |sim: &Sim| sim.node(0).peering().links().get(evil).unwrap().score;
    assert_eq!(score(&sim), 0);

    // Too many addresses in one message.
    let addrs: Vec<PeerAddr> = (0..=MAX_ADDRS_PER_MESSAGE)
        .map(|i| format!("10.1.{}.{}:5000", i / 200, i % 200).parse().unwrap())
        .collect();
    sim.inject(evil, 0, Message::addr(addrs));
    assert_eq!(score(&sim), 20);

    // A malformed transaction.
    let bad_tx = Transaction::new("x", "y", 0, 5);
    sim.inject(evil, 0, Message::Txs { txs: vec![bad_tx] });
    assert_eq!(score(&sim), 30);

    // A block with a bad proof of work, on our tip.
    let mut bad_pow = sim.node(0).block_template(support::at(sim.now));
    let target = params.bits.to_target();
    bad_pow.header.nonce = (0..)
        .find(|n| {
            let mut h = bad_pow.header;
            h.nonce = *n;
            !target.is_met_by(&h.compute_hash())
        })
        .unwrap();
    let bad_pow_hash = bad_pow.compute_hash();
    sim.inject(
        evil,
        0,
        Message::Block {
            block: WireBlock(bad_pow.into()),
        },
    );
    assert_eq!(score(&sim), 80);
    assert!(sim.external_open(0, evil));

    // A block whose Merkle root commits to other transactions, with a valid proof of work.
    let mut bad_root = sim.node(0).block_template(support::at(sim.now));
    bad_root.header.merkle_root = MerkleRoot([3; 32]);
    solve(&params, &mut bad_root);
    let bad_root_hash = bad_root.compute_hash();
    sim.inject(
        evil,
        0,
        Message::Block {
            block: WireBlock(bad_root.into()),
        },
    );
    assert!(
        !sim.external_open(0, evil),
        "score reached {BAN_SCORE}: the link is closed"
    );
    assert!(
        sim.disconnects
            .iter()
            .any(|(n, l, r)| *n == 0 && *l == evil && r.contains("merkle-root")),
        "{:?}",
        sim.disconnects
    );
    let rejected: Vec<&str> = sim.nodes[0]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::BlockRejected { rule, .. } => Some(*rule),
            _ => None,
        })
        .collect();
    assert_eq!(rejected, ["proof-of-work", "merkle-root"]);

    // Closed: nothing it says is heard any more.
    let mut good = sim.node(0).block_template(support::at(sim.now));
    seal(&params, &mut good);
    sim.inject(
        evil,
        0,
        Message::Block {
            block: WireBlock(good.into()),
        },
    );
    sim.inject(evil, 0, hello);

    // Another peer from another network is refused at the handshake.
    let stranger: PeerAddr = "10.0.0.77:5000".parse().unwrap();
    let other_net = chainsim_core::Node::new(
        std::sync::Arc::new(chainsim_core::ChainParams::default_network()),
        support::sim_config(77, 0),
    );
    let link = sim.open_external(0);
    sim.inject(
        link,
        0,
        support::hello_from(&other_net, &stranger, 9, Default::default()),
    );
    assert!(!sim.external_open(0, link));
    assert!(
        sim.disconnects
            .iter()
            .any(|(_, l, r)| *l == link && r.contains("another network"))
    );
    // A hello claiming node 1's address makes a link of its own, never node 1's.
    let liar = sim.open_external(0);
    sim.inject(
        liar,
        0,
        support::hello_from(sim.node(0), &addr(1), 0, Default::default()),
    );
    sim.inject(
        liar,
        0,
        Message::addr(
            (0..=MAX_ADDRS_PER_MESSAGE)
                .map(|i| format!("10.2.0.{}:1", i % 250 + 1).parse().unwrap())
                .collect::<Vec<PeerAddr>>(),
        ),
    );
    let real_one = sim
        .node(0)
        .peering()
        .links()
        .iter()
        .find(|l| l.verified || (l.id != liar && l.addr == Some(addr(1))))
        .unwrap();
    assert_eq!(real_one.score, 0, "node 1's own link carries no blame");

    // The honest node is untouched: same tip, same mempool, bad blocks neither kept nor
    // relayed, and its honest link still works.
    sim.run_for(10_000);
    assert_eq!(sim.tip(0), tip);
    let pool_after: Vec<Txid> = sim.node(0).mempool().iter_oldest().map(|(id, _)| *id).collect();
    assert_eq!(pool_after, pool_before);
    for h in [bad_pow_hash, bad_root_hash] {
        assert!(!sim.node(0).tree().contains(&h));
        assert!(sim.block_sends(&h).is_empty());
    }
    assert!(sim.is_connected(0, 1));
    let next = sim.mine(1);
    assert!(sim.run_until(10_000, |s| s.tip(0) == next));
    sim.assert_invariants(&[0, 1]);
}

/// Convergence and "nothing lost" over several seeds for every randomised scenario.
#[test]
fn scenarios_hold_for_many_seeds() {
    let seeds: u64 = std::env::var("SIMNET_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    for seed in 1_000..1_000 + seeds {
        ring_run(seed);
        random_graph_run(seed);
        partition_run(seed);
    }
}

/// A block whose parent is unknown waits as an orphan while the node syncs from its
/// sender; once the batch connects it, the block is relayed once, not once for joining
/// as an orphan and again as the new tip of the batch.
#[test]
fn orphan_connected_during_sync_is_relayed_once() {
    let mut sim = Sim::new(2, 10);
    sim.connect(1, 0);
    sim.run_for(5_000);
    let params = sim.params.clone();
    let g = params.genesis().as_ref().clone();
    let b1 = support::child(&params, &g, "far", sim.now, vec![]);
    let b2 = support::child(&params, &b1, "far", sim.now + 1, vec![]);
    let x = support::child(&params, &b2, "far", sim.now + 2, vec![tx(5)]);
    let xh = x.compute_hash();

    let far_addr: PeerAddr = "10.0.0.50:5000".parse().unwrap();
    let far = sim.open_external(0);
    sim.inject(
        far,
        0,
        support::hello_from(sim.node(0), &far_addr, 0, Default::default()),
    );
    sim.external_inbox.clear();
    sim.inject(
        far,
        0,
        Message::Block {
            block: WireBlock(x.clone().into()),
        },
    );
    assert_eq!(sim.node(0).orphan_count(), 1);
    // It asks the sender for what leads to the orphan, from its own tip (genesis here).
    let locator = sim
        .external_inbox
        .iter()
        .find_map(|(_, to, m)| match m {
            Message::GetBlocks { locator, .. } if *to == far => Some(locator.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(locator, vec![params.genesis_hash()]);
    let blocks = [b1, b2, x].into_iter().map(|b| WireBlock(b.into())).collect();
    sim.inject(far, 0, Message::Blocks { blocks, tip_height: 3 });
    assert_eq!(sim.tip(0), xh);
    assert_eq!(sim.node(0).orphan_count(), 0);
    converge(&mut sim, &[0, 1], 3);
    at_most_once(&sim.block_sends(&xh), "the orphan block");
    // Not back to the peer it came from either.
    assert!(!sim.block_sends(&xh).keys().any(|(_, to)| *to == support::EXTERNAL));
    sim.assert_invariants(&[0, 1]);
}

/// Same seed, same history: the simulator and the nodes use no hidden randomness.
#[test]
fn same_seed_same_history() {
    let run = || {
        let mut sim = Sim::new(8, 11);
        sim.loss = 0.1;
        random_graph(&mut sim, 3);
        sim.run_for(5_000);
        mine_randomly(&mut sim, 10, 80);
        sim.run_for(20_000);
        let trace: Vec<(u64, usize, usize, &'static str)> =
            sim.sent.iter().map(|s| (s.at, s.from, s.to, s.msg.kind())).collect();
        let tips: Vec<BlockHash> = (0..8).map(|i| sim.tip(i)).collect();
        (trace, tips)
    };
    let (a, b) = (run(), run());
    assert_eq!(a.1, b.1);
    assert!(a.0 == b.0, "message traces differ");
}
