//! Each consensus rule broken alone: for every `ValidationError` variant a valid block is
//! changed in exactly one respect (then its Merkle root and nonce are fixed again so that
//! nothing else breaks) and validation must name exactly that rule.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use chainsim_core::ChainParams;
use chainsim_core::chain::{
    HashedBlock, ParentInfo, ValidationError, check_standalone, check_standalone_hashed, validate_block,
    validate_hashed_block,
};
use chainsim_primitives::{Block, BlockHash, CompactTarget, MerkleRoot, Transaction, TxError};
use support::{T0, child, fix_merkle, params, seal, solve, tx};

/// Local clock used for every validation here.
const NOW: u64 = T0;

/// The genesis block, its parent info, and a valid child at time `NOW` carrying two
/// transactions.
fn setup(p: &ChainParams) -> (ParentInfo, Block) {
    let genesis = p.genesis().as_ref().clone();
    let parent = ParentInfo {
        hash: genesis.compute_hash(),
        height: 0,
        timestamp: genesis.header.timestamp,
    };
    let block = child(p, &genesis, "miner", NOW, vec![tx(1), tx(2)]);
    (parent, block)
}

fn validate(p: &ChainParams, block: Block, parent: &ParentInfo) -> Result<(), ValidationError> {
    validate_block(p, Arc::new(block), parent, Some(NOW)).map(|_| ())
}

/// Applies `change` to the valid block, re-seals it (Merkle root and nonce), and checks
/// that validation fails with exactly `expected`, whose rule name is `rule`.
fn breaks(p: &ChainParams, change: impl FnOnce(&mut Block), expected: ValidationError, rule: &str) {
    let (parent, mut block) = setup(p);
    change(&mut block);
    seal(p, &mut block);
    let err = validate(p, block, &parent).unwrap_err();
    assert_eq!(err, expected);
    assert_eq!(err.rule(), rule, "{err}");
}

/// Sets the block time and the coinbase time together (they must match).
fn set_time(block: &mut Block, ts: u64) {
    block.header.timestamp = ts;
    block.transactions[0].timestamp = ts;
}

#[test]
fn the_valid_block_passes() {
    let p = params();
    let (parent, block) = setup(&p);
    let hash = block.compute_hash();
    let checked = validate_block(&p, Arc::new(block.clone()), &parent, Some(NOW)).unwrap();
    assert_eq!(checked.hash(), hash);
    assert_eq!(checked.txids().as_ref(), block.compute_txids().as_slice());
    assert_eq!(checked.work(), p.bits.work());
    // Blocks reloaded from our own store skip only the clock rule.
    assert!(validate_block(&p, Arc::new(block), &parent, None).is_ok());
}

#[test]
fn too_many_txs() {
    // A network allowing exactly the valid block's three transactions.
    let mut p = ChainParams::testnet();
    p.max_block_txs = 3;
    let (parent, block) = setup(&p);
    assert_eq!(validate(&p, block, &parent), Ok(()));
    breaks(
        &p,
        |b| b.transactions.push(tx(3)),
        ValidationError::TooManyTxs { count: 4, max: 3 },
        "block-tx-count",
    );
}

#[test]
fn too_large() {
    // A network whose byte limit is exactly the valid block's size.
    let mut p = ChainParams::testnet();
    let (parent, block) = setup(&p);
    let size = block.encoded_len();
    p.max_block_bytes = size;
    assert_eq!(validate(&p, block, &parent), Ok(()));
    // One more byte in a name, same number of transactions.
    breaks(
        &p,
        |b| b.transactions[1].recipient.push('x'),
        ValidationError::TooLarge {
            size: size + 1,
            max: size,
        },
        "block-size",
    );
}

#[test]
fn unknown_version() {
    breaks(
        &params(),
        |b| b.header.version = 2,
        ValidationError::UnknownVersion(2),
        "header-version",
    );
}

#[test]
fn bad_prev_hash() {
    let p = params();
    let expected = p.genesis_hash();
    let other = BlockHash([7; 32]);
    breaks(
        &p,
        |b| b.header.prev_hash = other,
        ValidationError::BadPrevHash { expected, got: other },
        "prev-hash",
    );
}

#[test]
fn bad_height() {
    let p = params();
    breaks(
        &p,
        |b| b.header.height = 2,
        ValidationError::BadHeight { expected: 1, got: 2 },
        "height",
    );
    breaks(
        &p,
        |b| b.header.height = 0,
        ValidationError::BadHeight { expected: 1, got: 0 },
        "height",
    );
}

#[test]
fn wrong_target() {
    let p = params();
    // An easier target than the network's: the cheap way to cheat. The nonce still meets
    // the network's target, so only the bits rule is broken.
    let easy = CompactTarget::from_leading_zero_bits(4);
    breaks(
        &p,
        |b| b.header.bits = easy,
        ValidationError::WrongTarget {
            expected: p.bits.0,
            got: easy.0,
        },
        "target-bits",
    );
}

