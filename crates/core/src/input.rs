//! Everything that can happen to a node: the one way in ([`crate::Node::handle_input`]).

use chainsim_primitives::{Block, Transaction};

use crate::peers::{PeerAddr, PeerId};
use crate::protocol::Message;

/// Numbers a local command so that its [`crate::Output::Reply`] can be matched to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(pub u64);

/// One input. Each comes with the current time, passed beside it.
#[derive(Debug, Clone)]
pub enum Input {
    /// A link came up: we dialled `addr` ([`crate::Output::Connect`]) and it answered, or
    /// (with `addr: None`) someone dialled us. The transport numbers the link.
    LinkUp {
        /// The new link.
        peer: PeerId,
        /// The dialled address, for an outbound link; none for an inbound one.
        addr: Option<PeerAddr>,
    },
    /// A dial asked for with [`crate::Output::Connect`] failed.
    DialFailed {
        /// The address.
        addr: PeerAddr,
        /// Why, for logs.
        reason: String,
    },
    /// A link closed: the other side hung up, the connection broke, or the transport
    /// finished a [`crate::Output::Disconnect`].
    LinkDown {
        /// The link.
        peer: PeerId,
        /// Why, for logs.
        reason: String,
    },
    /// A message arrived on a link.
    Message {
        /// The link it came on: the only identity a sender has.
        from: PeerId,
        /// The message.
        msg: Message,
    },
    /// Bytes arrived on a link that are not a message (the transport could not decode them).
    Garbage {
        /// The link.
        from: PeerId,
        /// What was wrong.
        reason: String,
    },
    /// A local command; its answer leaves as [`crate::Output::Reply`] with the same id.
    Command {
        /// The command's number, chosen by the caller.
        id: CommandId,
        /// The command.
        command: Command,
    },
    /// The deadline from [`crate::Node::poll_timeout`] passed (an early call is harmless).
    Timeout,
    /// Every store operation drained so far is durably committed: bodies held only until
    /// the store had them are released.
    Committed,
}

/// What a local user or the node's own miner asks for.
#[derive(Debug, Clone)]
pub enum Command {
    /// Take a transaction submitted here.
    SubmitTx(Transaction),
    /// Take a signed transaction submitted here whose signature the caller checked.
    SubmitVerifiedTx(crate::ledger::VerifiedTx),
    /// Take a block handed in by a user (`POST /blocks/receive`).
    SubmitBlock(Block),
    /// Take a block our miner found.
    MinedBlock(Block),
    /// Remember these addresses (pinned: retried forever) and dial them.
    AddPeers(Vec<PeerAddr>),
    /// Cut every link with this address and refuse it until unblocked.
    BlockPeer(PeerAddr),
    /// Allow this address again and dial it now.
    UnblockPeer(PeerAddr),
    /// Ask every connected peer for blocks we lack, now (`/nodes/resolve`).
    Resync,
    /// Decide when to mine by this mode from now on (validate it first with
    /// [`crate::MiningMode::validate`]; an invalid one is refused with [`crate::Reply::Refused`]).
    SetMining(crate::MiningMode),
    /// Send this block to every ready peer as a `Block` message, neither checked nor kept:
    /// the lab's tamper lesson ([`crate::tamper`]). Answered with [`crate::Reply::Peers`],
    /// the peers it went to.
    Offer(Block),
}
