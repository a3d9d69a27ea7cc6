//! The network between real processes (issue 3 §6): gossip and peer exchange along a line
//! of 10 nodes, a partition healed into the heavier chain with nothing lost, and a node
//! killed mid-sync that resumes.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use chainsim_core::ChainParams;
use common::peer::FakePeer;
use common::{PATIENCE, TestNode, eventually, free_port};
use serde_json::{Value, json};

/// Ten nodes in a line, node i naming only node i-1. `--max-outbound 1` keeps the line
/// sparse (each node dials only its configured neighbour, so items must hop node to node)
/// while peer exchange still tells every node about more than its neighbours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_node_line_gossips_end_to_end() {
    let mut nodes: Vec<TestNode> = Vec::new();
    for i in 0..10 {
        let peers = nodes.last().map(|p| vec![p.addr()]).unwrap_or_default();
        let extra = vec!["--max-outbound".to_string(), "1".to_string()];
        let node = TestNode::start_with(&format!("n{i}"), free_port(), peers, extra).await;
        nodes.push(node);
    }
    for pair in nodes.windows(2) {
        pair[1].wait_connected(&pair[0].addr()).await;
        pair[0].wait_connected(&pair[1].addr()).await;
    }

    // A transaction sent to node 0 reaches node 9.
    let txid = nodes[0].send_tx("Alice", "Bob", 42).await;
    nodes[9].wait_pending(&txid).await;

    // A block mined on node 9 reaches node 0 (and takes the transaction with it).
    let block = nodes[9].mine().await;
    assert!(
        block["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["txid"] == txid.as_str()),
        "node 9 mined without the relayed transaction: {block}"
    );
    let tip = block["hash"].as_str().unwrap().to_string();
    for node in &nodes {
        node.wait_tip(&tip).await;
    }
    eventually("node 0 to drop the mined transaction", PATIENCE, || async {
        nodes[0].pending().await.is_empty()
    })
    .await;
    let v = nodes[0].get(&format!("/transactions/{txid}")).await;
    assert_eq!(v["status"], "confirmed", "{v}");

    // Peer exchange: everyone knows of more nodes than the ones it is linked to in the line.
    for (i, node) in nodes.iter().enumerate() {
        let neighbours = if i == 0 || i == 9 { 1 } else { 2 };
        eventually(
            &format!("{} to learn of more than its {neighbours} neighbours", node.name),
            PATIENCE,
            || async { node.peers().await.len() > neighbours },
        )
        .await;
    }
}

/// Blocks `other` on `node` through the API.
async fn block(node: &TestNode, other: &TestNode) {
    let (status, v) = node.post("/peers/block", &json!({"peer": other.addr()})).await;
    assert_eq!(status.as_u16(), 200, "{v}");
}

async fn unblock(node: &TestNode, other: &TestNode) {
    let (status, v) = node.post("/peers/unblock", &json!({"peer": other.addr()})).await;
    assert_eq!(status.as_u16(), 200, "{v}");
}

async fn tx_status(node: &TestNode, txid: &str) -> Value {
    node.get(&format!("/transactions/{txid}")).await
}

