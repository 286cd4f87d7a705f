//! Shared end-to-end fixture: the real `belong serve` binary on a free port, with the demo
//! catchment, its log in a file, killed when dropped (even when an assertion fails).
#![allow(dead_code, clippy::unwrap_used)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running server.
pub struct Server {
    /// The process (tests send it signals).
    pub child: Child,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    /// Its log file (stderr).
    pub log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `belong --db DB serve --addr 127.0.0.1:0` with the demo, logging at `log_level` to
/// `log`; returns once it printed its `listening on` line.
pub fn serve(db: impl AsRef<OsStr>, log_level: &str, log: &Path) -> Server {
    serve_with(db, log_level, log, &[])
}

/// [`serve`] of a fresh demo database in `dir` (`belong.db`), logging warnings to `serve.log`
/// there.
pub fn serve_in(dir: &Path) -> Server {
    serve(dir.join("belong.db"), "warn", &dir.join("serve.log"))
}

/// [`serve`] with extra arguments after `serve` (e.g. `--demo-dir` of another folder).
pub fn serve_with(db: impl AsRef<OsStr>, log_level: &str, log: &Path, extra: &[&str]) -> Server {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_belong"))
        .args(["serve", "--addr", "127.0.0.1:0", "--demo-dir"])
        .arg(&data)
        .args(extra)
        .arg("--db")
        .arg(db.as_ref())
        .env_remove("BELONG_DB")
        .env_remove("BELONG_ADDR")
        .env_remove("BELONG_TARGET")
        .env_remove("BELONG_PRIVATE")
        .env_remove("BELONG_BASEMAP")
        .env("BELONG_LOG", log_level)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("starting belong serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("listening on http://") {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let mut server = Server { child, port: 0, log: log.to_path_buf() };
    let Ok(addr) = rx.recv_timeout(Duration::from_secs(180)) else {
        panic!("no 'listening on' line; log:\n{}", std::fs::read_to_string(log).unwrap_or_default());
    };
    server.port = addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
    // The port opens at once; the live state loads behind it (503 until then).
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let (status, body) = http_get(server.port, "/health");
        if status == 200 && body.contains("\"ready\":true") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ready: {status} {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// A plain HTTP/1.1 GET; returns status and body.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, body.to_string())
}

/// How a browser script (`node web/test/*.mjs`) ended.
pub struct ScriptRun {
    /// Its exit status; `None` when it was killed for running past the limit.
    pub status: Option<std::process::ExitStatus>,
    /// Everything it printed.
    pub stdout: String,
    /// Everything it printed to stderr.
    pub stderr: String,
}

/// Run `node SCRIPT ARGS...` with `envs`, killing it after `limit`; stdout and stderr are read
/// as it runs (a full pipe would stall it).
pub fn run_node(script: &Path, args: &[String], envs: &[(&str, &OsStr)], limit: Duration) -> ScriptRun {
    let mut cmd = Command::new("node");
    cmd.arg(script).args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("starting node");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    ScriptRun { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

/// The last `n` lines of a server's log, for a failure message.
pub fn log_tail(log: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The browser the page tests drive: env `CHROMIUM`, else Debian's `/usr/bin/chromium`.
pub fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/chromium".into())
}

/// What a page test in `web/test/` lacks (Node.js, the npm `packages` in `web/node_modules`,
/// Chromium), each with how to install it.
pub fn missing_browser_tools(chromium: &Path, packages: &[&str]) -> Vec<String> {
    let mut missing = Vec::new();
    if Command::new("node").arg("--version").output().map(|o| !o.status.success()).unwrap_or(true) {
        missing.push("Node.js (`node`; Debian: apt-get install nodejs npm)".to_string());
    }
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/node_modules");
    for package in packages {
        if !modules.join(package).is_dir() {
            missing.push(format!("{package} from npm (run `npm ci` in web/)"));
        }
    }
    if !chromium.exists() {
        missing.push(format!("Chromium at {} (Debian: apt-get install chromium; or set CHROMIUM)", chromium.display()));
    }
    missing
}

/// A manager token stored in `db` (created through the CLI), for a page test that writes.
pub fn manager_token(db: &Path, name: &str) -> String {
    let created = Command::new(env!("CARGO_BIN_EXE_belong"))
        .arg("--db")
        .arg(db)
        .args(["token", "create", "--role", "manager", "--name", name])
        .env_remove("BELONG_DB")
        .output()
        .unwrap();
    assert!(created.status.success(), "token create: {}", String::from_utf8_lossy(&created.stderr));
    String::from_utf8_lossy(&created.stdout).lines().last().unwrap_or_default().trim().to_string()
}

/// Fail clearly when the server's binary was built without MapLibre GL JS (no npm at build
/// time): the pages cannot draw a map then.
pub fn assert_maplibre_embedded(port: u16) {
    let (status, config) = http_get(port, "/map/config.json");
    assert_eq!(status, 200, "{config}");
    assert!(
        !config.contains("\"maplibre\":null"),
        "this binary was built without MapLibre GL JS (npm was missing or BELONG_SKIP_NPM was set): \
         install Node.js with npm and rebuild, or set BELONG_SKIP_BROWSER=1"
    );
}

/// `(minx, miny, maxx, maxy)` of ogrinfo's `Extent: (a, b) - (c, d)` line.
pub fn ogr_extent(ogrinfo_output: &str) -> [f64; 4] {
    let line = ogrinfo_output
        .lines()
        .find_map(|l| l.strip_prefix("Extent: "))
        .unwrap_or_else(|| panic!("no extent:\n{ogrinfo_output}"));
    let n: Vec<f64> = line
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .filter(|s| !s.is_empty() && *s != "-")
        .map(|s| s.parse().unwrap())
        .collect();
    [n[0], n[1], n[2], n[3]]
}
