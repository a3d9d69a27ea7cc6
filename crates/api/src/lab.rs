//! The lab's shapes: link conditions (`PUT /peers/{addr}/link`, and each entry of
//! `GET /peers`) and the mining mode (`POST /mining`, and `mining_schedule` in
//! `GET /status`). Ranges are checked by the node (the core owns the rules); these are
//! only the JSON.

use chainsim_primitives::{BlockHash, PeerAddr};
use serde::{Deserialize, Serialize};

/// How this node treats what it sends on one link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkConditionsView {
    /// Bytes per second; 0 means unlimited.
    pub bandwidth_bps: u64,
    /// Nothing is sent, and the link is refused (the same as `POST /peers/block`).
    pub cut: bool,
    /// Up to this many milliseconds of extra delay, drawn per message.
    pub jitter_ms: u64,
    /// One-way delay in milliseconds.
    pub latency_ms: u64,
    /// Fraction of messages dropped, 0 to 1.
    pub loss: f64,
}

/// `PUT /peers/{addr}/link`: any of the conditions; the others stay as they are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// Bytes per second; 0 means unlimited.
    pub bandwidth_bps: Option<u64>,
    /// Cut (true) or restore (false).
    pub cut: Option<bool>,
    /// Jitter in milliseconds.
    pub jitter_ms: Option<u64>,
    /// One-way delay in milliseconds.
    pub latency_ms: Option<u64>,
    /// Fraction of messages dropped.
    pub loss: Option<f64>,
}

/// The answer to `PUT /peers/{addr}/link`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkAnswer {
    /// The conditions now in force.
    pub conditions: LinkConditionsView,
    /// What happened, for people.
    pub message: String,
    /// The peer.
    pub peer: PeerAddr,
}

/// How a node decides to mine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MiningModeName {
    /// Only when asked (`/mine`).
    #[default]
    Manual,
    /// One block every `block_time_s`.
    Interval,
    /// A Poisson process: expected time between this node's blocks `block_time_s / share`.
    Auto,
}

/// `POST /mining`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MiningRequest {
    /// Seconds: between blocks (interval), or the network's expected block interval (auto).
    pub block_time_s: Option<f64>,
    /// The mode.
    pub mode: MiningModeName,
    /// This node's share of the network's hash power, above 0 and at most 1 (auto; default 1).
    pub share: Option<f64>,
}

/// The mining mode in force: the answer to `POST /mining` and `mining_schedule` in `GET /status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MiningView {
    /// Seconds, as set (none for manual).
    pub block_time_s: Option<f64>,
    /// The mode.
    pub mode: MiningModeName,
    /// Mean seconds between this node's latest mined blocks (up to 32), once it has two.
    pub observed_interval_s: Option<f64>,
    /// The share of hash power (auto only).
    pub share: Option<f64>,
}

/// `POST /lab/tamper`: the block to alter and offer to the peers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TamperRequest {
    /// The block's hash (64 hex digits).
    pub hash: BlockHash,
}

/// The answer to `POST /lab/tamper`: what was changed and who was offered the result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TamperAnswer {
    /// The altered transaction's amount in the offered copy.
    pub amount_after: u64,
    /// Its amount in the real block.
    pub amount_before: u64,
    /// What happened, for people.
    pub message: String,
    /// The block that was copied; this node's chain still holds it unchanged.
    pub original: BlockHash,
    /// The peers the altered copy was sent to.
    pub sent_to: Vec<PeerAddr>,
    /// The altered copy's hash: the peers' `block_rejected` events name it.
    pub tampered: BlockHash,
    /// Which transaction was changed (0 is the coinbase).
    pub tx_index: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn requests_refuse_unknown_fields_and_accept_any_subset() {
        let r: LinkRequest = serde_json::from_str(r#"{"latency_ms": 200}"#).unwrap();
        assert_eq!(r.latency_ms, Some(200));
        assert!(serde_json::from_str::<LinkRequest>(r#"{"latency": 200}"#).is_err());
        let m: MiningRequest = serde_json::from_str(r#"{"mode": "auto", "block_time_s": 10, "share": 0.2}"#).unwrap();
        assert_eq!(m.mode, MiningModeName::Auto);
        assert!(serde_json::from_str::<MiningRequest>(r#"{"mode": "sometimes"}"#).is_err());
    }

    #[test]
    fn tamper_request_takes_a_hash_only() {
        let h = "ab".repeat(32);
        let r: TamperRequest = serde_json::from_str(&format!(r#"{{"hash": "{h}"}}"#)).unwrap();
        assert_eq!(r.hash.to_hex(), h);
        assert!(serde_json::from_str::<TamperRequest>(r#"{"hash": "xyz"}"#).is_err());
        assert!(serde_json::from_str::<TamperRequest>(&format!(r#"{{"hash": "{h}", "amount": 1}}"#)).is_err());
    }

    #[test]
    fn conditions_are_written_sorted() {
        let text = serde_json::to_string(&LinkConditionsView::default()).unwrap();
        assert_eq!(
            text,
            r#"{"bandwidth_bps":0,"cut":false,"jitter_ms":0,"latency_ms":0,"loss":0.0}"#
        );
    }
}
