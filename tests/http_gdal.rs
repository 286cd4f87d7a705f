//! End-to-end: the real `belong serve` binary on a free port, read by GDAL's OGC API – Features
//! driver and its OGC API – Tiles documents and vector tiles (`ogrinfo`, `ogr2ogr` from Debian's
//! gdal-bin). Skipped, with a message, when GDAL is not installed (`.ci/run` installs it).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod e2e;

use std::io::{Read, Write};
use std::process::Command;

use e2e::http_get;
use serde_json::Value;

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
    let server = e2e::serve_in(dir.path());
    let port = server.port;
    let url = format!("OAPIF:http://127.0.0.1:{port}");

    // The four collections are listed.
    let listing = gdal("ogrinfo", &["-ro", "-q", &url]);
    for layer in ["blocks", "resources", "school-readiness", "resource-access"] {
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
        ("resource-access", blocks),
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

    // The access fields arrive typed (GDAL reads the schema from the first page).
    let schema = gdal("ogrinfo", &["-ro", "-so", &url, "resource-access"]);
    for field in ["food_bank_nearest_m: Real", "food_bank_within_walk: Integer", "school_access_score: Real"] {
        assert!(schema.contains(field), "{field} missing:\n{schema}");
    }
    let far = json_get(port, "/collections/resource-access/items?limit=1&food_bank_within_walk=0")["numberMatched"]
        .as_u64()
        .unwrap();
    let args = ["-ro", "-so", "-where", "food_bank_within_walk = 0", &url, "resource-access"];
    assert_eq!(feature_count(&gdal("ogrinfo", &args)), far);
    drop(server);
}

/// `GET path` as bytes (tiles are binary); the body as sent (tiles come with a Content-Length).
fn http_get_bytes(port: u16, path: &str) -> (u16, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..at]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, raw.get(at + 4..).unwrap_or_default().to_vec())
}

/// The value of `name (Type) = value` in ogrinfo's `-sql` output.
fn sql_value(ogrinfo_output: &str, name: &str) -> u64 {
    ogrinfo_output
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{name} (")).and_then(|r| r.split(" = ").nth(1)))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{ogrinfo_output}"))
}

