//! Parallel listing of a catalog prefix into a compact [`Listing`].
//!
//! Strategies for the WAL prefix (measured in `BENCHMARKS.md`):
//! - **ranges**: a handful of one-key probes find each timeline's first and
//!   last hash directory; the key space is then cut into contiguous ranges
//!   listed in parallel with `start-after`. The ranges partition the whole
//!   key space, so the result is complete whatever the probes found; the
//!   probes only balance the work.
//! - **dirs**: a delimiter listing of `wals/` gives the hash directories,
//!   each then listed in parallel. Some servers make delimiter listings slow.
//! - **sequential**: one stream of pages.

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::{StreamExt, TryStreamExt, stream};
use object_store::ObjectMeta;
use object_store::list::PaginatedListOptions;

use super::{ListStrategy, Pager, Store, StoreError};
use crate::catalog::listing::Listing;

/// Keys per page (the S3 maximum).
const PAGE: usize = 1000;
/// Ranges per worker, so that uneven ranges even out.
const RANGES_PER_WORKER: usize = 4;

/// Classifies one listed object by its key relative to `strip`.
fn add_meta(listing: &mut Listing, strip: &str, meta: &ObjectMeta) {
    if let Some(rel) = meta.location.as_ref().strip_prefix(strip) {
        listing.add(rel, meta.size, meta.last_modified);
    }
}

/// Progress callback: objects listed so far.
pub type Progress<'a> = &'a (dyn Fn(usize) + Send + Sync);

impl Store {
    /// Lists everything under `root` (a prefix ending in `/`), strips `strip` from the keys,
    /// and classifies each object.
    pub async fn list_tree(
        &self,
        root: &str,
        strip: &str,
        strategy: ListStrategy,
        progress: Progress<'_>,
    ) -> Result<Listing, StoreError> {
        match (strategy, self.paged.as_deref()) {
            (ListStrategy::Sequential | ListStrategy::Auto | ListStrategy::Ranges, None) => {
                self.list_sequential(root, strip, progress).await
            }
            (ListStrategy::Dirs, None) => self.list_dirs(root, strip, progress).await,
            (ListStrategy::Sequential, Some(p)) => {
                let listing = self.list_range(p, root, strip, None, None).await?;
                progress(listing.len());
                Ok(listing)
            }
            (ListStrategy::Dirs, Some(p)) => {
                let top = self.paged_folders(p, root).await?;
                let mut listing = Listing::default();
                for meta in &top.objects {
                    add_meta(&mut listing, strip, meta);
                }
                let dirs: Vec<String> = top
                    .common_prefixes
                    .iter()
                    .map(|d| format!("{d}/"))
                    .collect();
                self.gather(listing, dirs, progress, |dir| async move {
                    self.list_range(p, &dir, strip, None, None).await
                })
                .await
            }
            (ListStrategy::Auto | ListStrategy::Ranges, Some(p)) => {
                self.list_ranges(p, root, strip, progress).await
            }
        }
    }

    /// A complete delimiter listing of `root` (a prefix ending in `/`, or empty) through pages.
    pub(crate) async fn paged_folders(
        &self,
        paged: &Pager,
        root: &str,
    ) -> Result<object_store::ListResult, StoreError> {
        let mut all = object_store::ListResult {
            common_prefixes: Vec::new(),
            objects: Vec::new(),
            extensions: object_store::Extensions::default(),
        };
        let mut token = None;
        loop {
            let opts = PaginatedListOptions {
                delimiter: Some("/".into()),
                max_keys: Some(PAGE),
                page_token: token.take(),
                ..PaginatedListOptions::default()
            };
            let page = paged.page(root, opts).await.map_err(|e| {
                StoreError::from_object_store(format!("listing {}", self.describe(root)), &e)
            })?;
            all.common_prefixes.extend(page.result.common_prefixes);
            all.objects.extend(page.result.objects);
            match page.page_token {
                Some(t) => token = Some(t),
                None => return Ok(all),
            }
        }
    }

    async fn list_sequential(
        &self,
        root: &str,
        strip: &str,
        progress: Progress<'_>,
    ) -> Result<Listing, StoreError> {
        self.stream(&self.path(root)?, strip, progress).await
    }

    /// Lists everything under `path` as one stream of pages, reporting progress per page.
    async fn stream(
        &self,
        path: &object_store::path::Path,
        strip: &str,
        progress: Progress<'_>,
    ) -> Result<Listing, StoreError> {
        let mut listing = Listing::default();
        let mut s = self.object.list(Some(path));
        let mut n = 0usize;
        while let Some(item) = s.next().await {
            let meta = item.map_err(|e| {
                StoreError::from_object_store(
                    format!("listing {}/", self.describe(path.as_ref())),
                    &e,
                )
            })?;
            add_meta(&mut listing, strip, &meta);
            n += 1;
            if n.is_multiple_of(PAGE) {
                progress(n);
            }
        }
        progress(n);
        Ok(listing)
    }

