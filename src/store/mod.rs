//! Persistence behind a small trait, shared by threads (`Arc<dyn Store>`, `&self` methods).
//! [`SqliteStore`] (embedded, the default) and [`PostgresStore`] (PostGIS, for several instances on
//! one database; work in progress) implement it and pass the same contract tests
//! (`tests/store_contract.rs`). Stores keep data and history; they do no geometry (assignment happens in
//! `core`, before the store is called).

pub mod dump;
mod postgres;
mod schema;
mod sqlite;
mod target;

use std::collections::HashMap;
use std::sync::Arc;

use crate::core::coverage::BlockCounts;
use crate::core::{Area, AreaLayer, Block, IndicatorValue, Person, Resource};

pub use dump::{DumpBatch, TableCounts};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use target::{DbTarget, redact};

/// Open (creating and migrating when needed) the store `target` names.
pub fn open(target: &DbTarget) -> Result<Arc<dyn Store>, StoreError> {
    match target {
        DbTarget::Sqlite(path) => Ok(Arc::new(SqliteStore::open(path)?)),
        DbTarget::Postgres(url) => Ok(Arc::new(PostgresStore::open(url)?)),
    }
}

/// Errors from a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no (corrupt, disk full, constraint, SQL error...). Backend-neutral:
    /// each store wraps its own driver's error.
    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database cannot be reached or is busy past the timeout; the same call may succeed
    /// later (the HTTP service answers 503 with Retry-After).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A row with this key exists already.
    #[error("{what} '{id}' exists already")]
    Conflict {
        /// `person`, ...
        what: &'static str,
        /// The key.
        id: String,
    },
    /// The database file was written by a newer `belong`.
    #[error("database schema version {found} is newer than this build supports ({supported}); upgrade belong")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// A restore (see [`Store::restore`]) found the database holding data already.
    #[error("the database is not empty: it holds {holds}")]
    NotEmpty {
        /// What it holds ([`TableCounts::holdings`]).
        holds: String,
    },
    /// A stored value could not be decoded (e.g. corrupt geometry).
    #[error("corrupt stored {what} '{id}': {reason}")]
    Corrupt {
        /// `block geometry`, `attributes`, ...
        what: &'static str,
        /// Id of the row.
        id: String,
        /// Decoder message.
        reason: String,
    },
}

/// A person's new home block after the catchment changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Reassignment {
    /// Person or resource id.
    pub id: String,
    /// New home block (`None`: now outside the catchment).
    pub block_id: Option<String>,
}

/// What a block import changed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct BlocksReplaced {
    /// Blocks now stored.
    pub blocks: usize,
    /// Ids that were not there before.
    pub added: usize,
    /// Ids that are gone.
    pub removed: usize,
    /// Ids kept whose geometry, name or attributes changed.
    pub changed: usize,
    /// People whose home block changed.
    pub people_reassigned: usize,
    /// Resources whose block changed.
    pub resources_reassigned: usize,
}

/// What an area import changed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AreasReplaced {
    /// The layer.
    pub layer: String,
    /// Areas now stored in it.
    pub areas: usize,
    /// Areas it held before (0 for a new layer).
    pub previous: usize,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Upserted {
    /// New rows.
    pub inserted: usize,
    /// Existing rows that changed.
    pub updated: usize,
    /// Existing rows that were already identical.
    pub unchanged: usize,
}

/// A minimal person location for reassignment after a block import.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    /// Person or resource id.
    pub id: String,
    /// Longitude (WGS84).
    pub lon: f64,
    /// Latitude (WGS84).
    pub lat: f64,
    /// Block currently stored.
    pub block_id: Option<String>,
}

/// Filters for listing people.
#[derive(Debug, Clone, Default)]
pub struct PeopleFilter {
    /// Only this role.
    pub role: Option<crate::core::Role>,
    /// Only people whose home or adopted block is this.
    pub block_id: Option<String>,
    /// Only people with this `interested` flag.
    pub interested: Option<bool>,
}

