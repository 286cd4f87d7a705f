//! End-to-end tests of the CLI against the real binary and a real SQLite file.

mod common;

use common::*;
use serde_json::Value;

const WEST: &str = "060370000001001";
const EAST: &str = "060370000001000";

#[test]
fn people_are_assigned_and_coverage_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let blocks = two_blocks(dir.path());
    run_ok(&db, &["import", "blocks", blocks.to_str().unwrap()], 0);
    let residents = write(
        dir.path(),
        "residents.csv",
        "id,name,lon,lat\nr1,Ana,-118.285,34.045\nr2,Bo,-118.275,34.045\nr3,Cy,-118.275,34.046\nr4,Far,-120.0,34.0\n",
    );
    run_ok(&db, &["import", "residents", residents.to_str().unwrap()], 0);
    let ambassadors = write(dir.path(), "amb.csv", "id,name,lon,lat\na1,Amb,-118.276,34.041\n");
    run_ok(&db, &["import", "ambassadors", ambassadors.to_str().unwrap()], 0);

    let cov = coverage(&db);
    let s = &cov["summary"];
    assert_eq!(s["blocks"], 2);
    assert_eq!(s["covered_blocks"], 1);
    assert_eq!(s["coverage_pct"], 50.0);
    assert_eq!(s["residents_in_uncovered_blocks"], 1);
    assert_eq!(s["people_outside"], 1);
    let rows: Vec<(String, u64, u64, bool)> = cov["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["block_id"].as_str().unwrap().to_string(),
                b["residents"].as_u64().unwrap(),
                b["ambassadors"].as_u64().unwrap(),
                b["covered"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, [(EAST.to_string(), 2, 1, true), (WEST.to_string(), 1, 0, false)]);

    // Table and CSV forms carry the same numbers.
    let table = stdout(&run_ok(&db, &["coverage"], 0));
    assert!(table.contains("coverage_pct                   50.00"), "{table}");
    let csv = stdout(&run_ok(&db, &["coverage", "--format", "csv"], 0));
    assert_eq!(csv.lines().next(), Some("block_id,residents,ambassadors,covered"));
    assert!(csv.contains(&format!("{EAST},2,1,true")), "{csv}");

    // A target of 2 uncovers the block.
    let out = run_ok(&db, &["coverage", "--format", "json", "--target", "2"], 0);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["covered_blocks"], 0);
}

#[test]
fn reimporting_the_same_ids_updates_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    run_ok(&db, &["import", "blocks", two_blocks(dir.path()).to_str().unwrap()], 0);
    let f = write(dir.path(), "r.csv", "id,lon,lat\nr1,-118.285,34.045\nr2,-118.275,34.045\n");
    run_ok(&db, &["import", "residents", f.to_str().unwrap()], 0);
    let out = run_ok(&db, &["import", "residents", f.to_str().unwrap()], 0);
    assert!(stdout(&out).contains("0 new, 0 updated, 2 unchanged"), "{}", stdout(&out));
    // r2 moves west.
    let moved = write(dir.path(), "r2.csv", "id,lon,lat\nr2,-118.285,34.045\n");
    run_ok(&db, &["import", "residents", moved.to_str().unwrap()], 0);
    let cov = coverage(&db);
    assert_eq!(cov["summary"]["residents"], 2);
    let west = cov["blocks"].as_array().unwrap().iter().find(|b| b["block_id"] == WEST).unwrap();
    assert_eq!(west["residents"], 2);
    // Files without ids get stable derived ids: importing twice does not duplicate.
    let noid = write(dir.path(), "n.csv", "name,lon,lat\nZed,-118.275,34.045\n");
    run_ok(&db, &["import", "residents", noid.to_str().unwrap()], 0);
    run_ok(&db, &["import", "residents", noid.to_str().unwrap()], 0);
    assert_eq!(coverage(&db)["summary"]["residents"], 3);
}

