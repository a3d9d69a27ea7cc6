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
    /// With a store, the body kept last, held in place until the next one comes or the
    /// store has it: a node that takes one block between commits (a live node at its usual
    /// pace, every node of a simulation) then touches none of the map's memory, which in a
    /// simulation of thousands of nodes was a few cache misses per block taken.
    newest: Option<(BlockHash, Arc<Block>)>,
    /// Keyed like the tree's entries: a body goes in and out once per block a node takes,
    /// and the standard hasher read all 32 bytes of its hash each time.
    held: KeyedMap<BlockHash, Arc<Block>>,
    /// The bodies in `held` that wait for the store, oldest first (`newest` comes after).
    order: VecDeque<BlockHash>,
    /// Reads the store failed (a damaged file): counted, so that metrics can show them.
    read_errors: AtomicU64,
}

impl std::fmt::Debug for Bodies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bodies")
            .field("held", &self.held())
            .field("has_source", &self.source.is_some())
            .finish()
    }
}

impl Bodies {
    /// Bodies read back from `source`, or all kept in memory when there is none.
    pub fn new(source: Option<Arc<dyn BlockSource>>) -> Self {
        Self {
            source,
            newest: None,
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
        if self.source.is_none() {
            self.held.insert(hash, block);
            return;
        }
        let Some((older, body)) = self.newest.replace((hash, block)) else {
            return;
        };
        if older == hash || self.held.insert(older, body).is_some() {
            return;
        }
        self.order.push_back(older);
        while self.order.len() >= KEEP_RECENT {
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
            if let Some((hash, body)) = self.newest.take() {
                released(hash, body);
            }
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
        if self.newest.as_ref().is_some_and(|(h, _)| h == hash) {
            self.newest = None;
        }
        self.held.remove(hash);
    }

    /// A body, from memory or the store.
    pub fn get(&self, hash: &BlockHash) -> Option<Arc<Block>> {
        if let Some((_, b)) = self.newest.as_ref().filter(|(h, _)| h == hash) {
            return Some(b.clone());
        }
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
        self.held.len() + usize::from(self.newest.is_some())
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

    /// A store that has nothing yet.
    struct Empty;

    impl BlockSource for Empty {
        fn read_block(&self, _: &BlockHash) -> Result<Option<Arc<Block>>, ReadError> {
            Ok(None)
        }
    }

    /// `n` distinct blocks with their hashes.
    fn blocks(n: u64) -> Vec<(BlockHash, Arc<Block>)> {
        let genesis = chainsim_primitives::genesis_block(chainsim_primitives::CompactTarget::from_leading_zero_bits(8));
        (0..n)
            .map(|nonce| {
                let mut block = genesis.clone();
                block.header.nonce = nonce;
                (block.compute_hash(), Arc::new(block))
            })
            .collect()
    }

    #[test]
    fn bodies_wait_for_the_store_in_order_and_within_the_bound() {
        let mut bodies = Bodies::new(Some(Arc::new(Empty)));
        let all = blocks(KEEP_RECENT as u64 + 5);
        let mut released = Vec::new();
        for (hash, block) in &all[..2] {
            bodies.insert(*hash, block.clone(), |h, _| released.push(h));
        }
        assert!(released.is_empty());
        assert_eq!(bodies.held(), 2);
        assert!(
            all[..2].iter().all(|(h, _)| bodies.get(h).is_some()),
            "both held: the newest and the one before"
        );
        bodies.release(|h, _| released.push(h));
        assert_eq!(
            released,
            [all[0].0, all[1].0],
            "let go of oldest first, the newest last"
        );
        assert_eq!(bodies.held(), 0);

        released.clear();
        for (hash, block) in &all {
            bodies.insert(*hash, block.clone(), |h, _| released.push(h));
        }
        assert_eq!(
            bodies.held(),
            KEEP_RECENT,
            "at most KEEP_RECENT wait, the newest among them"
        );
        let oldest: Vec<_> = all[..5].iter().map(|(h, _)| *h).collect();
        assert_eq!(released, oldest, "the five oldest went first");
        assert!(bodies.get(&all[4].0).is_none() && bodies.get(&all[5].0).is_some());

        let newest = all[all.len() - 1].0;
        bodies.remove(&newest);
        assert!(bodies.get(&newest).is_none(), "a removed body is gone, the newest too");
        assert_eq!(bodies.held(), KEEP_RECENT - 1);
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
