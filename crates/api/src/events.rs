//! The data of `GET /events` (Server-Sent Events). Each message's `event:` line names its
//! kind; its `data:` line is one of these objects (the first, `hello`, is a
//! [`StatusView`](crate::StatusView)). The node also writes a `kind` field naming the event
//! again; readers may ignore it, as these types do.

use chainsim_primitives::{BlockHash, PeerAddr, Txid};
use serde::{Deserialize, Serialize};

use crate::PeerState;

/// `event: tx`: a transaction entered the mempool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxEvent {
    /// How much.
    pub amount: u64,
    /// The peer that sent it; none when submitted to this node.
    pub from_peer: Option<PeerAddr>,
    /// Who is paid.
    pub recipient: String,
    /// Who pays.
    pub sender: String,
    /// Its id.
    pub txid: Txid,
}

/// `event: block`: a block joined the best chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEvent {
    /// The peer that sent it, if any.
    pub from_peer: Option<PeerAddr>,
    /// Its hash.
    pub hash: BlockHash,
    /// Its height.
    pub height: u64,
    /// Whether this node mined it.
    pub mined_here: bool,
    /// Its transactions, coinbase included.
    pub txs: u64,
}

/// `event: tip`: the best tip moved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TipEvent {
    /// The new height.
    pub height: u64,
    /// The original's length: height + 1.
    pub length: u64,
    /// Pending transactions after the move.
    pub pending: u64,
    /// The new tip's hash.
    pub tip: BlockHash,
}

/// `event: reorg`: the best chain switched branches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReorgEvent {
    /// Blocks that joined the best chain, lowest first.
    pub connected: Vec<BlockHash>,
    /// Blocks that left it, old tip first.
    pub disconnected: Vec<BlockHash>,
    /// Height of the last block both branches share.
    pub fork_height: u64,
    /// Transactions of the old branch put back into the mempool.
    pub returned: Vec<Txid>,
}

/// `event: block_rejected`: a block broke a consensus rule and was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRejectedEvent {
    /// The peer that sent it; none for a block handed in locally.
    pub from_peer: Option<PeerAddr>,
    /// Its hash.
    pub hash: BlockHash,
    /// The explanation, for people.
    pub reason: String,
    /// The short name of the broken rule, such as `merkle-root` or `proof-of-work`.
    pub rule: String,
}

/// `event: peer`: a peer link changed state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerEvent {
    /// The peer.
    pub address: PeerAddr,
    /// Why, when it matters (refusals, bans, drops).
    #[serde(default)]
    pub reason: Option<String>,
    /// Its new state.
    pub state: PeerState,
}

/// `event: mining`: mining started or stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MiningEvent {
    /// Whether a block is being mined now.
    pub active: bool,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn events_read_the_node_s_data_with_its_kind() {
        let h = "ab".repeat(32);
        let tx: TxEvent = serde_json::from_str(&format!(
            r#"{{"kind":"tx","txid":"{h}","sender":"A","recipient":"B","amount":3,"from_peer":null}}"#
        ))
        .unwrap();
        assert_eq!((tx.amount, tx.from_peer), (3, None));
        let b: BlockEvent = serde_json::from_str(&format!(
            r#"{{"kind":"block","hash":"{h}","height":2,"txs":1,"mined_here":false,"from_peer":"localhost:5001"}}"#
        ))
        .unwrap();
        assert_eq!(b.from_peer.unwrap().as_str(), "127.0.0.1:5001");
        let r: ReorgEvent = serde_json::from_str(&format!(
            r#"{{"kind":"reorg","fork_height":1,"disconnected":["{h}"],"connected":[],"returned":[]}}"#
        ))
        .unwrap();
        assert_eq!(r.disconnected.len(), 1);
        let x: BlockRejectedEvent = serde_json::from_str(&format!(
            r#"{{"kind":"block_rejected","hash":"{h}","rule":"merkle-root","reason":"bad root","from_peer":"127.0.0.1:5000"}}"#
        ))
        .unwrap();
        assert_eq!(
            (x.rule.as_str(), x.from_peer.unwrap().as_str()),
            ("merkle-root", "127.0.0.1:5000")
        );
    }
}
