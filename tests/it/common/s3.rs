//! The S3 test harness: the shared SeaweedFS server started by scripts/test.sh, fresh buckets
//! on it, private SeaweedFS instances that fault tests can stop and start, and proxies in front
//! of a server that hold responses (`Gate`) or listings (`ListHold`) for as long as a test says.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use thumbfs::s3::{Client, S3Config};

/// The shared server's endpoint (scripts/test.sh starts it). Never skips: an S3 test run
/// without a server fails and says how to get one.
pub fn server() -> String {
    std::env::var("THUMBFS_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "THUMBFS_TEST_S3_ENDPOINT is not set: run scripts/test.sh, which starts SeaweedFS \
             and exports it with the test credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
        )
    })
}

/// Configuration for `endpoint` with the test credentials from the environment; short
/// timeouts so a test against a stopped server fails fast.
pub fn config_for(endpoint: &str) -> S3Config {
    S3Config::from_env(Some(endpoint))
        .expect("test credentials: run scripts/test.sh")
        .with_timeouts(Duration::from_secs(2), Duration::from_secs(5))
}

/// A bucket name nobody else uses: `hint` (lowercased, S3-safe), pid, a counter and time.
pub fn unique_name(hint: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let hint: String = hint
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(30)
        .collect();
    format!(
        "t-{hint}-{}-{}-{:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        subsec_nanos()
    )
}

