//! Coverage over time ("move the dot"), replayed from the history table: every person and block
//! change is applied in order, adoptions lapse at their `adopted_until`, and coverage is reported
//! for every day (or ISO week) from the first change to today, as the live summary computes it.
//!
//! The replay keeps per person what the live coverage query reads — role, activity, home block,
//! adopted block and its expiry — and per block the residents and active ambassadors counting
//! for it, so each event and each day costs O(1); a catchment re-import costs one pass over the
//! people, to move adopters of removed (or restored) blocks. Person events with an adoption carry
//! the home block, adopted block and expiry in their `detail` JSON; rows written before that was
//! recorded are read as "no adoption" (the person counts for the block in `block_id`).
//!
//! [`HistoryCache`] keeps a replay between requests and reads only the rows appended since, so
//! a long history is read once per process.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc, Weekday};
use serde::{Deserialize, Deserializer, Serialize};

use super::AppError;
use crate::core::Role;
use crate::core::coverage::percent;
use crate::store::{HistoryEvent, HistoryRow, Store};

/// Length of a reporting period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// Calendar days (UTC).
    Day,
    /// ISO weeks, labelled by their Monday.
    Week,
}

impl std::str::FromStr for Interval {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "day" => Ok(Interval::Day),
            "week" => Ok(Interval::Week),
            other => Err(format!("interval {other:?}: expected day or week")),
        }
    }
}

impl HistoryPoint {
    /// Column names of the CSV and table forms, in field order.
    pub const COLUMNS: &[&str] = &["date", "coverage_pct", "covered_blocks", "blocks", "ambassadors", "residents"];
}

/// Coverage at the end of one period (for the current period: now).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HistoryPoint {
    /// The day (or the Monday of the week), `YYYY-MM-DD`, UTC.
    pub date: String,
    /// `100 * covered_blocks / blocks`, two decimals.
    pub coverage_pct: f64,
    /// Blocks with at least `target` active ambassadors.
    pub covered_blocks: u64,
    /// Blocks in the catchment.
    pub blocks: u64,
    /// Active ambassadors counting for a block of the catchment.
    pub ambassadors: u64,
    /// Residents living in a block of the catchment.
    pub residents: u64,
}

/// Milliseconds since 1970-01-01T00:00:00Z.
type Ms = i64;

/// FxHash (rustc's hasher) with a finaliser: several times faster than the default SipHash on
/// short ids, which was most of a replay's time. The keys come from our own database, so there
/// is no one to flood the table.
#[derive(Debug, Default, Clone, Copy)]
struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(w.iter().rev().fold(0, |acc, b| (acc << 8) | u64::from(*b)));
        }
        self.add(words.remainder().iter().fold(0, |acc, b| (acc << 8) | u64::from(*b)));
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        // The multiply only carries upwards, and ids such as "R0000001" differ in their last
        // bytes: fold the high bits down (splitmix64's finaliser), since hashbrown picks
        // buckets with the low ones.
        let h = (self.0 ^ (self.0 >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ (h >> 31)
    }
}

/// Ids to dense indexes.
type Keys = HashMap<String, u32, BuildHasherDefault<FxHasher>>;

/// What a person adds to a block's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counted {
    Nothing,
    Resident(u32),
    Ambassador(u32),
}

#[derive(Debug)]
struct PersonState {
    role: Role,
    active: bool,
    home: Option<u32>,
    adopted: Option<u32>,
    until: Option<Ms>,
    counted: Counted,
}

/// Counts per block id, kept whether or not the block is in the catchment at the moment (people
/// keep pointing at a removed block until they are reassigned).
#[derive(Debug, Clone, Default)]
struct BlockState {
    live: bool,
    residents: u64,
    ambassadors: u64,
}

/// Catchment totals over the live blocks.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    blocks: u64,
    covered: u64,
    residents: u64,
    ambassadors: u64,
}

/// The extra fields of a person event (`detail` JSON), present when the person has an adoption.
#[derive(Debug, Default, Deserialize)]
struct PersonDetail {
    /// Present (maybe `null`) when `block_id` is not simply the home block.
    #[serde(default, deserialize_with = "present")]
    home_block: Option<Option<String>>,
    adopted_block: Option<String>,
    adopted_until: Option<String>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn parse_ms(text: &str) -> Option<Ms> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

fn day_of(t: Ms) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_millis(t).map_or(NaiveDate::MIN, |d| d.date_naive())
}

