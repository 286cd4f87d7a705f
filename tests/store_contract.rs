//! The storage contract, written once against `&dyn Store` and run against every store: the
//! SQLite file store, the in-memory SQLite store, and (next) PostgreSQL. The checks are about
//! behaviour a caller can see, never about how a store keeps its rows.

mod pg;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use belong::core::coverage::BlockCounts;
use belong::core::person::{Counted, parse_until, until_text};
use belong::core::{AccessRole, Attributes, Block, Person, Role};
use belong::store::{PeopleFilter, Reassignment, SqliteStore, Store, StoreError, Upserted};
use chrono::{DateTime, Duration, TimeZone, Utc};
use geo::{MultiPolygon, polygon};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A history row without its seq and time (which differ between stores).
type HistoryKey = (String, String, String, Option<Role>, Option<String>, Option<bool>, Option<String>);

/// Every history row of `store` whose entity `keep` accepts, without its `seq` and timestamp
/// (what two stores fed the same writes must agree on).
fn history_keys(store: &dyn Store, keep: impl Fn(&str) -> bool) -> Vec<HistoryKey> {
    store
        .history_events(0, usize::MAX)
        .expect("history")
        .into_iter()
        .filter(|e| keep(&e.entity))
        .map(|e| (e.entity, e.entity_id, e.action, e.role, e.block_id, e.active, e.detail))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Fixtures

fn block(id: &str, x: f64) -> Block {
    let p = polygon![(x: x, y: 0.0), (x: x + 1.0, y: 0.0), (x: x + 1.0, y: 1.0), (x: x, y: 1.0), (x: x, y: 0.0)];
    Block {
        id: id.into(),
        name: Some(format!("Block {id}")),
        geometry: MultiPolygon(vec![p]),
        attributes: Attributes::new(),
    }
}

fn blocks(n: usize) -> Vec<Block> {
    (0..n).map(|i| block(&format!("b{i:02}"), i as f64)).collect()
}

fn resident(id: &str, home: Option<&str>) -> Person {
    Person {
        id: id.into(),
        role: Role::Resident,
        lon: 0.5,
        lat: 0.5,
        name: Some(format!("Person {id}")),
        phone: None,
        email: None,
        interested: false,
        active: true,
        adopted_block: None,
        adopted_until: None,
        home_block: home.map(str::to_string),
    }
}

fn ambassador(id: &str, home: Option<&str>, adopted: Option<&str>, until: Option<&str>) -> Person {
    Person {
        role: Role::Ambassador,
        adopted_block: adopted.map(str::to_string),
        adopted_until: until.map(|t| parse_until(t).expect("an RFC 3339 expiry")),
        ..resident(id, home)
    }
}

fn filter(role: Option<Role>, block_id: Option<&str>, interested: Option<bool>) -> PeopleFilter {
    PeopleFilter { role, block_id: block_id.map(str::to_string), interested }
}

fn ids(people: &[Person]) -> Vec<&str> {
    people.iter().map(|p| p.id.as_str()).collect()
}

/// Every history row's seq, in the order the store gives them.
fn all_seqs(store: &dyn Store) -> Vec<i64> {
    store.history_events(0, usize::MAX).expect("history").iter().map(|e| e.seq).collect()
}

/// What `numberMatched` must be for `f`, from the full listing (the slow, obviously right way).
fn expected_count(store: &dyn Store, f: &PeopleFilter) -> u64 {
    let all = store.people(&PeopleFilter::default()).expect("people");
    all.iter()
        .filter(|p| f.role.is_none_or(|r| p.role == r))
        .filter(|p| f.interested.is_none_or(|i| p.interested == i))
        .filter(|p| {
            f.block_id
                .as_deref()
                .is_none_or(|b| p.home_block.as_deref() == Some(b) || p.adopted_block.as_deref() == Some(b))
        })
        .count() as u64
}

/// Every filter combination over the given blocks.
fn all_filters(block_ids: &[&str]) -> Vec<PeopleFilter> {
    let mut out = Vec::new();
    for role in [None, Some(Role::Resident), Some(Role::Ambassador)] {
        for interested in [None, Some(false), Some(true)] {
            out.push(filter(role, None, interested));
            for b in block_ids {
                out.push(filter(role, Some(b), interested));
            }
        }
    }
    out
}

/// `people_page`'s `numberMatched` equals the number of matching people, for every filter.
fn assert_counts_exact(store: &dyn Store, block_ids: &[&str]) {
    for f in all_filters(block_ids) {
        let (page, matched) = store.people_page(&f, 0, 2).expect("people_page");
        assert_eq!(matched, expected_count(store, &f), "numberMatched for {f:?}");
        assert!(page.len() as u64 <= matched.min(2), "page for {f:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The contract

fn contract_blocks(store: &dyn Store) {
    assert!(store.blocks().expect("blocks").is_empty());
    let first = blocks(3);
    let report = store.replace_blocks(&first, &[], &[], "first").expect("replace");
    assert_eq!((report.blocks, report.added, report.removed, report.changed), (3, 3, 0, 0));
    assert_eq!(store.blocks().expect("blocks"), first);
    assert_eq!(store.block_ids().expect("ids"), ["b00", "b01", "b02"]);
    let version = store.catchment_version().expect("version");

    // b00 kept as is, b01 renamed, b02 gone, b03 new; one person moves, one already there.
    store.upsert_people(&[resident("p1", Some("b02")), resident("p2", Some("b00"))], "people").expect("people");
    let mut second = vec![first[0].clone(), Block { name: Some("Renamed".into()), ..first[1].clone() }];
    second.push(block("b03", 3.0));
    let moves = [
        Reassignment { id: "p1".into(), block_id: Some("b03".into()) },
        Reassignment { id: "p2".into(), block_id: Some("b00".into()) },
    ];
    let report = store.replace_blocks(&second, &moves, &[], "second").expect("replace");
    assert_eq!(
        (report.blocks, report.added, report.removed, report.changed, report.people_reassigned),
        (3, 1, 1, 1, 1)
    );
    assert_eq!(store.blocks().expect("blocks"), second);
    assert_eq!(store.block_ids().expect("ids"), ["b00", "b01", "b03"]);
    assert_eq!(store.person("p1").expect("p1").and_then(|p| p.home_block).as_deref(), Some("b03"));
    assert_ne!(store.catchment_version().expect("version"), version, "a block import moves the version");
}

fn contract_people(store: &dyn Store) {
    store.replace_blocks(&blocks(3), &[], &[], "blocks").expect("blocks");
    let ana = Person { interested: true, ..resident("ana", Some("b00")) };
    store.insert_person(&ana, "api").expect("insert");
    assert_eq!(store.person("ana").expect("person"), Some(ana.clone()));

    // A second insert of the same id is refused and changes nothing, not even the history.
    let head = store.last_change().expect("head");
    let other = Person { name: Some("Someone else".into()), ..resident("ana", Some("b01")) };
    match store.insert_person(&other, "api") {
        Err(StoreError::Conflict { what: "person", id }) => assert_eq!(id, "ana"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.person("ana").expect("person"), Some(ana.clone()));
    assert_eq!(store.last_change().expect("head"), head);

    // Upsert: one new, one changed, one identical.
    let bo = ambassador("bo", Some("b01"), Some("b02"), None);
    let ana2 = Person { phone: Some("555".into()), ..ana.clone() };
    let report = store.upsert_people(&[bo.clone(), ana2.clone()], "csv").expect("upsert");
    assert_eq!(report, Upserted { inserted: 1, updated: 1, unchanged: 0 });
    let report = store.upsert_people(&[bo.clone(), ana2.clone()], "csv").expect("upsert");
    assert_eq!(report, Upserted { inserted: 0, updated: 0, unchanged: 2 });
    assert_eq!(store.person("ana").expect("person"), Some(ana2.clone()));

    let cy = Person { interested: true, ..ambassador("cy", None, None, None) };
    store.insert_person(&cy, "api").expect("insert");

    // Filters, in id order.
    let list = |f: PeopleFilter| store.people(&f).expect("people");
    assert_eq!(ids(&list(PeopleFilter::default())), ["ana", "bo", "cy"]);
    assert_eq!(ids(&list(filter(Some(Role::Ambassador), None, None))), ["bo", "cy"]);
    assert_eq!(ids(&list(filter(None, Some("b02"), None))), ["bo"], "adopted block matches");
    assert_eq!(ids(&list(filter(None, Some("b01"), None))), ["bo"], "home block matches");
    assert_eq!(ids(&list(filter(None, None, Some(true)))), ["ana", "cy"]);
    assert_eq!(ids(&list(filter(Some(Role::Resident), Some("b00"), Some(true)))), ["ana"]);
    assert!(list(filter(Some(Role::Resident), Some("b02"), None)).is_empty());

    // Pages: the window of the id order, and how many match in all.
    let (page, n) = store.people_page(&PeopleFilter::default(), 1, 1).expect("page");
    assert_eq!((ids(&page), n), (vec!["bo"], 3));
    let (page, n) = store.people_page(&filter(Some(Role::Ambassador), None, None), 0, 5).expect("page");
    assert_eq!((ids(&page), n), (vec!["bo", "cy"], 2));
    let (page, n) = store.people_page(&PeopleFilter::default(), 10, 5).expect("page");
    assert_eq!((page.len(), n), (0, 3), "past the end: no rows, still the full count");
    let (page, n) = store.people_page(&filter(None, Some("b02"), None), 0, 0).expect("page");
    assert_eq!((page.len(), n), (0, 1));
    assert_counts_exact(store, &["b00", "b01", "b02"]);

    let located = store.people_locations().expect("locations");
    assert_eq!(located.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(), ["ana", "bo", "cy"]);

    assert!(store.delete_person("bo").expect("delete"));
    assert!(!store.delete_person("bo").expect("delete again"));
    assert_eq!(store.person("bo").expect("person"), None);
    assert_eq!(ids(&list(PeopleFilter::default())), ["ana", "cy"]);
    assert_counts_exact(store, &["b00", "b01", "b02"]);
}

fn contract_history_cursor(store: &dyn Store) {
    assert_eq!(store.last_change().expect("head"), 0);
    assert_eq!(store.history_len().expect("len"), 0);
    let mut heads = vec![0];
    let mut grew = |store: &dyn Store, what: &str| {
        let head = store.last_change().expect("head");
        assert!(head > *heads.last().unwrap_or(&0), "{what} must move the cursor");
        heads.push(head);
    };
    store.replace_blocks(&blocks(3), &[], &[], "blocks").expect("blocks");
    grew(store, "replace_blocks");
    store.insert_person(&resident("r1", Some("b00")), "api").expect("insert");
    grew(store, "insert_person");
    let amb = ambassador("a1", Some("b00"), Some("b01"), None);
    let people: Vec<Person> = (0..20).map(|i| resident(&format!("r{i:02}"), Some("b02"))).chain([amb]).collect();
    store.upsert_people(&people, "csv").expect("upsert");
    grew(store, "upsert_people");
    store.upsert_people(&[Person { active: false, ..people[20].clone() }], "csv").expect("update");
    grew(store, "an update");
    assert!(store.delete_person("r00").expect("delete"));
    grew(store, "delete_person");

    let seqs = all_seqs(store);
    assert_eq!(seqs.len() as u64, store.history_len().expect("len"));
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq order");
    assert_eq!(seqs.last().copied(), Some(store.last_change().expect("head")));

    // After any cursor: exactly the rows after it, in order.
    for &after in &heads {
        let rows: Vec<i64> = store.history_events(after, usize::MAX).expect("after").iter().map(|e| e.seq).collect();
        let expected: Vec<i64> = seqs.iter().copied().filter(|&s| s > after).collect();
        assert_eq!(rows, expected, "after {after}");
    }
    // In batches: together every row once, and each call says how many it visited.
    for limit in [1, 3, 7] {
        let (mut cursor, mut seen) = (0, Vec::new());
        loop {
            let mut batch = Vec::new();
            let n = store.visit_history(cursor, limit, &mut |row| batch.push(row.seq)).expect("visit");
            assert_eq!(n, batch.len());
            assert!(n <= limit);
            let Some(&last) = batch.last() else { break };
            seen.extend(batch);
            cursor = last;
        }
        assert_eq!(seen, seqs, "batches of {limit}");
    }

    // A person row says role, the block counted for, and whether active.
    let events = store.history_events(0, usize::MAX).expect("events");
    let rows_for = |id: &str| events.iter().filter(|e| e.entity == "person" && e.entity_id == id).collect::<Vec<_>>();
    let a1 = rows_for("a1");
    assert_eq!(a1.len(), 2);
    assert_eq!(
        (a1[0].action.as_str(), a1[0].role, a1[0].block_id.as_deref(), a1[0].active),
        ("insert", Some(Role::Ambassador), Some("b01"), Some(true))
    );
    assert_eq!((a1[1].action.as_str(), a1[1].active), ("update", Some(false)));
    let detail: serde_json::Value = serde_json::from_str(a1[0].detail.as_deref().expect("detail")).expect("json");
    assert_eq!(detail["adopted_block"], "b01");
    assert_eq!(detail["home_block"], "b00");
    let r00 = rows_for("r00");
    assert_eq!(
        r00.iter().map(|e| (e.action.as_str(), e.role, e.block_id.as_deref(), e.active)).collect::<Vec<_>>(),
        [
            ("insert", Some(Role::Resident), Some("b02"), Some(true)),
            ("delete", Some(Role::Resident), Some("b02"), Some(false))
        ]
    );
    assert!(events.iter().any(|e| e.entity == "import" && e.entity_id == "blocks"));
    assert!(events.iter().any(|e| e.entity == "block" && e.entity_id == "b02" && e.action == "insert"));
}

fn contract_coverage_state(store: &dyn Store) {
    store.replace_blocks(&blocks(4), &[], &[], "blocks").expect("blocks");
    let until = "2030-01-01T00:00:00Z";
    let people = [
        resident("r1", Some("b00")),
        resident("r2", None),
        ambassador("a1", Some("b01"), Some("b02"), Some(until)),
        Person { active: false, ..ambassador("a2", Some("b03"), None, None) },
    ];
    store.upsert_people(&people, "csv").expect("upsert");
    type Row = (String, Role, bool, Option<String>, Option<String>, Option<String>);
    let (mut seen_blocks, mut seen_people): (Vec<String>, Vec<Row>) = (Vec::new(), Vec::new());
    let cursor = store
        .coverage_state(&mut |b| seen_blocks.push(b.to_string()), &mut |row| {
            seen_people.push((
                row.id.to_string(),
                row.role,
                row.active,
                row.home_block.map(str::to_string),
                row.adopted_block.map(str::to_string),
                row.adopted_until.map(str::to_string),
            ));
        })
        .expect("state");
    assert_eq!(cursor, store.last_change().expect("head"));
    seen_blocks.sort();
    assert_eq!(seen_blocks, ["b00", "b01", "b02", "b03"]);
    seen_people.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want: Vec<Row> = people
        .iter()
        .map(|p| {
            (
                p.id.clone(),
                p.role,
                p.active,
                p.home_block.clone(),
                p.adopted_block.clone(),
                p.adopted_until.map(until_text),
            )
        })
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(seen_people, want, "every person once, with what the rule reads");

    // A write moves both the cursor and the state together.
    store.insert_person(&resident("r3", Some("b03")), "api").expect("insert");
    let mut n = 0;
    let cursor2 = store.coverage_state(&mut |_| {}, &mut |_| n += 1).expect("state");
    assert_eq!((cursor2, n), (store.last_change().expect("head"), 5));
    assert!(cursor2 > cursor);
}

/// The SQL mirror of the coverage rule equals the rule in `core`, over a few hundred random
/// people: residents and ambassadors, active or not, adoptions with and without expiry before
/// and after `now`, and adoptions of blocks that do not exist.
fn contract_coverage_counts(store: &dyn Store) {
    let catchment = blocks(20);
    store.replace_blocks(&catchment, &[], &[], "blocks").expect("blocks");
    let now: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).single().expect("now");
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // b20..b24 are adopted but not in the catchment.
    let any_block = |rng: &mut ChaCha8Rng| format!("b{:02}", rng.random_range(0..25));
    let mut people = Vec::new();
    for i in 0..400 {
        let home = if rng.random_bool(0.1) { None } else { Some(format!("b{:02}", rng.random_range(0..20))) };
        let role = if rng.random_bool(0.5) { Role::Resident } else { Role::Ambassador };
        let adopted = rng.random_bool(0.6).then(|| any_block(&mut rng));
        let until = match rng.random_range(0..5) {
            0 => None,
            1 => Some(now), // the instant itself: lapsed
            k => Some(now + Duration::seconds(rng.random_range(-3 * 86_400..3 * 86_400) * (k - 1))),
        };
        people.push(Person {
            role,
            active: rng.random_bool(0.8),
            interested: rng.random_bool(0.3),
            adopted_block: adopted,
            adopted_until: until,
            ..resident(&format!("p{i:03}"), home.as_deref())
        });
    }
    store.upsert_people(&people, "random").expect("upsert");

    let exists: HashSet<&str> = catchment.iter().map(|b| b.id.as_str()).collect();
    for at in [now, now + Duration::milliseconds(500), now - Duration::days(2), now + Duration::days(4)] {
        let mut expected: HashMap<String, BlockCounts> = HashMap::new();
        for p in &people {
            match p.counted(at, |b| exists.contains(b)) {
                Counted::Nothing => {}
                Counted::Resident(b) => expected.entry(b.to_string()).or_default().residents += 1,
                Counted::Ambassador(b) => expected.entry(b.to_string()).or_default().ambassadors += 1,
            }
        }
        let outside = people.iter().filter(|p| p.home_block.is_none()).count() as u64;
        let (mut counts, got_outside) = store.coverage_counts_at(at).expect("counts");
        counts.retain(|_, c| *c != BlockCounts::default());
        assert_eq!(counts, expected, "coverage counts at {at}");
        assert_eq!(got_outside, outside, "people outside at {at}");
    }

    // The next expiry after an instant: the earliest adoption end strictly later.
    let ends: Vec<DateTime<Utc>> =
        people.iter().filter(|p| p.adopted_block.is_some()).filter_map(|p| p.adopted_until).collect();
    for after in [now, now - Duration::days(10), now + Duration::days(10)] {
        let want = ends.iter().copied().filter(|&t| t > after).min();
        assert_eq!(store.next_adoption_expiry(after).expect("next"), want, "next expiry after {after}");
    }
}

fn contract_tokens(store: &dyn Store) {
    let a = store.create_token("hash-a", AccessRole::Manager, Some("Ana's laptop")).expect("create");
    let b = store.create_token("hash-b", AccessRole::Viewer, None).expect("create");
    assert_ne!(a, b);
    let found = store.token_by_hash("hash-a").expect("lookup").expect("live");
    assert_eq!(
        (found.id, found.role, found.name.as_deref(), found.revoked_at),
        (a, AccessRole::Manager, Some("Ana's laptop"), None)
    );
    assert_eq!(store.token_by_hash("nope").expect("lookup"), None);
    assert!(store.create_token("hash-a", AccessRole::Viewer, None).is_err(), "a hash is stored once");

    assert!(store.revoke_token(a).expect("revoke"));
    assert!(!store.revoke_token(a).expect("revoke again"));
    assert!(!store.revoke_token(9_999).expect("revoke unknown"));
    assert_eq!(store.token_by_hash("hash-a").expect("lookup"), None, "revoked tokens do not authenticate");
    let all = store.tokens().expect("tokens");
    assert_eq!(all.iter().map(|t| t.id).collect::<Vec<_>>(), [a, b], "newest last");
    assert!(all[0].revoked_at.is_some() && all[1].revoked_at.is_none());
}

/// `numberMatched` stays exact through inserts, updates of role and interested, deletes and
/// block changes.
fn contract_people_counts(store: &dyn Store) {
    store.replace_blocks(&blocks(3), &[], &[], "blocks").expect("blocks");
    let bs = ["b00", "b01", "b02", "b09"];
    assert_counts_exact(store, &bs);
    // The first import into an empty table (a store may take a bulk path).
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut people: Vec<Person> = (0..300)
        .map(|i| {
            let home = format!("b{:02}", rng.random_range(0..3));
            let adopted = rng.random_bool(0.3).then(|| format!("b{:02}", rng.random_range(0..4)));
            Person {
                role: if rng.random_bool(0.4) { Role::Ambassador } else { Role::Resident },
                interested: rng.random_bool(0.5),
                adopted_block: adopted,
                ..resident(&format!("p{i:03}"), Some(&home))
            }
        })
        .collect();
    store.upsert_people(&people, "first").expect("first import");
    assert_counts_exact(store, &bs);
    // Updates of role, interested and blocks; some new people in the same upsert.
    for p in people.iter_mut().step_by(3) {
        p.role = if p.role == Role::Resident { Role::Ambassador } else { Role::Resident };
    }
    for p in people.iter_mut().step_by(5) {
        p.interested = !p.interested;
        p.home_block = Some("b02".into());
    }
    people.push(resident("zz1", Some("b01")));
    store.upsert_people(&people, "second").expect("second import");
    assert_counts_exact(store, &bs);
    store
        .insert_person(&Person { interested: true, ..ambassador("zz2", None, Some("b00"), None) }, "api")
        .expect("insert");
    for id in ["p000", "p001", "p150", "zz1"] {
        assert!(store.delete_person(id).expect("delete"));
    }
    assert_counts_exact(store, &bs);
    // A block import moving people.
    let moves = [
        Reassignment { id: "p002".into(), block_id: None },
        Reassignment { id: "p003".into(), block_id: Some("b00".into()) },
    ];
    store.replace_blocks(&blocks(3), &moves, &[], "blocks again").expect("blocks");
    assert_counts_exact(store, &bs);
}

/// The first import into an empty table big enough for a store's bulk path still leaves
/// exact counts, and later writes keep them exact.
fn contract_people_counts_bulk(store: &dyn Store) {
    store.replace_blocks(&blocks(3), &[], &[], "blocks").expect("blocks");
    let people: Vec<Person> = (0..12_345)
        .map(|i| Person {
            role: if i % 7 == 0 { Role::Ambassador } else { Role::Resident },
            interested: i % 3 == 0,
            ..resident(&format!("p{i:05}"), Some(["b00", "b01", "b02"][i % 3]))
        })
        .collect();
    assert_eq!(store.upsert_people(&people, "bulk").expect("bulk").inserted, people.len());
    let all = PeopleFilter::default();
    assert_eq!(store.people_page(&all, 0, 5).expect("page").1, 12_345);
    let ambassadors = filter(Some(Role::Ambassador), None, None);
    assert_eq!(
        store.people_page(&ambassadors, 0, 5).expect("page").1,
        people.iter().filter(|p| p.role == Role::Ambassador).count() as u64
    );
    let interested_residents = filter(Some(Role::Resident), None, Some(true));
    let want = people.iter().filter(|p| p.role == Role::Resident && p.interested).count() as u64;
    assert_eq!(store.people_page(&interested_residents, 0, 5).expect("page").1, want);
    assert_eq!(store.people_page(&filter(None, Some("b01"), None), 0, 5).expect("page").1, 4_115);
    // Later writes go on counting.
    store.insert_person(&resident("q1", Some("b00")), "api").expect("insert");
    assert!(store.delete_person("p00000").expect("delete"));
    store.upsert_people(&[Person { interested: true, ..people[1].clone() }], "csv").expect("update");
    assert_eq!(store.people_page(&all, 0, 5).expect("page").1, 12_345);
    let want = want + 1;
    assert_eq!(store.people_page(&interested_residents, 0, 5).expect("page").1, want);
}

// ---------------------------------------------------------------------------------------------
// The stores

/// A file store in its own directory (kept alive as long as the store).
fn file_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("belong.db")).expect("open");
    (dir, store)
}

macro_rules! contract {
    ($($check:ident),* $(,)?) => {
        mod sqlite_file {
            $(#[test] fn $check() { let (_dir, store) = super::file_store(); super::$check(&store); })*
        }
        mod sqlite_memory {
            $(#[test] fn $check() {
                let store = belong::store::SqliteStore::open_in_memory().expect("open");
                super::$check(&store);
            })*
        }
        /// On a fresh database of `BELONG_TEST_PG` (skips loudly without one).
        mod postgres {
            $(#[test] fn $check() {
                let Some(db) = crate::pg::fresh_db() else { return };
                let store = belong::store::PostgresStore::open(db.url()).expect("open");
                super::$check(&store);
            })*
        }
    };
}

contract!(
    contract_blocks,
    contract_people,
    contract_history_cursor,
    contract_coverage_state,
    contract_coverage_counts,
    contract_tokens,
    contract_people_counts,
    contract_people_counts_bulk,
);

// ---------------------------------------------------------------------------------------------
// File store only

#[test]
fn file_store_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("belong.db");
    drop(SqliteStore::open(&path).expect("open"));
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).expect("version");
    conn.pragma_update(None, "user_version", version + 1).expect("bump");
    drop(conn);
    match SqliteStore::open(&path) {
        Err(StoreError::TooNew { found, supported }) => assert_eq!((found, supported), (version + 1, version)),
        Err(e) => panic!("expected TooNew, got {e}"),
        Ok(_) => panic!("expected TooNew, the store opened"),
    }
}

