//! Blocks whose parent is unknown, held until the parent arrives (bounded: the lowest go
//! first, since the highest are the likeliest to matter).

use std::collections::BTreeMap;
use std::sync::Arc;

use chainsim_primitives::{Block, BlockHash};

use crate::peers::PeerId;

/// The orphan pool.
#[derive(Debug)]
pub struct Orphans {
    max: usize,
    blocks: BTreeMap<BlockHash, (Arc<Block>, Option<PeerId>)>,
}

impl Orphans {
    /// A pool holding at most `max` blocks.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            blocks: BTreeMap::new(),
        }
    }
    /// Number held.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }
    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
    /// Whether `hash` is held.
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.blocks.contains_key(hash)
    }
    /// Holds a block, dropping the lowest one when full (ties by hash: deterministic).
    pub fn insert(&mut self, hash: BlockHash, block: Arc<Block>, from: Option<PeerId>) {
        if self.blocks.len() >= self.max
            && let Some(victim) = self
                .blocks
                .iter()
                .min_by_key(|(h, (b, _))| (b.header.height, **h))
                .map(|(h, _)| *h)
        {
            self.blocks.remove(&victim);
        }
        self.blocks.insert(hash, (block, from));
    }
    /// Takes the blocks waiting for `parent`, in hash order (which of two equal-work
    /// siblings connects first decides the tip, so the order must not depend on memory).
    pub fn take_children(&mut self, parent: &BlockHash) -> Vec<(BlockHash, Arc<Block>, Option<PeerId>)> {
        let children: Vec<BlockHash> = self
            .blocks
            .iter()
            .filter(|(_, (b, _))| b.header.prev_hash == *parent)
            .map(|(h, _)| *h)
            .collect();
        children
            .into_iter()
            .filter_map(|h| self.blocks.remove(&h).map(|(b, f)| (h, b, f)))
            .collect()
    }
}
