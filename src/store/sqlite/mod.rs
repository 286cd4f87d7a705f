//! The embedded SQLite store: one file, WAL journal, every write in one transaction.
//!
//! One writer connection (SQLite allows one writer at a time) behind a mutex, and a small pool
//! of read connections beside it: in WAL mode a reader sees the last committed state and never
//! waits for the writer, so a long import does not hold up `GET /people` or a token check.
//! The statements live in one file per entity ([`blocks`], [`people`], ...); this file holds
//! the connections and the [`Store`] implementation that hands each call to the right one.

mod areas;
mod blocks;
mod dump;
mod history;
mod indicators;
mod people;
mod resources;
mod tokens;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};

use super::{
    AreasReplaced, BlocksReplaced, DumpBatch, HistoryRow, Located, PeopleFilter, Reassignment, Store, StoreError,
    TableCounts, TokenInfo, Upserted, schema,
};
use crate::core::coverage::BlockCounts;
use crate::core::{AccessRole, Area, AreaLayer, Attributes, Block, IndicatorValue, Person, Resource};

/// Idle read connections kept open; more may be opened under load and are closed after use.
const IDLE_READERS: usize = 4;

/// The writer's page cache between bulk writes, KiB.
const SMALL_CACHE_KIB: i64 = 8_192;
/// The writer's page cache during a bulk write, KiB: 128 MiB unless
/// [`SqliteStore::limit_bulk_cache`] says less.
static BULK_CACHE_KIB: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(131_072);
/// Writes of at least this many rows are bulk writes.
const BULK_WRITE: usize = 1_000;

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    writer: Mutex<Connection>,
    /// `None` for a private in-memory database, which only its own connection can see: reads
    /// then use the writer.
    readers: Option<Readers>,
}

struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        let e = match e {
            rusqlite::Error::FromSqlConversionFailure(i, ty, source) => {
                match source.downcast::<people::CorruptValue>() {
                    Ok(bad) => return StoreError::Corrupt { what: bad.what, id: bad.id, reason: bad.reason },
                    Err(source) => rusqlite::Error::FromSqlConversionFailure(i, ty, source),
                }
            }
            e => e,
        };
        match e.sqlite_error_code() {
            // Another process held the database past the busy timeout: worth a retry.
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Database(Box::new(e)),
        }
    }
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path` and migrate it.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        create_private(path);
        let conn = Connection::open(path)?;
        let mut store = Self::init(conn)?;
        store.readers = Some(Readers { path: path.to_path_buf(), idle: Mutex::new(Vec::new()) });
        Ok(store)
    }

    /// A private in-memory database (tests).
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<SqliteStore, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Bigger pages mean fewer B-tree splits on bulk imports; only takes effect on a new file.
        conn.pragma_update(None, "page_size", 16_384)?;
        // WAL lets readers (the HTTP server) go on while an import writes.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // A small page cache between imports: a large one stays full once a few thousand writes
        // have gone through it (128 MiB of a service's resident memory). Bulk writes enlarge
        // it for their transaction ([`SqliteStore::bulk`]).
        conn.pragma_update(None, "cache_size", -SMALL_CACHE_KIB)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        schema::migrate(&mut conn)?;
        Ok(SqliteStore { writer: Mutex::new(conn), readers: None })
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-write rolled its transaction back (rusqlite's Transaction drops with a
        // rollback), so the connection is still good: take it back from the poisoned lock.
        self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Run one write (one transaction) on the writer connection.
    fn write<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        f(&mut self.writer())
    }

    /// Cap the page cache of bulk writes (imports) at `kib` KiB for every store of this
    /// process. The service sets it: an import over HTTP filled 128 MiB of cache beside the live
    /// state, where a command-line import has the machine to itself.
    pub fn limit_bulk_cache(kib: i64) {
        BULK_CACHE_KIB.fetch_min(kib.max(SMALL_CACHE_KIB), std::sync::atomic::Ordering::Relaxed);
    }

    /// Run a bulk write (an import: thousands of rows) with a large page cache, which keeps a
    /// million-row import from spilling pages mid-transaction; the cache shrinks back (freeing
    /// its pages) when the write is done.
    fn bulk<T>(&self, rows: usize, f: impl FnOnce(&mut Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        if rows < BULK_WRITE {
            return self.write(f);
        }
        let mut conn = self.writer();
        conn.pragma_update(None, "cache_size", -BULK_CACHE_KIB.load(std::sync::atomic::Ordering::Relaxed))?;
        let out = f(&mut conn);
        conn.pragma_update(None, "cache_size", -SMALL_CACHE_KIB)?;
        out
    }

    /// Run a read on a pooled read connection (the writer's, for an in-memory database).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let Some(readers) = &self.readers else { return f(&self.writer()) };
        let idle = readers.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let conn = match idle {
            Some(c) => c,
            None => open_reader(&readers.path)?,
        };
        let out = f(&conn);
        let mut idle = readers.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        out
    }
}

/// Create the database file readable and writable by this user only (it holds personal data),
/// if it does not exist yet. SQLite gives its `-wal` and `-shm` files the database file's
/// permissions, so they are private too.
fn create_private(path: &Path) {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    // An existing file is left as it is; a folder that does not exist or cannot be written is
    // SQLite's to report, as before.
    let _ = options.open(path);
}

/// A read connection: the schema is already migrated by the writer; queries only.
fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "query_only", "ON")?;
    // Reads are lookups, pages and one-pass scans (the service serves the rest from memory): a
    // small cache per connection keeps the pool's memory bounded (4 idle readers × 2 MiB); a
    // miss is a read from the operating system's file cache, not from disk.
    conn.pragma_update(None, "cache_size", -2_048)?; // KiB
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
}

pub(super) fn now() -> String {
    timestamp(Utc::now())
}

pub(super) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Rows per multi-row INSERT: fewer statements, well under SQLite's bound-variable limit.
pub(super) const BULK_ROWS: usize = 64;

/// `INSERT INTO table (columns) VALUES (?,..),(?,..)...` for `rows` rows.
pub(super) fn multi_row_insert(table: &str, columns: &[&str], rows: usize) -> String {
    let one = format!("({})", vec!["?"; columns.len()].join(","));
    format!("INSERT INTO {table} ({}) VALUES {}", columns.join(","), vec![one; rows].join(","))
}

pub(super) fn decode_attributes(id: &str, text: &str) -> Result<Attributes, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what: "attributes",
        id: id.to_string(),
        reason: e.to_string(),
    })
}

pub(super) fn locations(conn: &Connection, sql: &str) -> Result<Vec<Located>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let rows =
        stmt.query_map([], |r| Ok(Located { id: r.get(0)?, lon: r.get(1)?, lat: r.get(2)?, block_id: r.get(3)? }))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl Store for SqliteStore {
    fn release_memory(&self) {
        // Idle readers hold what the start-up's table scans left in their page caches: close
        // them (a later read opens one in about a millisecond) and trim the writer's.
        if let Some(readers) = &self.readers {
            readers.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        }
        let _ = self.writer().execute_batch("PRAGMA shrink_memory");
    }

    fn replace_blocks(
        &self,
        blocks: &[Block],
        people: &[Reassignment],
        resources: &[Reassignment],
        source: &str,
    ) -> Result<BlocksReplaced, StoreError> {
        self.bulk(blocks.len() + people.len(), |c| blocks::replace_blocks(c, blocks, people, resources, source))
    }

    fn blocks(&self) -> Result<Vec<Block>, StoreError> {
        self.read(blocks::blocks)
    }

    fn block_ids(&self) -> Result<Vec<String>, StoreError> {
        self.read(blocks::block_ids)
    }

    fn catchment_version(&self) -> Result<i64, StoreError> {
        self.read(blocks::catchment_version)
    }

    fn upsert_people(&self, people: &[Person], source: &str) -> Result<Upserted, StoreError> {
        self.bulk(people.len(), |c| people::upsert_people(c, people, source))
    }

    fn delete_person(&self, id: &str) -> Result<bool, StoreError> {
        self.write(|c| people::delete_person(c, id))
    }

    fn person(&self, id: &str) -> Result<Option<Person>, StoreError> {
        self.read(|c| people::person(c, id))
    }

    fn people(&self, filter: &PeopleFilter) -> Result<Vec<Person>, StoreError> {
        self.read(|c| people::people(c, filter))
    }

    fn people_page(&self, filter: &PeopleFilter, offset: u64, limit: u64) -> Result<(Vec<Person>, u64), StoreError> {
        self.read(|c| people::people_page(c, filter, offset, limit))
    }

    fn people_locations(&self) -> Result<Vec<Located>, StoreError> {
        self.read(people::people_locations)
    }

    fn coverage_counts_at(&self, now: DateTime<Utc>) -> Result<(HashMap<String, BlockCounts>, u64), StoreError> {
        self.read(|c| people::coverage_counts_at(c, now))
    }

    fn next_adoption_expiry(&self, after: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.read(|c| people::next_adoption_expiry(c, after))
    }

    fn upsert_resources(&self, resources: &[Resource], source: &str) -> Result<Upserted, StoreError> {
        self.bulk(resources.len(), |c| resources::upsert_resources(c, resources, source))
    }

    fn resources(&self) -> Result<Vec<Resource>, StoreError> {
        self.read(resources::resources)
    }

    fn resource_locations(&self) -> Result<Vec<Located>, StoreError> {
        self.read(resources::resource_locations)
    }

    fn upsert_indicators(
        &self,
        values: &[IndicatorValue],
        no_data: &[(String, String, Option<String>)],
        source: &str,
    ) -> Result<Upserted, StoreError> {
        self.bulk(values.len() + no_data.len(), |c| indicators::upsert_indicators(c, values, no_data, source))
    }

    fn indicators(&self) -> Result<Vec<IndicatorValue>, StoreError> {
        self.read(indicators::indicators)
    }

    fn create_token(&self, hash: &str, role: AccessRole, name: Option<&str>) -> Result<i64, StoreError> {
        self.write(|c| tokens::create_token(c, hash, role, name))
    }

    fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        self.read(tokens::tokens)
    }

    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenInfo>, StoreError> {
        self.read(|c| tokens::token_by_hash(c, hash))
    }

    fn revoke_token(&self, id: i64) -> Result<bool, StoreError> {
        self.write(|c| tokens::revoke_token(c, id))
    }

    fn visit_history(
        &self,
        after: i64,
        limit: usize,
        visit: &mut dyn FnMut(HistoryRow<'_>),
    ) -> Result<usize, StoreError> {
        self.read(|c| history::visit_history(c, after, limit, visit))
    }

    fn history_len(&self) -> Result<u64, StoreError> {
        self.read(history::history_len)
    }

    fn replace_areas(&self, layer: &str, areas: &[Area], source: &str) -> Result<AreasReplaced, StoreError> {
        self.bulk(areas.len(), |c| areas::replace_areas(c, layer, areas, source))
    }

    fn areas(&self, layer: &str) -> Result<Vec<Area>, StoreError> {
        self.read(|c| areas::areas(c, layer))
    }

    fn area_layers(&self) -> Result<Vec<AreaLayer>, StoreError> {
        self.read(areas::area_layers)
    }

    fn areas_version(&self, layer: &str) -> Result<i64, StoreError> {
        self.read(|c| areas::areas_version(c, layer))
    }

    fn insert_person(&self, person: &Person, source: &str) -> Result<(), StoreError> {
        self.write(|c| people::insert_person(c, person, source))
    }

    fn coverage_state(
        &self,
        block: &mut dyn FnMut(&str),
        person: &mut dyn FnMut(super::CoverageRow<'_>),
    ) -> Result<i64, StoreError> {
        self.read(|c| people::coverage_state(c, block, person))
    }

    fn last_change(&self) -> Result<i64, StoreError> {
        self.read(history::last_change)
    }

    fn table_counts(&self) -> Result<TableCounts, StoreError> {
        // One read transaction, so the counts are of one snapshot.
        self.read(|c| {
            let tx = c.unchecked_transaction()?;
            dump::table_counts(&tx)
        })
    }

    fn dump(&self, sink: &mut dyn FnMut(DumpBatch) -> Result<(), StoreError>) -> Result<TableCounts, StoreError> {
        self.read(|c| dump::dump(c, sink))
    }

    fn restore(&self, next: &mut dyn FnMut() -> Result<Option<DumpBatch>, StoreError>) -> Result<(), StoreError> {
        self.bulk(BULK_WRITE, |c| dump::restore(c, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Role;
    use geo::MultiPolygon;
    use geo::polygon;

    fn block(id: &str, x: f64) -> Block {
        let p = polygon![(x: x, y: 0.0), (x: x + 1.0, y: 0.0), (x: x + 1.0, y: 1.0), (x: x, y: 1.0), (x: x, y: 0.0)];
        Block {
            id: id.into(),
            name: Some(format!("Block {id}")),
            geometry: MultiPolygon(vec![p]),
            attributes: Attributes::new(),
        }
    }

    fn person(id: &str, role: Role, home: Option<&str>) -> Person {
        Person {
            id: id.into(),
            role,
            lon: 0.5,
            lat: 0.5,
            name: Some("Ana".into()),
            phone: None,
            email: None,
            interested: false,
            active: true,
            adopted_block: None,
            home_block: home.map(str::to_string),
            adopted_until: None,
        }
    }

    fn history(store: &SqliteStore) -> Vec<(String, String, String, Option<String>)> {
        let conn = store.writer();
        let mut stmt = conn.prepare("SELECT entity, entity_id, action, block_id FROM history ORDER BY seq").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn blocks_round_trip_through_wkb() {
        let store = SqliteStore::open_in_memory().unwrap();
        let mut b = block("060370000001000", 0.0);
        b.attributes.insert("POP20".into(), 12.into());
        store.replace_blocks(std::slice::from_ref(&b), &[], &[], "test").unwrap();
        assert_eq!(store.blocks().unwrap(), vec![b]);
    }

    #[test]
    fn every_change_is_in_the_history() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.replace_blocks(&[block("A", 0.0), block("B", 1.0)], &[], &[], "t").unwrap();
        let p = person("p1", Role::Ambassador, Some("A"));
        assert_eq!(store.upsert_people(std::slice::from_ref(&p), "t").unwrap().inserted, 1);
        assert_eq!(store.upsert_people(std::slice::from_ref(&p), "t").unwrap().unchanged, 1);
        let mut moved = p.clone();
        moved.adopted_block = Some("B".into());
        assert_eq!(store.upsert_people(&[moved], "t").unwrap().updated, 1);
        store
            .replace_blocks(&[block("B", 1.0)], &[Reassignment { id: "p1".into(), block_id: None }], &[], "t")
            .unwrap();
        assert!(store.delete_person("p1").unwrap());
        assert!(!store.delete_person("p1").unwrap());
        let h: Vec<(String, String, String, Option<String>)> =
            history(&store).into_iter().filter(|(e, ..)| e != "import").collect();
        let expect = |e: &str, id: &str, a: &str, b: Option<&str>| {
            (e.to_string(), id.to_string(), a.to_string(), b.map(str::to_string))
        };
        assert_eq!(
            h,
            vec![
                expect("block", "A", "insert", None),
                expect("block", "B", "insert", None),
                expect("person", "p1", "insert", Some("A")),
                expect("person", "p1", "update", Some("B")),
                expect("block", "A", "delete", None),
                expect("person", "p1", "reassign", Some("B")),
                expect("person", "p1", "delete", Some("B")),
            ]
        );
    }

    /// Issue 12: the database, its `-wal` and `-shm` were created world-readable (0644).
    #[cfg(unix)]
    #[test]
    fn database_files_are_created_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("belong.db");
        let store = SqliteStore::open(&path).unwrap();
        store.upsert_people(&[person("r1", Role::Resident, None)], "t").unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let file = dir.path().join(format!("belong.db{suffix}"));
            let mode =
                std::fs::metadata(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())).permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "belong.db{suffix} is {:o}", mode & 0o777);
        }
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.replace_blocks(&[block("A", 0.0)], &[], &[], "t").unwrap();
        let before = (store.blocks().unwrap(), store.history_len().unwrap());
        // Duplicate ids violate the primary key half-way through the transaction.
        let err = store.replace_blocks(&[block("X", 0.0), block("X", 1.0)], &[], &[], "t");
        assert!(err.is_err());
        assert_eq!((store.blocks().unwrap(), store.history_len().unwrap()), before);
    }

    #[test]
    fn coverage_counts_follow_adoption_and_activity() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.replace_blocks(&[block("A", 0.0), block("B", 1.0)], &[], &[], "t").unwrap();
        let mut adopter = person("a1", Role::Ambassador, Some("A"));
        adopter.adopted_block = Some("B".into());
        let mut inactive = person("a2", Role::Ambassador, Some("A"));
        inactive.active = false;
        let mut dangling = person("a3", Role::Ambassador, Some("A"));
        dangling.adopted_block = Some("GONE".into());
        let people =
            [person("r1", Role::Resident, Some("A")), person("r2", Role::Resident, None), adopter, inactive, dangling];
        store.upsert_people(&people, "t").unwrap();
        let (counts, outside) = store.coverage_counts().unwrap();
        assert_eq!(outside, 1);
        assert_eq!(counts["A"], BlockCounts { residents: 1, ambassadors: 1 });
        assert_eq!(counts["B"], BlockCounts { residents: 0, ambassadors: 1 });
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        drop(SqliteStore::open(&path).unwrap());
        Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(SqliteStore::open(&path), Err(StoreError::TooNew { found: 99, .. })));
    }

    #[test]
    fn bulk_first_import_keeps_indexes_and_history() {
        let store = SqliteStore::open_in_memory().unwrap();
        store.replace_blocks(&[block("A", 0.0)], &[], &[], "t").unwrap();
        let people: Vec<Person> = (0..12_345).map(|i| person(&format!("p{i:05}"), Role::Resident, Some("A"))).collect();
        let before = store.history_len().unwrap();
        assert_eq!(store.upsert_people(&people, "t").unwrap().inserted, 12_345);
        assert_eq!(store.history_len().unwrap() - before, 12_345 + 1);
        let indexes: i64 = store
            .writer()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'people' AND sql IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 3);
        assert_eq!(store.person("p12344").unwrap().unwrap(), people[12_344]);
        assert_eq!(store.coverage_counts().unwrap().0["A"].residents, 12_345);
        // A second import of the same rows takes the per-row path and changes nothing.
        assert_eq!(store.upsert_people(&people, "t").unwrap().unchanged, 12_345);
    }

    #[test]
    fn adoptions_lapse_at_their_expiry_and_the_history_says_when() {
        let at = |t: &str| crate::core::person::parse_until(t).unwrap();
        let store = SqliteStore::open_in_memory().unwrap();
        store.replace_blocks(&[block("A", 0.0), block("B", 1.0)], &[], &[], "t").unwrap();
        let mut adopter = person("a1", Role::Ambassador, Some("A"));
        adopter.adopted_block = Some("B".into());
        adopter.adopted_until = Some(at("2100-01-01T00:00:00Z"));
        let mut lapsed = person("a2", Role::Ambassador, Some("A"));
        lapsed.adopted_block = Some("B".into());
        lapsed.adopted_until = Some(at("2000-01-01T00:00:00Z"));
        // Both the bulk path (empty table) and the per-row path write the same detail.
        store.upsert_people(std::slice::from_ref(&adopter), "t").unwrap();
        store.upsert_people(std::slice::from_ref(&lapsed), "t").unwrap();
        assert_eq!(store.person("a1").unwrap().unwrap(), adopter);

        let ambassadors = |now: &str| {
            let (c, _) = store.coverage_counts_at(at(now)).unwrap();
            (c.get("A").map_or(0, |c| c.ambassadors), c.get("B").map_or(0, |c| c.ambassadors))
        };
        assert_eq!(ambassadors("2099-12-31T23:59:59Z"), (1, 1));
        assert_eq!(ambassadors("2100-01-01T00:00:00Z"), (2, 0));
        assert_eq!(store.next_adoption_expiry(at("2050-01-01T00:00:00Z")).unwrap(), Some(at("2100-01-01T00:00:00Z")));
        assert_eq!(store.next_adoption_expiry(at("2100-01-01T00:00:00Z")).unwrap(), None);

        let rows: Vec<(String, Option<String>, Option<String>)> = store
            .writer()
            .prepare("SELECT entity_id, block_id, detail FROM history WHERE entity = 'person' ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let detail = |i: usize| serde_json::from_str::<serde_json::Value>(rows[i].2.as_deref().unwrap()).unwrap();
        // The block column is the block counted for when the row was written.
        assert_eq!((rows[0].0.as_str(), rows[0].1.as_deref()), ("a1", Some("B")));
        assert_eq!(
            detail(0),
            serde_json::json!({"adopted_block": "B", "adopted_until": "2100-01-01T00:00:00Z", "home_block": "A"})
        );
        assert_eq!((rows[1].0.as_str(), rows[1].1.as_deref()), ("a2", Some("A")));
        assert_eq!(detail(1)["adopted_until"], "2000-01-01T00:00:00Z");
        store.delete_person("a1").unwrap();
        let last: Option<String> = store
            .writer()
            .query_row("SELECT detail FROM history WHERE entity = 'person' ORDER BY seq DESC LIMIT 1", [], |r| r.get(0))
            .unwrap();
        assert!(last.unwrap().contains("2100-01-01T00:00:00Z"));
        // The column keeps the text form SQL compares with `now`.
        let stored: String =
            store.writer().query_row("SELECT adopted_until FROM people WHERE id = 'a2'", [], |r| r.get(0)).unwrap();
        assert_eq!(stored, "2000-01-01T00:00:00Z");
    }

    #[test]
    fn an_unreadable_expiry_is_corrupt_not_no_expiry() {
        let store = SqliteStore::open_in_memory().unwrap();
        let mut p = person("a1", Role::Ambassador, Some("A"));
        p.adopted_block = Some("B".into());
        store.upsert_people(&[p], "t").unwrap();
        store.writer().execute("UPDATE people SET adopted_until = 'soon' WHERE id = 'a1'", []).unwrap();
        for e in [store.person("a1").unwrap_err(), store.people(&PeopleFilter::default()).unwrap_err()] {
            match e {
                StoreError::Corrupt { what, id, .. } => assert_eq!((what, id.as_str()), ("person adopted_until", "a1")),
                e => panic!("expected Corrupt, got {e}"),
            }
        }
    }

    #[test]
    fn catchment_version_changes_with_block_imports_only() {
        let store = SqliteStore::open_in_memory().unwrap();
        assert_eq!(store.catchment_version().unwrap(), 0);
        store.replace_blocks(&[block("A", 0.0)], &[], &[], "t").unwrap();
        let v1 = store.catchment_version().unwrap();
        store.upsert_people(&[person("r1", Role::Resident, Some("A"))], "t").unwrap();
        assert_eq!(store.catchment_version().unwrap(), v1);
        store.replace_blocks(&[block("A", 0.0)], &[], &[], "t").unwrap();
        assert!(store.catchment_version().unwrap() > v1);
        // Both lookups are answered from their partial indexes, not by scanning.
        for sql in [
            "EXPLAIN QUERY PLAN SELECT MAX(seq) FROM history WHERE entity = 'import' AND entity_id = 'blocks'",
            "EXPLAIN QUERY PLAN SELECT MIN(adopted_until) FROM people WHERE adopted_until > '2000' AND adopted_block IS NOT NULL",
        ] {
            let plan: Vec<String> =
                store.writer().prepare(sql).unwrap().query_map([], |r| r.get(3)).unwrap().map(Result::unwrap).collect();
            assert!(plan.iter().any(|p| p.contains("USING") && p.contains("INDEX")), "{sql}: {plan:?}");
        }
    }
}
