//! A small Kubernetes API server for tests, with the CloudNativePG operator
//! and Flux played deterministically behind it.
//!
//! The API side speaks real HTTP and JSON on 127.0.0.1, the way kube-rs (and
//! kubectl) expect it:
//!
//! - objects are stored by their API path; every write bumps one global
//!   `resourceVersion` and sets it on the object; `uid`, `creationTimestamp`
//!   and `generation` (bumped when anything outside metadata and status
//!   changes) are filled in by the server;
//! - GET one, LIST (namespaced or across namespaces, `labelSelector`,
//!   `fieldSelector` on `metadata.name`/`metadata.namespace`), POST (409
//!   `AlreadyExists`), PUT (409 `Conflict` on a stale `resourceVersion`),
//!   PATCH as JSON merge patch or server-side apply (creates when absent,
//!   records the field manager in `metadata.managedFields`), DELETE (404 when
//!   absent; objects with finalizers get a `deletionTimestamp` and go once
//!   their finalizers are gone), the `/status` subresource, `dryRun=All`;
//! - objects are validated against the vendored CRD schemas and the
//!   CloudNativePG webhook rules: 422 `Invalid` naming the field;
//! - watches stream newline-delimited events after a `resourceVersion`,
//!   honour `timeoutSeconds` and end cleanly;
//! - errors are `Status` bodies with `code`, `reason` and `message`;
//! - `pods/exec` (GET or POST) upgrades to a websocket speaking the
//!   `v5.channel.k8s.io` stream protocol (or `v4`, without stream close
//!   signals): stdin is read until the client closes it, the command is run
//!   by the test's [`FakeKube::on_exec`] handler, then stdout, stderr and
//!   the final `Status` (exit code in a `NonZeroExitCode` cause) are sent.
//!   A missing pod is a plain 404; a container the pod does not have is a
//!   `BadRequest` Status over the websocket. Instance pods have a `postgres`
//!   container, and a `plugin-barman-cloud` sidecar when their Cluster uses
//!   the Barman Cloud plugin.
//!
//! A background ticker (every [`Options::tick`]) plays the controllers:
//! CloudNativePG for Clusters and Backups, the garbage collector for owned
//! objects and finalizers, and Flux's kustomize-controller for
//! Kustomizations. Every simulated step counts ticks, never wall-clock time,
//! and timestamps that end up in a catalog (backup IDs, WAL names) come from
//! [`Options::clock`] and the order in which backups were taken, so a run is
//! deterministic given the configuration.
//!
//! Faults can be injected per method and path fragment, watches dropped, a
//! Cluster kept from becoming healthy and a PVC kept forever. Every request
//! is logged.
//!
//! Hooks (`on_backup_completed`, `on_cluster_created`, `on_reconcile`,
//! `on_exec`) run without the server's lock, so they may call back into the
//! fake; a hook that panics is recorded in [`FakeKube::hook_panics`] (an
//! `on_exec` handler that panics closes the websocket without a status). A
//! hook that captures a clone of its `FakeKube` keeps the server (and its
//! ticker) alive until the test process ends; `on_reconcile` gets the server
//! as an argument for that reason.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Write;
use std::net::TcpStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use cnpg_ops::gitops::{schema, webhook};
use serde_json::{Map, Value, json};

use super::fake_http::{Chunk, FakeHttp, Request, Response};
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

// ---------------------------------------------------------------- resources

/// One kind the fake serves.
#[derive(Debug)]
pub struct Resource {
    /// `v1`, `postgresql.cnpg.io/v1`...
    pub api_version: &'static str,
    /// The path segment: `clusters`, `persistentvolumeclaims`...
    pub plural: &'static str,
    /// `Cluster`, `PersistentVolumeClaim`...
    pub kind: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Whether `status` is a subresource: writes to the object leave it
    /// alone, writes to `/status` change nothing else.
    pub status: bool,
}

const fn resource(
    api_version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    status: bool,
) -> Resource {
    Resource {
        api_version,
        plural,
        kind,
        namespaced,
        status,
    }
}

/// The kinds served; any other path is a 404, as for a CRD that is not installed.
pub const RESOURCES: &[Resource] = &[
    resource("v1", "namespaces", "Namespace", false, true),
    resource("v1", "pods", "Pod", true, true),
    resource(
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
        true,
    ),
    resource("v1", "secrets", "Secret", true, false),
    resource("v1", "configmaps", "ConfigMap", true, false),
    resource("v1", "serviceaccounts", "ServiceAccount", true, false),
    resource("v1", "services", "Service", true, true),
    resource("postgresql.cnpg.io/v1", "clusters", "Cluster", true, true),
    resource("postgresql.cnpg.io/v1", "backups", "Backup", true, true),
    resource(
        "postgresql.cnpg.io/v1",
        "scheduledbackups",
        "ScheduledBackup",
        true,
        true,
    ),
    resource("postgresql.cnpg.io/v1", "databases", "Database", true, true),
    resource(
        "barmancloud.cnpg.io/v1",
        "objectstores",
        "ObjectStore",
        true,
        true,
    ),
    resource(
        "kustomize.toolkit.fluxcd.io/v1",
        "kustomizations",
        "Kustomization",
        true,
        true,
    ),
    resource(
        "source.toolkit.fluxcd.io/v1",
        "gitrepositories",
        "GitRepository",
        true,
        true,
    ),
];

fn resource_for_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.api_version == api_version && r.kind == kind)
}

fn api_prefix(api_version: &str) -> String {
    if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    }
}

/// The API path of an object (namespaced or not).
pub fn path_of(obj: &Value) -> String {
    let api_version = obj["apiVersion"].as_str().unwrap();
    let kind = obj["kind"].as_str().unwrap();
    let name = obj["metadata"]["name"].as_str().unwrap();
    let plural = resource_for_kind(api_version, kind).map_or_else(
        || format!("{}s", kind.to_lowercase()),
        |r| r.plural.to_owned(),
    );
    match obj["metadata"]["namespace"].as_str() {
        Some(ns) => format!(
            "{}/namespaces/{ns}/{plural}/{name}",
            api_prefix(api_version)
        ),
        None => format!("{}/{plural}/{name}", api_prefix(api_version)),
    }
}

/// The path of a request, split up.
struct Target {
    res: &'static Resource,
    namespace: Option<String>,
    name: Option<String>,
    /// The `/status` subresource.
    status: bool,
}

impl Target {
    fn collection(&self) -> String {
        let prefix = api_prefix(self.res.api_version);
        match &self.namespace {
            Some(ns) => format!("{prefix}/namespaces/{ns}/{}", self.res.plural),
            None => format!("{prefix}/{}", self.res.plural),
        }
    }

    fn object(&self, name: &str) -> String {
        format!("{}/{name}", self.collection())
    }

    /// `clusters.postgresql.cnpg.io`, `pods`: how the API server names a resource in messages.
    fn qualified(&self) -> String {
        match self.res.api_version.split_once('/') {
            Some((group, _)) => format!("{}.{group}", self.res.plural),
            None => self.res.plural.to_owned(),
        }
    }
}

fn parse_target(path: &str) -> Result<Target, Failure> {
    let not_found = || {
        failure(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (api_version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ((*version).to_owned(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return Err(not_found()),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, rest @ ..] => (Some((*ns).to_owned()), {
            let mut v = vec![*plural];
            v.extend_from_slice(rest);
            v
        }),
        _ => (None, rest.to_vec()),
    };
    let (plural, name, sub) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some((*name).to_owned()), None),
        [plural, name, sub] => (*plural, Some((*name).to_owned()), Some(*sub)),
        _ => return Err(not_found()),
    };
    let res = RESOURCES
        .iter()
        .find(|r| r.api_version == api_version && r.plural == plural)
        .ok_or_else(not_found)?;
    if (namespace.is_some() && !res.namespaced) || !matches!(sub, None | Some("status")) {
        return Err(not_found());
    }
    Ok(Target {
        res,
        namespace,
        name,
        status: sub == Some("status"),
    })
}

// ---------------------------------------------------------------- errors

/// A failed request: the HTTP status and its `Status` body.
type Failure = (u16, Value);

fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn failure(code: u16, reason: &str, message: &str) -> Failure {
    (code, status_body(code, reason, message))
}

/// The reason the API server gives with a status code.
fn reason_of(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

fn not_found(t: &Target, name: &str) -> Failure {
    failure(
        404,
        "NotFound",
        &format!("{} \"{name}\" not found", t.qualified()),
    )
}

/// The 422 of the API server: `Kind.group "name" is invalid: field: message`.
fn invalid(obj: &Value, errors: &[(String, String)], prefix: &str) -> Failure {
    let api_version = obj["apiVersion"].as_str().unwrap_or("");
    let kind = obj["kind"].as_str().unwrap_or("");
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    let qualified = if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    };
    let listed: Vec<String> = errors.iter().map(|(f, m)| format!("{f}: {m}")).collect();
    let joined = if listed.len() == 1 {
        listed[0].clone()
    } else {
        format!("[{}]", listed.join(", "))
    };
    let message = format!("{prefix}{qualified} \"{name}\" is invalid: {joined}");
    let causes: Vec<Value> = errors
        .iter()
        .map(|(f, m)| json!({"reason": "FieldValueInvalid", "message": m, "field": f}))
        .collect();
    let mut body = status_body(422, "Invalid", &message);
    body["details"] = json!({"name": name, "group": group, "kind": kind, "causes": causes});
    (422, body)
}

/// The CRD schema, then (for CloudNativePG kinds) the validating webhook.
/// Kinds without a vendored CRD (core v1) are admitted as they are.
fn admit(obj: &Value) -> Result<(), Failure> {
    if let Ok(errors) = schema::validate(obj)
        && !errors.is_empty()
    {
        let errors: Vec<(String, String)> =
            errors.into_iter().map(|e| (e.path, e.message)).collect();
        return Err(invalid(obj, &errors, ""));
    }
    let hook = match (obj["apiVersion"].as_str(), obj["kind"].as_str()) {
        (Some("postgresql.cnpg.io/v1"), Some("Cluster")) => "vcluster.cnpg.io",
        (Some("postgresql.cnpg.io/v1"), Some("Backup")) => "vbackup.cnpg.io",
        (Some("postgresql.cnpg.io/v1"), Some("ScheduledBackup")) => "vscheduledbackup.cnpg.io",
        (Some("postgresql.cnpg.io/v1"), Some("Database")) => "vdatabase.cnpg.io",
        // The Barman Cloud plugin has no webhook: its CEL rules are in the schema.
        _ => return Ok(()),
    };
    let errors: Vec<(String, String)> = webhook::validate(obj)
        .into_iter()
        .filter(|v| v.severity == webhook::Severity::Error)
        .map(|v| (v.path, v.message))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(invalid(
            obj,
            &errors,
            &format!("admission webhook \"{hook}\" denied the request: "),
        ))
    }
}

