//! End-to-end: the real `belong serve` binary on a free port, read by GDAL's OGC API – Features
//! driver (`ogrinfo`, `ogr2ogr` from Debian's gdal-bin). Skipped, with a message, when GDAL is
//! not installed (`.ci/run` installs it).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod e2e;

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
    let server = e2e::serve(dir.path().join("belong.db"), "warn", &dir.path().join("serve.log"));
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
