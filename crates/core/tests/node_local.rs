//! One node driven through its public API, no peers: transactions, mining, reorganisation,
//! and restoring from storage.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use chainsim_core::mempool::MempoolError;
use chainsim_core::{
    BlockRejected, ChainStore, Event, MemoryStore, Node, NodeConfig, Output, RestoreError, StoreOp, TxRejected,
    ValidationError,
};
use chainsim_primitives::{BlockHash, Transaction, TxError, Txid};
use support::{T0, addr, child, params, solve, submit_block, submit_mined, submit_tx, tx};

fn new_node() -> Node {
    Node::new(params(), NodeConfig::new(addr(0), "me"))
}

/// Drains the outputs; also applies the store ops to `store` when given.
fn drain(node: &mut Node, mut store: Option<&mut MemoryStore>) -> Vec<Output> {
    let mut out = Vec::new();
    while let Some(o) = node.poll_output() {
        if let (Output::Store(op), Some(s)) = (&o, store.as_deref_mut()) {
            s.commit(std::slice::from_ref(op)).unwrap();
        }
        out.push(o);
    }
    out
}

fn events(outputs: &[Output]) -> Vec<&Event> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(&**e),
            _ => None,
        })
        .collect()
}

fn has_store(outputs: &[Output], pred: impl Fn(&StoreOp) -> bool) -> bool {
    outputs.iter().any(|o| matches!(o, Output::Store(op) if pred(op)))
}

/// Mines the node's template at `now` and submits it.
fn mine(node: &mut Node, now: u64) -> BlockHash {
    let mut block = node.block_template(support::at(now));
    solve(node.params(), &mut block);
    submit_mined(node, block, now).unwrap().hash
}

#[test]
fn submitted_transaction_is_pooled_stored_and_announced() {
    let mut node = new_node();
    let t = tx(1);
    let txid = t.compute_txid();
    let outcome = submit_tx(&mut node, t.clone(), T0).unwrap();
    assert_eq!(outcome.txid, txid);
    assert!(outcome.is_new);
    assert!(node.mempool().contains(&txid));
    let out = drain(&mut node, None);
    assert!(has_store(
        &out,
        |op| matches!(op, StoreOp::PutTx(id, stored) if *id == txid && **stored == t)
    ));
    assert!(events(&out).iter().any(|e| matches!(e,
        Event::Tx { txid: id, sender, recipient, amount, from_peer: None }
            if *id == txid && *sender == t.sender && *recipient == t.recipient && *amount == t.amount)));
    // No peers: nothing to send.
    assert!(!out.iter().any(|o| matches!(o, Output::Send { .. })));

    // The same transaction again: taken, not new, nothing to do.
    let again = submit_tx(&mut node, t, T0).unwrap();
    assert_eq!(again.txid, txid);
    assert!(!again.is_new);
    assert!(drain(&mut node, None).is_empty());
    assert_eq!(node.mempool().len(), 1);
}

#[test]
fn malformed_transactions_are_refused() {
    let mut node = new_node();
    let ok = tx(1);
    let cases = [
        (
            Transaction {
                amount: 0,
                ..ok.clone()
            },
            TxError::ZeroAmount,
        ),
        (
            Transaction {
                sender: String::new(),
                ..ok.clone()
            },
            TxError::EmptyName("sender"),
        ),
        (
            Transaction {
                recipient: String::new(),
                ..ok.clone()
            },
            TxError::EmptyName("recipient"),
        ),
        (
            Transaction {
                sender: "s".repeat(65),
                ..ok.clone()
            },
            TxError::NameTooLong("sender"),
        ),
        (
            Transaction {
                recipient: "r".repeat(65),
                ..ok.clone()
            },
            TxError::NameTooLong("recipient"),
        ),
        (
            Transaction {
                sender: "0".into(),
                ..ok.clone()
            },
            TxError::ReservedSender,
        ),
        (
            Transaction {
                version: 3,
                ..ok.clone()
            },
            TxError::UnknownVersion(3),
        ),
        // Version 2 is a signed transfer: without its signed part it is not one.
        (
            Transaction {
                version: 2,
                ..ok.clone()
            },
            TxError::SignedPart(2, "need"),
        ),
    ];
    for (t, reason) in cases {
        assert_eq!(submit_tx(&mut node, t, T0), Err(TxRejected::Malformed(reason)));
    }
    assert!(node.mempool().is_empty());
    assert!(drain(&mut node, None).is_empty(), "a refusal leaves no trace");
}