#[test]
fn file_store_reopens_with_its_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("belong.db");
    let store = SqliteStore::open(&path).expect("open");
    store.insert_person(&resident("r1", None), "api").expect("insert");
    let head = store.last_change().expect("head");
    drop(store);
    let store = SqliteStore::open(&path).expect("reopen");
    assert_eq!(store.person("r1").expect("person").map(|p| p.id), Some("r1".into()));
    assert_eq!(store.last_change().expect("head"), head);
    assert_eq!(store.people_page(&PeopleFilter::default(), 0, 1).expect("page").1, 1);
}

/// Readers never wait for the writer: while one thread writes in a loop, reads of people and
/// tokens succeed every time (no busy errors) and see whole writes.
#[test]
fn file_store_reads_during_writes() {
    let (_dir, store) = file_store();
    let store = Arc::new(store);
    store.replace_blocks(&blocks(3), &[], &[], "blocks").expect("blocks");
    store.create_token("hash-a", AccessRole::Viewer, None).expect("token");
    let batch = |round: usize| -> Vec<Person> {
        (0..500)
            .map(|i| Person { interested: (i + round).is_multiple_of(2), ..resident(&format!("p{i:03}"), Some("b01")) })
            .collect()
    };
    store.upsert_people(&batch(0), "seed").expect("seed");
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, done) = (Arc::clone(&store), Arc::clone(&done));
        std::thread::spawn(move || {
            for round in 1..=30 {
                store.upsert_people(&batch(round), "loop").expect("write");
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let mut reads = 0;
    while !done.load(Ordering::SeqCst) || reads < 50 {
        let (page, matched) =
            store.people_page(&filter(None, None, Some(true)), 0, 5).expect("people_page during writes");
        assert_eq!(matched, 250, "every round has half the people interested");
        assert_eq!(page.len(), 5);
        assert!(store.token_by_hash("hash-a").expect("token_by_hash during writes").is_some());
        reads += 1;
    }
    writer.join().expect("writer thread");
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL only

#[test]
fn postgres_refuses_a_newer_schema() {
    let Some(db) = pg::fresh_db() else { return };
    drop(belong::store::PostgresStore::open(db.url()).expect("open"));
    let version: i64 =
        pg::psql(db.url(), "SELECT version FROM belong_private.schema_version").parse().expect("version");
    pg::psql(db.url(), &format!("UPDATE belong_private.schema_version SET version = {}", version + 1));
    match belong::store::PostgresStore::open(db.url()) {
        Err(StoreError::TooNew { found, supported }) => assert_eq!((found, supported), (version + 1, version)),
        Err(e) => panic!("expected TooNew, got {e}"),
        Ok(_) => panic!("expected TooNew, the store opened"),
    }
}

#[test]
fn postgres_unreachable_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    match belong::store::PostgresStore::open(&format!("postgres://nobody@127.0.0.1:{port}/none")) {
        Err(StoreError::Unavailable(_)) => {}
        Err(e) => panic!("expected Unavailable, got {e}"),
        Ok(_) => panic!("opened a server that is not there"),
    }
}

/// A write through one store wakes a waiter on another (two instances on one database).
#[test]
fn postgres_wait_for_change_wakes_on_another_instances_write() {
    let Some(db) = pg::fresh_db() else { return };
    let a = belong::store::PostgresStore::open(db.url()).expect("open a");
    let b = belong::store::PostgresStore::open(db.url()).expect("open b");
    // The first call connects the listener and reports a possible change.
    assert!(b.wait_for_change(std::time::Duration::from_millis(10)).expect("listen"));
    assert!(!b.wait_for_change(std::time::Duration::from_millis(200)).expect("quiet"));
    let waiter = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        let woke = b.wait_for_change(std::time::Duration::from_secs(10)).expect("wait");
        (woke, start.elapsed(), b)
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    a.insert_person(&resident("r1", None), "api").expect("insert");
    let (woke, waited, b) = waiter.join().expect("waiter");
    assert!(woke && waited < std::time::Duration::from_secs(5), "woke {woke} after {waited:?}");
    assert_eq!(b.last_change().expect("head"), a.last_change().expect("head"));
}

/// Concurrent writers from two stores: one create of an id wins, the rest are conflicts, and a
/// reader following the cursor while they write sees every row exactly once, in order.
#[test]
fn postgres_concurrent_writers_never_skip_a_row() {
    let Some(db) = pg::fresh_db() else { return };
    let stores: Vec<Arc<dyn Store>> = (0..2)
        .map(|_| Arc::new(belong::store::PostgresStore::open(db.url()).expect("open")) as Arc<dyn Store>)
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, done) = (Arc::clone(&stores[0]), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut cursor = 0;
            let mut seen = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                for e in store.history_events(cursor, 1000).expect("feed") {
                    assert!(e.seq > cursor);
                    cursor = e.seq;
                    seen.push(e.seq);
                }
                if finished {
                    return seen;
                }
            }
        })
    };
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = Arc::clone(&stores[w % 2]);
            std::thread::spawn(move || {
                let mut conflicts = 0;
                for i in 0..50 {
                    // Every writer tries every id: exactly one create of each succeeds.
                    match store.insert_person(&resident(&format!("p{i:02}"), None), "api") {
                        Ok(()) => {}
                        Err(StoreError::Conflict { .. }) => conflicts += 1,
                        Err(e) => panic!("insert: {e}"),
                    }
                }
                conflicts
            })
        })
        .collect();
    let conflicts: usize = writers.into_iter().map(|w| w.join().expect("writer")).sum();
    done.store(true, Ordering::SeqCst);
    let seen = reader.join().expect("reader");
    assert_eq!(conflicts, 150);
    assert_eq!(seen, all_seqs(stores[1].as_ref()), "the cursor reader saw every row once, in order");
    assert_eq!(stores[1].people(&PeopleFilter::default()).expect("people").len(), 50);
}

