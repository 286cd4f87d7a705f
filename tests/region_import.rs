//! Picking a region out of a county-wide file: `belong import blocks|areas --where/--within`
//! against the real LA tracts in `../shared/data` (counted independently from the .dbf), the
//! error cases on small fixtures, and `where=` on the HTTP imports.
#![allow(clippy::unwrap_used)]

mod common;
mod http_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use axum::http::{Method, StatusCode};
use belong::ingest::Crs;
use common::{coverage, run_ok, stderr, stdout, two_blocks, write};
use serde_json::{Value, json};
use shapefile::dbase::{self, FieldValue};

/// The LA tracts (EPSG:2229, 2,495 tracts, field `spa`), when `../shared/data` is there.
fn la_tracts() -> Option<PathBuf> {
    let p = common::shared_data()?.join("la-tracts-2020/la_tracts_2020.shp");
    assert!(p.is_file(), "{} is missing from ../shared/data", p.display());
    Some(p)
}

/// Every .dbf record of the tracts, read with the `shapefile` crate (not belong's reader).
fn dbf_records(shp: &Path) -> Vec<dbase::Record> {
    dbase::read(shp.with_extension("dbf")).unwrap()
}

fn text(record: &dbase::Record, field: &str) -> String {
    match record.get(field) {
        Some(FieldValue::Character(Some(s))) => s.trim().to_string(),
        other => panic!("{field}: {other:?}"),
    }
}

/// The ids of the stored blocks.
fn block_ids(db: &Path) -> BTreeSet<String> {
    let cov = coverage(db);
    cov["blocks"].as_array().unwrap().iter().map(|b| b["block_id"].as_str().unwrap().to_string()).collect()
}

/// `ogrinfo`'s count of the tracts with `spa = value`, when GDAL is installed.
fn ogr_count(shp: &Path, value: &str) -> Option<usize> {
    let sql = format!("SELECT COUNT(*) FROM la_tracts_2020 WHERE spa = '{value}'");
    let out = std::process::Command::new("ogrinfo").args(["-q", "-sql", &sql]).arg(shp).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("COUNT_*"))?;
    line.rsplit('=').next()?.trim().parse().ok()
}

const SPA7: &str = "SPA 7 - East";

#[test]
fn where_spa_keeps_exactly_the_tracts_of_that_spa() {
    let Some(shp) = la_tracts() else { return };
    let records = dbf_records(&shp);
    let expected: BTreeSet<String> =
        records.iter().filter(|r| text(r, "spa") == SPA7).map(|r| text(r, "tract")).collect();
    assert!(expected.len() > 100 && expected.len() < records.len(), "{}", expected.len());
    match ogr_count(&shp, SPA7) {
        Some(n) => assert_eq!(n, expected.len(), "ogrinfo disagrees with the .dbf"),
        None => eprintln!("ogrinfo not available: the count comes from the .dbf only"),
    }

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let where_spa = format!("spa={SPA7}");
    let out =
        run_ok(&db, &["import", "blocks", shp.to_str().unwrap(), "--id-field", "tract", "--where", &where_spa], 0);
    let dropped = records.len() - expected.len();
    let line = format!("kept {} of {} features (where spa={SPA7}: dropped {dropped})", expected.len(), records.len());
    assert!(stdout(&out).contains(&line), "{}", stdout(&out));
    assert_eq!(block_ids(&db), expected);

    // The file's field is upper case here, and numbers match numbers: `BELOW_FPL=N.0` keeps
    // the tracts whose Integer64 `below_fpl` is N.
    let numeric = |r: &dbase::Record| match r.get("below_fpl") {
        Some(FieldValue::Numeric(n)) => *n,
        other => panic!("below_fpl: {other:?}"),
    };
    let n = numeric(&records[0]).unwrap();
    let same: BTreeSet<String> = records.iter().filter(|r| numeric(r) == Some(n)).map(|r| text(r, "tract")).collect();
    let where_n = format!("BELOW_FPL={n:.1}");
    run_ok(&db, &["import", "blocks", shp.to_str().unwrap(), "--id-field", "tract", "--where", &where_n], 0);
    assert_eq!(block_ids(&db), same);

    // The spa values are coded labels (`SPA 7 - East`): `spa=7`, as a coalition writes it,
    // keeps the same tracts as the full label.
    let out = run_ok(&db, &["import", "blocks", shp.to_str().unwrap(), "--id-field", "tract", "--where", "spa=7"], 0);
    let line = format!("kept {} of {} features (where spa=7: dropped {dropped})", expected.len(), records.len());
    assert!(stdout(&out).contains(&line), "{}", stdout(&out));
    assert_eq!(block_ids(&db), expected);
    // A value no tract has keeps nothing, changes nothing and says what the values look like.
    let out =
        run_ok(&db, &["import", "blocks", shp.to_str().unwrap(), "--id-field", "tract", "--where", "spa=SPA 9"], 1);
    let err = stderr(&out);
    assert!(err.contains(&format!("kept 0 of {} features", records.len())), "{err}");
    assert!(err.contains("SPA 7 - East"), "{err}");
    assert_eq!(block_ids(&db), expected);
}

