//! Criterion benchmarks of the parsers and the in-memory analysis:
//! `cargo bench --bench catalog`. The targets (issue: 1M segments analysed
//! in under a second, cost linear in the number of objects) are read from
//! the printed times, never asserted.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::io::Read;
use std::path::Path;

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use cnpg_ops::catalog::analysis::{AnalysisOptions, Catalog};
use cnpg_ops::catalog::backup_info::BackupInfo;
use cnpg_ops::catalog::history::History;
use cnpg_ops::catalog::listing::CatalogInput;
use cnpg_ops::catalog::names::WalFileName;
use cnpg_ops::catalog::wal::{Lsn, SegmentSize};
use cnpg_ops::catalog::walread::read_segment;

#[path = "support/synthetic.rs"]
mod synthetic;

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// A catalog of `n` WAL segments on two timelines (the second forks at the
/// middle), one backup per 5000 segments, each segment uploaded a minute
/// after the previous one: the listing as the store returns it.
fn synthetic(n: u64) -> CatalogInput {
    let size = SegmentSize::default();
    let mut input = CatalogInput {
        server: "pg".into(),
        ..CatalogInput::default()
    };
    let fork = n / 2;
    let history = format!(
        "1\t{}\tno recovery target specified\n",
        size.start_lsn(fork)
    );
    input.listing.add("wals/00000002.history", 42, start());
    input
        .histories
        .insert(2, Ok(History::parse(2, history.as_bytes()).unwrap()));
    for s in 1..=n {
        let tli = if s < fork { 1 } else { 2 };
        let name = size.name(tli, s);
        let at = start() + Duration::minutes(i64::try_from(s).unwrap());
        input
            .listing
            .add(&format!("wals/{}/{name}.gz", &name[..16]), 4_000_000, at);
        if s % 5000 == 2 {
            let id = (at + Duration::seconds(30))
                .format("%Y%m%dT%H%M%S")
                .to_string();
            let info = synthetic::backup_info(&id, tli, size, s, s);
            input
                .listing
                .add(&format!("base/{id}/backup.info"), info.len() as u64, at);
            input
                .listing
                .add(&format!("base/{id}/data.tar.gz"), 1 << 30, at);
            input
                .backup_infos
                .insert(id, Ok(BackupInfo::parse(info.as_bytes()).unwrap()));
        }
    }
    input
}

fn parsers(c: &mut Criterion) {
    let info =
        fixture("tests/fixtures/pg-main/objects/cluster/pg-main/base/20261124T164649/backup.info");
    c.bench_function("backup.info parse", |b| {
        b.iter(|| BackupInfo::parse(std::hint::black_box(&info)).unwrap());
    });
    let names: Vec<String> = (0..1000u64)
        .map(|s| format!("{}.gz", SegmentSize::default().name(1, s)))
        .collect();
    let mut g = c.benchmark_group("WAL file names");
    g.throughput(Throughput::Elements(names.len() as u64));
    g.bench_function("parse 1000", |b| {
        b.iter(|| {
            names
                .iter()
                .filter_map(|n| WalFileName::parse(std::hint::black_box(n)))
                .count()
        });
    });
    g.finish();
    let history = b"1\t0/5A0000A0\tno recovery target specified\n2\t3/98000120\tno recovery target specified\n";
    c.bench_function("history parse", |b| {
        b.iter(|| History::parse(3, std::hint::black_box(history)).unwrap());
    });
    let mut segment = Vec::new();
    flate2::read::GzDecoder::new(&fixture("tests/fixtures/wal/000000010000000000000002.gz")[..])
        .read_to_end(&mut segment)
        .unwrap();
    let mut g = c.benchmark_group("WAL records");
    g.throughput(Throughput::Bytes(segment.len() as u64));
    g.sample_size(20);
    g.bench_function("read a 16 MiB segment", |b| {
        b.iter(|| read_segment(std::hint::black_box(&segment), Lsn(0x200_0000)).unwrap());
    });
    g.finish();
}

fn analysis(c: &mut Criterion) {
    let mut g = c.benchmark_group("analysis");
    g.sample_size(10);
    for n in [10_000u64, 100_000, 1_000_000] {
        let input = synthetic(n);
        let opts = AnalysisOptions::at(start() + Duration::minutes(i64::try_from(n).unwrap() + 5));
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(BenchmarkId::new("segments", n), &input, |b, input| {
            b.iter(|| Catalog::analyse(input, opts));
        });
    }
    g.finish();
    let mut g = c.benchmark_group("listing ingest");
    g.sample_size(10);
    for n in [100_000u64, 1_000_000] {
        let size = SegmentSize::default();
        let keys: Vec<String> = (1..=n)
            .map(|s| {
                let name = size.name(1, s);
                format!("wals/{}/{name}.gz", &name[..16])
            })
            .collect();
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(BenchmarkId::new("keys", n), &keys, |b, keys| {
            b.iter(|| {
                let mut input = CatalogInput::default();
                for k in keys {
                    input.listing.add(k, 4_000_000, start());
                }
                input
            });
        });
    }
    g.finish();
}

criterion_group!(benches, parsers, analysis);
criterion_main!(benches);
