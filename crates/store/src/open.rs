//! One way in from a name to a source: [`open`] turns `SRC` (a path, `file://`, `s3://`) into a
//! [`Store`] for the mount, [`open_file`] turns one file's name into a [`Source`] for the CLI's
//! `convert` and `info`.
//!
//! A name with no `scheme://` in front is a local path (so a non-UTF-8 path still works).
//! Adding a scheme is one [`Scheme`] impl and its line in [`SCHEMES`].

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use thumbfs_core::io::source::FileConnection;
use thumbfs_core::io::Source;

use crate::object::{s3_io, ObjectConnection, DEFAULT_LIST_CACHE};
use crate::s3::{Client, S3Config, S3Error, S3Url};
use crate::{LocalStore, ObjectStore, Store};

/// Every scheme [`open`] and [`open_file`] know, by [`Scheme::name`].
pub const SCHEMES: &[&dyn Scheme] = &[&FileScheme, &S3Scheme];

/// What opening a store may need besides its URL (each scheme reads what applies to it).
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// S3 endpoint URL for `s3://` (None: AWS_ENDPOINT_URL, else AWS).
    pub s3_endpoint: Option<String>,
    /// How long a remote store's directory listing is reused.
    pub list_ttl: Duration,
    /// Memory for a remote store's cached listings, in bytes.
    pub list_cache: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            s3_endpoint: None,
            list_ttl: Duration::from_secs(60),
            list_cache: DEFAULT_LIST_CACHE,
        }
    }
}

/// Why a store or a file could not be opened. Each message names the URL or path.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// `scheme://` that no [`Scheme`] handles.
    #[error("{url}: unknown scheme {scheme}:// (known: {known}, or a plain path)")]
    UnknownScheme {
        /// The URL as given.
        url: String,
        /// Its scheme.
        scheme: String,
        /// The schemes there are, comma-separated.
        known: String,
    },
    /// A URL of a known scheme that names nothing usable.
    #[error("{url}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it (`expected s3://BUCKET/KEY`).
        reason: &'static str,
    },
    /// A local path failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A store's root is a file.
    #[error("{}: not a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// The object store refused (credentials, no such bucket or key, unreachable).
    #[error("{url}: {source}")]
    S3 {
        /// The URL as given.
        url: String,
        /// What the server or the configuration said.
        #[source]
        source: S3Error,
    },
}

impl OpenError {
    /// The error as an `io::Error` whose kind keeps its errno (ENOENT, EACCES, else EIO).
    pub fn into_io(self) -> io::Error {
        match self {
            OpenError::Io { source, .. } => source,
            OpenError::S3 { source, .. } => s3_io(source),
            e => io::Error::new(io::ErrorKind::InvalidInput, e.to_string()),
        }
    }
}

/// One kind of URL: a name and how to open what it names.
pub trait Scheme: Sync {
    /// The scheme in URLs, without `://` (`s3`).
    fn name(&self) -> &'static str;
    /// The store rooted at `url` (the whole URL, scheme included).
    fn open(&self, url: &str, opts: &OpenOptions) -> Result<Arc<dyn Store>, OpenError>;
    /// The one file `url` names, as a source named `url`.
    fn open_file(&self, url: &str, opts: &OpenOptions) -> Result<Source<'static>, OpenError>;
}

/// The store `src` names: a directory (a plain path or `file://`), or a bucket and prefix
/// (`s3://BUCKET[/PREFIX]`). Remote stores are checked to answer before this returns.
pub fn open(src: impl AsRef<OsStr>, opts: &OpenOptions) -> Result<Arc<dyn Store>, OpenError> {
    match locate(src.as_ref())? {
        Located::Path(p) => open_dir(p),
        Located::Url(scheme, url) => scheme.open(url, opts),
    }
}

/// The one file `src` names (a plain path, `file://`, `s3://BUCKET/KEY`), as a source named
/// `src` in messages.
pub fn open_file(src: impl AsRef<OsStr>, opts: &OpenOptions) -> Result<Source<'static>, OpenError> {
    match locate(src.as_ref())? {
        Located::Path(p) => source_of_file(p, p.display().to_string()),
        Located::Url(scheme, url) => scheme.open_file(url, opts),
    }
}

/// Where a name leads: a local path, or a URL and the scheme that opens it.
enum Located<'a> {
    Path(&'a Path),
    Url(&'static dyn Scheme, &'a str),
}

