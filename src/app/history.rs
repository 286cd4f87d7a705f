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

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc, Weekday};
use serde::Serialize;

use super::AppError;
use super::layers::{BLOCKS, BlocksAsOf, CollectionKey, Layers};
use crate::core::coverage::{BlockCounts, percent};
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

use super::live::tally::{BlockTally, Ms, PersonKeys, Tally, parse_ms};

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
/// order with [`Replay::apply`]; ask for the daily points with [`Replay::daily`]. The counting
/// itself is the live state's [`Tally`]; the replay adds the calendar.
#[derive(Debug)]
pub struct Replay {
    tally: Tally,
    /// The day being replayed; its point is not closed yet.
    day: Option<NaiveDate>,
    /// One point per closed day, oldest first, without gaps.
    closed: Vec<HistoryPoint>,
    /// Per closed day (parallel to `closed`), the blocks whose counts changed that day with
    /// their counts at its end: every block's state at the end of any day is the last entry
    /// for it up to that day ([`Replay::blocks_at_end_of`]). Its size is bounded by the
    /// history's, and most rows (a bulk import's) touch a block already touched that day.
    marks: Vec<Box<[Mark]>>,
    last_seq: i64,
    /// The last timestamp parsed: a bulk import writes thousands of rows with the same one.
    last_ts: (String, Ms),
}

impl Replay {
    /// An empty replay counting a block as covered with `target` active ambassadors.
    pub fn new(target: u32) -> Replay {
        Replay::sharing_person_keys(target, PersonKeys::default())
    }

    /// An empty replay that numbers people with `keys` (the live state's, say: see
    /// [`Tally::sharing_person_keys`]).
    pub fn sharing_person_keys(target: u32, keys: PersonKeys) -> Replay {
        let mut tally = Tally::sharing_person_keys(target, false, keys);
        tally.track_blocks();
        Replay { tally, day: None, closed: Vec::new(), marks: Vec::new(), last_seq: 0, last_ts: (String::new(), 0) }
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
        if !matches!(e.entity, "person" | "block") {
            return;
        }
        let Some(t) = self.parse_ts(e.ts) else { return };
        let t = t.max(self.tally.clock());
        let day = day_of(t);
        match self.day {
            None => self.day = Some(day),
            Some(_) => {
                while self.day.is_some_and(|d| d < day) {
                    self.close_day();
                }
            }
        }
        self.tally.advance(t);
        self.tally.apply_row(e);
    }

    /// One point per day from the first event's day to today (UTC), oldest first; today's (or
    /// the last event's day, if that is later) is the state at `now`. Days without events repeat
    /// the previous state, except for adoptions that lapsed on them. Empty without events.
    pub fn daily(&mut self, now: DateTime<Utc>) -> Vec<HistoryPoint> {
        self.catch_up_to(now);
        let Some(day) = self.day else { return Vec::new() };
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

    /// Record the point of the current day (as of its last millisecond) and move to the next.
    fn close_day(&mut self) {
        let Some(day) = self.day else { return };
        let next = day + Days::new(1);
        self.tally.advance(start_of(next) - 1);
        self.tally.place_adopters();
        let point = self.point(day);
        self.closed.push(point);
        let (touched, _) = self.tally.take_dirty();
        let marks = touched.into_iter().map(|key| Mark::of(key, self.tally.block(key))).collect();
        self.marks.push(marks);
        self.day = Some(next);
    }

    /// Close every day before `now`'s and bring the open day up to `now`, as
    /// [`Replay::daily`] reports it.
    fn catch_up_to(&mut self, now: DateTime<Utc>) {
        let today = now.date_naive();
        while self.day.is_some_and(|d| d < today) {
            self.close_day();
        }
        if self.day.is_some() {
            self.tally.advance(now.timestamp_millis());
            self.tally.place_adopters();
        }
    }

    /// Residents and active ambassadors of each block of `ids` at the end of `day` (UTC), as
    /// the daily points count them: a block outside the catchment that day has none. The open
    /// day and later ones are the state at `now`; days before the first event have nothing.
    pub fn blocks_at_end_of<'a>(
        &mut self,
        day: NaiveDate,
        now: DateTime<Utc>,
        ids: impl Iterator<Item = &'a str>,
    ) -> Vec<BlockCounts> {
        let Some(open) = self.day else { return ids.map(|_| BlockCounts::default()).collect() };
        if day >= open || day >= now.date_naive() {
            self.catch_up_to(now);
        }
        let open = self.day.unwrap_or(open);
        let first = open - Days::new(self.marks.len() as u64);
        let tally = &self.tally;
        if day >= open {
            let now = |k: u32| Mark::of(k, tally.block(k)).counts();
            return ids.map(|id| tally.key_of(id).map(now).unwrap_or_default()).collect();
        }
        let mut state = vec![BlockCounts::default(); tally.block_keys()];
        if day >= first {
            let days = (day - first).num_days() as usize + 1;
            for mark in self.marks.iter().take(days).flat_map(|m| m.iter()) {
                state[mark.key as usize] = mark.counts();
            }
        }
        ids.map(|id| tally.key_of(id).and_then(|k| state.get(k as usize).copied()).unwrap_or_default()).collect()
    }

