//! The sans-IO node: the chain, the mempool and the peer protocol composed into one state
//! machine, driven through one way in and one way out.
//!
//! [`Node::handle_input`] takes an [`Input`] (a message on a link, a link up or down, a
//! local command, the time) with the current [`Time`]; every effect (messages to send, dials,
//! store operations, events, replies to commands) queues up and is drained with
//! [`Node::poll_output`]; [`Node::poll_timeout`] says when the node next wants
//! [`Input::Timeout`]. Nothing here reads a clock, opens a socket or spawns a task, so tests
//! and simulators drive many nodes on a virtual clock, deterministically.
//!
//! Each concern owns its state: [`crate::peering`] the links and addresses, [`crate::sync`]
//! catch-up, [`crate::relay`] announcements and fetches, [`crate::orphans`] blocks waiting
//! for a parent. This file composes them; [`crate::messages`] dispatches peer messages and
//! [`crate::accept`] is where transactions and blocks enter.

use std::sync::Arc;
use std::time::Duration;

use chainsim_primitives::{Block, BlockHash, Header, Transaction, TxError, Txid, compute_merkle_root};
use thiserror::Error;

pub use crate::accept::Origin;
use crate::chain::{BlockTree, InsertError, TipChange, ValidationError, validate_in_chain};
use crate::input::{Command, Input};
use crate::keyed_hash::{KeyedHash, KeyedMap};
use crate::mempool::{DEFAULT_MEMPOOL_CAPACITY, Mempool, MempoolError};
use crate::metrics::ChainMetrics;
use crate::mining_schedule::MiningSchedule;
use crate::orphans::Orphans;
use crate::output::{Outbox, Output, Reply};
use crate::params::ChainParams;
use crate::peering::{Peering, PeeringConfig, TipInfo};
use crate::peers::{PeerAddr, PeerList};
use crate::protocol::{Message, WireBlock};
use crate::relay::{Relay, RelayMode};
use crate::store::{BlockSource, ChainStore, StoredState};
use crate::sync::{Stalled, Sync};
use crate::time::Time;

/// Settings of one node that are not consensus rules.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Name the block reward is paid to.
    pub miner: String,
    /// Seed of the node's random choices (its hello token secret).
    pub seed: u64,
    /// Links, addresses, keep-alive and retries.
    pub peering: PeeringConfig,
    /// How new blocks and transactions travel.
    pub relay: RelayMode,
    /// How long an announced item may take to arrive before another announcer is asked.
    pub fetch_timeout: Duration,
    /// How long a sync peer may take to answer a request.
    pub sync_timeout: Duration,
    /// Longest a sync peer may stay silent while another peer could serve the download.
    pub sync_stall: Duration,
    /// Most pending transactions.
    pub mempool_capacity: usize,
    /// Most blocks kept off the best chain.
    pub max_side_blocks: usize,
    /// Most blocks held whose parent is unknown.
    pub max_orphans: usize,
    /// When the node mines by itself (manual: never).
    pub mining: crate::MiningMode,
    /// Prune the block tree: entries of best-chain blocks deeper than this below the tip
    /// are dropped, and a block forking off deeper is refused (None: keep everything).
    pub keep_entries_depth: Option<u64>,
    /// Blocks the node expects to hold at once, or 0 for no guess: the block tree makes
    /// room for them when the node is built instead of growing by doubling (a simulator
    /// knows how many blocks its run mines; a live node does not).
    pub expected_blocks: usize,
    /// The kinds of event the node emits (all by default; a driver that reads only some
    /// spares the node building the others).
    pub events: crate::event::EventKinds,
}

impl NodeConfig {
    /// Defaults for a node listening at `listen`, paying `miner`.
    pub fn new(listen: PeerAddr, miner: impl Into<String>) -> Self {
        Self {
            miner: miner.into(),
            seed: 0,
            peering: PeeringConfig::new(listen),
            relay: RelayMode::Announce,
            fetch_timeout: Duration::from_secs(10),
            sync_timeout: Duration::from_secs(15),
            sync_stall: Duration::from_secs(2),
            mempool_capacity: DEFAULT_MEMPOOL_CAPACITY,
            max_side_blocks: 1_000,
            max_orphans: 100,
            mining: crate::MiningMode::Manual,
            keep_entries_depth: None,
            expected_blocks: 0,
            events: crate::event::EventKinds::ALL,
        }
    }

