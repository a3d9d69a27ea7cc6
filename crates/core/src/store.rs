//! What the node asks its storage to do, and the interface storage offers.
//!
//! The core never touches a disk: it emits [`StoreOp`]s, and the live node applies every op
//! of one batch of inputs in a single atomic, durable commit (group commit) before it
//! answers any request of that batch. At start the stored state is read back and replayed
//! through full validation.

use std::collections::HashMap;
use std::sync::Arc;

use chainsim_primitives::{Block, BlockHash, Transaction, Txid, Work};

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
    PutTx(Txid, Transaction),
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
                    }
                }
                StoreOp::DeleteBlock(hash) => {
                    if self.positions.remove(hash).is_some() {
                        self.blocks.retain(|(h, _)| h != hash);
                        self.positions = self.blocks.iter().enumerate().map(|(i, (h, _))| (*h, i)).collect();
                    }
                }
                StoreOp::SetTip(hash) => self.tip = Some(*hash),
                StoreOp::PutTx(txid, tx) => {
                    self.mempool.insert(*txid, tx.clone());
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
}
