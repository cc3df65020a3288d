//! cnpg-ops: runbooks and catalog audits for CloudNativePG clusters backed up
//! with barman-cloud.
//!
//! Data flows one way: `store` lists and reads a bucket, `catalog` analyses
//! what was read without IO, `commands` decide and `output` prints.

pub mod catalog;
