//! Peer addresses: `HOST:PORT`, parsed in one place for the node, the dashboard and the
//! command line, so that `localhost:5000` and `http://127.0.0.1:5000/` name the same node;
//! and a peer's state and direction as node and dashboard both show them.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::hash::sha256;

/// A peer's listening address, `HOST:PORT`.
///
/// Shared, not copied: an address travels in hellos and `addr` answers and sits in many
/// address books (a simulator's ten thousand nodes hold a million of them), so a clone is
/// a count, not a new string. Beside the text it carries a fingerprint of it, so that
/// telling two addresses apart and hashing one (what an address book does hundreds of
/// times per `addr` message) read no string: on a simulator's ten thousand nodes each text
/// is far from the caches, and reading them was most of what forming the network cost.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PeerAddr {
    /// A thin pointer (the length lives with the text): with the fingerprint the address
    /// takes two words, as the bare `Arc<str>` it replaced did, so no structure holding one
    /// grows or moves its fields.
    text: Arc<String>,
    /// The first 8 bytes of the text's SHA-256: equal texts have equal fingerprints, and
    /// no one can make many texts share one (tables keyed by address hash it with a secret
    /// of their own, which a fingerprint anyone could make collide would defeat).
    fingerprint: u64,
}

impl PartialEq for PeerAddr {
    fn eq(&self, other: &Self) -> bool {
        // The text is read only when the fingerprints agree and the strings are not one.
        self.fingerprint == other.fingerprint && (Arc::ptr_eq(&self.text, &other.text) || self.text == other.text)
    }
}

impl Eq for PeerAddr {}

impl Hash for PeerAddr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.fingerprint);
    }
}

impl PartialOrd for PeerAddr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PeerAddr {
    /// By text, as addresses are listed.
    fn cmp(&self, other: &Self) -> Ordering {
        self.text.cmp(&other.text)
    }
}

/// Why a string is not a peer address.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid peer address {0:?}: expected HOST:PORT or http://HOST:PORT")]
pub struct AddrError(pub String);

impl PeerAddr {
    /// The address whose (already normalised) text is `text`, with its fingerprint.
    fn new(text: String) -> Self {
        let digest = sha256(text.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        Self {
            text: Arc::new(text),
            fingerprint: u64::from_le_bytes(first),
        }
    }

    /// A node on this machine, `127.0.0.1:PORT`: the form `localhost:PORT` parses to.
    pub fn loopback(port: u16) -> Self {
        Self::new(format!("127.0.0.1:{port}"))
    }

    /// The address as `HOST:PORT`.
    pub fn as_str(&self) -> &str {
        &self.text
    }
    /// What a clone writes (the shared count, beside the text's handle), for a driver that
    /// loads it ahead of an event whose node clones this address (a prefetch hint: the count
    /// sits just before the handle, on its cache line three times in four).
    pub fn shared_part(&self) -> &impl Sized {
        &*self.text
    }
    /// The port.
    pub fn port(&self) -> u16 {
        self.text.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0)
    }
}

impl FromStr for PeerAddr {
    type Err = AddrError;
    /// Accepts `HOST:PORT`, `http://HOST:PORT` and a trailing slash, as the original did.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || AddrError(s.chars().take(100).collect());
        let t = s.trim();
        let t = t.strip_prefix("http://").unwrap_or(t);
        let t = t.trim_end_matches('/');
        let (host, port) = t.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
        if !host_ok || port == 0 {
            return Err(bad());
        }
        let host = if host.eq_ignore_ascii_case("localhost") {
            "127.0.0.1".to_string()
        } else {
            host.to_ascii_lowercase()
        };
        Ok(Self::new(format!("{host}:{port}")))
    }
}

impl TryFrom<String> for PeerAddr {
    type Error = AddrError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PeerAddr> for String {
    fn from(a: PeerAddr) -> String {
        a.text.as_ref().clone()
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerAddr({})", self.text)
    }
}

/// Where a peer stands, as the node shows it (`/peers`, events) and the dashboard reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerState {
    /// Known, will be contacted when a slot is free and its retry time has come.
    Idle,
    /// Dialling, or the handshake is under way.
    Connecting,
    /// Handshake done; messages flow.
    Connected,
    /// Failed recently; retried later.
    Backoff,
    /// Cut by the operator until unblocked.
    Blocked,
    /// Misbehaved or incompatible; ignored for a while.
    Banned,
}

/// Who opened a peer link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// We dialled them.
    Outbound,
    /// They dialled us.
    Inbound,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_like_the_original() {
        let a: PeerAddr = "http://127.0.0.1:5001".parse().unwrap();
        assert_eq!(a.as_str(), "127.0.0.1:5001");
        assert_eq!("127.0.0.1:5001/".parse::<PeerAddr>().unwrap(), a);
        assert_eq!("localhost:5001".parse::<PeerAddr>().unwrap(), a);
        assert_eq!(PeerAddr::loopback(5001), a);
        assert_eq!(a.port(), 5001);
        for bad in [
            "",
            "5001",
            "host:",
            "host:99999",
            "host:0",
            "a b:1",
            "http://:80",
            "x:y",
        ] {
            assert!(bad.parse::<PeerAddr>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn equal_texts_are_equal_addresses_and_hash_alike_however_made() {
        use std::hash::BuildHasher;
        let hasher = std::collections::hash_map::RandomState::new();
        let a = PeerAddr::loopback(5001);
        let b: PeerAddr = "localhost:5001".parse().unwrap();
        assert!(!Arc::ptr_eq(&a.text, &b.text), "two strings, not one");
        assert_eq!(a, b);
        assert_eq!(hasher.hash_one(&a), hasher.hash_one(&b));
        assert_eq!(a.cmp(&b), Ordering::Equal);
        let c = PeerAddr::loopback(5002);
        assert_ne!(a, c);
        assert_ne!(a.fingerprint, c.fingerprint);
        // Ordered by text, as lists of peers show them.
        let mut list: Vec<PeerAddr> = ["b.example:1", "a.example:2", "a.example:10"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        list.sort();
        let texts: Vec<&str> = list.iter().map(PeerAddr::as_str).collect();
        assert_eq!(texts, ["a.example:10", "a.example:2", "b.example:1"]);
        assert_eq!(std::mem::size_of::<PeerAddr>(), 16, "two words, as before");
    }

    proptest::proptest! {
        #[test]
        fn equality_and_order_follow_the_text(a in "[a-c]{1,3}:[1-3]", b in "[a-c]{1,3}:[1-3]") {
            let (x, y): (PeerAddr, PeerAddr) = (a.parse().unwrap(), b.parse().unwrap());
            proptest::prop_assert_eq!(x == y, a == b);
            proptest::prop_assert_eq!(x.cmp(&y), a.cmp(&b));
            if x == y {
                proptest::prop_assert_eq!(x.fingerprint, y.fingerprint);
            }
        }
    }
}