fn start_of(day: NaiveDate) -> Ms {
    day.and_hms_opt(0, 0, 0).map_or(Ms::MAX, |d| d.and_utc().timestamp_millis())
}

fn monday_of(day: NaiveDate) -> NaiveDate {
    day - Days::new(u64::from(day.weekday().num_days_from_monday()))
}

/// A replay of the history, event by event, for one coverage target. Feed it events in `seq`
/// order with [`Replay::apply`]; ask for the daily points with [`Replay::daily`].
#[derive(Debug)]
pub struct Replay {
    target: u64,
    block_keys: Keys,
    blocks: Vec<BlockState>,
    person_keys: Keys,
    people: Vec<Option<PersonState>>,
    /// Pending adoption expiries `(adopted_until, person)`; stale entries are skipped.
    expiries: BinaryHeap<Reverse<(Ms, u32)>>,
    /// The set of live blocks changed since the adopters were last placed.
    adopters_stale: bool,
    totals: Totals,
    /// Everything up to this instant has been applied (events and expiries).
    clock: Ms,
    /// The day being replayed; its point is not closed yet.
    day: Option<NaiveDate>,
    /// One point per closed day, oldest first, without gaps.
    closed: Vec<HistoryPoint>,
    last_seq: i64,
    /// The last timestamp parsed: a bulk import writes thousands of rows with the same one.
    last_ts: (String, Ms),
}

impl Replay {
    /// An empty replay counting a block as covered with `target` active ambassadors.
    pub fn new(target: u32) -> Replay {
        Replay {
            target: u64::from(target.max(1)),
            block_keys: Keys::default(),
            blocks: Vec::new(),
            person_keys: Keys::default(),
            people: Vec::new(),
            expiries: BinaryHeap::new(),
            adopters_stale: false,
            totals: Totals::default(),
            clock: Ms::MIN,
            day: None,
            closed: Vec::new(),
            last_seq: 0,
            last_ts: (String::new(), 0),
        }
    }

    /// The `seq` of the last event applied (0 before any).
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    /// Apply one event. Events must come in `seq` order; one whose timestamp is earlier than
    /// what was already replayed (a long import committed after a later write) counts from
    /// the replay's current instant on. Unreadable timestamps are skipped.
    pub fn apply(&mut self, e: HistoryRow<'_>) {
        self.last_seq = self.last_seq.max(e.seq);
        let Some(t) = self.parse_ts(e.ts) else { return };
        let t = t.max(self.clock);
        let day = day_of(t);
        match self.day {
            None => self.day = Some(day),
            Some(_) => {
                while self.day.is_some_and(|d| d < day) {
                    self.close_day();
                }
            }
        }
        self.advance(t);
        match (e.entity, e.action) {
            ("block", "delete") => {
                if let Some(&b) = self.block_keys.get(e.entity_id) {
                    self.set_live(b, false);
                }
            }
            ("block", _) => {
                let b = self.block_key(e.entity_id);
                self.set_live(b, true);
            }
            ("person", "delete") => {
                if let Some(&i) = self.person_keys.get(e.entity_id) {
                    self.set_counted(i, Counted::Nothing);
                    self.people[i as usize] = None;
                }
            }
            ("person", _) => self.upsert_person(e),
            _ => {}
        }
    }

    /// One point per day from the first event's day to today (UTC), oldest first; today's (or
    /// the last event's day, if that is later) is the state at `now`. Days without events repeat
    /// the previous state, except for adoptions that lapsed on them. Empty without events.
    pub fn daily(&mut self, now: DateTime<Utc>) -> Vec<HistoryPoint> {
        let today = now.date_naive();
        while self.day.is_some_and(|d| d < today) {
            self.close_day();
        }
        let Some(day) = self.day else { return Vec::new() };
        self.advance(now.timestamp_millis());
        self.place_adopters();
        let mut points = Vec::with_capacity(self.closed.len() + 1);
        points.extend_from_slice(&self.closed);
        points.push(self.point(day));
        points
    }

