//! Render workers (issue 21): every render of a mount runs in a sandboxed worker process.
//! A test-only loader (cargo feature `fault-injection`, crates/codec/src/fault.rs) crashes, aborts,
//! allocates without end, hangs, or tries to open a file or connect, on a magic byte
//! sequence: each gives its reader EIO with the cause in `.thumbfs/errors`, the worker is
//! replaced, and the daemon (its memory and threads) and every other reader carry on.

use crate::common;

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::time::Duration;

use common::mount::{engine, proc_status_number, small_tree, Mount};
use common::*;

/// A file that the fault loader acts on: the PNG signature, then the fault's name.
fn fault_file(dir: &Path, what: &str) {
    let mut bytes = b"\x89PNG\r\n\x1a\nTHUMBFS-FAULT:".to_vec();
    bytes.extend_from_slice(what.as_bytes());
    bytes.extend_from_slice(&[b'\n'; 64]);
    fs::write(dir.join(format!("{what}.png")), bytes).unwrap();
}

/// Reads a mount path and expects EIO.
fn expect_eio(path: &Path) {
    match fs::read(path) {
        Ok(b) => panic!("{} read {} bytes", path.display(), b.len()),
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EIO), "{}: {e}", path.display()),
    }
}

/// The daemon's render workers: processes named thumbfs-worker whose parent is the spawner,
/// a child of the daemon.
fn workers_of(daemon: u32) -> Vec<u32> {
    let parent = |pid: u32| -> Option<u32> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "thumbfs-worker" && parent(pid).and_then(parent) == Some(daemon) {
            out.push(pid);
        }
    }
    out.sort();
    out
}

/// A line of /proc/PID/status, as text.
fn status_line(pid: u32, field: &str) -> String {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .strip_prefix(':')
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs the test loader: --features fault-injection (scripts/test.sh)"
)]
fn each_fault_is_eio_with_its_cause_and_the_mount_carries_on() {
    let src = small_tree();
    let faults = ["segv", "abort", "oom", "hang", "open", "connect"];
    for f in faults {
        fault_file(src.path(), f);
    }
    let m = Mount::new(
        src.path(),
        &[
            "--threads",
            "2",
            "--worker-memory",
            "1G",
            "--render-timeout",
            "5",
        ],
    );
    let good = m.path("w64/a.jpg");
    let want = engine(&src.path().join("a.jpg"), "w64").unwrap();
    assert_eq!(fs::read(&good).unwrap(), want);
    let pid = m.pid();
    let threads = proc_status_number(pid, "Threads");
    let rss = m.status_kib("VmRSS");
    let causes = [
        ("segv", "decoder crashed (SIGSEGV)", true),
        ("abort", "decoder aborted (SIGABRT)", true),
        ("oom", "out of memory (worker limit 1024 MiB)", true),
        ("hang", "timed out after 5 s; worker killed", true),
        (
            "open",
            "open(/etc/passwd) refused: Operation not permitted",
            false,
        ),
        ("connect", "refused: Operation not permitted", false),
    ];
    for (i, (f, cause, restarts)) in causes.into_iter().enumerate() {
        let before = m.stats()["worker_restarts"];
        // A different spec each round: a failure is remembered per (file, spec).
        expect_eio(&m.path(&format!("w{}/{f}.png", 100 + i)));
        let errors = m.errors();
        assert!(
            errors
                .iter()
                .any(|l| l.contains(&format!("{f}.png")) && l.contains(cause)),
            "{f}: no {cause:?} in {errors:?}"
        );
        // A timed-out render's reader hears first; its worker is killed just after.
        let mut after = m.stats()["worker_restarts"];
        for _ in 0..200 {
            if after - before >= u64::from(restarts) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
            after = m.stats()["worker_restarts"];
        }
        assert_eq!(after - before, u64::from(restarts), "{f}: restarts");
        // The next read is served, by a worker that still works.
        let spec = format!("w{}", 64 + i);
        assert_eq!(
            fs::read(m.path(&format!("{spec}/a.jpg"))).unwrap(),
            engine(&src.path().join("a.jpg"), &spec).unwrap(),
            "after {f}"
        );
    }
    assert_eq!(m.stats()["worker_restarts"], 4);
    // The daemon took none of it: same threads, memory within noise.
    assert_eq!(
        proc_status_number(pid, "Threads"),
        threads,
        "daemon threads"
    );
    let grown = m.status_kib("VmRSS").saturating_sub(rss);
    assert!(grown < 32 * 1024, "daemon RSS grew by {grown} KiB");
    // The workers were replaced: one per render thread again.
    let mut live = workers_of(pid);
    for _ in 0..100 {
        if live.len() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        live = workers_of(pid);
    }
    assert_eq!(live.len(), 2, "workers: {live:?}");
}

