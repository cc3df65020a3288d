//! Reading archived WAL segments for exact verdicts: the segments a question
//! needs, several at once, each decompressed and summarised as soon as it
//! arrives so that memory holds at most a few segments; the summaries are
//! cached on disk, keyed by the object's name, size and upload time, so a
//! repeated question reads nothing.

use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;

use crate::catalog::analysis::Catalog;
use crate::catalog::exact::{self, ExactOptions, RecordRef, Step, WalReads};
use crate::catalog::target::{CheckReport, Target, TimelineChoice};
use crate::catalog::wal::SegmentId;
use crate::catalog::walread::{SegmentRecords, read_segment};
use crate::codec;

use super::read::WalFetchError;
use super::{AccessKind, ReadError, Store};

/// Version of the cached summaries; a change of format starts a new cache.
const CACHE_FORMAT: u32 = 1;

/// Bytes of decompressed WAL allowed in flight at once.
const IN_FLIGHT_BYTES: u64 = 256 << 20;

/// Where summaries are cached: `CNPG_OPS_CACHE_DIR` (empty turns the cache
/// off), else `$XDG_CACHE_HOME/cnpg-ops`, else `~/.cache/cnpg-ops`.
#[must_use]
pub fn default_cache_dir() -> Option<PathBuf> {
    match std::env::var_os("CNPG_OPS_CACHE_DIR") {
        Some(v) if v.is_empty() => return None,
        Some(v) => return Some(PathBuf::from(v)),
        None => {}
    }
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("cnpg-ops"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|h| PathBuf::from(h).join(".cache/cnpg-ops"))
}

/// The WAL of one catalog, as the store holds it.
pub struct WalSource<'a> {
    store: &'a Store,
    server: String,
    catalog: &'a Catalog,
    cache: Option<PathBuf>,
    concurrency: usize,
}

