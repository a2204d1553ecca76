//! The client: one `ureq` agent (connection pool) and a bucket, shared by clones.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusty_s3::actions::{CreateMultipartUpload, ListObjectsV2};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use ureq::http::{HeaderMap, Response};
use ureq::Body;

use super::observe;
use super::time::{parse_http_date, parse_iso8601};
use super::{Counters, Listing, ObjectMeta, S3Config, S3Error};

/// How long a presigned URL stays valid: it is used at once, so this only has to absorb
/// the time a request waits for a connection.
const SIGN_TTL: Duration = Duration::from_secs(300);
/// First retry delay; doubles per attempt (50, 100, 200 ms for 4 attempts).
const BACKOFF: Duration = Duration::from_millis(50);
/// Largest body read for a request whose answer is small (bucket checks, PUT and DELETE
/// replies, error documents): a server sending more is not one we understand.
const SMALL_BODY: u64 = 64 * 1024;
/// Largest listing page read (1000 keys of 1 KiB each, with their XML).
const LIST_BODY: u64 = 8 << 20;
/// What a ranged GET may bring beyond the range: a server that ignores `Range` sends a
/// whole object, which is used only if it is about as small as the range.
const RANGE_SLACK: u64 = 64 * 1024;

/// A bucket on an S3 endpoint. `Send + Sync`; clones share the connection pool and counters.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    bucket: Bucket,
    credentials: Credentials,
    agent: ureq::Agent,
    attempts: u32,
    requests: AtomicU64,
    bytes_in: AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("bucket", &self.inner.bucket.name())
            .field("url", &self.inner.bucket.base_url().as_str())
            .finish_non_exhaustive()
    }
}

/// What one attempt of a request came to.
enum Attempt<T> {
    Done(T),
    /// Worth another attempt (throttling, 5xx, transport).
    Retry(S3Error),
    Fail(S3Error),
}

/// True when `key` can be put in a request URL unchanged: not empty, and no `.` or `..`
/// segment (URLs resolve those, so `p/../x` would address `x`).
pub fn is_addressable(key: &str) -> bool {
    !key.is_empty() && key.split('/').all(|seg| seg != "." && seg != "..")
}