#[test]
fn full_mempool_refuses_new_transactions() {
    let mut config = NodeConfig::new(addr(0), "me");
    config.mempool_capacity = 3;
    let mut node = Node::new(params(), config);
    for i in 0..3 {
        assert!(submit_tx(&mut node, tx(i), T0).unwrap().is_new);
    }
    assert_eq!(
        submit_tx(&mut node, tx(3), T0),
        Err(TxRejected::MempoolFull(MempoolError::Full(3)))
    );
    // A duplicate of a pending one is still fine.
    assert!(!submit_tx(&mut node, tx(0), T0).unwrap().is_new);
    assert_eq!(node.mempool().len(), 3);
    // Mining makes room.
    mine(&mut node, T0);
    assert!(node.mempool().is_empty());
    assert!(submit_tx(&mut node, tx(3), T0).unwrap().is_new);
}

#[test]
fn mining_a_template_confirms_pending_transactions() {
    let mut node = new_node();
    let (a, b) = (tx(1), tx(2));
    submit_tx(&mut node, a.clone(), T0).unwrap();
    submit_tx(&mut node, b.clone(), T0).unwrap();
    drain(&mut node, None);

    let now = T0 + 1_000;
    let mut template = node.block_template(support::at(now));
    // The template: coinbase to our miner at `now`, then the mempool oldest first.
    assert_eq!(template.header.height, 1);
    assert_eq!(template.header.prev_hash, node.params().genesis_hash());
    assert_eq!(template.header.timestamp, now);
    assert_eq!(
        template.transactions[0],
        Transaction::coinbase("me", node.params().reward, now)
    );
    assert_eq!(&template.transactions[1..], &[a.clone(), b.clone()]);
    solve(node.params(), &mut template);
    let outcome = submit_mined(&mut node, template.clone(), now).unwrap();
    let hash = template.compute_hash();
    assert_eq!(outcome.hash, hash);
    assert_eq!(outcome.height, 1);
    assert_eq!(outcome.change.connected, vec![hash]);
    assert!(outcome.change.disconnected.is_empty());

    assert!(node.mempool().is_empty());
    assert_eq!(node.tree().tip().hash, hash);
    let (entry, pos) = node.tree().find_tx(&a.compute_txid()).unwrap();
    assert_eq!((entry.hash, pos), (hash, 1));
    assert_eq!(node.stats().blocks_mined, 1);

    let out = drain(&mut node, None);
    assert!(has_store(
        &out,
        |op| matches!(op, StoreOp::PutBlock { hash: h, .. } if *h == hash)
    ));
    for t in [&a, &b] {
        assert!(has_store(
            &out,
            |op| matches!(op, StoreOp::DeleteTx(id) if *id == t.compute_txid())
        ));
    }
    assert!(has_store(&out, |op| matches!(op, StoreOp::SetTip(h) if *h == hash)));
    let ev = events(&out);
    assert!(ev.iter().any(
        |e| matches!(e, Event::Block { hash: h, height: 1, txs: 3, mined_here: true, from_peer: None } if *h == hash)
    ));
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Tip { height: 1, length: 2, tip, pending: 0 } if *tip == hash))
    );

    // A block template never runs behind its parent's time, whatever the clock says.
    let next = node.block_template(support::at(T0));
    assert_eq!(next.header.timestamp, now + 1);

    // The same block again, or an invalid one, is refused.
    assert_eq!(
        submit_block(&mut node, template, now),
        Err(BlockRejected::Duplicate(hash))
    );
    let mut bad = node.block_template(support::at(now + 1));
    bad.header.nonce = (0..)
        .find(|n| {
            let mut h = bad.header;
            h.nonce = *n;
            !node.params().bits.to_target().is_met_by(&h.compute_hash())
        })
        .unwrap();
    let bad_hash = bad.compute_hash();
    assert!(matches!(
        submit_block(&mut node, bad, now + 1),
        Err(BlockRejected::Invalid(ValidationError::TargetNotMet(_)))
    ));
    let out = drain(&mut node, None);
    assert!(
        events(&out)
            .iter()
            .any(|e| matches!(e, Event::BlockRejected { hash: h, rule: "proof-of-work", .. } if *h == bad_hash))
    );
    assert_eq!(node.tree().tip().hash, hash);
}

