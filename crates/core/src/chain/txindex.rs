//! Where each transaction of the best chain was mined, compactly: an 8-byte key of the
//! txid ([`crate::keyed_hash::short_key`]) and the height of its block. A million transactions take about 12 MB: a large
//! sorted base (two flat arrays) plus a small map of recent changes, merged into the base
//! in place from time to time (no second copy of the base is ever allocated). A key can match more than one transaction; callers confirm a
//! candidate against the block's body, so the index never gives a wrong answer, only a
//! rare extra read.

use std::collections::HashMap;

use chainsim_primitives::Txid;

use crate::keyed_hash::KeyedHash;

/// Most top bits of the base's directory: keys are uniform (8 bytes of a hash), so the top bits
/// of a key say where in the sorted base to look. The directory has about a bucket for every
/// four entries, up to 65,536 buckets: a small index (a simulated node's, thousands of them
/// in one process) then takes a small directory.
const DIRECTORY_BITS: u32 = 16;

/// Recent changes held before they are merged into the sorted base: at least this many,
/// and at least an eighth of the base, so that merging costs a constant per insertion. Few,
/// because the recent map costs about three times the base's 12 bytes per entry.
const MERGE_AT: usize = 256;
/// A removed base entry.
const GONE: u32 = u32::MAX;

/// The index.
#[derive(Debug, Default)]
pub struct TxIndex {
    keys: Vec<u64>,
    heights: Vec<u32>,
    /// Where each top-bits bucket starts in `keys` (one more entry than buckets).
    directory: Vec<u32>,
    /// Top bits the directory's buckets go by.
    bits: u32,
    /// Recent insertions: one height per prefix here, any further ones in `recent_more`.
    recent: HashMap<u64, u32, KeyedHash>,
    recent_more: HashMap<u64, Vec<u32>, KeyedHash>,
    recent_len: usize,
    removed: usize,
}

fn key(txid: &Txid) -> u64 {
    crate::keyed_hash::short_key(txid.as_bytes())
}

