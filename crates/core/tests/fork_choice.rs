//! Fork choice and reorganisation against a simple model, with random block trees arriving
//! in random order.
//!
//! The model: the best block is the one with the most cumulative work among those inserted
//! (every block has the same target here, so the most work is the greatest height), ties
//! going to the block inserted first; the best chain is the path from genesis to it.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chainsim_core::chain::{InsertError, validate_block};
use chainsim_core::{BlockTree, ChainParams, Node, NodeConfig, TipChange};
use chainsim_primitives::{Block, BlockHash, Transaction, Txid};
use proptest::prelude::*;
use proptest::sample::Index;
use support::{T0, addr, child, params, submit_block, submit_mined, submit_tx};

/// A pool of transactions blocks draw from, so that the same transaction can sit on two
/// competing branches.
fn pool_tx(i: usize) -> Transaction {
    Transaction::new(format!("payer{i}"), "payee", 1 + i as u64, T0 + i as u64)
}
const POOL: usize = 8;

/// One generated tree: `parents[k]` is the parent of block `k + 1` (0 is genesis),
/// `masks[k]` picks which pool transactions block `k + 1` tries to carry.
#[derive(Debug, Clone)]
struct Shape {
    parents: Vec<usize>,
    masks: Vec<u8>,
    arrival: Vec<usize>,
}

fn shape(max_blocks: usize) -> impl Strategy<Value = Shape> {
    (1..=max_blocks).prop_flat_map(|n| {
        (
            proptest::collection::vec(any::<Index>(), n),
            proptest::collection::vec(any::<u8>(), n),
            Just((1..=n).collect::<Vec<_>>()).prop_shuffle(),
        )
            .prop_map(|(idx, masks, arrival)| Shape {
                // Block k (1-based) extends one of the k blocks built before it.
                parents: idx.iter().enumerate().map(|(k, i)| i.index(k + 1)).collect(),
                masks,
                arrival,
            })
    })
}

/// The blocks of a shape, mined. Index 0 is genesis. A block carries the pool
/// transactions its mask picks that none of its ancestors carries (a transaction is
/// mined at most once on any chain, as block templates guarantee).
struct Built {
    blocks: Vec<Arc<Block>>,
    hashes: Vec<BlockHash>,
    parent: Vec<usize>,
    height: Vec<u64>,
}

fn build(p: &ChainParams, s: &Shape) -> Built {
    let genesis = p.genesis().clone();
    let mut built = Built {
        hashes: vec![genesis.compute_hash()],
        blocks: vec![genesis],
        parent: vec![0],
        height: vec![0],
    };
    let mut carried: Vec<BTreeSet<usize>> = vec![BTreeSet::new()];
    for (k, (&par, &mask)) in s.parents.iter().zip(&s.masks).enumerate() {
        let mut on_chain = carried[par].clone();
        let mut txs = Vec::new();
        for i in 0..POOL {
            if mask & (1 << i) != 0 && on_chain.insert(i) {
                txs.push(pool_tx(i));
            }
        }
        let parent_block = &built.blocks[par];
        // Distinct times and miners make siblings distinct blocks.
        let ts = parent_block.header.timestamp + 1 + k as u64;
        let block = child(p, parent_block, &format!("m{k}"), ts, txs);
        built.hashes.push(block.compute_hash());
        built.blocks.push(Arc::new(block));
        built.parent.push(par);
        built.height.push(built.height[par] + 1);
        carried.push(on_chain);
    }
    built
}

/// The fork-choice model.
struct Model {
    /// Inserted block indices, in insertion order.
    inserted: Vec<usize>,
}

impl Model {
    fn best(&self, b: &Built) -> usize {
        let mut best = 0;
        for &i in &self.inserted {
            // Strictly more work to win: ties stay with the first inserted.
            if b.height[i] > b.height[best] {
                best = i;
            }
        }
        best
    }

    fn path(&self, b: &Built) -> Vec<usize> {
        let mut path = vec![self.best(b)];
        while *path.last().unwrap() != 0 {
            path.push(b.parent[*path.last().unwrap()]);
        }
        path.reverse();
        path
    }
}