/// ETag without quotes or a weak marker, so header and listing forms compare equal.
fn clean_etag(e: &str) -> String {
    let e = e.trim();
    let e = e.strip_prefix("W/").unwrap_or(e);
    e.trim_matches('"').to_string()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The text of `<tag>` in an S3 error document (entities left alone: it is only shown).
fn xml_field(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let len = body[start..].find(&format!("</{tag}>"))?;
    Some(body[start..start + len].to_string())
}

/// A transport error as text, without the request URL (it carries the signature and,
/// with temporary credentials, the session token).
fn transport_cause(e: &ureq::Error) -> String {
    match e {
        ureq::Error::BadUri(_) => "bad request URL".to_string(),
        ureq::Error::Timeout(t) => format!("timeout ({t})"),
        ureq::Error::Io(io) => io.to_string(),
        ureq::Error::HostNotFound => "host not found".to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        ureq::Error::Tls(s) => format!("TLS: {s}"),
        other => other.to_string(),
    }
}

impl Client {
    /// A client for `bucket` (no request is made: see [`Client::check_bucket`]).
    pub fn new(cfg: &S3Config, bucket: &str) -> Result<Self, S3Error> {
        let style = if cfg.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let make = |style| {
            Bucket::new(
                cfg.endpoint.clone(),
                style,
                bucket.to_string(),
                cfg.region.clone(),
            )
        };
        // Names that cannot be a host label (dots over https, capitals) fall back to paths.
        let b = make(style)
            .or_else(|_| make(UrlStyle::Path))
            .map_err(|e| S3Error::Config(format!("bucket {bucket:?}: {e}")))?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(cfg.connect_timeout))
            .timeout_resolve(Some(cfg.connect_timeout))
            .timeout_per_read(Some(cfg.io_timeout))
            .timeout_per_write(Some(cfg.io_timeout))
            .timeout_recv_response(Some(cfg.io_timeout))
            .max_redirects(0)
            .user_agent(concat!("thumbfs/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client {
            inner: Arc::new(Inner {
                bucket: b,
                credentials: cfg.credentials.clone(),
                agent: ureq::Agent::new_with_config(config),
                attempts: cfg.attempts,
                requests: AtomicU64::new(0),
                bytes_in: AtomicU64::new(0),
            }),
        })
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        self.inner.bucket.name()
    }

    /// Requests sent and response body bytes received since creation, retries included.
    pub fn counters(&self) -> Counters {
        Counters {
            requests: self.inner.requests.load(Ordering::Relaxed),
            bytes_in: self.inner.bytes_in.load(Ordering::Relaxed),
        }
    }

    /// Wrong credentials, a missing bucket or no permission to list: one clear error.
    /// (A one-key listing: unlike HEAD, its error document says which of these it is.)
    pub fn check_bucket(&self) -> Result<(), S3Error> {
        self.list_page("", None, Some(1)).map(|_| ())
    }

    /// Creates the bucket (tests and benches); an existing bucket of ours is fine.
    pub fn create_bucket(&self) -> Result<(), S3Error> {
        let what = self.bucket_label();
        self.with_retries("create_bucket", &what, || {
            let action = self.inner.bucket.create_bucket(&self.inner.credentials);
            let url = action.sign(SIGN_TTL);
            let body = action.body();
            let resp = self.inner.agent.put(url.as_str()).send(body.as_bytes());
            match self.finish(&what, resp, SMALL_BODY, |_, _| Ok(())) {
                Attempt::Fail(S3Error::Http {
                    status: 409,
                    message,
                    ..
                }) if message.starts_with("BucketAlreadyOwnedByYou") => Attempt::Done(()),
                other => other,
            }
        })
    }

    /// One level under `prefix` (delimiter `/`), every page followed.
    pub fn list(&self, prefix: &str) -> Result<Listing, S3Error> {
        let mut out = Listing::default();
        let mut token: Option<String> = None;
        loop {
            let page = self.list_page(prefix, token.as_deref(), None)?;
            for c in page.contents {
                let last_modified_ns = match c.last_modified.as_deref().map(parse_iso8601) {
                    Some(Some(s)) => s.saturating_mul(1_000_000_000),
                    _ => {
                        return Err(S3Error::Protocol {
                            key: c.key,
                            cause: "listing entry without a valid LastModified".into(),
                        })
                    }
                };
                out.objects.push(ObjectMeta {
                    size: c.size.unwrap_or(0),
                    etag: c.etag.as_deref().map(clean_etag).unwrap_or_default(),
                    last_modified_ns,
                    key: c.key,
                });
            }
            out.prefixes
                .extend(page.common_prefixes.into_iter().map(|p| p.prefix));
            match page.next_continuation_token {
                Some(t) if Some(&t) != token.as_ref() => token = Some(t),
                Some(_) => {
                    return Err(S3Error::Protocol {
                        key: prefix.to_string(),
                        cause: "listing repeats its continuation token".into(),
                    })
                }
                None => return Ok(out),
            }
        }
    }

    fn list_page(
        &self,
        prefix: &str,
        token: Option<&str>,
        max_keys: Option<usize>,
    ) -> Result<rusty_s3::actions::ListObjectsV2Response, S3Error> {
        let what = if prefix.is_empty() {
            self.bucket_label()
        } else {
            prefix.to_string()
        };
        self.with_retries("list", &what, || {
            let mut action = self
                .inner
                .bucket
                .list_objects_v2(Some(&self.inner.credentials));
            action.with_prefix(prefix);
            action.with_delimiter("/");
            if let Some(t) = token {
                action.with_continuation_token(t);
            }
            if let Some(n) = max_keys {
                action.with_max_keys(n);
            }
            let url = action.sign(SIGN_TTL);
            let resp = self.inner.agent.get(url.as_str()).call();
            self.finish(&what, resp, LIST_BODY, |_, body| {
                let text = std::str::from_utf8(&body).map_err(|_| S3Error::Protocol {
                    key: what.clone(),
                    cause: "listing is not UTF-8".into(),
                })?;
                ListObjectsV2::parse_response(text).map_err(|e| S3Error::Protocol {
                    key: what.clone(),
                    cause: format!("listing XML: {e}"),
                })
            })
        })
    }

    /// Size, ETag and Last-Modified of `key`.
    pub fn head(&self, key: &str) -> Result<ObjectMeta, S3Error> {
        self.head_with_metadata(key).map(|(meta, _)| meta)
    }

    /// Bytes [start, end) of `key` (fewer at the object's end; none past it); with `if_match`
    /// the server must still hold that ETag (sent as If-Match; also compare the response's
    /// ETag) else S3Error::Changed.
    pub fn get_range(
        &self,
        key: &str,
        start: u64,
        end: u64,
        if_match: Option<&str>,
    ) -> Result<Vec<u8>, S3Error> {
        self.check_key(key)?;
        if start >= end {
            return Ok(Vec::new());
        }
        let want = if_match.map(clean_etag);
        self.with_retries("get", key, || {
            let action = self
                .inner
                .bucket
                .get_object(Some(&self.inner.credentials), key);
            let url = action.sign(SIGN_TTL);
            let mut req = self
                .inner
                .agent
                .get(url.as_str())
                .header("Range", format!("bytes={}-{}", start, end - 1));
            if let Some(w) = &want {
                req = req.header("If-Match", format!("\"{w}\""));
            }
            let resp = match req.call() {
                // Range starts at or past the end: nothing there (not an error for a reader).
                Ok(r) if r.status().as_u16() == 416 => {
                    self.inner.requests.fetch_add(1, Ordering::Relaxed);
                    observe::note_status(416);
                    return Attempt::Done(Vec::new());
                }
                other => other,
            };
            let limit = (end - start).saturating_add(RANGE_SLACK);
            self.finish(key, resp, limit, |h, body| {
                let got = header(h, "etag").map(clean_etag);
                if let (Some(w), Some(g)) = (&want, &got) {
                    if w != g {
                        return Err(S3Error::Changed {
                            key: key.to_string(),
                        });
                    }
                }
                match header(h, "content-range") {
                    Some(cr) => {
                        let first = cr
                            .strip_prefix("bytes ")
                            .and_then(|r| r.split('-').next())
                            .and_then(|n| n.parse::<u64>().ok());
                        if first != Some(start) {
                            return Err(S3Error::Protocol {
                                key: key.to_string(),
                                cause: format!("asked for bytes from {start}, got {cr:?}"),
                            });
                        }
                        Ok(body)
                    }
                    // A server that ignores Range sends the whole object.
                    None => {
                        let s = (start as usize).min(body.len());
                        let e = (end as usize).min(body.len());
                        Ok(body[s..e].to_vec())
                    }
                }
            })
        })
    }

    /// The whole object and its metadata (from the same response, so they match).
    pub fn get(&self, key: &str) -> Result<(ObjectMeta, Vec<u8>), S3Error> {
        self.check_key(key)?;
        self.with_retries("get", key, || {
            let action = self
                .inner
                .bucket
                .get_object(Some(&self.inner.credentials), key);
            let url = action.sign(SIGN_TTL);
            let resp = self.inner.agent.get(url.as_str()).call();
            // The whole object, as large as it is.
            self.finish(key, resp, u64::MAX, |h, body| {
                let meta = meta_from_headers(key, h, Some(body.len() as u64))?;
                Ok((meta, body))
            })
        })
    }

    /// Stores `body` under `key` with one PUT (atomic: readers see the old object or the new
    /// one), with Content-MD5 so a body damaged on the way is refused.
    pub fn put(&self, key: &str, body: &[u8]) -> Result<(), S3Error> {
        self.put_with(key, body, &[])
    }

    /// [`Client::put`] with extra headers (`Content-Type`, `x-amz-meta-*`), signed and sent.
    pub fn put_with(
        &self,
        key: &str,
        body: &[u8],
        headers: &[(String, String)],
    ) -> Result<(), S3Error> {
        self.check_key(key)?;
        let md5 = content_md5(body);
        self.with_retries("put", key, || {
            let mut action = self
                .inner
                .bucket
                .put_object(Some(&self.inner.credentials), key);
            for (k, v) in headers {
                action.headers_mut().insert(k.as_str(), v.as_str());
            }
            let url = action.sign(SIGN_TTL);
            let mut req = self
                .inner
                .agent
                .put(url.as_str())
                .header("Content-MD5", &md5);
            for (k, v) in headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let resp = req.send(body);
            self.finish(key, resp, SMALL_BODY, |_, _| Ok(()))
        })
    }

    /// Like [`Client::head`], plus the user metadata: `x-amz-meta-NAME` headers as
    /// (`name`, value), names lowercased.
    pub fn head_with_metadata(
        &self,
        key: &str,
    ) -> Result<(ObjectMeta, Vec<(String, String)>), S3Error> {
        self.check_key(key)?;
        self.with_retries("head", key, || {
            let action = self
                .inner
                .bucket
                .head_object(Some(&self.inner.credentials), key);
            let url = action.sign(SIGN_TTL);
            let resp = self.inner.agent.head(url.as_str()).call();
            self.finish(key, resp, SMALL_BODY, |h, _| {
                let meta = meta_from_headers(key, h, None)?;
                let user = h
                    .iter()
                    .filter_map(|(k, v)| {
                        let name = k.as_str().strip_prefix("x-amz-meta-")?;
                        Some((name.to_ascii_lowercase(), v.to_str().ok()?.to_string()))
                    })
                    .collect();
                Ok((meta, user))
            })
        })
    }

    /// Starts a multipart upload of `key` with `headers` (signed); its upload id.
    pub fn create_multipart(
        &self,
        key: &str,
        headers: &[(String, String)],
    ) -> Result<String, S3Error> {
        self.check_key(key)?;
        self.with_retries("create_multipart", key, || {
            let mut action = self
                .inner
                .bucket
                .create_multipart_upload(Some(&self.inner.credentials), key);
            for (k, v) in headers {
                action.headers_mut().insert(k.as_str(), v.as_str());
            }
            let url = action.sign(SIGN_TTL);
            let mut req = self.inner.agent.post(url.as_str());
            for (k, v) in headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let resp = req.send(&[][..]);
            self.finish(key, resp, SMALL_BODY, |_, body| {
                let text = String::from_utf8_lossy(&body);
                CreateMultipartUpload::parse_response(&text)
                    .map(|r| r.upload_id().to_string())
                    .map_err(|e| S3Error::Protocol {
                        key: key.to_string(),
                        cause: format!("CreateMultipartUpload XML: {e}"),
                    })
            })
        })
    }

    /// Uploads part `part` (from 1) of upload `upload_id`, with Content-MD5; its ETag.
    pub fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part: u16,
        body: &[u8],
    ) -> Result<String, S3Error> {
        self.check_key(key)?;
        let md5 = content_md5(body);
        self.with_retries("upload_part", key, || {
            let action =
                self.inner
                    .bucket
                    .upload_part(Some(&self.inner.credentials), key, part, upload_id);
            let url = action.sign(SIGN_TTL);
            let resp = self
                .inner
                .agent
                .put(url.as_str())
                .header("Content-MD5", &md5)
                .send(body);
            self.finish(key, resp, SMALL_BODY, |h, _| {
                header(h, "etag")
                    .map(str::to_string)
                    .ok_or_else(|| S3Error::Protocol {
                        key: key.to_string(),
                        cause: format!("UploadPart {part}: no ETag"),
                    })
            })
        })
    }

    /// Completes upload `upload_id` from its parts' ETags (in part order): the object appears.
    pub fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        etags: &[String],
    ) -> Result<(), S3Error> {
        self.check_key(key)?;
        self.with_retries("complete_multipart", key, || {
            let action = self.inner.bucket.complete_multipart_upload(
                Some(&self.inner.credentials),
                key,
                upload_id,
                etags.iter().map(String::as_str),
            );
            let url = action.sign(SIGN_TTL);
            let body = action.body();
            let resp = self.inner.agent.post(url.as_str()).send(body.as_bytes());
            match self.finish(key, resp, SMALL_BODY, |_, body| Ok(body)) {
                // S3 may answer 200 and then an error document (the request is to be retried).
                Attempt::Done(body) => {
                    let text = String::from_utf8_lossy(&body);
                    match xml_field(&text, "Code") {
                        Some(code) if text.contains("<Error>") => Attempt::Retry(S3Error::Http {
                            key: key.to_string(),
                            status: 200,
                            message: code,
                        }),
                        _ => Attempt::Done(()),
                    }
                }
                Attempt::Retry(e) => Attempt::Retry(e),
                Attempt::Fail(e) => Attempt::Fail(e),
            }
        })
    }

    /// Aborts upload `upload_id`, dropping its parts (an upload already gone is not an error).
    pub fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), S3Error> {
        self.check_key(key)?;
        self.with_retries("abort_multipart", key, || {
            let action = self.inner.bucket.abort_multipart_upload(
                Some(&self.inner.credentials),
                key,
                upload_id,
            );
            let url = action.sign(SIGN_TTL);
            let resp = self.inner.agent.delete(url.as_str()).call();
            match self.finish(key, resp, SMALL_BODY, |_, _| Ok(())) {
                Attempt::Fail(S3Error::NotFound { .. }) => Attempt::Done(()),
                other => other,
            }
        })
    }

    /// The unfinished multipart uploads under `prefix` as (key, upload id): the first page
    /// (up to 1000), keys as the XML spells them (entities not decoded).
    pub fn list_multipart_uploads(&self, prefix: &str) -> Result<Vec<(String, String)>, S3Error> {
        let what = self.bucket_label();
        self.with_retries("list_multipart_uploads", &what, || {
            // rusty-s3 has no action for this one: signed by hand, GET BUCKET?uploads&prefix=.
            let query = [("prefix", prefix), ("uploads", "")];
            let url = rusty_s3::signing::sign(
                &jiff::Timestamp::now(),
                rusty_s3::Method::Get,
                self.inner.bucket.base_url().clone(),
                self.inner.credentials.key(),
                self.inner.credentials.secret(),
                self.inner.credentials.token(),
                self.inner.bucket.region(),
                SIGN_TTL.as_secs(),
                query.iter().copied(),
                std::iter::empty(),
            );
            let resp = self.inner.agent.get(url.as_str()).call();
            self.finish(&what, resp, LIST_BODY, |_, body| {
                let text = String::from_utf8_lossy(&body);
                Ok(text
                    .split("<Upload>")
                    .skip(1)
                    .filter_map(|u| Some((xml_field(u, "Key")?, xml_field(u, "UploadId")?)))
                    .collect())
            })
        })
    }

    /// Deletes `key` (a missing key is not an error, as in S3).
    pub fn delete(&self, key: &str) -> Result<(), S3Error> {
        self.check_key(key)?;
        self.with_retries("delete", key, || {
            let action = self
                .inner
                .bucket
                .delete_object(Some(&self.inner.credentials), key);
            let url = action.sign(SIGN_TTL);
            let resp = self.inner.agent.delete(url.as_str()).call();
            match self.finish(key, resp, SMALL_BODY, |_, _| Ok(())) {
                Attempt::Fail(S3Error::NotFound { .. }) => Attempt::Done(()),
                other => other,
            }
        })
    }

    fn bucket_label(&self) -> String {
        format!("{}/", self.bucket())
    }

    fn check_key(&self, key: &str) -> Result<(), S3Error> {
        if is_addressable(key) {
            Ok(())
        } else {
            Err(S3Error::BadKey {
                key: key.to_string(),
            })
        }
    }

    /// Runs `attempt` until it is done, fails for good, or the attempts run out; sleeps
    /// 50 ms, 100 ms, 200 ms ... between attempts.
    fn with_retries<T>(
        &self,
        op: &'static str,
        what: &str,
        mut attempt: impl FnMut() -> Attempt<T>,
    ) -> Result<T, S3Error> {
        let mut delay = BACKOFF;
        let mut last = None;
        for n in 0..self.inner.attempts {
            if n > 0 {
                std::thread::sleep(delay);
                delay *= 2;
            }
            match observe::timed(op, &mut attempt) {
                Attempt::Done(v) => return Ok(v),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(e) => {
                    tracing::debug!("{e} (attempt {} of {})", n + 1, self.inner.attempts);
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| S3Error::Transport {
            key: what.to_string(),
            cause: "no attempt made".into(),
        }))
    }

    /// Reads the response body (at most `limit` bytes of a 2xx one, SMALL_BODY of any other:
    /// more fails the request) and classifies the outcome; `ok` turns a 2xx response
    /// (headers, body) into the result.
    fn finish<T>(
        &self,
        key: &str,
        resp: Result<Response<Body>, ureq::Error>,
        limit: u64,
        ok: impl FnOnce(&HeaderMap, Vec<u8>) -> Result<T, S3Error>,
    ) -> Attempt<T> {
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let transport = |e: &ureq::Error| {
            Attempt::Retry(S3Error::Transport {
                key: key.to_string(),
                cause: transport_cause(e),
            })
        };
        let mut resp = match resp {
            Ok(r) => r,
            Err(e) => return transport(&e),
        };
        let status = resp.status().as_u16();
        observe::note_status(status);
        let limit = if (200..300).contains(&status) {
            limit
        } else {
            SMALL_BODY
        };
        let body = match resp.body_mut().with_config().limit(limit).read_to_vec() {
            Ok(b) => b,
            // Not a transient fault: the same request would bring the same flood.
            Err(ureq::Error::BodyExceedsLimit(_)) => {
                return Attempt::Fail(S3Error::Protocol {
                    key: key.to_string(),
                    cause: format!("HTTP {status}: response body over {limit} bytes"),
                })
            }
            Err(e) => return transport(&e),
        };
        self.inner
            .bytes_in
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        if (200..300).contains(&status) {
            return match ok(resp.headers(), body) {
                Ok(v) => Attempt::Done(v),
                Err(e) => Attempt::Fail(e),
            };
        }
        let text = String::from_utf8_lossy(&body);
        let code = xml_field(&text, "Code").unwrap_or_default();
        let message = xml_field(&text, "Message").unwrap_or_default();
        let detail = match (code.is_empty(), message.is_empty()) {
            (true, true) => String::new(),
            (false, true) => code.clone(),
            (true, false) => message.clone(),
            (false, false) => format!("{code}: {message}"),
        };
        let key = key.to_string();
        match status {
            404 if code == "NoSuchBucket" => Attempt::Fail(S3Error::NoBucket {
                bucket: self.bucket().to_string(),
            }),
            404 => Attempt::Fail(S3Error::NotFound { key }),
            403 | 401 => Attempt::Fail(S3Error::Denied {
                key,
                message: if detail.is_empty() {
                    "forbidden (wrong credentials or no permission)".into()
                } else {
                    detail
                },
            }),
            412 => Attempt::Fail(S3Error::Changed { key }),
            429 | 500..=599 => Attempt::Retry(S3Error::Http {
                key,
                status,
                message: detail,
            }),
            _ => Attempt::Fail(S3Error::Http {
                key,
                status,
                message: detail,
            }),
        }
    }
}

