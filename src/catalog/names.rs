//! Classification of object keys inside one server's catalog
//! (`<destinationPath>/<serverName>/…`): base-backup files, WAL files of every
//! kind with every compression suffix barman-cloud writes, and the rest.

use std::fmt;

use serde::Serialize;

use super::wal::RawSegmentName;

/// Compression of an archived file, from its suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// No suffix.
    None,
    /// `.gz`
    Gzip,
    /// `.bz2`
    Bzip2,
    /// `.snappy` (framing format)
    Snappy,
    /// `.xz`
    Xz,
    /// `.zst`
    Zstd,
    /// `.lz4` (frame format)
    Lz4,
}

impl Compression {
    /// Every compression, in suffix-table order.
    pub const ALL: [Compression; 7] = [
        Compression::None,
        Compression::Gzip,
        Compression::Bzip2,
        Compression::Snappy,
        Compression::Xz,
        Compression::Zstd,
        Compression::Lz4,
    ];

    /// The suffix barman-cloud appends, with its dot (empty for none).
    #[must_use]
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Bzip2 => ".bz2",
            Compression::Snappy => ".snappy",
            Compression::Xz => ".xz",
            Compression::Zstd => ".zst",
            Compression::Lz4 => ".lz4",
        }
    }

    /// Splits a compression suffix off `name` (at most one, as barman does).
    #[must_use]
    pub fn split(name: &str) -> (&str, Compression) {
        for c in &Compression::ALL[1..] {
            if let Some(stem) = name.strip_suffix(c.suffix()) {
                return (stem, *c);
            }
        }
        (name, Compression::None)
    }

    /// Name used in messages and JSON.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
            Compression::Snappy => "snappy",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a WAL archive file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum WalKind {
    /// A complete segment.
    Segment,
    /// The last, incomplete segment of a timeline, archived at promotion.
    Partial,
    /// A backup history file; `offset` is the backup start offset within the segment.
    BackupHistory {
        /// Start offset inside the segment.
        offset: u32,
    },
}

/// A parsed WAL file name under `wals/<hash>/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WalFileName {
    /// The segment fields.
    pub raw: RawSegmentName,
    /// Segment, partial or backup history.
    pub kind: WalKind,
    /// Compression suffix.
    pub compression: Compression,
}

impl WalFileName {
    /// Parses a base name such as `000000010000000000000003.partial.gz`.
    #[must_use]
    pub fn parse(base: &str) -> Option<Self> {
        let (stem, compression) = Compression::split(base);
        let (name, kind) = if stem.len() == 24 {
            (stem, WalKind::Segment)
        } else if let Some(name) = stem.strip_suffix(".partial") {
            (name, WalKind::Partial)
        } else if let Some(rest) = stem.strip_suffix(".backup") {
            // <24 hex>.<8 hex>.backup
            let (name, offset) = rest.split_once('.')?;
            if offset.len() != 8 || !offset.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            (
                name,
                WalKind::BackupHistory {
                    offset: u32::from_str_radix(offset, 16).ok()?,
                },
            )
        } else {
            return None;
        };
        Some(WalFileName {
            raw: RawSegmentName::parse(name)?,
            kind,
            compression,
        })
    }
}

impl fmt::Display for WalFileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.raw)?;
        match self.kind {
            WalKind::Segment => {}
            WalKind::Partial => f.write_str(".partial")?,
            WalKind::BackupHistory { offset } => write!(f, ".{offset:08X}.backup")?,
        }
        f.write_str(self.compression.suffix())
    }
}

/// A timeline history file name directly under `wals/`: `0000000N.history[.cmp]`.
#[must_use]
pub fn parse_history_name(base: &str) -> Option<(u32, Compression)> {
    let (stem, compression) = Compression::split(base);
    let tli = stem.strip_suffix(".history")?;
    if tli.len() != 8 || !tli.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((u32::from_str_radix(tli, 16).ok()?, compression))
}

/// Compression of a base-backup tar, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TarCompression {
    /// `.tar`
    None,
    /// `.tar.gz`
    Gzip,
    /// `.tar.bz2`
    Bzip2,
    /// `.tar.snappy`
    Snappy,
    /// `.tar.lz4` (barman 3.18 and later)
    Lz4,
}

