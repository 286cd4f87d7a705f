//! Persistence behind a small trait. [`SqliteStore`] (embedded, the default) is the only
//! implementation today; a PostgreSQL/PostGIS store for multi-instance deployments can implement
//! the same trait. Stores keep data and history; they do no geometry (assignment happens in
//! `core`, before the store is called).

mod schema;
mod sqlite;

use std::collections::HashMap;

use crate::core::coverage::BlockCounts;
use crate::core::{Block, IndicatorValue, Person, Resource};

pub use sqlite::SqliteStore;

/// Errors from a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no (locked, corrupt, disk full, constraint...).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database file was written by a newer `belong`.
    #[error("database schema version {found} is newer than this build supports ({supported}); upgrade belong")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
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
pub trait Store {
    /// Replace the whole catchment and apply the given reassignments of people and resources,
    /// atomically: on error the previous catchment is intact.
    fn replace_blocks(
        &mut self,
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
    fn upsert_people(&mut self, people: &[Person], source: &str) -> Result<Upserted, StoreError>;
    /// Delete one person; `false` when there was none.
    fn delete_person(&mut self, id: &str) -> Result<bool, StoreError>;
    /// One person by id.
    fn person(&self, id: &str) -> Result<Option<Person>, StoreError>;
    /// People matching the filter, in id order.
    fn people(&self, filter: &PeopleFilter) -> Result<Vec<Person>, StoreError>;
    /// One page of the people matching the filter, in id order, and how many match in all.
    fn people_page(&self, filter: &PeopleFilter, offset: u64, limit: u64) -> Result<(Vec<Person>, u64), StoreError>;
    /// Every person's id and location (for reassignment).
    fn people_locations(&self) -> Result<Vec<Located>, StoreError>;
    /// Insert or update resources by id.
    fn upsert_resources(&mut self, resources: &[Resource], source: &str) -> Result<Upserted, StoreError>;
    /// Every resource, in id order.
    fn resources(&self) -> Result<Vec<Resource>, StoreError>;
    /// Every resource's id and location (for reassignment).
    fn resource_locations(&self) -> Result<Vec<Located>, StoreError>;
    /// Insert or update indicator values; `no_data` keys (block, indicator, date) are removed.
    fn upsert_indicators(
        &mut self,
        values: &[IndicatorValue],
        no_data: &[(String, String, Option<String>)],
        source: &str,
    ) -> Result<Upserted, StoreError>;
    /// Every indicator value, ordered by block, indicator, date.
    fn indicators(&self) -> Result<Vec<IndicatorValue>, StoreError>;
    /// Per-block resident and active-ambassador counts, plus the number of people outside.
    /// Adoptions of blocks that no longer exist fall back to the ambassador's home block.
    fn coverage_counts(&self) -> Result<(HashMap<String, BlockCounts>, u64), StoreError>;
    /// Store a new token's hash; returns its id.
    fn create_token(
        &mut self,
        hash: &str,
        role: crate::core::AccessRole,
        name: Option<&str>,
    ) -> Result<i64, StoreError>;
    /// Every token, newest last.
    fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError>;
    /// The live (not revoked) token with this hash.
    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenInfo>, StoreError>;
    /// Revoke a token; `false` when there is no such live token.
    fn revoke_token(&mut self, id: i64) -> Result<bool, StoreError>;
    /// Number of history rows (for tests and `belong status`).
    fn history_len(&self) -> Result<u64, StoreError>;
    /// The person and block rows of the history, oldest first (for coverage over time).
    fn history_events(&self) -> Result<Vec<HistoryEvent>, StoreError>;
}
