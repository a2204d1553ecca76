//! A small synchronous S3 client: SigV4 presigned requests built by `rusty-s3`, sent with `ureq`.
//!
//! Sync on purpose: every caller is a render worker or the cache writer thread, so there is no
//! async runtime to host. Requests are retried with backoff for throttling, 5xx and transport
//! errors, and every I/O step has a timeout, so a stopped server fails a render instead of
//! hanging it. Errors name the key (or bucket) and the cause, never a credential.

mod client;
mod config;
mod observe;
mod time;
mod upload;

pub use client::{is_addressable, Client};
pub use config::S3Config;
pub use observe::{set_observer, Observer};
pub use upload::{S3Target, PART_SIZE};

use std::fmt;
use std::str::FromStr;

/// `s3://BUCKET[/PREFIX]`: a bucket and a key prefix inside it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Url {
    /// The bucket name.
    pub bucket: String,
    /// Key prefix: no leading `/`, ends with `/` unless empty.
    pub prefix: String,
}

impl FromStr for S3Url {
    type Err = S3Error;

    fn from_str(s: &str) -> Result<Self, S3Error> {
        let rest = s
            .strip_prefix("s3://")
            .ok_or_else(|| S3Error::Config(format!("{s:?} is not an s3:// URL")))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(S3Error::Config(format!("{s:?}: empty bucket name")));
        }
        let prefix = prefix.trim_start_matches('/');
        let prefix = if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_string()
        } else {
            format!("{prefix}/")
        };
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix,
        })
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// One object: from a listing, a HEAD or a GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The full key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// The ETag without its quotes (opaque: compare, never parse).
    pub etag: String,
    /// Last-Modified in ns since the epoch, truncated to whole seconds: HEAD and GET report
    /// seconds only, so a listing and a HEAD of one version agree.
    pub last_modified_ns: i64,
}

/// What a [`Client`] has cost so far ([`Client::counters`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests sent, retries included.
    pub requests: u64,
    /// Response body bytes received.
    pub bytes_in: u64,
}

/// One level of a listing with delimiter `/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Objects directly under the prefix (full keys).
    pub objects: Vec<ObjectMeta>,
    /// Common prefixes one level down, full and ending in `/` (`a/b/`).
    pub prefixes: Vec<String>,
}

/// Everything an S3 request can fail with. Messages name the key or bucket and the cause.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// No such key.
    #[error("s3 key {key:?}: not found")]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// The object no longer has the ETag the caller read before (it was replaced).
    #[error("s3 key {key:?}: changed on the server (ETag no longer matches)")]
    Changed {
        /// The key asked for.
        key: String,
    },
    /// The server refused the credentials or the permission.
    #[error("s3 {key:?}: access denied: {message}")]
    Denied {
        /// The key (or `bucket/` for bucket operations).
        key: String,
        /// The server's code and message (never a credential).
        message: String,
    },
    /// The bucket does not exist.
    #[error("s3 bucket {bucket:?}: no such bucket")]
    NoBucket {
        /// The bucket name.
        bucket: String,
    },
    /// Any other HTTP error status (after retries for the retryable ones).
    #[error("s3 key {key:?}: HTTP {status}: {message}")]
    Http {
        /// The key (or `bucket/`).
        key: String,
        /// HTTP status.
        status: u16,
        /// The server's error code and message.
        message: String,
    },
    /// Connection, timeout or a truncated body (after retries).
    #[error("s3 key {key:?}: {cause}")]
    Transport {
        /// The key (or `bucket/`).
        key: String,
        /// What failed, e.g. `connection refused` or `timeout`.
        cause: String,
    },
    /// A response we could not make sense of (bad XML, missing header).
    #[error("s3 key {key:?}: bad response: {cause}")]
    Protocol {
        /// The key (or `bucket/`).
        key: String,
        /// What was wrong.
        cause: String,
    },
    /// A key that no request URL can carry: empty, or with a `.` or `..` segment, which URLs
    /// resolve (`p/../x` would address `x`, outside the prefix). SeaweedFS refuses to store
    /// such keys; on AWS they exist but are skipped.
    #[error("s3 key {key:?}: cannot be addressed (empty, or a '.' or '..' path segment)")]
    BadKey {
        /// The key.
        key: String,
    },
    /// Bad configuration: URL, endpoint, missing credentials.
    #[error("s3 configuration: {0}")]
    Config(String),
}

impl S3Error {
    /// The errno a FUSE reply carries for this error.
    pub fn errno(&self) -> i32 {
        match self {
            S3Error::NotFound { .. } | S3Error::BadKey { .. } => libc::ENOENT,
            S3Error::Denied { .. } => libc::EACCES,
            _ => libc::EIO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_normalise_the_prefix() {
        let u: S3Url = "s3://b".parse().unwrap();
        assert_eq!((u.bucket.as_str(), u.prefix.as_str()), ("b", ""));
        let u: S3Url = "s3://b/".parse().unwrap();
        assert_eq!(u.prefix, "");
        let u: S3Url = "s3://b/p/q".parse().unwrap();
        assert_eq!(u.prefix, "p/q/");
        let u: S3Url = "s3://b//p/q/".parse().unwrap();
        assert_eq!(u.prefix, "p/q/");
        assert_eq!(u.to_string(), "s3://b/p/q/");
        for bad in ["http://b/x", "s3://", "s3:///x", "b/x"] {
            assert!(
                matches!(bad.parse::<S3Url>(), Err(S3Error::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn errno_mapping() {
        let k = || "k".to_string();
        assert_eq!(S3Error::NotFound { key: k() }.errno(), libc::ENOENT);
        let denied = S3Error::Denied {
            key: k(),
            message: "m".into(),
        };
        assert_eq!(denied.errno(), libc::EACCES);
        assert_eq!(S3Error::Changed { key: k() }.errno(), libc::EIO);
        assert_eq!(S3Error::NoBucket { bucket: k() }.errno(), libc::EIO);
    }
}
