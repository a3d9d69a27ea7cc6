//! Hashing for map keys whose leading bytes are already random: block hashes, transaction
//! ids and their 8-byte prefixes. Each value of 8 bytes costs one multiply, keyed by a
//! secret seed per node so that no one can craft ids that pile into one bucket. The
//! standard hasher (SipHash over all 32 bytes) cost more than the lookups it served: a node
//! looks up a block hash several times for every announcement it hears.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// Builds [`KeyedHasher`]s with one node's secret seed.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyedHash(u64);

impl KeyedHash {
    /// Hashing keyed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
}

/// A map keyed by random-looking ids, hashed with [`KeyedHash`].
pub type KeyedMap<K, V> = HashMap<K, V, KeyedHash>;

/// The hasher of [`KeyedHash`]. Equal keys always hash equal, so it is correct for any key;
/// it is only fast and well spread for keys whose first 8 bytes are random, because it
/// looks at no more than the first 8 bytes of each write.
#[derive(Debug, Default)]
pub struct KeyedHasher {
    seed: u64,
    state: u64,
}

impl BuildHasher for KeyedHash {
    type Hasher = KeyedHasher;
    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher { seed: self.0, state: 0 }
    }
}

impl Hasher for KeyedHasher {
    fn write(&mut self, bytes: &[u8]) {
        match bytes.first_chunk::<8>() {
            Some(head) => self.write_u64(u64::from_le_bytes(*head)),
            None => {
                let mut k = [0u8; 8];
                k[..bytes.len()].copy_from_slice(bytes);
                self.write_u64(u64::from_le_bytes(k) ^ (bytes.len() as u64) << 56);
            }
        }
    }
    fn write_u64(&mut self, k: u64) {
        let mixed = (self.state ^ k ^ self.seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.state = mixed.rotate_left(29) ^ self.seed.rotate_left(7);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_equal_and_seeds_differ() {
        let (a, b) = (KeyedHash::new(1), KeyedHash::new(2));
        let key = [7u8; 32];
        assert_eq!(a.hash_one(key), a.hash_one(key));
        assert_ne!(a.hash_one(key), b.hash_one(key));
        assert_ne!(a.hash_one([1u8; 32]), a.hash_one([2u8; 32]));
        assert_ne!(
            a.hash_one([1u8, 2]),
            a.hash_one([1u8, 2, 0]),
            "short writes keep their length"
        );
    }

    #[test]
    fn a_map_finds_what_it_holds() {
        let mut m: KeyedMap<[u8; 32], u32> = KeyedMap::with_hasher(KeyedHash::new(9));
        for i in 0..1000u32 {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.to_le_bytes());
            m.insert(k, i);
        }
        assert!((0..1000u32).all(|i| {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.to_le_bytes());
            m.get(&k) == Some(&i)
        }));
    }
}