#[test]
fn bad_csv_rows_are_listed_and_good_rows_kept() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    run_ok(&db, &["import", "blocks", two_blocks(dir.path()).to_str().unwrap()], 0);
    let f = write(
        dir.path(),
        "amb.csv",
        &format!(
            "id,lon,lat,email,block_id\na1,-118.285,34.045,a@example.org,\na2,nope,34.045,,\na3,-118.285,NaN,,\na4,-118.285,34.045,bad-email,\na5,-118.285,34.045,,{}\na6,-118.285,34.045,,60370000001000\na7,-118.285,34.045,,{EAST}\n",
            "999"
        ),
    );
    let out = run_ok(&db, &["import", "ambassadors", f.to_str().unwrap()], 3);
    let err = stderr(&out);
    for needle in [
        "line 3, field 'lon'",
        "line 4, field 'lat'",
        "line 5, field 'email'",
        "line 6, field 'block_id': block '999' is not in the catchment",
        "did you mean '060370000001000'",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert!(err.contains("amb.csv"), "file named: {err}");
    let cov = coverage(&db);
    assert_eq!(cov["summary"]["ambassadors"], 2);
    // a7 lives west but adopted east: both blocks covered.
    assert_eq!(cov["summary"]["covered_blocks"], 2);
}

#[test]
fn failed_block_import_keeps_the_previous_catchment() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    run_ok(&db, &["import", "blocks", two_blocks(dir.path()).to_str().unwrap()], 0);
    let residents = write(dir.path(), "r.csv", "id,lon,lat\nr1,-118.285,34.045\n");
    run_ok(&db, &["import", "residents", residents.to_str().unwrap()], 0);
    let before = coverage(&db);

    // Duplicate ids, a bow-tie, an out-of-range coordinate: the whole file is refused.
    let bad = serde_json::json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"block_id": "A"}, "geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,1],[0,0]]]}},
        {"type": "Feature", "properties": {"block_id": "A"}, "geometry": {"type": "Polygon", "coordinates": [[[1,0],[2,0],[2,1],[1,1],[1,0]]]}},
        {"type": "Feature", "properties": {"block_id": "B"}, "geometry": {"type": "Polygon", "coordinates": [[[0,0],[1,1],[1,0],[0,1],[0,0]]]}},
        {"type": "Feature", "properties": {"block_id": "C"}, "geometry": {"type": "Polygon", "coordinates": [[[0,0],[500,0],[500,1],[0,1],[0,0]]]}}
    ]});
    let bad = write(dir.path(), "bad.geojson", &bad.to_string());
    let out = run_ok(&db, &["import", "blocks", bad.to_str().unwrap()], 1);
    let err = stderr(&out);
    assert!(err.contains("bad.geojson"), "{err}");
    assert!(err.contains("feature 2") && err.contains("duplicate"), "{err}");
    assert!(err.contains("feature 3"), "{err}");
    assert!(err.contains("feature 4"), "{err}");
    assert_eq!(coverage(&db), before, "catchment must be untouched");

    // Missing files and unknown formats are errors too.
    let out = run_ok(&db, &["import", "blocks", dir.path().join("nope.shp").to_str().unwrap()], 1);
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
    let txt = write(dir.path(), "blocks.txt", "hello");
    run_ok(&db, &["import", "blocks", txt.to_str().unwrap()], 1);
    assert_eq!(coverage(&db), before);

    // With --skip-invalid the good feature is imported and the rest listed.
    let out = run_ok(&db, &["import", "blocks", "--skip-invalid", bad.to_str().unwrap()], 3);
    assert!(stderr(&out).contains("feature 3"), "{}", stderr(&out));
    assert_eq!(coverage(&db)["summary"]["blocks"], 1);
    // The resident is now outside the (new) catchment: kept and counted.
    assert_eq!(coverage(&db)["summary"]["people_outside"], 1);
}

#[test]
fn reimporting_blocks_reassigns_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    run_ok(&db, &["import", "blocks", two_blocks(dir.path()).to_str().unwrap()], 0);
    let r = write(dir.path(), "r.csv", "id,lon,lat\nr1,-118.285,34.045\nr2,-118.275,34.045\n");
    run_ok(&db, &["import", "residents", r.to_str().unwrap()], 0);
    // One big block replaces both.
    let one = write(dir.path(), "one.geojson", &squares_geojson(&[("X", -118.29, 34.04, -118.27, 34.05)]));
    let out = run_ok(&db, &["import", "blocks", one.to_str().unwrap()], 0);
    assert!(stdout(&out).contains("2 people"), "{}", stdout(&out));
    let cov = coverage(&db);
    assert_eq!(cov["blocks"][0]["block_id"], "X");
    assert_eq!(cov["blocks"][0]["residents"], 2);
}

