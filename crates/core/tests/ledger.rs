//! The accounts ledger through a node: each rule broken alone, at the mempool and in
//! blocks; conflicting transfers and reorganisations; and properties over random chains
//! (balances never negative, the supply always genesis funds plus rewards).
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use chainsim_core::chain::ValidationError;
use chainsim_core::node::{BlockRejected, TxRejected};
use chainsim_core::{ChainParams, LedgerError, Node, NodeConfig};
use chainsim_primitives::keys::{DEMO_BALANCE, DEMO_NAMES, demo_key};
use chainsim_primitives::{Address, Block, SecretKey, Transaction};
use proptest::prelude::*;
use support::{T0, addr, child, submit_block, submit_tx};

fn params() -> Arc<ChainParams> {
    Arc::new(ChainParams::testnet_accounts())
}

fn key(name: &str) -> SecretKey {
    demo_key(name).unwrap()
}

fn address(name: &str) -> Address {
    key(name).address()
}

/// The miner: an address that holds nothing at genesis.
fn miner() -> String {
    SecretKey::from_seed([9; 32]).address().to_text()
}

fn node() -> Node {
    Node::new(params(), NodeConfig::new(addr(0), miner()))
}

/// `from` pays `amount` to `to` as its `nonce`-th transfer.
fn pay(from: &str, to: &str, amount: u64, nonce: u64) -> Transaction {
    Transaction::signed(&key(from), &address(to), amount, nonce, T0 + nonce)
}

fn balance(node: &Node, name: &str) -> u64 {
    node.tree()
        .ledger()
        .unwrap()
        .get(&address(name))
        .unwrap_or_default()
        .balance
}

fn tip_block(node: &Node) -> Block {
    node.tree().block(&node.tree().tip().hash).unwrap().as_ref().clone()
}

/// A mined child of the node's tip carrying `txs`.
fn next_block(node: &Node, txs: Vec<Transaction>) -> Block {
    let tip = tip_block(node);
    child(node.params(), &tip, &miner(), tip.header.timestamp.max(T0) + 1, txs)
}

fn refused_tx(node: &mut Node, tx: Transaction) -> LedgerError {
    match submit_tx(node, tx, T0) {
        Err(TxRejected::Ledger(e)) => e,
        other => panic!("expected a ledger refusal, got {other:?}"),
    }
}

fn refused_block(node: &mut Node, block: Block) -> (usize, LedgerError) {
    match submit_block(node, block, T0 + 10_000) {
        Err(BlockRejected::Invalid(ValidationError::Ledger { index, error })) => (index, error),
        other => panic!("expected a ledger refusal, got {other:?}"),
    }
}

#[test]
fn genesis_funds_the_demo_accounts() {
    let n = node();
    for name in DEMO_NAMES {
        assert_eq!(balance(&n, name), DEMO_BALANCE, "{name}");
    }
    assert_eq!(n.tree().ledger().unwrap().supply(), 10 * DEMO_BALANCE);
}

#[test]
fn a_transfer_moves_funds_and_the_reward_pays_the_miner() {
    let mut n = node();
    submit_tx(&mut n, pay("alice", "bob", 10, 0), T0).unwrap();
    submit_tx(&mut n, pay("alice", "carol", 5, 1), T0).unwrap();
    let template = n.block_template(support::at(T0 + 1));
    assert_eq!(template.transactions.len(), 3);
    let block = next_block(&n, template.transactions[1..].to_vec());
    submit_block(&mut n, block, T0 + 10_000).unwrap();
    assert_eq!(balance(&n, "alice"), DEMO_BALANCE - 15);
    assert_eq!(balance(&n, "bob"), DEMO_BALANCE + 10);
    assert_eq!(balance(&n, "carol"), DEMO_BALANCE + 5);
    let ledger = n.tree().ledger().unwrap();
    let paid = ledger.get(&Address::parse(&miner()).unwrap()).unwrap();
    assert_eq!(paid.balance, n.params().reward);
    assert_eq!(ledger.get(&address("alice")).unwrap().nonce, 2);
    assert_eq!(ledger.supply(), 10 * DEMO_BALANCE + n.params().reward);
    assert!(n.mempool().is_empty());
}