    fn parse_ts(&mut self, ts: &str) -> Option<Ms> {
        if self.last_ts.0 != ts {
            let t = parse_ms(ts)?;
            self.last_ts.0.clear();
            self.last_ts.0.push_str(ts);
            self.last_ts.1 = t;
        }
        Some(self.last_ts.1)
    }

    fn block_key(&mut self, id: &str) -> u32 {
        if let Some(&b) = self.block_keys.get(id) {
            return b;
        }
        let b = self.blocks.len() as u32;
        self.blocks.push(BlockState::default());
        self.block_keys.insert(id.to_string(), b);
        b
    }

    fn upsert_person(&mut self, e: HistoryRow<'_>) {
        let detail: PersonDetail = e.detail.and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default();
        let (home, adopted) = match &detail.home_block {
            // `block_id` is the block counted for when the row was written: the adopted block
            // while the adoption held, else home.
            Some(home) => (home.as_deref(), detail.adopted_block.as_deref().or(e.block_id)),
            None => (e.block_id, None),
        };
        let home = home.map(|b| self.block_key(b));
        let adopted = adopted.map(|b| self.block_key(b));
        let until = detail.adopted_until.as_deref().and_then(parse_ms).filter(|_| adopted.is_some());
        let i = match self.person_keys.get(e.entity_id) {
            Some(&i) => i,
            None => {
                let i = self.people.len() as u32;
                self.people.push(None);
                self.person_keys.insert(e.entity_id.to_string(), i);
                i
            }
        };
        let counted = self.people[i as usize].as_ref().map_or(Counted::Nothing, |p| p.counted);
        self.people[i as usize] = Some(PersonState {
            role: e.role.unwrap_or(Role::Resident),
            active: e.active.unwrap_or(true),
            home,
            adopted,
            until,
            counted,
        });
        if let Some(u) = until.filter(|u| *u > self.clock) {
            self.expiries.push(Reverse((u, i)));
        }
        self.recount(i);
    }

    /// What person `i` counts for at the replay's clock, as the live query decides it.
    fn counting(&self, p: &PersonState) -> Counted {
        match p.role {
            Role::Resident => p.home.map_or(Counted::Nothing, Counted::Resident),
            Role::Ambassador if p.active => {
                let adopted =
                    p.adopted.filter(|&b| self.blocks[b as usize].live && p.until.is_none_or(|u| self.clock < u));
                adopted.or(p.home).map_or(Counted::Nothing, Counted::Ambassador)
            }
            Role::Ambassador => Counted::Nothing,
        }
    }

    fn recount(&mut self, i: u32) {
        let Some(p) = &self.people[i as usize] else { return };
        let now = self.counting(p);
        self.set_counted(i, now);
    }

    fn set_counted(&mut self, i: u32, new: Counted) {
        let Some(p) = self.people[i as usize].as_mut() else { return };
        let old = std::mem::replace(&mut p.counted, new);
        if old != new {
            self.count(old, false);
            self.count(new, true);
        }
    }

    /// Add (or take away) what a person counts for.
    fn count(&mut self, c: Counted, add: bool) {
        let step = |n: &mut u64| if add { *n += 1 } else { *n -= 1 };
        match c {
            Counted::Nothing => {}
            Counted::Resident(b) => {
                let block = &mut self.blocks[b as usize];
                step(&mut block.residents);
                if block.live {
                    step(&mut self.totals.residents);
                }
            }
            Counted::Ambassador(b) => {
                let block = &mut self.blocks[b as usize];
                let was_covered = block.ambassadors >= self.target;
                step(&mut block.ambassadors);
                let covered = block.ambassadors >= self.target;
                if block.live {
                    step(&mut self.totals.ambassadors);
                    if covered != was_covered {
                        // Adding can only cover a block, taking away only uncover it.
                        step(&mut self.totals.covered);
                    }
                }
            }
        }
    }

