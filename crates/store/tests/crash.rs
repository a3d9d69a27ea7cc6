//! Crash durability: a child process commits batches and acknowledges each one on stdout only
//! after `commit` returned; the parent kills it with SIGKILL at a random moment and checks that
//! every acknowledged batch is fully there and no batch is half there.
//!
//! In half of the rounds the child never checkpoints, so the acknowledged batches exist only in
//! the write-ahead log and survive through its replay; in the others it checkpoints every few
//! batches, so that kills also land inside checkpoints.
//!
//! The child is this very test binary, re-run with a filter selecting [`crash_child`] and an
//! environment variable telling that test to act instead of returning at once.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chainsim_core::store::{ChainStore, StoreOp};
use chainsim_primitives::{Block, BlockHash, Transaction, Txid, Work};
use chainsim_store::{CheckpointPolicy, RedbStore};
use common::{TempDir, block, tx};

const CHILD_ENV: &str = "CHAINSIM_STORE_CRASH_CHILD_DIR";
/// The child's checkpoint limit in ops; without it the child never checkpoints.
const MAX_OPS_ENV: &str = "CHAINSIM_STORE_CRASH_MAX_OPS";
const ROUNDS: usize = 6;
/// Stops a child that is never killed, so that the test is bounded even if the parent errs.
const MAX_BATCHES: u64 = 50_000;
const TXS_PER_BATCH: u64 = 20;
const DELETED_PER_BATCH: u64 = 5;

/// The blocks of batches 0..n, each on top of the previous one.
fn chain(n: u64) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut prev = BlockHash::ZERO;
    for b in 0..n {
        let blk = block(b, prev, 30, b);
        prev = blk.compute_hash();
        blocks.push(blk);
    }
    blocks
}

fn batch_tx(b: u64, i: u64) -> Transaction {
    tx(b * TXS_PER_BATCH + i)
}

/// Batch `b`: its block, the tip, pending transactions, a marker, and deletion of part of
/// the previous batch's transactions, so that a half-applied batch is visible in every table.
fn batch_ops(b: u64, block: &Block) -> Vec<StoreOp> {
    let hash = block.compute_hash();
    let mut ops = vec![StoreOp::PutBlock {
        hash,
        block: Arc::new(block.clone()),
        chain_work: Work(u128::from(b) + 1),
    }];
    for i in 0..TXS_PER_BATCH {
        let t = batch_tx(b, i);
        ops.push(StoreOp::PutTx(t.compute_txid(), Box::new(t)));
    }
    if b > 0 {
        for i in 0..DELETED_PER_BATCH {
            ops.push(StoreOp::DeleteTx(batch_tx(b - 1, i).compute_txid()));
        }
    }
    ops.push(StoreOp::PutMeta(format!("batch/{b}"), b.to_le_bytes().to_vec()));
    ops.push(StoreOp::SetTip(hash));
    ops
}

/// Not a test on its own: does nothing unless run as the child of [`kill_9_loses_no_acknowledged_batch`].
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let policy = match std::env::var(MAX_OPS_ENV) {
        Ok(n) => CheckpointPolicy {
            max_ops: n.parse().expect("max ops"),
            ..CheckpointPolicy::default()
        },
        Err(_) => CheckpointPolicy {
            max_ops: usize::MAX,
            max_log_bytes: u64::MAX,
            max_age: Duration::from_secs(3600),
        },
    };
    let mut store = RedbStore::open_with(dir, policy).expect("child open");
    // Continue after the batches of earlier rounds, so that every round also recovers from
    // the previous kill.
    let start = store.load().expect("child load").blocks.len() as u64;
    let mut blocks = chain(start + 1);
    let mut out = std::io::stdout().lock();
    for b in start..MAX_BATCHES {
        let blk = blocks.last().expect("at least one block").clone();
        store.commit(&batch_ops(b, &blk)).expect("child commit");
        writeln!(out, "ACK {b}").expect("write ack");
        out.flush().expect("flush ack");
        blocks.push(block(b + 1, blk.compute_hash(), 30, b + 1));
    }
}

