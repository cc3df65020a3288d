//! The fake Kubernetes API server of the runbook tests, exercised through
//! kube-rs the way cnpg-ops uses it: the API semantics (writes, conflicts,
//! validation, apply, status, watches) and each simulated controller.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};
use support::fake_kube::{FakeKube, Options};

const NS: &str = "foo-prod";
const CLUSTER: &str = "/apis/postgresql.cnpg.io/v1/namespaces/foo-prod/clusters/foo-pg";

struct Setup {
    kube: FakeKube,
    client: kube::Client,
    _dir: tempfile::TempDir,
}

async fn setup_with(options: Options) -> Setup {
    let kube = FakeKube::start_with(options);
    let dir = tempfile::tempdir().unwrap();
    let path = kube.kubeconfig(dir.path(), "fake");
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(path).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    Setup {
        kube,
        client: kube::Client::try_from(config).unwrap(),
        _dir: dir,
    }
}

async fn setup() -> Setup {
    setup_with(Options::default()).await
}

fn resource(api_version: &str, kind: &str, plural: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ApiResource {
        group: group.to_owned(),
        version: version.to_owned(),
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        plural: plural.to_owned(),
    }
}

impl Setup {
    fn api(&self, api_version: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            NS,
            &resource(api_version, kind, plural),
        )
    }
    fn clusters(&self) -> Api<DynamicObject> {
        self.api("postgresql.cnpg.io/v1", "Cluster", "clusters")
    }
    fn backups(&self) -> Api<DynamicObject> {
        self.api("postgresql.cnpg.io/v1", "Backup", "backups")
    }
    fn pvcs(&self) -> Api<DynamicObject> {
        self.api("v1", "PersistentVolumeClaim", "persistentvolumeclaims")
    }
    fn pods(&self) -> Api<DynamicObject> {
        self.api("v1", "Pod", "pods")
    }
    fn kustomizations(&self) -> Api<DynamicObject> {
        self.api(
            "kustomize.toolkit.fluxcd.io/v1",
            "Kustomization",
            "kustomizations",
        )
    }
}

fn dynamic(v: Value) -> DynamicObject {
    serde_json::from_value(v).unwrap()
}

fn value(o: &DynamicObject) -> Value {
    serde_json::to_value(o).unwrap()
}

fn api_error(e: kube::Error) -> (u16, String, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason, s.message),
        other => panic!("not an API error: {other:?}"),
    }
}

fn cluster(name: &str) -> Value {
    json!({
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"instances": 2, "storage": {"size": "10Gi"},
                 "plugins": [{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": true,
                              "parameters": {"barmanObjectName": "foo-store", "serverName": "foo-pg-g2"}}]}
    })
}

fn object_store() -> Value {
    json!({
        "apiVersion": "barmancloud.cnpg.io/v1", "kind": "ObjectStore",
        "metadata": {"name": "foo-store", "namespace": NS},
        "spec": {"configuration": {"destinationPath": "file:///tmp/catalog",
                                    "googleCredentials": {"gkeEnvironment": true}}}
    })
}

fn backup(name: &str, cluster: &str) -> Value {
    json!({
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Backup",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"cluster": {"name": cluster}, "method": "plugin",
                 "pluginConfiguration": {"name": "barman-cloud.cloudnative-pg.io"}}
    })
}

fn kustomization(name: &str) -> Value {
    json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"interval": "10m", "prune": true, "path": "./fluxcd/databases/prod/foo",
                 "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}
    })
}

fn condition<'a>(obj: &'a Value, kind: &str) -> &'a Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

/// Polls `f` until it holds (5 s at most).
async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..1000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Whatever the simulation wrote must still satisfy the CRD schema.
fn assert_valid(obj: &Value) {
    if let Ok(errors) = cnpg_ops::gitops::schema::validate(obj) {
        assert!(errors.is_empty(), "{errors:?}\n{obj:#}");
    }
}

// ---------------------------------------------------------------- API semantics

