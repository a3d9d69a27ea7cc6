//! An incremental parser for Server-Sent Events, fed with the raw byte chunks of a
//! node's `GET /events` response.
//!
//! Chunks from the network split lines (and even UTF-8 characters) anywhere, so the
//! parser keeps whatever follows the last line break until the next chunk arrives.

/// One complete SSE message: the `event:` name (`"message"` when the server gave none)
/// and the `data:` lines joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseMessage {
    /// The `event:` field, or `"message"` as the SSE specification says.
    pub event: String,
    /// All `data:` lines of the message joined with `\n`.
    pub data: String,
}

/// Refuse to grow without bound when a peer never sends a line break.
const MAX_LINE: usize = 4 * 1024 * 1024;

/// Turns a stream of byte chunks into [`SseMessage`]s.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    /// A chunk ended on `\r`; a `\n` opening the next chunk belongs to that line break.
    after_cr: bool,
}

impl SseParser {
    /// A parser with no pending input.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one chunk and returns the messages it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseMessage> {
        let mut out = Vec::new();
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(stripped) = rest.strip_prefix(b"\n") {
                rest = stripped;
            }
        }
        while let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, tail) = rest.split_at(pos);
            self.buf.extend_from_slice(head);
            let line = std::mem::take(&mut self.buf);
            self.line(&line, &mut out);
            rest = if tail.starts_with(b"\r\n") {
                &tail[2..]
            } else if tail == b"\r" {
                self.after_cr = true;
                &tail[1..]
            } else {
                &tail[1..]
            };
        }
        self.buf.extend_from_slice(rest);
        if self.buf.len() > MAX_LINE {
            // A line this long is garbage, not an event; forget it rather than hold memory.
            self.buf.clear();
        }
        out
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseMessage>) {
        let line = String::from_utf8_lossy(line);
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(SseMessage {
                    event: self
                        .event
                        .take()
                        .filter(|e| !e.is_empty())
                        .unwrap_or_else(|| "message".to_owned()),
                    data,
                });
            }
            self.event = None;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            // `id` and `retry` steer browser reconnection; this client has its own backoff.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(event: &str, data: &str) -> SseMessage {
        SseMessage {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn parses_a_simple_event() {
        let mut p = SseParser::new();
        let got = p.feed(b"event: tip\ndata: {\"height\":3}\n\n");
        assert_eq!(got, vec![msg("tip", "{\"height\":3}")]);
    }

    #[test]
    fn event_without_name_is_message() {
        let mut p = SseParser::new();
        assert_eq!(p.feed(b"data: x\n\n"), vec![msg("message", "x")]);
    }

    #[test]
    fn joins_multiple_data_lines() {
        let mut p = SseParser::new();
        assert_eq!(
            p.feed(b"event: a\ndata: one\ndata: two\ndata\n\n"),
            vec![msg("a", "one\ntwo\n")]
        );
    }

    #[test]
    fn ignores_comments_ids_and_unknown_fields() {
        let mut p = SseParser::new();
        let got = p.feed(b": keep-alive\n\nid: 7\nretry: 100\nfoo: bar\nevent: b\ndata: 1\n\n");
        assert_eq!(got, vec![msg("b", "1")]);
    }

    #[test]
    fn a_blank_line_without_data_dispatches_nothing() {
        let mut p = SseParser::new();
        assert!(p.feed(b"event: lonely\n\n").is_empty());
        // The event name must not leak into the next message.
        assert_eq!(p.feed(b"data: y\n\n"), vec![msg("message", "y")]);
    }

    #[test]
    fn handles_crlf_and_cr_line_endings() {
        let mut p = SseParser::new();
        assert_eq!(
            p.feed(b"event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\r"),
            vec![msg("a", "1"), msg("b", "2")]
        );
    }

    #[test]
    fn handles_chunks_split_anywhere() {
        let input = "event: tx\ndata: {\"sender\":\"Zoë 채굴\"}\r\n\r\nevent: tip\ndata: {}\n\n";
        let bytes = input.as_bytes();
        for split in 0..bytes.len() {
            let mut p = SseParser::new();
            let mut got = p.feed(&bytes[..split]);
            got.extend(p.feed(&bytes[split..]));
            assert_eq!(
                got,
                vec![msg("tx", "{\"sender\":\"Zoë 채굴\"}"), msg("tip", "{}")],
                "split at {split}"
            );
        }
    }

    #[test]
    fn byte_by_byte() {
        let mut p = SseParser::new();
        let mut got = Vec::new();
        for b in b"event: peer\r\ndata: {\"a\":1}\r\n\r\n" {
            got.extend(p.feed(&[*b]));
        }
        assert_eq!(got, vec![msg("peer", "{\"a\":1}")]);
    }

    #[test]
    fn value_keeps_extra_spaces_after_the_first() {
        let mut p = SseParser::new();
        assert_eq!(p.feed(b"data:  two\n\n"), vec![msg("message", " two")]);
        assert_eq!(p.feed(b"data:none\n\n"), vec![msg("message", "none")]);
    }

    #[test]
    fn incomplete_message_waits_for_the_blank_line() {
        let mut p = SseParser::new();
        assert!(p.feed(b"event: block\ndata: {}\n").is_empty());
        assert_eq!(p.feed(b"\n"), vec![msg("block", "{}")]);
    }
}