/// The `COPY` path of a large upsert writes what SQLite writes: the same people (text with tabs,
/// newlines and backslashes intact), the same counts and the same history rows in the same order.
#[test]
fn postgres_bulk_upsert_matches_sqlite() {
    let Some(db) = pg::fresh_db() else { return };
    let pg = belong::store::PostgresStore::open(db.url()).expect("open");
    let lite = SqliteStore::open_in_memory().expect("open");
    let batch = |round: usize| -> Vec<Person> {
        (0..150)
            .map(|i| {
                let mut p = if i % 3 == 0 {
                    ambassador(&format!("p{i:03}"), Some("b01"), Some("b02"), Some("2100-01-01T00:00:00Z"))
                } else {
                    resident(&format!("p{i:03}"), if i % 7 == 0 { None } else { Some("b00") })
                };
                p.name = Some(format!("A\tB\\C\nD {i}"));
                p.lon = 0.1 + i as f64 * 1e-7;
                p.interested = (i + round).is_multiple_of(4);
                p
            })
            .collect()
    };
    for store in [&pg as &dyn Store, &lite] {
        store.replace_blocks(&blocks(3), &[], &[], "blocks").expect("blocks");
    }
    for round in 0..3 {
        let people = batch(round);
        let a = pg.upsert_people(&people, "bulk").expect("pg upsert");
        let b = lite.upsert_people(&people, "bulk").expect("sqlite upsert");
        assert_eq!(a, b, "round {round}");
    }
    assert_eq!(pg.people(&PeopleFilter::default()).expect("pg"), lite.people(&PeopleFilter::default()).expect("lite"));
    assert_eq!(history_keys(&pg, |e| e != "import"), history_keys(&lite, |e| e != "import"));
}

