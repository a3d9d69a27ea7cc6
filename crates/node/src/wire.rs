//! The peer protocol on the wire: one long-lived connection per link, opened as an HTTP
//! upgrade on the node's own port (`GET /p2p`, `Upgrade: chainsim-p2p/2`), then
//! length-prefixed frames both ways: a 4-byte big-endian length, then one JSON [`Message`].
//! The connection is the peer's identity (docs/NETWORK.md): nothing in a frame names its
//! sender.

use std::time::Duration;

use std::sync::Arc;

use chainsim_core::protocol::{max_frame_any, max_frame_bytes};
use chainsim_core::{Message, PeerAddr};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The `Upgrade` token of the peer protocol.
pub const UPGRADE: &str = "chainsim-p2p/2";
/// Longest HTTP answer head read while upgrading.
const MAX_HEAD: usize = 8 * 1024;
/// Bytes read from a frame to learn its kind: `{"type":"` and the longest tag fit.
const KIND_PEEK: usize = 32;
/// Bytes of frames all links together may hold, read but not yet handled by the driver,
/// by default: a few of the biggest frames (docs/SECURITY.md).
pub const DEFAULT_FRAME_BUDGET: usize = 64 * 1024 * 1024;

/// Why a frame could not be read or a link opened.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The connection failed or closed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A frame announced more bytes than its kind may have.
    #[error("a {kind} frame of {len} bytes is over its {max}-byte limit")]
    TooLarge {
        /// The frame's kind (`hello` for a link's first frame, whatever it claims).
        kind: String,
        /// The announced length.
        len: usize,
        /// The limit for that kind.
        max: usize,
    },
    /// A frame does not begin with a known `type` tag, so its limit cannot be known.
    #[error("a frame does not begin with a known message type")]
    NoKind,
    /// A frame is not a message.
    #[error("unreadable message: {0}")]
    Garbage(String),
    /// The other side did not switch to the peer protocol.
    #[error("no upgrade to the peer protocol: {0}")]
    Refused(String),
    /// Dialling took too long.
    #[error("timed out")]
    Timeout,
}

impl WireError {
    /// Whether the peer broke the framing rules (scored as garbage before the link closes).
    pub fn is_violation(&self) -> bool {
        matches!(self, Self::TooLarge { .. } | Self::NoKind)
    }
}

/// One message read from a link, with its share of the frame budget: the bytes count
/// against the budget until the frame is dropped, i.e. until the driver has handled it.
#[derive(Debug)]
pub struct Frame {
    /// The message.
    pub msg: Message,
    held: OwnedSemaphorePermit,
}

impl Frame {
    /// The message, and its share of the budget to drop once the message is handled.
    pub fn into_parts(self) -> (Message, OwnedSemaphorePermit) {
        (self.msg, self.held)
    }
}

/// Reads one link's frames, applying the limits *before* a body is read or decoded: the
/// announced length against the kind's limit (a link's first frame must be a `hello`), and
/// the bytes against a budget shared by all links, waited for when it is spent.
#[derive(Debug)]
pub struct FrameReader {
    budget: Arc<Semaphore>,
    first: bool,
    /// The largest frame of any kind (computed once, checked on every frame).
    any: usize,
}

impl FrameReader {
    /// A reader for a new link, drawing on `budget` (bytes; see [`frame_budget`]).
    pub fn new(budget: Arc<Semaphore>) -> Self {
        Self {
            budget,
            first: true,
            any: max_frame_any(),
        }
    }

    /// Reads one frame. `Ok(None)` is a clean end of the connection.
    pub async fn read<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<Option<Frame>, WireError> {
        let mut len = [0u8; 4];
        match r.read_exact(&mut len).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_be_bytes(len) as usize;
        // The bound that needs no more bytes first: a sender that stops after the length
        // must not hold the reader.
        let first = std::mem::take(&mut self.first);
        let (bound_kind, bound) = if first {
            ("hello", max_frame_bytes("hello"))
        } else {
            ("any", Some(self.any))
        };
        check_len(bound_kind, len, bound)?;
        let mut body = vec![0u8; len.min(KIND_PEEK)];
        r.read_exact(&mut body).await?;
        let kind = kind_of(&body).ok_or(WireError::NoKind)?;
        let kind = if first { "hello" } else { kind };
        check_len(kind, len, max_frame_bytes(kind))?;
        // Kind limits keep every frame within the budget, so this wait always ends.
        let held = self
            .budget
            .clone()
            .acquire_many_owned(u32::try_from(len).unwrap_or(u32::MAX))
            .await
            .map_err(|_| std::io::Error::other("the node is shutting down"))?;
        let peeked = body.len();
        body.resize(len, 0);
        r.read_exact(&mut body[peeked..]).await?;
        let msg = serde_json::from_slice(&body).map_err(|e| WireError::Garbage(e.to_string()))?;
        Ok(Some(Frame { msg, held }))
    }
}

/// Refuses a frame of `len` bytes over `max` (`None`: a kind without a limit).
fn check_len(kind: &str, len: usize, max: Option<usize>) -> Result<(), WireError> {
    let max = max.ok_or(WireError::NoKind)?;
    if len > max {
        return Err(WireError::TooLarge {
            kind: kind.to_string(),
            len,
            max,
        });
    }
    Ok(())
}

/// A budget of `bytes` for [`FrameReader`]s to share, never less than the biggest frame.
pub fn frame_budget(bytes: usize) -> Arc<Semaphore> {
    let bytes = bytes.max(max_frame_any()).min(Semaphore::MAX_PERMITS);
    Arc::new(Semaphore::new(bytes))
}