/// A file inside `base/<backup_id>/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseFile {
    /// `backup.info`
    BackupInfo,
    /// A tar of PGDATA (`data`) or of a tablespace (its oid); `part` is 0 for the main file.
    Tar {
        /// `None` for `data`, the tablespace oid otherwise.
        tablespace: Option<u32>,
        /// Part number: 0 for `data.tar`, n for `data_000n.tar`.
        part: u32,
        /// Compression from the extension.
        compression: TarCompression,
    },
    /// `annotations/keep`
    KeepAnnotation,
    /// Other files under `annotations/`.
    OtherAnnotation,
    /// `backup_label` (barman snapshot backups only).
    BackupLabel,
    /// Anything else.
    Unknown,
}

impl BaseFile {
    /// Classifies the path relative to `base/<id>/`.
    #[must_use]
    pub fn classify(rel: &str) -> BaseFile {
        match rel {
            "backup.info" => return BaseFile::BackupInfo,
            "annotations/keep" => return BaseFile::KeepAnnotation,
            "backup_label" => return BaseFile::BackupLabel,
            _ => {}
        }
        if rel.starts_with("annotations/") {
            return BaseFile::OtherAnnotation;
        }
        if rel.contains('/') {
            return BaseFile::Unknown;
        }
        let Some((stem, compression)) = split_tar(rel) else {
            return BaseFile::Unknown;
        };
        let (base, part) = match stem.split_once('_') {
            Some((base, part)) => match (part.len() == 4, part.parse::<u32>()) {
                (true, Ok(n)) => (base, n),
                _ => return BaseFile::Unknown,
            },
            None => (stem, 0),
        };
        let tablespace = if base == "data" {
            None
        } else if !base.is_empty() && base.bytes().all(|b| b.is_ascii_digit()) {
            match base.parse() {
                Ok(oid) => Some(oid),
                Err(_) => return BaseFile::Unknown,
            }
        } else {
            return BaseFile::Unknown;
        };
        BaseFile::Tar {
            tablespace,
            part,
            compression,
        }
    }
}

fn split_tar(name: &str) -> Option<(&str, TarCompression)> {
    const EXTS: [(&str, TarCompression); 5] = [
        (".tar", TarCompression::None),
        (".tar.gz", TarCompression::Gzip),
        (".tar.bz2", TarCompression::Bzip2),
        (".tar.snappy", TarCompression::Snappy),
        (".tar.lz4", TarCompression::Lz4),
    ];
    EXTS.iter()
        .find_map(|(ext, c)| name.strip_suffix(ext).map(|stem| (stem, *c)))
}

/// Whether `id` has the shape barman gives backup ids (`YYYYMMDDTHHMMSS`).
#[must_use]
pub fn is_backup_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 15
        && b[8] == b'T'
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[9..].iter().all(u8::is_ascii_digit)
}

/// Where an object key sits in a server's catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogKey<'a> {
    /// `base/<id>/<rel>`
    Base {
        /// Directory name under `base/`.
        id: &'a str,
        /// Classified file.
        file: BaseFile,
    },
    /// `wals/<hash>/<file>`
    Wal {
        /// Parsed name.
        name: WalFileName,
        /// Whether the hash directory matches the name (barman only finds files where it expects them).
        misplaced: bool,
    },
    /// `wals/<TLI>.history[.cmp]`
    History {
        /// Timeline the file opens.
        tli: u32,
        /// Compression suffix.
        compression: Compression,
    },
    /// Anything else, with the reason it was not recognised.
    Unknown(&'static str),
}