#[test]
fn gdal_reads_the_ogc_api_tiles() {
    if !gdal_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = e2e::serve_in(dir.path());
    let port = server.port;
    let collection = format!("OGCAPI:http://127.0.0.1:{port}/collections/blocks");
    let blocks = json_get(port, "/coverage")["blocks"].as_u64().unwrap();

    // The collection as GDAL's OGCAPI driver opens it by default: the features (the collection's
    // own document does not link its tile sets, which GDAL 3.6 would follow and fail on: its
    // vector tile code is left out of Debian's build, OSGeo/gdal#7993).
    let default = gdal("ogrinfo", &["-ro", "-so", &collection, "blocks"]);
    assert_eq!(feature_count(&default), blocks, "{default}");
    // The tile sets GDAL would read are reachable from the landing page and the collections list,
    // and parse as the tiling scheme GDAL knows.
    let tms = json_get(port, "/tileMatrixSets/WebMercatorQuad");
    assert_eq!(tms["id"], "WebMercatorQuad");

    // The same collection through the driver's items API: every block, with its fields; and
    // ogr2ogr from it.
    let listing = gdal("ogrinfo", &["-ro", "-so", "-oo", "API=ITEMS", &collection, "blocks"]);
    assert_eq!(feature_count(&listing), blocks);
    for field in ["block_id: String", "residents: Integer", "covered: Integer(Boolean)"] {
        assert!(listing.contains(field), "{field} missing:\n{listing}");
    }
    let gpkg = dir.path().join("blocks.gpkg");
    let gpkg = gpkg.to_str().unwrap();
    gdal("ogr2ogr", &["-oo", "API=ITEMS", "-f", "GPKG", gpkg, &collection, "blocks"]);
    assert_eq!(feature_count(&gdal("ogrinfo", &["-ro", "-so", gpkg, "blocks"])), blocks);

    // The tiles themselves, as the OGCAPI driver reads them (with GDAL's MVT driver): every tile
    // the tile set's limits name at zoom 14, fetched from the tile URL template, read as one
    // zoom level of a tile pyramid.
    let base = format!("http://127.0.0.1:{port}");
    let set = json_get(port, "/collections/blocks/tiles/WebMercatorQuad");
    let template = set["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "item" && l["type"] == "application/vnd.mapbox-vector-tile")
        .and_then(|l| l["href"].as_str())
        .unwrap()
        .strip_prefix(&base)
        .unwrap()
        .to_string();
    let limits = set["tileMatrixSetLimits"].as_array().unwrap().iter().find(|l| l["tileMatrix"] == "14").unwrap();
    let at = |k: &str| limits[k].as_u64().unwrap();
    let pyramid = dir.path().join("pyramid");
    let mut decoded = 0;
    for row in at("minTileRow")..=at("maxTileRow") {
        for col in at("minTileCol")..=at("maxTileCol") {
            let path = template
                .replace("{tileMatrix}", "14")
                .replace("{tileRow}", &row.to_string())
                .replace("{tileCol}", &col.to_string());
            let (status, bytes) = http_get_bytes(port, &path);
            assert!(status == 200 || status == 204, "{path}: {status}");
            if status == 204 {
                continue;
            }
            use geozero::mvt::Message;
            decoded += geozero::mvt::Tile::decode(&bytes[..]).unwrap().layers[0].features.len() as u64;
            let file = pyramid.join(format!("14/{col}/{row}.pbf"));
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, bytes).unwrap();
        }
    }
    let zoom = pyramid.join("14");
    let zoom = zoom.to_str().unwrap();
    let schema = gdal("ogrinfo", &["-ro", "-so", zoom, "blocks"]);
    for field in ["block_id: String", "residents: Integer", "ambassadors: Integer", "covered: Integer(Boolean)"] {
        assert!(schema.contains(field), "{field} missing:\n{schema}");
    }
    assert!(schema.contains("Pseudo-Mercator"), "{schema}");
    assert_eq!(feature_count(&schema), decoded, "GDAL counts the features the tiles hold");
    // Blocks on tile seams come once per tile, and GDAL clips each tile to its edges (dropping
    // what lies only in the 64-unit buffer); every block is there.
    let sql = ["-ro", zoom, "-sql", "SELECT COUNT(DISTINCT block_id) AS n, COUNT(*) AS c FROM blocks"];
    let counted = gdal("ogrinfo", &sql);
    assert_eq!(sql_value(&counted, "n"), blocks);
    let clipped = sql_value(&counted, "c");
    assert!(
        blocks < clipped && clipped <= decoded,
        "{blocks} blocks, {clipped} clipped pieces, {decoded} in the tiles"
    );
    let tiles_gpkg = dir.path().join("tiles.gpkg");
    let tiles_gpkg = tiles_gpkg.to_str().unwrap();
    gdal("ogr2ogr", &["-f", "GPKG", "-nlt", "MULTIPOLYGON", tiles_gpkg, zoom, "blocks"]);
    assert_eq!(feature_count(&gdal("ogrinfo", &["-ro", "-so", tiles_gpkg, "blocks"])), clipped);
    drop(server);
}

/// A GeoJSON file GDAL wrote: feature id → every position, in order.
fn gdal_positions(path: &std::path::Path) -> std::collections::HashMap<String, Vec<[f64; 2]>> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (feature_id(f), positions(&f["geometry"]["coordinates"])))
        .collect()
}

/// The id a feature came with: GDAL keeps a string id as an `id` field.
fn feature_id(f: &Value) -> String {
    f["properties"]["id"].as_str().or(f["id"].as_str()).unwrap_or_else(|| panic!("no id: {f}")).to_string()
}

