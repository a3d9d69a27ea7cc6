//! The sans-IO node: the chain, the mempool and the peer protocol as one state machine.
//!
//! Inputs are method calls carrying the current time in milliseconds: a local command
//! (`submit_transaction`, `submit_mined_block`, `add_peer`, ...), a message from a peer
//! (`handle_message`), the fate of a message we sent (`handle_delivered`,
//! `handle_send_failed`), or a timer (`handle_timeout`). Outputs — store operations,
//! messages to send, events — queue up inside and are drained with [`Node::poll_output`].
//! Nothing here reads a clock, opens a socket or spawns a task, so tests and simulators can
//! drive many nodes on a virtual clock, deterministically.
//!
//! The peer protocol is split by concern: [`crate::sync`] decides catch-up,
//! [`crate::gossip`] relaying, [`crate::peering`] handshakes and links.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chainsim_primitives::{Block, BlockHash, Header, Transaction, TxError, Txid, compute_merkle_root};
use thiserror::Error;

use crate::chain::{BlockTree, CheckedBlock, InsertError, TipChange, ValidationError, validate_block};
use crate::event::Event;
use crate::mempool::{DEFAULT_MEMPOOL_CAPACITY, Mempool, MempoolError};
use crate::params::ChainParams;
use crate::peers::{PeerAddr, PeerLimits, PeerTable};
use crate::protocol::Message;
use crate::store::{StoreOp, StoredState};
use crate::sync::SyncState;

/// How often the node wants `handle_timeout`, in milliseconds.
pub const TICK_MS: u64 = 250;

/// Settings of one node that are not consensus rules.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Where this node listens, as peers should reach it.
    pub listen: PeerAddr,
    /// Name the block reward is paid to.
    pub miner: String,
    /// Seed of the node's random choices (peer selection order).
    pub seed: u64,
    /// Peer table limits.
    pub peer_limits: PeerLimits,
    /// Most pending transactions.
    pub mempool_capacity: usize,
    /// Most blocks kept off the best chain.
    pub max_side_blocks: usize,
    /// Most blocks held whose parent is unknown.
    pub max_orphans: usize,
    /// Software name and version sent in the handshake.
    pub agent: String,
}

impl NodeConfig {
    /// Defaults for a node listening at `listen`, paying `miner`.
    pub fn new(listen: PeerAddr, miner: impl Into<String>) -> Self {
        Self {
            listen,
            miner: miner.into(),
            seed: 0,
            peer_limits: PeerLimits::default(),
            mempool_capacity: DEFAULT_MEMPOOL_CAPACITY,
            max_side_blocks: 1_000,
            max_orphans: 100,
            agent: concat!("chainsim/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// Something the node wants done.
#[derive(Debug, Clone)]
pub enum Output {
    /// Persist this (applied atomically with the rest of the batch).
    Store(StoreOp),
    /// Tell the world.
    Event(Event),
    /// Send a message to a peer; report the outcome with `handle_delivered` (and feed any
    /// reply to `handle_message`) or `handle_send_failed`.
    Send {
        /// The peer.
        to: PeerAddr,
        /// The message.
        msg: Message,
    },
}

/// Where an input came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A local user (API or command line).
    Local,
    /// Our own miner.
    Mined,
    /// A peer.
    Peer(PeerAddr),
}

impl Origin {
    pub(crate) fn peer(&self) -> Option<&PeerAddr> {
        match self {
            Origin::Peer(p) => Some(p),
            _ => None,
        }
    }
}

/// A transaction the node took (or already had).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxOutcome {
    /// Its id.
    pub txid: Txid,
    /// False when it was pending or mined already.
    pub is_new: bool,
}

/// Why a transaction was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TxRejected {
    /// It breaks a rule of its own.
    #[error("invalid transaction: {0}")]
    Malformed(#[from] TxError),
    /// The mempool is full.
    #[error(transparent)]
    MempoolFull(#[from] MempoolError),
}

/// A block the node took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOutcome {
    /// Its hash.
    pub hash: BlockHash,
    /// Its height.
    pub height: u64,
    /// How the best chain changed (unchanged for a side-branch block).
    pub change: TipChange,
}

/// Why a block was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BlockRejected {
    /// It breaks a consensus rule.
    #[error("invalid block ({rule}): {0}", rule = .0.rule())]
    Invalid(#[from] ValidationError),
    /// We have it already.
    #[error("block {0} is already known")]
    Duplicate(BlockHash),
    /// Its parent is unknown; it waits among the orphans.
    #[error("parent {0} of the block is unknown")]
    UnknownParent(BlockHash),
}

/// Why a peer's message was refused; the HTTP layer answers it as a 4xx.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PeerError {
    /// The operator blocked this peer.
    #[error("peer {0} is blocked")]
    Blocked(PeerAddr),
    /// The peer is banned for misbehaving.
    #[error("peer {0} is banned")]
    Banned(PeerAddr),
    /// Only `hello` is accepted before the handshake.
    #[error("no handshake with {0}: send hello first")]
    NotConnected(PeerAddr),
    /// The handshake was refused.
    #[error("handshake refused: {0}")]
    Refused(String),
    /// The message breaks the protocol.
    #[error("protocol violation: {0}")]
    Invalid(String),
}

/// Why stored state could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RestoreError {
    /// The stored chain belongs to another network.
    #[error("stored chain starts with block {stored}, but this network's genesis is {expected}")]
    GenesisMismatch {
        /// First stored block.
        stored: BlockHash,
        /// Our genesis.
        expected: BlockHash,
    },
    /// A stored block's parent is missing.
    #[error("stored block {0} has no stored parent")]
    MissingParent(BlockHash),
    /// A stored block breaks a rule.
    #[error("stored block {hash} at height {height} is invalid ({}): {error}", .error.rule())]
    InvalidBlock {
        /// The block.
        hash: BlockHash,
        /// Its height.
        height: u64,
        /// The broken rule.
        error: ValidationError,
    },
}

