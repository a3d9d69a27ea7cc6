//! Relay: how new blocks and transactions spread. In [`RelayMode::Announce`] (the default,
//! as Bitcoin does) a node announces ids with `Inv`, and a peer that lacks an item asks for
//! it with `GetData` from the first peer that announced it, so each body crosses each link
//! at most once in the common case. [`RelayMode::Push`] sends bodies to every peer at once,
//! for comparison. This part owns what each link is known to have and what we asked for.

use std::collections::BTreeMap;
use std::time::Duration;

use chainsim_primitives::{BlockHash, Txid};

use crate::keyed_hash::{KeyedHash, KeyedMap};
use crate::output::Outbox;
use crate::peers::PeerId;

mod known;

use known::Known;

/// How new items travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RelayMode {
    /// Announce ids, send bodies to those who ask.
    #[default]
    Announce,
    /// Send bodies to every peer straight away.
    Push,
}

/// An item we asked a link for.
#[derive(Debug, Clone)]
struct Fetch {
    from: PeerId,
    at: crate::time::Time,
    /// Other links that announced it, asked in turn if `from` fails.
    others: Vec<PeerId>,
}

/// What relay needs to remember.
#[derive(Debug)]
pub struct Relay {
    mode: RelayMode,
    fetch_timeout: Duration,
    known: KeyedMap<PeerId, Known>,
    blocks: BTreeMap<BlockHash, Fetch>,
    txs: BTreeMap<Txid, Fetch>,
    /// Transactions accepted since the last flush, with the link they came from.
    pending_txs: Vec<(Txid, Option<PeerId>)>,
}

/// Items to ask one link for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    /// Blocks.
    pub blocks: Vec<BlockHash>,
    /// Transactions.
    pub txs: Vec<Txid>,
}

impl Wanted {
    /// Whether nothing is wanted.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty() && self.txs.is_empty()
    }
}

impl Relay {
    /// Relay in `mode`, asking another announcer when one does not deliver within
    /// `fetch_timeout`; `keyed` hashes the per-link tables (see [`KeyedHash`]).
    pub fn new(mode: RelayMode, fetch_timeout: Duration, keyed: KeyedHash) -> Self {
        Self {
            mode,
            fetch_timeout,
            known: KeyedMap::with_hasher(keyed),
            blocks: BTreeMap::new(),
            txs: BTreeMap::new(),
            pending_txs: Vec::new(),
        }
    }

    /// The relay mode.
    pub fn mode(&self) -> RelayMode {
        self.mode
    }

    /// Notes that `peer` has a block (it sent or announced it, or we did).
    pub fn mark_block(&mut self, peer: PeerId, hash: &BlockHash) {
        self.known.entry(peer).or_default().insert_block(hash);
    }

    /// Notes that `peer` has a transaction (it sent or announced it, or we did).
    pub fn mark_tx(&mut self, peer: PeerId, txid: &Txid) {
        self.known.entry(peer).or_default().insert_tx(txid);
    }

    /// Links among `ready` that should hear of block `hash`: all but those known to have
    /// it. They are marked as having it.
    pub fn targets(&mut self, hash: &BlockHash, ready: &[PeerId]) -> Vec<PeerId> {
        ready
            .iter()
            .copied()
            .filter(|p| self.known.entry(*p).or_default().insert_block(hash))
            .collect()
    }

    /// Whether `peer` is not yet known to have transaction `txid`; it is marked as having it.
    fn first_time_tx(&mut self, peer: PeerId, txid: &Txid) -> bool {
        self.known.entry(peer).or_default().insert_tx(txid)
    }

