//! The lab on real node processes (issue 10 §5): link conditions applied by the sender,
//! cut and restored links, mining that runs by itself, and a partition of five nodes healed
//! into one chain with nothing lost. Times are only ever lower bounds or generous windows;
//! every wait is bounded by `PATIENCE`.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use common::{DashboardProcess, PATIENCE, TestNode, eventually, free_port};
use reqwest::Method;
use serde_json::{Value, json};

/// `PUT /peers/{other}/link` on `node` with `body`; must answer 200; returns the conditions.
async fn set_link(node: &TestNode, other: &TestNode, body: Value) -> Value {
    let path = format!("/peers/{}/link", other.addr());
    let (status, v) = node.call(Method::PUT, &path, Some(&body)).await;
    assert_eq!(status.as_u16(), 200, "{} PUT {path} {body}: {v}", node.name);
    v["conditions"].clone()
}

/// The conditions `node` shows for its link to `other` in `GET /peers`.
async fn shown_link(node: &TestNode, other: &TestNode) -> Value {
    let peers = node.peers().await;
    let entry = peers.iter().find(|p| p["address"] == other.addr().as_str());
    entry.map(|p| p["link"].clone()).unwrap_or(Value::Null)
}

async fn set_mining(node: &TestNode, body: Value) {
    let (status, v) = node.post("/mining", &body).await;
    assert_eq!(status.as_u16(), 200, "{} POST /mining {body}: {v}", node.name);
}

async fn tip(node: &TestNode) -> String {
    node.status().await["tip"].as_str().unwrap().to_string()
}

fn u64_of(v: &Value, field: &str) -> u64 {
    v[field].as_u64().unwrap_or_else(|| panic!("no {field} in {v}"))
}

/// A 200 ms delay on A's side of the A-B link: a block and a transaction sent from A reach B
/// no sooner than 200 ms after they were handed to A, and B's propagation median says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_link_delays_arrival_by_at_least_its_latency() {
    let a = TestNode::start("A", &[]).await;
    let b = TestNode::start("B", &[&a]).await;
    a.wait_connected(&b.addr()).await;
    b.wait_connected(&a.addr()).await;
    let set = set_link(&a, &b, json!({"latency_ms": 200})).await;
    assert_eq!(set["latency_ms"], 200);
    assert_eq!(shown_link(&a, &b).await["latency_ms"], 200);
    assert_eq!(shown_link(&b, &a).await["latency_ms"], 0, "only A's side is set");

    let floor = Duration::from_millis(200);
    let sent = Instant::now();
    let txid = a.send_tx("Alice", "Bob", 5).await;
    b.wait_pending(&txid).await;
    let took = sent.elapsed();
    assert!(took >= floor, "the transaction reached B after {took:?}");
    eprintln!("transaction A -> B over a 200 ms link: {took:?}");

    let sent = Instant::now();
    let block = a.mine().await;
    b.wait_tip(block["hash"].as_str().unwrap()).await;
    let took = sent.elapsed();
    assert!(took >= floor, "the block reached B after {took:?}");
    eprintln!("block A -> B over a 200 ms link: {took:?}");
    let median = u64_of(&b.status().await, "propagation_median_ms");
    assert!(median >= 200, "B's propagation median {median} ms under a 200 ms link");
    let metrics = reqwest::get(b.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("chainsim_block_propagation_ms_count 1"), "{metrics}");
}

/// A 200 bytes/s link on A's side: the announcement of a transaction (over 68 bytes) and
/// then the transaction itself (over 100) queue at that rate, so B holds it no sooner
/// than half a second after A took it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrow_link_holds_messages_back_at_its_bandwidth() {
    let a = TestNode::start("A", &[]).await;
    let b = TestNode::start("B", &[&a]).await;
    a.wait_connected(&b.addr()).await;
    b.wait_connected(&a.addr()).await;
    set_link(&a, &b, json!({"bandwidth_bps": 200})).await;
    let sent = Instant::now();
    let txid = a.send_tx("Alice", "Bob", 8).await;
    b.wait_pending(&txid).await;
    let took = sent.elapsed();
    eprintln!("transaction A -> B over a 200 B/s link: {took:?}");
    assert!(took >= Duration::from_millis(500), "B held it after {took:?}");
}