#[tokio::test]
async fn create_get_list_and_the_errors_of_create() {
    let s = setup().await;
    let pp = PostParams::default();
    let created = s
        .clusters()
        .create(&pp, &dynamic(cluster("foo-pg")))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.is_some());
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.generation, Some(1));
    let rv: u64 = meta.resource_version.as_deref().unwrap().parse().unwrap();
    assert!(rv >= 1);

    let got = s.clusters().get("foo-pg").await.unwrap();
    assert_eq!(got.data["spec"]["instances"], 2);

    let (code, reason, message) = api_error(
        s.clusters()
            .create(&pp, &dynamic(cluster("foo-pg")))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "AlreadyExists"));
    assert!(message.contains("\"foo-pg\" already exists"), "{message}");

    let (code, reason, _) = api_error(s.clusters().get("nope").await.unwrap_err());
    assert_eq!((code, reason.as_str()), (404, "NotFound"));

    // The CRD schema: the field is named.
    let mut bad = cluster("bar-pg");
    bad["spec"]["instances"] = json!("two");
    let (code, reason, message) =
        api_error(s.clusters().create(&pp, &dynamic(bad)).await.unwrap_err());
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert!(
        message.starts_with("Cluster.postgresql.cnpg.io \"bar-pg\" is invalid: spec.instances"),
        "{message}"
    );

    // The webhook.
    let mut bad = cluster("bar-pg");
    bad["spec"]["bootstrap"] = json!({"initdb": {}, "recovery": {"source": "origin"}});
    let (code, _, message) = api_error(s.clusters().create(&pp, &dynamic(bad)).await.unwrap_err());
    assert_eq!(code, 422);
    assert!(
        message.starts_with("admission webhook \"vcluster.cnpg.io\" denied the request"),
        "{message}"
    );
    assert!(s.kube.get(&CLUSTER.replace("foo-pg", "bar-pg")).is_none());

    // Lists: namespaced, across namespaces, by label.
    s.kube.add(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "a", "namespace": NS, "labels": {"app": "x"}}}));
    s.kube.add(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "b", "namespace": "other", "labels": {"app": "y"}}}));
    let secrets = s.api("v1", "Secret", "secrets");
    let names = |l: kube::core::ObjectList<DynamicObject>| -> Vec<String> {
        l.items
            .into_iter()
            .map(|o| o.metadata.name.unwrap())
            .collect()
    };
    assert_eq!(
        names(secrets.list(&ListParams::default()).await.unwrap()),
        ["a"]
    );
    let all: Api<DynamicObject> =
        Api::all_with(s.client.clone(), &resource("v1", "Secret", "secrets"));
    assert_eq!(
        names(all.list(&ListParams::default()).await.unwrap()),
        ["a", "b"]
    );
    assert_eq!(
        names(
            all.list(&ListParams::default().labels("app=y"))
                .await
                .unwrap()
        ),
        ["b"]
    );
    let list = all.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        list.metadata.resource_version,
        Some(s.kube.resource_version().to_string())
    );

    // A resource the server does not serve.
    let nope = s.api("example.com/v1", "Widget", "widgets");
    let (code, _, _) = api_error(nope.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(code, 404);
}

