//! The campaign dashboard's server side: coverage over time replayed from the history (checked
//! against the live coverage after adds, deletes, deactivation, adoptions, their expiry and a
//! catchment re-import) and roll-ups by tract and by imported area layers — through the store,
//! the command line and the HTTP router.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;
mod http_support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use axum::http::{Method, StatusCode, header};
use belong::app::history::{HistoryPoint, Interval, coverage_history};
use belong::app::rollup::{coverage_rollup, import_areas};
use belong::core::coverage::compute;
use belong::core::person::whole_seconds;
use belong::core::rollup::RollupRow;
use belong::core::{Block, CoverageSummary, Role};
use belong::ingest::blocks::BlockReadOptions;
use belong::store::{SqliteStore, Store};
use chrono::{DateTime, Duration, Utc};
use geo::InteriorPoint;
use serde_json::{Value, json};

/// The demo loaded once into a database file; tests copy it.
fn template() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let db = dir.join("demo.db");
        let store = SqliteStore::open(&db).unwrap();
        http_support::load_demo(&store);
        drop(store);
        db
    })
}

/// A private copy of the demo database.
fn demo_db(dir: &Path) -> PathBuf {
    let db = dir.join("belong.db");
    std::fs::copy(template(), &db).unwrap();
    db
}

/// Coverage computed from the store at instant `at`.
fn live(store: &SqliteStore, at: DateTime<Utc>) -> CoverageSummary {
    let ids = store.block_ids().unwrap();
    let (counts, outside) = store.coverage_counts_at(at).unwrap();
    compute(ids.iter().map(String::as_str), &counts, outside, 1).summary
}

#[track_caller]
fn assert_matches(point: &HistoryPoint, live: &CoverageSummary) {
    let got = (point.blocks, point.covered_blocks, point.coverage_pct, point.ambassadors, point.residents);
    let want = (live.blocks, live.covered_blocks, live.coverage_pct, live.ambassadors, live.residents);
    assert_eq!(got, want, "last history point {point:?} vs live {live:?}");
}

/// A GeoJSON FeatureCollection of some of `blocks`, as a block file.
fn blocks_geojson(path: &Path, blocks: &[&Block]) {
    let features: Vec<Value> = blocks
        .iter()
        .map(|b| {
            json!({ "type": "Feature", "properties": { "block_id": b.id, "name": b.name },
                    "geometry": belong::export::multipolygon_json(&b.geometry) })
        })
        .collect();
    std::fs::write(path, json!({ "type": "FeatureCollection", "features": features }).to_string()).unwrap();
}

