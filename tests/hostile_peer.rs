//! Hostile and broken peers (issue 3 §5): fake peers inside the test handshake with a real
//! node and send it every kind of bad data. Each item is refused with the rule named in the
//! log, the chain and mempool stay as they were, the sender's score rises until it is
//! banned, and an honest node's heavier chain still syncs afterwards.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use chainsim_core::ChainParams;
use chainsim_core::protocol::{Hello, Message, PROTOCOL_VERSION, WireWork};
use chainsim_primitives::{Block, BlockHash, MerkleRoot, Transaction, Work};
use common::peer::{FakeLink, FakePeer, block_from_json, child, now_ms, seal, solve, unsealed_child};
use common::{TestNode, eventually};
use serde_json::{Value, json};

/// Three hours, past the two hours a block may be ahead of the local clock.
const THREE_HOURS_MS: u64 = 3 * 60 * 60 * 1000;

/// Opens a link from `fake` to `node`, handshakes, and waits until the node lists it.
async fn handshake(fake: &FakePeer, node: &TestNode) -> FakeLink {
    let (link, answer) = fake.connect_as(&node.addr(), &fake.addr()).await;
    match answer {
        Message::Hello(h) => assert_eq!(h.genesis, fake.params().genesis_hash()),
        other => panic!("expected the node's hello back, got {other:?}"),
    }
    node.wait_connected(&fake.addr()).await;
    link
}

async fn peer_entry(node: &TestNode, addr: &str) -> Value {
    node.peers()
        .await
        .into_iter()
        .find(|p| p["address"] == addr)
        .unwrap_or_else(|| panic!("{addr} is not in {}'s peers", node.name))
}

/// Sends `block` on `link` and expects `rule` named in the node's log.
async fn refused_block(node: &TestNode, fake: &FakePeer, link: &mut FakeLink, block: Block, rule: &str) {
    link.send_block(block).await;
    node.wait_log(&format!("from {}: rule {rule}:", fake.addr())).await;
}

/// Waits until `node` closed `link` for misbehaviour, saying so in its log.
async fn closed_for_misbehaving(node: &TestNode, fake: &FakePeer, link: &mut FakeLink) {
    assert!(link.closed().await, "the node kept the link open");
    node.wait_log(&format!("closing peer {}: misbehaved", fake.addr()))
        .await;
    // The claimed address was never proven, so it is not banned: the node may dial it
    // itself, and then only on a link of its own, with a clean score.
    let entry = peer_entry(node, &fake.addr()).await;
    if entry["state"] == "connected" {
        assert_eq!(entry["direction"], "outbound", "{entry}");
        assert_eq!(entry["score"], 0, "{entry}");
    }
}

