//! Object-store errors, classified so that the message says what failed
//! (no such bucket, 403, 401, DNS, refused, TLS, timeout) and the command
//! can exit with the "store unreachable or access denied" code.

use std::error::Error as StdError;
use std::fmt;

/// What kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKind {
    /// The bucket or container does not exist.
    NoSuchBucket,
    /// 403.
    AccessDenied,
    /// 401 or missing credentials.
    Unauthenticated,
    /// The object does not exist.
    NotFound,
    /// The host name does not resolve.
    Dns,
    /// Nothing listens at the endpoint.
    ConnectionRefused,
    /// TLS handshake or certificate failure.
    Tls,
    /// The request timed out.
    Timeout,
    /// The server kept answering with an error status (5xx, 501 for an unsupported call).
    ServerError(u16),
    /// Any other failure.
    Other,
}

impl fmt::Display for AccessKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AccessKind::NoSuchBucket => "no such bucket",
            AccessKind::AccessDenied => "access denied (403)",
            AccessKind::Unauthenticated => "not authenticated (401 or no credentials)",
            AccessKind::NotFound => "not found",
            AccessKind::Dns => "DNS lookup failed",
            AccessKind::ConnectionRefused => "connection refused",
            AccessKind::Tls => "TLS error",
            AccessKind::Timeout => "timed out",
            AccessKind::ServerError(code) => return write!(f, "server error (HTTP {code})"),
            AccessKind::Other => "request failed",
        })
    }
}

/// A failure of the object store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A request failed.
    #[error("{what}: {kind}: {detail}")]
    Access {
        /// Classification.
        kind: AccessKind,
        /// What was being done, naming the object or prefix.
        what: String,
        /// The underlying message.
        detail: String,
    },
    /// The client could not be configured (bad endpoint, unusable credentials file).
    #[error("cannot set up access to {what}: {detail}")]
    Config {
        /// The destination.
        what: String,
        /// Why.
        detail: String,
    },
}

impl StoreError {
    /// The access kind, when it is an access error.
    #[must_use]
    pub fn kind(&self) -> Option<AccessKind> {
        match self {
            StoreError::Access { kind, .. } => Some(*kind),
            StoreError::Config { .. } => None,
        }
    }

    /// A hint for the user.
    #[must_use]
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self.kind()? {
            AccessKind::NoSuchBucket => {
                "check the bucket name in destinationPath and the endpoint/region"
            }
            AccessKind::AccessDenied => {
                "the credentials lack s3:ListBucket/s3:GetObject (or the GCS/Azure equivalent) on this prefix"
            }
            AccessKind::Unauthenticated => {
                "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, GOOGLE_APPLICATION_CREDENTIALS, or AZURE_STORAGE_* credentials"
            }
            AccessKind::Dns => {
                "check --endpoint-url and the network; the host name does not resolve"
            }
            AccessKind::ConnectionRefused => {
                "nothing answers at the endpoint; check --endpoint-url and that the server runs"
            }
            AccessKind::Tls => {
                "the server's certificate is not trusted or TLS is misconfigured; for a plain-HTTP endpoint use http:// in --endpoint-url"
            }
            AccessKind::Timeout => {
                "the store is slow or unreachable; retry later or check the network"
            }
            AccessKind::ServerError(501) => {
                "the server does not implement this request; check that the endpoint is the store's own API"
            }
            AccessKind::ServerError(_) => {
                "the store kept failing after the retries; check its health and retry later"
            }
            AccessKind::NotFound | AccessKind::Other => return None,
        })
    }

    /// Builds an access error from an `object_store` error.
    #[must_use]
    pub fn from_object_store(what: impl Into<String>, err: &object_store::Error) -> StoreError {
        let (kind, detail) = classify(err);
        StoreError::Access {
            kind,
            what: what.into(),
            detail,
        }
    }
}

