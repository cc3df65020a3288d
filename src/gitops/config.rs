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
//! ```

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
            if let Some(t) = &settings.flux_kustomization_name {
                if !t.contains("{svc}") {
                    return Err(ConfigError::Template {
                        path: path.to_owned(),
                        key: "flux_kustomization_name",
                        value: t.clone(),
                        placeholder: "{svc}",
                    });
                }
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

impl Env {
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