/// `--latency` and `--jitter` are the defaults of every link a node opens or accepts; a
/// `PUT` changes one link and leaves the others on the defaults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_line_conditions_are_every_link_s_defaults() {
    let a = TestNode::start("A", &[]).await;
    let c = TestNode::start("C", &[]).await;
    let extra = ["--latency", "50", "--jitter", "5"].map(String::from).to_vec();
    let b = TestNode::start_with("B", free_port(), vec![a.addr(), c.addr()], extra).await;
    b.wait_connected(&a.addr()).await;
    b.wait_connected(&c.addr()).await;
    for other in [&a, &c] {
        let link = shown_link(&b, other).await;
        assert_eq!(
            (link["latency_ms"].as_u64(), link["jitter_ms"].as_u64()),
            (Some(50), Some(5)),
            "{link}"
        );
    }
    set_link(&b, &a, json!({"loss": 0.5})).await;
    assert_eq!(shown_link(&b, &a).await["loss"], 0.5);
    assert_eq!(
        shown_link(&b, &a).await["latency_ms"],
        50,
        "unchanged fields keep the defaults"
    );
    assert_eq!(shown_link(&b, &c).await["loss"], 0.0);
}

/// Both ends cut the A-B link (`PUT .../link {"cut": true}`) while both mine by interval:
/// two chains grow, two tips. Restored, one more block makes one tip, and the losing node
/// counts its branch as stale blocks and a reorganisation as deep as that branch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_link_gives_two_tips_and_restoring_it_gives_one() {
    let a = TestNode::start("A", &[]).await;
    let b = TestNode::start("B", &[&a]).await;
    a.wait_connected(&b.addr()).await;
    set_link(&a, &b, json!({"cut": true})).await;
    set_link(&b, &a, json!({"cut": true})).await;
    assert_eq!(a.peer_state(&b.addr()).await.as_deref(), Some("blocked"));
    assert_eq!(shown_link(&b, &a).await["cut"], true);

    for n in [&a, &b] {
        set_mining(n, json!({"mode": "interval", "block_time_s": 0.5})).await;
    }
    for n in [&a, &b] {
        eventually(&format!("{} to mine two blocks alone", n.name), PATIENCE, || async {
            n.status().await["height"].as_u64() >= Some(2)
        })
        .await;
    }
    for n in [&a, &b] {
        set_mining(n, json!({"mode": "manual"})).await;
        let s = n.status().await;
        assert_eq!(s["mining_schedule"]["mode"], "manual");
    }
    let (ta, tb) = (tip(&a).await, tip(&b).await);
    assert_ne!(ta, tb, "a cut link must leave two tips");

    set_link(&a, &b, json!({"cut": false})).await;
    set_link(&b, &a, json!({"cut": false})).await;
    a.wait_connected(&b.addr()).await;
    a.mine().await;
    eventually("A and B to agree on one tip", PATIENCE, || async {
        tip(&a).await == tip(&b).await
    })
    .await;
    let (sa, sb) = (a.status().await, b.status().await);
    let loser = if u64_of(&sa, "reorgs") > 0 { &sa } else { &sb };
    assert!(
        u64_of(loser, "deepest_reorg") >= 2,
        "the losing node reorganised: {loser}"
    );
    assert!(u64_of(loser, "stale_blocks") >= 2, "its branch is stale: {loser}");
    assert!(u64_of(&sa, "blocks_mined") + u64_of(&sb, "blocks_mined") >= 5);
}

/// One node mining by itself in auto mode with a 2 s expected interval and the whole hash
/// power: over 40 s it finds a number of blocks inside a generous Poisson bound (expected
/// 20; fewer on a loaded machine, where each search also takes time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_mining_finds_a_poisson_count_of_blocks() {
    let extra = ["--mine", "auto", "--block-time", "2", "--share", "1"]
        .map(String::from)
        .to_vec();
    let node = TestNode::start_with("auto", free_port(), Vec::new(), extra).await;
    let s = node.status().await;
    assert_eq!(s["mining_schedule"]["mode"], "auto", "{s}");
    assert_eq!(s["mining_schedule"]["share"], 1.0);
    let start = u64_of(&s, "height");
    tokio::time::sleep(Duration::from_secs(40)).await;
    let s = node.status().await;
    let found = u64_of(&s, "height") - start;
    // P(Poisson(20) < 3) and P(Poisson(20) > 50) are both below 1e-5.
    assert!(
        (3..=50).contains(&found),
        "{found} blocks in 40 s at an expected 2 s interval"
    );
    eprintln!("auto mining: {found} blocks in 40 s (expected 20)");
    assert!(s["mining_schedule"]["observed_interval_s"].is_number(), "{s}");
}

