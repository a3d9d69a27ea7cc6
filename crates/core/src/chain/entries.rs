//! The block tree's entries, found by block hash. Each entry holds its own hash, so the
//! table is indexed by that field rather than keeping the hash a second time as a key: a
//! simulation's ten thousand nodes each hold an entry per block, and the key was 32 of the
//! 112 bytes of each slot.

use std::hash::BuildHasher;
use std::ops::Index;

use chainsim_primitives::BlockHash;
use hashbrown::HashTable;

use super::tree::BlockEntry;
use crate::keyed_hash::KeyedHash;

/// Block entries by hash.
#[derive(Debug, Default)]
pub(super) struct Entries {
    table: HashTable<BlockEntry>,
    keyed: KeyedHash,
}

impl Entries {
    fn hash_of(keyed: &KeyedHash, hash: &BlockHash) -> u64 {
        keyed.hash_one(hash)
    }

    fn rehasher(&self) -> impl Fn(&BlockEntry) -> u64 + use<> {
        let keyed = self.keyed;
        move |e: &BlockEntry| Self::hash_of(&keyed, &e.hash)
    }

    /// The entry of `hash`.
    pub fn get(&self, hash: &BlockHash) -> Option<&BlockEntry> {
        self.table.find(Self::hash_of(&self.keyed, hash), |e| e.hash == *hash)
    }

    /// The entry of `hash`, to change.
    pub fn get_mut(&mut self, hash: &BlockHash) -> Option<&mut BlockEntry> {
        self.table
            .find_mut(Self::hash_of(&self.keyed, hash), |e| e.hash == *hash)
    }

    /// Whether `hash` has an entry.
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.get(hash).is_some()
    }

    /// Adds `entry`, in place of the one with the same hash if there is one (one probe of
    /// the table either way).
    pub fn insert(&mut self, entry: BlockEntry) {
        let (key, rehash) = (entry.hash, self.rehasher());
        let hash = Self::hash_of(&self.keyed, &key);
        match self.table.entry(hash, |e| e.hash == key, rehash) {
            hashbrown::hash_table::Entry::Occupied(mut slot) => *slot.get_mut() = entry,
            hashbrown::hash_table::Entry::Vacant(slot) => _ = slot.insert(entry),
        }
    }

    /// Takes out the entry of `hash`.
    pub fn remove(&mut self, hash: &BlockHash) -> Option<BlockEntry> {
        let found = self
            .table
            .find_entry(Self::hash_of(&self.keyed, hash), |e| e.hash == *hash);
        found.ok().map(|slot| slot.remove().0)
    }

    /// Every entry, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &BlockEntry> {
        self.table.iter()
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Makes room for `more` entries beyond those held, in one step.
    pub fn reserve(&mut self, more: usize) {
        let rehash = self.rehasher();
        self.table.reserve(more, rehash);
    }

    /// How many entries fit without the table growing.
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Gives back the room of entries removed.
    pub fn shrink_to_fit(&mut self) {
        let rehash = self.rehasher();
        self.table.shrink_to_fit(rehash);
    }

    /// Hashes with `keyed` from now on (the entries are placed again).
    pub fn rekey(&mut self, keyed: KeyedHash) {
        let old = std::mem::take(&mut self.table);
        self.keyed = keyed;
        let rehash = self.rehasher();
        self.table = HashTable::with_capacity(old.len());
        for entry in old {
            let hash = Self::hash_of(&self.keyed, &entry.hash);
            self.table.insert_unique(hash, entry, &rehash);
        }
    }
}

impl Index<&BlockHash> for Entries {
    type Output = BlockEntry;

    /// The entry of `hash`, which the caller knows is there (as a map's index does, this
    /// panics when it is not: a broken invariant of the tree, never a peer's doing).
    fn index(&self, hash: &BlockHash) -> &BlockEntry {
        self.get(hash)
            .expect("the tree holds an entry for every block it links to")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report
mod tests {
    use std::sync::Arc;

    use chainsim_primitives::{CompactTarget, genesis_block};

    use super::*;
    use chainsim_primitives::Work;

    fn entry(i: u8) -> BlockEntry {
        let body = Arc::new(genesis_block(CompactTarget::from_leading_zero_bits(8)));
        let mut hash = [0u8; 32];
        hash[31] = i;
        hash[0] = i.wrapping_mul(7);
        BlockEntry::new(&body, BlockHash(hash), Work(u128::from(i)), u64::from(i), 0)
    }

    #[test]
    fn an_entry_takes_80_bytes() {
        // 16 for where its header is, 32 for its hash, 16 for its chain work, 16 more for
        // arrival order and counts (docs/SIMULATION.md gives this figure).
        assert_eq!(std::mem::size_of::<BlockEntry>(), 80);
    }

    #[test]
    fn entries_are_found_replaced_removed_and_rekeyed_by_their_own_hash() {
        let mut entries = Entries::default();
        for i in 0..100 {
            entries.insert(entry(i));
        }
        assert_eq!(entries.len(), 100);
        let mut again = entry(5);
        again.seq = 500;
        entries.insert(again);
        assert_eq!(entries.len(), 100, "an entry with the same hash is replaced");
        assert_eq!(entries[&entry(5).hash].seq, 500);
        assert_eq!(entries.remove(&entry(7).hash).unwrap().seq, 7);
        assert!(entries.remove(&entry(7).hash).is_none());
        assert!(!entries.contains(&entry(7).hash));
        entries.rekey(KeyedHash::new(99));
        entries.shrink_to_fit();
        assert_eq!(entries.len(), 99);
        assert!(
            (0..100)
                .filter(|&i| i != 7)
                .all(|i| entries.get(&entry(i).hash).is_some())
        );
        entries.get_mut(&entry(9).hash).unwrap().seq = 900;
        assert_eq!(entries.values().map(|e| e.seq).max(), Some(900));
    }
}