/// A box around Children's Bureau's HQ (1910 Magnolia Ave, tract 06037221120), with edges
/// densified so that it is the same area once reprojected.
fn hq_box() -> Vec<(f64, f64)> {
    let (x0, y0, x1, y1) = (-118.30, 34.03, -118.26, 34.07);
    let steps = 200;
    let lerp = |a: f64, b: f64, i: usize| a + (b - a) * i as f64 / steps as f64;
    let mut ring = Vec::new();
    ring.extend((0..steps).map(|i| (lerp(x0, x1, i), y0)));
    ring.extend((0..steps).map(|i| (x1, lerp(y0, y1, i))));
    ring.extend((0..steps).map(|i| (lerp(x1, x0, i), y1)));
    ring.extend((0..steps).map(|i| (x0, lerp(y1, y0, i))));
    ring.push((x0, y0));
    ring
}

fn polygon_geojson(ring: &[(f64, f64)], crs: Option<&str>) -> String {
    let coords: Vec<[f64; 2]> = ring.iter().map(|&(x, y)| [x, y]).collect();
    let mut fc = json!({ "type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": { "name": "hq" },
        "geometry": { "type": "Polygon", "coordinates": [coords] } }] });
    if let Some(name) = crs {
        fc["crs"] = json!({ "type": "name", "properties": { "name": name } });
    }
    fc.to_string()
}

