//! contrib/nginx-thumbfs.conf for real: nginx in front of a mount made with the options the
//! file documents, answering one URL with AVIF, WebP or JPEG by the Accept header.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::corpus;
use common::mount::{engine, Mount};

/// The contrib file.
fn recipe() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/nginx-thumbfs.conf"))
        .unwrap()
}

/// The `-o` list the recipe's comment gives the mount.
fn mount_options(recipe: &str) -> String {
    recipe
        .lines()
        .find_map(|l| l.trim_start_matches('#').trim().strip_prefix("OPTIONS=-o "))
        .expect("an OPTIONS=-o line")
        .to_string()
}

/// nginx in the foreground with the recipe's server block (port and root substituted); SIGTERM
/// on drop.
struct Nginx(Child);

impl Nginx {
    fn start(dir: &Path, port: u16, root: &Path) -> Nginx {
        let server = recipe()
            .replace(
                "listen 127.0.0.1:8080;",
                &format!("listen 127.0.0.1:{port};"),
            )
            .replace("root /srv/thumbs;", &format!("root {};", root.display()));
        assert!(
            server.contains(&format!(":{port};")) && server.contains(&root.display().to_string())
        );
        fs::write(dir.join("thumbfs.conf"), server).unwrap();
        let o = dir.display();
        fs::write(
            dir.join("nginx.conf"),
            format!(
                "daemon off; pid {o}/nginx.pid; error_log {o}/error.log;\n\
                 events {{ worker_connections 16; }}\n\
                 http {{ access_log off; client_body_temp_path {o}; proxy_temp_path {o};\n\
                 fastcgi_temp_path {o}; uwsgi_temp_path {o}; scgi_temp_path {o};\n\
                 include {o}/thumbfs.conf; }}\n"
            ),
        )
        .unwrap();
        let child = Command::new("nginx")
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx runs");
        Nginx(child)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its workers (SIGKILL would orphan them).
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// A response: status, headers (lowercase names), body.
struct Response {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// GET with curl, `accept` as the Accept header (none when `None`).
fn get(url: &str, accept: Option<&str>, out: &Path) -> Option<Response> {
    let head = out.with_extension("head");
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o"])
        .arg(out)
        .arg("-D")
        .arg(&head)
        .args(["-H", &format!("Accept: {}", accept.unwrap_or(""))])
        .arg(url);
    if !cmd.status().unwrap().success() {
        return None;
    }
    let text = fs::read_to_string(&head).unwrap();
    let mut lines = text.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Response {
        status,
        headers,
        body: fs::read(out).unwrap(),
    })
}

/// The size `identify` decodes a file at (ImageMagick reads AVIF with libheif).
fn identify(path: &Path) -> String {
    let o = Command::new("identify")
        .args(["-format", "%w %h"])
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn nginx_recipe_picks_the_format_by_accept() {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir(src.path().join("holiday")).unwrap();
    fs::copy(
        corpus("exif-orientation/Portrait_6.jpg"),
        src.path().join("holiday/photo.jpg"),
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let opts = mount_options(&recipe()).replace(
        "cache_dir=/var/cache/thumbfs/photos",
        &format!("cache_dir={}", cache.path().display()),
    );
    let m = Mount::new(src.path(), &["-o", &opts]);
    // Only presets resolve: an ad-hoc spec is not there.
    assert!(!m.path("w16").exists());
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let work = tempfile::tempdir().unwrap();
    let _nginx = Nginx::start(work.path(), port, m.dir.path());
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let t = Instant::now();
    while get(&url("/"), None, &work.path().join("probe")).is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "nginx did not answer"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let photo = src.path().join("holiday/photo.jpg");
    // (Accept, Content-Type, the preset's spec, the format's signature at offset 0 or 4).
    let avif: &[u8] = b"ftypavif";
    for (accept, mime, spec, magic) in [
        (
            Some("image/avif,image/webp,image/*,*/*;q=0.8"),
            "image/avif",
            "256x256_avif",
            avif,
        ),
        (
            Some("image/webp,*/*"),
            "image/webp",
            "256x256_q80_webp",
            b"RIFF",
        ),
        (
            Some("text/html,*/*;q=0.8"),
            "image/jpeg",
            "256x256_q80_jpg",
            b"\xff\xd8\xff",
        ),
        (None, "image/jpeg", "256x256_q80_jpg", b"\xff\xd8\xff"),
    ] {
        let out = work.path().join(format!("r.{}", mime.replace('/', "-")));
        let r = get(&url("/img/thumb/holiday/photo.jpg"), accept, &out).unwrap();
        assert_eq!(r.status, 200, "{accept:?}");
        assert_eq!(r.headers["content-type"], mime, "{accept:?}");
        assert_eq!(r.headers["vary"], "Accept", "{accept:?}");
        assert!(
            r.headers["cache-control"].contains("max-age="),
            "{accept:?}"
        );
        assert_eq!(r.headers["content-length"], r.body.len().to_string());
        // The bytes are the preset's render, and decode at its size: the upright
        // 600x450 photo (EXIF orientation 6) fitted inside 256x256.
        assert!(
            r.body == engine(&photo, spec).unwrap(),
            "{accept:?}: not the preset's bytes"
        );
        let at = if magic == avif { 4 } else { 0 };
        assert!(r.body[at..].starts_with(magic), "{accept:?}: not {mime}");
        assert_eq!(identify(&out), "192 256", "{accept:?}");
    }
    // Nothing else is served: the spec directories directly, the statistics, other presets.
    for p in [
        "/thumb-jpeg/holiday/photo.jpg",
        "/.thumbfs/stats",
        "/img/huge/holiday/photo.jpg",
        "/img/thumb/holiday/missing.jpg",
        "/",
    ] {
        let r = get(&url(p), None, &work.path().join("x")).unwrap();
        assert_eq!(r.status, 404, "{p}");
    }
}
