//! Reading one server's catalog: discovering the server folder, listing
//! `base/` and `wals/`, and reading the small objects the analysis needs
//! (`backup.info`, history files, keep annotations) with a size cap.
//!
//! A failure to reach the store aborts the read. A single object that is
//! denied, gone, too large or unparsable becomes a per-object failure the
//! analysis reports by name, so the rest of the catalog is still judged.

use futures::{StreamExt, stream};

use super::list::Progress;
use super::{AccessKind, ReadError, Store, StoreError};
use crate::catalog::backup_info::{BackupInfo, MAX_BACKUP_INFO_BYTES};
use crate::catalog::findings::Finding;
use crate::catalog::history::{History, MAX_HISTORY_BYTES};
use crate::catalog::layout::DestLayout;
use crate::catalog::listing::{CatalogInput, ReadFailure};
use crate::catalog::names::BaseFile;
use crate::codec;

/// A server folder could not be chosen.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No catalog where one was expected.
    #[error("{message}")]
    NotFound {
        /// What was looked for and what exists.
        message: String,
        /// What to do.
        hint: String,
    },
    /// Several servers and no `--server-name`.
    #[error("{dest} holds {} server folders: {}", servers.len(), servers.join(", "))]
    Ambiguous {
        /// The destination.
        dest: String,
        /// The servers found.
        servers: Vec<String>,
    },
}

/// The chosen server and the layout findings.
#[derive(Debug)]
pub struct Discovered {
    /// Server name.
    pub server: String,
    /// Path findings (double nesting, siblings).
    pub findings: Vec<Finding>,
}

impl Store {
    /// Finds the server folder under the destination path.
    pub async fn discover(&self, server_name: Option<&str>) -> Result<Discovered, DiscoverError> {
        let dest = self.location.original.clone();
        let layout = self.layout().await?;
        let d = layout.discover(&dest);
        let server = match server_name {
            Some(s) => {
                if !d.servers.iter().any(|x| x == s) {
                    let mut hint = String::from(
                        "check --server-name (CloudNativePG: the serverName parameter, else the cluster name)",
                    );
                    if d.dest_is_server {
                        hint = format!("{dest} is itself a server folder; pass its parent as DEST");
                    } else if layout
                        .nested
                        .get(s)
                        .is_some_and(|n| n.contains("base") || n.contains("wals"))
                    {
                        hint = format!(
                            "the catalog is double-nested at {s}/{s}/; read it with DEST {}/{s}",
                            dest.trim_end_matches('/')
                        );
                    }
                    let found = if d.servers.is_empty() {
                        "none".to_owned()
                    } else {
                        d.servers.join(", ")
                    };
                    return Err(DiscoverError::NotFound {
                        message: format!(
                            "no catalog for server `{s}` under {dest} (server folders found: {found})"
                        ),
                        hint,
                    });
                }
                s.to_owned()
            }
            None => match d.servers.as_slice() {
                [one] => one.clone(),
                [] => {
                    let hint = if d.dest_is_server {
                        let last = dest
                            .trim_end_matches('/')
                            .rsplit('/')
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                        format!(
                            "{dest} is a server folder itself: use its parent as DEST and --server-name {last}"
                        )
                    } else {
                        "check the destination path; barman-cloud writes <destinationPath>/<serverName>/base and /wals".to_owned()
                    };
                    return Err(DiscoverError::NotFound {
                        message: format!("no barman-cloud catalog under {dest}"),
                        hint,
                    });
                }
                many => {
                    return Err(DiscoverError::Ambiguous {
                        dest,
                        servers: many.to_vec(),
                    });
                }
            },
        };
        Ok(Discovered {
            server,
            findings: d.findings,
        })
    }

