//! What the node asks its storage to do, and the interface storage offers.
//!
//! The core never touches a disk: it emits [`StoreOp`]s, and the live node applies every op
//! of one batch of inputs in a single atomic, durable commit (group commit) before it
//! answers any request of that batch. At start the stored state is read back and replayed
//! through full validation.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::{Arc, PoisonError, RwLock};

use chainsim_primitives::{Block, BlockHash, Transaction, Txid, Work};

use crate::keyed_hash::KeyedMap;

/// One change to persistent state.
#[derive(Debug, Clone)]
pub enum StoreOp {
    /// Store a block with its index data.
    PutBlock {
        /// The block's hash.
        hash: BlockHash,
        /// The block.
        block: Arc<Block>,
        /// Cumulative work up to this block.
        chain_work: Work,
    },
    /// Forget a block (a pruned side branch).
    DeleteBlock(BlockHash),
    /// Record the best tip.
    SetTip(BlockHash),
    /// Store a pending transaction.
    PutTx(Txid, Box<Transaction>),
    /// Forget a pending transaction (mined, or dropped).
    DeleteTx(Txid),
    /// Store a small named value (miner identity, settings).
    PutMeta(String, Vec<u8>),
}

/// Everything storage hands back at start.
#[derive(Debug, Default, Clone)]
pub struct StoredState {
    /// Blocks in the order they were stored, so every parent precedes its children.
    pub blocks: Vec<Arc<Block>>,
    /// The recorded best tip, if any.
    pub tip: Option<BlockHash>,
    /// Pending transactions.
    pub mempool: Vec<Transaction>,
    /// Named values.
    pub meta: HashMap<String, Vec<u8>>,
}

/// Persistent storage of a node.
pub trait ChainStore {
    /// The storage's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Applies `ops` atomically and durably: after it returns Ok, a crash loses none of them;
    /// after a crash during the call, either all or none of them are there.
    fn commit(&mut self, ops: &[StoreOp]) -> Result<(), Self::Error>;

    /// Reads back everything committed so far.
    fn load(&self) -> Result<StoredState, Self::Error>;

    /// Everything [`ChainStore::load`] returns except the blocks: tip, mempool and named
    /// values. With [`ChainStore::for_each_block`] it reads the stored state back without
    /// holding all blocks at once.
    fn load_meta(&self) -> Result<StoredMeta, Self::Error>;

    /// Visits the stored blocks in stored order (every parent before its children, the order
    /// of [`StoredState::blocks`]), one at a time: the store holds only the block being
    /// visited, so a restart can verify a long chain in little memory. `f` gets each block's
    /// hash (checked against the block by stores that read from disk) and the block, and
    /// stops the walk by returning [`ControlFlow::Break`]; a caller that stops on its own
    /// error keeps that error in its closure.
    ///
    /// Errors of the store (a damaged block, a failed read) end the walk and are returned;
    /// blocks visited before stay visited.
    fn for_each_block(&self, f: &mut dyn FnMut(BlockHash, Arc<Block>) -> ControlFlow<()>) -> Result<(), Self::Error>;

    /// A handle that reads blocks by hash, for the core to hold while the store itself stays
    /// with whoever commits. It sees every commit made through this store, also those made
    /// after the handle was created, and may be used from any thread concurrently with them.
    fn reader(&self) -> Arc<dyn BlockSource>;
}

/// The error of a [`BlockSource`] read, boxed so that the trait stays object safe whatever
/// the store. A `chainsim_store::RedbStore` reader returns its `StoreError` here (downcast to
/// ask whether the file is damaged); a [`MemoryStore`] reader never fails.
pub type ReadError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Reads stored blocks by hash: the read path through which block bodies are fetched on
/// demand instead of being kept in memory.
pub trait BlockSource: Send + Sync {
    /// The block stored under `hash`, or None if no such block is stored (never stored, or
    /// deleted since). A block read from disk is decoded and its hash checked, and damage is
    /// reported as an error, never returned as a block.
    fn read_block(&self, hash: &BlockHash) -> Result<Option<Arc<Block>>, ReadError>;

    /// [`BlockSource::read_block`] for several hashes, in the same order; a store may answer
    /// them from one consistent snapshot, and more cheaply than one by one.
    fn read_blocks(&self, hashes: &[BlockHash]) -> Result<Vec<Option<Arc<Block>>>, ReadError> {
        hashes.iter().map(|h| self.read_block(h)).collect()
    }

