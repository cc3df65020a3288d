//! Destination URLs as barman-cloud and CloudNativePG write them, parsed into
//! provider, bucket and key prefix. No IO.

use std::fmt;

/// Which object store a destination lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Amazon S3 or an S3-compatible store.
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azure,
    /// A local directory: a mirror of a bucket.
    File,
}

impl Provider {
    /// barman-cloud's `--cloud-provider` names, plus `file`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Provider> {
        match s {
            "aws-s3" | "s3" => Some(Provider::S3),
            "google-cloud-storage" | "gcs" | "gs" => Some(Provider::Gcs),
            "azure-blob-storage" | "azure" | "az" => Some(Provider::Azure),
            "file" => Some(Provider::File),
            _ => None,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::S3 => "aws-s3",
            Provider::Gcs => "google-cloud-storage",
            Provider::Azure => "azure-blob-storage",
            Provider::File => "file",
        })
    }
}

/// A parsed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Provider.
    pub provider: Provider,
    /// Bucket or container; for `file://`, the directory.
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// Azure storage account.
    pub account: Option<String>,
    /// Endpoint implied by the URL itself (Azure emulator form).
    pub endpoint: Option<String>,
    /// The text as given.
    pub original: String,
}

/// Why a destination could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{url}` is not a destination path: {why}")]
pub struct LocationError {
    /// The input.
    pub url: String,
    /// What was expected.
    pub why: String,
}

