//! Full validation of a block against its parent: where a block from a peer, the miner or
//! the store becomes a [`CheckedBlock`]. Each rule has its own error variant and a short
//! rule name that logs, API errors and tests use.

use std::collections::HashSet;
use std::sync::Arc;

use chainsim_primitives::header::HEADER_VERSION;
use chainsim_primitives::{Block, BlockHash, Transaction, TxError, Txid, Work, compute_merkle_root};
use thiserror::Error;

use crate::ledger::{LedgerError, LedgerKind, check_kind};
use crate::params::ChainParams;

/// A rule a block breaks.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    /// The encoded block is larger than the limit.
    #[error("block is {size} bytes, more than the limit {max}")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The block has more transactions than the limit.
    #[error("block has {count} transactions, more than the limit {max}")]
    TooManyTxs {
        /// Transactions in the block.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The header version is unknown.
    #[error("unknown header version {0}")]
    UnknownVersion(u32),
    /// The previous-block hash is not the parent's hash.
    #[error("previous hash {got} does not link to the parent {expected}")]
    BadPrevHash {
        /// The parent's hash.
        expected: BlockHash,
        /// What the header says.
        got: BlockHash,
    },
    /// The height is not the parent's plus one.
    #[error("height {got}, expected {expected}")]
    BadHeight {
        /// Parent height + 1.
        expected: u64,
        /// What the header says.
        got: u64,
    },
    /// The header's target is not the network's.
    #[error("target bits {got:08x}, the network requires {expected:08x}")]
    WrongTarget {
        /// The network's bits.
        expected: u32,
        /// The header's bits.
        got: u32,
    },
    /// The header hash does not meet the target.
    #[error("hash {0} does not meet the target")]
    TargetNotMet(BlockHash),
    /// The timestamp is not after the parent's.
    #[error("timestamp {got} is not after the parent's {parent}")]
    TimeTooOld {
        /// The block's timestamp.
        got: u64,
        /// The parent's timestamp.
        parent: u64,
    },
    /// The timestamp is more than the allowed drift ahead of local time.
    #[error("timestamp {got} is more than 2 hours ahead of local time {now}")]
    TimeTooNew {
        /// The block's timestamp.
        got: u64,
        /// Local time.
        now: u64,
    },
    /// The block has no transactions, or the first is not a coinbase.
    #[error("the first transaction must be the coinbase")]
    MissingCoinbase,
    /// The coinbase pays the wrong amount.
    #[error("coinbase pays {got}, the reward is {expected}")]
    BadReward {
        /// The network's reward.
        expected: u64,
        /// What the coinbase pays.
        got: u64,
    },
    /// The coinbase's timestamp is not the block's.
    #[error("coinbase timestamp {got} differs from the block's {expected}")]
    BadCoinbaseTime {
        /// The block timestamp.
        expected: u64,
        /// The coinbase's.
        got: u64,
    },
    /// A transaction other than the first is a coinbase.
    #[error("transaction {0} is a second coinbase")]
    ExtraCoinbase(usize),
    /// A transaction is not well formed.
    #[error("transaction {index} is malformed: {reason}")]
    MalformedTx {
        /// Position in the block.
        index: usize,
        /// What is wrong with it.
        reason: TxError,
    },
    /// Two transactions have the same txid.
    #[error("transaction {0} appears twice")]
    DuplicateTx(Txid),
    /// The Merkle root does not match the transactions.
    #[error("merkle root does not match the transactions")]
    BadMerkleRoot,
    /// A transaction was already mined earlier in this block's chain.
    #[error("transaction {0} is already mined in this chain")]
    AlreadyMined(Txid),
    /// A transaction breaks a rule of the ledger (see [`LedgerError::rule`]).
    #[error("transaction {index}: {error}")]
    Ledger {
        /// Position in the block.
        index: usize,
        /// The broken rule.
        error: LedgerError,
    },
    /// The block forks off the best chain deeper than a pruning node keeps (see
    /// [`super::BlockTree::keep_entries`]): that node can no longer reorganise to it.
    #[error("block forks off the best chain at height {fork_height}, more than {depth} blocks below the tip")]
    ForkTooDeep {
        /// Height of the fork point.
        fork_height: u64,
        /// The depth the node keeps.
        depth: u64,
    },
}

