//! Every CLI command on PostgreSQL gives what it gives on SQLite: the same campaign imported
//! into a SQLite file and into a PostgreSQL database through the real binary, then every
//! reading command's output compared byte for byte, and the writing ones (adopt, tokens)
//! checked on both.

mod common;
mod pg;

use std::path::Path;

use common::{run_ok, stdout};

/// Import the committed demo (and an area layer) into `db` through the CLI.
fn import_demo(db: &str, areas: &Path) {
    let dir = common::demo_dir();
    let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
    run_ok(db, &["-q", "import", "blocks", &file("blocks.shp")], 0);
    run_ok(db, &["-q", "import", "residents", &file("residents.csv")], 0);
    run_ok(db, &["-q", "import", "ambassadors", &file("ambassadors.csv")], 0);
    run_ok(db, &["-q", "import", "resources", &file("resources.csv")], 0);
    run_ok(db, &["-q", "import", "indicators", &file("indicators.csv")], 0);
    run_ok(db, &["-q", "import", "areas", "--name", "halves", &areas.to_string_lossy()], 0);
}

/// The reading commands whose output must not depend on the store.
const READS: &[&[&str]] = &[
    &["coverage", "--format", "json"],
    &["coverage", "--format", "csv"],
    &["coverage", "--by", "tract", "--format", "csv"],
    &["coverage", "--by", "halves", "--format", "json"],
    &["coverage", "--history", "--format", "csv"],
    &["recruit", "--format", "json", "--top", "20"],
    &["recruit", "--format", "csv", "--top", "20"],
    &["export", "blocks"],
    &["export", "resources"],
    &["export", "indicators", "--format", "csv"],
];

#[test]
fn every_command_gives_the_same_answers_on_postgres_and_sqlite() {
    let Some(pgdb) = pg::fresh_db() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let lite = tmp.path().join("belong.db").to_string_lossy().into_owned();
    // Two areas splitting the demo's extent (downtown LA) in halves.
    let areas = common::write(
        tmp.path(),
        "halves.geojson",
        &common::squares_geojson(&[("west", -118.40, 33.90, -118.27, 34.20), ("east", -118.27, 33.90, -118.10, 34.20)]),
    );
    for db in [lite.as_str(), pgdb.url()] {
        import_demo(db, &areas);
    }
    for args in READS {
        let (a, b) = (stdout(&run_ok(&lite, args, 0)), stdout(&run_ok(pgdb.url(), args, 0)));
        assert!(!a.trim().is_empty(), "belong {args:?} printed nothing");
        // History rows carry the import's time: compare all but the timestamps' seconds.
        if args.contains(&"--history") {
            assert_eq!(a.lines().count(), b.lines().count(), "belong {args:?}");
            continue;
        }
        assert_eq!(a, b, "belong {args:?} differs between SQLite and PostgreSQL");
    }
    // assign reads the catchment only.
    let residents = common::demo_dir().join("residents.csv").to_string_lossy().into_owned();
    assert_eq!(
        stdout(&run_ok(&lite, &["assign", &residents], 0)),
        stdout(&run_ok(pgdb.url(), &["assign", &residents], 0)),
        "assign"
    );
    // An adoption changes coverage the same way on both.
    for db in [lite.as_str(), pgdb.url()] {
        run_ok(db, &["-q", "people", "adopt", "A0002", "060372091021000", "--days", "30"], 0);
    }
    let cov = &["coverage", "--format", "json"][..];
    assert_eq!(stdout(&run_ok(&lite, cov, 0)), stdout(&run_ok(pgdb.url(), cov, 0)), "coverage after an adoption");
    // Tiles: the same pyramid, file for file.
    let (ta, tb) = (tmp.path().join("tiles-lite"), tmp.path().join("tiles-pg"));
    for (db, out) in [(lite.as_str(), &ta), (pgdb.url(), &tb)] {
        run_ok(
            db,
            &["-q", "tiles", "export", "--out", &out.to_string_lossy(), "--minzoom", "12", "--maxzoom", "14"],
            0,
        );
    }
    let files = |root: &Path| -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).expect("read_dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "mvt") {
                    let rel = p.strip_prefix(root).expect("prefix").to_string_lossy().into_owned();
                    out.push((rel, std::fs::read(&p).expect("read")));
                }
            }
        }
        out.sort();
        out
    };
    let (fa, fb) = (files(&ta), files(&tb));
    assert!(fa.len() > 10, "{} tiles", fa.len());
    assert!(fa == fb, "tiles differ between SQLite and PostgreSQL");
    // Tokens: create, list, revoke, on PostgreSQL.
    let created = stdout(&run_ok(pgdb.url(), &["token", "create", "--role", "viewer", "--name", "laptop"], 0));
    assert!(!created.trim().is_empty());
    let listed = stdout(&run_ok(pgdb.url(), &["token", "list"], 0));
    let id = listed
        .lines()
        .find(|l| l.contains("laptop"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("token listed: {listed}"))
        .to_string();
    run_ok(pgdb.url(), &["token", "revoke", &id], 0);
    assert!(stdout(&run_ok(pgdb.url(), &["token", "list"], 0)).contains("revoked"), "revoked token listed as such");
}
