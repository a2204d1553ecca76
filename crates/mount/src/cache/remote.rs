//! The shared tier (`--cache-url s3://BUCKET/PREFIX`): finished outputs as objects
//! `PREFIX<hash128>.out`, each written with one PUT and carrying the same
//! [trailer](super::trailer) as disk files, so a damaged or truncated object is detected and
//! replaced. GETs run in [`Tier::load`] on render threads, PUTs on the tier's upload thread.
//! Its pause time is its one leaf lock.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::key::RenderKey;
use super::lock;
use super::queue::Queue;
use super::tier::{Origin, Tier};
use super::trailer::{trailer, verify, TRAILER};
use crate::render::Render;
use crate::s3::{Client, S3Error};

/// How long reads skip the shared tier after a failure other than a missing object.
const REMOTE_PAUSE: Duration = Duration::from_secs(10);

/// Where the shared tier lives: a bucket (through its client) and a key prefix.
#[derive(Clone, Debug)]
pub struct Remote {
    client: Client,
    prefix: String,
}

impl Remote {
    /// Outputs under `prefix` (empty, or ending in `/`) of the client's bucket.
    pub fn new(client: Client, prefix: &str) -> Self {
        Remote {
            client,
            prefix: prefix.to_string(),
        }
    }

    /// The object key holding `key`'s output.
    pub fn object(&self, key: &RenderKey) -> String {
        format!("{}{:032x}.out", self.prefix, key.hash128())
    }
}

/// The shared tier and the thread that uploads to it.
pub struct RemoteTier {
    remote: Remote,
    queue: Queue,
    /// Set after the first failed upload, so that only it is a warning.
    warned: Arc<AtomicBool>,
    /// Reads skip the tier until then, after it failed: a down or hung server costs one
    /// timeout per [`REMOTE_PAUSE`], not one per render.
    paused_until: Mutex<Option<Instant>>,
}

impl RemoteTier {
    /// The tier for `remote`, with its upload thread started.
    pub fn start(remote: Remote) -> io::Result<Self> {
        Ok(RemoteTier {
            remote,
            queue: Queue::start("cache-upload")?,
            warned: Arc::default(),
            paused_until: Mutex::new(None),
        })
    }
}

impl Tier for RemoteTier {
    fn name(&self) -> &'static str {
        "remote"
    }

    /// Always perhaps: only a GET can tell, and that is I/O.
    fn holds(&self, _: &RenderKey) -> bool {
        true
    }

    fn load(&self, key: &RenderKey) -> Option<Vec<u8>> {
        if lock(&self.paused_until).is_some_and(|t| Instant::now() < t) {
            return None;
        }
        let object = self.remote.object(key);
        match self.remote.client.get(&object) {
            Ok((_, mut data)) => match verify(&data) {
                Some(n) => {
                    data.truncate(n);
                    Some(data)
                }
                None => {
                    tracing::warn!(
                        "shared cache object {object} is damaged ({} bytes); re-rendering",
                        data.len()
                    );
                    None
                }
            },
            Err(S3Error::NotFound { .. }) => None,
            Err(e) => {
                tracing::warn!(
                    "shared cache: {e}; rendering locally, not reading it for {} s",
                    REMOTE_PAUSE.as_secs()
                );
                *lock(&self.paused_until) = Some(Instant::now() + REMOTE_PAUSE);
                None
            }
        }
    }

    /// Uploads outputs rendered here; failed renders never reach a tier.
    fn store(&self, key: &RenderKey, render: &Arc<Render>, size: u64, origin: Origin) {
        if origin == Origin::Loaded {
            return;
        }
        let object = self.remote.object(key);
        let (client, render, warned) = (
            self.remote.client.clone(),
            render.clone(),
            self.warned.clone(),
        );
        let upload = move || {
            let mut data = render.bytes();
            drop(render);
            let t = trailer(&data);
            data.extend_from_slice(&t);
            if let Err(e) = client.put(&object, &data) {
                if !warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!("shared cache: {e}; outputs stay local");
                } else {
                    tracing::debug!("shared cache: {e}");
                }
            }
        };
        if !self.queue.push_bounded(size + TRAILER as u64, upload) {
            tracing::debug!(
                "shared cache uploads behind; not storing {:016x}",
                key.hash()
            );
        }
    }

    fn flush(&self) {
        self.queue.flush();
    }
}
