//! The block tree and fork choice: where the best chain is decided.
//!
//! Every checked block is kept with its cumulative work. The best chain is the one with the
//! most work; on a tie the chain seen first stays (a challenger must have strictly more).
//! Switching chains returns exactly which blocks left and joined the best chain, which is
//! what the mempool, the store and the dashboard need. Side branches are kept up to a bound,
//! dropping the lightest leaves first, so a heavier branch arriving later still reorganises.

use std::collections::HashMap;
use std::sync::Arc;

use chainsim_primitives::{Block, BlockHash, Txid, Work};
use thiserror::Error;

use super::validation::{CheckedBlock, ParentInfo};

/// A block in the tree with what fork choice needs.
#[derive(Debug, Clone)]
pub struct BlockEntry {
    /// The block itself.
    pub block: Arc<Block>,
    /// Its hash.
    pub hash: BlockHash,
    /// Its txids, in order.
    pub txids: Arc<[Txid]>,
    /// Work of the chain from genesis up to and including this block.
    pub chain_work: Work,
    /// Arrival order, for first-seen tie-breaking and pruning.
    pub seq: u64,
    children: u32,
}

impl BlockEntry {
    /// Height of the block.
    pub fn height(&self) -> u64 {
        self.block.header.height
    }
    /// What validation of a child needs.
    pub fn parent_info(&self) -> ParentInfo {
        ParentInfo {
            hash: self.hash,
            height: self.height(),
            timestamp: self.block.header.timestamp,
        }
    }
}

/// How the best chain changed after an insert. Both lists empty: tip unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TipChange {
    /// Blocks that left the best chain, old tip first.
    pub disconnected: Vec<BlockHash>,
    /// Blocks that joined the best chain, lowest first.
    pub connected: Vec<BlockHash>,
}

impl TipChange {
    /// Whether the best tip stayed where it was.
    pub fn is_unchanged(&self) -> bool {
        self.connected.is_empty()
    }
    /// Whether blocks were disconnected (a reorganisation).
    pub fn is_reorg(&self) -> bool {
        !self.disconnected.is_empty()
    }
}

/// Why a checked block could not be inserted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InsertError {
    /// The block is in the tree already.
    #[error("block {0} is already known")]
    Duplicate(BlockHash),
    /// The parent is not in the tree (the block was checked against another tree).
    #[error("parent {0} is not in the block tree")]
    UnknownParent(BlockHash),
}

/// All known blocks and the best chain through them.
#[derive(Debug)]
pub struct BlockTree {
    entries: HashMap<BlockHash, BlockEntry>,
    /// The best chain, indexed by height.
    active: Vec<BlockHash>,
    /// Where each transaction of the best chain is: block hash and position.
    tx_index: HashMap<Txid, (BlockHash, u32)>,
    next_seq: u64,
    max_side_blocks: usize,
}

impl BlockTree {
    /// A tree holding only `genesis`, keeping at most `max_side_blocks` off the best chain.
    pub fn new(genesis: Arc<Block>, max_side_blocks: usize) -> Self {
        let hash = genesis.compute_hash();
        let txids: Arc<[Txid]> = genesis.compute_txids().into();
        let entry = BlockEntry {
            chain_work: genesis.header.bits.work(),
            block: genesis,
            hash,
            txids,
            seq: 0,
            children: 0,
        };
        let mut entries = HashMap::new();
        entries.insert(hash, entry);
        Self {
            entries,
            active: vec![hash],
            tx_index: HashMap::new(),
            next_seq: 1,
            max_side_blocks,
        }
    }

    /// The best tip.
    pub fn tip(&self) -> &BlockEntry {
        self.active
            .last()
            .and_then(|h| self.entries.get(h))
            .expect("the best chain always holds genesis")
    }

    /// Height of the best tip.
    pub fn height(&self) -> u64 {
        (self.active.len() - 1) as u64
    }

    /// A block by hash, on any branch.
    pub fn get(&self, hash: &BlockHash) -> Option<&BlockEntry> {
        self.entries.get(hash)
    }