/// A-B-C in a line, cut between {A, B} and {C} with `/peers/block` on both sides of every
/// link (peer exchange would otherwise route around a single cut link). Each side mines;
/// after healing everyone takes C's heavier chain, the transaction mined only on A's side
/// goes back to pending, and the next block, mined on C, confirms it everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_heals_into_the_heavier_chain_without_losing_transactions() {
    let a = TestNode::start("A", &[]).await;
    let b = TestNode::start("B", &[&a]).await;
    let c = TestNode::start("C", &[&b]).await;
    b.wait_connected(&a.addr()).await;
    c.wait_connected(&b.addr()).await;

    // The cut, both ways on every link between the sides.
    block(&b, &c).await;
    block(&c, &b).await;
    block(&a, &c).await;
    block(&c, &a).await;
    for (x, y) in [(&b, &c), (&c, &b), (&a, &c), (&c, &a)] {
        assert_eq!(x.peer_state(&y.addr()).await.as_deref(), Some("blocked"));
    }
    assert_eq!(c.get("/status").await["peers"], 0, "C still has links");

    // A's side: a transaction and one block holding it.
    let txid = a.send_tx("Alice", "Bob", 7).await;
    b.wait_pending(&txid).await;
    let a_block = a.mine().await;
    assert!(
        a_block["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["txid"] == txid.as_str())
    );
    b.wait_tip(a_block["hash"].as_str().unwrap()).await;

    // C's side: three blocks, without the transaction.
    let mut c_tip = String::new();
    for _ in 0..3 {
        c_tip = c.mine().await["hash"].as_str().unwrap().to_string();
    }
    assert_eq!(c.length().await, 4);
    assert!(
        !c.pending().await.contains(&txid),
        "the transaction crossed the partition"
    );
    assert_eq!(a.length().await, 2, "a block crossed the partition");

    // Heal.
    unblock(&b, &c).await;
    unblock(&c, &b).await;
    unblock(&a, &c).await;
    unblock(&c, &a).await;
    for node in [&a, &b, &c] {
        node.wait_tip(&c_tip).await;
    }
    for node in [&a, &b] {
        assert_eq!(node.chain_hashes().await, c.chain_hashes().await);
        let v = tx_status(node, &txid).await;
        assert_eq!(
            v["status"], "pending",
            "{}: the A-side transaction was lost: {v}",
            node.name
        );
    }
    // The switch may happen as soon as C's branch outweighs A's (after 2 of its 3 blocks).
    let log = a.log();
    assert!(
        log.contains("reorganisation at height 0: 1 blocks out,") && log.contains("1 transactions back to pending"),
        "{}",
        a.log_tail()
    );

    // The transaction reaches C, which never saw it, and C's next block confirms it.
    c.wait_pending(&txid).await;
    let last = c.mine().await;
    assert!(
        last["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["txid"] == txid.as_str())
    );
    let last_hash = last["hash"].as_str().unwrap();
    for node in [&a, &b, &c] {
        node.wait_tip(last_hash).await;
        let v = tx_status(node, &txid).await;
        assert_eq!(v["status"], "confirmed", "{}: {v}", node.name);
        assert_eq!(v["block_hash"], last_hash);
        assert!(node.pending().await.is_empty(), "{}", node.name);
    }
}

/// Whether a node's debug log tells of a disk commit that stored blocks.
fn stored_blocks(log: &str) -> bool {
    log.lines()
        .filter_map(|l| l.split(" store operations (").nth(1))
        .any(|rest| !rest.starts_with("0 blocks"))
}

/// Number of blocks the restarted node says it verified from its store.
fn blocks_verified(log: &str) -> Option<u64> {
    let at = log.find(" blocks verified from genesis")?;
    log[..at].rsplit(' ').next()?.parse().ok()
}

/// A node syncing 1,200 blocks is SIGKILLed mid-sync, then restarted: it keeps what it had
/// stored and resumes from a real node to that node's tip.
///
/// The chain comes from a fake peer (tests/common/peer.rs) that answers the first block
/// download at once and holds the second, so the kill lands mid-sync every time instead of
/// racing a sync that takes milliseconds. A node asks for the next batch before the last
/// one's disk commit (the download overlaps the disk sync), so B is killed only once its
/// log, at debug level, tells of a commit that stored blocks. The real node A got the same
/// chain from the fake peer beforehand. All run on the easy test network
/// (`--test-network`) so that the chain is quick to mine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_killed_mid_sync_resumes() {
    const BLOCKS: u64 = 1_200;
    let fake = FakePeer::start(ChainParams::testnet()).await;
    fake.extend(BLOCKS as usize);
    let testnet = vec!["--test-network".to_string()];
    // A downloads everything before it serves.
    let a = TestNode::start_with("A", free_port(), vec![fake.addr()], testnet.clone()).await;
    assert_eq!(a.first_status["length"], BLOCKS + 1, "{}", a.first_status);
    assert_eq!(a.first_status["tip"], fake.tip().compute_hash().to_hex());

    // B downloads from the fake peer only: one batch, then the fake holds the next one.
    let mut b = TestNode::configure("B", free_port(), vec![fake.addr()], testnet.clone());
    b.log_filter = "info,chainsim_node::driver=debug".into();
    let before = fake.getblocks_seen();
    fake.hold_after(1);
    b.spawn();
    eventually("B to ask for its second batch", PATIENCE, || async {
        fake.getblocks_seen() >= before + 2
    })
    .await;
    eventually("B to commit blocks of its first batch", PATIENCE, || async {
        stored_blocks(&b.log_since_start())
    })
    .await;
    b.kill9();
    fake.release();

    // Restarted with A as its peer, B keeps its first batch and fetches the rest.
    b.peers = vec![a.addr()];
    let first = b.restart().await;
    let log = b.log_since_start();
    let verified = blocks_verified(&log).unwrap_or_else(|| panic!("{}", b.log_tail()));
    assert!(
        verified > 0 && verified < BLOCKS,
        "B stored {verified} of {BLOCKS} blocks before the kill"
    );
    assert_eq!(first["length"], BLOCKS + 1, "B's first answer: {first}");
    assert_eq!(first["tip"], a.first_status["tip"]);
    assert!(
        log.contains(&format!("({} blocks downloaded", BLOCKS - verified)),
        "B did not resume from where it stopped:\n{}",
        b.log_tail()
    );
    assert_eq!(b.chain_hashes().await, a.chain_hashes().await);
}
