//! The PostgreSQL/PostGIS store, for several `belong serve` instances sharing one database.
//!
//! Work in progress (issue 10): mirrors [`super::SqliteStore`] statement for statement.
//! Connections come from a small pool (`Mutex<Vec<Client>>`); a connection that failed is
//! dropped, not returned. Every write transaction first takes the feed lock (see [`FEED_LOCK`])
//! and ends with `NOTIFY belong_changes`; [`Store::wait_for_change`] listens on a dedicated
//! connection of its own.
//!
//! Bulk paths: people, resources and indicators (100+ rows with distinct keys), blocks, a
//! block import's reassignments of people and `db copy` (see [`dump`]) go through `COPY`. Still
//! one statement per row: areas and a block import's reassignments of resources (a few thousand
//! at most).
//!
//! Every connection, the listener's too, goes through one TLS connector (see [`tls`]) that
//! follows the URL's `sslmode` and `sslrootcert` as libpq does.

mod dump;
mod schema;
mod tls;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use fallible_iterator::FallibleIterator;
use geo::{Geometry, MultiPolygon};
use geozero::wkb::Wkb;
use geozero::{CoordDimensions, ToGeo, ToWkb};
use postgres::types::ToSql;
use postgres::{Client, Config, GenericClient, IsolationLevel, Row, Transaction};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::target::{PgTls, SslMode};
use super::{
    AreasReplaced, BlocksReplaced, CoverageRow, DumpBatch, HistoryRow, Located, PeopleFilter, Reassignment, Store,
    StoreError, TableCounts, TokenInfo, Upserted,
};
use crate::core::coverage::BlockCounts;
use crate::core::person::{parse_until, until_text};
use crate::core::{AccessRole, Area, AreaLayer, Attributes, Block, IndicatorValue, Person, Resource, Role};

/// The change feed's lock: every write transaction takes `pg_advisory_xact_lock(FEED_LOCK)`
/// before it inserts history rows. A `bigserial` value is drawn at insert time, not at commit,
/// so two concurrent writers could commit in the opposite order of their `seq`s and a reader
/// whose cursor passed the higher one would skip the lower one for ever. With the lock, the
/// next writer draws its first `seq` only after the previous writer's commit (transaction-level
/// advisory locks are released after the commit is visible to new snapshots), so `seq` order is
/// commit order and "every row with `seq > cursor`" never skips a row. Writes to the feed are
/// one at a time, which campaign write rates allow.
const FEED_LOCK: i64 = 0x0062_656c_6f6e_6702; // "belong" 02

/// The `LISTEN`/`NOTIFY` channel writers wake readers on.
const CHANNEL: &str = "belong_changes";

/// Idle connections kept.
const IDLE: usize = 8;