    fn set_live(&mut self, b: u32, live: bool) {
        let target = self.target;
        let block = &mut self.blocks[b as usize];
        if block.live == live {
            return;
        }
        block.live = live;
        let (residents, ambassadors) = (block.residents, block.ambassadors);
        let t = &mut self.totals;
        if live {
            t.blocks += 1;
            t.residents += residents;
            t.ambassadors += ambassadors;
            t.covered += u64::from(ambassadors >= target);
        } else {
            t.blocks -= 1;
            t.residents -= residents;
            t.ambassadors -= ambassadors;
            t.covered -= u64::from(ambassadors >= target);
        }
        self.adopters_stale = true;
    }

    /// Move the clock to `t` and lapse every adoption that expired by then.
    fn advance(&mut self, t: Ms) {
        self.clock = self.clock.max(t);
        while let Some(&Reverse((until, i))) = self.expiries.peek() {
            if until > self.clock {
                break;
            }
            self.expiries.pop();
            if self.people[i as usize].as_ref().is_some_and(|p| p.until == Some(until)) {
                self.recount(i);
            }
        }
    }

    /// After the catchment changed, adopters of a removed block count for home again (and
    /// adopters of a restored one for it), as the live query does.
    fn place_adopters(&mut self) {
        if !std::mem::take(&mut self.adopters_stale) {
            return;
        }
        for i in 0..self.people.len() as u32 {
            if self.people[i as usize].as_ref().is_some_and(|p| p.adopted.is_some()) {
                self.recount(i);
            }
        }
    }

    /// Record the point of the current day (as of its last millisecond) and move to the next.
    fn close_day(&mut self) {
        let Some(day) = self.day else { return };
        let next = day + Days::new(1);
        self.advance(start_of(next) - 1);
        self.place_adopters();
        let point = self.point(day);
        self.closed.push(point);
        self.day = Some(next);
    }

    fn point(&self, day: NaiveDate) -> HistoryPoint {
        let t = self.totals;
        HistoryPoint {
            date: day.to_string(),
            coverage_pct: percent(t.covered, t.blocks),
            covered_blocks: t.covered,
            blocks: t.blocks,
            ambassadors: t.ambassadors,
            residents: t.residents,
        }
    }
}

/// Daily points (one per day without gaps, as [`Replay::daily`] gives them) as points per
/// `interval`: a week's point is the state at the end of its last day (Sunday, or today for the
/// current week), labelled by its Monday.
fn per_interval(daily: Vec<HistoryPoint>, interval: Interval) -> Vec<HistoryPoint> {
    let first = daily.first().and_then(|p| NaiveDate::parse_from_str(&p.date, "%Y-%m-%d").ok());
    let (Interval::Week, Some(first)) = (interval, first) else { return daily };
    let last = daily.len() - 1;
    daily
        .into_iter()
        .enumerate()
        .filter_map(|(i, mut p)| {
            let day = first + Days::new(i as u64);
            (day.weekday() == Weekday::Sun || i == last).then(|| {
                p.date = monday_of(day).to_string();
                p
            })
        })
        .collect()
}

/// Replay `events` (in `seq` order) and report coverage per `interval` up to `now`.
pub fn replay<'a>(
    events: impl IntoIterator<Item = &'a HistoryEvent>,
    interval: Interval,
    target: u32,
    now: DateTime<Utc>,
) -> Vec<HistoryPoint> {
    let mut r = Replay::new(target);
    for e in events {
        r.apply(e.row());
    }
    per_interval(r.daily(now), interval)
}

/// Rows read from the store per query: bounded memory whatever the history's length.
const BATCH: usize = 50_000;

/// A replay kept between requests (the HTTP service holds one): each call reads only the
/// history rows appended since the previous one. The history is append-only, so what was
/// replayed stays valid; a different target starts over.
#[derive(Debug, Default)]
pub struct HistoryCache {
    replay: Option<Replay>,
}

