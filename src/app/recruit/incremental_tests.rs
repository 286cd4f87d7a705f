//! Incremental equals rebuilt: random sequences of person changes (ambassadors and residents
//! added, moved, deleted, activated, deactivated; interest toggled; blocks adopted with and
//! without expiry, adoptions of blocks that are gone; time advanced past expiries) applied
//! with [`RecruitData::updated`] rank exactly as [`RecruitData::new`] from scratch does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use geo::{MultiPolygon, Rect};
use proptest::prelude::*;

use super::*;
use crate::core::coverage::{BlockCounts, compute};
use crate::core::person::{parse_until, whole_seconds};

/// Blocks per side of the grid.
const SIDE: usize = 6;
/// Side of a block, degrees (~500 m).
const CELL: f64 = 0.005;
const WEST: f64 = -118.30;
const SOUTH: f64 = 34.0;
/// People ids "p00".."p19" (one id may be a resident, then an ambassador...).
const PEOPLE: usize = 20;
/// Places: 4 fixed spots per block (people share them: equal distances), then 4 outside.
const PLACES: usize = SIDE * SIDE * 4 + 4;

/// A grid of square blocks near Los Angeles, "b00".."b55" (row, column).
fn grid() -> Vec<Block> {
    (0..SIDE * SIDE)
        .map(|i| {
            let (row, col) = (i / SIDE, i % SIDE);
            let (x, y) = (WEST + CELL * col as f64, SOUTH + CELL * row as f64);
            let mut attributes = crate::core::Attributes::new();
            attributes.insert("CHILDREN".into(), ((i * 7) % 11).into());
            Block {
                id: format!("b{row}{col}"),
                name: Some(format!("Block {row}-{col}")),
                geometry: MultiPolygon(vec![Rect::new((x, y), (x + CELL, y + CELL)).to_polygon()]),
                attributes,
            }
        })
        .collect()
}

/// Place `p`: its location and the block it is in.
fn place(p: usize) -> ((f64, f64), Option<String>) {
    let spot = |i: usize| [0.3, 0.7][i] * CELL;
    if p >= SIDE * SIDE * 4 {
        let k = p - SIDE * SIDE * 4;
        return ((WEST - 0.01 - spot(k % 2), SOUTH + spot(k / 2)), None);
    }
    let (cell, k) = (p / 4, p % 4);
    let (row, col) = (cell / SIDE, cell % SIDE);
    let at = (WEST + CELL * col as f64 + spot(k % 2), SOUTH + CELL * row as f64 + spot(k / 2));
    (at, Some(format!("b{row}{col}")))
}

/// A block id to adopt: one of the grid's, or (`SIDE * SIDE`) one that is not in the catchment.
fn block_id(b: usize) -> String {
    if b >= SIDE * SIDE { "gone".into() } else { format!("b{}{}", b / SIDE, b % SIDE) }
}