#[test]
fn mempool_rules_each_alone() {
    let mut n = node();
    // bad-signature: a changed amount under alice's signature.
    let mut forged = pay("alice", "bob", 10, 0);
    forged.amount = 11;
    assert_eq!(refused_tx(&mut n, forged).rule(), "bad-signature");
    // unknown-account: a key that never received anything.
    let stranger = SecretKey::from_seed([5; 32]);
    let tx = Transaction::signed(&stranger, &address("bob"), 1, 0, T0);
    assert_eq!(refused_tx(&mut n, tx).rule(), "unknown-account");
    // insufficient-funds.
    assert_eq!(
        refused_tx(&mut n, pay("alice", "bob", DEMO_BALANCE + 1, 0)).rule(),
        "insufficient-funds"
    );
    // bad-nonce: skipping ahead.
    assert_eq!(refused_tx(&mut n, pay("alice", "bob", 1, 1)).rule(), "bad-nonce");
    // conflict-in-mempool: the first seen wins, the second names it.
    let first = submit_tx(&mut n, pay("alice", "bob", 1, 0), T0).unwrap().txid;
    match refused_tx(&mut n, pay("alice", "carol", 1, 0)) {
        e @ LedgerError::ConflictInMempool { existing, .. } => {
            assert_eq!(existing, first);
            assert_eq!(e.rule(), "conflict-in-mempool");
        }
        e => panic!("{e:?}"),
    }
    // Pending spends count: alice has 999 left to promise.
    assert_eq!(
        refused_tx(&mut n, pay("alice", "bob", DEMO_BALANCE, 1)).rule(),
        "insufficient-funds"
    );
    // wrong-ledger: an unsigned transfer on an accounts network.
    assert_eq!(
        refused_tx(&mut n, Transaction::new("alice", "bob", 1, T0)).rule(),
        "wrong-ledger"
    );
    // nonce-conflict-chain: mine alice's transfer, then reuse its nonce.
    let block = next_block(&n, vec![pay("alice", "bob", 1, 0)]);
    submit_block(&mut n, block, T0 + 10_000).unwrap();
    assert_eq!(
        refused_tx(&mut n, pay("alice", "dave", 2, 0)).rule(),
        "nonce-conflict-chain"
    );
}

#[test]
fn block_rules_each_alone() {
    let mut n = node();
    let mut forged = pay("alice", "bob", 10, 0);
    forged.amount = 11;
    let cases: Vec<(Vec<Transaction>, &str)> = vec![
        (vec![forged], "bad-signature"),
        (
            vec![Transaction::signed(
                &SecretKey::from_seed([5; 32]),
                &address("bob"),
                1,
                0,
                T0,
            )],
            "unknown-account",
        ),
        (vec![pay("alice", "bob", DEMO_BALANCE + 1, 0)], "insufficient-funds"),
        (vec![pay("alice", "bob", 1, 1)], "bad-nonce"),
        (
            vec![pay("alice", "bob", 1, 0), pay("alice", "carol", 1, 0)],
            "conflict-in-block",
        ),
        (vec![Transaction::new("alice", "bob", 1, T0)], "wrong-ledger"),
    ];
    for (txs, rule) in cases {
        let count = txs.len();
        let block = next_block(&n, txs);
        let (index, error) = refused_block(&mut n, block);
        assert_eq!(error.rule(), rule, "{error}");
        assert_eq!(index, count, "the last transaction breaks it");
    }
    // bad-address: a reward paid to a name.
    let tip = tip_block(&n);
    let block = child(n.params(), &tip, "not-an-address", T0 + 1, vec![]);
    assert_eq!(
        refused_block(&mut n, block),
        (0, LedgerError::BadAddress("not-an-address".into()))
    );
    // nonce-conflict-chain: a nonce confirmed in an earlier block.
    let block = next_block(&n, vec![pay("alice", "bob", 1, 0)]);
    submit_block(&mut n, block, T0 + 10_000).unwrap();
    let block = next_block(&n, vec![pay("alice", "carol", 1, 0)]);
    let (_, error) = refused_block(&mut n, block);
    assert_eq!(error.rule(), "nonce-conflict-chain");
}

#[test]
fn overflow_is_refused() {
    // A view on a ledger where bob is close to the top: any credit overflows.
    let p = params();
    let genesis = p.genesis().as_ref().clone();
    let mut rich = genesis.clone();
    rich.transactions[1].amount = u64::MAX - DEMO_BALANCE;
    let ledger = chainsim_core::Ledger::from_genesis(&genesis).unwrap();
    let mut view = chainsim_core::ledger::View::new(&ledger);
    let reward = Transaction::coinbase(address("bob").to_text(), u64::MAX, T0);
    assert_eq!(view.apply_tx(&reward), Err(LedgerError::Overflow));
    assert_eq!(LedgerError::Overflow.rule(), "overflow");
    assert_eq!(
        chainsim_core::Ledger::from_genesis(&rich).unwrap_err(),
        LedgerError::Overflow
    );
}