fn rectangles_geojson(rects: &[(&str, &str, [f64; 4])]) -> String {
    let features: Vec<Value> = rects
        .iter()
        .map(|(id, name, [x0, y0, x1, y1])| {
            json!({ "type": "Feature", "properties": { "area_id": id, "label": name },
                    "geometry": { "type": "Polygon",
                                  "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]] } })
        })
        .collect();
    json!({ "type": "FeatureCollection", "features": features }).to_string()
}

/// Four quadrants over the demo catchment, leaving its eastern tenth out (those blocks are in
/// no area).
fn quadrants(bbox: [f64; 4]) -> Vec<(&'static str, &'static str, [f64; 4])> {
    let [x0, y0, x1, y1] = bbox;
    let (xm, ym, xe) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0, x1 - (x1 - x0) / 10.0);
    let pad = 0.001;
    vec![
        ("sw", "South-west", [x0 - pad, y0 - pad, xm, ym]),
        ("se", "South-east", [xm, y0 - pad, xe, ym]),
        ("nw", "North-west", [x0 - pad, ym, xm, y1 + pad]),
        ("ne", "North-east", [xm, ym, xe, y1 + pad]),
    ]
}

fn totals(rows: &[RollupRow]) -> (u64, u64, u64, u64, u64) {
    rows.iter().fold((0, 0, 0, 0, 0), |t, r| {
        (
            t.0 + r.blocks,
            t.1 + r.covered_blocks,
            t.2 + r.residents,
            t.3 + r.residents_in_uncovered_blocks,
            t.4 + r.ambassadors,
        )
    })
}

fn summary_totals(s: &CoverageSummary) -> (u64, u64, u64, u64, u64) {
    (s.blocks, s.covered_blocks, s.residents, s.residents_in_uncovered_blocks, s.ambassadors)
}

#[test]
fn history_matches_live_coverage_through_changes_expiries_and_a_reimport() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&demo_db(dir.path())).unwrap();
    let now = Utc::now();
    let points = coverage_history(&store, Interval::Day, 1, now).unwrap();
    assert_eq!(points.last().unwrap().date, now.date_naive().to_string());
    assert_matches(points.last().unwrap(), &live(&store, now));

    let people = store.people(&Default::default()).unwrap();
    let ambassadors: Vec<_> = people.iter().filter(|p| p.role == Role::Ambassador && p.active).collect();
    let blocks = store.blocks().unwrap();
    let uncovered: Vec<String> = belong::app::coverage(&store, 1)
        .unwrap()
        .blocks
        .iter()
        .filter(|b| !b.covered)
        .map(|b| b.block_id.clone())
        .collect();
    // A resident leaves, an ambassador pauses, two adopt uncovered blocks (one for a day, one
    // until further notice), and one adopts a block the re-import below removes.
    let resident = people.iter().find(|p| p.role == Role::Resident).unwrap();
    assert!(store.delete_person(&resident.id).unwrap());
    // The day adopter shares their home block with another ambassador, so the lapse shows:
    // the adopted block is uncovered again and home stays covered.
    let mut per_home: std::collections::HashMap<&str, usize> = Default::default();
    for a in &ambassadors {
        *per_home.entry(a.home_block.as_deref().unwrap_or("")).or_default() += 1;
    }
    let shared = |a: &&&belong::core::Person| per_home[a.home_block.as_deref().unwrap_or("")] >= 2;
    let mut day_adopter = ambassadors.iter().find(shared).copied().unwrap().clone();
    let others: Vec<_> = ambassadors.iter().filter(|a| a.home_block != day_adopter.home_block).copied().collect();
    let ambassadors = others;
    let mut paused = ambassadors[0].clone();
    paused.active = false;
    day_adopter.adopted_block = Some(uncovered[0].clone());
    day_adopter.adopted_until = Some(whole_seconds(now + Duration::days(1)));
    let mut adopter = ambassadors[2].clone();
    adopter.adopted_block = Some(uncovered[1].clone());
    let mut orphan = ambassadors[3].clone();
    orphan.adopted_block = Some(uncovered[2].clone());
    store.upsert_people(&[paused, day_adopter, adopter, orphan], "test").unwrap();
    let now = Utc::now();
    assert_matches(coverage_history(&store, Interval::Day, 1, now).unwrap().last().unwrap(), &live(&store, now));

    // Re-import the catchment without the orphan's adopted block and a few others: their
    // people are reassigned (or now outside), the orphan falls back to home.
    let others = blocks.iter().step_by(37).map(|b| b.id.as_str()).filter(|b| !uncovered[..2].iter().any(|u| u == b));
    let removed: Vec<&str> = std::iter::once(uncovered[2].as_str()).chain(others).collect();
    let kept: Vec<&Block> = blocks.iter().filter(|b| !removed.contains(&b.id.as_str())).collect();
    let file = dir.path().join("smaller.geojson");
    blocks_geojson(&file, &kept);
    let r = belong::app::import_blocks(&store, &file, &BlockReadOptions::default()).unwrap();
    assert!(r.replaced.removed >= 14 && r.replaced.people_reassigned > 0, "{:?}", r.replaced);
    let now = Utc::now();
    let points = coverage_history(&store, Interval::Day, 1, now).unwrap();
    assert_matches(points.last().unwrap(), &live(&store, now));
    // Two days on, the day adoption has lapsed: the history says what the store will say.
    let later = now + Duration::days(2);
    let points_later = coverage_history(&store, Interval::Day, 1, later).unwrap();
    assert_eq!(points_later.len(), points.len() + 2);
    assert_matches(points_later.last().unwrap(), &live(&store, later));
    assert_ne!(live(&store, later).covered_blocks, live(&store, now).covered_blocks, "the lapse changes coverage");
    // Restoring the removed blocks brings the orphan's adoption back.
    let all: Vec<&Block> = blocks.iter().collect();
    blocks_geojson(&file, &all);
    belong::app::import_blocks(&store, &file, &BlockReadOptions::default()).unwrap();
    let now = Utc::now();
    assert_matches(coverage_history(&store, Interval::Week, 1, now).unwrap().last().unwrap(), &live(&store, now));
    let target2 = coverage_history(&store, Interval::Day, 2, now).unwrap();
    let ids = store.block_ids().unwrap();
    let (counts, outside) = store.coverage_counts_at(now).unwrap();
    let live2 = compute(ids.iter().map(String::as_str), &counts, outside, 2).summary;
    assert_eq!(target2.last().unwrap().covered_blocks, live2.covered_blocks);
}

