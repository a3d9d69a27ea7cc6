//! The driver: the one task that owns the sans-IO [`Node`] and the store.
//!
//! HTTP handlers and peer workers talk to it only through [`Command`]s on a channel, so
//! consensus state needs no lock. The loop takes every command waiting (up to a batch),
//! feeds them to the node, drains the node's outputs, writes all store operations of the
//! batch in ONE durable commit (group commit: many concurrent requests share one fsync),
//! and only then answers the requests and publishes events. So an acknowledged transaction
//! or block is always on disk. Peer messages leave before the commit (see `finish_batch`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use chainsim_core::link::{Effects, drain};
use chainsim_core::node::{BlockOutcome, BlockRejected, TxOutcome, TxRejected};
use chainsim_core::{
    ChainStore, CommandId, Event, Input, LinkConditions, Message, MiningMode, Node, PeerAddr, PeerId,
    Reply as CoreReply, StoreOp, Time,
};
use chainsim_primitives::{Block, Transaction};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::api::views::BlockRef;
use crate::link_table::LinkTable;
use crate::links::Links;
use crate::miner::{Found, Job};
use crate::wire::{DEFAULT_FRAME_BUDGET, Frame};

/// Most commands handled before one commit.
const MAX_BATCH: usize = 1_024;

pub use chainsim_api::now_ms;

/// The wall clock as the core's [`Time`].
pub fn now() -> Time {
    Time::from_millis(now_ms())
}

/// Where a reply goes.
pub type Reply<T> = oneshot::Sender<T>;

/// A read-only look at the node, run inside the driver.
pub type ReadFn = Box<dyn FnOnce(&Node) + Send>;

/// Why `/mine` produced no block.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MineError {
    /// The node is shutting down.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// Storing the block failed.
    #[error("storage failure: {0}")]
    Storage(String),
}

/// A request to the driver.
pub enum Command {
    /// A transaction from the API.
    SubmitTx {
        /// The transaction.
        tx: Transaction,
        /// Where the outcome goes.
        reply: Reply<Result<TxOutcome, TxRejected>>,
    },
    /// A signed transaction from the API, its signature checked by the handler (off this
    /// thread).
    SubmitVerifiedTx {
        /// The transaction.
        tx: chainsim_core::ledger::VerifiedTx,
        /// Where the outcome goes.
        reply: Reply<Result<TxOutcome, TxRejected>>,
    },
    /// Mine one block; the reply comes when it is mined and stored.
    Mine {
        /// Where the block goes.
        reply: Reply<Result<BlockRef, MineError>>,
    },
    /// A block handed in through the API.
    SubmitBlock {
        /// The block.
        block: Block,
        /// Where the outcome goes.
        reply: Reply<Result<BlockOutcome, BlockRejected>>,
    },
    /// Something happened on a link (transport to driver).
    Link(Input),
    /// A message arrived on a link; its bytes count against the frame budget until the
    /// driver has handled it.
    Frame {
        /// The link.
        from: PeerId,
        /// The message and its share of the budget.
        frame: Frame,
    },
    /// A dial failed (transport to driver).
    DialFailed {
        /// The link number it would have had.
        peer: PeerId,
        /// The address.
        addr: PeerAddr,
        /// Why.
        reason: String,
    },
    /// Someone opened a peer connection to us (`GET /p2p` upgraded).
    Accept(TokioIo<Upgraded>),
    /// Add peers to contact.
    AddPeers {
        /// The addresses.
        addrs: Vec<PeerAddr>,
        /// Every known peer afterwards.
        reply: Reply<Vec<PeerAddr>>,
    },
    /// Cut the link with a peer.
    BlockPeer {
        /// The peer.
        addr: PeerAddr,
        /// Done.
        reply: Reply<()>,
    },
    /// Allow the link with a peer again.
    UnblockPeer {
        /// The peer.
        addr: PeerAddr,
        /// Whether it was blocked.
        reply: Reply<bool>,
    },
    /// Change the conditions of links to a peer (any field left `None` stays).
    SetLink {
        /// The peer.
        addr: PeerAddr,
        /// What to change.
        change: chainsim_api::LinkRequest,
        /// The conditions now in force, or why the change was refused.
        reply: Reply<Result<LinkConditions, String>>,
    },
    /// Change when the node mines by itself.
    SetMining {
        /// The new mode.
        mode: MiningMode,
        /// Done, or why the mode was refused.
        reply: Reply<Result<(), String>>,
    },
    /// Send a block to every ready peer, neither checked nor kept (the tamper lesson).
    Offer {
        /// The block.
        block: Block,
        /// The peers it went to.
        reply: Reply<Vec<PeerAddr>>,
    },
    /// Ask every peer for what we lack, now.
    Resync {
        /// Done sending.
        reply: Reply<()>,
    },
    /// Look at the node.
    Read(ReadFn),
}