/// PostgreSQL stopped and started again: calls in between are `Unavailable` (never another
/// error, never a hang), and the same store works again afterwards without being reopened,
/// the listener included.
#[test]
fn postgres_store_survives_a_server_restart() {
    let Some(cluster) = pg::Cluster::start() else { return };
    let db = pg::PgDb::create(&cluster.admin_url());
    let store = belong::store::PostgresStore::open(db.url()).expect("open");
    store.insert_person(&resident("r1", None), "api").expect("insert");
    assert!(store.wait_for_change(std::time::Duration::from_millis(10)).expect("listen"));
    cluster.stop();
    for e in [
        store.insert_person(&resident("r2", None), "api").unwrap_err(),
        store.person("r1").unwrap_err(),
        store.ping().unwrap_err(),
        store.wait_for_change(std::time::Duration::from_millis(100)).unwrap_err(),
    ] {
        assert!(matches!(e, StoreError::Unavailable(_)), "expected Unavailable, got {e}");
    }
    cluster.restart();
    // The first call on a connection cut by the restart may still fail; then the pool reconnects.
    let mut ok = false;
    for _ in 0..10 {
        if store.insert_person(&resident("r2", None), "api").is_ok() {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(ok, "writes work again after the restart");
    assert_eq!(store.people(&PeopleFilter::default()).expect("people").len(), 2);
    let mut listening = false;
    for _ in 0..10 {
        if store.wait_for_change(std::time::Duration::from_millis(50)).is_ok() {
            listening = true;
            break;
        }
    }
    assert!(listening, "the listener reconnects");
}

/// Listings are in byte order of the ids (as SQLite's), not in the database's collation.
#[test]
fn postgres_orders_ids_by_bytes() {
    let Some(db) = pg::fresh_db() else { return };
    // A database whose default collation is not byte order (ICU English).
    let admin = std::env::var("BELONG_TEST_PG").expect("admin url");
    let name = format!("belong_icu_{}", std::process::id());
    pg::psql(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
    pg::psql(
        &admin,
        &format!("CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en' LOCALE 'C.UTF-8'"),
    );
    let url = pg::with_db(db.url(), &name);
    let pg = belong::store::PostgresStore::open(&url).expect("open");
    let lite = SqliteStore::open_in_memory().expect("open");
    let names = ["b", "B", "a-2", "a1", "_x", "Ä", "a 1"];
    let blocks: Vec<Block> = names.iter().enumerate().map(|(i, n)| block(n, i as f64)).collect();
    let people: Vec<Person> = names.iter().map(|n| resident(n, None)).collect();
    for store in [&pg as &dyn Store, &lite] {
        store.replace_blocks(&blocks, &[], &[], "t").expect("blocks");
        store.upsert_people(&people, "t").expect("people");
    }
    assert_eq!(pg.block_ids().expect("pg"), lite.block_ids().expect("lite"));
    assert_eq!(
        ids(&pg.people(&PeopleFilter::default()).expect("pg")),
        ids(&lite.people(&PeopleFilter::default()).expect("lite"))
    );
    let strip = |s: &dyn Store| {
        s.history_events(0, usize::MAX).expect("h").into_iter().map(|e| (e.entity_id, e.action)).collect::<Vec<_>>()
    };
    assert_eq!(strip(&pg), strip(&lite));
    drop(pg);
    pg::psql(&admin, &format!("DROP DATABASE {name} WITH (FORCE)"));
}

/// Block imports through `COPY` report and log what SQLite reports and logs: added, changed
/// (name, attributes or geometry), removed and reassigned, with the same history rows in order.
#[test]
fn postgres_block_imports_match_sqlite() {
    let Some(db) = pg::fresh_db() else { return };
    let pg = belong::store::PostgresStore::open(db.url()).expect("open");
    let lite = SqliteStore::open_in_memory().expect("open");
    let mut second = blocks(5);
    second.remove(1);
    second[0].name = Some("Renamed\tblock \\ one".into());
    second[1].attributes.insert("POP20".into(), 12.into());
    second[2].geometry = block("x", 9.0).geometry;
    second.push(block("b99", 20.0));
    for store in [&pg as &dyn Store, &lite] {
        let first = store.replace_blocks(&blocks(5), &[], &[], "one").expect("first");
        store.upsert_people(&[resident("r1", Some("b01")), resident("r2", Some("b02"))], "p").expect("people");
        let moved = [
            Reassignment { id: "r1".into(), block_id: None },
            Reassignment { id: "r2".into(), block_id: Some("b02".into()) },
        ];
        let again = store.replace_blocks(&second, &moved, &[], "two").expect("second");
        assert_eq!((first.added, again.added, again.removed, again.changed, again.people_reassigned), (5, 1, 1, 3, 1));
    }
    assert_eq!(pg.blocks().expect("pg"), lite.blocks().expect("lite"));
    let strip = |s: &dyn Store| {
        s.history_events(0, usize::MAX)
            .expect("h")
            .into_iter()
            .map(|e| (e.entity, e.entity_id, e.action, e.block_id))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&pg), strip(&lite));
}

/// A role that may not create PostGIS gets an error naming the SQL the DBA must run.
#[test]
fn postgres_without_postgis_rights_says_what_to_run() {
    let Some(db) = pg::fresh_db() else { return };
    let role = format!("belong_plain_{}", std::process::id());
    pg::psql(
        db.url(),
        &format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN; GRANT ALL ON SCHEMA public TO {role}; GRANT CREATE ON DATABASE {} TO {role}",
            db.url().rsplit('/').next().unwrap_or_default()
        ),
    );
    let url = db.url().replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    let e = belong::store::PostgresStore::open(&url).err().expect("refused without PostGIS");
    assert!(matches!(e, StoreError::Database(_)) && e.to_string().contains("CREATE EXTENSION postgis"), "{e}");
    pg::psql(db.url(), "CREATE EXTENSION postgis");
    belong::store::PostgresStore::open(&url).expect("opens once the DBA created it");
    drop(db);
    let admin = std::env::var("BELONG_TEST_PG").expect("admin");
    pg::psql(&admin, &format!("DROP ROLE IF EXISTS {role}"));
}

/// The cursor never passes a row that commits late: a writer that drew the lower `seq` but
/// commits after a later writer would be skipped for ever by a reader whose cursor already
/// passed the higher one. Here a raw connection plays a slow writer of another instance
/// (the store's protocol: feed lock, history row, commit after a pause) while the store writes;
/// a reader polling the feed all the while must still see every row exactly once. Without the
/// store's feed lock its row commits first and the reader skips the slow writer's row.
#[test]
fn postgres_cursor_never_passes_an_uncommitted_earlier_row() {
    let Some(db) = pg::fresh_db() else { return };
    let store: Arc<dyn Store> = Arc::new(belong::store::PostgresStore::open(db.url()).expect("open"));
    store.insert_person(&resident("r0", None), "api").expect("first row");
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, done) = (Arc::clone(&store), Arc::clone(&done));
        std::thread::spawn(move || {
            let (mut cursor, mut seen) = (0, Vec::new());
            loop {
                let finished = done.load(Ordering::SeqCst);
                store
                    .visit_history(cursor, 1000, &mut |row| {
                        assert!(row.seq > cursor);
                        cursor = row.seq;
                        seen.push(row.seq);
                    })
                    .expect("feed");
                if finished {
                    return seen;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        })
    };
    // A session of its own, with the URL's TLS settings, outside the store's pool.
    let mut raw = belong::store::PostgresStore::open(db.url()).expect("open").session().expect("raw connection");
    let mut slow = raw.transaction().expect("begin");
    // FEED_LOCK of src/store/postgres/mod.rs ("belong" 02).
    slow.execute("SELECT pg_advisory_xact_lock($1)", &[&0x0062_656c_6f6e_6702_i64]).expect("feed lock");
    slow.execute(
        "INSERT INTO belong_private.history (ts, entity, entity_id, action) VALUES ('2026-01-01T00:00:00Z', 'import', 'slow', 'import')",
        &[],
    )
    .expect("slow row");
    let fast = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || store.insert_person(&resident("r1", None), "api").expect("fast write"))
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    slow.commit().expect("slow commit");
    fast.join().expect("fast writer");
    std::thread::sleep(std::time::Duration::from_millis(50));
    done.store(true, Ordering::SeqCst);
    let seen = reader.join().expect("reader");
    assert_eq!(seen, all_seqs(store.as_ref()), "the reader saw every row once, in order");
}

