//! chainsim's persistent [`ChainStore`]: one [redb] file per node, `<dir>/chain.redb`.
//!
//! Every [`ChainStore::commit`] is one redb write transaction with immediate durability, so a
//! batch of ops is on disk entirely or not at all, and an acknowledged batch survives a crash.
//! [`ChainStore::load`] trusts nothing it reads: every value is decoded and every block's hash is
//! recomputed, and anything off is reported as [`StoreError::Corrupted`] naming the file, so the
//! binary can suggest `--resync` instead of panicking.
//!
//! Layout (all integers little-endian):
//! - `blocks`: block hash → `seq u64 | height u64 | chain work u128 | canonical block bytes`
//! - `block_order`: `seq` → block hash, so blocks come back in insertion order and every parent
//!   precedes its children, as with [`MemoryStore`](chainsim_core::store::MemoryStore)
//! - `mempool`: txid → canonical transaction bytes
//! - `meta`: name → bytes, exactly the [`StoreOp::PutMeta`] values
//! - `internal`: the tip and the format version, apart from `meta` so that no user key can
//!   collide with them

mod error;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use chainsim_core::store::{ChainStore, StoreOp, StoredState};
use chainsim_primitives::block::DecodeLimits;
use chainsim_primitives::{Block, BlockHash, Transaction, Txid, Work};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};

pub use error::StoreError;

/// The database file's name inside the store directory.
pub const FILE_NAME: &str = "chain.redb";

const BLOCKS: TableDefinition<'static, [u8; 32], &[u8]> = TableDefinition::new("blocks");
const BLOCK_ORDER: TableDefinition<'static, u64, [u8; 32]> = TableDefinition::new("block_order");
const MEMPOOL: TableDefinition<'static, [u8; 32], &[u8]> = TableDefinition::new("mempool");
const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("meta");
const INTERNAL: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("internal");

const KEY_TIP: &str = "tip";
const KEY_FORMAT: &str = "format";
/// Bumped whenever the layout above changes, so an old binary refuses a newer file instead of
/// misreading it.
const FORMAT_VERSION: u32 = 1;

/// Bytes before the block encoding in a `blocks` value: seq, height, chain work.
const BLOCK_VALUE_PREFIX: usize = 8 + 8 + 16;

/// redb caches up to 1 GiB by default. The node keeps every block it needs in memory and
/// reads the store only once, at start, so a cache would duplicate that: keep it small, which
/// lets 100 idle nodes share this machine.
const CACHE_BYTES: usize = 4 * 1024 * 1024;