/// The nanoseconds part of the clock: what tells apart runs started in the same second.
fn subsec_nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// Waits (at most 60 s) until the server at `endpoint` stores and serves objects: S3 answering
/// is not enough, writes and reads fail with 500 until the volume server has registered.
/// `alive` says why to give up early (the server process exited).
fn wait_ready(endpoint: &str, mut alive: impl FnMut() -> Result<(), String>) {
    let t0 = Instant::now();
    let probe = Client::new(&config_for(endpoint), "harness-ready").unwrap();
    let ready = || -> Result<(), thumbfs::s3::S3Error> {
        probe.create_bucket()?;
        probe.put("probe", b"ready")?;
        probe.get("probe").map(|_| ())
    };
    loop {
        let Err(e) = ready() else { return };
        if let Err(why) = alive() {
            panic!("S3 server {endpoint} gone before it was ready: {why}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "S3 server {endpoint} not ready after 60 s: {e}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A fresh, empty bucket on the shared server, and a client for it.
pub fn bucket(name_hint: &str) -> (String, Client) {
    static READY: std::sync::Once = std::sync::Once::new();
    READY.call_once(|| wait_ready(&server(), || Ok(())));
    let name = unique_name(name_hint);
    let client = Client::new(&config_for(&server()), &name).unwrap();
    client
        .create_bucket()
        .unwrap_or_else(|e| panic!("create bucket {name}: {e}"));
    (name, client)
}

/// The SeaweedFS binary scripts/test.sh installed.
pub fn weed_bin() -> PathBuf {
    PathBuf::from(std::env::var("THUMBFS_TEST_WEED").unwrap_or_else(|_| {
        panic!("THUMBFS_TEST_WEED is not set: run scripts/test.sh (it installs SeaweedFS)")
    }))
}

/// `n` loopback ports free right now, below the kernel's ephemeral range: a port the kernel
/// handed out (bind to port 0) can be handed out again as the local end of any outgoing
/// connection before weed listens on it (seen: weed exiting on "address already in use"),
/// which never happens below that range. A process-wide cursor, started at a pid- and
/// time-dependent place, keeps concurrent spawns (and concurrent test runs) apart.
fn free_ports(n: usize) -> Vec<u16> {
    static START: OnceLock<u32> = OnceLock::new();
    static CURSOR: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (low, span) = (10_000u32, ephemeral_low.saturating_sub(10_000).max(1000));
    let start = *START.get_or_init(|| std::process::id().wrapping_mul(7919) ^ subsec_nanos());
    // Held together until all are found, so they differ.
    let mut held = Vec::new();
    for _ in 0..span {
        let step = CURSOR.fetch_add(1, Ordering::Relaxed);
        let port = (low + start.wrapping_add(step) % span) as u16;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
            if held.len() == n {
                return held
                    .iter()
                    .map(|l| l.local_addr().unwrap().port())
                    .collect();
            }
        }
    }
    panic!("no {n} free loopback ports in {low}..{}", low + span);
}

/// A private SeaweedFS (own directory, own ports) that a test may stop and start again;
/// its data survives a stop. Killed on drop.
pub struct Weed {
    dir: tempfile::TempDir,
    ports: Vec<u16>,
    child: Option<Child>,
    /// `http://127.0.0.1:PORT` of its S3 gateway.
    pub endpoint: String,
}

impl Weed {
    /// Starts one and waits until its S3 gateway answers.
    pub fn spawn() -> Weed {
        let ports = free_ports(10);
        let mut w = Weed {
            dir: tempfile::Builder::new()
                .prefix("thumbfs-weed")
                .tempdir()
                .unwrap(),
            endpoint: format!("http://127.0.0.1:{}", ports[0]),
            ports,
            child: None,
        };
        std::fs::create_dir_all(w.dir.path().join("log")).unwrap();
        std::fs::create_dir_all(w.dir.path().join("data")).unwrap();
        w.start();
        w
    }

    /// A client for `bucket` on this server.
    pub fn client(&self, bucket: &str) -> Client {
        Client::new(&config_for(&self.endpoint), bucket).unwrap()
    }

    /// Starts the server again (same ports, same data); waits until S3 answers.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "weed already running");
        let d = self.dir.path();
        let p = &self.ports;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("weed.out"))
            .unwrap();
        let child = Command::new(weed_bin())
            .arg(format!("-logdir={}", d.join("log").display()))
            .arg("mini")
            .arg(format!("-dir={}", d.join("data").display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
                "-admin.ui=false",
                "-webdav=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ])
            .arg(format!("-s3.port={}", p[0]))
            .arg(format!("-s3.port.grpc={}", p[1]))
            .arg(format!("-master.port={}", p[2]))
            .arg(format!("-master.port.grpc={}", p[3]))
            .arg(format!("-volume.port={}", p[4]))
            .arg(format!("-volume.port.grpc={}", p[5]))
            .arg(format!("-filer.port={}", p[6]))
            .arg(format!("-filer.port.grpc={}", p[7]))
            .arg(format!("-admin.port={}", p[8]))
            .arg(format!("-admin.port.grpc={}", p[9]))
            .arg(format!("-s3.localSocket={}", d.join("s3.sock").display()))
            .arg(format!(
                "-filer.localSocket={}",
                d.join("filer.sock").display()
            ))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start weed");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Kills the server at once (as a crash would; SIGTERM can take 30 s). Data already
    /// acknowledged survives for [`Weed::start`].
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // The kernel frees the listening ports with the process; wait for the S3 one so a
        // restart cannot race the old socket.
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.ports[0])).is_ok()
            && t0.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Until the server stores and serves objects.
    fn wait_ready(&mut self) {
        let (child, out) = (
            self.child.as_mut().unwrap(),
            self.dir.path().join("weed.out"),
        );
        wait_ready(&self.endpoint, || match child.try_wait().unwrap() {
            None => Ok(()),
            Some(st) => Err(format!(
                "exited ({st}): {}",
                std::fs::read_to_string(&out).unwrap_or_default()
            )),
        });
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // weed leaves a gRPC socket per service in the temp dir, named by port.
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        let ours: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("-grpc-{p}.sock"))
            .collect();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("seaweedfs-") && ours.iter().any(|s| name.ends_with(s)) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// What a [`Gate`] has let through and may let through.
struct GateState {
    passed: u64,
    limit: Option<u64>,
    closed: bool,
}

/// The Content-Length of an HTTP request head (0 without one), for proxies that forward
/// requests one at a time.
pub fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// Which way a [`proxy`] copies bytes untouched; the other way goes through its relay.
#[derive(Clone, Copy)]
pub enum Plain {
    /// Client to server copied as they are (the relay sees the server's answers).
    Up,
    /// Server to client copied as they are (the relay sees the client's requests).
    Down,
}

/// A TCP proxy on a new loopback port in front of `endpoint` (`http://127.0.0.1:PORT`): each
/// connection is copied as it is in the `plain` direction and handed, the other way, to
/// `relay(from, to)` on a thread of its own. Stops accepting once `closed()` says so. A server
/// that is down: the client sees its connection closed at once. Returns the proxy's port.
pub fn proxy(
    endpoint: &str,
    plain: Plain,
    closed: impl Fn() -> bool + Send + 'static,
    relay: impl Fn(TcpStream, TcpStream) + Send + Sync + 'static,
) -> u16 {
    let target: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let relay = Arc::new(relay);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            if closed() {
                return;
            }
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                continue;
            };
            let (from, to) = match plain {
                Plain::Up => (client.try_clone().unwrap(), server.try_clone().unwrap()),
                Plain::Down => (server.try_clone().unwrap(), client.try_clone().unwrap()),
            };
            let how = match plain {
                Plain::Up => Shutdown::Write,
                Plain::Down => Shutdown::Both,
            };
            std::thread::spawn(move || {
                let (mut from, mut to) = (from, to);
                let _ = std::io::copy(&mut from, &mut to);
                let _ = to.shutdown(how);
            });
            let relay = relay.clone();
            std::thread::spawn(move || match plain {
                Plain::Up => relay(server, client),
                Plain::Down => relay(client, server),
            });
        }
    });
    port
}

