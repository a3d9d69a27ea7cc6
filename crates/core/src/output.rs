//! Everything a node wants done: the one way out ([`crate::Node::poll_output`]).

use crate::event::{Event, EventKind, EventKinds};
use crate::input::CommandId;
use crate::node::{BlockOutcome, BlockRejected, TxOutcome, TxRejected};
use crate::peers::{PeerAddr, PeerId};
use crate::protocol::Message;
use crate::store::StoreOp;

/// One effect, in the order the node wants them done. Store operations of one drain are
/// applied together, atomically; replies wait for that commit.
#[derive(Debug, Clone)]
pub enum Output {
    /// Dial `addr`; report [`crate::Input::LinkUp`] with its address, or
    /// [`crate::Input::DialFailed`].
    Connect {
        /// Where to.
        addr: PeerAddr,
    },
    /// Send a message on a link, after every message sent on it before.
    Send {
        /// The link.
        to: PeerId,
        /// The message.
        msg: Message,
    },
    /// Close a link once the messages queued on it are sent; report
    /// [`crate::Input::LinkDown`] when it is closed.
    Disconnect {
        /// The link.
        peer: PeerId,
        /// Why, for logs.
        reason: String,
    },
    /// Persist this (applied atomically with the rest of the drain).
    Store(StoreOp),
    /// Tell the world (boxed, as the reply below: the queue moves every output, and most
    /// are small messages).
    Event(Box<Event>),
    /// The mining schedule says: start mining a block on the best tip now (the driver
    /// searches the nonce and hands the block back as [`crate::Command::MinedBlock`]).
    StartMining,
    /// The answer to a local command.
    Reply {
        /// The command it answers.
        id: CommandId,
        /// The answer.
        reply: Box<Reply>,
    },
}

impl Reply {
    /// The answer to `SubmitTx`, or `None` for another kind.
    pub fn into_tx(self) -> Option<Result<TxOutcome, TxRejected>> {
        match self {
            Reply::Tx(r) => Some(r),
            _ => None,
        }
    }
    /// The answer to `SubmitBlock` or `MinedBlock`, or `None` for another kind.
    pub fn into_block(self) -> Option<Result<BlockOutcome, BlockRejected>> {
        match self {
            Reply::Block(r) => Some(r),
            _ => None,
        }
    }
}

/// The answer to a [`crate::Command`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// To `SubmitTx`.
    Tx(Result<TxOutcome, TxRejected>),
    /// To `SubmitBlock` and `MinedBlock`.
    Block(Result<BlockOutcome, BlockRejected>),
    /// To `AddPeers`: every known address afterwards.
    Peers(Vec<PeerAddr>),
    /// To `UnblockPeer`: whether the address was blocked.
    Unblocked(bool),
    /// To commands with nothing to say (`BlockPeer`, `Resync`, `SetMining`).
    Done,
    /// A setting was refused: why.
    Refused(String),
}

/// The queue of outputs, filled by every part of the node and drained by the driver.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: std::collections::VecDeque<Output>,
    /// Messages queued so far (for metrics).
    pub messages: u64,
    /// The kinds of event queued; the others are never built.
    events: EventKinds,
}

impl Outbox {
    /// An outbox that queues events of `events`' kinds only.
    pub fn with_events(events: EventKinds) -> Self {
        Self {
            events,
            ..Self::default()
        }
    }

    /// Queues a message on a link.
    pub fn send(&mut self, to: crate::peers::PeerId, msg: Message) {
        self.messages += 1;
        self.queue.push_back(Output::Send { to, msg });
    }
    /// Queues the event `make` builds, if the outbox takes events of `kind` (else `make`
    /// is not called: nothing is built that no one reads).
    pub fn emit(&mut self, kind: EventKind, make: impl FnOnce() -> Event) {
        if self.events.contains(kind) {
            let event = make();
            debug_assert_eq!(event.kind(), kind, "an event emitted under another kind");
            self.queue.push_back(Output::Event(Box::new(event)));
        }
    }
    /// Queues a store operation.
    pub fn store(&mut self, op: StoreOp) {
        self.queue.push_back(Output::Store(op));
    }
    /// Asks for a dial.
    pub fn connect(&mut self, addr: PeerAddr) {
        self.queue.push_back(Output::Connect { addr });
    }
    /// Asks for a link to be closed.
    pub fn disconnect(&mut self, peer: PeerId, reason: impl Into<String>) {
        self.queue.push_back(Output::Disconnect {
            peer,
            reason: reason.into(),
        });
    }
    /// Asks the driver to start mining.
    pub fn start_mining(&mut self) {
        self.queue.push_back(Output::StartMining);
    }
    /// Queues the answer to a command.
    pub fn reply(&mut self, id: CommandId, reply: Reply) {
        self.queue.push_back(Output::Reply {
            id,
            reply: Box::new(reply),
        });
    }
    /// The oldest output. Once all are taken the queue gives its memory back: a simulator
    /// holds thousands of nodes whose queues are empty between their inputs, and each would
    /// otherwise keep room for the most it ever queued (a block relayed to all its peers);
    /// the next input's outputs get memory the allocator has just had back, still in cache.
    pub fn pop(&mut self) -> Option<Output> {
        let out = self.queue.pop_front();
        if out.is_none() && self.queue.capacity() > 0 {
            self.queue = std::collections::VecDeque::new();
        }
        out
    }
    /// Everything queued, oldest first, leaving the queue empty (and, as [`Outbox::pop`]
    /// does once all are taken, without memory of its own).
    pub fn take_all(&mut self) -> std::collections::VecDeque<Output> {
        std::mem::take(&mut self.queue)
    }
    /// Makes room for `additional` more outputs at once (a burst about to be queued).
    pub fn reserve(&mut self, additional: usize) {
        self.queue.reserve(additional);
    }
    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
    /// Drops everything queued (outputs of a restore, which are stored already).
    pub fn clear(&mut self) {
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::PeerId;

    #[test]
    fn a_drained_outbox_keeps_no_memory_and_works_on() {
        let mut out = Outbox::default();
        for i in 0..20 {
            out.send(PeerId(i), Message::GetAddr);
        }
        assert!(out.queue.capacity() >= 20);
        let mut sent = 0;
        while let Some(o) = out.pop() {
            assert!(matches!(
                o,
                Output::Send {
                    msg: Message::GetAddr,
                    ..
                }
            ));
            sent += 1;
        }
        assert_eq!((sent, out.queue.capacity(), out.messages), (20, 0, 20));
        out.start_mining();
        assert!(matches!(out.pop(), Some(Output::StartMining)));
        assert!(out.pop().is_none() && out.is_empty());
    }

    #[test]
    fn an_event_of_a_kind_left_out_is_never_built() {
        use crate::event::{EventKind, EventKinds};
        let mut out = Outbox::with_events(EventKinds::only(&[EventKind::Reorg]));
        let tip = || Event::Tip {
            height: 1,
            length: 2,
            tip: chainsim_primitives::BlockHash::ZERO,
            pending: 0,
        };
        out.emit(EventKind::Tip, || unreachable!("a tip event was built"));
        assert!(out.is_empty());
        let mut all = Outbox::default();
        all.emit(EventKind::Tip, tip);
        assert!(matches!(all.pop(), Some(Output::Event(e)) if e.kind() == EventKind::Tip));
    }
}
