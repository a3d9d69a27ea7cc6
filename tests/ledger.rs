//! The accounts ledger between real node processes: funds sent and confirmed with the same
//! balances on every node; two conflicting transfers sent to two nodes at once end with
//! exactly one confirmed; a partition where each side confirms one of two conflicting
//! transfers heals to one, the loser gone from every mempool; an open node and an accounts
//! node refuse each other at the handshake.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::process::Command;

use chainsim_api::SignedTxRequest;
use chainsim_primitives::keys::{DEMO_BALANCE, demo_key};
use chainsim_primitives::{Address, Transaction};
use common::{EXE, PATIENCE, TestNode, eventually, free_port};
use serde_json::{Value, json};

/// An accounts node on the easy test network.
async fn accounts_node(name: &str, peers: &[&TestNode]) -> TestNode {
    let peers = peers.iter().map(|p| p.addr()).collect();
    // Rewards go to an address outside the demo accounts, so their balances add up.
    let miner = chainsim_primitives::SecretKey::from_seed([9; 32]).address().to_text();
    let mut extra = ["--ledger", "accounts", "--test-network", "--miner"]
        .map(String::from)
        .to_vec();
    extra.push(miner);
    TestNode::start_with(name, free_port(), peers, extra).await
}

fn address(name: &str) -> Address {
    demo_key(name).unwrap().address()
}

/// `from` (a demo account) pays `amount` to `to` as its `nonce`-th transfer.
fn transfer(from: &str, to: &str, amount: u64, nonce: u64) -> Transaction {
    Transaction::signed(&demo_key(from).unwrap(), &address(to), amount, nonce, 1_700_000_000_000)
}

async fn submit_signed(node: &TestNode, tx: &Transaction) -> (u16, Value) {
    let body = serde_json::to_value(SignedTxRequest::of(tx).unwrap()).unwrap();
    let (status, v) = node.post("/transactions/signed", &body).await;
    (status.as_u16(), v)
}

async fn balance(node: &TestNode, name: &str) -> u64 {
    node.get(&format!("/accounts/{name}")).await["balance"]
        .as_u64()
        .unwrap()
}

async fn status_of(node: &TestNode, txid: &str) -> String {
    let (_, v) = node
        .call(reqwest::Method::GET, &format!("/transactions/{txid}"), None)
        .await;
    v["status"].as_str().unwrap_or("unknown").to_string()
}

