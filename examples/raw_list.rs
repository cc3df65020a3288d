//! The practical limit of listing a catalog: the fastest plain parallel
//! listing of the same keys, doing nothing with them but count.
//! `cargo run --release --example raw_list -- DEST SERVER [CONCURRENCY]`.
//!
//! One delimiter listing finds the hash directories under `wals/`; they are
//! cut into CONCURRENCY contiguous ranges, each listed with full pages from
//! just before its first directory to its last (object_store's `offset`, the
//! S3 `start-after`), all at once, beside the listing of `base/`. S3 settings
//! come from the usual AWS_* variables and AWS_ENDPOINT_URL.
#![allow(clippy::print_stderr, clippy::print_stdout)] // a developer tool, not part of the binary

use std::process::ExitCode;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt, stream};
use object_store::ObjectStore;
use object_store::path::Path;

use cnpg_ops::store::{Location, StoreOptions};

/// Counts the keys of `prefix` after `offset` (all of them without one) up to
/// and including those under `last_dir`.
async fn count(
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    offset: Option<Path>,
    last_dir: Option<String>,
) -> Result<(u64, u64), object_store::Error> {
    let mut listing = match &offset {
        Some(o) => store.list_with_offset(Some(&prefix), o),
        None => store.list(Some(&prefix)),
    };
    let (mut n, mut bytes) = (0u64, 0u64);
    while let Some(m) = listing.try_next().await? {
        if let Some(last) = &last_dir {
            let key = m.location.as_ref();
            // Past the range's last directory: the next range lists it.
            if key > last.as_str() && !key.starts_with(last.as_str()) {
                break;
            }
            // Files beside the directories (history files) come with the delimiter listing.
            if !key[prefix.as_ref().len() + 1..].contains('/') {
                continue;
            }
        }
        n += 1;
        bytes += m.size;
    }
    Ok((n, bytes))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: raw_list DEST SERVER [CONCURRENCY]");
        return ExitCode::from(2);
    }
    let concurrency: usize = args.get(2).map_or(16, |c| c.parse().expect("a number"));
    let location = Location::parse(&args[0], None).expect("a destination URL");
    let root = location.server_prefix(&args[1]);
    let options = StoreOptions {
        endpoint_url: std::env::var("AWS_ENDPOINT_URL").ok(),
        ..StoreOptions::default()
    };
    let store = cnpg_ops::store::Store::open(location, options)
        .expect("store")
        .raw();
    let started = std::time::Instant::now();
    let wals = Path::from(format!("{root}/wals"));
    let top = match store.list_with_delimiter(Some(&wals)).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    };
    let mut dirs: Vec<String> = top
        .common_prefixes
        .iter()
        .map(|p| format!("{}/", p.as_ref()))
        .collect();
    dirs.sort();
    let per = dirs.len().div_ceil(concurrency.max(1)).max(1);
    // Each range starts just before its first directory and ends after its last one.
    let mut jobs: Vec<(Option<Path>, Option<String>)> = dirs
        .chunks(per)
        .map(|c| {
            let first = c[0].trim_end_matches('/');
            // The greatest key below `first/`: `first` itself sorts before any key in it.
            (Some(Path::from(first)), Some(c[c.len() - 1].clone()))
        })
        .collect();
    if jobs.is_empty() {
        jobs.push((None, None));
    }
    let mut tasks: Vec<(Path, Option<Path>, Option<String>)> = jobs
        .into_iter()
        .map(|(o, l)| (wals.clone(), o, l))
        .collect();
    tasks.push((Path::from(format!("{root}/base")), None, None));
    let results: Result<Vec<(u64, u64)>, object_store::Error> = stream::iter(tasks)
        .map(|(p, o, l)| count(store.clone(), p, o, l))
        .buffer_unordered(concurrency + 1)
        .try_collect()
        .await;
    match results {
        Ok(r) => {
            let n: u64 = r.iter().map(|x| x.0).sum::<u64>() + top.objects.len() as u64;
            let bytes: u64 = r.iter().map(|x| x.1).sum();
            println!(
                "{n} objects ({bytes} bytes) in {:.3} s",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(3)
        }
    }
}
