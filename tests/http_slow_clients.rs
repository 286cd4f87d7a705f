//! End-to-end tests of `belong serve` against clients that open connections, send half a
//! request head and stall (issue 12): the header timeout closes them, `--max-connections` keeps
//! them from exhausting descriptors, and `/health` keeps answering throughout.
#![cfg(unix)]
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod e2e;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{Server, http_get};

/// `n` connections that each send the start of a request head and then nothing.
fn stall(port: u16, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| {
            // Bounded: a connect the kernel cannot queue would retry its SYN for minutes.
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
            write!(s, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Stalled: {i}").unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect()
}

/// Whether the server has closed `s` (end of stream or reset); `false` while it is open.
fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    match s.read(&mut buf) {
        Ok(0) => true,
        // Hyper answers nothing to a header timeout; any bytes would be a response to a head
        // we never finished.
        Ok(n) => panic!("unexpected answer to a half-sent head: {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// Wait until every connection in `conns` is closed by the server; panics after `limit`.
fn wait_all_closed(conns: &mut [TcpStream], limit: Duration, server: &Server) -> Duration {
    let start = Instant::now();
    let mut open: Vec<usize> = (0..conns.len()).collect();
    while !open.is_empty() {
        open.retain(|&i| !closed(&mut conns[i]));
        assert!(
            start.elapsed() < limit,
            "{} of {} stalled connections still open after {limit:?}; log:\n{}",
            open.len(),
            conns.len(),
            e2e::log_tail(&server.log, 30)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// `/health` answered 200, within `limit`.
fn assert_health(port: u16, limit: Duration, server: &Server) {
    let start = Instant::now();
    let (status, body) = http_get(port, "/health");
    let took = start.elapsed();
    assert_eq!(status, 200, "/health: {body}; log:\n{}", e2e::log_tail(&server.log, 30));
    assert!(took < limit, "/health took {took:?} (limit {limit:?})");
}

#[test]
fn slow_clients_cannot_take_the_server_down() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let flags = ["--header-timeout", "1", "--idle-timeout", "1", "--max-connections", "50"];
    let server = e2e::serve_with(dir.path().join("belong.db"), "info", &log, &flags);
    let port = server.port;

    // Under the cap: /health answers while they hang, and they are closed after the timeout.
    let opened = Instant::now();
    let mut stalled = stall(port, 40);
    assert_health(port, Duration::from_secs(1), &server);
    wait_all_closed(&mut stalled, Duration::from_secs(5), &server);
    let lived = opened.elapsed();
    assert!(lived >= Duration::from_millis(800), "closed after {lived:?}, before the 1 s timeout");

    // Past the cap: the extra clients wait in the backlog, are accepted as the first ones time
    // out, and /health (queued behind all of them) is answered once the cap frees up.
    let mut stalled = stall(port, 120);
    assert_health(port, Duration::from_secs(10), &server);
    wait_all_closed(&mut stalled, Duration::from_secs(10), &server);
    assert_health(port, Duration::from_secs(1), &server);
}

/// `belong serve` under `ulimit -n LIMIT` (a shell sets it, then execs the binary).
fn serve_with_file_limit(db: &Path, log: &Path, limit: u32, extra: &[&str]) -> Server {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_belong"))
        .args(["serve", "--addr", "127.0.0.1:0", "--demo-dir"])
        .arg(&data)
        .args(extra)
        .arg("--db")
        .arg(db)
        .env_remove("BELONG_DB")
        .env_remove("BELONG_ADDR")
        .env_remove("BELONG_MAX_CONNECTIONS")
        .env("BELONG_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("listening on http://").map(str::to_string))
        .unwrap_or_else(|| panic!("no 'listening on' line; log:\n{}", std::fs::read_to_string(log).unwrap()));
    // Keep reading stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let port = addr.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap();
    let server = Server { child, port, log: log.to_path_buf() };
    let deadline = Instant::now() + Duration::from_secs(180);
    while !http_get(port, "/health").1.contains("\"ready\":true") {
        assert!(Instant::now() < deadline, "never ready; log:\n{}", e2e::log_tail(log, 30));
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

#[test]
fn running_out_of_file_descriptors_backs_off_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    // The default cap (1024) is far above this limit: accept itself fails with EMFILE.
    let flags = ["--header-timeout", "1", "--idle-timeout", "1"];
    let server = serve_with_file_limit(&dir.path().join("belong.db"), &log, 128, &flags);
    let port = server.port;

    let mut stalled = stall(port, 300);
    let started = Instant::now();
    // Queued behind 300 stalled clients and a full descriptor table, /health still gets its
    // turn as the stalled ones time out.
    assert_health(port, Duration::from_secs(15), &server);
    wait_all_closed(&mut stalled, Duration::from_secs(15), &server);
    let elapsed = started.elapsed();
    assert_health(port, Duration::from_secs(1), &server);

    let text = std::fs::read_to_string(&log).unwrap();
    let failures = text.lines().filter(|l| l.contains("accepting a connection failed")).count();
    assert!(failures > 0, "the descriptor table never filled up (test set-up); log:\n{text}");
    // Backing off from 50 ms allows a few dozen retries in that time; spinning would log
    // thousands.
    let most = 10 + 20 * elapsed.as_secs() as usize;
    assert!(failures <= most, "{failures} accept failures logged in {elapsed:?}: accept is spinning");
}
