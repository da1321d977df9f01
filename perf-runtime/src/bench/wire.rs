//! HTTP/1.1 on a virtual user's socket, for a load generator: the request
//! is the same bytes every time, so it is prepared once and written as is;
//! the answer's head is parsed with `httparse` and its body framed by
//! `content-length`, chunked transfer coding or the end of the connection.
//!
//! Why not hyper's client here: a load generator sends one fixed request
//! in a loop and only counts the answer, and at tens of thousands of
//! requests per second on one core the generic client's per-request work
//! (building an `http::Request`, the dispatch channel between the send
//! handle and the connection, the `http::Response` it builds) was the
//! difference between us and wrk (docs/PERFORMANCE.md). Bodies are read and
//! dropped as they arrive, except that a streamed answer's bytes go through
//! the SSE scanner.

use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, Method};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::recorder::{ErrorKind, Outcome};
use super::sse::SseScanner;

/// The largest answer head accepted; a larger one is a malformed answer.
const MAX_HEAD: usize = 64 * 1024;
/// Headers parsed at most in one answer head.
const MAX_HEADERS: usize = 64;
/// What a read asks the socket for, at least.
const READ_CHUNK: usize = 16 * 1024;

/// The request's bytes: request line, headers, `content-length` when there
/// is a body (or the method usually has one), blank line, body.
pub(crate) fn request_bytes(
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    payload: &Bytes,
) -> Bytes {
    let mut out = BytesMut::with_capacity(256 + payload.len());
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(path_and_query.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    let has_body_method = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    if (!payload.is_empty() || has_body_method)
        && !headers.contains_key(http::header::CONTENT_LENGTH)
    {
        out.put_slice(format!("content-length: {}\r\n", payload.len()).as_bytes());
    }
    out.put_slice(b"\r\n");
    out.put_slice(payload);
    out.freeze()
}

/// Why an exchange got no answer.
#[derive(Debug)]
pub(crate) enum WireError {
    /// The connection ended before a byte of the answer came: on a reused
    /// connection, the server closed it while idle (its keep-alive timeout).
    Closed,
    /// The connection failed, or the answer was not HTTP/1.1, after the
    /// answer had started.
    Broken,
}

/// One open connection and the bytes read from it not yet consumed.
pub(crate) struct Wire {
    stream: TcpStream,
    buffer: BytesMut,
}

/// How an answer's body ends.
#[derive(Clone, Copy)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

impl Wire {
    /// Connects (no Nagle delay: the request goes out in one segment).
    pub(crate) async fn connect(address: &str) -> io::Result<Wire> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(Wire {
            stream,
            buffer: BytesMut::with_capacity(READ_CHUNK),
        })
    }

    /// Writes `request`, reads the whole answer; the outcome and whether
    /// the connection can carry the next request. A streamed answer's
    /// events are timed from `origin`. `head` for a HEAD request (its
    /// answer has no body whatever its headers say).
    pub(crate) async fn exchange(
        &mut self,
        request: &[u8],
        origin: Instant,
        head: bool,
    ) -> Result<(Outcome, bool), WireError> {
        if self.stream.write_all(request).await.is_err() {
            return Err(WireError::Closed);
        }
        let (status, framing, keep_alive, streamed) = self.read_head(head).await?;
        if streamed {
            let mut scanner = SseScanner::new();
            let ended = self
                .read_body(framing, |data| scanner.feed(data, origin.elapsed()))
                .await;
            let cut = ended.is_err();
            let outcome = Outcome::Stream {
                status,
                stats: scanner.finish(),
                cut,
            };
            return Ok((outcome, !cut && keep_alive && !until_close(framing)));
        }
        match self.read_body(framing, |_| {}).await {
            Ok(framing) => Ok((
                Outcome::Response(status),
                keep_alive && !until_close(framing),
            )),
            Err(_) => Ok((Outcome::Failed(ErrorKind::Other), false)),
        }
    }

    /// Reads more bytes into the buffer; `false` at the end of the stream.
    async fn fill(&mut self) -> Result<bool, WireError> {
        self.buffer.reserve(READ_CHUNK);
        match self.stream.read_buf(&mut self.buffer).await {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(_) => Err(WireError::Broken),
        }
    }

    /// Parses the answer's head (skipping interim 1xx answers): status,
    /// body framing, whether the connection stays open, whether the body
    /// is an event stream.
    async fn read_head(&mut self, head: bool) -> Result<(u16, Framing, bool, bool), WireError> {
        let mut received_any = !self.buffer.is_empty();
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&self.buffer) {
                Ok(httparse::Status::Complete(length)) => {
                    let status = response.code.unwrap_or_default();
                    let facts = HeadFacts::of(response.version, response.headers);
                    self.buffer.advance(length);
                    if (100..200).contains(&status) && status != 101 {
                        continue;
                    }
                    let framing = if head || status == 204 || status == 304 || status < 200 {
                        Framing::None
                    } else if facts.chunked {
                        Framing::Chunked
                    } else if let Some(length) = facts.content_length {
                        Framing::Length(length)
                    } else {
                        Framing::UntilClose
                    };
                    return Ok((status, framing, facts.keep_alive, facts.event_stream));
                }
                Ok(httparse::Status::Partial) if self.buffer.len() < MAX_HEAD => {}
                _ => return Err(WireError::Broken),
            }
            match self.fill().await {
                Ok(true) => received_any = true,
                Ok(false) | Err(_) if !received_any => return Err(WireError::Closed),
                _ => return Err(WireError::Broken),
            }
        }
    }

    /// Reads the body to its end, handing each piece of data to `data`.
    /// Returns the framing it ended by.
    async fn read_body(
        &mut self,
        framing: Framing,
        mut data: impl FnMut(&[u8]),
    ) -> Result<Framing, WireError> {
        match framing {
            Framing::None => {}
            Framing::Length(mut left) => {
                while left > 0 {
                    if self.buffer.is_empty() && !self.fill().await? {
                        return Err(WireError::Broken);
                    }
                    let take = self
                        .buffer
                        .len()
                        .min(usize::try_from(left).unwrap_or(usize::MAX));
                    data(&self.buffer[..take]);
                    self.buffer.advance(take);
                    left -= take as u64;
                }
            }
            Framing::Chunked => self.read_chunks(&mut data).await?,
            Framing::UntilClose => loop {
                data(&self.buffer);
                self.buffer.clear();
                if !self.fill().await? {
                    break;
                }
            },
        }
        Ok(framing)
    }

    /// Chunked transfer coding: size line, data, CRLF, …, a zero size,
    /// trailers, blank line.
    async fn read_chunks(&mut self, data: &mut impl FnMut(&[u8])) -> Result<(), WireError> {
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.buffer) {
                    Ok(httparse::Status::Complete((length, size))) => {
                        self.buffer.advance(length);
                        break size;
                    }
                    Ok(httparse::Status::Partial) if self.buffer.len() < MAX_HEAD => {
                        if !self.fill().await? {
                            return Err(WireError::Broken);
                        }
                    }
                    _ => return Err(WireError::Broken),
                }
            };
            if size == 0 {
                return self.skip_trailers().await;
            }
            // The chunk's data, then its CRLF.
            let mut left = size + 2;
            while left > 0 {
                if self.buffer.is_empty() && !self.fill().await? {
                    return Err(WireError::Broken);
                }
                let take = self
                    .buffer
                    .len()
                    .min(usize::try_from(left).unwrap_or(usize::MAX));
                let data_part =
                    take.min(usize::try_from(left.saturating_sub(2)).unwrap_or(usize::MAX));
                if data_part > 0 {
                    data(&self.buffer[..data_part]);
                }
                self.buffer.advance(take);
                left -= take as u64;
            }
        }
    }

    /// After the last chunk: trailer lines up to a blank line.
    async fn skip_trailers(&mut self) -> Result<(), WireError> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|pair| pair == b"\r\n") {
                let blank = end == 0;
                self.buffer.advance(end + 2);
                if blank {
                    return Ok(());
                }
                continue;
            }
            if self.buffer.len() >= MAX_HEAD || !self.fill().await? {
                return Err(WireError::Broken);
            }
        }
    }
}