#[test]
fn a_block_with_an_unknown_parent_is_refused() {
    let p = params();
    let mut node = Node::new(p.clone(), NodeConfig::new(addr(0), "me"));
    let g = p.genesis().as_ref().clone();
    let b1 = child(&p, &g, "x", T0, vec![]);
    let b2 = child(&p, &b1, "x", T0 + 1, vec![]);
    assert_eq!(
        submit_block(&mut node, b2, T0),
        Err(BlockRejected::UnknownParent(b1.compute_hash()))
    );
    assert_eq!(node.tree().height(), 0);
}

#[test]
fn reorg_returns_the_losing_branch_transactions() {
    let p = params();
    let mut node = Node::new(p.clone(), NodeConfig::new(addr(0), "me"));
    let (a, b, c) = (tx(1), tx(2), tx(3));
    let (ida, idb, idc) = (a.compute_txid(), b.compute_txid(), c.compute_txid());
    submit_tx(&mut node, a.clone(), T0).unwrap();
    submit_tx(&mut node, b.clone(), T0).unwrap();
    // Branch A: our own block with a and b.
    let a1 = mine(&mut node, T0 + 1_000);
    assert!(node.mempool().is_empty());
    drain(&mut node, None);

    // Branch B, built elsewhere: B1 carries a, B2 carries c (never seen here).
    let g = p.genesis().as_ref().clone();
    let b1 = child(&p, &g, "other", T0 + 2_000, vec![a.clone()]);
    let b2 = child(&p, &b1, "other", T0 + 3_000, vec![c.clone()]);
    let (h1, h2) = (b1.compute_hash(), b2.compute_hash());

    // Equal work: the first seen stays best.
    let o = submit_block(&mut node, b1, T0 + 4_000).unwrap();
    assert!(o.change.is_unchanged());
    assert_eq!(node.tree().tip().hash, a1);
    let out = drain(&mut node, None);
    assert!(has_store(
        &out,
        |op| matches!(op, StoreOp::PutBlock { hash, .. } if *hash == h1)
    ));
    assert!(!events(&out).iter().any(|e| matches!(e, Event::Tip { .. })));

    // More work: switch. b comes back (B lacks it); a stays mined (B1 has it); c is mined.
    let o = submit_block(&mut node, b2, T0 + 4_000).unwrap();
    assert_eq!(o.change.disconnected, vec![a1]);
    assert_eq!(o.change.connected, vec![h1, h2]);
    assert_eq!(node.tree().tip().hash, h2);
    assert_eq!(node.mempool().len(), 1);
    assert!(node.mempool().contains(&idb));
    assert_eq!(node.tree().find_tx(&ida).unwrap().0.hash, h1);
    assert_eq!(node.tree().find_tx(&idc).unwrap().0.hash, h2);
    assert_eq!(node.stats().reorgs, 1);
    // Metrics: B1 was stale on arrival, came back; A1 left the best chain.
    assert_eq!(node.metrics().stale_blocks, 1);
    assert_eq!(node.metrics().deepest_reorg, 1);
    assert_eq!(node.metrics().reorg_depth.count, 1);
    assert_eq!(
        node.metrics().propagation_ms.count,
        0,
        "local blocks are not relayed ones"
    );
    let out = drain(&mut node, None);
    let ev = events(&out);
    let reorg = ev.iter().find(|e| matches!(e, Event::Reorg { .. })).unwrap();
    assert_eq!(
        **reorg,
        Event::Reorg {
            fork_height: 0,
            disconnected: vec![a1],
            connected: vec![h1, h2],
            returned: vec![idb],
        }
    );
    assert!(has_store(&out, |op| matches!(op, StoreOp::PutTx(id, _) if *id == idb)));
    assert!(has_store(&out, |op| matches!(op, StoreOp::SetTip(h) if *h == h2)));
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Tip {
            height: 2,
            pending: 1,
            ..
        }
    )));
    // Both connected blocks are announced, none as ours.
    let announced: Vec<BlockHash> = ev
        .iter()
        .filter_map(|e| match e {
            Event::Block {
                hash,
                mined_here: false,
                ..
            } => Some(*hash),
            _ => None,
        })
        .collect();
    assert_eq!(announced, vec![h1, h2]);

    // The returned transaction goes into our next block.
    mine(&mut node, T0 + 5_000);
    assert!(node.mempool().is_empty());
    assert!(node.tree().find_tx(&idb).is_some());
}