impl ValidationError {
    /// Short, stable name of the broken rule.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "block-size",
            Self::TooManyTxs { .. } => "block-tx-count",
            Self::UnknownVersion(_) => "header-version",
            Self::BadPrevHash { .. } => "prev-hash",
            Self::BadHeight { .. } => "height",
            Self::WrongTarget { .. } => "target-bits",
            Self::TargetNotMet(_) => "proof-of-work",
            Self::TimeTooOld { .. } => "time-too-old",
            Self::TimeTooNew { .. } => "time-too-new",
            Self::MissingCoinbase => "coinbase-missing",
            Self::BadReward { .. } => "coinbase-reward",
            Self::BadCoinbaseTime { .. } => "coinbase-time",
            Self::ExtraCoinbase(_) => "coinbase-extra",
            Self::MalformedTx { .. } => "tx-malformed",
            Self::DuplicateTx(_) => "tx-duplicate",
            Self::BadMerkleRoot => "merkle-root",
            Self::AlreadyMined(_) => "tx-already-mined",
            Self::Ledger { error, .. } => error.rule(),
            Self::ForkTooDeep { .. } => "fork-too-deep",
        }
    }
}

/// What validation needs to know of the parent.
#[derive(Debug, Clone, Copy)]
pub struct ParentInfo {
    /// The parent's hash.
    pub hash: BlockHash,
    /// The parent's height.
    pub height: u64,
    /// The parent's timestamp.
    pub timestamp: u64,
}

/// A block that passed every rule against its parent. Only [`validate_block`] makes one,
/// so holding one proves the block was checked.
#[derive(Debug, Clone)]
pub struct CheckedBlock {
    block: Arc<Block>,
    hash: BlockHash,
    txids: Arc<[Txid]>,
    work: Work,
}

impl CheckedBlock {
    /// The block.
    pub fn block(&self) -> &Arc<Block> {
        &self.block
    }
    /// Its hash.
    pub fn hash(&self) -> BlockHash {
        self.hash
    }
    /// Its txids, in order.
    pub fn txids(&self) -> &Arc<[Txid]> {
        &self.txids
    }
    /// The work its target represents.
    pub fn work(&self) -> Work {
        self.work
    }
}

/// A block and its hash, computed once when it is made: a block arriving is looked up,
/// validated, inserted and relayed by its hash, and hashing it at each step took three
/// SHA-256 runs per block per node.
#[derive(Debug, Clone)]
pub struct HashedBlock {
    block: Arc<Block>,
    hash: BlockHash,
}

impl HashedBlock {
    /// Hashes `block`.
    pub fn new(block: Arc<Block>) -> Self {
        let hash = block.compute_hash();
        Self { block, hash }
    }
    /// `block` with `hash`, which the caller computed from a header equal to `block`'s
    /// (an announcement's, see `Relay::known_header`): the same hash without hashing again.
    pub(crate) fn with_hash_of_equal_header(block: Arc<Block>, hash: BlockHash) -> Self {
        debug_assert_eq!(hash, block.compute_hash(), "a hash taken from another header");
        Self { block, hash }
    }
    /// The block's hash.
    pub fn hash(&self) -> BlockHash {
        self.hash
    }
    /// The block.
    pub fn block(&self) -> &Arc<Block> {
        &self.block
    }
    /// The block, without its hash.
    pub fn into_block(self) -> Arc<Block> {
        self.block
    }
}

/// The network's target and the proof of work of a header alone: what a header
/// announcement is checked against before anything is fetched. Returns the header's hash.
pub fn check_proof_of_work(
    params: &ChainParams,
    h: &chainsim_primitives::Header,
) -> Result<BlockHash, ValidationError> {
    let hash = h.compute_hash();
    check_target(params, h, hash)?;
    Ok(hash)
}

/// That header `h`, whose hash is `hash`, has the network's target and meets it.
fn check_target(params: &ChainParams, h: &chainsim_primitives::Header, hash: BlockHash) -> Result<(), ValidationError> {
    if h.bits != params.bits {
        return Err(ValidationError::WrongTarget {
            expected: params.bits.0,
            got: h.bits.0,
        });
    }
    if !params.bits.to_target().is_met_by(&hash) {
        return Err(ValidationError::TargetNotMet(hash));
    }
    Ok(())
}

/// The rules a block can be checked against without its parent: limits, header version,
/// target and proof of work. Cheap, so run before a block whose parent is unknown is held.
/// Returns the block's hash.
pub fn check_standalone(params: &ChainParams, block: &Block) -> Result<BlockHash, ValidationError> {
    let hash = block.compute_hash();
    check_standalone_with(params, block, hash)?;
    Ok(hash)
}

/// [`check_standalone`] of a block already hashed.
pub fn check_standalone_hashed(params: &ChainParams, hashed: &HashedBlock) -> Result<(), ValidationError> {
    check_standalone_with(params, &hashed.block, hashed.hash)
}

