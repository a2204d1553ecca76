//! Control of a running mount: `thumbfs ctl MNT forget [PATH]` and `thumbfs ctl MNT stats`.
//!
//! Writes into the mount cannot carry commands (it is read-only, and the kernel refuses them
//! before the daemon sees them), so the daemon listens on a Unix socket named after its mount
//! point: `DIR/<xxh3 of the canonical mount point, hex>.sock`, where DIR is `/run/thumbfs`
//! for a root daemon, else `$XDG_RUNTIME_DIR/thumbfs` or `/tmp/thumbfs-UID`.
//!
//! The protocol is one request line (`stats`, or `forget PATH` with PATH relative to the
//! source, empty for everything), answered by `ok` or `error: WHY` on a line, then the body;
//! the daemon then closes the connection. Only the uid that mounted, or root, is served: the
//! peer's uid comes from SO_PEERCRED, and anyone else is told "permission denied".

use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Component, Path, PathBuf};
use std::sync::{OnceLock, Weak};
use std::time::Duration;

use crate::filesystem::Core;

/// Where a root daemon's sockets live.
const ROOT_DIR: &str = "/run/thumbfs";
/// The longest request line read (a PATH_MAX path and the verb); longer ones are refused.
const MAX_REQUEST: u64 = 4096 + 64;
/// The longest answer a client reads.
const MAX_ANSWER: u64 = 1 << 20;
/// A peer that neither sends nor reads for this long is dropped (requests are served one at
/// a time, so a stuck client must not hold the others up for long).
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// The socket this process listens on, removed at unmount.
static SOCKET: OnceLock<PathBuf> = OnceLock::new();

/// Why `thumbfs ctl` failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// No daemon socket was found for the mount point.
    #[error("{0}: no thumbfs control socket for this mount point (not a thumbfs mount?)")]
    NoSocket(PathBuf),
    /// A PATH that cannot name anything in the source.
    #[error("{0}: {1}")]
    BadPath(PathBuf, &'static str),
    /// Talking to the daemon failed.
    #[error("{0}: {1}")]
    Io(PathBuf, io::Error),
    /// The daemon refused or failed the request.
    #[error("{0}")]
    Refused(String),
}

/// `thumbfs ctl`: control a running mount.
#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    /// The mount point.
    pub mnt: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// The requests of `thumbfs ctl`.
#[derive(Debug, clap::Subcommand)]
pub enum CtlCommand {
    /// Drop cached listings and names found missing (--negative-ttl) under PATH, so files
    /// just added to the source appear at once. PATH is relative to the source (as under
    /// any spec directory), or a path inside the mount; without it, the whole mount.
    Forget {
        /// A file or directory of the source (it need not exist yet).
        path: Option<PathBuf>,
    },
    /// Print the mount's counters (those of MNT/.thumbfs/stats) as a table.
    Stats {
        /// Print indented JSON instead.
        #[arg(long)]
        json: bool,
    },
}

/// The socket's file name for canonical mount point `mnt`.
fn socket_name(mnt: &Path) -> String {
    let h = xxhash_rust::xxh3::xxh3_64(mnt.as_os_str().as_bytes());
    format!("{h:016x}.sock")
}

/// The directory of the sockets of daemons running as `uid`.
fn socket_dir(uid: u32) -> PathBuf {
    if uid == 0 {
        return PathBuf::from(ROOT_DIR);
    }
    match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(d) if d.is_absolute() => d.join("thumbfs"),
        _ => PathBuf::from(format!("/tmp/thumbfs-{uid}")),
    }
}

/// Makes `dir` (mode `mode`) or checks the one there: a real directory of `uid` that no one
/// else may write (else another user could swap our socket for theirs).
fn make_dir(dir: &Path, uid: u32, mode: u32) -> io::Result<()> {
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(mode)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let m = fs::symlink_metadata(dir)?;
            if !m.is_dir() || m.uid() != uid || m.mode() & 0o022 != 0 {
                return Err(io::Error::other(format!(
                    "{} is not a directory of uid {uid} that only it may write",
                    dir.display()
                )));
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Starts serving control requests for the mount on `mnt` (canonical), which uid `owner`
/// made. Returns the socket's path; the socket goes at unmount ([`remove_socket`]).
///
/// `core` is weak: the filesystem must drop when the session ends (its cache queues finish
/// their writes and uploads then), whatever this thread is doing.
pub(crate) fn start(
    mnt: &Path,
    owner: u32,
    core: Weak<Core>,
    notifier: fuser::Notifier,
) -> io::Result<PathBuf> {
    let uid = nix::unistd::geteuid().as_raw();
    let dir = socket_dir(uid);
    make_dir(&dir, uid, if uid == 0 { 0o755 } else { 0o700 })?;
    let path = dir.join(socket_name(mnt));
    // A socket left by a daemon that did not unmount cleanly.
    match fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    // Anyone may connect, to be told clearly that they may not control the mount.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666))?;
    let _ = SOCKET.set(path.clone());
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(s) => {
                        if let Err(e) = serve(s, owner, &core, &notifier) {
                            tracing::info!("control request: {e}");
                        }
                    }
                    Err(e) => tracing::warn!("control socket: {e}"),
                }
            }
        })?;
    Ok(path)
}

