//! Command-line types (clap derive). Doc comments are the help text.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Exit codes, also printed in `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success (for `catalog check`: the target is recoverable)
  1  findings: the check ran and found a problem (target not recoverable, error-level findings,
     lint errors)
  2  usage or bad input (unknown flag, malformed time, no catalog at the path, unreadable
     repository or .cnpg-ops.toml)
  3  object store unreachable or access denied (no such bucket, 403, 401, DNS, TLS, timeout)
  130 interrupted";

/// Runbooks and catalog audits for CloudNativePG clusters backed up with barman-cloud.
#[derive(Debug, Parser)]
#[command(name = "cnpg-ops", version, after_long_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Output format: text for people, json for programs (a documented, stable schema).
    #[arg(short, long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// When to use colours (also honours NO_COLOR).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Zone for times written without an offset: UTC, an offset such as +02:00, or an IANA name.
    #[arg(long, global = true, default_value = "UTC", env = "CNPG_OPS_TZ")]
    pub tz: String,
    /// More detail on stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The GitOps repository (default: the enclosing repository of the current directory).
    #[arg(long, global = true, env = "CNPG_OPS_REPO", value_name = "PATH")]
    pub repo: Option<std::path::PathBuf>,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Text for people.
    Text,
    /// JSON for programs.
    Json,
}

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and NO_COLOR is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read a barman-cloud catalog straight from the object store.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Every database in the GitOps repository and where its backups live.
    Ls(LsArgs),
    /// Check the GitOps repository for the known CloudNativePG footguns: exit 1 when an
    /// error-level rule fires.
    Lint(LintArgs),
    /// Point-in-time restore: prove the target in the catalog, then commit a recovery
    /// Cluster beside the original on a new branch.
    Pitr(PitrArgs),
    /// Clone a database into another env: prove the source catalog, then commit the clone's
    /// folder, bootstrapped by recovery from it, on a new branch.
    Clone(CloneArgs),
    /// Audit every database's backups: archive freshness, backup age, gaps, anchors against
    /// retention and bucket lifecycle, orphan and nested prefixes. Exit 1 when an error-level
    /// finding fires.
    Audit(AuditArgs),
    /// Take a manual backup: a Backup with the method the live Cluster uses; with --wait,
    /// wait for it and confirm it is DONE with its WAL in the catalog.
    Backup(BackupArgs),
    /// Refresh a clone: prove the source target, back the clone up, suspend Flux, delete the
    /// Cluster, commit its recovery manifest with a new write generation, resume Flux and
    /// wait until it is healthy and archiving.
    Reclone(RecloneArgs),
    /// The runbooks cnpg-ops drives, step by step, with the manual command for each step.
    #[command(subcommand)]
    Playbook(PlaybookCommand),
    /// Provision a new database folder (Cluster, ObjectStore, ScheduledBackup, pgvector,
    /// Flux, identity, NetworkPolicies) that lints clean, as a commit on a new branch.
    New(NewArgs),
    /// Verify a live database end to end: Cluster phase and ContinuousArchiving, instances,
    /// volumes, backups, the bucket, an archive test and a login from inside the primary.
    /// Each failure names the likely cause along identity → bucket → archiving → WAL on
    /// the PVC → CrashLoop. Exit 1 when a check fails.
    Verify(VerifyArgs),
}

/// `cnpg-ops verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Env of the database.
    #[arg(long)]
    pub env: String,
    /// Service.
    #[arg(long)]
    pub svc: String,
    /// The kubeconfig context (default: the env's kube_context; `in-cluster` for the pod's
    /// service account).
    #[arg(long, value_name = "CONTEXT")]
    pub context: Option<String>,
    /// Run pg_switch_wal() in the primary, so a sticky ContinuousArchiving condition is
    /// re-evaluated (the only change verify makes).
    #[arg(long)]
    pub switch_wal: bool,
    /// With --switch-wal: how long to wait for ContinuousArchiving to turn True.
    #[arg(
        long,
        default_value = "60s",
        value_name = "DURATION",
        requires = "switch_wal"
    )]
    pub switch_wait: String,
    /// The newest archived WAL may be at most this old (30m, 2h, 1d).
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub wal_max_age: String,
    /// The time to judge ages against (default: now).
    #[arg(long, value_name = "TIME", hide_short_help = true)]
    pub now: Option<String>,
}

