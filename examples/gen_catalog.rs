//! Writes a synthetic, format-correct catalog into an object store, for benchmarks:
//! `cargo run --release --example gen_catalog -- DEST SERVER WAL_OBJECTS [TIMELINES]`.
//! WAL objects are empty (only names, sizes and order matter to listing), spread over
//! the given number of timelines; one DONE backup per 5000 segments gets a real-looking
//! `backup.info`. S3 settings come from the usual AWS_* variables and AWS_ENDPOINT_URL.
#![allow(clippy::print_stderr)] // a developer tool, not part of the binary

use std::process::ExitCode;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt, stream};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use cnpg_ops::catalog::wal::SegmentSize;
use cnpg_ops::store::{Location, StoreOptions};

#[path = "../benches/support/synthetic.rs"]
mod synthetic;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: gen_catalog DEST SERVER WAL_OBJECTS [TIMELINES]");
        return ExitCode::from(2);
    }
    let (dest, server) = (&args[0], &args[1]);
    let total: u64 = args[2].parse().expect("WAL_OBJECTS is a number");
    let timelines: u64 = args
        .get(3)
        .map_or(1, |t| t.parse().expect("TIMELINES is a number"));
    let location = Location::parse(dest, None).expect("a destination URL");
    let root = location.server_prefix(server);
    let options = StoreOptions {
        endpoint_url: std::env::var("AWS_ENDPOINT_URL").ok(),
        ..StoreOptions::default()
    };
    let store: Arc<dyn ObjectStore> = cnpg_ops::store::Store::open(location, options)
        .expect("store")
        .raw();
    let size = SegmentSize::default();
    let per_tli = total / timelines;
    let mut keys: Vec<(String, Vec<u8>)> = Vec::new();
    for t in 0..timelines {
        let tli = u32::try_from(t + 1).unwrap();
        let first = t * per_tli + 1;
        for segno in first..first + per_tli {
            let name = size.name(tli, segno);
            keys.push((format!("{root}/wals/{}/{name}.gz", &name[..16]), Vec::new()));
            if (segno - first).is_multiple_of(5000) {
                let id = format!(
                    "2026{:02}{:02}T{:02}0000",
                    1 + (segno / 5000 / 28) % 12,
                    1 + (segno / 5000) % 28,
                    (segno / 5000) % 24
                );
                keys.push((
                    format!("{root}/base/{id}/backup.info"),
                    synthetic::backup_info(&id, tli, size, segno, segno + 1).into_bytes(),
                ));
                keys.push((format!("{root}/base/{id}/data.tar.gz"), vec![0u8; 16]));
            }
        }
        if tli > 1 {
            keys.push((
                format!("{root}/wals/{tli:08X}.history"),
                format!("{}\t{}\tsynthetic\n", tli - 1, size.start_lsn(first)).into_bytes(),
            ));
        }
    }
    let started = std::time::Instant::now();
    let n = keys.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let result: Result<Vec<()>, object_store::Error> = stream::iter(keys)
        .map(|(k, body)| {
            let store = store.clone();
            let done = &done;
            async move {
                store.put(&Path::from(k), PutPayload::from(body)).await?;
                let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if d.is_multiple_of(10_000) {
                    eprintln!("{d} objects written");
                }
                Ok(())
            }
        })
        .buffer_unordered(64)
        .try_collect()
        .await;
    if let Err(e) = result {
        eprintln!("error: {e}");
        return ExitCode::from(3);
    }
    eprintln!("{n} objects written in {:.1?}", started.elapsed());
    ExitCode::SUCCESS
}
