//! The block tree and fork choice: where the best chain is decided.
//!
//! Every checked block is kept as a header with its cumulative work; the best chain is the
//! one with the most work, and on a tie the chain seen first stays (a challenger must have
//! strictly more). Switching chains returns exactly which blocks left and joined the best
//! chain, which is what the mempool, the store and the dashboard need. Side branches are
//! kept up to a bound, dropping the lightest leaves first, so a heavier branch arriving later
//! still reorganises. Bodies live in [`Bodies`] (the store, for a live node) and the best
//! chain's transactions in a compact [`TxIndex`].
//!
//! A tree may prune ([`BlockTree::keep_entries`]): best-chain blocks deeper than a depth
//! below the tip then lose their entries, keeping only their hash in the best chain, and
//! side branches forking that deep go. Lookups of those blocks still answer, from the
//! body (its header says the height, and the best chain's hash at that height confirms
//! it) and a mark of the chain work every [`MARK_EVERY`] blocks. The best chain's hashes
//! are compacted too: below the pruned height only every [`MARK_EVERY`]th is kept, and the
//! others are found walking down from it through the bodies' previous-block hashes (at most
//! `MARK_EVERY - 1` body reads for the rare lookup of an old block). The price is a pruned
//! Bitcoin node's: a block forking off deeper than the depth is refused
//! ([`super::ValidationError::ForkTooDeep`]), so a node whose own branch is overtaken that
//! deep stays on it.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use chainsim_primitives::{Block, BlockHash, Header, Txid, Work};
use thiserror::Error;

use super::bodies::Bodies;
use super::entries::Entries;
use super::recent::Recent;
use super::txindex::TxIndex;
use super::validation::{CheckedBlock, ParentInfo};
use crate::keyed_hash::KeyedHash;
use crate::ledger::{Ledger, View};
use crate::store::BlockSource;

/// A block in the tree with what fork choice needs (its body is in the store).
#[derive(Debug, Clone)]
pub struct BlockEntry {
    /// Where the header is read.
    head: Head,
    /// Its hash.
    pub hash: BlockHash,
    /// Transactions in the block, coinbase included.
    pub tx_count: u32,
    /// Work of the chain from genesis up to and including this block.
    pub chain_work: Work,
    /// Arrival order, for first-seen tie-breaking and pruning.
    pub seq: u64,
    children: u32,
}

/// Where an entry's header is: in the body itself while the store holds that body anyway
/// (a simulation's nodes all share one body per block, through the store in memory they
/// share, so that every node's entry then costs 16 bytes for its header instead of 96), or
/// in a copy of its own once the entry would keep the body in memory for nothing else (a
/// live node's bodies are in its database, and its tree must not hold them all).
#[derive(Debug, Clone)]
enum Head {
    Body(Arc<Block>),
    Own(Box<Header>),
}

impl Head {
    fn header(&self) -> &Header {
        match self {
            Head::Body(block) => &block.header,
            Head::Own(header) => header,
        }
    }

    /// The bodies in memory let go of `body` (`body` being the handle they gave up): the
    /// header is copied out unless the store keeps that very body (`shared`) and someone
    /// besides the entry still holds it.
    fn settle(&mut self, body: &Arc<Block>, shared: bool) {
        if let Head::Body(held) = self
            && Arc::ptr_eq(held, body)
            && !(shared && Arc::strong_count(body) > 2)
        {
            *self = Head::Own(Box::new(body.header));
        }
    }
}

