//! Crash safety (issue 2 §3): `kill -9` at any instant leaves a store that opens, and every
//! block or transaction the API acknowledged is there after restart; a damaged store stops
//! the node with one clear line, and `--resync` moves it aside.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TestNode, file_len, overwrite, random_u64};
use serde_json::{Value, json};

/// Everything the node acknowledged during a burst.
#[derive(Default)]
struct Acked {
    txids: Mutex<Vec<String>>,
    blocks: Mutex<Vec<String>>,
}

/// Fires transactions from 8 tasks and `/mine` from 2 until `stop`, recording every
/// acknowledged txid and block hash. Errors (the node dies under us) end a task quietly:
/// an unanswered request was never acknowledged.
async fn burst(
    node_url: String,
    round: u32,
    stop: Arc<AtomicBool>,
    acked: Arc<Acked>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let seq = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (http, url, stop, acked, seq) = (http.clone(), node_url.clone(), stop.clone(), acked.clone(), seq.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let body = json!({"sender": format!("r{round}w{worker}"), "recipient": "Bob", "amount": n + 1});
                let Ok(resp) = http.post(format!("{url}/transactions/new")).json(&body).send().await else {
                    return;
                };
                let status = resp.status().as_u16();
                let Ok(v) = resp.json::<Value>().await else { return };
                assert!(status == 201 || status == 200, "unexpected answer {status} {v}");
                acked
                    .txids
                    .lock()
                    .unwrap()
                    .push(v["txid"].as_str().unwrap().to_string());
            }
        }));
    }
    for _ in 0..2 {
        let (http, url, stop, acked) = (http.clone(), node_url.clone(), stop.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(resp) = http.post(format!("{url}/mine")).send().await else {
                    return;
                };
                let status = resp.status().as_u16();
                let Ok(v) = resp.json::<Value>().await else { return };
                assert_eq!(status, 200, "unexpected answer to /mine: {v}");
                acked
                    .blocks
                    .lock()
                    .unwrap()
                    .push(v["block"]["hash"].as_str().unwrap().to_string());
            }
        }));
    }
    tasks
}

/// Asserts every acknowledged txid is pending or confirmed and every acknowledged block is
/// known, asking the node about each one.
async fn assert_all_there(node: &TestNode, txids: &[String], blocks: &[String]) {
    let chunks: Vec<Vec<String>> = txids
        .chunks(txids.len().div_ceil(8).max(1))
        .map(<[String]>::to_vec)
        .collect();
    let mut checks = Vec::new();
    for chunk in chunks {
        let (http, base) = (node.http.clone(), node.url(""));
        checks.push(tokio::spawn(async move {
            let mut missing = Vec::new();
            for txid in chunk {
                let resp = http.get(format!("{base}/transactions/{txid}")).send().await.unwrap();
                let status = resp.status().as_u16();
                let v: Value = resp.json().await.unwrap_or(Value::Null);
                let known = status == 200 && (v["status"] == "pending" || v["status"] == "confirmed");
                if !known {
                    missing.push(format!("{txid}: {status} {v}"));
                }
            }
            missing
        }));
    }
    let mut missing = Vec::new();
    for c in checks {
        missing.extend(c.await.unwrap());
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged transactions are gone after kill -9, e.g. {:?}\n{}",
        missing.len(),
        txids.len(),
        &missing[..missing.len().min(5)],
        node.log_tail()
    );
    let chain: HashSet<String> = node.chain_hashes().await.into_iter().collect();
    for hash in blocks {
        let (status, v) = node.call(reqwest::Method::GET, &format!("/blocks/{hash}"), None).await;
        assert_eq!(
            status.as_u16(),
            200,
            "acknowledged block {hash} is gone after kill -9: {v}"
        );
        // One node, no forks: every block it mined stays on its best chain.
        assert!(chain.contains(hash), "acknowledged block {hash} left the best chain");
    }
}

/// Three rounds on the same data: a burst of transactions and mining, SIGKILL at a random
/// instant, restart; every acknowledged item of every round must be there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_loses_nothing_acknowledged() {
    let mut node = TestNode::start("crash", &[]).await;
    let mut all_txids: Vec<String> = Vec::new();
    let mut all_blocks: Vec<String> = Vec::new();
    for round in 0..3 {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Acked::default());
        let tasks = burst(node.url(""), round, stop.clone(), acked.clone()).await;
        // A random instant, after the burst is well under way.
        let delay = 300 + random_u64() % 1_500;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        node.kill9();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        let txids = acked.txids.lock().unwrap().clone();
        let blocks = acked.blocks.lock().unwrap().clone();
        eprintln!(
            "round {round}: killed after {delay} ms with {} transactions and {} blocks acknowledged",
            txids.len(),
            blocks.len()
        );
        assert!(
            !txids.is_empty(),
            "the burst got nothing acknowledged; the test proves nothing"
        );
        all_txids.extend(txids);
        all_blocks.extend(blocks);

        node.restart().await;
        assert!(
            node.log_since_start().contains("blocks verified from genesis"),
            "{}",
            node.log_tail()
        );
        assert_all_there(&node, &all_txids, &all_blocks).await;
    }
    let length = node.length().await;
    assert!(
        length > all_blocks.len() as u64,
        "length {length}, {} blocks acknowledged",
        all_blocks.len()
    );
}

