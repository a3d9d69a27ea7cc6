//! Pending transactions: deduplicated by txid, bounded, handed to the miner oldest first.
//! Bounded per source too: transactions relayed by peers may take all but a reserve kept
//! for local submissions, and one peer at most its share of that (docs/SECURITY.md), so a
//! peer flooding the pool leaves room for local users and for other peers.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chainsim_primitives::{Transaction, Txid};
use thiserror::Error;

use crate::peers::PeerId;

/// The part of the capacity only local submissions may fill: one in this many places.
pub const LOCAL_RESERVE_DIVISOR: usize = 10;
/// The smallest share one peer may always fill: one in this many of the peers' places,
/// however many peers there are.
pub const PEER_SHARE_DIVISOR: usize = 8;

/// Default capacity of the mempool.
pub const DEFAULT_MEMPOOL_CAPACITY: usize = 50_000;

/// Why the mempool refused a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MempoolError {
    /// The mempool holds its capacity already.
    #[error("mempool is full ({0} transactions); mine a block or try again later")]
    Full(usize),
    /// The sending peer (or peers together) already hold their share of the mempool.
    #[error("this peer's share of the mempool is full ({0} transactions)")]
    PeerShare(usize),
}

/// Where a transaction came from, for the per-source bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Submitted to this node (the API), or restored from its store.
    Local,
    /// Relayed by a peer; `peers` is how many ready links share the peers' part.
    Peer {
        /// The link it came on.
        id: PeerId,
        /// Ready links now.
        peers: usize,
    },
}

/// Pending transactions ordered by (timestamp, txid): oldest first, and the same order on
/// every node, which keeps block templates deterministic in tests and simulations.
#[derive(Debug)]
pub struct Mempool {
    txs: HashMap<Txid, Transaction>,
    order: BTreeSet<(u64, Txid)>,
    capacity: usize,
    /// The link each peer-relayed pending transaction came on.
    relayed_by: HashMap<Txid, PeerId>,
    /// Pending transactions per relaying link.
    per_peer: HashMap<PeerId, usize>,
    /// Signed transfers by sender and nonce (the accounts ledger's conflicts and nonces).
    by_sender: HashMap<String, BTreeMap<u64, Txid>>,
}