// ---------------------------------------------------------------- JSON helpers

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let map = target.as_object_mut().unwrap();
    for (k, v) in patch {
        if v.is_null() {
            map.remove(k);
        } else {
            merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// Removes from `target` the fields `previous` had and `applied` no longer
/// has: what server-side apply does to the fields a manager stops applying.
fn drop_unapplied(target: &mut Value, previous: &Value, applied: &Value) {
    let (Some(target), Some(previous)) = (target.as_object_mut(), previous.as_object()) else {
        return;
    };
    for (k, old) in previous {
        match applied.get(k) {
            None => {
                target.remove(k);
            }
            Some(new) => {
                if let Some(t) = target.get_mut(k) {
                    drop_unapplied(t, old, new);
                }
            }
        }
    }
}

/// The `fieldsV1` set of a document: `{"f:spec": {"f:instances": {}}}`.
fn fields_of(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| *k != "apiVersion" && *k != "kind")
                .map(|(k, v)| (format!("f:{k}"), fields_of(v)))
                .collect(),
        ),
        _ => json!({}),
    }
}

/// Everything but metadata and status: a change there bumps `generation`.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(map) = v.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    v
}

fn meta(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    obj["metadata"].as_object_mut().unwrap()
}

fn str_of<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A `metav1.Condition`.
fn condition(kind: &str, status: bool, reason: &str, message: &str) -> Value {
    json!({"type": kind, "status": if status { "True" } else { "False" }, "reason": reason,
           "message": message, "lastTransitionTime": now()})
}

/// Sets a condition in `obj.status.conditions`, keeping its
/// `lastTransitionTime` when its status does not change.
fn set_condition(obj: &mut Value, mut cond: Value) {
    if !obj["status"].is_object() {
        obj["status"] = json!({});
    }
    if !obj["status"]["conditions"].is_array() {
        obj["status"]["conditions"] = json!([]);
    }
    let list = obj["status"]["conditions"].as_array_mut().unwrap();
    if let Some(old) = list.iter_mut().find(|c| c["type"] == cond["type"]) {
        if old["status"] == cond["status"] {
            cond["lastTransitionTime"] = old["lastTransitionTime"].clone();
        }
        *old = cond;
    } else {
        list.push(cond);
    }
}

/// A label selector: `k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated.
fn labels_match(obj: &Value, selector: &str) -> bool {
    let labels = &obj["metadata"]["labels"];
    selector
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                labels[k.trim()].as_str() != Some(v.trim())
            } else if let Some((k, v)) = term.split_once('=') {
                let v = v.trim_start_matches('=');
                labels[k.trim()].as_str() == Some(v.trim())
            } else if let Some(k) = term.strip_prefix('!') {
                labels.get(k).is_none()
            } else {
                labels.get(term).is_some()
            }
        })
}

/// A field selector on `metadata.name` and `metadata.namespace`.
fn fields_match(obj: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (field, negate, value) = if let Some((f, v)) = term.split_once("!=") {
            (f, true, v)
        } else {
            let (f, v) = term.split_once('=').unwrap_or((term, ""));
            (f, false, v.trim_start_matches('='))
        };
        let actual = match field {
            "metadata.name" => str_of(obj, "/metadata/name"),
            "metadata.namespace" => str_of(obj, "/metadata/namespace"),
            _ => return true,
        };
        (actual == value) != negate
    })
}

// ---------------------------------------------------------------- configuration

/// How the simulated controllers behave. All counts are ticks.
#[derive(Debug, Clone)]
pub struct Options {
    /// Period of the background ticker.
    pub tick: Duration,
    /// Ticks a Backup spends `running` before it completes (or fails).
    pub backup_ticks: u32,
    /// Ticks a new Cluster spends in `Setting up primary`.
    pub cluster_ready_ticks: u32,
    /// Ticks before the garbage collector deletes objects whose owner is
    /// gone, and before controllers drop the finalizers of deleted objects.
    pub teardown_ticks: u32,
    /// Ticks Flux takes to handle a reconcile request.
    pub reconcile_ticks: u32,
    /// When the first simulated backup starts; backup `n` (in the order
    /// backups start) starts `n - 1` hours later and lasts five minutes.
    pub clock: DateTime<Utc>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            tick: Duration::from_millis(20),
            backup_ticks: 5,
            cluster_ready_ticks: 5,
            teardown_ticks: 5,
            reconcile_ticks: 1,
            clock: "2026-11-24T12:00:00Z".parse().unwrap(),
        }
    }
}

/// One request, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// `GET`, `PATCH`...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string ("" when none).
    pub query: String,
    /// The body's media type, without parameters.
    pub content_type: Option<String>,
}

/// An injected failure.
struct Fault {
    /// A method, or `*` for any.
    method: String,
    fragment: String,
    code: u16,
    /// How many more requests fail; `None` for all.
    remaining: Option<usize>,
}

type ObjectHook = Arc<dyn Fn(&Value) + Send + Sync>;
type ReconcileHook = Arc<dyn Fn(&FakeKube, &Value) + Send + Sync>;
type ExecHook = Arc<dyn Fn(&ExecCall) -> ExecReply + Send + Sync>;

/// A command run through `pods/exec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCall {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The container it ran in.
    pub container: String,
    /// The argv, in order.
    pub command: Vec<String>,
    /// Everything the client sent on stdin (empty without stdin).
    pub stdin: Vec<u8>,
}

/// What a command run through `pods/exec` printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecReply {
    /// Sent on the stdout channel (when the client asked for stdout).
    pub stdout: String,
    /// Sent on the stderr channel (when the client asked for stderr).
    pub stderr: String,
    /// 0, or reported in a `NonZeroExitCode` Status.
    pub exit_code: i32,
}

/// A watch event, kept for watches that start from an older version.
struct Event {
    rv: u64,
    kind: &'static str,
    object: Value,
}

/// Work for after the lock is released: hooks, which may call back into
/// the fake.
enum Deferred {
    ClusterCreated(Value),
    /// A backup about to be published as completed: the hook runs first, so
    /// that whoever sees `completed` also sees what the hook wrote.
    BackupDone {
        path: String,
        backup: Value,
    },
    Reconcile(String),
}

/// The Kustomization whose reconcile hook is running, and what it applied.
struct Reconciling {
    thread: ThreadId,
    namespace: String,
    name: String,
    applied: Vec<String>,
}

#[derive(Default)]
struct State {
    url: String,
    objects: BTreeMap<String, Value>,
    events: Vec<Event>,
    rv: u64,
    uids: u64,
    /// Last body applied by each (path, field manager), for server-side apply.
    applied: HashMap<(String, String), Value>,
    requests: Vec<LoggedRequest>,
    /// Answer every request with this status code.
    fail: Option<u16>,
    /// Answer 403 to paths containing any of these.
    denied: Vec<String>,
    faults: Vec<Fault>,
    /// Watches on paths with this fragment are cut after their first event
    /// (`None`: every one of them).
    watch_drops: Vec<(String, Option<usize>)>,

    // Simulation.
    /// Per-step tick counters, keyed `step:path`.
    counters: HashMap<String, u32>,
    /// Clusters being set up by the simulated operator.
    setting_up: HashSet<String>,
    never_healthy: HashSet<String>,
    archiving_failing: HashMap<String, String>,
    pvcs_kept: HashSet<String>,
    /// The next N backups fail with this error.
    failing_backups: VecDeque<String>,
    /// Backups of these clusters (`namespace/name`) fail with this error.
    failing_clusters: HashMap<String, String>,
    /// Backups that will fail, by path, with their error.
    doomed: HashMap<String, String>,
    backups_started: u32,
    deferred: Vec<Deferred>,
    /// Reconciles whose hook is running, one per thread.
    reconciling: Vec<Reconciling>,
    /// Backups and Kustomizations whose hook is running: the ticker leaves
    /// them alone until the hook is done.
    in_flight: HashSet<String>,
    hook_panics: Vec<String>,
    on_backup_completed: Option<ObjectHook>,
    on_cluster_created: Option<ObjectHook>,
    on_reconcile: Option<ReconcileHook>,
    on_exec: Option<ExecHook>,
    /// Commands run through `pods/exec`, in order.
    exec_calls: Vec<ExecCall>,
}

struct Core {
    state: Mutex<State>,
    options: Options,
}

impl Core {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running fake API server. Clones share the same server.
#[derive(Clone)]
pub struct FakeKube {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    core: Arc<Core>,
}

// ---------------------------------------------------------------- storage

/// How a write came in, for `managedFields`.
struct Writer<'a> {
    manager: &'a str,
    operation: &'a str,
    subresource: Option<&'a str>,
}