#[test]
fn workers_run_unprivileged_and_confined() {
    let src = small_tree();
    let m = Mount::new(src.path(), &["--threads", "2"]);
    assert!(fs::read(m.path("w32/a.jpg")).is_ok());
    // Both workers, once sandboxed (one may still be starting).
    let mut workers = Vec::new();
    for _ in 0..400 {
        workers = workers_of(m.pid());
        if workers.len() == 2 && workers.iter().all(|&w| status_line(w, "Seccomp") == "2") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(workers.len(), 2, "{workers:?}");
    for w in workers {
        let uid = status_line(w, "Uid");
        assert!(
            uid.split_whitespace().all(|u| u == "61183"),
            "worker {w} uids: {uid}"
        );
        assert_eq!(status_line(w, "Groups"), "", "worker {w} groups");
        assert_eq!(status_line(w, "NoNewPrivs"), "1");
        assert_eq!(status_line(w, "Seccomp"), "2", "seccomp filter mode");
        assert_eq!(status_line(w, "CapEff"), "0000000000000000");
        let limits = fs::read_to_string(format!("/proc/{w}/limits")).unwrap();
        let address = limits
            .lines()
            .find(|l| l.starts_with("Max address space"))
            .unwrap();
        assert!(address.contains(&(4u64 << 30).to_string()), "{address}");
    }
}

#[test]
fn outputs_are_byte_identical_with_and_without_isolation() {
    let src = small_tree();
    for (from, to) in [
        ("photos/seeding_by_Clements_Engelhardt.jpg", "photo.jpg"),
        ("tiff/bw-deflate.tiff", "e.tiff"),
        (
            "webp/blue-purple-pink-large.normal-filter.lossy.webp",
            "d.webp",
        ),
    ] {
        if corpus(from).exists() {
            fs::copy(corpus(from), src.path().join(to)).unwrap();
        }
    }
    let isolated = Mount::new(src.path(), &[]);
    let inside = Mount::new(src.path(), &["-o", "isolation=none"]);
    let mut compared = 0;
    for spec in [
        "w200",
        "q90_shrink2",
        "w128_webp",
        "200x200_fill_png",
        "grey_rot90",
    ] {
        for e in fs::read_dir(src.path()).unwrap().flatten() {
            let name = e.file_name().into_string().unwrap();
            let a = fs::read(isolated.path(&format!("{spec}/{name}")));
            let b = fs::read(inside.path(&format!("{spec}/{name}")));
            match (a, b) {
                (Ok(a), Ok(b)) => {
                    assert!(a == b, "{spec}/{name} differs");
                    compared += 1;
                }
                // Names change with the output format: look the file up in the listing.
                (Err(a), Err(b)) if a.kind() == ErrorKind::NotFound && b.kind() == a.kind() => {}
                (a, b) => panic!("{spec}/{name}: {a:?} vs {b:?}"),
            }
        }
        for e in fs::read_dir(isolated.path(spec)).unwrap().flatten() {
            let rel = format!("{spec}/{}", e.file_name().to_str().unwrap());
            assert!(
                fs::read(isolated.path(&rel)).unwrap() == fs::read(inside.path(&rel)).unwrap(),
                "{rel} differs"
            );
            compared += 1;
        }
    }
    assert!(compared >= 20, "compared {compared}");
}

#[test]
fn a_worker_user_of_root_or_nobody_is_refused() {
    let src = small_tree();
    let mnt = tempfile::tempdir().unwrap();
    for user in ["root", "nobody"] {
        let out = std::process::Command::new(thumbfs_bin())
            .args(["mount", "-f", "--worker-user", user])
            .arg(src.path())
            .arg(mnt.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{user}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--worker-user"), "{user}: {err}");
    }
}

#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs the test loader: --features fault-injection (scripts/test.sh)"
)]
fn run_as_drops_root_after_mounting_and_workers_still_restart() {
    use std::os::unix::fs::PermissionsExt;
    let src = small_tree();
    fs::set_permissions(src.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fault_file(src.path(), "segv");
    // Readable by root only: the daemon, now `daemon`, must not serve it.
    let secret = src.path().join("secret.png");
    fs::copy(src.path().join("b.png"), &secret).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let mut m = Mount::new(src.path(), &["--threads", "1", "-o", "run_as=daemon"]);
    let uid = String::from_utf8(run(std::process::Command::new("id").args(["-u", "daemon"])))
        .unwrap()
        .trim()
        .to_string();
    let uids = status_line(m.pid(), "Uid");
    assert!(
        uids.split_whitespace().all(|u| u == uid),
        "daemon uids: {uids}"
    );
    assert_eq!(
        fs::read(m.path("w64/a.jpg")).unwrap(),
        engine(&src.path().join("a.jpg"), "w64").unwrap()
    );
    assert!(
        fs::read(m.path("w64/secret.png")).is_err(),
        "a 0600 file of root's was served"
    );
    expect_eio(&m.path("w64/segv.png"));
    assert!(m
        .errors()
        .iter()
        .any(|l| l.contains("decoder crashed (SIGSEGV)")));
    // The spawner, still root, started a new worker with its own uid.
    assert_eq!(
        fs::read(m.path("w65/a.jpg")).unwrap(),
        engine(&src.path().join("a.jpg"), "w65").unwrap()
    );
    assert_eq!(m.stats()["worker_restarts"], 1);
    // SIGTERM unmounts (through the spawner: the daemon may no longer) and exits.
    let dir = m.dir.path().to_path_buf();
    let st = m.stop(Some(libc::SIGTERM));
    assert!(st.success(), "{st}");
    assert!(!common::mount::is_mounted(&dir), "still mounted");
}

/// Whether process `pid` has `file` open.
fn holds(pid: u32, file: &Path) -> bool {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| fs::read_link(fd.path()).is_ok_and(|t| t == file))
}

