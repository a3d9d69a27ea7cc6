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
    /// Most orphans one peer may have held at a time: a quarter of the pool, so that one
    /// sender cannot push out everyone else's.
    pub fn per_peer(&self) -> usize {
        (self.max / 4).max(1)
    }

    /// Holds a block, dropping the lowest one when full, or the sender's own lowest when it
    /// has its share already (ties by hash: deterministic).
    pub fn insert(&mut self, hash: BlockHash, block: Arc<Block>, from: Option<PeerId>) {
        let of_sender = self
            .blocks
            .values()
            .filter(|(_, f)| from.is_some() && *f == from)
            .count();
        if of_sender >= self.per_peer()
            && let Some(victim) = self
                .blocks
                .iter()
                .filter(|(_, (_, f))| *f == from)
                .min_by_key(|(h, (b, _))| (b.header.height, **h))
                .map(|(h, _)| *h)
        {
            self.blocks.remove(&victim);
        }
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