/// An event ready for SSE clients: its name and JSON data, serialised once.
#[derive(Debug, Clone)]
pub struct SseEvent {
    /// Event name.
    pub name: &'static str,
    /// JSON payload.
    pub data: String,
}

/// State shared between the driver, the handlers and the peer workers.
#[derive(Debug)]
pub struct Shared {
    /// Where this node listens.
    pub listen: PeerAddr,
    /// Whether a block is being mined.
    pub mining: AtomicBool,
    /// Peer frames queued and not yet written.
    pub inflight: AtomicUsize,
    /// HTTP requests served.
    pub http_requests: AtomicU64,
    /// HTTP requests answered with an error.
    pub http_errors: AtomicU64,
    /// Hashes tried by the miner since start.
    pub hashes: AtomicU64,
    /// Flips to true once the initial sync is over and the public API may answer.
    pub ready: watch::Sender<bool>,
    /// The conditions of every link.
    pub links: LinkTable,
}

/// A cheap, cloneable way to talk to the driver.
#[derive(Clone)]
pub struct NodeHandle {
    tx: mpsc::Sender<Command>,
    events: broadcast::Sender<Arc<SseEvent>>,
    /// Shared counters and flags.
    pub shared: Arc<Shared>,
}

/// The driver has stopped (the node is shutting down).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the node is shutting down")]
pub struct DriverGone;

impl NodeHandle {
    /// Sends a command.
    pub async fn send(&self, cmd: Command) -> Result<(), DriverGone> {
        self.tx.send(cmd).await.map_err(|_| DriverGone)
    }

    /// Sends a command built around a reply channel and waits for the reply.
    pub async fn request<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, DriverGone> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx)).await?;
        rx.await.map_err(|_| DriverGone)
    }

    /// Runs `f` on the node inside the driver and returns its result. Keep `f` short:
    /// clone what is needed (blocks are behind `Arc`) and format outside.
    pub async fn read<T: Send + 'static>(&self, f: impl FnOnce(&Node) -> T + Send + 'static) -> Result<T, DriverGone> {
        self.request(|reply| {
            Command::Read(Box::new(move |node: &Node| {
                let _ = reply.send(f(node));
            }))
        })
        .await
    }

    /// A new subscription to the node's events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<SseEvent>> {
        self.events.subscribe()
    }

    /// A sender for peer workers to report back on.
    pub(crate) fn command_sender(&self) -> mpsc::Sender<Command> {
        self.tx.clone()
    }
}

/// Settings of the driver.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Mining threads per block.
    pub mine_threads: usize,
    /// Port, used to prefix log lines like the original.
    pub port: u16,
    /// Conditions of links not set one by one.
    pub link_defaults: LinkConditions,
}