fn positions(coordinates: &Value) -> Vec<[f64; 2]> {
    let a = coordinates.as_array().unwrap();
    if a.first().is_some_and(Value::is_number) {
        return vec![[a[0].as_f64().unwrap(), a[1].as_f64().unwrap()]];
    }
    a.iter().flat_map(positions).collect()
}

/// OGC API – Features Part 2 (issue 13) with GDAL 3.6, Debian 12's. Its OAPIF driver predates
/// Part 2: it has no CRS open option ("driver OAPIF does not support open option CRS"), never
/// sends `crs`, and reads CRS84 whatever the `crs` lists say, so the lists must not change what
/// it gets. GDAL's GeoJSON driver then reads the items in EPSG:2229 (told their CRS with
/// `-s_srs`, since a GeoJSON body carries none), and PROJ, through ogr2ogr, takes them back to
/// the server's own lon/lat within 1e-6°. And a `bbox-crs` selection is what GDAL selects with
/// `-spat` on the layer reprojected into that CRS.
#[test]
fn gdal_reads_features_in_another_crs() {
    if !gdal_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = e2e::serve_in(dir.path());
    let port = server.port;
    let base = format!("http://127.0.0.1:{port}");
    let feet = "http://www.opengis.net/def/crs/EPSG/0/2229";

    let collection = json_get(port, "/collections/blocks");
    assert!(collection["crs"].as_array().unwrap().iter().any(|c| c == feet), "{collection:#}");
    let info = gdal("ogrinfo", &["-ro", "-so", &format!("OAPIF:{base}/collections/blocks"), "blocks"]);
    assert!(info.contains("GEOGCRS[\"WGS 84\"") && info.contains("Extent: (-118."), "{info}");

    // Every vertex of every block, served in US feet, back to lon/lat by PROJ.
    let lon_lat = json_get(port, "/collections/blocks/items?limit=10000");
    let served: Vec<(String, Vec<[f64; 2]>)> = lon_lat["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["id"].as_str().unwrap().to_string(), positions(&f["geometry"]["coordinates"])))
        .collect();
    let back = dir.path().join("back.json");
    let in_feet = format!("{base}/collections/blocks/items?limit=10000&crs={feet}");
    let args = [
        "-f",
        "GeoJSON",
        "-s_srs",
        "EPSG:2229",
        "-t_srs",
        "EPSG:4269",
        "-lco",
        "RFC7946=NO",
        "-lco",
        "COORDINATE_PRECISION=10",
    ];
    let mut args = args.to_vec();
    args.extend([back.to_str().unwrap(), in_feet.as_str()]);
    gdal("ogr2ogr", &args);
    let by_gdal = gdal_positions(&back);
    assert_eq!(by_gdal.len(), served.len());
    let mut worst = 0f64;
    for (id, positions) in &served {
        let theirs = &by_gdal[id];
        assert_eq!(theirs.len(), positions.len(), "{id}");
        for (p, q) in positions.iter().zip(theirs) {
            worst = worst.max((p[0] - q[0]).abs()).max((p[1] - q[1]).abs());
        }
    }
    assert!(worst <= 1e-6, "EPSG:2229 through PROJ is {worst:e}° off the CRS84 output");

    // bbox-crs: the server's selection equals GDAL's -spat (GEOS intersects) on the reprojected
    // layer, for the zone the catchment is in and for the zone whose grid is turned ~1.1° there.
    for (code, half) in [(2229, 1_000.0), (2229, 2_500.0), (2230, 1_000.0), (2230, 2_500.0)] {
        let gpkg = dir.path().join(format!("blocks-{code}.gpkg"));
        let gpkg = gpkg.to_str().unwrap();
        let epsg = format!("EPSG:{code}");
        let all = format!("{base}/collections/blocks/items?limit=10000");
        gdal("ogr2ogr", &["-f", "GPKG", "-s_srs", "EPSG:4269", "-t_srs", &epsg, "-nln", "blocks", gpkg, &all]);
        let [x0, y0, x1, y1] = e2e::ogr_extent(&gdal("ogrinfo", &["-ro", "-so", gpkg, "blocks"]));
        let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
        let bbox = [cx - half, cy - half, cx + half, cy + half].map(|v| format!("{v:.3}"));
        let selected = dir.path().join(format!("selected-{code}-{half}.json"));
        let mut args = vec!["-f", "GeoJSON", "-spat"];
        args.extend(bbox.iter().map(String::as_str));
        args.extend([selected.to_str().unwrap(), gpkg, "blocks"]);
        gdal("ogr2ogr", &args);
        let mut theirs: Vec<String> = gdal_positions(&selected).into_keys().collect();
        theirs.sort();
        let uri = format!("/collections/blocks/items?limit=10000&bbox={}&bbox-crs={epsg}", bbox.join(","));
        let v = json_get(port, &uri);
        let mut ours: Vec<String> = v["features"].as_array().unwrap().iter().map(feature_id).collect();
        ours.sort();
        assert!(!ours.is_empty() && ours.len() < served.len(), "{uri}: a strict subset");
        assert_eq!(ours, theirs, "{uri}");
    }
    drop(server);
}

/// `ogrinfo` with GDAL's debug output on: (stdout, the URLs it fetched).
fn ogrinfo_traced(args: &[&str]) -> (String, Vec<String>) {
    let out = Command::new("ogrinfo")
        .args(args)
        .env("GDAL_HTTP_TIMEOUT", "60")
        .env("GDAL_HTTP_MAX_RETRY", "0")
        .env("CPL_DEBUG", "ON")
        .output()
        .unwrap_or_else(|e| panic!("running ogrinfo: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ogrinfo {args:?} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert!(!stderr.contains("ERROR"), "ogrinfo {args:?} reported an error:\n{stderr}");
    // GDAL logs each request as `HTTP: Fetch(URL)`.
    let urls = stderr
        .lines()
        .filter_map(|l| l.split_once("HTTP: Fetch(").map(|(_, rest)| rest.trim_end_matches(')').to_string()))
        .collect();
    (stdout, urls)
}

/// Issue 13: GDAL (3.6, Debian 12's) sends `-where` to the server as a CQL filter, because
/// the OpenAPI document offers `filter-lang=cql-text`, and the server's answer is the
/// server's own selection.
#[test]
fn gdal_pushes_where_down_as_cql() {
    if !gdal_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = e2e::serve_in(dir.path());
    let port = server.port;
    let url = format!("OAPIF:http://127.0.0.1:{port}");
    let count = |filter: &str| {
        let q = serde_urlencoded::to_string([("filter", filter), ("limit", "1")]).unwrap();
        json_get(port, &format!("/collections/blocks/items?{q}"))["numberMatched"].as_u64().unwrap()
    };
    for (where_, cql) in [
        ("residents > 20 AND covered = 0", "residents > 20 AND covered = FALSE"),
        ("residents >= 10 AND residents <= 30", "residents BETWEEN 10 AND 30"),
        ("covered = 1 OR ambassadors > 1", "covered = TRUE OR ambassadors > 1"),
        ("NOT (residents < 40)", "NOT residents < 40"),
        ("name IS NULL", "name IS NULL"),
    ] {
        let expected = count(cql);
        let (out, urls) = ogrinfo_traced(&["-ro", "-so", "-where", where_, &url, "blocks"]);
        assert_eq!(feature_count(&out), expected, "{where_}");
        let filtered: Vec<&String> =
            urls.iter().filter(|u| u.contains("/collections/blocks/items") && u.contains("filter=")).collect();
        assert!(!filtered.is_empty(), "{where_}: GDAL did not push the filter down; it fetched:\n{}", urls.join("\n"));
        assert!(filtered.iter().all(|u| u.contains("filter-lang=cql-text")), "{filtered:?}");
    }
    drop(server);
}