/// [`check_standalone`] of `block`, whose hash is `hash`.
fn check_standalone_with(params: &ChainParams, block: &Block, hash: BlockHash) -> Result<(), ValidationError> {
    let count = block.transactions.len();
    if count > params.max_block_txs {
        return Err(ValidationError::TooManyTxs {
            count,
            max: params.max_block_txs,
        });
    }
    let size = block.encoded_len();
    if size > params.max_block_bytes {
        return Err(ValidationError::TooLarge {
            size,
            max: params.max_block_bytes,
        });
    }
    if block.header.version != HEADER_VERSION {
        return Err(ValidationError::UnknownVersion(block.header.version));
    }
    check_target(params, &block.header, hash)
}

/// Checks `block` against every consensus rule, given its parent and local time in
/// milliseconds (`None` skips the future-time rule, for blocks reloaded from our own store,
/// which were checked against the clock when they arrived).
pub fn validate_block(
    params: &ChainParams,
    block: Arc<Block>,
    parent: &ParentInfo,
    now: Option<u64>,
) -> Result<CheckedBlock, ValidationError> {
    validate_hashed_block(params, HashedBlock::new(block), parent, now)
}

/// [`validate_block`] of a block already hashed.
pub fn validate_hashed_block(
    params: &ChainParams,
    hashed: HashedBlock,
    parent: &ParentInfo,
    now: Option<u64>,
) -> Result<CheckedBlock, ValidationError> {
    check_standalone_hashed(params, &hashed)?;
    let HashedBlock { block, hash } = hashed;
    let h = &block.header;
    if h.prev_hash != parent.hash {
        return Err(ValidationError::BadPrevHash {
            expected: parent.hash,
            got: h.prev_hash,
        });
    }
    if h.height != parent.height + 1 {
        return Err(ValidationError::BadHeight {
            expected: parent.height + 1,
            got: h.height,
        });
    }
    if h.timestamp <= parent.timestamp {
        return Err(ValidationError::TimeTooOld {
            got: h.timestamp,
            parent: parent.timestamp,
        });
    }
    if let Some(now) = now
        && h.timestamp > now.saturating_add(params.max_future_ms)
    {
        return Err(ValidationError::TimeTooNew { got: h.timestamp, now });
    }
    check_transactions(params, &block.transactions, h.timestamp)?;
    // Straight into the list the checked block keeps, without a copy.
    let txids: Arc<[Txid]> = block.transactions.iter().map(Transaction::compute_txid).collect();
    if let Some(txid) = first_duplicate(&txids) {
        return Err(ValidationError::DuplicateTx(txid));
    }
    // With no duplicate txids a mutated tree is impossible, but the flag costs nothing.
    let (root, mutated) = compute_merkle_root(&txids);
    if root != h.merkle_root || mutated {
        return Err(ValidationError::BadMerkleRoot);
    }
    Ok(CheckedBlock {
        block,
        hash,
        txids,
        work: params.bits.work(),
    })
}

/// The first txid in `txids` that an earlier one repeats. A block of a few transactions
/// (one, in a simulation that does not materialise them) is checked pair by pair, without
/// building a set.
fn first_duplicate(txids: &[Txid]) -> Option<Txid> {
    const PAIRWISE_UP_TO: usize = 8;
    if txids.len() <= PAIRWISE_UP_TO {
        return txids
            .iter()
            .enumerate()
            .find(|(i, t)| txids[..*i].contains(t))
            .map(|(_, t)| *t);
    }
    let mut seen = HashSet::with_capacity(txids.len());
    txids.iter().find(|t| !seen.insert(**t)).copied()
}

fn check_transactions(params: &ChainParams, txs: &[Transaction], block_time: u64) -> Result<(), ValidationError> {
    let Some(coinbase) = txs.first().filter(|t| t.is_coinbase()) else {
        return Err(ValidationError::MissingCoinbase);
    };
    coinbase
        .check_well_formed(true)
        .map_err(|reason| ValidationError::MalformedTx { index: 0, reason })?;
    if coinbase.amount != params.reward {
        return Err(ValidationError::BadReward {
            expected: params.reward,
            got: coinbase.amount,
        });
    }
    if coinbase.timestamp != block_time {
        return Err(ValidationError::BadCoinbaseTime {
            expected: block_time,
            got: coinbase.timestamp,
        });
    }
    for (index, tx) in txs.iter().enumerate().skip(1) {
        if tx.is_coinbase() {
            return Err(ValidationError::ExtraCoinbase(index));
        }
        tx.check_well_formed(false)
            .map_err(|reason| ValidationError::MalformedTx { index, reason })?;
        check_kind(params.ledger, tx).map_err(|error| ValidationError::Ledger { index, error })?;
    }
    Ok(())
}

