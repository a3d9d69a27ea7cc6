//! Keys, signatures and addresses of the accounts ledger.
//!
//! Keys are Ed25519 and always made from a 32-byte seed: nothing here draws randomness, so
//! the demo accounts' keys are the same on every machine (the command line draws a fresh
//! seed from the operating system for `wallet new`).
//!
//! An address is the first 20 bytes of SHA-256 of the public key, written as
//! `cs1` + 40 hex digits + an 8-hex-digit checksum (the first 4 bytes of SHA-256 of `cs1`
//! followed by the 20 address bytes): 51 characters, lower case. A typo changes the
//! checksum, so a mistyped address is refused instead of paying a stranger.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::hash::sha256;

/// The text every address starts with.
pub const ADDRESS_PREFIX: &str = "cs1";
/// Length of an address in text form.
pub const ADDRESS_TEXT_LEN: usize = ADDRESS_PREFIX.len() + 40 + 8;

/// Why a key, signature or address could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The text is not an address.
    #[error("not an address: expected {ADDRESS_PREFIX} followed by 48 lower-case hex digits")]
    AddressFormat,
    /// The address's checksum does not match (a typo).
    #[error("address checksum does not match (mistyped?)")]
    AddressChecksum,
    /// A hex field has the wrong length or a non-hex character.
    #[error("{0} must be {1} hexadecimal characters")]
    Hex(&'static str, usize),
    /// The public key is not a point on the curve.
    #[error("public key is not a valid Ed25519 key")]
    BadPublicKey,
}

/// A 20-byte account address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// The address of a public key.
    pub fn of(key: &PublicKey) -> Self {
        let digest = sha256(&key.0);
        let mut out = [0u8; 20];
        out.copy_from_slice(&digest[..20]);
        Self(out)
    }

    fn checksum(bytes: &[u8; 20]) -> [u8; 4] {
        let mut data = ADDRESS_PREFIX.as_bytes().to_vec();
        data.extend_from_slice(bytes);
        let digest = sha256(&data);
        [digest[0], digest[1], digest[2], digest[3]]
    }

    /// The text form, `cs1…`.
    pub fn to_text(&self) -> String {
        format!(
            "{ADDRESS_PREFIX}{}{}",
            hex::encode(self.0),
            hex::encode(Self::checksum(&self.0))
        )
    }

    /// Reads the text form, checking the checksum.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let body = text.strip_prefix(ADDRESS_PREFIX).ok_or(KeyError::AddressFormat)?;
        let lower = body.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if body.len() != 48 || !lower {
            return Err(KeyError::AddressFormat);
        }
        let mut bytes = [0u8; 20];
        let mut sum = [0u8; 4];
        hex::decode_to_slice(&body[..40], &mut bytes).map_err(|_| KeyError::AddressFormat)?;
        hex::decode_to_slice(&body[40..], &mut sum).map_err(|_| KeyError::AddressFormat)?;
        if sum != Self::checksum(&bytes) {
            return Err(KeyError::AddressChecksum);
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", self.to_text())
    }
}

impl FromStr for Address {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Self::parse(s)
    }
}

fn fixed_hex<const N: usize>(field: &'static str, text: &str) -> Result<[u8; N], KeyError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text.trim(), &mut out).map_err(|_| KeyError::Hex(field, 2 * N))?;
    Ok(out)
}

/// An Ed25519 public key, as its 32 bytes (checked to be a curve point when verifying).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

/// An Ed25519 signature, as its 64 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignatureBytes(pub [u8; 64]);

macro_rules! hex_serde {
    ($name:ident, $len:expr, $what:literal) => {
        impl $name {
            /// Lower-case hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
            /// Reads lower- or upper-case hex.
            pub fn from_hex(text: &str) -> Result<Self, KeyError> {
                fixed_hex::<$len>($what, text).map(Self)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Self::from_hex(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}
hex_serde!(PublicKey, 32, "public key");
hex_serde!(SignatureBytes, 64, "signature");

/// A signing key made from a 32-byte seed.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret by accident.
        write!(f, "SecretKey(for {})", self.address())
    }
}

impl SecretKey {
    /// The key of a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }
    /// The seed as 64 hex digits (what a key file holds).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.to_bytes())
    }
    /// Reads a seed written by [`SecretKey::to_hex`].
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        fixed_hex::<32>("private key", text).map(Self::from_seed)
    }
    /// The public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }
    /// The address of the public key.
    pub fn address(&self) -> Address {
        Address::of(&self.public())
    }
    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> SignatureBytes {
        SignatureBytes(self.0.sign(message).to_bytes())
    }
}