/// A node with a few blocks, stopped cleanly; returns it and its pristine store bytes.
async fn node_with_blocks(name: &str) -> (TestNode, Vec<u8>) {
    let mut node = TestNode::start(name, &[]).await;
    node.send_tx("Alice", "Bob", 10).await;
    for _ in 0..5 {
        node.mine().await;
    }
    node.send_tx("Carol", "Dave", 2).await;
    assert!(node.stop().await.success());
    let bytes = std::fs::read(node.store_file()).unwrap();
    (node, bytes)
}

/// Checks the failure answer to a damaged store: non-zero exit, one line naming the file and
/// `--resync`, no panic; then `--resync` starts and keeps the old file aside.
async fn assert_refused_then_resync(node: &mut TestNode, damage: &str) {
    let (status, stderr) = node.run_to_exit().await;
    assert!(!status.success(), "{damage}: the node started on a damaged store");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{damage}: expected one line on stderr, got:\n{stderr}");
    let line = lines[0];
    let file = node.store_file().display().to_string();
    assert!(line.contains(&file), "{damage}: the line does not name {file}: {line}");
    assert!(
        line.contains("--resync"),
        "{damage}: the line does not mention --resync: {line}"
    );
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(bad), "{damage}: {stderr}");
    }

    node.extra = vec!["--resync".into()];
    let first = node.restart().await;
    assert_eq!(
        first["length"], 1,
        "with no peers a resync starts from genesis: {first}"
    );
    let data = node.store_file().parent().unwrap().to_path_buf();
    let kept: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("chain.redb.bad-"))
        .collect();
    assert_eq!(kept.len(), 1, "{damage}: the damaged file was not kept aside: {kept:?}");
    // The new store works: mine on it and find the block after a restart.
    node.extra.clear();
    let tip = node.mine().await["hash"].clone();
    assert!(node.stop().await.success());
    let first = node.restart().await;
    assert_eq!(first["tip"], tip);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_the_middle_of_the_store_stops_the_node_with_one_line() {
    let (mut node, bytes) = node_with_blocks("garbage").await;
    let len = bytes.len() as u64;
    overwrite(
        &node.store_file(),
        len / 4,
        &vec![0xAA; usize::try_from(len / 2).unwrap()],
    );
    assert_refused_then_resync(&mut node, "garbage in the middle").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_store_stops_the_node_with_one_line() {
    let (mut node, bytes) = node_with_blocks("truncated").await;
    let file = std::fs::OpenOptions::new().write(true).open(node.store_file()).unwrap();
    file.set_len(bytes.len() as u64 / 2).unwrap();
    drop(file);
    assert_eq!(file_len(&node.store_file()), bytes.len() as u64 / 2);
    assert_refused_then_resync(&mut node, "truncated").await;
}

/// Offsets of the records in a write-ahead log (`length u32 | checksum [u8; 8] | payload`,
/// see crates/store/src/wal.rs), as far as they are complete.
fn wal_records(log: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(len) = log.get(pos..pos + 4) {
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if pos + 12 + len > log.len() {
            break;
        }
        out.push((pos, 12 + len));
        pos += 12 + len;
    }
    out
}

/// Damage to a record in the middle of the write-ahead log, with intact acknowledged
/// records after it, is corruption, not a torn tail (a crash can only tear the last record):
/// the node must refuse to start with one line naming the log and `--resync`, or else still
/// hold every acknowledged transaction; silently dropping the records behind the damage is
/// losing acknowledged data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damage_inside_the_write_ahead_log_is_not_taken_for_a_torn_tail() {
    let mut node = TestNode::start("wal", &[]).await;
    let wal = node.store_file().with_file_name("chain.wal");
    let mut acked = Vec::new();
    let mut log = Vec::new();
    // Each transaction is its own commit, hence its own record. A checkpoint (every 2 s)
    // empties the log: retry until the kill leaves several records in it.
    for attempt in 0..5 {
        for i in 0..10 {
            acked.push(node.send_tx(&format!("w{attempt}x{i}"), "Bob", 1).await);
        }
        node.kill9();
        log = std::fs::read(&wal).unwrap_or_default();
        if wal_records(&log).len() >= 4 {
            break;
        }
        node.restart().await;
    }
    let records = wal_records(&log);
    assert!(records.len() >= 4, "the log never held several records: {records:?}");
    // Flip bytes inside the payload of the second record; the ones after it stay intact.
    let (at, len) = records[1];
    let mut damaged = log.clone();
    for b in &mut damaged[at + 12..at + len] {
        *b ^= 0x5a;
    }
    std::fs::write(&wal, &damaged).unwrap();

    match node.start_or_exit().await {
        Err(status) => {
            assert!(!status.success());
            let out = node.log_since_start();
            let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(lines.len(), 1, "expected one line, got:\n{out}");
            assert!(
                lines[0].contains("chain.wal") && lines[0].contains("--resync"),
                "{}",
                lines[0]
            );
            assert!(!out.contains("panicked"), "{out}");
        }
        Ok(first) => {
            let pending: HashSet<String> = node.pending().await.into_iter().collect();
            let lost: Vec<&String> = acked.iter().filter(|t| !pending.contains(*t)).collect();
            assert!(
                lost.is_empty(),
                "the node started on a damaged log ({first}) and dropped {} of {} acknowledged \
                 transactions: the damaged record held one; the rest were intact records behind it",
                lost.len(),
                acked.len()
            );
        }
    }
}