fn locate(src: &OsStr) -> Result<Located<'_>, OpenError> {
    let Some((text, scheme)) = src.to_str().and_then(|t| Some((t, scheme_of(t)?))) else {
        return Ok(Located::Path(Path::new(src)));
    };
    match SCHEMES.iter().find(|s| s.name() == scheme) {
        Some(s) => Ok(Located::Url(*s, text)),
        None => Err(OpenError::UnknownScheme {
            url: text.to_string(),
            scheme: scheme.to_string(),
            known: SCHEMES
                .iter()
                .map(|s| format!("{}://", s.name()))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The scheme of `scheme://...` (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`);
/// None for anything else, which is then a path.
fn scheme_of(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// A directory on this host as a store.
fn open_dir(path: &Path) -> Result<Arc<dyn Store>, OpenError> {
    let io = |source| OpenError::Io {
        path: path.to_path_buf(),
        source,
    };
    if !std::fs::metadata(path).map_err(io)?.is_dir() {
        return Err(OpenError::NotADirectory {
            path: path.to_path_buf(),
        });
    }
    Ok(Arc::new(LocalStore::new(path).map_err(io)?))
}

/// A file on this host, read with positioned reads, named `name` in messages.
fn source_of_file(path: &Path, name: String) -> Result<Source<'static>, OpenError> {
    let io = |source| OpenError::Io {
        path: path.to_path_buf(),
        source,
    };
    let conn = FileConnection::new(File::open(path).map_err(io)?).map_err(io)?;
    Ok(Source::new(conn, name))
}

/// `file:///PATH` (or `file://localhost/PATH`), percent-escapes decoded.
pub struct FileScheme;

impl FileScheme {
    fn path(url: &str) -> Result<PathBuf, OpenError> {
        url::Url::parse(url)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .ok_or(OpenError::BadUrl {
                url: url.to_string(),
                reason: "expected file:///ABSOLUTE/PATH",
            })
    }
}

impl Scheme for FileScheme {
    fn name(&self) -> &'static str {
        "file"
    }
    fn open(&self, url: &str, _: &OpenOptions) -> Result<Arc<dyn Store>, OpenError> {
        open_dir(&Self::path(url)?)
    }
    fn open_file(&self, url: &str, _: &OpenOptions) -> Result<Source<'static>, OpenError> {
        source_of_file(&Self::path(url)?, url.to_string())
    }
}

/// `s3://BUCKET[/PREFIX]` (a store) or `s3://BUCKET/KEY` (a file) on any S3-compatible server:
/// endpoint from the options or AWS_ENDPOINT_URL, credentials from the AWS_* variables.
pub struct S3Scheme;

impl S3Scheme {
    fn config(url: &str, opts: &OpenOptions) -> Result<S3Config, OpenError> {
        S3Config::from_env(opts.s3_endpoint.as_deref()).map_err(|source| s3_error(url, source))
    }
}

fn s3_error(url: &str, source: S3Error) -> OpenError {
    OpenError::S3 {
        url: url.to_string(),
        source,
    }
}

impl Scheme for S3Scheme {
    fn name(&self) -> &'static str {
        "s3"
    }
    fn open(&self, url: &str, opts: &OpenOptions) -> Result<Arc<dyn Store>, OpenError> {
        let parsed: S3Url = url.parse().map_err(|e| s3_error(url, e))?;
        let cfg = Self::config(url, opts)?;
        // The bucket is checked now, so a typo or a wrong key is one clear line up front.
        let store = ObjectStore::connect(parsed, &cfg, opts.list_ttl)
            .map_err(|e| s3_error(url, e))?
            .with_list_cache(opts.list_cache);
        Ok(Arc::new(store))
    }
    fn open_file(&self, url: &str, opts: &OpenOptions) -> Result<Source<'static>, OpenError> {
        // The key is everything after the bucket, as given: any byte a key may hold.
        let (bucket, key) = url
            .strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'))
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
            .ok_or(OpenError::BadUrl {
                url: url.to_string(),
                reason: "expected s3://BUCKET/KEY",
            })?;
        let cfg = Self::config(url, opts)?;
        let client = Client::new(&cfg, bucket).map_err(|e| s3_error(url, e))?;
        let o = client.head(key).map_err(|e| s3_error(url, e))?;
        let conn = ObjectConnection::new(client, o.key, o.etag, o.size);
        Ok(Source::new(conn, url.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/a b.txt"), b"hello").unwrap();
        d
    }

    /// A file URL of `path`, spaces escaped as a browser would.
    fn file_url(path: &Path) -> String {
        url::Url::from_file_path(path).unwrap().to_string()
    }

    #[test]
    fn a_path_and_a_file_url_open_the_same_directory() {
        let d = tree();
        let canon = std::fs::canonicalize(d.path()).unwrap();
        for src in [d.path().display().to_string(), file_url(d.path())] {
            let store = open(&src, &OpenOptions::default()).unwrap();
            assert_eq!(store.local_root(), Some(canon.as_path()), "{src}");
            let names: Vec<_> = store
                .list(Path::new("sub"))
                .unwrap()
                .into_iter()
                .map(|(n, m)| (n, m.len))
                .collect();
            assert_eq!(names, [("a b.txt".into(), 5)], "{src}");
            assert!(!store.is_remote());
        }
    }

    #[test]
    fn a_path_and_a_file_url_open_the_same_file() {
        let d = tree();
        let path = d.path().join("sub/a b.txt");
        let url = file_url(&path);
        assert!(url.contains("a%20b.txt"), "{url}");
        for src in [path.display().to_string(), url] {
            let mut s = open_file(&src, &OpenOptions::default()).unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
            assert_eq!(text, "hello", "{src}");
            assert_eq!(s.name(), src);
        }
    }

    #[test]
    fn a_non_utf8_path_is_a_path() {
        use std::os::unix::ffi::OsStrExt;
        let d = tempfile::tempdir().unwrap();
        let odd = d.path().join(OsStr::from_bytes(b"caf\xe9"));
        std::fs::create_dir(&odd).unwrap();
        let store = open(&odd, &OpenOptions::default()).unwrap();
        assert!(store
            .local_root()
            .unwrap()
            .ends_with(OsStr::from_bytes(b"caf\xe9")));
    }

    #[test]
    fn failures_name_what_failed() {
        let d = tree();
        let opts = OpenOptions::default();
        let err = |r: Result<Arc<dyn Store>, OpenError>| r.err().unwrap();

        let missing = d.path().join("missing");
        let e = err(open(&missing, &opts));
        assert!(
            matches!(&e, OpenError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
        );
        assert!(
            e.to_string().starts_with(&missing.display().to_string()),
            "{e}"
        );
        assert_eq!(e.into_io().raw_os_error(), Some(libc::ENOENT));

        let file = d.path().join("sub/a b.txt");
        let e = err(open(&file, &opts));
        assert!(matches!(e, OpenError::NotADirectory { .. }), "{e}");
        assert!(e.to_string().ends_with("not a directory"), "{e}");

        let e = err(open("gs://bucket/x", &opts));
        assert!(matches!(&e, OpenError::UnknownScheme { scheme, .. } if scheme == "gs"));
        assert_eq!(
            e.to_string(),
            "gs://bucket/x: unknown scheme gs:// (known: file://, s3://, or a plain path)"
        );
        let e = open_file("http://example/a.jpg", &opts).err().unwrap();
        assert!(matches!(e, OpenError::UnknownScheme { .. }), "{e}");

        let e = err(open("file://host/x", &opts));
        assert!(matches!(e, OpenError::BadUrl { .. }), "{e}");
        assert!(e.to_string().contains("file:///ABSOLUTE/PATH"), "{e}");

        // Refused before any configuration is read or request sent.
        for url in ["s3://bucket", "s3://bucket/", "s3:///key"] {
            let e = open_file(url, &opts).err().unwrap();
            assert_eq!(e.to_string(), format!("{url}: expected s3://BUCKET/KEY"));
        }
        let e = err(open("s3://", &opts));
        assert!(e.to_string().contains("empty bucket name"), "{e}");
    }

    #[test]
    fn only_a_scheme_before_colon_slash_slash_makes_a_url() {
        assert_eq!(scheme_of("s3://b/k"), Some("s3"));
        assert_eq!(scheme_of("svn+ssh://h/p"), Some("svn+ssh"));
        assert_eq!(scheme_of("./s3://b"), None);
        assert_eq!(scheme_of("/srv/photos"), None);
        assert_eq!(scheme_of("1x://a"), None);
        assert_eq!(scheme_of("://a"), None);
    }

    #[test]
    fn every_scheme_is_registered_once() {
        let mut names: Vec<_> = SCHEMES.iter().map(|s| s.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SCHEMES.len());
    }
}
