//! End-to-end: the real `belong serve` binary on a free port, read by GDAL's OGC API – Features
//! driver (`ogrinfo`, `ogr2ogr` from Debian's gdal-bin). Skipped, with a message, when GDAL is
//! not installed (`.ci/run` installs it).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// The server process, killed when dropped (even when an assertion fails).
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(db: &Path) -> Server {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_belong"))
        .args(["serve", "--addr", "127.0.0.1:0", "--demo-dir"])
        .arg(&data)
        .arg("--db")
        .arg(db)
        .env_remove("BELONG_DB")
        .env_remove("BELONG_ADDR")
        .env_remove("BELONG_TARGET")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
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
    let mut server = Server { child, port: 0 };
    let addr = rx.recv_timeout(Duration::from_secs(180)).expect("belong serve printed no 'listening on' line");
    server.port = addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
    server
}

/// A plain HTTP/1.1 GET; returns status and body.
fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, body.to_string())
}

fn json_get(port: u16, path: &str) -> Value {
    let (status, body) = http_get(port, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
}

fn gdal(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .env("GDAL_HTTP_TIMEOUT", "60")
        .env("GDAL_HTTP_MAX_RETRY", "0")
        .env("CPL_DEBUG", "OFF")
        .output()
        .unwrap_or_else(|e| panic!("running {tool}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{tool} {args:?} failed ({})\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn feature_count(ogrinfo_output: &str) -> u64 {
    ogrinfo_output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Feature Count: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no feature count in:\n{ogrinfo_output}"))
}

fn gdal_installed() -> bool {
    let ok = Command::new("ogrinfo").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping: ogrinfo not found (install Debian's gdal-bin to run the GDAL end-to-end tests)");
    }
    ok
}

#[test]
fn gdal_reads_the_ogc_api() {
    if !gdal_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("belong.db"));
    let port = server.port;
    let url = format!("OAPIF:http://127.0.0.1:{port}");

    // The three collections are listed.
    let listing = gdal("ogrinfo", &["-ro", "-q", &url]);
    for layer in ["blocks", "resources", "school-readiness"] {
        assert!(listing.lines().any(|l| l.contains(&format!(": {layer} "))), "{layer} not listed:\n{listing}");
    }

    // GDAL's feature count equals the server's block count.
    let blocks = json_get(port, "/coverage")["blocks"].as_u64().unwrap();
    assert!(blocks > 0);
    assert_eq!(feature_count(&gdal("ogrinfo", &["-ro", "-so", &url, "blocks"])), blocks);

    // ogr2ogr copies every feature (so paging works), for each collection.
    for (layer, expected) in [
        ("blocks", blocks),
        ("resources", json_get(port, "/collections/resources/items?limit=1")["numberMatched"].as_u64().unwrap()),
        ("school-readiness", blocks),
    ] {
        let gpkg = dir.path().join(format!("{layer}.gpkg"));
        let gpkg = gpkg.to_str().unwrap();
        gdal("ogr2ogr", &["-f", "GPKG", gpkg, &url, layer]);
        assert_eq!(feature_count(&gdal("ogrinfo", &["-ro", "-so", gpkg, layer])), expected, "{layer}");
    }

    // A bbox query returns the same subset as the server's own bbox selection.
    let bbox = ["-118.29", "34.035", "-118.28", "34.045"];
    let server_count =
        json_get(port, &format!("/collections/blocks/items?limit=1&bbox={}", bbox.join(",")))["numberMatched"]
            .as_u64()
            .unwrap();
    assert!(server_count > 0 && server_count < blocks, "the bbox should select a strict subset");
    let mut args = vec!["-ro", "-so", "-spat"];
    args.extend(bbox);
    args.extend([url.as_str(), "blocks"]);
    assert_eq!(feature_count(&gdal("ogrinfo", &args)), server_count);

    // An attribute filter GDAL pushes down (declared in the OpenAPI document).
    let uncovered = blocks - json_get(port, "/coverage")["covered_blocks"].as_u64().unwrap();
    assert_eq!(feature_count(&gdal("ogrinfo", &["-ro", "-so", "-where", "covered = 0", &url, "blocks"])), uncovered);
    drop(server);
}
