//! `belong recruit` and `belong people adopt` against the demo catchment, through the real
//! binary.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{demo_dir, run, run_ok, stderr, stdout, write};
use serde_json::Value;

fn demo_db(dir: &Path) -> PathBuf {
    let db = dir.join("belong.db");
    run_ok(&db, &["demo", "load", "--dir", demo_dir().to_str().unwrap(), "-q"], 0);
    db
}

fn ranked(db: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["recruit", "--format", "json"];
    args.extend_from_slice(extra);
    let out = run_ok(db, &args, 0);
    serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
}

fn ids(rows: &[Value]) -> Vec<&str> {
    rows.iter().map(|r| r["block_id"].as_str().unwrap()).collect()
}

#[test]
fn recruit_ranks_explains_and_takes_weights_from_flags_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let rows = ranked(&db, &[]);
    let coverage = common::coverage(&db);
    let summary = &coverage["summary"];
    assert_eq!(rows.len() as u64, summary["blocks"].as_u64().unwrap() - summary["covered_blocks"].as_u64().unwrap());
    // The command line sees people: candidates and exact distances.
    assert!(rows.iter().any(|r| !r["candidates"].as_array().unwrap().is_empty()));
    assert!(
        rows.iter().flat_map(|r| r["nearest_ambassadors"].as_array().unwrap()).any(|n| n["distance_m"]
            .as_f64()
            .unwrap()
            % 100.0
            != 0.0)
    );

    let top = ranked(&db, &["--top", "5", "--nearest", "1"]);
    assert_eq!(ids(&top), ids(&rows)[..5]);
    assert!(top.iter().all(|r| r["nearest_ambassadors"].as_array().unwrap().len() == 1));

    let flags = ranked(&db, &["--weight", "residents=0", "--weight", "children=0", "--weight", "distance=0"]);
    assert_ne!(ids(&flags), ids(&rows));
    let file = write(dir.path(), "weights.json", r#"{"residents": 0, "children": 0, "distance": 0}"#);
    let from_file = ranked(&db, &["--weights", file.to_str().unwrap()]);
    assert_eq!(ids(&from_file), ids(&flags));
    // Flags apply after the file.
    let both = ranked(
        &db,
        &[
            "--weights",
            file.to_str().unwrap(),
            "--weight",
            "residents=1",
            "--weight",
            "children=0.5",
            "--weight",
            "distance=0.25",
        ],
    );
    assert_eq!(ids(&both), ids(&rows));

    let table = stdout(&run_ok(&db, &["recruit", "--top", "3"], 0));
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(table.lines().next().unwrap().contains("priority"), "{table}");
}

#[test]
fn recruit_refuses_bad_options_precisely() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let not_json = write(dir.path(), "w.json", "residents = 2");
    let unknown = write(dir.path(), "u.json", r#"{"residents": 1, "peple": 2}"#);
    for (args, code, needle) in [
        (vec!["--weight", "people=1"], 1, "unknown weight 'people'"),
        (vec!["--weight", "need=-0.5"], 1, "weight 'need' = -0.5"),
        (vec!["--weight", "need"], 1, "expected NAME=VALUE"),
        (vec!["--weights", not_json.to_str().unwrap()], 1, "not a JSON object of weights"),
        (vec!["--weights", unknown.to_str().unwrap()], 1, "unknown weight 'peple'"),
        (vec!["--indicator", "readyness"], 1, "unknown indicator 'readyness'"),
        (vec!["--distance-cap", "0"], 1, "distance_cap=0"),
        (vec!["--nearest", "0"], 2, "--nearest"),
        (vec!["--nearest", "51"], 2, "--nearest"),
        (vec!["--top", "0"], 2, "--top"),
    ] {
        let mut all = vec!["recruit"];
        all.extend(&args);
        let out = run(&db, &all);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn the_walk_list_is_a_csv_with_one_line_per_candidate() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let rows = ranked(&db, &[]);
    let out = run_ok(&db, &["recruit", "--format", "csv"], 0);
    let text = String::from_utf8(out.stdout).unwrap();
    let mut reader = csv::Reader::from_reader(text.strip_prefix('\u{feff}').unwrap().as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header[..7], ["rank", "block_id", "block_name", "priority", "residents", "ambassadors", "candidate_id"]);
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let expected: usize = rows.iter().map(|r| r["candidates"].as_array().unwrap().len().max(1)).sum();
    assert_eq!(records.len(), expected);
    let first = &rows[0]["candidates"][0];
    assert_eq!(&records[0][6], first["id"].as_str().unwrap());
    assert_eq!(&records[0][7], first["name"].as_str().unwrap());
}

#[test]
fn people_adopt_covers_a_block_until_it_lapses() {
    let dir = tempfile::tempdir().unwrap();
    let db = demo_db(dir.path());
    let block = ids(&ranked(&db, &["--top", "1"]))[0].to_string();
    let out = run_ok(&db, &["people", "adopt", "A0002", &block, "--days", "30"], 0);
    assert!(stdout(&out).contains(&format!("A0002 adopts block {block} until ")), "{}", stdout(&out));
    assert!(!ids(&ranked(&db, &[])).contains(&block.as_str()));

    let out = run(&db, &["people", "adopt", "A0002", &block, "--until", "2001-01-01"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("until: must be in the future"), "{}", stderr(&out));
    let out = run(&db, &["people", "adopt", "A0002", &block[1..]]);
    assert!(stderr(&out).contains("did you mean"), "{}", stderr(&out));
    let out = run(&db, &["people", "adopt", "A0002", &block, "--until", "2099-01-01", "--days", "3"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run(&db, &["people", "adopt", "R000001", &block]);
    assert!(stderr(&out).contains("only ambassadors"), "{}", stderr(&out));
}
