//! The exit-code contract (also in `--help` and the README).

/// Success; for `catalog check`, the target is recoverable.
pub const OK: u8 = 0;
/// The command ran and found a problem (target not recoverable, error-level findings).
pub const FINDINGS: u8 = 1;
/// Usage or bad input.
pub const USAGE: u8 = 2;
/// The object store is unreachable or denies access.
pub const STORE: u8 = 3;
/// Interrupted (Ctrl-C).
pub const INTERRUPTED: u8 = 130;

/// A command that could not do its work.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Exit code.
    pub code: u8,
    /// What went wrong, naming the object.
    pub message: String,
    /// What to do.
    pub hint: Option<String>,
}

impl Failure {
    /// Bad input.
    pub fn usage(message: impl Into<String>, hint: Option<String>) -> Failure {
        Failure {
            code: USAGE,
            message: message.into(),
            hint,
        }
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Failure {
        let code = match e {
            crate::store::StoreError::Config { .. } => USAGE,
            crate::store::StoreError::Access { .. } => STORE,
        };
        Failure {
            code,
            hint: e.hint().map(str::to_owned),
            message: e.to_string(),
        }
    }
}