#[test]
fn a_reorganisation_confirming_the_other_transfer_evicts_the_loser() {
    let mut n = node();
    let genesis = tip_block(&n);
    let to_bob = pay("alice", "bob", 7, 0);
    let to_carol = pay("alice", "carol", 9, 0);
    // Our branch: bob's transfer pending, then mined in a block.
    submit_tx(&mut n, to_bob.clone(), T0).unwrap();
    let a1 = next_block(&n, vec![to_bob.clone()]);
    submit_block(&mut n, a1, T0 + 10_000).unwrap();
    // A pending follow-up of alice, valid on our branch.
    submit_tx(&mut n, pay("alice", "dave", 1, 1), T0).unwrap();
    // The other side confirmed carol's transfer and is longer.
    let m = miner();
    let b1 = child(n.params(), &genesis, &m, T0 + 5, vec![to_carol.clone()]);
    let b2 = child(n.params(), &b1, &m, T0 + 6, vec![]);
    submit_block(&mut n, b1, T0 + 10_000).unwrap();
    let outcome = submit_block(&mut n, b2, T0 + 10_000).unwrap();
    assert!(outcome.change.is_reorg());
    assert_eq!(balance(&n, "carol"), DEMO_BALANCE + 9);
    assert_eq!(balance(&n, "bob"), DEMO_BALANCE);
    // Bob's transfer came back from the dropped block and conflicts: gone. The follow-up
    // with nonce 1 is valid again on top of carol's transfer, so it stays.
    assert!(!n.mempool().contains(&to_bob.compute_txid()));
    assert_eq!(n.mempool().len(), 1);
    assert_eq!(refused_tx(&mut n, to_bob).rule(), "nonce-conflict-chain");
}

#[test]
fn open_networks_refuse_signed_transfers() {
    let mut n = Node::new(Arc::new(ChainParams::testnet()), NodeConfig::new(addr(0), "miner"));
    assert_eq!(refused_tx(&mut n, pay("alice", "bob", 1, 0)).rule(), "wrong-ledger");
    assert!(n.tree().ledger().is_none());
}

/// One step of a random history.
#[derive(Debug, Clone)]
enum Step {
    /// A block on the tip with up to 4 random transfers (some invalid, dropped when building).
    Extend(Vec<(usize, usize, u64)>),
    /// A competing branch forked `depth` blocks below the tip, one block longer.
    Fork(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => proptest::collection::vec((0usize..10, 0usize..10, 0u64..600), 0..4).prop_map(Step::Extend),
        1 => (1usize..4).prop_map(Step::Fork),
    ]
}

/// The transfers of `wanted` that apply in order on the ledger at `parent`.
fn valid_transfers(
    n: &Node,
    parent: &chainsim_primitives::BlockHash,
    wanted: &[(usize, usize, u64)],
) -> Vec<Transaction> {
    let mut view = n.tree().ledger_at(parent).unwrap();
    let mut out = Vec::new();
    for &(from, to, amount) in wanted {
        let from_addr = address(DEMO_NAMES[from]);
        let nonce = view.get(&from_addr).unwrap_or_default().nonce;
        let tx = Transaction::signed(
            &key(DEMO_NAMES[from]),
            &address(DEMO_NAMES[to]),
            amount.max(1),
            nonce,
            T0,
        );
        if view.apply_tx(&tx).is_ok() {
            out.push(tx);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn supply_is_conserved_across_blocks_and_reorgs(steps in proptest::collection::vec(step(), 1..12)) {
        let mut n = node();
        let mut time = T0;
        for s in steps {
            time += 10;
            let tip = tip_block(&n);
            match s {
                Step::Extend(wanted) => {
                    let txs = valid_transfers(&n, &tip.compute_hash(), &wanted);
                    let block = child(n.params(), &tip, &miner(), time, txs);
                    submit_block(&mut n, block, time + 10_000).unwrap();
                }
                Step::Fork(depth) => {
                    let height = n.tree().height().saturating_sub(depth as u64);
                    let base_hash = n.tree().at_height(height).unwrap().hash;
                    let mut parent = n.tree().block(&base_hash).unwrap().as_ref().clone();
                    // depth + 1 blocks: heavier than the blocks it replaces.
                    for i in 0..=(n.tree().height() - height) {
                        time += 1;
                        let wanted = [(i as usize % 10, (i as usize + 3) % 10, 100)];
                        let txs = valid_transfers(&n, &parent.compute_hash(), &wanted);
                        let block = child(n.params(), &parent, &miner(), time, txs);
                        submit_block(&mut n, block.clone(), time + 10_000).unwrap();
                        parent = block;
                    }
                }
            }
            let ledger = n.tree().ledger().unwrap();
            let rewards = n.params().reward * n.tree().height();
            prop_assert_eq!(ledger.supply(), 10 * DEMO_BALANCE + rewards);
            let held: u64 = ledger.accounts().map(|(_, a)| a.balance).sum();
            prop_assert_eq!(held, ledger.supply(), "balances add up to the supply");
            // The ledger kept along the way equals one replayed from genesis.
            let mut replay = chainsim_core::Ledger::from_genesis(n.params().genesis()).unwrap();
            for hash in &n.tree().active_hashes()[1..] {
                let block = n.tree().block(hash).unwrap();
                let mut view = chainsim_core::ledger::View::new(&replay);
                view.apply_block(&block).unwrap();
                let changes = view.into_changes();
                replay.commit(changes);
            }
            for (a, acc) in ledger.accounts() {
                prop_assert_eq!(replay.get(a), Some(*acc));
            }
            prop_assert_eq!(replay.accounts().count(), ledger.accounts().count());
        }
    }
}
