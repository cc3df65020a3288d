//! Helpers shared by the integration-test binaries.
#![allow(dead_code)]
pub mod events;
pub mod fake_http;
pub mod fake_kube;
pub mod fixture;
pub mod repo;
pub mod wal;