#[test]
fn rollups_by_tract_and_by_hand_made_areas_add_up_to_the_catchment() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&demo_db(dir.path())).unwrap();
    let summary = belong::app::coverage(&store, 1).unwrap().summary;
    let tracts = coverage_rollup(&store, "tract", 1).unwrap();
    assert_eq!(totals(&tracts), summary_totals(&summary));
    let blocks = store.blocks().unwrap();
    let mut distinct: Vec<&str> = blocks.iter().map(|b| &b.id[..11]).collect();
    distinct.dedup();
    assert_eq!(tracts.iter().map(|r| r.group.as_deref().unwrap()).collect::<Vec<_>>(), distinct);

    let index = belong::core::BlockIndex::new(&blocks);
    let rects = quadrants(index.bbox().unwrap());
    let path = dir.path().join("quadrants.geojson");
    std::fs::write(&path, rectangles_geojson(&rects)).unwrap();
    let opts =
        BlockReadOptions { id_field: Some("area_id".into()), name_field: Some("label".into()), ..Default::default() };
    let r = import_areas(&store, &path, "quadrants", &opts).unwrap();
    assert_eq!(r.replaced.areas, 4);
    let rows = coverage_rollup(&store, "quadrants", 1).unwrap();
    assert_eq!(totals(&rows), summary_totals(&summary));
    // Each block's interior point, tested against the rectangles independently (half-open on
    // the shared edges, which no interior point of the demo lies on).
    let coverage = belong::app::coverage(&store, 1).unwrap();
    let mut expect: std::collections::BTreeMap<Option<&str>, u64> = Default::default();
    for b in &blocks {
        let p = b.geometry.interior_point().unwrap();
        let area =
            rects.iter().find(|(_, _, [x0, y0, x1, y1])| p.x() >= *x0 && p.x() < *x1 && p.y() >= *y0 && p.y() < *y1);
        *expect.entry(area.map(|a| a.0)).or_default() += 1;
    }
    let got: std::collections::BTreeMap<Option<&str>, u64> =
        rows.iter().map(|r| (r.group.as_deref(), r.blocks)).collect();
    assert_eq!(got, expect);
    assert!(got.contains_key(&None) && got.len() == 5, "{got:?}");
    assert_eq!(rows.last().unwrap().group, None, "the null group comes last");
    assert_eq!(rows[0].name.as_deref(), Some("North-east"));
    assert_eq!(coverage.summary, summary);
}

