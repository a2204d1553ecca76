//! Test-only fault injection (cargo feature `fault-injection`, enabled by scripts/test.sh,
//! never by a release build): a file whose head is the PNG signature followed by
//! `THUMBFS-FAULT:<what>` makes the render crash, abort, allocate without end, hang, or try
//! to escape the sandbox, the way a broken or exploited decoder would.

use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\x89PNG\r\n\x1a\nTHUMBFS-FAULT:";

/// Does what the file asks for, if it is a fault file.
pub fn strike(head: &[u8]) -> Result<()> {
    let Some(rest) = head.strip_prefix(MAGIC) else {
        return Ok(());
    };
    let what: Vec<u8> = rest
        .iter()
        .take_while(|b| b.is_ascii_lowercase())
        .copied()
        .collect();
    match &what[..] {
        b"segv" => {
            // A wild write, as a decoder bug would make.
            // SAFETY: none; crashing is the point.
            unsafe { std::ptr::write_volatile(std::hint::black_box(8usize) as *mut u8, 1) };
            Err(Error::decode("fault", "still alive after a wild write"))
        }
        b"abort" => std::process::abort(),
        b"oom" => {
            // Reserved, not touched: the address-space limit is reached in microseconds,
            // however busy the machine is.
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(Vec::with_capacity(64 << 20));
                std::hint::black_box(&hoard);
            }
        }
        b"hang" => loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        },
        b"open" => match std::fs::File::open("/etc/passwd") {
            Ok(_) => Err(Error::decode("fault", "open(/etc/passwd) succeeded")),
            Err(e) => Err(Error::decode(
                "fault",
                format!("open(/etc/passwd) refused: {e}"),
            )),
        },
        b"connect" => match std::net::TcpStream::connect(("127.0.0.1", 9)) {
            Ok(_) => Err(Error::decode("fault", "connect(127.0.0.1:9) succeeded")),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(Error::decode(
                "fault",
                "connect(127.0.0.1:9) reached the network (connection refused by the peer)",
            )),
            Err(e) => Err(Error::decode(
                "fault",
                format!("connect(127.0.0.1:9) refused: {e}"),
            )),
        },
        _ => Err(Error::decode("fault", "unknown fault")),
    }
}
