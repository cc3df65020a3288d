//! `.cnpg-ops.toml`: where things live in the repository and how each
//! environment is reached. Every key is optional; without the file the
//! common layout applies:
//!
//! ```toml
//! [defaults]                      # applies to every env
//! databases = "fluxcd/databases/{env}/{svc}"
//! flux_kustomizations = "fluxcd/clusters/{env}/databases.yaml"
//! flux_kustomization_name = "databases-{svc}"
//! service_accounts = "terraform/gcp/{env}/service-accounts/service-accounts.yaml"
//! buckets = "terraform/gcp/{env}/gcs/buckets.yaml"
//! identity = "gke-workload-identity"  # or "s3-secret"
//! backup_service_account = "cnpg-backup"
//!
//! [env.prod]                      # overrides for one env
//! kube_context = "gke_acme-prod_europe-west1_main"
//! gcp_project = "acme-prod"
//! production = true
//!
//! [env.dev]                       # how a new database is laid out in this env
//! namespace = "{svc}-dev"             # default: the source's, env token swapped
//! backup_destination = "gs://acme-dev-pg-backups/{svc}"
//! instances = 1                       # default: 1 outside production
//! storage_class = "standard-rwo"      # default: the source's
//! memory_limit = "2Gi"                # default: the source's; caps shared_buffers at 25%
//! retention = "7d"                    # default: the source's
//! ```
//!
//! The last group only shapes a database created in the env by cloning one
//! from another env (`gitops::scaffold`); an existing database is never
//! resized by them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name at the repository root.
pub const FILE_NAME: &str = ".cnpg-ops.toml";

/// How the cluster's pods prove who they are to the object store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentityKind {
    /// GKE Workload Identity: the Cluster's service account is bound to a
    /// Google service account (`<namespace>/<cluster>` in the binding list).
    GkeWorkloadIdentity,
    /// An S3 access key in a Kubernetes Secret.
    S3Secret,
    /// Azure credentials in a Secret or from the environment.
    Azure,
}

/// The CNI, for NetworkPolicy checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cni {
    /// Cilium (CiliumNetworkPolicy; needs the service CIDR for API egress).
    Cilium,
    /// Any CNI that enforces plain NetworkPolicy.
    Vanilla,
    /// No policy enforcement.
    None,
}

/// Settings of one environment; every field may be left to the defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSettings {
    /// Database folder template, with `{env}` and `{svc}`.
    pub databases: Option<String>,
    /// File that holds the Flux Kustomizations of the env's databases (where a
    /// new one is added).
    pub flux_kustomizations: Option<String>,
    /// Name of a database's Flux Kustomization, with `{svc}`.
    pub flux_kustomization_name: Option<String>,
    /// Name of the Kustomization every database depends on.
    pub operators_kustomization: Option<String>,
    /// Terraform YAML with the env's Google service accounts.
    pub service_accounts: Option<String>,
    /// Terraform YAML with the env's buckets.
    pub buckets: Option<String>,
    /// Identity kind.
    pub identity: Option<IdentityKind>,
    /// Google service account (name, without the domain) the database pods act as.
    pub backup_service_account: Option<String>,
    /// Google project of the env.
    pub gcp_project: Option<String>,
    /// kubectl context of the env's cluster.
    pub kube_context: Option<String>,
    /// Endpoint of the S3-compatible store, when the manifests do not say.
    pub endpoint_url: Option<String>,
    /// Whether the env serves production (stricter lint rules).
    pub production: Option<bool>,
    /// CNI of the env's cluster.
    pub cni: Option<Cni>,
    /// Service CIDR of the env's cluster (Cilium policies need it).
    pub service_cidr: Option<String>,
    /// Branch new work starts from (default: origin's default branch).
    pub base_branch: Option<String>,
    /// Namespace of a new database in the env, with `{svc}` and `{env}`
    /// (default: the source's namespace with the source env's name swapped
    /// for this env's when it holds it as a `-`-separated token, else
    /// `{svc}-{env}`).
    pub namespace: Option<String>,
    /// `destinationPath` a new database archives to, with `{svc}` and
    /// `{env}`, e.g. `gs://acme-dev-pg-backups/{svc}` (default: inferred from
    /// another database of the env: its path with its service swapped for
    /// `{svc}`, i.e. the same bucket and `/{svc}`, or the bucket root when it
    /// archives at the root).
    pub backup_destination: Option<String>,
    /// Instances of a new database (default: 1 in non-production envs, else
    /// the source's).
    pub instances: Option<u32>,
    /// StorageClass of a new database's volumes (default: the source's).
    pub storage_class: Option<String>,
    /// Memory limit of a new database, a Kubernetes quantity such as `2Gi`
    /// (default: the source's); shared_buffers is lowered to at most 25% of it.
    pub memory_limit: Option<String>,
    /// Retention policy of a new database's own archive, e.g. `7d` (default:
    /// the source's).
    pub retention: Option<String>,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Settings for every env.
    #[serde(default)]
    pub defaults: EnvSettings,
    /// Per-env overrides.
    #[serde(default)]
    pub env: BTreeMap<String, EnvSettings>,
}

