//! The one block store all simulated nodes share.
//!
//! Every node of a run holds the same blocks, so the simulator keeps each body once, here,
//! and hands every node's core a reader of it (the core's [`BlockSource`], as a live node
//! gets one of its database). A node puts the blocks it accepts (the first put of a block
//! stores it, later ones find it there) and is told at once that its ops are committed, so
//! its tree releases the bodies it held until then, as a live node's does.
//!
//! Deletes are ignored: a side block one node pruned may still be held by another, and a
//! run's blocks are few next to what the nodes would hold without sharing.

use std::ops::ControlFlow;
use std::sync::Arc;

use chainsim_core::store::{BlockMap, BlockSource, ChainStore, StoreOp, StoredMeta, StoredState};
use chainsim_primitives::{Block, BlockHash};

/// The shared store: every node's reader sees every block put by any node (clones share it).
#[derive(Debug, Default, Clone)]
pub struct SharedBlocks(BlockMap);

impl SharedBlocks {
    /// Stores `block` under `hash` unless it is there already.
    pub fn put(&self, hash: BlockHash, block: &Arc<Block>) {
        self.0.put(hash, block);
    }

    /// Blocks stored.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no block is stored.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// As a [`ChainStore`], only so that nodes can be opened on it ([`chainsim_core::Node::open`]):
/// a fresh run's store is empty, and blocks come in through [`SharedBlocks::put`].
impl ChainStore for SharedBlocks {
    type Error = std::convert::Infallible;

    fn commit(&mut self, ops: &[StoreOp]) -> Result<(), Self::Error> {
        for op in ops {
            if let StoreOp::PutBlock { hash, block, .. } = op {
                self.put(*hash, block);
            }
        }
        Ok(())
    }

    fn load(&self) -> Result<StoredState, Self::Error> {
        Ok(StoredState::default())
    }

    fn load_meta(&self) -> Result<StoredMeta, Self::Error> {
        Ok(StoredMeta::default())
    }

    fn for_each_block(&self, _: &mut dyn FnMut(BlockHash, Arc<Block>) -> ControlFlow<()>) -> Result<(), Self::Error> {
        // Nodes are opened before anything is mined: there is nothing to replay.
        Ok(())
    }

    fn reader(&self) -> Arc<dyn BlockSource> {
        Arc::new(self.0.clone())
    }
}
