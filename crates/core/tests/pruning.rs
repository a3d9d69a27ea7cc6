//! A pruning block tree ([`BlockTree::keep_entries`]) against one keeping everything: the
//! same answers about every best-chain block, however deep; reorganisations within the
//! depth as before; forks deeper refused.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use chainsim_core::chain::validate_in_chain;
use chainsim_core::store::{ChainStore, MemoryStore, StoreOp};
use chainsim_core::sync::serve_blocks;
use chainsim_core::{BlockTree, ChainParams, ValidationError};
use chainsim_primitives::{Block, BlockHash, Transaction};
use proptest::prelude::*;
use support::{T0, child, params};

/// A tree on `p`'s genesis, pruning below `depth`, reading bodies from `store` if given.
fn tree(p: &ChainParams, depth: Option<u64>, store: Option<&MemoryStore>) -> BlockTree {
    let mut tree = BlockTree::with_source(p.genesis().clone(), 1_000, store.map(|s| s.reader()));
    tree.keep_entries(depth);
    tree
}

/// Validates and inserts `block`, as a node does, also into `store` (then the tree's
/// memory is released, as a committed node's is).
fn add(p: &ChainParams, tree: &mut BlockTree, block: &Arc<Block>, store: Option<&mut MemoryStore>) {
    let checked = validate_in_chain(p, block.clone(), tree, None).unwrap();
    tree.insert(&checked).unwrap();
    if let Some(store) = store {
        let put = StoreOp::PutBlock {
            hash: block.compute_hash(),
            block: block.clone(),
            chain_work: Default::default(),
        };
        store.commit(&[put]).unwrap();
        tree.release_bodies();
    }
}

/// A chain of `len` blocks on genesis; block `h` pays `miner{h}` and, every third one,
/// carries a transaction.
fn chain(p: &ChainParams, from: &Arc<Block>, len: u64, miner: &str) -> Vec<Arc<Block>> {
    let mut out: Vec<Arc<Block>> = Vec::new();
    for i in 0..len {
        let parent = out.last().unwrap_or(from);
        let height = parent.header.height + 1;
        let txs = if height.is_multiple_of(3) {
            vec![Transaction::new(
                format!("{miner}-payer{height}"),
                "payee",
                1,
                T0 + height,
            )]
        } else {
            Vec::new()
        };
        let ts = parent.header.timestamp + 1 + i;
        out.push(Arc::new(child(p, parent, &format!("{miner}{height}"), ts, txs)));
    }
    out
}