/// Starts the driver task. It stops when `shutdown` turns true, after a last commit, or at
/// once when a commit fails, and then ends with that storage error: the process must not
/// linger refusing every request.
pub fn spawn<S>(
    node: Node,
    store: S,
    config: DriverConfig,
    shutdown: watch::Receiver<bool>,
) -> (NodeHandle, tokio::task::JoinHandle<Result<(), S::Error>>)
where
    S: ChainStore + Send + 'static,
    S::Error: Send,
{
    let (tx, rx) = mpsc::channel(8_192);
    let (events, _) = broadcast::channel(4_096);
    let (ready, _) = watch::channel(false);
    let shared = Arc::new(Shared {
        listen: node.config().listen().clone(),
        mining: AtomicBool::new(false),
        inflight: AtomicUsize::new(0),
        http_requests: AtomicU64::new(0),
        http_errors: AtomicU64::new(0),
        hashes: AtomicU64::new(0),
        ready,
        links: LinkTable::new(config.link_defaults),
    });
    let handle = NodeHandle {
        tx,
        events: events.clone(),
        shared: shared.clone(),
    };
    let (found_tx, found_rx) = mpsc::unbounded_channel();
    let driver = Driver {
        links: Links::new(
            handle.command_sender(),
            shared.clone(),
            tokio::runtime::Handle::current(),
            DEFAULT_FRAME_BUDGET,
        ),
        node,
        store,
        rx,
        found_tx,
        found_rx,
        events,
        shared,
        config,
        mine_queue: VecDeque::new(),
        job: None,
        next_job_id: 1,
        pending: HashMap::new(),
        next_command: 0,
        after_commit: Vec::new(),
        failure: None,
    };
    // The driver gets a thread of its own: its durable commits block for a disk sync, which
    // must not stall one of the runtime's few workers serving HTTP.
    let task =
        tokio::task::spawn_blocking(
            move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt.block_on(driver.run(shutdown)),
                Err(e) => {
                    tracing::error!("cannot start the driver's runtime: {e}");
                    Ok(())
                }
            },
        );
    (handle, task)
}

/// Where the answer to a core command goes.
enum Pending {
    Tx(Reply<Result<TxOutcome, TxRejected>>),
    Block(Reply<Result<BlockOutcome, BlockRejected>>),
    Peers(Reply<Vec<PeerAddr>>),
    Done(Reply<()>),
    Unblocked(Reply<bool>),
    /// A setting: done, or refused with a reason.
    Setting(Reply<Result<(), String>>),
    /// Our miner's block, nonce `hash` for the log.
    Mined(chainsim_primitives::BlockHash),
}

struct Driver<S: ChainStore> {
    node: Node,
    store: S,
    rx: mpsc::Receiver<Command>,
    found_tx: mpsc::UnboundedSender<Found>,
    found_rx: mpsc::UnboundedReceiver<Found>,
    events: broadcast::Sender<Arc<SseEvent>>,
    links: Links,
    shared: Arc<Shared>,
    config: DriverConfig,
    mine_queue: VecDeque<MineRequest>,
    job: Option<Job>,
    next_job_id: u64,
    /// Commands given to the core whose answers have not come out yet.
    pending: HashMap<CommandId, Pending>,
    next_command: u64,
    /// Replies held back until the batch's commit is durable.
    after_commit: Vec<Box<dyn FnOnce() + Send>>,
    /// The commit that failed: nothing more is acknowledged.
    failure: Option<S::Error>,
}

/// Who wants a block mined.
enum MineRequest {
    /// `/mine`: the block goes back to the caller.
    Api(Reply<Result<BlockRef, MineError>>),
    /// The core's mining schedule: nobody waits for it.
    Scheduled,
}

impl MineRequest {
    /// Whether nobody wants the block any more (the caller went away).
    fn is_abandoned(&self) -> bool {
        matches!(self, MineRequest::Api(r) if r.is_closed())
    }
}

/// What one drain of the core produced besides link actions (which go out at once).
#[derive(Default)]
struct Drained {
    ops: Vec<StoreOp>,
    events: Vec<Event>,
    replies: Vec<(CommandId, CoreReply)>,
    /// The mining schedule asked for a block.
    start_mining: bool,
}

/// The driver's side of the transport glue: links act at once, the rest waits for the commit.
struct DriverFx<'a> {
    port: u16,
    links: &'a mut Links,
    out: &'a mut Drained,
}

impl Effects for DriverFx<'_> {
    fn connect(&mut self, addr: PeerAddr) {
        self.links.connect(addr);
    }
    fn send(&mut self, to: PeerId, msg: Message) {
        self.links.send(to, msg);
    }
    fn disconnect(&mut self, peer: PeerId, reason: String) {
        tracing::info!("[{}] closing peer {reason}", self.port);
        self.links.close(peer);
    }
    fn store(&mut self, op: StoreOp) {
        self.out.ops.push(op);
    }
    fn event(&mut self, event: Event) {
        self.out.events.push(event);
    }
    fn reply(&mut self, id: CommandId, reply: CoreReply) {
        self.out.replies.push((id, reply));
    }
    fn start_mining(&mut self) {
        self.out.start_mining = true;
    }
}