#[test]
fn la_neighbourhoods_over_the_demo() {
    let Some(shared) = common::shared_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&demo_db(dir.path())).unwrap();
    let path = shared.join("la-neighborhoods/la-county-neighborhoods-v6.geojson");
    let strict = BlockReadOptions { id_field: Some("external_id".into()), ..Default::default() };
    // Four self-intersecting neighbourhoods: refused whole, then imported without them.
    let err = import_areas(&store, &path, "neighbourhoods", &strict).unwrap_err().to_string();
    assert!(err.contains("invalid record(s); nothing was imported"), "{err}");
    assert!(store.area_layers().unwrap().is_empty());
    let opts = BlockReadOptions { skip_invalid: true, ..strict };
    let r = import_areas(&store, &path, "neighbourhoods", &opts).unwrap();
    assert_eq!((r.replaced.areas + r.rejected.len(), r.rejected.len()), (318, 4), "{:?}", r.rejected);
    assert_eq!(r.name_field.as_deref(), Some("name"));
    let rows = coverage_rollup(&store, "neighbourhoods", 1).unwrap();
    let summary = belong::app::coverage(&store, 1).unwrap().summary;
    assert_eq!(totals(&rows), summary_totals(&summary));
    let groups: Vec<&str> = rows.iter().filter_map(|r| r.group.as_deref()).collect();
    // The demo imitates the blocks around 1910 Magnolia Ave, in Pico-Union.
    assert!(groups.contains(&"pico-union"), "{groups:?}");
    let pico = rows.iter().find(|r| r.group.as_deref() == Some("pico-union")).unwrap();
    assert_eq!(pico.name.as_deref(), Some("Pico-Union"));
    assert!(rows.iter().all(|r| r.blocks > 0));
}

mod cli {
    use super::*;
    use common::{run_ok, stderr, stdout};

    #[test]
    fn import_areas_and_roll_up_from_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let db = demo_db(dir.path());
        let store = SqliteStore::open(&db).unwrap();
        let bbox = belong::core::BlockIndex::new(&store.blocks().unwrap()).bbox().unwrap();
        drop(store);
        let areas = common::write(dir.path(), "q.geojson", &rectangles_geojson(&quadrants(bbox)));
        let areas = areas.to_str().unwrap();
        for bad in ["tract", "Quadrants", "a b"] {
            let e = stderr(&run_ok(&db, &["import", "areas", areas, "--name", bad], 2));
            assert!(e.contains("--name"), "{e}");
        }
        let dup = common::write(
            dir.path(),
            "dup.geojson",
            &rectangles_geojson(&[("x", "X", [0.0, 0.0, 1.0, 1.0]), ("x", "Y", [1.0, 0.0, 2.0, 1.0])]),
        );
        let e = stderr(&run_ok(
            &db,
            &["import", "areas", dup.to_str().unwrap(), "--name", "q", "--id-field", "area_id"],
            1,
        ));
        assert!(e.contains("feature 2") && e.contains("duplicate area id 'x'"), "{e}");
        let e = stderr(&run_ok(&db, &["coverage", "--by", "q"], 1));
        assert!(e.contains("no roll-up 'q'") && e.contains("belong import areas"), "{e}");

        let out = stdout(&run_ok(
            &db,
            &["import", "areas", areas, "--name", "q", "--id-field", "area_id", "--name-field", "label"],
            0,
        ));
        assert!(out.contains("imported 4 areas into layer 'q'"), "{out}");