#[test]
fn assign_adds_block_ids_by_the_boundary_rule() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    run_ok(&db, &["import", "blocks", two_blocks(dir.path()).to_str().unwrap()], 0);
    let input = write(
        dir.path(),
        "pts.csv",
        "id,lon,lat,note\np1,-118.285,34.045,west\np2,-118.28,34.045,on the shared edge\np3,-119,34,outside\np4,x,34,bad\n",
    );
    let out = run_ok(&db, &["assign", input.to_str().unwrap()], 3);
    let text = stdout(&out);
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(rdr.headers().unwrap().iter().collect::<Vec<_>>(), ["id", "lon", "lat", "note", "block_id"]);
    let rows: Vec<Vec<String>> = rdr.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0][4], WEST);
    // On the shared edge: the block whose id sorts first.
    assert_eq!(rows[1][4], EAST);
    assert_eq!(rows[1][3], "on the shared edge");
    assert_eq!(rows[2][4], "");
    assert_eq!(rows[3][4], "");
    assert!(stderr(&out).contains("line 5"), "{}", stderr(&out));
}

#[test]
fn projected_people_with_crs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let blocks = write(dir.path(), "b.geojson", &squares_geojson(&[("B1", -118.28, 34.04, -118.26, 34.06)]));
    run_ok(&db, &["import", "blocks", blocks.to_str().unwrap()], 0);
    // EPSG:2229 (6480000, 1840000) ft is (-118.2695921, 34.0481104).
    let f = write(dir.path(), "xy.csv", "id,x,y\nr1,6480000,1840000\n");
    let out = run_ok(&db, &["import", "residents", f.to_str().unwrap()], 1);
    assert!(stderr(&out).contains("--crs"), "{}", stderr(&out));
    run_ok(&db, &["import", "residents", "--crs", "EPSG:2229", f.to_str().unwrap()], 0);
    assert_eq!(coverage(&db)["blocks"][0]["residents"], 1);
}

#[test]
fn indicators_keep_no_data_apart_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    run_ok(&db, &["import", "blocks", two_blocks(dir.path()).to_str().unwrap()], 0);
    let f = write(
        dir.path(),
        "ind.csv",
        &format!(
            "block_id,indicator,value,date\n{EAST},school_readiness,0,2025-06-01\n{WEST},school_readiness,NA,2025-06-01\n999,school_readiness,5,\n"
        ),
    );
    let out = run_ok(&db, &["import", "indicators", f.to_str().unwrap()], 3);
    assert!(stderr(&out).contains("line 4, field 'block_id'"), "{}", stderr(&out));
    let out = run_ok(&db, &["export", "indicators"], 0);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let feats = v["features"].as_array().unwrap();
    let east = feats.iter().find(|f| f["id"] == EAST).unwrap();
    let west = feats.iter().find(|f| f["id"] == WEST).unwrap();
    assert_eq!(east["properties"]["value"], 0.0);
    assert_eq!(east["properties"]["no_data"], false);
    assert_eq!(east["properties"]["date"], "2025-06-01");
    assert_eq!(west["properties"]["value"], Value::Null);
    assert_eq!(west["properties"]["no_data"], true);
    let csv = stdout(&run_ok(&db, &["export", "indicators", "--format", "csv"], 0));
    assert_eq!(csv, format!("block_id,indicator,value,date\n{EAST},school_readiness,0,2025-06-01\n"));
}

