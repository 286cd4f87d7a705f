//! Incremental equals rebuilt: random sequences of writes — people added, moved, paused,
//! deleted, adoptions made, dropped and lapsed, the catchment re-imported midway — applied to
//! the live state one change at a time must leave it exactly where a state built from scratch
//! (and the store's own SQL counts, and the history replay) are.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::sync::Arc;

use belong::app::live::Live;
use belong::app::people::{Adoption, NewPerson, PersonPatch, adopt, create_person, delete_person, update_person};
use belong::app::{self, history};
use belong::core::{Block, Role};
use belong::store::{SqliteStore, Store};
use chrono::{Duration, Utc};
use geo::{MultiPolygon, Rect};
use proptest::prelude::*;

const GRID: usize = 4;
const STEP: f64 = 0.01;

fn block(i: usize) -> Block {
    let (x, y) = (-118.30 + (i % GRID) as f64 * STEP, 34.0 + (i / GRID) as f64 * STEP);
    let poly = Rect::new((x, y), (x + STEP, y + STEP)).to_polygon();
    Block {
        id: format!("0603700{i:02}"),
        name: None,
        geometry: MultiPolygon(vec![poly]),
        attributes: Default::default(),
    }
}

/// Centre of grid cell `c` (cells past the grid are outside the catchment).
fn cell(c: usize) -> (f64, f64) {
    (-118.30 + (c % GRID) as f64 * STEP + STEP / 2.0, 34.0 + (c / GRID) as f64 * STEP + STEP / 2.0)
}

