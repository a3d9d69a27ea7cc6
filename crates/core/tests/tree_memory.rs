//! What a block tree keeps in memory for its entries' headers: the body itself while
//! something else holds it too (a simulation's shared store), never a body that only the
//! tree would keep alive (a live node's, whose database holds its own copy).
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use chainsim_core::chain::validate_in_chain;
use chainsim_core::store::{BlockSource, ReadError};
use chainsim_core::{BlockTree, ChainParams};
use chainsim_primitives::{Block, BlockHash};
use support::{child, params};

/// A store that keeps copies of its own, as a database does: a read hands out a new body.
#[derive(Default)]
struct Copies(Mutex<HashMap<BlockHash, Block>>);

impl BlockSource for Copies {
    fn read_block(&self, hash: &BlockHash) -> Result<Option<Arc<Block>>, ReadError> {
        Ok(self.0.lock().unwrap().get(hash).cloned().map(Arc::new))
    }
}

/// A store that hands out the very bodies it was given, as the simulator's shared one does.
#[derive(Default)]
struct Shared(Mutex<HashMap<BlockHash, Arc<Block>>>);

impl BlockSource for Shared {
    fn read_block(&self, hash: &BlockHash) -> Result<Option<Arc<Block>>, ReadError> {
        Ok(self.0.lock().unwrap().get(hash).cloned())
    }

    fn shares_bodies(&self) -> bool {
        true
    }
}

/// `len` blocks on genesis.
fn chain(p: &ChainParams, len: u64) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    for i in 0..len {
        let parent = out.last().unwrap_or(p.genesis()).clone();
        out.push(child(
            p,
            &parent,
            &format!("miner{i}"),
            parent.header.timestamp + 1,
            Vec::new(),
        ));
    }
    out
}

/// Validates and inserts `block` into `tree`, lets `store` keep it, and releases the
/// tree's bodies as a node does once its store committed them.
fn add(p: &ChainParams, tree: &mut BlockTree, block: Arc<Block>, store: impl FnOnce(Arc<Block>)) {
    let checked = validate_in_chain(p, block.clone(), tree, None).unwrap();
    tree.insert(&checked).unwrap();
    store(block);
    tree.release_bodies();
}

#[test]
fn a_tree_over_a_database_keeps_no_body_alive_but_every_header() {
    let p = params();
    let copies = Arc::new(Copies::default());
    let mut tree = BlockTree::with_source(p.genesis().clone(), 100, Some(copies.clone()));
    let blocks = chain(&p, 20);
    let mut bodies: Vec<Weak<Block>> = Vec::new();
    for block in &blocks {
        let body = Arc::new(block.clone());
        bodies.push(Arc::downgrade(&body));
        let copies = &copies;
        add(&p, &mut tree, body, |b| {
            copies.0.lock().unwrap().insert(b.compute_hash(), (*b).clone());
        });
    }
    assert!(
        bodies.iter().all(|b| b.upgrade().is_none()),
        "once committed, no body stays in memory for its entry's sake"
    );
    for block in &blocks {
        let entry = tree.get(&block.compute_hash()).unwrap();
        assert_eq!(*entry.header(), block.header, "the entry kept a copy of the header");
        assert_eq!(entry.tx_count as usize, block.transactions.len());
    }
    assert_eq!(tree.height(), 20);
}

#[test]
fn a_tree_over_a_shared_store_reads_its_headers_from_the_shared_bodies() {
    let p = params();
    let shared = Arc::new(Shared::default());
    let mut tree = BlockTree::with_source(p.genesis().clone(), 100, Some(shared.clone()));
    let blocks: Vec<Arc<Block>> = chain(&p, 20).into_iter().map(Arc::new).collect();
    for block in &blocks {
        let shared = &shared;
        add(&p, &mut tree, block.clone(), |b| {
            shared.0.lock().unwrap().insert(b.compute_hash(), b);
        });
    }
    for block in &blocks {
        let entry = tree.get(&block.compute_hash()).unwrap();
        assert!(
            std::ptr::eq(entry.header(), &block.header),
            "no copy of a header whose body someone else holds"
        );
    }
    // When the store lets a body go, the tree's entry is its last holder: it still answers.
    let last = blocks.last().unwrap().compute_hash();
    shared.0.lock().unwrap().clear();
    assert_eq!(tree.get(&last).unwrap().height(), 20);
}

#[test]
fn a_tree_given_room_for_its_blocks_does_not_grow_while_they_come() {
    let p = params();
    let shared = Arc::new(Shared::default());
    let mut tree = BlockTree::with_source(p.genesis().clone(), 100, Some(shared.clone()));
    tree.reserve(50);
    let room = tree.room();
    assert!(room.0 >= 51 && room.1 >= 51, "room for genesis and 50 blocks: {room:?}");
    for block in chain(&p, 50) {
        let shared = &shared;
        add(&p, &mut tree, Arc::new(block), |b| {
            shared.0.lock().unwrap().insert(b.compute_hash(), b);
        });
    }
    assert_eq!(tree.height(), 50);
    assert_eq!(tree.room(), room, "neither the table nor the chain grew");
}

#[test]
fn a_pruning_tree_makes_room_only_for_what_it_keeps() {
    let p = params();
    let mut tree = BlockTree::new(p.genesis().clone(), 100);
    tree.keep_entries(Some(20));
    tree.reserve(1_000_000);
    let (entries, chain) = tree.room();
    // Its depth and one mark's span (the best chain's hashes below are compacted).
    let kept = 20 + chainsim_core::chain::tree::MARK_EVERY as usize;
    assert!(entries >= kept && entries < 2 * kept + 16, "entries: {entries}");
    assert!(chain >= kept && chain < 2 * kept, "chain: {chain}");
}

#[test]
fn a_guess_of_more_blocks_than_any_run_holds_reserves_a_bounded_room() {
    use chainsim_core::chain::tree::MAX_RESERVED_BLOCKS;
    let p = params();
    for keep in [None, Some(u64::MAX)] {
        let mut tree = BlockTree::new(p.genesis().clone(), 100);
        tree.keep_entries(keep);
        tree.reserve(usize::MAX);
        let (entries, chain) = tree.room();
        assert!(
            (MAX_RESERVED_BLOCKS..=2 * MAX_RESERVED_BLOCKS).contains(&entries),
            "{keep:?}: {entries}"
        );
        // The chain holds genesis already, and makes room for that many more.
        assert!(
            (MAX_RESERVED_BLOCKS + 1..=2 * MAX_RESERVED_BLOCKS).contains(&chain),
            "{keep:?}: {chain}"
        );
    }
}