    /// Forgets who has a transaction: it came back (a reorganisation returned it to the
    /// mempool), and a peer we once told about it may never have fetched it.
    pub fn forget_tx(&mut self, txid: &Txid) {
        for known in self.known.values_mut() {
            known.remove_tx(txid);
        }
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
    /// that is not known to have them.
    pub fn take_pending_txs(&mut self, ready: &[PeerId]) -> Vec<(PeerId, Vec<Txid>)> {
        let pending = std::mem::take(&mut self.pending_txs);
        for (txid, from) in &pending {
            if let Some(from) = from {
                self.mark_tx(*from, txid);
            }
        }
        ready
            .iter()
            .map(|p| {
                let txids: Vec<Txid> = pending
                    .iter()
                    .filter(|(t, _)| self.first_time_tx(*p, t))
                    .map(|(t, _)| *t)
                    .collect();
                (*p, txids)
            })
            .filter(|(_, t)| !t.is_empty())
            .collect()
    }

    /// An announcement from `from`: returns what to ask it for now. Items we have are
    /// left out by the caller; items asked of someone else already wait for that answer
    /// (and `from` is remembered as a fallback).
    pub fn on_inv(&mut self, from: PeerId, blocks: Vec<BlockHash>, txs: Vec<Txid>, now: crate::time::Time) -> Wanted {
        let mut wanted = Wanted::default();
        for hash in blocks {
            self.mark_block(from, &hash);
            if want(&mut self.blocks, hash, from, now) {
                wanted.blocks.push(hash);
            }
        }
        for txid in txs {
            self.mark_tx(from, &txid);
            if want(&mut self.txs, txid, from, now) {
                wanted.txs.push(txid);
            }
        }
        wanted
    }

    /// A block arrived (or was found elsewhere): no longer wanted.
    pub fn block_arrived(&mut self, hash: &BlockHash) {
        self.blocks.remove(hash);
    }

    /// A transaction arrived: no longer wanted.
    pub fn tx_arrived(&mut self, txid: &Txid) {
        self.txs.remove(txid);
    }

    /// `from` said it does not have these: ask the next announcer.
    pub fn not_found(
        &mut self,
        from: PeerId,
        blocks: &[BlockHash],
        txs: &[Txid],
        now: crate::time::Time,
    ) -> Vec<(PeerId, Wanted)> {
        let blocks: Vec<(BlockHash, PeerId)> = blocks.iter().map(|h| (*h, from)).collect();
        let txs: Vec<(Txid, PeerId)> = txs.iter().map(|t| (*t, from)).collect();
        self.move_on(&blocks, &txs, now)
    }

    /// Moves each request on from the peer it names to its next announcer; returns what to
    /// ask of whom.
    fn move_on(
        &mut self,
        blocks: &[(BlockHash, PeerId)],
        txs: &[(Txid, PeerId)],
        now: crate::time::Time,
    ) -> Vec<(PeerId, Wanted)> {
        let mut retry = BTreeMap::<PeerId, Wanted>::new();
        for (hash, from) in blocks {
            if let Some(next) = next_source(&mut self.blocks, *hash, Some(*from), now) {
                retry.entry(next).or_default().blocks.push(*hash);
            }
        }
        for (txid, from) in txs {
            if let Some(next) = next_source(&mut self.txs, *txid, Some(*from), now) {
                retry.entry(next).or_default().txs.push(*txid);
            }
        }
        retry.into_iter().collect()
    }

    /// A link closed: forget it, and ask other announcers for what it owed us.
    pub fn peer_gone(&mut self, peer: PeerId, now: crate::time::Time) -> Vec<(PeerId, Wanted)> {
        self.known.remove(&peer);
        self.pending_txs.retain(|(_, f)| *f != Some(peer));
        let owed_blocks = ids_where(&self.blocks, |f| f.from == peer);
        let owed_txs = ids_where(&self.txs, |f| f.from == peer);
        for f in self.blocks.values_mut().chain(self.txs.values_mut()) {
            f.others.retain(|p| *p != peer);
        }
        self.not_found(peer, &owed_blocks, &owed_txs, now)
    }

    /// Requests not answered within the fetch timeout: ask the next announcer.
    pub fn on_timeout(&mut self, now: crate::time::Time) -> Vec<(PeerId, Wanted)> {
        let timeout = self.fetch_timeout;
        let late = |f: &Fetch| f.at + timeout <= now;
        let blocks: Vec<(BlockHash, PeerId)> = ids_where(&self.blocks, late)
            .into_iter()
            .filter_map(|h| self.blocks.get(&h).map(|f| (h, f.from)))
            .collect();
        let txs: Vec<(Txid, PeerId)> = ids_where(&self.txs, late)
            .into_iter()
            .filter_map(|t| self.txs.get(&t).map(|f| (t, f.from)))
            .collect();
        self.move_on(&blocks, &txs, now)
    }

    /// When the oldest request times out.
    pub fn next_deadline(&self) -> Option<crate::time::Time> {
        self.blocks
            .values()
            .chain(self.txs.values())
            .map(|f| f.at + self.fetch_timeout)
            .min()
    }

    /// Sends a block announcement or body to each of `targets` (see [`Relay::targets`]).
    pub fn announce_block(
        &self,
        block: &std::sync::Arc<chainsim_primitives::Block>,
        targets: &[PeerId],
        out: &mut Outbox,
    ) {
        use crate::protocol::{Message, WireBlock, WireHeader};
        for peer in targets {
            let msg = match self.mode {
                RelayMode::Announce => Message::Headers {
                    headers: vec![WireHeader(block.header)],
                },
                RelayMode::Push => Message::Block {
                    block: WireBlock(block.clone()),
                },
            };
            out.send(*peer, msg);
        }
    }
}

/// The ids of requests matching `pred`.
fn ids_where<K: Ord + Copy>(map: &BTreeMap<K, Fetch>, pred: impl Fn(&Fetch) -> bool) -> Vec<K> {
    map.iter().filter(|(_, f)| pred(f)).map(|(k, _)| *k).collect()
}

/// Records `from` as a source of `id`; true when it should be asked now (nobody else is).
fn want<K: Ord + Copy>(map: &mut BTreeMap<K, Fetch>, id: K, from: PeerId, now: crate::time::Time) -> bool {
    match map.get_mut(&id) {
        Some(f) => {
            if f.from != from && !f.others.contains(&from) {
                f.others.push(from);
            }
            false
        }
        None => {
            map.insert(
                id,
                Fetch {
                    from,
                    at: now,
                    others: Vec::new(),
                },
            );
            true
        }
    }
}

/// Moves a request on from `failed` to the next announcer; forgets it when none is left.
fn next_source<K: Ord + Copy>(
    map: &mut BTreeMap<K, Fetch>,
    id: K,
    failed: Option<PeerId>,
    now: crate::time::Time,
) -> Option<PeerId> {
    let f = map.get_mut(&id)?;
    if failed.is_some_and(|p| p != f.from) {
        return None;
    }
    if f.others.is_empty() {
        map.remove(&id);
        return None;
    }
    f.from = f.others.remove(0);
    f.at = now;
    Some(f.from)
}