/// Removes the control socket, if this process made one.
pub(crate) fn remove_socket() {
    if let Some(p) = SOCKET.get() {
        if let Err(e) = fs::remove_file(p) {
            // After --run-as the directory may no longer be ours; the next mount replaces it.
            tracing::debug!("removing {}: {e}", p.display());
        }
    }
}

/// Answers one connection.
fn serve(
    stream: UnixStream,
    owner: u32,
    core: &Weak<Core>,
    notifier: &fuser::Notifier,
) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let peer = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(io::Error::from)?
        .uid();
    // The request is read first, so that a refused client reads the refusal rather than a
    // reset connection.
    let mut line = Vec::new();
    BufReader::new((&stream).take(MAX_REQUEST)).read_until(b'\n', &mut line)?;
    let answer = if peer != owner && peer != 0 {
        tracing::info!("control request from uid {peer} refused");
        format!("error: permission denied (only uid {owner}, which mounted, or root)\n")
    } else if line.last() != Some(&b'\n') {
        "error: request too long or cut short\n".to_string()
    } else if let Some(core) = core.upgrade() {
        line.pop();
        answer(&line, &core, notifier)
    } else {
        "error: the mount is ending\n".to_string()
    };
    (&stream).write_all(answer.as_bytes())
}

/// The answer to request line `line` from an allowed peer.
fn answer(line: &[u8], core: &Core, notifier: &fuser::Notifier) -> String {
    let (verb, arg) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &[][..]),
    };
    match verb {
        b"stats" => format!("ok\n{}", core.stats_json()),
        b"forget" => match source_path(Path::new(OsStr::from_bytes(arg))) {
            Some(rel) => {
                let n = core.forget(&rel, notifier);
                tracing::info!("forgot /{}: {n} negative entries", rel.display());
                format!(
                    "ok\nforgot listings of /{} and {n} names found missing\n",
                    rel.display()
                )
            }
            None => "error: PATH must be relative to the source, without ..\n".to_string(),
        },
        _ => format!(
            "error: unknown request {:?} (stats, forget PATH)\n",
            String::from_utf8_lossy(verb)
        ),
    }
}

/// `p` as a path below the source root (`""` for the root), or None if it leaves it.
fn source_path(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Runs `thumbfs ctl`; returns the exit code.
pub fn ctl(args: &CtlArgs) -> i32 {
    match request(args) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("thumbfs ctl: {e}");
            1
        }
    }
}

/// Sends the request of `args` and renders the answer for the terminal.
fn request(args: &CtlArgs) -> Result<String, CtlError> {
    // Canonical as the daemon saw it; a user who may not resolve it can still give it so.
    let mnt = fs::canonicalize(&args.mnt)
        .or_else(|_| std::path::absolute(&args.mnt))
        .map_err(|e| CtlError::Io(args.mnt.clone(), e))?;
    let line = match &args.command {
        CtlCommand::Stats { .. } => b"stats".to_vec(),
        CtlCommand::Forget { path } => {
            let rel = match path {
                Some(p) => in_source(&mnt, &args.mnt, p)?,
                None => PathBuf::new(),
            };
            let mut l = b"forget ".to_vec();
            l.extend_from_slice(rel.as_os_str().as_bytes());
            l
        }
    };
    let name = socket_name(&mnt);
    let sock = candidates()
        .into_iter()
        .map(|d| d.join(&name))
        .find(|p| p.exists())
        .ok_or_else(|| CtlError::NoSocket(mnt.clone()))?;
    let io = |e| CtlError::Io(sock.clone(), e);
    let mut stream = UnixStream::connect(&sock).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(io)?;
    stream.write_all(&line).map_err(io)?;
    stream.write_all(b"\n").map_err(io)?;
    let mut text = String::new();
    stream
        .take(MAX_ANSWER)
        .read_to_string(&mut text)
        .map_err(io)?;
    let body = match text.split_once('\n') {
        Some(("ok", body)) => body,
        Some((status, _)) => {
            let why = status.strip_prefix("error: ").unwrap_or(status);
            return Err(CtlError::Refused(why.to_string()));
        }
        None => return Err(CtlError::Refused("the daemon gave no answer".into())),
    };
    Ok(match &args.command {
        CtlCommand::Stats { json: true } => indent_json(body),
        CtlCommand::Stats { json: false } => table(body).unwrap_or_else(|| indent_json(body)),
        CtlCommand::Forget { .. } => body.to_string(),
    })
}

