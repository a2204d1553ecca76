//! Process plumbing of `thumbfs mount`: detaching from the terminal (the parent waits to hear
//! whether the mount worked), reporting start-up failures, and unmounting on a signal.

use std::ffi::CString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::{FromRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Which side of the fork this process is on.
pub(crate) enum Role {
    /// The parent: exit with this code (0 once the child reported a working mount).
    Parent(i32),
    /// The detached child: mount, then report through this.
    Child(Reporter),
}

/// Forks; the parent waits for the child's report. Fails (and nothing was forked) when the
/// pipe or the fork cannot be made.
pub(crate) fn daemonise() -> io::Result<Role> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: plain pipe2/fork/setsid calls before any thread exists.
    unsafe {
        // Close-on-exec: the spawner the daemon execs would otherwise inherit the write end,
        // and the parent, reading to end of file, would wait as long as the mount lives.
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(io::Error::last_os_error());
        }
        match libc::fork() {
            -1 => {
                let e = io::Error::last_os_error();
                libc::close(fds[0]);
                libc::close(fds[1]);
                Err(e)
            }
            0 => {
                libc::close(fds[0]);
                libc::setsid();
                redirect_to_null(&[0, 1]);
                Ok(Role::Child(Reporter(Some(fds[1]))))
            }
            _ => {
                libc::close(fds[1]);
                let mut pipe = fs::File::from_raw_fd(fds[0]);
                let mut msg = String::new();
                let _ = pipe.read_to_string(&mut msg);
                if msg == "ok" {
                    Ok(Role::Parent(0))
                } else {
                    let msg = if msg.is_empty() {
                        "the daemon exited before mounting".to_string()
                    } else {
                        msg
                    };
                    eprintln!("thumbfs mount: {msg}");
                    Ok(Role::Parent(2))
                }
            }
        }
    }
}

/// Points the given descriptors at /dev/null.
fn redirect_to_null(targets: &[RawFd]) {
    let null = CString::new("/dev/null").expect("no NUL");
    // SAFETY: open/dup2/close on descriptors this process owns.
    unsafe {
        let fd = libc::open(null.as_ptr(), libc::O_RDWR);
        if fd >= 0 {
            for &t in targets {
                libc::dup2(fd, t);
            }
            if fd > 2 {
                libc::close(fd);
            }
        }
    }
}

/// Where start-up results go: the waiting parent's pipe when daemonised, else stderr.
pub(crate) struct Reporter(Option<RawFd>);

impl Reporter {
    /// Reports to stderr (foreground mode).
    pub(crate) fn stderr() -> Self {
        Reporter(None)
    }

    /// Reports a start-up failure once; returns the exit code.
    pub(crate) fn fail(&mut self, msg: &str) -> i32 {
        if self.0.is_some() {
            self.send(msg);
        } else {
            eprintln!("thumbfs mount: {msg}");
        }
        2
    }

    /// Tells the parent the mount works; later messages of the daemon go nowhere.
    pub(crate) fn mounted(&mut self) {
        if self.0.is_some() {
            self.send("ok");
            // The parent has exited.
            redirect_to_null(&[2]);
        }
    }

    fn send(&mut self, msg: &str) {
        if let Some(fd) = self.0.take() {
            // SAFETY: fd is the write end of our pipe, owned here and closed by the File.
            let mut f = unsafe { fs::File::from_raw_fd(fd) };
            let _ = f.write_all(msg.as_bytes());
        }
    }
}

/// Blocks the termination signals in this (and every later) thread, so one thread can wait
/// for them with sigwait and unmount cleanly.
pub(crate) fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Set once a termination signal arrived: from then on the session ending with an error (the
/// connection aborted under readers that outlived the grace period) is the stop we asked for.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Whether a termination signal is being handled.
pub(crate) fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// Starts the thread that waits for a termination signal and unmounts. If readers keep the
/// mount busy it detaches, gives renders `grace` to finish, aborts the connection and exits.
pub(crate) fn spawn_signal_thread(
    sigset: libc::sigset_t,
    mut unmounter: fuser::SessionUnmounter,
    spawner: Option<std::sync::Arc<crate::worker::Spawner>>,
    mnt: PathBuf,
    grace: Duration,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut sig = 0;
            // SAFETY: waiting on the blocked set built by block_signals.
            unsafe { libc::sigwait(&sigset, &mut sig) };
            tracing::info!("signal {sig}: unmounting");
            STOPPING.store(true, Ordering::SeqCst);
            notify_systemd(sd_notify::NotifyState::Stopping);
            // The FUSE connection's number, for aborting it if readers hang on.
            let conn = fs::metadata(&mnt).ok().map(|m| {
                use std::os::unix::fs::MetadataExt;
                libc::minor(m.dev())
            });
            // After --run-as only the spawner, still root, may unmount (fuser's unmount
            // reports success even when refused).
            let unmounted = match &spawner {
                Some(s) if !nix::unistd::geteuid().is_root() => s.unmount(&mnt),
                _ => unmounter.unmount(),
            };
            if let Err(e) = unmounted {
                tracing::info!("{}: {e}; detaching, open files finish first", mnt.display());
                detach(&mnt);
                std::thread::sleep(grace);
                if let Some(c) = conn {
                    let _ = fs::write(format!("/sys/fs/fuse/connections/{c}/abort"), "1");
                }
                // Without fusectl mounted the abort fails and an idle open file would keep the
                // session (and us) alive for ever: exit; the kernel fails its later reads.
                tracing::info!("exiting with files still open");
                crate::control::remove_socket();
                std::process::exit(0);
            }
        })
        .map(drop)
}

/// Gives `dir` (the cache directory) and everything in it to `uid:gid`, so that the daemon
/// can still write it after dropping root.
pub(crate) fn hand_over(dir: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            hand_over(&entry.path(), uid, gid)?;
        } else {
            std::os::unix::fs::lchown(entry.path(), Some(uid), Some(gid))?;
        }
    }
    Ok(())
}

/// Becomes `who` for good: its groups, gid and uid (glibc applies them to every thread).
pub(crate) fn drop_root(who: &super::options::RunAs) -> Result<(), String> {
    use nix::unistd::{getgrouplist, setgroups, setresgid, setresuid, Gid, Uid};
    let fail = |what: &str, e: nix::Error| format!("--run-as {}: {what}: {e}", who.name);
    let name = CString::new(who.name.as_str()).map_err(|_| "--run-as: bad name".to_string())?;
    let gid = Gid::from_raw(who.gid);
    let groups = getgrouplist(&name, gid).map_err(|e| fail("getgrouplist", e))?;
    setgroups(&groups).map_err(|e| fail("setgroups", e))?;
    setresgid(gid, gid, gid).map_err(|e| fail("setresgid", e))?;
    let uid = Uid::from_raw(who.uid);
    setresuid(uid, uid, uid).map_err(|e| fail("setresuid", e))?;
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(format!("--run-as {}: root could be regained", who.name));
    }
    Ok(())
}

/// Tells systemd (a `Type=notify` unit: `$NOTIFY_SOCKET` is set) how the service is doing;
/// a no-op anywhere else.
pub(crate) fn notify_systemd(state: sd_notify::NotifyState) {
    if let Err(e) = sd_notify::notify(false, &[state]) {
        tracing::warn!("telling systemd: {e}");
    }
}

/// Lazy unmount: the mount point is free at once, the filesystem goes when its files close.
fn detach(mnt: &Path) {
    if let Ok(c) = CString::new(mnt.as_os_str().as_bytes()) {
        // SAFETY: a valid C string path.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}