/// What restoring found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// Blocks validated (genesis excluded).
    pub blocks_verified: usize,
    /// Height of the best tip.
    pub height: u64,
    /// The best tip.
    pub tip: BlockHash,
    /// Pending transactions restored.
    pub mempool: usize,
}

/// Counters for metrics.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Blocks this node mined that were accepted.
    pub blocks_mined: u64,
    /// Blocks accepted from anywhere.
    pub blocks_accepted: u64,
    /// Blocks refused as invalid.
    pub blocks_rejected: u64,
    /// Chain reorganisations.
    pub reorgs: u64,
    /// Transactions accepted into the mempool.
    pub txs_accepted: u64,
    /// Messages handled from peers.
    pub messages_in: u64,
    /// Messages queued to peers.
    pub messages_out: u64,
}

/// One chainsim node, without IO.
#[derive(Debug)]
pub struct Node {
    pub(crate) params: Arc<ChainParams>,
    pub(crate) config: NodeConfig,
    pub(crate) tree: BlockTree,
    pub(crate) mempool: Mempool,
    pub(crate) peers: PeerTable,
    pub(crate) outputs: VecDeque<Output>,
    pub(crate) stats: Stats,
    pub(crate) rng: fastrand::Rng,
    /// Blocks whose parent is unknown, by hash, with who sent them.
    pub(crate) orphans: HashMap<BlockHash, (Arc<Block>, PeerAddr)>,
    /// Recently refused blocks and the rule they broke, so they are not checked again.
    pub(crate) rejected: HashMap<BlockHash, &'static str>,
    pub(crate) sync: Option<SyncState>,
    /// Transactions accepted since the last drain, to relay in one batch per peer.
    pub(crate) relay_txs: Vec<(Transaction, Option<PeerAddr>)>,
    pub(crate) next_ping: u64,
    pub(crate) next_tick: u64,
}

impl Node {
    /// A node holding only genesis.
    pub fn new(params: Arc<ChainParams>, config: NodeConfig) -> Self {
        let tree = BlockTree::new(params.genesis().clone(), config.max_side_blocks);
        Self {
            mempool: Mempool::new(config.mempool_capacity),
            rng: fastrand::Rng::with_seed(config.seed),
            params,
            config,
            tree,
            peers: PeerTable::default(),
            outputs: VecDeque::new(),
            stats: Stats::default(),
            orphans: HashMap::new(),
            rejected: HashMap::new(),
            sync: None,
            relay_txs: Vec::new(),
            next_ping: 0,
            next_tick: 0,
        }
    }

