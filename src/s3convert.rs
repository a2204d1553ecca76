//! `thumbfs convert` to an `s3://` destination: one object (`s3://BUCKET/KEY`), or a whole
//! prefix to a prefix (`thumbfs convert w256 s3://photos/ s3://thumbs/w256/`) on all cores.
//!
//! Outputs are written through [`S3Target`] (parts leave while the encoder runs; nothing is
//! visible until the upload completes). A batch records the source's ETag and the spec in the
//! output's metadata, so a second run skips every output that is already up to date.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::codec::{self, OutputFormat};
use crate::error::Error;
use crate::io::Source;
use crate::pipeline::{self, RenderOptions};
use crate::s3::{Client, ObjectMeta, S3Config, S3Error, S3Target, S3Url};
use crate::spec::Spec;
use crate::store::object::ObjectConnection;
use crate::warm::Shard;

/// Output metadata (`x-amz-meta-…`): the ETag of the source rendered.
pub const SOURCE_ETAG: &str = "source-etag";
/// Output metadata (`x-amz-meta-…`): the canonical spec it was rendered with.
pub const SPEC: &str = "thumbfs-spec";

/// The `Content-Type` of an output format.
pub fn content_type(f: OutputFormat) -> &'static str {
    f.saver().map_or("application/octet-stream", |s| s.mime)
}

fn config_error(e: S3Error) -> Error {
    Error::Write(crate::store::object::s3_io(e))
}

/// A target for `s3://BUCKET/KEY` (endpoint and credentials from the AWS_* variables);
/// `format`, when known, sets its Content-Type.
pub fn object_target(url: &str, format: Option<OutputFormat>) -> Result<S3Target, Error> {
    let rest = url.strip_prefix("s3://").unwrap_or(url);
    let (bucket, key) = rest
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty() && !k.ends_with('/'))
        .ok_or_else(|| config_error(S3Error::Config(format!("{url}: expected s3://BUCKET/KEY"))))?;
    let cfg = S3Config::from_env(None).map_err(config_error)?;
    let client = Client::new(&cfg, bucket).map_err(config_error)?;
    let headers = format
        .map(|f| vec![("content-type".to_string(), content_type(f).to_string())])
        .unwrap_or_default();
    Ok(S3Target::new(client, key, headers))
}

/// True for `thumbfs convert SPEC s3://A/ s3://B/`: both ends are `s3://` prefixes
/// (a bucket alone, or ending in `/`).
pub fn is_batch(input: &str, output: &str) -> bool {
    let prefix = |s: &str| {
        s.strip_prefix("s3://")
            .is_some_and(|r| !r.contains('/') || r.ends_with('/'))
    };
    prefix(input) && prefix(output)
}

/// What one batch did.
#[derive(Debug, Default)]
pub struct BatchReport {
    /// Objects under the source prefix (in this shard).
    pub total: usize,
    /// Rendered and uploaded.
    pub converted: usize,
    /// Already there for the same source ETag and spec.
    pub skipped: usize,
    /// Not images (left alone).
    pub not_images: usize,
    /// Source key and error of each failure, sorted by key.
    pub failed: Vec<(String, String)>,
    /// True when `stop` was set before every object was done.
    pub interrupted: bool,
    /// Wall time.
    pub elapsed: Duration,
}

impl BatchReport {
    /// One line of counts, then one line per failure.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} objects: {} converted, {} up to date, {} not images, {} failed in {:.1} s",
            self.total,
            self.converted,
            self.skipped,
            self.not_images,
            self.failed.len(),
            self.elapsed.as_secs_f64()
        );
        if self.interrupted {
            s.push_str("\ninterrupted: run the same command again to resume (finished outputs are skipped)");
        }
        for (k, e) in &self.failed {
            s.push_str(&format!("\nfailed: {k}: {e}"));
        }
        s
    }
}

/// What became of one object.
enum Outcome {
    Converted,
    Skipped,
    NotImage,
}

/// Converts every object under `src` into `dst` (same relative key, extension changed when
/// the format does), `jobs` at a time; with a `shard`, only the keys whose path relative to
/// `src` is that shard's ([`Shard::holds`], the hash `warm --shard` uses).
pub fn convert_prefix(
    spec: &Spec,
    src: &S3Url,
    dst: &S3Url,
    jobs: usize,
    shard: Option<Shard>,
    opts: &RenderOptions,
    stop: &AtomicBool,
) -> Result<BatchReport, S3Error> {
    let start = Instant::now();
    let cfg = S3Config::from_env(None)?;
    let from = Client::new(&cfg, &src.bucket)?;
    let to = Client::new(&cfg, &dst.bucket)?;
    from.check_bucket()?;
    to.check_bucket()?;
    let mut objects = Vec::new();
    walk(&from, &src.prefix, &mut objects)?;
    objects.retain(|o| {
        let rel = &o.key[src.prefix.len()..];
        shard.is_none_or(|s| s.holds(Path::new(rel)))
    });
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    let next = AtomicUsize::new(0);
    let counts = Mutex::new(BatchReport {
        total: objects.len(),
        ..Default::default()
    });
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(o) = objects.get(i) else { break };
                    let r = one(&from, &to, spec, o, &src.prefix, &dst.prefix, opts);
                    let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
                    match r {
                        Ok(Outcome::Converted) => c.converted += 1,
                        Ok(Outcome::Skipped) => c.skipped += 1,
                        Ok(Outcome::NotImage) => c.not_images += 1,
                        Err(e) => c.failed.push((o.key.clone(), e)),
                    }
                }
            });
        }
    });
    let mut r = counts.into_inner().unwrap_or_else(|e| e.into_inner());
    r.failed.sort();
    r.interrupted = r.converted + r.skipped + r.not_images + r.failed.len() < r.total;
    r.elapsed = start.elapsed();
    Ok(r)
}