#[derive(Debug, Clone)]
enum Op {
    /// Create or replace a person.
    Put {
        who: usize,
        ambassador: bool,
        at: usize,
        interested: bool,
        active: bool,
    },
    Move {
        who: usize,
        at: usize,
    },
    Active {
        who: usize,
        active: bool,
    },
    Interested {
        who: usize,
        interested: bool,
    },
    /// Adopt a block (`None`: give the adoption up), lapsing `until` hours from now (`None`: never).
    Adopt {
        who: usize,
        block: Option<usize>,
        until: Option<i64>,
    },
    /// New contact details.
    Phone {
        who: usize,
        phone: u16,
    },
    Delete {
        who: usize,
    },
    Advance {
        hours: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..PEOPLE;
    prop_oneof![
        3 => (who.clone(), any::<bool>(), 0..PLACES, any::<bool>(), prop::bool::weighted(0.85))
            .prop_map(|(who, ambassador, at, interested, active)| Op::Put { who, ambassador, at, interested, active }),
        2 => (who.clone(), 0..PLACES).prop_map(|(who, at)| Op::Move { who, at }),
        1 => (who.clone(), any::<bool>()).prop_map(|(who, active)| Op::Active { who, active }),
        1 => (who.clone(), any::<bool>()).prop_map(|(who, interested)| Op::Interested { who, interested }),
        2 => (who.clone(), prop::option::weighted(0.8, 0..=SIDE * SIDE), prop::option::of(-2i64..48))
            .prop_map(|(who, block, until)| Op::Adopt { who, block, until }),
        1 => (who.clone(), any::<u16>()).prop_map(|(who, phone)| Op::Phone { who, phone }),
        1 => who.prop_map(|who| Op::Delete { who }),
        1 => (1i64..30).prop_map(|hours| Op::Advance { hours }),
    ]
}

/// A change to an existing person, at the world's instant.
type Edit = Box<dyn Fn(&mut Person, DateTime<Utc>)>;

/// The world the test keeps: people by id and the instant.
struct World {
    people: BTreeMap<String, Person>,
    now: DateTime<Utc>,
}

impl World {
    /// Apply `op`; the person's change, if one happened.
    fn apply(&mut self, op: &Op) -> Option<PersonChange> {
        let id = |who: usize| format!("p{who:02}");
        let (who, edit): (usize, Edit) = match *op {
            Op::Put { who, ambassador, at, interested, active } => {
                let ((lon, lat), home_block) = place(at);
                let person = Person {
                    id: id(who),
                    role: if ambassador { Role::Ambassador } else { Role::Resident },
                    lon,
                    lat,
                    name: Some(format!("Person {who}")),
                    phone: None,
                    email: Some(format!("p{who}@example.org")),
                    interested,
                    active,
                    adopted_block: None,
                    adopted_until: None,
                    home_block,
                };
                let before = self.people.insert(person.id.clone(), person.clone());
                return Some(PersonChange { before, after: Some(person) });
            }
            Op::Delete { who } => {
                let before = self.people.remove(&id(who))?;
                return Some(PersonChange { before: Some(before), after: None });
            }
            Op::Advance { hours } => {
                self.now += Duration::hours(hours);
                return None;
            }
            Op::Move { who, at } => (
                who,
                Box::new(move |p, _| {
                    let ((lon, lat), home) = place(at);
                    (p.lon, p.lat, p.home_block) = (lon, lat, home);
                }),
            ),
            Op::Active { who, active } => (who, Box::new(move |p, _| p.active = active)),
            Op::Interested { who, interested } => (who, Box::new(move |p, _| p.interested = interested)),
            Op::Adopt { who, block, until } => (
                who,
                Box::new(move |p, now| {
                    p.adopted_block = block.map(block_id);
                    p.adopted_until = block.and(until).map(|h| whole_seconds(now + Duration::hours(h)));
                }),
            ),
            Op::Phone { who, phone } => (who, Box::new(move |p, _| p.phone = Some(format!("555-{phone:05}")))),
        };
        let person = self.people.get_mut(&id(who))?;
        let before = person.clone();
        edit(person, self.now);
        Some(PersonChange { before: Some(before), after: Some(person.clone()) })
    }