    /// Rebuilds a node from storage, validating every stored block from genesis.
    pub fn restore(
        params: Arc<ChainParams>,
        config: NodeConfig,
        stored: StoredState,
    ) -> Result<(Self, RestoreReport), RestoreError> {
        let mut node = Self::new(params, config);
        let genesis = node.params.genesis_hash();
        let mut blocks = stored.blocks.into_iter().peekable();
        // The node never emits a `PutBlock` for genesis (it is compiled in), so a store fed
        // only with its outputs starts at a child of genesis; a store may also hold genesis
        // itself. Either way the stored chain must start from our genesis. (Before this
        // check required genesis to be stored first, so restoring a store filled from the
        // node's own outputs always failed with `GenesisMismatch`.)
        if let Some(first) = blocks.peek() {
            let first_hash = first.compute_hash();
            if first_hash == genesis {
                blocks.next();
            } else if first.header.height == 0 || first.header.prev_hash != genesis {
                return Err(RestoreError::GenesisMismatch {
                    stored: first_hash,
                    expected: genesis,
                });
            }
        }
        let mut verified = 0;
        for block in blocks {
            let hash = block.compute_hash();
            let parent = node
                .tree
                .get(&block.header.prev_hash)
                .ok_or(RestoreError::MissingParent(hash))?
                .parent_info();
            let height = block.header.height;
            let checked = validate_block(&node.params, block, &parent, None)
                .and_then(|c| match node.tree.find_in_ancestry(&parent.hash, &c.txids()[1..]) {
                    Some(txid) => Err(ValidationError::AlreadyMined(txid)),
                    None => Ok(c),
                })
                .map_err(|error| RestoreError::InvalidBlock { hash, height, error })?;
            match node.tree.insert(checked) {
                Ok(_) | Err(InsertError::Duplicate(_)) => verified += 1,
                Err(InsertError::UnknownParent(_)) => return Err(RestoreError::MissingParent(hash)),
            }
        }
        for tx in stored.mempool {
            let txid = tx.compute_txid();
            if tx.check_well_formed(false).is_ok() && node.tree.find_tx(&txid).is_none() {
                node.mempool.insert_unbounded(txid, tx);
            }
        }
        // Everything restored is already stored; nothing to persist or announce.
        node.outputs.clear();
        let report = RestoreReport {
            blocks_verified: verified,
            height: node.tree.height(),
            tip: node.tree.tip().hash,
            mempool: node.mempool.len(),
        };
        Ok((node, report))
    }

    // ----- queries -------------------------------------------------------------------

