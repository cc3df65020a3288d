//! The listing of one server's catalog, classified as it arrives into a
//! compact form (a WAL object costs a few dozen bytes, not its key string),
//! plus the contents that had to be read (`backup.info`, history files,
//! keep annotations). This is the whole input of the analysis.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::backup_info::BackupInfo;
use super::history::History;
use super::names::{BaseFile, CatalogKey, Compression, WalFileName, classify};

/// One WAL file under `wals/<hash>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalObject {
    /// Parsed name.
    pub name: WalFileName,
    /// Size in bytes.
    pub size: u64,
    /// Upload time (object `LastModified`), Unix milliseconds.
    pub last_modified: i64,
    /// Stored in a hash directory other than the one its name implies.
    pub misplaced: bool,
}

/// A history file directly under `wals/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryObject {
    /// Timeline it opens.
    pub tli: u32,
    /// Compression.
    pub compression: Compression,
    /// Key relative to the server prefix.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Upload time, Unix milliseconds.
    pub last_modified: i64,
}

/// One file in a base-backup directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseObject {
    /// Classified file.
    pub file: BaseFile,
    /// Path relative to `base/<id>/`.
    pub rel: String,
    /// Size in bytes.
    pub size: u64,
    /// Upload time, Unix milliseconds.
    pub last_modified: i64,
}

/// An object that belongs to no known kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownObject {
    /// Key relative to the server prefix.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Why it was not recognised.
    pub reason: &'static str,
}

/// Everything listed under `<destinationPath>/<serverName>/`.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// WAL segments, partials and backup history files, in listing order.
    pub wal: Vec<WalObject>,
    /// Timeline history files.
    pub history: Vec<HistoryObject>,
    /// Base-backup directories by id.
    pub base: BTreeMap<String, Vec<BaseObject>>,
    /// Objects of no known kind.
    pub unknown: Vec<UnknownObject>,
}

impl Listing {
    /// Adds one object by its key relative to the server prefix.
    pub fn add(&mut self, rel: &str, size: u64, last_modified: DateTime<Utc>) {
        let last_modified = last_modified.timestamp_millis();
        match classify(rel) {
            CatalogKey::Wal { name, misplaced } => self.wal.push(WalObject {
                name,
                size,
                last_modified,
                misplaced,
            }),
            CatalogKey::History { tli, compression } => {
                self.history.push(HistoryObject {
                    tli,
                    compression,
                    key: rel.to_owned(),
                    size,
                    last_modified,
                });
            }
            CatalogKey::Base { id, file } => {
                let rel_file = &rel["base/".len() + id.len() + 1..];
                self.base
                    .entry(id.to_owned())
                    .or_default()
                    .push(BaseObject {
                        file,
                        rel: rel_file.to_owned(),
                        size,
                        last_modified,
                    });
            }
            CatalogKey::Unknown(reason) => self.unknown.push(UnknownObject {
                key: rel.to_owned(),
                size,
                reason,
            }),
        }
    }

    /// Merges another listing (from a parallel worker) into this one.
    pub fn merge(&mut self, other: Listing) {
        self.wal.extend(other.wal);
        self.history.extend(other.history);
        for (id, files) in other.base {
            self.base.entry(id).or_default().extend(files);
        }
        self.unknown.extend(other.unknown);
    }

    /// Total number of objects.
    #[must_use]
    pub fn len(&self) -> usize {
        self.wal.len()
            + self.history.len()
            + self.base.values().map(Vec::len).sum::<usize>()
            + self.unknown.len()
    }

    /// Whether nothing was listed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why an object that the analysis needs could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadFailure {
    /// Key relative to the server prefix.
    pub key: String,
    /// What went wrong, for people.
    pub message: String,
}

/// The listing plus the contents read because of it.
#[derive(Debug, Clone, Default)]
pub struct CatalogInput {
    /// Server name (the folder under the destination path).
    pub server: String,
    /// The listing.
    pub listing: Listing,
    /// `backup.info` by backup id: parsed, or why not.
    pub backup_infos: BTreeMap<String, Result<BackupInfo, ReadFailure>>,
    /// History files by timeline: parsed, or why not.
    pub histories: BTreeMap<u32, Result<History, ReadFailure>>,
    /// Keep annotation body by backup id.
    pub keeps: BTreeMap<String, Result<String, ReadFailure>>,
}
