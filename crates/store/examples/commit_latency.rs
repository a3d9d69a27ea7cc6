//! Measures the cost of one durable commit for two typical batches: 64 small pending
//! transactions (what a batch holds under 64 concurrent HTTP clients), and one block with 100
//! transactions. Commits go to the write-ahead log; the few that also checkpoint into the
//! database show up in the maximum. Run with `cargo run --release -p chainsim-store --example
//! commit_latency [dir]`; without a directory a scratch one under the temp dir is used and
//! removed afterwards.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chainsim_core::store::{ChainStore, StoreOp};
use chainsim_primitives::{Block, BlockHash, CompactTarget, Header, MerkleRoot, Transaction, Work};
use chainsim_store::{RedbStore, StoreError};

fn tx(c: u64, i: u64) -> Transaction {
    Transaction::new(format!("sender{i}"), format!("recipient{c}"), c * 1000 + i + 1, c)
}

/// Batch `c` of the HTTP case: `n` new pending transactions.
fn tx_batch(c: u64, n: u64) -> Vec<StoreOp> {
    (0..n)
        .map(|i| {
            let t = tx(c, i);
            StoreOp::PutTx(t.compute_txid(), Box::new(t))
        })
        .collect()
}

/// Batch `c` of the mining case: a block on `prev` and its `n` transactions as pending.
fn block_batch(c: u64, n: u64, prev: &mut BlockHash) -> Vec<StoreOp> {
    let txs: Vec<Transaction> = (0..n).map(|i| tx(c, i)).collect();
    let mut block = Block {
        header: Header {
            version: 1,
            height: c,
            prev_hash: *prev,
            merkle_root: MerkleRoot::ZERO,
            timestamp: c,
            bits: CompactTarget(0x1f00_ffff),
            nonce: c,
        },
        transactions: std::iter::once(Transaction::coinbase("miner", 50, c))
            .chain(txs.iter().cloned())
            .collect(),
    };
    block.header.merkle_root = block.compute_merkle_root().0;
    *prev = block.compute_hash();
    let mut ops = vec![
        StoreOp::PutBlock {
            hash: *prev,
            block: Arc::new(block),
            chain_work: Work(u128::from(c)),
        },
        StoreOp::SetTip(*prev),
    ];
    ops.extend(txs.into_iter().map(|t| StoreOp::PutTx(t.compute_txid(), Box::new(t))));
    ops
}

/// Commits `count` batches from `make` into a fresh store in `dir`, prints the latencies, and
/// returns the store.
fn run(dir: &Path, what: &str, count: u64, mut make: impl FnMut(u64) -> Vec<StoreOp>) -> Result<RedbStore, StoreError> {
    let mut store = RedbStore::open(dir)?;
    let mut times = Vec::with_capacity(count as usize);
    let mut ops_total = 0;
    for c in 0..count {
        let ops = make(c);
        ops_total += ops.len();
        // Only the commit is timed: building the batch is the core's cost, not storage's.
        let start = Instant::now();
        store.commit(&ops)?;
        times.push(start.elapsed());
    }
    let total: Duration = times.iter().sum();
    times.sort_unstable();
    let pick = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    let mean_us = total.as_secs_f64() * 1e6 / count as f64;
    println!(
        "{count} commits of {what}: mean {mean_us:.1} µs per commit ({:.2} µs per op), median {:.1} µs, p99 {:.1} µs, max {:.1} µs (checkpoints)",
        total.as_secs_f64() * 1e6 / ops_total as f64,
        pick(0.5),
        pick(0.99),
        pick(1.0),
    );
    Ok(store)
}

fn main() -> Result<(), StoreError> {
    let (base, scratch) = match std::env::args_os().nth(1) {
        Some(d) => (PathBuf::from(d), false),
        None => {
            let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            (
                std::env::temp_dir().join(format!("chainsim-commit-latency-{nanos}")),
                true,
            )
        }
    };
    println!("stores under {}", base.display());

    let store = run(&base.join("txs"), "64 txs", 3000, |c| tx_batch(c, 64))?;
    store.close()?;

    let dir = base.join("blocks");
    let mut prev = BlockHash::ZERO;
    let store = run(&dir, "1 block + 100 txs", 300, |c| block_batch(c, 100, &mut prev))?;
    let start = Instant::now();
    let state = store.load()?;
    println!(
        "load of {} blocks and {} pending txs (with the log not yet checkpointed): {:.1} ms",
        state.blocks.len(),
        state.mempool.len(),
        start.elapsed().as_secs_f64() * 1e3
    );
    let start = Instant::now();
    store.close()?;
    println!(
        "close (final checkpoint): {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    // Opening verifies every page checksum, so its cost grows with the file.
    let start = Instant::now();
    let store = RedbStore::open(&dir)?;
    println!(
        "reopen with integrity check: {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    store.close()?;
    if scratch {
        let _ = std::fs::remove_dir_all(&base);
    }
    Ok(())
}
