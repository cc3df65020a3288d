#![allow(clippy::print_stderr)] // a developer tool, not part of the binary
//! Lays a captured fixture catalog out as a local mirror of its bucket:
//! `cargo run --example materialize -- tests/fixtures/pg-main target/sample`.

#[path = "../tests/support/fixture.rs"]
mod fixture;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [capture, out] = args.as_slice() else {
        eprintln!("usage: materialize CAPTURE_DIR OUTPUT_DIR");
        return ExitCode::from(2);
    };
    let out = PathBuf::from(out);
    if out.exists()
        && let Err(e) = std::fs::remove_dir_all(&out)
    {
        eprintln!("error: cannot clear {}: {e}", out.display());
        return ExitCode::from(1);
    }
    match fixture::materialize(capture.as_ref(), &out, &|_| false) {
        Ok(m) => {
            let prefix = m
                .dest
                .split_once("://")
                .and_then(|(_, r)| r.split_once('/'))
                .map_or("", |(_, p)| p);
            eprintln!(
                "sample catalog of {} (server {}) laid out under {}/{prefix}",
                m.dest,
                m.server_name,
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
