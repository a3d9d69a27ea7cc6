//! Hashing for map keys whose trailing bytes are already random: block hashes, transaction
//! ids and 8-byte keys cut from them. Each value of 8 bytes costs one multiply, keyed by a
//! secret seed per node so that no one can craft ids that pile into one bucket. The
//! standard hasher (SipHash over all 32 bytes) cost more than the lookups it served: a node
//! looks up a block hash several times for every announcement it hears.
//!
//! [`KeyedBytesHash`] is its sibling for short keys that are not random: it reads every
//! byte. Peer addresses, the keys it was made for, now hash as the 8-byte fingerprint they
//! carry (see `PeerAddr`), which it mixes with its secret like any other 8 bytes.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// A short key for a 32-byte id (a block hash, a transaction id): its last 8 bytes, the
/// ones that are random whatever the difficulty (a block hash's first bytes are its proof of
/// work's zeros). Tables that keep ids by such keys treat a collision as the same id, which
/// each of them shows to cost at most a redundant message or a second look.
pub fn short_key(id: &[u8; 32]) -> u64 {
    let mut k = [0u8; 8];
    k.copy_from_slice(&id[24..]);
    u64::from_le_bytes(k)
}

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
/// it is only fast and well spread for keys whose last 8 bytes are random, because it
/// looks at no more than the last 8 bytes of each write.
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
        // The last 8 bytes: a block hash's first bytes are the zeros its proof of work
        // buys, all alike at a real difficulty; its last bytes are as random as any.
        match bytes.last_chunk::<8>() {
            Some(tail) => self.write_u64(u64::from_le_bytes(*tail)),
            None => {
                let mut k = [0u8; 8];
                k[..bytes.len()].copy_from_slice(bytes);
                self.write_u64(u64::from_le_bytes(k) ^ (bytes.len() as u64) << 56);
            }
        }
    }
    fn write_u64(&mut self, k: u64) {
        let mixed = (self.state ^ k ^ self.seed).wrapping_mul(MUL);
        self.state = mixed.rotate_left(29) ^ self.seed.rotate_left(7);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        self.state
    }
}

/// Builds [`KeyedBytesHasher`]s with one node's secret seed: hashing of short keys whose
/// bytes are all significant and far from random, like peer addresses ("10.0.3.17:8333").
///
/// Why not SipHash: the address book looks up every address of every `addr` message, and
/// SipHash's rounds over a 15-byte string were most of that cost. Why a multiply/rotate
/// mix is enough: the keys come from peers, so a hash anyone could compute would let one
/// fill a bucket; the seed is secret per node, and every 8 bytes go through a multiply by
/// an odd constant (a bijection) and a rotation that feeds the well-mixed high bits back
/// into the low ones, so that crafting collisions without the seed is not a matter of
/// arithmetic. And the worst case is bounded anyway: the book holds at most its limit of
/// addresses, so even a full collision costs a scan of that many short strings per lookup,
/// which is what the book's answers cost before any hashing at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyedBytesHash(u64);

impl KeyedBytesHash {
    /// Hashing keyed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
}

/// The hasher of [`KeyedBytesHash`].
#[derive(Debug, Default)]
pub struct KeyedBytesHasher {
    seed: u64,
    state: u64,
}

impl BuildHasher for KeyedBytesHash {
    type Hasher = KeyedBytesHasher;
    fn build_hasher(&self) -> KeyedBytesHasher {
        KeyedBytesHasher {
            seed: self.0,
            state: self.0,
        }
    }
}

/// The odd multiplier of both hashers (2^64 over the golden ratio).
const MUL: u64 = 0x9E37_79B9_7F4A_7C15;

impl KeyedBytesHasher {
    /// Mixes in 8 bytes.
    fn mix(&mut self, k: u64) {
        self.state = (self.state ^ k).wrapping_mul(MUL).rotate_left(26);
    }
}

impl Hasher for KeyedBytesHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut k = [0u8; 8];
            k.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(k));
        }
        // The tail, with the length, so that "ab" and "ab\0" differ.
        let tail = chunks.remainder();
        let mut k = [0u8; 8];
        k[..tail.len()].copy_from_slice(tail);
        self.mix(u64::from_le_bytes(k) ^ (bytes.len() as u64) << 56);
    }
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }
    fn finish(&self) -> u64 {
        // Tables take their bucket from the low bits and a tag from the high ones: one more
        // multiply by the seed spreads every bit of the state into both.
        let x = (self.state ^ self.seed.rotate_left(17)).wrapping_mul(MUL);
        x ^ (x >> 32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_keys_hash_by_every_byte_and_by_seed() {
        let (a, b) = (KeyedBytesHash::new(1), KeyedBytesHash::new(2));
        let key = "10.0.3.17:8333";
        assert_eq!(a.hash_one(key), a.hash_one(key.to_string()));
        assert_ne!(a.hash_one(key), b.hash_one(key));
        assert_ne!(
            a.hash_one("10.0.3.17:8333"),
            a.hash_one("10.0.3.17:8334"),
            "the last byte"
        );
        assert_ne!(
            a.hash_one("10.0.3.17:8333"),
            a.hash_one("11.0.3.17:8333"),
            "the first byte"
        );
        assert_ne!(a.hash_one([1u8, 2]), a.hash_one([1u8, 2, 0]), "the length");
        // Addresses that differ in one place spread over both ends of the hash.
        let hashes: Vec<u64> = (0..256).map(|i| a.hash_one(format!("10.0.{i}.1:8333"))).collect();
        let low: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 0xff).collect();
        let high: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(
            low.len() > 128 && high.len() > 96,
            "{} low, {} high",
            low.len(),
            high.len()
        );
    }

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
    fn hashes_with_the_zeros_of_a_real_difficulty_still_spread() {
        // Bitcoin's hashes today start with about 10 zero bytes: only the end differs.
        let a = KeyedHash::new(3);
        let hashes: std::collections::HashSet<u64> = (0..1000u32)
            .map(|i| {
                let mut k = [0u8; 32];
                k[28..].copy_from_slice(&i.to_le_bytes());
                a.hash_one(k) & 0xfff
            })
            .collect();
        assert!(hashes.len() > 700, "{} of 1000 distinct buckets", hashes.len());
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