/// The analysts' read-only role of the README: `SELECT` on the public tables only. It reads the
/// catchment and resources (QGIS, `ogr2ogr PG:`) and is refused people, tokens and history.
#[test]
fn postgres_analyst_role_reads_public_tables_only() {
    let Some(db) = pg::fresh_db() else { return };
    let store = belong::store::PostgresStore::open(db.url()).expect("open");
    store.replace_blocks(&blocks(2), &[], &[], "blocks").expect("blocks");
    store.insert_person(&resident("r1", Some("b00")), "api").expect("person");
    let role = format!("belong_analyst_{}", std::process::id());
    let dbname = db.url().rsplit('/').next().unwrap_or_default().to_string();
    // Exactly the SQL the README gives (with the role's name and the database).
    pg::psql(
        db.url(),
        &format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN;
             GRANT CONNECT ON DATABASE {dbname} TO {role};
             GRANT USAGE ON SCHEMA public TO {role};
             GRANT SELECT ON public.blocks, public.areas, public.area_layers, public.resources, public.indicators TO {role};"
        ),
    );
    let url = db.url().replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    let out = std::process::Command::new("psql")
        .args([url.as_str(), "-qAtc", "SELECT count(*), ST_SRID(min(geom)) FROM public.blocks"])
        .output()
        .expect("psql");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2|4326");
    for table in ["belong_private.people", "belong_private.tokens", "belong_private.history"] {
        let out = std::process::Command::new("psql")
            .args([url.as_str(), "-qAtc", &format!("SELECT count(*) FROM {table}")])
            .output()
            .expect("psql");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("permission denied"), "{table}: {err}");
    }
    drop(store);
    drop(db);
    let admin = std::env::var("BELONG_TEST_PG").expect("admin");
    pg::psql(&admin, &format!("DROP ROLE IF EXISTS {role}"));
}