    /// The folders under the destination path, two levels deep, and inside
    /// any folder nested in itself.
    pub async fn layout(&self) -> Result<DestLayout, StoreError> {
        let prefix = self.location.prefix.clone();
        let join = |a: &str, b: &str| {
            if a.is_empty() {
                b.to_owned()
            } else {
                format!("{a}/{b}")
            }
        };
        let mut layout = DestLayout {
            top: self.folders(&prefix).await?,
            ..DestLayout::default()
        };
        let tops: Vec<String> = layout
            .top
            .iter()
            .filter(|t| *t != "base" && *t != "wals")
            .cloned()
            .collect();
        let children: Vec<(String, _)> = stream::iter(tops)
            .map(|t| {
                let p = join(&prefix, &t);
                async move { (t, self.folders(&p).await) }
            })
            .buffer_unordered(self.options.concurrency.max(1))
            .collect()
            .await;
        for (t, c) in children {
            let c = c?;
            if c.contains(&t) {
                let nested = self.folders(&join(&join(&prefix, &t), &t)).await?;
                layout.nested.insert(t.clone(), nested);
            }
            layout.children.insert(t, c);
        }
        Ok(layout)
    }

    /// Lists and reads the catalog of `server`.
    pub async fn read_catalog(
        &self,
        server: &str,
        progress: Progress<'_>,
    ) -> Result<CatalogInput, StoreError> {
        let root = format!("{}/", self.location.server_prefix(server));
        let base_root = format!("{root}base/");
        let wal_root = format!("{root}wals/");
        let (base, wal) = futures::try_join!(
            self.list_tree(&base_root, &root, super::ListStrategy::Sequential, &|_| {}),
            self.list_tree(&wal_root, &root, self.options.strategy, progress),
        )?;
        let mut listing = base;
        listing.merge(wal);
        let mut input = CatalogInput {
            server: server.to_owned(),
            listing,
            ..CatalogInput::default()
        };
        self.read_contents(&root, &mut input).await?;
        Ok(input)
    }