#[test]
fn resources_csv_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    run_ok(&db, &["import", "blocks", two_blocks(dir.path()).to_str().unwrap()], 0);
    let f = write(
        dir.path(),
        "res.csv",
        "id,name,category,lon,lat,phone,hours\nS1,Clinic,Clinic,-118.275,34.045,(213) 555-0100,9-5\nS2,Far away,Shelter,-138,27,,\nS3,Broken,school,,34,,\n",
    );
    let out = run_ok(&db, &["import", "resources", f.to_str().unwrap()], 3);
    assert!(stdout(&out).contains("1 outside the catchment"), "{}", stdout(&out));
    let v: Value = serde_json::from_slice(&run_ok(&db, &["export", "resources"], 0).stdout).unwrap();
    let feats = v["features"].as_array().unwrap();
    assert_eq!(feats.len(), 2);
    assert_eq!(feats[0]["id"], "S1");
    assert_eq!(feats[0]["properties"]["block_id"], EAST);
    assert_eq!(feats[0]["properties"]["hours"], "9-5");
    assert_eq!(feats[1]["properties"]["block_id"], Value::Null);
}

#[test]
fn export_blocks_is_rfc7946() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    run_ok(&db, &["import", "blocks", two_blocks(dir.path()).to_str().unwrap()], 0);
    let v: Value = serde_json::from_slice(&run_ok(&db, &["export", "blocks"], 0).stdout).unwrap();
    assert_eq!(v["type"], "FeatureCollection");
    for f in v["features"].as_array().unwrap() {
        assert!(f["id"].is_string());
        assert_eq!(f["id"], f["properties"]["block_id"]);
        let ring: Vec<(f64, f64)> = f["geometry"]["coordinates"][0][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c[0].as_f64().unwrap(), c[1].as_f64().unwrap()))
            .collect();
        let area2: f64 = ring.windows(2).map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1).sum();
        assert!(area2 > 0.0, "exterior ring must be counter-clockwise");
        assert_eq!(ring.first(), ring.last());
    }
    let csv = stdout(&run_ok(&db, &["export", "blocks", "--format", "csv"], 0));
    assert!(csv.starts_with("block_id,name,residents,ambassadors,covered,target,lon,lat"), "{csv}");
    assert!(csv.contains(WEST));
}

#[test]
fn usage_errors_exit_2_and_help_is_helpful() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    run_ok(&db, &["coverage", "--format", "yaml"], 2);
    run_ok(&db, &["coverage", "--target", "0"], 2);
    let help = stdout(&run_ok(&db, &["import", "blocks", "--help"], 0));
    for flag in ["--id-field", "--name-field", "--source-crs", "--skip-invalid", "--db"] {
        assert!(help.contains(flag), "{flag} missing from help:\n{help}");
    }
    // --db is accepted after the subcommand too.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_belong"))
        .args(["coverage", "--format", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// Issue 12: the CLI printed a `.prj` of 10 MB of NULs to stderr; every quoted value is cut
/// short, control characters escaped.
#[test]
fn cli_errors_do_not_echo_their_input() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    for ext in ["shp", "shx", "dbf"] {
        std::fs::copy(data.join(format!("blocks.{ext}")), dir.path().join(format!("b.{ext}"))).unwrap();
    }
    let db = dir.path().join("belong.db");
    std::fs::write(dir.path().join("b.prj"), vec![0u8; 10 << 20]).unwrap();
    let out = run(&db, &["import", "blocks", dir.path().join("b.shp").to_str().unwrap()]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.len() < 1_000 && err.contains("the .prj is 10 MiB"),
        "{} bytes: {}",
        err.len(),
        &err[..err.len().min(300)]
    );
    // A short .prj of NULs and junk is quoted cut short, escaped.
    let mut junk = vec![0u8; 300];
    junk.extend(b"PROJCS");
    std::fs::write(dir.path().join("b.prj"), junk).unwrap();
    let err = stderr(&run(&db, &["import", "blocks", dir.path().join("b.shp").to_str().unwrap()]));
    assert!(err.len() < 1_000 && !err.contains('\u{0}') && err.contains("characters)"), "{err}");
}

/// Issue 12.4: the CLI import applies the JSON API's rules: a 3 M-character name, a phone with
/// U+0001, a row wider than the header and a quote that never closes are rejected rows with
/// their lines; the good rows are kept.
#[test]
fn one_validation_for_every_door_cli_people_import() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    run_ok(&db, &["import", "blocks", two_blocks(dir.path()).to_str().unwrap()], 0);
    let mut csv = format!(
        "id,name,phone,lon,lat\nr1,Ana,555-0100,-118.285,34.045\nr2,{},,-118.285,34.045\nr3,Bo,555\u{1}0101,-118.285,34.045\nr4,Cy,,-118.285,34.045,extra\nr5,\"Di,,-118.285,34.045\n",
        "N".repeat(3_000_000)
    );
    for i in 0..100 {
        csv.push_str(&format!("s{i},Swallowed,,-118.285,34.045\n"));
    }
    let f = write(dir.path(), "residents.csv", &csv);
    let out = run_ok(&db, &["import", "residents", f.to_str().unwrap()], 3);
    let err = stderr(&out);
    for expected in [
        "line 3, field 'name': longer than 1000 characters",
        "line 4, field 'phone': contains control characters",
        "line 5: 6 fields, but the header has 5",
        "line 6: a quote (\") opened on line 6 is never closed",
    ] {
        assert!(err.contains(expected), "{expected}: {}", &err[..err.len().min(4000)]);
    }
    assert!(err.len() < 10_000, "stderr stays short: {} bytes", err.len());
    assert_eq!(coverage(&db)["summary"]["residents"], 1);
}

