//! Typed errors for every stage of a render, converted to errno at the FUSE edge.

use std::io;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong between a source and a target.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the source failed (I/O, not format).
    #[error("read: {0}")]
    Read(#[source] io::Error),
    /// Writing the target failed (a full disk, a closed pipe).
    #[error("write: {0}")]
    Write(#[source] io::Error),
    /// The bytes are not an image format we know.
    #[error("unknown image format")]
    UnknownFormat,
    /// A loader rejected the data (truncated, bad marker, bad CRC, ...).
    #[error("load {format}: {message}")]
    Decode {
        /// Format name, e.g. "jpeg".
        format: &'static str,
        /// What the decoder said.
        message: String,
    },
    /// A saver failed for a reason other than the target's I/O.
    #[error("save {format}: {message}")]
    Encode {
        /// Format name, e.g. "png".
        format: &'static str,
        /// What the encoder said.
        message: String,
    },
    /// Valid input that this build cannot handle.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The header asks for more pixels than allowed, or dimensions overflow.
    #[error("image too large: {width}x{height} exceeds the limit of {limit} pixels")]
    TooLarge {
        /// Width from the header.
        width: u64,
        /// Height from the header.
        height: u64,
        /// The configured pixel limit.
        limit: u64,
    },
    /// A planned size breaks a limit (`--max-output-pixels`, a saver's own): the message
    /// names the size and the limit.
    #[error("{0}")]
    Limit(String),
    /// A buffer sized by the image could not be allocated.
    #[error("out of memory: {bytes} bytes for {what}")]
    OutOfMemory {
        /// What the buffer was for.
        what: &'static str,
        /// Bytes asked for (saturated).
        bytes: u64,
    },
    /// An operation could not run on this image (e.g. a crop outside it).
    #[error("{op}: {message}")]
    Op {
        /// Operation name from the spec grammar.
        op: &'static str,
        /// Why it failed.
        message: String,
    },
    /// The transform spec is malformed.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A decoder or encoder panicked; caught at the render boundary.
    #[error("internal error in {stage}: {message}")]
    Panic {
        /// Where the panic happened.
        stage: &'static str,
        /// The panic payload, if it was a string.
        message: String,
    },
    /// The render was cancelled (all readers gone, or timed out).
    #[error("cancelled: {0}")]
    Cancelled(&'static str),
}

impl Error {
    /// Shorthand for a decode error.
    pub fn decode(format: &'static str, message: impl std::fmt::Display) -> Self {
        Error::Decode {
            format,
            message: message.to_string(),
        }
    }

    /// Shorthand for an encode error.
    pub fn encode(format: &'static str, message: impl std::fmt::Display) -> Self {
        Error::Encode {
            format,
            message: message.to_string(),
        }
    }

    /// Shorthand for an operation error.
    pub fn op(op: &'static str, message: impl std::fmt::Display) -> Self {
        Error::Op {
            op,
            message: message.to_string(),
        }
    }

    /// Whether rendering the same bytes again would fail the same way (a broken image), as
    /// opposed to I/O trouble or a cancellation.
    pub fn fails_again(&self) -> bool {
        !matches!(
            self,
            Error::Read(_) | Error::Write(_) | Error::Cancelled(_) | Error::OutOfMemory { .. }
        )
    }

    /// The errno a FUSE reader sees for this error.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Read(e) if e.kind() == io::ErrorKind::NotFound => libc::ENOENT,
            Error::Read(e) if e.kind() == io::ErrorKind::PermissionDenied => libc::EACCES,
            Error::Spec(_) => libc::ENOENT,
            Error::Cancelled(_) => libc::EINTR,
            _ => libc::EIO,
        }
    }
}

/// Why a spec was rejected. The message names the token and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{token}: {rule}")]
pub struct SpecError {
    /// The offending token as written (or the whole spec).
    pub token: String,
    /// The rule it breaks.
    pub rule: String,
}
