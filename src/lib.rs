//! cnpg-ops: runbooks and catalog audits for CloudNativePG clusters backed up
//! with barman-cloud.
//!
//! Data flows one way: `cli` parses, `commands` decide, `store` lists and
//! reads a bucket, `catalog` analyses what was read without IO, and `output`
//! prints.

pub mod audit;
pub mod catalog;
pub mod cli;
pub mod codec;
pub mod commands;
pub mod exit;
pub mod gitops;
pub mod k8s;
pub mod lint;
pub mod output;
pub mod runbook;
pub mod store;
pub mod verify;
pub mod yaml;