/// `cnpg-ops new`
#[derive(Debug, Args)]
pub struct NewArgs {
    /// Env of the new database.
    #[arg(long)]
    pub env: String,
    /// Service: names the folder, the namespace and the Cluster.
    #[arg(long)]
    pub svc: String,
    /// Copy this database of the env (its folder, every name swapped) instead of
    /// following the env's conventions.
    #[arg(long, value_name = "SVC")]
    pub from: Option<String>,
    /// Install pgvector in the application database (a Database CR and
    /// postInitApplicationSQL).
    #[arg(long)]
    pub vector: bool,
    /// Render a default deny and the NetworkPolicies CloudNativePG needs, of the kind this
    /// CNI enforces (default: what the env's databases do, with the env's cni).
    #[arg(long, value_enum, value_name = "CNI")]
    pub cni: Option<CniArg>,
    /// Namespace of the application's pods, the only one allowed to reach 5432 (default:
    /// any namespace).
    #[arg(long, value_name = "NS")]
    pub app_namespace: Option<String>,
    /// Delivery flags.
    #[command(flatten)]
    pub write: WriteArgs,
}

/// `--cni`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CniArg {
    /// CiliumNetworkPolicy.
    Cilium,
    /// networking.k8s.io/v1 NetworkPolicy.
    Vanilla,
    /// No policies.
    None,
}

/// `cnpg-ops playbook …`
#[derive(Debug, Subcommand)]
pub enum PlaybookCommand {
    /// Every runbook, one line each.
    List,
    /// One runbook's steps: action, destructive or not, timeout, and the manual command.
    Show {
        /// backup, pitr, clone, reclone or audit.
        name: String,
    },
}

/// Flags of every runbook.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Plan every step and run only the ones that read; print what would change; change
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Confirm destructive steps without asking.
    #[arg(long)]
    pub yes: bool,
    /// Start over instead of resuming an interrupted run of the same command.
    #[arg(long)]
    pub restart: bool,
    /// Endpoint of an S3-compatible store, when the manifests do not name one.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Parallel requests to the object store.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// The time to judge "now" against (default: now).
    #[arg(long, value_name = "TIME", hide_short_help = true)]
    pub now: Option<String>,
}

/// `cnpg-ops reclone`
#[derive(Debug, Args)]
pub struct RecloneArgs {
    /// Env of the clone to refresh.
    #[arg(value_name = "DST_ENV")]
    pub dst_env: String,
    /// Service.
    #[arg(long)]
    pub svc: String,
    /// Env the clone comes from (default: the one whose catalog its recovery source reads).
    #[arg(long, value_name = "SRC_ENV")]
    pub from: Option<String>,
    /// The target in the source catalog: a time, an LSN, xid:N, name:NAME, or latest.
    #[arg(
        long,
        default_value = "latest",
        value_name = "TIME|LSN|xid:N|name:NAME|latest"
    )]
    pub to: String,
    /// recovery_target_timeline: latest or a timeline number.
    #[arg(long, default_value = "latest", value_name = "N|latest")]
    pub timeline: String,
    /// Do not back the clone up before deleting it.
    #[arg(long)]
    pub skip_backup: bool,
    /// How long each wait may take: the last backup, the deletion, the recreated clone's
    /// health (default: the playbook's 2h, 15m and 2h).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// The kubeconfig context of the clone's cluster (default: the env's kube_context).
    #[arg(long, value_name = "CONTEXT")]
    pub context: Option<String>,
    /// How often to look at the cluster.
    #[arg(
        long,
        default_value = "2s",
        value_name = "DURATION",
        hide_short_help = true
    )]
    pub poll: String,
    /// Runbook flags.
    #[command(flatten)]
    pub run: RunArgs,
    /// Delivery flags.
    #[command(flatten)]
    pub write: WriteArgs,
}

