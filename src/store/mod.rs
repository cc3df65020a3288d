//! Access to the object store that holds a barman-cloud catalog.
//!
//! Owns: turning a destination URL plus the environment into a client
//! (`object_store` for S3, GCS, Azure and local mirrors), listing a prefix in
//! parallel, reading small objects with a size cap, and classifying
//! failures. A listing is complete or an error: a page that fails after its
//! retries fails the whole read. Does not own: what the objects mean (`catalog`).

pub mod bucket;
pub mod error;
pub mod gcs_json;
pub mod list;
pub mod location;
pub mod read;
pub mod walfetch;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::list::{PaginatedListOptions, PaginatedListResult, PaginatedListStore};
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, RetryConfig};

pub use error::{AccessKind, StoreError};
pub use location::{Location, Provider};

/// How the WAL prefix is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListStrategy {
    /// Key ranges for S3/GCS/Azure, one stream for local mirrors.
    #[default]
    Auto,
    /// Parallel listing of key ranges with `start-after`.
    Ranges,
    /// A delimiter listing of hash directories, then each directory in parallel.
    Dirs,
    /// One stream of pages.
    Sequential,
}

impl std::str::FromStr for ListStrategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(ListStrategy::Auto),
            "ranges" => Ok(ListStrategy::Ranges),
            "dirs" => Ok(ListStrategy::Dirs),
            "sequential" => Ok(ListStrategy::Sequential),
            _ => Err(format!(
                "`{s}` is not a listing strategy; expected auto, ranges, dirs or sequential"
            )),
        }
    }
}

/// S3 keys read from a Kubernetes Secret: held in memory only, never
/// printed (Debug shows the key id's first characters and nothing of the secret).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Keys {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Where they came from, for messages (`namespace/secret`).
    pub from: String,
}

impl std::fmt::Debug for S3Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: String = self.access_key_id.chars().take(4).collect();
        f.debug_struct("S3Keys")
            .field("access_key_id", &format!("{shown}…"))
            .field("secret_access_key", &"<redacted>")
            .field("from", &self.from)
            .finish()
    }
}

/// Settings for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Custom endpoint (`MinIO`, Ceph, R2, B2, an emulator).
    pub endpoint_url: Option<String>,
    /// Parallel requests.
    pub concurrency: usize,
    /// WAL listing strategy.
    pub strategy: ListStrategy,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries per request.
    pub max_retries: usize,
    /// S3 keys to use instead of the environment's.
    pub s3_keys: Option<S3Keys>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            endpoint_url: None,
            concurrency: 16,
            strategy: ListStrategy::Auto,
            timeout: Duration::from_mins(1),
            max_retries: 5,
            s3_keys: None,
        }
    }
}

/// The one paging primitive every cloud listing goes through.
pub(crate) enum Pager {
    /// `object_store`'s own paginated listing (S3, Azure).
    Store(Arc<dyn PaginatedListStore>),
    /// GCS through the JSON API.
    GcsJson(gcs_json::GcsJsonList),
}

impl Pager {
    /// One page under `prefix` (not a path: no `/` is added).
    pub(crate) async fn page(
        &self,
        prefix: &str,
        opts: PaginatedListOptions,
    ) -> Result<PaginatedListResult, object_store::Error> {
        match self {
            Pager::Store(s) => s.list_paginated(Some(prefix), opts).await,
            Pager::GcsJson(g) => g.list_paginated(Some(prefix), opts).await,
        }
    }
}

/// An opened store.
pub struct Store {
    /// Where the catalog lives.
    pub location: Location,
    object: Arc<dyn ObjectStore>,
    paged: Option<Arc<Pager>>,
    /// Options it was opened with.
    pub options: StoreOptions,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Reads `AccountName`, `AccountKey`, `BlobEndpoint`, `SharedAccessSignature` from an Azure connection string.
fn connection_string_field(cs: &str, field: &str) -> Option<String> {
    cs.split(';')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(field))
        .map(|(_, v)| v.trim().to_owned())
}