/// The settings of one env with every default filled in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Env {
    /// Env name.
    pub name: String,
    /// Database folder template with `{env}` filled in.
    pub databases: String,
    /// Flux Kustomizations file.
    pub flux_kustomizations: String,
    /// Flux Kustomization name template (`{svc}`).
    pub flux_kustomization_name: String,
    /// Kustomization every database depends on.
    pub operators_kustomization: String,
    /// Service-accounts YAML.
    pub service_accounts: String,
    /// Buckets YAML.
    pub buckets: String,
    /// Identity kind.
    pub identity: IdentityKind,
    /// Google service account name.
    pub backup_service_account: String,
    /// Google project.
    pub gcp_project: Option<String>,
    /// kubectl context.
    pub kube_context: Option<String>,
    /// S3 endpoint.
    pub endpoint_url: Option<String>,
    /// Production env.
    pub production: bool,
    /// CNI.
    pub cni: Cni,
    /// Service CIDR.
    pub service_cidr: Option<String>,
    /// Base branch.
    pub base_branch: Option<String>,
    /// Namespace template for a new database, `{env}` filled in (None: derived
    /// from the source's namespace).
    pub namespace: Option<String>,
    /// `destinationPath` template for a new database's archive, `{env}`
    /// filled in (None: inferred from another database of the env).
    pub backup_destination: Option<String>,
    /// Instances of a new database (None: 1 outside production, else the
    /// source's; see [`Env::new_instances`]).
    pub instances: Option<u32>,
    /// StorageClass of a new database (None: the source's).
    pub storage_class: Option<String>,
    /// Memory limit of a new database (None: the source's).
    pub memory_limit: Option<String>,
    /// Retention of a new database's archive (None: the source's).
    pub retention: Option<String>,
}

/// A bad `.cnpg-ops.toml`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML or unknown keys.
    #[error("{path}: {message}\nhint: the keys are documented in docs/repo-layout.md")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A value that does not read as what its key needs.
    #[error("{path}: `{key}` = {value:?} is not {expected}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A template without the placeholder it needs.
    #[error("{path}: `{key}` = {value:?} must contain {placeholder}")]
    Template {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// Its value.
        value: String,
        /// The missing placeholder.
        placeholder: &'static str,
    },
}

impl Config {
    /// Reads `.cnpg-ops.toml` under `root`; the defaults when it is absent.
    pub fn load(root: &Path) -> Result<Self, ConfigError> {
        let path = root.join(FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    /// Parses the file's text; `path` is for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        for settings in std::iter::once(&config.defaults).chain(config.env.values()) {
            if let Some(t) = &settings.databases {
                for placeholder in ["{env}", "{svc}"] {
                    if !t.contains(placeholder) {
                        return Err(ConfigError::Template {
                            path: path.to_owned(),
                            key: "databases",
                            value: t.clone(),
                            placeholder,
                        });
                    }
                }
            }
            settings.check_values(path)?;
            if let Some(t) = &settings.flux_kustomization_name
                && !t.contains("{svc}")
            {
                return Err(ConfigError::Template {
                    path: path.to_owned(),
                    key: "flux_kustomization_name",
                    value: t.clone(),
                    placeholder: "{svc}",
                });
            }
        }
        Ok(config)
    }

