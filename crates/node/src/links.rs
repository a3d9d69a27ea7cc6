//! The live node's links: one TCP connection per peer (see [`crate::wire`]), each with a
//! reader task and a writer task. Link numbers come from the core's [`PeerIds`]; what
//! happens on a link goes back to the driver as a [`Command::Link`] input, so the driver
//! stays the only owner of the core. A slow peer fills only its own queue; when it is full
//! the link is closed rather than letting memory grow.
//!
//! Each writer applies its link's conditions (delay, jitter, loss, bandwidth, cut; see
//! [`chainsim_core::conditions`]) to what this node sends: a frame is stamped when queued,
//! planned by the core's [`LinkQueue`] arithmetic, and written when it is due, so a slow
//! link delays only itself and the peer needs no cooperation (no root, no `tc`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chainsim_core::conditions::Delivery;
use chainsim_core::link::PeerIds;
use chainsim_core::{Input, LinkConditions, LinkQueue, Message, PeerAddr, PeerId, Time};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::driver::{Command, Shared, now};
use crate::wire::{self, FrameReader, WireError};

/// Frames waiting for one peer before the link is given up.
const QUEUE: usize = 1_024;
/// Longest dial, upgrade included (loopback or a LAN).
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest a single frame may take to write before the link counts as dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

enum Outgoing {
    Frame(Queued),
    Close,
}

/// A frame counted in [`Shared::inflight`] from the moment it is queued until it is dropped:
/// written, or thrown away with its queue when the link closes or its writer stops.
struct Queued {
    msg: Message,
    /// When the node handed it to the link: the conditions count from here.
    at: Time,
    shared: Arc<Shared>,
}

impl Queued {
    fn new(msg: Message, shared: Arc<Shared>) -> Self {
        shared.inflight.fetch_add(1, Ordering::Relaxed);
        Self { msg, at: now(), shared }
    }
}

/// One open link as the driver sees it: its queue and its conditions.
struct LinkEnd {
    queue: mpsc::Sender<Outgoing>,
    conditions: watch::Sender<LinkConditions>,
}

/// What a link task needs: its reader, its queue and its conditions.
type LinkParts = (FrameReader, mpsc::Receiver<Outgoing>, watch::Receiver<LinkConditions>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.shared.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The open links and the way to open more.
pub struct Links {
    ids: PeerIds,
    queues: HashMap<PeerId, LinkEnd>,
    driver: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    /// Bytes of frames read and not yet handled, shared by every link (see [`FrameReader`]).
    budget: Arc<Semaphore>,
    /// The main runtime: link tasks run there, not on the driver's thread.
    runtime: tokio::runtime::Handle,
}

impl Links {
    /// No links yet; outcomes are reported to `driver`; links together hold at most
    /// `budget` bytes of frames the driver has not handled yet.
    pub fn new(
        driver: mpsc::Sender<Command>,
        shared: Arc<Shared>,
        runtime: tokio::runtime::Handle,
        budget: usize,
    ) -> Self {
        Self {
            ids: PeerIds::default(),
            queues: HashMap::new(),
            driver,
            shared,
            budget: wire::frame_budget(budget),
            runtime,
        }
    }

    /// A new link end under `conditions`; returns its number and what its task needs.
    fn open(&mut self, conditions: LinkConditions) -> (PeerId, LinkParts) {
        let peer = self.ids.next_id();
        let (queue, rx) = mpsc::channel(QUEUE);
        let (conditions, watch_rx) = watch::channel(conditions);
        self.queues.insert(peer, LinkEnd { queue, conditions });
        (peer, (FrameReader::new(self.budget.clone()), rx, watch_rx))
    }

    /// Dials `addr`; reports `LinkUp` with the address, or `DialFailed`.
    pub fn connect(&mut self, addr: PeerAddr) {
        let (peer, parts) = self.open(self.shared.links.get(Some(&addr)));
        let driver = self.driver.clone();
        self.runtime.spawn(async move {
            match wire::dial(&addr, DIAL_TIMEOUT).await {
                Ok(stream) => {
                    let up = Input::LinkUp { peer, addr: Some(addr) };
                    if driver.send(Command::Link(up)).await.is_ok() {
                        run_link(stream, peer, parts, driver).await;
                    }
                }
                Err(e) => {
                    let reason = describe(&e);
                    let _ = driver.send(Command::DialFailed { peer, addr, reason }).await;
                }
            }
        });
    }

    /// Takes a connection someone opened to us; returns its number (the caller feeds the
    /// core `LinkUp` before anything read from it).
    pub fn accept<S>(&mut self, stream: S) -> PeerId
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        // Whose link it is shows only in its hello: the defaults until then (see `refresh`).
        let (peer, parts) = self.open(self.shared.links.get(None));
        self.runtime.spawn(run_link(stream, peer, parts, self.driver.clone()));
        peer
    }

    /// Brings every link's conditions in line with the table, now that `addr_of` may know
    /// more addresses (an inbound link's hello) or the table changed.
    pub fn refresh(&mut self, addr_of: impl Fn(PeerId) -> Option<PeerAddr>) {
        for (peer, end) in &self.queues {
            let wanted = self.shared.links.get(addr_of(*peer).as_ref());
            end.conditions.send_if_modified(|c| {
                let changed = *c != wanted;
                *c = wanted;
                changed
            });
        }
    }

    /// Queues a frame; a full queue closes the link (the peer cannot keep up).
    pub fn send(&mut self, to: PeerId, msg: Message) {
        let Some(end) = self.queues.get(&to) else { return };
        match end
            .queue
            .try_send(Outgoing::Frame(Queued::new(msg, self.shared.clone())))
        {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("link {to}: outbound queue full; closing it");
                self.close(to);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.queues.remove(&to);
            }
        }
    }

    /// Closes a link once what is queued on it is written.
    pub fn close(&mut self, peer: PeerId) {
        if let Some(end) = self.queues.remove(&peer) {
            // A full queue cannot take the close: dropping the sender ends the writer too.
            let _ = end.queue.try_send(Outgoing::Close);
        }
    }

    /// Forgets a link that went down or never came up.
    pub fn forget(&mut self, peer: PeerId) {
        self.queues.remove(&peer);
    }
}