/// A node with a few blocks, a side branch and pending transactions, every store output
/// applied to a `MemoryStore`.
fn node_with_history() -> (Node, MemoryStore) {
    let p = params();
    let mut node = Node::new(p.clone(), NodeConfig::new(addr(0), "me"));
    let mut store = MemoryStore::default();
    for i in 0..6 {
        submit_tx(&mut node, tx(i), T0).unwrap();
        mine(&mut node, T0 + 1_000 * (i + 1));
        drain(&mut node, Some(&mut store));
    }
    // A side branch of two blocks off height 3, lighter than the best chain.
    let fork_hash = node.tree().at_height(3).unwrap().hash;
    let fork = node.tree().block(&fork_hash).unwrap().as_ref().clone();
    let s1 = child(&p, &fork, "other", fork.header.timestamp + 10, vec![tx(100)]);
    let s2 = child(&p, &s1, "other", fork.header.timestamp + 20, vec![]);
    submit_block(&mut node, s1, T0 + 10_000).unwrap();
    submit_block(&mut node, s2, T0 + 10_000).unwrap();
    for i in 10..13 {
        submit_tx(&mut node, tx(i), T0).unwrap();
    }
    drain(&mut node, Some(&mut store));
    (node, store)
}

fn pending(node: &Node) -> Vec<Txid> {
    let mut v: Vec<Txid> = node.mempool().iter_oldest().map(|(id, _)| *id).collect();
    v.sort();
    v
}

#[test]
fn restore_rebuilds_the_same_node() {
    let (node, store) = node_with_history();
    let stored = store.load().unwrap();
    assert_eq!(stored.tip, Some(node.tree().tip().hash));
    let (restored, report) = Node::restore(params(), node.config().clone(), stored).unwrap();
    assert_eq!(report.blocks_verified, 8, "six best-chain blocks and two side blocks");
    assert_eq!(report.height, 6);
    assert_eq!(report.tip, node.tree().tip().hash);
    assert_eq!(report.mempool, 3);
    assert_eq!(restored.tree().active_hashes(), node.tree().active_hashes());
    assert_eq!(restored.tree().len(), node.tree().len());
    assert_eq!(pending(&restored), pending(&node));
    // Restoring announces and stores nothing: it is all stored already.
    let mut restored = restored;
    assert!(restored.poll_output().is_none());
}

#[test]
fn restore_accepts_a_store_holding_genesis_too() {
    let (node, store) = node_with_history();
    let mut stored = store.load().unwrap();
    stored.blocks.insert(0, params().genesis().clone());
    let (restored, report) = Node::restore(params(), node.config().clone(), stored).unwrap();
    assert_eq!(report.blocks_verified, 8);
    assert_eq!(restored.tree().tip().hash, node.tree().tip().hash);
}