#[test]
fn target_not_met() {
    let p = params();
    let (parent, mut block) = setup(&p);
    // The first nonce whose hash misses the target (about 255 in 256 do).
    let target = p.bits.to_target();
    block.header.nonce = (0..)
        .find(|n| {
            let mut h = block.header;
            h.nonce = *n;
            !target.is_met_by(&h.compute_hash())
        })
        .unwrap();
    let hash = block.compute_hash();
    let hashed = HashedBlock::new(Arc::new(block.clone()));
    let err = validate(&p, block.clone(), &parent).unwrap_err();
    assert_eq!(err, ValidationError::TargetNotMet(hash));
    assert_eq!(err.rule(), "proof-of-work");
    // Hashed once up front, the block fails the same way at each step that checks it.
    assert_eq!(check_standalone(&p, &block), Err(err.clone()));
    assert_eq!(check_standalone_hashed(&p, &hashed), Err(err.clone()));
    assert_eq!(
        validate_hashed_block(&p, hashed, &parent, Some(NOW)).map(|_| ()),
        Err(err)
    );
}

#[test]
fn a_block_hashed_once_validates_as_one_hashed_at_each_step() {
    let p = params();
    let (parent, block) = setup(&p);
    let hashed = HashedBlock::new(Arc::new(block.clone()));
    assert_eq!(hashed.hash(), block.compute_hash());
    let once = validate_hashed_block(&p, hashed, &parent, Some(NOW)).unwrap();
    let each = validate_block(&p, Arc::new(block), &parent, Some(NOW)).unwrap();
    assert_eq!(
        (once.hash(), once.txids(), once.work()),
        (each.hash(), each.txids(), each.work())
    );
}

#[test]
fn time_too_old_boundary() {
    let p = params();
    let (parent, mut block) = setup(&p);
    let parent_ts = parent.timestamp;
    // One millisecond after the parent passes...
    set_time(&mut block, parent_ts + 1);
    seal(&p, &mut block);
    assert_eq!(validate(&p, block, &parent), Ok(()));
    // ...the parent's own time fails, and so does anything earlier.
    breaks(
        &p,
        |b| set_time(b, parent_ts),
        ValidationError::TimeTooOld {
            got: parent_ts,
            parent: parent_ts,
        },
        "time-too-old",
    );
    breaks(
        &p,
        |b| set_time(b, parent_ts - 1),
        ValidationError::TimeTooOld {
            got: parent_ts - 1,
            parent: parent_ts,
        },
        "time-too-old",
    );
}

#[test]
fn time_too_new_boundary_is_exactly_now_plus_max_future() {
    let p = params();
    let limit = NOW + p.max_future_ms;
    let (parent, mut block) = setup(&p);
    set_time(&mut block, limit);
    seal(&p, &mut block);
    assert_eq!(
        validate(&p, block.clone(), &parent),
        Ok(()),
        "exactly at the limit passes"
    );
    // Without a clock (reloading our own store) the rule is skipped.
    set_time(&mut block, limit + 1);
    seal(&p, &mut block);
    assert!(validate_block(&p, Arc::new(block), &parent, None).is_ok());
    breaks(
        &p,
        |b| set_time(b, limit + 1),
        ValidationError::TimeTooNew {
            got: limit + 1,
            now: NOW,
        },
        "time-too-new",
    );
}

#[test]
fn missing_coinbase() {
    let p = params();
    // No transactions at all.
    breaks(
        &p,
        |b| b.transactions.clear(),
        ValidationError::MissingCoinbase,
        "coinbase-missing",
    );
    // No coinbase.
    breaks(
        &p,
        |b| drop(b.transactions.remove(0)),
        ValidationError::MissingCoinbase,
        "coinbase-missing",
    );
    // The coinbase is there, but not first.
    breaks(
        &p,
        |b| b.transactions.swap(0, 1),
        ValidationError::MissingCoinbase,
        "coinbase-missing",
    );
}

#[test]
fn bad_reward() {
    let p = params();
    let reward = p.reward;
    breaks(
        &p,
        |b| b.transactions[0].amount = reward + 1,
        ValidationError::BadReward {
            expected: reward,
            got: reward + 1,
        },
        "coinbase-reward",
    );
    breaks(
        &p,
        |b| b.transactions[0].amount = reward - 1,
        ValidationError::BadReward {
            expected: reward,
            got: reward - 1,
        },
        "coinbase-reward",
    );
}

