//! Following the change feed: the watcher that applies other processes' and instances' writes,
//! lapses adoptions on time, and remembers whether the database answered.
//!
//! The watcher waits on [`Store::wait_for_change`](crate::store::Store::wait_for_change): SQLite
//! sleeps for the poll interval (another process's commit is found at the next look at the
//! feed's head); PostgreSQL wakes on `NOTIFY` as soon as another instance commits. A wake-up
//! is only a hint: what changed is always read from the feed after the cursor, so a missed
//! notification (a dropped connection) costs one poll interval, never a change.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Live;
use crate::app::AppError;
use crate::store::StoreError;

/// Whether the database answers, as the watcher last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbState {
    /// Not looked at yet.
    Unknown,
    /// The last look at the feed succeeded.
    Ok,
    /// The database could not be reached; reads are served from memory, writes answer 503.
    Unavailable {
        /// The store's message.
        error: String,
        /// When it was first seen unreachable.
        since: DateTime<Utc>,
    },
}

/// The watcher's view of the database, shared with `/health`.
#[derive(Debug)]
pub struct FeedStatus(Mutex<DbState>);

impl Default for FeedStatus {
    fn default() -> Self {
        FeedStatus(Mutex::new(DbState::Unknown))
    }
}

impl FeedStatus {
    /// The state now.
    pub fn get(&self) -> DbState {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Record the outcome of one look at the feed; returns true when the state changed
    /// between reachable and unreachable (worth a log line).
    fn record(&self, outcome: Result<(), &AppError>) -> bool {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let was_down = matches!(*state, DbState::Unavailable { .. });
        match outcome {
            Ok(()) => {
                *state = DbState::Ok;
                was_down
            }
            Err(AppError::Store(StoreError::Unavailable(e))) => {
                if !was_down {
                    *state = DbState::Unavailable { error: e.clone(), since: Utc::now() };
                }
                !was_down
            }
            // A real error (corrupt row...) says the database answered.
            Err(_) => {
                *state = DbState::Ok;
                was_down
            }
        }
    }
}

impl Live {
    /// The database as the watcher last saw it.
    pub fn db_state(&self) -> DbState {
        self.feed.get()
    }

    /// One look at the feed: lapse adoptions, then apply what others committed.
    fn follow_once(&self, now: DateTime<Utc>) -> Result<(), AppError> {
        if self.tick(now) {
            tracing::info!("an adoption lapsed; republished the blocks it changed");
        }
        let head = self.store.last_change()?;
        let seen = self.layers.load().cursor;
        if head > seen && self.catch_up()? {
            tracing::info!(changes = head - seen, "the database was changed by another process; caught up");
        }
        Ok(())
    }

    /// Follow the change feed for writes by other processes and instances, waking on the
    /// store's change notifications or every `every` at the latest, and lapse adoptions on
    /// time. Runs until the task is aborted.
    pub fn watch(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let live = self.clone();
        tokio::spawn(async move {
            loop {
                let live = live.clone();
                let done = tokio::task::spawn_blocking(move || {
                    let outcome = live.follow_once(Utc::now());
                    if live.feed.record(outcome.as_ref().map(|_| ())) {
                        match &outcome {
                            Ok(()) => tracing::warn!("the database answers again; caught up"),
                            Err(e) => tracing::error!("the database is unreachable; serving reads from memory: {e}"),
                        }
                    } else if let Err(e) = &outcome
                        && !matches!(e, AppError::Store(StoreError::Unavailable(_)))
                    {
                        tracing::error!("following the change feed: {e}");
                    }
                    // Wait for the next change (or the next poll). While the database is away,
                    // the wait fails at once: sleep instead of spinning.
                    match live.store.wait_for_change(every) {
                        Ok(_) => {}
                        Err(_) => std::thread::sleep(every),
                    }
                })
                .await;
                if let Err(e) = done {
                    tracing::error!("following the change feed: {e}");
                    tokio::time::sleep(every).await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unavailable() -> AppError {
        AppError::Store(StoreError::Unavailable("connection refused".into()))
    }

    #[test]
    fn state_follows_the_database_and_reports_only_transitions() {
        let status = FeedStatus::default();
        assert_eq!(status.get(), DbState::Unknown);
        assert!(!status.record(Ok(())), "unknown → ok is not news");
        assert_eq!(status.get(), DbState::Ok);
        assert!(status.record(Err(&unavailable())), "ok → unavailable is logged");
        let DbState::Unavailable { since, error } = status.get() else { panic!("{:?}", status.get()) };
        assert_eq!(error, "connection refused");
        assert!(!status.record(Err(&unavailable())), "still away: no new log line");
        assert!(matches!(status.get(), DbState::Unavailable { since: s, .. } if s == since), "keeps the first instant");
        assert!(status.record(Ok(())), "back: logged");
        assert_eq!(status.get(), DbState::Ok);
        let corrupt = AppError::Store(StoreError::Corrupt { what: "row", id: "x".into(), reason: "bad".into() });
        assert!(!status.record(Err(&corrupt)), "a corrupt row means the database answered");
        assert_eq!(status.get(), DbState::Ok);
    }
}
