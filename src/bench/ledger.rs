//! The accounts ledger's costs: signed-transaction ingest over loopback against the open
//! ledger's in the same run, and the validation of blocks of 1,000 signed transfers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chainsim_api::SignedTxRequest;
use chainsim_core::chain::{BlockTree, validate_in_chain, validate_in_chain_with};
use chainsim_core::{ChainParams, LedgerKind};
use chainsim_primitives::keys::{DEMO_NAMES, demo_key};
use chainsim_primitives::pow::search_nonce;
use chainsim_primitives::{Block, Header, SecretKey, Transaction, compute_merkle_root};

/// Keep-alive clients, as the open ledger's ingest benchmark.
const CLIENTS: usize = 64;
/// Transactions each client has ready (signed before the timed section).
const PER_CLIENT: usize = 3_000;

/// A mined child of `parent` on `params` carrying `txs`.
fn mined_child(params: &ChainParams, parent: &Block, txs: Vec<Transaction>) -> Block {
    let timestamp = parent.header.timestamp + 1_000;
    let mut transactions = vec![Transaction::coinbase(
        SecretKey::from_seed([9; 32]).address().to_text(),
        params.reward,
        timestamp,
    )];
    transactions.extend(txs);
    let txids: Vec<_> = transactions.iter().map(Transaction::compute_txid).collect();
    let mut header = Header {
        version: chainsim_primitives::header::HEADER_VERSION,
        height: parent.header.height + 1,
        prev_hash: parent.compute_hash(),
        merkle_root: compute_merkle_root(&txids).0,
        timestamp,
        bits: params.bits,
        nonce: 0,
    };
    if let Some((nonce, _)) = search_nonce(&header, &params.bits.to_target(), 0, u64::MAX) {
        header.nonce = nonce;
    }
    Block { header, transactions }
}

/// Validation of one block of 1,000 transactions on one core: signed transfers with their
/// signatures checked (batch) and without (already verified in the mempool), and unsigned
/// transfers on the open ledger.
pub fn validation(secs: Duration) -> anyhow::Result<()> {
    println!("== ledger validation: validate_in_chain of one block of 1,000 transactions, one core");
    let accounts = ChainParams::testnet_accounts();
    let keys: Vec<SecretKey> = DEMO_NAMES.iter().filter_map(|n| demo_key(n)).collect();
    let mut signed = Vec::with_capacity(1_000);
    for nonce in 0..100u64 {
        for (i, k) in keys.iter().enumerate() {
            let to = keys[(i + 1) % keys.len()].address();
            signed.push(Transaction::signed(k, &to, 1, nonce, 1_700_000_000_000));
        }
    }
    let block = Arc::new(mined_child(&accounts, accounts.genesis(), signed));
    let mut tree = BlockTree::new(accounts.genesis().clone(), 10);
    tree.enable_ledger().map_err(|e| anyhow::anyhow!("{e}"))?;
    let time = |f: &dyn Fn() -> anyhow::Result<()>| -> anyhow::Result<f64> {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < secs {
            f()?;
            n += 1;
        }
        Ok(n as f64 / start.elapsed().as_secs_f64())
    };
    let invalid = |e: chainsim_core::ValidationError| anyhow::anyhow!("bench block invalid: {e}");
    let with_sigs = time(&|| {
        validate_in_chain(&accounts, block.clone(), &tree, None)
            .map(|_| ())
            .map_err(invalid)
    })?;
    let known = |_: &chainsim_primitives::Txid| true;
    let without = time(&|| {
        validate_in_chain_with(&accounts, block.clone(), &tree, None, &known)
            .map(|_| ())
            .map_err(invalid)
    })?;
    let open = ChainParams::testnet();
    let unsigned: Vec<Transaction> = (0..1_000u64)
        .map(|i| Transaction::new(format!("sender{i}"), "bob", 1, i))
        .collect();
    let open_block = Arc::new(mined_child(&open, open.genesis(), unsigned));
    let open_tree = BlockTree::new(open.genesis().clone(), 10);
    let open_rate = time(&|| {
        validate_in_chain(&open, open_block.clone(), &open_tree, None)
            .map(|_| ())
            .map_err(invalid)
    })?;
    for (what, rate) in [
        ("signed, signatures checked (batch)", with_sigs),
        ("signed, signatures known (mempool)", without),
        ("open ledger, unsigned", open_rate),
    ] {
        println!(
            "{what:<36} {rate:>8.1} blocks/s  {:>9.0} transactions/s  {:>7.2} ms a block",
            rate * 1_000.0,
            1_000.0 / rate
        );
    }
    Ok(())
}