#[test]
fn restore_refuses_another_networks_chain() {
    // A store whose first block is another network's genesis.
    let other = chainsim_core::ChainParams::default_network();
    let mut stored = chainsim_core::StoredState::default();
    stored.blocks.push(other.genesis().clone());
    let err = Node::restore(params(), NodeConfig::new(addr(0), "me"), stored).unwrap_err();
    assert_eq!(
        err,
        RestoreError::GenesisMismatch {
            stored: other.genesis_hash(),
            expected: params().genesis_hash(),
        }
    );

    // A store whose first block is not genesis and does not build on ours either.
    let (_, store) = node_with_history();
    let mut stored = store.load().unwrap();
    let second = stored.blocks.remove(0);
    let first_hash = stored.blocks[0].compute_hash();
    assert_eq!(stored.blocks[0].header.prev_hash, second.compute_hash());
    let err = Node::restore(params(), NodeConfig::new(addr(0), "me"), stored).unwrap_err();
    assert!(matches!(err, RestoreError::GenesisMismatch { stored, .. } if stored == first_hash));
}

#[test]
fn restore_names_the_rule_a_tampered_block_breaks() {
    let (_, store) = node_with_history();
    let mut stored = store.load().unwrap();
    // Someone edited an amount in the third stored block on disk.
    let mut block = stored.blocks[2].as_ref().clone();
    block.transactions[1].amount += 1000;
    let hash = block.compute_hash();
    stored.blocks[2] = Arc::new(block);
    let err = Node::restore(params(), NodeConfig::new(addr(0), "me"), stored).unwrap_err();
    match &err {
        RestoreError::InvalidBlock { hash: h, height, error } => {
            assert_eq!(*h, hash);
            assert_eq!(*height, 3);
            assert_eq!(*error, ValidationError::BadMerkleRoot);
            assert_eq!(error.rule(), "merkle-root");
        }
        other => panic!("expected InvalidBlock, got {other:?}"),
    }
    assert!(err.to_string().contains("merkle-root"), "{err}");

    // A stored block whose parent was lost.
    let (_, store) = node_with_history();
    let mut stored = store.load().unwrap();
    let gone = stored.blocks.remove(2);
    let orphan = stored.blocks[2].compute_hash();
    assert_eq!(stored.blocks[2].header.prev_hash, gone.compute_hash());
    let err = Node::restore(params(), NodeConfig::new(addr(0), "me"), stored).unwrap_err();
    assert_eq!(err, RestoreError::MissingParent(orphan));
}

/// A transaction mined once cannot be mined again further up the same chain — on the best
/// chain or on a side branch — but may appear on a competing branch that lacks it.
#[test]
fn a_transaction_cannot_be_mined_twice_in_one_chain() {
    let p = params();
    let mut node = new_node();
    let g = p.genesis().as_ref().clone();
    let t = tx(7);
    let b1 = child(&p, &g, "m", T0 + 1_000, vec![t.clone()]);
    submit_block(&mut node, b1.clone(), T0 + 1_000).unwrap();
    // Straight on top of the best chain.
    let b2 = child(&p, &b1, "m", T0 + 2_000, vec![t.clone()]);
    let err = submit_block(&mut node, b2, T0 + 2_000).unwrap_err();
    assert!(
        matches!(&err, BlockRejected::Invalid(ValidationError::AlreadyMined(id)) if *id == t.compute_txid()),
        "{err:?}"
    );
    assert_eq!(
        ValidationError::AlreadyMined(t.compute_txid()).rule(),
        "tx-already-mined"
    );
    // A competing branch from genesis may carry it once, but not twice along that branch.
    let s1 = child(&p, &g, "other", T0 + 1_500, vec![t.clone()]);
    submit_block(&mut node, s1.clone(), T0 + 1_500).unwrap();
    let s2 = child(&p, &s1, "other", T0 + 2_500, vec![t.clone()]);
    assert!(matches!(
        submit_block(&mut node, s2, T0 + 2_500),
        Err(BlockRejected::Invalid(ValidationError::AlreadyMined(_)))
    ));
    assert_eq!(node.tree().tip().hash, b1.compute_hash());
}