/// Runs `chainsim wallet ...`, returning whether it succeeded and its stdout and stderr.
fn wallet(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(EXE).arg("wallet").args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).to_string();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn funds_sent_and_confirmed_show_on_every_node() {
    let mut a = accounts_node("A", &[]).await;
    let b = accounts_node("B", &[&a]).await;
    let c = accounts_node("C", &[&b]).await;
    b.wait_connected(&a.addr()).await;
    c.wait_connected(&b.addr()).await;

    // The original's route, signed by the node for a demo account.
    let (status, v) = a
        .post(
            "/transactions/new",
            &json!({"sender": "alice", "recipient": "bob", "amount": 10}),
        )
        .await;
    assert_eq!(status.as_u16(), 201, "{v}");
    let first = v["txid"].as_str().unwrap().to_string();
    // A name the node holds no key for.
    let (status, v) = a
        .post(
            "/transactions/new",
            &json!({"sender": "Mallory", "recipient": "bob", "amount": 1}),
        )
        .await;
    assert_eq!(status.as_u16(), 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("holds no key"), "{v}");

    // The wallet signs locally and submits to B.
    let node_b = b.addr();
    let (ok, out, err) = wallet(&[
        "send",
        "--key",
        "carol",
        "--to",
        &address("bob").to_text(),
        "--amount",
        "5",
        "--node",
        &node_b,
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("(nonce 0)"), "{out}");
    c.wait_pending(&first).await;
    eventually("C to hold both transfers", PATIENCE, || async {
        c.pending().await.len() == 2
    })
    .await;

    let tip = c.mine().await["hash"].as_str().unwrap().to_string();
    for node in [&a, &b, &c] {
        node.wait_tip(&tip).await;
        assert_eq!(balance(node, "alice").await, DEMO_BALANCE - 10, "{}", node.name);
        assert_eq!(balance(node, "bob").await, DEMO_BALANCE + 15, "{}", node.name);
        assert_eq!(balance(node, "carol").await, DEMO_BALANCE - 5, "{}", node.name);
        let alice = node.get("/accounts/alice").await;
        assert_eq!(
            (alice["nonce"].as_u64(), alice["next_nonce"].as_u64()),
            (Some(1), Some(1))
        );
    }
    let (ok, out, _) = wallet(&["balance", "bob", "--node", &a.addr()]);
    assert!(ok && out.contains(&format!("balance {}", DEMO_BALANCE + 15)), "{out}");
    let all = a.get("/accounts").await;
    assert_eq!(all["ledger"], "accounts");
    assert_eq!(all["accounts"][0]["name"], "alice");

    // A restart replays the stored chain through the ledger: the same balances.
    a.stop().await;
    a.restart().await;
    assert_eq!(balance(&a, "bob").await, DEMO_BALANCE + 15);
    assert_eq!(a.get("/accounts/carol").await["nonce"], 1);

    // A fresh key owns nothing: refused, one readable line, non-zero exit.
    let key_file = a.data_dir().join("fresh.key");
    let key = key_file.display().to_string();
    let (ok, out, _) = wallet(&["new", "--out", &key]);
    assert!(ok && out.contains("cs1"), "{out}");
    let (ok, _, err) = wallet(&[
        "send",
        "--key",
        &key,
        "--to",
        "alice",
        "--amount",
        "1",
        "--node",
        &a.addr(),
    ]);
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("unknown-account"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_transfers_sent_at_once_end_with_one_confirmed() {
    let a = accounts_node("A", &[]).await;
    let b = accounts_node("B", &[&a]).await;
    b.wait_connected(&a.addr()).await;
    let (to_bob, to_carol) = (transfer("dave", "bob", 100, 0), transfer("dave", "carol", 200, 0));
    let ((sa, va), (sb, vb)) = tokio::join!(submit_signed(&a, &to_bob), submit_signed(&b, &to_carol));
    assert_eq!((sa, sb), (201, 201), "{va} {vb}");
    let ids = [to_bob.compute_txid().to_hex(), to_carol.compute_txid().to_hex()];

    // Each node keeps the one it saw first and refuses the other when it is relayed.
    let (status, v) = submit_signed(&a, &to_carol).await;
    assert_eq!(status, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("conflict-in-mempool"), "{v}");
    assert!(
        v["error"].as_str().unwrap().contains(&ids[0]),
        "the existing one is named: {v}"
    );
    // The same, for programs: the rule and the transfer that keeps the coins, as fields.
    assert_eq!(v["rule"], "conflict-in-mempool", "{v}");
    assert_eq!(v["conflicts_with"], ids[0].as_str(), "{v}");

    let tip = a.mine().await["hash"].as_str().unwrap().to_string();
    b.wait_tip(&tip).await;
    for node in [&a, &b] {
        eventually("the loser to leave the mempool", PATIENCE, || async {
            node.pending().await.is_empty()
        })
        .await;
        let confirmed = [status_of(node, &ids[0]).await, status_of(node, &ids[1]).await];
        assert_eq!(
            confirmed.iter().filter(|s| *s == "confirmed").count(),
            1,
            "{}: {confirmed:?}",
            node.name
        );
        assert_eq!(confirmed[0], "confirmed", "A mined the one it saw first");
        assert_eq!(balance(node, "dave").await, DEMO_BALANCE - 100);
        assert_eq!(node.get("/accounts/dave").await["nonce"], 1);
    }
}

async fn cut(x: &TestNode, y: &TestNode, how: &str) {
    for (p, q) in [(x, y), (y, x)] {
        let (status, v) = p.post(&format!("/peers/{how}"), &json!({"peer": q.addr()})).await;
        assert_eq!(status.as_u16(), 200, "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_confirming_both_sides_heals_to_one() {
    let a = accounts_node("A", &[]).await;
    let b = accounts_node("B", &[&a]).await;
    b.wait_connected(&a.addr()).await;
    cut(&a, &b, "block").await;
    eventually("the link to close", PATIENCE, || async {
        a.get("/status").await["peers"] == 0
    })
    .await;

    // Each side confirms its own transfer of erin's nonce 0; B's side is heavier.
    let (to_frank, to_grace) = (transfer("erin", "frank", 300, 0), transfer("erin", "grace", 400, 0));
    assert_eq!(submit_signed(&a, &to_frank).await.0, 201);
    assert_eq!(submit_signed(&b, &to_grace).await.0, 201);
    a.mine().await;
    b.mine().await;
    // A later transfer of A's side (nonce 1): after the heal it follows the grace transfer
    // instead, so it stays pending.
    let to_heidi = transfer("erin", "heidi", 1, 1);
    assert_eq!(submit_signed(&a, &to_heidi).await.0, 201);
    let b_tip = b.mine().await["hash"].as_str().unwrap().to_string();
    assert_eq!(balance(&a, "frank").await, DEMO_BALANCE + 300);
    assert_eq!(balance(&b, "grace").await, DEMO_BALANCE + 400);

    cut(&a, &b, "unblock").await;
    a.wait_tip(&b_tip).await;
    let (lost, won) = (to_frank.compute_txid().to_hex(), to_grace.compute_txid().to_hex());
    for node in [&a, &b] {
        eventually("every mempool to drop erin's losing transfer", PATIENCE, || async {
            !node.pending().await.contains(&lost)
        })
        .await;
        assert_eq!(status_of(node, &won).await, "confirmed", "{}", node.name);
        assert_ne!(status_of(node, &lost).await, "confirmed", "{}", node.name);
        assert_eq!(balance(node, "frank").await, DEMO_BALANCE);
        assert_eq!(balance(node, "grace").await, DEMO_BALANCE + 400);
        assert_eq!(balance(node, "erin").await, DEMO_BALANCE - 400);
    }
    assert!(a.pending().await.contains(&to_heidi.compute_txid().to_hex()));
    assert!(
        a.log()
            .contains(&format!("dropped pending transaction {lost} (nonce-conflict-chain)")),
        "{}",
        a.log_tail()
    );
    assert!(a.log().contains("reorganisation"), "{}", a.log_tail());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_and_accounts_nodes_refuse_each_other_at_the_handshake() {
    // Whoever is dialled refuses the handshake and says why: the accounts node refuses the
    // open node's dial, the open node refuses the second accounts node's.
    let accounts = accounts_node("accounts", &[]).await;
    let open = TestNode::start_with(
        "open",
        free_port(),
        vec![accounts.addr()],
        vec!["--test-network".into()],
    )
    .await;
    let dialler = accounts_node("dialler", &[&open]).await;
    let reason = "handshake refused: peer is on another network";
    accounts.wait_log(reason).await;
    open.wait_log(reason).await;
    for (node, theirs, ours) in [
        (&accounts, "open ledger", "accounts ledger"),
        (&open, "accounts ledger", "open ledger"),
    ] {
        let log = node.log();
        let line = log.lines().find(|l| l.contains(reason)).unwrap();
        let (peer_part, our_part) = line.split_once(", ours ").unwrap();
        assert!(peer_part.contains(theirs) && our_part.contains(ours), "{line}");
        assert_eq!(node.get("/status").await["peers"], 0);
    }
    assert_eq!(dialler.get("/status").await["peers"], 0);
    // Each answers in its own ledger's terms.
    let (status, v) = open.call(reqwest::Method::GET, "/accounts", None).await;
    assert_eq!(status.as_u16(), 404, "{v}");
    assert!(v["error"].as_str().unwrap().contains("open ledger"), "{v}");
}

#[test]
fn bad_wallet_and_ledger_input_fails_with_one_line() {
    let dir = common::TempDir::new("ledger-cli");
    let data = dir.path().join("data");
    let key_file = dir.path().join("my.key");
    std::fs::write(&key_file, "not a key\n").unwrap();
    let (d, k) = (data.display().to_string(), key_file.display().to_string());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "node",
                "--ledger",
                "accounts",
                "--port",
                "0",
                "--data-dir",
                &d,
                "--miner",
                "Bobby",
            ],
            "accounts network",
        ),
        (
            vec!["wallet", "send", "--key", "alice", "--to", "cs1nope", "--amount", "1"],
            "not an address",
        ),
        (
            vec!["wallet", "send", "--key", &k, "--to", "bob", "--amount", "1"],
            "is not a key file",
        ),
        (
            vec![
                "wallet",
                "send",
                "--key",
                "/no/such/key",
                "--to",
                "bob",
                "--amount",
                "1",
            ],
            "cannot read key file",
        ),
        (
            vec!["wallet", "send", "--key", "alice", "--to", "bob", "--amount", "0"],
            "at least 1",
        ),
        (
            vec!["wallet", "balance", "alice", "--node", "127.0.0.1:1"],
            "cannot reach",
        ),
        (vec!["wallet", "new", "--out", &k], "exists already"),
    ];
    for (args, says) in cases {
        let out = Command::new(EXE).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(says),
            "{args:?}: {stderr}"
        );
    }
    assert!(!data.exists(), "a refused node created its data directory");
}