impl BlockEntry {
    /// An entry reading its header from `body`.
    pub(super) fn new(body: &Arc<Block>, hash: BlockHash, chain_work: Work, seq: u64, children: u32) -> Self {
        Self {
            head: Head::Body(body.clone()),
            hash,
            tx_count: body.transactions.len() as u32,
            chain_work,
            seq,
            children,
        }
    }
    /// The header.
    pub fn header(&self) -> &Header {
        self.head.header()
    }
    /// Height of the block.
    pub fn height(&self) -> u64 {
        self.header().height
    }
    /// What validation of a child needs.
    pub fn parent_info(&self) -> ParentInfo {
        ParentInfo {
            hash: self.hash,
            height: self.height(),
            timestamp: self.header().timestamp,
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

/// Under pruning, the chain work is kept at every this many heights of the pruned part, so
/// an old block's is its mark's plus at most this many blocks' work.
pub const MARK_EVERY: u64 = 64;

/// Most blocks [`BlockTree::reserve`] makes room for: more than a pruning tree of the
/// simulator's scenarios ever holds, and a guess beyond it (a run asked for a billion blocks)
/// then grows as it comes instead of taking the memory of every block up front.
pub const MAX_RESERVED_BLOCKS: usize = 4_096;

/// All known blocks and the best chain through them.
#[derive(Debug)]
pub struct BlockTree {
    entries: Entries,
    /// The last blocks inserted, asked before `entries` (see [`Recent`]).
    recent: Recent,
    /// The best chain from height `offset` on, indexed by height less `offset`.
    active: Vec<BlockHash>,
    /// The best chain's first height in `active`; a multiple of [`MARK_EVERY`], at most
    /// `pruned` (below it, `marks` and the bodies give the hashes).
    offset: u64,
    /// Where each transaction of the best chain is (by height).
    tx_index: TxIndex,
    bodies: Bodies,
    next_seq: u64,
    max_side_blocks: usize,
    /// The accounts ledger at the best tip, on an accounts network.
    ledger: Option<Ledger>,
    /// With pruning: how many blocks below the tip keep their entries.
    keep_depth: Option<u64>,
    /// Best-chain heights `1..=pruned` have no entry (genesis always keeps its own).
    pruned: u64,
    /// Hash and chain work at heights `0, MARK_EVERY, 2 * MARK_EVERY, ...` up to `pruned`.
    marks: Vec<(BlockHash, Work)>,
    /// The best tip's chain work, kept beside the tree's other fields: compared with every
    /// block inserted and every peer's claim, and reading it from the tip's entry is a
    /// hash-table lookup (a wait on main memory on a simulator's ten thousand nodes).
    tip_work: Work,
}

impl BlockTree {
    /// A tree holding only `genesis` and keeping every body in memory, with at most
    /// `max_side_blocks` off the best chain.
    pub fn new(genesis: Arc<Block>, max_side_blocks: usize) -> Self {
        Self::with_source(genesis, max_side_blocks, None)
    }

    /// A tree reading bodies back from `source` (keeping only recent ones in memory).
    pub fn with_source(genesis: Arc<Block>, max_side_blocks: usize, source: Option<Arc<dyn BlockSource>>) -> Self {
        let hash = genesis.compute_hash();
        let mut tree = Self {
            entries: Entries::default(),
            recent: Recent::default(),
            active: vec![hash],
            offset: 0,
            tx_index: TxIndex::default(),
            bodies: Bodies::new(source),
            next_seq: 1,
            max_side_blocks,
            ledger: None,
            keep_depth: None,
            pruned: 0,
            marks: vec![(hash, genesis.header.bits.work())],
            tip_work: genesis.header.bits.work(),
        };
        for txid in genesis.compute_txids() {
            tree.tx_index.insert(&txid, 0);
        }
        let entry = BlockEntry::new(&genesis, hash, genesis.header.bits.work(), 0, 0);
        tree.entries.insert(entry);
        // Genesis is compiled in and never stored: always held.
        tree.bodies.pin(hash, genesis);
        tree
    }

    /// Prunes from now on: entries of best-chain blocks more than `depth` below the tip are
    /// dropped (None keeps every entry). A block forking off deeper is refused from then on.
    /// A pruning tree also leaves coinbases out of its transaction index: the index is
    /// there to refuse a transaction mined already, and a coinbase can never be submitted,
    /// so indexing one costs 12 bytes a block for nothing but looking it up by id.
    pub fn keep_entries(&mut self, depth: Option<u64>) {
        self.keep_depth = depth;
    }

    /// Makes room at once for the entries and best-chain hashes of `blocks` more blocks (of
    /// those a pruning tree holds at most its depth and one mark's span: call after
    /// [`BlockTree::keep_entries`]; never more than [`MAX_RESERVED_BLOCKS`]). A tree that
    /// grows a block at a time doubles its table and its chain as it goes, and on a
    /// simulator's ten thousand nodes, which all grow alike, the rooms they grew out of were
    /// left behind unused, each page of them zeroed first by the system.
    pub fn reserve(&mut self, blocks: usize) {
        let kept = self.keep_depth.map_or(usize::MAX, |depth| {
            usize::try_from(depth.saturating_add(MARK_EVERY)).unwrap_or(usize::MAX)
        });
        let held = blocks.min(kept).min(MAX_RESERVED_BLOCKS);
        self.entries.reserve(held);
        self.active.reserve_exact(held);
    }

    /// How many entries, and how many best-chain hashes, fit before the tree grows (for
    /// measuring its memory).
    pub fn room(&self) -> (usize, usize) {
        (self.entries.capacity(), self.active.capacity())
    }

    /// The depth below the tip under which entries are pruned, if the tree prunes.
    pub fn keep_depth(&self) -> Option<u64> {
        self.keep_depth
    }

    /// Keeps the accounts ledger from now on (call before any block is inserted). Fails
    /// when genesis cannot fund its accounts (a reward to something not an address).
    pub fn enable_ledger(&mut self) -> Result<(), crate::ledger::LedgerError> {
        let genesis = self.hash_at(0).and_then(|h| self.bodies.get(&h));
        let ledger = match genesis {
            Some(g) => Ledger::from_genesis(&g)?,
            None => return Err(crate::ledger::LedgerError::Unavailable),
        };
        self.ledger = Some(ledger);
        Ok(())
    }

    /// The accounts ledger at the best tip, on an accounts network.
    pub fn ledger(&self) -> Option<&Ledger> {
        self.ledger.as_ref()
    }

    /// The ledger as it stands after the block `parent` (on any branch): the tip's state
    /// with the best chain undone down to the fork and `parent`'s branch replayed. `None`
    /// without a ledger, or when a body could not be read.
    pub fn ledger_at(&self, parent: &BlockHash) -> Option<View<'_>> {
        let mut view = View::new(self.ledger.as_ref()?);
        let mut side = Vec::new();
        let mut cursor = *parent;
        while !self.is_active(&cursor) {
            side.push(cursor);
            cursor = self.entries.get(&cursor)?.header().prev_hash;
        }
        let fork_height = self.height_of(&cursor)?;
        for hash in self.active.get(self.index(fork_height + 1)?..)?.iter().rev() {
            let block = self.bodies.get(hash)?;
            view.undo_block(&block);
        }
        for hash in side.iter().rev() {
            let block = self.bodies.get(hash)?;
            view.apply_block(&block).ok()?;
        }
        Some(view)
    }

    /// Moves the ledger along a change of the best chain. Every block in the tree applied
    /// on its parent's state when it was checked, so this cannot fail but for a body that
    /// cannot be read, which leaves the ledger where it was.
    fn move_ledger(&mut self, change: &TipChange) {
        let Some(ledger) = self.ledger.take() else { return };
        let mut view = View::new(&ledger);
        let mut ok = true;
        for hash in &change.disconnected {
            match self.bodies.get(hash) {
                Some(block) => view.undo_block(&block),
                None => ok = false,
            }
        }
        for hash in &change.connected {
            match self.bodies.get(hash) {
                Some(block) => ok &= view.apply_block(&block).is_ok(),
                None => ok = false,
            }
        }
        let changes = ok.then(|| view.into_changes());
        let mut ledger = ledger;
        if let Some(changes) = changes {
            ledger.commit(changes);
        }
        self.ledger = Some(ledger);
    }

    /// The best tip.
    pub fn tip(&self) -> &BlockEntry {
        &self.entries[&self.tip_hash()]
    }

    /// The best tip's hash.
    pub fn tip_hash(&self) -> BlockHash {
        *self.active.last().expect("the best chain always holds genesis")
    }

    /// The best tip's chain work (that of [`BlockTree::tip`], without reading its entry).
    pub fn tip_work(&self) -> Work {
        debug_assert_eq!(self.tip_work, self.tip().chain_work);
        self.tip_work
    }

    /// Height of the best tip.
    pub fn height(&self) -> u64 {
        self.offset + self.active.len() as u64 - 1
    }

    /// Where the best chain's block at `height` is in `active`, if it is there.
    fn index(&self, height: u64) -> Option<usize> {
        usize::try_from(height.checked_sub(self.offset)?).ok()
    }

    /// The best chain's hash at `height`: from `active`, or below it walking down from the
    /// next mark through the bodies' previous-block hashes.
    fn hash_at(&self, height: u64) -> Option<BlockHash> {
        if let Some(i) = self.index(height) {
            return self.active.get(i).copied();
        }
        let up = height.div_ceil(MARK_EVERY) * MARK_EVERY;
        let mut hash = match self.index(up) {
            Some(i) => *self.active.get(i)?,
            None => self.marks.get(usize::try_from(up / MARK_EVERY).ok()?)?.0,
        };
        for _ in height..up {
            hash = self.bodies.get(&hash)?.header.prev_hash;
        }
        Some(hash)
    }

    /// A block's entry by hash, on any branch; a pruned one is rebuilt from its body, with
    /// `seq` 0 (see [`BlockTree::keep_entries`]).
    pub fn get(&self, hash: &BlockHash) -> Option<Cow<'_, BlockEntry>> {
        if let Some(entry) = self.entries.get(hash) {
            return Some(Cow::Borrowed(entry));
        }
        let (height, block) = self.pruned_block(hash)?;
        self.rebuilt(height, *hash, &block)
    }

    /// A block's body, from memory or the store.
    pub fn block(&self, hash: &BlockHash) -> Option<Arc<Block>> {
        // The last blocks taken first: they are what peers ask for, and their hashes are
        // in the tree's own memory, where the table's slot is a wait on memory.
        if self.has_entry(hash) {
            return self.bodies.get(hash);
        }
        self.pruned_block(hash).map(|(_, block)| block)
    }

    /// A best-chain block whose entry was pruned, with its height: its body's header names
    /// the height, and the best chain's hash there must be `hash`.
    fn pruned_block(&self, hash: &BlockHash) -> Option<(u64, Arc<Block>)> {
        if self.pruned == 0 {
            return None;
        }
        let block = self.bodies.get(hash)?;
        let height = block.header.height;
        let on_chain = (1..=self.pruned).contains(&height) && self.hash_at(height) == Some(*hash);
        on_chain.then_some((height, block))
    }

    /// The entry of the pruned best-chain block `hash` at `height`, rebuilt from its body.
    fn rebuilt(&self, height: u64, hash: BlockHash, block: &Arc<Block>) -> Option<Cow<'_, BlockEntry>> {
        // Its best-chain child at least (`children` 1); side branches off it were pruned
        // with it.
        Some(Cow::Owned(BlockEntry::new(
            block,
            hash,
            self.pruned_work(height)?,
            0,
            1,
        )))
    }