impl<'a> WalSource<'a> {
    /// WAL of `server` in `store`, whose analysed catalog is `catalog`.
    #[must_use]
    pub fn new(store: &'a Store, server: &str, catalog: &'a Catalog) -> WalSource<'a> {
        let per_segment = catalog.segment_size.bytes().max(1);
        let by_memory = usize::try_from(IN_FLIGHT_BYTES / per_segment).unwrap_or(1);
        WalSource {
            store,
            server: server.to_owned(),
            catalog,
            cache: default_cache_dir(),
            concurrency: store.options.concurrency.clamp(1, 8).min(by_memory.max(1)),
        }
    }

    /// Reads those of `ids` not read yet; false when there were none (asking again
    /// would never settle anything).
    async fn read_new(&self, ids: Vec<SegmentId>, reads: &mut WalReads) -> bool {
        let fresh: Vec<SegmentId> = ids
            .into_iter()
            .filter(|i| reads.get(*i).is_none())
            .collect();
        if fresh.is_empty() {
            return false;
        }
        self.read(&fresh, reads).await;
        true
    }

    /// Reads `ids` into `reads`, several at once.
    pub async fn read(&self, ids: &[SegmentId], reads: &mut WalReads) {
        let results: Vec<(SegmentId, Result<Arc<SegmentRecords>, String>)> =
            futures::stream::iter(ids.iter().copied())
                .map(|id| async move { (id, self.read_one(id).await) })
                .buffered(self.concurrency)
                .collect()
                .await;
        for (id, r) in results {
            reads.insert(id, r);
        }
    }

    /// The object holding `id`: the complete segment, else its `.partial`.
    fn object(&self, id: SegmentId) -> Option<(String, u64, i64)> {
        let tl = self.catalog.wal.timeline(id.tli)?;
        let name = self.catalog.wal.name(id);
        let hash = &name[..16];
        let prefix = self.store.location.server_prefix(&self.server);
        if let Some(e) = tl.get(id.segno) {
            return Some((
                format!("{prefix}/wals/{hash}/{name}{}", e.compression.suffix()),
                e.size,
                e.last_modified,
            ));
        }
        tl.partial(id.segno).map(|e| {
            (
                format!(
                    "{prefix}/wals/{hash}/{name}.partial{}",
                    e.compression.suffix()
                ),
                e.size,
                e.last_modified,
            )
        })
    }

    fn cache_file(&self, key: &str, size: u64, modified: i64) -> Option<PathBuf> {
        let dir = self.cache.as_ref()?;
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        let place = clean(&format!(
            "{}{}",
            self.store.options.endpoint_url.as_deref().unwrap_or(""),
            self.store.describe("")
        ));
        Some(
            dir.join(format!("wal-v{CACHE_FORMAT}"))
                .join(place)
                .join(format!("{}@{size}-{modified}.json", clean(key))),
        )
    }

    async fn read_one(&self, id: SegmentId) -> Result<Arc<SegmentRecords>, String> {
        let name = self.catalog.wal.name(id);
        let object = self.object(id);
        let cached = object
            .as_ref()
            .and_then(|(k, size, lm)| self.cache_file(k, *size, *lm));
        if let Some(path) = &cached
            && let Ok(text) = tokio::fs::read_to_string(path).await
            && let Ok(r) = serde_json::from_str::<SegmentRecords>(&text)
            && r.start == self.catalog.segment_size.start_lsn(id.segno)
        {
            return Ok(Arc::new(r));
        }
        let bytes = match &object {
            Some((key, _, _)) => match self.fetch(key).await {
                Ok(b) => b,
                // Not where the listing put it (moved or misplaced): look it up by name.
                Err(Fetch::Missing) => self.fetch_by_name(&name).await?,
                // Read but unusable, or refused: asking again elsewhere would not help.
                Err(Fetch::Failed(e)) => return Err(e),
            },
            None => self.fetch_by_name(&name).await?,
        };
        let start = self.catalog.segment_size.start_lsn(id.segno);
        let records = tokio::task::spawn_blocking(move || read_segment(&bytes, start))
            .await
            .map_err(|e| format!("{name}: {e}"))?
            .map_err(|e| format!("{name}: {e}"))?;
        if let Some(path) = cached
            && let Ok(json) = serde_json::to_vec(&records)
        {
            // A cache that cannot be written only costs a re-read.
            let _ = write_atomically(&path, &json).await;
        }
        Ok(Arc::new(records))
    }

    async fn fetch(&self, key: &str) -> Result<Vec<u8>, Fetch> {
        let raw = self
            .store
            .get_bounded(key, super::read::MAX_WAL_OBJECT_BYTES)
            .await
            .map_err(|e| match &e {
                ReadError::Store(s) if s.kind() == Some(AccessKind::NotFound) => Fetch::Missing,
                _ => Fetch::Failed(format!("{}: {e}", self.store.describe(key))),
            })?;
        let base = key.rsplit('/').next().unwrap_or(key);
        let compression = crate::catalog::names::WalFileName::parse(base)
            .map(|n| n.compression)
            .ok_or_else(|| Fetch::Failed(format!("{base} is not a WAL file name")))?;
        codec::decompress(&raw, compression, super::read::MAX_WAL_SEGMENT_BYTES)
            .map_err(|e| Fetch::Failed(format!("{}: {e}", self.store.describe(key))))
    }

    async fn fetch_by_name(&self, name: &str) -> Result<Vec<u8>, String> {
        self.store
            .read_wal_segment(&self.server, name)
            .await
            .map(|(_, b)| b)
            .map_err(|e| match e {
                WalFetchError::Missing { .. } => format!("{e} (deleted since it was listed?)"),
                other => other.to_string(),
            })
    }

    /// The exact verdict for `target`: reads the segments it needs, round by
    /// round, until [`exact::check`] answers.
    pub async fn check(
        &self,
        target: &Target,
        tl: TimelineChoice,
        o: &ExactOptions,
    ) -> (CheckReport, WalReads) {
        let mut reads = WalReads::default();
        let o = ExactOptions {
            batch: o.batch.max(self.concurrency),
            ..*o
        };
        loop {
            match exact::check(self.catalog, target, tl, &reads, &o) {
                Step::Done(r) => return (*r, reads),
                Step::Need(ids) => {
                    if !self.read_new(ids, &mut reads).await {
                        // Nothing new to read: never loop; the catalog's verdict stands.
                        let mut r = self.catalog.check(target, tl);
                        r.reasons
                            .push("approximate: the WAL could not settle the verdict".to_owned());
                        return (r, reads);
                    }
                }
            }
        }
    }

    /// The last transaction of each recovery window (newest windows first, at
    /// most `limit`), read from the WAL. Keys are (timeline, window index).
    pub async fn window_ends(
        &self,
        o: &ExactOptions,
        limit: usize,
    ) -> Vec<((u32, usize), Result<Option<RecordRef>, String>)> {
        let mut wanted: Vec<(u32, usize)> = Vec::new();
        for tw in self.catalog.windows.iter().rev() {
            for i in (0..tw.windows.len()).rev() {
                if wanted.len() < limit {
                    wanted.push((tw.timeline, i));
                }
            }
        }
        let mut reads = WalReads::default();
        let mut out = Vec::new();
        for key in wanted {
            let Some(w) = self
                .catalog
                .windows
                .iter()
                .find(|t| t.timeline == key.0)
                .and_then(|t| t.windows.get(key.1))
            else {
                continue;
            };
            loop {
                let mut need = Vec::new();
                if let Some(r) = exact::window_end(self.catalog, key.0, w, &reads, o, &mut need) {
                    out.push((key, r));
                    break;
                }
                if !self.read_new(need, &mut reads).await {
                    break;
                }
            }
        }
        out
    }
}

/// Why the object the listing named could not be used.
enum Fetch {
    /// It is no longer there.
    Missing,
    /// It was refused, or its contents are not a WAL segment.
    Failed(String),
}

/// Writes `bytes` to `path` through a temporary file and a rename.
async fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await
}
