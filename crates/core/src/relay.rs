//! Relay: how new blocks and transactions spread. In [`RelayMode::Announce`] (the default,
//! as Bitcoin does) a node announces ids with `Inv`, and a peer that lacks an item asks for
//! it with `GetData` from the first peer that announced it, so each body crosses each link
//! at most once in the common case. [`RelayMode::Push`] sends bodies to every peer at once,
//! for comparison. This part owns what we asked for, and what each link is known to have
//! ([`Known`], kept in the link's slot of the [`LinkTable`]: every message reads its link
//! anyway, and announcing a block walks the links in order).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chainsim_primitives::{Block, BlockHash, Header, Txid};

use crate::keyed_hash::KeyedHash;
use crate::peers::{LinkTable, PeerId};
use crate::protocol::{Items, Message, WireBlock, WireHeader};
use crate::time::Time;

mod fetches;
mod known;

use fetches::Fetches;
pub use known::Known;

/// How new items travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RelayMode {
    /// Announce ids, send bodies to those who ask.
    #[default]
    Announce,
    /// Send bodies to every peer straight away.
    Push,
}

/// What relay needs to remember.
#[derive(Debug)]
pub struct Relay {
    mode: RelayMode,
    fetch_timeout: Duration,
    blocks: Fetches<BlockHash>,
    /// Made with the first transaction asked for: its room in place (six cache lines) sat
    /// in every node a simulator loads ahead of each of its events, in the many runs
    /// without transactions too.
    txs: Option<Box<Fetches<Txid>>>,
    /// Transactions accepted since the last flush, with the link they came from.
    pending_txs: Vec<(Txid, Option<PeerId>)>,
    /// The last header announced to us that met its target, with its hash: every peer
    /// announces the same new block, and one hash of it serves them all.
    last_header: Option<(Header, BlockHash)>,
}

impl Relay {
    /// Relay in `mode`, asking another announcer when one does not deliver within
    /// `fetch_timeout`; `keyed` hashes the per-link tables (see [`KeyedHash`]).
    pub fn new(mode: RelayMode, fetch_timeout: Duration, keyed: KeyedHash) -> Self {
        Self {
            mode,
            fetch_timeout,
            blocks: Fetches::new(keyed),
            txs: None,
            pending_txs: Vec::new(),
            last_header: None,
        }
    }

    /// The relay mode.
    pub fn mode(&self) -> RelayMode {
        self.mode
    }

    /// Queues an accepted transaction for the next flush.
    pub fn queue_tx(&mut self, txid: Txid, from: Option<PeerId>) {
        self.pending_txs.push((txid, from));
    }

    /// Whether transactions wait for a flush.
    pub fn has_pending_txs(&self) -> bool {
        !self.pending_txs.is_empty()
    }

    /// Takes the queued transactions and says which link gets which: every ready link
    /// not closing that is not known to have them.
    pub fn take_pending_txs(&mut self, links: &mut LinkTable) -> Vec<(PeerId, Vec<Txid>)> {
        let pending = std::mem::take(&mut self.pending_txs);
        for (txid, from) in &pending {
            if let Some(from) = from {
                mark_tx(links, *from, txid);
            }
        }
        links
            .usable_mut()
            .map(|l| {
                let txids: Vec<Txid> = pending
                    .iter()
                    .filter(|(t, _)| l.known.insert_tx(t))
                    .map(|(t, _)| *t)
                    .collect();
                (l.id, txids)
            })
            .filter(|(_, t)| !t.is_empty())
            .collect()
    }

    /// Blocks `from` announced that we lack (the caller marked them as known to `from`):
    /// keeps those to ask it for now. The others were asked of an earlier announcer and
    /// wait for its answer, `from` remembered as a fallback.
    pub fn want_blocks(&mut self, from: PeerId, blocks: &[BlockHash], now: Time) -> Vec<BlockHash> {
        blocks
            .iter()
            .filter(|h| self.blocks.want(**h, from, now))
            .copied()
            .collect()
    }

    /// The hash of `header` if it is the last header noted with [`Relay::note_header`]
    /// (checked already: its proof of work holds).
    pub fn known_header(&self, header: &Header) -> Option<BlockHash> {
        self.last_header.filter(|(h, _)| h == header).map(|(_, hash)| hash)
    }

    /// Notes an announced header whose proof of work holds, and its hash.
    pub fn note_header(&mut self, header: Header, hash: BlockHash) {
        self.last_header = Some((header, hash));
    }

    /// [`Relay::want_blocks`] for transactions.
    pub fn want_txs(&mut self, links: &mut LinkTable, from: PeerId, mut txs: Vec<Txid>, now: Time) -> Vec<Txid> {
        if txs.is_empty() {
            return txs;
        }
        let keyed = self.blocks.hasher();
        let wanted = self.txs.get_or_insert_with(|| Box::new(Fetches::new(keyed)));
        txs.retain(|t| {
            mark_tx(links, from, t);
            wanted.want(*t, from, now)
        });
        txs
    }

    /// A block arrived (or was found elsewhere): no longer wanted.
    pub fn block_arrived(&mut self, hash: &BlockHash) {
        self.blocks.arrived(hash);
    }