    /// Whether the store keeps in memory the very bodies it was given and reads them back:
    /// a block tree may then read its entries' headers from those bodies instead of
    /// keeping copies (see [`crate::chain::BlockEntry`]). A database, which decodes a new
    /// body on each read, does not.
    fn shares_bodies(&self) -> bool {
        false
    }
}

/// What storage hands back at start apart from the blocks (see [`ChainStore::load_meta`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StoredMeta {
    /// The recorded best tip, if any.
    pub tip: Option<BlockHash>,
    /// Pending transactions, in the order of [`StoredState::mempool`].
    pub mempool: Vec<Transaction>,
    /// Named values.
    pub meta: HashMap<String, Vec<u8>>,
}

/// Blocks by hash behind a lock, one copy however many handles read it: the read side of a
/// [`MemoryStore`], and the one store all of a simulation's nodes share. Cloning a
/// `BlockMap` shares it; every put or remove is seen through every clone.
#[derive(Debug, Default, Clone)]
pub struct BlockMap(Arc<RwLock<KeyedMap<BlockHash, Arc<Block>>>>);

impl BlockMap {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, KeyedMap<BlockHash, Arc<Block>>> {
        // Every update is a single insert or remove, so a panic elsewhere while the lock was
        // held cannot have left the map half-updated.
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeyedMap<BlockHash, Arc<Block>>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `block` under `hash` unless a block is stored there already.
    pub fn put(&self, hash: BlockHash, block: &Arc<Block>) {
        self.write().entry(hash).or_insert_with(|| block.clone());
    }

    /// Forgets the block under `hash`.
    pub fn remove(&self, hash: &BlockHash) {
        self.write().remove(hash);
    }

    /// Blocks stored.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether no block is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A separate map holding the same blocks.
    fn deep_copy(&self) -> Self {
        Self(Arc::new(RwLock::new(self.read().clone())))
    }
}

impl BlockSource for BlockMap {
    fn read_block(&self, hash: &BlockHash) -> Result<Option<Arc<Block>>, ReadError> {
        Ok(self.read().get(hash).cloned())
    }

    fn read_blocks(&self, hashes: &[BlockHash]) -> Result<Vec<Option<Arc<Block>>>, ReadError> {
        let blocks = self.read();
        Ok(hashes.iter().map(|h| blocks.get(h).cloned()).collect())
    }

    fn shares_bodies(&self) -> bool {
        true
    }
}

/// A [`MemoryStore`]'s own [`BlockMap`]: cloning the store copies it, so that a cloned store
/// is a separate store with readers of its own.
#[derive(Debug, Default)]
struct OwnBlocks(BlockMap);

impl Clone for OwnBlocks {
    fn clone(&self) -> Self {
        Self(self.0.deep_copy())
    }
}

/// Storage in memory: for tests and simulations, and the reference the database store
/// is tested against.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    blocks: Vec<(BlockHash, Arc<Block>)>,
    positions: HashMap<BlockHash, usize>,
    tip: Option<BlockHash>,
    mempool: HashMap<Txid, Transaction>,
    meta: HashMap<String, Vec<u8>>,
    /// The blocks again, by hash, for [`ChainStore::reader`].
    by_hash: OwnBlocks,
}

impl ChainStore for MemoryStore {
    type Error = std::convert::Infallible;

    fn commit(&mut self, ops: &[StoreOp]) -> Result<(), Self::Error> {
        for op in ops {
            match op {
                StoreOp::PutBlock { hash, block, .. } => {
                    if !self.positions.contains_key(hash) {
                        self.positions.insert(*hash, self.blocks.len());
                        self.blocks.push((*hash, block.clone()));
                        self.by_hash.0.put(*hash, block);
                    }
                }
                StoreOp::DeleteBlock(hash) => {
                    if self.positions.remove(hash).is_some() {
                        self.by_hash.0.remove(hash);
                        self.blocks.retain(|(h, _)| h != hash);
                        self.positions = self.blocks.iter().enumerate().map(|(i, (h, _))| (*h, i)).collect();
                    }
                }
                StoreOp::SetTip(hash) => self.tip = Some(*hash),
                StoreOp::PutTx(txid, tx) => {
                    self.mempool.insert(*txid, Transaction::clone(tx));
                }
                StoreOp::DeleteTx(txid) => {
                    self.mempool.remove(txid);
                }
                StoreOp::PutMeta(k, v) => {
                    self.meta.insert(k.clone(), v.clone());
                }
            }
        }
        Ok(())
    }