fn until_close(framing: Framing) -> bool {
    matches!(framing, Framing::UntilClose)
}

/// What the answer's headers say about its body and the connection.
struct HeadFacts {
    chunked: bool,
    content_length: Option<u64>,
    keep_alive: bool,
    event_stream: bool,
}

impl HeadFacts {
    fn of(version: Option<u8>, headers: &[httparse::Header<'_>]) -> HeadFacts {
        let mut facts = HeadFacts {
            chunked: false,
            content_length: None,
            // HTTP/1.1 keeps the connection unless told otherwise; 1.0
            // closes it unless told otherwise.
            keep_alive: version == Some(1),
            event_stream: false,
        };
        for header in headers {
            let value = std::str::from_utf8(header.value).unwrap_or_default().trim();
            if header.name.eq_ignore_ascii_case("transfer-encoding") {
                facts.chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            } else if header.name.eq_ignore_ascii_case("content-length") {
                facts.content_length = value.parse().ok();
            } else if header.name.eq_ignore_ascii_case("connection") {
                if value.eq_ignore_ascii_case("close") {
                    facts.keep_alive = false;
                } else if value.eq_ignore_ascii_case("keep-alive") {
                    facts.keep_alive = true;
                }
            } else if header.name.eq_ignore_ascii_case("content-type") {
                facts.event_stream = value
                    .split(';')
                    .next()
                    .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/event-stream"));
            }
        }
        facts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn the_request_has_its_line_headers_length_and_body() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:8000"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let bytes = request_bytes(
            &Method::POST,
            "/api/chat?x=1",
            &headers,
            &Bytes::from_static(b"{}"),
        );
        assert_eq!(
            &bytes[..],
            b"POST /api/chat?x=1 HTTP/1.1\r\nhost: 127.0.0.1:8000\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        );
        let get = request_bytes(&Method::GET, "/", &HeaderMap::new(), &Bytes::new());
        assert_eq!(&get[..], b"GET / HTTP/1.1\r\n\r\n");
    }

    /// Serves `answers` (raw bytes, each written after a request arrives)
    /// on a loopback socket, then closes.
    async fn server(answers: Vec<&'static [u8]>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = [0_u8; 1024];
            for answer in answers {
                let _ = socket.read(&mut request).await;
                // Written in two pieces, so parsing across reads is exercised.
                let (first, second) = answer.split_at(answer.len() / 2);
                let _ = socket.write_all(first).await;
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                let _ = socket.write_all(second).await;
            }
        });
        address
    }

    #[tokio::test]
    async fn answers_are_framed_by_length_chunks_or_close_and_the_connection_reused_as_allowed() {
        let address = server(vec![
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            b"HTTP/1.1 503 Busy\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nx-trailer: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n10\r\ndata: one\n\ndata:\r\n9\r\n [DONE]\n\n\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end",
        ])
        .await;
        let mut wire = Wire::connect(&address).await.expect("connect");
        let request = b"GET / HTTP/1.1\r\n\r\n";
        let now = Instant::now();
        let (first, reusable) = wire.exchange(request, now, false).await.expect("answer");
        assert_eq!((first, reusable), (Outcome::Response(200), true));
        let (second, reusable) = wire.exchange(request, now, false).await.expect("answer");
        assert_eq!((second, reusable), (Outcome::Response(503), true));
        let (third, reusable) = wire.exchange(request, now, false).await.expect("answer");
        match third {
            Outcome::Stream { status, stats, cut } => {
                assert_eq!(
                    (status, cut, stats.tokens, stats.end_marker),
                    (200, false, 1, true)
                );
            }
            other => panic!("not a stream: {other:?}"),
        }
        assert!(reusable);
        let (fourth, reusable) = wire.exchange(request, now, false).await.expect("answer");
        assert_eq!((fourth, reusable), (Outcome::Response(200), false));
        // The server has closed: the next exchange meets a closed connection.
        assert!(matches!(
            wire.exchange(request, now, false).await,
            Err(WireError::Closed)
        ));
    }

    #[tokio::test]
    async fn a_body_cut_short_is_a_failed_request() {
        let address = server(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort"]).await;
        let mut wire = Wire::connect(&address).await.expect("connect");
        let (outcome, reusable) = wire
            .exchange(b"GET / HTTP/1.1\r\n\r\n", Instant::now(), false)
            .await
            .expect("an answer started");
        assert_eq!(
            (outcome, reusable),
            (Outcome::Failed(ErrorKind::Other), false)
        );
    }
}
