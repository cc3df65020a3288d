//! `cnpg-ops verify`: gathers what the API, the primary and the bucket say
//! about one database and prints the judged checks (`crate::verify`).
//!
//! Read-only: the only command that changes anything is `pg_switch_wal()`,
//! run only with `--switch-wal`. Secrets read for the archive test and the
//! application login are passed to the pod on stdin, never on a command line.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::runbook::playbook::parse_duration;
use serde_json::Value;

use crate::catalog::analysis::{AnalysisOptions, Catalog};
use crate::cli::{GlobalArgs, OutputFormat, VerifyArgs};
use crate::commands::ls::load_repo;
use crate::exit::{FINDINGS, Failure, OK};
use crate::gitops::discover::{self, BackupModel, Credentials, Database};
use crate::gitops::docs::{self, Cluster, ObjectStore};
use crate::gitops::plan;
use crate::gitops::repo::Repo;
use crate::k8s::exec::ExecOutput;
use crate::k8s::{self, Kube};
use crate::output::{Printer, Style, sanitize};
use crate::runbook::live::kube_context;
use crate::store::location::Location;
use crate::store::{S3Keys, Store, StoreOptions};
use crate::verify::{self, ArchiveTest, Bucket, Facts, Identity, Status};
use crate::yaml;

/// How long one command in the pod may take.
const EXEC_TIMEOUT: Duration = Duration::from_mins(1);
/// The WAL segment named in the archive test (barman checks the name's form;
/// `--test` uploads nothing).
const TEST_WAL: &str = "/var/lib/postgresql/data/pgdata/pg_wal/000000010000000000000001";
const DATA_MOUNT: &str = "/var/lib/postgresql/data";
const WAL_MOUNT: &str = "/var/lib/postgresql/wal";
/// The barman-cloud plugin's sidecar container.
const PLUGIN_CONTAINER: &str = "plugin-barman-cloud";

/// Runs `cnpg-ops verify`.
pub async fn run(a: &VerifyArgs, g: &GlobalArgs, p: &Printer) -> Result<u8, Failure> {
    let repo = load_repo(g)?;
    let found = discover::discover(&repo);
    let db = plan::find(&found, &a.env, &a.svc).map_err(|e| Failure::usage(e.to_string(), None))?;
    let context = kube_context(&repo.env(&a.env), a.context.as_deref())?;
    let now = super::now(a.now.as_deref(), super::zone(g)?)?;
    let wal_max_age = parse_duration(&a.wal_max_age)
        .map_err(|e| Failure::usage(format!("--wal-max-age: {e}"), None))?;
    let wal_max_age = chrono::Duration::from_std(wal_max_age)
        .map_err(|e| Failure::usage(format!("--wal-max-age: {e}"), None))?;
    let switch_wait = if a.switch_wal {
        Some(
            parse_duration(&a.switch_wait)
                .map_err(|e| Failure::usage(format!("--switch-wait: {e}"), None))?,
        )
    } else {
        None
    };
    let kube = Kube::connect(&context).await.map_err(Failure::from)?;
    let mut facts = gather(&repo, db, &kube, switch_wait, now).await?;
    facts.wal_max_age = wal_max_age;
    let report = verify::judge(&facts);
    if p.format == OutputFormat::Json {
        p.json(&serde_json::json!({"schema_version": 1, "verify": report}));
    } else {
        p.out(&text(p, &report));
    }
    Ok(if report.failed() { FINDINGS } else { OK })
}