/// The node's state that no hostile input may change.
async fn snapshot(node: &TestNode) -> (Vec<String>, Vec<String>) {
    (node.chain_hashes().await, node.pending().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_are_refused_scored_banned_and_the_honest_chain_still_syncs() {
    let params = ChainParams::default_network();
    let node = TestNode::start("victim", &[]).await;
    node.mine().await;
    node.mine().await;
    node.send_tx("Alice", "Bob", 10).await;
    let tip = block_from_json(&node.get("/blocks/2").await);
    let before = snapshot(&node).await;
    let t = now_ms().max(tip.header.timestamp + 1);
    let tx = |n: u64| Transaction::new(format!("payer{n}"), "payee", n + 1, t);

    // evil1: a bad proof of work, then a wrong Merkle root.
    let evil1 = FakePeer::start(params.clone()).await;
    let mut link = handshake(&evil1, &node).await;
    let mut bad_pow = child(&params, &tip, "evil1", t, vec![tx(1)]);
    while params.bits.to_target().is_met_by(&bad_pow.compute_hash()) {
        bad_pow.header.nonce = bad_pow.header.nonce.wrapping_add(1);
    }
    refused_block(&node, &evil1, &mut link, bad_pow, "proof-of-work").await;
    let entry = peer_entry(&node, &evil1.addr()).await;
    assert!(entry["score"].as_u64().unwrap() > 0, "the score did not rise: {entry}");
    assert_eq!(entry["state"], "connected", "one offence is not yet a ban: {entry}");

    let mut bad_root = unsealed_child(&params, &tip, "evil1", t, vec![tx(2)]);
    bad_root.header.merkle_root = MerkleRoot([7; 32]);
    solve(&params, &mut bad_root);
    refused_block(&node, &evil1, &mut link, bad_root, "merkle-root").await;
    closed_for_misbehaving(&node, &evil1, &mut link).await;
    assert_eq!(snapshot(&node).await, before);

    // evil2: a coinbase paying too much, then a duplicate transaction.
    let evil2 = FakePeer::start(params.clone()).await;
    let mut link = handshake(&evil2, &node).await;
    let mut greedy = unsealed_child(&params, &tip, "evil2", t, vec![tx(3)]);
    greedy.transactions[0].amount = params.reward + 1;
    seal(&params, &mut greedy);
    refused_block(&node, &evil2, &mut link, greedy, "coinbase-reward").await;
    let score = peer_entry(&node, &evil2.addr()).await["score"].as_u64().unwrap();
    assert!(score > 0, "the score did not rise");
    // Not adjacent, so the Merkle tree is not "mutated": only the duplicate rule is broken.
    let dup = child(&params, &tip, "evil2", t, vec![tx(4), tx(5), tx(4)]);
    refused_block(&node, &evil2, &mut link, dup, "tx-duplicate").await;
    closed_for_misbehaving(&node, &evil2, &mut link).await;
    assert_eq!(snapshot(&node).await, before);

    // evil3: a block from 3 hours ahead, a broken link, garbage, an oversized frame.
    let evil3 = FakePeer::start(params.clone()).await;
    let mut link = handshake(&evil3, &node).await;
    let future = child(&params, &tip, "evil3", now_ms() + THREE_HOURS_MS, vec![tx(6)]);
    refused_block(&node, &evil3, &mut link, future, "time-too-new").await;
    let score_after_future = peer_entry(&node, &evil3.addr()).await["score"].as_u64().unwrap();
    assert!(score_after_future > 0);

    // A parent nobody has: held as an orphan (bounded), never connected.
    let mut nowhere = tip.clone();
    nowhere.header.prev_hash = BlockHash([0x42; 32]);
    nowhere.header.nonce = 0;
    let orphan = child(&params, &nowhere, "evil3", t + 1, vec![tx(7)]);
    link.send_block(orphan).await;
    eventually("the orphan to be held", common::PATIENCE, || async {
        node.status().await["orphans"].as_u64().unwrap() == 1
    })
    .await;
    assert_eq!(snapshot(&node).await, before);

    // A frame that names its kind but is not that message: scored, and the link reads on.
    link.send_frame(br#"{"type":"ping" not json {{{"#).await;
    node.wait_log("sent garbage").await;
    let score = peer_entry(&node, &evil3.addr()).await["score"].as_u64().unwrap();
    assert!(score > score_after_future, "garbage did not raise the score ({score})");
    // Above every frame limit: the link is closed without reading it.
    link.send_bytes(&(65u32 * 1024 * 1024).to_be_bytes()).await;
    assert!(link.closed().await, "an oversized frame must close the link");
    assert_eq!(snapshot(&node).await, before);

    // evil4: a hello from another network.
    let evil4 = FakePeer::start(params.clone()).await;
    let other = ChainParams::testnet();
    let hello = Message::Hello(Box::new(Hello {
        version: PROTOCOL_VERSION,
        genesis: other.genesis_hash(),
        listen: evil4.addr().parse().unwrap(),
        height: 0,
        work: WireWork::new(Work(1)),
        agent: "evil4".into(),
        token: None,
    }));
    let mut link = evil4.open(&node.addr()).await;
    link.send(&hello).await;
    assert!(link.closed().await, "a foreign hello must close the link");
    node.wait_log("another network").await;

    // evil5: speaks before its hello.
    let mut link = evil4.open(&node.addr()).await;
    link.send(&Message::GetAddr).await;
    assert!(link.closed().await, "speaking before the hello must close the link");

    // Nothing any of them sent changed the chain or the mempool, or was relayed.
    assert_eq!(snapshot(&node).await, before);
    let metrics = node.get("/metrics").await;
    let rejected: u64 = metrics
        .as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("chainsim_blocks_rejected_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(rejected >= 5, "blocks_rejected_total {rejected}");

    // The honest chain still syncs: a real node with more work joins and the victim takes it.
    let honest = TestNode::start("honest", &[]).await;
    let mut honest_tip = String::new();
    for _ in 0..4 {
        honest_tip = honest.mine().await["hash"].as_str().unwrap().to_string();
    }
    let (status, v) = node.post("/nodes/register", &json!({"nodes": [honest.addr()]})).await;
    assert_eq!(status.as_u16(), 201, "{v}");
    node.wait_tip(&honest_tip).await;
    assert_eq!(node.chain_hashes().await, honest.chain_hashes().await);
    // The victim's own two blocks were disconnected; its pending transaction survives.
    assert_eq!(node.pending().await, before.1);
}

/// The spoofing attack: a stranger that can reach node A claims to be A's honest peer B,
/// misbehaves, and says hello from another network. Only the stranger's own link suffers:
/// B stays connected to A with a clean score and is never banned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_cannot_be_impersonated_or_banned_by_a_stranger() {
    let params = ChainParams::default_network();
    let b = TestNode::start("B", &[]).await;
    let a = TestNode::start("A", &[&b]).await;
    a.wait_connected(&b.addr()).await;
    b.wait_connected(&a.addr()).await;

    let stranger = FakePeer::start(params.clone()).await;
    for round in 0..2 {
        let (mut link, answer) = stranger.connect_as(&a.addr(), &b.addr()).await;
        assert!(matches!(answer, Message::Hello(_)), "{answer:?}");
        // Garbage until the link is closed.
        for _ in 0..3 {
            link.send_frame(b"{ not a message").await;
        }
        assert!(link.closed().await, "round {round}: the stranger's link stays open");
    }
    // A hello on another network, claiming to be B.
    let mut foreign = Message::Hello(Box::new(Hello {
        version: PROTOCOL_VERSION,
        genesis: ChainParams::testnet().genesis_hash(),
        listen: b.addr().parse().unwrap(),
        height: 0,
        work: WireWork::new(Work(1)),
        agent: "spoof".into(),
        token: None,
    }));
    let mut link = stranger.open(&a.addr()).await;
    link.send(&foreign).await;
    assert!(link.closed().await);
    if let Message::Hello(h) = &mut foreign {
        h.genesis = params.genesis_hash();
    }

    // B is still A's connected peer, with no blame, and everything still flows.
    let entry = peer_entry(&a, &b.addr()).await;
    assert_eq!(entry["state"], "connected", "{entry}");
    assert_eq!(entry["score"], 0, "{entry}");
    assert!(!a.log().contains(&format!("peer {}: Banned", b.addr())), "B was banned");
    let hash = b.mine().await["hash"].as_str().unwrap().to_string();
    a.wait_tip(&hash).await;
    assert_eq!(peer_entry(&a, &b.addr()).await["state"], "connected");
}
