//! Hostile and broken peers (issue 3 §5): fake peers inside the test handshake with a real
//! node and send it every kind of bad data. Each item is refused with the rule named in the
//! log, the chain and mempool stay as they were, the sender's score rises until it is
//! banned, and an honest node's heavier chain still syncs afterwards.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use chainsim_core::ChainParams;
use chainsim_core::protocol::{Hello, Message, PROTOCOL_VERSION, WireWork};
use chainsim_primitives::{Block, BlockHash, MerkleRoot, Transaction, Work};
use common::peer::{FakePeer, block_from_json, child, now_ms, seal, solve, unsealed_child};
use common::{TestNode, eventually};
use serde_json::{Value, json};

/// Three hours, past the two hours a block may be ahead of the local clock.
const THREE_HOURS_MS: u64 = 3 * 60 * 60 * 1000;

/// Handshakes `fake` with `node` and waits until the node lists it as connected.
async fn handshake(fake: &FakePeer, node: &TestNode) {
    let (status, body) = fake.send(&node.addr(), &fake.hello()).await;
    assert_eq!(status, 200, "hello refused: {body}");
    let replies: Vec<Message> = serde_json::from_str(&body).unwrap();
    match replies.as_slice() {
        [Message::Hello(h)] => assert_eq!(h.genesis, fake.params().genesis_hash()),
        other => panic!("expected the node's hello back, got {other:?}"),
    }
    node.wait_connected(&fake.addr()).await;
}

async fn peer_entry(node: &TestNode, addr: &str) -> Value {
    node.peers()
        .await
        .into_iter()
        .find(|p| p["address"] == addr)
        .unwrap_or_else(|| panic!("{addr} is not in {}'s peers", node.name))
}

/// Sends `block` from `fake` and expects a 4xx refusal and `rule` named in the log.
async fn refused_block(node: &TestNode, fake: &FakePeer, block: Block, rule: &str) {
    let (status, body) = fake.send_block(&node.addr(), block).await;
    assert_eq!(status, 400, "a block breaking {rule} was not refused: {body}");
    assert!(body.contains(rule), "the refusal does not name {rule}: {body}");
    node.wait_log(&format!("from {}: rule {rule}:", fake.addr())).await;
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
    handshake(&evil1, &node).await;
    let mut bad_pow = child(&params, &tip, "evil1", t, vec![tx(1)]);
    while params.bits.to_target().is_met_by(&bad_pow.compute_hash()) {
        bad_pow.header.nonce = bad_pow.header.nonce.wrapping_add(1);
    }
    refused_block(&node, &evil1, bad_pow, "proof-of-work").await;
    let entry = peer_entry(&node, &evil1.addr()).await;
    assert!(entry["score"].as_u64().unwrap() > 0, "the score did not rise: {entry}");
    assert_eq!(entry["state"], "connected", "one offence is not yet a ban: {entry}");

    let mut bad_root = unsealed_child(&params, &tip, "evil1", t, vec![tx(2)]);
    bad_root.header.merkle_root = MerkleRoot([7; 32]);
    solve(&params, &mut bad_root);
    refused_block(&node, &evil1, bad_root, "merkle-root").await;
    assert_eq!(peer_entry(&node, &evil1.addr()).await["state"], "banned");
    // A banned peer is not listened to, not even its hello.
    let (status, body) = evil1.send(&node.addr(), &evil1.hello()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(snapshot(&node).await, before);

    // evil2: a coinbase paying too much, then a duplicate transaction.
    let evil2 = FakePeer::start(params.clone()).await;
    handshake(&evil2, &node).await;
    let mut greedy = unsealed_child(&params, &tip, "evil2", t, vec![tx(3)]);
    greedy.transactions[0].amount = params.reward + 1;
    seal(&params, &mut greedy);
    refused_block(&node, &evil2, greedy, "coinbase-reward").await;
    let score = peer_entry(&node, &evil2.addr()).await["score"].as_u64().unwrap();
    assert!(score > 0, "the score did not rise");
    // Not adjacent, so the Merkle tree is not "mutated": only the duplicate rule is broken.
    let dup = child(&params, &tip, "evil2", t, vec![tx(4), tx(5), tx(4)]);
    refused_block(&node, &evil2, dup, "tx-duplicate").await;
    assert_eq!(peer_entry(&node, &evil2.addr()).await["state"], "banned");
    assert_eq!(snapshot(&node).await, before);

    // evil3: a block from 3 hours ahead, a broken link, an oversized payload, garbage.
    let evil3 = FakePeer::start(params.clone()).await;
    handshake(&evil3, &node).await;
    let future = child(&params, &tip, "evil3", now_ms() + THREE_HOURS_MS, vec![tx(6)]);
    refused_block(&node, &evil3, future, "time-too-new").await;
    let score_after_future = peer_entry(&node, &evil3.addr()).await["score"].as_u64().unwrap();
    assert!(score_after_future > 0);

    // A parent nobody has: held as an orphan (bounded), never connected.
    let mut nowhere = tip.clone();
    nowhere.header.prev_hash = BlockHash([0x42; 32]);
    nowhere.header.nonce = 0;
    let orphan = child(&params, &nowhere, "evil3", t + 1, vec![tx(7)]);
    let (status, body) = evil3.send_block(&node.addr(), orphan).await;
    assert!(status == 200 || (400..500).contains(&status), "{status} {body}");
    let status = node.status().await;
    assert!(status["orphans"].as_u64().unwrap() <= 1, "{status}");
    assert_eq!(snapshot(&node).await, before);

    // Above the 64 MiB message limit: 413, read no further.
    let mut huge = br#"{"type":"txs","txs":[""#.to_vec();
    huge.resize(65 * 1024 * 1024, b'a');
    let (status, body) = evil3.send_raw(&node.addr(), huge).await;
    assert_eq!(status, 413, "oversized payload: {body}");

    let (status, body) = evil3.send_raw(&node.addr(), b"\x00\x01 not json {{{".to_vec()).await;
    assert_eq!(status, 400, "{body}");
    node.wait_log(&format!("peer {} sent garbage", evil3.addr())).await;
    let score = peer_entry(&node, &evil3.addr()).await["score"].as_u64().unwrap();
    assert!(score > score_after_future, "garbage did not raise the score ({score})");
    // Garbage again: enough to be banned.
    let (status, _) = evil3
        .send_raw(&node.addr(), br#"{"type": "block", "block": "zz"}"#.to_vec())
        .await;
    assert_eq!(status, 400);
    eventually("evil3 to be banned", common::PATIENCE, || async {
        peer_entry(&node, &evil3.addr()).await["state"] == "banned"
    })
    .await;
    assert_eq!(snapshot(&node).await, before);

    // evil4: a hello from another network.
    let evil4 = FakePeer::start(params.clone()).await;
    let other = ChainParams::testnet();
    let hello = Message::Hello(Hello {
        version: PROTOCOL_VERSION,
        genesis: other.genesis_hash(),
        listen: evil4.addr().parse().unwrap(),
        height: 0,
        work: WireWork(Work(1)),
        agent: "evil4".into(),
    });
    let (status, body) = evil4.send(&node.addr(), &hello).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("another network"), "{body}");
    node.wait_log(&format!("peer {}: Banned (peer is on another network", evil4.addr()))
        .await;
    assert_eq!(peer_entry(&node, &evil4.addr()).await["state"], "banned");

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