/// Reads everything the checks judge.
async fn gather(
    repo: &Repo,
    db: &Database,
    kube: &Kube,
    switch_wait: Option<Duration>,
    now: DateTime<Utc>,
) -> Result<Facts, Failure> {
    let ns = db.namespace.as_str();
    let selector = format!("cnpg.io/cluster={}", db.cluster);
    let manifest: Option<Cluster> = repo
        .docs_in(&db.folder)
        .find(|d| d.is("postgresql.cnpg.io", "Cluster") && d.name() == db.cluster)
        .and_then(|d| docs::from_value(&d.value).ok());
    let instances = format!("{selector},cnpg.io/podRole=instance");
    // Independent reads: one round trip instead of five.
    let (cluster_obj, pods, pvcs, backups, scheduled) = tokio::try_join!(
        kube.get(k8s::CLUSTER, ns, &db.cluster),
        kube.list(k8s::POD, ns, &instances),
        kube.list(k8s::PVC, ns, &selector),
        kube.list(k8s::BACKUP, ns, ""),
        kube.list(k8s::SCHEDULED_BACKUP, ns, ""),
    )?;
    let of_cluster =
        |v: &Value| v.pointer("/spec/cluster/name") == Some(&Value::String(db.cluster.clone()));
    let backups: Vec<Value> = backups.into_iter().filter(of_cluster).collect();
    let scheduled: Vec<Value> = scheduled.into_iter().filter(of_cluster).collect();
    // The S3 keys the store names, read once for the identity check, the
    // archive test and the bucket.
    let s3 = match db.catalog.as_ref().map(|c| &c.credentials) {
        Some(creds @ Credentials::S3Secret { .. }) => Some(
            kube.s3_keys(&db.namespace, creds)
                .await
                .map_err(|e| e.message),
        ),
        _ => None,
    };
    let identity = identity(repo, db, manifest.as_ref(), kube, s3.as_ref()).await?;
    let (db_name, owner) = manifest.as_ref().map_or_else(
        || ("app".to_owned(), "app".to_owned()),
        |m| {
            let (d, o) = crate::gitops::render::app_names(m);
            let d = d.unwrap_or_else(|| "app".to_owned());
            let o = o.unwrap_or_else(|| d.clone());
            (d, o)
        },
    );
    let vector_declared = declares_vector(repo, db, manifest.as_ref());
    // The primary the operator reports, else the instance labelled primary;
    // never a replica or a Job's pod.
    let current = cluster_obj
        .as_ref()
        .and_then(|c| c.pointer("/status/currentPrimary"))
        .and_then(Value::as_str);
    let primary = pods
        .iter()
        .filter_map(|p| p.pointer("/metadata/name").and_then(Value::as_str))
        .find(|n| Some(*n) == current)
        .or_else(|| {
            pods.iter()
                .find(|p| {
                    p.pointer("/metadata/labels/cnpg.io~1instanceRole")
                        .or_else(|| p.pointer("/metadata/labels/role"))
                        .and_then(Value::as_str)
                        == Some("primary")
                })
                .and_then(|p| p.pointer("/metadata/name").and_then(Value::as_str))
        })
        .map(str::to_owned);
    let mut facts = Facts {
        env: db.env.clone(),
        svc: db.svc.clone(),
        namespace: db.namespace.clone(),
        cluster: db.cluster.clone(),
        context: kube.context.clone(),
        now,
        cluster_obj,
        pods,
        pvcs,
        backups,
        scheduled,
        identity,
        bucket: None,
        disks: None,
        ready_wal: None,
        archive_test: ArchiveTest::NotRun("no instance pod to run it in".to_owned()),
        switch_wal: None,
        switch_wait: None,
        vector_declared,
        vector: None,
        app: (db_name.clone(), owner.clone()),
        app_select: None,
        wal_max_age: chrono::Duration::hours(1),
    };
    let Some(pod) = primary else {
        facts.bucket = bucket(db, s3.as_ref(), now).await;
        return Ok(facts);
    };
    let run = |container: &'static str, argv: Vec<String>, stdin: Option<Vec<u8>>| {
        let pod = pod.clone();
        async move {
            let args: Vec<&str> = argv.iter().map(String::as_str).collect();
            kube.exec(ns, &pod, container, &args, stdin.as_deref(), EXEC_TIMEOUT)
                .await
                .map_err(|e| e.message)
        }
    };
    let has_wal_volume = manifest
        .as_ref()
        .is_some_and(|c| c.spec.rest.contains_key("walStorage"));
    let mut df = vec![
        "df".to_owned(),
        "-P".into(),
        "-B1".into(),
        DATA_MOUNT.into(),
    ];
    if has_wal_volume {
        df.push(WAL_MOUNT.into());
    }
    facts.disks = Some(run("postgres", df, None).await.and_then(|o| {
        if o.exit_code == 0 {
            Ok(verify::parse_df(&o.stdout))
        } else {
            Err(format!("df exited {}: {}", o.exit_code, o.stderr.trim()))
        }
    }));
    let ready =
        "ls /var/lib/postgresql/data/pgdata/pg_wal/archive_status/ | grep -c '\\.ready$' || true";
    facts.ready_wal = Some(run("postgres", sh(ready, &[]), None).await.and_then(|o| {
        o.stdout
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("unexpected output {:?} {}", o.stdout, o.stderr.trim()))
    }));
    facts.archive_test = archive_test(repo, db, manifest.as_ref(), kube, s3.as_ref(), &run).await;
    if let Some(wait) = switch_wait {
        let switched = run("postgres", psql("postgres", "SELECT pg_switch_wal()"), None).await;
        if switched.as_ref().is_ok_and(|o| o.exit_code == 0) {
            let before = archiving_status(facts.cluster_obj.as_ref());
            let (waited, last) = wait_for_archiving(kube, db, wait).await?;
            if last.is_some() {
                facts.cluster_obj = last;
            }
            facts.switch_wait = Some((before, waited));
        }
        facts.switch_wal = Some(switched);
    }
    if vector_declared {
        facts.vector = Some(
            run(
                "postgres",
                psql(
                    &db_name,
                    "SELECT extversion FROM pg_extension WHERE extname = 'vector'",
                ),
                None,
            )
            .await,
        );
    }
    facts.app_select = Some(app_select(db, manifest.as_ref(), kube, &owner, &db_name, &run).await);
    // Last, so a --switch-wal segment can already be in the bucket.
    facts.bucket = bucket(db, s3.as_ref(), now).await;
    Ok(facts)
}

