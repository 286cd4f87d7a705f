//! End-to-end tests of the `belong serve` process: it prints its address, answers, keeps
//! filter values (query strings) out of its logs, and exits cleanly on SIGTERM.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod e2e;

use std::process::Command;

use e2e::http_get;
use std::time::{Duration, Instant};

#[cfg(unix)]
#[test]
fn serves_logs_no_query_strings_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let mut server = e2e::serve(dir.path().join("belong.db"), "info", &log);
    let port = server.port;
    let child = &mut server.child;

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
