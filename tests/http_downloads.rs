//! Issue 13, end to end: GeoPackage, FlatGeobuf and zipped-shapefile downloads from the real
//! `belong serve` (`/collections/{id}/items?f=gpkg|fgb|shp`) and `belong export --format ...`,
//! opened by GDAL's `ogrinfo` (Debian's gdal-bin) with the right feature count, geometry type,
//! field types and CRS; GeoPackages also pass GDAL's `validate_gpkg.py` where it is installed.
//! Skipped, with a message, when GDAL is not installed (`.ci/run` installs it).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod e2e;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

fn gdal_installed() -> bool {
    let ok = Command::new("ogrinfo").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping: ogrinfo not found (install Debian's gdal-bin to run the GDAL download tests)");
    }
    ok
}

/// A GET read whole, bytes and all: status, headers (lower-case names), body.
fn get(port: u16, path: &str) -> (u16, BTreeMap<String, String>, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    // No Accept-Encoding: the body comes as the file itself, with its Content-Length.
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body)
}

fn json(port: u16, path: &str) -> Value {
    let (status, _, body) = get(port, path);
    assert_eq!(status, 200, "GET {path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// What `ogrinfo -so -al` says of a file's (only) layer.
#[derive(Debug)]
struct Summary {
    count: u64,
    geometry: String,
    /// Field name → type as GDAL names it (`Integer64`, `String`, `Date`, `Integer(Boolean)`).
    fields: BTreeMap<String, String>,
    epsg_4326: bool,
    text: String,
}

fn ogrinfo(file: &Path) -> Summary {
    let out = Command::new("ogrinfo")
        .args(["-ro", "-so", "-al"])
        .arg(file)
        .env("CPL_DEBUG", "OFF")
        .output()
        .unwrap_or_else(|e| panic!("running ogrinfo: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success() && !stderr.contains("ERROR"), "ogrinfo {}:\n{text}\n{stderr}", file.display());
    let value = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)).map(|v| v.trim().to_string());
    let count = value("Feature Count:").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no count:\n{text}"));
    let geometry = value("Geometry:").unwrap_or_else(|| panic!("no geometry:\n{text}"));
    // Field lines come after "Geometry Column = ..." (or the SRS) and look like `name: Type (w.p)`.
    let fields = text
        .lines()
        .filter(|l| !l.starts_with(' ') && l.ends_with(')'))
        .filter_map(|l| l.split_once(": "))
        .filter_map(|(name, rest)| rest.rsplit_once(" (").map(|(kind, _)| (name.to_string(), kind.to_string())))
        .collect();
    Summary { count, geometry, fields, epsg_4326: text.contains("ID[\"EPSG\",4326]"), text }
}

fn save(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

/// GDAL's GeoPackage validator, when it and GDAL's Python bindings are installed.
fn validate_gpkg(file: &Path) {
    let script = Path::new("/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_gpkg.py");
    let python = Path::new("/usr/bin/python3");
    if !script.exists() || !python.exists() {
        eprintln!("validate_gpkg.py not installed: skipping the GeoPackage validation");
        return;
    }
    let out = Command::new(python).arg(script).arg(file).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if said.contains("No module named") {
        eprintln!("GDAL's Python bindings are not installed: skipping the GeoPackage validation");
        return;
    }
    assert!(out.status.success() && said.trim().is_empty(), "validate_gpkg.py {}:\n{said}", file.display());
}

/// Download `query` of collection `id` and check it as GDAL sees it.
fn download(port: u16, dir: &Path, id: &str, f: &str, query: &str) -> Summary {
    let path = format!("/collections/{id}/items?f={f}{query}");
    let (status, headers, body) = get(port, &path);
    assert_eq!(status, 200, "GET {path}: {headers:?}\n{}", String::from_utf8_lossy(&body[..body.len().min(2000)]));
    let (media, ext) = match f {
        "gpkg" => ("application/geopackage+sqlite3", "gpkg"),
        "fgb" => ("application/flatgeobuf", "fgb"),
        _ => ("application/zip", "shp.zip"),
    };
    assert_eq!(headers.get("content-type").map(String::as_str), Some(media), "{path}");
    assert_eq!(
        headers.get("content-disposition").map(String::as_str),
        Some(format!("attachment; filename=\"{id}.{ext}\"").as_str()),
        "{path}"
    );
    assert_eq!(headers.get("content-length").and_then(|n| n.parse::<usize>().ok()), Some(body.len()), "{path}");
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = save(dir, &format!("{id}-{n}.{ext}"), &body);
    if f == "gpkg" {
        validate_gpkg(&file);
    }
    let summary = ogrinfo(&file);
    assert!(summary.epsg_4326, "{path}: not EPSG:4326:\n{}", summary.text);
    summary
}

fn matched(port: u16, id: &str, query: &str) -> u64 {
    json(port, &format!("/collections/{id}/items?limit=1{query}"))["numberMatched"].as_u64().unwrap()
}

#[test]
fn gdal_opens_every_download_with_its_count_types_and_crs() {
    if !gdal_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = e2e::serve_in(dir.path());
    let port = server.port;
    let blocks = matched(port, "blocks", "");
    let resources = matched(port, "resources", "");
    assert!(blocks > 100 && resources > 0);

    for f in ["gpkg", "fgb", "shp"] {
        // Whole layers: every feature, not a page of 100.
        let b = download(port, dir.path(), "blocks", f, "");
        assert_eq!(b.count, blocks, "{f}: {}", b.text);
        // Shapefiles have one polygon type, which GDAL calls Polygon (multi-part allowed).
        assert_eq!(b.geometry, if f == "shp" { "Polygon" } else { "Multi Polygon" }, "{f}");
        let int = if f == "shp" { "Integer" } else { "Integer64" };
        let boolean = if f == "shp" { "Integer" } else { "Integer(Boolean)" };
        let expect = [
            ("block_id", "String"),
            ("residents", int),
            ("target", int),
            (if f == "shp" { "ambassador" } else { "ambassadors" }, int),
            ("covered", boolean),
            (if f == "shp" { "school_rea" } else { "school_readiness" }, "Real"),
        ];
        for (name, kind) in expect {
            assert_eq!(b.fields.get(name).map(String::as_str), Some(kind), "{f} {name}: {:?}", b.fields);
        }

        let r = download(port, dir.path(), "resources", f, "");
        assert_eq!((r.count, r.geometry.as_str()), (resources, "Point"), "{f}: {}", r.text);
        assert_eq!(r.fields.get("id").map(String::as_str), Some("String"), "{f}: {:?}", r.fields);

        let s = download(port, dir.path(), "school-readiness", f, "");
        assert_eq!(s.count, blocks, "{f}");
        // FlatGeobuf has date-times only.
        let date = if f == "fgb" { "DateTime" } else { "Date" };
        assert_eq!(s.fields.get("date").map(String::as_str), Some(date), "{f}: {:?}", s.fields);
        assert_eq!(s.fields.get("value").map(String::as_str), Some("Real"), "{f}");
    }

    // The same selection as the JSON items: a filter, a bbox, a page.
    for (f, query) in
        [("gpkg", "&covered=false"), ("fgb", "&bbox=-118.29,34.03,-118.28,34.04"), ("shp", "&covered=true")]
    {
        let want = matched(port, "blocks", query);
        assert!(want > 0 && want < blocks, "{query}: {want}");
        assert_eq!(download(port, dir.path(), "blocks", f, query).count, want, "{f}{query}");
    }
    assert_eq!(download(port, dir.path(), "blocks", "fgb", "&limit=7&offset=3").count, 7);
    assert_eq!(download(port, dir.path(), "blocks", "shp", &format!("&offset={}", blocks - 2)).count, 2);
    // An empty selection is still a valid layer of the right type.
    let empty = download(port, dir.path(), "blocks", "gpkg", "&block_id=nowhere");
    assert_eq!((empty.count, empty.geometry.as_str()), (0, "Multi Polygon"));
    assert_eq!(download(port, dir.path(), "blocks", "fgb", "&block_id=nowhere").count, 0);
    assert_eq!(download(port, dir.path(), "blocks", "shp", "&block_id=nowhere").count, 0);

    // Accept negotiation, and a refusal for one feature.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET /collections/resources/items HTTP/1.1\r\nHost: x\r\nAccept: application/flatgeobuf\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let head = String::from_utf8_lossy(&raw[..200.min(raw.len())]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200") && head.contains("content-type: application/flatgeobuf"), "{head}");
    let id = json(port, "/collections/blocks/items?limit=1")["features"][0]["id"].as_str().unwrap().to_string();
    let (status, _, body) = get(port, &format!("/collections/blocks/items/{id}?f=gpkg"));
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));

    // The collection links its whole-layer files.
    let links = json(port, "/collections/blocks")["links"].as_array().unwrap().clone();
    for media in ["application/geopackage+sqlite3", "application/flatgeobuf", "application/zip"] {
        assert!(links.iter().any(|l| l["rel"] == "enclosure" && l["type"] == media), "{media}: {links:?}");
    }
}

fn belong(db: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_belong"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("BELONG_DB")
        .env_remove("BELONG_TARGET")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "belong {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn a_layer_past_ten_thousand_features_comes_back_whole() {
    if !gdal_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("big");
    let db = dir.path().join("big.db");
    let set = data.to_str().unwrap();
    belong(
        &db,
        &[
            "-q",
            "demo",
            "generate",
            "--blocks",
            "10200",
            "--residents",
            "2000",
            "--ambassadors",
            "200",
            "--resources",
            "20",
            "--out",
            set,
        ],
    );
    belong(&db, &["-q", "demo", "load", "--dir", set]);
    let server = e2e::serve(&db, "warn", &dir.path().join("serve.log"));
    let blocks = matched(server.port, "blocks", "");
    assert!(blocks > 10_000, "{blocks}");
    let (status, _, _) = get(server.port, "/collections/blocks/items?limit=10001");
    assert_eq!(status, 400, "pages stay capped at 10,000");
    assert_eq!(download(server.port, dir.path(), "blocks", "gpkg", "").count, blocks);
    assert_eq!(download(server.port, dir.path(), "blocks", "shp", "").count, blocks);
}

#[test]
fn belong_export_writes_files_gdal_opens() {
    if !gdal_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    belong(&db, &["-q", "demo", "load", "--dir", demo.to_str().unwrap()]);
    let geojson: Value = serde_json::from_slice(&belong(&db, &["export", "blocks"]).stdout).unwrap();
    let blocks = geojson["features"].as_array().unwrap().len() as u64;
    for (layer, format, file, geometry) in [
        ("blocks", "gpkg", "blocks.gpkg", "Multi Polygon"),
        ("resources", "fgb", "resources.fgb", "Point"),
        ("indicators", "shp", "readiness.shp.zip", "Polygon"),
    ] {
        let out = dir.path().join(file);
        let run = belong(&db, &["export", layer, "--format", format, "--out", out.to_str().unwrap()]);
        assert!(String::from_utf8_lossy(&run.stderr).contains("wrote "), "{run:?}");
        let s = ogrinfo(&out);
        assert!(s.epsg_4326, "{}", s.text);
        assert_eq!(s.geometry, geometry, "{file}");
        if layer != "resources" {
            assert_eq!(s.count, blocks, "{file}");
        }
        if format == "gpkg" {
            validate_gpkg(&out);
        }
    }
    // Redirected stdout gets the file itself; written again, --out is replaced whole.
    let piped = belong(&db, &["export", "blocks", "--format", "fgb"]);
    assert_eq!(&piped.stdout[..3], b"fgb");
    let again = dir.path().join("blocks.gpkg");
    belong(&db, &["-q", "export", "blocks", "--format", "gpkg", "--out", again.to_str().unwrap()]);
    assert_eq!(ogrinfo(&again).count, blocks);
    // A layer the file formats do not have is refused with a reason.
    let out = Command::new(env!("CARGO_BIN_EXE_belong"))
        .arg("--db")
        .arg(&db)
        .args(["export", "indicators", "--format", "gpkg", "--indicator", "other", "--out"])
        .arg(dir.path().join("x.gpkg"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("school_readiness indicator only"), "{out:?}");
    // --crs: the file is in State Plane feet and says so; GeoJSON refuses it.
    let feet = dir.path().join("feet.gpkg");
    belong(&db, &["-q", "export", "blocks", "--format", "gpkg", "--crs", "EPSG:2229", "--out", feet.to_str().unwrap()]);
    let s = ogrinfo(&feet);
    assert!(s.text.contains("ID[\"EPSG\",2229]") && e2e::ogr_extent(&s.text)[0] > 6.0e6, "{}", s.text);
    for (format, crs) in [("geojson", "EPSG:2229"), ("gpkg", "EPSG:4269")] {
        let out = Command::new(env!("CARGO_BIN_EXE_belong"))
            .arg("--db")
            .arg(&db)
            .args(["export", "blocks", "--format", format, "--crs", crs])
            .output()
            .unwrap();
        assert!(
            !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--crs"),
            "{format} {crs}: {out:?}"
        );
    }
}

/// `crs` on a download: the file records the CRS (GDAL identifies EPSG:2229) and holds the
/// coordinates in it (US feet), which PROJ, through ogr2ogr, takes back to the WGS84 file's
/// extent within 1e-6°.
#[test]
fn downloads_in_another_crs_record_it_and_hold_its_coordinates() {
    if !gdal_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = e2e::serve_in(dir.path());
    let port = server.port;
    let wgs84 = e2e::ogr_extent(&download(port, dir.path(), "blocks", "gpkg", "").text);
    for f in ["gpkg", "fgb", "shp"] {
        let path = format!("/collections/blocks/items?f={f}&crs=EPSG:2229");
        let (status, _, body) = get(port, &path);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body[..body.len().min(500)]));
        let file = save(dir.path(), &format!("feet.{}", if f == "shp" { "shp.zip" } else { f }), &body);
        let s = ogrinfo(&file);
        assert!(s.text.contains("ID[\"EPSG\",2229]") || s.text.contains("California zone 5"), "{f}:\n{}", s.text);
        let feet = e2e::ogr_extent(&s.text);
        assert!(feet[0] > 6.0e6 && feet[1] > 1.7e6, "{f}: not State Plane feet: {feet:?}");
        let back = dir.path().join(format!("back-{f}.geojson"));
        let out = Command::new("ogr2ogr")
            .args(["-f", "GeoJSON", "-t_srs", "EPSG:4269"])
            .arg(&back)
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let again = e2e::ogr_extent(&ogrinfo(&back).text);
        for (a, b) in again.iter().zip(&wgs84) {
            assert!((a - b).abs() < 1e-6, "{f}: {again:?} vs {wgs84:?}");
        }
    }
    let (status, _, _) = get(port, "/collections/blocks/items?f=gpkg&crs=EPSG:9999");
    assert_eq!(status, 400);
}
