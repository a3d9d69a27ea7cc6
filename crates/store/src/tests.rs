//! Tests that need the private table layout: values the public API cannot produce.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use chainsim_core::store::{BlockSource, ChainStore, StoreOp};
use chainsim_primitives::{Block, BlockHash, CompactTarget, Header, MerkleRoot, Transaction, Work};

use super::*;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("chainsim-store-unit-{name}-{}-{nanos}", std::process::id()));
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
    let txn = store.db().begin_write().expect("begin");
    f(&txn);
    txn.commit().expect("commit");
}

/// The blocks of a streaming load, with their hashes checked.
fn streamed(store: &RedbStore) -> Result<Vec<Arc<Block>>, StoreError> {
    let mut out = Vec::new();
    store.for_each_block(&mut |hash, block| {
        assert_eq!(hash, block.compute_hash());
        out.push(block);
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

/// A reader's error for `b` is the store's corruption error, as load() reports it.
fn expect_read_corrupted(store: &RedbStore, b: &Block, needle: &str) {
    let e = store
        .reader()
        .read_block(&b.compute_hash())
        .expect_err("expected corruption");
    let e = e.downcast::<StoreError>().expect("a StoreError");
    expect_corrupted(Err::<(), _>(*e), needle);
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
    store.checkpoint().expect("checkpoint");
    // Swap b's bytes into a's slot: a value that decodes but is not the block of its key.
    raw_write(&store, |txn| {
        let mut t = txn.open_table(BLOCKS).expect("table");
        t.insert(a.compute_hash().0, encode_block_value(0, &b, Work(1)).as_slice())
            .expect("insert");
    });
    let line = expect_corrupted(store.load(), "has hash");
    assert!(line.starts_with("store "), "{line}");
    expect_corrupted(streamed(&store), "has hash");
    expect_read_corrupted(&store, &a, "has hash");
}

#[test]
fn undecodable_block_is_corruption() {
    let dir = TempDir::new("undecodable");
    let mut store = RedbStore::open(&dir.0).expect("open");
    let a = block(1);
    store.commit(&[put(&a)]).expect("commit");
    store.checkpoint().expect("checkpoint");
    raw_write(&store, |txn| {
        let mut t = txn.open_table(BLOCKS).expect("table");
        let mut value = encode_block_value(0, &a, Work(1));
        value.truncate(value.len() - 3);
        t.insert(a.compute_hash().0, value.as_slice()).expect("insert");
    });
    expect_corrupted(store.load(), "does not decode: unexpected end of data");
    expect_corrupted(streamed(&store), "does not decode: unexpected end of data");
    expect_read_corrupted(&store, &a, "does not decode: unexpected end of data");
}

#[test]
fn index_pointing_nowhere_is_corruption() {
    let dir = TempDir::new("dangling");
    let mut store = RedbStore::open(&dir.0).expect("open");
    store.commit(&[put(&block(1))]).expect("commit");
    store.checkpoint().expect("checkpoint");
    raw_write(&store, |txn| {
        let mut t = txn.open_table(BLOCK_ORDER).expect("table");
        t.insert(9, [0xAB; 32]).expect("insert");
    });
    expect_corrupted(store.load(), "points to missing block abababababab…");
    expect_corrupted(streamed(&store), "points to missing block abababababab…");
}

#[test]
fn unindexed_block_and_bad_tip_are_corruption() {
    let dir = TempDir::new("unindexed");
    let mut store = RedbStore::open(&dir.0).expect("open");
    store.commit(&[put(&block(1)), put(&block(2))]).expect("commit");
    store.checkpoint().expect("checkpoint");
    raw_write(&store, |txn| {
        let mut t = txn.open_table(BLOCK_ORDER).expect("table");
        t.remove(1).expect("remove");
    });
    expect_corrupted(store.load(), "2 blocks are stored but 1 are in the block index");
    // Reported before any block is visited.
    let mut visited = 0;
    expect_corrupted(
        store.for_each_block(&mut |_, _| {
            visited += 1;
            ControlFlow::Continue(())
        }),
        "2 blocks are stored but 1 are in the block index",
    );
    assert_eq!(visited, 0);
    // The block whose index entry is gone is no longer where its value says.
    expect_read_corrupted(&store, &block(2), "is not at its position 1");

    let dir = TempDir::new("bad-tip");
    let store = RedbStore::open(&dir.0).expect("open");
    raw_write(&store, |txn| {
        let mut t = txn.open_table(INTERNAL).expect("table");
        t.insert(KEY_TIP, [1u8; 5].as_slice()).expect("insert");
    });
    expect_corrupted(store.load(), "the tip is 5 bytes long");
    expect_corrupted(store.load_meta(), "the tip is 5 bytes long");
}

#[test]
fn commit_failing_part_way_leaves_nothing() {
    let dir = TempDir::new("partial");
    let mut store = RedbStore::open(&dir.0).expect("open");
    let (a, b) = (block(1), block(2));
    store.commit(&[put(&a)]).expect("commit");
    store.checkpoint().expect("checkpoint");
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
            Box::new(Transaction::new("x", "y", 1, 2)),
        ),
        StoreOp::DeleteBlock(a.compute_hash()),
    ];
    // The commit only logs the batch; applying it to the database fails at the checkpoint.
    store.commit(&ops).expect("logged");
    expect_corrupted(store.checkpoint(), "is not at its position 0");

    // Nothing of the failed batch is in the database, before or after the store is dropped.
    let check = |db: &Database| {
        let txn = db.begin_read().expect("read");
        assert!(txn.open_table(META).expect("meta").get("k").expect("get").is_none());
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
        assert!(txn.open_table(MEMPOOL).expect("mempool").is_empty().expect("len"));
    };
    check(&store.db());
    drop(store);
    check(&Database::open(dir.0.join(FILE_NAME)).expect("open the database alone"));
    // The batch is still in the log, and replaying it meets the same damage.
    expect_corrupted(RedbStore::open(&dir.0), "is not at its position 0");
}

#[test]
fn unknown_format_is_refused() {
    let dir = TempDir::new("format");
    let store = RedbStore::open(&dir.0).expect("open");
    raw_write(&store, |txn| {
        let mut t = txn.open_table(INTERNAL).expect("table");
        t.insert(KEY_FORMAT, 99u32.to_le_bytes().as_slice()).expect("insert");
    });
    drop(store);
    expect_corrupted(
        RedbStore::open(&dir.0),
        "unknown format version 99, this binary reads 1",
    );
}

// The write-ahead log.

/// Ends the store as a crash right after its last commit would: the database without the
/// pending ops, the log with them. (Dropping it normally would checkpoint.)
fn crash(mut store: RedbStore) {
    store.clear_pending();
    store.wal_len = 0;
    drop(store);
}

fn wal_of(dir: &TempDir) -> PathBuf {
    dir.0.join(WAL_FILE_NAME)
}

fn wal_bytes(dir: &TempDir) -> Vec<u8> {
    std::fs::read(wal_of(dir)).expect("read log")
}

/// Three batches touching every kind of op, the last deleting part of the first.
fn batches() -> Vec<Vec<StoreOp>> {
    let (a, b) = (block(1), block(2));
    let tx = |n: u64| Transaction::new("x", "y", n, 2);
    vec![
        vec![
            put(&a),
            StoreOp::SetTip(a.compute_hash()),
            StoreOp::PutTx(tx(1).compute_txid(), Box::new(tx(1))),
            StoreOp::PutMeta("k".into(), vec![1]),
        ],
        vec![
            put(&b),
            StoreOp::SetTip(b.compute_hash()),
            StoreOp::PutTx(tx(2).compute_txid(), Box::new(tx(2))),
        ],
        vec![
            StoreOp::DeleteTx(tx(1).compute_txid()),
            StoreOp::DeleteBlock(a.compute_hash()),
            StoreOp::PutMeta("k".into(), vec![3]),
        ],
    ]
}

/// The reference state after the first `n` of `batches`.
fn expected(batches: &[Vec<StoreOp>], n: usize) -> StoredState {
    let mut memory = chainsim_core::store::MemoryStore::default();
    for b in &batches[..n] {
        memory.commit(b).expect("memory");
    }
    memory.load().expect("memory load")
}

fn assert_state(got: &StoredState, want: &StoredState) {
    assert_eq!(got.blocks, want.blocks);
    assert_eq!(got.tip, want.tip);
    assert_eq!(got.mempool, want.mempool);
    assert_eq!(got.meta, want.meta);
}

/// Commits `batches` without checkpointing, crashes, and returns the log.
fn logged(dir: &TempDir, batches: &[Vec<StoreOp>]) -> Vec<u8> {
    let mut store = RedbStore::open(&dir.0).expect("open");
    for b in batches {
        store.commit(b).expect("commit");
    }
    assert_eq!(store.pending.len(), batches.iter().map(Vec::len).sum());
    assert_state(&store.load().expect("load"), &expected(batches, batches.len()));
    crash(store);
    wal_bytes(dir)
}

/// Where each record of `log` starts, and the end.
fn record_starts(log: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    let mut pos = 0;
    while pos < log.len() {
        let len = u32::from_le_bytes(log[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        pos += wal::HEADER_LEN + len;
        starts.push(pos);
    }
    starts
}

#[test]
fn acknowledged_batches_survive_in_the_log() {
    let dir = TempDir::new("wal-replay");
    let batches = batches();
    let log = logged(&dir, &batches);
    assert_eq!(record_starts(&log).len(), batches.len() + 1, "one record per batch");
    let store = RedbStore::open(&dir.0).expect("reopen");
    assert_state(&store.load().expect("load"), &expected(&batches, 3));
    // Replayed into the database, and the log emptied.
    assert!(store.pending.is_empty());
    assert_eq!(store.last_seq, 3);
    assert!(wal_bytes(&dir).is_empty());
    crash(store);
    let store = RedbStore::open(&dir.0).expect("reopen again");
    assert_state(&store.load().expect("load"), &expected(&batches, 3));
}

#[test]
fn torn_tail_is_discarded() {
    let batches = batches();
    // A torn record: half of it, or only part of its header.
    for keep in [|len: usize| len / 2, |_| 5, |len: usize| len - 1] {
        let dir = TempDir::new("wal-torn");
        let log = logged(&dir, &batches[..2]);
        let record = wal::encode_record(3, &batches[2]).expect("encode");
        let mut torn = log.clone();
        torn.extend_from_slice(&record[..keep(record.len())]);
        std::fs::write(wal_of(&dir), &torn).expect("write log");

        let mut store = RedbStore::open(&dir.0).expect("open with a torn tail");
        assert_state(&store.load().expect("load"), &expected(&batches, 2));
        assert!(wal_bytes(&dir).is_empty(), "the torn tail is cut off");
        // Committing again reuses the number of the lost record.
        store.commit(&batches[2]).expect("commit after recovery");
        crash(store);
        let store = RedbStore::open(&dir.0).expect("reopen");
        assert_state(&store.load().expect("load"), &expected(&batches, 3));
    }
}

/// A crash tears only the last record; damage followed by an intact record is corruption,
/// and the acknowledged batches after it must not be dropped quietly.
#[test]
fn damaged_record_followed_by_an_intact_one_is_corruption() {
    let dir = TempDir::new("wal-checksum");
    let batches = batches();
    let mut log = logged(&dir, &batches);
    let starts = record_starts(&log);
    // A byte inside the second record's payload; the third record is intact.
    log[starts[1] + wal::HEADER_LEN + 10] ^= 0x40;
    std::fs::write(wal_of(&dir), &log).expect("write log");
    let e = RedbStore::open(&dir.0).expect_err("must not open");
    assert!(e.is_corruption(), "{e}");
    assert!(e.to_string().contains(WAL_FILE_NAME), "{e}");
    assert_eq!(wal_bytes(&dir), log, "the log is left as it was, for inspection");
}

/// Damage in the last record is what a crash leaves: the records before it are kept.
#[test]
fn damaged_last_record_ends_the_log() {
    let dir = TempDir::new("wal-checksum-last");
    let batches = batches();
    let mut log = logged(&dir, &batches);
    let starts = record_starts(&log);
    let last = starts.len() - 2; // starts ends with the end of the log
    log[starts[last] + wal::HEADER_LEN + 10] ^= 0x40;
    std::fs::write(wal_of(&dir), &log).expect("write log");
    let store = RedbStore::open(&dir.0).expect("open");
    assert_state(&store.load().expect("load"), &expected(&batches, last));
    assert!(wal_bytes(&dir).is_empty());
}

#[test]
fn undecodable_record_with_valid_checksum_is_corruption() {
    let dir = TempDir::new("wal-undecodable");
    let batches = batches();
    let mut log = logged(&dir, &batches[..1]);
    let mut payload = 2u64.to_le_bytes().to_vec();
    payload.push(99);
    log.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    log.extend_from_slice(&wal::checksum(&payload));
    log.extend_from_slice(&payload);
    std::fs::write(wal_of(&dir), &log).expect("write log");

    let e = RedbStore::open(&dir.0).expect_err("must not open");
    assert!(e.is_corruption(), "{e}");
    let line = e.to_string();
    assert!(line.contains(WAL_FILE_NAME), "{line}");
    assert!(line.contains("unknown op tag 99"), "{line}");
    assert!(!line.contains('\n'), "{line}");
    // Nothing was applied or thrown away: the log is kept for inspection.
    assert_eq!(wal_bytes(&dir), log);
}

#[test]
fn log_not_following_the_database_is_corruption() {
    let dir = TempDir::new("wal-gap");
    let batches = batches();
    logged(&dir, &batches[..1]);
    // Record 5 after record 1: records 2 to 4 are missing.
    let mut log = wal_bytes(&dir);
    log.extend(wal::encode_record(5, &batches[1]).expect("encode"));
    std::fs::write(wal_of(&dir), &log).expect("write log");
    let e = RedbStore::open(&dir.0).expect_err("must not open");
    assert!(e.is_corruption(), "{e}");
    assert!(e.to_string().contains("record 5 follows record 1"), "{e}");
}

#[test]
fn replaying_a_checkpointed_log_again_changes_nothing() {
    let dir = TempDir::new("wal-twice");
    // A block deleted and stored again, then another stored: a naive second replay would move
    // the first behind the second.
    let (w, z) = (block(1), block(2));
    let batches = vec![
        vec![put(&w), StoreOp::SetTip(w.compute_hash())],
        vec![
            StoreOp::DeleteBlock(w.compute_hash()),
            put(&w),
            put(&z),
            StoreOp::SetTip(z.compute_hash()),
            StoreOp::PutMeta("k".into(), vec![2]),
        ],
    ];
    let want = expected(&batches, 2);
    let mut store = RedbStore::open(&dir.0).expect("open");
    store.commit(&batches[0]).expect("commit");
    store.checkpoint().expect("checkpoint");
    store.commit(&batches[1]).expect("commit");
    let log = wal_bytes(&dir);
    assert!(!log.is_empty());
    // Checkpoint and truncate, then put the log back: a crash between the two.
    store.close().expect("close");
    assert!(wal_bytes(&dir).is_empty());
    for round in 0..2 {
        std::fs::write(wal_of(&dir), &log).expect("restore log");
        let store = RedbStore::open(&dir.0).expect("open");
        assert_state(&store.load().expect("load"), &want);
        assert_eq!(store.last_seq, 2, "round {round}");
        assert!(wal_bytes(&dir).is_empty());
        drop(store);
    }
    let store = RedbStore::open(&dir.0).expect("open");
    assert_state(&store.load().expect("load"), &want);
}

#[test]
fn checkpoint_policy_triggers() {
    let dir = TempDir::new("wal-policy");
    let batches = batches();
    let policy = CheckpointPolicy {
        max_ops: 5,
        ..CheckpointPolicy::default()
    };
    let mut store = RedbStore::open_with(&dir.0, policy).expect("open");
    store.commit(&batches[0]).expect("commit");
    assert_eq!(store.pending.len(), 4);
    store.commit(&batches[1]).expect("commit");
    assert!(store.pending.is_empty(), "7 ops exceed the limit of 5");
    assert!(wal_bytes(&dir).is_empty());
    assert_state(&store.load_db().expect("load").0, &expected(&batches, 2));

    let policy = CheckpointPolicy {
        max_age: Duration::ZERO,
        ..CheckpointPolicy::default()
    };
    let mut store = RedbStore::open_with(&TempDir::new("wal-age").0, policy).expect("open");
    std::thread::sleep(Duration::from_millis(2));
    store.commit(&batches[0]).expect("commit");
    assert!(store.pending.is_empty(), "checkpointed on age");
}

// The read path: a reader sees every committed block, wherever it is.

fn read_one(reader: &dyn BlockSource, b: &Block) -> Option<Arc<Block>> {
    reader.read_block(&b.compute_hash()).expect("read")
}

#[test]
fn reader_sees_commits_before_and_after_checkpoint_and_reopen() {
    let dir = TempDir::new("read-commit");
    let mut store = RedbStore::open(&dir.0).expect("open");
    let reader = store.reader();
    let (a, b, c) = (block(1), block(2), block(3));
    assert_eq!(read_one(&*reader, &a), None);
    store.commit(&[put(&a), put(&b)]).expect("commit");
    // Only in the log so far.
    assert!(!store.pending.is_empty());
    assert_eq!(read_one(&*reader, &a).as_deref(), Some(&a));
    store.checkpoint().expect("checkpoint");
    assert!(store.pending.is_empty() && read(&store.shared.overlay).is_empty());
    assert_eq!(read_one(&*reader, &a).as_deref(), Some(&a));
    store.commit(&[put(&c)]).expect("commit");
    assert_eq!(
        reader
            .read_blocks(&[a.compute_hash(), BlockHash([9; 32]), c.compute_hash()])
            .expect("read")
            .iter()
            .map(|b| b.as_deref().cloned())
            .collect::<Vec<_>>(),
        vec![Some(a.clone()), None, Some(c.clone())]
    );
    drop(store);
    let store = RedbStore::open(&dir.0).expect("reopen");
    let reader = store.reader();
    for x in [&a, &b, &c] {
        assert_eq!(read_one(&*reader, x).as_deref(), Some(x));
    }
}

#[test]
fn reader_sees_a_replayed_log() {
    let dir = TempDir::new("read-replay");
    let mut store = RedbStore::open(&dir.0).expect("open");
    let a = block(1);
    store.commit(&[put(&a)]).expect("commit");
    crash(store);
    let store = RedbStore::open(&dir.0).expect("reopen");
    assert_eq!(read_one(&*store.reader(), &a).as_deref(), Some(&a));
}

#[test]
fn deleted_blocks_are_not_readable() {
    let dir = TempDir::new("read-deleted");
    let mut store = RedbStore::open(&dir.0).expect("open");
    let reader = store.reader();
    let (a, b) = (block(1), block(2));
    store.commit(&[put(&a), put(&b)]).expect("commit");
    store.checkpoint().expect("checkpoint");
    // Deleted in the log, while the database still holds it.
    store.commit(&[StoreOp::DeleteBlock(a.compute_hash())]).expect("commit");
    assert_eq!(read_one(&*reader, &a), None);
    store.checkpoint().expect("checkpoint");
    assert_eq!(read_one(&*reader, &a), None);
    // Stored, deleted and stored again within the log; then deleted within it.
    store
        .commit(&[put(&a), StoreOp::DeleteBlock(a.compute_hash()), put(&a)])
        .expect("commit");
    assert_eq!(read_one(&*reader, &a).as_deref(), Some(&a));
    store.commit(&[StoreOp::DeleteBlock(a.compute_hash())]).expect("commit");
    assert_eq!(read_one(&*reader, &a), None);
    assert_eq!(read_one(&*reader, &b).as_deref(), Some(&b));
    drop(store);
    let store = RedbStore::open(&dir.0).expect("reopen");
    assert_eq!(read_one(&*store.reader(), &a), None);
}

#[test]
fn reader_on_another_thread_during_commits() {
    let dir = TempDir::new("read-thread");
    // Small limits, so that checkpoints happen all along the run.
    let policy = CheckpointPolicy {
        max_ops: 7,
        max_log_bytes: u64::MAX,
        max_age: Duration::from_secs(3600),
    };
    let mut store = RedbStore::open_with(&dir.0, policy).expect("open");
    let reader = store.reader();
    let blocks: Vec<Block> = (1..=200).map(block).collect();
    let hashes: Vec<BlockHash> = blocks.iter().map(Block::compute_hash).collect();
    let committed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checker = {
        let (committed, done, hashes) = (committed.clone(), done.clone(), hashes.clone());
        std::thread::spawn(move || {
            let mut rounds = 0u64;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::Acquire);
                // Everything committed before this moment must be readable now.
                let n = committed.load(std::sync::atomic::Ordering::Acquire);
                let got = reader.read_blocks(&hashes[..n]).expect("read");
                for (hash, b) in hashes.iter().zip(&got) {
                    let b = b
                        .as_ref()
                        .unwrap_or_else(|| panic!("committed block {hash} not readable"));
                    assert_eq!(b.compute_hash(), *hash);
                }
                if n > 0 {
                    let last = reader.read_block(&hashes[n - 1]).expect("read");
                    assert!(last.is_some());
                }
                rounds += 1;
                if finished {
                    return rounds;
                }
            }
        })
    };
    for (i, b) in blocks.iter().enumerate() {
        store.commit(&[put(b), StoreOp::SetTip(hashes[i])]).expect("commit");
        committed.store(i + 1, std::sync::atomic::Ordering::Release);
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let rounds = checker.join().expect("reader thread");
    assert!(rounds > 1, "{rounds}");
    assert_eq!(store.load().expect("load").blocks.len(), blocks.len());
}

#[test]
fn reader_outliving_its_store_reports_closed_and_holds_no_lock() {
    let dir = TempDir::new("read-closed");
    let mut store = RedbStore::open(&dir.0).expect("open");
    let a = block(1);
    store.commit(&[put(&a)]).expect("commit");
    let reader = store.reader();
    store.close().expect("close");
    let e = reader.read_block(&a.compute_hash()).expect_err("closed");
    let e = e.downcast::<StoreError>().expect("a StoreError");
    assert!(matches!(*e, StoreError::Closed { .. }), "{e}");
    assert!(!e.is_corruption());
    // The file is free for a new store, whose reader sees the block.
    let store = RedbStore::open(&dir.0).expect("reopen while the old reader lives");
    let second = store.reader();
    drop(store);
    assert!(second.read_block(&a.compute_hash()).is_err());
    drop(reader);
}

#[test]
fn streaming_load_with_pending_ops_matches_load() {
    let dir = TempDir::new("stream");
    let mut store = RedbStore::open(&dir.0).expect("open");
    let blocks: Vec<Block> = (1..=6).map(block).collect();
    store
        .commit(&blocks[..4].iter().map(put).collect::<Vec<_>>())
        .expect("commit");
    store.checkpoint().expect("checkpoint");
    // On top of the database: one deleted, one moved to the end, one stored again in place,
    // two new ones of which one is deleted again.
    let h = |i: usize| blocks[i].compute_hash();
    store
        .commit(&[
            StoreOp::DeleteBlock(h(0)),
            StoreOp::DeleteBlock(h(1)),
            put(&blocks[4]),
            put(&blocks[1]),
            put(&blocks[2]),
            put(&blocks[5]),
            StoreOp::DeleteBlock(h(5)),
            StoreOp::SetTip(h(4)),
            StoreOp::PutMeta("k".into(), vec![2]),
        ])
        .expect("commit");
    let want = store.load().expect("load");
    let got = streamed(&store).expect("stream");
    assert_eq!(got, want.blocks);
    assert_eq!(
        got.iter().map(|b| b.compute_hash()).collect::<Vec<_>>(),
        vec![h(2), h(3), h(4), h(1)]
    );
    let meta = store.load_meta().expect("meta");
    assert_eq!(
        (meta.tip, &meta.mempool, &meta.meta),
        (want.tip, &want.mempool, &want.meta)
    );
    // Stopping early, in the database's part and in the log's part.
    for stop in 1..=4 {
        let mut seen = 0;
        store
            .for_each_block(&mut |_, _| {
                seen += 1;
                if seen == stop {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .expect("stream");
        assert_eq!(seen, stop);
    }
}