#[derive(Debug, Clone)]
enum Op {
    Add {
        ambassador: bool,
        cell: usize,
        active: bool,
    },
    Move {
        who: usize,
        cell: usize,
    },
    SetActive {
        who: usize,
        active: bool,
    },
    Delete {
        who: usize,
    },
    Adopt {
        who: usize,
        block: usize,
        expires: bool,
    },
    Unadopt {
        who: usize,
    },
    /// Let the clock run past every adoption with an expiry.
    Lapse,
    /// Re-import the catchment without block `drop` (or with every block again).
    Reimport {
        drop: Option<usize>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let cells = 0..GRID * GRID + 2; // two cells outside the catchment
    prop_oneof![
        4 => (any::<bool>(), cells.clone(), prop::bool::weighted(0.8)).prop_map(|(ambassador, cell, active)| Op::Add { ambassador, cell, active }),
        2 => (0..40usize, cells).prop_map(|(who, cell)| Op::Move { who, cell }),
        1 => (0..40usize, any::<bool>()).prop_map(|(who, active)| Op::SetActive { who, active }),
        1 => (0..40usize).prop_map(|who| Op::Delete { who }),
        2 => (0..40usize, 0..GRID * GRID, any::<bool>()).prop_map(|(who, block, expires)| Op::Adopt { who, block, expires }),
        1 => (0..40usize).prop_map(|who| Op::Unadopt { who }),
        1 => Just(Op::Lapse),
        1 => prop::option::of(0..GRID * GRID).prop_map(|drop| Op::Reimport { drop }),
    ]
}

struct World {
    store: Arc<dyn Store>,
    live: Live,
    _dir: tempfile::TempDir,
    ids: Vec<String>,
    target: u32,
    /// The instant the live state was last ticked to (adoptions lapse on the clock).
    clock: chrono::DateTime<Utc>,
}

impl World {
    fn new(target: u32) -> World {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("t.db")).unwrap());
        let blocks: Vec<Block> = (0..GRID * GRID).map(block).collect();
        app::replace_catchment(&*store, &blocks, "test").unwrap();
        let live = Live::open(store.clone(), target).unwrap();
        // Built (and ranked) now, so every later write carries it forward incrementally.
        let data = live.recruit().unwrap();
        belong::app::recruit::rank(&data, &Default::default()).unwrap();
        World { store, live, _dir: dir, ids: Vec::new(), target, clock: Utc::now() }
    }

    fn who(&self, i: usize) -> Option<String> {
        (!self.ids.is_empty()).then(|| self.ids[i % self.ids.len()].clone())
    }

    fn apply(&mut self, op: &Op) {
        let catchment = self.live.catchment();
        let index = &catchment.index;
        let store = &*self.store;
        // Refusals (a resident adopting, a deleted person...) are part of the game: they must
        // change nothing, which the comparison checks.
        match op {
            Op::Add { ambassador, cell: c, active } => {
                let (lon, lat) = cell(*c);
                let id = format!("p{}", self.ids.len());
                let role = if *ambassador { Role::Ambassador } else { Role::Resident };
                let input = NewPerson {
                    id: Some(id.clone()),
                    role: Some(role),
                    lon: Some(lon),
                    lat: Some(lat),
                    active: Some(*active),
                    interested: Some(true),
                    ..Default::default()
                };
                create_person(store, index, input, "test").unwrap();
                self.ids.push(id);
            }
            Op::Move { who, cell: c } => {
                let Some(id) = self.who(*who) else { return };
                let (lon, lat) = cell(*c);
                let patch = PersonPatch { lon: Some(Some(lon)), lat: Some(Some(lat)), ..Default::default() };
                let _ = update_person(store, index, &id, patch, "test");
            }
            Op::SetActive { who, active } => {
                let Some(id) = self.who(*who) else { return };
                let patch = PersonPatch { active: Some(Some(*active)), ..Default::default() };
                let _ = update_person(store, index, &id, patch, "test");
            }
            Op::Delete { who } => {
                let Some(id) = self.who(*who) else { return };
                let _ = delete_person(store, &id);
            }
            Op::Adopt { who, block: b, expires } => {
                let Some(id) = self.who(*who) else { return };
                let a = Adoption { block_id: Some(block(*b).id), until: None, days: expires.then_some(1) };
                let _ = adopt(store, index, &id, a, "test");
            }
            Op::Unadopt { who } => {
                let Some(id) = self.who(*who) else { return };
                let patch = PersonPatch { block_id: Some(None), ..Default::default() };
                let _ = update_person(store, index, &id, patch, "test");
            }
            Op::Lapse => {
                self.clock = self.clock.max(Utc::now()) + Duration::days(2);
                self.live.tick(self.clock);
            }
            Op::Reimport { drop } => {
                let blocks: Vec<Block> = (0..GRID * GRID).filter(|i| Some(*i) != *drop).map(block).collect();
                app::replace_catchment(store, &blocks, "test").unwrap();
            }
        }
        self.live.catch_up().unwrap();
    }

    /// The live state equals the store's SQL counts and a state rebuilt from scratch.
    fn check(&self) -> Result<(), TestCaseError> {
        let at = self.clock.max(Utc::now());
        let live = self.live.layers();
        let sql = app::coverage_at(&*self.store, self.target, at).unwrap();
        prop_assert_eq!(&live.coverage.report(), &sql, "live vs SQL");
        let rebuilt = Live::open(self.store.clone(), self.target).unwrap();
        rebuilt.tick(self.clock);
        let fresh = rebuilt.layers();
        prop_assert_eq!(&live.coverage.report(), &fresh.coverage.report(), "live vs rebuilt");
        let (a, b) = (live.collection("blocks").unwrap(), fresh.collection("blocks").unwrap());
        prop_assert_eq!(a.features.len(), b.features.len());
        for (fa, fb) in a.features.iter().zip(b.features.iter()) {
            prop_assert_eq!(fa.json(), fb.json(), "block feature");
        }
        // Filters on counts (scanned, not indexed) agree with the features.
        let q =
            belong::app::layers::ItemQuery { filters: vec![("covered".into(), "true".into())], ..Default::default() };
        let covered = a.query(&q, &*live).unwrap().len() as u64;
        prop_assert_eq!(covered, live.coverage.summary.covered_blocks);
        // The uncovered ranking, carried forward write by write, equals one built from scratch.
        let ranked = |l: &Live, nearest: usize| {
            let opts = belong::app::recruit::RankOptions { nearest, ..Default::default() };
            serde_json::to_value(belong::app::recruit::rank(&l.recruit().unwrap(), &opts).unwrap()).unwrap()
        };
        for nearest in [1, 3] {
            prop_assert_eq!(ranked(&self.live, nearest), ranked(&rebuilt, nearest), "uncovered ranking");
        }
        // The history replay ends where the live state is.
        let points = history::coverage_history(&*self.store, history::Interval::Day, self.target, at).unwrap();
        if let Some(last) = points.last() {
            let s = &live.coverage.summary;
            prop_assert_eq!(
                (last.blocks, last.covered_blocks, last.residents, last.ambassadors),
                (s.blocks, s.covered_blocks, s.residents, s.ambassadors),
                "history vs live"
            );
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn incremental_equals_rebuilt(target in 1u32..3, ops in prop::collection::vec(op(), 1..40)) {
        let mut w = World::new(target);
        for op in &ops {
            w.apply(op);
        }
        w.check()?;
    }

    #[test]
    fn every_step_agrees_with_the_sql_counts(ops in prop::collection::vec(op(), 1..25)) {
        let mut w = World::new(1);
        for op in &ops {
            w.apply(op);
            let at = w.clock.max(Utc::now());
            let sql = app::coverage_at(&*w.store, 1, at).unwrap();
            prop_assert_eq!(&w.live.layers().coverage.report(), &sql, "after {:?}", op);
        }
    }
}