/// Every lookup of a best-chain block, as one value to compare.
fn answers(tree: &BlockTree, blocks: &[Arc<Block>]) -> Vec<String> {
    let mut out = vec![format!(
        "{:?} {} {:?}",
        tree.locator(),
        tree.height(),
        tree.active_hashes()
    )];
    for b in blocks {
        let hash = b.compute_hash();
        let h = b.header.height;
        let entry = tree
            .get(&hash)
            .map(|e| (e.hash, e.height(), e.chain_work, *e.header(), e.tx_count));
        let at = tree.at_height(h).map(|e| (e.hash, e.chain_work));
        // Coinbases aside: a pruning tree does not index them (none can be submitted).
        let txs = b.compute_txids();
        let found: Vec<_> = txs
            .iter()
            .skip(usize::from(h > 0))
            .map(|t| tree.find_tx(t).map(|(e, i)| (e.hash, i)))
            .collect();
        // A peer whose locator names only genesis and this block, as a syncing one would.
        let locator = [hash, tree.active_hashes()[0]];
        let served = serve_blocks(tree, &locator, 3);
        let fork = tree.find_fork(&locator).map(|e| e.hash);
        assert_eq!(
            tree.contains_header(&hash, &b.header),
            tree.contains(&hash),
            "a block's header answers as its hash does"
        );
        out.push(format!(
            "{h} {} {} {entry:?} {at:?} {found:?} {served:?} {fork:?} {:?}",
            tree.contains(&hash),
            tree.is_active(&hash),
            tree.block(&hash).map(|b| b.compute_hash()),
        ));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// However deep and with or without a store, a pruned tree answers every question about
    /// a best-chain block as a tree that keeps everything.
    #[test]
    fn a_pruned_tree_answers_as_an_unpruned_one(len in 1u64..300, depth in 1u64..40, forks in proptest::collection::vec(0u64..300, 0..4), stored: bool) {
        let p = params();
        let main = chain(&p, p.genesis(), len, "m");
        let mut store = MemoryStore::default();
        let mut full = tree(&p, None, None);
        let mut pruned = tree(&p, Some(depth), stored.then_some(&store));
        for (i, b) in main.iter().enumerate() {
            add(&p, &mut full, b, None);
            add(&p, &mut pruned, b, stored.then_some(&mut store));
            // Short losing branches now and then, at the tip, where they are allowed.
            if forks.contains(&(i as u64)) {
                let side = chain(&p, b, 1, "s");
                add(&p, &mut full, &side[0], None);
                add(&p, &mut pruned, &side[0], stored.then_some(&mut store));
            }
        }
        let mut all = vec![p.genesis().clone()];
        all.extend(main.iter().cloned());
        // Pruning counts from the tip before each block, so the last insert prunes only
        // once the chain is two blocks past the depth.
        if len > depth + 2 {
            prop_assert!(pruned.entries_held() < full.entries_held(), "pruned");
        }
        let (want, got) = (answers(&full, &all), answers(&pruned, &all));
        prop_assert_eq!(got, want);
    }
}

#[test]
fn a_pruning_tree_finds_mined_transactions_but_not_coinbases() {
    let p = params();
    let main = chain(&p, p.genesis(), 12, "m");
    let (mut full, mut pruned) = (tree(&p, None, None), tree(&p, Some(4), None));
    for b in &main {
        add(&p, &mut full, b, None);
        add(&p, &mut pruned, b, None);
    }
    let with_transfer = &main[2]; // height 3
    let [coinbase, transfer] = with_transfer.compute_txids()[..] else {
        panic!("height 3 carries a coinbase and one transfer");
    };
    let hash = with_transfer.compute_hash();
    assert_eq!(pruned.find_tx(&transfer).map(|(e, i)| (e.hash, i)), Some((hash, 1)));
    assert_eq!(full.find_tx(&coinbase).map(|(e, i)| (e.hash, i)), Some((hash, 0)));
    assert!(pruned.find_tx(&coinbase).is_none());
}

/// A best chain of 30 blocks in a tree keeping full entries 10 deep.
fn thirty_blocks_kept_ten_deep(p: &ChainParams) -> (Vec<Arc<Block>>, BlockTree) {
    let main = chain(p, p.genesis(), 30, "m");
    let mut t = tree(p, Some(10), None);
    for b in &main {
        add(p, &mut t, b, None);
    }
    (main, t)
}

#[test]
fn a_reorganisation_within_the_depth_goes_through() {
    let p = params();
    let (main, mut t) = thirty_blocks_kept_ten_deep(&p);
    // Forks at 25, five below the tip, and overtakes it.
    let side = chain(&p, &main[24], 7, "s");
    for b in &side {
        add(&p, &mut t, b, None);
    }
    assert_eq!(t.tip().hash, side[6].compute_hash());
    assert_eq!(t.height(), 32);
    assert!(t.is_active(&main[24].compute_hash()));
    assert!(!t.is_active(&main[29].compute_hash()));
}

#[test]
fn a_fork_deeper_than_the_depth_is_refused() {
    let p = params();
    let (main, mut t) = thirty_blocks_kept_ten_deep(&p);
    let side = chain(&p, &main[9], 1, "s");
    let err = validate_in_chain(&p, side[0].clone(), &t, None).unwrap_err();
    assert_eq!(
        err,
        ValidationError::ForkTooDeep {
            fork_height: 10,
            depth: 10
        }
    );
    assert_eq!(err.rule(), "fork-too-deep");
    // Right at the depth it is still taken.
    let side = chain(&p, &main[19], 1, "s");
    add(&p, &mut t, &side[0], None);
    assert!(t.contains(&side[0].compute_hash()));
}

#[test]
fn side_branches_forking_below_the_depth_are_pruned_and_reported() {
    let p = params();
    let main = chain(&p, p.genesis(), 5, "m");
    let mut t = tree(&p, Some(3), None);
    for b in &main {
        add(&p, &mut t, b, None);
    }
    let side = chain(&p, &main[3], 1, "s");
    add(&p, &mut t, &side[0], None);
    assert_eq!(t.side_count(), 1);
    let mut gone: Vec<BlockHash> = Vec::new();
    for b in chain(&p, &main[4], 5, "m") {
        let checked = validate_in_chain(&p, b, &t, None).unwrap();
        gone.extend(t.insert(&checked).unwrap().1);
    }
    assert_eq!(gone, vec![side[0].compute_hash()]);
    assert_eq!(t.side_count(), 0);
    assert!(!t.contains(&side[0].compute_hash()));
}