    /// The env's settings with defaults applied.
    #[must_use]
    pub fn env(&self, name: &str) -> Env {
        let o = self.env.get(name).cloned().unwrap_or_default();
        let d = &self.defaults;
        let pick = |a: &Option<String>, b: &Option<String>, default: &str| {
            a.clone()
                .or_else(|| b.clone())
                .unwrap_or_else(|| default.to_owned())
        };
        let fill = |t: String| t.replace("{env}", name);
        Env {
            name: name.to_owned(),
            databases: fill(pick(
                &o.databases,
                &d.databases,
                "fluxcd/databases/{env}/{svc}",
            )),
            flux_kustomizations: fill(pick(
                &o.flux_kustomizations,
                &d.flux_kustomizations,
                "fluxcd/clusters/{env}/databases.yaml",
            )),
            flux_kustomization_name: pick(
                &o.flux_kustomization_name,
                &d.flux_kustomization_name,
                "databases-{svc}",
            ),
            operators_kustomization: pick(
                &o.operators_kustomization,
                &d.operators_kustomization,
                "database-operators",
            ),
            service_accounts: fill(pick(
                &o.service_accounts,
                &d.service_accounts,
                "terraform/gcp/{env}/service-accounts/service-accounts.yaml",
            )),
            buckets: fill(pick(
                &o.buckets,
                &d.buckets,
                "terraform/gcp/{env}/gcs/buckets.yaml",
            )),
            identity: o
                .identity
                .or(d.identity)
                .unwrap_or(IdentityKind::GkeWorkloadIdentity),
            backup_service_account: pick(
                &o.backup_service_account,
                &d.backup_service_account,
                "cnpg-backup",
            ),
            gcp_project: o.gcp_project.or_else(|| d.gcp_project.clone()),
            kube_context: o.kube_context.or_else(|| d.kube_context.clone()),
            endpoint_url: o.endpoint_url.or_else(|| d.endpoint_url.clone()),
            production: o
                .production
                .or(d.production)
                .unwrap_or(name == "prod" || name == "production"),
            cni: o.cni.or(d.cni).unwrap_or(Cni::None),
            service_cidr: o.service_cidr.or_else(|| d.service_cidr.clone()),
            base_branch: o.base_branch.or_else(|| d.base_branch.clone()),
            namespace: o.namespace.or_else(|| d.namespace.clone()).map(fill),
            backup_destination: o
                .backup_destination
                .or_else(|| d.backup_destination.clone())
                .map(fill),
            instances: o.instances.or(d.instances),
            storage_class: o.storage_class.or_else(|| d.storage_class.clone()),
            memory_limit: o.memory_limit.or_else(|| d.memory_limit.clone()),
            retention: o.retention.or_else(|| d.retention.clone()),
        }
    }

    /// The database folder templates in use: the default and every override,
    /// each with the env it is limited to (None = any env).
    #[must_use]
    pub fn database_templates(&self) -> Vec<(Option<String>, String)> {
        let default = self
            .defaults
            .databases
            .clone()
            .unwrap_or_else(|| "fluxcd/databases/{env}/{svc}".to_owned());
        let mut out = vec![(None, default)];
        for (name, s) in &self.env {
            if let Some(t) = &s.databases {
                out.push((Some(name.clone()), t.clone()));
            }
        }
        out
    }
}

impl EnvSettings {
    /// Checks the keys whose values have a fixed form.
    fn check_values(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |key: &'static str, value: String, expected: &'static str| ConfigError::Value {
            path: path.to_owned(),
            key,
            value,
            expected,
        };
        if let Some(r) = &self.retention
            && !is_retention(r)
        {
            return Err(bad(
                "retention",
                r.clone(),
                "a retention policy such as \"7d\", \"4w\" or \"1m\" (^[1-9][0-9]*[dwm]$)",
            ));
        }
        if let Some(m) = &self.memory_limit
            && !crate::lint::platform::parse_quantity(m).is_some_and(|b| b >= 1.0)
        {
            return Err(bad(
                "memory_limit",
                m.clone(),
                "a Kubernetes quantity such as \"2Gi\" or \"512Mi\"",
            ));
        }
        if self.instances == Some(0) {
            return Err(bad("instances", "0".into(), "at least 1"));
        }
        if let Some(t) = &self.backup_destination
            && !t.contains("://")
        {
            return Err(bad(
                "backup_destination",
                t.clone(),
                "an object store URL such as \"gs://bucket/{svc}\" or \"s3://bucket/\"",
            ));
        }
        if let Some(t) = &self.namespace {
            let sample = t.replace("{svc}", "svc").replace("{env}", "env");
            if !is_dns_label(&sample) {
                return Err(bad(
                    "namespace",
                    t.clone(),
                    "a namespace template such as \"{svc}-{env}\" (lower-case letters, digits and `-`)",
                ));
            }
        }
        Ok(())
    }
}