/// Issue 12.4: a 2 M-character GEOID20 refuses the block file; the catchment is kept.
#[test]
fn one_validation_for_every_door_cli_block_ids() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    run_ok(&db, &["import", "blocks", two_blocks(dir.path()).to_str().unwrap()], 0);
    let long = "0".repeat(2_000_000);
    let bad = write(dir.path(), "bad.geojson", &squares_geojson(&[(&long, -118.29, 34.04, -118.28, 34.05)]));
    let out = run_ok(&db, &["import", "blocks", bad.to_str().unwrap()], 1);
    assert!(
        stderr(&out).contains("block id longer than 200 characters"),
        "{}",
        &stderr(&out)[..2000.min(stderr(&out).len())]
    );
    assert!(stderr(&out).len() < 10_000);
    assert_eq!(coverage(&db)["summary"]["blocks"], 2);
}

/// Issue 12.5: x,y far outside EPSG:2229 or EPSG:3857 are rejected rows, not people at a pole.
#[test]
fn projected_coordinates_outside_their_crs_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    run_ok(&db, &["import", "blocks", two_blocks(dir.path()).to_str().unwrap()], 0);
    let (x, y) = belong::ingest::Crs::parse("EPSG:2229").unwrap().from_wgs84(-118.285, 34.045).unwrap();
    let f = write(dir.path(), "xy.csv", &format!("id,x,y\nr1,1000000000,1000000000\nr2,{x},{y}\n"));
    let out = run_ok(&db, &["import", "residents", "--crs", "EPSG:2229", f.to_str().unwrap()], 3);
    assert!(
        stderr(&out).contains("line 2, field 'x': is outside the area EPSG:2229 can represent"),
        "{}",
        stderr(&out)
    );
    let f = write(dir.path(), "merc.csv", "id,x,y\nm1,-1000000000000,1000000000000\nm2,1000000000000,-1000000000000\n");
    let out = run_ok(&db, &["import", "residents", "--crs", "EPSG:3857", f.to_str().unwrap()], 3);
    assert!(stderr(&out).contains("line 3, field 'x'"), "{}", stderr(&out));
    assert_eq!(coverage(&db)["summary"]["residents"], 1, "only r2, the one inside the CRS");
}

/// Issue 12.6: an invalid email is not quoted on stderr.
#[test]
fn personal_data_echoed_not_on_cli_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    run_ok(&db, &["import", "blocks", two_blocks(dir.path()).to_str().unwrap()], 0);
    let f = write(
        dir.path(),
        "r.csv",
        "id,name,phone,email,lon,lat,interested\nr1,Ana Secret,555-0199,ana.secret@example,-118.285,34.045,\nr2,Ana Secret,555-0199,ana.secret@example.org,-118.285,34.045,ana.secret@example.org\n",
    );
    let out = run_ok(&db, &["import", "residents", f.to_str().unwrap()], 3);
    let err = stderr(&out);
    assert!(err.contains("line 2, field 'email': not an email address"), "{err}");
    assert!(err.contains("line 3, field 'interested'"), "{err}");
    for secret in ["ana.secret", "Ana Secret", "555-0199"] {
        assert!(!err.contains(secret), "{secret} in {err}");
    }
}
