//! The node itself: `GET /status`, `GET /peers`, `GET /nodes/resolve`, and the error body
//! every route answers with.

use chainsim_primitives::{BlockHash, PeerAddr, Txid};
use serde::{Deserialize, Serialize};

use crate::lab::{LinkConditionsView, MiningView};

/// `GET /status`, and the data of the first `hello` event of `GET /events`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    /// The address the node announces to peers, `HOST:PORT`.
    pub address: PeerAddr,
    /// Blocks this node mined since it started.
    pub blocks_mined: u64,
    /// Deepest reorganisation seen, in blocks disconnected.
    #[serde(default)]
    pub deepest_reorg: u64,
    /// Hash of the network's genesis block.
    pub genesis: BlockHash,
    /// Height of the best tip (genesis 0).
    pub height: u64,
    /// The interface the node listens on.
    pub host: String,
    /// Peers in the peer table, in any state.
    pub known_peers: u64,
    /// The original's chain length: height + 1.
    pub length: u64,
    /// Who this node's block rewards pay.
    pub miner: String,
    /// Whether a block is being mined now.
    pub mining: bool,
    /// When the node mines by itself, and how often it has.
    #[serde(default)]
    pub mining_schedule: MiningView,
    /// Name of the network.
    pub network: String,
    /// Blocks waiting for their parent.
    pub orphans: u64,
    /// Connected peers.
    pub peers: u64,
    /// Pending transactions.
    pub pending: u64,
    /// The port the node listens on.
    pub port: u16,
    /// Median milliseconds from a relayed block's timestamp to its arrival (latest 256).
    #[serde(default)]
    pub propagation_median_ms: Option<u64>,
    /// Reorganisations since the node started.
    pub reorgs: u64,
    /// Blocks kept off the best chain.
    pub side_blocks: u64,
    /// Blocks that left the best chain or never joined it.
    #[serde(default)]
    pub stale_blocks: u64,
    /// Whether the node is downloading blocks from a peer.
    pub syncing: bool,
    /// Hash of the best tip.
    pub tip: BlockHash,
    /// Timestamp of the best tip, milliseconds since the Unix epoch.
    pub tip_time: u64,
    /// The node's software version.
    pub version: String,
    /// Cumulative work of the best chain, as a decimal string (it can exceed 2^64).
    pub work: String,
}

pub use chainsim_primitives::addr::{Direction as PeerDirection, PeerState};

/// One entry of `GET /peers`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerView {
    /// The peer's listening address.
    pub address: PeerAddr,
    /// Who opened the link.
    pub direction: PeerDirection,
    /// Failures in a row.
    pub failures: u32,
    /// The best height the peer announced.
    pub height: u64,
    /// When the node last heard from it, milliseconds since the Unix epoch (0: never).
    pub last_seen: u64,
    /// How this node treats what it sends to the peer.
    #[serde(default)]
    pub link: LinkConditionsView,
    /// Configured or registered by hand: never forgotten.
    pub pinned: bool,
    /// Misbehaviour score.
    pub score: u32,
    /// Link state.
    pub state: PeerState,
}

/// `GET /peers`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeersAnswer {
    /// Every peer the node knows.
    pub peers: Vec<PeerView>,
}

/// `GET /nodes/resolve`: the outcome of syncing with every peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveAnswer {
    /// The chain length afterwards, genesis included.
    pub length: u64,
    /// The original's message: replaced or authoritative.
    pub message: String,
    /// Whether the best chain changed.
    pub replaced: bool,
}

/// The body of every 4xx/5xx answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    /// What went wrong, for people.
    pub error: String,
    /// For programs: the ledger rule a refused transaction breaks (`conflict-in-mempool`,
    /// `insufficient-funds`, ...); absent for other errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// For the conflict rules: the transaction seen first, which keeps the coins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflicts_with: Option<Txid>,
}

impl ErrorAnswer {
    /// An answer with only a message.
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            rule: None,
            conflicts_with: None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn peer_fields_are_written_sorted() {
        let p = PeerView {
            address: "localhost:5001".parse().unwrap(),
            direction: PeerDirection::Outbound,
            failures: 1,
            height: 0,
            last_seen: 0,
            link: LinkConditionsView::default(),
            pinned: true,
            score: 0,
            state: PeerState::Backoff,
        };
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(
            text,
            r#"{"address":"127.0.0.1:5001","direction":"outbound","failures":1,"height":0,"last_seen":0,"link":{"bandwidth_bps":0,"cut":false,"jitter_ms":0,"latency_ms":0,"loss":0.0},"pinned":true,"score":0,"state":"backoff"}"#
        );
        assert_eq!(serde_json::from_str::<PeerView>(&text).unwrap(), p);
    }

    #[test]
    fn status_fields_are_written_sorted() {
        let s = StatusView {
            address: "127.0.0.1:5000".parse().unwrap(),
            blocks_mined: 0,
            deepest_reorg: 0,
            genesis: BlockHash::ZERO,
            height: 0,
            host: "127.0.0.1".into(),
            known_peers: 0,
            length: 1,
            miner: "m".into(),
            mining: false,
            mining_schedule: MiningView::default(),
            network: "n".into(),
            orphans: 0,
            peers: 0,
            pending: 0,
            port: 5000,
            propagation_median_ms: None,
            reorgs: 0,
            side_blocks: 0,
            stale_blocks: 0,
            syncing: false,
            tip: BlockHash::ZERO,
            tip_time: 0,
            version: "0".into(),
            work: "1".into(),
        };
        let text = serde_json::to_string(&s).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(text, v.to_string());
        assert_eq!(serde_json::from_str::<StatusView>(&text).unwrap(), s);
    }
}
