//! The spawner: a small process the daemon starts while it is still root, before it drops
//! privileges (`--run-as`), which starts confined workers on request, kills and reaps them, and
//! unmounts at the end. Workers are its children, so it is the one that learns how they died.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use super::frame::{Channel, Received};
use super::protocol::{Ending, FromSpawner, FromWorker, ToSpawner};
use super::sandbox::{confine_child, SandboxConfig, WorkerIds};

/// How long a new worker may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a worker whose channel closed may take to end by itself before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// A started worker, seen from the daemon.
#[derive(Debug)]
pub struct Spawned {
    /// Its process id.
    pub pid: i32,
    /// Its channel.
    pub chan: Channel,
}

/// The daemon's handle on the spawner process. Requests are serialised: one at a time.
pub struct Spawner {
    chan: Mutex<Channel>,
    child: Mutex<Child>,
    /// The confinement workers get, for messages (e.g. the memory limit).
    pub config: SandboxConfig,
}

impl Spawner {
    /// Starts the spawner process (from this executable). `stderr`: where workers' stderr goes
    /// (None: discarded).
    pub fn start(config: SandboxConfig, stderr: Option<File>) -> io::Result<Spawner> {
        let (ours, theirs) = Channel::pair()?;
        let mut cmd = Command::new("/proc/self/exe");
        cmd.arg0("thumbfs-spawner").arg("__spawner");
        cmd.arg(config.memory.to_string());
        if let Some(ids) = config.ids {
            cmd.arg(ids.uid.to_string()).arg(ids.gid.to_string());
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        match stderr {
            Some(f) => cmd.stderr(f),
            None => cmd.stderr(Stdio::null()),
        };
        let fd = theirs.fd().as_raw_fd();
        // SAFETY: only async-signal-safe calls (dup2, fcntl, close_range, prctl, sigprocmask,
        // setpgid) after fork.
        unsafe {
            cmd.pre_exec(move || {
                // Ends with the daemon, however the daemon ends; its workers follow it.
                super::sandbox::inherit_channel(fd)?;
                // Out of the daemon's process group: a Ctrl-C on a foreground mount reaches
                // the daemon, which then shuts the spawner down.
                libc::setpgid(0, 0);
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        drop(theirs);
        Ok(Spawner {
            chan: Mutex::new(ours),
            child: Mutex::new(child),
            config,
        })
    }

    fn ask(&self, req: ToSpawner) -> io::Result<(FromSpawner, Option<OwnedFd>)> {
        let chan = self.chan.lock().unwrap_or_else(|e| e.into_inner());
        chan.send(&req.encode(), None)?;
        match chan.recv_within(Duration::from_secs(30))? {
            Received::Message(body, fd) => Ok((FromSpawner::decode(&body)?, fd)),
            Received::Closed => Err(io::Error::other("the worker spawner is gone")),
            Received::TimedOut => Err(io::Error::other("the worker spawner does not answer")),
        }
    }

    /// Starts a worker and waits until it is sandboxed and ready.
    pub fn spawn(&self) -> io::Result<Spawned> {
        let (pid, chan) = match self.ask(ToSpawner::Spawn)? {
            (FromSpawner::Spawned(pid), Some(fd)) => (pid, Channel::from(fd)),
            (FromSpawner::Failed(why), _) => return Err(io::Error::other(why)),
            _ => return Err(io::Error::other("bad answer from the worker spawner")),
        };
        let ready = match chan.recv_within(READY_TIMEOUT) {
            Ok(Received::Message(body, _)) => FromWorker::decode(&body).ok(),
            _ => None,
        };
        if ready != Some(FromWorker::Ready) {
            let how = self.reap(pid).how;
            return Err(io::Error::other(format!(
                "a new render worker failed: {how}"
            )));
        }
        Ok(Spawned { pid, chan })
    }

    /// Kills a worker (if still running), reaps it and says how it ended.
    pub fn reap(&self, pid: i32) -> Ending {
        self.ended(ToSpawner::Kill(pid))
    }

    /// Reaps a worker that is ending by itself (its channel closed) and says how it ended:
    /// its own wait status, e.g. "worker killed (SIGKILL)" when something outside killed it.
    /// It is killed if it does not end within a grace period.
    pub fn wait(&self, pid: i32) -> Ending {
        self.ended(ToSpawner::Wait(pid))
    }

    fn ended(&self, req: ToSpawner) -> Ending {
        let how = match self.ask(req) {
            Ok((FromSpawner::Ended(e), _)) => return e,
            Ok((FromSpawner::Failed(why), _)) => why,
            Ok(_) => "unknown".into(),
            Err(e) => e.to_string(),
        };
        Ending { how, again: false }
    }

    /// Asks the spawner, which stays root, to unmount `mnt` lazily.
    pub fn unmount(&self, mnt: &std::path::Path) -> io::Result<()> {
        match self.ask(ToSpawner::Unmount(mnt.to_string_lossy().into_owned()))? {
            (FromSpawner::Ok, _) => Ok(()),
            (FromSpawner::Failed(why), _) => Err(io::Error::other(why)),
            _ => Err(io::Error::other("bad answer from the worker spawner")),
        }
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl From<OwnedFd> for Channel {
    fn from(fd: OwnedFd) -> Channel {
        // SAFETY: we own fd; it came attached to the spawner's answer, a SEQPACKET socket.
        unsafe { Channel::from_raw(std::os::fd::IntoRawFd::into_raw_fd(fd)) }
    }
}

/// How a worker ended, in the words readers see in `.thumbfs/errors`, and whether the same
/// job would end it so again: faults of its own yes, signals from outside (SIGKILL: an
/// admin, the kernel's OOM killer) no.
pub fn ending(status: WaitStatus) -> Ending {
    let again = match status {
        WaitStatus::Signaled(_, sig, _) => matches!(
            sig,
            Signal::SIGSEGV
                | Signal::SIGBUS
                | Signal::SIGILL
                | Signal::SIGFPE
                | Signal::SIGABRT
                | Signal::SIGSYS
        ),
        WaitStatus::Exited(..) => true,
        _ => false,
    };
    Ending {
        how: describe(status),
        again,
    }
}

/// How a worker ended, in the words readers see in `.thumbfs/errors`.
pub fn describe(status: WaitStatus) -> String {
    match status {
        WaitStatus::Signaled(_, sig, _) => match sig {
            Signal::SIGSEGV | Signal::SIGBUS | Signal::SIGILL | Signal::SIGFPE => {
                format!("decoder crashed ({})", sig.as_str())
            }
            Signal::SIGABRT => "decoder aborted (SIGABRT)".into(),
            Signal::SIGSYS => "decoder stopped by the sandbox (SIGSYS)".into(),
            Signal::SIGKILL => "worker killed (SIGKILL)".into(),
            s => format!("worker ended by {}", s.as_str()),
        },
        WaitStatus::Exited(_, code) => format!("worker exited with status {code}"),
        other => format!("worker ended ({other:?})"),
    }
}

/// Runs the spawner process (`thumbfs __spawner MEMORY [UID GID]`); returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let parse = |i: usize| args.get(i).and_then(|s| s.parse::<u64>().ok());
    let Some(memory) = parse(0) else {
        eprintln!("thumbfs spawner: bad arguments");
        return 2;
    };
    let ids = match (parse(1), parse(2)) {
        (Some(u), Some(g)) => Some(WorkerIds {
            uid: u as u32,
            gid: g as u32,
        }),
        _ => None,
    };
    let config = SandboxConfig { ids, memory };
    // SAFETY: fd 3 is the control channel the daemon set up.
    let chan = unsafe { Channel::from_raw(3) };
    // The executable, opened while we may: workers are started from this descriptor, so the
    // worker uid needs no access to the directories on the binary's path.
    let exe = match File::open("/proc/self/exe") {
        Ok(f) => f,
        Err(e) => {
            eprintln!("thumbfs spawner: opening /proc/self/exe: {e}");
            return 1;
        }
    };
    loop {
        let req = match chan.recv(None) {
            Ok(Received::Message(body, _)) => ToSpawner::decode(&body),
            _ => return 0,
        };
        let (answer, fd) = match req {
            Ok(ToSpawner::Spawn) => match start_worker(&exe, &config) {
                Ok((pid, ch)) => (FromSpawner::Spawned(pid), Some(ch)),
                Err(e) => (FromSpawner::Failed(format!("starting a worker: {e}")), None),
            },
            Ok(ToSpawner::Kill(pid)) if pid > 0 => {
                let pid = Pid::from_raw(pid);
                let _ = kill(pid, Signal::SIGKILL);
                match waitpid(pid, None) {
                    Ok(st) => (FromSpawner::Ended(ending(st)), None),
                    Err(e) => (FromSpawner::Failed(format!("waitpid: {e}")), None),
                }
            }
            Ok(ToSpawner::Wait(pid)) if pid > 0 => match wait_or_kill(Pid::from_raw(pid)) {
                Ok(e) => (FromSpawner::Ended(e), None),
                Err(e) => (FromSpawner::Failed(format!("waitpid: {e}")), None),
            },
            Ok(ToSpawner::Unmount(path)) => {
                match nix::mount::umount2(path.as_str(), nix::mount::MntFlags::MNT_DETACH) {
                    Ok(()) => (FromSpawner::Ok, None),
                    Err(e) => (FromSpawner::Failed(format!("umount {path}: {e}")), None),
                }
            }
            _ => (FromSpawner::Failed("bad request".into()), None),
        };
        let raw = fd.as_ref().map(|c: &Channel| c.fd().as_raw_fd());
        if chan.send(&answer.encode(), raw).is_err() {
            return 0;
        }
    }
}

/// Reaps `pid`, giving it [`EXIT_GRACE`] to end by itself (its own status is the cause to
/// report), then killing it.
fn wait_or_kill(pid: Pid) -> nix::Result<Ending> {
    use nix::sys::wait::WaitPidFlag;
    let start = std::time::Instant::now();
    while start.elapsed() < EXIT_GRACE {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG))? {
            WaitStatus::StillAlive => std::thread::sleep(Duration::from_millis(5)),
            st => return Ok(ending(st)),
        }
    }
    let _ = kill(pid, Signal::SIGKILL);
    waitpid(pid, None)?;
    Ok(Ending {
        how: "worker closed its channel without ending; killed".into(),
        again: false,
    })
}

/// Forks a worker: confined in the child, then the executable run from `exe`.
fn start_worker(exe: &File, config: &SandboxConfig) -> io::Result<(i32, Channel)> {
    let (ours, theirs) = Channel::pair()?;
    let argv = [
        CString::new("thumbfs-worker").expect("no NUL"),
        CString::new("__worker").expect("no NUL"),
    ];
    let env: [CString; 0] = [];
    // SAFETY: the spawner is single-threaded, so the child may do anything before exec.
    match unsafe { fork() }.map_err(io::Error::from)? {
        ForkResult::Child => {
            let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
                eprintln!("thumbfs worker: {what}: {e}");
                // SAFETY: ends the child without running the parent's destructors.
                unsafe { libc::_exit(127) }
            };
            drop(ours);
            if let Err(e) = confine_child(theirs.fd().as_raw_fd(), config) {
                fail("confining", &e);
            }
            let e = nix::unistd::fexecve(exe, &argv, &env);
            fail("exec", &format!("{e:?}"))
        }
        ForkResult::Parent { child } => Ok((child.as_raw(), ours)),
    }
}
