//! The GitOps repository: where each database lives in the Flux repo, the typed
//! CNPG and Flux documents we read and render, the admission rules the CRD
//! schemas do not carry, and delivering changes as a git commit.
//!
//! Everything here except `git` is free of IO beyond reading files: rendering
//! and validation are pure functions of documents.

pub mod changes;
pub mod config;
pub mod discover;
pub mod docs;
pub mod edits;
pub mod git;
pub mod netpol;
pub mod plan;
pub mod provision;
pub mod render;
pub mod repo;
pub mod scaffold;
pub mod schema;
pub mod webhook;