impl Store {
    /// Opens the store for `location`.
    pub fn open(location: Location, options: StoreOptions) -> Result<Store, StoreError> {
        let config_err = |e: object_store::Error| StoreError::Config {
            what: location.original.clone(),
            detail: e.to_string(),
        };
        let endpoint = options
            .endpoint_url
            .clone()
            .or_else(|| location.endpoint.clone());
        let client = ClientOptions::new()
            .with_timeout(options.timeout)
            .with_connect_timeout(Duration::from_secs(10))
            .with_allow_http(
                endpoint
                    .as_deref()
                    .is_some_and(|e| e.starts_with("http://")),
            );
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(10),
                base: 2.0,
            },
            max_retries: options.max_retries,
            retry_timeout: Duration::from_mins(2),
        };
        let (object, paged): (Arc<dyn ObjectStore>, Option<Pager>) = match location.provider {
            Provider::File => {
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&location.bucket)
                    .map_err(|e| StoreError::Access {
                        kind: AccessKind::NoSuchBucket,
                        what: location.original.clone(),
                        detail: e.to_string(),
                    })?;
                (Arc::new(fs), None)
            }
            Provider::S3 => {
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(&location.bucket)
                    .with_client_options(client)
                    .with_retry(retry);
                if env("AWS_DEFAULT_REGION").is_none()
                    && let Some(r) = env("AWS_REGION")
                {
                    b = b.with_region(r);
                }
                if let Some(e) = &endpoint {
                    b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
                }
                if let Some(k) = &options.s3_keys {
                    b = b
                        .with_access_key_id(&k.access_key_id)
                        .with_secret_access_key(&k.secret_access_key);
                }
                let s = Arc::new(b.build().map_err(config_err)?);
                (s.clone(), Some(Pager::Store(s)))
            }
            Provider::Gcs => {
                let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&location.bucket)
                    .with_retry(retry);
                let emulator = endpoint.clone().or_else(|| {
                    env("STORAGE_EMULATOR_HOST").map(|h| {
                        if h.contains("://") {
                            h
                        } else {
                            format!("http://{h}")
                        }
                    })
                });
                let mut signed = true;
                if let Some(e) = &emulator {
                    b = b.with_base_url(e.trim_end_matches('/'));
                    if env("GOOGLE_APPLICATION_CREDENTIALS").is_none()
                        && env("GOOGLE_SERVICE_ACCOUNT").is_none()
                        && env("GOOGLE_SERVICE_ACCOUNT_KEY").is_none()
                    {
                        b = b.with_skip_signature(true);
                        signed = false;
                    }
                }
                let http = emulator
                    .as_deref()
                    .is_some_and(|e| e.starts_with("http://"));
                let s = Arc::new(
                    b.with_client_options(client.with_allow_http(http))
                        .build()
                        .map_err(config_err)?,
                );
                let base = emulator.unwrap_or_else(|| "https://storage.googleapis.com".to_owned());
                let creds = signed.then(|| s.credentials().clone());
                let lister = gcs_json::GcsJsonList::new(
                    &base,
                    &location.bucket,
                    creds,
                    options.timeout,
                    options.max_retries,
                )
                .map_err(config_err)?;
                (s, Some(Pager::GcsJson(lister)))
            }
            Provider::Azure => {
                let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_container_name(&location.bucket)
                    .with_client_options(client)
                    .with_retry(retry);
                let cs = env("AZURE_STORAGE_CONNECTION_STRING");
                let account = location
                    .account
                    .clone()
                    .or_else(|| {
                        cs.as_deref()
                            .and_then(|c| connection_string_field(c, "AccountName"))
                    })
                    .or_else(|| {
                        env("AZURE_STORAGE_ACCOUNT_NAME").or_else(|| env("AZURE_STORAGE_ACCOUNT"))
                    });
                if let Some(a) = &account {
                    b = b.with_account(a);
                }
                if let Some(c) = &cs {
                    if let Some(k) = connection_string_field(c, "AccountKey") {
                        b = b.with_access_key(k);
                    }
                    if let Some(sas) = connection_string_field(c, "SharedAccessSignature") {
                        let pairs = sas
                            .split('&')
                            .filter_map(|kv| kv.split_once('='))
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .collect::<Vec<_>>();
                        b = b.with_sas_authorization(pairs);
                    }
                } else if account.as_deref() == Some("devstoreaccount1")
                    && env("AZURE_STORAGE_KEY").is_none()
                {
                    // The emulator's well-known development key.
                    b = b.with_access_key("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==");
                }
                if let Some(k) = env("AZURE_STORAGE_KEY") {
                    b = b.with_access_key(k);
                }
                let blob_endpoint = endpoint.or_else(|| {
                    cs.as_deref()
                        .and_then(|c| connection_string_field(c, "BlobEndpoint"))
                });
                if let Some(e) = blob_endpoint {
                    let http = e.starts_with("http://");
                    b = b
                        .with_endpoint(e.trim_end_matches('/').to_owned())
                        .with_allow_http(http);
                }
                let s = Arc::new(b.build().map_err(config_err)?);
                (s.clone(), Some(Pager::Store(s)))
            }
        };
        Ok(Store {
            location,
            object,
            paged: paged.map(Arc::new),
            options,
        })
    }

    /// The underlying `object_store` client (for tools that write catalogs).
    #[must_use]
    pub fn raw(&self) -> Arc<dyn ObjectStore> {
        self.object.clone()
    }

    /// The GCS JSON API client, for a `gs://` store.
    pub(crate) fn gcs_json(&self) -> Option<&gcs_json::GcsJsonList> {
        match self.paged.as_deref() {
            Some(Pager::GcsJson(g)) => Some(g),
            _ => None,
        }
    }

    /// A URL-like name of `key` for messages.
    #[must_use]
    pub fn describe(&self, key: &str) -> String {
        match self.location.provider {
            Provider::File => format!("file://{}/{key}", self.location.bucket),
            Provider::S3 => format!("s3://{}/{key}", self.location.bucket),
            Provider::Gcs => format!("gs://{}/{key}", self.location.bucket),
            Provider::Azure => format!("az://{}/{key}", self.location.bucket),
        }
    }

    fn path(&self, key: &str) -> Result<Path, StoreError> {
        Path::parse(key.trim_end_matches('/')).map_err(|e| StoreError::Config {
            what: self.describe(key),
            detail: e.to_string(),
        })
    }

    /// Names of the folders directly under `prefix` (a key prefix without trailing `/`).
    pub async fn folders(&self, prefix: &str) -> Result<BTreeSet<String>, StoreError> {
        if let Some(p) = self.paged.as_deref() {
            let root = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            };
            let res = self.paged_folders(p, &root).await?;
            return Ok(res
                .common_prefixes
                .iter()
                .filter_map(|p| p.filename().map(str::to_owned))
                .collect());
        }
        let path = if prefix.is_empty() {
            None
        } else {
            Some(self.path(prefix)?)
        };
        let res = self
            .object
            .list_with_delimiter(path.as_ref())
            .await
            .map_err(|e| {
                StoreError::from_object_store(format!("listing {}/", self.describe(prefix)), &e)
            })?;
        Ok(res
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect())
    }

    /// Reads `key`, refusing objects larger than `limit` bytes.
    pub async fn get_bounded(&self, key: &str, limit: u64) -> Result<Bytes, ReadError> {
        let read_err = |e: &object_store::Error| {
            ReadError::Store(StoreError::from_object_store(
                format!("reading {}", self.describe(key)),
                e,
            ))
        };
        let within = |bytes: Bytes| {
            if bytes.len() as u64 > limit {
                Err(ReadError::TooLarge {
                    size: bytes.len() as u64,
                    limit,
                })
            } else {
                Ok(bytes)
            }
        };
        if let Some(Pager::GcsJson(g)) = self.paged.as_deref() {
            return within(g.get_prefix(key, limit).await.map_err(|e| read_err(&e))?);
        }
        let path = self.path(key).map_err(ReadError::Store)?;
        let opts = GetOptions {
            range: Some(GetRange::Bounded(0..limit + 1)),
            ..GetOptions::default()
        };
        let res = match self.object.get_opts(&path, opts).await {
            Ok(r) => r,
            // No byte of an empty object can be asked for: S3 servers answer 416, the
            // local file store an invalid range. Its size tells.
            Err(e)
                if error::status_of(&e) == Some(416)
                    || e.to_string().to_ascii_lowercase().contains("range") =>
            {
                return match object_store::ObjectStoreExt::head(&self.object, &path).await {
                    Ok(meta) if meta.size == 0 => Ok(Bytes::new()),
                    _ => Err(read_err(&e)),
                };
            }
            Err(e) => return Err(read_err(&e)),
        };
        if res.meta.size > limit {
            return Err(ReadError::TooLarge {
                size: res.meta.size,
                limit,
            });
        }
        within(res.bytes().await.map_err(|e| read_err(&e))?)
    }
}

/// Why one object could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The object is larger than this reader accepts.
    #[error("the object is {size} bytes, over the {limit}-byte limit; not read")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
}