#[test]
fn bad_coinbase_time() {
    breaks(
        &params(),
        |b| b.transactions[0].timestamp = NOW - 1,
        ValidationError::BadCoinbaseTime {
            expected: NOW,
            got: NOW - 1,
        },
        "coinbase-time",
    );
}

#[test]
fn extra_coinbase() {
    let p = params();
    let reward = p.reward;
    breaks(
        &p,
        |b| b.transactions.push(Transaction::coinbase("thief", reward, NOW)),
        ValidationError::ExtraCoinbase(3),
        "coinbase-extra",
    );
}

#[test]
fn malformed_transactions() {
    let p = params();
    type Change = Box<dyn FnOnce(&mut Block)>;
    let cases: Vec<(Change, usize, TxError)> = vec![
        (Box::new(|b| b.transactions[1].amount = 0), 1, TxError::ZeroAmount),
        (
            Box::new(|b| b.transactions[2].recipient.clear()),
            2,
            TxError::EmptyName("recipient"),
        ),
        (
            Box::new(|b| b.transactions[1].sender.clear()),
            1,
            TxError::EmptyName("sender"),
        ),
        (
            Box::new(|b| b.transactions[2].sender = "x".repeat(65)),
            2,
            TxError::NameTooLong("sender"),
        ),
        (
            Box::new(|b| b.transactions[1].recipient = "bo\u{7}b".into()),
            1,
            TxError::ControlCharacter("recipient"),
        ),
        (
            Box::new(|b| b.transactions[1].version = 9),
            1,
            TxError::UnknownVersion(9),
        ),
        // The coinbase must be well formed too: it pays someone.
        (
            Box::new(|b| b.transactions[0].recipient.clear()),
            0,
            TxError::EmptyName("recipient"),
        ),
    ];
    for (change, index, reason) in cases {
        breaks(
            &p,
            change,
            ValidationError::MalformedTx { index, reason },
            "tx-malformed",
        );
    }
    // A 64-byte name is still fine.
    let (parent, mut block) = setup(&p);
    block.transactions[1].sender = "x".repeat(64);
    seal(&p, &mut block);
    assert_eq!(validate(&p, block, &parent), Ok(()));
}

#[test]
fn duplicate_tx() {
    let dup = tx(1).compute_txid();
    breaks(
        &params(),
        |b| b.transactions.push(tx(1)),
        ValidationError::DuplicateTx(dup),
        "tx-duplicate",
    );
}

#[test]
fn bad_merkle_root() {
    let p = params();
    let (parent, block) = setup(&p);
    // A root that commits to nothing, then a valid nonce for that header.
    let mut b = block.clone();
    b.header.merkle_root = MerkleRoot([9; 32]);
    solve(&p, &mut b);
    let err = validate(&p, b, &parent).unwrap_err();
    assert_eq!(err, ValidationError::BadMerkleRoot);
    assert_eq!(err.rule(), "merkle-root");
    // The transactions swapped after mining: the header commits to the old order.
    let mut b = block.clone();
    b.transactions.swap(1, 2);
    assert_eq!(validate(&p, b.clone(), &parent), Err(ValidationError::BadMerkleRoot));
    // A transaction changed after mining: same thing.
    let mut b2 = block;
    b2.transactions[1].amount += 1;
    assert_eq!(validate(&p, b2, &parent), Err(ValidationError::BadMerkleRoot));
    // Re-committing fixes it (and proves nothing else was broken).
    fix_merkle(&mut b);
    solve(&p, &mut b);
    assert_eq!(validate(&p, b, &parent), Ok(()));
}

/// Every variant's rule name, distinct: logs and API errors rely on them.
#[test]
fn rule_names_are_distinct() {
    let h = BlockHash::ZERO;
    let all = [
        ValidationError::TooLarge { size: 0, max: 0 },
        ValidationError::TooManyTxs { count: 0, max: 0 },
        ValidationError::UnknownVersion(0),
        ValidationError::BadPrevHash { expected: h, got: h },
        ValidationError::BadHeight { expected: 0, got: 0 },
        ValidationError::WrongTarget { expected: 0, got: 0 },
        ValidationError::TargetNotMet(h),
        ValidationError::TimeTooOld { got: 0, parent: 0 },
        ValidationError::TimeTooNew { got: 0, now: 0 },
        ValidationError::MissingCoinbase,
        ValidationError::BadReward { expected: 0, got: 0 },
        ValidationError::BadCoinbaseTime { expected: 0, got: 0 },
        ValidationError::ExtraCoinbase(0),
        ValidationError::MalformedTx {
            index: 0,
            reason: TxError::ZeroAmount,
        },
        ValidationError::DuplicateTx(Default::default()),
        ValidationError::BadMerkleRoot,
    ];
    let names: std::collections::HashSet<_> = all.iter().map(ValidationError::rule).collect();
    assert_eq!(names.len(), all.len());
}
