//! `belong db copy`: a whole campaign moved SQLite → PostgreSQL → SQLite (and same-kind) through
//! the real binary, then compared table by table through the store API with the original;
//! refusals (non-empty destination, the same database twice), passwords never shown, and all
//! or nothing (an error mid-restore, or a `kill -9` mid-copy, leaves the destination empty).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;
mod pg;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use belong::core::{Person, Role};
use belong::store::{DbTarget, DumpBatch, PeopleFilter, SqliteStore, Store, StoreError};
use common::*;

// ---------------------------------------------------------------------------------------------
// The campaign

/// The demo catchment plus what it lacks: an area layer, an adoption with an expiry, a deleted
/// person, and two tokens of which one is revoked.
fn campaign(dir: &Path) -> PathBuf {
    let db = dir.join("campaign.db");
    run_ok(&db, &["-q", "demo", "load", "--dir", demo_dir().to_str().unwrap()], 0);
    let store = SqliteStore::open(&db).unwrap();
    // Two areas splitting the catchment's extent in half, west and east.
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for b in store.blocks().unwrap() {
        use geo::BoundingRect;
        let r = b.geometry.bounding_rect().unwrap();
        (x0, y0, x1, y1) = (x0.min(r.min().x), y0.min(r.min().y), x1.max(r.max().x), y1.max(r.max().y));
    }
    let mid = (x0 + x1) / 2.0;
    let areas = write(dir, "hoods.geojson", &squares_geojson(&[("west", x0, y0, mid, y1), ("east", mid, y0, x1, y1)]));
    run_ok(&db, &["-q", "import", "areas", areas.to_str().unwrap(), "--name", "hoods"], 0);
    // An adoption that lapses in 2100, of a block other than the ambassador's home.
    let ambassador = store
        .people(&PeopleFilter { role: Some(Role::Ambassador), ..Default::default() })
        .unwrap()
        .into_iter()
        .find(|p| p.active && p.home_block.is_some())
        .unwrap();
    let other = store.block_ids().unwrap().into_iter().find(|b| Some(b) != ambassador.home_block.as_ref()).unwrap();
    run_ok(&db, &["people", "adopt", &ambassador.id, &other, "--until", "2100-01-01"], 0);
    let resident = store.people(&PeopleFilter { role: Some(Role::Resident), ..Default::default() }).unwrap();
    assert!(store.delete_person(&resident[7].id).unwrap());
    run_ok(&db, &["token", "create", "--role", "viewer", "--name", "old laptop"], 0);
    run_ok(&db, &["token", "create", "--role", "manager", "--name", "Ana"], 0);
    run_ok(&db, &["token", "revoke", "1"], 0);
    db
}

fn open(target: &str) -> std::sync::Arc<dyn Store> {
    belong::store::open(&target.parse::<DbTarget>().unwrap()).unwrap()
}

fn copy(from: &str, to: &str) -> std::process::Output {
    run_ok("unused.db", &["db", "copy", "--from", from, "--to", to], 0)
}

// ---------------------------------------------------------------------------------------------
// Comparison

/// Every row `dump` yields, attributes normalised (PostgreSQL's jsonb prints `{"a": 1}` where
/// SQLite keeps `{"a":1}`; the values are the same).
fn dumped(store: &dyn Store) -> Vec<DumpBatch> {
    let norm = |text: &mut String| {
        *text = serde_json::from_str::<serde_json::Value>(text).unwrap().to_string();
    };
    let mut out = Vec::new();
    store
        .dump(&mut |mut batch| {
            match &mut batch {
                DumpBatch::Blocks(rows) => rows.iter_mut().for_each(|r| norm(&mut r.attributes)),
                DumpBatch::Areas(rows) => rows.iter_mut().for_each(|r| norm(&mut r.area.attributes)),
                DumpBatch::Resources(rows) => rows.iter_mut().for_each(|r| norm(&mut r.attributes)),
                _ => {}
            }
            out.push(batch);
            Ok(())
        })
        .unwrap();
    out
}

