//! chainsim's persistent [`ChainStore`]: a [redb] database `<dir>/chain.redb` behind a
//! write-ahead log `<dir>/chain.wal`.
//!
//! # Why a log in front of the database
//!
//! The node commits once per batch of requests and answers them only after the commit (group
//! commit), so the latency of one durable commit bounds its throughput: with 64 clients a batch
//! holds at most 64 transactions. A redb write transaction with immediate durability rewrites
//! the B-tree pages it touches (copy on write) and syncs the file, 1–4 ms here, while appending to
//! a file and `fdatasync`ing it costs ~0.2 ms. So:
//!
//! - [`ChainStore::commit`] encodes the whole batch as one checksummed record, appends it to the
//!   log and `fdatasync`s once; it returns Ok only after that sync, so an acknowledged batch is on
//!   disk. The ops are also kept in memory as not yet checkpointed. redb is not touched.
//! - A *checkpoint* applies all those ops to redb in one durable transaction, recording in the
//!   same transaction the sequence number of the last record applied, and then empties the log.
//!   It runs inside `commit` once the pending ops exceed [`CheckpointPolicy`]'s limits (50,000
//!   ops, 16 MiB of log, or 2 s since the last one), on [`RedbStore::close`], and best effort on
//!   drop. A commit that triggers a checkpoint takes that much longer; the others take one
//!   `fdatasync`.
//! - [`RedbStore::open`] replays the log: it reads the records in order, checking each length
//!   and checksum, stops at the first cut-off or damaged record (a batch being written during a
//!   crash, which was never acknowledged, nor was anything after it), applies the records redb
//!   does not have yet in one checkpoint, and empties the log.
//! - [`ChainStore::load`] returns redb's state with the pending ops applied on top, and so do
//!   the streaming [`ChainStore::for_each_block`] (one block at a time) and
//!   [`ChainStore::load_meta`].
//!
//! # Reading blocks while committing
//!
//! [`ChainStore::reader`] hands out a [`BlockSource`] that reads blocks by hash from any thread
//! while the store's owner commits. The blocks of the pending ops, which redb does not hold
//! yet, are kept in an overlay shared with the readers (the effect of the last `PutBlock` or
//! `DeleteBlock` of each hash); a reader looks there first and then in redb, in a read
//! transaction of its own, which redb runs concurrently with the checkpoint's write
//! transaction. A checkpoint commits to redb before it empties the overlay, so a block is
//! always in one of the two. After [`RedbStore::close`] (or drop) a reader's reads fail with
//! [`StoreError::Closed`]; a reader does not keep the file open.
//!
//! The recorded sequence number makes replay exact rather than merely repeatable: after a crash
//! between a checkpoint's transaction and the truncation of the log, the records already applied
//! are skipped. Re-applying them would not be harmless, because a block deleted and stored again
//! before another block is stored would move behind that block, possibly behind its own child.
//!
//! [`ChainStore::load`] trusts nothing it reads: every value is decoded and every block's hash is
//! recomputed, and anything off is reported as [`StoreError::Corrupted`] naming the file, so the
//! binary can suggest `--resync` instead of panicking. A log record that passes its checksum but
//! does not decode is likewise a corruption naming the log.
//!
//! Layout of the database (all integers little-endian):
//! - `blocks`: block hash → `seq u64 | height u64 | chain work u128 | canonical block bytes`
//! - `block_order`: `seq` → block hash, so blocks come back in insertion order and every parent
//!   precedes its children, as with [`MemoryStore`]
//! - `mempool`: txid → canonical transaction bytes
//! - `meta`: name → bytes, exactly the [`StoreOp::PutMeta`] values
//! - `internal`: the tip, the format version and the sequence number of the last log record
//!   checkpointed, apart from `meta` so that no user key can collide with them
//!
//! The log's record format is described in the `wal` module.

mod error;
mod wal;

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::{ControlFlow, Deref};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chainsim_core::store::{BlockSource, ChainStore, MemoryStore, ReadError, StoreOp, StoredMeta, StoredState};
use chainsim_primitives::block::DecodeLimits;
use chainsim_primitives::{Block, BlockHash, Transaction, Txid, Work};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

pub use error::StoreError;

/// The database file's name inside the store directory.
pub const FILE_NAME: &str = "chain.redb";
/// The write-ahead log's name inside the store directory.
pub const WAL_FILE_NAME: &str = "chain.wal";

const BLOCKS: TableDefinition<'static, [u8; 32], &[u8]> = TableDefinition::new("blocks");
const BLOCK_ORDER: TableDefinition<'static, u64, [u8; 32]> = TableDefinition::new("block_order");
const MEMPOOL: TableDefinition<'static, [u8; 32], &[u8]> = TableDefinition::new("mempool");
const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("meta");
const INTERNAL: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("internal");