/// Checks the signatures of `block`'s transfers that `known_good` does not vouch for (the
/// mempool's, verified when they arrived): all together in one batch, and one by one only
/// when the batch fails, to name the first bad one.
fn check_signatures(block: &Block, txids: &[Txid], known_good: &dyn Fn(&Txid) -> bool) -> Result<(), ValidationError> {
    let todo: Vec<(usize, &Transaction)> = block
        .transactions
        .iter()
        .enumerate()
        .filter(|(i, tx)| tx.signed.is_some() && !txids.get(*i).is_some_and(known_good))
        .collect();
    let items: Vec<_> = todo
        .iter()
        .filter_map(|(_, tx)| {
            let s = tx.signed.as_ref()?;
            Some((s.public_key, tx.signing_message(), s.signature))
        })
        .collect();
    if items.is_empty() || chainsim_primitives::keys::verify_batch(&items) {
        return Ok(());
    }
    let index = todo
        .iter()
        .find(|(_, tx)| !tx.verify_signature())
        .map_or(0, |(i, _)| *i);
    Err(ValidationError::Ledger {
        index,
        error: LedgerError::BadSignature,
    })
}

/// On an accounts network: the signatures, then every transaction applied in order on the
/// ledger as it stands after the parent.
fn check_ledger(
    tree: &super::BlockTree,
    checked: &CheckedBlock,
    known_good: &dyn Fn(&Txid) -> bool,
) -> Result<(), ValidationError> {
    let block = checked.block();
    check_signatures(block, checked.txids(), known_good)?;
    let unavailable = ValidationError::Ledger {
        index: 0,
        error: LedgerError::Unavailable,
    };
    let mut view = tree.ledger_at(&block.header.prev_hash).ok_or(unavailable)?;
    view.apply_block(block)
        .map_err(|(index, error)| ValidationError::Ledger { index, error })
}

/// Checks `block` against every consensus rule in the chain it extends: the rules of
/// [`validate_block`] against its parent in `tree`, then that none of its transactions was
/// already mined in its own ancestry (`tx-already-mined`). The one place a block from a
/// peer, the miner, a user or the store becomes a [`CheckedBlock`].
pub fn validate_in_chain(
    params: &ChainParams,
    block: Arc<Block>,
    tree: &super::BlockTree,
    now: Option<u64>,
) -> Result<CheckedBlock, ValidationError> {
    validate_in_chain_with(params, block, tree, now, &|_| false)
}

/// [`validate_in_chain`], trusting the signatures of the transactions `known_good` names
/// (the mempool's, verified once when they arrived), and on an accounts network applying
/// the block on its parent's ledger.
pub fn validate_in_chain_with(
    params: &ChainParams,
    block: Arc<Block>,
    tree: &super::BlockTree,
    now: Option<u64>,
    known_good: &dyn Fn(&Txid) -> bool,
) -> Result<CheckedBlock, ValidationError> {
    validate_hashed_in_chain(params, HashedBlock::new(block), tree, now, known_good)
}

/// [`validate_in_chain_with`] of a block already hashed.
pub fn validate_hashed_in_chain(
    params: &ChainParams,
    block: HashedBlock,
    tree: &super::BlockTree,
    now: Option<u64>,
    known_good: &dyn Fn(&Txid) -> bool,
) -> Result<CheckedBlock, ValidationError> {
    let prev = block.block.header.prev_hash;
    if let Some((fork_height, depth)) = tree.fork_too_deep(&prev) {
        return Err(ValidationError::ForkTooDeep { fork_height, depth });
    }
    let parent = match tree.get(&prev) {
        Some(p) => p.parent_info(),
        // No parent in the tree: the linking rule fails against a zero parent.
        None => {
            return Err(ValidationError::BadPrevHash {
                expected: BlockHash::ZERO,
                got: prev,
            });
        }
    };
    let checked = validate_hashed_block(params, block, &parent, now)?;
    // The coinbase is unique per chain by its timestamp; only the others can repeat.
    if let Some(txid) = tree.find_in_ancestry(&prev, &checked.txids()[1..]) {
        return Err(ValidationError::AlreadyMined(txid));
    }
    if params.ledger == LedgerKind::Accounts {
        check_ledger(tree, &checked, known_good)?;
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txid(i: u8) -> Txid {
        Txid([i; 32])
    }

    #[test]
    fn the_first_repeated_txid_is_found_in_short_and_long_lists_alike() {
        for len in [0u8, 1, 2, 8, 9, 40] {
            let unique: Vec<Txid> = (0..len).map(txid).collect();
            assert_eq!(first_duplicate(&unique), None, "{len} distinct txids");
            if len < 2 {
                continue;
            }
            // The second copy of the last txid comes before the second copy of the first.
            let mut repeated = unique.clone();
            repeated.insert(repeated.len() - 1, txid(len - 1));
            repeated.push(txid(0));
            assert_eq!(first_duplicate(&repeated), Some(txid(len - 1)), "{len} txids");
        }
    }
}