impl HistoryCache {
    /// Coverage per `interval` from the first change to `now`, for `target`.
    pub fn points(
        &mut self,
        store: &dyn Store,
        interval: Interval,
        target: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<HistoryPoint>, AppError> {
        if self.replay.as_ref().is_none_or(|r| r.target != u64::from(target.max(1))) {
            self.replay = Some(Replay::new(target));
        }
        let Some(replay) = self.replay.as_mut() else { return Ok(Vec::new()) };
        // Batches by seq: a full batch means there may be more.
        while store.visit_history(replay.last_seq(), BATCH, &mut |row| replay.apply(row))? == BATCH {}
        Ok(per_interval(replay.daily(now), interval))
    }
}

/// Coverage over time from the stored history, replayed from the start (the command line; the
/// HTTP service keeps a [`HistoryCache`]).
pub fn coverage_history(
    store: &dyn Store,
    interval: Interval,
    target: u32,
    now: DateTime<Utc>,
) -> Result<Vec<HistoryPoint>, AppError> {
    HistoryCache::default().points(store, interval, target, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a person event says: role, block counted for, active, and the adoption detail.
    #[derive(Clone, Copy)]
    struct P<'a> {
        role: Role,
        block: Option<&'a str>,
        active: bool,
        /// `(home, adopted, until)` when there is an adoption.
        adoption: Option<(Option<&'a str>, &'a str, Option<&'a str>)>,
    }

    fn resident(block: &str) -> P<'_> {
        P { role: Role::Resident, block: Some(block), active: true, adoption: None }
    }

    fn ambassador(block: &str) -> P<'_> {
        P { role: Role::Ambassador, block: Some(block), active: true, adoption: None }
    }

