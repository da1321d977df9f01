//! A decoder of server-sent events (the `text/event-stream` format of
//! streamed chat answers): bytes in, whole events' `data` out.
//!
//! Only what chat streams use is kept: `data:` lines, joined with `\n`
//! when an event has several; comments (`:` lines, keep-alives) and the
//! `event`, `id` and `retry` fields are skipped. Lines end with `\n` or
//! `\r\n`. Text is decoded by whole line, so a UTF-8 character split
//! across two network chunks comes out whole.

/// Turns a byte stream into the `data` of each event, as events complete.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    /// Bytes after the last complete line.
    pending: Vec<u8>,
    /// `data` of the event being read, `None` until its first `data:` line.
    data: Option<String>,
}

impl SseDecoder {
    /// Feeds `bytes` and calls `event` with the data of each event they
    /// complete, in order.
    pub(crate) fn push(&mut self, bytes: &[u8], mut event: impl FnMut(String)) {
        self.pending.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(end) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line_end = start + end;
            let mut line = &self.pending[start..line_end];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            if let Some(data) = read_line(&mut self.data, line) {
                event(data);
            }
            start = line_end + 1;
        }
        self.pending.drain(..start);
    }

    /// Whether bytes of an unfinished event are held: a stream that ends
    /// here was cut.
    pub(crate) fn holds_partial_event(&self) -> bool {
        !self.pending.is_empty() || self.data.is_some()
    }
}

/// One line of the event whose data so far is `data`; returns the event's
/// data when the line ends it.
fn read_line(data: &mut Option<String>, line: &[u8]) -> Option<String> {
    if line.is_empty() {
        return data.take();
    }
    if line.starts_with(b":") {
        return None;
    }
    let (field, value) = match line.iter().position(|&b| b == b':') {
        Some(colon) => {
            let value = &line[colon + 1..];
            (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
        }
        None => (line, &[][..]),
    };
    if field == b"data" {
        let value = String::from_utf8_lossy(value);
        match data {
            Some(data) => {
                data.push('\n');
                data.push_str(&value);
            }
            None => *data = Some(value.into_owned()),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(pieces: &[&[u8]]) -> (Vec<String>, bool) {
        let mut decoder = SseDecoder::default();
        let mut events = Vec::new();
        for piece in pieces {
            decoder.push(piece, |data| events.push(data));
        }
        (events, decoder.holds_partial_event())
    }

    #[test]
    fn events_come_out_whole_however_the_bytes_are_cut() {
        let stream = "data: {\"a\":1}\n\n: keep-alive\n\nevent: x\r\ndata: é\r\ndata:2\r\n\r\ndata: [DONE]\n\n";
        let whole = decode(&[stream.as_bytes()]);
        assert_eq!(whole.0, ["{\"a\":1}", "é\n2", "[DONE]"]);
        assert!(!whole.1);
        let bytes = stream.as_bytes();
        for cut in 1..bytes.len() {
            let (events, partial) = decode(&[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(events, whole.0, "cut at {cut}");
            assert!(!partial);
        }
        let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode(&one_by_one).0, whole.0);
    }

    #[test]
    fn an_unfinished_event_is_reported() {
        let (events, partial) = decode(&[b"data: {\"a\":1}\n\ndata: {\"b\""]);
        assert_eq!(events, ["{\"a\":1}"]);
        assert!(partial);
        let (_, partial) = decode(&[b"data: x\n"]);
        assert!(
            partial,
            "data line without the blank line that ends the event"
        );
    }
}
