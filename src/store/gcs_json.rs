//! Listing Google Cloud Storage through its JSON API.
//!
//! `object_store` talks to GCS through the XML API. The JSON API is the one every Google
//! client library and emulator speaks (gcp-storage-emulator serves nothing else), and it
//! takes `startOffset` for ranged listing; listing and the small reads the catalog needs
//! go through it, with `object_store`'s credential provider for the bearer token.

use std::fmt::Write as _;
use std::time::Duration;

use object_store::gcp::GcpCredentialProvider;
use object_store::list::{PaginatedListOptions, PaginatedListResult};
use object_store::path::Path;
use object_store::{ListResult, ObjectMeta};
use serde::Deserialize;

/// Lists one bucket through `GET {base}/storage/v1/b/{bucket}/o`.
#[derive(Debug)]
pub struct GcsJsonList {
    client: reqwest::Client,
    base: String,
    bucket: String,
    credentials: Option<GcpCredentialProvider>,
    max_retries: usize,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(default)]
    items: Vec<Item>,
    #[serde(default)]
    prefixes: Vec<String>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct Item {
    name: String,
    /// A decimal string in the JSON API.
    size: String,
    updated: chrono::DateTime<chrono::Utc>,
}

/// An error of the JSON listing, shaped like `object_store`'s so one classifier reads both.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ListError(String);

fn generic(msg: String) -> object_store::Error {
    object_store::Error::Generic {
        store: "GCS",
        source: Box::new(ListError(msg)),
    }
}

