//! `cnpg-ops catalog show|check|retention`.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::catalog::analysis::{AnalysisOptions, Backup, Catalog, Gap, Timeline, TimelineWindows};
use crate::catalog::exact::ExactOptions;
use crate::catalog::findings::{Finding, Severity};
use crate::catalog::listing::CatalogInput;
use crate::catalog::retention::{self, Policy};
use crate::catalog::target::{Target, TimelineChoice};
use crate::catalog::time::{Zone, format_utc, parse_target};
use crate::catalog::wal::{Lsn, SegmentSize};
use crate::cli::{CatalogArgs, CatalogCommand, GlobalArgs, OutputFormat};
use crate::exit::{FINDINGS, Failure, OK};
use crate::output::{Printer, text};
use crate::store::read::DiscoverError;
use crate::store::walfetch::WalSource;
use crate::store::{Location, Provider, Store, StoreOptions};

/// Version tag of the JSON documents.
pub const SCHEMA_VERSION: u32 = 1;

/// Runs a catalog subcommand.
pub async fn run(cmd: CatalogCommand, g: &GlobalArgs, p: &Printer) -> Result<u8, Failure> {
    let zone = super::zone(g)?;
    match cmd {
        CatalogCommand::Show(a) => {
            let mut loaded = load(&a.catalog, zone, p).await?;
            if !a.catalog.no_wal {
                let o = ExactOptions {
                    scan_limit: a.catalog.wal_scan_limit.min(16) as usize,
                    ..ExactOptions::default()
                };
                exact_window_ends(&mut loaded, &o, p).await;
            }
            let c = &loaded.catalog;
            if p.format == OutputFormat::Json {
                p.json(&ShowJson::new(&loaded));
            } else {
                p.out(&text::show(p, &loaded.display, c, &loaded.layout_findings));
            }
            let worst = c
                .findings
                .iter()
                .chain(&loaded.layout_findings)
                .map(|f| f.severity)
                .max();
            Ok(if worst == Some(Severity::Error) {
                FINDINGS
            } else {
                OK
            })
        }
        CatalogCommand::Check(a) => {
            let target = parse_check_target(&a.to, zone)?;
            let timeline = match a.timeline.as_str() {
                "latest" => TimelineChoice::Latest,
                n => TimelineChoice::Id(n.parse().ok().filter(|t| *t > 0).ok_or_else(|| {
                    Failure::usage(format!("--timeline `{n}` is not a timeline; expected `latest` or a number from 1"), Some("`current` is not supported: CloudNativePG finds no backup with it".to_owned()))
                })?),
            };
            if let (&Target::Time(t), Some(resolved)) = (&target.0, &target.1)
                && !resolved.explicit_offset
                && p.format == OutputFormat::Text
            {
                p.warn(&format!(
                    "`{}` has no offset; read in {zone} as {}",
                    a.to,
                    format_utc(t)
                ));
            }
            let loaded = load(&a.catalog, zone, p).await?;
            let report = if a.catalog.no_wal {
                loaded.catalog.check(&target.0, timeline)
            } else {
                let source = WalSource::new(&loaded.store, &loaded.catalog.server, &loaded.catalog);
                let started = std::time::Instant::now();
                let (report, reads) = source
                    .check(&target.0, timeline, &exact_options(&a.catalog))
                    .await;
                if !reads.is_empty() {
                    p.info(&format!(
                        "read {} WAL segment(s) in {:.2?}",
                        reads.len(),
                        started.elapsed()
                    ));
                }
                report
            };
            if p.format == OutputFormat::Json {
                p.json(&loaded.envelope(&report));
            } else {
                p.out(&text::check(p, &report));
            }
            Ok(if report.recoverable { OK } else { FINDINGS })
        }
        CatalogCommand::Wal(a) => wal(&a, zone, p).await,
        CatalogCommand::Retention(a) => {
            let policy: Policy = a
                .policy
                .parse()
                .map_err(|e: String| Failure::usage(e, None))?;
            let loaded = load(&a.catalog, zone, p).await?;
            let now = loaded.now;
            let report = retention::simulate(
                &loaded.input,
                &loaded.catalog,
                policy,
                now,
                a.minimum_redundancy,
            );
            if p.format == OutputFormat::Json {
                p.json(&loaded.envelope(&report));
            } else {
                p.out(&text::retention(p, &report));
            }
            Ok(OK)
        }
    }
}