    /// Chain work of the pruned best-chain block at `height`: the mark at or below it plus
    /// the work of the blocks up to it (each block's own work is its header's target's).
    fn pruned_work(&self, height: u64) -> Option<Work> {
        let base = height - height % MARK_EVERY;
        let mut work = self.marks.get(usize::try_from(base / MARK_EVERY).ok()?)?.1;
        let mut hash = self.hash_at(height)?;
        for _ in base..height {
            let block = self.bodies.get(&hash)?;
            work = work.saturating_add(block.header.bits.work());
            hash = block.header.prev_hash;
        }
        Some(work)
    }

    /// Height of a block in the tree (pruned best-chain blocks included).
    fn height_of(&self, hash: &BlockHash) -> Option<u64> {
        if self.active.last() == Some(hash) {
            // The tip, asked for every block that extends it (whether it forks too deep):
            // no lookup in the entries, a wait on main memory on a big network.
            return Some(self.height());
        }
        match self.entries.get(hash) {
            Some(entry) => Some(entry.height()),
            None => self.pruned_block(hash).map(|(height, _)| height),
        }
    }

    /// A block's txids, in order (computed from its body).
    pub fn txids(&self, hash: &BlockHash) -> Option<Vec<Txid>> {
        Some(self.block(hash)?.compute_txids())
    }