/// Whether `signature` is `key`'s over `message`, by the strict rules (canonical encodings,
/// no small-order key), so one signed message has one valid signature.
pub fn verify(key: &PublicKey, message: &[u8], signature: &SignatureBytes) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(&key.0) else {
        return false;
    };
    key.verify_strict(message, &Signature::from_bytes(&signature.0)).is_ok()
}

/// Whether every signature of `items` (key, message, signature) is valid, checked together
/// (a batch costs about half of checking one by one). False says some signature is bad,
/// not which: check them one by one with [`verify`] to find it.
pub fn verify_batch(items: &[(PublicKey, Vec<u8>, SignatureBytes)]) -> bool {
    let mut keys = Vec::with_capacity(items.len());
    for (key, _, _) in items {
        match VerifyingKey::from_bytes(&key.0) {
            // Small-order keys are refused as by `verify`, so the two agree on keys.
            Ok(k) if !k.is_weak() => keys.push(k),
            _ => return false,
        }
    }
    let messages: Vec<&[u8]> = items.iter().map(|(_, m, _)| m.as_slice()).collect();
    let signatures: Vec<Signature> = items.iter().map(|(_, _, s)| Signature::from_bytes(&s.0)).collect();
    ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok()
}

/// The ten demo accounts, funded in the accounts network's genesis.
pub const DEMO_NAMES: [&str; 10] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
];

/// What each demo account holds in the accounts network's genesis.
pub const DEMO_BALANCE: u64 = 1_000;

/// The well-known key of a demo account: the seed is SHA-256 of `"chainsim demo " + name`
/// (lower case). Anyone can compute it: these keys are public, for demos only.
pub fn demo_key(name: &str) -> Option<SecretKey> {
    let name = name.trim().to_lowercase();
    DEMO_NAMES
        .contains(&name.as_str())
        .then(|| SecretKey::from_seed(sha256(format!("chainsim demo {name}").as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_and_catch_typos() {
        let key = SecretKey::from_seed([7; 32]);
        let text = key.address().to_text();
        assert_eq!(text.len(), ADDRESS_TEXT_LEN);
        assert_eq!(Address::parse(&text), Ok(key.address()));
        // One changed digit breaks the checksum.
        let mut typo = text.clone().into_bytes();
        typo[10] = if typo[10] == b'0' { b'1' } else { b'0' };
        let typo = String::from_utf8(typo).unwrap();
        assert_eq!(Address::parse(&typo), Err(KeyError::AddressChecksum));
        assert_eq!(Address::parse("alice"), Err(KeyError::AddressFormat));
        assert_eq!(Address::parse(&text.to_uppercase()), Err(KeyError::AddressFormat));
    }

    #[test]
    fn demo_keys_are_fixed() {
        let alice = demo_key("alice").unwrap();
        assert_eq!(demo_key(" Alice ").unwrap().to_hex(), alice.to_hex());
        assert_eq!(alice.to_hex(), hex::encode(sha256(b"chainsim demo alice")));
        assert!(demo_key("mallory").is_none());
        let addrs: std::collections::HashSet<_> = DEMO_NAMES
            .iter()
            .filter_map(|n| demo_key(n))
            .map(|k| k.address())
            .collect();
        assert_eq!(addrs.len(), 10);
    }

    #[test]
    fn signatures_verify_alone_and_in_batches() {
        let key = SecretKey::from_seed([1; 32]);
        let sig = key.sign(b"hello");
        assert!(verify(&key.public(), b"hello", &sig));
        assert!(!verify(&key.public(), b"hellO", &sig));
        let other = SecretKey::from_seed([2; 32]);
        let good = vec![
            (key.public(), b"a".to_vec(), key.sign(b"a")),
            (other.public(), b"b".to_vec(), other.sign(b"b")),
        ];
        assert!(verify_batch(&good));
        let mut bad = good.clone();
        bad[1].1 = b"c".to_vec();
        assert!(!verify_batch(&bad));
        assert_eq!(SecretKey::from_hex(&key.to_hex()).unwrap().public(), key.public());
        assert_eq!(PublicKey::from_hex(&key.public().to_hex()), Ok(key.public()));
    }
}