/// `cnpg-ops backup`
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Env of the database (default: from the current directory).
    #[arg(long)]
    pub env: Option<String>,
    /// Service (default: from the current directory).
    #[arg(long)]
    pub svc: Option<String>,
    /// The kubeconfig context (default: the env's kube_context in .cnpg-ops.toml;
    /// `in-cluster` for the pod's service account).
    #[arg(long, value_name = "CONTEXT")]
    pub context: Option<String>,
    /// Wait for the Backup to complete, then confirm it in the catalog.
    #[arg(long)]
    pub wait: bool,
    /// How long to wait for the Backup (30m, 2h).
    #[arg(long, default_value = "2h", value_name = "DURATION")]
    pub timeout: String,
    /// How often to look at the Backup and the catalog.
    #[arg(
        long,
        default_value = "2s",
        value_name = "DURATION",
        hide_short_help = true
    )]
    pub poll: String,
    /// Runbook flags.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `cnpg-ops pitr`
#[derive(Debug, Args)]
pub struct PitrArgs {
    /// The target: a time (RFC 3339, or YYYY-MM-DD[ T]HH:MM[:SS] read in --tz), an LSN such
    /// as 0/3000028, a transaction (xid:7421), a restore point (name:before-migration), or
    /// latest.
    #[arg(long, value_name = "TIME|LSN|xid:N|name:NAME|latest")]
    pub to: String,
    /// recovery_target_timeline: latest or a timeline number.
    #[arg(long, default_value = "latest", value_name = "N|latest")]
    pub timeline: String,
    /// Env of the database (default: from the current directory).
    #[arg(long)]
    pub env: Option<String>,
    /// Service (default: from the current directory).
    #[arg(long)]
    pub svc: Option<String>,
    /// Name of the restored Cluster (default: <cluster>-pitr-<target>).
    #[arg(long, value_name = "NAME", conflicts_with = "in_place")]
    pub into: Option<String>,
    /// Restore the database itself: back it up, suspend Flux, delete its Cluster and
    /// recreate it from its own catalog at the target under a new write generation.
    #[arg(long)]
    pub in_place: bool,
    /// With --in-place: do not back the database up before deleting it.
    #[arg(long, requires = "in_place")]
    pub skip_backup: bool,
    /// With --in-place: the kubeconfig context (default: the env's kube_context).
    #[arg(long, value_name = "CONTEXT", requires = "in_place")]
    pub context: Option<String>,
    /// With --in-place: how long each wait may take.
    #[arg(long, value_name = "DURATION", requires = "in_place")]
    pub timeout: Option<String>,
    /// With --in-place: how often to look at the cluster.
    #[arg(
        long,
        default_value = "2s",
        value_name = "DURATION",
        hide_short_help = true
    )]
    pub poll: String,
    /// Runbook flags.
    #[command(flatten)]
    pub run: RunArgs,
    /// Delivery flags.
    #[command(flatten)]
    pub write: WriteArgs,
}

/// `cnpg-ops clone`
#[derive(Debug, Args)]
pub struct CloneArgs {
    /// Env to clone from.
    #[arg(value_name = "SRC_ENV")]
    pub src_env: String,
    /// Env to clone into.
    #[arg(value_name = "DST_ENV")]
    pub dst_env: String,
    /// Service.
    #[arg(long)]
    pub svc: String,
    /// The target in the source catalog: a time, an LSN, xid:N, name:NAME, or latest.
    #[arg(
        long,
        default_value = "latest",
        value_name = "TIME|LSN|xid:N|name:NAME|latest"
    )]
    pub to: String,
    /// recovery_target_timeline: latest or a timeline number.
    #[arg(long, default_value = "latest", value_name = "N|latest")]
    pub timeline: String,
    /// When the source catalog cannot be read, bootstrap the clone with an empty initdb
    /// instead (said loudly; the clone then holds no data).
    #[arg(long)]
    pub fallback_initdb: bool,
    /// Runbook flags.
    #[command(flatten)]
    pub run: RunArgs,
    /// Delivery flags.
    #[command(flatten)]
    pub write: WriteArgs,
}