/// `Node::open` streams the store through validation and then reads bodies back from it:
/// only the most recent ones stay in memory, and everything that needs an old body (a
/// peer's download, a transaction lookup, a reorganisation returning transactions) still
/// gets it from the store.
#[test]
fn an_opened_node_reads_old_bodies_from_the_store() {
    use chainsim_core::chain::bodies::KEEP_RECENT;
    use chainsim_core::sync::serve_blocks;
    let p = params();
    let mut node = Node::new(p.clone(), NodeConfig::new(addr(0), "me"));
    let mut store = MemoryStore::default();
    let blocks = KEEP_RECENT as u64 + 200;
    for i in 0..blocks {
        submit_tx(&mut node, tx(i), T0).unwrap();
        mine(&mut node, T0 + 1_000 * (i + 1));
        drain(&mut node, Some(&mut store));
    }
    // Room for the long rival branch below while it is still a side branch.
    let mut config = node.config().clone();
    config.max_side_blocks = 2 * blocks as usize;
    let (mut opened, report) = Node::open(p.clone(), config, &store).unwrap().unwrap();
    assert_eq!(report.height, blocks);
    assert_eq!(opened.tree().active_hashes(), node.tree().active_hashes());
    assert!(
        opened.tree().bodies_held() <= KEEP_RECENT + 1,
        "{} bodies held",
        opened.tree().bodies_held()
    );
    // An early block's body and transaction come back from the store.
    let early = tx(3).compute_txid();
    let (entry, pos) = opened.tree().find_tx(&early).unwrap();
    assert_eq!((entry.height(), pos), (4, 1));
    let genesis = p.genesis_hash();
    match serve_blocks(opened.tree(), &[genesis], 10) {
        chainsim_core::Message::Blocks { blocks, .. } => assert_eq!(blocks.len(), 10),
        other => panic!("{other:?}"),
    }
    // A heavier branch from height 1 disconnects every block: all their transactions come
    // back to the mempool, read from the store.
    let base = opened.tree().block(&opened.tree().at_height(1).unwrap().hash).unwrap();
    let mut parent = base.as_ref().clone();
    for i in 0..blocks {
        let b = child(&p, &parent, "rival", parent.header.timestamp + 1, vec![]);
        submit_block(&mut opened, b.clone(), T0 + 2_000 * blocks + i).unwrap();
        drain(&mut opened, Some(&mut store));
        parent = b;
    }
    assert_eq!(opened.tree().height(), blocks + 1);
    assert_eq!(
        opened.mempool().len() as u64,
        blocks - 1,
        "every transaction above height 1 came back"
    );
}

/// The mining schedule speaks through the node's interface: its deadline is the node's
/// `poll_timeout`, and a due timeout puts `StartMining` among the outputs; the same seed
/// gives the same starts; `SetMining` switches it and refuses bad settings.
#[test]
fn auto_mining_starts_through_deadlines_and_outputs() {
    use chainsim_core::{Command, MiningMode, Reply};
    use std::time::Duration;
    let starts = |seed: u64| {
        let mut config = NodeConfig::new(addr(0), "me");
        config.seed = seed;
        config.mining = MiningMode::Auto {
            network_interval: Duration::from_secs(10),
            share: 0.5,
        };
        let mut node = Node::new(params(), config);
        let mut starts = Vec::new();
        let mut now = T0;
        for _ in 0..200 {
            let Some(at) = node.poll_timeout() else { break };
            now = now.max(at.as_millis());
            node.handle_input(support::at(now), chainsim_core::Input::Timeout);
            if drain(&mut node, None).iter().any(|o| matches!(o, Output::StartMining)) {
                starts.push(now);
            }
        }
        (node, starts)
    };
    let (mut node, first) = starts(9);
    assert_eq!(first, starts(9).1);
    assert!(first.len() > 50, "{} starts in 200 wake-ups", first.len());
    let mean = (first[first.len() - 1] - first[0]) as f64 / (first.len() - 1) as f64;
    assert!(
        (10_000.0..40_000.0).contains(&mean),
        "mean gap {mean} ms for an expected 20,000"
    );
    let bad = MiningMode::Auto {
        network_interval: Duration::from_secs(10),
        share: 0.0,
    };
    assert!(matches!(
        node.command(support::at(T0), Command::SetMining(bad)),
        Reply::Refused(_)
    ));
    assert_eq!(
        node.command(support::at(T0), Command::SetMining(MiningMode::Manual)),
        Reply::Done
    );
    assert_eq!(node.poll_timeout(), None, "manual mode wants no wake-up");
}