/// The `COPY` paths of large resource and indicator upserts write what SQLite's per-row paths
/// write: the same rows (text with tabs, newlines and backslashes, JSON attributes), the same
/// counts, and for resources the same history rows in the same order.
#[test]
fn postgres_bulk_resources_and_indicators_match_sqlite() {
    use belong::core::{IndicatorValue, Resource};
    let Some(db) = pg::fresh_db() else { return };
    let pg = belong::store::PostgresStore::open(db.url()).expect("open");
    let lite = SqliteStore::open_in_memory().expect("open");
    for store in [&pg as &dyn Store, &lite] {
        store.replace_blocks(&blocks(3), &[], &[], "blocks").expect("blocks");
    }
    let resources = |round: usize| -> Vec<Resource> {
        (0..150)
            .map(|i| {
                let mut attributes = Attributes::new();
                attributes.insert("hours".into(), format!("Mo-Fr {}:00-17:00", 8 + (i + round) % 3).into());
                attributes.insert("capacity".into(), serde_json::json!(i % 4));
                Resource {
                    id: format!("res{i:03}"),
                    name: Some(format!("Site\t{i}\\\n")),
                    category: ["shelter", "food_bank", "clinic"][i % 3].into(),
                    lon: -118.25 + i as f64 * 1e-5,
                    lat: 34.05 + (i * round) as f64 * 1e-6,
                    address: (i % 5 != 0).then(|| format!("{i} Main St")),
                    phone: None,
                    email: None,
                    url: Some("https://example.org/?a=1&b=\\2".into()),
                    attributes,
                    block_id: (i % 7 != 0).then(|| format!("b{:02}", i % 3)),
                }
            })
            .collect()
    };
    let indicators = |round: usize| -> Vec<IndicatorValue> {
        (0..240)
            .map(|i| IndicatorValue {
                block_id: format!("b{:02}", i % 3),
                indicator: format!("ind{}", i / 3), // (block, indicator) distinct: the bulk path
                date: (i % 2 == 0).then(|| format!("2026-0{}-01", 1 + i / 120)),
                value: if i % 5 == 0 { (i * round) as f64 / 3.0 } else { i as f64 },
            })
            .collect()
    };
    for round in 0..3 {
        let a = pg.upsert_resources(&resources(round), "bulk").expect("pg resources");
        let b = lite.upsert_resources(&resources(round), "bulk").expect("sqlite resources");
        assert_eq!(a, b, "resources, round {round}");
        let a = pg.upsert_indicators(&indicators(round), &[], "bulk").expect("pg indicators");
        let b = lite.upsert_indicators(&indicators(round), &[], "bulk").expect("sqlite indicators");
        assert_eq!(a, b, "indicators, round {round}");
    }
    assert_eq!(pg.resources().expect("pg"), lite.resources().expect("lite"));
    assert_eq!(pg.indicators().expect("pg"), lite.indicators().expect("lite"));
    assert_eq!(history_keys(&pg, |e| e == "resource"), history_keys(&lite, |e| e == "resource"));
}