/// Classifies a key relative to the server prefix (no leading `/`).
#[must_use]
pub fn classify(rel: &str) -> CatalogKey<'_> {
    if let Some(rest) = rel.strip_prefix("base/") {
        return match rest.split_once('/') {
            Some((id, file)) if !id.is_empty() && !file.is_empty() => CatalogKey::Base {
                id,
                file: BaseFile::classify(file),
            },
            _ => CatalogKey::Unknown("object directly under base/ (not inside a backup directory)"),
        };
    }
    if let Some(rest) = rel.strip_prefix("wals/") {
        return match rest.split_once('/') {
            None => match parse_history_name(rest) {
                Some((tli, compression)) => CatalogKey::History { tli, compression },
                None => CatalogKey::Unknown(
                    "object directly under wals/ that is not a timeline history file",
                ),
            },
            Some((dir, file)) if !file.contains('/') => match WalFileName::parse(file) {
                Some(name) => CatalogKey::Wal {
                    name,
                    misplaced: dir != name.raw.hash_dir(),
                },
                None => CatalogKey::Unknown("not a WAL file name with a known compression suffix"),
            },
            Some(_) => CatalogKey::Unknown("nested too deep under wals/"),
        };
    }
    CatalogKey::Unknown("outside base/ and wals/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_names_with_every_suffix_round_trip() {
        for c in Compression::ALL {
            for kind in ["", ".partial", ".00000028.backup"] {
                let name = format!("000000020000000300000A2F{kind}{}", c.suffix());
                let parsed = WalFileName::parse(&name).unwrap_or_else(|| panic!("{name}"));
                assert_eq!(parsed.compression, c);
                assert_eq!(parsed.to_string(), name);
            }
        }
    }

    #[test]
    fn backup_history_offset_is_parsed() {
        let n = WalFileName::parse("0000000100000000000000A2.00000028.backup.gz").unwrap();
        assert_eq!(n.kind, WalKind::BackupHistory { offset: 0x28 });
        assert_eq!(n.compression, Compression::Gzip);
    }

    #[test]
    fn unknown_suffixes_and_doubles_are_rejected() {
        for bad in [
            "000000010000000000000001.enc",
            "000000010000000000000001.gz.gz",
            "000000010000000000000001.gpg",
            "000000010000000000000001.tmp",
            "00000001000000000000001",
            "000000010000000000000001.0000028.backup",
            "000000010000000000000001.partial.partial",
        ] {
            assert!(WalFileName::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn history_names() {
        assert_eq!(
            parse_history_name("00000002.history"),
            Some((2, Compression::None))
        );
        assert_eq!(
            parse_history_name("0000000A.history.zst"),
            Some((10, Compression::Zstd))
        );
        assert_eq!(parse_history_name("0000002.history"), None);
        assert_eq!(parse_history_name("00000002.histor"), None);
    }

    #[test]
    fn keys_are_classified() {
        assert!(matches!(
            classify("base/20260310T020003/backup.info"),
            CatalogKey::Base {
                id: "20260310T020003",
                file: BaseFile::BackupInfo
            }
        ));
        assert!(matches!(
            classify("base/20260310T020003/data_0001.tar.gz"),
            CatalogKey::Base {
                file: BaseFile::Tar {
                    tablespace: None,
                    part: 1,
                    compression: TarCompression::Gzip
                },
                ..
            }
        ));
        assert!(matches!(
            classify("base/20260310T020003/16390.tar.snappy"),
            CatalogKey::Base {
                file: BaseFile::Tar {
                    tablespace: Some(16390),
                    part: 0,
                    compression: TarCompression::Snappy
                },
                ..
            }
        ));
        assert!(matches!(
            classify("base/x/data.tarx"),
            CatalogKey::Base {
                file: BaseFile::Unknown,
                ..
            }
        ));
        assert!(matches!(
            classify("base/x/data.tar.xz"),
            CatalogKey::Base {
                file: BaseFile::Unknown,
                ..
            }
        ));
        assert!(matches!(
            classify("base/x/annotations/keep"),
            CatalogKey::Base {
                file: BaseFile::KeepAnnotation,
                ..
            }
        ));
        assert!(matches!(classify("base/stray"), CatalogKey::Unknown(_)));
        assert!(matches!(
            classify("wals/00000002.history.gz"),
            CatalogKey::History {
                tli: 2,
                compression: Compression::Gzip
            }
        ));
        assert!(matches!(
            classify("wals/0000000100000000/000000010000000000000001.gz"),
            CatalogKey::Wal {
                misplaced: false,
                ..
            }
        ));
        assert!(matches!(
            classify("wals/0000000100000001/000000010000000000000001"),
            CatalogKey::Wal {
                misplaced: true,
                ..
            }
        ));
        assert!(matches!(
            classify("wals/0000000100000000/junk"),
            CatalogKey::Unknown(_)
        ));
        assert!(matches!(classify("something/else"), CatalogKey::Unknown(_)));
    }

    #[test]
    fn backup_ids() {
        assert!(is_backup_id("20260310T020003"));
        assert!(!is_backup_id("20260310020003"));
        assert!(!is_backup_id("2026031xT020003"));
    }
}