    async fn read_contents(&self, root: &str, input: &mut CatalogInput) -> Result<(), StoreError> {
        enum Job {
            Info(String),
            Keep(String),
            History(u32, crate::catalog::names::Compression),
        }
        let mut jobs = Vec::new();
        for (id, files) in &input.listing.base {
            if files.iter().any(|f| f.file == BaseFile::BackupInfo) {
                jobs.push((
                    format!("base/{id}/backup.info"),
                    Job::Info(id.clone()),
                    MAX_BACKUP_INFO_BYTES,
                ));
            }
            if files.iter().any(|f| f.file == BaseFile::KeepAnnotation) {
                jobs.push((
                    format!("base/{id}/annotations/keep"),
                    Job::Keep(id.clone()),
                    4096,
                ));
            }
        }
        for h in &input.listing.history {
            jobs.push((
                h.key.clone(),
                Job::History(h.tli, h.compression),
                MAX_HISTORY_BYTES,
            ));
        }
        let results: Vec<(String, Job, Result<bytes::Bytes, ReadError>)> = stream::iter(jobs)
            .map(|(key, job, limit)| async move {
                let full = format!("{root}{key}");
                let r = self.get_bounded(&full, limit).await;
                (key, job, r)
            })
            .buffer_unordered(self.options.concurrency.max(1))
            .collect()
            .await;
        for (key, job, r) in results {
            let bytes = match r {
                Ok(b) => Ok(b),
                Err(ReadError::TooLarge { size, limit }) => Err(format!(
                    "{size} bytes, over the {limit}-byte limit; not read"
                )),
                Err(ReadError::Store(e)) => match e.kind() {
                    // Per-object problems: report by name, keep going.
                    Some(
                        AccessKind::AccessDenied
                        | AccessKind::NotFound
                        | AccessKind::Unauthenticated,
                    ) => Err(e.to_string()),
                    // The store itself failed: no verdict on a partial read.
                    _ => return Err(e),
                },
            };
            let fail = |message: String| ReadFailure {
                key: key.clone(),
                message,
            };
            match job {
                Job::Info(id) => {
                    let parsed = bytes
                        .map_err(&fail)
                        .and_then(|b| BackupInfo::parse(&b).map_err(|e| fail(e.to_string())));
                    input.backup_infos.insert(id, parsed);
                }
                Job::Keep(id) => {
                    let body = bytes.map_err(&fail).and_then(|b| {
                        String::from_utf8(b.to_vec()).map_err(|_| fail("not UTF-8".to_owned()))
                    });
                    input.keeps.insert(id, body);
                }
                Job::History(tli, compression) => {
                    let parsed = bytes
                        .map_err(&fail)
                        .and_then(|b| {
                            codec::decompress(&b, compression, MAX_HISTORY_BYTES)
                                .map_err(|e| fail(e.to_string()))
                        })
                        .and_then(|b| History::parse(tli, &b).map_err(|e| fail(e.to_string())));
                    // Two copies with different compressions: keep a readable one.
                    match input.histories.get(&tli) {
                        Some(Ok(_)) => {}
                        _ => {
                            input.histories.insert(tli, parsed);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Why a WAL segment could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum WalFetchError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No object for that segment.
    #[error("no archived file for segment {segment} under {prefix}")]
    Missing {
        /// The segment.
        segment: String,
        /// Where it was looked for.
        prefix: String,
    },
    /// The object could not be read or decompressed.
    #[error("{key}: {detail}")]
    Unreadable {
        /// The object.
        key: String,
        /// Why.
        detail: String,
    },
}

/// The largest compressed segment object read (a 1 GiB segment barely compresses).
pub(crate) const MAX_WAL_OBJECT_BYTES: u64 = 1 << 30;
/// The largest WAL segment PostgreSQL allows.
pub(crate) const MAX_WAL_SEGMENT_BYTES: u64 = 1 << 30;

impl Store {
    /// Reads archived segment `segment` of `server` (the whole segment, or
    /// its `.partial` when that is all there is), decompressed. Returns the
    /// object's key and the bytes.
    pub async fn read_wal_segment(
        &self,
        server: &str,
        segment: &str,
    ) -> Result<(String, Vec<u8>), WalFetchError> {
        use futures::TryStreamExt;
        let dir = format!(
            "{}/wals/{}",
            self.location.server_prefix(server),
            segment.get(..16).unwrap_or(segment)
        );
        let path = object_store::path::Path::from(dir.as_str());
        let listed: Vec<object_store::ObjectMeta> = self
            .raw()
            .list(Some(&path))
            .try_collect()
            .await
            .map_err(|e| {
                StoreError::from_object_store(format!("listing {}/", self.describe(&dir)), &e)
            })?;
        let mut found: Vec<(String, crate::catalog::names::WalFileName)> = listed
            .into_iter()
            .filter_map(|m| {
                let key = m.location.to_string();
                let base = key.rsplit('/').next()?.to_owned();
                let name = crate::catalog::names::WalFileName::parse(&base)?;
                (name.raw.to_string() == segment
                    && matches!(
                        name.kind,
                        crate::catalog::names::WalKind::Segment
                            | crate::catalog::names::WalKind::Partial
                    ))
                .then_some((key, name))
            })
            .collect();
        // A complete segment before a partial one.
        found.sort_by_key(|(_, n)| n.kind != crate::catalog::names::WalKind::Segment);
        let Some((key, name)) = found.into_iter().next() else {
            return Err(WalFetchError::Missing {
                segment: segment.to_owned(),
                prefix: self.describe(&dir),
            });
        };
        let bytes = self
            .get_bounded(&key, MAX_WAL_OBJECT_BYTES)
            .await
            .map_err(|e| WalFetchError::Unreadable {
                key: self.describe(&key),
                detail: e.to_string(),
            })?;
        let data =
            codec::decompress(&bytes, name.compression, MAX_WAL_SEGMENT_BYTES).map_err(|e| {
                WalFetchError::Unreadable {
                    key: self.describe(&key),
                    detail: e.to_string(),
                }
            })?;
        Ok((key, data))
    }
}