/// PostgreSQL-backed [`Store`].
pub struct PostgresStore {
    config: Config,
    /// The URL's `sslmode`/`sslrootcert`, and the connector that applies them.
    tls: PgTls,
    connector: MakeRustlsConnect,
    /// `host:port` of the server(s), for messages.
    server: String,
    idle: Mutex<Vec<Client>>,
    listener: Mutex<Option<Client>>,
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            let code = db.code().code();
            // Class 08: connection exceptions; 57P01..57P03: admin/crash shutdown, cannot connect now.
            if code.starts_with("08") || code.starts_with("57P0") {
                return StoreError::Unavailable(e.to_string());
            }
            return StoreError::Database(Box::new(e));
        }
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        if e.is_closed() || io || e.to_string().contains("error connecting") || e.to_string().contains("timed out") {
            return StoreError::Unavailable(e.to_string());
        }
        StoreError::Database(Box::new(e))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now() -> String {
    timestamp(Utc::now())
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl PostgresStore {
    /// Connect to `url`, enable PostGIS when missing and migrate.
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let bad = |e: String| StoreError::Database(format!("bad PostgreSQL URL '{}': {e}", super::redact(url)).into());
        let (driver_url, tls) = super::target::split_postgres_url(url).map_err(bad)?;
        let mut config = Config::from_str(&driver_url).map_err(|e| bad(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.application_name("belong");
        let server = server_name(&config);
        let connector = tls::connector(&tls).map_err(|e| {
            StoreError::Database(format!("TLS for PostgreSQL at {server} (sslmode={}): {e}", tls.mode).into())
        })?;
        let store =
            PostgresStore { config, tls, connector, server, idle: Mutex::new(Vec::new()), listener: Mutex::new(None) };
        let mut client = store.connect()?;
        schema::migrate(&mut client)?;
        lock(&store.idle).push(client);
        Ok(store)
    }

    /// A session of its own on the store's database, outside the pool, with the URL's TLS
    /// settings: for tools and tests that need a transaction the store does not offer.
    pub fn session(&self) -> Result<Client, StoreError> {
        self.connect()
    }

    /// A new session, TLS as the URL says.
    fn connect(&self) -> Result<Client, StoreError> {
        match self.config.connect(self.connector.clone()) {
            Ok(client) => Ok(client),
            // libpq's prefer: when the TLS attempt fails, try again without TLS.
            Err(e) if self.tls.mode == SslMode::Prefer && tls::is_handshake_error(&e) => {
                tracing::warn!(server = %self.server, "TLS with PostgreSQL failed ({e}); sslmode=prefer: connecting without TLS");
                let mut plain = self.config.clone();
                plain.ssl_mode(postgres::config::SslMode::Disable);
                plain.connect(self.connector.clone()).map_err(|e| tls::explain(e, &self.server, &self.tls))
            }
            Err(e) => Err(tls::explain(e, &self.server, &self.tls)),
        }
    }

    /// Run `f` on a pooled connection; a connection that failed is closed, not pooled.
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = {
            let mut idle = lock(&self.idle);
            loop {
                match idle.pop() {
                    Some(c) if c.is_closed() => continue,
                    other => break other,
                }
            }
        };
        let mut client = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let out = f(&mut client);
        let broken = client.is_closed() || matches!(out, Err(StoreError::Unavailable(_)));
        if !broken {
            let mut idle = lock(&self.idle);
            if idle.len() < IDLE {
                idle.push(client);
            }
        }
        out
    }

    /// One write transaction: takes the feed lock first, notifies listeners at the end.
    fn write<T>(&self, f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FEED_LOCK])?;
            let out = f(&mut tx)?;
            tx.batch_execute(&format!("NOTIFY {CHANNEL}"))?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// One read in a single snapshot (REPEATABLE READ, READ ONLY).
    fn snapshot<T>(&self, f: impl FnOnce(&mut Transaction<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.with(|c| {
            let mut tx =
                c.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
            let out = f(&mut tx)?;
            tx.commit()?;
            Ok(out)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// `host:port` of each server the config names, for messages (never the password).
fn server_name(config: &Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                postgres::config::Host::Unix(dir) => format!("{}/.s.PGSQL.{port}", dir.display()),
            }
        })
        .collect();
    if hosts.is_empty() { "(no host)".to_string() } else { hosts.join(",") }
}

fn encode_geometry(what: &'static str, id: &str, mp: &MultiPolygon<f64>) -> Result<Vec<u8>, StoreError> {
    Geometry::MultiPolygon(mp.clone()).to_wkb(CoordDimensions::xy()).map_err(|e| StoreError::Corrupt {
        what,
        id: id.to_string(),
        reason: e.to_string(),
    })
}

fn decode_geometry(what: &'static str, id: &str, wkb: &[u8]) -> Result<MultiPolygon<f64>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { what, id: id.to_string(), reason };
    match Wkb(wkb).to_geo().map_err(|e| corrupt(e.to_string()))? {
        Geometry::MultiPolygon(mp) => Ok(mp),
        Geometry::Polygon(p) => Ok(MultiPolygon(vec![p])),
        other => Err(corrupt(format!("expected a multipolygon, found {other:?}"))),
    }
}

fn decode_attributes(id: &str, v: serde_json::Value) -> Result<Attributes, StoreError> {
    match v {
        serde_json::Value::Object(m) => Ok(m),
        other => Err(StoreError::Corrupt {
            what: "attributes",
            id: id.to_string(),
            reason: format!("not an object: {other}"),
        }),
    }
}

/// Append one history row; returns its seq. The caller holds the feed lock (see [`FEED_LOCK`]).
fn history(
    tx: &mut Transaction<'_>,
    ts: &str,
    entity: &str,
    id: &str,
    action: &str,
    person: Option<(&Role, Option<&str>, bool)>,
    detail: Option<&str>,
) -> Result<i64, StoreError> {
    let (role, block, active) = match person {
        Some((role, block, active)) => (Some(role.as_str()), block, Some(active)),
        None => (None, None, None),
    };
    let row = tx.query_one(
        "INSERT INTO belong_private.history (ts, entity, entity_id, action, role, block_id, active, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq",
        &[&ts, &entity, &id, &action, &role, &block, &active, &detail],
    )?;
    Ok(row.get(0))
}

/// See the SQLite store's `person_detail`: the adoption, its expiry and the home block.
fn person_detail(p: &Person) -> Option<String> {
    let adopted = p.adopted_block.as_deref()?;
    let detail = serde_json::json!({
        "adopted_block": adopted,
        "adopted_until": p.adopted_until.map(until_text),
        "home_block": p.home_block,
    });
    Some(detail.to_string())
}

const PERSON_SELECT: &str = "SELECT id, role, ST_X(geom), ST_Y(geom), name, phone, email, interested, active,
     adopted_block, home_block, adopted_until FROM belong_private.people";

fn person_from_row(row: &Row) -> Result<Person, StoreError> {
    let id: String = row.try_get(0)?;
    let role: String = row.try_get(1)?;
    let until: Option<String> = row.try_get(11)?;
    let adopted_until = until
        .map(|text| {
            parse_until(&text).ok_or_else(|| StoreError::Corrupt {
                what: "person adopted_until",
                id: id.clone(),
                reason: "not an RFC 3339 instant".into(),
            })
        })
        .transpose()?;
    Ok(Person {
        role: if role == "ambassador" { Role::Ambassador } else { Role::Resident },
        lon: row.try_get(2)?,
        lat: row.try_get(3)?,
        name: row.try_get(4)?,
        phone: row.try_get(5)?,
        email: row.try_get(6)?,
        interested: row.try_get(7)?,
        active: row.try_get(8)?,
        adopted_block: row.try_get(9)?,
        home_block: row.try_get(10)?,
        adopted_until,
        id,
    })
}

fn get_person(c: &mut impl GenericClient, id: &str) -> Result<Option<Person>, StoreError> {
    c.query_opt(&format!("{PERSON_SELECT} WHERE id = $1"), &[&id])?.as_ref().map(person_from_row).transpose()
}

const INSERT_PERSON: &str = "INSERT INTO belong_private.people (id, role, geom, name, phone, email, interested, active,
     adopted_block, home_block, created_at, updated_at, adopted_until)
     VALUES ($1, $2, ST_SetSRID(ST_MakePoint($3, $4), 4326), $5, $6, $7, $8, $9, $10, $11, $12, $12, $13)
     ON CONFLICT (id) DO NOTHING";

const UPDATE_PERSON: &str = "UPDATE belong_private.people SET role = $2, geom = ST_SetSRID(ST_MakePoint($3, $4), 4326),
     name = $5, phone = $6, email = $7, interested = $8, active = $9, adopted_block = $10, home_block = $11,
     updated_at = $12, adopted_until = $13 WHERE id = $1";

fn person_params<'a>(p: &'a Person, ts: &'a String, until: &'a Option<String>) -> [&'a (dyn ToSql + Sync); 13] {
    [
        &p.id,
        match p.role {
            Role::Resident => &"resident",
            Role::Ambassador => &"ambassador",
        },
        &p.lon,
        &p.lat,
        &p.name,
        &p.phone,
        &p.email,
        &p.interested,
        &p.active,
        &p.adopted_block,
        &p.home_block,
        ts,
        until,
    ]
}

/// The `WHERE` of a people listing: `$1` role, `$2` block, `$3` interested, each `NULL` for any.
fn people_where(filter: &PeopleFilter) -> &'static str {
    if filter.block_id.is_some() {
        "WHERE (home_block = $2::text OR adopted_block = $2::text)
           AND ($1::text IS NULL OR role = $1::text) AND ($3::boolean IS NULL OR interested = $3::boolean)"
    } else {
        "WHERE $2::text IS NULL
           AND ($1::text IS NULL OR role = $1::text) AND ($3::boolean IS NULL OR interested = $3::boolean)"
    }
}

fn locations(c: &mut Client, sql: &str) -> Result<Vec<Located>, StoreError> {
    c.query(sql, &[])?
        .iter()
        .map(|r| Ok(Located { id: r.try_get(0)?, lon: r.try_get(1)?, lat: r.try_get(2)?, block_id: r.try_get(3)? }))
        .collect()
}

fn token_from_row(row: &Row) -> Result<TokenInfo, StoreError> {
    let role: String = row.try_get(1)?;
    let role = role.parse().map_err(|e: String| StoreError::Corrupt {
        what: "token role",
        id: row.get::<_, i64>(0).to_string(),
        reason: e,
    })?;
    Ok(TokenInfo {
        id: row.try_get(0)?,
        role,
        name: row.try_get(2)?,
        created_at: row.try_get(3)?,
        revoked_at: row.try_get(4)?,
    })
}

fn last_change(c: &mut impl GenericClient) -> Result<i64, StoreError> {
    let seq: Option<i64> = c.query_one("SELECT MAX(seq) FROM belong_private.history", &[])?.get(0);
    Ok(seq.unwrap_or(0))
}

fn polygons<T>(
    c: &mut Client,
    what: &'static str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    make: impl Fn(String, Option<String>, MultiPolygon<f64>, Attributes) -> T,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for r in c.query(sql, params)? {
        let id: String = r.try_get(0)?;
        let name: Option<String> = r.try_get(1)?;
        let wkb: Vec<u8> = r.try_get(2)?;
        let attrs: serde_json::Value = r.try_get(3)?;
        let geometry = decode_geometry(what, &id, &wkb)?;
        let attributes = decode_attributes(&id, attrs)?;
        out.push(make(id, name, geometry, attributes));
    }
    Ok(out)
}

