//! Tests that need the private table layout: values the public API cannot produce.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use chainsim_core::store::{ChainStore, StoreOp};
use chainsim_primitives::{Block, BlockHash, CompactTarget, Header, MerkleRoot, Transaction, Work};

use super::*;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "chainsim-store-unit-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn block(height: u64) -> Block {
    let mut b = Block {
        header: Header {
            version: 1,
            height,
            prev_hash: BlockHash([height as u8; 32]),
            merkle_root: MerkleRoot::ZERO,
            timestamp: 100 + height,
            bits: CompactTarget(0x1f00_ffff),
            nonce: 7,
        },
        transactions: vec![Transaction::coinbase("m", 50, 100 + height)],
    };
    b.header.merkle_root = b.compute_merkle_root().0;
    b
}

fn put(b: &Block) -> StoreOp {
    StoreOp::PutBlock {
        hash: b.compute_hash(),
        block: Arc::new(b.clone()),
        chain_work: Work(1),
    }
}

/// Writes straight into the tables, bypassing the store's own encoding.
fn raw_write(store: &RedbStore, f: impl FnOnce(&redb::WriteTransaction)) {
    let txn = store.db.begin_write().expect("begin");
    f(&txn);
    txn.commit().expect("commit");
}

fn expect_corrupted(result: Result<impl std::fmt::Debug, StoreError>, needle: &str) -> String {
    let e = result.expect_err("expected corruption");
    assert!(e.is_corruption(), "{e:?}");
    let line = e.to_string();
    assert!(line.contains(FILE_NAME), "{line}");
    assert!(line.contains(needle), "{line}");
    assert!(!line.contains('\n'), "{line}");
    line
}

#[test]
fn block_under_wrong_hash_is_corruption() {
    let dir = TempDir::new("wrong-hash");
    let mut store = RedbStore::open(&dir.0).expect("open");
    let (a, b) = (block(1), block(2));
    store.commit(&[put(&a), put(&b)]).expect("commit");
    // Swap b's bytes into a's slot: a value that decodes but is not the block of its key.
    raw_write(&store, |txn| {
        let mut t = txn.open_table(BLOCKS).expect("table");
        t.insert(
            a.compute_hash().0,
            encode_block_value(0, &b, Work(1)).as_slice(),
        )
        .expect("insert");
    });
    let line = expect_corrupted(store.load(), "has hash");
    assert!(line.starts_with("store "), "{line}");
}

#[test]
fn undecodable_block_is_corruption() {
    let dir = TempDir::new("undecodable");
    let mut store = RedbStore::open(&dir.0).expect("open");
    let a = block(1);
    store.commit(&[put(&a)]).expect("commit");
    raw_write(&store, |txn| {
        let mut t = txn.open_table(BLOCKS).expect("table");
        let mut value = encode_block_value(0, &a, Work(1));
        value.truncate(value.len() - 3);
        t.insert(a.compute_hash().0, value.as_slice())
            .expect("insert");
    });
    expect_corrupted(store.load(), "does not decode: unexpected end of data");
}

#[test]
fn index_pointing_nowhere_is_corruption() {
    let dir = TempDir::new("dangling");
    let mut store = RedbStore::open(&dir.0).expect("open");
    store.commit(&[put(&block(1))]).expect("commit");
    raw_write(&store, |txn| {
        let mut t = txn.open_table(BLOCK_ORDER).expect("table");
        t.insert(9, [0xAB; 32]).expect("insert");
    });
    expect_corrupted(store.load(), "points to missing block abababababab…");
}

#[test]
fn unindexed_block_and_bad_tip_are_corruption() {
    let dir = TempDir::new("unindexed");
    let mut store = RedbStore::open(&dir.0).expect("open");
    store
        .commit(&[put(&block(1)), put(&block(2))])
        .expect("commit");
    raw_write(&store, |txn| {
        let mut t = txn.open_table(BLOCK_ORDER).expect("table");
        t.remove(1).expect("remove");
    });
    expect_corrupted(
        store.load(),
        "2 blocks are stored but 1 are in the block index",
    );

    let dir = TempDir::new("bad-tip");
    let store = RedbStore::open(&dir.0).expect("open");
    raw_write(&store, |txn| {
        let mut t = txn.open_table(INTERNAL).expect("table");
        t.insert(KEY_TIP, [1u8; 5].as_slice()).expect("insert");
    });
    expect_corrupted(store.load(), "the tip is 5 bytes long");
}

#[test]
fn commit_failing_part_way_leaves_nothing() {
    let dir = TempDir::new("partial");
    let mut store = RedbStore::open(&dir.0).expect("open");
    let (a, b) = (block(1), block(2));
    store.commit(&[put(&a)]).expect("commit");
    // Make a's index entry disagree, so deleting a fails after earlier ops were applied.
    raw_write(&store, |txn| {
        let mut t = txn.open_table(BLOCK_ORDER).expect("table");
        t.insert(0, [0xCD; 32]).expect("insert");
    });
    let ops = [
        StoreOp::PutMeta("k".into(), vec![1]),
        put(&b),
        StoreOp::SetTip(b.compute_hash()),
        StoreOp::PutTx(
            Transaction::new("x", "y", 1, 2).compute_txid(),
            Transaction::new("x", "y", 1, 2),
        ),
        StoreOp::DeleteBlock(a.compute_hash()),
    ];
    expect_corrupted(store.commit(&ops), "is not at its position 0");

    // Nothing of the failed batch is visible, before or after reopening.
    let check = |store: &RedbStore| {
        let txn = store.db.begin_read().expect("read");
        assert!(
            txn.open_table(META)
                .expect("meta")
                .get("k")
                .expect("get")
                .is_none()
        );
        assert!(
            txn.open_table(BLOCKS)
                .expect("blocks")
                .get(b.compute_hash().0)
                .expect("get")
                .is_none()
        );
        assert!(
            txn.open_table(BLOCKS)
                .expect("blocks")
                .get(a.compute_hash().0)
                .expect("get")
                .is_some()
        );
        assert!(
            txn.open_table(INTERNAL)
                .expect("internal")
                .get(KEY_TIP)
                .expect("get")
                .is_none()
        );
        assert!(
            txn.open_table(MEMPOOL)
                .expect("mempool")
                .is_empty()
                .expect("len")
        );
    };
    check(&store);
    drop(store);
    check(&RedbStore::open(&dir.0).expect("reopen"));
}

#[test]
fn unknown_format_is_refused() {
    let dir = TempDir::new("format");
    let store = RedbStore::open(&dir.0).expect("open");
    raw_write(&store, |txn| {
        let mut t = txn.open_table(INTERNAL).expect("table");
        t.insert(KEY_FORMAT, 99u32.to_le_bytes().as_slice())
            .expect("insert");
    });
    drop(store);
    expect_corrupted(
        RedbStore::open(&dir.0),
        "unknown format version 99, this binary reads 1",
    );
}