/// Runs one link until either side closes it, then reports `LinkDown`.
async fn run_link<S>(stream: S, peer: PeerId, (mut frames, rx, conditions): LinkParts, driver: mpsc::Sender<Command>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, writer) = tokio::io::split(stream);
    let mut writing = tokio::spawn(write_loop(writer, rx, conditions));
    let reason = loop {
        tokio::select! {
            done = &mut writing => {
                break done.unwrap_or_else(|e| format!("writer failed: {e}"));
            }
            frame = frames.read(&mut reader) => match frame {
                Ok(Some(frame)) => {
                    if driver.send(Command::Frame { from: peer, frame }).await.is_err() {
                        return; // the node is shutting down
                    }
                }
                Ok(None) => break "closed by the peer".to_string(),
                Err(WireError::Garbage(reason)) => {
                    // The framing is intact: report and read on (the core scores it).
                    tracing::warn!("link {peer} sent garbage: {reason}");
                    let _ = driver.send(Command::Link(Input::Garbage { from: peer, reason })).await;
                }
                Err(e) => {
                    let reason = describe(&e);
                    if e.is_violation() {
                        tracing::warn!("link {peer} sent garbage: {reason}; closing it");
                        let garbage = Input::Garbage { from: peer, reason: reason.clone() };
                        let _ = driver.send(Command::Link(garbage)).await;
                    }
                    break reason;
                }
            }
        }
    };
    writing.abort();
    let _ = driver.send(Command::Link(Input::LinkDown { peer, reason })).await;
}

/// Writes queued frames under the link's conditions until a close, an error or the end of
/// the queue. A frame is planned from the time it was queued, so waiting here for one
/// frame's delay does not add to the next one's: delays overlap as on a real wire.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: mpsc::Receiver<Outgoing>,
    conditions: watch::Receiver<LinkConditions>,
) -> String {
    let mut plan = LinkQueue::new();
    // Jitter and loss draws; the live node's randomness may come from the OS.
    let mut rng = fastrand::Rng::new();
    while let Some(out) = rx.recv().await {
        let Outgoing::Frame(frame) = out else {
            let _ = w.shutdown().await;
            return "closed by this node".into();
        };
        let bytes = wire::encode_frame(&frame.msg);
        let cond = *conditions.borrow();
        if !cond.is_perfect() {
            match plan.send(frame.at, bytes.len(), &cond, &mut rng) {
                Delivery::Dropped => continue,
                Delivery::At { arrives, .. } => {
                    let wait = arrives.since(now());
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
        let written = tokio::time::timeout(WRITE_TIMEOUT, w.write_all(&bytes)).await;
        drop(frame);
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return describe(&WireError::Io(e)),
            Err(_) => return "write timed out".into(),
        }
    }
    let _ = w.shutdown().await;
    "closed by this node".into()
}

fn describe(e: &WireError) -> String {
    match e {
        WireError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        other => other.to_string(),
    }
}
