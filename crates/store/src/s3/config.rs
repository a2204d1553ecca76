//! Endpoint, region and credentials, from the standard AWS variables or the shared file.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rusty_s3::Credentials;
use url::Url;

use super::S3Error;

/// Where and as whom to talk S3. `Debug` never shows the credentials.
#[derive(Clone)]
pub struct S3Config {
    pub(super) endpoint: Url,
    /// Path-style URLs (`endpoint/bucket/key`): any explicit endpoint, since S3-compatible
    /// servers reached by IP or a single host name cannot do virtual hosts.
    pub(super) path_style: bool,
    pub(super) region: String,
    pub(super) credentials: Credentials,
    /// Where the credentials came from, for messages (`environment`, a file and profile).
    credentials_from: String,
    pub(super) connect_timeout: Duration,
    pub(super) io_timeout: Duration,
    pub(super) attempts: u32,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint.as_str())
            .field("path_style", &self.path_style)
            .field("region", &self.region)
            .field("credentials_from", &self.credentials_from)
            .finish_non_exhaustive()
    }
}

impl S3Config {
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION (default us-east-1),
    /// AWS_ENDPOINT_URL (http:// allowed), else the shared credentials file
    /// (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile AWS_PROFILE or default).
    /// `endpoint` (e.g. `--s3-endpoint`) wins over AWS_ENDPOINT_URL.
    pub fn from_env(endpoint: Option<&str>) -> Result<Self, S3Error> {
        Self::from_vars(|name| std::env::var(name).ok(), endpoint)
    }

    /// `from_env` reading the variables through `var` (testable without touching the process).
    fn from_vars(
        var: impl Fn(&str) -> Option<String>,
        endpoint: Option<&str>,
    ) -> Result<Self, S3Error> {
        // Empty values count as unset, as in the AWS SDKs.
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_string());
        let endpoint = endpoint
            .map(str::to_string)
            .or_else(|| var("AWS_ENDPOINT_URL_S3"))
            .or_else(|| var("AWS_ENDPOINT_URL"));
        let (credentials, from) = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(key), Some(secret)) => {
                let creds = match var("AWS_SESSION_TOKEN") {
                    Some(token) => Credentials::new_with_token(key, secret, token),
                    None => Credentials::new(key, secret),
                };
                (creds, "environment".to_string())
            }
            _ => {
                let file = var("AWS_SHARED_CREDENTIALS_FILE")
                    .map(PathBuf::from)
                    .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")));
                let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".to_string());
                let found = file.as_ref().and_then(|f| {
                    let text = std::fs::read_to_string(f).ok()?;
                    profile_credentials(&text, &profile)
                });
                match (found, file) {
                    (Some(c), Some(f)) => (c, format!("{} [{profile}]", f.display())),
                    (_, f) => {
                        let where_ = f.map_or("no credentials file".into(), |f| {
                            format!("no profile [{profile}] with both keys in {}", f.display())
                        });
                        return Err(S3Error::Config(format!(
                            "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                             ({where_})"
                        )));
                    }
                }
            }
        };
        let mut cfg = Self::build(endpoint.as_deref(), &region, credentials)?;
        cfg.credentials_from = from;
        Ok(cfg)
    }

    /// Explicit endpoint (None: AWS for the region), region and credentials.
    pub fn with_credentials(
        endpoint: Option<&str>,
        region: &str,
        access_key_id: &str,
        secret_access_key: &str,
    ) -> Result<Self, S3Error> {
        Self::build(
            endpoint,
            region,
            Credentials::new(access_key_id, secret_access_key),
        )
    }

    fn build(
        endpoint: Option<&str>,
        region: &str,
        credentials: Credentials,
    ) -> Result<Self, S3Error> {
        let (endpoint, path_style) = match endpoint {
            Some(e) => {
                let url = Url::parse(e)
                    .map_err(|err| S3Error::Config(format!("endpoint {e:?}: {err}")))?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(S3Error::Config(format!(
                        "endpoint {e:?}: must be http:// or https:// with a host"
                    )));
                }
                (url, true)
            }
            None => {
                let e = format!("https://s3.{region}.amazonaws.com");
                let url = Url::parse(&e)
                    .map_err(|err| S3Error::Config(format!("region {region:?}: {err}")))?;
                (url, false)
            }
        };
        Ok(S3Config {
            endpoint,
            path_style,
            region: region.to_string(),
            credentials,
            credentials_from: "explicit".to_string(),
            connect_timeout: Duration::from_secs(3),
            io_timeout: Duration::from_secs(10),
            attempts: 4,
        })
    }

    /// Timeouts for connecting and for each read or write on the connection (defaults 3 s
    /// and 10 s): bounds what a stopped or hung server costs a request.
    pub fn with_timeouts(mut self, connect: Duration, io: Duration) -> Self {
        self.connect_timeout = connect;
        self.io_timeout = io;
        self
    }

    /// Attempts per request for retryable failures (default 4; at least 1).
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The endpoint URL (no credentials in it).
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// The signing region.
    pub fn region(&self) -> &str {
        &self.region
    }
}

