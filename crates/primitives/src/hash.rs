//! 32-byte hashes as distinct newtypes so a txid is never mistaken for a block hash.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Single SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Single SHA-256 of `parts` one after the other: the hash of their concatenation, without
/// making it (a network forming hashes a token for every hello).
pub fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    parts.iter().for_each(|p| hasher.update(p));
    hasher.finalize().into()
}

/// Error returned when a hex string is not a 32-byte hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 hexadecimal characters")]
pub struct ParseHashError;

macro_rules! hash_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; 32]);

        /// Feeds only the first 8 bytes to the hasher: the value is already a uniform hash,
        /// so they spread as well as all 32, and the map's keyed SipHash still keeps a peer
        /// from grinding collisions. A third of the hashing work on the hottest lookups.
        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                let mut first = [0u8; 8];
                first.copy_from_slice(&self.0[..8]);
                state.write_u64(u64::from_le_bytes(first));
            }
        }

        impl $name {
            /// The all-zero value.
            pub const ZERO: Self = Self([0; 32]);

            /// The raw bytes, most significant first.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Lower-case hex, 64 characters.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), &self.to_hex()[..16])
            }
        }

        impl FromStr for $name {
            type Err = ParseHashError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out).map_err(|_| ParseHashError)?;
                Ok(Self(out))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hash_newtype!(
    /// A generic 32-byte hash (Merkle tree nodes, proof siblings).
    Hash256
);
hash_newtype!(
    /// The hash of a block header; identifies a block.
    BlockHash
);
hash_newtype!(
    /// The hash of a transaction's canonical encoding; identifies a transaction.
    Txid
);
hash_newtype!(
    /// The root of a block's Merkle tree of txids.
    MerkleRoot
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_bad_input() {
        let h = Txid(sha256(b"abc"));
        assert_eq!(
            h.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(h.to_hex().parse::<Txid>(), Ok(h));
        assert!("zz".parse::<Txid>().is_err());
        assert!("ab".repeat(33).parse::<Txid>().is_err());
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Txid>(&json).unwrap(), h);
    }

    proptest::proptest! {
        #[test]
        fn hashing_parts_is_hashing_their_concatenation(
            parts in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..100), 0..5)
        ) {
            let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            proptest::prop_assert_eq!(sha256_parts(&slices), sha256(&parts.concat()));
        }
    }
}