/// Delivers blocks in the shape's arrival order, holding back a block until its parent is
/// in, and calls `insert` for each block in the order it actually goes in.
fn deliver(s: &Shape, b: &Built, mut insert: impl FnMut(usize)) {
    let mut inserted: HashSet<usize> = HashSet::from([0]);
    let mut waiting: HashMap<usize, Vec<usize>> = HashMap::new();
    for &k in &s.arrival {
        if !inserted.contains(&b.parent[k]) {
            waiting.entry(b.parent[k]).or_default().push(k);
            continue;
        }
        let mut ready = vec![k];
        while let Some(r) = ready.pop() {
            insert(r);
            inserted.insert(r);
            if let Some(children) = waiting.remove(&r) {
                // The first to have arrived goes in first.
                ready.extend(children.into_iter().rev());
            }
        }
    }
    assert!(waiting.is_empty());
    assert_eq!(inserted.len(), b.blocks.len());
}

/// Applies a tip change to the previous best chain: disconnected blocks must be its tail,
/// old tip first; connected blocks are appended lowest first.
fn apply(prev: &[BlockHash], change: &TipChange) -> Vec<BlockHash> {
    let mut chain = prev.to_vec();
    for h in &change.disconnected {
        assert_eq!(
            chain.pop().as_ref(),
            Some(h),
            "disconnected blocks are the old tail, tip first"
        );
    }
    chain.extend(change.connected.iter().copied());
    chain
}