const KEY_TIP: &str = "tip";
const KEY_FORMAT: &str = "format";
/// The sequence number (u64) of the last log record applied to the database.
const KEY_WAL_APPLIED: &str = "wal_applied";
/// Bumped whenever the layout above changes, so an old binary refuses a newer file instead of
/// misreading it.
const FORMAT_VERSION: u32 = 1;

/// Bytes before the block encoding in a `blocks` value: seq, height, chain work.
const BLOCK_VALUE_PREFIX: usize = 8 + 8 + 16;

/// redb caches up to 1 GiB by default. Blocks are read back rarely (at start, and on demand
/// by readers, each read decoding the block anyway), so a cache would mostly duplicate what
/// the node holds: keep it small, which lets 100 idle nodes share this machine.
const CACHE_BYTES: usize = 4 * 1024 * 1024;

/// When [`RedbStore::commit`] checkpoints the log into the database: as soon as any limit is
/// exceeded.
///
/// Larger limits mean fewer (but longer) checkpoints and a longer replay at start; the
/// defaults keep a replay well under a second and the memory held by pending ops bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Ops in the log not yet in the database.
    pub max_ops: usize,
    /// Bytes of log.
    pub max_log_bytes: u64,
    /// Time since the last checkpoint (checked only when committing).
    pub max_age: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        Self {
            // A checkpoint runs on the commit path: 10,000 ops keep its pause near 30 ms
            // (50,000 measured ~140 ms at p99 under HTTP load) at the same throughput.
            max_ops: 10_000,
            max_log_bytes: 16 * 1024 * 1024,
            max_age: Duration::from_secs(2),
        }
    }
}

/// A [`ChainStore`] in a redb database file behind a write-ahead log (see the crate docs).
///
/// Only one `RedbStore` (in any process) may have a given directory open at a time; a second
/// [`RedbStore::open`] fails with [`StoreError::Locked`]. Dropping the store checkpoints the
/// log, ignoring errors; [`RedbStore::close`] reports them.
pub struct RedbStore {
    /// The database and the overlay of pending blocks, shared with readers.
    shared: Arc<Shared>,
    path: PathBuf,
    wal: File,
    wal_path: PathBuf,
    /// Bytes in the log file; nonzero with no pending ops only after a failed truncation.
    wal_len: u64,
    /// Ops of the log not yet in the database, in commit order. Their blocks are also in
    /// `shared.overlay`: change both through [`RedbStore::add_pending`] and
    /// [`RedbStore::clear_pending`].
    pending: Vec<StoreOp>,
    /// The sequence number of the last record in the log, or else of the last applied.
    last_seq: u64,
    last_checkpoint: Instant,
    policy: CheckpointPolicy,
}

/// What a store shares with its readers.
struct Shared {
    path: PathBuf,
    /// Always Some while the store is open; [`RedbStore::close`] and drop take it out (and
    /// close it), so that readers left behind do not keep the file open.
    db: RwLock<Option<Database>>,
    /// For each hash with a `PutBlock` or `DeleteBlock` among the pending ops, the effect of
    /// the last one: the block, or None for deleted.
    overlay: RwLock<HashMap<BlockHash, Option<Arc<Block>>>>,
}

/// The maps behind the locks stay consistent whatever panics (each change is one insert,
/// remove or clear, or a replacement of the whole value), so a poisoned lock is used as is.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// The open database, borrowed for one operation of the store itself.
struct DbGuard<'a>(RwLockReadGuard<'a, Option<Database>>);

