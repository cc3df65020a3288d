//! The catalog model and its analysis, free of IO.
//!
//! Owns: reading `backup.info`, history files and object names; WAL
//! arithmetic; timelines, runs, gaps and recovery windows; target
//! resolution; retention simulation; layout findings. Does not own: listing
//! or reading objects (`store`), printing (`output`), argument handling
//! (`commands`). Everything here takes data and returns data, so plain unit
//! tests cover it.

pub mod analysis;
pub mod backup_info;
pub mod exact;
pub mod findings;
pub mod history;
pub mod layout;
pub mod listing;
pub mod names;
pub mod pyliteral;
pub mod retention;
pub mod target;
pub mod time;
pub mod wal;
pub mod walindex;
pub mod walread;

#[cfg(test)]
pub(crate) mod tests;
