//! What confines a render worker: another uid with no groups and no capabilities,
//! `PR_SET_NO_NEW_PRIVS`, resource limits (address space, no core files, few descriptors), and
//! a seccomp-bpf allow-list built with `seccompiler`: no opening of paths, no new sockets or
//! connects, no exec, no fork, no ptrace, no executable mappings.

use std::collections::BTreeMap;
use std::io;

use nix::unistd::{Gid, Uid, User};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// The user workers run as when `--worker-user` is not given and no `thumbfs` user exists: an
/// id that no package assigns (Debian leaves 60000-64999 to the local admin), so that the
/// worker owns no file.
pub const FALLBACK_ID: u32 = 61183;

/// The user and group a worker runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerIds {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// How workers are confined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// The ids to switch to; None when the daemon is not root (it cannot switch).
    pub ids: Option<WorkerIds>,
    /// The address-space limit in bytes.
    pub memory: u64,
}

/// The uid and gid for `--worker-user NAME|UID` (None: the `thumbfs` user, else
/// [`FALLBACK_ID`]). Refuses root and `nobody`: `nobody` is shared with every other service
/// that drops privileges, so a worker running as it could touch their processes and files.
pub fn worker_ids(user: Option<&str>) -> Result<WorkerIds, String> {
    let (uid, gid, name) = match user {
        None => match User::from_name("thumbfs") {
            Ok(Some(u)) => (u.uid.as_raw(), u.gid.as_raw(), u.name),
            _ => (FALLBACK_ID, FALLBACK_ID, FALLBACK_ID.to_string()),
        },
        Some(s) => match User::from_name(s) {
            Ok(Some(u)) => (u.uid.as_raw(), u.gid.as_raw(), u.name),
            _ => match s.parse::<u32>() {
                Ok(id) => match User::from_uid(Uid::from_raw(id)) {
                    Ok(Some(u)) => (id, u.gid.as_raw(), u.name),
                    _ => (id, id, s.to_string()),
                },
                Err(_) => return Err(format!("--worker-user {s}: no such user")),
            },
        },
    };
    if uid == 0 || gid == 0 {
        return Err(format!("--worker-user {name}: workers never run as root"));
    }
    if name == "nobody" || uid == 65534 {
        return Err(format!(
            "--worker-user {name}: not nobody, which other services share; use a dedicated user"
        ));
    }
    Ok(WorkerIds { uid, gid })
}

fn errno(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Sets a resource limit (soft and hard).
fn limit(resource: libc::__rlimit_resource_t, value: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: a valid rlimit struct.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(errno("setrlimit"));
    }
    Ok(())
}

/// In a freshly forked child about to exec: `channel` becomes fd 3, the only descriptor
/// that survives the exec (an inherited pipe end would keep a reader of it waiting), no
/// signal stays blocked, and the child dies with its parent.
pub fn inherit_channel(channel: i32) -> io::Result<()> {
    // SAFETY: plain syscalls on integers and valid pointers, async-signal-safe.
    unsafe {
        if channel != 3 {
            if libc::dup2(channel, 3) < 0 {
                return Err(errno("dup2"));
            }
        } else if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
            return Err(errno("fcntl"));
        }
        libc::syscall(
            libc::SYS_close_range,
            4u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            return Err(errno("PR_SET_PDEATHSIG"));
        }
    }
    Ok(())
}

/// Confines the current (freshly forked, single-threaded) process before it executes the
/// worker: the channel on fd 3 and nothing else inherited, death with the parent, the worker's
/// ids, no new privileges, and the limits.
pub fn confine_child(channel: i32, cfg: &SandboxConfig) -> io::Result<()> {
    inherit_channel(channel)?;
    // SAFETY: plain syscalls on integers and valid pointers; the process is single-threaded.
    unsafe {
        if let Some(WorkerIds { uid, gid }) = cfg.ids {
            if libc::setgroups(0, std::ptr::null()) != 0 {
                return Err(errno("setgroups"));
            }
            nix::unistd::setresgid(Gid::from_raw(gid), Gid::from_raw(gid), Gid::from_raw(gid))
                .map_err(|e| io::Error::other(format!("setresgid: {e}")))?;
            nix::unistd::setresuid(Uid::from_raw(uid), Uid::from_raw(uid), Uid::from_raw(uid))
                .map_err(|e| io::Error::other(format!("setresuid: {e}")))?;
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(errno("PR_SET_NO_NEW_PRIVS"));
        }
    }
    limit(libc::RLIMIT_AS, cfg.memory)?;
    limit(libc::RLIMIT_CORE, 0)?;
    // Enough for the channel, a source, stdio and what libraries keep open.
    limit(libc::RLIMIT_NOFILE, 64)?;
    Ok(())
}

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;

fn rule(conds: Vec<SeccompCondition>) -> io::Result<SeccompRule> {
    SeccompRule::new(conds).map_err(io::Error::other)
}

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> io::Result<SeccompCondition> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value).map_err(io::Error::other)
}

fn masked_zero(arg: u8, mask: u64) -> io::Result<SeccompRule> {
    rule(vec![cond(arg, SeccompCmpOp::MaskedEq(mask), 0)?])
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    mismatch: SeccompAction,
    matched: SeccompAction,
) -> io::Result<BpfProgram> {
    let filter = SeccompFilter::new(rules, mismatch, matched, ARCH).map_err(io::Error::other)?;
    filter.try_into().map_err(io::Error::other)
}