/// Every object under `prefix`, all levels (keys no request can address are left out).
fn walk(c: &Client, prefix: &str, out: &mut Vec<ObjectMeta>) -> Result<(), S3Error> {
    let l = c.list(prefix)?;
    out.extend(
        l.objects
            .into_iter()
            .filter(|o| !o.key.ends_with('/') && crate::s3::is_addressable(&o.key)),
    );
    for p in l.prefixes {
        if p.len() > prefix.len() {
            walk(c, &p, out)?;
        }
    }
    Ok(())
}

/// `rel` with its extension replaced by `ext` (kept when it already means that format), as
/// the mount names its outputs.
fn renamed(rel: &str, ext: &str) -> String {
    let name_at = rel.rfind('/').map_or(0, |i| i + 1);
    match rel[name_at..].rfind('.').map(|i| name_at + i) {
        Some(dot) if dot > name_at => {
            if OutputFormat::from_extension(&rel[dot + 1..]) == OutputFormat::from_extension(ext) {
                rel.to_string()
            } else {
                format!("{}.{ext}", &rel[..dot])
            }
        }
        _ => format!("{rel}.{ext}"),
    }
}

/// The format an extension names, if a saver exists for it.
fn format_of_name(rel: &str) -> Option<OutputFormat> {
    let name = &rel[rel.rfind('/').map_or(0, |i| i + 1)..];
    let dot = name.rfind('.').filter(|&d| d > 0)?;
    OutputFormat::from_extension(&name[dot + 1..])
}

fn one(
    from: &Client,
    to: &Client,
    spec: &Spec,
    o: &ObjectMeta,
    src_prefix: &str,
    dst_prefix: &str,
    opts: &RenderOptions,
) -> Result<Outcome, String> {
    let rel = &o.key[src_prefix.len()..];
    // The output's name, known before rendering so an up-to-date output costs one HEAD.
    let format = match spec.format.or_else(|| format_of_name(rel)) {
        Some(f) => f,
        // An extension without a saver (`.heic`, none): the content says what it renders to.
        None => {
            let head = from
                .get_range(&o.key, 0, codec::SNIFF_LEN as u64, Some(&o.etag))
                .map_err(|e| e.to_string())?;
            match codec::detect(&head) {
                Some(f) => f.default_output(),
                None => return Ok(Outcome::NotImage),
            }
        }
    };
    let out_key = format!("{dst_prefix}{}", renamed(rel, format.token()));
    let spec_text = spec.to_string();
    match to.head_with_metadata(&out_key) {
        Ok((_, meta)) => {
            let has = |k: &str, v: &str| meta.iter().any(|(mk, mv)| mk == k && mv == v);
            if has(SOURCE_ETAG, &o.etag) && has(SPEC, &spec_text) {
                return Ok(Outcome::Skipped);
            }
        }
        Err(S3Error::NotFound { .. }) => {}
        Err(e) => return Err(e.to_string()),
    }
    let headers = vec![
        ("content-type".to_string(), content_type(format).to_string()),
        (format!("x-amz-meta-{SOURCE_ETAG}"), o.etag.clone()),
        (format!("x-amz-meta-{SPEC}"), spec_text),
    ];
    // Pinned to the listed ETag (If-Match): the metadata names exactly the version rendered.
    let conn = ObjectConnection::new(from.clone(), o.key.clone(), o.etag.clone(), o.size);
    let src = Source::new(conn, format!("s3://{}/{}", from.bucket(), o.key));
    let mut target = S3Target::new(to.clone(), out_key, headers);
    match pipeline::render(src, spec, &mut target, opts) {
        Ok(_) => Ok(Outcome::Converted),
        Err(Error::UnknownFormat) => Ok(Outcome::NotImage),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_output_format() {
        assert_eq!(renamed("a/b.jpg", "png"), "a/b.png");
        assert_eq!(renamed("a/b.JPEG", "jpg"), "a/b.JPEG");
        assert_eq!(renamed("a.b/noext", "png"), "a.b/noext.png");
        assert_eq!(renamed("x.heic", "png"), "x.png");
        assert_eq!(renamed(".hidden", "png"), ".hidden.png");
        assert_eq!(format_of_name("d.x/a.JPG"), Some(OutputFormat::Jpeg));
        assert_eq!(format_of_name("d.jpg/a"), None);
        assert_eq!(format_of_name("a.heic"), None);
    }

    #[test]
    fn batch_form_is_prefix_to_prefix() {
        assert!(is_batch("s3://a/", "s3://b/w256/"));
        assert!(is_batch("s3://a", "s3://b"));
        assert!(!is_batch("s3://a/x.jpg", "s3://b/"));
        assert!(!is_batch("s3://a/", "out/"));
    }
}
