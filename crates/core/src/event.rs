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
        match self {
            Self::Tx { .. } => "tx",
            Self::TxDropped { .. } => "tx_dropped",
            Self::Block { .. } => "block",
            Self::Tip { .. } => "tip",
            Self::Reorg { .. } => "reorg",
            Self::BlockRejected { .. } => "block_rejected",
            Self::Peer { .. } => "peer",
            Self::Sync { .. } => "sync",
        }
    }
}