    async fn list_dirs(
        &self,
        root: &str,
        strip: &str,
        progress: Progress<'_>,
    ) -> Result<Listing, StoreError> {
        let path = self.path(root)?;
        let top = self
            .object
            .list_with_delimiter(Some(&path))
            .await
            .map_err(|e| {
                StoreError::from_object_store(format!("listing {}", self.describe(root)), &e)
            })?;
        let mut listing = Listing::default();
        for meta in &top.objects {
            add_meta(&mut listing, strip, meta);
        }
        self.gather(listing, top.common_prefixes, progress, |dir| async move {
            self.stream(&dir, strip, &|_| {}).await
        })
        .await
    }

    /// Runs one listing job per item with bounded concurrency, merging the parts into
    /// `listing` and reporting the running total.
    async fn gather<T, F, Fut>(
        &self,
        mut listing: Listing,
        items: Vec<T>,
        progress: Progress<'_>,
        job: F,
    ) -> Result<Listing, StoreError>
    where
        F: Fn(T) -> Fut,
        Fut: Future<Output = Result<Listing, StoreError>>,
    {
        let total = AtomicUsize::new(listing.len());
        let parts: Vec<Listing> = stream::iter(items)
            .map(|item| {
                let (total, part) = (&total, job(item));
                async move {
                    let part = part.await?;
                    progress(total.fetch_add(part.len(), Ordering::Relaxed) + part.len());
                    Ok::<_, StoreError>(part)
                }
            })
            .buffer_unordered(self.options.concurrency.max(1))
            .try_collect()
            .await?;
        for p in parts {
            listing.merge(p);
        }
        Ok(listing)
    }

    /// First key strictly after `after` under `root`, or `None`.
    async fn probe(
        &self,
        paged: &Pager,
        root: &str,
        after: &str,
    ) -> Result<Option<String>, StoreError> {
        let opts = PaginatedListOptions {
            offset: Some(after.to_owned()),
            max_keys: Some(1),
            ..PaginatedListOptions::default()
        };
        let page = paged.page(root, opts).await.map_err(|e| {
            StoreError::from_object_store(format!("listing {}", self.describe(root)), &e)
        })?;
        Ok(page
            .result
            .objects
            .into_iter()
            .map(|o| o.location.as_ref().to_owned())
            .find(|k| k.as_str() > after))
    }

    /// Lists keys in `(start_after, end]` under `root`.
    async fn list_range(
        &self,
        paged: &Pager,
        root: &str,
        strip: &str,
        start_after: Option<String>,
        end: Option<String>,
    ) -> Result<Listing, StoreError> {
        self.list_range_from(paged, root, strip, start_after, end, None)
            .await
    }

    /// Like [`Self::list_range`], continuing from a page token.
    async fn list_range_from(
        &self,
        paged: &Pager,
        root: &str,
        strip: &str,
        start_after: Option<String>,
        end: Option<String>,
        mut token: Option<String>,
    ) -> Result<Listing, StoreError> {
        let mut listing = Listing::default();
        loop {
            let opts = PaginatedListOptions {
                offset: start_after.clone(),
                max_keys: Some(PAGE),
                page_token: token.clone(),
                ..PaginatedListOptions::default()
            };
            let page = paged.page(root, opts).await.map_err(|e| {
                StoreError::from_object_store(
                    format!(
                        "listing {} after {}",
                        self.describe(root),
                        start_after.as_deref().unwrap_or("the start")
                    ),
                    &e,
                )
            })?;
            let mut past_end = false;
            for meta in page.result.objects {
                let key = meta.location.as_ref();
                if end.as_deref().is_some_and(|e| key > e) {
                    past_end = true;
                    continue;
                }
                if start_after.as_deref().is_some_and(|s| key <= s) {
                    continue;
                }
                add_meta(&mut listing, strip, &meta);
            }
            match page.page_token {
                Some(t) if !past_end => token = Some(t),
                _ => return Ok(listing),
            }
        }
    }

