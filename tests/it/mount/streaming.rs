//! Outputs streamed while they render: `--stat estimate`, reads racing the producer, first
//! bytes early, slow renders timed out.

use crate::common;

use std::fs;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::mount::{engine, Mount};
use common::*;

/// `--stat estimate`: `ls -l` renders nothing; after open, fstat is exact; reads at random
/// offsets from several threads while the render is still producing get the right bytes.
#[test]
fn estimate_mode_and_reads_racing_the_producer() {
    let photo = corpus("photos/seeding_by_Clements_Engelhardt.jpg");
    let m = Mount::new(&corpus("photos"), &["--stat", "estimate"]);
    let listed = fs::read_dir(m.path("png")).unwrap().count();
    assert_eq!(listed, 2);
    let lstat = fs::metadata(m.path("png/seeding_by_Clements_Engelhardt.png")).unwrap();
    assert_eq!(lstat.len(), fs::metadata(&photo).unwrap().len(), "estimate");
    assert_eq!(m.stats()["renders"], 0, "listing and stat rendered nothing");

    let want = Arc::new(engine(&photo, "png").unwrap());
    let f = Arc::new(fs::File::open(m.path("png/seeding_by_Clements_Engelhardt.png")).unwrap());
    // Eight threads read 64 KiB blocks at scattered offsets, highest first, so most wait
    // for bytes the producer has not written yet.
    let n = want.len() as u64;
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let (f, want) = (f.clone(), want.clone());
            std::thread::spawn(move || {
                for k in (0..16u64).rev() {
                    let off = (n / 16) * k + t * 7919;
                    let mut buf = vec![0u8; 65536];
                    let got = f.read_at(&mut buf, off).unwrap();
                    let end = (off + 65536).min(n) as usize;
                    assert!(
                        buf[..got] == want[off as usize..end],
                        "offset {off}: {got} bytes differ"
                    );
                }
                // Past EOF: nothing.
                assert_eq!(f.read_at(&mut [0u8; 16], n + 100).unwrap(), 0);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(f.metadata().unwrap().len(), n, "fstat after open is exact");
    assert_eq!(m.stats()["renders"], 1);
}

/// A slow render streams its first bytes long before it ends, and one over
/// `--render-timeout` fails with EIO while the daemon keeps serving.
#[test]
fn first_bytes_stream_early_and_slow_renders_time_out() {
    // The timeout (8 s) leaves room for the first bytes on a loaded machine (a few hundred ms
    // of CPU), while the render needs far more CPU than that: maximum zlib effort on the photo
    // enlarged to 81 megapixels (over a minute of work), so it can never finish in time.
    let m = Mount::new(
        &corpus("photos"),
        &["--stat", "estimate", "--render-timeout", "8"],
    );
    let p = m.path("w12000_up_png_c9/seeding_by_Clements_Engelhardt.png");
    let t = Instant::now();
    let f = fs::File::open(&p).unwrap();
    let mut buf = vec![0u8; 65536];
    let got = f.read_at(&mut buf, 0).unwrap();
    let first = t.elapsed();
    assert_eq!(got, 65536);
    assert_eq!(&buf[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(m.stats()["in_flight"], 1, "first bytes arrived mid-render");
    // Reading on hits the timeout.
    let mut off = 65536u64;
    let err = loop {
        match f.read_at(&mut buf, off) {
            Ok(0) => panic!("render finished before the timeout"),
            Ok(n) => off += n as u64,
            Err(e) => break e,
        }
    };
    let failed = t.elapsed();
    assert_eq!(err.raw_os_error(), Some(libc::EIO));
    assert!(failed >= Duration::from_secs(7), "{failed:?}");
    let errors = fs::read_to_string(m.path(".thumbfs/errors")).unwrap();
    assert!(
        errors.lines().next().unwrap().contains("timed out"),
        "{errors}"
    );
    assert!(m.log_text().contains("timed out"));
    // Still serving.
    let small = fs::read(m.path("w64/sunset_by_Aitzol_Berasategi.jpg")).unwrap();
    assert_eq!(
        small,
        engine(&corpus("photos/sunset_by_Aitzol_Berasategi.jpg"), "w64").unwrap()
    );
    eprintln!("first 64 KiB after {first:?}; EIO after {failed:?} at offset {off}");
}