        let cov: Value = serde_json::from_slice(&run_ok(&db, &["coverage", "--format", "json"], 0).stdout).unwrap();
        let csv_text = stdout(&run_ok(&db, &["coverage", "--by", "q", "--format", "csv"], 0));
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        assert_eq!(
            reader.headers().unwrap().iter().collect::<Vec<_>>(),
            [
                "group",
                "name",
                "blocks",
                "covered_blocks",
                "coverage_pct",
                "residents",
                "residents_in_uncovered_blocks",
                "ambassadors"
            ]
        );
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let sum = |i: usize| records.iter().map(|r| r[i].parse::<u64>().unwrap()).sum::<u64>();
        assert_eq!(sum(2), cov["summary"]["blocks"].as_u64().unwrap());
        assert_eq!(sum(5), cov["summary"]["residents"].as_u64().unwrap());
        assert_eq!(&records.last().unwrap()[0], "", "blocks in no area: an empty group");
        let table = stdout(&run_ok(&db, &["coverage", "--by", "q"], 0));
        assert!(table.contains("(none)") && table.contains("South-west"), "{table}");
        let json: Value =
            serde_json::from_slice(&run_ok(&db, &["coverage", "--by", "tract", "--format", "json"], 0).stdout).unwrap();
        assert!(json.as_array().unwrap().iter().all(|r| r["group"].as_str().is_some_and(|g| g.len() == 11)), "{json}");
    }

    #[test]
    fn history_from_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let db = demo_db(dir.path());
        let cov: Value = serde_json::from_slice(&run_ok(&db, &["coverage", "--format", "json"], 0).stdout).unwrap();
        let v: Value =
            serde_json::from_slice(&run_ok(&db, &["coverage", "--history", "--format", "json"], 0).stdout).unwrap();
        let last = v.as_array().unwrap().last().unwrap();
        for k in ["blocks", "covered_blocks", "coverage_pct", "residents", "ambassadors"] {
            assert_eq!(last[k], cov["summary"][k], "{k}: {last} vs {cov}");
        }
        assert_eq!(last["date"], Utc::now().date_naive().to_string());
        let csv_text = stdout(&run_ok(&db, &["coverage", "--history", "--interval", "week", "--format", "csv"], 0));
        assert_eq!(csv_text.lines().next(), Some("date,coverage_pct,covered_blocks,blocks,ambassadors,residents"));
        let table = stdout(&run_ok(&db, &["coverage", "--history"], 0));
        assert!(table.starts_with("date ") && table.lines().count() >= 2, "{table}");
        run_ok(&db, &["coverage", "--interval", "week"], 2);
        run_ok(&db, &["coverage", "--history", "--by", "tract"], 2);
        let empty = dir.path().join("empty.db");
        let out = run_ok(&empty, &["coverage", "--history", "--format", "csv"], 0);
        assert_eq!(stdout(&out), "date,coverage_pct,covered_blocks,blocks,ambassadors,residents\n");
    }
}

mod http {
    use super::*;
    use http_support::{demo_app, get, get_as, req};

    #[tokio::test]
    async fn rollups_over_http() {
        let t = demo_app().await;
        let summary = get(&t, "/coverage").await.expect(StatusCode::OK).json();
        let rows = get(&t, "/coverage/rollup?by=tract").await.expect(StatusCode::OK).json();
        let rows: Vec<RollupRow> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| RollupRow {
                group: r["group"].as_str().map(str::to_string),
                name: r["name"].as_str().map(str::to_string),
                blocks: r["blocks"].as_u64().unwrap(),
                covered_blocks: r["covered_blocks"].as_u64().unwrap(),
                coverage_pct: r["coverage_pct"].as_f64().unwrap(),
                residents: r["residents"].as_u64().unwrap(),
                residents_in_uncovered_blocks: r["residents_in_uncovered_blocks"].as_u64().unwrap(),
                ambassadors: r["ambassadors"].as_u64().unwrap(),
            })
            .collect();
        let s = |k: &str| summary[k].as_u64().unwrap();
        assert_eq!(
            totals(&rows),
            (s("blocks"), s("covered_blocks"), s("residents"), s("residents_in_uncovered_blocks"), s("ambassadors"))
        );
        let csv = get(&t, "/coverage/rollup?by=tract&f=csv").await.expect(StatusCode::OK);
        assert!(csv.header(header::CONTENT_TYPE).starts_with("text/csv"), "{csv}");
        assert_eq!(csv.text().lines().count(), rows.len() + 1);

        let p = get(&t, "/coverage/rollup").await.problem(StatusCode::BAD_REQUEST);
        assert!(p["detail"].as_str().unwrap().contains("by=tract"), "{p}");
        let p = get(&t, "/coverage/rollup?by=wards").await.problem(StatusCode::NOT_FOUND);
        assert!(p["detail"].as_str().unwrap().contains("tract"), "{p}");
        get(&t, "/coverage/rollup?by=tract&f=xml").await.problem(StatusCode::BAD_REQUEST);
        let layers = get(&t, "/coverage/rollup/layers").await.expect(StatusCode::OK).json();
        assert_eq!(
            layers,
            json!([{ "name": "tract", "kind": "tract", "areas": null, "source": null, "imported_at": null }])
        );