/// Upserts of at least this many people go through `COPY` (fewer take one statement each).
const COPY_MIN_ROWS: usize = 100;

/// One field of a `COPY ... FROM STDIN` text row (`\N` for NULL, backslash escapes).
fn copy_field(out: &mut String, value: Option<&str>) {
    match value {
        None => out.push_str("\\N"),
        Some(v) => {
            for ch in v.chars() {
                match ch {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
    }
}

/// Write one text-format `COPY` row (tab-separated [`copy_field`]s) through `line` (reused).
fn copy_row(writer: &mut impl std::io::Write, line: &mut String, fields: &[Option<&str>]) -> Result<(), StoreError> {
    line.clear();
    for (n, f) in fields.iter().enumerate() {
        if n > 0 {
            line.push('\t');
        }
        copy_field(line, *f);
    }
    line.push('\n');
    writer.write_all(line.as_bytes()).map_err(|e| StoreError::Database(Box::new(e)))
}

/// The counts of a temporary classification table (`action` column: insert, update, unchanged).
fn classified(tx: &mut Transaction<'_>, table: &str) -> Result<Upserted, StoreError> {
    let mut done = Upserted::default();
    for r in tx.query(&format!("SELECT action, COUNT(*) FROM {table} GROUP BY action"), &[])? {
        let (action, n): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
        match action.as_str() {
            "insert" => done.inserted = n as usize,
            "update" => done.updated = n as usize,
            _ => done.unchanged = n as usize,
        }
    }
    Ok(done)
}

/// Whether every key is distinct (the bulk paths need that: the per-row paths see earlier rows
/// of the same batch, one SQL statement does not).
fn all_distinct<K: std::hash::Hash + Eq>(mut keys: impl Iterator<Item = K>) -> bool {
    let mut seen = std::collections::HashSet::new();
    keys.all(|k| seen.insert(k))
}

/// The bulk path of `upsert_resources` (ids unique): as [`copy_people`].
fn copy_resources(tx: &mut Transaction<'_>, resources: &[Resource], ts: &str) -> Result<Upserted, StoreError> {
    tx.batch_execute(
        "CREATE TEMP TABLE resources_in (
            ord bigint, id text, name text, category text, lon float8, lat float8, address text, phone text,
            email text, url text, attributes jsonb, block_id text, detail text
         ) ON COMMIT DROP",
    )?;
    let mut writer = tx.copy_in("COPY resources_in FROM STDIN")?;
    let mut line = String::new();
    for (i, r) in resources.iter().enumerate() {
        let attrs = serde_json::Value::Object(r.attributes.clone()).to_string();
        let detail = r.block_id.as_deref().map(|b| format!("{{\"block_id\":{}}}", serde_json::Value::from(b)));
        let fields: [Option<&str>; 13] = [
            Some(&i.to_string()),
            Some(&r.id),
            r.name.as_deref(),
            Some(&r.category),
            Some(&r.lon.to_string()),
            Some(&r.lat.to_string()),
            r.address.as_deref(),
            r.phone.as_deref(),
            r.email.as_deref(),
            r.url.as_deref(),
            Some(&attrs),
            r.block_id.as_deref(),
            detail.as_deref(),
        ];
        copy_row(&mut writer, &mut line, &fields)?;
    }
    writer.finish()?;
    tx.batch_execute(
        "CREATE TEMP TABLE resources_class ON COMMIT DROP AS
         SELECT i.ord,
                CASE WHEN r.id IS NULL THEN 'insert'
                     WHEN r.name IS NOT DISTINCT FROM i.name AND r.category = i.category
                      AND ST_X(r.geom) = i.lon AND ST_Y(r.geom) = i.lat
                      AND r.address IS NOT DISTINCT FROM i.address AND r.phone IS NOT DISTINCT FROM i.phone
                      AND r.email IS NOT DISTINCT FROM i.email AND r.url IS NOT DISTINCT FROM i.url
                      AND r.attributes = i.attributes AND r.block_id IS NOT DISTINCT FROM i.block_id THEN 'unchanged'
                     ELSE 'update' END AS action
         FROM resources_in i LEFT JOIN public.resources r ON r.id = i.id",
    )?;
    tx.execute(
        "INSERT INTO public.resources (id, name, category, geom, address, phone, email, url, attributes, block_id, updated_at)
         SELECT i.id, i.name, i.category, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326), i.address, i.phone, i.email,
                i.url, i.attributes, i.block_id, $1
         FROM resources_in i JOIN resources_class c ON c.ord = i.ord WHERE c.action <> 'unchanged'
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, category = excluded.category, geom = excluded.geom,
           address = excluded.address, phone = excluded.phone, email = excluded.email, url = excluded.url,
           attributes = excluded.attributes, block_id = excluded.block_id, updated_at = excluded.updated_at",
        &[&ts],
    )?;
    tx.execute(
        "INSERT INTO belong_private.history (ts, entity, entity_id, action, detail)
         SELECT $1, 'resource', i.id, c.action, i.detail
         FROM resources_in i JOIN resources_class c ON c.ord = i.ord WHERE c.action <> 'unchanged' ORDER BY i.ord",
        &[&ts],
    )?;
    let done = classified(tx, "resources_class")?;
    tx.batch_execute("DROP TABLE resources_in; DROP TABLE resources_class")?;
    Ok(done)
}

/// The bulk path of `upsert_indicators` (keys unique): `COPY` the values, count what they
/// change, upsert them in one statement.
fn copy_indicators(tx: &mut Transaction<'_>, values: &[IndicatorValue]) -> Result<Upserted, StoreError> {
    tx.batch_execute(
        "CREATE TEMP TABLE indicators_in (block_id text, indicator text, date text, value float8) ON COMMIT DROP",
    )?;
    let mut writer = tx.copy_in("COPY indicators_in FROM STDIN")?;
    let mut line = String::new();
    for v in values {
        let value = v.value.to_string();
        let fields =
            [Some(v.block_id.as_str()), Some(&v.indicator), Some(v.date.as_deref().unwrap_or("")), Some(&value)];
        copy_row(&mut writer, &mut line, &fields)?;
    }
    writer.finish()?;
    tx.batch_execute(
        "CREATE TEMP TABLE indicators_class ON COMMIT DROP AS
         SELECT CASE WHEN s.block_id IS NULL THEN 'insert' WHEN s.value = i.value THEN 'unchanged' ELSE 'update' END
                AS action
         FROM indicators_in i LEFT JOIN public.indicators s
           ON s.block_id = i.block_id AND s.indicator = i.indicator AND s.date = i.date",
    )?;
    tx.execute(
        "INSERT INTO public.indicators (block_id, indicator, date, value)
         SELECT block_id, indicator, date, value FROM indicators_in
         ON CONFLICT (block_id, indicator, date) DO UPDATE SET value = excluded.value
         WHERE public.indicators.value IS DISTINCT FROM excluded.value",
        &[],
    )?;
    let done = classified(tx, "indicators_class")?;
    tx.batch_execute("DROP TABLE indicators_in; DROP TABLE indicators_class")?;
    Ok(done)
}

/// The bulk path of a block import's reassignments of people (ids unique): one `UPDATE`
/// from a `COPY`ed table (so the `people_counts` triggers fire once, not once per person), and
/// the history rows the per-row path writes, in input order. Returns how many people moved.
fn copy_reassignments(
    tx: &mut Transaction<'_>,
    moves: &[Reassignment],
    at: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let ts = timestamp(at);
    tx.batch_execute("CREATE TEMP TABLE reassign_in (ord bigint, id text, block_id text) ON COMMIT DROP")?;
    let mut writer = tx.copy_in("COPY reassign_in FROM STDIN")?;
    let mut line = String::new();
    for (i, r) in moves.iter().enumerate() {
        copy_row(&mut writer, &mut line, &[Some(&i.to_string()), Some(&r.id), r.block_id.as_deref()])?;
    }
    writer.finish()?;
    // RETURNING the columns of PERSON_SELECT (then `ord`), so `person_from_row` decodes them.
    let moved = tx.query(
        "UPDATE belong_private.people p SET home_block = r.block_id, updated_at = $1
         FROM reassign_in r WHERE p.id = r.id AND p.home_block IS DISTINCT FROM r.block_id
         RETURNING p.id, p.role, ST_X(p.geom), ST_Y(p.geom), p.name, p.phone, p.email, p.interested, p.active,
                   p.adopted_block, p.home_block, p.adopted_until, r.ord",
        &[&ts],
    )?;
    let mut rows = moved
        .iter()
        .map(|row| Ok((row.try_get::<_, i64>(12)?, person_from_row(row)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    rows.sort_unstable_by_key(|(ord, _)| *ord);
    tx.batch_execute(
        "CREATE TEMP TABLE reassign_history (ord bigint, id text, role text, block_id text, active boolean, detail text)
         ON COMMIT DROP",
    )?;
    let mut writer = tx.copy_in("COPY reassign_history FROM STDIN")?;
    for (ord, p) in &rows {
        let (detail, ord) = (person_detail(p), ord.to_string());
        let fields = [
            Some(ord.as_str()),
            Some(p.id.as_str()),
            Some(p.role.as_str()),
            p.covering_block(at),
            Some(if p.active { "t" } else { "f" }),
            detail.as_deref(),
        ];
        copy_row(&mut writer, &mut line, &fields)?;
    }
    writer.finish()?;
    tx.execute(
        "INSERT INTO belong_private.history (ts, entity, entity_id, action, role, block_id, active, detail)
         SELECT $1, 'person', id, 'reassign', role, block_id, active, detail FROM reassign_history ORDER BY ord",
        &[&ts],
    )?;
    tx.batch_execute("DROP TABLE reassign_in; DROP TABLE reassign_history")?;
    Ok(rows.len())
}

/// The bulk path of `upsert_people` (ids unique within `people`): `COPY` into a temporary
/// table, classify every row against the stored one (insert / update / unchanged) in SQL, write
/// the inserts and updates with one `INSERT ... SELECT ... ON CONFLICT`, and their history rows
/// with one `INSERT ... SELECT` in input order, the same rows the per-row path writes.
fn copy_people(tx: &mut Transaction<'_>, people: &[Person], at: DateTime<Utc>) -> Result<Upserted, StoreError> {
    let ts = timestamp(at);
    tx.batch_execute(
        "CREATE TEMP TABLE people_in (
            ord bigint, id text, role text, lon float8, lat float8, name text, phone text, email text,
            interested boolean, active boolean, adopted_block text, home_block text, adopted_until text,
            covering text, detail text
         ) ON COMMIT DROP",
    )?;
    let mut writer = tx.copy_in("COPY people_in FROM STDIN")?;
    let mut line = String::new();
    for (i, p) in people.iter().enumerate() {
        let until = p.adopted_until.map(until_text);
        let detail = person_detail(p);
        let fields: [Option<&str>; 15] = [
            Some(&i.to_string()),
            Some(&p.id),
            Some(p.role.as_str()),
            Some(&p.lon.to_string()),
            Some(&p.lat.to_string()),
            p.name.as_deref(),
            p.phone.as_deref(),
            p.email.as_deref(),
            Some(if p.interested { "t" } else { "f" }),
            Some(if p.active { "t" } else { "f" }),
            p.adopted_block.as_deref(),
            p.home_block.as_deref(),
            until.as_deref(),
            p.covering_block(at),
            detail.as_deref(),
        ];
        copy_row(&mut writer, &mut line, &fields)?;
    }
    writer.finish()?;
    tx.batch_execute(
        "CREATE TEMP TABLE people_class ON COMMIT DROP AS
         SELECT i.ord, i.id,
                CASE WHEN p.id IS NULL THEN 'insert'
                     WHEN p.role = i.role AND ST_X(p.geom) = i.lon AND ST_Y(p.geom) = i.lat
                      AND p.name IS NOT DISTINCT FROM i.name AND p.phone IS NOT DISTINCT FROM i.phone
                      AND p.email IS NOT DISTINCT FROM i.email AND p.interested = i.interested
                      AND p.active = i.active AND p.adopted_block IS NOT DISTINCT FROM i.adopted_block
                      AND p.home_block IS NOT DISTINCT FROM i.home_block
                      AND p.adopted_until IS NOT DISTINCT FROM i.adopted_until THEN 'unchanged'
                     ELSE 'update' END AS action
         FROM people_in i LEFT JOIN belong_private.people p ON p.id = i.id",
    )?;
    // Plain INSERT for new ids and UPDATE for changed ones: no speculative insertion per row
    // (ON CONFLICT), which is safe because every writer holds the feed lock.
    tx.execute(
        "INSERT INTO belong_private.people (id, role, geom, name, phone, email, interested, active,
             adopted_block, home_block, created_at, updated_at, adopted_until)
         SELECT i.id, i.role, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326), i.name, i.phone, i.email, i.interested,
                i.active, i.adopted_block, i.home_block, $1, $1, i.adopted_until
         FROM people_in i JOIN people_class c ON c.ord = i.ord WHERE c.action = 'insert'",
        &[&ts],
    )?;
    tx.execute(
        "UPDATE belong_private.people p SET role = i.role, geom = ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4326),
             name = i.name, phone = i.phone, email = i.email, interested = i.interested, active = i.active,
             adopted_block = i.adopted_block, home_block = i.home_block, updated_at = $1,
             adopted_until = i.adopted_until
         FROM people_in i JOIN people_class c ON c.ord = i.ord WHERE c.action = 'update' AND p.id = i.id",
        &[&ts],
    )?;
    // Rows are inserted in the order the sorted SELECT yields them, so seq follows input order.
    tx.execute(
        "INSERT INTO belong_private.history (ts, entity, entity_id, action, role, block_id, active, detail)
         SELECT $1, 'person', i.id, c.action, i.role, i.covering, i.active, i.detail
         FROM people_in i JOIN people_class c ON c.ord = i.ord WHERE c.action <> 'unchanged' ORDER BY i.ord",
        &[&ts],
    )?;
    let done = classified(tx, "people_class")?;
    tx.batch_execute("DROP TABLE people_in; DROP TABLE people_class")?;
    Ok(done)
}

/// The catchment part of `replace_blocks`: `COPY` the new blocks into a temporary table,
/// classify them against the stored ones in SQL, write their history (inserts and updates in
/// input order, then deletes in id order, as the SQLite store does) and swap the table's rows.
fn copy_blocks(
    tx: &mut Transaction<'_>,
    blocks: &[Block],
    ts: &str,
    report: &mut BlocksReplaced,
) -> Result<(), StoreError> {
    use std::fmt::Write as _;
    use std::io::Write;
    tx.batch_execute(
        "CREATE TEMP TABLE blocks_in (ord bigint, id text COLLATE \"C\", name text, attributes jsonb, wkb bytea)
         ON COMMIT DROP",
    )?;
    let mut writer = tx.copy_in("COPY blocks_in FROM STDIN")?;
    let mut line = String::new();
    let mut hex = String::new();
    for (i, b) in blocks.iter().enumerate() {
        let wkb = encode_geometry("block geometry", &b.id, &b.geometry)?;
        hex.clear();
        hex.push_str("\\x");
        for byte in &wkb {
            let _ = write!(hex, "{byte:02x}");
        }
        let attrs = serde_json::Value::Object(b.attributes.clone()).to_string();
        line.clear();
        let fields: [Option<&str>; 5] =
            [Some(&i.to_string()), Some(&b.id), b.name.as_deref(), Some(&attrs), Some(&hex)];
        for (n, f) in fields.iter().enumerate() {
            if n > 0 {
                line.push('\t');
            }
            copy_field(&mut line, *f);
        }
        line.push('\n');
        writer.write_all(line.as_bytes()).map_err(|e| StoreError::Database(Box::new(e)))?;
    }
    writer.finish()?;
    tx.batch_execute(
        "CREATE TEMP TABLE blocks_class ON COMMIT DROP AS
         SELECT i.ord, i.id,
                CASE WHEN b.id IS NULL THEN 'insert'
                     WHEN b.name IS NOT DISTINCT FROM i.name AND b.attributes = i.attributes
                      AND ST_AsBinary(b.geom) = i.wkb THEN NULL
                     ELSE 'update' END AS action
         FROM blocks_in i LEFT JOIN public.blocks b ON b.id = i.id",
    )?;
    tx.execute(
        "INSERT INTO belong_private.history (ts, entity, entity_id, action)
         SELECT $1, 'block', id, action FROM blocks_class WHERE action IS NOT NULL ORDER BY ord",
        &[&ts],
    )?;
    let removed = tx.execute(
        "INSERT INTO belong_private.history (ts, entity, entity_id, action)
         SELECT $1, 'block', b.id, 'delete' FROM public.blocks b
         WHERE NOT EXISTS (SELECT 1 FROM blocks_in i WHERE i.id = b.id) ORDER BY b.id",
        &[&ts],
    )?;
    report.removed = removed as usize;
    for r in tx.query("SELECT action, COUNT(*) FROM blocks_class WHERE action IS NOT NULL GROUP BY action", &[])? {
        let (action, n): (String, i64) = (r.try_get(0)?, r.try_get(1)?);
        if action == "insert" {
            report.added = n as usize;
        } else {
            report.changed = n as usize;
        }
    }
    tx.batch_execute(
        "DELETE FROM public.blocks;
         INSERT INTO public.blocks (id, name, attributes, geom)
             SELECT id, name, attributes, ST_GeomFromWKB(wkb, 4326) FROM blocks_in ORDER BY ord;
         DROP TABLE blocks_in; DROP TABLE blocks_class;",
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The store

impl Store for PostgresStore {
    fn replace_blocks(
        &self,
        blocks: &[Block],
        people: &[Reassignment],
        resources: &[Reassignment],
        source: &str,
    ) -> Result<BlocksReplaced, StoreError> {
        self.write(|tx| {
            let at = Utc::now();
            let ts = timestamp(at);
            let mut report = BlocksReplaced { blocks: blocks.len(), ..Default::default() };
            copy_blocks(tx, blocks, &ts, &mut report)?;
            let bulk = people.len() >= COPY_MIN_ROWS && all_distinct(people.iter().map(|r| r.id.as_str()));
            if bulk {
                report.people_reassigned = copy_reassignments(tx, people, at)?;
            }
            let update = tx.prepare(
                "UPDATE belong_private.people SET home_block = $2, updated_at = $3
                 WHERE id = $1 AND home_block IS DISTINCT FROM $2",
            )?;
            for r in people.iter().filter(|_| !bulk) {
                if tx.execute(&update, &[&r.id, &r.block_id, &ts])? == 1 {
                    report.people_reassigned += 1;
                    let Some(p) = get_person(tx, &r.id)? else { continue };
                    let detail = person_detail(&p);
                    let person = Some((&p.role, p.covering_block(at), p.active));
                    history(tx, &ts, "person", &r.id, "reassign", person, detail.as_deref())?;
                }
            }
            let update = tx.prepare(
                "UPDATE public.resources SET block_id = $2, updated_at = $3 WHERE id = $1 AND block_id IS DISTINCT FROM $2",
            )?;
            for r in resources {
                report.resources_reassigned += tx.execute(&update, &[&r.id, &r.block_id, &ts])? as usize;
            }
            let detail = serde_json::json!({ "kind": "blocks", "source": source, "report": &report }).to_string();
            history(tx, &ts, "import", "blocks", "import", None, Some(&detail))?;
            Ok(report)
        })
    }

    fn blocks(&self) -> Result<Vec<Block>, StoreError> {
        self.with(|c| {
            let sql = "SELECT id, name, ST_AsBinary(geom), attributes FROM public.blocks ORDER BY id";
            polygons(c, "block geometry", sql, &[], |id, name, geometry, attributes| Block {
                id,
                name,
                geometry,
                attributes,
            })
        })
    }

    fn block_ids(&self) -> Result<Vec<String>, StoreError> {
        self.with(|c| {
            c.query("SELECT id FROM public.blocks ORDER BY id", &[])?.iter().map(|r| Ok(r.try_get(0)?)).collect()
        })
    }

    fn upsert_people(&self, people: &[Person], source: &str) -> Result<Upserted, StoreError> {
        self.write(|tx| {
            let at = Utc::now();
            let ts = timestamp(at);
            let mut done = Upserted::default();
            if people.len() >= COPY_MIN_ROWS && all_distinct(people.iter().map(|p| p.id.as_str())) {
                done = copy_people(tx, people, at)?;
                let detail = serde_json::json!({ "kind": "people", "source": source, "report": done }).to_string();
                history(tx, &ts, "import", "people", "import", None, Some(&detail))?;
                return Ok(done);
            }
            let insert = tx.prepare(INSERT_PERSON)?;
            let update = tx.prepare(UPDATE_PERSON)?;
            for p in people {
                let until = p.adopted_until.map(until_text);
                let params = person_params(p, &ts, &until);
                let action = if tx.execute(&insert, &params)? == 1 {
                    done.inserted += 1;
                    "insert"
                } else if get_person(tx, &p.id)?.as_ref() == Some(p) {
                    done.unchanged += 1;
                    continue;
                } else {
                    tx.execute(&update, &params)?;
                    done.updated += 1;
                    "update"
                };
                let detail = person_detail(p);
                let person = Some((&p.role, p.covering_block(at), p.active));
                history(tx, &ts, "person", &p.id, action, person, detail.as_deref())?;
            }
            let detail = serde_json::json!({ "kind": "people", "source": source, "report": done }).to_string();
            history(tx, &ts, "import", "people", "import", None, Some(&detail))?;
            Ok(done)
        })
    }

    fn insert_person(&self, p: &Person, _source: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            let at = Utc::now();
            let ts = timestamp(at);
            let until = p.adopted_until.map(until_text);
            // One statement checks and inserts: two concurrent creates cannot both succeed.
            if tx.execute(INSERT_PERSON, &person_params(p, &ts, &until))? == 0 {
                return Err(StoreError::Conflict { what: "person", id: p.id.clone() });
            }
            let detail = person_detail(p);
            let person = Some((&p.role, p.covering_block(at), p.active));
            history(tx, &ts, "person", &p.id, "insert", person, detail.as_deref())?;
            Ok(())
        })
    }

    fn delete_person(&self, id: &str) -> Result<bool, StoreError> {
        self.write(|tx| {
            let at = Utc::now();
            let ts = timestamp(at);
            let Some(p) = get_person(tx, id)? else { return Ok(false) };
            tx.execute("DELETE FROM belong_private.people WHERE id = $1", &[&id])?;
            let detail = person_detail(&p);
            history(tx, &ts, "person", id, "delete", Some((&p.role, p.covering_block(at), false)), detail.as_deref())?;
            Ok(true)
        })
    }

    fn person(&self, id: &str) -> Result<Option<Person>, StoreError> {
        self.with(|c| get_person(c, id))
    }

    fn people(&self, filter: &PeopleFilter) -> Result<Vec<Person>, StoreError> {
        let role = filter.role.map(|r| r.as_str());
        self.with(|c| {
            let sql = format!("{PERSON_SELECT} {} ORDER BY id", people_where(filter));
            c.query(&sql, &[&role, &filter.block_id, &filter.interested])?.iter().map(person_from_row).collect()
        })
    }

    fn people_page(&self, filter: &PeopleFilter, offset: u64, limit: u64) -> Result<(Vec<Person>, u64), StoreError> {
        let role = filter.role.map(|r| r.as_str());
        let (limit, offset) = (i64::try_from(limit).unwrap_or(i64::MAX), i64::try_from(offset).unwrap_or(i64::MAX));
        // The page and its count in one snapshot.
        self.snapshot(|tx| {
            // Without a block filter the count comes from `people_counts` (at most four rows).
            let matched: i64 = if filter.block_id.is_none() {
                tx.query_one(
                    "SELECT COALESCE(SUM(n), 0)::bigint FROM belong_private.people_counts
                     WHERE ($1::text IS NULL OR role = $1::text) AND ($2::boolean IS NULL OR interested = $2::boolean)",
                    &[&role, &filter.interested],
                )?
                .try_get(0)?
            } else {
                tx.query_one(
                    &format!("SELECT COUNT(*) FROM belong_private.people {}", people_where(filter)),
                    &[&role, &filter.block_id, &filter.interested],
                )?
                .try_get(0)?
            };
            let sql = format!("{PERSON_SELECT} {} ORDER BY id LIMIT $4 OFFSET $5", people_where(filter));
            let page = tx
                .query(&sql, &[&role, &filter.block_id, &filter.interested, &limit, &offset])?
                .iter()
                .map(person_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            Ok((page, matched as u64))
        })
    }

    fn people_locations(&self) -> Result<Vec<Located>, StoreError> {
        self.with(|c| {
            locations(c, "SELECT id, ST_X(geom), ST_Y(geom), home_block FROM belong_private.people ORDER BY id")
        })
    }

    fn upsert_resources(&self, resources: &[Resource], source: &str) -> Result<Upserted, StoreError> {
        self.write(|tx| {
            let ts = now();
            if resources.len() >= COPY_MIN_ROWS && all_distinct(resources.iter().map(|r| r.id.as_str())) {
                let done = copy_resources(tx, resources, &ts)?;
                let detail = serde_json::json!({ "kind": "resources", "source": source, "report": done }).to_string();
                history(tx, &ts, "import", "resources", "import", None, Some(&detail))?;
                return Ok(done);
            }
            let mut done = Upserted::default();
            let get = tx.prepare(
                "SELECT name, category, ST_X(geom), ST_Y(geom), address, phone, email, url, attributes, block_id
                 FROM public.resources WHERE id = $1",
            )?;
            let upsert = tx.prepare(
                "INSERT INTO public.resources (id, name, category, geom, address, phone, email, url, attributes, block_id, updated_at)
                 VALUES ($1, $2, $3, ST_SetSRID(ST_MakePoint($4, $5), 4326), $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, category = excluded.category, geom = excluded.geom,
                   address = excluded.address, phone = excluded.phone, email = excluded.email, url = excluded.url,
                   attributes = excluded.attributes, block_id = excluded.block_id, updated_at = excluded.updated_at",
            )?;
            for r in resources {
                let attrs = serde_json::Value::Object(r.attributes.clone());
                let existing = tx.query_opt(&get, &[&r.id])?;
                let same = |e: &Row| -> Result<bool, StoreError> {
                    Ok(e.try_get::<_, Option<String>>(0)? == r.name
                        && e.try_get::<_, String>(1)? == r.category
                        && e.try_get::<_, f64>(2)? == r.lon
                        && e.try_get::<_, f64>(3)? == r.lat
                        && e.try_get::<_, Option<String>>(4)? == r.address
                        && e.try_get::<_, Option<String>>(5)? == r.phone
                        && e.try_get::<_, Option<String>>(6)? == r.email
                        && e.try_get::<_, Option<String>>(7)? == r.url
                        && e.try_get::<_, serde_json::Value>(8)? == attrs
                        && e.try_get::<_, Option<String>>(9)? == r.block_id)
                };
                let action = match &existing {
                    Some(e) if same(e)? => {
                        done.unchanged += 1;
                        continue;
                    }
                    Some(_) => {
                        done.updated += 1;
                        "update"
                    }
                    None => {
                        done.inserted += 1;
                        "insert"
                    }
                };
                tx.execute(
                    &upsert,
                    &[&r.id, &r.name, &r.category, &r.lon, &r.lat, &r.address, &r.phone, &r.email, &r.url, &attrs, &r.block_id, &ts],
                )?;
                let detail =
                    r.block_id.as_deref().map(|b| format!("{{\"block_id\":{}}}", serde_json::Value::from(b)));
                history(tx, &ts, "resource", &r.id, action, None, detail.as_deref())?;
            }
            let detail = serde_json::json!({ "kind": "resources", "source": source, "report": done }).to_string();
            history(tx, &ts, "import", "resources", "import", None, Some(&detail))?;
            Ok(done)
        })
    }

    fn resources(&self) -> Result<Vec<Resource>, StoreError> {
        self.with(|c| {
            let rows = c.query(
                "SELECT id, name, category, ST_X(geom), ST_Y(geom), address, phone, email, url, attributes, block_id
                 FROM public.resources ORDER BY id",
                &[],
            )?;
            rows.iter()
                .map(|r| {
                    let id: String = r.try_get(0)?;
                    let attributes = decode_attributes(&id, r.try_get(9)?)?;
                    Ok(Resource {
                        name: r.try_get(1)?,
                        category: r.try_get(2)?,
                        lon: r.try_get(3)?,
                        lat: r.try_get(4)?,
                        address: r.try_get(5)?,
                        phone: r.try_get(6)?,
                        email: r.try_get(7)?,
                        url: r.try_get(8)?,
                        attributes,
                        block_id: r.try_get(10)?,
                        id,
                    })
                })
                .collect()
        })
    }

    fn resource_locations(&self) -> Result<Vec<Located>, StoreError> {
        self.with(|c| locations(c, "SELECT id, ST_X(geom), ST_Y(geom), block_id FROM public.resources ORDER BY id"))
    }

    fn upsert_indicators(
        &self,
        values: &[IndicatorValue],
        no_data: &[(String, String, Option<String>)],
        source: &str,
    ) -> Result<Upserted, StoreError> {
        self.write(|tx| {
            let bulk = values.len() >= COPY_MIN_ROWS
                && all_distinct(values.iter().map(|v| (&v.block_id, &v.indicator, v.date.as_deref().unwrap_or(""))));
            let mut done = Upserted::default();
            if bulk {
                done = copy_indicators(tx, values)?;
            }
            let get =
                tx.prepare("SELECT value FROM public.indicators WHERE block_id = $1 AND indicator = $2 AND date = $3")?;
            let upsert = tx.prepare(
                "INSERT INTO public.indicators (block_id, indicator, date, value) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (block_id, indicator, date) DO UPDATE SET value = excluded.value",
            )?;
            for v in values.iter().filter(|_| !bulk) {
                let date = v.date.as_deref().unwrap_or("");
                let existing: Option<f64> = tx.query_opt(&get, &[&v.block_id, &v.indicator, &date])?.map(|r| r.get(0));
                match existing {
                    Some(old) if old == v.value => done.unchanged += 1,
                    Some(_) => done.updated += 1,
                    None => done.inserted += 1,
                }
                tx.execute(&upsert, &[&v.block_id, &v.indicator, &date, &v.value])?;
            }
            let delete =
                tx.prepare("DELETE FROM public.indicators WHERE block_id = $1 AND indicator = $2 AND date = $3")?;
            for (block, indicator, date) in no_data {
                tx.execute(&delete, &[block, indicator, &date.as_deref().unwrap_or("")])?;
            }
            let ts = now();
            let detail =
                serde_json::json!({ "kind": "indicators", "source": source, "report": done, "no_data": no_data.len() })
                    .to_string();
            history(tx, &ts, "import", "indicators", "import", None, Some(&detail))?;
            Ok(done)
        })
    }

    fn indicators(&self) -> Result<Vec<IndicatorValue>, StoreError> {
        self.with(|c| {
            c.query(
                "SELECT block_id, indicator, date, value FROM public.indicators ORDER BY block_id, indicator, date",
                &[],
            )?
            .iter()
            .map(|r| {
                let date: String = r.try_get(2)?;
                Ok(IndicatorValue {
                    block_id: r.try_get(0)?,
                    indicator: r.try_get(1)?,
                    date: (!date.is_empty()).then_some(date),
                    value: r.try_get(3)?,
                })
            })
            .collect()
        })
    }

    fn coverage_counts_at(&self, now: DateTime<Utc>) -> Result<(HashMap<String, BlockCounts>, u64), StoreError> {
        let now = until_text(now);
        self.snapshot(|tx| {
            let mut counts: HashMap<String, BlockCounts> = HashMap::new();
            for r in tx.query(
                "SELECT home_block, COUNT(*) FROM belong_private.people
                 WHERE role = 'resident' AND home_block IS NOT NULL GROUP BY home_block",
                &[],
            )? {
                counts.entry(r.try_get(0)?).or_default().residents = r.try_get::<_, i64>(1)? as u64;
            }
            // The rule of core::person::counted_for, as in the SQLite store: an adoption of a
            // block that no longer exists, or whose expiry has come, falls back to home.
            for r in tx.query(
                "SELECT CASE WHEN p.adopted_block IS NOT NULL AND (p.adopted_until IS NULL OR p.adopted_until > $1)
                              AND EXISTS (SELECT 1 FROM public.blocks b WHERE b.id = p.adopted_block)
                         THEN p.adopted_block ELSE p.home_block END AS covered, COUNT(*)
                 FROM belong_private.people p WHERE p.role = 'ambassador' AND p.active
                 GROUP BY covered HAVING (CASE WHEN p.adopted_block IS NOT NULL AND (p.adopted_until IS NULL OR p.adopted_until > $1)
                              AND EXISTS (SELECT 1 FROM public.blocks b WHERE b.id = p.adopted_block)
                         THEN p.adopted_block ELSE p.home_block END) IS NOT NULL",
                &[&now],
            )? {
                counts.entry(r.try_get(0)?).or_default().ambassadors = r.try_get::<_, i64>(1)? as u64;
            }
            let outside: i64 = tx
                .query_one("SELECT COUNT(*) FROM belong_private.people WHERE home_block IS NULL", &[])?
                .try_get(0)?;
            Ok((counts, outside as u64))
        })
    }

    fn next_adoption_expiry(&self, after: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError> {
        let after = until_text(after);
        self.with(|c| {
            let next: Option<String> = c
                .query_one(
                    "SELECT MIN(adopted_until) FROM belong_private.people WHERE adopted_until > $1 AND adopted_block IS NOT NULL",
                    &[&after],
                )?
                .try_get(0)?;
            Ok(next.as_deref().and_then(parse_until))
        })
    }

    fn catchment_version(&self) -> Result<i64, StoreError> {
        self.with(|c| {
            let seq: Option<i64> = c
                .query_one(
                    "SELECT MAX(seq) FROM belong_private.history WHERE entity = 'import' AND entity_id = 'blocks'",
                    &[],
                )?
                .try_get(0)?;
            Ok(seq.unwrap_or(0))
        })
    }

    fn create_token(&self, hash: &str, role: AccessRole, name: Option<&str>) -> Result<i64, StoreError> {
        self.write(|tx| {
            let row = tx.query_one(
                "INSERT INTO belong_private.tokens (hash, role, name, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                &[&hash, &role.as_str(), &name, &now()],
            )?;
            Ok(row.try_get(0)?)
        })
    }

    fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        self.with(|c| {
            c.query("SELECT id, role, name, created_at, revoked_at FROM belong_private.tokens ORDER BY id", &[])?
                .iter()
                .map(token_from_row)
                .collect()
        })
    }

    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenInfo>, StoreError> {
        self.with(|c| {
            c.query_opt(
                "SELECT id, role, name, created_at, revoked_at FROM belong_private.tokens
                 WHERE hash = $1 AND revoked_at IS NULL",
                &[&hash],
            )?
            .as_ref()
            .map(token_from_row)
            .transpose()
        })
    }

    fn revoke_token(&self, id: i64) -> Result<bool, StoreError> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE belong_private.tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                &[&id, &now()],
            )?;
            Ok(n == 1)
        })
    }

    fn coverage_state(
        &self,
        block: &mut dyn FnMut(&str),
        person: &mut dyn FnMut(CoverageRow<'_>),
    ) -> Result<i64, StoreError> {
        // One REPEATABLE READ snapshot: the cursor returned is exactly what the rows reflect.
        self.snapshot(|tx| {
            let cursor = last_change(tx)?;
            for r in tx.query("SELECT id FROM public.blocks", &[])? {
                block(r.try_get(0)?);
            }
            for r in tx.query(
                "SELECT id, role, active, home_block, adopted_block, adopted_until FROM belong_private.people",
                &[],
            )? {
                let role: &str = r.try_get(1)?;
                person(CoverageRow {
                    id: r.try_get(0)?,
                    role: if role == "ambassador" { Role::Ambassador } else { Role::Resident },
                    active: r.try_get(2)?,
                    home_block: r.try_get(3)?,
                    adopted_block: r.try_get(4)?,
                    adopted_until: r.try_get(5)?,
                });
            }
            Ok(cursor)
        })
    }

    fn last_change(&self) -> Result<i64, StoreError> {
        self.with(last_change)
    }

    fn wait_for_change(&self, timeout: Duration) -> Result<bool, StoreError> {
        let mut listener = lock(&self.listener);
        if listener.as_ref().is_none_or(Client::is_closed) {
            *listener = None;
            let mut c = self.connect()?;
            c.batch_execute(&format!("LISTEN {CHANNEL}"))?;
            *listener = Some(c);
            // Changes may have committed while nobody listened: tell the caller to read the feed.
            return Ok(true);
        }
        let Some(client) = listener.as_mut() else { return Ok(true) };
        let woke = {
            let mut notifications = client.notifications();
            let first = notifications.timeout_iter(timeout).next().map(|n| n.is_some());
            if first.is_ok() {
                // Drain the rest of a burst: one wake-up covers them all.
                while let Ok(Some(_)) = notifications.iter().next() {}
            }
            first
        };
        let woke = match woke {
            Ok(woke) => woke,
            Err(e) => {
                *listener = None;
                return Err(e.into());
            }
        };
        if listener.as_ref().is_none_or(Client::is_closed) {
            *listener = None;
            return Err(StoreError::Unavailable("the PostgreSQL listener connection closed".into()));
        }
        Ok(woke)
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.with(|c| Ok(c.simple_query("SELECT 1").map(|_| ())?))
    }

    fn history_len(&self) -> Result<u64, StoreError> {
        self.with(|c| {
            let n: i64 = c.query_one("SELECT COUNT(*) FROM belong_private.history", &[])?.try_get(0)?;
            Ok(n as u64)
        })
    }

    fn visit_history(
        &self,
        after: i64,
        limit: usize,
        visit: &mut dyn FnMut(HistoryRow<'_>),
    ) -> Result<usize, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|c| {
            let rows = c.query(
                "SELECT seq, ts, entity, entity_id, action, role, block_id, active, detail FROM belong_private.history
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &limit],
            )?;
            for r in &rows {
                let role: Option<&str> = r.try_get(5)?;
                visit(HistoryRow {
                    seq: r.try_get(0)?,
                    ts: r.try_get(1)?,
                    entity: r.try_get(2)?,
                    entity_id: r.try_get(3)?,
                    action: r.try_get(4)?,
                    role: role.map(|r| if r == "ambassador" { Role::Ambassador } else { Role::Resident }),
                    block_id: r.try_get(6)?,
                    active: r.try_get(7)?,
                    detail: r.try_get(8)?,
                });
            }
            Ok(rows.len())
        })
    }

    fn replace_areas(&self, layer: &str, areas: &[Area], source: &str) -> Result<AreasReplaced, StoreError> {
        self.write(|tx| {
            let ts = now();
            let previous: i64 =
                tx.query_one("SELECT COUNT(*) FROM public.areas WHERE layer = $1", &[&layer])?.try_get(0)?;
            tx.execute("DELETE FROM public.areas WHERE layer = $1", &[&layer])?;
            let report = AreasReplaced { layer: layer.to_string(), areas: areas.len(), previous: previous as usize };
            let detail = serde_json::json!({ "kind": "areas", "layer": layer, "source": source, "report": &report });
            let version = history(tx, &ts, "import", "areas", "import", None, Some(&detail.to_string()))?;
            tx.execute(
                "INSERT INTO public.area_layers (layer, source, imported_at, version) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (layer) DO UPDATE SET source = excluded.source, imported_at = excluded.imported_at,
                   version = excluded.version",
                &[&layer, &source, &ts, &version],
            )?;
            let insert = tx.prepare(
                "INSERT INTO public.areas (layer, area_id, name, attributes, geom)
                 VALUES ($1, $2, $3, $4, ST_GeomFromWKB($5, 4326))",
            )?;
            for a in areas {
                let wkb = encode_geometry("area geometry", &a.id, &a.geometry)?;
                let attrs = serde_json::Value::Object(a.attributes.clone());
                tx.execute(&insert, &[&layer, &a.id, &a.name, &attrs, &wkb])?;
            }
            Ok(report)
        })
    }

    fn areas(&self, layer: &str) -> Result<Vec<Area>, StoreError> {
        self.with(|c| {
            let sql = "SELECT area_id, name, ST_AsBinary(geom), attributes FROM public.areas WHERE layer = $1 ORDER BY area_id";
            polygons(c, "area geometry", sql, &[&layer], |id, name, geometry, attributes| Area {
                id,
                name,
                geometry,
                attributes,
            })
        })
    }

    fn area_layers(&self) -> Result<Vec<AreaLayer>, StoreError> {
        self.with(|c| {
            c.query(
                "SELECT l.layer, (SELECT COUNT(*) FROM public.areas a WHERE a.layer = l.layer), l.source, l.imported_at
                 FROM public.area_layers l ORDER BY l.layer",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(AreaLayer {
                    name: r.try_get(0)?,
                    areas: r.try_get::<_, i64>(1)? as u64,
                    source: r.try_get(2)?,
                    imported_at: r.try_get(3)?,
                })
            })
            .collect()
        })
    }

    fn areas_version(&self, layer: &str) -> Result<i64, StoreError> {
        self.with(|c| {
            Ok(c.query_opt("SELECT version FROM public.area_layers WHERE layer = $1", &[&layer])?
                .map(|r| r.get(0))
                .unwrap_or(0))
        })
    }
    fn table_counts(&self) -> Result<TableCounts, StoreError> {
        self.snapshot(|tx| dump::table_counts(tx))
    }

    fn dump(&self, sink: &mut dyn FnMut(DumpBatch) -> Result<(), StoreError>) -> Result<TableCounts, StoreError> {
        self.snapshot(|tx| dump::dump(tx, sink))
    }

    fn restore(&self, next: &mut dyn FnMut() -> Result<Option<DumpBatch>, StoreError>) -> Result<(), StoreError> {
        // `write` takes the feed lock first (no writer slips in between the emptiness check and
        // the load) and notifies listening instances at the end.
        self.write(|tx| dump::restore(tx, next))
    }
}