/// A TCP proxy in front of an S3 endpoint that lets at most `limit` bytes travel from the
/// server to its clients until [`Gate::open`]: a test holds a render at a point it knows,
/// however fast or slow the machine is.
pub struct Gate {
    /// `http://127.0.0.1:PORT` of the proxy.
    pub endpoint: String,
    port: u16,
    state: Arc<(Mutex<GateState>, Condvar)>,
}

impl Gate {
    /// A gate to `endpoint` (`http://127.0.0.1:PORT`) passing `limit` bytes downstream.
    pub fn new(endpoint: &str, limit: u64) -> Gate {
        let state = Arc::new((
            Mutex::new(GateState {
                passed: 0,
                limit: Some(limit),
                closed: false,
            }),
            Condvar::new(),
        ));
        let (st, closed) = (state.clone(), state.clone());
        let port = proxy(
            endpoint,
            Plain::Up,
            move || closed.0.lock().unwrap().closed,
            move |server, client| Gate::down(server, client, &st),
        );
        Gate {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            state,
        }
    }

    /// Copies server to client, each chunk once the limit allows it.
    fn down(mut server: TcpStream, mut client: TcpStream, st: &(Mutex<GateState>, Condvar)) {
        let mut buf = vec![0; 16 * 1024];
        loop {
            let n = match server.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut sent = 0;
            while sent < n {
                let mut g = st.0.lock().unwrap();
                let room = loop {
                    let room = g.limit.map_or(u64::MAX, |l| l.saturating_sub(g.passed));
                    if room > 0 {
                        break room;
                    }
                    g = st.1.wait(g).unwrap();
                };
                let k = (n - sent).min(room.try_into().unwrap_or(usize::MAX));
                g.passed += k as u64;
                drop(g);
                if client.write_all(&buf[sent..sent + k]).is_err() {
                    return;
                }
                sent += k;
            }
        }
        let _ = client.shutdown(Shutdown::Both);
    }

    /// Bytes let through so far.
    pub fn passed(&self) -> u64 {
        self.state.0.lock().unwrap().passed
    }

