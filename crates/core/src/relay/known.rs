//! What each link is known to have: recent block and transaction ids, in two rings of
//! short keys per link, kept in the link's own slot of the link table (read with the link
//! a message arrives on, and walked in order when a block is announced to every link).
//!
//! Blocks and transactions are kept apart because they come at very different rates.
//! Blocks are rare (one every ten minutes on Bitcoin, one a minute on Dogecoin) and only
//! the newest matter: a link hears of a block, or tells us of it, in the few seconds the
//! block takes to cross the network, so a handful of recent ones covers every block still
//! in flight. [`BLOCKS_PER_LINK`] keys fill one cache line, the first of the link's entry,
//! and every check — about three per message on a busy network, most of them for a block
//! the link has — reads only that line. (Sixteen, in two lines, gave the same results on
//! every built-in scenario and a stressed one, and relaying a block to every link read
//! one more line per link: see docs/BENCHMARKS.md.) Transactions can arrive by the
//! hundred per second, so they keep the larger ring of [`TXS_PER_LINK`], allocated only
//! once a transaction crosses the link: a network without transactions pays nothing for
//! it, and a burst of transactions no longer pushes the block ids out.
//!
//! Forgetting an id is always safe: the worst it costs is one redundant announcement
//! (a `Headers` or `Inv` the peer ignores).

use chainsim_primitives::{BlockHash, Txid};

use crate::keyed_hash::short_key as key;

/// Block ids remembered per link (one cache line of keys).
pub(super) const BLOCKS_PER_LINK: usize = 8;
/// Transaction ids remembered per link.
pub(super) const TXS_PER_LINK: usize = 256;

/// A ring of the last `N` keys added, the oldest overwritten first. A slot holding 0 is
/// empty (or was forgotten); an id whose key is 0 (one in 2^64) is then taken as known,
/// which like any collision only skips one announcement.
#[derive(Debug, Clone)]
#[repr(C)] // the keys first: a link's entry starts with them (see `peers::Link`)
pub(super) struct Ring<const N: usize> {
    ids: [u64; N],
    /// The slot the next key goes to: the oldest.
    next: usize,
}

impl<const N: usize> Default for Ring<N> {
    fn default() -> Self {
        Self { ids: [0; N], next: 0 }
    }
}

impl<const N: usize> Ring<N> {
    /// Whether `k` is in the ring. Scans every slot without stopping early, which the
    /// compiler turns into wide compares: an early exit would save little on so few slots
    /// and costs the vectorised loop.
    pub(super) fn contains(&self, k: u64) -> bool {
        self.ids.iter().fold(false, |found, x| found | (*x == k))
    }

    /// Adds `k` in place of the oldest key; returns whether it was new.
    pub(super) fn insert(&mut self, k: u64) -> bool {
        if self.contains(k) {
            return false;
        }
        self.ids[self.next] = k;
        self.next = (self.next + 1) % N;
        true
    }

    /// Forgets `k`; its slot stays empty until its turn to be overwritten comes.
    pub(super) fn remove(&mut self, k: u64) {
        if let Some(slot) = self.ids.iter_mut().find(|x| **x == k) {
            *slot = 0;
        }
    }
}

/// The ids one link is known to have.
#[derive(Debug, Default, Clone)]
#[repr(C)] // the block keys first (see `peers::Link`)
pub struct Known {
    blocks: Ring<BLOCKS_PER_LINK>,
    /// Allocated with the first transaction id.
    txs: Option<Box<Ring<TXS_PER_LINK>>>,
}

impl Known {
    /// Whether a block is known.
    pub(crate) fn has_block(&self, hash: &BlockHash) -> bool {
        self.blocks.contains(key(hash.as_bytes()))
    }

    /// Notes a block; returns whether it was not known before.
    pub(crate) fn insert_block(&mut self, hash: &BlockHash) -> bool {
        self.blocks.insert(key(hash.as_bytes()))
    }