/// Windows whose ends are read from the WAL, newest first.
const EXACT_WINDOWS: usize = 8;

/// Reads the last transaction of the newest recovery windows from the WAL.
async fn exact_window_ends(loaded: &mut Loaded, o: &ExactOptions, p: &Printer) {
    let started = std::time::Instant::now();
    let ends = WalSource::new(&loaded.store, &loaded.catalog.server, &loaded.catalog)
        .window_ends(o, EXACT_WINDOWS)
        .await;
    let read = ends.len();
    for ((tli, i), end) in ends {
        let Some(w) = loaded
            .catalog
            .windows
            .iter_mut()
            .find(|t| t.timeline == tli)
            .and_then(|t| t.windows.get_mut(i))
        else {
            continue;
        };
        match end {
            Ok(Some(x)) => {
                w.latest_time_target = Some(x.time - chrono::Duration::microseconds(1));
                w.last_transaction = Some(x);
            }
            Ok(None) => {
                w.end_unread = Some(format!(
                    "no transaction ends in the {} segments read back from its end",
                    o.scan_limit
                ));
            }
            Err(e) => w.end_unread = Some(e),
        }
    }
    if read > 0 {
        p.info(&format!(
            "read the ends of {read} recovery window(s) from the WAL in {:.2?}",
            started.elapsed()
        ));
    }
}

/// How far the WAL is read for a verdict.
fn exact_options(a: &CatalogArgs) -> ExactOptions {
    ExactOptions {
        scan_limit: a.wal_scan_limit as usize,
        ..ExactOptions::default()
    }
}

/// Parses `--to`: `latest`, an LSN, `xid:N`, `name:NAME`, or a time.
fn parse_check_target(
    s: &str,
    zone: Zone,
) -> Result<(Target, Option<crate::catalog::time::ResolvedTime>), Failure> {
    if s.eq_ignore_ascii_case("latest") {
        return Ok((Target::Latest, None));
    }
    if let Some(t) = Target::parse_wal_placed(s) {
        return t
            .map(|t| (t, None))
            .map_err(|e| Failure::usage(format!("--to: {e}"), None));
    }
    if s.contains('/') && !s.contains('-') {
        return s
            .parse::<Lsn>()
            .map(|l| (Target::Lsn(l), None))
            .map_err(|e| Failure::usage(format!("--to: {e}"), None));
    }
    parse_target(s, zone)
        .map(|r| (Target::Time(r.utc()), Some(r)))
        .map_err(|e| Failure::usage(format!("--to: {e}"), Some("examples: 2024-05-01T10:00:00Z, '2024-05-01 10:00' (read in --tz), 0/3000028, xid:7421, name:before-migration, latest".to_owned())))
}

/// A read and analysed catalog.
pub struct Loaded {
    /// `DEST/server` for messages.
    pub display: String,
    /// What was read.
    pub input: CatalogInput,
    /// The analysis.
    pub catalog: Catalog,
    /// Findings about the destination layout.
    pub layout_findings: Vec<Finding>,
    /// "Now".
    pub now: DateTime<Utc>,
    /// The store it was read from.
    pub store: Store,
}

/// The server folder under the store's destination, as a command failure.
async fn discover(
    store: &Store,
    server_name: Option<&str>,
) -> Result<crate::store::read::Discovered, Failure> {
    store.discover(server_name).await.map_err(|e| match e {
        DiscoverError::Store(s) => Failure::from(s),
        DiscoverError::NotFound { message, hint } => Failure::usage(message, Some(hint)),
        DiscoverError::Ambiguous { .. } => {
            Failure::usage(e.to_string(), Some("pass --server-name".to_owned()))
        }
    })
}