fn clean_prefix(path: &str) -> String {
    path.split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

impl Location {
    /// Parses `dest`; `hint` is `--cloud-provider` when given.
    pub fn parse(dest: &str, hint: Option<Provider>) -> Result<Location, LocationError> {
        let err = |why: &str| LocationError {
            url: dest.to_owned(),
            why: why.to_owned(),
        };
        let (scheme, rest) = dest.split_once("://").ok_or_else(|| {
            err("expected s3://BUCKET/PATH, gs://BUCKET/PATH, https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH, az://CONTAINER/PATH or file:///DIR")
        })?;
        let scheme = scheme.to_ascii_lowercase();
        let mk = |provider, bucket: &str, path: &str| Location {
            provider,
            bucket: bucket.to_owned(),
            prefix: clean_prefix(path),
            account: None,
            endpoint: None,
            original: dest.to_owned(),
        };
        let split_first = |s: &str| -> (String, String) {
            let s = s.trim_start_matches('/');
            match s.split_once('/') {
                Some((a, b)) => (a.to_owned(), b.to_owned()),
                None => (s.to_owned(), String::new()),
            }
        };
        if matches!(
            scheme.as_str(),
            "s3" | "s3a" | "gs" | "gcs" | "az" | "azure"
        ) && rest.starts_with('/')
        {
            return Err(err("the bucket name is missing"));
        }
        match scheme.as_str() {
            "s3" | "s3a" => {
                let (bucket, path) = split_first(rest);
                if bucket.is_empty() {
                    return Err(err("the bucket name is missing"));
                }
                Ok(mk(Provider::S3, &bucket, &path))
            }
            "gs" | "gcs" => {
                let (bucket, path) = split_first(rest);
                if bucket.is_empty() {
                    return Err(err("the bucket name is missing"));
                }
                Ok(mk(Provider::Gcs, &bucket, &path))
            }
            "az" | "azure" | "abfs" | "abfss" => {
                // az://CONTAINER/PATH, or the abfs form CONTAINER@ACCOUNT.dfs.core.windows.net/PATH
                let (first, path) = split_first(rest);
                if let Some((container, host)) = first.split_once('@') {
                    let account = host.split('.').next().unwrap_or_default();
                    let mut l = mk(Provider::Azure, container, &path);
                    l.account = Some(account.to_owned());
                    return Ok(l);
                }
                if first.is_empty() {
                    return Err(err("the container name is missing"));
                }
                Ok(mk(Provider::Azure, &first, &path))
            }
            "file" => {
                let path = rest;
                if !path.starts_with('/') {
                    return Err(err(
                        "file:// needs an absolute path, e.g. file:///var/backups/catalog",
                    ));
                }
                Ok(Location {
                    provider: Provider::File,
                    bucket: path.trim_end_matches('/').to_owned(),
                    prefix: String::new(),
                    account: None,
                    endpoint: None,
                    original: dest.to_owned(),
                })
            }
            "http" | "https" => {
                let (host, path) = match rest.split_once('/') {
                    Some((h, p)) => (h, p),
                    None => (rest, ""),
                };
                let hostname = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
                if hostname == "console.cloud.google.com" {
                    let path = path.strip_prefix("storage/browser/").ok_or_else(|| {
                        err("expected https://console.cloud.google.com/storage/browser/BUCKET/PATH")
                    })?;
                    let (bucket, p) = split_first(path);
                    return Ok(mk(Provider::Gcs, &bucket, &p));
                }
                if let Some(account) = hostname.strip_suffix(".blob.core.windows.net") {
                    let (container, p) = split_first(path);
                    if container.is_empty() {
                        return Err(err("the container name is missing"));
                    }
                    let mut l = mk(Provider::Azure, &container, &p);
                    l.account = Some(account.to_owned());
                    return Ok(l);
                }
                match hint {
                    Some(Provider::Azure) => {
                        // Emulator form: http://HOST:PORT/ACCOUNT/CONTAINER/PATH
                        let (account, after) = split_first(path);
                        let (container, p) = split_first(&after);
                        if account.is_empty() || container.is_empty() {
                            return Err(err(
                                "the Azure emulator form is http://HOST:PORT/ACCOUNT/CONTAINER/PATH",
                            ));
                        }
                        let mut l = mk(Provider::Azure, &container, &p);
                        l.endpoint = Some(format!("{scheme}://{host}/{account}"));
                        l.account = Some(account);
                        Ok(l)
                    }
                    _ => Err(err(
                        "an http(s) URL is only understood for Azure (ACCOUNT.blob.core.windows.net, or the emulator form with --cloud-provider azure-blob-storage) and the Google console; for S3-compatible stores use s3://BUCKET/PATH with --endpoint-url",
                    )),
                }
            }
            other => Err(err(&format!(
                "unknown scheme `{other}`; expected s3, gs, az, https or file"
            ))),
        }
    }

    /// The key prefix of server folder `server` (no trailing `/`).
    #[must_use]
    pub fn server_prefix(&self, server: &str) -> String {
        if self.prefix.is_empty() {
            server.to_owned()
        } else {
            format!("{}/{server}", self.prefix)
        }
    }

    /// Display form of the destination with the server appended.
    #[must_use]
    pub fn display_server(&self, server: &str) -> String {
        format!("{}/{server}", self.original.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_and_gcs() {
        let l = Location::parse("s3://acme-pg-backups/prod/", None).unwrap();
        assert_eq!(
            (l.provider, l.bucket.as_str(), l.prefix.as_str()),
            (Provider::S3, "acme-pg-backups", "prod")
        );
        assert_eq!(l.server_prefix("pg-main"), "prod/pg-main");
        let l = Location::parse("s3://bucket", None).unwrap();
        assert_eq!(l.prefix, "");
        assert_eq!(l.server_prefix("pg"), "pg");
        let l = Location::parse("gs://b//a/b/", None).unwrap();
        assert_eq!((l.provider, l.prefix.as_str()), (Provider::Gcs, "a/b"));
        let l =
            Location::parse("https://console.cloud.google.com/storage/browser/b/p", None).unwrap();
        assert_eq!(
            (l.provider, l.bucket.as_str(), l.prefix.as_str()),
            (Provider::Gcs, "b", "p")
        );
    }

    #[test]
    fn azure_forms() {
        let l = Location::parse("https://acct.blob.core.windows.net/cont/prod", None).unwrap();
        assert_eq!(
            (
                l.provider,
                l.bucket.as_str(),
                l.prefix.as_str(),
                l.account.as_deref()
            ),
            (Provider::Azure, "cont", "prod", Some("acct"))
        );
        let l = Location::parse(
            "http://127.0.0.1:10000/devstoreaccount1/cont/p",
            Some(Provider::Azure),
        )
        .unwrap();
        assert_eq!(
            l.endpoint.as_deref(),
            Some("http://127.0.0.1:10000/devstoreaccount1")
        );
        assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("cont", "p"));
        let l = Location::parse("az://cont/p", None).unwrap();
        assert_eq!((l.provider, l.account), (Provider::Azure, None));
        assert!(Location::parse("http://127.0.0.1:9000/b", None).is_err());
    }

    #[test]
    fn files_and_errors() {
        let l = Location::parse("file:///tmp/catalog/", None).unwrap();
        assert_eq!(
            (l.provider, l.bucket.as_str()),
            (Provider::File, "/tmp/catalog")
        );
        for bad in [
            "bucket/path",
            "s3://",
            "file://relative",
            "ftp://x/y",
            "gs:///x",
        ] {
            assert!(Location::parse(bad, None).is_err(), "{bad}");
        }
    }
}