    /// A transaction arrived: no longer wanted.
    pub fn tx_arrived(&mut self, txid: &Txid) {
        if let Some(txs) = &mut self.txs {
            txs.arrived(txid);
        }
    }

    /// `from` said it does not have these: ask the next announcer.
    pub fn not_found(&mut self, from: PeerId, blocks: &[BlockHash], txs: &[Txid], now: Time) -> Vec<(PeerId, Items)> {
        let blocks: Vec<(BlockHash, PeerId)> = blocks.iter().map(|h| (*h, from)).collect();
        let txs: Vec<(Txid, PeerId)> = txs.iter().map(|t| (*t, from)).collect();
        self.move_on(&blocks, &txs, now)
    }

    /// Moves each request on from the peer it names to its next announcer; returns what to
    /// ask of whom, in link order.
    fn move_on(&mut self, blocks: &[(BlockHash, PeerId)], txs: &[(Txid, PeerId)], now: Time) -> Vec<(PeerId, Items)> {
        let mut retry = BTreeMap::<PeerId, Items>::new();
        for (hash, from) in blocks {
            if let Some(next) = self.blocks.next_source(*hash, *from, now) {
                retry.entry(next).or_default().blocks.push(*hash);
            }
        }
        if let Some(wanted) = &mut self.txs {
            for (txid, from) in txs {
                if let Some(next) = wanted.next_source(*txid, *from, now) {
                    retry.entry(next).or_default().txs.push(*txid);
                }
            }
        }
        retry.into_iter().collect()
    }

    /// A link closed (what it was known to have went with its slot): forget it as a
    /// source, and ask other announcers for what it owed us.
    pub fn peer_gone(&mut self, peer: PeerId, now: Time) -> Vec<(PeerId, Items)> {
        self.pending_txs.retain(|(_, f)| *f != Some(peer));
        let owed_blocks = self.blocks.owed_by(peer);
        let owed_txs = self.txs.as_ref().map(|t| t.owed_by(peer)).unwrap_or_default();
        self.blocks.drop_announcer(peer);
        if let Some(txs) = &mut self.txs {
            txs.drop_announcer(peer);
        }
        self.not_found(peer, &owed_blocks, &owed_txs, now)
    }

    /// Requests not answered within the fetch timeout: ask the next announcer.
    pub fn on_timeout(&mut self, now: Time) -> Vec<(PeerId, Items)> {
        let blocks = self.blocks.late(now, self.fetch_timeout);
        let txs = self
            .txs
            .as_ref()
            .map(|t| t.late(now, self.fetch_timeout))
            .unwrap_or_default();
        if blocks.is_empty() && txs.is_empty() {
            return Vec::new();
        }
        self.move_on(&blocks, &txs, now)
    }

    /// When the oldest request times out.
    pub fn next_deadline(&self) -> Option<Time> {
        let (blocks, txs) = (
            self.blocks.deadline(self.fetch_timeout),
            self.txs.as_ref().and_then(|t| t.deadline(self.fetch_timeout)),
        );
        blocks.into_iter().chain(txs).min()
    }

    /// What tells a peer of a new block: its header, or in push mode the block itself.
    pub fn announcement(&self, block: &Arc<Block>) -> Message {
        match self.mode {
            RelayMode::Announce => Message::Headers {
                headers: Arc::new([WireHeader(block.header)]),
            },
            RelayMode::Push => Message::Block {
                block: WireBlock(block.clone()),
            },
        }
    }
}

/// Notes that `peer` has a block (it sent or announced it, or we did).
pub fn mark_block(links: &mut LinkTable, peer: PeerId, hash: &BlockHash) {
    if let Some(link) = links.get_mut(peer) {
        link.known.insert_block(hash);
    }
}

/// Notes that `peer` has a transaction (it sent or announced it, or we did).
pub fn mark_tx(links: &mut LinkTable, peer: PeerId, txid: &Txid) {
    if let Some(link) = links.get_mut(peer) {
        link.known.insert_tx(txid);
    }
}

/// Forgets who has a transaction: it came back (a reorganisation returned it to the
/// mempool), and a peer we once told about it may never have fetched it.
pub fn forget_tx(links: &mut LinkTable, txid: &Txid) {
    for link in links.iter_mut() {
        link.known.remove_tx(txid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_noted_header_is_known_and_only_exactly() {
        let mut relay = Relay::new(RelayMode::Announce, Duration::from_secs(10), KeyedHash::new(1));
        let header = crate::params::ChainParams::testnet().genesis().header;
        let hash = header.compute_hash();
        assert_eq!(relay.known_header(&header), None, "nothing noted yet");
        relay.note_header(header, hash);
        assert_eq!(relay.known_header(&header), Some(hash));
        let other = Header {
            nonce: header.nonce + 1,
            ..header
        };
        assert_eq!(relay.known_header(&other), None, "a header differing in one field");
        relay.note_header(other, other.compute_hash());
        assert_eq!(relay.known_header(&header), None, "only the last one is kept");
    }
}