    /// Where this node listens.
    pub fn listen(&self) -> &PeerAddr {
        &self.peering.listen
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
    /// It breaks a rule of the ledger (a bad signature, a conflict, funds it lacks).
    #[error("refused ({rule}): {0}", rule = .0.rule())]
    Ledger(#[from] crate::ledger::LedgerError),
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
    /// Block bodies the store failed to give back.
    pub body_read_errors: u64,
}

/// One chainsim node, without IO.
///
/// The settings, the mempool and the metrics, 800 of its bytes, are boxed: a block's
/// announcement, most of what a node handles, reads none of them, and a simulator of
/// thousands of nodes loads each node's own bytes ahead of its next event (2,384 bytes with
/// them boxed, 3,136 inline).
#[derive(Debug)]
pub struct Node {
    pub(crate) params: Arc<ChainParams>,
    pub(crate) config: Box<NodeConfig>,
    pub(crate) tree: BlockTree,
    pub(crate) mempool: Box<Mempool>,
    pub(crate) peering: Peering,
    pub(crate) sync: Sync,
    pub(crate) relay: Relay,
    pub(crate) orphans: Orphans,
    /// Recently refused blocks and the rule they broke, so they are not checked again.
    pub(crate) rejected: KeyedMap<BlockHash, &'static str>,
    pub(crate) out: Outbox,
    pub(crate) stats: Stats,
    /// Stale blocks, reorganisations, propagation: boxed, as only a block taken reads them.
    pub(crate) metrics: Box<ChainMetrics>,
    /// When to mine by itself.
    pub(crate) mining: MiningSchedule,
}

impl Node {
    /// A node holding only genesis, keeping every block body in memory (tests; many nodes
    /// in one process share bodies through their `Arc`). The simulator opens its nodes on
    /// one shared store instead ([`Node::open`]).
    pub fn new(params: Arc<ChainParams>, config: NodeConfig) -> Self {
        Self::build(params, config, None)
    }

    fn build(params: Arc<ChainParams>, config: NodeConfig, source: Option<Arc<dyn BlockSource>>) -> Self {
        let mut rng = fastrand::Rng::with_seed(config.seed);
        let secret: [u8; 16] = std::array::from_fn(|_| rng.u8(..));
        let mut tree = BlockTree::with_source(params.genesis().clone(), config.max_side_blocks, source);
        tree.seed_index(rng.u64(..));
        tree.keep_entries(config.keep_entries_depth);
        tree.reserve(config.expected_blocks);
        if params.ledger == crate::ledger::LedgerKind::Accounts {
            // Only fails for a genesis rewarding a non-address; ours are compiled in.
            let _ = tree.enable_ledger();
        }
        let mining = MiningSchedule::new(config.mining, rng.u64(..));
        let keyed = KeyedHash::new(rng.u64(..));
        Self {
            metrics: Box::new(ChainMetrics::with_room(config.expected_blocks)),
            mining,
            tree,
            mempool: Box::new(Mempool::new(config.mempool_capacity)),
            peering: Peering::new(config.peering.clone(), params.genesis_hash(), secret),
            sync: Sync::new(config.sync_timeout, config.sync_stall),
            relay: Relay::new(config.relay, config.fetch_timeout, keyed),
            orphans: Orphans::new(config.max_orphans),
            rejected: KeyedMap::with_hasher(keyed),
            out: Outbox::with_events(config.events),
            stats: Stats::default(),
            params,
            config: Box::new(config),
        }
    }

    /// Rebuilds a node from stored state, validating every stored block from genesis;
    /// bodies stay in memory (see [`Node::open`] for a node that reads them from a store).
    pub fn restore(
        params: Arc<ChainParams>,
        config: NodeConfig,
        stored: StoredState,
    ) -> Result<(Self, RestoreReport), RestoreError> {
        let mut node = Self::new(params, config);
        let mut verified = 0;
        for block in stored.blocks {
            verified += node.restore_block(block)?;
        }
        node.restore_mempool(stored.mempool);
        Ok(node.restored(verified))
    }

    /// Opens a node on `store`: streams every stored block through validation from
    /// genesis, one at a time, and from then on reads bodies back from the store instead of
    /// keeping them in memory. The outer error is the store's own; the inner one says the
    /// stored chain is not valid.
    pub fn open<S: ChainStore>(
        params: Arc<ChainParams>,
        config: NodeConfig,
        store: &S,
    ) -> Result<Result<(Self, RestoreReport), RestoreError>, S::Error> {
        let mut node = Self::build(params, config, Some(store.reader()));
        let mut verified = 0;
        let mut failure = None;
        store.for_each_block(&mut |_, block| match node.restore_block(block) {
            Ok(n) => {
                verified += n;
                std::ops::ControlFlow::Continue(())
            }
            Err(e) => {
                failure = Some(e);
                std::ops::ControlFlow::Break(())
            }
        })?;
        if let Some(e) = failure {
            return Ok(Err(e));
        }
        let meta = store.load_meta()?;
        node.restore_mempool(meta.mempool);
        Ok(Ok(node.restored(verified)))
    }

    /// Validates and inserts one stored block; 1 when it counts as verified, 0 for
    /// genesis. The node never stores genesis (it is compiled in), so a store fed with its
    /// outputs starts at a child of genesis; a store may also hold genesis itself. Either
    /// way the stored chain must start from our genesis.
    fn restore_block(&mut self, block: Arc<Block>) -> Result<usize, RestoreError> {
        let hash = block.compute_hash();
        let genesis = self.params.genesis_hash();
        if hash == genesis {
            return Ok(0);
        }
        if self.tree.len() == 1 && (block.header.height == 0 || block.header.prev_hash != genesis) {
            return Err(RestoreError::GenesisMismatch {
                stored: hash,
                expected: genesis,
            });
        }
        let height = block.header.height;
        if !self.tree.contains(&block.header.prev_hash) {
            return Err(RestoreError::MissingParent(hash));
        }
        let checked = validate_in_chain(&self.params, block, &self.tree, None)
            .map_err(|error| RestoreError::InvalidBlock { hash, height, error })?;
        match self.tree.insert_stored(&checked) {
            Ok(_) | Err(InsertError::Duplicate(_)) => Ok(1),
            Err(InsertError::UnknownParent(_)) => Err(RestoreError::MissingParent(hash)),
        }
    }

    fn restore_mempool(&mut self, mut txs: Vec<Transaction>) {
        // Nonce order, so each sender's transfers follow one another again.
        txs.sort_by_key(|t| t.nonce());
        for tx in txs {
            let txid = tx.compute_txid();
            if tx.check_well_formed(false).is_ok()
                && self.tree.find_tx(&txid).is_none()
                && self.ledger_admits(&tx, false).is_ok()
            {
                self.mempool.insert_unbounded(txid, tx);
            }
        }
    }

    /// The ledger's rules for a transaction joining the mempool: its kind, then on an
    /// accounts network its nonce and funds against the tip and what is pending, and last
    /// (the costly part, done once per transaction) its signature.
    /// `verified`: the signature was checked already (see [`crate::ledger::VerifiedTx`]).
    pub(crate) fn ledger_admits(&self, tx: &Transaction, verified: bool) -> Result<(), crate::ledger::LedgerError> {
        crate::ledger::check_kind(self.params.ledger, tx)?;
        let Some(ledger) = self.tree.ledger() else {
            return Ok(());
        };
        crate::ledger::check_pending(ledger, &self.mempool, tx)?;
        if !verified && !tx.verify_signature() {
            return Err(crate::ledger::LedgerError::BadSignature);
        }
        Ok(())
    }

    /// Everything restored is stored already: nothing to persist or announce.
    fn restored(mut self, verified: usize) -> (Self, RestoreReport) {
        self.out.clear();
        let report = RestoreReport {
            blocks_verified: verified,
            height: self.tree.height(),
            tip: self.tree.tip_hash(),
            mempool: self.mempool.len(),
        };
        (self, report)
    }

    // ----- the one way in, the one way out -------------------------------------------

    /// Handles one input at time `now`; its effects queue up for [`Node::poll_output`].
    pub fn handle_input(&mut self, now: Time, input: Input) {
        match input {
            Input::LinkUp { peer, addr } => {
                let tip = self.tip_info();
                self.peering.on_link_up(peer, addr, tip, now, &mut self.out);
            }
            Input::DialFailed { addr, reason } => self.peering.on_dial_failed(&addr, &reason, now, &mut self.out),
            Input::LinkDown { peer, reason } => self.on_link_down(peer, &reason, now),
            Input::Message { from, msg } => self.on_message(from, msg, now),
            Input::Garbage { from, reason } => {
                self.stats.messages_in += 1;
                self.peering
                    .misbehave(from, 50, &format!("sent garbage: {reason}"), now, &mut self.out);
            }
            Input::Command { id, command } => {
                let reply = self.on_command(command, now);
                self.out.reply(id, reply);
            }
            Input::Timeout => self.on_timeout(now),
            Input::Committed => self.tree.release_bodies(),
        }
    }

    /// The next thing the node wants done, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.flush_when_idle();
        self.out.pop()
    }

    /// Hands every output to `carry`, in order: what [`Node::poll_output`] gives until
    /// `None`, taken a queue at a time rather than one call per output (the drivers' glue,
    /// [`crate::link::drain`], runs it after every input).
    pub fn drain_outputs(&mut self, mut carry: impl FnMut(Output)) {
        loop {
            self.flush_when_idle();
            if self.out.is_empty() {
                return;
            }
            self.out.take_all().into_iter().for_each(&mut carry);
        }
    }

    /// Transactions wait to be announced until everything else queued has gone out (a
    /// burst of them then goes in one announcement per link).
    fn flush_when_idle(&mut self) {
        if self.out.is_empty() && self.relay.has_pending_txs() {
            self.flush_tx_relay();
        }
    }

    /// When the node next wants [`Input::Timeout`]; `None` when nothing is due until some
    /// other input arrives.
    pub fn poll_timeout(&self) -> Option<Time> {
        // Asked after every input: the earliest as a plain minimum, none being "never"
        // (a deadline that far off is none).
        let earliest = [
            self.peering.next_deadline(),
            self.sync.next_deadline(),
            self.relay.next_deadline(),
            self.mining.deadline(),
        ]
        .map(|d| d.unwrap_or(Time::NEVER))
        .into_iter()
        .fold(Time::NEVER, Time::min);
        (earliest != Time::NEVER).then_some(earliest)
    }

    /// Handles a local command and returns its answer at once, for callers that want it
    /// synchronously (tests, benchmarks). The same as [`Input::Command`] followed by taking
    /// its [`Output::Reply`]; every other effect still queues for [`Node::poll_output`].
    pub fn command(&mut self, now: Time, command: Command) -> Reply {
        self.on_command(command, now)
    }

    fn on_command(&mut self, command: Command, now: Time) -> Reply {
        match command {
            Command::SubmitTx(tx) => Reply::Tx(self.accept_tx(tx, None, now, false)),
            Command::SubmitVerifiedTx(v) => Reply::Tx(self.accept_tx(v.into_inner(), None, now, true)),
            Command::SubmitBlock(block) => Reply::Block(self.accept_block(hashed(block), Origin::Local, true, now)),
            Command::MinedBlock(block) => Reply::Block(self.accept_block(hashed(block), Origin::Mined, true, now)),
            Command::AddPeers(addrs) => {
                self.peering.add_pinned(addrs, now, &mut self.out);
                Reply::Peers(self.peering.book().iter().map(|(a, _)| a.clone()).collect())
            }
            Command::BlockPeer(addr) => {
                self.peering.block(addr, now, &mut self.out);
                Reply::Done
            }
            Command::UnblockPeer(addr) => Reply::Unblocked(self.peering.unblock(&addr, now, &mut self.out)),
            Command::Resync => {
                self.resync(now);
                Reply::Done
            }
            Command::SetMining(mode) => match mode.validate() {
                Ok(()) => {
                    self.mining.set_mode(mode, now);
                    Reply::Done
                }
                Err(e) => Reply::Refused(e.to_string()),
            },
            Command::Offer(block) => Reply::Peers(self.offer(block, now)),
        }
    }

    /// Sends `block` to every ready peer without checking or storing it; returns their addresses.
    fn offer(&mut self, block: Block, now: Time) -> Vec<PeerAddr> {
        let block = Arc::new(block);
        let mut sent_to = Vec::new();
        for id in self.peering.ready_ids() {
            let msg = Message::Block {
                block: WireBlock(block.clone()),
            };
            self.peering.send(id, msg, now, &mut self.out);
            sent_to.extend(self.peering.addr_of(id).cloned());
        }
        sent_to
    }

    fn on_timeout(&mut self, now: Time) {
        if self.mining.on_timeout(now) {
            self.out.start_mining();
        }
        let tip = self.tip_info();
        self.peering.on_timeout(tip, now, &mut self.out);
        let our_work = self.tree.tip_work();
        match self.sync.stalled(now, self.peering.links(), our_work) {
            Some(Stalled::TimedOut(peer)) => {
                let reason = "stalled during sync: no answer in time";
                self.peering.misbehave(peer, 20, reason, now, &mut self.out);
            }
            Some(Stalled::Slow(peer)) => {
                let reason = "stalled during sync: silent while another peer could serve";
                self.peering.misbehave(peer, 10, reason, now, &mut self.out);
            }
            None => {}
        }
        for (peer, wanted) in self.relay.on_timeout(now) {
            self.ask(peer, wanted, now);
        }
        self.maybe_start_sync(now);
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
    /// Links and addresses.
    pub fn peering(&self) -> &Peering {
        &self.peering
    }
    /// Every known peer with its state (`/peers`).
    pub fn peers(&self) -> PeerList {
        PeerList(self.peering.view())
    }
    /// The download in progress, if any.
    pub fn sync_peer(&self) -> Option<&crate::sync::Download> {
        self.sync.download()
    }
    /// Catch-up state.
    pub fn sync(&self) -> &Sync {
        &self.sync
    }
    /// Whether a download is in progress or due (the live node serves once it is not).
    pub fn is_syncing(&self) -> bool {
        self.sync.is_syncing(self.peering.links(), self.tree.tip_work())
    }
    /// Counters.
    pub fn stats(&self) -> Stats {
        Stats {
            messages_out: self.out.messages,
            body_read_errors: self.tree.body_read_errors(),
            ..self.stats.clone()
        }
    }
    /// Stale blocks, reorganisations and propagation delays seen.
    pub fn metrics(&self) -> &ChainMetrics {
        &self.metrics
    }
    /// When the node mines by itself.
    pub fn mining_schedule(&self) -> &MiningSchedule {
        &self.mining
    }
    /// Blocks waiting for their parent.
    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }
    /// Our tip, as hellos and pings tell it.
    pub(crate) fn tip_info(&self) -> TipInfo {
        TipInfo {
            height: self.tree.height(),
            work: self.tree.tip_work(),
        }
    }

    /// A block template on the best tip: the coinbase, then pending transactions oldest
    /// first up to the block limits. The caller searches a nonce and hands the block back
    /// as [`Command::MinedBlock`].
    pub fn block_template(&self, now: Time) -> Block {
        let tip = self.tree.tip();
        let timestamp = now.as_millis().max(tip.header().timestamp + 1);
        let coinbase = Transaction::coinbase(self.config.miner.clone(), self.params.reward, timestamp);
        let mut size = Header::SIZE + 4 + coinbase.encoded_len();
        let mut transactions = vec![coinbase];
        let fits = |txs: &Vec<Transaction>, size: usize, len: usize| {
            txs.len() < self.params.max_block_txs && size + len <= self.params.max_block_bytes
        };
        match self.tree.ledger() {
            None => {
                for (_, tx) in self.mempool.iter_oldest() {
                    let len = tx.encoded_len();
                    if !fits(&transactions, size, len) {
                        break;
                    }
                    size += len;
                    transactions.push(tx.clone());
                }
            }
            Some(ledger) => {
                let mut view = crate::ledger::View::new(ledger);
                for tx in crate::ledger::template_order(&self.mempool) {
                    let len = tx.encoded_len();
                    if !fits(&transactions, size, len) {
                        break;
                    }
                    if view.apply_tx(tx).is_ok() {
                        size += len;
                        transactions.push(tx.clone());
                    }
                }
            }
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
}

/// A block handed in by a command, hashed once for all the steps of its acceptance.
fn hashed(block: Block) -> crate::chain::HashedBlock {
    crate::chain::HashedBlock::new(Arc::new(block))
}