    fn adopter<'a>(home: &'a str, adopted: &'a str, until: Option<&'a str>) -> P<'a> {
        P { role: Role::Ambassador, block: Some(adopted), active: true, adoption: Some((Some(home), adopted, until)) }
    }

    struct Events(Vec<HistoryEvent>);

    impl Events {
        fn push(&mut self, ts: &str, entity: &str, id: &str, action: &str, p: Option<P<'_>>) -> &mut Self {
            let ts = if ts.len() == 10 { format!("{ts}T10:00:00.000Z") } else { ts.to_string() };
            let detail = p.and_then(|p| p.adoption).map(|(home, adopted, until)| {
                serde_json::json!({ "home_block": home, "adopted_block": adopted, "adopted_until": until }).to_string()
            });
            self.0.push(HistoryEvent {
                seq: self.0.len() as i64 + 1,
                ts,
                entity: entity.into(),
                entity_id: id.into(),
                action: action.into(),
                role: p.map(|p| p.role),
                block_id: p.and_then(|p| p.block.map(str::to_string)),
                active: p.map(|p| p.active),
                detail,
            });
            self
        }
        fn block(&mut self, day: &str, id: &str, action: &str) -> &mut Self {
            self.push(day, "block", id, action, None)
        }
        fn person(&mut self, day: &str, id: &str, action: &str, p: P<'_>) -> &mut Self {
            self.push(day, "person", id, action, Some(p))
        }
    }

    fn now(day: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("{day}T12:00:00Z")).unwrap().with_timezone(&Utc)
    }

    fn sequence() -> Events {
        let mut e = Events(Vec::new());
        e.block("2026-01-05", "b1", "insert")
            .block("2026-01-05", "b2", "insert")
            .person("2026-01-05", "r1", "insert", resident("b1"))
            // Added, then adopts b2 the same day: only the end of the day counts.
            .person("2026-01-06", "a1", "insert", ambassador("b1"))
            .person("2026-01-06", "a1", "update", adopter("b1", "b2", None))
            .person("2026-01-07", "a2", "insert", ambassador("b1"))
            .person("2026-01-08", "a2", "delete", P { active: false, ..ambassador("b1") })
            .block("2026-01-12", "b2", "delete");
        e
    }

    /// `(date, blocks, covered, ambassadors, residents, pct)` per point.
    fn summary(points: &[HistoryPoint]) -> Vec<(&str, u64, u64, u64, u64, f64)> {
        points
            .iter()
            .map(|p| (p.date.as_str(), p.blocks, p.covered_blocks, p.ambassadors, p.residents, p.coverage_pct))
            .collect()
    }

    #[test]
    fn daily_replay_follows_adds_adoptions_deletes_and_block_removal() {
        let events = sequence();
        let points = replay(&events.0, Interval::Day, 1, now("2026-01-13"));
        assert_eq!(
            summary(&points),
            [
                ("2026-01-05", 2, 0, 0, 1, 0.0),
                ("2026-01-06", 2, 1, 1, 1, 50.0),
                ("2026-01-07", 2, 2, 2, 1, 100.0),
                ("2026-01-08", 2, 1, 1, 1, 50.0),
                // Days without events repeat the state.
                ("2026-01-09", 2, 1, 1, 1, 50.0),
                ("2026-01-10", 2, 1, 1, 1, 50.0),
                ("2026-01-11", 2, 1, 1, 1, 50.0),
                // b2 is gone: its adopter falls back to their home block b1, as the live query does.
                ("2026-01-12", 1, 1, 1, 1, 100.0),
                ("2026-01-13", 1, 1, 1, 1, 100.0),
            ]
        );
    }

    #[test]
    fn weekly_replay_reports_the_end_of_each_week() {
        let events = sequence();
        let points = replay(&events.0, Interval::Week, 1, now("2026-01-13"));
        // Week of the 5th ends on Sunday the 11th; the current week is as of now.
        assert_eq!(summary(&points), [("2026-01-05", 2, 1, 1, 1, 50.0), ("2026-01-12", 1, 1, 1, 1, 100.0)]);
    }

    #[test]
    fn target_and_inactive_ambassadors() {
        let mut events = sequence();
        events.0.truncate(6); // up to a2 joining b1 on the 7th
        events.person("2026-01-07", "a3", "insert", P { active: false, ..ambassador("b1") });
        let points = replay(&events.0, Interval::Day, 2, now("2026-01-07"));
        let last = points.last().unwrap();
        assert_eq!((last.covered_blocks, last.ambassadors), (0, 2));
        // a3 becomes active: b1 has a2 and a3, two ambassadors.
        events.person("2026-01-07", "a3", "update", ambassador("b1"));
        let last = replay(&events.0, Interval::Day, 2, now("2026-01-07")).pop().unwrap();
        assert_eq!((last.covered_blocks, last.ambassadors), (1, 3));
        assert!(replay(&[], Interval::Day, 1, now("2026-01-07")).is_empty());
    }

    #[test]
    fn adoptions_lapse_at_their_expiry_without_any_event() {
        let mut e = Events(Vec::new());
        e.block("2026-03-01", "b1", "insert")
            .block("2026-03-01", "b2", "insert")
            .person("2026-03-01", "a1", "insert", adopter("b1", "b2", Some("2026-03-03T00:00:00Z")))
            .person("2026-03-01", "a2", "insert", adopter("b2", "b1", Some("2026-03-04T15:30:00Z")));
        let points = replay(&e.0, Interval::Day, 1, now("2026-03-05"));
        assert_eq!(
            summary(&points),
            [
                // a1 covers b2, a2 covers b1.
                ("2026-03-01", 2, 2, 2, 0, 100.0),
                ("2026-03-02", 2, 2, 2, 0, 100.0),
                // a1's adoption lapsed at midnight: a1 is back on b1 with a2.
                ("2026-03-03", 2, 1, 2, 0, 50.0),
                // a2's lapsed in the afternoon: at the end of the day a2 is home on b2.
                ("2026-03-04", 2, 2, 2, 0, 100.0),
                ("2026-03-05", 2, 2, 2, 0, 100.0),
            ]
        );
        // Today's point is as of now: before 15:30 on the 4th, a2 still covers b1.
        let at = DateTime::parse_from_rfc3339("2026-03-04T15:29:59Z").unwrap().with_timezone(&Utc);
        assert_eq!(summary(&replay(&e.0, Interval::Day, 1, at)).last().unwrap(), &("2026-03-04", 2, 1, 2, 0, 50.0));
        // A renewed adoption before the expiry keeps it (the stale expiry is ignored).
        e.person("2026-03-02", "a1", "update", adopter("b1", "b2", Some("2026-04-01T00:00:00Z")));
        let points = replay(&e.0, Interval::Day, 1, now("2026-03-05"));
        assert_eq!(summary(&points)[2], ("2026-03-03", 2, 2, 2, 0, 100.0));
    }

    #[test]
    fn an_adoption_written_after_it_lapsed_counts_for_home() {
        let mut e = Events(Vec::new());
        e.block("2026-03-01", "b1", "insert").block("2026-03-01", "b2", "insert").person(
            "2026-03-02",
            "a1",
            "update",
            // Written on the 2nd with an expiry on the 1st: block_id is already home.
            P { block: Some("b1"), ..adopter("b1", "b2", Some("2026-03-01T00:00:00Z")) },
        );
        let last = replay(&e.0, Interval::Day, 1, now("2026-03-02")).pop().unwrap();
        assert_eq!((last.covered_blocks, last.ambassadors), (1, 1));
    }

    #[test]
    fn catchment_reimport_removes_blocks_and_reassigns_people() {
        let mut e = Events(Vec::new());
        e.block("2026-02-02", "b1", "insert")
            .block("2026-02-02", "b2", "insert")
            .block("2026-02-02", "b3", "insert")
            .person("2026-02-02", "r1", "insert", resident("b1"))
            .person("2026-02-02", "r2", "insert", resident("b2"))
            .person("2026-02-02", "a1", "insert", ambassador("b1"))
            .person("2026-02-02", "a2", "insert", adopter("b1", "b3", None))
            // Re-import on the 3rd: b1 is split into b1a and b1b, b3 is gone, b2 stays.
            .block("2026-02-03", "b1a", "insert")
            .block("2026-02-03", "b1b", "insert")
            .block("2026-02-03", "b1", "delete")
            .block("2026-02-03", "b3", "delete")
            .person("2026-02-03", "r1", "reassign", resident("b1a"))
            .person("2026-02-03", "a1", "reassign", ambassador("b1b"))
            // a2 still adopts b3 (stored), which no longer exists: counts for the new home.
            .person("2026-02-03", "a2", "reassign", adopter("b1a", "b3", None))
            // Another re-import brings b3 back: the stored adoption holds again.
            .block("2026-02-04", "b3", "insert");
        let points = replay(&e.0, Interval::Day, 1, now("2026-02-04"));
        assert_eq!(
            summary(&points),
            [
                ("2026-02-02", 3, 2, 2, 2, 66.67),
                // b1a (a2, home), b1b (a1) covered; b2 not.
                ("2026-02-03", 3, 2, 2, 2, 66.67),
                // b3 is back and a2 covers it again; b1a is uncovered.
                ("2026-02-04", 4, 2, 2, 2, 50.0),
            ]
        );
        // Between the block events and the reassignments nothing is reported: same timestamp.
        // A person reassigned outside the catchment counts for nothing.
        e.person("2026-02-04", "r2", "reassign", P { block: None, ..resident("b2") });
        let last = replay(&e.0, Interval::Day, 1, now("2026-02-04")).pop().unwrap();
        assert_eq!(last.residents, 1);
    }

    #[test]
    fn the_cache_reads_only_new_events_and_matches_a_full_replay() {
        // Split the sequence at every position, with a request right after the last write
        // before the split: the replay carried over must give the points of one full replay.
        let events = sequence().0;
        let full = replay(&events, Interval::Day, 1, now("2026-01-20"));
        for cut in 0..events.len() {
            let mut r = Replay::new(1);
            for e in &events[..cut] {
                r.apply(e.row());
            }
            if let Some(e) = cut.checked_sub(1).map(|i| &events[i]) {
                let at = DateTime::parse_from_rfc3339(&e.ts).unwrap().with_timezone(&Utc);
                assert_eq!(r.daily(at).last().unwrap().date, at.date_naive().to_string());
            }
            for e in &events[cut..] {
                r.apply(e.row());
            }
            assert_eq!(r.daily(now("2026-01-20")), full, "cut at {cut}");
        }
    }

    #[test]
    fn late_and_unreadable_timestamps() {
        let mut e = sequence();
        e.person("garbage", "a9", "insert", ambassador("b1"));
        // An event stamped before the last one counts from the replay's instant on.
        e.person("2026-01-06", "a8", "insert", ambassador("b1"));
        let points = replay(&e.0, Interval::Day, 1, now("2026-01-12"));
        assert_eq!(points.len(), 8);
        assert_eq!(summary(&points)[7], ("2026-01-12", 1, 1, 2, 1, 100.0));
    }
}
