//! A small Kubernetes API server for tests: real HTTP and JSON on
//! 127.0.0.1, objects stored by their API path and validated against the
//! vendored CRD schemas when added, `Status` bodies for 404 and injected
//! errors, and a log of every request. It answers GET of one object; the
//! kubeconfig it writes points a real client at it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::fake_http::FakeHttp;

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    /// Answer every request with this status code.
    fail: Option<u16>,
    /// Answer 403 to paths containing any of these.
    denied: Vec<String>,
    requests: Vec<String>,
}

/// A running fake API server.
pub struct FakeKube {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
    _http: FakeHttp,
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
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let http = FakeHttp::start(move |method, target| {
            let path = target.split('?').next().unwrap_or("").to_owned();
            let mut st = shared.lock().unwrap();
            st.requests.push(format!("{method} {path}"));
            let fail = st.fail.or_else(|| {
                st.denied
                    .iter()
                    .any(|d| path.contains(d.as_str()))
                    .then_some(403)
            });
            match (fail, method) {
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
        });
        FakeKube {
            url: http.url.clone(),
            state,
            _http: http,
        }
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

    /// Answers 403 to every path that contains `fragment` (a resource plural, say).
    pub fn deny(&self, fragment: &str) {
        self.state.lock().unwrap().denied.push(fragment.to_owned());
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