/// PATH of `ctl forget` as a path in the source: a path inside the mount loses the mount
/// point and its spec directory; any other is taken as relative to the source.
fn in_source(mnt: &Path, given_mnt: &Path, path: &Path) -> Result<PathBuf, CtlError> {
    let inside = path
        .strip_prefix(mnt)
        .or_else(|_| path.strip_prefix(given_mnt))
        .ok()
        .filter(|_| path.is_absolute());
    let rel: PathBuf = match inside {
        Some(r) => r.components().skip(1).collect(),
        None if path.is_absolute() => {
            return Err(CtlError::BadPath(
                path.into(),
                "not inside the mount (give it relative to the source)",
            ))
        }
        None => path.into(),
    };
    if rel.as_os_str().as_bytes().contains(&b'\n') {
        return Err(CtlError::BadPath(path.into(), "a newline in a path"));
    }
    source_path(&rel).ok_or(CtlError::BadPath(path.into(), "leads out of the source"))
}

/// Directories where the socket may be: a root daemon's, then those of this user's; root
/// also looks in every user's.
fn candidates() -> Vec<PathBuf> {
    let uid = nix::unistd::getuid().as_raw();
    let mut dirs = vec![PathBuf::from(ROOT_DIR), socket_dir(uid)];
    dirs.push(PathBuf::from(format!("/run/user/{uid}/thumbfs")));
    dirs.push(PathBuf::from(format!("/tmp/thumbfs-{uid}")));
    if uid == 0 {
        for (base, prefix, tail) in [("/run/user", "", "thumbfs"), ("/tmp", "thumbfs-", "")] {
            if let Ok(rd) = fs::read_dir(base) {
                for e in rd.flatten() {
                    if e.file_name().as_bytes().starts_with(prefix.as_bytes()) {
                        dirs.push(e.path().join(tail));
                    }
                }
            }
        }
    }
    dirs
}

/// A flat JSON object of numbers as aligned `name value` lines (sizes also in binary units);
/// None if it is anything else.
fn table(json: &str) -> Option<String> {
    let inner = json.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut rows = Vec::new();
    for field in inner.split(',').filter(|f| !f.trim().is_empty()) {
        let (k, v) = field.split_once(':')?;
        let k = k.trim().strip_prefix('"')?.strip_suffix('"')?;
        let v: u64 = v.trim().parse().ok()?;
        rows.push((k, v));
    }
    let kw = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let vw = rows
        .iter()
        .map(|(_, v)| v.to_string().len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in rows {
        out.push_str(&format!("{k:<kw$}  {v:>vw$}"));
        if k.ends_with("_bytes") || k == "bytes_served" {
            out.push_str(&format!("  ({})", binary_units(v)));
        }
        out.push('\n');
    }
    Some(out)
}

/// `n` bytes in KiB, MiB, GiB (one decimal).
fn binary_units(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// Any JSON text re-indented by two spaces per level (strings kept as they are).
fn indent_json(json: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    let (mut in_str, mut escaped) = (false, false);
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    for c in json.trim().chars() {
        if in_str {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                depth += 1;
                newline(&mut out, depth);
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_render_as_a_table_or_indented_json() {
        let json = "{\"renders\": 3, \"cache_mem_bytes\": 2048}\n";
        assert_eq!(
            table(json).unwrap(),
            "renders             3\ncache_mem_bytes  2048  (2.0 KiB)\n"
        );
        assert_eq!(
            indent_json(json),
            "{\n  \"renders\": 3,\n  \"cache_mem_bytes\": 2048\n}\n"
        );
        assert_eq!(table("{\"a\": {\"b\": 1}}"), None, "nested: no table");
        assert_eq!(
            indent_json("{\"a,b\":[1]}"),
            "{\n  \"a,b\": [\n    1\n  ]\n}\n"
        );
    }

    #[test]
    fn paths_stay_in_the_source() {
        let mnt = Path::new("/m");
        let ok = |p: &str| in_source(mnt, mnt, Path::new(p)).unwrap();
        assert_eq!(ok("a/./b/"), Path::new("a/b"));
        assert_eq!(ok("/m/w256/a/b.jpg"), Path::new("a/b.jpg"));
        assert_eq!(ok("/m/w256"), Path::new(""));
        assert!(in_source(mnt, mnt, Path::new("a/../../x")).is_err());
        assert!(in_source(mnt, mnt, Path::new("/elsewhere/x")).is_err());
        assert_eq!(
            source_path(Path::new("/etc")),
            None,
            "the daemon checks too"
        );
        assert_eq!(socket_name(Path::new("/m")).len(), 16 + 5);
    }
}