/// `cnpg-ops lint`
#[derive(Debug, Args)]
pub struct LintArgs {
    /// The repository, or a folder inside it to limit the findings to (default: the
    /// current directory's repository).
    #[arg(value_name = "PATH")]
    pub path: Option<std::path::PathBuf>,
    /// Exit 1 on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Print the rules and exit.
    #[arg(long)]
    pub list_rules: bool,
    /// Make the mechanical fixes (a missing Workload Identity binding, a 5-field schedule, a
    /// backup method that does not match the Cluster) and deliver them as --mode says.
    #[arg(long)]
    pub fix: bool,
    /// How changes are delivered.
    #[command(flatten)]
    pub write: WriteArgs,
}

/// How a command that changes the repository delivers its change.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// write: commit on a new branch (your checkout is not touched); check: exit 1 when the
    /// repository differs from what would be written; dry-run: print the diff, change nothing.
    #[arg(long, value_enum, value_name = "MODE")]
    pub mode: Option<WriteMode>,
    /// Push the new branch to origin (write mode only).
    #[arg(long)]
    pub push: bool,
    /// Name of the new branch (default: derived from the change and the time).
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// Start the branch from this ref (default: origin's default branch, else HEAD).
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,
}

/// Delivery mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WriteMode {
    /// Commit on a new branch.
    Write,
    /// Exit 1 when the repository differs from what would be written.
    Check,
    /// Print the diff and change nothing.
    DryRun,
}

/// `cnpg-ops audit`
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this env.
    #[arg(long)]
    pub env: Option<String>,
    /// Only this service.
    #[arg(long)]
    pub svc: Option<String>,
    /// Print the metrics in the Prometheus text format instead of the report (pipe them to a
    /// Pushgateway).
    #[arg(long)]
    pub prometheus: bool,
    /// Also write the metrics in the Prometheus text format to PATH, atomically, for
    /// node-exporter's textfile collector (a name ending in .prom).
    #[arg(long, value_name = "PATH")]
    pub textfile: Option<std::path::PathBuf>,
    /// The newest archived WAL may be at most this old (30m, 2h, 1d).
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub wal_max_age: String,
    /// The newest DONE backup may be at most the schedule interval times this old.
    #[arg(long, default_value_t = 1.5, value_name = "FACTOR")]
    pub backup_grace: f64,
    /// Do not read bucket configuration (lifecycle, versioning, locks).
    #[arg(long)]
    pub skip_bucket_config: bool,
    /// Do not read the Clusters' live state from Kubernetes.
    #[arg(long)]
    pub no_live: bool,
    /// The kubeconfig context to read the live state from, for every env (default: each env's
    /// kube_context in .cnpg-ops.toml; `in-cluster` for the pod's service account).
    #[arg(long, value_name = "CONTEXT")]
    pub context: Option<String>,
    /// Exit 1 on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Endpoint of an S3-compatible store, when the manifests and .cnpg-ops.toml name none.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Parallel requests to the object store, per catalog.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Catalogs read at the same time.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// The time to judge ages against (default: now).
    #[arg(long, value_name = "TIME", hide_short_help = true)]
    pub now: Option<String>,
}

/// `cnpg-ops ls`
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only this env.
    #[arg(long)]
    pub env: Option<String>,
    /// Only this service.
    #[arg(long)]
    pub svc: Option<String>,
}

