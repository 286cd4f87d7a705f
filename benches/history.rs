//! Coverage history ("move the dot"): a year of daily points replayed from the history table.
//! Target (2-core machine): ≤ 50 ms for a year of daily points.
//!
//! Two deterministic years of events: the demo (500 blocks, 20,000 residents, ~200 ambassadors
//! joining and leaving over 365 days, adoptions that expire, resident churn, one catchment
//! re-import) and the county (110,000 blocks, 1,000,000 residents, ~10,000 ambassadors, the
//! same kinds of changes). Each is measured as a pure replay of events in memory, as a cold
//! replay read from SQLite (what `belong coverage --history` does), and warm (what
//! `GET /coverage/history` does once its replay is cached: read the rows appended since, then
//! report 366 points). `BELONG_BENCH_DEMO_ONLY=1` skips the county set (its setup writes 1.2 M
//! history rows).

use std::hint::black_box;
use std::path::Path;

use belong::app::history::{HistoryCache, Interval, replay};
use belong::core::Role;
use belong::store::{HistoryEvent, SqliteStore};
use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The binary's allocator, so the numbers are the service's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Spec {
    name: &'static str,
    blocks: usize,
    residents: usize,
    /// Ambassadors joining per day, on average.
    joins_per_day: f64,
    /// Residents moving in or out per day.
    resident_churn_per_day: usize,
}

const DEMO: Spec =
    Spec { name: "demo", blocks: 500, residents: 20_000, joins_per_day: 0.8, resident_churn_per_day: 30 };
const COUNTY: Spec =
    Spec { name: "county", blocks: 110_000, residents: 1_000_000, joins_per_day: 40.0, resident_churn_per_day: 1_500 };

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 6, 0, 0, 0).single().expect("valid date")
}

fn block_id(i: usize) -> String {
    format!("06037{:06}{:04}", 100_000 + i / 50, 1000 + i % 50)
}

struct Gen {
    rng: ChaCha8Rng,
    events: Vec<HistoryEvent>,
}

impl Gen {
    fn push(
        &mut self,
        at: DateTime<Utc>,
        entity: &str,
        id: &str,
        action: &str,
        person: Option<(Role, Option<&str>, bool)>,
    ) {
        self.push_detail(at, entity, id, action, person, None);
    }

    fn push_detail(
        &mut self,
        at: DateTime<Utc>,
        entity: &str,
        id: &str,
        action: &str,
        person: Option<(Role, Option<&str>, bool)>,
        detail: Option<String>,
    ) {
        self.events.push(HistoryEvent {
            seq: self.events.len() as i64 + 1,
            ts: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            entity: entity.into(),
            entity_id: id.into(),
            action: action.into(),
            role: person.map(|p| p.0),
            block_id: person.and_then(|p| p.1.map(str::to_string)),
            active: person.map(|p| p.2),
            detail,
        });
    }
}