    /// Lets everything through from now on.
    pub fn open(&self) {
        self.state.0.lock().unwrap().limit = None;
        self.state.1.notify_all();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.state.0.lock().unwrap().closed = true;
        self.open();
        // Wakes the accepting thread so it sees `closed`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// What a [`ListHold`] has held, and whether it lets them go.
#[derive(Default)]
pub struct HoldState {
    /// Whether [`ListHold::release`] has let them go.
    pub released: bool,
    closed: bool,
    /// Prefixes whose listing requests were held.
    held: BTreeSet<String>,
}

/// A TCP proxy in front of an S3 endpoint that holds every ListObjectsV2 request for a
/// prefix starting with `hold` until [`ListHold::release`]: the client waits for their
/// responses for as long as the test says, however fast or slow the machine is.
pub struct ListHold {
    /// `http://127.0.0.1:PORT` of the proxy.
    pub endpoint: String,
    port: u16,
    /// What it holds, and the condition its held requests wait on.
    pub state: Arc<(Mutex<HoldState>, Condvar)>,
}

impl ListHold {
    /// A proxy to `endpoint` (`http://127.0.0.1:PORT`) holding listings of prefixes that
    /// start with `hold`.
    pub fn new(endpoint: &str, hold: &str) -> ListHold {
        let state: Arc<(Mutex<HoldState>, Condvar)> = Arc::default();
        let (st, closed, hold) = (state.clone(), state.clone(), hold.to_string());
        let port = proxy(
            endpoint,
            Plain::Down,
            move || closed.0.lock().unwrap().closed,
            move |client, server| ListHold::up(client, server, &hold, &st),
        );
        ListHold {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            state,
        }
    }

    /// Forwards requests from the client one at a time (head, then a Content-Length body),
    /// holding listings of held prefixes.
    fn up(
        mut client: TcpStream,
        mut server: TcpStream,
        hold: &str,
        st: &(Mutex<HoldState>, Condvar),
    ) {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 16 * 1024];
        let mut fill = |buf: &mut Vec<u8>| -> bool {
            match client.read(&mut chunk) {
                Ok(0) | Err(_) => false,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    true
                }
            }
        };
        loop {
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                if !fill(&mut buf) {
                    let _ = server.shutdown(Shutdown::Write);
                    return;
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let body_len = content_length(&head);
            while buf.len() < head_end + body_len {
                if !fill(&mut buf) {
                    return;
                }
            }
            let request: Vec<u8> = buf.drain(..head_end + body_len).collect();
            if let Some(prefix) = held_prefix(head.lines().next().unwrap_or(""), hold) {
                let mut g = st.0.lock().unwrap();
                g.held.insert(prefix);
                st.1.notify_all();
                while !g.released {
                    g = st.1.wait(g).unwrap();
                }
            }
            if server.write_all(&request).is_err() {
                return;
            }
        }
    }

    /// Waits until listings of `n` distinct prefixes are held (panics after `limit`).
    pub fn wait_held(&self, n: usize, limit: Duration) -> BTreeSet<String> {
        let t0 = Instant::now();
        let mut g = self.state.0.lock().unwrap();
        while g.held.len() < n {
            assert!(
                t0.elapsed() < limit,
                "only {:?} held after {limit:?}",
                g.held
            );
            g = self
                .state
                .1
                .wait_timeout(g, Duration::from_millis(100))
                .unwrap()
                .0;
        }
        g.held.clone()
    }

    /// Lets every held and later request through.
    pub fn release(&self) {
        self.state.0.lock().unwrap().released = true;
        self.state.1.notify_all();
    }
}

impl Drop for ListHold {
    fn drop(&mut self) {
        self.state.0.lock().unwrap().closed = true;
        self.release();
        // Wakes the accepting thread so it sees `closed`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// The prefix of a ListObjectsV2 request line (`GET /bucket?list-type=2&prefix=... HTTP/1.1`)
/// when it starts with `hold`.
fn held_prefix(line: &str, hold: &str) -> Option<String> {
    let target = line.split(' ').nth(1)?;
    let query = target.split_once('?')?.1;
    let params: Vec<(&str, &str)> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    if !params.iter().any(|&(k, v)| k == "list-type" && v == "2") {
        return None;
    }
    let prefix = params.iter().find(|&&(k, _)| k == "prefix")?.1;
    let prefix = prefix.replace("%2F", "/").replace("%2f", "/");
    prefix.starts_with(hold).then_some(prefix)
}