/// The first index where two lists differ, for a readable failure.
fn same_list<T: PartialEq + std::fmt::Debug>(label: &str, a: &[T], b: &[T]) {
    if let Some(i) = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i)) {
        panic!(
            "{label}: {} vs {} rows; first difference at {i}:\n  {:?}\n  {:?}",
            a.len(),
            b.len(),
            a.get(i),
            b.get(i)
        );
    }
}

/// `b` holds exactly what `a` holds, seen through every reading of the store API.
fn assert_same(a: &dyn Store, b: &dyn Store) {
    same_list("blocks", &a.blocks().unwrap(), &b.blocks().unwrap());
    let everyone = PeopleFilter::default();
    same_list("people", &a.people(&everyone).unwrap(), &b.people(&everyone).unwrap());
    same_list("resources", &a.resources().unwrap(), &b.resources().unwrap());
    same_list("indicators", &a.indicators().unwrap(), &b.indicators().unwrap());
    same_list("tokens", &a.tokens().unwrap(), &b.tokens().unwrap());
    let layers = a.area_layers().unwrap();
    assert_eq!(layers, b.area_layers().unwrap(), "area layers");
    assert!(!layers.is_empty());
    for l in &layers {
        same_list(&format!("areas of {}", l.name), &a.areas(&l.name).unwrap(), &b.areas(&l.name).unwrap());
        assert_eq!(a.areas_version(&l.name).unwrap(), b.areas_version(&l.name).unwrap(), "areas_version");
    }
    same_list("history", &a.history_events(0, usize::MAX).unwrap(), &b.history_events(0, usize::MAX).unwrap());
    assert_eq!(a.history_len().unwrap(), b.history_len().unwrap());
    assert_eq!(a.last_change().unwrap(), b.last_change().unwrap(), "last_change");
    assert_eq!(a.catchment_version().unwrap(), b.catchment_version().unwrap(), "catchment_version");
    assert_eq!(a.table_counts().unwrap(), b.table_counts().unwrap(), "table counts");
    // Coverage (adoptions and their expiry included) at two instants, and the next expiry.
    for at in ["2050-01-01T00:00:00Z", "2100-01-01T00:00:01Z"] {
        let at = belong::core::person::parse_until(at).unwrap();
        assert_eq!(a.coverage_counts_at(at).unwrap(), b.coverage_counts_at(at).unwrap(), "coverage at {at}");
    }
    let at = belong::core::person::parse_until("2050-01-01T00:00:00Z").unwrap();
    assert_eq!(a.next_adoption_expiry(at).unwrap(), b.next_adoption_expiry(at).unwrap());
    // Page counts come from the derived `people_counts` table on SQLite: right after a restore.
    for role in [None, Some(Role::Resident), Some(Role::Ambassador)] {
        for interested in [None, Some(true), Some(false)] {
            let f = PeopleFilter { role, interested, block_id: None };
            assert_eq!(a.people_page(&f, 0, 1).unwrap().1, b.people_page(&f, 0, 1).unwrap().1, "{f:?}");
        }
    }
    // Every stored column (created_at, updated_at, token hashes...), verbatim.
    let (da, db) = (dumped(a), dumped(b));
    assert_eq!(da.len(), db.len(), "dump batches");
    for (x, y) in da.iter().zip(&db) {
        assert!(x == y, "dumped {} rows differ", x.table());
    }
}

