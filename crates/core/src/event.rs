//! Events: what happened inside the node, for logs, the `/events` stream and the dashboard.

use chainsim_primitives::{BlockHash, Txid};
use serde::Serialize;

use crate::peers::{PeerAddr, PeerState};

/// Something worth telling the outside world about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A new transaction entered the mempool.
    Tx {
        /// Its id.
        txid: Txid,
        /// Who pays.
        sender: String,
        /// Who is paid.
        recipient: String,
        /// How much.
        amount: u64,
        /// The peer that sent it, or none when submitted here.
        from_peer: Option<PeerAddr>,
    },
    /// A pending transaction left the mempool unmined: on an accounts network, a new best
    /// chain confirmed a conflicting one or spent its funds.
    TxDropped {
        /// Its id.
        txid: Txid,
        /// The ledger rule it now breaks.
        rule: &'static str,
        /// Why, in words.
        reason: String,
    },
    /// A block joined the best chain.
    Block {
        /// Its hash.
        hash: BlockHash,
        /// Its height.
        height: u64,
        /// Number of transactions, coinbase included.
        txs: usize,
        /// Whether this node mined it.
        mined_here: bool,
        /// The peer that sent it, if any.
        from_peer: Option<PeerAddr>,
    },
    /// The best tip moved.
    Tip {
        /// New height.
        height: u64,
        /// Length as the original counts it (height + 1).
        length: u64,
        /// New tip hash.
        tip: BlockHash,
        /// Pending transactions after the move.
        pending: usize,
    },
    /// The best chain switched branches.
    Reorg {
        /// Height of the last block both branches share.
        fork_height: u64,
        /// Blocks that left the best chain, old tip first.
        disconnected: Vec<BlockHash>,
        /// Blocks that joined, lowest first.
        connected: Vec<BlockHash>,
        /// Transactions of the old branch put back into the mempool.
        returned: Vec<Txid>,
    },
    /// A block was refused.
    BlockRejected {
        /// Its hash.
        hash: BlockHash,
        /// Short name of the broken rule.
        rule: &'static str,
        /// Human explanation.
        reason: String,
        /// Who sent it.
        from_peer: Option<PeerAddr>,
    },
    /// A peer changed state.
    Peer {
        /// The peer.
        address: PeerAddr,
        /// Its new state.
        state: PeerState,
        /// Why, when it matters (refusals, bans, drops).
        reason: Option<String>,
    },
    /// Catch-up progress.
    Sync {
        /// Our height now.
        height: u64,
        /// The height the sync peer announced.
        target: u64,
        /// The peer we download from.
        peer: PeerAddr,
        /// Whether this batch finished the sync.
        done: bool,
    },
}

impl Event {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Which kind of event this is.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Tx { .. } => EventKind::Tx,
            Self::TxDropped { .. } => EventKind::TxDropped,
            Self::Block { .. } => EventKind::Block,
            Self::Tip { .. } => EventKind::Tip,
            Self::Reorg { .. } => EventKind::Reorg,
            Self::BlockRejected { .. } => EventKind::BlockRejected,
            Self::Peer { .. } => EventKind::Peer,
            Self::Sync { .. } => EventKind::Sync,
        }
    }
}

/// The kinds of [`Event`], one per variant: what a node's driver subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// [`Event::Tx`].
    Tx,
    /// [`Event::TxDropped`].
    TxDropped,
    /// [`Event::Block`].
    Block,
    /// [`Event::Tip`].
    Tip,
    /// [`Event::Reorg`].
    Reorg,
    /// [`Event::BlockRejected`].
    BlockRejected,
    /// [`Event::Peer`].
    Peer,
    /// [`Event::Sync`].
    Sync,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 8] = [
        Self::Tx,
        Self::TxDropped,
        Self::Block,
        Self::Tip,
        Self::Reorg,
        Self::BlockRejected,
        Self::Peer,
        Self::Sync,
    ];

    /// The SSE event name of events of this kind.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tx => "tx",
            Self::TxDropped => "tx_dropped",
            Self::Block => "block",
            Self::Tip => "tip",
            Self::Reorg => "reorg",
            Self::BlockRejected => "block_rejected",
            Self::Peer => "peer",
            Self::Sync => "sync",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The kinds of event a node emits (every kind unless its driver says otherwise). An event
/// of a kind left out is not even built: a simulator's ten thousand nodes each take every
/// block, and building a tip event nobody reads cost a cache miss (the mempool's size) and
/// an allocation per block per node (docs/BENCHMARKS.md, twenty-third round), as Bitcoin
/// Core publishes only the notification topics it was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKinds(u8);

impl EventKinds {
    /// Every kind of event.
    pub const ALL: Self = Self(u8::MAX);

    /// Exactly `kinds`.
    pub fn only(kinds: &[EventKind]) -> Self {
        Self(kinds.iter().fold(0, |bits, k| bits | k.bit()))
    }

    /// Whether events of `kind` are emitted.
    pub fn contains(self, kind: EventKind) -> bool {
        self.0 & kind.bit() != 0
    }
}

impl Default for EventKinds {
    fn default() -> Self {
        Self::ALL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_of_kinds_holds_exactly_those_named() {
        let some = EventKinds::only(&[EventKind::Block, EventKind::Reorg]);
        for kind in EventKind::ALL {
            let named = matches!(kind, EventKind::Block | EventKind::Reorg);
            assert_eq!(some.contains(kind), named, "{kind:?}");
            assert!(EventKinds::ALL.contains(kind) && EventKinds::default().contains(kind));
            assert!(!EventKinds::only(&[]).contains(kind));
        }
        let names: std::collections::HashSet<_> = EventKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), EventKind::ALL.len());
    }

    #[test]
    fn an_event_names_its_kind() {
        let tip = Event::Tip {
            height: 1,
            length: 2,
            tip: BlockHash::ZERO,
            pending: 0,
        };
        assert_eq!((tip.kind(), tip.name()), (EventKind::Tip, "tip"));
    }
}