/// Five nodes split 3 + 2 by cutting every link across (both ends). The pair confirms a
/// transaction in one block; the trio builds two. Two tips; after the heal every node is on
/// the trio's tip and the transaction is back in a mempool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_of_five_heals_into_one_tip_with_transactions_returned() {
    let first = TestNode::start("n0", &[]).await;
    let mut nodes = vec![first];
    for i in 1..5 {
        let node = TestNode::start(&format!("n{i}"), &[&nodes[0]]).await;
        node.wait_connected(&nodes[0].addr()).await;
        nodes.push(node);
    }
    let (trio, pair) = nodes.split_at(3);
    // The pair must be linked to each other, not only through the trio.
    let (status, v) = pair[1]
        .post("/nodes/register", &json!({"nodes": [pair[0].addr()]}))
        .await;
    assert_eq!(status.as_u16(), 201, "{v}");
    pair[1].wait_connected(&pair[0].addr()).await;
    for x in trio {
        for y in pair {
            set_link(x, y, json!({"cut": true})).await;
            set_link(y, x, json!({"cut": true})).await;
        }
    }
    for y in pair {
        eventually(
            &format!("{} to lose its links to the trio", y.name),
            PATIENCE,
            || async { y.status().await["peers"].as_u64() <= Some(1) },
        )
        .await;
    }

    let txid = pair[0].send_tx("Alice", "Bob", 11).await;
    pair[1].wait_pending(&txid).await;
    let pair_block = pair[0].mine().await;
    assert!(pair_block.to_string().contains(&txid), "{pair_block}");
    pair[1].wait_tip(pair_block["hash"].as_str().unwrap()).await;
    trio[0].mine().await;
    let trio_tip = trio[0].mine().await["hash"].as_str().unwrap().to_string();
    for n in trio {
        n.wait_tip(&trio_tip).await;
    }
    assert_ne!(tip(&pair[0]).await, trio_tip, "a partition must leave two tips");
    assert!(trio[2].pending().await.is_empty(), "the trio never saw the transaction");

    for x in trio {
        for y in pair {
            set_link(x, y, json!({"cut": false})).await;
            set_link(y, x, json!({"cut": false})).await;
        }
    }
    for n in &nodes {
        n.wait_tip(&trio_tip).await;
    }
    eventually("the abandoned transaction back in some mempool", PATIENCE, || async {
        for n in &nodes {
            if n.pending().await.contains(&txid) {
                return true;
            }
        }
        false
    })
    .await;
    let s = pair[0].status().await;
    assert_eq!(u64_of(&s, "deepest_reorg"), 1, "{s}");
    assert!(u64_of(&s, "stale_blocks") >= 1, "{s}");
}

/// The control room's server-side lab calls on real nodes: `/api/link` sets both ends of a
/// link, `/api/mining` a node's mode, `/api/partition` cuts every link between the groups
/// and, with `"cut": false`, restores them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_room_sets_links_partitions_and_mining_on_both_ends() {
    let a = TestNode::start("A", &[]).await;
    let b = TestNode::start("B", &[&a]).await;
    a.wait_connected(&b.addr()).await;
    let dashboard = DashboardProcess::start(&a.addr());
    let http = common::client();
    let base = dashboard.url("");
    let page = || async { http.get(format!("{base}/")).send().await.ok()?.text().await.ok() };
    eventually("the dashboard to serve", PATIENCE, || async { page().await.is_some() }).await;
    let html = page().await.unwrap();
    let token = html
        .split(r#"name="chainsim-token" content=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    eventually("the dashboard to find B", PATIENCE, || async {
        let state = http.get(format!("{base}/api/state")).send().await;
        let text = match state {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.contains(&b.addr())
    })
    .await;
    let post = |path: &'static str, body: Value| {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        async move {
            let resp = http
                .post(format!("{base}{path}"))
                .header("origin", base.as_str())
                .header("x-chainsim-token", token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let v: Value = resp.json().await.unwrap_or(Value::Null);
            assert_eq!(status, 200, "POST {path} {body}: {v}");
            v
        }
    };

    post("/api/link", json!({"a": a.addr(), "b": b.addr(), "latency_ms": 120})).await;
    assert_eq!(shown_link(&a, &b).await["latency_ms"], 120);
    assert_eq!(shown_link(&b, &a).await["latency_ms"], 120);

    let v = post(
        "/api/mining",
        json!({"node": b.addr(), "mode": "interval", "block_time_s": 3600}),
    )
    .await;
    assert_eq!(v["mining"]["mode"], "interval", "{v}");
    assert_eq!(b.status().await["mining_schedule"]["block_time_s"], 3600.0);

    let groups = json!([[a.addr()], [b.addr()]]);
    let v = post("/api/partition", json!({"groups": groups})).await;
    assert_eq!(v["links"], 1, "{v}");
    assert_eq!(a.peer_state(&b.addr()).await.as_deref(), Some("blocked"));
    assert_eq!(b.peer_state(&a.addr()).await.as_deref(), Some("blocked"));
    post("/api/partition", json!({"groups": groups, "cut": false})).await;
    a.wait_connected(&b.addr()).await;
    assert_eq!(
        shown_link(&a, &b).await["latency_ms"],
        120,
        "a heal keeps the other conditions"
    );
}