/// The status of a Cluster's ContinuousArchiving condition.
fn archiving_status(cluster: Option<&Value>) -> Option<String> {
    cluster
        .and_then(|c| verify::condition(c, "ContinuousArchiving"))
        .and_then(|x| x["status"].as_str())
        .map(str::to_owned)
}

/// Re-reads the Cluster until ContinuousArchiving is True or `wait` is up;
/// returns how long was waited and the last read.
async fn wait_for_archiving(
    kube: &Kube,
    db: &Database,
    wait: Duration,
) -> Result<(chrono::Duration, Option<Value>), Failure> {
    let started = std::time::Instant::now();
    let mut last = kube.get(k8s::CLUSTER, &db.namespace, &db.cluster).await?;
    let poll = (wait / 20).clamp(Duration::from_millis(100), Duration::from_secs(2));
    while archiving_status(last.as_ref()).as_deref() != Some("True") && started.elapsed() < wait {
        tokio::time::sleep(poll).await;
        last = kube.get(k8s::CLUSTER, &db.namespace, &db.cluster).await?;
    }
    let waited = chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
    Ok((waited, last))
}

/// `sh -c SCRIPT sh ARGS…`: the arguments reach the script as `$1…`.
fn sh(script: &str, args: &[&str]) -> Vec<String> {
    let mut v = vec!["sh".to_owned(), "-c".into(), script.to_owned(), "sh".into()];
    v.extend(args.iter().map(|a| (*a).to_owned()));
    v
}

/// psql as the superuser over the local socket, in `database` (passed
/// through the environment, never read as a conninfo string).
fn psql(database: &str, sql: &str) -> Vec<String> {
    sh(
        "PGDATABASE=\"$1\" && export PGDATABASE && exec psql -X -At -U postgres -c \"$2\"",
        &[database, sql],
    )
}