/// The `type` tag a frame begins with, if it begins with one this protocol knows.
fn kind_of(head: &[u8]) -> Option<&'static str> {
    let rest = head.strip_prefix(b"{\"type\":\"")?;
    let end = rest.iter().position(|&b| b == b'"')?;
    Message::KINDS.iter().copied().find(|k| k.as_bytes() == &rest[..end])
}

/// Encodes one message as a frame.
pub fn encode_frame(msg: &Message) -> Vec<u8> {
    // Serialising our own message types cannot fail (no maps with non-string keys).
    let body = serde_json::to_vec(msg).unwrap_or_default();
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, msg: &Message) -> Result<(), WireError> {
    w.write_all(&encode_frame(msg)).await?;
    Ok(())
}

/// Dials `addr` and upgrades the connection to the peer protocol.
pub async fn dial(addr: &PeerAddr, timeout: Duration) -> Result<TcpStream, WireError> {
    tokio::time::timeout(timeout, dial_inner(addr))
        .await
        .map_err(|_| WireError::Timeout)?
}

async fn dial_inner(addr: &PeerAddr) -> Result<TcpStream, WireError> {
    let mut stream = TcpStream::connect(addr.as_str()).await?;
    stream.set_nodelay(true)?;
    let request = format!("GET /p2p HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: {UPGRADE}\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    // Read the answer head byte by byte: nothing after it may be consumed, since the
    // peer's first frame may follow at once.
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(WireError::Refused("answer head too long".into()));
        }
        if stream.read(&mut byte).await? == 0 {
            return Err(WireError::Refused("closed during the upgrade".into()));
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let status = head.lines().next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 101") {
        return Err(WireError::Refused(status.to_string()));
    }
    Ok(stream)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report
mod tests {
    use super::*;

    async fn read_one(bytes: &[u8], first: bool) -> Result<Option<Message>, WireError> {
        let mut reader = FrameReader::new(frame_budget(0));
        reader.first = first;
        Ok(reader.read(&mut &bytes[..]).await?.map(|f| f.msg))
    }

    fn frame_of(len: usize, body: &[u8]) -> Vec<u8> {
        let mut frame = (len as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        frame
    }

    #[tokio::test]
    async fn frames_round_trip_and_limits_hold() {
        let msg = Message::GetAddr;
        let frame = encode_frame(&msg);
        assert_eq!(read_one(&frame, false).await.unwrap(), Some(msg));
        assert!(read_one(&[], false).await.unwrap().is_none(), "clean end");
        let junk = frame_of(21, br#"{"type":"get_addr",x}"#);
        assert!(matches!(read_one(&junk, false).await, Err(WireError::Garbage(_))));
        let cut = frame_of(30, br#"{"type":"get_addr""#);
        assert!(matches!(read_one(&cut, false).await, Err(WireError::Io(_))));
    }

    #[tokio::test]
    async fn a_frame_over_its_kinds_limit_is_refused_before_its_body_is_read() {
        // Only a head is sent: a reader that waited for the body would fail with Io.
        let ping_max = max_frame_bytes("ping").unwrap();
        let big_ping = frame_of(ping_max + 1, br#"{"type":"ping","height":12345678901234"#);
        let err = read_one(&big_ping, false).await.unwrap_err();
        assert!(
            matches!(err, WireError::TooLarge { ref kind, .. } if kind == "ping"),
            "{err}"
        );
        // A link's first frame is held to the handshake's limit whatever it claims to be.
        let big_first = frame_of(100_000, br#"{"type":"blocks","blocks":["00000000"#);
        let err = read_one(&big_first, true).await.unwrap_err();
        assert!(
            matches!(err, WireError::TooLarge { ref kind, .. } if kind == "hello"),
            "{err}"
        );
        // Within its kind's limit, the same head is read on.
        assert!(matches!(read_one(&big_first, false).await, Err(WireError::Io(_))));
        let any = frame_of(max_frame_any() + 1, br#"{"type":"blocks","blocks":["00000000"#);
        assert!(read_one(&any, false).await.unwrap_err().is_violation());
        // A bare length over every limit (or the handshake's) needs no further byte.
        for first in [false, true] {
            let bare = ((max_frame_any() + 1) as u32).to_be_bytes();
            let err = read_one(&bare, first).await.unwrap_err();
            assert!(err.is_violation(), "{err}");
        }
        for head in [&br#"{"height":1,"type":"ping"}"#[..], br#"{"type":"mystery"}"#, b"[]"] {
            let err = read_one(&frame_of(head.len(), head), false).await.unwrap_err();
            assert!(matches!(err, WireError::NoKind), "{err}");
        }
    }

    #[tokio::test]
    async fn readers_wait_for_the_shared_budget() {
        let budget = frame_budget(0);
        let all = budget.available_permits();
        let frame = encode_frame(&Message::GetAddr);
        let mut reader = FrameReader::new(budget.clone());
        reader.first = false;
        let held = reader.read(&mut &frame[..]).await.unwrap().unwrap();
        assert_eq!(budget.available_permits(), all - (frame.len() - 4));
        drop(held);
        assert_eq!(budget.available_permits(), all);
        let _spent = budget.clone().acquire_many_owned(all as u32).await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(50), reader.read(&mut &frame[..])).await;
        assert!(waiting.is_err(), "a spent budget makes readers wait");
    }
}