/// Opens the store, finds the server, reads and analyses the catalog.
pub async fn load(a: &CatalogArgs, zone: Zone, p: &Printer) -> Result<Loaded, Failure> {
    let hint = match a.cloud_provider.as_deref() {
        Some(s) => Some(
            Provider::parse(s)
                .ok_or_else(|| Failure::usage(format!("unknown --cloud-provider `{s}`"), None))?,
        ),
        None => None,
    };
    let location =
        Location::parse(&a.dest, hint).map_err(|e| Failure::usage(e.to_string(), None))?;
    let segment_size = match a.wal_segment_size {
        Some(s) => Some(
            SegmentSize::new(s)
                .map_err(|e| Failure::usage(format!("--wal-segment-size: {e}"), None))?,
        ),
        None => None,
    };
    let now = super::now(a.now.as_deref(), zone)?;
    let options = StoreOptions {
        endpoint_url: a.endpoint_url.clone(),
        concurrency: usize::from(a.concurrency),
        strategy: a
            .list_strategy
            .parse()
            .map_err(|e: String| Failure::usage(e, None))?,
        s3_keys: a.s3_keys.clone(),
        ..StoreOptions::default()
    };
    let store = Store::open(location, options)?;
    let discovered = discover(&store, a.server_name.as_deref()).await?;
    let display = store.location.display_server(&discovered.server);
    let spinner = if p.format == OutputFormat::Text {
        p.spinner(&format!("listing {display}"))
    } else {
        None
    };
    let progress = |n: usize| {
        if let Some(s) = &spinner {
            s.set_position(n as u64);
        }
    };
    let started = std::time::Instant::now();
    let input = store.read_catalog(&discovered.server, &progress).await;
    if let Some(s) = &spinner {
        s.finish_and_clear();
    }
    let input = input?;
    p.info(&format!(
        "read {} objects of {display} in {:.2?}",
        input.listing.len(),
        started.elapsed()
    ));
    let mut opts = AnalysisOptions::at(now);
    opts.segment_size = segment_size;
    let catalog = Catalog::analyse(&input, opts);
    Ok(Loaded {
        display,
        input,
        catalog,
        layout_findings: discovered.findings,
        now,
        store,
    })
}

impl Loaded {
    /// A report wrapped with the schema version and what it is about.
    fn envelope<'a, T: Serialize>(&'a self, report: &'a T) -> Envelope<'a, T> {
        Envelope {
            schema_version: SCHEMA_VERSION,
            destination: &self.display,
            server: &self.catalog.server,
            report,
        }
    }
}

/// `catalog show -o json`.
#[derive(Serialize)]
pub struct ShowJson<'a> {
    /// Document version.
    pub schema_version: u32,
    /// `DEST/server`.
    pub destination: &'a str,
    /// Server name.
    pub server: &'a str,
    /// WAL segment size in bytes.
    pub wal_segment_size: u64,
    /// Objects listed.
    pub objects: usize,
    /// Backups, oldest first.
    pub backups: &'a [Backup],
    /// Timelines.
    pub timelines: &'a [Timeline],
    /// Gaps.
    pub gaps: &'a [Gap],
    /// Recovery windows per timeline.
    pub recovery_window: &'a [TimelineWindows],
    /// Earliest recoverable point (strict).
    pub first_recoverable_point: Option<DateTime<Utc>>,
    /// Backup that anchors it.
    pub first_recoverable_backup: Option<String>,
    /// What CloudNativePG reports as first recoverability point.
    pub cnpg_first_recoverability_point: Option<DateTime<Utc>>,
    /// End of the newest usable backup.
    pub last_successful_backup: Option<DateTime<Utc>>,
    /// Findings, worst first.
    pub findings: Vec<Finding>,
}

