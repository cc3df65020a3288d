//! A tiny HTTP/1.1 server on 127.0.0.1 for tests. Fakes of the APIs cnpg-ops
//! talks to (Kubernetes, the GCS JSON API) are built on it.
//!
//! Two kinds of handler:
//!
//! - [`FakeHttp::start`]: `handler(method, target)` returns a status and a
//!   JSON body, for fakes that only answer GETs;
//! - [`FakeHttp::start_with`]: `handler(&Request)` sees the headers and the
//!   body and returns a [`Response`], either one JSON document or a stream
//!   written with `Transfer-Encoding: chunked` as its chunks come (what the
//!   Kubernetes API server does for watches), or an upgrade: the raw
//!   connection handed to a function that answers and speaks the new
//!   protocol itself (websockets, for `pods/exec`).
//!
//! Connections are kept alive; each one is served by its own thread.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;

use serde_json::Value;

/// One request, as it came off the wire.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`...
    pub method: String,
    /// Path and query, as sent (percent-encoded).
    pub target: String,
    /// Header names lowercased, values trimmed, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes; chunked request bodies are not read).
    pub body: Vec<u8>,
}

impl Request {
    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The raw query string ("" when there is none).
    pub fn query_string(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// The decoded value of query parameter `key`, if present.
    pub fn query(&self, key: &str) -> Option<String> {
        self.query_string()
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(k, _)| decode(k) == key)
            .map(|(_, v)| decode(v))
    }

    /// The decoded values of every query parameter `key`, in order.
    pub fn query_all(&self, key: &str) -> Vec<String> {
        self.query_string()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .filter(|(k, _)| decode(k) == key)
            .map(|(_, v)| decode(v))
            .collect()
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The media type of the body, without parameters (`application/json`).
    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
            .map(|v| v.split(';').next().unwrap_or("").trim())
    }
}

/// Decodes `application/x-www-form-urlencoded` text (`%2F`, `+`).
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                if let Ok(b) = u8::from_str_radix(hex, 16) {
                    out.push(b);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One piece of a streamed body.
pub enum Chunk {
    /// A JSON document, written on one line.
    Line(Value),
    /// Nothing to write yet: the server checks that the client is still there
    /// and asks again.
    Idle,
    /// Cut the connection without ending the body, the way a dropped
    /// connection looks to the client.
    Abort,
}

/// What produces a streamed body: called until it returns `None` (the body
/// then ends cleanly) or the client goes away.
pub type ChunkSource = Box<dyn FnMut() -> Option<Chunk> + Send>;

/// An answer.
pub enum Response {
    /// A status and one JSON document.
    Json(u16, Value),
    /// A status and a body written chunk by chunk as the source yields.
    Stream(u16, ChunkSource),
    /// A protocol switch: the function gets the raw connection, writes the
    /// `101 Switching Protocols` answer itself and owns the connection from
    /// then on; no more requests are read from it.
    Upgrade(Upgrade),
}

/// What takes over an upgraded connection.
pub type Upgrade = Box<dyn FnOnce(TcpStream) + Send>;

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A running server; it stops accepting when the test process ends.
pub struct FakeHttp {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl FakeHttp {
    /// Starts serving `handler(method, target)` on a free loopback port.
    pub fn start(handler: impl Fn(&str, &str) -> (u16, Value) + Send + Sync + 'static) -> FakeHttp {
        FakeHttp::start_with(move |request: &Request| {
            let (code, body) = handler(&request.method, &request.target);
            Response::Json(code, body)
        })
    }

    /// Starts serving `handler(&request)` on a free loopback port.
    pub fn start_with(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let handler: Arc<Handler> = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let handler = handler.clone();
                std::thread::spawn(move || serve(stream, &*handler));
            }
        });
        FakeHttp { url }
    }
}

/// Reads one request off the connection; `None` when the client is gone.
fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0usize);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

/// Whether the peer has closed its side (a read would return end of file).
fn client_gone(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut byte = [0u8; 1];
    let gone = match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).is_err() || gone
}

/// Reads requests off one connection (keep-alive) and answers each.
fn serve(stream: TcpStream, handler: &Handler) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    while let Some(request) = read_request(&mut reader) {
        match handler(&request) {
            Response::Json(code, value) => {
                let body = serde_json::to_vec(&value).unwrap();
                let head = format!(
                    "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                if stream.write_all(head.as_bytes()).is_err() || stream.write_all(&body).is_err() {
                    return;
                }
            }
            Response::Upgrade(take_over) => {
                // The client waits for the answer before it speaks the new
                // protocol, so nothing past the request is buffered.
                debug_assert!(reader.buffer().is_empty());
                drop(reader);
                take_over(stream);
                return;
            }
            Response::Stream(code, mut next) => {
                let head = format!(
                    "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                );
                if stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                loop {
                    match next() {
                        None => break,
                        Some(Chunk::Idle) => {
                            if client_gone(&stream) {
                                return;
                            }
                        }
                        Some(Chunk::Abort) => {
                            let _ = stream.flush();
                            let _ = stream.shutdown(Shutdown::Both);
                            return;
                        }
                        Some(Chunk::Line(value)) => {
                            let mut line = serde_json::to_vec(&value).unwrap();
                            line.push(b'\n');
                            let size = format!("{:x}\r\n", line.len());
                            if stream.write_all(size.as_bytes()).is_err()
                                || stream.write_all(&line).is_err()
                                || stream.write_all(b"\r\n").is_err()
                                || stream.flush().is_err()
                            {
                                return;
                            }
                        }
                    }
                }
                if stream.write_all(b"0\r\n\r\n").is_err() || stream.flush().is_err() {
                    return;
                }
            }
        }
    }
}
