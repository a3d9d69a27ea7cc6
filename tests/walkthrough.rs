//! What a user can do, step for step: the original's walkthrough with two nodes (issue 3)
//! and the single-node story of issue 2, on real processes.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::{TestNode, free_port};
use serde_json::json;

/// The order in which `lines` first appear in `log`; panics when one is missing.
fn assert_in_order(name: &str, log: &str, lines: &[&str]) {
    let mut from = 0;
    for line in lines {
        match log[from..].find(line) {
            Some(at) => from += at + line.len(),
            None => panic!("{name}'s log lacks {line:?} (in this order: {lines:?}):\n{log}"),
        }
    }
}

/// The original's walkthrough: two nodes naming each other; a transaction sent to either
/// shows on both; a block mined on one reaches the other; the second node stops, misses two
/// blocks, and on restart has caught up before it answers its first request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn original_walkthrough_with_two_nodes() {
    // Step 1: start "5000", then "5001", each naming the other.
    let (pa, pb) = (free_port(), free_port());
    let mut a = TestNode::configure("A", pa, vec![format!("127.0.0.1:{pb}")], Vec::new());
    let mut b = TestNode::configure("B", pb, vec![format!("127.0.0.1:{pa}")], Vec::new());
    a.spawn();
    a.wait_serving().await;
    b.spawn();
    b.wait_serving().await;
    for (node, other) in [(&a, pb), (&b, pa)] {
        let port = node.port;
        // The API opens a moment before the line saying so is written.
        node.wait_log(&format!("[{port}] serving at")).await;
        assert_in_order(
            &node.name,
            &node.log_since_start(),
            &[
                &format!("[{port}] registering neighbour 127.0.0.1:{other}"),
                &format!("[{port}] syncing with the network before serving"),
                &format!("[{port}] already have the newest chain (length 1)"),
                &format!("[{port}] serving at http://127.0.0.1:{port}"),
            ],
        );
    }
    a.wait_connected(&b.addr()).await;
    b.wait_connected(&a.addr()).await;

    // Step 3: a transaction sent to either node shows on both.
    let t1 = a.send_tx("Alice", "Bob", 10).await;
    let t2 = b.send_tx("Carol", "Dave", 3).await;
    for node in [&a, &b] {
        node.wait_pending(&t1).await;
        node.wait_pending(&t2).await;
    }
    assert_eq!(a.get("/status").await["pending"], 2);

    // Step 4: mine on A; both show length 2 and nothing pending.
    let block = a.mine().await;
    let mined: Vec<&str> = block["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["txid"].as_str().unwrap())
        .collect();
    assert!(mined.contains(&t1.as_str()) && mined.contains(&t2.as_str()), "{block}");
    let tip = block["hash"].as_str().unwrap().to_string();
    b.wait_tip(&tip).await;
    for node in [&a, &b] {
        assert_eq!(node.length().await, 2, "{}", node.name);
        assert!(
            node.pending().await.is_empty(),
            "{} still has pending transactions",
            node.name
        );
    }

    // Step 5: stop B (SIGTERM, the Ctrl+C of scripts) and mine two more on A.
    let exit = b.stop().await;
    assert!(exit.success(), "B did not exit cleanly on SIGTERM: {exit}");
    assert!(b.log_since_start().contains("store closed cleanly"), "{}", b.log_tail());
    a.mine().await;
    let tip = a.mine().await["hash"].as_str().unwrap().to_string();
    assert_eq!(a.length().await, 4);

    // Step 6: start B again: before it serves a single request it has caught up.
    let first = b.restart().await;
    assert_eq!(first["length"], 4, "B's first answer after restart: {first}");
    assert_eq!(first["tip"], tip.as_str());
    assert!(
        b.log_since_start().contains("caught up"),
        "B's log does not say it caught up:\n{}",
        b.log_tail()
    );
    assert_eq!(b.chain_hashes().await, a.chain_hashes().await);
}

/// Issue 2's user story on one node: a transaction, the pending list, a mined block, the
/// chain; then the same chain after a clean stop and after `kill -9`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_story_survives_sigterm_and_sigkill() {
    let mut node = TestNode::start("solo", &[]).await;
    let (status, v) = node
        .post(
            "/transactions/new",
            &json!({"sender": "Alice", "recipient": "Bob", "amount": 10}),
        )
        .await;
    assert_eq!(status.as_u16(), 201, "{v}");
    let txid = v["txid"].as_str().unwrap().to_string();
    assert_eq!(node.pending().await, vec![txid.clone()]);
    let block = node.mine().await;
    assert_eq!(block["transactions"][1]["txid"], txid.as_str());
    let chain = node.get("/chain").await;
    assert_eq!(chain["length"], 2);
    assert!(node.pending().await.is_empty());

    // Clean stop, then start again: the same chain, verified from genesis.
    let exit = node.stop().await;
    assert!(exit.success(), "no clean exit on SIGTERM: {exit}");
    let first = node.restart().await;
    assert_eq!(first["length"], 2);
    assert_eq!(
        node.get("/chain").await,
        chain,
        "the chain changed across a clean restart"
    );
    assert!(
        node.log_since_start().contains("1 blocks verified from genesis"),
        "{}",
        node.log_tail()
    );
    let miner = first["miner"].clone();

    // One more pending transaction, then kill -9: the chain and the acknowledged
    // transaction are both there afterwards.
    let t2 = node.send_tx("Carol", "Dave", 5).await;
    node.kill9();
    let first = node.restart().await;
    assert_eq!(first["length"], 2);
    assert_eq!(node.get("/chain").await, chain, "the chain changed across kill -9");
    assert_eq!(node.pending().await, vec![t2]);
    // The reward address is kept with the data, unlike the original's random id.
    assert_eq!(first["miner"], miner);
}
