//! A small Kubernetes API server for tests: real HTTP and JSON on
//! 127.0.0.1, objects stored by their API path and validated against the
//! vendored CRD schemas when added, `Status` bodies for 404 and injected
//! errors, and a log of every request. It answers GET of one object; the
//! kubeconfig it writes points a real client at it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    /// Answer every request with this status code.
    fail: Option<u16>,
    requests: Vec<String>,
}

/// A running fake API server.
pub struct FakeKube {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

fn plural(kind: &str) -> String {
    format!("{}s", kind.to_lowercase())
}

/// The API path of a namespaced object.
pub fn path_of(obj: &Value) -> String {
    let api_version = obj["apiVersion"].as_str().unwrap();
    let kind = obj["kind"].as_str().unwrap();
    let ns = obj["metadata"]["namespace"].as_str().unwrap();
    let name = obj["metadata"]["name"].as_str().unwrap();
    let prefix = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    format!("{prefix}/namespaces/{ns}/{}/{name}", plural(kind))
}

fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

impl FakeKube {
    /// Starts the server on a free loopback port.
    pub fn start() -> FakeKube {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        FakeKube { url, state }
    }

    /// Stores an object; it must satisfy its CRD schema, with a resourceVersion
    /// and uid filled in as the API server does.
    pub fn add(&self, mut obj: Value) {
        let errors = cnpg_ops::gitops::schema::validate(&obj).expect("a kind with a CRD");
        assert!(errors.is_empty(), "invalid object: {errors:?}\n{obj:#}");
        let mut st = self.state.lock().unwrap();
        let n = st.objects.len() + 1;
        let meta = obj["metadata"].as_object_mut().unwrap();
        meta.insert("resourceVersion".into(), json!(n.to_string()));
        meta.insert(
            "uid".into(),
            json!(format!("00000000-0000-0000-0000-{n:012}")),
        );
        st.objects.insert(path_of(&obj), obj);
    }

    /// Answers every request with `code` from now on (`None` to stop).
    pub fn fail_with(&self, code: Option<u16>) {
        self.state.lock().unwrap().fail = code;
    }

    /// `METHOD PATH` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Writes a kubeconfig with `context` pointing here; returns its path.
    pub fn kubeconfig(&self, dir: &Path, context: &str) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
                 users:\n- name: fake\n  user:\n    token: test-token\n\
                 contexts:\n- name: {context}\n  context:\n    cluster: fake\n    user: fake\n\
                 current-context: {context}\n",
                self.url
            ),
        )
        .unwrap();
        path
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
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
        let path = target.split('?').next().unwrap_or("").to_owned();
        let (code, value) = {
            let mut st = state.lock().unwrap();
            st.requests.push(format!("{method} {path}"));
            match (st.fail, method.as_str()) {
                (Some(code), _) => (code, status_body(code, "Forbidden", "injected failure")),
                (None, "GET") => {
                    if let Some(obj) = st.objects.get(&path) {
                        (200, obj.clone())
                    } else {
                        let name = path.rsplit('/').next().unwrap_or("");
                        let message = format!("\"{name}\" not found");
                        (404, status_body(404, "NotFound", &message))
                    }
                }
                _ => (405, status_body(405, "MethodNotAllowed", "only GET")),
            }
        };
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
