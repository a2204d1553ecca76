//! exiftool, kept running for the whole test binary (`-stay_open`): each new exiftool is a Perl
//! start-up of ~0.25 s CPU, and the suite asks it a few hundred questions.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

struct Server {
    stdin: ChildStdin,
    stdout: ChildStdout,
    stderr: BufReader<ChildStderr>,
    /// Numbers each command, so that its end markers cannot be an earlier command's.
    n: u64,
}

/// The one exiftool process. It is spawned with PR_SET_PDEATHSIG by a thread that waits for
/// it: the kernel kills it when that thread ends, i.e. when the test binary exits (a
/// stay-open exiftool polls its closed stdin forever rather than exiting).
fn server() -> &'static Mutex<Server> {
    static SERVER: OnceLock<Mutex<Server>> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut cmd = Command::new("exiftool");
            cmd.args(["-stay_open", "True", "-@", "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            // SAFETY: prctl is async-signal-safe and touches no memory of ours.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let mut child = cmd.spawn().expect("exiftool runs");
            let pipes = (child.stdin.take(), child.stdout.take(), child.stderr.take());
            tx.send(pipes).unwrap();
            // Only ends if exiftool does: then the next question fails on its closed pipes.
            let _ = child.wait();
        });
        let (stdin, stdout, stderr) = rx.recv().unwrap();
        Mutex::new(Server {
            stdin: stdin.unwrap(),
            stdout: stdout.unwrap(),
            stderr: BufReader::new(stderr.unwrap()),
            n: 0,
        })
    })
}

/// `exiftool ARGS PATH`: its standard output. An `Error:` line on its standard error (a
/// missing file, a failed write) fails the test, as exiftool's exit status would.
pub fn exiftool(args: &[&str], path: &Path) -> Vec<u8> {
    let mut s = server().lock().unwrap_or_else(|e| e.into_inner());
    s.n += 1;
    let n = s.n;
    let mut cmd = String::new();
    for a in args {
        assert!(
            !a.contains('\n'),
            "{a:?}: exiftool reads one argument per line"
        );
        cmd.push_str(a);
        cmd.push('\n');
    }
    let p = path.to_str().expect("a UTF-8 path");
    assert!(!p.contains('\n'), "{p:?}");
    // -echo4 prints its text to stderr once the command is done: stderr's end marker.
    cmd.push_str(&format!("{p}\n-echo4\n{{done{n}}}\n-execute{n}\n"));
    s.stdin.write_all(cmd.as_bytes()).unwrap();
    s.stdin.flush().unwrap();
    let ready = format!("{{ready{n}}}\n");
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while !out.ends_with(ready.as_bytes()) {
        let got = s.stdout.read(&mut buf).unwrap();
        assert!(got > 0, "exiftool ended during {args:?} {path:?}");
        out.extend_from_slice(&buf[..got]);
    }
    out.truncate(out.len() - ready.len());
    let done = format!("{{done{n}}}");
    let mut errors = String::new();
    loop {
        let mut line = String::new();
        assert!(s.stderr.read_line(&mut line).unwrap() > 0, "exiftool ended");
        if line.trim_end() == done {
            break;
        }
        if line.starts_with("Error") {
            errors.push_str(&line);
        }
    }
    drop(s);
    assert!(errors.is_empty(), "exiftool {args:?} {path:?}: {errors}");
    out
}