    /// Coverage at target 1, from the people as the store counts them: residents by home block;
    /// active ambassadors by the block they cover (an adoption of a block that is gone, or that
    /// lapsed, counts for home).
    fn coverage(&self, facts: &CatchmentFacts) -> CoverageReport {
        let mut counts: HashMap<String, BlockCounts> = HashMap::new();
        for p in self.people.values() {
            match p.role {
                Role::Resident => {
                    if let Some(home) = &p.home_block {
                        counts.entry(home.clone()).or_default().residents += 1;
                    }
                }
                Role::Ambassador if p.active => {
                    let block =
                        p.covering_block(self.now).filter(|b| facts.position(b).is_some()).or(p.home_block.as_deref());
                    if let Some(block) = block {
                        counts.entry(block.to_string()).or_default().ambassadors += 1;
                    }
                }
                Role::Ambassador => {}
            }
        }
        compute(facts.ids.iter().map(String::as_str), &counts, 0, 1)
    }
}

fn indicators() -> Vec<IndicatorValue> {
    (0..SIDE * SIDE)
        .filter(|i| i % 3 != 0)
        .map(|i| IndicatorValue {
            block_id: block_id(i),
            indicator: DEFAULT_INDICATOR.into(),
            date: None,
            value: ((i * 13) % 17) as f64,
        })
        .collect()
}

fn options(nearest: usize) -> RankOptions {
    let mut opts = RankOptions { nearest, distance_cap_m: 1500.0, ..Default::default() };
    opts.weights.distance = 1.0;
    opts
}

/// Every option set compared: nearest 1 and 5 among them, and 8 (more than any earlier asked).
const NEAREST: [usize; 4] = [1, 3, 5, 8];

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn incremental_equals_rebuilt(
        start in prop::collection::vec(op(), 0..24),
        steps in prop::collection::vec((prop::collection::vec(op(), 1..4), prop::collection::vec(0..NEAREST.len(), 0..3)), 1..40),
    ) {
        let facts = Arc::new(CatchmentFacts::new(&grid()));
        let indicators = indicators();
        let mut world = World { people: BTreeMap::new(), now: "2026-01-01T00:00:00Z".parse().unwrap() };
        for op in &start {
            world.apply(op);
        }
        let mut coverage = world.coverage(&facts);
        let mut live = RecruitData::new(facts.clone(), &coverage, world.people.values().cloned(), &indicators, world.now);
        rank(&live, &options(3)).unwrap();
        for (ops, ranked) in &steps {
            let changes: Vec<PersonChange> = ops.iter().filter_map(|op| world.apply(op)).collect();
            let next = world.coverage(&facts);
            let changed: Vec<BlockCoverage> =
                next.blocks.iter().zip(&coverage.blocks).filter(|(n, o)| n != o).map(|(n, _)| n.clone()).collect();
            coverage = next;
            let old = live;
            live = old.updated(&changed, &changes, world.now);
            let rebuilt = RecruitData::new(facts.clone(), &coverage, world.people.values().cloned(), &indicators, world.now);
            // Ranking grows the nearest lists kept with the data: rank in a random order of k.
            for &n in ranked {
                let opts = options(NEAREST[n]);
                prop_assert_eq!(rank(&live, &opts).unwrap(), rank(&rebuilt, &opts).unwrap(), "{:?} with {:?}", ops, opts);
            }
            drop(old);
        }
        let rebuilt = RecruitData::new(facts.clone(), &coverage, world.people.values().cloned(), &indicators, world.now);
        for n in NEAREST {
            let opts = options(n);
            prop_assert_eq!(rank(&live, &opts).unwrap(), rank(&rebuilt, &opts).unwrap(), "{:?}", opts);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A page is the same slice of the full ranking, ranks included, whatever the offset and
    /// limit (ties in priority are common on the grid: block id decides them in both).
    #[test]
    fn a_page_is_a_slice_of_the_full_ranking(
        ops in prop::collection::vec(op(), 0..24),
        pages in prop::collection::vec((0usize..40, 0usize..40), 1..8),
        n in 0..NEAREST.len(),
    ) {
        let facts = Arc::new(CatchmentFacts::new(&grid()));
        let mut world = World { people: BTreeMap::new(), now: "2026-01-01T00:00:00Z".parse().unwrap() };
        for op in &ops {
            world.apply(op);
        }
        let coverage = world.coverage(&facts);
        let data = RecruitData::new(facts, &coverage, world.people.values().cloned(), &indicators(), world.now);
        let opts = options(NEAREST[n]);
        let full = rank(&data, &opts).unwrap();
        for (offset, limit) in pages {
            let (total, page) = crate::app::recruit::rank_page(&data, &opts, offset, limit).unwrap();
            prop_assert_eq!(total, full.len());
            let want: Vec<_> = full.iter().skip(offset).take(limit).cloned().collect();
            prop_assert_eq!(page, want, "offset {} limit {}", offset, limit);
        }
    }
}

/// The old data ranks as it did before an update: readers holding it see no change.
#[test]
fn an_update_leaves_the_old_data_as_it_was() {
    let facts = Arc::new(CatchmentFacts::new(&grid()));
    let mut world = World { people: BTreeMap::new(), now: "2026-01-01T00:00:00Z".parse().unwrap() };
    for (who, at) in [(0, 5), (1, 40), (2, 41)] {
        world.apply(&Op::Put { who, ambassador: who == 0, at, interested: true, active: true });
    }
    let coverage = world.coverage(&facts);
    let old = RecruitData::new(facts.clone(), &coverage, world.people.values().cloned(), &[], world.now);
    let before: Vec<String> = format_rows(&old);
    let change = world.apply(&Op::Move { who: 0, at: 100 }).unwrap();
    let added = world.apply(&Op::Put { who: 3, ambassador: false, at: 41, interested: true, active: true }).unwrap();
    let next = world.coverage(&facts);
    let changed: Vec<BlockCoverage> =
        next.blocks.iter().zip(&coverage.blocks).filter(|(n, o)| n != o).map(|(n, _)| n.clone()).collect();
    let new = old.updated(&changed, &[change, added], world.now);
    assert_eq!(format_rows(&old), before);
    assert_ne!(format_rows(&new), before);
    let rebuilt = RecruitData::new(facts, &next, world.people.values().cloned(), &[], world.now);
    assert_eq!(format_rows(&new), format_rows(&rebuilt));
}

/// An adoption lapsing needs no person change: the nearest ambassador shows home from then on.
#[test]
fn a_later_now_rejudges_adoptions() {
    let facts = Arc::new(CatchmentFacts::new(&grid()));
    let mut world = World { people: BTreeMap::new(), now: "2026-01-01T00:00:00Z".parse().unwrap() };
    world.apply(&Op::Put { who: 0, ambassador: true, at: 0, interested: true, active: true });
    world.apply(&Op::Adopt { who: 0, block: Some(7), until: Some(5) });
    let coverage = world.coverage(&facts);
    let data = RecruitData::new(facts.clone(), &coverage, world.people.values().cloned(), &[], world.now);
    let shown = |d: &RecruitData| {
        let rows = rank(d, &RankOptions::default()).unwrap();
        rows.iter().find(|r| r.block_id == "b55").map(|r| r.nearest_ambassadors[0].block_id.map(str::to_string))
    };
    assert_eq!(shown(&data), Some(Some("b11".into())));
    world.apply(&Op::Advance { hours: 6 });
    let next = world.coverage(&facts);
    let changed: Vec<BlockCoverage> =
        next.blocks.iter().zip(&coverage.blocks).filter(|(n, o)| n != o).map(|(n, _)| n.clone()).collect();
    assert_eq!(changed.len(), 2, "b11 uncovered, b00 covered");
    let later = data.updated(&changed, &[], world.now);
    assert_eq!(shown(&later), Some(Some("b00".into())));
    let rebuilt = RecruitData::new(facts, &next, world.people.values().cloned(), &[], world.now);
    assert_eq!(format_rows(&later), format_rows(&rebuilt));
}

/// The mirror of [`Person::covering_block`] in [`Ambassador::block`] agrees with it, for
/// adoptions in and out of the catchment, lapsed, lasting and with unreadable expiries.
#[test]
fn the_ambassador_row_covers_the_block_coverage_counts_for() {
    let facts = CatchmentFacts::new(&grid());
    let now: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    let ((lon, lat), home_block) = place(0);
    for adopted in [None, Some("b12"), Some("gone")] {
        for until in [None, Some("2025-12-31T23:59:59Z"), Some("2026-01-01T00:00:00Z"), Some("2026-01-02T00:00:00Z")] {
            let p = Person {
                id: "a".into(),
                role: Role::Ambassador,
                lon,
                lat,
                name: None,
                phone: None,
                email: None,
                interested: false,
                active: true,
                adopted_block: adopted.map(str::to_string),
                adopted_until: until.and_then(parse_until),
                home_block: home_block.clone(),
            };
            let want = p.covering_block(now).filter(|b| facts.position(b).is_some()).or(p.home_block.as_deref());
            assert_eq!(Ambassador::new(&p, &facts).block(now), want, "{adopted:?} until {until:?}");
        }
    }
}

fn format_rows(d: &RecruitData) -> Vec<String> {
    rank(d, &RankOptions::default()).unwrap().iter().map(|r| format!("{r:?}")).collect()
}