impl<S: ChainStore> Driver<S> {
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), S::Error> {
        loop {
            // Sleep until the core's own deadline, not on a fixed tick.
            let deadline = self.node.poll_timeout().map(|t| {
                let wait = Duration::from_millis(t.as_millis().saturating_sub(now_ms()));
                tokio::time::Instant::now() + wait
            });
            let timer = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => break,
                Some(found) = self.found_rx.recv() => self.on_found(found),
                cmd = self.rx.recv() => {
                    let Some(cmd) = cmd else { break };
                    self.handle(cmd);
                    for _ in 0..MAX_BATCH {
                        match self.rx.try_recv() {
                            Ok(cmd) => self.handle(cmd),
                            Err(_) => break,
                        }
                    }
                }
                _ = timer => self.node.handle_input(now(), Input::Timeout),
            }
            self.finish_batch();
            if self.failure.is_some() {
                break;
            }
        }
        if let Some(job) = self.job.take() {
            job.cancel();
        }
        // After a failed commit nothing more is written, nor acknowledged.
        if self.failure.is_none() {
            self.finish_batch();
        }
        for request in self.mine_queue.drain(..) {
            if let MineRequest::Api(reply) = request {
                let _ = reply.send(Err(MineError::ShuttingDown));
            }
        }
        match self.failure.take() {
            Some(e) => Err(e),
            None => {
                tracing::info!("[{}] driver stopped; store closed cleanly", self.config.port);
                Ok(())
            }
        }
    }

    /// Gives the core a command; its answer goes to `pending` when it comes out.
    fn command(&mut self, command: chainsim_core::Command, pending: Pending) {
        self.next_command += 1;
        let id = CommandId(self.next_command);
        self.pending.insert(id, pending);
        self.node.handle_input(now(), Input::Command { id, command });
    }

    fn handle(&mut self, cmd: Command) {
        use chainsim_core::Command as C;
        match cmd {
            Command::SubmitTx { tx, reply } => self.command(C::SubmitTx(tx), Pending::Tx(reply)),
            Command::SubmitVerifiedTx { tx, reply } => self.command(C::SubmitVerifiedTx(tx), Pending::Tx(reply)),
            Command::Mine { reply } => self.mine_queue.push_back(MineRequest::Api(reply)),
            Command::SubmitBlock { block, reply } => self.command(C::SubmitBlock(block), Pending::Block(reply)),
            Command::Frame { from, frame } => {
                let (msg, held) = frame.into_parts();
                self.node.handle_input(now(), Input::Message { from, msg });
                drop(held);
            }
            Command::Link(input) => {
                if let Input::LinkDown { peer, reason } = &input {
                    tracing::debug!("[{}] link {peer} down: {reason}", self.config.port);
                    self.links.forget(*peer);
                }
                self.node.handle_input(now(), input);
            }
            Command::DialFailed { peer, addr, reason } => {
                tracing::debug!("[{}] dial {addr} failed: {reason}", self.config.port);
                self.links.forget(peer);
                self.node.handle_input(now(), Input::DialFailed { addr, reason });
            }
            Command::Accept(stream) => {
                let peer = self.links.accept(stream);
                self.node.handle_input(now(), Input::LinkUp { peer, addr: None });
            }
            Command::AddPeers { addrs, reply } => self.command(C::AddPeers(addrs), Pending::Peers(reply)),
            Command::BlockPeer { addr, reply } => {
                self.shared.links.set_cut(addr.clone(), true);
                self.command(C::BlockPeer(addr), Pending::Done(reply));
            }
            Command::UnblockPeer { addr, reply } => {
                self.shared.links.set_cut(addr.clone(), false);
                self.command(C::UnblockPeer(addr), Pending::Unblocked(reply));
            }
            Command::SetLink { addr, change, reply } => {
                let result = self.set_link(addr, change);
                let _ = reply.send(result);
            }
            Command::SetMining { mode, reply } => self.command(C::SetMining(mode), Pending::Setting(reply)),
            Command::Resync { reply } => self.command(C::Resync, Pending::Done(reply)),
            Command::Offer { block, reply } => self.command(C::Offer(block), Pending::Peers(reply)),
            Command::Read(f) => f(&self.node),
        }
    }

    /// Routes the core's answer to whoever asked.
    fn answer(&mut self, id: CommandId, reply: CoreReply) {
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        match (pending, reply) {
            (Pending::Tx(r), CoreReply::Tx(v)) => self.reply_later(r, v),
            (Pending::Block(r), CoreReply::Block(v)) => self.reply_later(r, v),
            (Pending::Peers(r), CoreReply::Peers(v)) => self.reply_later(r, v),
            (Pending::Done(r), _) => self.reply_later(r, ()),
            (Pending::Unblocked(r), CoreReply::Unblocked(v)) => self.reply_later(r, v),
            (Pending::Setting(r), CoreReply::Refused(why)) => self.reply_later(r, Err(why)),
            (Pending::Setting(r), _) => self.reply_later(r, Ok(())),
            (Pending::Mined(hash), CoreReply::Block(v)) => self.on_mined(hash, v),
            _ => tracing::error!(
                "[{}] the core answered command {id:?} with another kind",
                self.config.port
            ),
        }
    }

    /// Applies a change to the conditions of links to `addr`; a change of `cut` cuts or
    /// restores the link in the core too, exactly as `/peers/block` and `/peers/unblock`.
    fn set_link(&mut self, addr: PeerAddr, change: chainsim_api::LinkRequest) -> Result<LinkConditions, String> {
        let before = self.shared.links.get(Some(&addr));
        let after = crate::api::views::apply_link_change(before, &change);
        after.validate().map_err(|e| e.to_string())?;
        self.shared.links.set(addr.clone(), after);
        if after.cut != before.cut {
            let command = if after.cut {
                chainsim_core::Command::BlockPeer(addr)
            } else {
                chainsim_core::Command::UnblockPeer(addr)
            };
            // The answer says nothing new: the table already holds the outcome.
            let _ = self.node.command(now(), command);
        }
        Ok(after)
    }

    fn reply_later<T: Send + 'static>(&mut self, reply: Reply<T>, value: T) {
        self.after_commit.push(Box::new(move || {
            let _ = reply.send(value);
        }));
    }

    fn on_found(&mut self, found: Found) {
        let Some(job) = self.job.take_if(|j| j.id == found.job_id) else {
            return; // a cancelled job's late result
        };
        self.shared
            .hashes
            .fetch_add(job.hashes.load(Ordering::Relaxed), Ordering::Relaxed);
        let mut block = job.template.clone();
        block.header.nonce = found.nonce;
        let hash = block.compute_hash();
        self.command(chainsim_core::Command::MinedBlock(block), Pending::Mined(hash));
    }

    fn on_mined(&mut self, hash: chainsim_primitives::BlockHash, outcome: Result<BlockOutcome, BlockRejected>) {
        match outcome {
            Ok(outcome) if self.node.tree().is_active(&outcome.hash) => {
                let entry = BlockRef::of(self.node.tree(), &outcome.hash);
                if let (Some(entry), Some(request)) = (entry, self.mine_queue.pop_front()) {
                    tracing::info!(
                        "[{}] mined block {} at height {} with {} transactions",
                        self.config.port,
                        &hash.to_hex()[..16],
                        outcome.height,
                        entry.block.transactions.len()
                    );
                    if let MineRequest::Api(reply) = request {
                        self.reply_later(reply, Ok(entry));
                    }
                }
            }
            Ok(_) => tracing::info!(
                "[{}] mined block {hash} lost the race to another branch; mining again",
                self.config.port
            ),
            Err(e) => tracing::warn!("[{}] mined block {hash} was not accepted: {e}", self.config.port),
        }
    }

    /// Drains the node's outputs, commits, then lets replies, events and messages out.
    fn finish_batch(&mut self) {
        // Peer messages go out as they are drained, before the commit: durability gates
        // acknowledgements to clients, not gossip (a peer validates whatever it gets, and a
        // block we lose in a crash comes back by sync). It lets the next download overlap
        // this batch's disk sync.
        let mut drained = Drained::default();
        drain(
            &mut self.node,
            &mut DriverFx {
                port: self.config.port,
                links: &mut self.links,
                out: &mut drained,
            },
        );
        for (id, reply) in drained.replies {
            self.answer(id, reply);
        }
        // One scheduled block waits at a time: a schedule faster than the search would
        // otherwise pile requests up. Nothing is mined by schedule before the initial sync
        // is over: it would build on an old tip and only make stale blocks.
        let scheduled = self.mine_queue.iter().any(|r| matches!(r, MineRequest::Scheduled));
        if drained.start_mining && !scheduled && *self.shared.ready.borrow() {
            self.mine_queue.push_back(MineRequest::Scheduled);
        }
        let node = &self.node;
        self.links.refresh(|peer| node.peering().addr_of(peer).cloned());
        let (ops, events) = (drained.ops, drained.events);
        if !ops.is_empty()
            && let Err(e) = self.store.commit(&ops)
        {
            // Without a durable store nothing may be acknowledged: refuse and stop.
            tracing::error!("[{}] storage failure, stopping the node: {e}", self.config.port);
            self.after_commit.clear();
            for request in self.mine_queue.drain(..) {
                if let MineRequest::Api(reply) = request {
                    let _ = reply.send(Err(MineError::Storage(e.to_string())));
                }
            }
            self.failure = Some(e);
            return;
        }
        if !ops.is_empty() {
            tracing::debug!(
                "[{}] committed {} store operations ({} blocks)",
                self.config.port,
                ops.len(),
                ops.iter().filter(|op| matches!(op, StoreOp::PutBlock { .. })).count()
            );
            // The store has every block drained so far: the core may let go of their bodies.
            self.node.handle_input(now(), Input::Committed);
        }
        for reply in self.after_commit.drain(..) {
            reply();
        }
        for event in events {
            self.publish(event);
        }
        self.steer_mining();
    }

    /// Abandons a job whose parent is no longer the tip, and starts one when blocks are
    /// wanted and none is being mined.
    fn steer_mining(&mut self) {
        let tip = self.node.tree().tip().hash;
        if let Some(job) = self.job.take_if(|j| j.parent != tip) {
            job.cancel();
            self.shared
                .hashes
                .fetch_add(job.hashes.load(Ordering::Relaxed), Ordering::Relaxed);
            tracing::info!(
                "[{}] tip changed while mining; restarting on the new tip",
                self.config.port
            );
        }
        if self.job.is_none() && !self.mine_queue.is_empty() {
            // Requests whose callers went away need no block.
            self.mine_queue.retain(|r| !r.is_abandoned());
        }
        if self.job.is_none() && !self.mine_queue.is_empty() {
            let template = self.node.block_template(now());
            let id = self.next_job_id;
            self.next_job_id += 1;
            self.job = Some(Job::start(
                id,
                template,
                self.config.mine_threads,
                self.found_tx.clone(),
            ));
        }
        let mining = self.job.is_some();
        if self.shared.mining.swap(mining, Ordering::Relaxed) != mining {
            let _ = self.events.send(Arc::new(SseEvent {
                name: "mining",
                data: json!({ "active": mining }).to_string(),
            }));
        }
    }

    fn publish(&mut self, event: Event) {
        let port = self.config.port;
        match &event {
            Event::BlockRejected {
                hash,
                rule,
                reason,
                from_peer,
            } => {
                let from = from_peer
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "local".into());
                tracing::warn!(
                    "[{port}] rejected block {} from {from}: rule {rule}: {reason}",
                    &hash.to_hex()[..16]
                );
            }
            Event::Reorg {
                fork_height,
                disconnected,
                connected,
                returned,
            } => tracing::info!(
                "[{port}] reorganisation at height {fork_height}: {} blocks out, {} in, {} transactions back to pending",
                disconnected.len(),
                connected.len(),
                returned.len()
            ),
            Event::TxDropped { txid, rule, reason } => {
                tracing::info!("[{port}] dropped pending transaction {txid} ({rule}): {reason}")
            }
            Event::Peer { address, state, reason } => match reason {
                Some(r) => tracing::info!("[{port}] peer {address}: {state:?} ({r})"),
                None => tracing::info!("[{port}] peer {address}: {state:?}"),
            },
            Event::Block {
                hash,
                height,
                from_peer: Some(p),
                ..
            } => {
                tracing::debug!("[{port}] block {} at height {height} from {p}", &hash.to_hex()[..16])
            }
            _ => {}
        }
        if self.events.receiver_count() == 0 {
            return;
        }
        match serde_json::to_string(&event) {
            Ok(data) => {
                let _ = self.events.send(Arc::new(SseEvent {
                    name: event.name(),
                    data,
                }));
            }
            Err(e) => tracing::error!("[{port}] could not encode event: {e}"),
        }
    }
}