/// A worker killed from outside while it renders (an admin's `kill -9`, the kernel's OOM
/// killer): the reader gets EIO, `.thumbfs/errors` names the signal (from the spawner's wait
/// status, though the daemon only saw the channel close), the worker is replaced and the next
/// reads are served. Such a failure says nothing about the file, so it is not remembered.
#[test]
#[cfg_attr(
    not(feature = "fault-injection"),
    ignore = "needs the test loader: --features fault-injection (scripts/test.sh)"
)]
fn a_worker_killed_from_outside_is_eio_with_the_signal_and_is_replaced() {
    let src = small_tree();
    fault_file(src.path(), "hang");
    let hang = fs::canonicalize(src.path().join("hang.png")).unwrap();
    let m = Mount::new(src.path(), &["--threads", "1", "--render-timeout", "5"]);
    let a = |spec: &str| engine(&src.path().join("a.jpg"), spec).unwrap();
    assert_eq!(fs::read(m.path("w64/a.jpg")).unwrap(), a("w64"));
    let path = m.path("w100/hang.png");
    let reader = std::thread::spawn(move || fs::read(path));
    // The worker rendering the file holds its descriptor (passed by the daemon).
    let mut busy = None;
    for _ in 0..400 {
        busy = workers_of(m.pid()).into_iter().find(|&w| holds(w, &hang));
        if busy.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let worker = busy.expect("no worker is rendering hang.png");
    let before = m.stats()["worker_restarts"];
    // SAFETY: a plain kill(2) of a process this test found by its parentage.
    assert_eq!(unsafe { libc::kill(worker as i32, libc::SIGKILL) }, 0);
    match reader.join().unwrap() {
        Ok(b) => panic!("hang.png read {} bytes", b.len()),
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}"),
    }
    let errors = m.errors();
    assert!(
        errors
            .iter()
            .any(|l| l.contains("hang.png") && l.contains("worker killed (SIGKILL)")),
        "no SIGKILL cause in {errors:?}"
    );
    assert_eq!(m.stats()["worker_restarts"], before + 1);
    // Replaced: the next read is served by a new worker.
    assert_eq!(fs::read(m.path("w65/a.jpg")).unwrap(), a("w65"));
    let live = workers_of(m.pid());
    assert!(
        live.len() == 1 && live[0] != worker,
        "workers {live:?}, killed {worker}"
    );
    // A worker killed while idle is found out when the next job is sent to it: that render
    // runs in its replacement instead of failing.
    let idle = live[0];
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(idle as i32, libc::SIGKILL) }, 0);
    let state = || fs::read_to_string(format!("/proc/{idle}/stat")).unwrap_or_default();
    for _ in 0..200 {
        if state()
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(fs::read(m.path("w66/a.jpg")).unwrap(), a("w66"));
    assert_eq!(m.stats()["worker_restarts"], before + 2);
    // Not remembered: the same file renders again (and hangs until the timeout).
    expect_eio(&m.path("w100/hang.png"));
    let errors = m.errors();
    assert!(
        errors
            .iter()
            .any(|l| l.contains("hang.png") && l.contains("timed out after 5 s")),
        "hang.png was not rendered again: {errors:?}"
    );
}
