//! Measures the cost of one durable commit of a typical batch: one block and 100 pending
//! transactions, 200 times. Run with `cargo run --release -p chainsim-store --example
//! commit_latency [dir]`; without a directory a scratch one under the temp dir is used and
//! removed afterwards.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chainsim_core::store::{ChainStore, StoreOp};
use chainsim_primitives::{Block, BlockHash, CompactTarget, Header, MerkleRoot, Transaction, Work};
use chainsim_store::{RedbStore, StoreError};

const COMMITS: u64 = 200;
const TXS_PER_COMMIT: u64 = 100;

fn main() -> Result<(), StoreError> {
    let (dir, scratch) = match std::env::args_os().nth(1) {
        Some(d) => (PathBuf::from(d), false),
        None => {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            (
                std::env::temp_dir().join(format!("chainsim-commit-latency-{nanos}")),
                true,
            )
        }
    };
    let mut store = RedbStore::open(&dir)?;
    let mut prev = BlockHash::ZERO;
    let mut total = Duration::ZERO;
    for c in 0..COMMITS {
        let txs: Vec<Transaction> = (0..TXS_PER_COMMIT)
            .map(|i| {
                Transaction::new(
                    format!("sender{i}"),
                    format!("recipient{c}"),
                    c * 1000 + i + 1,
                    c,
                )
            })
            .collect();
        let mut block = Block {
            header: Header {
                version: 1,
                height: c,
                prev_hash: prev,
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
        prev = block.compute_hash();
        let mut ops = vec![StoreOp::PutBlock {
            hash: prev,
            block: Arc::new(block),
            chain_work: Work(u128::from(c)),
        }];
        ops.extend(txs.into_iter().map(|t| StoreOp::PutTx(t.compute_txid(), t)));
        // Only the commit is timed: building the batch is the core's cost, not storage's.
        let start = Instant::now();
        store.commit(&ops)?;
        total += start.elapsed();
    }
    let ops_per_commit = (1 + TXS_PER_COMMIT) as f64;
    let mean_us = total.as_secs_f64() * 1e6 / COMMITS as f64;
    println!(
        "{COMMITS} commits of 1 block + {TXS_PER_COMMIT} txs in {}: mean {mean_us:.1} µs per commit, {:.2} µs per op",
        store.path().display(),
        mean_us / ops_per_commit
    );
    let start = Instant::now();
    let state = store.load()?;
    println!(
        "load of {} blocks and {} pending txs: {:.1} ms",
        state.blocks.len(),
        state.mempool.len(),
        start.elapsed().as_secs_f64() * 1e3
    );
    store.close()?;
    // Opening verifies every page checksum, so its cost grows with the file.
    let start = Instant::now();
    let store = RedbStore::open(&dir)?;
    println!(
        "reopen with integrity check: {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    store.close()?;
    if scratch {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