/// Content-MD5 of `body` (base64), so the server refuses a body damaged on the way.
fn content_md5(body: &[u8]) -> String {
    use base64::Engine;
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body))
}

/// Metadata from HEAD/GET response headers; `body_len` (GET) stands in for Content-Length.
fn meta_from_headers(
    key: &str,
    h: &HeaderMap,
    body_len: Option<u64>,
) -> Result<ObjectMeta, S3Error> {
    let bad = |cause: &str| S3Error::Protocol {
        key: key.to_string(),
        cause: cause.to_string(),
    };
    let size = match body_len {
        Some(n) => n,
        None => header(h, "content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("no Content-Length"))?,
    };
    let secs = header(h, "last-modified")
        .and_then(parse_http_date)
        .ok_or_else(|| bad("no valid Last-Modified"))?;
    Ok(ObjectMeta {
        key: key.to_string(),
        size,
        etag: header(h, "etag").map(clean_etag).unwrap_or_default(),
        last_modified_ns: secs.saturating_mul(1_000_000_000),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addressable_keys() {
        for ok in [
            "a",
            "a..b",
            "..a/b..",
            "/lead",
            "a//b",
            "sp ace/ü",
            "a/.b",
            "%2e%2e",
        ] {
            assert!(is_addressable(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/../b", "a/./b", "../x", "x/..", "/../x"] {
            assert!(!is_addressable(bad), "{bad}");
        }
    }

    #[test]
    fn etags_compare_without_quotes() {
        assert_eq!(clean_etag("\"abc\""), "abc");
        assert_eq!(clean_etag("W/\"abc\""), "abc");
        assert_eq!(clean_etag("abc-2"), "abc-2");
    }

    #[test]
    fn error_documents() {
        let b = "<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>";
        assert_eq!(xml_field(b, "Code").as_deref(), Some("NoSuchKey"));
        assert_eq!(xml_field(b, "Message").as_deref(), Some("gone"));
        assert_eq!(xml_field(b, "Key"), None);
    }

    #[test]
    fn urls_keep_awkward_keys() {
        let cfg =
            S3Config::with_credentials(Some("http://127.0.0.1:9"), "us-east-1", "k", "s").unwrap();
        let c = Client::new(&cfg, "b").unwrap();
        let url = c.inner.bucket.object_url("/lead//x y+ü#?");
        assert_eq!(url.path(), "/b//lead//x%20y%2B%C3%BC%23%3F");
    }
}
