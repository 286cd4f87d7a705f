//! The committed demo catchment: reproducible from the generator, loads cleanly, looks real.

mod common;

use common::*;

/// `data/` is exactly what `belong demo generate --out data/ --blocks 500 --seed 1` writes.
#[test]
fn committed_demo_matches_the_generator() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gen");
    run_ok(
        dir.path().join("unused.db"),
        &["demo", "generate", "--out", out.to_str().unwrap(), "--blocks", "500", "--seed", "1"],
        0,
    );
    let mut names: Vec<String> =
        std::fs::read_dir(demo_dir()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    for expected in [
        "blocks.shp",
        "blocks.shx",
        "blocks.dbf",
        "blocks.prj",
        "residents.csv",
        "ambassadors.csv",
        "resources.csv",
        "indicators.csv",
    ] {
        assert!(names.iter().any(|n| n == expected), "data/{expected} missing");
    }
    for name in names {
        let committed = std::fs::read(demo_dir().join(&name)).unwrap();
        let generated = std::fs::read(out.join(&name)).unwrap_or_else(|_| panic!("generator did not write {name}"));
        assert!(committed == generated, "data/{name} differs from the generator's output; regenerate it");
    }
}

#[test]
fn demo_loads_with_about_a_third_covered() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    run_ok(&db, &["demo", "load", "--dir", demo_dir().to_str().unwrap()], 0);
    let cov = coverage(&db);
    let s = &cov["summary"];
    assert_eq!(s["blocks"], 500);
    let pct = s["coverage_pct"].as_f64().unwrap();
    assert!((25.0..=40.0).contains(&pct), "coverage {pct}%");
    assert!(s["residents"].as_u64().unwrap() > 15_000);
    assert!(s["people_outside"].as_u64().unwrap() > 0, "the demo has a few people outside the catchment");
    // Block ids are 15-digit strings with the leading zero.
    for b in cov["blocks"].as_array().unwrap() {
        let id = b["block_id"].as_str().unwrap();
        assert!(id.len() == 15 && id.starts_with("06037"), "{id}");
    }
    // Most blocks have a school-readiness value; the rest are "no data".
    let ind: serde_json::Value = serde_json::from_slice(&run_ok(&db, &["export", "indicators"], 0).stdout).unwrap();
    let feats = ind["features"].as_array().unwrap();
    let no_data = feats.iter().filter(|f| f["properties"]["no_data"] == true).count();
    assert_eq!(feats.len(), 500);
    assert!(no_data > 0 && no_data < 100, "{no_data} blocks without readiness");
    // The catchment surrounds 1910 Magnolia Ave.
    let pts = write(dir.path(), "hq.csv", "id,lon,lat\nhq,-118.2856,34.0409\n");
    let out = stdout(&run_ok(&db, &["assign", pts.to_str().unwrap()], 0));
    let row = out.lines().nth(1).unwrap();
    assert!(row.starts_with("hq,-118.2856,34.0409,06037"), "{row}");
}

#[test]
fn demo_load_twice_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    run_ok(&db, &["demo", "load", "--dir", demo_dir().to_str().unwrap()], 0);
    let first = coverage(&db);
    let out = run_ok(&db, &["demo", "load", "--dir", demo_dir().to_str().unwrap()], 0);
    assert!(stdout(&out).contains("0 added, 0 removed, 0 changed"), "{}", stdout(&out));
    assert_eq!(coverage(&db), first);
}