async fn identity(
    repo: &Repo,
    db: &Database,
    manifest: Option<&Cluster>,
    kube: &Kube,
    s3: Option<&Result<Option<S3Keys>, String>>,
) -> Result<Identity, Failure> {
    let Some(c) = &db.catalog else {
        return Ok(Identity::Other("none".to_owned()));
    };
    match &c.credentials {
        Credentials::GkeWorkloadIdentity => {
            let expected = manifest
                .and_then(|m| m.spec.rest.get("serviceAccountTemplate"))
                .and_then(|t| t.pointer("/metadata/annotations/iam.gke.io~1gcp-service-account"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let sa = kube
                .get(k8s::SERVICE_ACCOUNT, &db.namespace, &db.cluster)
                .await?;
            let annotated = sa.map(|s| {
                s.pointer("/metadata/annotations/iam.gke.io~1gcp-service-account")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            let env = repo.env(&db.env);
            let member = format!("{}/{}", db.namespace, db.cluster);
            let account = expected
                .as_deref()
                .and_then(|e| e.split('@').next())
                .unwrap_or(&env.backup_service_account)
                .to_owned();
            let bound = repo
                .read(std::path::Path::new(&env.service_accounts))
                .ok()
                .and_then(|t| yaml::parse_values(&t).ok())
                .map(|docs| {
                    docs.iter()
                        .filter_map(|d| d["service_accounts"].as_array())
                        .flatten()
                        .filter(|a| a["name"] == account.as_str())
                        .filter_map(|a| a["workload_identity_bindings"].as_array())
                        .flatten()
                        .any(|b| b == member.as_str())
                });
            Ok(Identity::Gke {
                expected,
                annotated,
                bound,
                bindings_file: env.service_accounts.clone(),
            })
        }
        Credentials::S3Secret {
            secret,
            access_key_id_key,
            secret_access_key,
        } => {
            let mut keys = vec![access_key_id_key.clone()];
            if let Some(k) = secret_access_key
                && k.name == *secret
            {
                keys.push(k.key.clone());
            }
            let present = kube
                .get(k8s::SECRET, &db.namespace, secret)
                .await?
                .map(|s| {
                    ["data", "stringData"]
                        .iter()
                        .filter_map(|k| s.get(*k).and_then(Value::as_object))
                        .flat_map(|m| m.keys().cloned())
                        .collect()
                });
            let mut placeholders = Vec::new();
            if let (Some(_), Some(Ok(Some(k)))) = (&present, s3) {
                let values = [&k.access_key_id, &k.secret_access_key];
                for (key, value) in keys.iter().zip(values) {
                    if is_placeholder(value) {
                        placeholders.push(key.clone());
                    }
                }
            }
            Ok(Identity::S3Secret {
                secret: secret.clone(),
                keys,
                present,
                placeholders,
            })
        }
        other => Ok(Identity::Other(other.label())),
    }
}

/// The catalog as the bucket shows it, read with this machine's
/// credentials (or, for S3 keys, those of the Secret the manifest names).
async fn bucket(
    db: &Database,
    s3: Option<&Result<Option<S3Keys>, String>>,
    now: DateTime<Utc>,
) -> Option<Result<Bucket, String>> {
    let c = db.catalog.as_ref()?;
    let display = format!(
        "{}/{}",
        c.destination_path.trim_end_matches('/'),
        c.server_name
    );
    let location = match Location::parse(&c.destination_path, None) {
        Ok(l) => l,
        Err(e) => return Some(Err(e.to_string())),
    };
    let s3_keys = if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        None
    } else {
        s3.and_then(|r| r.as_ref().ok().cloned().flatten())
    };
    let options = StoreOptions {
        endpoint_url: c.endpoint_url.clone(),
        s3_keys,
        ..StoreOptions::default()
    };
    let store = match Store::open(location, options) {
        Ok(s) => s,
        Err(e) => return Some(Err(e.to_string())),
    };
    let input = match store.read_catalog(&c.server_name, &|_| {}).await {
        Ok(i) => i,
        Err(e) => return Some(Err(e.to_string())),
    };
    let catalog = Catalog::analyse(&input, AnalysisOptions::at(now));
    let newest_wal = crate::audit::newest_wal(&catalog);
    let newest_backup = catalog
        .backups
        .iter()
        .filter(|b| b.is_done())
        .filter_map(|b| Some((b.id.clone(), b.end_time?)))
        .max_by_key(|(_, t)| *t);
    let gaps = catalog
        .gaps
        .iter()
        .map(|g| {
            (
                g.first_missing.clone(),
                g.last_missing.clone(),
                g.breaks_recovery,
            )
        })
        .collect();
    Some(Ok(Bucket {
        catalog: display,
        newest_wal,
        newest_backup,
        gaps,
    }))
}

/// Runs the rest of its arguments with the environment (and an endpoint CA
/// bundle) it reads as JSON on stdin, so no secret is on a command line.
/// Python, because the plugin's sidecar image has no shell.
const WITH_ENV: &str = "import json, os, sys, tempfile
c = json.load(sys.stdin)
os.environ.update(c.get('env', {}))
if c.get('ca'):
    f = tempfile.NamedTemporaryFile('w', suffix='.crt', delete=False)
    f.write(c['ca'])
    f.close()
    os.environ['AWS_CA_BUNDLE'] = f.name
os.execvp(sys.argv[1], sys.argv[1:])";

/// `barman-cloud-wal-archive --test` where the archiver runs: the plugin's
/// sidecar, or the postgres container in-tree, with the store's S3 keys
/// and endpoint CA from their Secrets.
async fn archive_test<F, Fut>(
    repo: &Repo,
    db: &Database,
    manifest: Option<&Cluster>,
    kube: &Kube,
    s3: Option<&Result<Option<S3Keys>, String>>,
    run: &F,
) -> ArchiveTest
where
    F: Fn(&'static str, Vec<String>, Option<Vec<u8>>) -> Fut,
    Fut: std::future::Future<Output = Result<ExecOutput, String>>,
{
    let Some(c) = db.catalog.as_ref() else {
        return ArchiveTest::NotRun("the manifests name no store".to_owned());
    };
    let container = if db.backup_model == BackupModel::Plugin {
        PLUGIN_CONTAINER
    } else {
        "postgres"
    };
    let provider = match &c.credentials {
        Credentials::GkeWorkloadIdentity => "google-cloud-storage",
        Credentials::S3Secret { .. } | Credentials::S3IamRole => "aws-s3",
        other => {
            return ArchiveTest::NotRun(format!(
                "credentials `{}` are not reproduced here; read the archiver's log",
                other.label()
            ));
        }
    };
    let mut argv = vec![
        "barman-cloud-wal-archive".to_owned(),
        "--test".into(),
        "--cloud-provider".into(),
        provider.into(),
    ];
    if let Some(e) = &c.endpoint_url {
        argv.push("--endpoint-url".into());
        argv.push(e.clone());
    }
    argv.push(c.destination_path.clone());
    argv.push(c.server_name.clone());
    argv.push(TEST_WAL.into());
    let mut env = serde_json::Map::new();
    match s3 {
        None => {}
        Some(Ok(Some(k))) => {
            env.insert("AWS_ACCESS_KEY_ID".into(), k.access_key_id.clone().into());
            env.insert(
                "AWS_SECRET_ACCESS_KEY".into(),
                k.secret_access_key.clone().into(),
            );
        }
        Some(Ok(None)) => {
            return ArchiveTest::Failed(
                "the Secret with the S3 keys (or one of its keys) is not there".to_owned(),
            );
        }
        Some(Err(e)) => return ArchiveTest::Failed(e.clone()),
    }
    let mut ca = None;
    if let Some((name, key)) = endpoint_ca(repo, db, manifest) {
        match kube.secret_value(&db.namespace, &name, &key).await {
            Ok(Some(v)) => ca = Some(v),
            Ok(None) => {
                return ArchiveTest::Failed(format!(
                    "the endpoint CA {key} of Secret {}/{name} is not there",
                    db.namespace
                ));
            }
            Err(e) => return ArchiveTest::Failed(e.message),
        }
    }
    let result = if env.is_empty() && ca.is_none() {
        run(container, argv, None).await
    } else {
        let mut wrapped = vec!["python3".to_owned(), "-c".into(), WITH_ENV.into()];
        wrapped.extend(argv);
        let stdin = serde_json::json!({"env": env, "ca": ca}).to_string();
        run(container, wrapped, Some(stdin.into_bytes())).await
    };
    match result {
        Ok(o) => ArchiveTest::Ran(o),
        Err(e) => ArchiveTest::Failed(e),
    }
}

/// The Secret and key of the store's `endpointCA`, from the manifests.
fn endpoint_ca(repo: &Repo, db: &Database, manifest: Option<&Cluster>) -> Option<(String, String)> {
    let store = match db.backup_model {
        BackupModel::Plugin => {
            let name = db.catalog.as_ref()?.object_store.clone()?;
            repo.docs_in(&db.folder)
                .chain(repo.docs_of("barmancloud.cnpg.io", "ObjectStore"))
                .filter(|d| d.is("barmancloud.cnpg.io", "ObjectStore") && d.name() == name)
                .find_map(|d| docs::from_value::<ObjectStore>(&d.value).ok())
                .map(|s| s.spec.configuration)?
        }
        _ => manifest?.inline_store()?.clone(),
    };
    let ca = store.rest.get("endpointCA")?;
    Some((
        ca.get("name")?.as_str()?.to_owned(),
        ca.get("key")?.as_str()?.to_owned(),
    ))
}

/// `SELECT 1` as the application owner over TCP with the password of its
/// Secret, passed on stdin.
async fn app_select<F, Fut>(
    db: &Database,
    manifest: Option<&Cluster>,
    kube: &Kube,
    owner: &str,
    database: &str,
    run: &F,
) -> Result<ExecOutput, String>
where
    F: Fn(&'static str, Vec<String>, Option<Vec<u8>>) -> Fut,
    Fut: std::future::Future<Output = Result<ExecOutput, String>>,
{
    let secret = manifest
        .and_then(|m| m.spec.bootstrap.as_ref())
        .and_then(|b| b.initdb.as_ref())
        .and_then(|i| i.pointer("/secret/name"))
        .and_then(Value::as_str)
        .map_or_else(|| format!("{}-app", db.cluster), str::to_owned);
    let password = kube
        .secret_value(&db.namespace, &secret, "password")
        .await
        .map_err(|e| e.message)?
        .ok_or_else(|| format!("Secret {}/{secret} has no password", db.namespace))?;
    // The names go through the environment, never into a conninfo string.
    let script = "IFS= read -r PGPASSWORD && PGUSER=\"$1\" PGDATABASE=\"$2\" && \
                  export PGPASSWORD PGUSER PGDATABASE && exec psql -X -At -h localhost \
                  -c 'SELECT 1'";
    run(
        "postgres",
        sh(script, &[owner, database]),
        Some(format!("{password}\n").into_bytes()),
    )
    .await
}

/// Whether a Secret value is a `<placeholder>` never filled in.
fn is_placeholder(v: &str) -> bool {
    let v = v.trim();
    v.len() > 2 && v.starts_with('<') && v.ends_with('>')
}

/// Whether the repository installs pgvector for the database.
fn declares_vector(repo: &Repo, db: &Database, manifest: Option<&Cluster>) -> bool {
    let by_cr = repo
        .docs_in(&db.folder)
        .filter(|d| d.is("postgresql.cnpg.io", "Database"))
        .any(|d| {
            d.value
                .pointer("/spec/cluster/name")
                .and_then(Value::as_str)
                == Some(&db.cluster)
                && d.value
                    .pointer("/spec/extensions")
                    .and_then(Value::as_array)
                    .is_some_and(|e| e.iter().any(|x| x["name"] == "vector"))
        });
    let by_sql = manifest
        .and_then(|m| m.spec.bootstrap.as_ref())
        .and_then(|b| b.initdb.as_ref())
        .and_then(|i| i.get("postInitApplicationSQL"))
        .and_then(Value::as_array)
        .is_some_and(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .any(crate::lint::cnpg::creates_vector)
        });
    by_cr || by_sql
}

fn text(p: &Printer, r: &verify::Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({} in context `{}`)",
        r.database, r.cluster, r.context
    );
    for c in &r.checks {
        let (mark, style) = match c.status {
            Status::Pass => ("ok  ", Style::Good),
            Status::Fail => ("FAIL", Style::Bad),
            Status::Warn => ("warn", Style::Warn),
            Status::Skip => ("skip", Style::Dim),
        };
        let _ = writeln!(
            out,
            "  {} {:<21} {}",
            p.paint(style, mark),
            c.id,
            sanitize(&c.summary)
        );
        if c.status == Status::Fail
            && let Some(f) = &c.fix
        {
            let _ = writeln!(
                out,
                "       {} {}",
                p.paint(Style::Dim, "fix:"),
                sanitize(f)
            );
        }
    }
    match &r.cause {
        None if r.failed() => {}
        None => {
            let _ = writeln!(out, "{}", p.paint(Style::Good, "every check passed"));
        }
        Some(c) => {
            let _ = writeln!(
                out,
                "{} {} (shown by {}){}",
                p.paint(Style::Bad, "likely cause:"),
                c.link.words(),
                c.check,
                if c.consequences.is_empty() {
                    String::new()
                } else {
                    format!("; it explains {}", c.consequences.join(", "))
                }
            );
            let _ = writeln!(out, "  fix: {}", sanitize(&c.fix));
        }
    }
    out
}
