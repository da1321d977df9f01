//! Streaming answers (server-sent events, the shape of every chat backend):
//! the time to the first token, the time between tokens, and whether the
//! stream ended properly.
//!
//! A *token* is one event with data, as OpenAI-compatible servers send one
//! chunk per generated token (or a few). A stream *ends properly* when it
//! sends an end marker — `data: [DONE]` (OpenAI and compatibles) or an
//! event named `done`, `end`, `complete` or `message_stop` (Anthropic) —
//! and the body then ends without error. A body that just stops, or is cut,
//! counts as a stream that did not end properly: that is how a client sees
//! an answer cut off mid-sentence.
//!
//! The scanner looks at each line's first bytes only, so an event's size
//! costs nothing but the scan for line ends.

use std::time::Duration;

/// What one streamed answer did, times from when the request was sent (in
/// the open model: due).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StreamStats {
    /// Events with data other than the end marker.
    pub(crate) tokens: u32,
    /// When the first of them arrived.
    pub(crate) first_token: Option<Duration>,
    /// When the last of them arrived.
    pub(crate) last_token: Option<Duration>,
    /// The end marker came.
    pub(crate) end_marker: bool,
}

impl StreamStats {
    /// The mean time between tokens, for streams of two tokens or more.
    pub(crate) fn time_per_token(&self) -> Option<Duration> {
        let (first, last) = (self.first_token?, self.last_token?);
        let gaps = self.tokens.checked_sub(1).filter(|&gaps| gaps > 0)?;
        Some(last.saturating_sub(first) / gaps)
    }
}

/// Longest line prefix kept: enough for `data: [DONE]` and the event names.
const PREFIX: usize = 24;

/// Event names that end a stream.
const END_EVENTS: [&[u8]; 4] = [b"done", b"end", b"complete", b"message_stop"];

/// Finds events in a body fed in chunks as they arrive.
#[derive(Debug, Default)]
pub(crate) struct SseScanner {
    stats: StreamStats,
    line: [u8; PREFIX],
    line_len: usize,
    event_has_data: bool,
    event_is_end: bool,
}

impl SseScanner {
    pub(crate) fn new() -> SseScanner {
        SseScanner::default()
    }

    /// Scans `chunk`, which arrived `at` after the request was sent.
    pub(crate) fn feed(&mut self, chunk: &[u8], at: Duration) {
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|&byte| byte == b'\n') {
            self.keep(&rest[..end]);
            self.end_line(at);
            rest = &rest[end + 1..];
        }
        self.keep(rest);
    }

    /// The figures so far (call when the body has ended).
    pub(crate) fn finish(&self) -> StreamStats {
        self.stats
    }

    fn keep(&mut self, bytes: &[u8]) {
        let room = PREFIX - self.line_len;
        let taken = bytes.len().min(room);
        self.line[self.line_len..self.line_len + taken].copy_from_slice(&bytes[..taken]);
        self.line_len += taken;
    }

    fn end_line(&mut self, at: Duration) {
        let mut line = &self.line[..self.line_len];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        if line.is_empty() {
            self.end_event(at);
        } else if let Some(value) = field(line, b"data") {
            self.event_has_data = true;
            self.event_is_end |= value == b"[DONE]";
        } else if let Some(value) = field(line, b"event") {
            self.event_is_end |= END_EVENTS.contains(&value);
        }
        self.line_len = 0;
    }

    fn end_event(&mut self, at: Duration) {
        if self.event_is_end {
            self.stats.end_marker = true;
        } else if self.event_has_data {
            self.stats.tokens = self.stats.tokens.saturating_add(1);
            self.stats.first_token.get_or_insert(at);
            self.stats.last_token = Some(at);
        }
        self.event_has_data = false;
        self.event_is_end = false;
    }
}

/// The value of field `name` on `line` (`name: value`, one optional space).
fn field<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let value = line.strip_prefix(name)?.strip_prefix(b":")?;
    Some(value.strip_prefix(b" ").unwrap_or(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn tokens_are_data_events_and_done_ends_the_stream() {
        let mut scanner = SseScanner::new();
        scanner.feed(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
            MS(50),
        );
        scanner.feed(b": keep-alive comment\n\n", MS(60));
        scanner.feed(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n",
            MS(70),
        );
        scanner.feed(b"data: {\"x\":1}\n\ndata: [DONE]\n\n", MS(90));
        let stats = scanner.finish();
        assert_eq!(stats.tokens, 3);
        assert_eq!(stats.first_token, Some(MS(50)));
        assert_eq!(stats.last_token, Some(MS(90)));
        assert!(stats.end_marker);
        assert_eq!(stats.time_per_token(), Some(MS(20)));
    }

    #[test]
    fn events_split_across_chunks_and_crlf_lines_are_found() {
        let mut scanner = SseScanner::new();
        scanner.feed(b"da", MS(10));
        scanner.feed(b"ta: one\r", MS(11));
        scanner.feed(b"\n\r\n", MS(12));
        scanner.feed(b"event: message_stop\r\ndata: {}\r\n\r\n", MS(20));
        let stats = scanner.finish();
        assert_eq!(stats.tokens, 1);
        assert_eq!(stats.first_token, Some(MS(12)));
        assert!(stats.end_marker);
        assert_eq!(stats.time_per_token(), None);
    }

    #[test]
    fn a_stream_that_just_stops_has_no_end_marker_and_an_unfinished_event_is_not_a_token() {
        let mut scanner = SseScanner::new();
        scanner.feed(b"data: a\n\ndata: b\n\ndata: half", MS(5));
        let stats = scanner.finish();
        assert_eq!(stats.tokens, 2);
        assert!(!stats.end_marker);
        // Long lines cost only their prefix.
        let mut long = SseScanner::new();
        let mut line = b"data: ".to_vec();
        line.extend(std::iter::repeat_n(b'x', 100_000));
        line.extend_from_slice(b"\n\n");
        long.feed(&line, MS(1));
        assert_eq!(long.finish().tokens, 1);
    }
}