/// The key pair of `[profile]` in an AWS shared credentials file (INI).
fn profile_credentials(text: &str, profile: &str) -> Option<Credentials> {
    let (mut in_profile, mut key, mut secret, mut token) = (false, None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            // ~/.aws/config spells them "profile NAME"; accept that too.
            let name = name.trim();
            in_profile = name == profile || name.strip_prefix("profile ") == Some(profile);
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_string();
            match k.trim().to_ascii_lowercase().as_str() {
                "aws_access_key_id" => key = Some(v),
                "aws_secret_access_key" => secret = Some(v),
                "aws_session_token" => token = Some(v),
                _ => {}
            }
        }
    }
    match (key, secret, token) {
        (Some(k), Some(s), Some(t)) => Some(Credentials::new_with_token(k, s, t)),
        (Some(k), Some(s), None) => Some(Credentials::new(k, s)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn environment_credentials_and_defaults() {
        let v = vars(&[
            ("AWS_ACCESS_KEY_ID", "AKIDSECRETISH"),
            ("AWS_SECRET_ACCESS_KEY", "topsecretvalue"),
        ]);
        let c = S3Config::from_vars(v, None).unwrap();
        assert_eq!(c.region(), "us-east-1");
        assert_eq!(c.endpoint(), "https://s3.us-east-1.amazonaws.com/");
        assert!(!c.path_style);
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("topsecretvalue") && !dbg.contains("AKIDSECRETISH"),
            "{dbg}"
        );
    }

    #[test]
    fn endpoint_argument_wins_and_is_path_style() {
        let v = vars(&[
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_ENDPOINT_URL", "http://10.0.0.1:9000"),
            ("AWS_REGION", "eu-west-3"),
        ]);
        let c = S3Config::from_vars(&v, None).unwrap();
        assert_eq!(c.endpoint(), "http://10.0.0.1:9000/");
        assert!(c.path_style);
        assert_eq!(c.region(), "eu-west-3");
        let c = S3Config::from_vars(&v, Some("http://127.0.0.1:1")).unwrap();
        assert_eq!(c.endpoint(), "http://127.0.0.1:1/");
        assert!(matches!(
            S3Config::from_vars(&v, Some("ftp://x")),
            Err(S3Error::Config(_))
        ));
    }

    #[test]
    fn shared_credentials_file_and_profile() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("credentials");
        std::fs::write(
            &f,
            "[default]\naws_access_key_id = dk\naws_secret_access_key = ds\n\n\
             [other]\n# comment\naws_access_key_id=ok\naws_secret_access_key=os\naws_session_token=ot\n",
        )
        .unwrap();
        let file = f.to_str().unwrap();
        let c = S3Config::from_vars(vars(&[("AWS_SHARED_CREDENTIALS_FILE", file)]), None).unwrap();
        assert_eq!((c.credentials.key(), c.credentials.secret()), ("dk", "ds"));
        let c = S3Config::from_vars(
            vars(&[
                ("AWS_SHARED_CREDENTIALS_FILE", file),
                ("AWS_PROFILE", "other"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(c.credentials.key(), "ok");
        assert_eq!(c.credentials.token(), Some("ot"));
        let err = S3Config::from_vars(
            vars(&[
                ("AWS_SHARED_CREDENTIALS_FILE", file),
                ("AWS_PROFILE", "nope"),
            ]),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("[nope]"), "{err}");
        let err = S3Config::from_vars(vars(&[]), None).unwrap_err();
        assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"), "{err}");
    }
}