impl TxIndex {
    /// An empty index whose hashing is keyed by `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self {
            recent: HashMap::with_hasher(KeyedHash::new(seed)),
            recent_more: HashMap::with_hasher(KeyedHash::new(seed)),
            ..Self::default()
        }
    }

    /// Re-keys the hashing of recent entries with `seed` (cheap while the index is young).
    pub fn reseed(&mut self, seed: u64) {
        let mut fresh = Self::with_seed(seed);
        for (k, h) in self.recent.drain() {
            fresh.recent.insert(k, h);
        }
        for (k, v) in self.recent_more.drain() {
            fresh.recent_more.insert(k, v);
        }
        self.recent = fresh.recent;
        self.recent_more = fresh.recent_more;
    }

    /// The range of `keys` where `k` may be.
    fn bucket(&self, k: u64) -> std::ops::Range<usize> {
        if self.directory.is_empty() {
            return 0..self.keys.len();
        }
        let b = k.checked_shr(64 - self.bits).unwrap_or(0) as usize;
        self.directory[b] as usize..self.directory[b + 1] as usize
    }

    /// The first position of `k` in `keys`, or where it would go.
    fn position(&self, k: u64) -> usize {
        let range = self.bucket(k);
        let start = range.start;
        start + self.keys[range].partition_point(|x| *x < k)
    }

    /// Records that `txid` was mined at `height` of the best chain.
    pub fn insert(&mut self, txid: &Txid, height: u64) {
        let (k, h) = (key(txid), u32::try_from(height).unwrap_or(GONE - 1));
        match self.recent.entry(k) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(h);
            }
            std::collections::hash_map::Entry::Occupied(_) => self.recent_more.entry(k).or_default().push(h),
        }
        self.recent_len += 1;
        if self.recent_len >= MERGE_AT.max(self.keys.len() / 8) {
            self.merge();
        }
    }

    /// Forgets that `txid` was mined at `height` (its block left the best chain).
    pub fn remove(&mut self, txid: &Txid, height: u64) {
        let (k, h) = (key(txid), u32::try_from(height).unwrap_or(GONE - 1));
        if let Some(v) = self.recent_more.get_mut(&k)
            && let Some(i) = v.iter().position(|x| *x == h)
        {
            v.swap_remove(i);
            self.recent_len -= 1;
            if v.is_empty() {
                self.recent_more.remove(&k);
            }
            return;
        }
        if self.recent.get(&k) == Some(&h) {
            self.recent.remove(&k);
            // Keep one height in the main map while more remain.
            if let Some(v) = self.recent_more.get_mut(&k)
                && let Some(next) = v.pop()
            {
                self.recent.insert(k, next);
                if v.is_empty() {
                    self.recent_more.remove(&k);
                }
            }
            self.recent_len -= 1;
            return;
        }
        let start = self.position(k);
        for i in start..self.keys.len() {
            if self.keys[i] != k {
                break;
            }
            if self.heights[i] == h {
                self.heights[i] = GONE;
                self.removed += 1;
                return;
            }
        }
    }

    /// Heights where a transaction with `txid`'s prefix was mined (usually none or one).
    pub fn candidates(&self, txid: &Txid) -> Vec<u64> {
        let k = key(txid);
        let mut out: Vec<u64> = Vec::new();
        if let Some(h) = self.recent.get(&k) {
            out.push(u64::from(*h));
            if let Some(more) = self.recent_more.get(&k) {
                out.extend(more.iter().map(|h| u64::from(*h)));
            }
        }
        let start = self.position(k);
        for i in start..self.keys.len() {
            if self.keys[i] != k {
                break;
            }
            if self.heights[i] != GONE {
                out.push(u64::from(self.heights[i]));
            }
        }
        out
    }

    /// Number of transactions indexed.
    pub fn len(&self) -> usize {
        self.keys.len() - self.removed + self.recent_len
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Merges the recent changes into the sorted base, dropping removed entries: compacts
    /// the base, grows it at the end, and merges from the back, all in place.
    fn merge(&mut self) {
        let mut add: Vec<(u64, u32)> = self.recent.drain().collect();
        add.extend(
            self.recent_more
                .drain()
                .flat_map(|(k, v)| v.into_iter().map(move |h| (k, h))),
        );
        add.sort_unstable();
        // Compact: drop removed entries.
        let mut w = 0;
        for r in 0..self.keys.len() {
            if self.heights[r] != GONE {
                self.keys[w] = self.keys[r];
                self.heights[w] = self.heights[r];
                w += 1;
            }
        }
        self.keys.truncate(w);
        self.heights.truncate(w);
        // Merge from the back into the room at the end (exactly the room: the base is most
        // of the index's memory).
        let (old, extra) = (self.keys.len(), add.len());
        self.keys.reserve_exact(extra);
        self.heights.reserve_exact(extra);
        self.keys.resize(old + extra, 0);
        self.heights.resize(old + extra, 0);
        let (mut i, mut j, mut d) = (old, extra, old + extra);
        while j > 0 {
            d -= 1;
            if i > 0 && self.keys[i - 1] > add[j - 1].0 {
                i -= 1;
                self.keys[d] = self.keys[i];
                self.heights[d] = self.heights[i];
            } else {
                j -= 1;
                (self.keys[d], self.heights[d]) = add[j];
            }
        }
        self.recent_len = 0;
        self.removed = 0;
        self.rebuild_directory();
    }

    /// Recomputes where each top-bits bucket starts.
    fn rebuild_directory(&mut self) {
        self.bits = (usize::BITS - (self.keys.len() / 4).leading_zeros()).min(DIRECTORY_BITS);
        let buckets = 1usize << self.bits;
        self.directory.clear();
        self.directory.shrink_to(buckets + 1);
        self.directory.reserve_exact(buckets + 1);
        let mut i = 0usize;
        for b in 0..buckets {
            while i < self.keys.len() && (self.keys[i].checked_shr(64 - self.bits).unwrap_or(0) as usize) < b {
                i += 1;
            }
            self.directory.push(i as u32);
        }
        self.directory.push(self.keys.len() as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn txid(n: u64) -> Txid {
        let mut b = [0u8; 32];
        // The key (last 8 bytes) repeats every 1,000: prefixes shared by several txids.
        b[24..].copy_from_slice(&(n % 1_000).to_le_bytes());
        b[8..16].copy_from_slice(&n.to_le_bytes());
        Txid(b)
    }

    #[test]
    fn the_directory_grows_with_the_base() {
        let mut index = TxIndex::with_seed(3);
        for n in 0..1_000 {
            index.insert(&txid(n * 7_919), n);
        }
        index.merge();
        assert_eq!((index.bits, index.directory.len()), (8, 257));
        assert_eq!(index.keys.capacity(), 1_000);
        for n in (0..1_000).step_by(37) {
            assert!(index.candidates(&txid(n * 7_919)).contains(&n));
        }
    }

    proptest! {
        /// The index answers like a plain multimap of prefixes, across merges.
        #[test]
        fn matches_a_model(ops in proptest::collection::vec((any::<bool>(), 0u64..3_000, 0u64..50), 1..400)) {
            let mut index = TxIndex::with_seed(7);
            let mut model: Vec<(u64, u64)> = Vec::new();
            for (i, (insert, n, h)) in ops.into_iter().enumerate() {
                if insert || model.is_empty() {
                    index.insert(&txid(n), h);
                    model.push((n, h));
                } else {
                    let (n, h) = model.swap_remove(i % model.len());
                    index.remove(&txid(n), h);
                }
                if i % 97 == 0 {
                    index.merge();
                }
            }
            prop_assert_eq!(index.len(), model.len());
            for n in 0..3_000 {
                let mut want: Vec<u64> = model.iter().filter(|(m, _)| m % 1_000 == n % 1_000).map(|(_, h)| *h).collect();
                let mut got = index.candidates(&txid(n));
                want.sort_unstable();
                got.sort_unstable();
                prop_assert_eq!(got, want);
            }
        }
    }
}
