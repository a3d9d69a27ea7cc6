//! The JSON shapes of chainsim's public node API (docs/API.md), defined once: the node
//! builds these types to answer, the dashboard reads them back.
//!
//! Every struct declares its fields in alphabetical order, because that is the order the
//! node has always written them in (and the order the original's Flask `jsonify` used):
//! serde writes fields in declaration order, so keep new fields sorted too. The one
//! exception to "one struct per answer" is `GET /chain`, which the node streams in pieces;
//! [`ChainAnswer::STREAM_HEAD`] and [`ChainAnswer::stream_tail`] keep those pieces here,
//! beside the struct whose serialisation they reproduce byte for byte.
//!
//! Plain data only: this crate depends on `chainsim-primitives` for hashes and addresses,
//! and on nothing async, nothing HTTP and no consensus logic.

use std::time::{SystemTime, UNIX_EPOCH};

pub mod accounts;
pub mod chain;
pub mod events;
pub mod lab;
pub mod node;

pub use accounts::{AccountView, AccountsAnswer, SignedTxRequest};
pub use chain::{
    BlockView, BlocksPage, ChainAnswer, Confirmation, MineAnswer, NewTxAnswer, NewTxRequest, PendingAnswer, ProofView,
    TxLookup, TxStatus, TxView,
};
pub use events::{BlockEvent, BlockRejectedEvent, MiningEvent, PeerEvent, ReorgEvent, TipEvent, TxEvent};
pub use lab::{
    LinkAnswer, LinkConditionsView, LinkRequest, MiningModeName, MiningRequest, MiningView, TamperAnswer, TamperRequest,
};
pub use node::{ErrorAnswer, PeerDirection, PeerState, PeerView, PeersAnswer, ResolveAnswer, StatusView};

/// Port of the first node, as in the original (`chainsim node`, `chainsim demo`).
pub const DEFAULT_NODE_PORT: u16 = 5000;
/// Port of the control room, as in the original.
pub const DEFAULT_DASHBOARD_PORT: u16 = 8000;
/// Interface nodes and the control room listen on unless told otherwise.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// The original's two neighbours: the peers a node tries without `--peer`, and the nodes
/// the control room starts discovering from without `--node`.
pub const DEFAULT_PEERS: [&str; 2] = ["127.0.0.1:5000", "127.0.0.1:5001"];

/// Milliseconds since the Unix epoch: the unit of every time in the API, read from the
/// system clock (0 if the clock is before 1970). The sans-IO core never calls this; the
/// live node passes it in.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_agree_with_each_other() {
        assert_eq!(DEFAULT_PEERS[0], format!("{DEFAULT_HOST}:{DEFAULT_NODE_PORT}"));
        for p in DEFAULT_PEERS {
            assert!(p.parse::<chainsim_primitives::PeerAddr>().is_ok(), "{p}");
        }
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_ms() > 1_577_836_800_000);
    }
}
