//! End-to-end: `belong serve` notices commits made by another process (a `belong import` while
//! it runs) and rebuilds its layers, so `/coverage`, the GeoJSON layers and the vector tiles
//! never lag behind the database.
#![allow(clippy::unwrap_used)]

mod common;
mod e2e;

use std::time::{Duration, Instant};

use e2e::http_get;
use serde_json::Value;

fn json(port: u16, path: &str) -> Value {
    let (status, body) = http_get(port, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// The ETag of a 200 response (tiles are binary, so not through `http_get`).
fn etag(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let head = String::from_utf8_lossy(&raw[..raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap()]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    head.lines().find_map(|l| l.strip_prefix("etag: ")).unwrap().to_string()
}

#[test]
fn an_import_by_another_process_reaches_coverage_and_tiles() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("belong.db");
    let server = e2e::serve(&db, "info", &dir.path().join("serve.log"));
    let port = server.port;
    let before = json(port, "/coverage")["covered_blocks"].as_u64().unwrap();
    let target = json(port, "/coverage/uncovered")[0]["block_id"].as_str().unwrap().to_string();
    // The block's interior point, from its CSV row (lon, lat columns).
    let (_, csv) = http_get(port, &format!("/collections/blocks/items/{target}?f=csv"));
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let row = rows.records().next().unwrap().unwrap();
    let get = |name: &str| row[headers.iter().position(|h| h == name).unwrap()].parse::<f64>().unwrap();
    let (lon, lat) = (get("lon"), get("lat"));
    let [ux, uy] = belong::tiles::lonlat_to_unit(lon, lat);
    let tile = format!("/tiles/blocks/15/{}/{}.mvt", (ux * 32768.0) as u32, (uy * 32768.0) as u32);
    let tile_before = etag(port, &tile);

    let file = dir.path().join("one.csv");
    std::fs::write(&file, format!("id,lon,lat\nX-EXT-1,{lon},{lat}\n")).unwrap();
    common::run_ok(&db, &["import", "ambassadors", file.to_str().unwrap()], 0);

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = json(port, "/coverage")["covered_blocks"].as_u64().unwrap();
        if now == before + 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the server never saw the import: {now} covered, {before} before");
        std::thread::sleep(Duration::from_millis(200));
    }
    let item = json(port, &format!("/collections/blocks/items/{target}"));
    assert_eq!(item["properties"]["covered"], true);
    assert_ne!(etag(port, &tile), tile_before, "the tile was cut again from the new data");
    let log = std::fs::read_to_string(&server.log).unwrap();
    assert!(log.contains("changed by another process"), "{log}");
    assert_eq!(json(port, "/health")["database"], "ok", "the watcher reached the database");
}