impl Mempool {
    /// An empty mempool holding at most `capacity` submitted transactions.
    pub fn new(capacity: usize) -> Self {
        Self {
            txs: HashMap::new(),
            order: BTreeSet::new(),
            capacity,
            relayed_by: HashMap::new(),
            per_peer: HashMap::new(),
            by_sender: HashMap::new(),
        }
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// The configured capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether `txid` is pending.
    pub fn contains(&self, txid: &Txid) -> bool {
        self.txs.contains_key(txid)
    }

    /// A pending transaction.
    pub fn get(&self, txid: &Txid) -> Option<&Transaction> {
        self.txs.get(txid)
    }

    /// Adds a new transaction (already checked by the caller) within the bounds for its
    /// source. Returns false when it was pending already.
    pub fn insert(&mut self, txid: Txid, tx: Transaction, source: Source) -> Result<bool, MempoolError> {
        if self.txs.contains_key(&txid) {
            return Ok(false);
        }
        if self.txs.len() >= self.capacity {
            return Err(MempoolError::Full(self.capacity));
        }
        if let Source::Peer { id, peers } = source {
            let (all, share) = self.peer_bounds(peers);
            let held = self.per_peer.get(&id).copied().unwrap_or(0);
            if self.relayed_by.len() >= all || held >= share {
                return Err(MempoolError::PeerShare(held));
            }
            self.relayed_by.insert(txid, id);
            *self.per_peer.entry(id).or_default() += 1;
        }
        Ok(self.insert_unbounded(txid, tx))
    }

    /// How many places peers may fill together, and one peer alone, with `peers` links:
    /// an equal split of the peers' part, never less than [`PEER_SHARE_DIVISOR`]'s share
    /// and never more than half (so a lone flooder leaves room for the next peer).
    pub fn peer_bounds(&self, peers: usize) -> (usize, usize) {
        let all = self.capacity - self.capacity / LOCAL_RESERVE_DIVISOR;
        let share = (all / peers.max(2)).max(all / PEER_SHARE_DIVISOR).max(1);
        (all, share)
    }

    /// Pending transactions relayed by `peer`.
    pub fn held_for(&self, peer: PeerId) -> usize {
        self.per_peer.get(&peer).copied().unwrap_or(0)
    }

    /// Adds a transaction even past capacity: used for transactions returned by a reorg,
    /// which were accepted once and must not be lost.
    pub fn insert_unbounded(&mut self, txid: Txid, tx: Transaction) -> bool {
        if self.txs.contains_key(&txid) {
            return false;
        }
        self.order.insert((tx.timestamp, txid));
        if let Some(nonce) = tx.nonce() {
            self.by_sender.entry(tx.sender.clone()).or_default().insert(nonce, txid);
        }
        self.txs.insert(txid, tx);
        true
    }

    /// Removes a transaction, returning it if it was pending.
    pub fn remove(&mut self, txid: &Txid) -> Option<Transaction> {
        let tx = self.txs.remove(txid)?;
        self.order.remove(&(tx.timestamp, *txid));
        if let Some(nonce) = tx.nonce()
            && let Some(nonces) = self.by_sender.get_mut(&tx.sender)
        {
            if nonces.get(&nonce) == Some(txid) {
                nonces.remove(&nonce);
            }
            if nonces.is_empty() {
                self.by_sender.remove(&tx.sender);
            }
        }
        if let Some(peer) = self.relayed_by.remove(txid)
            && let Some(held) = self.per_peer.get_mut(&peer)
        {
            *held -= 1;
            if *held == 0 {
                self.per_peer.remove(&peer);
            }
        }
        Some(tx)
    }

    /// The pending signed transfer of `sender` with `nonce`, if any.
    pub fn pending_nonce(&self, sender: &str, nonce: u64) -> Option<Txid> {
        self.by_sender.get(sender)?.get(&nonce).copied()
    }

    /// How many signed transfers `sender` has pending, and what they spend together.
    pub fn pending_of(&self, sender: &str) -> (usize, u64) {
        let Some(nonces) = self.by_sender.get(sender) else {
            return (0, 0);
        };
        let spend = nonces
            .values()
            .filter_map(|id| self.txs.get(id))
            .fold(0u64, |sum, tx| sum.saturating_add(tx.amount));
        (nonces.len(), spend)
    }

    /// The lowest pending nonce of `sender`.
    pub fn pending_by_sender_of(&self, sender: &str) -> Option<u64> {
        self.by_sender.get(sender)?.keys().next().copied()
    }

    /// Pending signed transfers per sender, by nonce.
    pub fn pending_by_sender(&self) -> impl Iterator<Item = (&String, &BTreeMap<u64, Txid>)> {
        self.by_sender.iter()
    }

    /// Pending transactions, oldest first.
    pub fn iter_oldest(&self) -> impl Iterator<Item = (&Txid, &Transaction)> {
        self.order.iter().filter_map(|(_, id)| self.txs.get_key_value(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(i: u64, ts: u64) -> (Txid, Transaction) {
        let t = Transaction::new(format!("s{i}"), "r", 1, ts);
        (t.compute_txid(), t)
    }

    #[test]
    fn dedup_bound_and_order() {
        let mut m = Mempool::new(2);
        let (a, ta) = tx(1, 30);
        let (b, tb) = tx(2, 10);
        let (c, tc) = tx(3, 20);
        assert_eq!(m.insert(a, ta.clone(), Source::Local), Ok(true));
        assert_eq!(m.insert(a, ta, Source::Local), Ok(false));
        assert_eq!(m.insert(b, tb, Source::Local), Ok(true));
        assert_eq!(m.insert(c, tc.clone(), Source::Local), Err(MempoolError::Full(2)));
        assert!(m.insert_unbounded(c, tc));
        let order: Vec<_> = m.iter_oldest().map(|(id, _)| *id).collect();
        assert_eq!(order, vec![b, c, a]);
        assert!(m.remove(&c).is_some());
        assert!(m.remove(&c).is_none());
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn a_flooding_peer_leaves_room_for_local_users_and_other_peers() {
        let mut m = Mempool::new(100);
        let (flooder, honest) = (PeerId(1), PeerId(2));
        let from = |id| Source::Peer { id, peers: 2 };
        let mut n = 0;
        let mut next = || {
            n += 1;
            tx(n, n)
        };
        // With two peers, one may fill half of the peers' 90 places.
        let taken = (0..100).filter(|_| {
            let (id, t) = next();
            m.insert(id, t, from(flooder)).is_ok()
        });
        assert_eq!(taken.count(), 45);
        assert_eq!(m.held_for(flooder), 45);
        let (id, t) = next();
        assert_eq!(m.insert(id, t, from(flooder)), Err(MempoolError::PeerShare(45)));
        let (id, t) = next();
        assert_eq!(m.insert(id, t, from(honest)), Ok(true), "another peer still gets in");
        let (id, t) = next();
        assert_eq!(m.insert(id, t, Source::Local), Ok(true), "a local user still gets in");
        // Mined or evicted transactions give the share back.
        let first = *m.iter_oldest().next().unwrap().0;
        m.remove(&first);
        assert_eq!(m.held_for(flooder), 44);
        // However many peers, each may fill an eighth of the peers' part.
        assert_eq!(m.peer_bounds(1000), (90, 11));
        assert_eq!(m.peer_bounds(1), (90, 45), "a lone peer may fill half");
    }
}