/// One person or block change from the history table. Carries no personal data: ids, the
/// role, the block the person counts for and whether they are active.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    /// Position in the history (grows with every row).
    pub seq: i64,
    /// RFC 3339 UTC.
    pub ts: String,
    /// `person` or `block`.
    pub entity: String,
    /// Person or block id.
    pub entity_id: String,
    /// `insert`, `update`, `delete` or `reassign`.
    pub action: String,
    /// For people: the role after the change.
    pub role: Option<crate::core::Role>,
    /// For people: the block they count for after the change (`None`: outside).
    pub block_id: Option<String>,
    /// For people: active after the change (`false` once deleted).
    pub active: Option<bool>,
    /// JSON; for a person with an adoption: `home_block`, `adopted_block`, `adopted_until`.
    pub detail: Option<String>,
}

impl HistoryEvent {
    /// The event as a borrowed row.
    pub fn row(&self) -> HistoryRow<'_> {
        HistoryRow {
            seq: self.seq,
            ts: &self.ts,
            entity: &self.entity,
            entity_id: &self.entity_id,
            action: &self.action,
            role: self.role,
            block_id: self.block_id.as_deref(),
            active: self.active,
            detail: self.detail.as_deref(),
        }
    }
}

/// A [`HistoryEvent`] lent by [`Store::visit_history`] without copying its text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryRow<'a> {
    /// See [`HistoryEvent::seq`].
    pub seq: i64,
    /// See [`HistoryEvent::ts`].
    pub ts: &'a str,
    /// See [`HistoryEvent::entity`].
    pub entity: &'a str,
    /// See [`HistoryEvent::entity_id`].
    pub entity_id: &'a str,
    /// See [`HistoryEvent::action`].
    pub action: &'a str,
    /// See [`HistoryEvent::role`].
    pub role: Option<crate::core::Role>,
    /// See [`HistoryEvent::block_id`].
    pub block_id: Option<&'a str>,
    /// See [`HistoryEvent::active`].
    pub active: Option<bool>,
    /// See [`HistoryEvent::detail`].
    pub detail: Option<&'a str>,
}

impl HistoryRow<'_> {
    /// An owned copy.
    pub fn to_event(&self) -> HistoryEvent {
        HistoryEvent {
            seq: self.seq,
            ts: self.ts.to_string(),
            entity: self.entity.to_string(),
            entity_id: self.entity_id.to_string(),
            action: self.action.to_string(),
            role: self.role,
            block_id: self.block_id.map(str::to_string),
            active: self.active,
            detail: self.detail.map(str::to_string),
        }
    }
}

/// What the coverage rule reads of one person (no personal data), lent by
/// [`Store::coverage_state`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoverageRow<'a> {
    /// Person id.
    pub id: &'a str,
    /// Resident or ambassador.
    pub role: crate::core::Role,
    /// Counts for coverage.
    pub active: bool,
    /// Block lived in (`None`: outside the catchment).
    pub home_block: Option<&'a str>,
    /// Block adopted, if any.
    pub adopted_block: Option<&'a str>,
    /// When the adoption lapses (RFC 3339 UTC), if it does.
    pub adopted_until: Option<&'a str>,
}

/// A stored bearer token (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    /// Stable number, used to revoke.
    pub id: i64,
    /// What it grants.
    pub role: crate::core::AccessRole,
    /// Free-text label ("Ana's laptop").
    pub name: Option<String>,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC, when revoked.
    pub revoked_at: Option<String>,
}

