//! The live node's links: one TCP connection per peer (see [`crate::wire`]), each with a
//! reader task and a writer task. Link numbers come from the core's [`PeerIds`]; what
//! happens on a link goes back to the driver as a [`Command::Link`] input, so the driver
//! stays the only owner of the core. A slow peer fills only its own queue; when it is full
//! the link is closed rather than letting memory grow.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chainsim_core::link::PeerIds;
use chainsim_core::{Input, Message, PeerAddr, PeerId};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc};

use crate::driver::{Command, Shared};
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
    shared: Arc<Shared>,
}

impl Queued {
    fn new(msg: Message, shared: Arc<Shared>) -> Self {
        shared.inflight.fetch_add(1, Ordering::Relaxed);
        Self { msg, shared }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.shared.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The open links and the way to open more.
pub struct Links {
    ids: PeerIds,
    queues: HashMap<PeerId, mpsc::Sender<Outgoing>>,
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

    /// Dials `addr`; reports `LinkUp` with the address, or `DialFailed`.
    pub fn connect(&mut self, addr: PeerAddr) {
        let peer = self.ids.next_id();
        let (tx, rx) = mpsc::channel(QUEUE);
        self.queues.insert(peer, tx);
        let driver = self.driver.clone();
        let reader = FrameReader::new(self.budget.clone());
        self.runtime.spawn(async move {
            match wire::dial(&addr, DIAL_TIMEOUT).await {
                Ok(stream) => {
                    let up = Input::LinkUp { peer, addr: Some(addr) };
                    if driver.send(Command::Link(up)).await.is_ok() {
                        run_link(stream, peer, (reader, rx), driver).await;
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
        let peer = self.ids.next_id();
        let (tx, rx) = mpsc::channel(QUEUE);
        self.queues.insert(peer, tx);
        let driver = self.driver.clone();
        let reader = FrameReader::new(self.budget.clone());
        self.runtime.spawn(run_link(stream, peer, (reader, rx), driver));
        peer
    }

    /// Queues a frame; a full queue closes the link (the peer cannot keep up).
    pub fn send(&mut self, to: PeerId, msg: Message) {
        let Some(queue) = self.queues.get(&to) else { return };
        match queue.try_send(Outgoing::Frame(Queued::new(msg, self.shared.clone()))) {
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
        if let Some(queue) = self.queues.remove(&peer) {
            // A full queue cannot take the close: dropping the sender ends the writer too.
            let _ = queue.try_send(Outgoing::Close);
        }
    }

    /// Forgets a link that went down or never came up.
    pub fn forget(&mut self, peer: PeerId) {
        self.queues.remove(&peer);
    }
}

/// Runs one link until either side closes it, then reports `LinkDown`.
async fn run_link<S>(
    stream: S,
    peer: PeerId,
    (mut frames, rx): (FrameReader, mpsc::Receiver<Outgoing>),
    driver: mpsc::Sender<Command>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, writer) = tokio::io::split(stream);
    let mut writing = tokio::spawn(write_loop(writer, rx));
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

/// Writes queued frames until a close, an error or the end of the queue.
async fn write_loop<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::Receiver<Outgoing>) -> String {
    while let Some(out) = rx.recv().await {
        let Outgoing::Frame(frame) = out else {
            let _ = w.shutdown().await;
            return "closed by this node".into();
        };
        let written = tokio::time::timeout(WRITE_TIMEOUT, wire::write_frame(&mut w, &frame.msg)).await;
        drop(frame);
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return describe(&e),
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