/// The chain of messages of an error, joined.
fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// The HTTP status a store error reports, from `status code: 503` or `HTTP 503`.
fn http_status(lower: &str) -> Option<u16> {
    for marker in ["status code: ", "http status ", "http "] {
        for (i, _) in lower.match_indices(marker) {
            let digits: String = lower[i + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if digits.len() == 3 {
                return digits.parse().ok();
            }
        }
    }
    None
}

/// The HTTP status the server answered with, when the error carries one.
#[must_use]
pub fn status_of(err: &object_store::Error) -> Option<u16> {
    http_status(&chain(err).to_ascii_lowercase())
}

/// Classifies an `object_store` error.
#[must_use]
pub fn classify(err: &object_store::Error) -> (AccessKind, String) {
    let detail = chain(err);
    // object_store appends its retry settings ("retry_timeout: 120s") to every retried error.
    let lower = detail
        .to_ascii_lowercase()
        .replace("retry_timeout", "retry budget");
    let kind = if lower.contains("nosuchbucket")
        || lower.contains("no such bucket")
        || lower.contains("containernotfound")
        || lower.contains("bucket does not exist")
        || lower.contains("the specified bucket does not exist")
    {
        AccessKind::NoSuchBucket
    } else {
        match err {
            object_store::Error::PermissionDenied { .. } => AccessKind::AccessDenied,
            object_store::Error::Unauthenticated { .. } => AccessKind::Unauthenticated,
            object_store::Error::NotFound { .. } => AccessKind::NotFound,
            _ if http_status(&lower).is_some_and(|c| c >= 500) => {
                AccessKind::ServerError(http_status(&lower).unwrap_or(500))
            }
            _ if lower.contains("dns error")
                || lower.contains("failed to lookup address")
                || lower.contains("name or service not known") =>
            {
                AccessKind::Dns
            }
            _ if lower.contains("connection refused") => AccessKind::ConnectionRefused,
            _ if lower.contains("certificate")
                || lower.contains("tls")
                || lower.contains("ssl") =>
            {
                AccessKind::Tls
            }
            _ if lower.contains("timed out") || lower.contains("timeout") => AccessKind::Timeout,
            // The status, never a bare number: "in 43.401801ms" holds a "401".
            _ if http_status(&lower) == Some(403)
                || lower.contains("accessdenied")
                || lower.contains("forbidden") =>
            {
                AccessKind::AccessDenied
            }
            _ if http_status(&lower) == Some(401)
                || lower.contains("invalidaccesskeyid")
                || lower.contains("signaturedoesnotmatch")
                || lower.contains("credential") =>
            {
                AccessKind::Unauthenticated
            }
            _ => AccessKind::Other,
        }
    };
    (kind, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(msg: &str) -> object_store::Error {
        #[derive(Debug, thiserror::Error)]
        #[error("{0}")]
        struct E(String);
        object_store::Error::Generic {
            store: "S3",
            source: Box::new(E(msg.to_owned())),
        }
    }

    #[test]
    fn exhausted_retries_of_a_5xx_are_server_errors_not_timeouts() {
        let e = generic(
            "Error performing GET http://127.0.0.1:9/b?list-type=2 in 1.2s, after 5 retries, max_retries: 5, retry_timeout: 120s - Server returned non-2xx status code: 501 Not Implemented",
        );
        assert_eq!(classify(&e).0, AccessKind::ServerError(501));
        let e = generic(
            "Error after 5 retries, max_retries: 5, retry_timeout: 120s - Server returned non-2xx status code: 500 Internal Server Error",
        );
        assert_eq!(classify(&e).0, AccessKind::ServerError(500));
        assert_eq!(
            AccessKind::ServerError(500).to_string(),
            "server error (HTTP 500)"
        );
    }

    #[test]
    fn network_failures_are_named() {
        let cases = [
            (
                "error sending request: client error (Connect): dns error: failed to lookup address information",
                AccessKind::Dns,
            ),
            (
                "error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)",
                AccessKind::ConnectionRefused,
            ),
            (
                "error sending request: invalid peer certificate: UnknownIssuer",
                AccessKind::Tls,
            ),
            (
                "error sending request: operation timed out, retry_timeout: 120s",
                AccessKind::Timeout,
            ),
            (
                "The specified bucket does not exist (NoSuchBucket)",
                AccessKind::NoSuchBucket,
            ),
        ];
        for (msg, kind) in cases {
            assert_eq!(classify(&generic(msg)).0, kind, "{msg}");
        }
    }

    #[test]
    fn numbers_that_are_not_the_status_decide_nothing() {
        // Garage's answer to a byte range on an empty object, timed at 43.401801 ms.
        let e = generic(
            "Error performing GET http://127.0.0.1:43365/b/wals/0000000100000001/000000010000000100000002.gz in 43.401801ms - Server returned non-2xx status code: 416 Range Not Satisfiable: <Error><Code>InvalidRange</Code></Error>",
        );
        assert_eq!(classify(&e).0, AccessKind::Other);
        assert_eq!(status_of(&e), Some(416));
        let e = generic(
            "Error performing GET http://127.0.0.1:9/b/k in 2.403074ms - Server returned non-2xx status code: 403 Forbidden",
        );
        assert_eq!(classify(&e).0, AccessKind::AccessDenied);
        let e = generic(
            "Error performing GET http://127.0.0.1:9/b/k in 1.401s - Server returned non-2xx status code: 401 Unauthorized",
        );
        assert_eq!(classify(&e).0, AccessKind::Unauthenticated);
        assert_eq!(status_of(&generic("took 0.403s then failed")), None);
    }
}