/// `cnpg-ops catalog …`
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Backups, timelines, WAL runs and gaps, recovery windows and findings.
    Show(ShowArgs),
    /// Whether a restore target is reachable: exit 0 if it is, 1 if not, with the reasons
    /// and the nearest recoverable targets.
    Check(CheckArgs),
    /// What the next retention run deletes, and where the first recoverable point moves.
    Retention(RetentionArgs),
    /// What one archived WAL segment holds: commits and aborts with their times and xids,
    /// restore points, and where its valid WAL ends.
    Wal(WalArgs),
}

/// `catalog wal`
#[derive(Debug, Args)]
pub struct WalArgs {
    /// Where the catalog is.
    #[command(flatten)]
    pub catalog: CatalogArgs,
    /// The segment, such as 000000010000000000000003.
    #[arg(long, value_name = "NAME")]
    pub segment: String,
}

/// Where the catalog is and how to reach it.
#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// The destinationPath: s3://BUCKET/PATH, gs://BUCKET/PATH,
    /// https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH, az://CONTAINER/PATH, or
    /// file:///DIR for a local mirror of a bucket.
    #[arg(value_name = "DEST")]
    pub dest: String,
    /// Server folder under DEST (CloudNativePG: the serverName, else the cluster name).
    /// Optional when exactly one server lives under DEST.
    #[arg(long)]
    pub server_name: Option<String>,
    /// Endpoint of an S3-compatible store (MinIO, Ceph, R2, B2) or an emulator.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Provider for URLs that do not name one (the Azure emulator form http://HOST:PORT/ACCOUNT/CONTAINER).
    #[arg(long, value_parser = ["aws-s3", "google-cloud-storage", "azure-blob-storage"])]
    pub cloud_provider: Option<String>,
    /// WAL segment size in bytes, when no backup.info says (default 16 MiB).
    #[arg(long, value_name = "BYTES")]
    pub wal_segment_size: Option<u64>,
    /// Parallel requests to the object store.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// How to list the WAL prefix.
    #[arg(long, default_value = "auto", value_parser = ["auto", "ranges", "dirs", "sequential"], hide_short_help = true)]
    pub list_strategy: String,
    /// The time to judge ages against (default: now).
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Judge from the catalog alone, without reading WAL segments: time verdicts are then
    /// approximate (from upload times), and xid and name targets cannot be placed.
    #[arg(long)]
    pub no_wal: bool,
    /// Most WAL segments one search reads before it says it gave up.
    #[arg(long, default_value_t = 64, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), hide_short_help = true)]
    pub wal_scan_limit: u32,
    /// S3 keys read from the Secret a manifest names (runbooks only; never a flag).
    #[arg(skip)]
    pub s3_keys: Option<crate::store::S3Keys>,
}

/// `catalog show`
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Where the catalog is.
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

/// `catalog check`
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Where the catalog is.
    #[command(flatten)]
    pub catalog: CatalogArgs,
    /// The target: a time (RFC 3339, or YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]] read in --tz), an
    /// LSN such as 0/3000028, a transaction (xid:7421), a restore point
    /// (name:before-migration), or latest. Times, xids and names are judged by reading the
    /// archived WAL.
    #[arg(long, value_name = "TIME|LSN|xid:N|name:NAME|latest")]
    pub to: String,
    /// recovery_target_timeline: latest (PostgreSQL's default) or a timeline number.
    #[arg(long, default_value = "latest", value_name = "N|latest")]
    pub timeline: String,
}

/// `catalog retention`
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// Where the catalog is.
    #[command(flatten)]
    pub catalog: CatalogArgs,
    /// Retention policy: CloudNativePG's form (7d, 4w, 1m; m is 31 days) or barman's
    /// (RECOVERY WINDOW OF 7 DAYS, REDUNDANCY 3).
    #[arg(long)]
    pub policy: String,
    /// barman's --minimum-redundancy (CloudNativePG passes none).
    #[arg(long, default_value_t = 0)]
    pub minimum_redundancy: u32,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