impl Deref for DbGuard<'_> {
    type Target = Database;

    fn deref(&self) -> &Database {
        match &*self.0 {
            Some(db) => db,
            None => unreachable!("only close() and drop take the database, and nothing of the store runs after them"),
        }
    }
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .field("pending_ops", &self.pending.len())
            .field("wal_len", &self.wal_len)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens the store in `dir`, creating the directory and an empty database if needed, and
    /// replays the write-ahead log into the database.
    ///
    /// The whole file is checked against redb's page checksums while opening: a file damaged
    /// outside redb then fails here with [`StoreError::Corrupted`], where an unchecked open
    /// could panic on a later read.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, CheckpointPolicy::default())
    }

    /// [`RedbStore::open`] with other checkpoint limits.
    pub fn open_with(dir: &Path, policy: CheckpointPolicy) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|error| StoreError::Io {
            path: dir.to_owned(),
            action: "create the directory",
            error,
        })?;
        let path = dir.join(FILE_NAME);
        // The database first: its lock keeps a second process away from the log too.
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| StoreError::open(&path, e))?;
        let wal_path = dir.join(WAL_FILE_NAME);
        let io = |action: &'static str| {
            let wal_path = wal_path.clone();
            move |error| StoreError::Io {
                path: wal_path,
                action,
                error,
            }
        };
        let existed = wal_path.try_exists().map_err(io("check whether the file exists"))?;
        // Append mode: every write lands at the end, also after the file was truncated.
        let mut wal = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&wal_path)
            .map_err(io("open the write-ahead log"))?;
        if !existed {
            // A new file's directory entry must be durable before a commit relies on it.
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|error| StoreError::Io {
                    path: dir.to_owned(),
                    action: "sync the directory",
                    error,
                })?;
        }
        let mut log = Vec::new();
        wal.read_to_end(&mut log).map_err(io("read the write-ahead log"))?;

        let mut store = Self {
            shared: Arc::new(Shared {
                path: path.clone(),
                db: RwLock::new(Some(db)),
                overlay: RwLock::new(HashMap::new()),
            }),
            path,
            wal,
            wal_path,
            // Set by replay(): until then, dropping the store on an error must not empty a log
            // that has not been applied.
            wal_len: 0,
            pending: Vec::new(),
            last_seq: 0,
            last_checkpoint: Instant::now(),
            policy,
        };
        store.last_seq = store.init()?;
        if let Err(e) = store.replay(&log) {
            // Keep the log as it is for inspection (or a later open, if the error was
            // transient), instead of letting drop retry the checkpoint.
            store.clear_pending();
            store.wal_len = 0;
            return Err(e);
        }
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The write-ahead log file.
    pub fn wal_path(&self) -> &Path {
        &self.wal_path
    }

    /// Checkpoints the log and closes the database, reporting any error that dropping the store
    /// would ignore.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.checkpoint()?;
        let path = self.path.clone();
        let db = write(&self.shared.db).take();
        match db {
            Some(db) => db.close().map_err(|e| StoreError::database(&path, e)),
            None => Ok(()),
        }
    }

    /// Applies every op of the log to the database in one durable transaction, then empties the
    /// log. Done by [`ChainStore::commit`] when the [`CheckpointPolicy`] says so; callable
    /// directly, e.g. before a backup of the database file alone.
    pub fn checkpoint(&mut self) -> Result<(), StoreError> {
        if !self.pending.is_empty() {
            let path = &self.path;
            let mut txn = self.db().begin_write().db(path)?;
            // The node has answered requests on the strength of these ops: the log may be
            // emptied only once the database holds them durably.
            txn.set_durability(Durability::Immediate).db(path)?;
            // On error the transaction is dropped, which aborts it: none of the ops take
            // effect, and they stay pending and in the log.
            self.apply(&txn, &self.pending)?;
            {
                let mut internal = txn.open_table(INTERNAL).db(path)?;
                internal
                    .insert(KEY_WAL_APPLIED, self.last_seq.to_le_bytes().as_slice())
                    .db(path)?;
            }
            // Readers find a block in the overlay or, from this commit on, in the database.
            txn.commit().db(path)?;
            self.clear_pending();
        }
        self.last_checkpoint = Instant::now();
        if self.wal_len > 0 {
            // Should this fail, the records stay in the log, and the sequence number just
            // recorded makes a replay skip them.
            let wal_path = &self.wal_path;
            self.wal
                .set_len(0)
                .and_then(|()| self.wal.sync_all())
                .map_err(|error| StoreError::Io {
                    path: wal_path.clone(),
                    action: "truncate the write-ahead log",
                    error,
                })?;
            self.wal_len = 0;
        }
        Ok(())
    }

    fn db(&self) -> DbGuard<'_> {
        DbGuard(read(&self.shared.db))
    }

    /// Records ops that are in the log but not in the database.
    fn add_pending(&mut self, ops: &[StoreOp]) {
        self.pending.extend_from_slice(ops);
        let mut blocks = ops.iter().filter_map(|op| match op {
            StoreOp::PutBlock { hash, block, .. } => Some((*hash, Some(block.clone()))),
            StoreOp::DeleteBlock(hash) => Some((*hash, None)),
            _ => None,
        });
        if let Some(first) = blocks.next() {
            let mut overlay = write(&self.shared.overlay);
            overlay.insert(first.0, first.1);
            overlay.extend(blocks);
        }
    }

    /// Forgets the pending ops: they are in the database now, or are being given up.
    fn clear_pending(&mut self) {
        self.pending.clear();
        write(&self.shared.overlay).clear();
    }

    /// Replays the records of `log` (the log's content at open) that the database does not
    /// hold yet, and empties the log.
    fn replay(&mut self, log: &[u8]) -> Result<(), StoreError> {
        let records = wal::scan(log).map_err(|detail| StoreError::corrupted(&self.wal_path, detail))?;
        let applied = self.last_seq;
        for record in records {
            if record.seq <= applied {
                // A crash between a checkpoint and the truncation of the log.
                continue;
            }
            // Records are numbered consecutively from the last one checkpointed: a gap means
            // the log does not belong to this database (e.g. a database file replaced by hand).
            if record.seq != self.last_seq.saturating_add(1) {
                return Err(StoreError::corrupted(
                    &self.wal_path,
                    format!(
                        "record {} follows record {} (the database holds up to {applied})",
                        record.seq, self.last_seq
                    ),
                ));
            }
            self.last_seq = record.seq;
            self.add_pending(&record.ops);
        }
        // Also empties a log holding only a torn tail or records already applied.
        self.wal_len = log.len() as u64;
        self.checkpoint()
    }

    /// Creates the tables of a new file, checks the format of an existing one, and returns the
    /// sequence number of the last log record it holds (0 if none).
    fn init(&self) -> Result<u64, StoreError> {
        let path = &self.path;
        let mut txn = self.db().begin_write().db(path)?;
        txn.set_durability(Durability::Immediate).db(path)?;
        let applied;
        {
            txn.open_table(BLOCKS).db(path)?;
            txn.open_table(BLOCK_ORDER).db(path)?;
            txn.open_table(MEMPOOL).db(path)?;
            txn.open_table(META).db(path)?;
            let mut internal = txn.open_table(INTERNAL).db(path)?;
            let found = internal.get(KEY_FORMAT).db(path)?.map(|v| v.value().to_vec());
            match found {
                None => {
                    internal
                        .insert(KEY_FORMAT, FORMAT_VERSION.to_le_bytes().as_slice())
                        .db(path)?;
                }
                Some(bytes) if bytes == FORMAT_VERSION.to_le_bytes() => {}
                Some(bytes) => {
                    let version = <[u8; 4]>::try_from(bytes.as_slice()).map_or_else(
                        |_| format!("0x{}", hex::encode(bytes)),
                        |b| u32::from_le_bytes(b).to_string(),
                    );
                    return Err(StoreError::corrupted(
                        path,
                        format!("unknown format version {version}, this binary reads {FORMAT_VERSION}"),
                    ));
                }
            }
            applied = match internal.get(KEY_WAL_APPLIED).db(path)? {
                None => 0,
                Some(v) => u64::from_le_bytes(<[u8; 8]>::try_from(v.value()).map_err(|_| {
                    StoreError::corrupted(
                        path,
                        format!("the last log record applied is {} bytes long, not 8", v.value().len()),
                    )
                })?),
            };
        }
        txn.commit().db(path)?;
        Ok(applied)
    }

    fn apply(&self, txn: &redb::WriteTransaction, ops: &[StoreOp]) -> Result<(), StoreError> {
        let path = &self.path;
        let mut blocks = txn.open_table(BLOCKS).db(path)?;
        let mut order = txn.open_table(BLOCK_ORDER).db(path)?;
        let mut mempool = txn.open_table(MEMPOOL).db(path)?;
        let mut meta = txn.open_table(META).db(path)?;
        let mut internal = txn.open_table(INTERNAL).db(path)?;
        // One past the largest sequence in use: a deleted last block may have its number
        // reused, which is harmless because only the relative order matters.
        let mut next_seq = order.last().db(path)?.map_or(0, |(k, _)| k.value().saturating_add(1));

        for op in ops {
            match op {
                StoreOp::PutBlock {
                    hash,
                    block,
                    chain_work,
                } => {
                    // Like MemoryStore, a block already stored keeps its place in the order.
                    if blocks.get(hash.0).db(path)?.is_some() {
                        continue;
                    }
                    let value = encode_block_value(next_seq, block, *chain_work);
                    blocks.insert(hash.0, value.as_slice()).db(path)?;
                    order.insert(next_seq, hash.0).db(path)?;
                    next_seq = next_seq.saturating_add(1);
                }
                StoreOp::DeleteBlock(hash) => {
                    let seq = match blocks.remove(hash.0).db(path)? {
                        None => continue,
                        Some(value) => read_seq(value.value()).ok_or_else(|| {
                            StoreError::corrupted(path, format!("block {} has a truncated value", short(hash)))
                        })?,
                    };
                    let indexed = order.remove(seq).db(path)?.map(|h| h.value());
                    if indexed != Some(hash.0) {
                        return Err(StoreError::corrupted(
                            path,
                            format!("block {} is not at its position {seq} in the block index", short(hash)),
                        ));
                    }
                }
                StoreOp::SetTip(hash) => {
                    internal.insert(KEY_TIP, hash.0.as_slice()).db(path)?;
                }
                StoreOp::PutTx(txid, tx) => {
                    mempool.insert(txid.0, tx.encode().as_slice()).db(path)?;
                }
                StoreOp::DeleteTx(txid) => {
                    mempool.remove(txid.0).db(path)?;
                }
                StoreOp::PutMeta(key, value) => {
                    meta.insert(key.as_str(), value.as_slice()).db(path)?;
                }
            }
        }
        Ok(())
    }
}