        // Import a layer over HTTP: managers only, a valid name, a valid file.
        let bbox = belong::core::BlockIndex::new(&t.state.store.blocks().unwrap()).bbox().unwrap();
        let body = rectangles_geojson(&quadrants(bbox));
        let uri = "/imports/areas?name=quadrants&id_field=area_id&name_field=label";
        let upload = |uri: &str, token: &str, body: &str| {
            req(Method::POST, uri).token(token).body("application/geo+json", body.as_bytes().to_vec())
        };
        upload(uri, &t.tokens.viewer, &body).send(&t).await.problem(StatusCode::FORBIDDEN);
        upload("/imports/areas?id_field=area_id", &t.tokens.manager, &body)
            .send(&t)
            .await
            .problem(StatusCode::BAD_REQUEST);
        upload("/imports/areas?name=tract", &t.tokens.manager, &body).send(&t).await.problem(StatusCode::BAD_REQUEST);
        let dup = rectangles_geojson(&[("x", "X", [0.0, 0.0, 1.0, 1.0]), ("x", "Y", [1.0, 0.0, 2.0, 1.0])]);
        let p = upload(uri, &t.tokens.manager, &dup).send(&t).await.problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(p["rejected"][0]["location"], "feature 2", "{p}");
        let r = upload(uri, &t.tokens.manager, &body).send(&t).await.expect(StatusCode::OK).json();
        assert_eq!(r["replaced"]["areas"], 4, "{r}");
        let layers = get(&t, "/coverage/rollup/layers").await.expect(StatusCode::OK).json();
        assert_eq!(layers[1]["name"], "quadrants");
        assert_eq!(layers[1]["areas"], 4);
        assert_eq!(layers[1]["source"], "upload.geojson", "no server path in a public list");
        let rows = get(&t, "/coverage/rollup?by=quadrants").await.expect(StatusCode::OK).json();
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.iter().map(|r| r["blocks"].as_u64().unwrap()).sum::<u64>(), s("blocks"));
        assert_eq!(rows.last().unwrap()["group"], Value::Null);
        assert_eq!(rows[0]["name"], "North-east");
        // The same rows as the command line's use case.
        let direct = coverage_rollup(&*t.state.store, "quadrants", 1).unwrap();
        assert_eq!(serde_json::to_value(&direct).unwrap(), Value::Array(rows.clone()));

        let api = get_as(&t, "/api", &t.tokens.viewer).await.expect(StatusCode::OK).json();
        for path in ["/coverage/rollup", "/coverage/rollup/layers", "/coverage/history", "/imports/areas"] {
            assert!(api["paths"][path].is_object(), "{path} missing from /api");
        }
        assert!(api["components"]["schemas"]["RollupRow"].is_object());
    }

    #[tokio::test]
    async fn history_over_http_follows_writes_and_speaks_csv() {
        let t = demo_app().await;
        let now = get(&t, "/coverage").await.json();
        let v = get(&t, "/coverage/history").await.expect(StatusCode::OK).json();
        let last = v.as_array().unwrap().last().unwrap().clone();
        for k in ["blocks", "covered_blocks", "coverage_pct", "residents", "ambassadors"] {
            assert_eq!(last[k], now[k], "{k}");
        }
        // A write after the replay was cached: the next answer includes it.
        let (_, lon, lat) = http_support::uncovered_block(&t);
        let body = json!({"role": "ambassador", "lon": lon, "lat": lat});
        req(Method::POST, "/people").token(&t.tokens.manager).json(&body).send(&t).await.expect(StatusCode::CREATED);
        let csv = get(&t, "/coverage/history?f=csv").await.expect(StatusCode::OK);
        let text = csv.text();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(
            reader.headers().unwrap().iter().collect::<Vec<_>>(),
            ["date", "coverage_pct", "covered_blocks", "blocks", "ambassadors", "residents"]
        );
        let last = reader.records().last().unwrap().unwrap();
        assert_eq!(last[2].parse::<u64>().unwrap(), now["covered_blocks"].as_u64().unwrap() + 1, "{text}");
        let p = get(&t, "/coverage/history?interval=month").await.problem(StatusCode::BAD_REQUEST);
        assert!(p["detail"].as_str().unwrap().contains("day or week"), "{p}");
    }
}