    async fn list_ranges(
        &self,
        paged: &Pager,
        root: &str,
        strip: &str,
        progress: Progress<'_>,
    ) -> Result<Listing, StoreError> {
        // One page first: small catalogs end here.
        let first = paged
            .page(
                root,
                PaginatedListOptions {
                    max_keys: Some(PAGE),
                    ..PaginatedListOptions::default()
                },
            )
            .await
            .map_err(|e| {
                StoreError::from_object_store(format!("listing {}", self.describe(root)), &e)
            })?;
        let mut listing = Listing::default();
        let mut last_key = None;
        for meta in &first.result.objects {
            add_meta(&mut listing, strip, meta);
            last_key = Some(meta.location.as_ref().to_owned());
        }
        progress(listing.len());
        let Some(token) = first.page_token else {
            return Ok(listing);
        };
        let Some(last_key) = last_key else {
            // A page may come back empty with more to follow: list the rest in one stream.
            let rest = self
                .list_range_from(paged, root, strip, None, None, Some(token))
                .await?;
            listing.merge(rest);
            progress(listing.len());
            return Ok(listing);
        };
        let splits = self.plan_splits(paged, root, &last_key).await?;
        // Ranges: (last_key, s1], (s1, s2], ..., (sk, ∞).
        let mut bounds: Vec<(Option<String>, Option<String>)> =
            Vec::with_capacity(splits.len() + 1);
        let mut prev = last_key;
        for s in splits {
            bounds.push((Some(prev), Some(s.clone())));
            prev = s;
        }
        bounds.push((Some(prev), None));
        self.gather(listing, bounds, progress, |(a, b)| {
            self.list_range(paged, root, strip, a, b)
        })
        .await
    }

    /// Split keys after `after`: each timeline's hash directories are found with one-key
    /// probes (first directory, then galloping and bisection to the last), and cut into
    /// ranges proportional to their span.
    async fn plan_splits(
        &self,
        paged: &Pager,
        root: &str,
        after: &str,
    ) -> Result<Vec<String>, StoreError> {
        // (timeline, first log, last log) for each timeline with hash directories past `after`.
        let mut spans: Vec<(u32, u32, u32)> = Vec::new();
        let mut cursor = after.to_owned();
        let hash_dir = |key: &str| -> Option<(u32, u32)> {
            let rel = key.strip_prefix(root)?;
            let b = rel.as_bytes();
            if b.len() < 17 || b[16] != b'/' || !b[..16].iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            Some((
                u32::from_str_radix(&rel[..8], 16).ok()?,
                u32::from_str_radix(&rel[8..16], 16).ok()?,
            ))
        };
        let mut probes = 0usize;
        while let Some(key) = self.probe(paged, root, &cursor).await? {
            probes += 1;
            let Some((tli, first_log)) = hash_dir(&key) else {
                // A history file or a stray object: step over it.
                cursor = key;
                continue;
            };
            // The last log with a directory on this timeline, by galloping then bisection.
            let has_dir_from = |log: u64| {
                let probe_after = format!("{root}{tli:08X}{log:08X}");
                async move {
                    let k = self.probe(paged, root, &probe_after).await?;
                    Ok::<_, StoreError>(
                        k.and_then(|k| hash_dir(&k))
                            .filter(|(t, _)| *t == tli)
                            .map(|(_, l)| l),
                    )
                }
            };
            let mut lo = u64::from(first_log);
            let mut step = 1u64;
            let hi;
            loop {
                let cand = (lo + step).min(u64::from(u32::MAX) + 1);
                if cand > u64::from(u32::MAX) {
                    hi = cand;
                    break;
                }
                probes += 1;
                if let Some(l) = has_dir_from(cand).await? {
                    lo = u64::from(l);
                    step *= 2;
                } else {
                    hi = cand;
                    break;
                }
            }
            let mut hi = hi;
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                probes += 1;
                match has_dir_from(mid).await? {
                    Some(l) => lo = u64::from(l),
                    None => hi = mid,
                }
            }
            #[allow(clippy::cast_possible_truncation)]
            spans.push((tli, first_log, lo as u32));
            cursor = format!("{root}{tli:08X}FFFFFFFF/~");
            if tli == u32::MAX {
                break;
            }
        }
        let _ = probes;
        let total: u64 = spans.iter().map(|&(_, a, b)| u64::from(b - a) + 1).sum();
        let want = (self.options.concurrency.max(1) * RANGES_PER_WORKER) as u64;
        let mut splits = Vec::new();
        for &(tli, a, b) in &spans {
            splits.push(format!("{root}{tli:08X}{a:08X}"));
            let len = u64::from(b - a) + 1;
            let n = (want * len).div_ceil(total.max(1)).clamp(1, len);
            for i in 1..n {
                let log = u64::from(a) + i * len / n;
                splits.push(format!("{root}{tli:08X}{log:08X}"));
            }
        }
        splits.retain(|s| s.as_str() > after);
        splits.sort();
        splits.dedup();
        Ok(splits)
    }
}