    fn load(&self) -> Result<StoredState, Self::Error> {
        let mut mempool: Vec<Transaction> = self.mempool.values().cloned().collect();
        mempool.sort_by_key(|t| (t.timestamp, t.compute_txid()));
        Ok(StoredState {
            blocks: self.blocks.iter().map(|(_, b)| b.clone()).collect(),
            tip: self.tip,
            mempool,
            meta: self.meta.clone(),
        })
    }

    fn load_meta(&self) -> Result<StoredMeta, Self::Error> {
        let mut mempool: Vec<Transaction> = self.mempool.values().cloned().collect();
        mempool.sort_by_key(|t| (t.timestamp, t.compute_txid()));
        Ok(StoredMeta {
            tip: self.tip,
            mempool,
            meta: self.meta.clone(),
        })
    }

    fn for_each_block(&self, f: &mut dyn FnMut(BlockHash, Arc<Block>) -> ControlFlow<()>) -> Result<(), Self::Error> {
        for (hash, block) in &self.blocks {
            if f(*hash, block.clone()).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn reader(&self) -> Arc<dyn BlockSource> {
        Arc::new(self.by_hash.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use chainsim_primitives::{CompactTarget, Header, MerkleRoot};

    use super::*;

    fn block(height: u64) -> Arc<Block> {
        Arc::new(Block {
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
        })
    }

    fn put(b: &Arc<Block>) -> StoreOp {
        StoreOp::PutBlock {
            hash: b.compute_hash(),
            block: b.clone(),
            chain_work: Work(1),
        }
    }

    fn visit(store: &MemoryStore) -> Vec<BlockHash> {
        let mut seen = Vec::new();
        store
            .for_each_block(&mut |hash, block| {
                assert_eq!(hash, block.compute_hash());
                seen.push(hash);
                ControlFlow::Continue(())
            })
            .unwrap();
        seen
    }

    #[test]
    fn reader_sees_later_commits_and_deletes() {
        let (a, b) = (block(1), block(2));
        let mut store = MemoryStore::default();
        let reader = store.reader();
        assert_eq!(reader.read_block(&a.compute_hash()).unwrap(), None);
        store.commit(&[put(&a), put(&b)]).unwrap();
        assert_eq!(reader.read_block(&a.compute_hash()).unwrap(), Some(a.clone()));
        store.commit(&[StoreOp::DeleteBlock(a.compute_hash())]).unwrap();
        assert_eq!(
            reader.read_blocks(&[a.compute_hash(), b.compute_hash()]).unwrap(),
            vec![None, Some(b.clone())]
        );
        // A clone is a separate store: its commits do not reach the first one's readers.
        let mut copy = store.clone();
        copy.commit(&[put(&a)]).unwrap();
        assert_eq!(reader.read_block(&a.compute_hash()).unwrap(), None);
        assert_eq!(copy.reader().read_block(&a.compute_hash()).unwrap(), Some(a));
    }

    #[test]
    fn streaming_load_matches_load() {
        let blocks: Vec<_> = (0..5).map(block).collect();
        let mut store = MemoryStore::default();
        store.commit(&blocks.iter().map(put).collect::<Vec<_>>()).unwrap();
        store
            .commit(&[
                StoreOp::DeleteBlock(blocks[1].compute_hash()),
                put(&blocks[1]),
                StoreOp::SetTip(blocks[4].compute_hash()),
                StoreOp::PutTx(Txid([1; 32]), Box::new(Transaction::new("a", "b", 1, 5))),
                StoreOp::PutMeta("k".into(), vec![1]),
            ])
            .unwrap();
        let state = store.load().unwrap();
        let want: Vec<_> = state.blocks.iter().map(|b| b.compute_hash()).collect();
        assert_eq!(visit(&store), want);
        assert_eq!(want[4], blocks[1].compute_hash());
        let meta = store.load_meta().unwrap();
        assert_eq!(
            meta,
            StoredMeta {
                tip: state.tip,
                mempool: state.mempool,
                meta: state.meta
            }
        );
        let mut first = Vec::new();
        store
            .for_each_block(&mut |hash, _| {
                first.push(hash);
                ControlFlow::Break(())
            })
            .unwrap();
        assert_eq!(first, want[..1]);
    }
}