/// A year of changes, oldest first.
fn year(spec: &Spec) -> Vec<HistoryEvent> {
    let mut g = Gen { rng: ChaCha8Rng::seed_from_u64(5), events: Vec::new() };
    let t0 = start();
    let mut blocks: Vec<String> = (0..spec.blocks).map(block_id).collect();
    for b in &blocks {
        g.push(t0, "block", b, "insert", None);
    }
    // The first residents import: one timestamp for all, as a bulk import writes.
    let mut residents: Vec<(String, String)> = Vec::with_capacity(spec.residents);
    for i in 0..spec.residents {
        let home = blocks[g.rng.random_range(0..blocks.len())].clone();
        let id = format!("R{i:07}");
        g.push(t0, "person", &id, "insert", Some((Role::Resident, Some(&home), true)));
        residents.push((id, home));
    }
    let mut ambassadors: Vec<(String, String)> = Vec::new();
    let mut next_resident = spec.residents;
    let mut next_ambassador = 0;
    for day in 0..365 {
        let base = t0 + Duration::days(day) + Duration::hours(8);
        let at = |g: &mut Gen| base + Duration::milliseconds(g.rng.random_range(0..36_000_000));
        // Ambassadors join; some adopt a neighbouring block for 30 to 90 days.
        let joins = (spec.joins_per_day * 2.0 * g.rng.random::<f64>()).round() as usize;
        for _ in 0..joins {
            let home = blocks[g.rng.random_range(0..blocks.len())].clone();
            let id = format!("A{next_ambassador:06}");
            next_ambassador += 1;
            let t = at(&mut g);
            g.push(t, "person", &id, "insert", Some((Role::Ambassador, Some(&home), true)));
            if g.rng.random_bool(0.3) {
                let adopted = blocks[g.rng.random_range(0..blocks.len())].clone();
                let until = t + Duration::days(g.rng.random_range(30..90));
                let detail = serde_json::json!({
                    "adopted_block": adopted,
                    "adopted_until": until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "home_block": home,
                });
                let t = t + Duration::minutes(5);
                g.push_detail(
                    t,
                    "person",
                    &id,
                    "update",
                    Some((Role::Ambassador, Some(&adopted), true)),
                    Some(detail.to_string()),
                );
            }
            ambassadors.push((id, home));
        }
        // About one in four hundred ambassadors leaves or pauses each day.
        let leaves = (ambassadors.len() as f64 / 400.0 * 2.0 * g.rng.random::<f64>()).round() as usize;
        for _ in 0..leaves.min(ambassadors.len()) {
            let (id, home) = ambassadors.swap_remove(g.rng.random_range(0..ambassadors.len()));
            let t = at(&mut g);
            if g.rng.random_bool(0.5) {
                g.push(t, "person", &id, "delete", Some((Role::Ambassador, Some(&home), false)));
            } else {
                g.push(t, "person", &id, "update", Some((Role::Ambassador, Some(&home), false)));
            }
        }
        // Residents move in and out.
        for _ in 0..spec.resident_churn_per_day {
            let t = at(&mut g);
            if g.rng.random_bool(0.5) {
                let home = blocks[g.rng.random_range(0..blocks.len())].clone();
                let id = format!("R{next_resident:07}");
                next_resident += 1;
                g.push(t, "person", &id, "insert", Some((Role::Resident, Some(&home), true)));
                residents.push((id, home));
            } else {
                let (id, home) = residents.swap_remove(g.rng.random_range(0..residents.len()));
                g.push(t, "person", &id, "delete", Some((Role::Resident, Some(&home), true)));
            }
        }
        // Mid-year the catchment is re-imported: 4% of the blocks are replaced by new ones and
        // their people reassigned, all at one timestamp.
        if day == 180 {
            let t = base + Duration::hours(1);
            let n = spec.blocks / 25;
            let removed: Vec<String> = blocks.drain(..n).collect();
            let added: Vec<String> = (spec.blocks..spec.blocks + n).map(block_id).collect();
            for b in &added {
                g.push(t, "block", b, "insert", None);
            }
            for b in &removed {
                g.push(t, "block", b, "delete", None);
            }
            let gone: std::collections::HashSet<&String> = removed.iter().collect();
            for (i, (id, home)) in residents.iter_mut().enumerate() {
                if gone.contains(home) {
                    *home = added[i % added.len()].clone();
                    g.push(t, "person", id, "reassign", Some((Role::Resident, Some(home), true)));
                }
            }
            for (i, (id, home)) in ambassadors.iter_mut().enumerate() {
                if gone.contains(home) {
                    *home = added[i % added.len()].clone();
                    g.push(t, "person", id, "reassign", Some((Role::Ambassador, Some(home), true)));
                }
            }
            blocks.extend(added);
        }
    }
    g.events
}

/// A database whose history holds `events` (written directly: the store stamps rows with the
/// current time, and a year has to be backdated).
fn database(dir: &Path, events: &[HistoryEvent]) -> SqliteStore {
    let path = dir.join("history.db");
    drop(SqliteStore::open(&path).expect("create database"));
    let mut conn = rusqlite::Connection::open(&path).expect("open database");
    let tx = conn.transaction().expect("transaction");
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO history (seq, ts, entity, entity_id, action, role, block_id, active, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .expect("prepare");
        for e in events {
            insert
                .execute(rusqlite::params![
                    e.seq,
                    e.ts,
                    e.entity,
                    e.entity_id,
                    e.action,
                    e.role.map(Role::as_str),
                    e.block_id,
                    e.active,
                    e.detail
                ])
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
    drop(conn);
    SqliteStore::open(&path).expect("reopen database")
}

fn bench(c: &mut Criterion) {
    let demo_only = std::env::var_os("BELONG_BENCH_DEMO_ONLY").is_some_and(|v| v != "0");
    let now = start() + Duration::days(365) + Duration::hours(12);
    let mut g = c.benchmark_group("history_year_daily");
    g.sample_size(10);
    for spec in [&DEMO, &COUNTY] {
        if demo_only && spec.name == COUNTY.name {
            continue;
        }
        let events = year(spec);
        eprintln!("{}: {} history rows", spec.name, events.len());
        let dir = tempfile::tempdir().expect("temp dir");
        let store = database(dir.path(), &events);

        let expected = replay(&events, Interval::Day, 1, now);
        assert_eq!(expected.len(), 366);
        let mut cold = HistoryCache::default();
        assert_eq!(cold.points(&store, Interval::Day, 1, now).expect("replay"), expected);

        g.bench_with_input(BenchmarkId::new("replay_in_memory", spec.name), &events, |b, events| {
            b.iter(|| replay(black_box(events), Interval::Day, 1, now).len())
        });
        g.bench_function(BenchmarkId::new("cold_from_sqlite", spec.name), |b| {
            b.iter(|| HistoryCache::default().points(&store, Interval::Day, 1, now).expect("replay").len())
        });
        let mut warm = HistoryCache::default();
        warm.points(&store, Interval::Day, 1, now).expect("replay");
        g.bench_function(BenchmarkId::new("warm_cached", spec.name), |b| {
            b.iter(|| warm.points(&store, Interval::Day, 1, now).expect("replay").len())
        });
        g.bench_function(BenchmarkId::new("warm_cached_weekly", spec.name), |b| {
            b.iter(|| warm.points(&store, Interval::Week, 1, now).expect("replay").len())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