/// Whether `s` is a retention policy CloudNativePG accepts (`^[1-9][0-9]*[dwm]$`).
#[must_use]
pub fn is_retention(s: &str) -> bool {
    let Some(n) = s.strip_suffix(['d', 'w', 'm']) else {
        return false;
    };
    n.starts_with(|c: char| matches!(c, '1'..='9')) && n.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `s` is an RFC 1123 label, the form of a namespace name.
#[must_use]
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl Env {
    /// Instances of a new database cloned from one with `source` instances:
    /// the env's `instances`, else 1 outside production, else the source's.
    #[must_use]
    pub fn new_instances(&self, source: Option<u32>) -> Option<u32> {
        self.instances
            .or(if self.production { source } else { Some(1) })
    }

    /// Whether `other` is applied to the same Kubernetes cluster: the same
    /// env, or one with the same `kube_context`.
    #[must_use]
    pub fn same_cluster(&self, other: &Env) -> bool {
        self.name == other.name
            || (self.kube_context.is_some() && self.kube_context == other.kube_context)
    }

    /// The folder of `svc` in this env, relative to the repository root.
    #[must_use]
    pub fn database_folder(&self, svc: &str) -> PathBuf {
        PathBuf::from(self.databases.replace("{svc}", svc))
    }

    /// The Flux Kustomization name of `svc`.
    #[must_use]
    pub fn flux_name(&self, svc: &str) -> String {
        self.flux_kustomization_name.replace("{svc}", svc)
    }

    /// `<account>@<project>.iam.gserviceaccount.com`, when the project is known.
    #[must_use]
    pub fn backup_service_account_email(&self) -> Option<String> {
        self.gcp_project.as_ref().map(|p| {
            format!(
                "{}@{p}.iam.gserviceaccount.com",
                self.backup_service_account
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_a_file() {
        let c = Config::default();
        let prod = c.env("prod");
        assert_eq!(
            prod.database_folder("foo"),
            PathBuf::from("fluxcd/databases/prod/foo")
        );
        assert_eq!(prod.flux_name("foo"), "databases-foo");
        assert!(prod.production);
        assert!(!c.env("dev").production);
        assert_eq!(
            prod.service_accounts,
            "terraform/gcp/prod/service-accounts/service-accounts.yaml"
        );
        assert_eq!(prod.identity, IdentityKind::GkeWorkloadIdentity);
    }

    #[test]
    fn env_overrides_win_over_defaults() {
        let c = Config::parse(
            "[defaults]\nidentity = \"s3-secret\"\nendpoint_url = \"https://minio.lan\"\n\
             databases = \"k8s/{env}/db/{svc}\"\n[env.staging]\nendpoint_url = \"https://s3.staging\"\n\
             production = true\n",
            Path::new(FILE_NAME),
        )
        .unwrap();
        let s = c.env("staging");
        assert_eq!(s.endpoint_url.as_deref(), Some("https://s3.staging"));
        assert_eq!(s.identity, IdentityKind::S3Secret);
        assert!(s.production);
        assert_eq!(s.database_folder("x"), PathBuf::from("k8s/staging/db/x"));
        assert_eq!(
            c.env("dev").endpoint_url.as_deref(),
            Some("https://minio.lan")
        );
    }

    #[test]
    fn new_database_keys_have_defaults_and_env_overrides() {
        let c = Config::parse(
            "[defaults]\nnamespace = \"{svc}-{env}\"\nretention = \"14d\"\n\
             [env.dev]\nbackup_destination = \"gs://acme-{env}-pg/{svc}\"\ninstances = 2\n\
             storage_class = \"standard-rwo\"\nmemory_limit = \"2Gi\"\nretention = \"7d\"\n",
            Path::new(FILE_NAME),
        )
        .unwrap();
        let dev = c.env("dev");
        assert_eq!(dev.namespace.as_deref(), Some("{svc}-dev"));
        assert_eq!(
            dev.backup_destination.as_deref(),
            Some("gs://acme-dev-pg/{svc}")
        );
        assert_eq!(dev.retention.as_deref(), Some("7d"));
        assert_eq!(dev.storage_class.as_deref(), Some("standard-rwo"));
        assert_eq!(dev.memory_limit.as_deref(), Some("2Gi"));
        assert_eq!(dev.new_instances(Some(3)), Some(2));
        let staging = c.env("staging");
        assert_eq!(staging.retention.as_deref(), Some("14d"));
        assert_eq!(staging.backup_destination, None);
        assert_eq!(staging.new_instances(Some(3)), Some(1));
        assert_eq!(c.env("prod").new_instances(Some(3)), Some(3));
        assert_eq!(Config::default().env("dev").memory_limit, None);
    }

    #[test]
    fn new_database_keys_are_checked() {
        for (text, key) in [
            ("retention = \"7days\"", "retention"),
            ("retention = \"0d\"", "retention"),
            ("memory_limit = \"lots\"", "memory_limit"),
            ("instances = 0", "instances"),
            ("backup_destination = \"acme-dev\"", "backup_destination"),
            ("namespace = \"Foo_{env}\"", "namespace"),
        ] {
            let e =
                Config::parse(&format!("[env.dev]\n{text}\n"), Path::new(FILE_NAME)).unwrap_err();
            assert!(e.to_string().contains(&format!("`{key}`")), "{text}: {e}");
        }
    }

    #[test]
    fn bad_files_say_where_and_what() {
        let e = Config::parse("[defaults]\nidentiti = \"x\"\n", Path::new(FILE_NAME)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("identiti") && msg.contains("line 2"), "{msg}");
        let e = Config::parse(
            "[defaults]\ndatabases = \"dbs/{svc}\"\n",
            Path::new(FILE_NAME),
        )
        .unwrap_err();
        assert!(e.to_string().contains("{env}"), "{e}");
        let e =
            Config::parse("[env.prod]\nidentity = \"iam\"\n", Path::new(FILE_NAME)).unwrap_err();
        assert!(e.to_string().contains("gke-workload-identity"), "{e}");
    }
}