/// A write after the copy continues the history and the token ids where the original ended.
fn assert_writes_continue(store: &dyn Store) {
    let last = store.last_change().unwrap();
    let tokens = store.tokens().unwrap();
    let newcomer = Person {
        id: "after-the-copy".into(),
        role: Role::Resident,
        lon: -118.28,
        lat: 34.05,
        name: None,
        phone: None,
        email: None,
        interested: true,
        active: true,
        adopted_block: None,
        adopted_until: None,
        home_block: None,
    };
    store.insert_person(&newcomer, "test").unwrap();
    let events = store.history_events(last, 10).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].seq, events[0].entity_id.as_str()), (last + 1, "after-the-copy"));
    assert_eq!(store.last_change().unwrap(), last + 1);
    let id = store.create_token("f".repeat(64).as_str(), belong::core::AccessRole::Viewer, None).unwrap();
    assert_eq!(id, tokens.iter().map(|t| t.id).max().unwrap() + 1);
    // The derived counts follow the write.
    let f = PeopleFilter { role: Some(Role::Resident), interested: Some(true), block_id: None };
    let listed = store.people(&f).unwrap().len() as u64;
    assert_eq!(store.people_page(&f, 0, 1).unwrap().1, listed);
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn sqlite_to_sqlite_is_exact_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let original = campaign(dir.path());
    let copy_path = dir.path().join("copy.db");
    let out = copy(original.to_str().unwrap(), copy_path.to_str().unwrap());
    let table = stdout(&out);
    for line in ["blocks", "areas in layer hoods", "version of layer hoods", "residents", "ambassadors", "tokens"] {
        assert!(table.lines().any(|l| l.starts_with(line) && l.ends_with(" ok")), "{line} in\n{table}");
    }
    assert!(!table.contains("MISMATCH"), "{table}");
    let (a, b) = (open(original.to_str().unwrap()), open(copy_path.to_str().unwrap()));
    assert_same(&*a, &*b);
    assert_writes_continue(&*b);
}

#[test]
fn sqlite_to_postgres_and_back_is_exact() {
    let Some(pg) = pg::fresh_db() else { return };
    let dir = tempfile::tempdir().unwrap();
    let original = campaign(dir.path());
    let back = dir.path().join("back.db");
    let out = copy(original.to_str().unwrap(), pg.url());
    assert!(stdout(&out).contains("history rows"), "{}", stdout(&out));
    copy(pg.url(), back.to_str().unwrap());
    let (a, p, b) = (open(original.to_str().unwrap()), open(pg.url()), open(back.to_str().unwrap()));
    assert_same(&*a, &*p);
    assert_same(&*a, &*b);
    // PostgreSQL → PostgreSQL too.
    let Some(pg2) = pg::fresh_db() else { return };
    copy(pg.url(), pg2.url());
    assert_same(&*a, &*open(pg2.url()));
    // setval moved the sequences: the next history row and token follow the copied ones.
    assert_writes_continue(&*p);
    assert_writes_continue(&*b);
}

#[test]
fn a_destination_with_data_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let original = campaign(dir.path());
    let target = dir.path().join("busy.db");
    run_ok(&target, &["-q", "import", "blocks", two_blocks(dir.path()).to_str().unwrap()], 0);
    let before = open(target.to_str().unwrap()).table_counts().unwrap();
    let out =
        run_ok("unused.db", &["db", "copy", "--from", original.to_str().unwrap(), "--to", target.to_str().unwrap()], 1);
    let err = stderr(&out);
    assert!(err.contains("not empty") && err.contains("2 blocks") && err.contains("busy.db"), "{err}");
    assert_eq!(open(target.to_str().unwrap()).table_counts().unwrap(), before);
    // The same database on both sides is refused before anything is opened.
    let out = run_ok(
        "unused.db",
        &["db", "copy", "--from", original.to_str().unwrap(), "--to", original.to_str().unwrap()],
        1,
    );
    assert!(stderr(&out).contains("same database"), "{}", stderr(&out));

    let Some(pg) = pg::fresh_db() else { return };
    run_ok(pg.url(), &["token", "create", "--role", "viewer"], 0);
    let out = run_ok("unused.db", &["db", "copy", "--from", original.to_str().unwrap(), "--to", pg.url()], 1);
    let err = stderr(&out);
    assert!(err.contains("not empty") && err.contains("1 tokens"), "{err}");
    assert_eq!(open(pg.url()).tokens().unwrap().len(), 1);
}

#[test]
fn a_bad_source_url_is_reported_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("never.db");
    for url in ["postgres://ana:s3cret@127.0.0.1:1/belong", "postgres://ana:s3cret@127.0.0.1:notaport/belong"] {
        let out = run_ok("unused.db", &["db", "copy", "--from", url, "--to", target.to_str().unwrap()], 1);
        let err = stderr(&out);
        assert!(err.contains("source") && err.contains("ana:***@127.0.0.1"), "{err}");
        assert!(!err.contains("s3cret") && !stdout(&out).contains("s3cret"), "{err}");
        // The source is opened first: nothing was created on the destination's side.
        assert!(!target.exists());
    }
    // Nor in the help, when the URL comes from the environment.
    let out = belong("unused.db")
        .args(["db", "copy", "--help"])
        .env("BELONG_COPY_FROM", "postgres://ana:s3cret@h/db")
        .output()
        .unwrap();
    let help = stdout(&out);
    assert!(help.contains("--from") && help.contains("empty") && !help.contains("s3cret"), "{help}");
}