/// The storage contract. Every write is one transaction and appends to the history table.
pub trait Store: Send + Sync {
    /// Replace the whole catchment and apply the given reassignments of people and resources,
    /// atomically: on error the previous catchment is intact.
    fn replace_blocks(
        &self,
        blocks: &[Block],
        people: &[Reassignment],
        resources: &[Reassignment],
        source: &str,
    ) -> Result<BlocksReplaced, StoreError>;
    /// Every stored block, in id order.
    fn blocks(&self) -> Result<Vec<Block>, StoreError>;
    /// Block ids, in id order.
    fn block_ids(&self) -> Result<Vec<String>, StoreError>;
    /// Insert or update people by id (home blocks already assigned).
    fn upsert_people(&self, people: &[Person], source: &str) -> Result<Upserted, StoreError>;
    /// Insert one new person (home block already assigned); [`StoreError::Conflict`] when a
    /// person with that id exists. Check and insert are atomic.
    fn insert_person(&self, person: &Person, source: &str) -> Result<(), StoreError>;
    /// Delete one person; `false` when there was none.
    fn delete_person(&self, id: &str) -> Result<bool, StoreError>;
    /// One person by id.
    fn person(&self, id: &str) -> Result<Option<Person>, StoreError>;
    /// People matching the filter, in id order.
    fn people(&self, filter: &PeopleFilter) -> Result<Vec<Person>, StoreError>;
    /// One page of the people matching the filter, in id order, and how many match in all.
    fn people_page(&self, filter: &PeopleFilter, offset: u64, limit: u64) -> Result<(Vec<Person>, u64), StoreError>;
    /// Every person's id and location (for reassignment).
    fn people_locations(&self) -> Result<Vec<Located>, StoreError>;
    /// Insert or update resources by id.
    fn upsert_resources(&self, resources: &[Resource], source: &str) -> Result<Upserted, StoreError>;
    /// Every resource, in id order.
    fn resources(&self) -> Result<Vec<Resource>, StoreError>;
    /// Every resource's id and location (for reassignment).
    fn resource_locations(&self) -> Result<Vec<Located>, StoreError>;
    /// Insert or update indicator values; `no_data` keys (block, indicator, date) are removed.
    fn upsert_indicators(
        &self,
        values: &[IndicatorValue],
        no_data: &[(String, String, Option<String>)],
        source: &str,
    ) -> Result<Upserted, StoreError>;
    /// Every indicator value, ordered by block, indicator, date.
    fn indicators(&self) -> Result<Vec<IndicatorValue>, StoreError>;
    /// Per-block resident and active-ambassador counts, plus the number of people outside, now.
    fn coverage_counts(&self) -> Result<(HashMap<String, BlockCounts>, u64), StoreError> {
        self.coverage_counts_at(chrono::Utc::now())
    }
    /// [`Store::coverage_counts`] at the instant `now`: an ambassador counts for their adopted
    /// block while `now` is before `adopted_until`, else for their home block. Adoptions of
    /// blocks that no longer exist fall back to the home block too.
    fn coverage_counts_at(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(HashMap<String, BlockCounts>, u64), StoreError>;
    /// The earliest `adopted_until` later than `after`, if any (when coverage next changes
    /// without a write).
    fn next_adoption_expiry(
        &self,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError>;
    /// A number that changes whenever the catchment is replaced (block imports), so what is
    /// derived from block geometry alone (adjacency) can be cached across other writes.
    fn catchment_version(&self) -> Result<i64, StoreError>;
    /// Store a new token's hash; returns its id.
    fn create_token(&self, hash: &str, role: crate::core::AccessRole, name: Option<&str>) -> Result<i64, StoreError>;
    /// Every token, newest last.
    fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError>;
    /// The live (not revoked) token with this hash.
    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenInfo>, StoreError>;
    /// Revoke a token; `false` when there is no such live token.
    fn revoke_token(&self, id: i64) -> Result<bool, StoreError>;
    /// Everything coverage is computed from, in one consistent read: `block` is called with every
    /// block id, `person` with every person's [`CoverageRow`]; returns the change-feed position
    /// (history `seq`) that state is current to, so a reader can follow the feed from there.
    fn coverage_state(
        &self,
        block: &mut dyn FnMut(&str),
        person: &mut dyn FnMut(CoverageRow<'_>),
    ) -> Result<i64, StoreError>;
    /// The change cursor's head: the `seq` of the newest history row (0 when there is none).
    /// Every write appends rows; a reader that has applied every row up to its cursor catches
    /// up with [`Store::visit_history`] from there. Rows become visible in `seq` order: a
    /// reader never sees row `n + 1` without row `n`.
    fn last_change(&self) -> Result<i64, StoreError>;
    /// Wait until the change feed may have moved (another connection, process or instance
    /// committed a write) or `timeout` passes; returns `true` when woken by a change. A wake-up
    /// is only a hint to read the feed from the cursor: it never carries the change itself, and
    /// a missed one costs at most `timeout`. The default waits the full `timeout` (polling);
    /// PostgreSQL wakes on `LISTEN`/`NOTIFY`.
    fn wait_for_change(&self, timeout: std::time::Duration) -> Result<bool, StoreError> {
        std::thread::sleep(timeout);
        Ok(false)
    }
    /// Give back what the connections cache (page caches, idle connections) after bulk reads
    /// such as a service's start-up; later reads fill it again as needed. The default does
    /// nothing.
    fn release_memory(&self) {}
    /// Check that the database answers (for `/health`): `Unavailable` when it does not.
    fn ping(&self) -> Result<(), StoreError> {
        self.last_change().map(|_| ())
    }
    /// Number of history rows (for tests and `belong status`).
    fn history_len(&self) -> Result<u64, StoreError>;
    /// Call `visit` on up to `limit` rows of the history with `seq > after` (people, blocks,
    /// resources and the `import` row each import ends with), oldest first, and say how many
    /// there were: the change feed every reader of the live state follows. The rows are lent, not copied: a replay of
    /// coverage over time reads hundreds of thousands.
    fn visit_history(
        &self,
        after: i64,
        limit: usize,
        visit: &mut dyn FnMut(HistoryRow<'_>),
    ) -> Result<usize, StoreError>;
    /// [`Store::visit_history`], copied into a vector.
    fn history_events(&self, after: i64, limit: usize) -> Result<Vec<HistoryEvent>, StoreError> {
        let mut events = Vec::new();
        self.visit_history(after, limit, &mut |row| events.push(row.to_event()))?;
        Ok(events)
    }
    /// Replace area layer `layer` with `areas` in one transaction (creating the layer).
    fn replace_areas(&self, layer: &str, areas: &[Area], source: &str) -> Result<AreasReplaced, StoreError>;
    /// The areas of a layer, in id order (empty for an unknown layer).
    fn areas(&self, layer: &str) -> Result<Vec<Area>, StoreError>;
    /// Every area layer, by name.
    fn area_layers(&self) -> Result<Vec<AreaLayer>, StoreError>;
    /// A number that changes whenever area layer `layer` is replaced (0 before its first import).
    fn areas_version(&self, layer: &str) -> Result<i64, StoreError>;
    /// How many rows each table holds and where the change feed stands, in one consistent read.
    fn table_counts(&self) -> Result<TableCounts, StoreError>;
    /// Read every table in one consistent snapshot and hand it to `sink` in batches of at most
    /// a few thousand rows, in the order of [`DumpBatch`] (so memory stays bounded however big
    /// the campaign); returns the [`TableCounts`] of that same snapshot. An error from `sink`
    /// stops the dump and is returned.
    fn dump(&self, sink: &mut dyn FnMut(DumpBatch) -> Result<(), StoreError>) -> Result<TableCounts, StoreError>;
    /// Write the batches `next` yields until it yields `None` into this store, which must be
    /// empty ([`StoreError::NotEmpty`] otherwise), in one transaction: on any error, from `next`
    /// or the database, nothing is written. Rows are stored verbatim (history `seq`s and token
    /// ids kept); afterwards sequences continue past the copied ids and derived tables (counts)
    /// are rebuilt, so later writes continue the history.
    fn restore(&self, next: &mut dyn FnMut() -> Result<Option<DumpBatch>, StoreError>) -> Result<(), StoreError>;
}
