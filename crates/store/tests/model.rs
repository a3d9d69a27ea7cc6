//! The redb store behaves like the in-memory reference, across batches and reopening.

mod common;

use std::ops::ControlFlow;
use std::sync::Arc;

use chainsim_core::store::{BlockSource, ChainStore, MemoryStore, StoreOp, StoredState};
use chainsim_primitives::{Block, BlockHash, Transaction, Work};
use chainsim_store::RedbStore;
use common::{TempDir, block, tx};
use proptest::prelude::*;

const BLOCKS: usize = 10;
const TXS: usize = 12;

fn pool() -> (Vec<Block>, Vec<Transaction>) {
    let mut blocks = Vec::new();
    let mut prev = BlockHash::ZERO;
    for i in 0..BLOCKS as u64 {
        let b = block(i, prev, i % 4, i);
        prev = b.compute_hash();
        blocks.push(b);
    }
    (blocks, (0..TXS as u64).map(tx).collect())
}

/// An op over the small pools, so that deletes and re-puts hit existing entries often.
#[derive(Debug, Clone)]
enum Op {
    PutBlock(usize, u128),
    DeleteBlock(usize),
    SetTip(usize),
    PutTx(usize),
    DeleteTx(usize),
    PutMeta(u8, Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..BLOCKS, any::<u128>()).prop_map(|(i, w)| Op::PutBlock(i, w)),
        1 => (0..BLOCKS).prop_map(Op::DeleteBlock),
        1 => (0..BLOCKS).prop_map(Op::SetTip),
        3 => (0..TXS).prop_map(Op::PutTx),
        2 => (0..TXS).prop_map(Op::DeleteTx),
        1 => (0u8..4, proptest::collection::vec(any::<u8>(), 0..6)).prop_map(|(k, v)| Op::PutMeta(k, v)),
    ]
}

fn to_store_op(op: &Op, blocks: &[Block], txs: &[Transaction]) -> StoreOp {
    match op {
        Op::PutBlock(i, w) => StoreOp::PutBlock {
            hash: blocks[*i].compute_hash(),
            block: Arc::new(blocks[*i].clone()),
            chain_work: Work(*w),
        },
        Op::DeleteBlock(i) => StoreOp::DeleteBlock(blocks[*i].compute_hash()),
        Op::SetTip(i) => StoreOp::SetTip(blocks[*i].compute_hash()),
        Op::PutTx(i) => StoreOp::PutTx(txs[*i].compute_txid(), Box::new(txs[*i].clone())),
        Op::DeleteTx(i) => StoreOp::DeleteTx(txs[*i].compute_txid()),
        Op::PutMeta(k, v) => StoreOp::PutMeta(format!("key{k}"), v.clone()),
    }
}

fn assert_same(got: &StoredState, want: &StoredState) -> Result<(), TestCaseError> {
    let hashes = |s: &StoredState| s.blocks.iter().map(|b| b.compute_hash()).collect::<Vec<_>>();
    prop_assert_eq!(hashes(got), hashes(want));
    prop_assert_eq!(&got.blocks, &want.blocks);
    prop_assert_eq!(got.tip, want.tip);
    prop_assert_eq!(&got.mempool, &want.mempool);
    prop_assert_eq!(&got.meta, &want.meta);
    Ok(())
}

/// The streaming load, the light load and every block of the pool read through `reader`
/// agree with `want`, the reference's full load.
fn assert_read_paths(
    store: &impl ChainStore<Error: std::fmt::Debug>,
    reader: &dyn BlockSource,
    blocks: &[Block],
    want: &StoredState,
) -> Result<(), TestCaseError> {
    let mut streamed = Vec::new();
    store
        .for_each_block(&mut |hash, block| {
            streamed.push((hash, block));
            ControlFlow::Continue(())
        })
        .expect("stream");
    prop_assert!(streamed.iter().all(|(h, b)| *h == b.compute_hash()));
    let streamed: Vec<Arc<Block>> = streamed.into_iter().map(|(_, b)| b).collect();
    prop_assert_eq!(&streamed, &want.blocks);
    let meta = store.load_meta().expect("load_meta");
    prop_assert_eq!(meta.tip, want.tip);
    prop_assert_eq!(&meta.mempool, &want.mempool);
    prop_assert_eq!(&meta.meta, &want.meta);
    let hashes: Vec<BlockHash> = blocks.iter().map(Block::compute_hash).collect();
    let read = reader.read_blocks(&hashes).expect("read_blocks");
    for (hash, got) in hashes.iter().zip(&read) {
        let stored = want.blocks.iter().find(|b| b.compute_hash() == *hash);
        prop_assert_eq!(got.as_deref(), stored.map(|b| &**b));
        let one = reader.read_block(hash).expect("read_block");
        prop_assert_eq!(one.as_deref(), stored.map(|b| &**b));
    }
    Ok(())
}

