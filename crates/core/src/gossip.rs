//! Relaying: every new valid transaction or block goes to every connected peer except the
//! one it came from, once. A node relays an item only when it first accepts it (a second
//! copy is a duplicate and stops there), so each item crosses each link at most once in
//! each direction, over any topology.

use std::sync::Arc;

use chainsim_primitives::Block;

use crate::node::Node;
use crate::peers::PeerAddr;
use crate::protocol::{MAX_ADDRS_PER_MESSAGE, MAX_TXS_PER_MESSAGE, Message, WireBlock};

impl Node {
    /// Sends a newly accepted block to every connected peer but its sender.
    pub(crate) fn relay_block(&mut self, block: &Arc<Block>, from: Option<&PeerAddr>) {
        for peer in self.peers.connected() {
            if Some(&peer) != from {
                self.send(
                    peer,
                    Message::Block {
                        block: WireBlock(block.clone()),
                    },
                );
            }
        }
    }

    /// Sends the transactions accepted since the last drain, one batch per peer, leaving
    /// out the ones a peer sent us itself. Batching happens naturally under load: the
    /// live node drains after each batch of inputs.
    pub(crate) fn flush_tx_relay(&mut self) {
        let pending = std::mem::take(&mut self.relay_txs);
        for peer in self.peers.connected() {
            let txs: Vec<_> = pending
                .iter()
                .filter(|(_, from)| from.as_ref() != Some(&peer))
                .map(|(tx, _)| tx.clone())
                .collect();
            for chunk in txs.chunks(MAX_TXS_PER_MESSAGE) {
                self.send(peer.clone(), Message::Txs { txs: chunk.to_vec() });
            }
        }
    }

    /// Tells connected peers about a peer that just joined, so that knowledge of one node
    /// is enough to join the whole network.
    pub(crate) fn announce_addr(&mut self, new_peer: &PeerAddr) {
        for peer in self.peers.connected() {
            if &peer != new_peer {
                self.send(
                    peer,
                    Message::Addr {
                        addrs: vec![new_peer.clone()],
                    },
                );
            }
        }
    }

    /// Addresses worth sharing: connected peers, then other known ones that are not
    /// blocked or banned.
    pub(crate) fn shareable_addrs(&self, except: &PeerAddr) -> Vec<PeerAddr> {
        use crate::peers::PeerState::*;
        let mut out: Vec<PeerAddr> = self
            .peers
            .iter()
            .filter(|p| p.state == Connected && &p.address != except)
            .map(|p| p.address.clone())
            .collect();
        out.extend(
            self.peers
                .iter()
                .filter(|p| matches!(p.state, Idle | Backoff | Connecting) && &p.address != except && p.failures == 0)
                .map(|p| p.address.clone()),
        );
        out.truncate(MAX_ADDRS_PER_MESSAGE);
        out
    }
}