/// Feed `destination.restore` the first `keep` batches of `source`'s dump, then an error.
fn restore_then_fail(source: &dyn Store, destination: &dyn Store, keep: usize) -> StoreError {
    let mut batches = Vec::new();
    source
        .dump(&mut |b| {
            if batches.len() < keep {
                batches.push(b);
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(batches.len(), keep, "the fixture has enough batches");
    let mut batches = batches.into_iter();
    destination
        .restore(&mut || match batches.next() {
            Some(b) => Ok(Some(b)),
            None => Err(StoreError::Unavailable("the source went away".into())),
        })
        .unwrap_err()
}

#[test]
fn an_error_mid_restore_leaves_the_destination_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = campaign(dir.path());
    let original = open(path.to_str().unwrap());
    let mut targets = vec![dir.path().join("half.db").to_str().unwrap().to_string()];
    let pg = pg::fresh_db();
    if let Some(pg) = &pg {
        targets.push(pg.url().to_string());
    }
    for target in targets {
        let destination = open(&target);
        // Blocks, the layer, areas and a few batches of people, then the failure.
        let err = restore_then_fail(&*original, &*destination, 6);
        assert!(err.to_string().contains("went away"), "{err}");
        let counts = destination.table_counts().unwrap();
        assert!(counts.is_empty(), "{target} holds {}", counts.holdings());
        assert_eq!(destination.last_change().unwrap(), 0);
        // Still usable, and still a valid destination.
        destination.restore(&mut || Ok(None)).unwrap();
        let out = copy(path.to_str().unwrap(), &target);
        assert!(!stdout(&out).contains("MISMATCH"));
    }
}

#[test]
fn a_copy_killed_mid_way_leaves_postgres_as_it_was() {
    let Some(pg) = pg::fresh_db() else { return };
    let dir = tempfile::tempdir().unwrap();
    // Big enough that the copy is still writing people when it is killed.
    let source_path = dir.path().join("big.db");
    let source = SqliteStore::open(&source_path).unwrap();
    let people: Vec<Person> = (0..150_000)
        .map(|i| Person {
            id: format!("p{i:06}"),
            role: Role::Resident,
            lon: -118.28,
            lat: 34.05,
            name: Some(format!("Person {i}")),
            phone: None,
            email: None,
            interested: i % 3 == 0,
            active: true,
            adopted_block: None,
            adopted_until: None,
            home_block: None,
        })
        .collect();
    source.upsert_people(&people, "test").unwrap();
    drop(source);
    let admin = std::env::var("BELONG_TEST_PG").unwrap();
    let mut watcher = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
    let db_name = pg.url().rsplit('/').next().unwrap().to_string();
    drop(open(pg.url())); // schema created, so the copy starts writing at once
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("belong"))
        .args(["db", "copy", "--from", source_path.to_str().unwrap(), "--to", pg.url()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let copying: i64 = watcher
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'COPY belong_private.people%'",
                &[&db_name],
            )
            .unwrap()
            .get(0);
        if copying > 0 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the copy ended before it wrote people");
        assert!(Instant::now() < deadline, "the copy never started writing people");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(child.try_wait().unwrap().is_none(), "the copy ended before it could be killed");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let destination = open(pg.url());
    let counts = destination.table_counts().unwrap();
    assert!(counts.is_empty(), "a killed copy left {}", counts.holdings());
    // As it was: a fresh copy goes through.
    let out = copy(source_path.to_str().unwrap(), pg.url());
    assert!(!stdout(&out).contains("MISMATCH"), "{}", stdout(&out));
    assert_eq!(destination.table_counts().unwrap().residents, 150_000);
}