impl State {
    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Stores `obj` at `path` with a new resourceVersion and records the event.
    fn put(&mut self, path: &str, mut obj: Value, kind: &'static str) -> Value {
        string_data_to_data(&mut obj);
        let rv = self.bump();
        meta(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        self.events.push(Event {
            rv,
            kind,
            object: obj.clone(),
        });
        self.objects.insert(path.to_owned(), obj.clone());
        obj
    }

    /// Removes the object for good.
    fn remove(&mut self, path: &str) -> Option<Value> {
        let mut obj = self.objects.remove(path)?;
        let rv = self.bump();
        meta(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        self.events.push(Event {
            rv,
            kind: "DELETED",
            object: obj.clone(),
        });
        self.applied.retain(|(p, _), _| p != path);
        self.counters
            .retain(|k, _| !k.ends_with(&format!(":{path}")));
        self.setting_up.remove(path);
        Some(obj)
    }

    fn record_manager(obj: &mut Value, writer: &Writer, body: &Value) {
        let api_version = obj["apiVersion"].clone();
        let mut entry = json!({"manager": writer.manager, "operation": writer.operation,
            "apiVersion": api_version, "time": now(), "fieldsType": "FieldsV1",
            "fieldsV1": fields_of(body)});
        if let Some(sub) = writer.subresource {
            entry["subresource"] = json!(sub);
        }
        let m = meta(obj);
        let list = m.entry("managedFields").or_insert_with(|| json!([]));
        if !list.is_array() {
            *list = json!([]);
        }
        let list = list.as_array_mut().unwrap();
        list.retain(|e| {
            e["manager"] != entry["manager"]
                || e["operation"] != entry["operation"]
                || e.get("subresource") != entry.get("subresource")
        });
        list.push(entry);
    }

    /// Creates an object through the API: server fields filled in, status
    /// dropped when it is a subresource, validated.
    fn create(
        &mut self,
        t: &Target,
        mut obj: Value,
        writer: &Writer,
        dry_run: bool,
    ) -> Result<Value, Failure> {
        let body = obj.clone();
        if let Some(ns) = &t.namespace {
            meta(&mut obj).insert("namespace".into(), json!(ns));
        }
        let name = match obj["metadata"]["name"].as_str() {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => match obj["metadata"]["generateName"].as_str() {
                Some(prefix) if !prefix.is_empty() => {
                    format!("{prefix}{:05x}", self.uids + 1)
                }
                _ => {
                    return Err(invalid(
                        &obj,
                        &[(
                            "metadata.name".into(),
                            "Required value: name or generateName is required".into(),
                        )],
                        "",
                    ));
                }
            },
        };
        meta(&mut obj).insert("name".into(), json!(name));
        let path = t.object(&name);
        if self.objects.contains_key(&path) {
            return Err(failure(
                409,
                "AlreadyExists",
                &format!("{} \"{name}\" already exists", t.qualified()),
            ));
        }
        if t.res.status
            && let Some(map) = obj.as_object_mut()
        {
            map.remove("status");
        }
        admit(&obj)?;
        self.uids += 1;
        let m = meta(&mut obj);
        m.insert(
            "uid".into(),
            json!(format!("00000000-0000-0000-0000-{:012}", self.uids)),
        );
        m.insert("creationTimestamp".into(), json!(now()));
        m.insert("generation".into(), json!(1));
        for k in ["deletionTimestamp", "resourceVersion", "managedFields"] {
            m.remove(k);
        }
        State::record_manager(&mut obj, writer, &body);
        if dry_run {
            return Ok(obj);
        }
        let obj = self.put(&path, obj, "ADDED");
        self.created(&path, &obj);
        Ok(obj)
    }

    /// What the simulated controllers do when an object appears.
    fn created(&mut self, path: &str, obj: &Value) {
        if obj["apiVersion"] == "postgresql.cnpg.io/v1" && obj["kind"] == "Cluster" {
            if obj["status"].is_null() {
                let mut o = obj.clone();
                o["status"] =
                    json!({"phase": "Setting up primary", "instances": 0, "readyInstances": 0});
                set_condition(
                    &mut o,
                    condition("Ready", false, "ClusterIsNotReady", "Cluster Is Not Ready"),
                );
                self.put(path, o, "MODIFIED");
                self.setting_up.insert(path.to_owned());
            } else {
                // A seeded Cluster that the operator already set up.
                self.create_instances(obj, true, true);
            }
            if self.on_cluster_created.is_some() {
                self.deferred.push(Deferred::ClusterCreated(obj.clone()));
            }
        }
    }

    /// Replaces `path` with `new` (already the whole object), keeping what
    /// the server owns; a no-op write changes nothing.
    fn update(
        &mut self,
        t: &Target,
        path: &str,
        mut new: Value,
        writer: &Writer,
        body: &Value,
        dry_run: bool,
    ) -> Result<Value, Failure> {
        let old = self.objects.get(path).cloned().unwrap();
        if t.status {
            let status = new["status"].clone();
            new = old.clone();
            new["status"] = status;
        } else if t.res.status {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    new.as_object_mut().map(|m| m.remove("status"));
                }
            }
        }
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "generation",
            "managedFields",
            "name",
            "namespace",
        ] {
            match old["metadata"].get(k) {
                Some(v) => meta(&mut new).insert(k.into(), v.clone()),
                None => meta(&mut new).remove(k),
            };
        }
        meta(&mut new).insert(
            "resourceVersion".into(),
            old["metadata"]["resourceVersion"].clone(),
        );
        if spec_part(&new) != spec_part(&old) {
            if old["apiVersion"] == "postgresql.cnpg.io/v1"
                && old["kind"] == "Backup"
                && new["spec"] != old["spec"]
            {
                return Err(invalid(
                    &new,
                    &[(
                        "spec".into(),
                        "Invalid value: \"object\": BackupSpec is immutable once set".into(),
                    )],
                    "",
                ));
            }
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            meta(&mut new).insert("generation".into(), json!(generation));
        }
        admit(&new)?;
        if new == old {
            return Ok(old);
        }
        State::record_manager(&mut new, writer, body);
        if dry_run {
            return Ok(new);
        }
        Ok(self.store_update(path, new))
    }

    /// Stores an updated object; one being deleted goes once it has no finalizers.
    fn store_update(&mut self, path: &str, new: Value) -> Value {
        let finalizers_gone = new["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty);
        if !new["metadata"]["deletionTimestamp"].is_null() && finalizers_gone {
            self.objects.insert(path.to_owned(), new);
            return self.remove(path).unwrap();
        }
        self.put(path, new, "MODIFIED")
    }

    /// DELETE: gone at once, or marked for deletion while finalizers remain.
    fn delete(&mut self, path: &str) -> Option<Value> {
        let obj = self.objects.get(path)?.clone();
        let has_finalizers = obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if !has_finalizers {
            return self.remove(path);
        }
        if obj["metadata"]["deletionTimestamp"].is_null() {
            let mut obj = obj;
            meta(&mut obj).insert("deletionTimestamp".into(), json!(now()));
            meta(&mut obj).insert("deletionGracePeriodSeconds".into(), json!(0));
            return Some(self.put(path, obj, "MODIFIED"));
        }
        Some(obj)
    }

    /// Pods and PVCs `<cluster>-1..instances`, owned by the Cluster, as the
    /// operator creates them.
    fn create_instances(&mut self, cluster: &Value, pvcs: bool, pods: bool) {
        let ns = str_of(cluster, "/metadata/namespace").to_owned();
        let name = str_of(cluster, "/metadata/name").to_owned();
        let instances = cluster["spec"]["instances"].as_u64().unwrap_or(1);
        let size = cluster["spec"]["storage"]["size"]
            .as_str()
            .unwrap_or("1Gi")
            .to_owned();
        let mut containers = vec![json!({"name": "postgres"})];
        if !barman_plugin(cluster).is_null() {
            // The sidecar the Barman Cloud plugin injects into instance pods.
            containers.push(json!({"name": "plugin-barman-cloud"}));
        }
        let owner = json!([{"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
            "name": name, "uid": cluster["metadata"]["uid"], "controller": true,
            "blockOwnerDeletion": true}]);
        for i in 1..=instances {
            let instance = format!("{name}-{i}");
            let role = if i == 1 { "primary" } else { "replica" };
            let mut objects = Vec::new();
            if pvcs {
                objects.push(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": instance, "namespace": ns,
                        "labels": {"cnpg.io/cluster": name, "cnpg.io/instanceName": instance,
                                   "cnpg.io/pvcRole": "PG_DATA"},
                        "finalizers": ["kubernetes.io/pvc-protection"],
                        "ownerReferences": owner},
                    "spec": {"accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": size}}},
                    "status": {"phase": "Bound"}}));
            }
            if pods {
                objects.push(json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": instance, "namespace": ns,
                        "labels": {"cnpg.io/cluster": name, "cnpg.io/instanceName": instance,
                                   "cnpg.io/podRole": "instance", "cnpg.io/instanceRole": role,
                                   "role": role},
                        "ownerReferences": owner},
                    "spec": {"containers": containers.clone()},
                    "status": {"phase": "Running",
                               "conditions": [{"type": "Ready", "status": "True"}]}}));
            }
            for obj in objects {
                let path = path_of(&obj);
                if !self.objects.contains_key(&path) {
                    self.seed(obj);
                }
            }
        }
    }

    /// Stores an object as existing state, with the server's fields filled in.
    fn seed(&mut self, mut obj: Value) -> Value {
        self.uids += 1;
        let uid = format!("00000000-0000-0000-0000-{:012}", self.uids);
        let m = meta(&mut obj);
        m.entry("uid").or_insert(json!(uid));
        m.entry("creationTimestamp").or_insert(json!(now()));
        m.entry("generation").or_insert(json!(1));
        let path = path_of(&obj);
        let obj = self.put(&path, obj, "ADDED");
        self.created(&path, &obj);
        obj
    }

    fn tick(&mut self, o: &Options) {
        self.tick_clusters(o);
        self.tick_backups(o);
        self.tick_garbage(o);
        self.tick_flux(o);
    }

    fn count(&mut self, step: &str, path: &str) -> u32 {
        let c = self.counters.entry(format!("{step}:{path}")).or_insert(0);
        *c += 1;
        *c
    }

    // ------------------------------------------------------------ CloudNativePG: Cluster

    /// A new Cluster: `Setting up primary` while its first instance is
    /// created (PVCs first), then `Cluster in healthy state` with Ready and,
    /// when WAL archiving is configured, ContinuousArchiving.
    fn tick_clusters(&mut self, o: &Options) {
        let mut paths: Vec<String> = self.setting_up.iter().cloned().collect();
        paths.sort();
        for path in paths {
            let Some(cluster) = self.objects.get(&path).cloned() else {
                self.setting_up.remove(&path);
                continue;
            };
            let n = self.count("setup", &path);
            if n == 1 {
                self.create_instances(&cluster, true, false);
            }
            if n < o.cluster_ready_ticks || self.never_healthy.contains(&path) {
                continue;
            }
            self.setting_up.remove(&path);
            self.create_instances(&cluster, true, true);
            let name = str_of(&cluster, "/metadata/name");
            let instances = cluster["spec"]["instances"].as_u64().unwrap_or(1);
            let names: Vec<String> = (1..=instances).map(|i| format!("{name}-{i}")).collect();
            let mut c = cluster.clone();
            c["status"]["phase"] = json!("Cluster in healthy state");
            c["status"]["instances"] = json!(instances);
            c["status"]["readyInstances"] = json!(instances);
            c["status"]["currentPrimary"] = json!(format!("{name}-1"));
            c["status"]["targetPrimary"] = json!(format!("{name}-1"));
            c["status"]["instanceNames"] = json!(names);
            set_condition(
                &mut c,
                condition("Ready", true, "ClusterIsReady", "Cluster is Ready"),
            );
            if archives(&cluster) {
                let cond = match self.archiving_failing.get(&path) {
                    Some(message) => condition(
                        "ContinuousArchiving",
                        false,
                        "ContinuousArchivingFailing",
                        message,
                    ),
                    None => condition(
                        "ContinuousArchiving",
                        true,
                        "ContinuousArchivingSuccess",
                        "Continuous archiving is working",
                    ),
                };
                set_condition(&mut c, cond);
            }
            self.put(&path, c, "MODIFIED");
        }
    }

    // ------------------------------------------------------------ CloudNativePG: Backup

    /// A Backup: `pending` until its Cluster is healthy, `running` for
    /// `backup_ticks`, then `completed` with the fields the operator copies
    /// from the plugin's answer, or `failed` with `status.error`. The
    /// Cluster's LastBackupSucceeded condition follows, as does (for
    /// plugin backups) the ObjectStore's recovery window.
    fn tick_backups(&mut self, o: &Options) {
        let paths: Vec<String> = self
            .objects
            .iter()
            .filter(|(_, v)| v["apiVersion"] == "postgresql.cnpg.io/v1" && v["kind"] == "Backup")
            .filter(|(p, v)| {
                matches!(str_of(v, "/status/phase"), "" | "pending" | "running")
                    && !self.in_flight.contains(*p)
            })
            .map(|(p, _)| p.clone())
            .collect();
        for path in paths {
            let backup = self.objects[&path].clone();
            let ns = str_of(&backup, "/metadata/namespace").to_owned();
            let cluster_name = str_of(&backup, "/spec/cluster/name").to_owned();
            let cluster_path =
                format!("/apis/postgresql.cnpg.io/v1/namespaces/{ns}/clusters/{cluster_name}");
            match str_of(&backup, "/status/phase") {
                "" => {
                    if let Some(error) = self.failing_backups.pop_front().or_else(|| {
                        self.failing_clusters
                            .get(&format!("{ns}/{cluster_name}"))
                            .cloned()
                    }) {
                        self.doomed.insert(path.clone(), error);
                    }
                    let mut b = backup;
                    b["status"] = json!({"phase": "pending"});
                    self.put(&path, b, "MODIFIED");
                }
                "pending" => {
                    let Some(cluster) = self.objects.get(&cluster_path).cloned() else {
                        let error = format!(
                            "while getting cluster {cluster_name}: clusters.postgresql.cnpg.io \"{cluster_name}\" not found"
                        );
                        self.finish_backup(&path, None, Some(error));
                        continue;
                    };
                    if str_of(&cluster, "/status/phase") != "Cluster in healthy state" {
                        continue;
                    }
                    self.backups_started += 1;
                    let seq = self.backups_started;
                    let started = o.clock + chrono::Duration::hours(i64::from(seq) - 1);
                    let mut b = backup;
                    b["status"]["phase"] = json!("running");
                    b["status"]["startedAt"] =
                        json!(started.to_rfc3339_opts(SecondsFormat::Secs, true));
                    b["status"]["method"] = json!(backup_method(&b));
                    b["status"]["reconciliationStartedAt"] = json!(now());
                    b["status"]["instanceID"] = json!({"podName": format!("{cluster_name}-1")});
                    // Remember the sequence number for the IDs of this backup.
                    self.counters.insert(format!("seq:{path}"), seq);
                    self.put(&path, b, "MODIFIED");
                    let mut c = cluster;
                    set_condition(
                        &mut c,
                        condition(
                            "LastBackupSucceeded",
                            false,
                            "BackupStarted",
                            "New Backup starting up",
                        ),
                    );
                    self.put(&cluster_path, c, "MODIFIED");
                }
                _ => {
                    if self.count("backup", &path) < o.backup_ticks {
                        continue;
                    }
                    let cluster = self.objects.get(&cluster_path).cloned();
                    let error = self.doomed.remove(&path);
                    self.finish_backup(&path, cluster.as_ref(), error);
                }
            }
        }
    }

    /// Ends a backup: failures are stored at once; a completed backup goes
    /// through the test's hook first (see [`Deferred::BackupDone`]).
    fn finish_backup(&mut self, path: &str, cluster: Option<&Value>, error: Option<String>) {
        let mut b = self.objects[path].clone();
        b["status"]["reconciliationTerminatedAt"] = json!(now());
        if let Some(error) = error {
            b["status"]["phase"] = json!("failed");
            b["status"]["error"] = json!(error);
            self.put(path, b, "MODIFIED");
            if let Some(cluster) = cluster {
                let mut c = cluster.clone();
                set_condition(
                    &mut c,
                    condition("LastBackupSucceeded", false, "LastBackupFailed", &error),
                );
                c["status"]["lastFailedBackup"] = json!(now());
                self.put(&path_of(&c), c, "MODIFIED");
            }
            return;
        }
        let seq = self
            .counters
            .get(&format!("seq:{path}"))
            .copied()
            .unwrap_or(1);
        let started: DateTime<Utc> = str_of(&b, "/status/startedAt").parse().unwrap();
        let stopped = started + chrono::Duration::minutes(5);
        let id = started.format("%Y%m%dT%H%M%S").to_string();
        let cluster = cluster.cloned().unwrap_or(Value::Null);
        let (destination, server) = self.destination(&cluster, &b);
        let segment = u64::from(seq) * 2;
        let s = &mut b["status"];
        s["phase"] = json!("completed");
        s["backupId"] = json!(id);
        s["backupName"] = json!(format!("backup-{id}"));
        s["stoppedAt"] = json!(stopped.to_rfc3339_opts(SecondsFormat::Secs, true));
        s["beginWal"] = json!(format!(
            "00000001{:08X}{:08X}",
            segment >> 8,
            segment & 0xff
        ));
        s["endWal"] = json!(format!(
            "00000001{:08X}{:08X}",
            (segment + 1) >> 8,
            (segment + 1) & 0xff
        ));
        s["beginLSN"] = json!(format!("0/{:X}000028", segment));
        s["endLSN"] = json!(format!("0/{:X}000100", segment + 1));
        s["online"] = json!(true);
        s["destinationPath"] = json!(destination);
        s["serverName"] = json!(server);
        self.in_flight.insert(path.to_owned());
        self.deferred.push(Deferred::BackupDone {
            path: path.to_owned(),
            backup: b,
        });
    }

    /// Publishes a completed backup (after the hook ran).
    fn publish_backup(&mut self, path: &str, backup: Value) {
        self.in_flight.remove(path);
        if !self.objects.contains_key(path) {
            return;
        }
        let ns = str_of(&backup, "/metadata/namespace").to_owned();
        let cluster_path = format!(
            "/apis/postgresql.cnpg.io/v1/namespaces/{ns}/clusters/{}",
            str_of(&backup, "/spec/cluster/name")
        );
        let stopped = str_of(&backup, "/status/stoppedAt").to_owned();
        let plugin = str_of(&backup, "/status/method") == "plugin";
        let server = str_of(&backup, "/status/serverName").to_owned();
        self.put(path, backup, "MODIFIED");
        let Some(mut c) = self.objects.get(&cluster_path).cloned() else {
            return;
        };
        set_condition(
            &mut c,
            condition(
                "LastBackupSucceeded",
                true,
                "LastBackupSucceeded",
                "Backup was successful",
            ),
        );
        if plugin {
            // The plugin keeps the recovery window on the ObjectStore.
            let store = str_of(&barman_plugin(&c), "/parameters/barmanObjectName").to_owned();
            let store_path =
                format!("/apis/barmancloud.cnpg.io/v1/namespaces/{ns}/objectstores/{store}");
            if let Some(mut s) = self.objects.get(&store_path).cloned() {
                let window = &mut s["status"]["serverRecoveryWindow"][&server];
                if window["firstRecoverabilityPoint"].is_null() {
                    window["firstRecoverabilityPoint"] = json!(stopped);
                }
                window["lastSuccessfulBackupTime"] = json!(stopped);
                self.put(&store_path, s, "MODIFIED");
            }
        } else {
            // The in-tree model's (deprecated) fields on the Cluster.
            if c["status"]["firstRecoverabilityPoint"].is_null() {
                c["status"]["firstRecoverabilityPoint"] = json!(stopped);
            }
            c["status"]["lastSuccessfulBackup"] = json!(stopped);
        }
        self.put(&cluster_path, c, "MODIFIED");
    }

    /// Where a Cluster archives: the ObjectStore its Barman Cloud plugin
    /// names, or its in-tree `barmanObjectStore`; server name defaults to
    /// the Cluster's name.
    fn destination(&self, cluster: &Value, backup: &Value) -> (String, String) {
        let name = str_of(cluster, "/metadata/name").to_owned();
        let ns = str_of(backup, "/metadata/namespace");
        let plugin = barman_plugin(cluster);
        if backup_method(backup) == "plugin" && !plugin.is_null() {
            let store = str_of(&plugin, "/parameters/barmanObjectName");
            let path = format!("/apis/barmancloud.cnpg.io/v1/namespaces/{ns}/objectstores/{store}");
            let destination = self
                .objects
                .get(&path)
                .map_or("", |s| str_of(s, "/spec/configuration/destinationPath"));
            let server = match str_of(&plugin, "/parameters/serverName") {
                "" => name,
                s => s.to_owned(),
            };
            return (destination.to_owned(), server);
        }
        let store = &cluster["spec"]["backup"]["barmanObjectStore"];
        let server = match str_of(store, "/serverName") {
            "" => name,
            s => s.to_owned(),
        };
        (str_of(store, "/destinationPath").to_owned(), server)
    }

    // ------------------------------------------------------------ garbage collection

    /// The garbage collector deletes objects whose owner is gone (a deleted
    /// Cluster's Pods and PVCs), and controllers drop the finalizers of
    /// deleted objects (the PVC protection once no Pod uses the claim),
    /// each after `teardown_ticks`. Kept PVCs keep their finalizer.
    fn tick_garbage(&mut self, o: &Options) {
        let uids: HashSet<String> = self
            .objects
            .values()
            .filter_map(|v| v["metadata"]["uid"].as_str().map(str::to_owned))
            .collect();
        let mut orphans = Vec::new();
        let mut finalized = Vec::new();
        for (path, v) in &self.objects {
            let owners = v["metadata"]["ownerReferences"].as_array();
            if v["metadata"]["deletionTimestamp"].is_null()
                && owners.is_some_and(|o| {
                    !o.is_empty() && o.iter().all(|r| !uids.contains(str_of(r, "/uid")))
                })
            {
                orphans.push(path.clone());
            } else if !v["metadata"]["deletionTimestamp"].is_null()
                && !self.pvcs_kept.contains(path)
            {
                finalized.push(path.clone());
            }
        }
        for path in orphans {
            if self.count("gc", &path) >= o.teardown_ticks {
                self.delete(&path);
            }
        }
        for path in finalized {
            if self.count("finalize", &path) >= o.teardown_ticks {
                let mut v = self.objects[&path].clone();
                meta(&mut v).insert("finalizers".into(), json!([]));
                self.store_update(&path, v);
            }
        }
    }

    // ------------------------------------------------------------ Flux

    /// kustomize-controller: a Kustomization that is not suspended is
    /// reconciled when its spec changed (`observedGeneration` behind) or when
    /// `reconcile.fluxcd.io/requestedAt` differs from
    /// `status.lastHandledReconcileAt`; the test's hook applies the
    /// manifests, then the status records the request and Ready. A
    /// GitRepository only acknowledges the request (the source is fetched).
    fn tick_flux(&mut self, o: &Options) {
        let paths: Vec<String> = self
            .objects
            .iter()
            .filter(|(_, v)| {
                matches!(
                    (v["apiVersion"].as_str(), v["kind"].as_str()),
                    (
                        Some("kustomize.toolkit.fluxcd.io/v1"),
                        Some("Kustomization")
                    ) | (Some("source.toolkit.fluxcd.io/v1"), Some("GitRepository"))
                )
            })
            .filter(|(p, v)| {
                v["spec"]["suspend"] != true && wants_reconcile(v) && !self.in_flight.contains(*p)
            })
            .map(|(p, _)| p.clone())
            .collect();
        for path in paths {
            if self.count("reconcile", &path) < o.reconcile_ticks {
                continue;
            }
            self.counters.remove(&format!("reconcile:{path}"));
            if self.objects[&path]["kind"] == "Kustomization" && self.on_reconcile.is_some() {
                self.in_flight.insert(path.clone());
                self.deferred.push(Deferred::Reconcile(path));
            } else {
                self.mark_reconciled(&path);
            }
        }
    }

    fn mark_reconciled(&mut self, path: &str) {
        self.in_flight.remove(path);
        let Some(mut v) = self.objects.get(path).cloned() else {
            return;
        };
        let requested = v["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"].clone();
        if !requested.is_null() {
            v["status"]["lastHandledReconcileAt"] = requested;
        }
        v["status"]["observedGeneration"] = v["metadata"]["generation"].clone();
        let revision = "main@sha1:0000000000000000000000000000000000000000";
        let message = if v["kind"] == "Kustomization" {
            v["status"]["lastAppliedRevision"] = json!(revision);
            v["status"]["lastAttemptedRevision"] = json!(revision);
            format!("Applied revision: {revision}")
        } else {
            format!("stored artifact for revision '{revision}'")
        };
        let reason = if v["kind"] == "Kustomization" {
            "ReconciliationSucceeded"
        } else {
            "Succeeded"
        };
        set_condition(&mut v, condition("Ready", true, reason, &message));
        self.put(path, v, "MODIFIED");
    }
}