/// A [`ChainStore`] in a redb database file.
///
/// Only one `RedbStore` (in any process) may have a given directory open at a time; a second
/// [`RedbStore::open`] fails with [`StoreError::Locked`].
pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens the store in `dir`, creating the directory and an empty database if needed.
    ///
    /// The whole file is checked against redb's page checksums while opening: a file damaged
    /// outside redb then fails here with [`StoreError::Corrupted`], where an unchecked open
    /// could panic on a later read.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|error| StoreError::Io {
            path: dir.to_owned(),
            action: "create the directory",
            error,
        })?;
        let path = dir.join(FILE_NAME);
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|e| StoreError::open(&path, e))?;
        let store = Self { db, path };
        store.init()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the database, reporting any error that dropping it would ignore.
    pub fn close(self) -> Result<(), StoreError> {
        let path = self.path;
        self.db.close().map_err(|e| StoreError::database(&path, e))
    }

    /// Creates the tables of a new file, and checks the format of an existing one.
    fn init(&self) -> Result<(), StoreError> {
        let path = &self.path;
        let mut txn = self.db.begin_write().db(path)?;
        txn.set_durability(Durability::Immediate).db(path)?;
        {
            txn.open_table(BLOCKS).db(path)?;
            txn.open_table(BLOCK_ORDER).db(path)?;
            txn.open_table(MEMPOOL).db(path)?;
            txn.open_table(META).db(path)?;
            let mut internal = txn.open_table(INTERNAL).db(path)?;
            let found = internal
                .get(KEY_FORMAT)
                .db(path)?
                .map(|v| v.value().to_vec());
            match found {
                None => {
                    internal
                        .insert(KEY_FORMAT, FORMAT_VERSION.to_le_bytes().as_slice())
                        .db(path)?;
                }
                Some(bytes) if bytes == FORMAT_VERSION.to_le_bytes() => {}
                Some(bytes) => {
                    let version = <[u8; 4]>::try_from(bytes.as_slice()).map_or_else(
                        |_| format!("0x{}", hex(&bytes)),
                        |b| u32::from_le_bytes(b).to_string(),
                    );
                    return Err(StoreError::corrupted(
                        path,
                        format!(
                            "unknown format version {version}, this binary reads {FORMAT_VERSION}"
                        ),
                    ));
                }
            }
        }
        txn.commit().db(path)
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
        let mut next_seq = order
            .last()
            .db(path)?
            .map_or(0, |(k, _)| k.value().saturating_add(1));

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
                            StoreError::corrupted(
                                path,
                                format!("block {} has a truncated value", short(hash)),
                            )
                        })?,
                    };
                    let indexed = order.remove(seq).db(path)?.map(|h| h.value());
                    if indexed != Some(hash.0) {
                        return Err(StoreError::corrupted(
                            path,
                            format!(
                                "block {} is not at its position {seq} in the block index",
                                short(hash)
                            ),
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
        // An empty batch changes nothing, and a durable commit would still cost an fsync.
        if ops.is_empty() {
            return Ok(());
        }
        let path = &self.path;
        let mut txn = self.db.begin_write().db(path)?;
        // Immediate is redb's default; set anyway because the node answers requests on the
        // strength of this commit, so nothing may make it lazier unnoticed.
        txn.set_durability(Durability::Immediate).db(path)?;
        // On error the transaction is dropped, which aborts it: none of the ops take effect.
        self.apply(&txn, ops)?;
        txn.commit().db(path)
    }

    fn load(&self) -> Result<StoredState, StoreError> {
        let path = &self.path;
        let corrupted = |detail: String| StoreError::corrupted(path, detail);
        let txn = self.db.begin_read().db(path)?;

        let blocks_table = txn.open_table(BLOCKS).db(path)?;
        let order = txn.open_table(BLOCK_ORDER).db(path)?;
        let mut blocks = Vec::new();
        for entry in order.iter().db(path)? {
            let (seq, hash) = entry.db(path)?;
            let (seq, hash) = (seq.value(), BlockHash(hash.value()));
            let value = blocks_table.get(hash.0).db(path)?.ok_or_else(|| {
                corrupted(format!(
                    "block index {seq} points to missing block {}",
                    short(&hash)
                ))
            })?;
            let block = decode_block_value(value.value(), seq, &hash).map_err(corrupted)?;
            blocks.push(Arc::new(block));
        }
        let stored = blocks_table.len().db(path)?;
        if stored != blocks.len() as u64 {
            return Err(corrupted(format!(
                "{} blocks are stored but {} are in the block index",
                stored,
                blocks.len()
            )));
        }

        let internal = txn.open_table(INTERNAL).db(path)?;
        let tip = match internal.get(KEY_TIP).db(path)? {
            None => None,
            Some(v) => Some(BlockHash(<[u8; 32]>::try_from(v.value()).map_err(
                |_| corrupted(format!("the tip is {} bytes long, not 32", v.value().len())),
            )?)),
        };

        let mut mempool = Vec::new();
        for entry in txn.open_table(MEMPOOL).db(path)?.iter().db(path)? {
            let (txid, bytes) = entry.db(path)?;
            let txid = Txid(txid.value());
            let tx = Transaction::decode(bytes.value()).map_err(|e| {
                corrupted(format!(
                    "pending transaction {} does not decode: {e}",
                    short(&txid)
                ))
            })?;
            if tx.compute_txid() != txid {
                return Err(corrupted(format!(
                    "pending transaction {} is stored under another txid",
                    short(&txid)
                )));
            }
            mempool.push(tx);
        }
        mempool.sort_by_cached_key(|t| (t.timestamp, t.compute_txid()));

        let mut meta = HashMap::new();
        for entry in txn.open_table(META).db(path)?.iter().db(path)? {
            let (k, v) = entry.db(path)?;
            meta.insert(k.value().to_owned(), v.value().to_vec());
        }

        Ok(StoredState {
            blocks,
            tip,
            mempool,
            meta,
        })
    }
}

/// Moves `dir/chain.redb` aside to `chain.redb.bad-<unix seconds>` so that the next
/// [`RedbStore::open`] starts empty (the node's `--resync`). User data is never deleted.
/// Does nothing if there is no database file. The store must not be open.
pub fn wipe(dir: &Path) -> Result<(), StoreError> {
    let exists = |p: &Path| {
        p.try_exists().map_err(|error| StoreError::Io {
            path: p.to_owned(),
            action: "check whether the file exists",
            error,
        })
    };
    let path = dir.join(FILE_NAME);
    if !exists(&path)? {
        return Ok(());
    }
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Two resyncs within one second must not overwrite the first file moved aside.
    let mut target = dir.join(format!("{FILE_NAME}.bad-{secs}"));
    let mut n = 1;
    while exists(&target)? {
        target = dir.join(format!("{FILE_NAME}.bad-{secs}-{n}"));
        n += 1;
    }
    std::fs::rename(&path, &target).map_err(|error| StoreError::Io {
        path,
        action: "move the file aside",
        error,
    })
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
    let block = Block::decode(
        bytes,
        DecodeLimits {
            max_txs: usize::MAX,
        },
    )
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
        return Err(format!(
            "block {name} is recorded at another height than its header's"
        ));
    }
    Ok(block)
}

/// Enough of a hash to find it in logs, short enough to keep an error on one line.
fn short(hash: &impl fmt::Display) -> String {
    let full = hash.to_string();
    format!("{}…", full.get(..12).unwrap_or(&full))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