#[test]
fn within_gives_the_same_tracts_whatever_the_area_crs() {
    let Some(shp) = la_tracts() else { return };
    let dir = tempfile::tempdir().unwrap();
    let lonlat = hq_box();
    let wgs84 = write(dir.path(), "hq-4326.geojson", &polygon_geojson(&lonlat, None));
    let state_plane = Crs::from_epsg(2229).unwrap();
    let feet: Vec<(f64, f64)> = lonlat.iter().map(|&(x, y)| state_plane.from_wgs84(x, y).unwrap()).collect();
    let geojson_2229 =
        write(dir.path(), "hq-2229.geojson", &polygon_geojson(&feet, Some("urn:ogc:def:crs:EPSG::2229")));
    // The same polygon as a shapefile whose .prj is the tracts' own (ESRI WKT).
    let shp_2229 = dir.path().join("hq-2229.shp");
    {
        let table = dbase::TableWriterBuilder::new().add_character_field("name".try_into().unwrap(), 10);
        let mut writer = shapefile::Writer::from_path(&shp_2229, table).unwrap();
        // Shapefile exteriors are clockwise: the box walked backwards.
        let points: Vec<shapefile::Point> = feet.iter().rev().map(|&(x, y)| shapefile::Point::new(x, y)).collect();
        let polygon = shapefile::Polygon::with_rings(vec![shapefile::PolygonRing::Outer(points)]);
        let mut record = dbase::Record::default();
        record.insert("name".into(), FieldValue::Character(Some("hq".into())));
        writer.write_shape_and_record(&polygon, &record).unwrap();
    }
    std::fs::copy(shp.with_extension("prj"), shp_2229.with_extension("prj")).unwrap();

    let mut results = Vec::new();
    for area in [&wgs84, &geojson_2229, &shp_2229] {
        let db = dir.path().join(format!("{}.db", area.file_name().unwrap().to_string_lossy()));
        let args =
            ["import", "blocks", shp.to_str().unwrap(), "--id-field", "tract", "--within", area.to_str().unwrap()];
        let out = run_ok(&db, &args, 0);
        let ids = block_ids(&db);
        let name = area.file_name().unwrap().to_string_lossy();
        let line = format!("kept {} of 2495 features (within {name}: dropped {})", ids.len(), 2495 - ids.len());
        assert!(stdout(&out).contains(&line), "{}", stdout(&out));
        results.push(ids);
    }
    assert_eq!(results[0], results[1], "EPSG:4326 and EPSG:2229 GeoJSON regions differ");
    assert_eq!(results[0], results[2], "GeoJSON and shapefile regions differ");
    // 84 tracts intersect the box (../shared/data/README.md); fewer have their interior point in it.
    let kept = &results[0];
    assert!(kept.contains("06037221120"), "{kept:?}");
    assert!(kept.len() > 20 && kept.len() < 84, "{}", kept.len());

    // Both filters: `within` counts only what `where` let through.
    let db = dir.path().join("both.db");
    let metro: usize = dbf_records(&shp).iter().filter(|r| text(r, "spa") == "SPA 4 - Metro").count();
    let args = [
        "import",
        "areas",
        shp.to_str().unwrap(),
        "--name",
        "hq",
        "--id-field",
        "tract",
        "--where",
        "spa=SPA 4 - Metro",
        "--within",
        wgs84.to_str().unwrap(),
    ];
    run_ok(&db, &["import", "blocks", shp.to_str().unwrap(), "--id-field", "tract"], 0);
    let out = run_ok(&db, &args, 0);
    let o = stdout(&out);
    let prefix = format!(
        "of 2495 features (where spa=SPA 4 - Metro: dropped {}; within hq-4326.geojson: dropped ",
        2495 - metro
    );
    assert!(o.contains(&prefix), "{o}");
    let rollup = run_ok(&db, &["coverage", "--by", "hq", "--format", "json"], 0);
    let rows: Value = serde_json::from_slice(&rollup.stdout).unwrap();
    let areas = rows.as_array().unwrap().iter().filter(|r| r["group"].is_string()).count();
    assert!(areas > 0 && areas <= kept.len(), "{rows:#}");
}

/// Three lon/lat squares near HQ with attributes to filter on.
fn fixture(dir: &Path) -> PathBuf {
    let square = |id: &str, x0: f64, kind: &str, n: Value| {
        json!({ "type": "Feature",
            "properties": { "block_id": id, "KIND": kind, "n": n },
            "geometry": { "type": "Polygon", "coordinates": [[[x0, 34.04], [x0 + 0.01, 34.04], [x0 + 0.01, 34.05], [x0, 34.05], [x0, 34.04]]] } })
    };
    let fc = json!({ "type": "FeatureCollection", "features": [
        square("060370000002001", -118.29, "park", json!(7.0)),
        square("060370000002002", -118.28, "home", json!("7")),
        square("060370000002003", -118.27, "home", json!(8)),
    ]});
    write(dir, "three.geojson", &fc.to_string())
}