    /// Consensus parameters.
    pub fn params(&self) -> &Arc<ChainParams> {
        &self.params
    }
    /// Node settings.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }
    /// The block tree (best chain and side branches).
    pub fn tree(&self) -> &BlockTree {
        &self.tree
    }
    /// Pending transactions.
    pub fn mempool(&self) -> &Mempool {
        &self.mempool
    }
    /// Known peers.
    pub fn peers(&self) -> &PeerTable {
        &self.peers
    }
    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
    /// Blocks waiting for their parent.
    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }

    // ----- outputs -------------------------------------------------------------------

    /// The next thing the node wants done, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.outputs.is_empty() && !self.relay_txs.is_empty() {
            self.flush_tx_relay();
        }
        let out = self.outputs.pop_front();
        if matches!(out, Some(Output::Send { .. })) {
            self.stats.messages_out += 1;
        }
        out
    }

    /// When the node next wants `handle_timeout` called.
    pub fn poll_timeout(&self) -> u64 {
        self.next_tick
    }

    pub(crate) fn store(&mut self, op: StoreOp) {
        self.outputs.push_back(Output::Store(op));
    }

    pub(crate) fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    pub(crate) fn send(&mut self, to: PeerAddr, msg: Message) {
        self.outputs.push_back(Output::Send { to, msg });
    }

    // ----- local commands ------------------------------------------------------------

    /// Takes a transaction submitted here.
    pub fn submit_transaction(&mut self, tx: Transaction, _now: u64) -> Result<TxOutcome, TxRejected> {
        self.accept_tx(tx, &Origin::Local)
    }

    /// A block template on the best tip: the coinbase, then pending transactions oldest
    /// first up to the block limits. The caller searches a nonce and hands the block to
    /// [`Node::submit_mined_block`].
    pub fn block_template(&self, now: u64) -> Block {
        let tip = self.tree.tip();
        let timestamp = now.max(tip.block.header.timestamp + 1);
        let coinbase = Transaction::coinbase(self.config.miner.clone(), self.params.reward, timestamp);
        let mut size = Header::SIZE + 4 + coinbase.encoded_len();
        let mut transactions = vec![coinbase];
        for (_, tx) in self.mempool.iter_oldest() {
            let len = tx.encoded_len();
            if transactions.len() >= self.params.max_block_txs || size + len > self.params.max_block_bytes {
                break;
            }
            size += len;
            transactions.push(tx.clone());
        }
        let txids: Vec<Txid> = transactions.iter().map(Transaction::compute_txid).collect();
        Block {
            header: Header {
                version: chainsim_primitives::header::HEADER_VERSION,
                height: tip.height() + 1,
                prev_hash: tip.hash,
                merkle_root: compute_merkle_root(&txids).0,
                timestamp,
                bits: self.params.bits,
                nonce: 0,
            },
            transactions,
        }
    }

    /// Takes a block our miner found.
    pub fn submit_mined_block(&mut self, block: Block, now: u64) -> Result<BlockOutcome, BlockRejected> {
        self.accept_block(Arc::new(block), Origin::Mined, true, now)
    }

    /// Takes a block handed in by a local user (`POST /blocks/receive`).
    pub fn submit_block(&mut self, block: Block, now: u64) -> Result<BlockOutcome, BlockRejected> {
        self.accept_block(Arc::new(block), Origin::Local, true, now)
    }

    // ----- acceptance ----------------------------------------------------------------

    pub(crate) fn accept_tx(&mut self, tx: Transaction, origin: &Origin) -> Result<TxOutcome, TxRejected> {
        tx.check_well_formed(false)?;
        let txid = tx.compute_txid();
        if self.mempool.contains(&txid) || self.tree.find_tx(&txid).is_some() {
            return Ok(TxOutcome { txid, is_new: false });
        }
        self.mempool.insert(txid, tx.clone())?;
        self.stats.txs_accepted += 1;
        self.store(StoreOp::PutTx(txid, tx.clone()));
        self.emit(Event::Tx {
            txid,
            sender: tx.sender.clone(),
            recipient: tx.recipient.clone(),
            amount: tx.amount,
            from_peer: origin.peer().cloned(),
        });
        self.relay_txs.push((tx, origin.peer().cloned()));
        Ok(TxOutcome { txid, is_new: true })
    }

    /// Validates and inserts a block, applies fork choice, updates the mempool, and then
    /// connects any orphans that were waiting for it. `relay` sends it on to peers.
    pub(crate) fn accept_block(
        &mut self,
        block: Arc<Block>,
        origin: Origin,
        relay: bool,
        now: u64,
    ) -> Result<BlockOutcome, BlockRejected> {
        let outcome = self.accept_one(block, &origin, relay, now)?;
        self.connect_orphans(outcome.hash, now);
        Ok(outcome)
    }

    /// [`Node::accept_block`] without the orphans.
    pub(crate) fn accept_one(
        &mut self,
        block: Arc<Block>,
        origin: &Origin,
        relay: bool,
        now: u64,
    ) -> Result<BlockOutcome, BlockRejected> {
        let hash = block.compute_hash();
        if self.tree.contains(&hash) {
            return Err(BlockRejected::Duplicate(hash));
        }
        let prev = block.header.prev_hash;
        let Some(parent) = self.tree.get(&prev).map(|p| p.parent_info()) else {
            return Err(BlockRejected::UnknownParent(prev));
        };
        let checked = validate_block(&self.params, block, &parent, Some(now)).and_then(|c| {
            // The coinbase is unique per chain by its timestamp; only the others can repeat.
            match self.tree.find_in_ancestry(&prev, &c.txids()[1..]) {
                Some(txid) => Err(ValidationError::AlreadyMined(txid)),
                None => Ok(c),
            }
        });
        let checked = match checked {
            Ok(c) => c,
            Err(e) => {
                self.stats.blocks_rejected += 1;
                if self.rejected.len() >= 1_000 {
                    self.rejected.clear();
                }
                self.rejected.insert(hash, e.rule());
                self.emit(Event::BlockRejected {
                    hash,
                    rule: e.rule(),
                    reason: e.to_string(),
                    from_peer: origin.peer().cloned(),
                });
                return Err(e.into());
            }
        };
        self.insert_checked(checked, origin, relay)
    }

    fn insert_checked(
        &mut self,
        checked: CheckedBlock,
        origin: &Origin,
        relay: bool,
    ) -> Result<BlockOutcome, BlockRejected> {
        let hash = checked.hash();
        let block = checked.block().clone();
        let (change, pruned) = self.tree.insert(checked).map_err(|e| match e {
            InsertError::Duplicate(h) => BlockRejected::Duplicate(h),
            InsertError::UnknownParent(h) => BlockRejected::UnknownParent(h),
        })?;
        self.stats.blocks_accepted += 1;
        let chain_work = self.tree.get(&hash).map(|e| e.chain_work).unwrap_or_default();
        self.store(StoreOp::PutBlock {
            hash,
            block: block.clone(),
            chain_work,
        });
        for p in pruned {
            self.store(StoreOp::DeleteBlock(p));
        }
        if *origin == Origin::Mined && self.tree.is_active(&hash) {
            self.stats.blocks_mined += 1;
        }
        self.apply_tip_change(&change, origin, hash);
        if relay {
            self.relay_block(&block, origin.peer());
        }
        Ok(BlockOutcome {
            hash,
            height: block.header.height,
            change,
        })
    }

    /// Brings the mempool, the store and the listeners in line with a new best chain:
    /// mined transactions leave the mempool, those of disconnected blocks that the new
    /// branch lacks come back — nothing is lost in a reorg.
    fn apply_tip_change(&mut self, change: &TipChange, origin: &Origin, new_hash: BlockHash) {
        if change.is_unchanged() {
            return;
        }
        let mut returned = Vec::new();
        for hash in &change.disconnected {
            let Some(entry) = self.tree.get(hash) else { continue };
            let block = entry.block.clone();
            let txids = entry.txids.clone();
            for (tx, txid) in block.transactions.iter().zip(txids.iter()).skip(1) {
                if self.tree.find_tx(txid).is_none() && self.mempool.insert_unbounded(*txid, tx.clone()) {
                    returned.push(*txid);
                    self.store(StoreOp::PutTx(*txid, tx.clone()));
                    // Relay it again: peers that were on the winning branch all along never
                    // saw it, and would otherwise never mine it (a transaction is relayed
                    // only when first accepted, so nothing else brings it to them).
                    self.relay_txs.push((tx.clone(), None));
                }
            }
        }
        for hash in &change.connected {
            let Some(entry) = self.tree.get(hash) else { continue };
            let (txids, height, count) = (entry.txids.clone(), entry.height(), entry.block.transactions.len());
            for txid in txids.iter().skip(1) {
                if self.mempool.remove(txid).is_some() {
                    self.store(StoreOp::DeleteTx(*txid));
                }
            }
            self.emit(Event::Block {
                hash: *hash,
                height,
                txs: count,
                mined_here: *origin == Origin::Mined && *hash == new_hash,
                from_peer: origin.peer().cloned(),
            });
        }
        let tip = self.tree.tip().hash;
        self.store(StoreOp::SetTip(tip));
        if change.is_reorg() {
            self.stats.reorgs += 1;
            let fork_height = self.tree.height() - change.connected.len() as u64;
            self.emit(Event::Reorg {
                fork_height,
                disconnected: change.disconnected.clone(),
                connected: change.connected.clone(),
                returned,
            });
        }
        self.emit(Event::Tip {
            height: self.tree.height(),
            length: self.tree.height() + 1,
            tip,
            pending: self.mempool.len(),
        });
    }
}