impl<'a> ShowJson<'a> {
    fn new(l: &'a Loaded) -> ShowJson<'a> {
        let c = &l.catalog;
        let frp = c.first_recoverable_point();
        let mut findings = l.layout_findings.clone();
        findings.extend(c.findings.iter().cloned());
        ShowJson {
            schema_version: SCHEMA_VERSION,
            destination: &l.display,
            server: &c.server,
            wal_segment_size: c.segment_size.bytes(),
            objects: c.objects,
            backups: &c.backups,
            timelines: &c.timelines,
            gaps: &c.gaps,
            recovery_window: &c.windows,
            first_recoverable_point: frp.as_ref().map(|f| f.0),
            first_recoverable_backup: frp.map(|f| f.1),
            cnpg_first_recoverability_point: c.cnpg_first_recoverability_point(),
            last_successful_backup: c
                .backups
                .iter()
                .filter(|b| b.usable)
                .filter_map(|b| b.end_time)
                .max(),
            findings,
        }
    }
}

/// `catalog check -o json` and `catalog retention -o json`: the report with where it is about.
#[derive(Serialize)]
pub struct Envelope<'a, T: Serialize> {
    /// Document version.
    pub schema_version: u32,
    /// `DEST/server`.
    pub destination: &'a str,
    /// Server name.
    pub server: &'a str,
    /// The verdict or the simulation.
    #[serde(flatten)]
    pub report: &'a T,
}

/// `catalog wal`: one segment's records.
async fn wal(a: &crate::cli::WalArgs, _zone: Zone, p: &Printer) -> Result<u8, Failure> {
    use crate::catalog::wal::RawSegmentName;
    use crate::catalog::walread::read_segment;
    let raw = RawSegmentName::parse(&a.segment).ok_or_else(|| {
        Failure::usage(
            format!("--segment `{}` is not a WAL segment name", a.segment),
            Some(
                "24 hex digits: timeline, log and segment, such as 000000010000000000000003"
                    .to_owned(),
            ),
        )
    })?;
    let args = &a.catalog;
    let location =
        Location::parse(&args.dest, None).map_err(|e| Failure::usage(e.to_string(), None))?;
    let options = StoreOptions {
        endpoint_url: args.endpoint_url.clone(),
        concurrency: usize::from(args.concurrency),
        s3_keys: args.s3_keys.clone(),
        ..StoreOptions::default()
    };
    let store = Store::open(location, options)?;
    let server = discover(&store, args.server_name.as_deref()).await?.server;
    let (key, bytes) = store
        .read_wal_segment(&server, &a.segment)
        .await
        .map_err(|e| match e {
            crate::store::read::WalFetchError::Store(s) => Failure::from(s),
            other => Failure {
                code: FINDINGS,
                message: other.to_string(),
                hint: None,
            },
        })?;
    // The segment's own long header gives its size, and so where it starts.
    let seg_size = bytes
        .get(32..36)
        .map_or(16 << 20, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    // Not a size at all: the reader below says what is wrong with the header.
    let size = SegmentSize::new(u64::from(seg_size))
        .or_else(|_| SegmentSize::new(16 << 20))
        .map_err(|e| Failure::usage(e.to_string(), None))?;
    let segno = size.segno_of(raw.log, raw.seg).ok_or_else(|| {
        Failure::usage(
            format!("{} is not a segment of a {seg_size}-byte WAL", a.segment),
            None,
        )
    })?;
    let records = read_segment(&bytes, size.start_lsn(segno)).map_err(|e| Failure {
        code: FINDINGS,
        message: format!("{}: {e}", store.describe(&key)),
        hint: None,
    })?;
    if p.format == OutputFormat::Json {
        p.json(&serde_json::json!({
            "schema_version": SCHEMA_VERSION,
            "destination": store.location.display_server(&server),
            "server": server,
            "segment": a.segment,
            "object": store.describe(&key),
            "records": records,
        }));
    } else {
        p.out(&text::wal_segment(
            p,
            &a.segment,
            &store.describe(&key),
            &records,
        ));
    }
    Ok(OK)
}