    /// Bodies held in memory.
    pub fn bodies_held(&self) -> usize {
        self.bodies.held()
    }

    /// Body reads from the store that failed (the body is then treated as missing).
    pub fn body_read_errors(&self) -> u64 {
        self.bodies.read_errors()
    }

    /// Whether the tree holds `hash` (a pruned best-chain block counts: it is known).
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.has_entry(hash) || self.pruned_block(hash).is_some()
    }

    /// [`BlockTree::contains`] for a block whose header is at hand: a pruned block is on the
    /// best chain at or below the pruned height, so a higher block (nearly every block a
    /// node receives) is answered without reading the store for it.
    pub fn contains_header(&self, hash: &BlockHash, header: &Header) -> bool {
        self.has_entry(hash) || (header.height <= self.pruned && self.pruned_block(hash).is_some())
    }

    /// Whether `hash` has a full entry: the last blocks inserted are asked first.
    fn has_entry(&self, hash: &BlockHash) -> bool {
        self.recent.contains(hash) || self.entries.contains(hash)
    }

    /// Whether the tree has the block `hash` whose parent is `parent`: [`BlockTree::contains`],
    /// answered without the index when the parent is a recent block that has no child (the
    /// usual announcement of a block still on its way).
    pub fn contains_child(&self, hash: &BlockHash, parent: &BlockHash) -> bool {
        !self.recent.childless(parent) && self.contains(hash)
    }

    /// The best chain's block at `height` (rebuilt from its body when pruned).
    pub fn at_height(&self, height: u64) -> Option<Cow<'_, BlockEntry>> {
        let hash = self.hash_at(height)?;
        if let Some(entry) = self.entries.get(&hash) {
            return Some(Cow::Borrowed(entry));
        }
        let block = self.bodies.get(&hash)?;
        self.rebuilt(height, hash, &block)
    }

    /// Whether `hash` is on the best chain.
    pub fn is_active(&self, hash: &BlockHash) -> bool {
        if self.active.last() == Some(hash) {
            return true; // the tip, asked most often: no lookup in the entries
        }
        match self.entries.get(hash) {
            Some(e) => self.hash_at(e.height()) == Some(*hash),
            None => self.pruned_block(hash).is_some(),
        }
    }

    /// The best chain's hashes, genesis first. Compacted hashes are read back walking down
    /// the bodies; a body that cannot be read ends the list there (a damaged store).
    pub fn active_hashes(&self) -> Vec<BlockHash> {
        let mut below = Vec::with_capacity(self.height() as usize + 1);
        let mut hash = self.active.first().copied();
        for _ in 0..self.offset {
            hash = hash.and_then(|h| self.bodies.get(&h)).map(|b| b.header.prev_hash);
            below.extend(hash);
        }
        below.reverse();
        below.extend_from_slice(&self.active);
        below
    }

    /// Where a transaction of the best chain is: its block and position.
    pub fn find_tx(&self, txid: &Txid) -> Option<(Cow<'_, BlockEntry>, u32)> {
        let (height, pos) = self.tx_position(txid)?;
        Some((self.at_height(height)?, pos))
    }

    /// Height of the best-chain block holding a transaction, and its position there.
    fn tx_position(&self, txid: &Txid) -> Option<(u64, u32)> {
        self.tx_index.candidates(txid).into_iter().find_map(|height| {
            let block = self.bodies.get(&self.hash_at(height)?)?;
            let pos = block.transactions.iter().position(|t| t.compute_txid() == *txid)?;
            Some((height, pos as u32))
        })
    }

    /// Number of blocks known, best chain (pruned blocks included) and side branches.
    pub fn len(&self) -> usize {
        self.entries.len() + self.pruned as usize
    }

    /// Full entries held in memory (fewer than [`BlockTree::len`] once pruning started).
    pub fn entries_held(&self) -> usize {
        self.entries.len()
    }

    /// Always false: genesis is always there.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Number of blocks off the best chain.
    pub fn side_count(&self) -> usize {
        self.len() - (self.height() as usize + 1)
    }

    /// Keys the transaction index's hashing with a secret seed (see [`TxIndex`]).
    /// Its block map and the bodies it holds are keyed too, rebuilt with the new seed.
    pub fn seed_index(&mut self, seed: u64) {
        self.tx_index.reseed(seed);
        self.entries.rekey(KeyedHash::new(seed));
        self.bodies.rekey(KeyedHash::new(seed));
    }

    /// Drops the bodies held only until the store had them.
    pub fn release_bodies(&mut self) {
        let (entries, shared) = (&mut self.entries, self.bodies.shared());
        self.bodies.release(|hash, body| settle(entries, hash, &body, shared));
    }

    /// Inserts a checked block and applies fork choice. Returns the change of the best
    /// chain and the hashes of side blocks pruned to respect the bound.
    pub fn insert(&mut self, block: &CheckedBlock) -> Result<(TipChange, Vec<BlockHash>), InsertError> {
        self.insert_inner(block, false)
    }

    /// [`BlockTree::insert`] for a block read back from the store, whose body need not be
    /// held in memory.
    pub fn insert_stored(&mut self, block: &CheckedBlock) -> Result<(TipChange, Vec<BlockHash>), InsertError> {
        self.insert_inner(block, true)
    }

    fn insert_inner(&mut self, block: &CheckedBlock, stored: bool) -> Result<(TipChange, Vec<BlockHash>), InsertError> {
        let hash = block.hash();
        let tip_height = self.height();
        if self.contains_header(&hash, &block.block().header) {
            return Err(InsertError::Duplicate(hash));
        }
        let header = &block.block().header;
        let parent = self
            .entries
            .get_mut(&header.prev_hash)
            .ok_or(InsertError::UnknownParent(header.prev_hash))?;
        parent.children += 1;
        self.recent.child_added(&header.prev_hash);
        let chain_work = parent.chain_work.saturating_add(block.work());
        let mut entry = BlockEntry::new(block.block(), hash, chain_work, self.next_seq, 0);
        self.next_seq += 1;
        let (entries, shared) = (&mut self.entries, self.bodies.shared());
        if stored && self.bodies.has_source() {
            entry.head.settle(block.block(), shared);
        } else {
            self.bodies
                .insert(hash, block.block().clone(), |h, body| settle(entries, h, &body, shared));
        }
        self.entries.insert(entry);
        self.recent.push(hash);
        let change = if chain_work > self.tip_work() {
            self.switch_to(hash, Some((hash, block.txids())))
        } else {
            TipChange::default()
        };
        let mut pruned = self.prune_side_blocks();
        // Against the tip before this block: every block it connected stays, for the
        // caller to read (a fork is refused when deeper than that tip allows).
        pruned.extend(self.prune_deep(tip_height));
        Ok((change, pruned))
    }

    /// Under pruning, drops the entries of best-chain blocks more than the depth below
    /// `tip_height`, and the side branches forking off them; returns those side blocks.
    fn prune_deep(&mut self, tip_height: u64) -> Vec<BlockHash> {
        let Some(depth) = self.keep_depth else {
            return Vec::new();
        };
        let mut gone = Vec::new();
        while self.pruned + 1 + depth < tip_height {
            let height = self.pruned + 1;
            let Some(hash) = self.hash_at(height) else {
                break;
            };
            let Some(entry) = self.remove_entry(&hash) else { break };
            self.pruned = height;
            if height.is_multiple_of(MARK_EVERY) {
                self.marks.push((hash, entry.chain_work));
            }
            // The hashes of a whole mark's span below the pruned height go.
            if self.offset + MARK_EVERY <= self.pruned {
                self.active.drain(..MARK_EVERY as usize);
                self.offset += MARK_EVERY;
                // A map that removes as many entries as it inserts still grows (its table
                // fills with deleted slots): fitted again now and then, it stays the size
                // of the depth kept.
                self.entries.shrink_to_fit();
            }
            if entry.children > 1 {
                gone.extend(self.drop_branches_of(hash));
            }
        }
        gone
    }

    /// Drops the entry of `hash` (the only way an entry leaves, so that [`Recent`] never
    /// names a block the tree no longer has).
    fn remove_entry(&mut self, hash: &BlockHash) -> Option<BlockEntry> {
        self.recent.forget(hash);
        self.entries.remove(hash)
    }

    /// Drops every side branch forking off the best-chain block `fork`.
    fn drop_branches_of(&mut self, fork: BlockHash) -> Vec<BlockHash> {
        let (mut parents, mut gone) = (vec![fork], Vec::new());
        while let Some(parent) = parents.pop() {
            let children: Vec<BlockHash> = self
                .entries
                .values()
                .filter(|e| e.header().prev_hash == parent && !self.is_active(&e.hash))
                .map(|e| e.hash)
                .collect();
            for child in children {
                self.remove_entry(&child);
                self.bodies.remove(&child);
                parents.push(child);
                gone.push(child);
            }
        }
        gone
    }

    /// Under pruning, whether a block on `parent` would fork off the best chain deeper than
    /// the depth below the tip: then the fork height and the depth.
    pub fn fork_too_deep(&self, parent: &BlockHash) -> Option<(u64, u64)> {
        let depth = self.keep_depth?;
        let mut cursor = *parent;
        while !self.is_active(&cursor) {
            cursor = self.entries.get(&cursor)?.header().prev_hash;
        }
        let fork_height = self.height_of(&cursor)?;
        (fork_height + depth < self.height()).then_some((fork_height, depth))
    }

    /// The txids of `hash`: `known` when it is that block, else from its body.
    /// The transactions of `hash` the index holds (see [`BlockTree::keep_entries`] for why
    /// a pruning tree skips the coinbase, always the first).
    fn txids_of(&self, hash: &BlockHash, known: Option<(BlockHash, &Arc<[Txid]>)>) -> Vec<Txid> {
        let skip = usize::from(self.keep_depth.is_some());
        match known {
            Some((h, txids)) if h == *hash => txids.iter().skip(skip).copied().collect(),
            _ => self.txids(hash).unwrap_or_default().into_iter().skip(skip).collect(),
        }
    }

    /// Makes the chain ending at `new_tip` the best chain.
    fn switch_to(&mut self, new_tip: BlockHash, known: Option<(BlockHash, &Arc<[Txid]>)>) -> TipChange {
        let mut path = Vec::new();
        let mut cursor = new_tip;
        while !self.is_active(&cursor) {
            path.push(cursor);
            cursor = self.entries[&cursor].header().prev_hash;
        }
        let fork_height = self.entries[&cursor].height() as usize;
        let start = self.index(fork_height as u64 + 1).unwrap_or(0);
        let disconnected: Vec<BlockHash> = self.active.drain(start..).rev().collect();
        for hash in &disconnected {
            let height = self.entries[hash].height();
            for txid in self.txids_of(hash, None) {
                self.tx_index.remove(&txid, height);
            }
        }
        path.reverse();
        for hash in &path {
            self.active.push(*hash);
            let height = self.entries[hash].height();
            for txid in self.txids_of(hash, known) {
                self.tx_index.insert(&txid, height);
            }
        }
        self.tip_work = self.entries[&new_tip].chain_work;
        let change = TipChange {
            disconnected,
            connected: path,
        };
        self.move_ledger(&change);
        change
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
            if let Some(entry) = self.remove_entry(&victim)
                && let Some(parent) = self.entries.get_mut(&entry.header().prev_hash)
            {
                parent.children -= 1;
                self.recent.child_removed(&entry.header().prev_hash);
            }
            self.bodies.remove(&victim);
            pruned.push(victim);
        }
        pruned
    }

    /// The first of `txids` already mined in the chain ending at `parent` (the block's
    /// ancestry), if any. Side-branch blocks are walked down to the best chain; below that
    /// the transaction index answers, so extending the best chain costs one lookup per
    /// transaction (and a body read only when a prefix matches).
    pub fn find_in_ancestry(&self, parent: &BlockHash, txids: &[Txid]) -> Option<Txid> {
        let mut side_txids = HashSet::new();
        let mut cursor = *parent;
        while !self.is_active(&cursor) {
            let entry = self.entries.get(&cursor)?;
            side_txids.extend(self.txids_of(&cursor, None));
            cursor = entry.header().prev_hash;
        }
        let fork_height = self.height_of(&cursor)?;
        txids.iter().copied().find(|txid| {
            side_txids.contains(txid) || self.tx_position(txid).is_some_and(|(height, _)| height <= fork_height)
        })
    }

    /// Hashes describing the best chain for a peer to find the fork point: the last ten
    /// blocks, then exponentially sparser, always ending at genesis (Bitcoin's locator).
    pub fn locator(&self) -> Vec<BlockHash> {
        let mut out = Vec::new();
        let mut height = self.height() as i64;
        let mut step = 1i64;
        while height > 0 {
            out.extend(self.hash_at(height as u64));
            if out.len() >= 10 {
                step *= 2;
            }
            height -= step;
        }
        out.extend(self.hash_at(0));
        out
    }

    /// The highest block of the best chain that the locator names (genesis at worst, which
    /// every locator ends with when both sides share it).
    pub fn find_fork(&self, locator: &[BlockHash]) -> Option<Cow<'_, BlockEntry>> {
        locator.iter().find(|h| self.is_active(h)).and_then(|h| self.get(h))
    }
}

/// The bodies kept in memory let go of `body`, that of `hash`: its entry decides whether to
/// go on reading its header there (see [`Head::settle`]).
fn settle(entries: &mut Entries, hash: BlockHash, body: &Arc<Block>, shared: bool) {
    if let Some(entry) = entries.get_mut(&hash) {
        entry.head.settle(body, shared);
    }
}