/// Syscalls a render needs, allowed whatever their arguments.
fn plain_syscalls() -> Vec<i64> {
    let mut v = vec![
        libc::SYS_read,
        libc::SYS_readv,
        libc::SYS_pread64,
        libc::SYS_preadv,
        libc::SYS_write,
        libc::SYS_writev,
        libc::SYS_lseek,
        libc::SYS_fstat,
        libc::SYS_close,
        libc::SYS_fcntl,
        libc::SYS_ppoll,
        libc::SYS_sendmsg,
        libc::SYS_recvmsg,
        libc::SYS_sendto,
        libc::SYS_recvfrom,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_madvise,
        libc::SYS_brk,
        libc::SYS_futex,
        libc::SYS_set_robust_list,
        libc::SYS_get_robust_list,
        libc::SYS_rseq,
        libc::SYS_sigaltstack,
        libc::SYS_rt_sigaction,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigreturn,
        libc::SYS_sched_getaffinity,
        libc::SYS_sched_yield,
        libc::SYS_getpid,
        libc::SYS_gettid,
        libc::SYS_getuid,
        libc::SYS_geteuid,
        libc::SYS_getgid,
        libc::SYS_getegid,
        libc::SYS_getrandom,
        libc::SYS_clock_gettime,
        libc::SYS_clock_getres,
        libc::SYS_clock_nanosleep,
        libc::SYS_nanosleep,
        libc::SYS_gettimeofday,
        libc::SYS_getrusage,
        libc::SYS_uname,
        libc::SYS_membarrier,
        libc::SYS_restart_syscall,
        libc::SYS_exit,
        libc::SYS_exit_group,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([libc::SYS_poll, libc::SYS_arch_prctl]);
    v
}

/// Installs the allow-list on every thread. Everything else fails with EPERM (a loader sees
/// an error it can report, not a killed process); clone3 fails with ENOSYS so that glibc falls
/// back to clone, whose flags a filter can inspect.
pub fn install_seccomp() -> io::Result<()> {
    let clone3 = compile(
        BTreeMap::from([(libc::SYS_clone3, vec![])]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
    )?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        plain_syscalls().into_iter().map(|s| (s, vec![])).collect();
    // Decided by the first filter.
    rules.insert(libc::SYS_clone3, vec![]);
    // Threads only: no fork, no new namespaces.
    rules.insert(
        libc::SYS_clone,
        vec![rule(vec![cond(
            0,
            SeccompCmpOp::MaskedEq(libc::CLONE_THREAD as u64),
            libc::CLONE_THREAD as u64,
        )?])?],
    );
    // Memory, never executable: no code can be mapped in or made from data.
    let exec = libc::PROT_EXEC as u64;
    rules.insert(libc::SYS_mmap, vec![masked_zero(2, exec)?]);
    rules.insert(libc::SYS_mprotect, vec![masked_zero(2, exec)?]);
    // fstat through the *at calls (glibc and std use them): only on a descriptor, with an
    // empty path, never a path lookup.
    let empty_path = libc::AT_EMPTY_PATH as u64;
    // (AT_EMPTY_PATH does not stop a lookup of a non-empty path: metadata of files the
    // worker's uid may search stays visible; their contents do not.)
    let flags_have = |arg: u8| {
        rule(vec![cond(
            arg,
            SeccompCmpOp::MaskedEq(empty_path),
            empty_path,
        )?])
    };
    rules.insert(libc::SYS_newfstatat, vec![flags_have(3)?]);
    rules.insert(libc::SYS_statx, vec![flags_have(2)?]);
    // Signals to this process only (abort() raises SIGABRT with tgkill).
    let pid = std::process::id() as u64;
    rules.insert(
        libc::SYS_tgkill,
        vec![rule(vec![cond(0, SeccompCmpOp::Eq, pid)?])?],
    );
    // Thread names and glibc's naming of its arenas.
    rules.insert(
        libc::SYS_prctl,
        vec![
            rule(vec![cond(0, SeccompCmpOp::Eq, libc::PR_SET_NAME as u64)?])?,
            rule(vec![cond(0, SeccompCmpOp::Eq, libc::PR_GET_NAME as u64)?])?,
            rule(vec![cond(0, SeccompCmpOp::Eq, 0x53564d41)?])?, // PR_SET_VMA
        ],
    );
    // Reading limits (thread stacks), never raising them.
    rules.insert(
        libc::SYS_prlimit64,
        vec![rule(vec![cond(2, SeccompCmpOp::Eq, 0)?])?],
    );
    #[cfg(target_arch = "x86_64")]
    rules.insert(libc::SYS_getrlimit, vec![]);
    let main = compile(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
    )?;
    seccompiler::apply_filter_all_threads(&clone3).map_err(io::Error::other)?;
    seccompiler::apply_filter_all_threads(&main).map_err(io::Error::other)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_never_run_as_root_or_nobody() {
        assert!(worker_ids(Some("root")).is_err());
        assert!(worker_ids(Some("0")).is_err());
        assert!(worker_ids(Some("nobody")).is_err());
        assert!(worker_ids(Some("65534")).is_err());
        assert!(worker_ids(Some("no-such-user-here")).is_err());
        assert_eq!(
            worker_ids(Some("61999")).unwrap(),
            WorkerIds {
                uid: 61999,
                gid: 61999
            }
        );
        assert_ne!(worker_ids(None).unwrap().uid, 0);
    }

    #[test]
    fn the_filters_compile() {
        // Installing them would confine the test process; compiling checks every rule.
        let rules: BTreeMap<i64, Vec<SeccompRule>> =
            plain_syscalls().into_iter().map(|s| (s, vec![])).collect();
        compile(
            rules,
            SeccompAction::Errno(libc::EPERM as u32),
            SeccompAction::Allow,
        )
        .unwrap();
    }
}