/// A node of ledger `kind` on the easy test network, in this process.
async fn start_node(
    dir: &std::path::Path,
    kind: LedgerKind,
) -> anyhow::Result<(
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
)> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let opts = chainsim_node::NodeOptions {
        port: 0,
        data_dir: Some(dir.join(kind.as_str())),
        no_default_peers: true,
        mempool_capacity: 10_000_000,
        mine_threads: Some(1),
        test_network: true,
        ledger: kind,
        miner: Some(SecretKey::from_seed([9; 32]).address().to_text()),
        ..Default::default()
    };
    let node = tokio::spawn(async move {
        let stopped = async move {
            let _ = stop_rx.await;
        };
        let _ = chainsim_node::run(opts, stopped, move |a| {
            let _ = tx.send(a);
        })
        .await;
    });
    let addr = rx.await.context("node did not start")?;
    let client = reqwest::Client::new();
    for _ in 0..100 {
        if client.get(format!("http://{addr}/status")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((addr, stop_tx, node))
}

/// Request bodies for each client: on the accounts ledger a ring of signed transfers of 1
/// (client i pays client i+1, nonces in order); on the open ledger distinct senders.
fn bodies(kind: LedgerKind, keys: &[SecretKey]) -> Vec<Vec<String>> {
    (0..CLIENTS)
        .map(|c| {
            (0..PER_CLIENT as u64)
                .map(|n| match kind {
                    LedgerKind::Open => {
                        format!(r#"{{"sender":"client{c}-{n}","recipient":"Bob","amount":10}}"#)
                    }
                    LedgerKind::Accounts => {
                        let to = keys[(c + 1) % CLIENTS].address();
                        let tx = Transaction::signed(&keys[c], &to, 1, n, 1_700_000_000_000);
                        SignedTxRequest::of(&tx)
                            .and_then(|r| serde_json::to_string(&r).ok())
                            .unwrap_or_default()
                    }
                })
                .collect()
        })
        .collect()
}

/// Gives each client key an equal share of the demo accounts' funds, confirmed in a block.
async fn fund(client: &reqwest::Client, addr: std::net::SocketAddr, keys: &[SecretKey]) -> anyhow::Result<()> {
    for (i, key) in keys.iter().enumerate() {
        let from = DEMO_NAMES[i % DEMO_NAMES.len()];
        let body = serde_json::json!({"sender": from, "recipient": key.address().to_text(), "amount": 140});
        let resp = client
            .post(format!("http://{addr}/transactions/new"))
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(resp.status().is_success(), "funding refused: {}", resp.text().await?);
    }
    client.get(format!("http://{addr}/mine")).send().await?;
    Ok(())
}

/// Transactions/s accepted (201) over `secs` by [`CLIENTS`] keep-alive clients; a refused
/// transfer (funds still pending) is sent again after a moment. A block is mined every
/// 250 ms on both ledgers, so transfers confirm and the ring's funds come back.
async fn ingest(kind: LedgerKind, secs: Duration, keys: &[SecretKey]) -> anyhow::Result<(f64, u64)> {
    let dir = super::temp_dir("ledger")?;
    let (addr, stop, node) = start_node(&dir, kind).await?;
    let setup = reqwest::Client::new();
    let path = match kind {
        LedgerKind::Open => "/transactions/new",
        LedgerKind::Accounts => {
            fund(&setup, addr, keys).await?;
            "/transactions/signed"
        }
    };
    let all = bodies(kind, keys);
    let (accepted, retried) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let done = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for list in all {
        let (accepted, retried, done) = (accepted.clone(), retried.clone(), done.clone());
        let url = format!("http://{addr}{path}");
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut i = 0;
            while i < list.len() && !done.load(Ordering::Relaxed) {
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(list[i].clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                    _ => {
                        retried.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }));
    }
    while start.elapsed() < secs {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let _ = setup.get(format!("http://{addr}/mine")).send().await;
    }
    let count = accepted.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let _ = stop.send(());
    let _ = node.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((count as f64 / elapsed, retried.load(Ordering::Relaxed)))
}

/// Pairs of open and signed ingest measured in turn.
const ROUNDS: usize = 3;

/// Signed-transaction ingest against the open ledger's, same clients, same run.
pub async fn run(secs: Duration) -> anyhow::Result<()> {
    validation(secs)?;
    let secs = secs.max(Duration::from_secs(3));
    println!(
        "== ledger ingest: {CLIENTS} keep-alive clients over loopback for {} s each, a block mined every 250 ms",
        secs.as_secs()
    );
    let keys: Vec<SecretKey> = (0..CLIENTS as u64)
        .map(|i| SecretKey::from_seed(chainsim_primitives::sha256(&i.to_le_bytes())))
        .collect();
    // Three pairs, open then signed in turn, so that a change in the shared machine's speed
    // moves both sides of a pair alike; the ratio quoted is the median of the pairs.
    let mut ratios = Vec::new();
    for round in 1..=ROUNDS {
        let (open, _) = ingest(LedgerKind::Open, secs, &keys).await?;
        let (signed, retried) = ingest(LedgerKind::Accounts, secs, &keys).await?;
        println!(
            "pair {round}: open POST /transactions/new {open:>8.0} tx/s, signed POST /transactions/signed {signed:>8.0} tx/s ({retried} sent again): {:.0}%",
            signed / open * 100.0
        );
        ratios.push(signed / open);
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!(
        "signed / open, median of {ROUNDS} pairs: {:.0}%  (target >= 50%)",
        median * 100.0
    );
    Ok(())
}