fn check_tree(tree: &BlockTree, model: &Model, b: &Built) -> Result<(), TestCaseError> {
    let path = model.path(b);
    let best = *path.last().unwrap();
    prop_assert_eq!(tree.tip().hash, b.hashes[best]);
    prop_assert_eq!(tree.height(), b.height[best]);
    let expected: Vec<BlockHash> = path.iter().map(|&i| b.hashes[i]).collect();
    prop_assert_eq!(tree.active_hashes(), expected.as_slice());
    for &i in model.inserted.iter().chain(&[0]) {
        prop_assert_eq!(
            tree.is_active(&b.hashes[i]),
            path.contains(&i),
            "is_active of block {}",
            i
        );
        prop_assert!(tree.contains(&b.hashes[i]));
    }
    // Where each transaction of the model's best chain is, and nothing else.
    let mut located: HashMap<Txid, (BlockHash, u32)> = HashMap::new();
    for &i in &path {
        for (pos, txid) in b.blocks[i].compute_txids().into_iter().enumerate() {
            located.insert(txid, (b.hashes[i], pos as u32));
        }
    }
    let mut all_txids: Vec<Txid> = (0..POOL).map(|i| pool_tx(i).compute_txid()).collect();
    for blk in &b.blocks {
        all_txids.extend(blk.compute_txids());
    }
    for txid in all_txids {
        let got = tree.find_tx(&txid).map(|(e, pos)| (e.hash, pos));
        prop_assert_eq!(got, located.get(&txid).copied(), "find_tx {:?}", txid);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The block tree against the model, after every insert.
    #[test]
    fn block_tree_matches_model(s in shape(60)) {
        let p = params();
        let b = build(&p, &s);
        let mut tree = BlockTree::new(p.genesis().clone(), 1_000);
        let mut model = Model { inserted: Vec::new() };
        let mut failure = None;
        deliver(&s, &b, |k| {
            if failure.is_some() {
                return;
            }
            let before = tree.active_hashes().to_vec();
            let parent = tree.get(&b.hashes[b.parent[k]]).unwrap().parent_info();
            let checked = validate_block(&p, b.blocks[k].clone(), &parent, None).unwrap();
            let (change, pruned) = tree.insert(&checked).unwrap();
            model.inserted.push(k);
            assert!(pruned.is_empty(), "nothing to prune below the bound");
            // The change turns the old best chain into the new one, exactly.
            assert_eq!(apply(&before, &change), tree.active_hashes());
            assert_eq!(change.is_unchanged(), before.last() == tree.active_hashes().last());
            // Inserting the same block again is refused and changes nothing.
            assert_eq!(tree.insert(&checked).unwrap_err(), InsertError::Duplicate(b.hashes[k]));
            if let Err(e) = check_tree(&tree, &model, &b) {
                failure = Some(e);
            }
            // Asked by announcement (hash and parent), the tree answers as by hash alone,
            // for every block of the shape, taken or not.
            for j in 0..b.blocks.len() {
                let (hash, parent) = (b.hashes[j], b.blocks[j].header.prev_hash);
                assert_eq!(tree.contains_child(&hash, &parent), tree.contains(&hash), "block {j}");
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        prop_assert_eq!(tree.len(), b.blocks.len());
        prop_assert_eq!(tree.side_count(), b.blocks.len() - tree.active_hashes().len());
    }

    /// Through the whole node: transactions submitted to the mempool at random moments
    /// while a random tree of blocks carrying them arrives in random order. Every
    /// transaction the node ever took (submitted, or mined in a block that was once on
    /// the best chain) is, after every step, in the best chain or in the mempool, never
    /// both; and the tip follows the model.
    #[test]
    fn node_loses_no_transaction(s in shape(40), submit_at in proptest::collection::vec(any::<Index>(), POOL)) {
        let p = params();
        let b = build(&p, &s);
        let mut node = Node::new(p.clone(), NodeConfig::new(addr(0), "me"));
        let now = T0 + 10 * 60 * 1000;
        // Pool transaction i is submitted just before the `submit_at[i]`-th block insert.
        let steps = s.arrival.len();
        let mut submit_before: Vec<Vec<usize>> = vec![Vec::new(); steps + 1];
        for (i, at) in submit_at.iter().enumerate() {
            submit_before[at.index(steps + 1)].push(i);
        }
        let mut tracked: BTreeSet<Txid> = BTreeSet::new();
        let mut model = Model { inserted: Vec::new() };
        let mut step = 0;
        let mut failure: Option<TestCaseError> = None;
        let check = |node: &Node, tracked: &BTreeSet<Txid>, model: &Model| -> Result<(), TestCaseError> {
            prop_assert_eq!(node.tree().tip().hash, b.hashes[model.best(&b)]);
            for txid in tracked {
                let in_chain = node.tree().find_tx(txid).is_some();
                let in_pool = node.mempool().contains(txid);
                prop_assert!(in_chain != in_pool, "tx {:?}: in chain {}, in mempool {}", txid, in_chain, in_pool);
            }
            // And the mempool holds nothing that is mined already.
            for (txid, _) in node.mempool().iter_oldest() {
                prop_assert!(node.tree().find_tx(txid).is_none());
            }
            Ok(())
        };
        let submit = |node: &mut Node, tracked: &mut BTreeSet<Txid>, i: usize| {
            let txid = pool_tx(i).compute_txid();
            // New unless it is pending or mined on the best chain already.
            let expected_new = !node.mempool().contains(&txid) && node.tree().find_tx(&txid).is_none();
            let outcome = submit_tx(node, pool_tx(i), now).unwrap();
            assert_eq!(outcome.is_new, expected_new);
            tracked.insert(outcome.txid);
        };
        deliver(&s, &b, |k| {
            if failure.is_some() {
                return;
            }
            for &i in &submit_before[step] {
                submit(&mut node, &mut tracked, i);
            }
            step += 1;
            let outcome = submit_block(&mut node, b.blocks[k].as_ref().clone(), now).unwrap();
            model.inserted.push(k);
            for h in &outcome.change.connected {
                let i = b.hashes.iter().position(|x| x == h).unwrap();
                tracked.extend(b.blocks[i].compute_txids().into_iter().skip(1));
            }
            while node.poll_output().is_some() {}
            if let Err(e) = check(&node, &tracked, &model) {
                failure = Some(e);
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        for &i in &submit_before[steps] {
            submit(&mut node, &mut tracked, i);
        }
        check(&node, &tracked, &model)?;
        // A template built now carries exactly the mempool, and mining it empties it.
        let mut template = node.block_template(support::at(now));
        prop_assert_eq!(template.transactions.len(), node.mempool().len() + 1);
        support::solve(&p, &mut template);
        submit_mined(&mut node, template, now).unwrap();
        prop_assert!(node.mempool().is_empty());
        for txid in &tracked {
            prop_assert!(node.tree().find_tx(txid).is_some());
        }
    }
}

/// Validates `blk` against its parent in `tree` and inserts it: how the best chain changed,
/// and the blocks the tree dropped to stay within its bounds.
fn insert(p: &ChainParams, tree: &mut BlockTree, blk: &Block) -> (TipChange, Vec<BlockHash>) {
    let parent = tree.get(&blk.header.prev_hash).unwrap().parent_info();
    tree.insert(&validate_block(p, Arc::new(blk.clone()), &parent, None).unwrap())
        .unwrap()
}

/// A side block dropped to keep the tree within its bound is gone at once, even when it
/// is the block taken last (the tree answers the newest blocks from a short list of its
/// own, which must forget it too).
#[test]
fn a_side_block_dropped_right_after_it_came_is_no_longer_known() {
    let p = params();
    let g = p.genesis().as_ref().clone();
    let mut tree = BlockTree::new(p.genesis().clone(), 1);
    let mut ins = |blk: &Block| {
        let pruned = insert(&p, &mut tree, blk).1;
        (pruned, tree.contains(&blk.compute_hash()))
    };
    let (a, b, c) = (
        child(&p, &g, "a", T0, vec![]),
        child(&p, &g, "b", T0 + 1, vec![]),
        child(&p, &g, "c", T0 + 2, vec![]),
    );
    assert_eq!(ins(&a), (vec![], true));
    assert_eq!(ins(&b), (vec![], true), "one side block fits");
    // Two do not: the tree drops side blocks down to nine tenths of its bound (none here),
    // the one just taken among them.
    let (pruned, known) = ins(&c);
    assert_eq!(pruned.len(), 2);
    assert!(pruned.contains(&c.compute_hash()));
    assert!(!known, "the block just taken was dropped");
    assert!(pruned.iter().all(|h| !tree.contains(h)));
    assert!(tree.contains(&a.compute_hash()));
}

/// Children dropped from a recent block are counted out, and a block announced with its
/// parent is found exactly when the tree has it.
#[test]
fn a_recent_block_losing_side_children_still_answers_for_its_kept_child() {
    let p = params();
    let g = p.genesis().as_ref().clone();
    let a = child(&p, &g, "a", T0, vec![]);
    let (a2, b, c) = (
        child(&p, &a, "a", T0 + 1, vec![]),
        child(&p, &a, "b", T0 + 2, vec![]),
        child(&p, &a, "c", T0 + 3, vec![]),
    );
    let unknown = child(&p, &a, "d", T0 + 4, vec![]);
    let mut tree = BlockTree::new(p.genesis().clone(), 1);
    for blk in [&a, &a2, &b, &c] {
        insert(&p, &mut tree, blk);
    }
    let (ha, ask) = (a.compute_hash(), |t: &BlockTree, blk: &Block| {
        t.contains_child(&blk.compute_hash(), &blk.header.prev_hash)
    });
    assert!(ask(&tree, &a2), "the kept child of a");
    assert!(!ask(&tree, &b) && !ask(&tree, &c), "the side children were dropped");
    assert!(!ask(&tree, &unknown));
    assert_eq!(ask(&tree, &a2), tree.contains(&a2.compute_hash()));
    assert!(tree.contains_child(&ha, &g.compute_hash()));
}

/// Equal work: the first-seen branch keeps the tip; one more block on the other side
/// switches, and the change lists both sides exactly.
#[test]
fn tie_keeps_first_seen_then_heavier_branch_wins() {
    let p = params();
    let g = p.genesis().as_ref().clone();
    let a1 = child(&p, &g, "a", T0, vec![]);
    let b1 = child(&p, &g, "b", T0 + 1, vec![]);
    let b2 = child(&p, &b1, "b", T0 + 2, vec![]);
    let mut tree = BlockTree::new(p.genesis().clone(), 1_000);
    let ins = |tree: &mut BlockTree, blk: &Block| insert(&p, tree, blk).0;
    let c = ins(&mut tree, &a1);
    assert_eq!(c.connected, vec![a1.compute_hash()]);
    assert!(!c.is_reorg());
    let c = ins(&mut tree, &b1);
    assert!(c.is_unchanged(), "a tie does not move the tip");
    assert_eq!(tree.tip().hash, a1.compute_hash());
    let c = ins(&mut tree, &b2);
    assert!(c.is_reorg());
    assert_eq!(c.disconnected, vec![a1.compute_hash()]);
    assert_eq!(c.connected, vec![b1.compute_hash(), b2.compute_hash()]);
    assert_eq!(tree.side_count(), 1);
    // The locator of a short chain lists every block back to genesis.
    assert_eq!(
        tree.locator(),
        vec![b2.compute_hash(), b1.compute_hash(), p.genesis_hash()]
    );
    assert_eq!(
        tree.find_fork(&[a1.compute_hash(), b1.compute_hash()]).unwrap().hash,
        b1.compute_hash()
    );
}