    fn point(&self, day: NaiveDate) -> HistoryPoint {
        let t = self.tally.totals();
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

/// One block's counts at the end of a day (zero when it was outside the catchment), packed:
/// a county's first day marks every block.
#[derive(Debug, Clone, Copy)]
struct Mark {
    key: u32,
    residents: u32,
    ambassadors: u32,
}

impl Mark {
    fn of(key: u32, b: BlockTally) -> Mark {
        let n = |x: u64| if b.live { u32::try_from(x).unwrap_or(u32::MAX) } else { 0 };
        Mark { key, residents: n(b.residents), ambassadors: n(b.ambassadors) }
    }

    fn counts(self) -> BlockCounts {
        BlockCounts { residents: self.residents.into(), ambassadors: self.ambassadors.into() }
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
    /// The person keys a new replay numbers people with (the live state's, when given).
    keys: PersonKeys,
    /// The last [`HistoryCache::blocks_as_of`] answer: a map's tiles for one day ask for the
    /// same day again and again.
    as_of: Option<(AsOfKey, BlocksAsOf)>,
}

/// What a [`BlocksAsOf`] was computed for: the day, the blocks collection (positions), and for
/// the current day the snapshot's cursor (earlier days are final).
#[derive(Debug)]
struct AsOfKey {
    day: NaiveDate,
    blocks: CollectionKey,
    cursor: Option<i64>,
}

impl HistoryCache {
    /// Number people as `keys` do in replays started from now on (the live state's keys: a
    /// county's million ids are then kept once).
    pub fn share_person_keys(&mut self, keys: PersonKeys) {
        self.keys = keys;
    }

    /// Coverage per `interval` from the first change to `now`, for `target`.
    pub fn points(
        &mut self,
        store: &dyn Store,
        interval: Interval,
        target: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<HistoryPoint>, AppError> {
        self.catch_up(store, target)?;
        let Some(replay) = self.replay.as_mut() else { return Ok(Vec::new()) };
        Ok(per_interval(replay.daily(now), interval))
    }

    /// Residents and active ambassadors of each block of `ids` at the end of `day`, as the
    /// points of [`HistoryCache::points`] count them (see [`Replay::blocks_at_end_of`]). Days
    /// before the replay's open day are final, so they are answered without reading the store;
    /// later ones first read the rows written since.
    pub fn blocks_at_end_of<'a>(
        &mut self,
        store: &dyn Store,
        target: u32,
        day: NaiveDate,
        now: DateTime<Utc>,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<Vec<BlockCounts>, AppError> {
        let fresh = self.replay.as_ref().is_none_or(|r| r.tally.target() != u64::from(target.max(1)));
        let settled = !fresh && self.replay.as_ref().and_then(|r| r.day).is_some_and(|open| day < open);
        if !settled {
            self.catch_up(store, target)?;
        }
        let Some(replay) = self.replay.as_mut() else { return Ok(Vec::new()) };
        Ok(replay.blocks_at_end_of(day, now, ids))
    }

    /// The blocks of `layers` with their counts at the end of `day` (UTC; a later day is
    /// today's, as of `now`), for `datetime=` on the blocks collection.
    pub fn blocks_as_of(
        &mut self,
        store: &dyn Store,
        layers: &Layers,
        day: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<BlocksAsOf, AppError> {
        let day = day.min(now.date_naive());
        let Some(blocks) = layers.collection(BLOCKS) else { return Ok(BlocksAsOf::new(layers, day, Vec::new())) };
        let cursor = (day == now.date_naive()).then_some(layers.cursor);
        if let Some((key, hit)) = &self.as_of
            && key.day == day
            && key.cursor == cursor
            && key.blocks.matches(blocks)
        {
            return Ok(hit.clone());
        }
        let ids = blocks.features.iter().map(|f| f.id.as_str());
        let counts = self.blocks_at_end_of(store, layers.target, day, now, ids)?;
        let as_of = BlocksAsOf::new(layers, day, counts);
        self.as_of = Some((AsOfKey { day, blocks: blocks.key(), cursor }, as_of.clone()));
        Ok(as_of)
    }

    /// Read the rows written since the last call into the replay (a new one for another
    /// target).
    fn catch_up(&mut self, store: &dyn Store, target: u32) -> Result<(), AppError> {
        if self.replay.as_ref().is_none_or(|r| r.tally.target() != u64::from(target.max(1))) {
            self.replay = Some(Replay::sharing_person_keys(target, self.keys.clone()));
        }
        let Some(replay) = self.replay.as_mut() else { return Ok(()) };
        // Batches by seq: a full batch means there may be more.
        while store.visit_history(replay.last_seq(), BATCH, &mut |row| replay.apply(row))? == BATCH {}
        Ok(())
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
    use crate::core::Role;

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
    fn a_replay_sharing_person_keys_counts_as_one_with_its_own() {
        let events = sequence();
        let day = NaiveDate::from_ymd_opt(2026, 1, 9).unwrap();
        let run = |mut r: Replay| {
            for e in &events.0 {
                r.apply(e.row());
            }
            let points = r.daily(now("2026-01-13"));
            (points, r.blocks_at_end_of(day, now("2026-01-13"), ["b1", "b2"].into_iter()))
        };
        // Another tally numbered these people first, in another order, with others between.
        let mut live = Tally::new(1, false);
        let facts = crate::app::live::tally::PersonFacts {
            role: crate::core::Role::Resident,
            active: true,
            home: Some("b1"),
            adopted: None,
            until: None,
        };
        for id in ["zz", "a2", "yy"] {
            live.upsert_person(id, facts);
        }
        let shared = run(Replay::sharing_person_keys(1, live.person_keys()));
        assert_eq!(shared, run(Replay::new(1)));
        // The ids the replay met first (r1, a1) were numbered for the other tally too.
        assert_eq!(live.person_keys().key_count(), 5);
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

    /// Every day's per-block counts add up to that day's point, for every sequence above and
    /// every target; days before the first event have nothing and later ones are as of now.
    #[test]
    fn blocks_at_the_end_of_each_day_add_up_to_its_point() {
        let mut lapses = Events(Vec::new());
        lapses
            .block("2026-03-01", "b1", "insert")
            .block("2026-03-01", "b2", "insert")
            .person("2026-03-01", "a1", "insert", adopter("b1", "b2", Some("2026-03-03T00:00:00Z")))
            .person("2026-03-01", "a2", "insert", adopter("b2", "b1", Some("2026-03-04T15:30:00Z")))
            .person("2026-03-02", "r1", "insert", resident("b2"));
        let mut reimport = sequence();
        reimport.block("2026-01-14", "b3", "insert").person("2026-01-14", "r3", "insert", resident("b3")).block(
            "2026-01-16",
            "b2",
            "insert",
        );
        for (events, now) in
            [(sequence(), now("2026-01-13")), (lapses, now("2026-03-06")), (reimport, now("2026-01-20"))]
        {
            let mut ids: Vec<String> =
                events.0.iter().filter(|e| e.entity == "block").map(|e| e.entity_id.clone()).collect();
            ids.sort();
            ids.dedup();
            for target in [1, 2] {
                let points = replay(&events.0, Interval::Day, target, now);
                let mut r = Replay::new(target);
                for e in &events.0 {
                    r.apply(e.row());
                }
                // Asked out of order: a later question never changes an earlier answer.
                for p in points.iter().rev().chain(points.iter()) {
                    let day = NaiveDate::parse_from_str(&p.date, "%Y-%m-%d").unwrap();
                    let counts = r.blocks_at_end_of(day, now, ids.iter().map(String::as_str));
                    let residents: u64 = counts.iter().map(|c| c.residents).sum();
                    let ambassadors: u64 = counts.iter().map(|c| c.ambassadors).sum();
                    let covered = counts.iter().filter(|c| c.ambassadors >= u64::from(target)).count() as u64;
                    assert_eq!(
                        (residents, ambassadors, covered),
                        (p.residents, p.ambassadors, p.covered_blocks),
                        "{p:?}"
                    );
                }
                let first = NaiveDate::parse_from_str(&points[0].date, "%Y-%m-%d").unwrap();
                let before = r.blocks_at_end_of(first - Days::new(1), now, ids.iter().map(String::as_str));
                assert!(before.iter().all(|c| *c == BlockCounts::default()));
                let later = r.blocks_at_end_of(now.date_naive() + Days::new(30), now, ids.iter().map(String::as_str));
                let today = r.blocks_at_end_of(now.date_naive(), now, ids.iter().map(String::as_str));
                assert_eq!(later, today);
            }
        }
        // Named blocks, not only sums: on the 7th b1 had r1 and a2, a1 adopted b2.
        let mut r = Replay::new(1);
        for e in &sequence().0 {
            r.apply(e.row());
        }
        let day = NaiveDate::from_ymd_opt(2026, 1, 7).unwrap();
        let counts = r.blocks_at_end_of(day, now("2026-01-13"), ["b1", "b2", "nope"].into_iter());
        let pair = |c: &BlockCounts| (c.residents, c.ambassadors);
        assert_eq!(counts.iter().map(pair).collect::<Vec<_>>(), [(1, 1), (0, 1), (0, 0)]);
    }
}