/// A block import moving hundreds of people (the bulk reassignment path) writes what SQLite
/// writes: the same homes, the same counts, the same history rows (role, covering block with
/// adoptions in and out of effect, active, detail) in the same order.
#[test]
fn postgres_bulk_reassignments_match_sqlite() {
    let Some(db) = pg::fresh_db() else { return };
    let pg = belong::store::PostgresStore::open(db.url()).expect("open");
    let lite = SqliteStore::open_in_memory().expect("open");
    let people: Vec<Person> = (0..300)
        .map(|i| match i % 4 {
            0 => ambassador(&format!("p{i:03}"), Some("b00"), Some("b01"), Some("2100-01-01T00:00:00Z")),
            1 => ambassador(&format!("p{i:03}"), Some("b01"), Some("b02"), Some("2001-01-01T00:00:00Z")),
            _ => Person { active: i % 5 != 0, ..resident(&format!("p{i:03}"), Some(["b00", "b01", "b02"][i % 3])) },
        })
        .collect();
    // 250 moves: to another block, out of the catchment, or to where the person already is.
    let moves: Vec<Reassignment> = people
        .iter()
        .take(250)
        .enumerate()
        .map(|(i, p)| Reassignment {
            id: p.id.clone(),
            block_id: match i % 3 {
                0 => Some("b02".into()),
                1 => None,
                _ => p.home_block.clone(),
            },
        })
        .collect();
    let mut reports = Vec::new();
    for store in [&pg as &dyn Store, &lite] {
        store.replace_blocks(&blocks(3), &[], &[], "one").expect("blocks");
        store.upsert_people(&people, "people").expect("people");
        reports.push(store.replace_blocks(&blocks(3), &moves, &[], "two").expect("again"));
    }
    assert_eq!(reports[0], reports[1]);
    assert!(reports[0].people_reassigned > 100, "{:?}", reports[0]);
    assert_eq!(pg.people(&PeopleFilter::default()).expect("pg"), lite.people(&PeopleFilter::default()).expect("lite"));
    assert_eq!(history_keys(&pg, |e| e == "person"), history_keys(&lite, |e| e == "person"));
    assert_counts_exact(&pg, &["b00", "b01", "b02"]);
}
