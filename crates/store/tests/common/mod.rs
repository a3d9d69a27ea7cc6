//! Helpers shared by the integration tests: scratch directories and hand-built blocks.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use chainsim_primitives::{Block, BlockHash, CompactTarget, Header, MerkleRoot, Transaction};

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("chainsim-store-{name}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A pending transaction; distinct `n` give distinct txids.
pub fn tx(n: u64) -> Transaction {
    Transaction::new(
        format!("alice{}", n % 7),
        format!("bob{}", n % 5),
        n + 1,
        1_000 + n % 13,
    )
}

/// A block at `height` on top of `prev` with `n_txs` transactions after the coinbase; it
/// carries no valid proof of work, which storage does not care about.
pub fn block(height: u64, prev: BlockHash, n_txs: u64, salt: u64) -> Block {
    let mut transactions = vec![Transaction::coinbase(format!("miner{salt}"), 50, 10_000 + height)];
    transactions.extend((0..n_txs).map(|i| tx(salt * 100 + i)));
    let mut b = Block {
        header: Header {
            version: 1,
            height,
            prev_hash: prev,
            merkle_root: MerkleRoot::ZERO,
            timestamp: 10_000 + height,
            bits: CompactTarget(0x1f00_ffff),
            nonce: salt,
        },
        transactions,
    };
    b.header.merkle_root = b.compute_merkle_root().0;
    b
}
