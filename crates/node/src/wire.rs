//! The peer protocol on the wire: one long-lived connection per link, opened as an HTTP
//! upgrade on the node's own port (`GET /p2p`, `Upgrade: chainsim-p2p/2`), then
//! length-prefixed frames both ways: a 4-byte big-endian length, then one JSON [`Message`].
//! The connection is the peer's identity (docs/NETWORK.md): nothing in a frame names its
//! sender.

use std::time::Duration;

use chainsim_core::{Message, PeerAddr};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The `Upgrade` token of the peer protocol.
pub const UPGRADE: &str = "chainsim-p2p/2";
/// Largest frame accepted (a batch of 500 blocks fits with room to spare).
pub const MAX_FRAME: usize = 64 * 1024 * 1024;
/// Longest HTTP answer head read while upgrading.
const MAX_HEAD: usize = 8 * 1024;

/// Why a frame could not be read or a link opened.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The connection failed or closed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A frame announced more bytes than allowed.
    #[error("frame of {0} bytes is over the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
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

/// Reads one frame. `Ok(None)` is a clean end of the connection.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Message>, WireError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| WireError::Garbage(e.to_string()))
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

    #[tokio::test]
    async fn frames_round_trip_and_limits_hold() {
        let msg = Message::GetAddr;
        let frame = encode_frame(&msg);
        let mut r = &frame[..];
        assert_eq!(read_frame(&mut r).await.unwrap(), Some(msg));
        assert!(read_frame(&mut r).await.unwrap().is_none(), "clean end");
        let big = ((MAX_FRAME + 1) as u32).to_be_bytes();
        assert!(matches!(read_frame(&mut &big[..]).await, Err(WireError::TooLarge(_))));
        let mut junk = 3u32.to_be_bytes().to_vec();
        junk.extend_from_slice(b"{x}");
        assert!(matches!(read_frame(&mut &junk[..]).await, Err(WireError::Garbage(_))));
        let cut = [0u8, 0, 0, 9, b'{'];
        assert!(matches!(read_frame(&mut &cut[..]).await, Err(WireError::Io(_))));
    }
}
