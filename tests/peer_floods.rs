//! Floods from peers against a real node process (issue 8, items 2–4): oversized and
//! hostile frames are refused before they are read, a budget bounds what all links hold
//! together, a flooding peer gets only its share of the mempool, full inbound slots give
//! way to an honest newcomer that stays once it is useful, and a silent peer claiming
//! huge work is passed over for one that answers. Each test checks the node's state, and
//! memory as a bound with generous headroom — never a time.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use chainsim_core::ChainParams;
use chainsim_core::protocol::{Hello, Message, PROTOCOL_VERSION, WireWork, max_frame_bytes};
use chainsim_primitives::{BlockHash, Transaction, Work};
use common::peer::{FakeLink, FakePeer, child, now_ms};
use common::{PATIENCE, TestNode, eventually, rss_mib};
use serde_json::json;

/// A hello from `fake` claiming `work`.
fn hello_claiming(fake: &FakePeer, work: u128) -> Message {
    let Message::Hello(hello) = fake.hello() else {
        unreachable!()
    };
    Message::Hello(Box::new(Hello {
        version: PROTOCOL_VERSION,
        work: WireWork::new(Work(work)),
        height: 1_000_000,
        ..*hello
    }))
}

/// The bytes of a frame head announcing `len` bytes of a `kind` message; the body that
/// would follow is never sent.
fn frame_head(len: usize, kind: &str) -> Vec<u8> {
    let mut head = (len as u32).to_be_bytes().to_vec();
    head.extend_from_slice(format!(r#"{{"type":"{kind}","blocks":["0000000000000000"#).as_bytes());
    head
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frames_are_refused_before_they_are_read_and_links_share_a_budget() {
    let node = TestNode::start("frames", &[]).await;
    let fake = FakePeer::start(ChainParams::default_network()).await;
    let before = rss_mib(node.pid());

    // Before the handshake: a 31 MiB first frame (the attack that cost 308 MiB) is refused
    // on its head; the node closes the link without waiting for the body.
    let mut link = fake.open(&node.addr()).await;
    link.send_bytes(&frame_head(31 << 20, "hello")).await;
    assert!(link.closed().await, "a 31 MiB first frame must close the link");
    // After it: a frame over its kind's limit is refused the same way, and scored.
    let mut link = fake.connect(&node.addr()).await;
    let ping_max = max_frame_bytes("ping").unwrap();
    link.send_bytes(&frame_head(ping_max + 1, "ping")).await;
    assert!(link.closed().await, "an oversized ping must close the link");
    node.wait_log("frame of").await;

    // Twenty links at once each send the biggest frame a `blocks` answer may have, full of
    // junk: each is read within the shared budget, refused as garbage, and dropped.
    let blocks_max = max_frame_bytes("blocks").unwrap();
    let mut body = format!(r#"{{"type":"blocks","tip_height":1,"blocks":["{}"#, "00".repeat(8));
    body.push_str(&"z".repeat(blocks_max - body.len() - 2));
    body.push_str("\"]");
    assert_eq!(body.len(), blocks_max);
    let body = std::sync::Arc::new(body);
    let mut fakes = Vec::new();
    let mut sending = Vec::new();
    // Twenty distinct peers (links from one peer would be closed as duplicates).
    for _ in 0..20 {
        let sender = FakePeer::start(ChainParams::default_network()).await;
        let mut link = sender.connect(&node.addr()).await;
        fakes.push(sender);
        let body = body.clone();
        sending.push(tokio::spawn(async move {
            link.send_frame(body.as_bytes()).await;
            link
        }));
    }
    let mut links: Vec<FakeLink> = Vec::new();
    for task in sending {
        links.push(task.await.unwrap());
    }
    eventually("every junk frame to be refused", PATIENCE, || async {
        node.log_since_start().matches("sent garbage").count() >= 20
    })
    .await;
    let after = rss_mib(node.pid());
    eprintln!("node memory: {before:.1} MiB before, {after:.1} MiB after 20 × {blocks_max} bytes");
    // 20 × 10 MiB were sent; the node may hold the 64 MiB budget and its decoding, no more.
    assert!(after - before < 200.0, "memory grew from {before:.0} to {after:.0} MiB");
    // Nothing it was sent changed it; it still serves.
    assert_eq!(node.status().await["length"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_gets_its_share_of_the_mempool_and_others_still_get_in() {
    let capacity = 2_000;
    let extra = vec!["--mempool-capacity".into(), capacity.to_string()];
    let node = TestNode::start_with("mempool", common::free_port(), Vec::new(), extra).await;
    let before = rss_mib(node.pid());
    let flooder = FakePeer::start(ChainParams::default_network()).await;
    let mut flood = flooder.connect(&node.addr()).await;
    node.wait_connected(&flooder.addr()).await;
    let t = now_ms();
    let txs: Vec<Transaction> = (0..capacity as u64)
        .map(|i| Transaction::new(format!("flood{i}"), "sink", 1, t + i))
        .collect();
    flood.send(&Message::Txs { txs }).await;
    // A lone peer may fill half of the peers' 90 %.
    let share = capacity * 9 / 10 / 2;
    eventually("the flood to be taken in", PATIENCE, || async {
        node.status().await["pending"].as_u64().unwrap() == share as u64
    })
    .await;

    // Another peer still gets in.
    let honest = FakePeer::start(ChainParams::default_network()).await;
    let mut other = honest.connect(&node.addr()).await;
    node.wait_connected(&honest.addr()).await;
    let txs: Vec<Transaction> = (0..5)
        .map(|i| Transaction::new(format!("honest{i}"), "bob", 1, t + i))
        .collect();
    other.send(&Message::Txs { txs }).await;
    eventually("the other peer's transactions", PATIENCE, || async {
        node.status().await["pending"].as_u64().unwrap() == share as u64 + 5
    })
    .await;
    // And so does a local user.
    let body = json!({"sender": "alice", "recipient": "bob", "amount": 3});
    let (status, answer) = node.call(reqwest::Method::POST, "/transactions/new", Some(&body)).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{answer}");
    let after = rss_mib(node.pid());
    assert!(after - before < 100.0, "memory grew from {before:.0} to {after:.0} MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_inbound_slots_give_way_to_an_honest_newcomer_that_stays_once_useful() {
    let extra = vec!["--max-inbound".into(), "3".into(), "--max-outbound".into(), "0".into()];
    let a = TestNode::start_with("a", common::free_port(), Vec::new(), extra).await;
    let before = rss_mib(a.pid());
    let mut fakes = Vec::new();
    for _ in 0..3 {
        let fake = FakePeer::start(ChainParams::default_network()).await;
        let link = fake.connect(&a.addr()).await;
        a.wait_connected(&fake.addr()).await;
        fakes.push((fake, link));
    }
    // Every slot is taken by a stranger that never gave anything; an honest node dials in.
    let b = TestNode::start("b", &[&a]).await;
    a.wait_connected(&b.addr()).await;
    let (_, newest) = fakes.last_mut().unwrap();
    assert!(newest.closed().await, "the newest useless stranger gave way");
    a.wait_log("evicted to make room").await;

    // B relays a block, which protects it; strangers keep coming and B stays.
    let block = b.mine().await;
    a.wait_tip(block["hash"].as_str().unwrap()).await;
    for _ in 0..4 {
        let fake = FakePeer::start(ChainParams::default_network()).await;
        let link = fake.connect(&a.addr()).await;
        a.wait_connected(&fake.addr()).await;
        fakes.push((fake, link));
    }
    assert_eq!(a.peer_state(&b.addr()).await.as_deref(), Some("connected"));
    let inbound = a.peers().await.iter().filter(|p| p["state"] == "connected").count();
    assert!(inbound <= 3, "{inbound} links for 3 inbound slots");
    let after = rss_mib(a.pid());
    assert!(after - before < 100.0, "memory grew from {before:.0} to {after:.0} MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sending_orphans_holds_only_its_quarter_of_the_pool() {
    let params = ChainParams::default_network();
    let node = TestNode::start("orphans", &[]).await;
    let before = rss_mib(node.pid());
    let fake = FakePeer::start(params.clone()).await;
    let mut link = fake.connect(&node.addr()).await;
    node.wait_connected(&fake.addr()).await;
    // Forty blocks of about 100 kB, each with a proof of work and a parent nobody has.
    let t = now_ms();
    let name = "o".repeat(60);
    for i in 0..40u64 {
        let mut nowhere = params.genesis().as_ref().clone();
        nowhere.header.prev_hash = BlockHash([i as u8 + 1; 32]);
        let txs = (0..700).map(|n| Transaction::new(&name, &name, 1 + n, t + n)).collect();
        link.send_block(child(&params, &nowhere, "orphaner", t + i, txs)).await;
    }
    // The default pool holds 100; one peer a quarter of it.
    eventually("the orphans to be taken in", PATIENCE, || async {
        node.status().await["orphans"].as_u64().unwrap() == 25
    })
    .await;
    let after = rss_mib(node.pid());
    assert!(after - before < 100.0, "memory grew from {before:.0} to {after:.0} MiB");
    assert_eq!(node.status().await["length"], 1, "nothing connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_claiming_huge_work_is_passed_over_for_one_that_answers() {
    let honest = TestNode::start("honest", &[]).await;
    for _ in 0..3 {
        honest.mine().await;
    }
    let tip = honest.status().await["tip"].as_str().unwrap().to_string();
    // The victim knows only the liar at first: it claims a million blocks and never answers.
    let victim = TestNode::start("victim", &[]).await;
    let liar = FakePeer::start(ChainParams::default_network()).await;
    let mut link = liar.open(&victim.addr()).await;
    link.send(&hello_claiming(&liar, u128::MAX >> 8)).await;
    victim.wait_connected(&liar.addr()).await;
    // Then an honest peer appears: the victim turns to it after the stall window.
    let body = json!({"nodes": [honest.addr()]});
    let (status, answer) = victim.call(reqwest::Method::POST, "/nodes/register", Some(&body)).await;
    assert!(status.is_success(), "{answer}");
    victim.wait_tip(&tip).await;
    // Scored for going silent while another could serve (10), not for the whole timeout
    // (20): the victim moved on at the end of the stall window.
    let entry = victim
        .peers()
        .await
        .into_iter()
        .find(|p| p["address"] == liar.addr())
        .unwrap();
    assert_eq!(entry["score"], 10, "{entry}");
    drop(link);
}