/// A small xorshift generator: the test must not depend on new crates for randomness.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Checks that the store holds exactly batches 0..n for some n, and returns n.
fn verify(dir: &Path) -> u64 {
    let state = RedbStore::open(dir)
        .expect("open after kill")
        .load()
        .expect("load after kill");
    let n = state.blocks.len() as u64;
    let want = chain(n);
    assert!(
        state.blocks.iter().map(|b| b.as_ref()).eq(want.iter()),
        "blocks are not batches 0..{n} in order"
    );
    assert_eq!(state.tip, want.last().map(Block::compute_hash), "tip of {n} batches");

    let mut meta: Vec<&String> = state.meta.keys().collect();
    meta.sort();
    let mut want_meta: Vec<String> = (0..n).map(|b| format!("batch/{b}")).collect();
    want_meta.sort();
    assert_eq!(meta, want_meta.iter().collect::<Vec<_>>(), "markers of {n} batches");

    let mut want_pool: BTreeMap<Txid, Transaction> = BTreeMap::new();
    for b in 0..n {
        let first_kept = if b + 1 < n { DELETED_PER_BATCH } else { 0 };
        for i in first_kept..TXS_PER_BATCH {
            let t = batch_tx(b, i);
            want_pool.insert(t.compute_txid(), t);
        }
    }
    let got_pool: HashMap<Txid, Transaction> = state.mempool.into_iter().map(|t| (t.compute_txid(), t)).collect();
    assert_eq!(got_pool.len(), want_pool.len(), "mempool size after {n} batches");
    for (txid, t) in &want_pool {
        assert_eq!(got_pool.get(txid), Some(t), "mempool after {n} batches");
    }
    n
}

#[test]
fn kill_9_loses_no_acknowledged_batch() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let dir = TempDir::new("crash");
    let exe = std::env::current_exe().expect("current exe");
    let mut acked_total = 0;

    for round in 0..ROUNDS {
        let log_only = round % 2 == 0;
        let mut command = Command::new(&exe);
        command
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path());
        if !log_only {
            // A batch is 27 ops (26 in the first): a checkpoint every 1 to 5 batches.
            command.env(MAX_OPS_ENV, (1 + rng.below(130)).to_string());
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let wanted = 1 + rng.below(25);
        let mut last_ack = None;
        let mut seen = 0;
        // Kept open until the child is dead: closing it first would kill the child with a
        // broken pipe between two commits instead of our SIGKILL at a random point.
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        while reader.read_line(&mut line).expect("read child stdout") > 0 {
            let ack = line.trim_end().strip_prefix("ACK ").map(str::to_owned);
            line.clear();
            if let Some(n) = ack {
                last_ack = Some(n.parse::<u64>().expect("ack number"));
                seen += 1;
                if seen == wanted {
                    break;
                }
            }
        }
        // Land the kill at an arbitrary point of a later commit, not just between two.
        std::thread::sleep(Duration::from_micros(rng.below(3_000)));
        child.kill().expect("kill child");
        let status = child.wait().expect("wait child");
        drop(reader);
        let last_ack = last_ack.unwrap_or_else(|| panic!("child acknowledged nothing (status {status})"));
        assert_eq!(seen, wanted, "child ended early (status {status})");

        let log_len = std::fs::metadata(dir.path().join("chain.wal"))
            .expect("log after kill")
            .len();
        if log_only {
            // The acknowledged batches of this round are in the log alone.
            assert!(log_len > 0, "round {round}: the child left an empty log");
        }
        let n = verify(dir.path());
        assert!(
            n > last_ack,
            "round {round}: batch {last_ack} was acknowledged but only {n} batches survived"
        );
        eprintln!(
            "round {round}: acknowledged up to {last_ack}, {n} batches on disk, {log_len} bytes of log replayed{}",
            if log_only { " (no checkpoints)" } else { "" }
        );
        acked_total += seen;
    }
    assert!(acked_total >= ROUNDS as u64);
}