impl GcsJsonList {
    /// A lister for `bucket` at `base` (`https://storage.googleapis.com` or an emulator).
    pub fn new(
        base: &str,
        bucket: &str,
        credentials: Option<GcpCredentialProvider>,
        timeout: Duration,
        max_retries: usize,
    ) -> Result<GcsJsonList, object_store::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| generic(format!("cannot build the HTTP client: {e}")))?;
        Ok(GcsJsonList {
            client,
            base: base.trim_end_matches('/').to_owned(),
            bucket: bucket.to_owned(),
            credentials,
            max_retries,
        })
    }

    /// One page of keys under `prefix`. `offset` is exclusive, as for S3's `start-after`.
    pub async fn list_paginated(
        &self,
        prefix: Option<&str>,
        opts: PaginatedListOptions,
    ) -> Result<PaginatedListResult, object_store::Error> {
        let url = format!("{}/storage/v1/b/{}/o", self.base, self.bucket);
        // startOffset is inclusive: ask for one more and drop the offset itself.
        let max = opts.max_keys.unwrap_or(1000) + usize::from(opts.offset.is_some());
        let mut query: Vec<(&str, String)> = vec![
            ("maxResults", max.to_string()),
            (
                "fields",
                "items(name,size,updated),prefixes,nextPageToken".to_owned(),
            ),
        ];
        if let Some(p) = prefix.filter(|p| !p.is_empty()) {
            query.push(("prefix", p.to_owned()));
        }
        if let Some(d) = &opts.delimiter {
            query.push(("delimiter", d.to_string()));
        }
        if let Some(o) = &opts.offset {
            query.push(("startOffset", o.clone()));
        }
        if let Some(t) = &opts.page_token {
            query.push(("pageToken", t.clone()));
        }
        let page = self.get_page(&url, &query).await?;
        let mut objects = Vec::with_capacity(page.items.len());
        for item in page.items {
            if opts
                .offset
                .as_deref()
                .is_some_and(|o| item.name.as_str() <= o)
            {
                continue;
            }
            let size = item
                .size
                .parse()
                .map_err(|_| generic(format!("object {} has size `{}`", item.name, item.size)))?;
            objects.push(ObjectMeta {
                location: Path::parse(&item.name)
                    .map_err(|e| generic(format!("object name {}: {e}", item.name)))?,
                last_modified: item.updated,
                size,
                e_tag: None,
                version: None,
            });
        }
        let common_prefixes = page
            .prefixes
            .iter()
            .map(|p| Path::parse(p.trim_end_matches('/')))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PaginatedListResult {
            result: ListResult {
                common_prefixes,
                objects,
                extensions: object_store::Extensions::default(),
            },
            page_token: page.next_page_token,
        })
    }

    async fn get_page(
        &self,
        url: &str,
        query: &[(&str, String)],
    ) -> Result<Page, object_store::Error> {
        let body = self
            .send(|| self.client.get(url).query(query), &self.bucket)
            .await?;
        serde_json::from_slice(&body)
            .map_err(|e| generic(format!("the list response is not the expected JSON: {e}")))
    }

    /// Reads the first `limit + 1` bytes of `key` (enough to tell an object over `limit`).
    pub async fn get_prefix(
        &self,
        key: &str,
        limit: u64,
    ) -> Result<bytes::Bytes, object_store::Error> {
        let name = percent_encode(key);
        let url = format!("{}/storage/v1/b/{}/o/{name}", self.base, self.bucket);
        self.send(
            || {
                self.client
                    .get(&url)
                    .query(&[("alt", "media")])
                    .header("Range", format!("bytes=0-{limit}"))
            },
            key,
        )
        .await
    }

    /// The bucket resource's lifecycle, versioning and retention policy.
    pub async fn bucket_metadata(&self) -> Result<serde_json::Value, object_store::Error> {
        let url = format!("{}/storage/v1/b/{}", self.base, self.bucket);
        let body = self
            .send(
                || {
                    self.client
                        .get(&url)
                        .query(&[("fields", "lifecycle,versioning,retentionPolicy")])
                },
                &self.bucket,
            )
            .await?;
        serde_json::from_slice(&body)
            .map_err(|e| generic(format!("the bucket resource is not the expected JSON: {e}")))
    }

    /// Sends a request with retries on 5xx, 429 and connection failures; maps statuses to
    /// `object_store` errors about `what`.
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
        what: &str,
    ) -> Result<bytes::Bytes, object_store::Error> {
        let mut attempt = 0;
        loop {
            let mut req = build();
            if let Some(c) = &self.credentials {
                req = req.bearer_auth(&c.get_credential().await?.bearer);
            }
            let (retryable, err) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp
                        .bytes()
                        .await
                        .map_err(|e| generic(format!("reading the response for {what}: {e}")))?;
                    if status.is_success() {
                        return Ok(body);
                    }
                    let text = String::from_utf8_lossy(&body)
                        .chars()
                        .take(300)
                        .collect::<String>();
                    let source = Box::new(ListError(format!("HTTP {}: {text}", status.as_u16())));
                    let err = match status.as_u16() {
                        404 if what == self.bucket
                            || text.to_ascii_lowercase().contains("bucket") =>
                        {
                            generic(format!(
                                "NoSuchBucket: HTTP 404 for gs://{}: {text}",
                                self.bucket
                            ))
                        }
                        404 => object_store::Error::NotFound {
                            path: what.to_owned(),
                            source,
                        },
                        401 => object_store::Error::Unauthenticated {
                            path: what.to_owned(),
                            source,
                        },
                        403 => object_store::Error::PermissionDenied {
                            path: what.to_owned(),
                            source,
                        },
                        // An empty object cannot satisfy a byte range.
                        416 => return Ok(bytes::Bytes::new()),
                        s => generic(format!(
                            "server returned HTTP {s} for gs://{}/{what}: {text}",
                            self.bucket
                        )),
                    };
                    (status.is_server_error() || status.as_u16() == 429, err)
                }
                Err(e) => {
                    let mut msg = e.to_string();
                    let mut src = std::error::Error::source(&e);
                    while let Some(s) = src {
                        msg.push_str(": ");
                        msg.push_str(&s.to_string());
                        src = s.source();
                    }
                    (!e.is_builder(), generic(msg))
                }
            };
            if !retryable || attempt >= self.max_retries {
                return Err(err);
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
        }
    }
}

/// Percent-encodes an object name for a JSON API path (every byte but unreserved ones).
fn percent_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn object_names_are_encoded_whole() {
        assert_eq!(super::percent_encode("a/b c+d.info"), "a%2Fb%20c%2Bd.info");
    }
}
