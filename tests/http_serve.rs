//! End-to-end tests of the `belong serve` process: it prints its address, answers, keeps
//! filter values (query strings) out of its logs, and exits cleanly on SIGTERM.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Start `belong serve` on a free port with the demo; returns the child and its port.
fn start(db: &Path, log: &Path) -> (Child, u16) {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_belong"))
        .args(["serve", "--addr", "127.0.0.1:0", "--demo-dir"])
        .arg(&data)
        .arg("--db")
        .arg(db)
        .env_remove("BELONG_DB")
        .env_remove("BELONG_ADDR")
        .env_remove("BELONG_TARGET")
        .env("BELONG_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("listening on http://") {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let addr = match rx.recv_timeout(Duration::from_secs(180)) {
        Ok(a) => a,
        Err(e) => {
            let _ = child.kill();
            panic!("no 'listening on' line ({e}); log:\n{}", std::fs::read_to_string(log).unwrap_or_default());
        }
    };
    (child, addr.rsplit(':').next().unwrap().parse().unwrap())
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    (head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0), body.to_string())
}

#[cfg(unix)]
#[test]
fn serves_logs_no_query_strings_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let (mut child, port) = start(&dir.path().join("belong.db"), &log);

    let (status, body) = http_get(port, "/health");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    let (status, body) = http_get(port, "/collections/resources/items?name=Secret%20Person%20Name&limit=1");
    assert_eq!(status, 200, "{body}");
    let (status, _) = http_get(port, "/collections/blocks/items?limit=abc");
    assert_eq!(status, 400);

    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("belong serve did not stop within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(exit.success(), "exit {exit}; log:\n{log}");
    assert!(log.contains("/collections/resources/items"), "requests are logged:\n{log}");
    assert!(!log.contains("Secret") && !log.contains("limit=abc"), "query strings must not be logged:\n{log}");
}
