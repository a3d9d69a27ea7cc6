//! Pending transactions: deduplicated by txid, bounded, handed to the miner oldest first.

use std::collections::{BTreeSet, HashMap};

use chainsim_primitives::{Transaction, Txid};
use thiserror::Error;

/// Default capacity of the mempool.
pub const DEFAULT_MEMPOOL_CAPACITY: usize = 50_000;

/// Why the mempool refused a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MempoolError {
    /// The mempool holds its capacity already.
    #[error("mempool is full ({0} transactions); mine a block or try again later")]
    Full(usize),
}

/// Pending transactions ordered by (timestamp, txid): oldest first, and the same order on
/// every node, which keeps block templates deterministic in tests and simulations.
#[derive(Debug)]
pub struct Mempool {
    txs: HashMap<Txid, Transaction>,
    order: BTreeSet<(u64, Txid)>,
    capacity: usize,
}

impl Mempool {
    /// An empty mempool holding at most `capacity` submitted transactions.
    pub fn new(capacity: usize) -> Self {
        Self {
            txs: HashMap::new(),
            order: BTreeSet::new(),
            capacity,
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

    /// Adds a new transaction (already checked by the caller). Returns false when it was
    /// pending already.
    pub fn insert(&mut self, txid: Txid, tx: Transaction) -> Result<bool, MempoolError> {
        if self.txs.contains_key(&txid) {
            return Ok(false);
        }
        if self.txs.len() >= self.capacity {
            return Err(MempoolError::Full(self.capacity));
        }
        Ok(self.insert_unbounded(txid, tx))
    }

    /// Adds a transaction even past capacity: used for transactions returned by a reorg,
    /// which were accepted once and must not be lost.
    pub fn insert_unbounded(&mut self, txid: Txid, tx: Transaction) -> bool {
        if self.txs.contains_key(&txid) {
            return false;
        }
        self.order.insert((tx.timestamp, txid));
        self.txs.insert(txid, tx);
        true
    }

    /// Removes a transaction, returning it if it was pending.
    pub fn remove(&mut self, txid: &Txid) -> Option<Transaction> {
        let tx = self.txs.remove(txid)?;
        self.order.remove(&(tx.timestamp, *txid));
        Some(tx)
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
        assert_eq!(m.insert(a, ta.clone()), Ok(true));
        assert_eq!(m.insert(a, ta), Ok(false));
        assert_eq!(m.insert(b, tb), Ok(true));
        assert_eq!(m.insert(c, tc.clone()), Err(MempoolError::Full(2)));
        assert!(m.insert_unbounded(c, tc));
        let order: Vec<_> = m.iter_oldest().map(|(id, _)| *id).collect();
        assert_eq!(order, vec![b, c, a]);
        assert!(m.remove(&c).is_some());
        assert!(m.remove(&c).is_none());
        assert_eq!(m.len(), 2);
    }
}