#[test]
fn filters_that_cannot_work_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let two = two_blocks(dir.path());
    run_ok(&db, &["import", "blocks", two.to_str().unwrap()], 0);
    let before = coverage(&db);
    let three = fixture(dir.path());
    let three = three.to_str().unwrap();

    let out = run_ok(&db, &["import", "blocks", three, "--where", "colour=red"], 1);
    let err = stderr(&out);
    assert!(err.contains("no field 'colour'") && err.contains("KIND, block_id, n"), "{err}");

    let out = run_ok(&db, &["import", "blocks", three, "--where", "kind=home", "--where", "n=9"], 1);
    let err = stderr(&out);
    assert!(err.contains("kept 0 of 3 features (where kind=home: dropped 1; where n=9: dropped 2)"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");

    let far =
        write(dir.path(), "far.geojson", &polygon_geojson(&[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0)], None));
    let out = run_ok(&db, &["import", "blocks", three, "--within", far.to_str().unwrap()], 1);
    assert!(stderr(&out).contains("kept 0 of 3 features (within far.geojson: dropped 3)"), "{}", stderr(&out));

    let out = run_ok(&db, &["import", "blocks", three, "--where", "kind"], 2);
    assert!(stderr(&out).contains("FIELD=VALUE"), "{}", stderr(&out));
    let out = run_ok(&db, &["import", "areas", three, "--name", "x", "--within", "nowhere.kml"], 1);
    assert!(stderr(&out).contains("cannot read a region from a .kml file"), "{}", stderr(&out));
    assert_eq!(coverage(&db), before);

    // Numbers match numbers (7.0 and "7"), and one field given twice is an OR.
    let out = run_ok(&db, &["import", "blocks", three, "--where", "n=7"], 0);
    assert!(stdout(&out).contains("kept 2 of 3 features (where n=7: dropped 1)"), "{}", stdout(&out));
    run_ok(&db, &["import", "blocks", three, "--where", "kind=park", "--where", "KIND=home"], 0);
    assert_eq!(coverage(&db)["summary"]["blocks"], 3);
    // A feature outside the region may be invalid: it is dropped before validation.
    let mut fc: Value = serde_json::from_str(&std::fs::read_to_string(three).unwrap()).unwrap();
    fc["features"][2]["geometry"] = Value::Null;
    let broken = write(dir.path(), "broken.geojson", &fc.to_string());
    run_ok(&db, &["import", "blocks", broken.to_str().unwrap()], 1);
    run_ok(&db, &["import", "blocks", broken.to_str().unwrap(), "--where", "n=7"], 0);
    assert_eq!(coverage(&db)["summary"]["blocks"], 2);
}

#[tokio::test]
async fn http_imports_take_repeatable_where() {
    use http_support::{demo_app, get, req};
    let t = demo_app().await;
    let m = t.tokens.manager.clone();
    let dir = tempfile::tempdir().unwrap();
    let body = std::fs::read_to_string(fixture(dir.path())).unwrap();
    let before = get(&t, "/coverage").await.json();

    let post = |uri: &str| req(Method::POST, uri).token(&m).body("application/geo+json", body.clone());
    let detail =
        post("/imports/blocks?where=colour%3Dred").send(&t).await.problem_detail(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("no field 'colour'") && detail.contains("KIND, block_id, n"), "{detail}");
    assert!(!detail.contains("belong-upload"), "{detail}");
    let detail = post("/imports/blocks?where=n%3D9").send(&t).await.problem_detail(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail.contains("kept 0 of 3 features (where n=9: dropped 3)"), "{detail}");
    let detail = post("/imports/blocks?where=n").send(&t).await.problem_detail(StatusCode::BAD_REQUEST);
    assert!(detail.contains("FIELD=VALUE"), "{detail}");
    let detail = post("/imports/blocks?id_field=a&id_field=b").send(&t).await.problem_detail(StatusCode::BAD_REQUEST);
    assert!(detail.contains("more than once"), "{detail}");
    assert_eq!(get(&t, "/coverage").await.json(), before);

    let v = post("/imports/blocks?where=kind=home&where=n%3D7").send(&t).await.expect(StatusCode::OK).json();
    assert_eq!(v["replaced"]["blocks"], 1, "{v:#}");
    assert_eq!(
        v["filtered"],
        json!({ "features": 3, "kept": 1, "filters": [
            { "filter": "where kind=home", "dropped": 1 }, { "filter": "where n=7", "dropped": 1 } ] }),
        "{v:#}"
    );
    assert_eq!(get(&t, "/coverage").await.json()["blocks"], 1);

    let v = post("/imports/areas?name=parks&where=KIND%3Dpark&where=kind%3Dnone")
        .send(&t)
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(v["replaced"]["areas"], 1, "{v:#}");
    assert_eq!(v["filtered"]["filters"][0]["filter"], "where KIND=park or kind=none", "{v:#}");

    // Without filters the response is as before.
    let v = post("/imports/blocks").send(&t).await.expect(StatusCode::OK).json();
    assert!(v.get("filtered").is_none(), "{v:#}");
}
