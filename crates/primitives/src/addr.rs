//! Peer addresses: `HOST:PORT`, parsed in one place for the node, the dashboard and the
//! command line, so that `localhost:5000` and `http://127.0.0.1:5000/` name the same node;
//! and a peer's state and direction as node and dashboard both show them.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A peer's listening address, `HOST:PORT`.
///
/// Shared, not copied: an address travels in hellos and `addr` answers and sits in many
/// address books (a simulator's ten thousand nodes hold a million of them), so a clone is
/// a count, not a new string.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PeerAddr(Arc<str>);

/// Why a string is not a peer address.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid peer address {0:?}: expected HOST:PORT or http://HOST:PORT")]
pub struct AddrError(pub String);

impl PeerAddr {
    /// A node on this machine, `127.0.0.1:PORT`: the form `localhost:PORT` parses to.
    pub fn loopback(port: u16) -> Self {
        Self(format!("127.0.0.1:{port}").into())
    }

    /// The address as `HOST:PORT`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The port.
    pub fn port(&self) -> u16 {
        self.0.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0)
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
        Ok(Self(format!("{host}:{port}").into()))
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
        a.0.to_string()
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerAddr({})", self.0)
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
}