fn wants_reconcile(v: &Value) -> bool {
    let requested = &v["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"];
    (!requested.is_null() && *requested != v["status"]["lastHandledReconcileAt"])
        || v["status"]["observedGeneration"] != v["metadata"]["generation"]
}

/// `spec.method` with the CRD's default.
fn backup_method(backup: &Value) -> &str {
    match str_of(backup, "/spec/method") {
        "" => "barmanObjectStore",
        m => m,
    }
}

/// The Cluster's enabled Barman Cloud plugin entry, or null.
fn barman_plugin(cluster: &Value) -> Value {
    cluster["spec"]["plugins"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "barman-cloud.cloudnative-pg.io" && p["enabled"] != false)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Whether the Cluster archives WAL (a WAL archiver plugin or in-tree).
fn archives(cluster: &Value) -> bool {
    barman_plugin(cluster)["isWALArchiver"] == true
        || !cluster["spec"]["backup"]["barmanObjectStore"].is_null()
}

// ---------------------------------------------------------------- the server

impl FakeKube {
    /// Starts the server with the default [`Options`].
    pub fn start() -> FakeKube {
        FakeKube::start_with(Options::default())
    }

    /// Starts the server and its ticker.
    pub fn start_with(options: Options) -> FakeKube {
        let tick = options.tick;
        let core = Arc::new(Core {
            state: Mutex::new(State::default()),
            options,
        });
        let weak = Arc::downgrade(&core);
        let http = FakeHttp::start_with(move |req| {
            if let Some(shared) = weak.upgrade() {
                handle(&shared, req)
            } else {
                let (status, body) = failure(503, "ServiceUnavailable", "the fake has stopped");
                Response::Json(status, body)
            }
        });
        core.lock().url.clone_from(&http.url);
        let weak = Arc::downgrade(&core);
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(tick);
                let Some(core) = weak.upgrade() else { return };
                let url = core.lock().url.clone();
                let kube = FakeKube { url, core };
                kube.tick();
            }
        });
        FakeKube {
            url: http.url,
            core,
        }
    }

    /// One step of every simulated controller (the ticker calls this).
    pub fn tick(&self) {
        let options = self.core.options.clone();
        self.core.lock().tick(&options);
        self.run_deferred();
    }

    /// Runs the hooks queued under the lock, without it.
    fn run_deferred(&self) {
        loop {
            let work = std::mem::take(&mut self.core.lock().deferred);
            if work.is_empty() {
                return;
            }
            for item in work {
                self.run_one(item);
            }
        }
    }

    fn run_one(&self, item: Deferred) {
        match item {
            Deferred::ClusterCreated(cluster) => {
                let hook = self.core.lock().on_cluster_created.clone();
                if let Some(hook) = hook {
                    self.guarded(|| hook(&cluster));
                }
            }
            Deferred::BackupDone { path, backup } => {
                let hook = self.core.lock().on_backup_completed.clone();
                if let Some(hook) = hook {
                    self.guarded(|| hook(&backup));
                }
                self.core.lock().publish_backup(&path, backup);
            }
            Deferred::Reconcile(path) => {
                let (hook, ks) = {
                    let st = self.core.lock();
                    (st.on_reconcile.clone(), st.objects.get(&path).cloned())
                };
                let (Some(hook), Some(ks)) = (hook, ks) else {
                    self.core.lock().in_flight.remove(&path);
                    return;
                };
                self.core.lock().reconciling.push(Reconciling {
                    thread: std::thread::current().id(),
                    namespace: str_of(&ks, "/metadata/namespace").to_owned(),
                    name: str_of(&ks, "/metadata/name").to_owned(),
                    applied: Vec::new(),
                });
                self.guarded(|| hook(self, &ks));
                let mut st = self.core.lock();
                let me = std::thread::current().id();
                let at = st.reconciling.iter().position(|r| r.thread == me).unwrap();
                let done = st.reconciling.remove(at);
                if ks["spec"]["prune"] == true {
                    // Garbage collection: what this Kustomization applied
                    // before and did not apply now.
                    let stale: Vec<String> = st
                        .objects
                        .iter()
                        .filter(|(p, v)| {
                            v["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"]
                                == done.name.as_str()
                                && v["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/namespace"]
                                    == done.namespace.as_str()
                                && !done.applied.contains(p)
                        })
                        .map(|(p, _)| p.clone())
                        .collect();
                    for p in stale {
                        st.delete(&p);
                    }
                }
                st.mark_reconciled(&path);
            }
        }
    }

    /// Runs a hook; a panic is recorded (see [`FakeKube::hook_panics`]).
    fn guarded(&self, f: impl FnOnce()) {
        if let Err(e) = catch_unwind(AssertUnwindSafe(f)) {
            let message = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            self.core.lock().hook_panics.push(message);
        }
    }

    // ------------------------------------------------------------ seeding and reading

    /// Stores an object as existing state (no admission of a create: status
    /// is kept). It must satisfy its CRD schema; core kinds are taken as
    /// they are. A Cluster with a status is taken as set up: its Pods and
    /// PVCs are added too; one without a status is set up by the simulation.
    ///
    /// # Panics
    ///
    /// When the object does not satisfy its CRD schema.
    pub fn add(&self, obj: Value) {
        if let Ok(errors) = schema::validate(&obj) {
            assert!(errors.is_empty(), "invalid object: {errors:?}\n{obj:#}");
        }
        self.core.lock().seed(obj);
        self.run_deferred();
    }

    /// The object at an API path.
    pub fn get(&self, path: &str) -> Option<Value> {
        self.core.lock().objects.get(path).cloned()
    }

    /// Every object whose path starts with `prefix`, in path order.
    pub fn list(&self, prefix: &str) -> Vec<Value> {
        self.core
            .lock()
            .objects
            .range(prefix.to_owned()..)
            .take_while(|(p, _)| p.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Server-side apply of `obj` (force, field manager `fake-kube`, or
    /// `kustomize-controller` from within [`FakeKube::on_reconcile`], whose
    /// applied objects are labelled with their Kustomization as Flux does).
    /// Returns the stored object, or the `Status` of the refusal.
    pub fn apply(&self, mut obj: Value) -> Result<Value, Value> {
        let path = path_of(&obj);
        let mut manager = "fake-kube";
        {
            let st = self.core.lock();
            let me = std::thread::current().id();
            if let Some(r) = st.reconciling.iter().find(|r| r.thread == me) {
                manager = "kustomize-controller";
                let labels = meta(&mut obj).entry("labels").or_insert_with(|| json!({}));
                labels["kustomize.toolkit.fluxcd.io/name"] = json!(r.name);
                labels["kustomize.toolkit.fluxcd.io/namespace"] = json!(r.namespace);
            }
        }
        let body = serde_json::to_vec(&obj).unwrap();
        let req = Request {
            method: "PATCH".into(),
            target: format!("{path}?fieldManager={manager}&force=true"),
            headers: vec![("content-type".into(), "application/apply-patch+yaml".into())],
            body,
        };
        let result = self.call(&req);
        if result.is_ok() {
            let mut st = self.core.lock();
            let me = std::thread::current().id();
            if let Some(r) = st.reconciling.iter_mut().find(|r| r.thread == me) {
                r.applied.push(path);
            }
        }
        result
    }

    /// DELETE through the API.
    pub fn delete(&self, path: &str) -> Result<Value, Value> {
        self.call(&Request {
            method: "DELETE".into(),
            target: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    /// JSON merge patch through the API (`path` may end in `/status`).
    pub fn merge(&self, path: &str, changes: &Value) -> Result<Value, Value> {
        self.call(&Request {
            method: "PATCH".into(),
            target: format!("{path}?fieldManager=fake-kube"),
            headers: vec![("content-type".into(), "application/merge-patch+json".into())],
            body: serde_json::to_vec(changes).unwrap(),
        })
    }

    /// Serves a request in-process, without logging it or injecting faults.
    fn call(&self, req: &Request) -> Result<Value, Value> {
        let result = serve_api(&self.core, req);
        self.run_deferred();
        match result {
            Ok((_, v)) => Ok(v),
            Err((_, v)) => Err(v),
        }
    }

    /// Polls (every 5 ms) until `done(self)` or `timeout`; whether it got done.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&FakeKube) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if done(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        done(self)
    }

    /// The current (last written) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.core.lock().rv
    }

    // ------------------------------------------------------------ simulation settings

    /// Calls `hook(&backup)` when a Backup completes, before anyone can see
    /// it `completed` (to write the matching objects into a catalog).
    pub fn on_backup_completed(&self, hook: impl Fn(&Value) + Send + Sync + 'static) {
        self.core.lock().on_backup_completed = Some(Arc::new(hook));
    }

    /// Calls `hook(&cluster)` when a Cluster is created, before the create
    /// is answered.
    pub fn on_cluster_created(&self, hook: impl Fn(&Value) + Send + Sync + 'static) {
        self.core.lock().on_cluster_created = Some(Arc::new(hook));
    }

    /// Calls `hook(&kube, &kustomization)` when Flux reconciles a
    /// Kustomization; the hook applies the manifests with
    /// [`FakeKube::apply`]. With `spec.prune: true`, objects applied by an
    /// earlier reconcile of the same Kustomization and not this time are
    /// deleted. The status is updated after the hook returns.
    pub fn on_reconcile(&self, hook: impl Fn(&FakeKube, &Value) + Send + Sync + 'static) {
        self.core.lock().on_reconcile = Some(Arc::new(hook));
    }

    /// Runs `handler(&call)` for every command run through `pods/exec` in a
    /// container the pod has (without one, the command is not found: exit
    /// code 127).
    pub fn on_exec(&self, handler: impl Fn(&ExecCall) -> ExecReply + Send + Sync + 'static) {
        self.core.lock().on_exec = Some(Arc::new(handler));
    }

    /// The next `n` Backups to start fail with `error`.
    pub fn fail_next_backups(&self, n: usize, error: &str) {
        let mut st = self.core.lock();
        st.failing_backups
            .extend(std::iter::repeat_n(error.to_owned(), n));
    }

    /// Every Backup of Cluster `namespace/name` fails with `error`.
    pub fn fail_backups_of(&self, namespace: &str, cluster: &str, error: &str) {
        self.core
            .lock()
            .failing_clusters
            .insert(format!("{namespace}/{cluster}"), error.to_owned());
    }

    /// Cluster `namespace/name` stays in `Setting up primary`.
    pub fn never_healthy(&self, namespace: &str, cluster: &str) {
        self.core.lock().never_healthy.insert(format!(
            "/apis/postgresql.cnpg.io/v1/namespaces/{namespace}/clusters/{cluster}"
        ));
    }

    /// Cluster `namespace/name` reports ContinuousArchiving False with `message`.
    pub fn archiving_failing(&self, namespace: &str, cluster: &str, message: &str) {
        self.core.lock().archiving_failing.insert(
            format!("/apis/postgresql.cnpg.io/v1/namespaces/{namespace}/clusters/{cluster}"),
            message.to_owned(),
        );
    }

    /// PVC `namespace/name` keeps its protection finalizer: deleted, it never goes.
    pub fn pvc_never_goes(&self, namespace: &str, name: &str) {
        self.core.lock().pvcs_kept.insert(format!(
            "/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}"
        ));
    }

    // ------------------------------------------------------------ faults

    /// Answers every request with `code` from now on (`None` to stop).
    pub fn fail_with(&self, code: Option<u16>) {
        self.core.lock().fail = code;
    }

    /// Answers 403 to every path that contains `fragment` (a resource plural, say).
    pub fn deny(&self, fragment: &str) {
        self.core.lock().denied.push(fragment.to_owned());
    }

    /// Answers `code` to the next `times` requests (`None`: all of them)
    /// with `method` (`*` for any) whose path contains `fragment`.
    pub fn fail_requests(&self, method: &str, fragment: &str, code: u16, times: Option<usize>) {
        self.core.lock().faults.push(Fault {
            method: method.to_owned(),
            fragment: fragment.to_owned(),
            code,
            remaining: times,
        });
    }

    /// Cuts the next `times` watches (`None`: all) on paths containing
    /// `fragment` right after their first event, without ending the body.
    pub fn drop_watches(&self, fragment: &str, times: Option<usize>) {
        self.core
            .lock()
            .watch_drops
            .push((fragment.to_owned(), times));
    }

    // ------------------------------------------------------------ log

    /// `METHOD PATH` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.core
            .lock()
            .requests
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// Every request so far.
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.core.lock().requests.clone()
    }

    /// Every command run through `pods/exec` so far (those refused before
    /// running, for a missing pod or container, are not in it).
    pub fn exec_calls(&self) -> Vec<ExecCall> {
        self.core.lock().exec_calls.clone()
    }

    /// Messages of the hooks that panicked.
    pub fn hook_panics(&self) -> Vec<String> {
        self.core.lock().hook_panics.clone()
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

// ---------------------------------------------------------------- requests

/// Logs the request, injects faults, serves it, then runs the hooks it
/// queued (before answering).
fn handle(shared: &Arc<Core>, req: &Request) -> Response {
    let path = req.path().to_owned();
    let injected = {
        let mut st = shared.lock();
        st.requests.push(LoggedRequest {
            method: req.method.clone(),
            path: path.clone(),
            query: req.query_string().to_owned(),
            content_type: req.content_type().map(str::to_owned),
        });
        injected_fault(&mut st, &req.method, &path)
    };
    if let Some(code) = injected {
        let message = if code == 403 {
            format!(
                "{} is forbidden: injected failure",
                path.rsplit('/').next().unwrap_or("")
            )
        } else {
            "injected failure".to_owned()
        };
        let (status, body) = failure(code, reason_of(code), &message);
        return Response::Json(status, body);
    }
    if let Some((namespace, pod)) = exec_target(&path) {
        return exec(shared, req, namespace, pod)
            .unwrap_or_else(|(status, body)| Response::Json(status, body));
    }
    if req.method == "GET" && req.query("watch").is_some_and(|w| w == "true" || w == "1") {
        return match watch(shared, req) {
            Ok(r) => r,
            Err((status, body)) => Response::Json(status, body),
        };
    }
    let result = serve_api(shared, req);
    let url = shared.lock().url.clone();
    FakeKube {
        url,
        core: shared.clone(),
    }
    .run_deferred();
    match result {
        Ok((status, body)) | Err((status, body)) => Response::Json(status, body),
    }
}

fn injected_fault(st: &mut State, method: &str, path: &str) -> Option<u16> {
    if let Some(code) = st.fail {
        return Some(code);
    }
    if st.denied.iter().any(|d| path.contains(d.as_str())) {
        return Some(403);
    }
    let fault = st.faults.iter_mut().find(|f| {
        (f.method == "*" || f.method.eq_ignore_ascii_case(method))
            && path.contains(f.fragment.as_str())
            && f.remaining != Some(0)
    })?;
    if let Some(n) = &mut fault.remaining {
        *n -= 1;
    }
    Some(fault.code)
}

fn parse_body(req: &Request) -> Result<Value, Failure> {
    serde_json::from_slice(&req.body).map_err(|e| {
        failure(
            400,
            "BadRequest",
            &format!("the body of the request was in an unknown format: {e}"),
        )
    })
}

/// The body's apiVersion and kind must be those of the path; its name that
/// of the path when there is one.
fn check_body(t: &Target, obj: &Value) -> Result<(), Failure> {
    if !obj.is_object() {
        return Err(failure(400, "BadRequest", "the body is not an object"));
    }
    if obj["apiVersion"] != t.res.api_version || obj["kind"] != t.res.kind {
        return Err(failure(
            400,
            "BadRequest",
            &format!(
                "the API version in the data ({}) does not match the expected API version ({}), or kind {} is not {}",
                obj["apiVersion"], t.res.api_version, obj["kind"], t.res.kind
            ),
        ));
    }
    if let (Some(want), Some(got)) = (&t.name, obj["metadata"]["name"].as_str())
        && want != got
    {
        return Err(failure(
            400,
            "BadRequest",
            &format!("the name of the object ({got}) does not match the name on the URL ({want})"),
        ));
    }
    if let (Some(want), Some(got)) = (&t.namespace, obj["metadata"]["namespace"].as_str())
        && want != got
    {
        return Err(failure(
            400,
            "BadRequest",
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// Every request but watches.
fn serve_api(core: &Core, req: &Request) -> Result<(u16, Value), Failure> {
    let t = parse_target(req.path())?;
    let dry_run = req.query("dryRun").is_some_and(|d| d == "All");
    let manager = req.query("fieldManager").unwrap_or_else(|| {
        req.header("user-agent")
            .and_then(|ua| ua.split('/').next())
            .unwrap_or("unknown")
            .to_owned()
    });
    let sub = t.status.then_some("status");
    let mut st = core.lock();
    match (req.method.as_str(), t.name.clone()) {
        ("GET", Some(name)) => st
            .objects
            .get(&t.object(&name))
            .map(|o| (200, o.clone()))
            .ok_or_else(|| not_found(&t, &name)),
        ("GET", None) => {
            let labels = req.query("labelSelector").unwrap_or_default();
            let fields = req.query("fieldSelector").unwrap_or_default();
            let items: Vec<Value> = st
                .objects
                .values()
                .filter(|o| selected(o, &t, &labels, &fields))
                .cloned()
                .collect();
            Ok((
                200,
                json!({"apiVersion": t.res.api_version, "kind": format!("{}List", t.res.kind),
                       "metadata": {"resourceVersion": st.rv.to_string()}, "items": items}),
            ))
        }
        ("POST", None) => {
            let obj = parse_body(req)?;
            check_body(&t, &obj)?;
            let writer = Writer {
                manager: &manager,
                operation: "Update",
                subresource: None,
            };
            st.create(&t, obj, &writer, dry_run).map(|o| (201, o))
        }
        ("PUT", Some(name)) => {
            let obj = parse_body(req)?;
            check_body(&t, &obj)?;
            let path = t.object(&name);
            let old = st.objects.get(&path).ok_or_else(|| not_found(&t, &name))?;
            let sent = &obj["metadata"]["resourceVersion"];
            if !sent.is_null() && *sent != old["metadata"]["resourceVersion"] {
                return Err(failure(
                    409,
                    "Conflict",
                    &format!(
                        "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                        t.qualified()
                    ),
                ));
            }
            let writer = Writer {
                manager: &manager,
                operation: "Update",
                subresource: sub,
            };
            st.update(&t, &path, obj.clone(), &writer, &obj, dry_run)
                .map(|o| (200, o))
        }
        ("PATCH", Some(name)) => {
            let path = t.object(&name);
            let body = parse_body(req)?;
            match req.content_type().unwrap_or("") {
                "application/apply-patch+yaml" => {
                    if req.query("fieldManager").is_none() {
                        return Err(failure(
                            422,
                            "Invalid",
                            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                        ));
                    }
                    check_body(&t, &body)?;
                    let writer = Writer {
                        manager: &manager,
                        operation: "Apply",
                        subresource: sub,
                    };
                    let key = (
                        path.clone(),
                        format!("{manager}{}", if t.status { "/status" } else { "" }),
                    );
                    let result = if let Some(old) = st.objects.get(&path).cloned() {
                        let mut new = old;
                        if let Some(previous) = st.applied.get(&key) {
                            drop_unapplied(&mut new, previous, &body);
                        }
                        merge_patch(&mut new, &strip_nulls(&body));
                        st.update(&t, &path, new, &writer, &body, dry_run)
                            .map(|o| (200, o))
                    } else if t.status {
                        Err(not_found(&t, &name))
                    } else {
                        st.create(&t, body.clone(), &writer, dry_run)
                            .map(|o| (201, o))
                    };
                    if result.is_ok() && !dry_run {
                        st.applied.insert(key, body);
                    }
                    result
                }
                "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                    let old = st
                        .objects
                        .get(&path)
                        .cloned()
                        .ok_or_else(|| not_found(&t, &name))?;
                    let mut new = old;
                    merge_patch(&mut new, &body);
                    let writer = Writer {
                        manager: &manager,
                        operation: "Update",
                        subresource: sub,
                    };
                    st.update(&t, &path, new, &writer, &body, dry_run)
                        .map(|o| (200, o))
                }
                other => Err(failure(
                    415,
                    "UnsupportedMediaType",
                    &format!(
                        "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
                    ),
                )),
            }
        }
        ("DELETE", Some(name)) => {
            let path = t.object(&name);
            if !st.objects.contains_key(&path) {
                return Err(not_found(&t, &name));
            }
            if dry_run {
                return Ok((200, st.objects[&path].clone()));
            }
            Ok((200, st.delete(&path).unwrap()))
        }
        ("DELETE", None) => {
            let labels = req.query("labelSelector").unwrap_or_default();
            let fields = req.query("fieldSelector").unwrap_or_default();
            let paths: Vec<String> = st
                .objects
                .iter()
                .filter(|(_, o)| selected(o, &t, &labels, &fields))
                .map(|(p, _)| p.clone())
                .collect();
            let items: Vec<Value> = paths.iter().filter_map(|p| st.delete(p)).collect();
            Ok((
                200,
                json!({"apiVersion": t.res.api_version, "kind": format!("{}List", t.res.kind),
                       "metadata": {"resourceVersion": st.rv.to_string()}, "items": items}),
            ))
        }
        _ => Err(failure(
            405,
            "MethodNotAllowed",
            &format!(
                "the server does not allow this method on the requested resource ({})",
                req.method
            ),
        )),
    }
}

/// Server-side apply ignores nulls in the applied configuration.
fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether an object belongs to the collection of `t` and matches the selectors.
fn selected(obj: &Value, t: &Target, labels: &str, fields: &str) -> bool {
    obj["apiVersion"] == t.res.api_version
        && obj["kind"] == t.res.kind
        && t.namespace
            .as_deref()
            .is_none_or(|ns| obj["metadata"]["namespace"] == ns)
        && t.name
            .as_deref()
            .is_none_or(|n| obj["metadata"]["name"] == n)
        && labels_match(obj, labels)
        && fields_match(obj, fields)
}

/// A watch: the events after `resourceVersion` (or, without one, the
/// current objects as ADDED), then new events as they happen, until
/// `timeoutSeconds` (default 30 minutes, like the API server's upper bound)
/// or the client leaves.
fn watch(core: &Arc<Core>, req: &Request) -> Result<Response, Failure> {
    let t = parse_target(req.path())?;
    if t.status {
        return Err(failure(
            405,
            "MethodNotAllowed",
            "cannot watch a subresource",
        ));
    }
    let labels = req.query("labelSelector").unwrap_or_default();
    let fields = req.query("fieldSelector").unwrap_or_default();
    let timeout = req
        .query("timeoutSeconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1800u64);
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let mut queue: VecDeque<Value> = VecDeque::new();
    let (mut since, drop_after_first) = {
        let mut st = core.lock();
        let drop_after_first = st
            .watch_drops
            .iter_mut()
            .find(|(f, n)| req.path().contains(f.as_str()) && *n != Some(0))
            .is_some_and(|(_, n)| {
                if let Some(n) = n {
                    *n -= 1;
                }
                true
            });
        match req.query("resourceVersion").as_deref() {
            None | Some("" | "0") => {
                for o in st
                    .objects
                    .values()
                    .filter(|o| selected(o, &t, &labels, &fields))
                {
                    queue.push_back(json!({"type": "ADDED", "object": o}));
                }
                (st.rv, drop_after_first)
            }
            Some(rv) => {
                let Ok(rv) = rv.parse::<u64>() else {
                    return Err(failure(
                        400,
                        "BadRequest",
                        &format!("invalid resource version: {rv}"),
                    ));
                };
                (rv, drop_after_first)
            }
        }
    };
    let weak: Weak<Core> = Arc::downgrade(core);
    let mut sent = 0usize;
    let next = move || {
        loop {
            if drop_after_first && sent >= 1 {
                return Some(Chunk::Abort);
            }
            if let Some(event) = queue.pop_front() {
                sent += 1;
                return Some(Chunk::Line(event));
            }
            if Instant::now() >= deadline {
                return None;
            }
            let core = weak.upgrade()?;
            let st = core.lock();
            for e in st.events.iter().filter(|e| e.rv > since) {
                if selected(&e.object, &t, &labels, &fields) {
                    queue.push_back(json!({"type": e.kind, "object": e.object}));
                }
            }
            since = st.rv;
            drop(st);
            if queue.is_empty() {
                std::thread::sleep(Duration::from_millis(5));
                return Some(Chunk::Idle);
            }
        }
    };
    Ok(Response::Stream(200, Box::new(next)))
}

// ---------------------------------------------------------------- exec

/// Stream protocol channels (`k8s.io/apimachinery/pkg/util/remotecommand`).
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const STATUS: u8 = 3;
/// `[CLOSE, channel]`: that stream has ended (v5 only).
const CLOSE: u8 = 255;

const V5: &str = "v5.channel.k8s.io";
const V4: &str = "v4.channel.k8s.io";

/// The namespace and pod of a `pods/exec` path.
fn exec_target(path: &str) -> Option<(&str, &str)> {
    match path
        .trim_matches('/')
        .split('/')
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["api", "v1", "namespaces", ns, "pods", pod, "exec"] => Some((ns, pod)),
        _ => None,
    }
}

/// A query flag (`true` or `1`).
fn flag(req: &Request, key: &str) -> bool {
    req.query(key).is_some_and(|v| v == "true" || v == "1")
}

/// `pods/exec`: checks made before the upgrade answer as JSON, the rest
/// happens over the websocket.
fn exec(core: &Arc<Core>, req: &Request, namespace: &str, pod: &str) -> Result<Response, Failure> {
    if req.method != "GET" && req.method != "POST" {
        return Err(failure(
            405,
            "MethodNotAllowed",
            &format!(
                "the server does not allow this method on the requested resource ({})",
                req.method
            ),
        ));
    }
    let containers: Vec<String> = {
        let st = core.lock();
        let obj = st
            .objects
            .get(&format!("/api/v1/namespaces/{namespace}/pods/{pod}"))
            .ok_or_else(|| failure(404, "NotFound", &format!("pods \"{pod}\" not found")))?;
        obj["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect()
    };
    let upgrade = req
        .header("upgrade")
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let Some(key) = req.header("sec-websocket-key").filter(|_| upgrade) else {
        return Err(failure(400, "BadRequest", "Upgrade request required"));
    };
    let offered: Vec<&str> = req
        .header("sec-websocket-protocol")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .collect();
    let Some(protocol) = [V5, V4].into_iter().find(|p| offered.contains(p)) else {
        return Err(failure(
            400,
            "BadRequest",
            &format!("none of the subprotocols {offered:?} is supported (want {V5} or {V4})"),
        ));
    };
    let refusal = match req.query("container") {
        Some(c) if containers.contains(&c) => Ok(c),
        Some(c) => Err(format!("container {c} is not valid for pod {pod}")),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => Err(format!(
            "a container name must be specified for pod {pod}, choose one of: [{}]",
            containers.join(" ")
        )),
    };
    let call = ExecCall {
        namespace: namespace.to_owned(),
        pod: pod.to_owned(),
        container: refusal.as_ref().cloned().unwrap_or_default(),
        command: req.query_all("command"),
        stdin: Vec::new(),
    };
    let session = ExecSession {
        core: Arc::downgrade(core),
        accept: tungstenite::handshake::derive_accept_key(key.as_bytes()),
        protocol,
        stdin: flag(req, "stdin"),
        stdout: flag(req, "stdout"),
        stderr: flag(req, "stderr"),
        refusal: refusal.err(),
        call,
    };
    Ok(Response::Upgrade(Box::new(move |stream| {
        session.run(stream);
    })))
}

/// One upgraded `pods/exec` connection.
struct ExecSession {
    core: Weak<Core>,
    accept: String,
    protocol: &'static str,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    /// Why the command cannot run, when it cannot.
    refusal: Option<String>,
    call: ExecCall,
}

impl ExecSession {
    fn run(mut self, mut stream: TcpStream) {
        let head = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: {}\r\n\r\n",
            self.accept, self.protocol
        );
        if stream.write_all(head.as_bytes()).is_err() {
            return;
        }
        // A client that goes quiet does not keep the thread forever.
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let mut ws = WebSocket::from_raw_socket(stream, Role::Server, None);
        if let Some(message) = self.refusal.take() {
            let status = status_body(400, "BadRequest", &message);
            let _ = send(&mut ws, STATUS, &serde_json::to_vec(&status).unwrap());
            close(&mut ws);
            return;
        }
        if self.stdin {
            self.call.stdin = read_stdin(&mut ws);
        }
        let Some(core) = self.core.upgrade() else {
            return;
        };
        let url = core.lock().url.clone();
        let kube = FakeKube { url, core };
        let handler = {
            let mut st = kube.core.lock();
            st.exec_calls.push(self.call.clone());
            st.on_exec.clone()
        };
        let reply = match handler {
            Some(handler) => {
                let mut reply = None;
                kube.guarded(|| reply = Some(handler(&self.call)));
                // A panicking handler: the stream ends without a status.
                let Some(reply) = reply else {
                    close(&mut ws);
                    return;
                };
                reply
            }
            None => ExecReply {
                stdout: String::new(),
                stderr: format!(
                    "{}: command not found",
                    self.call.command.first().map_or("", String::as_str)
                ),
                exit_code: 127,
            },
        };
        drop(kube);
        if (self.stdout
            && !reply.stdout.is_empty()
            && send(&mut ws, STDOUT, reply.stdout.as_bytes()).is_err())
            || (self.stderr
                && !reply.stderr.is_empty()
                && send(&mut ws, STDERR, reply.stderr.as_bytes()).is_err())
        {
            return;
        }
        let status = if reply.exit_code == 0 {
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
        } else {
            let exit_code = reply.exit_code;
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "reason": "NonZeroExitCode",
                   "message": format!(
                       "command terminated with non-zero exit code: error executing command [{}], exit code {exit_code}",
                       self.call.command.join(" ")),
                   "details": {"causes": [{"reason": "ExitCode", "message": exit_code.to_string()}]}})
        };
        if send(&mut ws, STATUS, &serde_json::to_vec(&status).unwrap()).is_ok() {
            close(&mut ws);
        }
    }
}

/// Sends one frame on `channel`.
fn send(ws: &mut WebSocket<TcpStream>, channel: u8, data: &[u8]) -> tungstenite::Result<()> {
    let mut frame = Vec::with_capacity(data.len() + 1);
    frame.push(channel);
    frame.extend_from_slice(data);
    ws.send(Message::binary(frame))
}

/// The stdin frames, until the client signals the end of stdin (v5) or the
/// connection ends.
fn read_stdin(ws: &mut WebSocket<TcpStream>) -> Vec<u8> {
    let mut stdin = Vec::new();
    loop {
        match ws.read() {
            Ok(Message::Binary(frame)) => match frame.as_ref() {
                [STDIN, data @ ..] => stdin.extend_from_slice(data),
                [CLOSE, STDIN] => return stdin,
                _ => {}
            },
            Ok(Message::Close(_)) | Err(_) => return stdin,
            Ok(_) => {}
        }
    }
}

/// Closes the websocket: the close frame, then waits for the client's (or
/// for it to hang up).
fn close(ws: &mut WebSocket<TcpStream>) {
    if ws.close(None).is_err() {
        return;
    }
    while ws.read().is_ok() {}
}

/// A Secret's `stringData` merged into `data`, base64-encoded, as the API
/// server stores it (`stringData` is write-only).
fn string_data_to_data(obj: &mut Value) {
    if obj["kind"] != "Secret" || obj["apiVersion"] != "v1" {
        return;
    }
    let Some(Value::Object(strings)) = obj.as_object_mut().and_then(|o| o.remove("stringData"))
    else {
        return;
    };
    let data = obj
        .as_object_mut()
        .map(|o| o.entry("data").or_insert_with(|| json!({})));
    if let Some(Value::Object(data)) = data {
        for (k, v) in strings {
            let text = v.as_str().unwrap_or_default().to_owned();
            data.insert(k, Value::String(base64(text.as_bytes())));
        }
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