impl ChainStore for RedbStore {
    type Error = StoreError;

    fn commit(&mut self, ops: &[StoreOp]) -> Result<(), StoreError> {
        // An empty batch changes nothing, and logging it would still cost an fsync.
        if ops.is_empty() {
            return Ok(());
        }
        let wal_path = &self.wal_path;
        let io = |action: &'static str| {
            move |error| StoreError::Io {
                path: wal_path.clone(),
                action,
                error,
            }
        };
        let seq = self.last_seq.saturating_add(1);
        let record = wal::encode_record(seq, ops).ok_or_else(|| {
            io("append to the write-ahead log")(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a batch of more than 4 GiB",
            ))
        })?;
        // One write and one fdatasync per batch: the whole point of the log. A crash before
        // the sync completes may leave part of the record, which open() discards, and the
        // batch was not acknowledged. fdatasync also persists the grown length.
        let written = self.wal.write_all(&record).and_then(|()| self.wal.sync_data());
        if let Err(error) = written {
            // The record may be partly in the file. Cut it off, so that a later record is not
            // hidden behind a torn one; if even that fails, the node stops on this error and
            // open() will discard the tail.
            let _ = self.wal.set_len(self.wal_len);
            return Err(io("append to the write-ahead log")(error));
        }
        self.wal_len += record.len() as u64;
        self.last_seq = seq;
        self.add_pending(ops);

        let policy = &self.policy;
        if self.pending.len() > policy.max_ops
            || self.wal_len > policy.max_log_bytes
            || self.last_checkpoint.elapsed() > policy.max_age
        {
            // The batch is durable already, but an error still fails the commit: a store that
            // cannot checkpoint is failing, and the node must stop rather than carry on.
            self.checkpoint()?;
        }
        Ok(())
    }

    fn load(&self) -> Result<StoredState, StoreError> {
        let (mut state, hashes) = self.load_db()?;
        if self.pending.is_empty() {
            return Ok(state);
        }
        // Applying the pending ops on top with the reference semantics keeps load a pure read.
        // It happens only when loading between checkpoints: open() has just checkpointed.
        let mut memory = MemoryStore::default();
        let mut base = Vec::with_capacity(state.blocks.len() + state.mempool.len() + 1);
        for (block, hash) in state.blocks.drain(..).zip(hashes) {
            base.push(StoreOp::PutBlock {
                hash,
                block,
                // Not part of the loaded state.
                chain_work: Work(0),
            });
        }
        base.extend(state.tip.map(StoreOp::SetTip));
        base.extend(
            state
                .mempool
                .drain(..)
                .map(|tx| StoreOp::PutTx(tx.compute_txid(), Box::new(tx))),
        );
        base.extend(state.meta.drain().map(|(k, v)| StoreOp::PutMeta(k, v)));
        let infallible = |r: Result<(), std::convert::Infallible>| match r {
            Ok(()) => {}
            Err(never) => match never {},
        };
        infallible(memory.commit(&base));
        infallible(memory.commit(&self.pending));
        match memory.load() {
            Ok(state) => Ok(state),
            Err(never) => match never {},
        }
    }

    fn load_meta(&self) -> Result<StoredMeta, StoreError> {
        let path = &self.path;
        let txn = self.db().begin_read().db(path)?;
        let DbMeta {
            mut tip,
            mut mempool,
            mut meta,
        } = read_meta(&txn, path)?;
        for op in &self.pending {
            match op {
                StoreOp::PutBlock { .. } | StoreOp::DeleteBlock(_) => {}
                StoreOp::SetTip(hash) => tip = Some(*hash),
                StoreOp::PutTx(txid, tx) => {
                    mempool.insert(*txid, Transaction::clone(tx));
                }
                StoreOp::DeleteTx(txid) => {
                    mempool.remove(txid);
                }
                StoreOp::PutMeta(k, v) => {
                    meta.insert(k.clone(), v.clone());
                }
            }
        }
        let mut mempool: Vec<Transaction> = mempool.into_values().collect();
        mempool.sort_by_cached_key(|t| (t.timestamp, t.compute_txid()));
        Ok(StoredMeta { tip, mempool, meta })
    }

    fn for_each_block(&self, f: &mut dyn FnMut(BlockHash, Arc<Block>) -> ControlFlow<()>) -> Result<(), StoreError> {
        let path = &self.path;
        let txn = self.db().begin_read().db(path)?;
        if self.pending.is_empty() {
            return visit_db_blocks(&txn, path, f);
        }
        // The pending ops, applied with the reference semantics (a block stored again keeps
        // its place, a new one goes last), split the result in two: the database's blocks
        // they do not delete, in place, then the blocks they append. Only hashes are held.
        let blocks_table = txn.open_table(BLOCKS).db(path)?;
        let mut deleted: std::collections::HashSet<BlockHash> = std::collections::HashSet::new();
        let mut appended: Vec<Option<(BlockHash, Arc<Block>)>> = Vec::new();
        let mut appended_at: HashMap<BlockHash, usize> = HashMap::new();
        for op in &self.pending {
            match op {
                StoreOp::PutBlock { hash, block, .. } => {
                    if appended_at.contains_key(hash)
                        || (!deleted.contains(hash) && blocks_table.get(hash.0).db(path)?.is_some())
                    {
                        continue;
                    }
                    appended_at.insert(*hash, appended.len());
                    appended.push(Some((*hash, block.clone())));
                }
                StoreOp::DeleteBlock(hash) => {
                    if let Some(i) = appended_at.remove(hash) {
                        appended[i] = None;
                    } else if blocks_table.get(hash.0).db(path)?.is_some() {
                        deleted.insert(*hash);
                    }
                }
                _ => {}
            }
        }
        drop(blocks_table);
        let mut stopped = false;
        visit_db_blocks(&txn, path, &mut |hash, block| {
            if deleted.contains(&hash) {
                return ControlFlow::Continue(());
            }
            let flow = f(hash, block);
            stopped = flow.is_break();
            flow
        })?;
        if stopped {
            return Ok(());
        }
        for (hash, block) in appended.into_iter().flatten() {
            if f(hash, block).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn reader(&self) -> Arc<dyn BlockSource> {
        Arc::new(RedbReader(self.shared.clone()))
    }
}

impl RedbStore {
    /// The database's state, without the pending ops, and the hashes of its blocks.
    fn load_db(&self) -> Result<(StoredState, Vec<BlockHash>), StoreError> {
        let path = &self.path;
        let txn = self.db().begin_read().db(path)?;
        let mut blocks = Vec::new();
        let mut hashes = Vec::new();
        visit_db_blocks(&txn, path, &mut |hash, block| {
            blocks.push(block);
            hashes.push(hash);
            ControlFlow::Continue(())
        })?;
        let DbMeta { tip, mempool, meta } = read_meta(&txn, path)?;
        let mut mempool: Vec<Transaction> = mempool.into_values().collect();
        mempool.sort_by_cached_key(|t| (t.timestamp, t.compute_txid()));
        Ok((
            StoredState {
                blocks,
                tip,
                mempool,
                meta,
            },
            hashes,
        ))
    }
}

/// Visits the blocks of the database in their stored order, each decoded and checked against
/// its keys, after checking that the index and the blocks agree in number (so that a
/// mismatch is reported before any block is visited).
fn visit_db_blocks(
    txn: &redb::ReadTransaction,
    path: &Path,
    f: &mut dyn FnMut(BlockHash, Arc<Block>) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    let corrupted = |detail: String| StoreError::corrupted(path, detail);
    let blocks_table = txn.open_table(BLOCKS).db(path)?;
    let order = txn.open_table(BLOCK_ORDER).db(path)?;
    let missing =
        |seq: u64, hash: &BlockHash| corrupted(format!("block index {seq} points to missing block {}", short(hash)));
    let (stored, indexed) = (blocks_table.len().db(path)?, order.len().db(path)?);
    if stored != indexed {
        // Name the first entry of the index without its block, if that is the damage.
        for entry in order.iter().db(path)? {
            let (seq, hash) = entry.db(path)?;
            let (seq, hash) = (seq.value(), BlockHash(hash.value()));
            if blocks_table.get(hash.0).db(path)?.is_none() {
                return Err(missing(seq, &hash));
            }
        }
        return Err(corrupted(format!(
            "{stored} blocks are stored but {indexed} are in the block index"
        )));
    }
    for entry in order.iter().db(path)? {
        let (seq, hash) = entry.db(path)?;
        let (seq, hash) = (seq.value(), BlockHash(hash.value()));
        let value = blocks_table.get(hash.0).db(path)?.ok_or_else(|| missing(seq, &hash))?;
        let block = decode_block_value(value.value(), seq, &hash).map_err(corrupted)?;
        if f(hash, Arc::new(block)).is_break() {
            break;
        }
    }
    Ok(())
}

/// The database's state apart from the blocks.
struct DbMeta {
    tip: Option<BlockHash>,
    /// Each checked against its key.
    mempool: HashMap<Txid, Transaction>,
    meta: HashMap<String, Vec<u8>>,
}

fn read_meta(txn: &redb::ReadTransaction, path: &Path) -> Result<DbMeta, StoreError> {
    let corrupted = |detail: String| StoreError::corrupted(path, detail);
    let internal = txn.open_table(INTERNAL).db(path)?;
    let tip = match internal.get(KEY_TIP).db(path)? {
        None => None,
        Some(v) => Some(BlockHash(<[u8; 32]>::try_from(v.value()).map_err(|_| {
            corrupted(format!("the tip is {} bytes long, not 32", v.value().len()))
        })?)),
    };

    let mut mempool = HashMap::new();
    for entry in txn.open_table(MEMPOOL).db(path)?.iter().db(path)? {
        let (txid, bytes) = entry.db(path)?;
        let txid = Txid(txid.value());
        let tx = Transaction::decode(bytes.value())
            .map_err(|e| corrupted(format!("pending transaction {} does not decode: {e}", short(&txid))))?;
        if tx.compute_txid() != txid {
            return Err(corrupted(format!(
                "pending transaction {} is stored under another txid",
                short(&txid)
            )));
        }
        mempool.insert(txid, tx);
    }

    let mut meta = HashMap::new();
    for entry in txn.open_table(META).db(path)?.iter().db(path)? {
        let (k, v) = entry.db(path)?;
        meta.insert(k.value().to_owned(), v.value().to_vec());
    }
    Ok(DbMeta { tip, mempool, meta })
}

/// Reads one block of the database by hash, checking it as [`ChainStore::load`] does: its
/// value decodes to a block of that hash and height, at the position the index gives it.
fn read_db_block(
    blocks: &redb::ReadOnlyTable<[u8; 32], &[u8]>,
    order: &redb::ReadOnlyTable<u64, [u8; 32]>,
    hash: &BlockHash,
    path: &Path,
) -> Result<Option<Block>, StoreError> {
    let corrupted = |detail: String| StoreError::corrupted(path, detail);
    let Some(value) = blocks.get(hash.0).db(path)? else {
        return Ok(None);
    };
    let value = value.value();
    let seq = read_seq(value).ok_or_else(|| corrupted(format!("block {} has a truncated value", short(hash))))?;
    if order.get(seq).db(path)?.map(|h| h.value()) != Some(hash.0) {
        return Err(corrupted(format!(
            "block {} is not at its position {seq} in the block index",
            short(hash)
        )));
    }
    decode_block_value(value, seq, hash).map(Some).map_err(corrupted)
}

impl Shared {
    /// [`BlockSource::read_blocks`]: the overlay first, then one read transaction.
    fn read_blocks(&self, hashes: &[BlockHash]) -> Result<Vec<Option<Arc<Block>>>, StoreError> {
        let mut out = vec![None; hashes.len()];
        let mut missing = Vec::new();
        {
            let overlay = read(&self.overlay);
            for (i, hash) in hashes.iter().enumerate() {
                match overlay.get(hash) {
                    Some(pending) => out[i] = pending.clone(),
                    None => missing.push(i),
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        // Looked up after the overlay: a block that left the overlay in a checkpoint since is
        // in the database by now.
        let path = &self.path;
        let db = read(&self.db);
        let db = db.as_ref().ok_or_else(|| StoreError::Closed { path: path.clone() })?;
        let txn = db.begin_read().db(path)?;
        let blocks = txn.open_table(BLOCKS).db(path)?;
        let order = txn.open_table(BLOCK_ORDER).db(path)?;
        for i in missing {
            out[i] = read_db_block(&blocks, &order, &hashes[i], path)?.map(Arc::new);
        }
        Ok(out)
    }
}

/// The [`BlockSource`] of a [`RedbStore`]; its errors are [`StoreError`]s.
struct RedbReader(Arc<Shared>);

impl BlockSource for RedbReader {
    fn read_block(&self, hash: &BlockHash) -> Result<Option<Arc<Block>>, ReadError> {
        Ok(self.0.read_blocks(std::slice::from_ref(hash))?.pop().flatten())
    }

    fn read_blocks(&self, hashes: &[BlockHash]) -> Result<Vec<Option<Arc<Block>>>, ReadError> {
        Ok(self.0.read_blocks(hashes)?)
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        // Best effort: the ops are durable in the log either way, and open() replays it.
        if read(&self.shared.db).is_some() {
            let _ = self.checkpoint();
        }
        // Readers may outlive the store; the file must not.
        drop(write(&self.shared.db).take());
        write(&self.shared.overlay).clear();
    }
}

/// Moves `dir/chain.redb` aside to `chain.redb.bad-<unix seconds>`, and a non-empty
/// `chain.wal` to `chain.wal.bad-<same>`, so that the next [`RedbStore::open`] starts empty (the
/// node's `--resync`). User data is never deleted; an empty log holds none and is removed.
/// Does nothing if there are no such files. The store must not be open.
pub fn wipe(dir: &Path) -> Result<(), StoreError> {
    let exists = |p: &Path| {
        p.try_exists().map_err(|error| StoreError::Io {
            path: p.to_owned(),
            action: "check whether the file exists",
            error,
        })
    };
    let path = dir.join(FILE_NAME);
    let wal_path = dir.join(WAL_FILE_NAME);
    let wal_len = match std::fs::metadata(&wal_path) {
        Ok(m) => Some(m.len()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(error) => {
            return Err(StoreError::Io {
                path: wal_path,
                action: "read the file's metadata",
                error,
            });
        }
    };
    if wal_len == Some(0) {
        std::fs::remove_file(&wal_path).map_err(|error| StoreError::Io {
            path: wal_path.clone(),
            action: "remove the empty file",
            error,
        })?;
    }
    let moves: Vec<(&Path, &str)> = [
        (exists(&path)?, path.as_path(), FILE_NAME),
        (wal_len.is_some_and(|l| l > 0), wal_path.as_path(), WAL_FILE_NAME),
    ]
    .into_iter()
    .filter(|(keep, _, _)| *keep)
    .map(|(_, p, name)| (p, name))
    .collect();
    if moves.is_empty() {
        return Ok(());
    }
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // Two resyncs within one second must not overwrite the files first moved aside; both
    // files get the same suffix, so that it is clear they belong together.
    let mut suffix = format!("bad-{secs}");
    let mut n = 1;
    let taken = |suffix: &str| -> Result<bool, StoreError> {
        for name in [FILE_NAME, WAL_FILE_NAME] {
            if exists(&dir.join(format!("{name}.{suffix}")))? {
                return Ok(true);
            }
        }
        Ok(false)
    };
    while taken(&suffix)? {
        suffix = format!("bad-{secs}-{n}");
        n += 1;
    }
    // The log first: a crash in between then leaves a database without its log, which is
    // being thrown away anyway, rather than a log that open() would replay into a new database.
    for (from, name) in moves.into_iter().rev() {
        let target = dir.join(format!("{name}.{suffix}"));
        std::fs::rename(from, &target).map_err(|error| StoreError::Io {
            path: from.to_owned(),
            action: "move the file aside",
            error,
        })?;
    }
    Ok(())
}

fn encode_block_value(seq: u64, block: &Block, chain_work: Work) -> Vec<u8> {
    let mut out = Vec::with_capacity(BLOCK_VALUE_PREFIX + block.encoded_len());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&block.header.height.to_le_bytes());
    out.extend_from_slice(&chain_work.0.to_le_bytes());
    out.extend_from_slice(&block.encode());
    out
}

fn read_seq(value: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(value.get(..8)?.try_into().ok()?))
}

/// Decodes a `blocks` value and checks it against its keys; the error is the detail of a
/// [`StoreError::Corrupted`].
fn decode_block_value(value: &[u8], seq: u64, hash: &BlockHash) -> Result<Block, String> {
    let name = short(hash);
    let (prefix, bytes) = value
        .split_at_checked(BLOCK_VALUE_PREFIX)
        .ok_or_else(|| format!("block {name} has a truncated value"))?;
    let stored_seq = read_seq(prefix).unwrap_or(u64::MAX);
    if stored_seq != seq {
        return Err(format!(
            "block {name} records position {stored_seq} but is indexed at {seq}"
        ));
    }
    // The core re-validates every block after loading, so only the encoding is bounded here:
    // the bytes are our own and may hold any number of transactions.
    let block = Block::decode(bytes, DecodeLimits { max_txs: usize::MAX })
        .map_err(|e| format!("block {name} does not decode: {e}"))?;
    let computed = block.compute_hash();
    if computed != *hash {
        return Err(format!("block {name} has hash {}", short(&computed)));
    }
    let height = prefix
        .get(8..16)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes);
    if height != Some(block.header.height) {
        return Err(format!("block {name} is recorded at another height than its header's"));
    }
    Ok(block)
}

/// Enough of a hash to find it in logs, short enough to keep an error on one line.
fn short(hash: &impl fmt::Display) -> String {
    let full = hash.to_string();
    format!("{}…", full.get(..12).unwrap_or(&full))
}

/// Turns any redb error into a [`StoreError`] naming the file.
trait ResultExt<T> {
    fn db(self, path: &Path) -> Result<T, StoreError>;
}

impl<T, E: Into<redb::Error>> ResultExt<T> for Result<T, E> {
    fn db(self, path: &Path) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::database(path, e))
    }
}

#[cfg(test)]
mod tests;