    /// Whether the tree holds `hash`.
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.entries.contains_key(hash)
    }

    /// The best chain's block at `height`.
    pub fn at_height(&self, height: u64) -> Option<&BlockEntry> {
        let hash = self.active.get(usize::try_from(height).ok()?)?;
        self.entries.get(hash)
    }

    /// Whether `hash` is on the best chain.
    pub fn is_active(&self, hash: &BlockHash) -> bool {
        self.entries
            .get(hash)
            .is_some_and(|e| self.active.get(e.height() as usize) == Some(hash))
    }

    /// The best chain's hashes, genesis first.
    pub fn active_hashes(&self) -> &[BlockHash] {
        &self.active
    }

    /// Where a transaction of the best chain is.
    pub fn find_tx(&self, txid: &Txid) -> Option<(&BlockEntry, u32)> {
        let (hash, index) = self.tx_index.get(txid)?;
        Some((self.entries.get(hash)?, *index))
    }

    /// Number of blocks held, best chain and side branches.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Always false: genesis is always there.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Number of blocks off the best chain.
    pub fn side_count(&self) -> usize {
        self.entries.len() - self.active.len()
    }

    /// Inserts a checked block and applies fork choice. Returns the change of the best
    /// chain and the hashes of side blocks pruned to respect the bound.
    pub fn insert(&mut self, block: CheckedBlock) -> Result<(TipChange, Vec<BlockHash>), InsertError> {
        let hash = block.hash();
        if self.entries.contains_key(&hash) {
            return Err(InsertError::Duplicate(hash));
        }
        let prev = block.block().header.prev_hash;
        let parent = self.entries.get_mut(&prev).ok_or(InsertError::UnknownParent(prev))?;
        parent.children += 1;
        let chain_work = parent.chain_work.saturating_add(block.work());
        let entry = BlockEntry {
            block: block.block().clone(),
            hash,
            txids: block.txids().clone(),
            chain_work,
            seq: self.next_seq,
            children: 0,
        };
        self.next_seq += 1;
        self.entries.insert(hash, entry);
        let change = if chain_work > self.tip().chain_work {
            self.switch_to(hash)
        } else {
            TipChange::default()
        };
        let pruned = self.prune_side_blocks();
        Ok((change, pruned))
    }

    /// Makes the chain ending at `new_tip` the best chain.
    fn switch_to(&mut self, new_tip: BlockHash) -> TipChange {
        let mut path = Vec::new();
        let mut cursor = new_tip;
        while !self.is_active(&cursor) {
            path.push(cursor);
            cursor = self.entries[&cursor].block.header.prev_hash;
        }
        let fork_height = self.entries[&cursor].height() as usize;
        let disconnected: Vec<BlockHash> = self.active.drain(fork_height + 1..).rev().collect();
        for hash in &disconnected {
            for txid in self.entries[hash].txids.iter() {
                self.tx_index.remove(txid);
            }
        }
        path.reverse();
        for hash in &path {
            self.active.push(*hash);
            for (i, txid) in self.entries[hash].txids.iter().enumerate() {
                self.tx_index.insert(*txid, (*hash, i as u32));
            }
        }
        TipChange {
            disconnected,
            connected: path,
        }
    }

    /// Drops the lightest side leaves until the side branches fit the bound again (down to
    /// 90% of it, so pruning does not run on every insert).
    fn prune_side_blocks(&mut self) -> Vec<BlockHash> {
        if self.side_count() <= self.max_side_blocks {
            return Vec::new();
        }
        let goal = self.max_side_blocks * 9 / 10;
        let mut pruned = Vec::new();
        while self.side_count() > goal {
            let victim = self
                .entries
                .values()
                .filter(|e| e.children == 0 && !self.is_active(&e.hash))
                .min_by_key(|e| (e.chain_work, std::cmp::Reverse(e.seq)))
                .map(|e| e.hash);
            let Some(victim) = victim else { break };
            if let Some(entry) = self.entries.remove(&victim)
                && let Some(parent) = self.entries.get_mut(&entry.block.header.prev_hash)
            {
                parent.children -= 1;
            }
            pruned.push(victim);
        }
        pruned
    }

    /// The first of `txids` already mined in the chain ending at `parent` (the block's
    /// ancestry), if any. Validation of a block alone cannot see this: it needs the chain.
    /// Side-branch blocks are walked down to the best chain; below that the transaction
    /// index answers, so extending the best chain costs one lookup per transaction.
    pub fn find_in_ancestry(&self, parent: &BlockHash, txids: &[Txid]) -> Option<Txid> {
        let mut side_txids = std::collections::HashSet::new();
        let mut cursor = *parent;
        while !self.is_active(&cursor) {
            let entry = self.entries.get(&cursor)?;
            side_txids.extend(entry.txids.iter().copied());
            cursor = entry.block.header.prev_hash;
        }
        let fork_height = self.entries.get(&cursor)?.height();
        txids.iter().copied().find(|txid| {
            side_txids.contains(txid)
                || self
                    .tx_index
                    .get(txid)
                    .and_then(|(h, _)| self.entries.get(h))
                    .is_some_and(|e| e.height() <= fork_height)
        })
    }

    /// Hashes describing the best chain for a peer to find the fork point: the last ten
    /// blocks, then exponentially sparser, always ending at genesis (Bitcoin's locator).
    pub fn locator(&self) -> Vec<BlockHash> {
        let mut out = Vec::new();
        let mut height = self.height() as i64;
        let mut step = 1i64;
        while height > 0 {
            out.push(self.active[height as usize]);
            if out.len() >= 10 {
                step *= 2;
            }
            height -= step;
        }
        out.push(self.active[0]);
        out
    }

    /// The highest block of the best chain that the locator names (genesis at worst, which
    /// every locator ends with when both sides share it).
    pub fn find_fork(&self, locator: &[BlockHash]) -> Option<&BlockEntry> {
        locator
            .iter()
            .find(|h| self.is_active(h))
            .and_then(|h| self.entries.get(h))
    }
}