proptest! {
    // Every commit is an fsync, so keep the case count moderate.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn redb_matches_memory(
        ops in proptest::collection::vec(op(), 0..60),
        cuts in proptest::collection::vec(0usize..60, 0..12),
        checkpoints in proptest::collection::vec(any::<bool>(), 13),
    ) {
        let (blocks, txs) = pool();
        let ops: Vec<StoreOp> = ops.iter().map(|o| to_store_op(o, &blocks, &txs)).collect();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(ops.len())).collect();
        cuts.push(0);
        cuts.push(ops.len());
        cuts.sort_unstable();

        let dir = TempDir::new("model");
        let mut redb = RedbStore::open(dir.path()).expect("open");
        let mut memory = MemoryStore::default();
        // Readers made before any commit see all of them.
        let (redb_reader, memory_reader) = (redb.reader(), memory.reader());
        for (w, checkpoint) in cuts.windows(2).zip(&checkpoints) {
            let batch = &ops[w[0]..w[1]];
            memory.commit(batch).expect("memory commit");
            redb.commit(batch).expect("redb commit");
            // load() sees the logged ops on top of the database, before and after they are
            // checkpointed into it; so do the streaming load and the readers.
            let want = memory.load().expect("memory load");
            assert_same(&redb.load().expect("load"), &want)?;
            assert_read_paths(&memory, &*memory_reader, &blocks, &want)?;
            assert_read_paths(&redb, &*redb_reader, &blocks, &want)?;
            if *checkpoint {
                redb.checkpoint().expect("checkpoint");
                assert_same(&redb.load().expect("load"), &want)?;
                assert_read_paths(&redb, &*redb_reader, &blocks, &want)?;
            }
        }
        let want = memory.load().expect("memory load");
        // Dropping checkpoints the log; putting it back afterwards is a crash between that
        // checkpoint and the truncation of the log, and its replay must change nothing.
        let log = std::fs::read(redb.wal_path()).expect("read log");
        drop(redb);
        let reopened = RedbStore::open(dir.path()).expect("reopen");
        assert_same(&reopened.load().expect("load after reopen"), &want)?;
        assert_read_paths(&reopened, &*reopened.reader(), &blocks, &want)?;
        drop(reopened);
        std::fs::write(dir.path().join("chain.wal"), &log).expect("restore log");
        let replayed = RedbStore::open(dir.path()).expect("reopen with the log again");
        assert_same(&replayed.load().expect("load after second replay"), &want)?;
    }
}

#[test]
fn everything_committed_before_drop_is_there_after_reopen() {
    let dir = TempDir::new("reopen");
    let (blocks, txs) = pool();
    let mut ops = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        ops.push(to_store_op(&Op::PutBlock(i, i as u128 * 1000), &blocks, &txs));
        ops.push(StoreOp::SetTip(b.compute_hash()));
    }
    for i in 0..TXS {
        ops.push(to_store_op(&Op::PutTx(i), &blocks, &txs));
    }
    ops.push(StoreOp::PutMeta("miner".into(), b"alice".to_vec()));
    let mut store = RedbStore::open(dir.path()).expect("open");
    let mut memory = MemoryStore::default();
    for batch in ops.chunks(7) {
        store.commit(batch).expect("commit");
        memory.commit(batch).expect("memory commit");
    }
    store.commit(&[]).expect("empty commit");
    drop(store);
    let got = RedbStore::open(dir.path()).expect("reopen").load().expect("load");
    assert_eq!(got.blocks.len(), BLOCKS);
    assert_eq!(got.tip, Some(blocks[BLOCKS - 1].compute_hash()));
    assert_eq!(got.mempool.len(), TXS);
    assert_same(&got, &memory.load().expect("memory load")).expect("same as memory");
}

#[test]
fn second_open_of_the_same_directory_is_refused() {
    let dir = TempDir::new("locked");
    let store = RedbStore::open(dir.path()).expect("open");
    let e = RedbStore::open(dir.path()).expect_err("second open must fail");
    assert!(!e.is_corruption(), "{e}");
    assert!(e.to_string().contains("chain.redb"), "{e}");
    drop(store);
    RedbStore::open(dir.path()).expect("open after the first is closed");
}

#[test]
fn wipe_moves_the_file_aside_and_keeps_it() {
    let dir = TempDir::new("wipe");
    chainsim_store::wipe(dir.path()).expect("wipe without a file");
    for round in 0..2 {
        let mut store = RedbStore::open(dir.path()).expect("open");
        store
            .commit(&[StoreOp::PutMeta("round".into(), vec![round])])
            .expect("commit");
        store.close().expect("close");
        chainsim_store::wipe(dir.path()).expect("wipe");
        let fresh = RedbStore::open(dir.path()).expect("open after wipe");
        assert!(fresh.load().expect("load").meta.is_empty());
        drop(fresh);
        std::fs::remove_file(dir.path().join("chain.redb")).expect("remove fresh file");
        std::fs::remove_file(dir.path().join("chain.wal")).expect("remove fresh log");
    }
    let moved: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(moved.len(), 2, "{moved:?}");
    assert!(moved.iter().all(|n| n.starts_with("chain.redb.bad-")), "{moved:?}");
}

#[test]
fn wipe_moves_a_non_empty_log_aside_with_the_database() {
    let dir = TempDir::new("wipe-wal");
    let mut store = RedbStore::open(dir.path()).expect("open");
    store.commit(&[StoreOp::PutMeta("k".into(), vec![1])]).expect("commit");
    drop(store);
    // A log left by a crash: its records belong to the database being moved aside.
    let log = vec![1u8; 40];
    std::fs::write(dir.path().join("chain.wal"), &log).expect("write log");
    chainsim_store::wipe(dir.path()).expect("wipe");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    let suffix = names[0].strip_prefix("chain.redb.").expect("database moved");
    assert_eq!(names[1], format!("chain.wal.{suffix}"));
    assert_eq!(std::fs::read(dir.path().join(&names[1])).expect("read"), log);
    let fresh = RedbStore::open(dir.path()).expect("open after wipe");
    assert!(fresh.load().expect("load").meta.is_empty());
}
