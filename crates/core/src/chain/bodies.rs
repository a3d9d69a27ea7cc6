//! Block bodies, kept out of the node's memory where a store can give them back.
//!
//! With a [`BlockSource`] (the live node's database) a body stays in memory only until the
//! driver reports that the store has it (`Input::Committed`), and at most the last
//! [`KEEP_RECENT`] in any case; the others are read on demand. Without one (tests and
//! simulations, where many nodes in one process share each block through its `Arc`) every
//! body is kept.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chainsim_primitives::{Block, BlockHash};

use crate::store::BlockSource;

/// Bodies kept in memory besides the store: more than one catch-up batch (500 blocks), so
/// that every block accepted since the last commit is still here.
pub const KEEP_RECENT: usize = 1_024;

/// Where bodies come from.
pub struct Bodies {
    source: Option<Arc<dyn BlockSource>>,
    held: HashMap<BlockHash, Arc<Block>>,
    order: VecDeque<BlockHash>,
}

impl std::fmt::Debug for Bodies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bodies")
            .field("held", &self.held.len())
            .field("has_source", &self.source.is_some())
            .finish()
    }
}

impl Bodies {
    /// Bodies read back from `source`, or all kept in memory when there is none.
    pub fn new(source: Option<Arc<dyn BlockSource>>) -> Self {
        Self {
            source,
            held: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Keeps a body (the most recent ones only, when a store holds the rest).
    pub fn insert(&mut self, hash: BlockHash, block: Arc<Block>) {
        if self.held.insert(hash, block).is_some() || self.source.is_none() {
            return;
        }
        self.order.push_back(hash);
        while self.order.len() > KEEP_RECENT {
            if let Some(old) = self.order.pop_front() {
                self.held.remove(&old);
            }
        }
    }

    /// Keeps a body for good (genesis, which no store holds).
    pub fn pin(&mut self, hash: BlockHash, block: Arc<Block>) {
        self.held.insert(hash, block);
    }

    /// Drops the bodies held only until the store had them: everything drained so far is
    /// committed (genesis, pinned, stays).
    pub fn release(&mut self) {
        if self.source.is_some() {
            for hash in self.order.drain(..) {
                self.held.remove(&hash);
            }
        }
    }

    /// Whether bodies are read back from a store.
    pub fn has_source(&self) -> bool {
        self.source.is_some()
    }

    /// Forgets a body (a pruned side block).
    pub fn remove(&mut self, hash: &BlockHash) {
        self.held.remove(hash);
    }

    /// A body, from memory or the store.
    pub fn get(&self, hash: &BlockHash) -> Option<Arc<Block>> {
        if let Some(b) = self.held.get(hash) {
            return Some(b.clone());
        }
        self.source.as_ref()?.read_block(hash).ok().flatten()
    }

    /// Bodies held in memory.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}
