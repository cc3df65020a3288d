//! A tiny HTTP/1.1 server on 127.0.0.1 for tests: each request line goes to
//! a handler that returns a status and a JSON body. Fakes of the APIs
//! cnpg-ops talks to (Kubernetes, the GCS JSON API) are built on it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use serde_json::Value;

type Handler = dyn Fn(&str, &str) -> (u16, Value) + Send + Sync;

/// A running server; it stops accepting when the test process ends.
pub struct FakeHttp {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl FakeHttp {
    /// Starts serving `handler(method, target)` on a free loopback port.
    pub fn start(handler: impl Fn(&str, &str) -> (u16, Value) + Send + Sync + 'static) -> FakeHttp {
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

/// Reads requests off one connection (keep-alive) and answers each.
fn serve(stream: TcpStream, handler: &Handler) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (code, value) = handler(&method, &target);
        let body = serde_json::to_vec(&value).unwrap();
        let head = format!(
            "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if stream.write_all(head.as_bytes()).is_err() || stream.write_all(&body).is_err() {
            return;
        }
    }
}