#[tokio::test]
async fn replace_merge_patch_and_generation() {
    let s = setup_with(Options {
        tick: Duration::from_hours(1),
        ..Options::default()
    })
    .await;
    let pp = PostParams::default();
    let created = s
        .clusters()
        .create(&pp, &dynamic(cluster("foo-pg")))
        .await
        .unwrap();

    // A stale resourceVersion is a conflict.
    let mut stale = created.clone();
    stale.metadata.resource_version = Some("1".into());
    s.kube
        .merge(CLUSTER, &json!({"metadata": {"labels": {"a": "b"}}}))
        .unwrap();
    let (code, reason, message) = api_error(
        s.clusters()
            .replace("foo-pg", &pp, &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"), "{message}");
    assert!(message.contains("the object has been modified"));

    // With the current one it goes through; spec changes bump generation.
    let mut current = s.clusters().get("foo-pg").await.unwrap();
    current.data["spec"]["instances"] = json!(3);
    let replaced = s.clusters().replace("foo-pg", &pp, &current).await.unwrap();
    assert_eq!(replaced.metadata.generation, Some(2));
    assert_eq!(replaced.metadata.uid, created.metadata.uid);

    // A merge patch of metadata does not bump generation, one of spec does.
    let pp = PatchParams::default();
    let patched = s
        .clusters()
        .patch(
            "foo-pg",
            &pp,
            &Patch::Merge(json!({"metadata": {"annotations": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.generation, Some(2));
    assert!(
        patched
            .metadata
            .resource_version
            .as_deref()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > replaced
                .metadata
                .resource_version
                .as_deref()
                .unwrap()
                .parse::<u64>()
                .unwrap()
    );
    let patched = s
        .clusters()
        .patch(
            "foo-pg",
            &pp,
            &Patch::Merge(json!({"spec": {"instances": 1, "plugins": null}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.generation, Some(3));
    assert!(patched.data["spec"].get("plugins").is_none());
    // A write that changes nothing keeps the resourceVersion.
    let again = s
        .clusters()
        .patch(
            "foo-pg",
            &pp,
            &Patch::Merge(json!({"spec": {"instances": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        patched.metadata.resource_version
    );
    // Invalid after the patch: refused, nothing stored.
    let (code, _, message) = api_error(
        s.clusters()
            .patch(
                "foo-pg",
                &pp,
                &Patch::Merge(json!({"spec": {"instances": -1}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(message.contains("spec.instances"), "{message}");
    assert_eq!(s.kube.get(CLUSTER).unwrap()["spec"]["instances"], 1);
    // Patching what is not there.
    let (code, _, _) = api_error(
        s.clusters()
            .patch("nope", &pp, &Patch::Merge(json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 404);

    // A Backup's spec is immutable.
    s.backups()
        .create(&PostParams::default(), &dynamic(backup("b1", "foo-pg")))
        .await
        .unwrap();
    let (code, _, message) = api_error(
        s.backups()
            .patch(
                "b1",
                &pp,
                &Patch::Merge(json!({"spec": {"cluster": {"name": "other"}}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains("BackupSpec is immutable once set"),
        "{message}"
    );
}

#[tokio::test]
async fn server_side_apply_creates_updates_and_records_the_manager() {
    let s = setup_with(Options {
        tick: Duration::from_hours(1),
        ..Options::default()
    })
    .await;
    let ks = s.kustomizations();
    let mut manifest = kustomization("foo");
    manifest["metadata"]["labels"] = json!({"a": "1", "b": "2"});
    let pp = PatchParams::apply("cnpg-ops").force();
    let created = ks
        .patch("foo", &pp, &Patch::Apply(manifest.clone()))
        .await
        .unwrap();
    let v = value(&created);
    assert_eq!(v["metadata"]["generation"], 1);
    let managers: Vec<&str> = v["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["cnpg-ops"]);
    assert_eq!(v["metadata"]["managedFields"][0]["operation"], "Apply");

    // Another manager's field survives; the fields this manager stops
    // applying go.
    ks.patch(
        "foo",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"c": "3"}}})),
    )
    .await
    .unwrap();
    manifest["metadata"]["labels"] = json!({"a": "1"});
    manifest["spec"]["interval"] = json!("5m");
    let applied = ks.patch("foo", &pp, &Patch::Apply(manifest)).await.unwrap();
    let v = value(&applied);
    assert_eq!(v["metadata"]["labels"], json!({"a": "1", "c": "3"}));
    assert_eq!(v["spec"]["interval"], "5m");
    assert_eq!(v["metadata"]["generation"], 2);
    assert_eq!(v["metadata"]["managedFields"].as_array().unwrap().len(), 2);

    // Schema errors are refused on apply too.
    let mut bad = kustomization("foo");
    bad["spec"]["interval"] = json!("often");
    let (code, _, message) = api_error(ks.patch("foo", &pp, &Patch::Apply(bad)).await.unwrap_err());
    assert_eq!(code, 422);
    assert!(message.contains("spec.interval"), "{message}");

    let log = s.kube.request_log();
    let apply = log.iter().find(|r| r.method == "PATCH").unwrap();
    assert_eq!(
        apply.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert!(apply.query.contains("fieldManager=cnpg-ops"), "{apply:?}");
    assert!(apply.query.contains("force=true"), "{apply:?}");
    assert!(
        log.iter()
            .any(|r| r.content_type.as_deref() == Some("application/merge-patch+json"))
    );
}

#[tokio::test]
async fn the_status_subresource_and_delete_with_finalizers() {
    let s = setup_with(Options {
        tick: Duration::from_hours(1),
        ..Options::default()
    })
    .await;
    let pp = PostParams::default();
    // Status in a create body is dropped, as for any CRD with a status subresource.
    let mut b = backup("b1", "foo-pg");
    b["status"] = json!({"phase": "completed"});
    let created = s.backups().create(&pp, &dynamic(b)).await.unwrap();
    assert!(created.data.get("status").is_none());

    let patched = s
        .backups()
        .patch_status(
            "b1",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"phase": "running"}, "spec": {"method": "volumeSnapshot"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["status"]["phase"], "running");
    assert_eq!(patched.data["spec"]["method"], "plugin");
    assert_eq!(
        s.backups().get_status("b1").await.unwrap().data["status"]["phase"],
        "running"
    );
    // A write to the object leaves the status alone.
    let patched = s
        .backups()
        .patch(
            "b1",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"x": "y"}}, "status": {"phase": "failed"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["status"]["phase"], "running");

    // Finalizers: delete marks, removing the last finalizer removes.
    s.kube.add(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "held", "namespace": NS, "finalizers": ["example.com/hold"]}}));
    let secrets = s.api("v1", "Secret", "secrets");
    let dp = DeleteParams::default();
    let marked = secrets.delete("held", &dp).await.unwrap().left().unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert!(secrets.get("held").await.is_ok());
    secrets
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    assert_eq!(api_error(secrets.get("held").await.unwrap_err()).0, 404);

    // Without finalizers it goes at once; twice is a 404.
    s.backups().delete("b1", &dp).await.unwrap();
    assert_eq!(api_error(s.backups().get("b1").await.unwrap_err()).0, 404);
    let (code, reason, _) = api_error(s.backups().delete("b1", &dp).await.unwrap_err());
    assert_eq!((code, reason.as_str()), (404, "NotFound"));
}

// ---------------------------------------------------------------- watches

#[tokio::test]
async fn watch_streams_changes_after_a_version_and_ends_at_its_timeout() {
    let s = setup_with(Options {
        tick: Duration::from_hours(1),
        ..Options::default()
    })
    .await;
    s.kube.add(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "before", "namespace": NS}}));
    let secrets = s.api("v1", "Secret", "secrets");
    let rv = s.kube.resource_version().to_string();
    let stream = secrets
        .watch(&WatchParams::default().timeout(2), &rv)
        .await
        .unwrap();
    let kube = s.kube.clone();
    let writer = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(50));
        let path = "/api/v1/namespaces/foo-prod/secrets/after";
        kube.apply(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "after", "namespace": NS}}))
            .unwrap();
        kube.merge(path, &json!({"metadata": {"labels": {"k": "v"}}}))
            .unwrap();
        kube.delete(path).unwrap();
        // Another namespace is not this watch's business.
        kube.add(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "elsewhere", "namespace": "other"}}));
    });
    let started = std::time::Instant::now();
    let events: Vec<WatchEvent<DynamicObject>> = stream.try_collect().await.unwrap();
    writer.await.unwrap();
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(o) => ("ADDED".into(), o.metadata.name.clone().unwrap()),
            WatchEvent::Modified(o) => ("MODIFIED".into(), o.metadata.name.clone().unwrap()),
            WatchEvent::Deleted(o) => ("DELETED".into(), o.metadata.name.clone().unwrap()),
            other => panic!("{other:?}"),
        })
        .collect();
    let expected = [
        ("ADDED", "after"),
        ("MODIFIED", "after"),
        ("DELETED", "after"),
    ];
    assert_eq!(seen, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    // The stream ended by itself, at the timeout.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "{took:?}"
    );

    // From version 0: the current objects first, by name with a field selector.
    let stream = secrets
        .watch(
            &WatchParams::default()
                .fields("metadata.name=before")
                .timeout(1),
            "0",
        )
        .await
        .unwrap();
    let events: Vec<WatchEvent<DynamicObject>> = stream.try_collect().await.unwrap();
    assert_eq!(events.len(), 1);
    assert!(
        matches!(&events[0], WatchEvent::Added(o) if o.metadata.name.as_deref() == Some("before"))
    );
    let log = s.kube.request_log();
    assert!(
        log.iter()
            .any(|r| r.query.contains("watch=true") && r.query.contains("timeoutSeconds=1"))
    );
}

#[tokio::test]
async fn a_dropped_watch_ends_after_its_first_event() {
    let s = setup().await;
    s.kube.drop_watches("/backups", Some(1));
    s.kube.add(cluster("foo-pg"));
    s.kube.add(object_store());
    // A real version to replay from: "0" means "start from the current
    // state", which by the second watch already has the backup pending.
    let rv = s.kube.resource_version().to_string();
    assert_ne!(rv, "0");
    let stream = s
        .backups()
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .unwrap();
    s.backups()
        .create(&PostParams::default(), &dynamic(backup("b1", "foo-pg")))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let events: Vec<_> = stream.collect().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(matches!(&events[0], Ok(WatchEvent::Added(_))));
    // The next watch is whole again: it sees the backup progress.
    let stream = s
        .backups()
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .unwrap();
    let phases: Vec<String> = stream
        .map(|e| match e.unwrap() {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                o.data["status"]["phase"].as_str().unwrap_or("").to_owned()
            }
            other => panic!("{other:?}"),
        })
        .take_while(|p| std::future::ready(p != "completed"))
        .collect()
        .await;
    assert_eq!(phases, ["", "pending", "running"]);
}

// ---------------------------------------------------------------- faults

#[tokio::test]
async fn injected_failures_by_method_and_path() {
    let s = setup().await;
    s.kube.add(cluster("foo-pg"));
    s.kube
        .fail_requests("GET", "/clusters/foo-pg", 500, Some(2));
    s.kube.fail_requests("*", "/backups", 403, None);
    for _ in 0..2 {
        let (code, reason, _) = api_error(s.clusters().get("foo-pg").await.unwrap_err());
        assert_eq!((code, reason.as_str()), (500, "InternalError"));
    }
    assert!(s.clusters().get("foo-pg").await.is_ok());
    for _ in 0..3 {
        let (code, reason, message) =
            api_error(s.backups().list(&ListParams::default()).await.unwrap_err());
        assert_eq!((code, reason.as_str()), (403, "Forbidden"));
        assert!(message.contains("forbidden"));
    }
    s.kube.fail_requests("PATCH", "/clusters/", 409, Some(1));
    let (code, reason, _) = api_error(
        s.clusters()
            .patch("foo-pg", &PatchParams::default(), &Patch::Merge(json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    assert_eq!(
        s.kube.requests()[..3],
        [
            "GET /apis/postgresql.cnpg.io/v1/namespaces/foo-prod/clusters/foo-pg",
            "GET /apis/postgresql.cnpg.io/v1/namespaces/foo-prod/clusters/foo-pg",
            "GET /apis/postgresql.cnpg.io/v1/namespaces/foo-prod/clusters/foo-pg",
        ]
    );
}

// ---------------------------------------------------------------- CloudNativePG

#[tokio::test]
async fn a_new_cluster_is_set_up_with_its_pods_and_pvcs_and_torn_down() {
    let s = setup().await;
    let created: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = created.clone();
    s.kube.on_cluster_created(move |c| {
        seen.lock()
            .unwrap()
            .push(c["metadata"]["name"].as_str().unwrap().to_owned());
    });
    s.kube.add(object_store());
    let c = s
        .clusters()
        .create(&PostParams::default(), &dynamic(cluster("foo-pg")))
        .await
        .unwrap();
    assert_eq!(*created.lock().unwrap(), ["foo-pg"]);
    let now = s.kube.get(CLUSTER).unwrap();
    assert_eq!(now["status"]["phase"], "Setting up primary");
    assert_eq!(condition(&now, "Ready")["status"], "False");
    drop(c);

    let kube = s.kube.clone();
    eventually("a healthy cluster", || {
        kube.get(CLUSTER).unwrap()["status"]["phase"] == "Cluster in healthy state"
    })
    .await;
    let c = s.kube.get(CLUSTER).unwrap();
    assert_valid(&c);
    assert_eq!(condition(&c, "Ready")["status"], "True");
    assert_eq!(condition(&c, "Ready")["reason"], "ClusterIsReady");
    assert_eq!(condition(&c, "ContinuousArchiving")["status"], "True");
    assert_eq!(c["status"]["readyInstances"], 2);
    assert_eq!(c["status"]["currentPrimary"], "foo-pg-1");

    let lp = ListParams::default().labels("cnpg.io/cluster=foo-pg");
    let names = |l: kube::core::ObjectList<DynamicObject>| -> Vec<String> {
        l.items
            .into_iter()
            .map(|o| o.metadata.name.unwrap())
            .collect()
    };
    assert_eq!(
        names(s.pvcs().list(&lp).await.unwrap()),
        ["foo-pg-1", "foo-pg-2"]
    );
    assert_eq!(
        names(s.pods().list(&lp).await.unwrap()),
        ["foo-pg-1", "foo-pg-2"]
    );
    let primary = s
        .pods()
        .list(&ListParams::default().labels("cnpg.io/cluster=foo-pg,cnpg.io/instanceRole=primary"))
        .await
        .unwrap();
    assert_eq!(names(primary), ["foo-pg-1"]);

    // Deleted: the Cluster at once, its Pods and PVCs after the teardown.
    s.kube.pvc_never_goes(NS, "foo-pg-2");
    s.clusters()
        .delete("foo-pg", &DeleteParams::default())
        .await
        .unwrap();
    assert!(s.kube.get(CLUSTER).is_none());
    assert_eq!(s.pods().list(&lp).await.unwrap().items.len(), 2);
    let kube = s.kube.clone();
    eventually("pods and the first PVC gone", || {
        kube.list("/api/v1/namespaces/foo-prod/pods/").is_empty()
            && kube
                .list("/api/v1/namespaces/foo-prod/persistentvolumeclaims/")
                .len()
                == 1
    })
    .await;
    // The kept one is marked for deletion, and stays.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let left = s.pvcs().get("foo-pg-2").await.unwrap();
    assert!(left.metadata.deletion_timestamp.is_some());
    assert_eq!(
        left.metadata.finalizers.as_deref(),
        Some(&["kubernetes.io/pvc-protection".to_owned()][..])
    );
}

#[tokio::test]
async fn a_cluster_that_never_gets_healthy_and_one_whose_archiving_fails() {
    let s = setup_with(Options {
        tick: Duration::from_millis(5),
        ..Options::default()
    })
    .await;
    s.kube.never_healthy(NS, "stuck-pg");
    s.kube.archiving_failing(NS, "foo-pg", "exit status 4");
    s.kube.add(object_store());
    let pp = PostParams::default();
    s.clusters()
        .create(&pp, &dynamic(cluster("stuck-pg")))
        .await
        .unwrap();
    s.clusters()
        .create(&pp, &dynamic(cluster("foo-pg")))
        .await
        .unwrap();
    let kube = s.kube.clone();
    eventually("foo-pg healthy", || {
        kube.get(CLUSTER).unwrap()["status"]["phase"] == "Cluster in healthy state"
    })
    .await;
    let c = s.kube.get(CLUSTER).unwrap();
    let archiving = condition(&c, "ContinuousArchiving");
    assert_eq!(archiving["status"], "False");
    assert_eq!(archiving["reason"], "ContinuousArchivingFailing");
    assert_eq!(archiving["message"], "exit status 4");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stuck = s.clusters().get("stuck-pg").await.unwrap();
    assert_eq!(stuck.data["status"]["phase"], "Setting up primary");
    // The primary's PVC is there, no Pod.
    let lp = ListParams::default().labels("cnpg.io/cluster=stuck-pg");
    assert_eq!(s.pvcs().list(&lp).await.unwrap().items.len(), 2);
    assert!(s.pods().list(&lp).await.unwrap().items.is_empty());

    // A Backup of the stuck Cluster waits.
    s.backups()
        .create(&pp, &dynamic(backup("b1", "stuck-pg")))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        s.backups().get("b1").await.unwrap().data["status"]["phase"],
        "pending"
    );
}

#[tokio::test]
async fn a_backup_runs_and_completes_after_the_hook() {
    let s = setup().await;
    s.kube.add(object_store());
    s.kube.add(cluster("foo-pg"));
    let done: Arc<Mutex<Vec<Value>>> = Arc::default();
    let seen = done.clone();
    let kube = s.kube.clone();
    s.kube.on_backup_completed(move |b| {
        // Nobody sees it completed before the hook is done.
        let path = support::fake_kube::path_of(b);
        assert_eq!(kube.get(&path).unwrap()["status"]["phase"], "running");
        seen.lock().unwrap().push(b.clone());
    });
    let kube = s.kube.clone();
    eventually("a healthy cluster", || {
        kube.get(CLUSTER).unwrap()["status"]["phase"] == "Cluster in healthy state"
    })
    .await;
    let pp = PostParams::default();
    s.backups()
        .create(&pp, &dynamic(backup("b1", "foo-pg")))
        .await
        .unwrap();
    let path = "/apis/postgresql.cnpg.io/v1/namespaces/foo-prod/backups/b1";
    eventually("running", || {
        kube.get(path).unwrap()["status"]["phase"] == "running"
    })
    .await;
    let c = s.kube.get(CLUSTER).unwrap();
    assert_eq!(
        condition(&c, "LastBackupSucceeded")["reason"],
        "BackupStarted"
    );
    eventually("completed", || {
        kube.get(path).unwrap()["status"]["phase"] == "completed"
    })
    .await;
    assert!(
        s.kube.hook_panics().is_empty(),
        "{:?}",
        s.kube.hook_panics()
    );
    let b = s.backups().get("b1").await.unwrap().data;
    assert_valid(
        &json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Backup",
        "metadata": {"name": "b1"}, "spec": b["spec"], "status": b["status"]}),
    );
    let st = &b["status"];
    assert_eq!(st["backupId"], "20261124T120000");
    assert_eq!(st["startedAt"], "2026-11-24T12:00:00Z");
    assert_eq!(st["stoppedAt"], "2026-11-24T12:05:00Z");
    assert_eq!(st["beginWal"], "000000010000000000000002");
    assert_eq!(st["endWal"], "000000010000000000000003");
    assert_eq!(st["method"], "plugin");
    assert_eq!(st["destinationPath"], "file:///tmp/catalog");
    assert_eq!(st["serverName"], "foo-pg-g2");
    assert_eq!(done.lock().unwrap().len(), 1);
    assert_eq!(
        done.lock().unwrap()[0]["status"]["backupId"],
        "20261124T120000"
    );
    let c = s.kube.get(CLUSTER).unwrap();
    assert_valid(&c);
    assert_eq!(condition(&c, "LastBackupSucceeded")["status"], "True");
    let store = s
        .kube
        .get("/apis/barmancloud.cnpg.io/v1/namespaces/foo-prod/objectstores/foo-store")
        .unwrap();
    assert_valid(&store);
    assert_eq!(
        store["status"]["serverRecoveryWindow"]["foo-pg-g2"]["lastSuccessfulBackupTime"],
        "2026-11-24T12:05:00Z"
    );

    // The second backup an hour later on the clock, with the next WAL.
    s.backups()
        .create(&pp, &dynamic(backup("b2", "foo-pg")))
        .await
        .unwrap();
    let kube = s.kube.clone();
    eventually("b2 completed", || {
        kube.get(&path.replace("b1", "b2")).unwrap()["status"]["phase"] == "completed"
    })
    .await;
    let b2 = s.kube.get(&path.replace("b1", "b2")).unwrap();
    assert_eq!(b2["status"]["backupId"], "20261124T130000");
    assert_eq!(b2["status"]["beginWal"], "000000010000000000000004");
}

#[tokio::test]
async fn failing_backups() {
    let s = setup().await;
    s.kube.add(object_store());
    s.kube.add(cluster("foo-pg"));
    s.kube
        .fail_next_backups(1, "rpc error: barman-cloud-backup exit status 4");
    s.kube.fail_backups_of(NS, "bar-pg", "403 Forbidden");
    let kube = s.kube.clone();
    eventually("a healthy cluster", || {
        kube.get(CLUSTER).unwrap()["status"]["phase"] == "Cluster in healthy state"
    })
    .await;
    let pp = PostParams::default();
    let path = |n: &str| format!("/apis/postgresql.cnpg.io/v1/namespaces/foo-prod/backups/{n}");
    s.backups()
        .create(&pp, &dynamic(backup("b1", "foo-pg")))
        .await
        .unwrap();
    eventually("b1 failed", || {
        kube.get(&path("b1")).unwrap()["status"]["phase"] == "failed"
    })
    .await;
    let b = s.kube.get(&path("b1")).unwrap();
    assert_eq!(
        b["status"]["error"],
        "rpc error: barman-cloud-backup exit status 4"
    );
    let c = s.kube.get(CLUSTER).unwrap();
    let last = condition(&c, "LastBackupSucceeded");
    assert_eq!(last["status"], "False");
    assert_eq!(last["reason"], "LastBackupFailed");
    assert_eq!(
        last["message"],
        "rpc error: barman-cloud-backup exit status 4"
    );

    // Only the next one: the following backup completes.
    s.backups()
        .create(&pp, &dynamic(backup("b2", "foo-pg")))
        .await
        .unwrap();
    eventually("b2 completed", || {
        kube.get(&path("b2")).unwrap()["status"]["phase"] == "completed"
    })
    .await;

    // Every backup of bar-pg fails; a backup of a Cluster that is not there too.
    s.kube.add(cluster("bar-pg"));
    for (name, cluster) in [("b3", "bar-pg"), ("b4", "bar-pg"), ("b5", "nope-pg")] {
        s.backups()
            .create(&pp, &dynamic(backup(name, cluster)))
            .await
            .unwrap();
    }
    for name in ["b3", "b4", "b5"] {
        eventually(name, || {
            kube.get(&path(name)).unwrap()["status"]["phase"] == "failed"
        })
        .await;
    }
    assert_eq!(
        s.kube.get(&path("b4")).unwrap()["status"]["error"],
        "403 Forbidden"
    );
    assert!(
        s.kube.get(&path("b5")).unwrap()["status"]["error"]
            .as_str()
            .unwrap()
            .contains("\"nope-pg\" not found")
    );
}

// ---------------------------------------------------------------- Flux

#[tokio::test]
async fn flux_reconciles_on_request_unless_suspended_and_prunes() {
    let s = setup().await;
    // The "git repository": what the hook applies.
    let in_git: Arc<Mutex<Vec<Value>>> =
        Arc::new(Mutex::new(vec![object_store(), cluster("foo-pg")]));
    let git = in_git.clone();
    let reconciles: Arc<Mutex<u32>> = Arc::default();
    let count = reconciles.clone();
    s.kube.on_reconcile(move |kube, ks| {
        assert_eq!(ks["metadata"]["name"], "foo");
        *count.lock().unwrap() += 1;
        for obj in git.lock().unwrap().iter() {
            kube.apply(obj.clone()).unwrap();
        }
    });
    let ks = s.kustomizations();
    ks.patch(
        "foo",
        &PatchParams::apply("cnpg-ops").force(),
        &Patch::Apply(kustomization("foo")),
    )
    .await
    .unwrap();
    let kube = s.kube.clone();
    let path = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/foo-prod/kustomizations/foo";
    eventually("the first reconcile", || {
        kube.get(path).unwrap()["status"]["observedGeneration"] == 1
    })
    .await;
    let k = s.kube.get(path).unwrap();
    assert_valid(&k);
    assert_eq!(condition(&k, "Ready")["status"], "True");
    let c = s.kube.get(CLUSTER).unwrap();
    assert_eq!(
        c["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"],
        "foo"
    );
    assert_eq!(
        c["metadata"]["managedFields"][0]["manager"],
        "kustomize-controller"
    );

    // Suspended: a request is not handled.
    let pp = PatchParams::default();
    ks.patch(
        "foo",
        &pp,
        &Patch::Merge(json!({"spec": {"suspend": true}})),
    )
    .await
    .unwrap();
    let before = *reconciles.lock().unwrap();
    ks.patch(
        "foo",
        &pp,
        &Patch::Merge(json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "2026-11-24T12:00:00.000000001Z"}}})),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(*reconciles.lock().unwrap(), before);
    assert!(s.kube.get(path).unwrap()["status"]["lastHandledReconcileAt"].is_null());

    // Resumed, with the Cluster gone from git: reconciled, request handled, Cluster pruned.
    in_git.lock().unwrap().pop();
    ks.patch(
        "foo",
        &pp,
        &Patch::Merge(json!({"spec": {"suspend": null}})),
    )
    .await
    .unwrap();
    eventually("the request handled", || {
        kube.get(path).unwrap()["status"]["lastHandledReconcileAt"]
            == "2026-11-24T12:00:00.000000001Z"
    })
    .await;
    assert!(s.kube.get(CLUSTER).is_none());
    assert!(
        s.kube
            .get("/apis/barmancloud.cnpg.io/v1/namespaces/foo-prod/objectstores/foo-store")
            .is_some()
    );

    // A new request value reconciles again.
    let n = *reconciles.lock().unwrap();
    ks.patch(
        "foo",
        &pp,
        &Patch::Merge(
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "2"}}}),
        ),
    )
    .await
    .unwrap();
    eventually("the second request handled", || {
        kube.get(path).unwrap()["status"]["lastHandledReconcileAt"] == "2"
    })
    .await;
    assert_eq!(*reconciles.lock().unwrap(), n + 1);
    assert!(
        s.kube.hook_panics().is_empty(),
        "{:?}",
        s.kube.hook_panics()
    );
}