    /// Notes a transaction; returns whether it was not known before.
    pub(crate) fn insert_tx(&mut self, txid: &Txid) -> bool {
        self.txs.get_or_insert_default().insert(key(txid.as_bytes()))
    }

    /// Forgets a transaction.
    pub(crate) fn remove_tx(&mut self, txid: &Txid) {
        if let Some(txs) = self.txs.as_mut() {
            txs.remove(key(txid.as_bytes()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(i: u64) -> BlockHash {
        let mut bytes = [0u8; 32];
        bytes[24..].copy_from_slice(&i.to_le_bytes());
        BlockHash(bytes)
    }

    fn tx(i: u64) -> Txid {
        Txid(block(i).0)
    }

    #[test]
    fn a_ring_forgets_its_oldest_key_first() {
        let mut ring = Ring::<4>::default();
        assert!((1..=4).all(|k| ring.insert(k)));
        assert!(!ring.insert(2), "a key already there is not new");
        assert!(ring.insert(5), "the fifth key replaces the first");
        assert!(!ring.contains(1));
        assert!((2..=5).all(|k| ring.contains(k)));
        assert!(ring.insert(6), "then the second, although it was re-inserted");
        assert!(!ring.contains(2));
        assert!((3..=6).all(|k| ring.contains(k)));
    }

    #[test]
    fn a_forgotten_key_is_new_again_and_its_slot_waits_its_turn() {
        let mut ring = Ring::<3>::default();
        for k in 1..=3 {
            ring.insert(k);
        }
        ring.remove(2);
        assert!(!ring.contains(2));
        assert!(ring.insert(2), "forgotten, so new again: it takes the oldest slot");
        assert!(!ring.contains(1));
        assert!(ring.contains(3) && ring.contains(2));
    }

    #[test]
    fn blocks_keep_the_last_eight() {
        let mut known = Known::default();
        for i in 1..=BLOCKS_PER_LINK as u64 + 1 {
            assert!(known.insert_block(&block(i)));
        }
        assert!(known.insert_block(&block(1)), "the oldest block was forgotten");
        assert!(known.has_block(&block(1)) && !known.has_block(&block(2)));
        assert!(!known.insert_block(&block(BLOCKS_PER_LINK as u64 + 1)));
    }

    #[test]
    fn blocks_and_transactions_do_not_push_each_other_out() {
        let mut known = Known::default();
        assert!(known.txs.is_none(), "no transaction ring before a transaction");
        known.insert_block(&block(7));
        for i in 0..10 * TXS_PER_LINK as u64 {
            known.insert_tx(&tx(1_000 + i));
        }
        assert!(!known.insert_block(&block(7)), "transactions left the block alone");
        assert!(
            known.insert_tx(&tx(7)),
            "a block is not a transaction with the same key"
        );
        for i in 0..10 * BLOCKS_PER_LINK as u64 {
            known.insert_block(&block(1_000 + i));
        }
        assert!(!known.insert_tx(&tx(7)), "blocks left the transaction alone");
    }

    #[test]
    fn transactions_keep_the_last_256_and_can_be_forgotten() {
        let mut known = Known::default();
        for i in 1..=TXS_PER_LINK as u64 {
            known.insert_tx(&tx(i));
        }
        assert!(!known.insert_tx(&tx(1)));
        assert!(known.insert_tx(&tx(TXS_PER_LINK as u64 + 1)));
        assert!(known.insert_tx(&tx(1)), "pushed out by the 257th");
        known.remove_tx(&tx(TXS_PER_LINK as u64));
        assert!(known.insert_tx(&tx(TXS_PER_LINK as u64)), "forgotten");
        known.remove_tx(&tx(9_999));
        Known::default().remove_tx(&tx(1));
    }

    #[test]
    fn keys_are_the_last_eight_bytes() {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&[9; 8]);
        assert_eq!(
            key(&bytes),
            0,
            "leading bytes, all zero in a real proof of work, are not used"
        );
        bytes[31] = 1;
        assert_eq!(key(&bytes), 1 << 56);
    }
}
