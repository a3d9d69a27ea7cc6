//! Block bodies, kept out of the node's memory where a store can give them back.
//!
//! With a [`BlockSource`] (the live node's database) a body stays in memory only until the
//! driver reports that the store has it (`Input::Committed`), and at most the last
//! [`KEEP_RECENT`] in any case; the others are read on demand. Without one (tests and the
//! in-memory test network, where nodes in one process share each block through its `Arc`)
//! every body is kept. The simulator gives all its nodes one shared store in memory, so a
//! body is held once for the whole network.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chainsim_primitives::{Block, BlockHash};

use crate::keyed_hash::{KeyedHash, KeyedMap};
use crate::store::BlockSource;

/// Bodies kept in memory besides the store: more than one catch-up batch (500 blocks), so
/// that every block accepted since the last commit is still here.
pub const KEEP_RECENT: usize = 1_024;

/// Where bodies come from.
pub struct Bodies {
    source: Option<Arc<dyn BlockSource>>,
    /// Keyed like the tree's entries: a body goes in and out once per block a node takes,
    /// and the standard hasher read all 32 bytes of its hash each time.
    held: KeyedMap<BlockHash, Arc<Block>>,
    order: VecDeque<BlockHash>,
    /// Reads the store failed (a damaged file): counted, so that metrics can show them.
    read_errors: AtomicU64,
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
            held: KeyedMap::default(),
            order: VecDeque::new(),
            read_errors: AtomicU64::new(0),
        }
    }

    /// Hashes with `keyed` from now on (the bodies held are placed again).
    pub fn rekey(&mut self, keyed: KeyedHash) {
        let mut held = KeyedMap::with_capacity_and_hasher(self.held.len(), keyed);
        held.extend(self.held.drain());
        self.held = held;
    }

    /// Keeps a body (the most recent ones only, when a store holds the rest); hands each
    /// one let go of to `released` (see [`Bodies::release`]).
    pub fn insert(&mut self, hash: BlockHash, block: Arc<Block>, mut released: impl FnMut(BlockHash, Arc<Block>)) {
        if self.held.insert(hash, block).is_some() || self.source.is_none() {
            return;
        }
        self.order.push_back(hash);
        while self.order.len() > KEEP_RECENT {
            if let Some(old) = self.order.pop_front()
                && let Some(body) = self.held.remove(&old)
            {
                released(old, body);
            }
        }
    }

    /// Keeps a body for good (genesis, which no store holds).
    pub fn pin(&mut self, hash: BlockHash, block: Arc<Block>) {
        self.held.insert(hash, block);
    }

    /// Drops the bodies held only until the store had them: everything drained so far is
    /// committed (genesis, pinned, stays). Each one let go of is handed to `released`, for
    /// whoever else holds it to decide whether to keep it.
    pub fn release(&mut self, mut released: impl FnMut(BlockHash, Arc<Block>)) {
        if self.source.is_some() {
            // Taken out and put back, so that `held` can be changed while it is walked.
            let mut order = std::mem::take(&mut self.order);
            for hash in order.drain(..) {
                if let Some(body) = self.held.remove(&hash) {
                    released(hash, body);
                }
            }
            self.order = order;
        }
    }

    /// Whether a body let go of may still be held elsewhere for good: kept all in memory
    /// without a store, or held by the store itself (see [`BlockSource::shares_bodies`]).
    pub fn shared(&self) -> bool {
        self.source.as_ref().is_none_or(|s| s.shares_bodies())
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
        match self.source.as_ref()?.read_block(hash) {
            Ok(block) => block,
            Err(_) => {
                self.read_errors.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Reads of the store that failed so far.
    pub fn read_errors(&self) -> u64 {
        self.read_errors.load(Ordering::Relaxed)
    }

    /// Bodies held in memory.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report
mod tests {
    use super::*;
    use crate::store::ReadError;

    /// A store whose every read fails, as a damaged file would.
    struct Broken;

    impl BlockSource for Broken {
        fn read_block(&self, _: &BlockHash) -> Result<Option<Arc<Block>>, ReadError> {
            Err("damaged page".into())
        }
    }

    #[test]
    fn failed_reads_are_missing_bodies_and_counted() {
        let genesis = Arc::new(chainsim_primitives::genesis_block(
            chainsim_primitives::CompactTarget::from_leading_zero_bits(8),
        ));
        let hash = genesis.compute_hash();
        let mut bodies = Bodies::new(Some(Arc::new(Broken)));
        bodies.insert(hash, genesis, |_, _| {});
        assert!(bodies.get(&hash).is_some(), "held until committed");
        let mut released = Vec::new();
        bodies.release(|h, _| released.push(h));
        assert_eq!(released, [hash], "a body let go of is handed back");
        assert!(bodies.get(&hash).is_none());
        assert!(bodies.get(&hash).is_none());
        assert_eq!(bodies.read_errors(), 2);
    }

    #[test]
    fn rekeyed_bodies_are_still_found() {
        let genesis = Arc::new(chainsim_primitives::genesis_block(
            chainsim_primitives::CompactTarget::from_leading_zero_bits(8),
        ));
        let hash = genesis.compute_hash();
        let mut bodies = Bodies::new(None);
        bodies.pin(hash, genesis);
        bodies.rekey(KeyedHash::new(0x5eed));
        assert!(bodies.get(&hash).is_some());
        bodies.remove(&hash);
        assert!(bodies.get(&hash).is_none());
    }
}
