//! Coverage over time, replayed from the history table: every person and block change is
//! applied in order, and the coverage at the end of each day (or ISO week) is reported.
//!
//! The replay knows each person's role, activity and the block they count for after every
//! change. One approximation: an ambassador whose adopted block was removed counts for no block
//! here (the live summary falls back to their home block, which the history does not record).

use std::collections::{HashMap, HashSet};

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use super::AppError;
use crate::core::Role;
use crate::store::{HistoryEvent, Store};

/// Length of a reporting period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    /// Calendar days (UTC).
    Day,
    /// ISO weeks, labelled by their Monday.
    Week,
}

/// Coverage at the end of one period.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HistoryPoint {
    /// The day (or the Monday of the week), `YYYY-MM-DD`.
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

/// The state the replay keeps: blocks, and per person (role, block counted for, active).
#[derive(Debug, Default)]
struct Replay {
    blocks: HashSet<String>,
    people: HashMap<String, (Role, Option<String>, bool)>,
}

impl Replay {
    fn apply(&mut self, e: HistoryEvent) {
        match (e.entity.as_str(), e.action.as_str()) {
            ("block", "delete") => {
                self.blocks.remove(&e.entity_id);
            }
            ("block", _) => {
                self.blocks.insert(e.entity_id);
            }
            ("person", "delete") => {
                self.people.remove(&e.entity_id);
            }
            ("person", _) => {
                let role = e.role.unwrap_or(Role::Resident);
                self.people.insert(e.entity_id, (role, e.block_id, e.active.unwrap_or(true)));
            }
            _ => {}
        }
    }

    fn point(&self, date: NaiveDate, target: u32) -> HistoryPoint {
        let mut per_block: HashMap<&str, u64> = HashMap::new();
        let (mut ambassadors, mut residents) = (0, 0);
        for (role, block, active) in self.people.values() {
            let Some(block) = block.as_deref().filter(|b| self.blocks.contains(*b)) else { continue };
            match role {
                Role::Resident => residents += 1,
                Role::Ambassador if *active => {
                    ambassadors += 1;
                    *per_block.entry(block).or_default() += 1;
                }
                Role::Ambassador => {}
            }
        }
        let covered = per_block.values().filter(|n| **n >= u64::from(target)).count() as u64;
        let blocks = self.blocks.len() as u64;
        let pct = if blocks == 0 { 0.0 } else { (10_000.0 * covered as f64 / blocks as f64).round() / 100.0 };
        HistoryPoint {
            date: date.to_string(),
            coverage_pct: pct,
            covered_blocks: covered,
            blocks,
            ambassadors,
            residents,
        }
    }
}

/// The period a timestamp falls in.
fn period(ts: &str, interval: Interval) -> Option<NaiveDate> {
    let day = NaiveDate::parse_from_str(ts.get(..10)?, "%Y-%m-%d").ok()?;
    Some(match interval {
        Interval::Day => day,
        Interval::Week => day - chrono::Days::new(u64::from(day.weekday().num_days_from_monday())),
    })
}

/// Replay `events` (oldest first) and report coverage at the end of every period that had a
/// change, for `target` ambassadors per block.
pub fn replay(events: impl IntoIterator<Item = HistoryEvent>, interval: Interval, target: u32) -> Vec<HistoryPoint> {
    let mut state = Replay::default();
    let mut out = Vec::new();
    let mut current: Option<NaiveDate> = None;
    for e in events {
        let Some(p) = period(&e.ts, interval) else { continue };
        if let Some(c) = current
            && c != p
        {
            out.push(state.point(c, target));
        }
        current = Some(p);
        state.apply(e);
    }
    if let Some(c) = current {
        out.push(state.point(c, target));
    }
    out
}

/// Coverage over time from the stored history.
pub fn coverage_history(store: &dyn Store, interval: Interval, target: u32) -> Result<Vec<HistoryPoint>, AppError> {
    Ok(replay(store.history_events()?, interval, target))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(day: &str, entity: &str, id: &str, action: &str, person: Option<(Role, Option<&str>, bool)>) -> HistoryEvent {
        HistoryEvent {
            ts: format!("{day}T10:00:00.000Z"),
            entity: entity.into(),
            entity_id: id.into(),
            action: action.into(),
            role: person.map(|p| p.0),
            block_id: person.and_then(|p| p.1.map(str::to_string)),
            active: person.map(|p| p.2),
        }
    }

    fn sequence() -> Vec<HistoryEvent> {
        use Role::*;
        vec![
            ev("2026-01-05", "block", "b1", "insert", None),
            ev("2026-01-05", "block", "b2", "insert", None),
            ev("2026-01-05", "person", "r1", "insert", Some((Resident, Some("b1"), true))),
            // Added, then adopts b2 the same day: only the end of the day counts.
            ev("2026-01-06", "person", "a1", "insert", Some((Ambassador, Some("b1"), true))),
            ev("2026-01-06", "person", "a1", "update", Some((Ambassador, Some("b2"), true))),
            ev("2026-01-07", "person", "a2", "insert", Some((Ambassador, Some("b1"), true))),
            ev("2026-01-08", "person", "a2", "delete", Some((Ambassador, Some("b1"), false))),
            ev("2026-01-12", "block", "b2", "delete", None),
        ]
    }

    fn summary(points: &[HistoryPoint]) -> Vec<(&str, u64, u64, u64, u64, f64)> {
        points
            .iter()
            .map(|p| (p.date.as_str(), p.blocks, p.covered_blocks, p.ambassadors, p.residents, p.coverage_pct))
            .collect()
    }

    #[test]
    fn daily_replay_follows_adds_adoptions_deletes_and_block_removal() {
        let points = replay(sequence(), Interval::Day, 1);
        assert_eq!(
            summary(&points),
            [
                ("2026-01-05", 2, 0, 0, 1, 0.0),
                ("2026-01-06", 2, 1, 1, 1, 50.0),
                ("2026-01-07", 2, 2, 2, 1, 100.0),
                ("2026-01-08", 2, 1, 1, 1, 50.0),
                // b2 is gone: its adopter counts for nothing, b1 is uncovered.
                ("2026-01-12", 1, 0, 0, 1, 0.0),
            ]
        );
    }

    #[test]
    fn weekly_replay_reports_the_end_of_each_week() {
        let points = replay(sequence(), Interval::Week, 1);
        assert_eq!(summary(&points), [("2026-01-05", 2, 1, 1, 1, 50.0), ("2026-01-12", 1, 0, 0, 1, 0.0)]);
    }

    #[test]
    fn target_and_inactive_ambassadors() {
        let mut events = sequence();
        events.truncate(6); // up to a2 joining b1 on the 7th
        events.push(ev("2026-01-07", "person", "a3", "insert", Some((Role::Ambassador, Some("b1"), false))));
        let points = replay(events, Interval::Day, 2);
        let last = points.last().unwrap();
        assert_eq!((last.covered_blocks, last.ambassadors), (0, 2));
        assert!(replay(Vec::new(), Interval::Day, 1).is_empty());
    }
}