/// Reads `GET /events` of `node` until a `block_rejected` event names `hash`; returns its data.
async fn wait_rejection(events: &mut reqwest::Response, node: &TestNode, hash: &str) -> Value {
    let mut text = String::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        for message in text.split("\n\n") {
            if message.contains("event: block_rejected") && message.contains(hash) {
                let data = message.lines().find_map(|l| l.strip_prefix("data:")).unwrap();
                return serde_json::from_str(data.trim()).unwrap();
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, events.chunk()).await;
        let Ok(Ok(Some(bytes))) = chunk else {
            panic!("{}: no block_rejected for {hash}; events so far:\n{text}", node.name);
        };
        text.push_str(&String::from_utf8_lossy(&bytes));
    }
}

/// The tamper lesson on real processes: A offers its peers a copy of a block with one
/// amount changed (and a fresh nonce); B and C each refuse it on their own, naming the
/// broken rule (`merkle-root`) and A on their event streams, and nobody's chain moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_block_is_refused_by_every_peer_with_the_rule_it_broke() {
    let a = TestNode::start("A", &[]).await;
    let b = TestNode::start("B", &[&a]).await;
    let c = TestNode::start("C", &[&a]).await;
    a.wait_connected(&b.addr()).await;
    a.wait_connected(&c.addr()).await;
    let txid = a.send_tx("Alice", "Bob", 10).await;
    let block = a.mine().await;
    assert!(block.to_string().contains(&txid), "{block}");
    let hash = block["hash"].as_str().unwrap().to_string();
    b.wait_tip(&hash).await;
    c.wait_tip(&hash).await;

    let open = |n: &TestNode| common::client().get(n.url("/events")).send();
    let (mut b_events, mut c_events) = (open(&b).await.unwrap(), open(&c).await.unwrap());

    let (status, v) = a.post("/lab/tamper", &json!({"hash": hash})).await;
    assert_eq!(status.as_u16(), 200, "{v}");
    assert_eq!(
        (v["amount_before"].as_u64(), v["amount_after"].as_u64()),
        (Some(10), Some(100)),
        "{v}"
    );
    let tampered = v["tampered"].as_str().unwrap().to_string();
    assert_ne!(tampered, hash);
    let mut sent_to: Vec<&str> = v["sent_to"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    sent_to.sort();
    let mut want = vec![b.addr(), c.addr()];
    want.sort();
    assert_eq!(sent_to, want, "{v}");

    for (node, events) in [(&b, &mut b_events), (&c, &mut c_events)] {
        let rejected = wait_rejection(events, node, &tampered).await;
        assert_eq!(rejected["rule"], "merkle-root", "{}: {rejected}", node.name);
        assert_eq!(rejected["from_peer"], a.addr().as_str(), "{}: {rejected}", node.name);
        assert_eq!(tip(node).await, hash, "{} kept its chain", node.name);
    }
    assert_eq!(tip(&a).await, hash, "the tamperer's own chain is untouched");
    assert_eq!(a.chain_hashes().await.last().map(String::as_str), Some(hash.as_str()));

    // Bad requests answer 4xx with a JSON error.
    let (status, v) = a.post("/lab/tamper", &json!({"hash": "00".repeat(32)})).await;
    assert_eq!(status.as_u16(), 404, "{v}");
    let (status, v) = a.post("/lab/tamper", &json!({"hash": "nope"})).await;
    assert_eq!(status.as_u16(), 400, "{v}");
    assert!(v["error"].is_string(), "{v}");
    let genesis = a.chain_hashes().await[0].clone();
    let (status, v) = a.post("/lab/tamper", &json!({"hash": genesis})).await;
    assert_eq!(status.as_u16(), 400, "{v}");
}
