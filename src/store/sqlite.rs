//! The embedded SQLite store: one file, WAL journal, every write in one transaction.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use geo::{BoundingRect, Geometry, MultiPolygon};
use geozero::wkb::Wkb;
use geozero::{CoordDimensions, ToGeo, ToWkb};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{
    AreasReplaced, BlocksReplaced, HistoryRow, Located, PeopleFilter, Reassignment, Store, StoreError, TokenInfo,
    Upserted, schema,
};
use crate::core::coverage::BlockCounts;
use crate::core::{AccessRole, Area, AreaLayer, Attributes, Block, IndicatorValue, Person, Resource, Role};

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    conn: Connection,
}

fn now() -> String {
    timestamp(Utc::now())
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The `detail` of a person's history row when they adopt a block: the adoption, its expiry and
/// the home block, so a replay of the history can lapse the adoption at `adopted_until` without
/// a row of its own. Ids and times only, never personal data.
fn person_detail(p: &Person) -> Option<String> {
    let adopted = p.adopted_block.as_deref()?;
    let detail = serde_json::json!({
        "adopted_block": adopted,
        "adopted_until": p.adopted_until,
        "home_block": p.home_block,
    });
    Some(detail.to_string())
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path` and migrate it.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
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
        // A large page cache keeps a million-row import from spilling pages mid-transaction.
        conn.pragma_update(None, "cache_size", -131_072)?; // KiB, i.e. 128 MiB
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        schema::migrate(&mut conn)?;
        Ok(SqliteStore { conn })
    }

    /// SQLite's `data_version`: changes whenever another connection (say `belong import` while
    /// `belong serve` runs) commits to the database, and never for this connection's own writes.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    fn history(
        tx: &Transaction<'_>,
        ts: &str,
        entity: &str,
        id: &str,
        action: &str,
        person: Option<(&Role, Option<&str>, bool)>,
        detail: Option<&str>,
    ) -> rusqlite::Result<()> {
        HistoryWriter::new(tx)?.write(ts, entity, id, action, person, detail)
    }
}

/// Appends history rows with one prepared statement (bulk imports write a row per person).
struct HistoryWriter<'t> {
    stmt: rusqlite::Statement<'t>,
}

impl<'t> HistoryWriter<'t> {
    fn new(tx: &'t Transaction<'_>) -> rusqlite::Result<Self> {
        Ok(HistoryWriter {
            stmt: tx.prepare(
                "INSERT INTO history (ts, entity, entity_id, action, role, block_id, active, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?,
        })
    }

    fn write(
        &mut self,
        ts: &str,
        entity: &str,
        id: &str,
        action: &str,
        person: Option<(&Role, Option<&str>, bool)>,
        detail: Option<&str>,
    ) -> rusqlite::Result<()> {
        let (role, block, active) = match person {
            Some((role, block, active)) => (Some(role.as_str()), block, Some(active)),
            None => (None, None, None),
        };
        self.stmt.execute(params![ts, entity, id, action, role, block, active, detail])?;
        Ok(())
    }
}

/// Rows per multi-row INSERT: fewer statements, well under SQLite's bound-variable limit.
const BULK_ROWS: usize = 64;

/// `INSERT INTO table (columns) VALUES (?,..),(?,..)...` for `rows` rows.
fn multi_row_insert(table: &str, columns: &[&str], rows: usize) -> String {
    let one = format!("({})", vec!["?"; columns.len()].join(","));
    format!("INSERT INTO {table} ({}) VALUES {}", columns.join(","), vec![one; rows].join(","))
}

fn bulk_insert_people(tx: &Transaction<'_>, people: &[Person], at: DateTime<Utc>) -> rusqlite::Result<()> {
    let ts = &timestamp(at);
    // Building secondary indexes once at the end is much cheaper than updating them a
    // million times; read their definitions from the schema so this follows future migrations.
    let indexes: Vec<(String, String)> = tx
        .prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'people' AND sql IS NOT NULL",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let big = people.len() > 10_000;
    if big {
        for (name, _) in &indexes {
            tx.execute_batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))?;
        }
    }
    const PEOPLE: &[&str] = &[
        "id",
        "role",
        "lon",
        "lat",
        "name",
        "phone",
        "email",
        "interested",
        "active",
        "adopted_block",
        "home_block",
        "created_at",
        "updated_at",
        "adopted_until",
    ];
    const HISTORY: &[&str] = &["ts", "entity", "entity_id", "action", "role", "block_id", "active", "detail"];
    for chunk in people.chunks(BULK_ROWS) {
        let mut stmt = tx.prepare_cached(&multi_row_insert("people", PEOPLE, chunk.len()))?;
        let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() * PEOPLE.len());
        let roles: Vec<&str> = chunk.iter().map(|p| p.role.as_str()).collect();
        for (p, role) in chunk.iter().zip(&roles) {
            values.extend_from_slice(&[
                &p.id,
                role,
                &p.lon,
                &p.lat,
                &p.name,
                &p.phone,
                &p.email,
                &p.interested,
                &p.active,
                &p.adopted_block,
                &p.home_block,
                &ts,
                &ts,
                &p.adopted_until,
            ]);
        }
        stmt.execute(values.as_slice())?;
        let mut stmt = tx.prepare_cached(&multi_row_insert("history", HISTORY, chunk.len()))?;
        let covering: Vec<Option<&str>> = chunk.iter().map(|p| p.covering_block(at)).collect();
        let details: Vec<Option<String>> = chunk.iter().map(person_detail).collect();
        let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() * HISTORY.len());
        for (((p, role), block), detail) in chunk.iter().zip(&roles).zip(&covering).zip(&details) {
            values.extend_from_slice(&[&ts, &"person", &p.id, &"insert", role, block, &p.active, detail]);
        }
        stmt.execute(values.as_slice())?;
    }
    if big {
        for (_, sql) in &indexes {
            tx.execute_batch(sql)?;
        }
    }
    Ok(())
}

fn encode_geometry(mp: &MultiPolygon<f64>) -> Result<Vec<u8>, StoreError> {
    Geometry::MultiPolygon(mp.clone()).to_wkb(CoordDimensions::xy()).map_err(|e| StoreError::Corrupt {
        what: "block geometry",
        id: String::new(),
        reason: e.to_string(),
    })
}

fn decode_geometry(id: &str, wkb: &[u8]) -> Result<MultiPolygon<f64>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { what: "block geometry", id: id.to_string(), reason };
    match Wkb(wkb).to_geo().map_err(|e| corrupt(e.to_string()))? {
        Geometry::MultiPolygon(mp) => Ok(mp),
        Geometry::Polygon(p) => Ok(MultiPolygon(vec![p])),
        other => Err(corrupt(format!("expected a multipolygon, found {other:?}"))),
    }
}

fn decode_attributes(id: &str, text: &str) -> Result<Attributes, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what: "attributes",
        id: id.to_string(),
        reason: e.to_string(),
    })
}

const PERSON_COLUMNS: &str =
    "id, role, lon, lat, name, phone, email, interested, active, adopted_block, home_block, adopted_until";

fn person_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Person> {
    let role: String = row.get(1)?;
    Ok(Person {
        id: row.get(0)?,
        role: if role == "ambassador" { Role::Ambassador } else { Role::Resident },
        lon: row.get(2)?,
        lat: row.get(3)?,
        name: row.get(4)?,
        phone: row.get(5)?,
        email: row.get(6)?,
        interested: row.get(7)?,
        active: row.get(8)?,
        adopted_block: row.get(9)?,
        home_block: row.get(10)?,
        adopted_until: row.get(11)?,
    })
}

impl Store for SqliteStore {
    fn replace_blocks(
        &mut self,
        blocks: &[Block],
        people: &[Reassignment],
        resources: &[Reassignment],
        source: &str,
    ) -> Result<BlocksReplaced, StoreError> {
        let at = Utc::now();
        let ts = timestamp(at);
        let tx = self.conn.transaction()?;
        let mut old: HashMap<String, (Option<String>, Vec<u8>, String)> = HashMap::new();
        {
            let mut stmt = tx.prepare("SELECT block_id, name, geometry, attributes FROM blocks")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))?;
            for row in rows {
                let (id, v) = row?;
                old.insert(id, v);
            }
        }
        let mut report = BlocksReplaced { blocks: blocks.len(), ..Default::default() };
        tx.execute("DELETE FROM blocks", [])?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO blocks (block_id, name, geometry, attributes, min_lon, min_lat, max_lon, max_lat)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for b in blocks {
                let wkb = encode_geometry(&b.geometry).map_err(|e| match e {
                    StoreError::Corrupt { what, reason, .. } => StoreError::Corrupt { what, id: b.id.clone(), reason },
                    other => other,
                })?;
                let attrs = serde_json::Value::Object(b.attributes.clone()).to_string();
                let rect = b.geometry.bounding_rect();
                let (lo, hi) = rect.map_or(((0.0, 0.0), (0.0, 0.0)), |r| (r.min().x_y(), r.max().x_y()));
                insert.execute(params![b.id, b.name, wkb, attrs, lo.0, lo.1, hi.0, hi.1])?;
                let action = match old.remove(&b.id) {
                    None => {
                        report.added += 1;
                        Some("insert")
                    }
                    Some((name, geom, old_attrs)) if name != b.name || geom != wkb || old_attrs != attrs => {
                        report.changed += 1;
                        Some("update")
                    }
                    Some(_) => None,
                };
                if let Some(action) = action {
                    Self::history(&tx, &ts, "block", &b.id, action, None, None)?;
                }
            }
        }
        report.removed = old.len();
        let mut removed: Vec<&String> = old.keys().collect();
        removed.sort();
        for id in removed {
            Self::history(&tx, &ts, "block", id, "delete", None, None)?;
        }
        {
            let mut update = tx
                .prepare("UPDATE people SET home_block = ?2, updated_at = ?3 WHERE id = ?1 AND home_block IS NOT ?2")?;
            let mut get = tx.prepare(&format!("SELECT {PERSON_COLUMNS} FROM people WHERE id = ?1"))?;
            for r in people {
                if update.execute(params![r.id, r.block_id, ts])? == 1 {
                    report.people_reassigned += 1;
                    let p = get.query_row([&r.id], person_from_row)?;
                    Self::history(
                        &tx,
                        &ts,
                        "person",
                        &r.id,
                        "reassign",
                        Some((&p.role, p.covering_block(at), p.active)),
                        person_detail(&p).as_deref(),
                    )?;
                }
            }
        }
        {
            let mut update =
                tx.prepare("UPDATE resources SET block_id = ?2, updated_at = ?3 WHERE id = ?1 AND block_id IS NOT ?2")?;
            for r in resources {
                report.resources_reassigned += update.execute(params![r.id, r.block_id, ts])?;
            }
        }
        let detail = serde_json::json!({ "kind": "blocks", "source": source, "report": &report }).to_string();
        Self::history(&tx, &ts, "import", "blocks", "import", None, Some(&detail))?;
        tx.commit()?;
        Ok(report)
    }

    fn blocks(&self) -> Result<Vec<Block>, StoreError> {
        let sql = "SELECT block_id, name, geometry, attributes FROM blocks ORDER BY block_id";
        polygons(&self.conn, sql, [], |id, name, geometry, attributes| Block { id, name, geometry, attributes })
    }

    fn block_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT block_id FROM blocks ORDER BY block_id")?;
        let ids = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(ids)
    }

    fn upsert_people(&mut self, people: &[Person], source: &str) -> Result<Upserted, StoreError> {
        let at = Utc::now();
        let ts = timestamp(at);
        let tx = self.conn.transaction()?;
        let mut done = Upserted::default();
        let empty: bool = tx.query_row("SELECT NOT EXISTS (SELECT 1 FROM people)", [], |r| r.get(0))?;
        if empty {
            // First import into an empty table: every row is new (the readers reject duplicate
            // ids), so write them many rows per statement, with their history.
            bulk_insert_people(&tx, people, at)?;
            done.inserted = people.len();
        } else {
            // Insert first: a bulk import of new people costs one statement per row. Only
            // when the id exists do we read the row to tell "updated" from "unchanged".
            let mut insert = tx.prepare(
                "INSERT OR IGNORE INTO people (id, role, lon, lat, name, phone, email, interested, active, adopted_block, home_block, created_at, updated_at, adopted_until)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13)",
            )?;
            let mut get = tx.prepare(&format!("SELECT {PERSON_COLUMNS} FROM people WHERE id = ?1"))?;
            let mut update = tx.prepare(
                "UPDATE people SET role = ?2, lon = ?3, lat = ?4, name = ?5, phone = ?6, email = ?7, interested = ?8,
                 active = ?9, adopted_block = ?10, home_block = ?11, updated_at = ?12, adopted_until = ?13 WHERE id = ?1",
            )?;
            let mut history = HistoryWriter::new(&tx)?;
            for p in people {
                let values = params![
                    p.id,
                    p.role.as_str(),
                    p.lon,
                    p.lat,
                    p.name,
                    p.phone,
                    p.email,
                    p.interested,
                    p.active,
                    p.adopted_block,
                    p.home_block,
                    ts,
                    p.adopted_until
                ];
                let action = if insert.execute(values)? == 1 {
                    done.inserted += 1;
                    "insert"
                } else if get.query_row([&p.id], person_from_row)? == *p {
                    done.unchanged += 1;
                    continue;
                } else {
                    update.execute(values)?;
                    done.updated += 1;
                    "update"
                };
                let detail = person_detail(p);
                let covering = p.covering_block(at);
                history.write(&ts, "person", &p.id, action, Some((&p.role, covering, p.active)), detail.as_deref())?;
            }
        }
        let detail = serde_json::json!({ "kind": "people", "source": source, "report": done }).to_string();
        Self::history(&tx, &ts, "import", "people", "import", None, Some(&detail))?;
        tx.commit()?;
        Ok(done)
    }

    fn delete_person(&mut self, id: &str) -> Result<bool, StoreError> {
        let at = Utc::now();
        let ts = timestamp(at);
        let tx = self.conn.transaction()?;
        let existing = tx
            .query_row(&format!("SELECT {PERSON_COLUMNS} FROM people WHERE id = ?1"), [id], person_from_row)
            .optional()?;
        let Some(p) = existing else { return Ok(false) };
        tx.execute("DELETE FROM people WHERE id = ?1", [id])?;
        let detail = person_detail(&p);
        Self::history(
            &tx,
            &ts,
            "person",
            id,
            "delete",
            Some((&p.role, p.covering_block(at), false)),
            detail.as_deref(),
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn person(&self, id: &str) -> Result<Option<Person>, StoreError> {
        Ok(self
            .conn
            .query_row(&format!("SELECT {PERSON_COLUMNS} FROM people WHERE id = ?1"), [id], person_from_row)
            .optional()?)
    }

    fn people(&self, filter: &PeopleFilter) -> Result<Vec<Person>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {PERSON_COLUMNS} FROM people
             WHERE (?1 IS NULL OR role = ?1)
               AND (?2 IS NULL OR home_block = ?2 OR adopted_block = ?2)
               AND (?3 IS NULL OR interested = ?3)
             ORDER BY id"
        ))?;
        let role = filter.role.map(|r| r.as_str());
        let rows = stmt.query_map(params![role, filter.block_id, filter.interested], person_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn people_page(&self, filter: &PeopleFilter, offset: u64, limit: u64) -> Result<(Vec<Person>, u64), StoreError> {
        const WHERE: &str = "WHERE (?1 IS NULL OR role = ?1)
               AND (?2 IS NULL OR home_block = ?2 OR adopted_block = ?2)
               AND (?3 IS NULL OR interested = ?3)";
        let role = filter.role.map(|r| r.as_str());
        let matched: i64 = self.conn.query_row(
            &format!("SELECT COUNT(*) FROM people {WHERE}"),
            params![role, filter.block_id, filter.interested],
            |r| r.get(0),
        )?;
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {PERSON_COLUMNS} FROM people {WHERE} ORDER BY id LIMIT ?4 OFFSET ?5"))?;
        let (limit, offset) = (i64::try_from(limit).unwrap_or(i64::MAX), i64::try_from(offset).unwrap_or(i64::MAX));
        let rows = stmt.query_map(params![role, filter.block_id, filter.interested, limit, offset], person_from_row)?;
        Ok((rows.collect::<Result<_, _>>()?, matched as u64))
    }

    fn people_locations(&self) -> Result<Vec<Located>, StoreError> {
        locations(&self.conn, "SELECT id, lon, lat, home_block FROM people ORDER BY id")
    }

    fn upsert_resources(&mut self, resources: &[Resource], source: &str) -> Result<Upserted, StoreError> {
        let ts = now();
        let tx = self.conn.transaction()?;
        let mut done = Upserted::default();
        {
            let mut get = tx.prepare(
                "SELECT name, category, lon, lat, address, phone, email, url, attributes, block_id FROM resources WHERE id = ?1",
            )?;
            let mut upsert = tx.prepare(
                "INSERT INTO resources (id, name, category, lon, lat, address, phone, email, url, attributes, block_id, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, category = excluded.category, lon = excluded.lon,
                   lat = excluded.lat, address = excluded.address, phone = excluded.phone, email = excluded.email,
                   url = excluded.url, attributes = excluded.attributes, block_id = excluded.block_id,
                   updated_at = excluded.updated_at",
            )?;
            for r in resources {
                let attrs = serde_json::Value::Object(r.attributes.clone()).to_string();
                type Row = (
                    Option<String>,
                    String,
                    f64,
                    f64,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    String,
                    Option<String>,
                );
                let existing: Option<Row> = get
                    .query_row([&r.id], |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                            row.get(5)?,
                            row.get(6)?,
                            row.get(7)?,
                            row.get(8)?,
                            row.get(9)?,
                        ))
                    })
                    .optional()?;
                let new: Row = (
                    r.name.clone(),
                    r.category.clone(),
                    r.lon,
                    r.lat,
                    r.address.clone(),
                    r.phone.clone(),
                    r.email.clone(),
                    r.url.clone(),
                    attrs.clone(),
                    r.block_id.clone(),
                );
                let action = match existing {
                    Some(e) if e == new => {
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
                upsert.execute(params![
                    r.id, r.name, r.category, r.lon, r.lat, r.address, r.phone, r.email, r.url, attrs, r.block_id, ts
                ])?;
                Self::history(
                    &tx,
                    &ts,
                    "resource",
                    &r.id,
                    action,
                    None,
                    r.block_id
                        .as_deref()
                        .map(|b| format!("{{\"block_id\":{}}}", serde_json::Value::from(b)))
                        .as_deref(),
                )?;
            }
        }
        let detail = serde_json::json!({ "kind": "resources", "source": source, "report": done }).to_string();
        Self::history(&tx, &ts, "import", "resources", "import", None, Some(&detail))?;
        tx.commit()?;
        Ok(done)
    }

    fn resources(&self) -> Result<Vec<Resource>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, name, category, lon, lat, address, phone, email, url, attributes, block_id FROM resources ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                Resource {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    category: r.get(2)?,
                    lon: r.get(3)?,
                    lat: r.get(4)?,
                    address: r.get(5)?,
                    phone: r.get(6)?,
                    email: r.get(7)?,
                    url: r.get(8)?,
                    attributes: Attributes::new(),
                    block_id: r.get(10)?,
                },
                r.get::<_, String>(9)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut res, attrs) = row?;
            res.attributes = decode_attributes(&res.id, &attrs)?;
            out.push(res);
        }
        Ok(out)
    }

    fn resource_locations(&self) -> Result<Vec<Located>, StoreError> {
        locations(&self.conn, "SELECT id, lon, lat, block_id FROM resources ORDER BY id")
    }

    fn upsert_indicators(
        &mut self,
        values: &[IndicatorValue],
        no_data: &[(String, String, Option<String>)],
        source: &str,
    ) -> Result<Upserted, StoreError> {
        let tx = self.conn.transaction()?;
        let mut done = Upserted::default();
        {
            let mut get =
                tx.prepare("SELECT value FROM indicators WHERE block_id = ?1 AND indicator = ?2 AND date = ?3")?;
            let mut upsert = tx.prepare(
                "INSERT INTO indicators (block_id, indicator, date, value) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (block_id, indicator, date) DO UPDATE SET value = excluded.value",
            )?;
            for v in values {
                let date = v.date.as_deref().unwrap_or("");
                let existing: Option<f64> =
                    get.query_row(params![v.block_id, v.indicator, date], |r| r.get(0)).optional()?;
                match existing {
                    Some(old) if old == v.value => done.unchanged += 1,
                    Some(_) => done.updated += 1,
                    None => done.inserted += 1,
                }
                upsert.execute(params![v.block_id, v.indicator, date, v.value])?;
            }
            let mut delete =
                tx.prepare("DELETE FROM indicators WHERE block_id = ?1 AND indicator = ?2 AND date = ?3")?;
            for (block, indicator, date) in no_data {
                delete.execute(params![block, indicator, date.as_deref().unwrap_or("")])?;
            }
        }
        let ts = now();
        let detail =
            serde_json::json!({ "kind": "indicators", "source": source, "report": done, "no_data": no_data.len() })
                .to_string();
        Self::history(&tx, &ts, "import", "indicators", "import", None, Some(&detail))?;
        tx.commit()?;
        Ok(done)
    }

    fn indicators(&self) -> Result<Vec<IndicatorValue>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT block_id, indicator, date, value FROM indicators ORDER BY block_id, indicator, date")?;
        let rows = stmt.query_map([], |r| {
            let date: String = r.get(2)?;
            Ok(IndicatorValue {
                block_id: r.get(0)?,
                indicator: r.get(1)?,
                date: (!date.is_empty()).then_some(date),
                value: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn coverage_counts_at(&self, now: DateTime<Utc>) -> Result<(HashMap<String, BlockCounts>, u64), StoreError> {
        let mut counts: HashMap<String, BlockCounts> = HashMap::new();
        let mut residents = self.conn.prepare(
            "SELECT home_block, COUNT(*) FROM people WHERE role = 'resident' AND home_block IS NOT NULL GROUP BY home_block",
        )?;
        for row in residents.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (block, n) = row?;
            counts.entry(block).or_default().residents = n as u64;
        }
        // An adoption of a block that no longer exists, or whose `adopted_until` has come (stored
        // as fixed-width UTC text, so comparing text compares instants), falls back to home.
        let mut ambassadors = self.conn.prepare(
            "SELECT CASE WHEN p.adopted_block IS NOT NULL AND (p.adopted_until IS NULL OR p.adopted_until > ?1)
                              AND EXISTS (SELECT 1 FROM blocks b WHERE b.block_id = p.adopted_block)
                         THEN p.adopted_block ELSE p.home_block END AS covered, COUNT(*)
             FROM people p WHERE p.role = 'ambassador' AND p.active = 1 GROUP BY covered HAVING covered IS NOT NULL",
        )?;
        let now = crate::core::person::until_text(now);
        for row in ambassadors.query_map([&now], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (block, n) = row?;
            counts.entry(block).or_default().ambassadors = n as u64;
        }
        let outside: i64 =
            self.conn.query_row("SELECT COUNT(*) FROM people WHERE home_block IS NULL", [], |r| r.get(0))?;
        Ok((counts, outside as u64))
    }

    fn next_adoption_expiry(&self, after: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<String> = self.conn.query_row(
            "SELECT MIN(adopted_until) FROM people WHERE adopted_until > ?1 AND adopted_block IS NOT NULL",
            [crate::core::person::until_text(after)],
            |r| r.get(0),
        )?;
        Ok(next.as_deref().and_then(crate::core::person::parse_until))
    }

    fn catchment_version(&self) -> Result<i64, StoreError> {
        // Every block import writes exactly one such row, and seq only grows.
        let seq: Option<i64> = self.conn.query_row(
            "SELECT MAX(seq) FROM history WHERE entity = 'import' AND entity_id = 'blocks'",
            [],
            |r| r.get(0),
        )?;
        Ok(seq.unwrap_or(0))
    }

    fn create_token(&mut self, hash: &str, role: AccessRole, name: Option<&str>) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO tokens (hash, role, name, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![hash, role.as_str(), name, now()],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT id, role, name, created_at, revoked_at FROM tokens ORDER BY id")?;
        let rows = stmt.query_map([], token_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn token_by_hash(&self, hash: &str) -> Result<Option<TokenInfo>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, role, name, created_at, revoked_at FROM tokens WHERE hash = ?1 AND revoked_at IS NULL",
                [hash],
                token_from_row,
            )
            .optional()?)
    }

    fn revoke_token(&mut self, id: i64) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute("UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL", params![id, now()])?;
        Ok(n == 1)
    }

    fn visit_history(
        &self,
        after: i64,
        limit: usize,
        visit: &mut dyn FnMut(HistoryRow<'_>),
    ) -> Result<usize, StoreError> {
        // A range of the rowid (seq): no index needed, however long the history.
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, ts, entity, entity_id, action, role, block_id, active, detail FROM history
             WHERE seq > ?1 AND entity IN ('person', 'block') ORDER BY seq LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![after, i64::try_from(limit).unwrap_or(i64::MAX)])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let corrupt = |e: rusqlite::types::FromSqlError| StoreError::Corrupt {
                what: "history row",
                id: seq.to_string(),
                reason: e.to_string(),
            };
            let text = |i: usize| r.get_ref(i).map_err(StoreError::from)?.as_str().map_err(corrupt);
            let text_or_null = |i: usize| r.get_ref(i).map_err(StoreError::from)?.as_str_or_null().map_err(corrupt);
            let role = match text_or_null(5)? {
                None => None,
                Some("ambassador") => Some(Role::Ambassador),
                Some(_) => Some(Role::Resident),
            };
            visit(HistoryRow {
                seq,
                ts: text(1)?,
                entity: text(2)?,
                entity_id: text(3)?,
                action: text(4)?,
                role,
                block_id: text_or_null(6)?,
                active: r.get(7)?,
                detail: text_or_null(8)?,
            });
            n += 1;
        }
        Ok(n)
    }

    fn history_len(&self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row("SELECT COUNT(*) FROM history", [], |r| r.get(0))?;
        Ok(n as u64)
    }

    fn replace_areas(&mut self, layer: &str, areas: &[Area], source: &str) -> Result<AreasReplaced, StoreError> {
        let ts = now();
        let tx = self.conn.transaction()?;
        let previous: i64 = tx.query_row("SELECT COUNT(*) FROM areas WHERE layer = ?1", [layer], |r| r.get(0))?;
        tx.execute("DELETE FROM areas WHERE layer = ?1", [layer])?;
        let report = AreasReplaced { layer: layer.to_string(), areas: areas.len(), previous: previous as usize };
        let detail = serde_json::json!({ "kind": "areas", "layer": layer, "source": source, "report": &report });
        Self::history(&tx, &ts, "import", "areas", "import", None, Some(&detail.to_string()))?;
        // The import's history seq: unique and growing, so it versions the layer.
        let version = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO area_layers (layer, source, imported_at, version) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (layer) DO UPDATE SET source = excluded.source, imported_at = excluded.imported_at,
               version = excluded.version",
            params![layer, source, ts, version],
        )?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO areas (layer, area_id, name, geometry, attributes, min_lon, min_lat, max_lon, max_lat)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for a in areas {
                let wkb = encode_geometry(&a.geometry).map_err(|e| match e {
                    StoreError::Corrupt { reason, .. } => {
                        StoreError::Corrupt { what: "area geometry", id: a.id.clone(), reason }
                    }
                    other => other,
                })?;
                let attrs = serde_json::Value::Object(a.attributes.clone()).to_string();
                let (lo, hi) =
                    a.geometry.bounding_rect().map_or(((0.0, 0.0), (0.0, 0.0)), |r| (r.min().x_y(), r.max().x_y()));
                insert.execute(params![layer, a.id, a.name, wkb, attrs, lo.0, lo.1, hi.0, hi.1])?;
            }
        }
        tx.commit()?;
        Ok(report)
    }

    fn areas(&self, layer: &str) -> Result<Vec<Area>, StoreError> {
        let sql = "SELECT area_id, name, geometry, attributes FROM areas WHERE layer = ?1 ORDER BY area_id";
        polygons(&self.conn, sql, [layer], |id, name, geometry, attributes| Area { id, name, geometry, attributes })
    }

    fn area_layers(&self) -> Result<Vec<AreaLayer>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT l.layer, (SELECT COUNT(*) FROM areas a WHERE a.layer = l.layer), l.source, l.imported_at
             FROM area_layers l ORDER BY l.layer",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(AreaLayer {
                name: r.get(0)?,
                areas: r.get::<_, i64>(1)? as u64,
                source: r.get(2)?,
                imported_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn areas_version(&self, layer: &str) -> Result<i64, StoreError> {
        let v: Option<i64> = self
            .conn
            .query_row("SELECT version FROM area_layers WHERE layer = ?1", [layer], |r| r.get(0))
            .optional()?;
        Ok(v.unwrap_or(0))
    }
}

fn token_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenInfo> {
    let role: String = row.get(1)?;
    let role = role
        .parse()
        .map_err(|e: String| rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, e.into()))?;
    Ok(TokenInfo { id: row.get(0)?, role, name: row.get(2)?, created_at: row.get(3)?, revoked_at: row.get(4)? })
}

/// Rows of `(id, name, WKB geometry, JSON attributes)` from `sql`, decoded and built by `make`
/// (blocks and areas are stored alike).
fn polygons<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    make: impl Fn(String, Option<String>, MultiPolygon<f64>, Attributes) -> T,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params, |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, String>(3)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, name, wkb, attrs) = row?;
        let geometry = decode_geometry(&id, &wkb)?;
        let attributes = decode_attributes(&id, &attrs)?;
        out.push(make(id, name, geometry, attributes));
    }
    Ok(out)
}

fn locations(conn: &Connection, sql: &str) -> Result<Vec<Located>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let rows =
        stmt.query_map([], |r| Ok(Located { id: r.get(0)?, lon: r.get(1)?, lat: r.get(2)?, block_id: r.get(3)? }))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let mut stmt =
            store.conn.prepare("SELECT entity, entity_id, action, block_id FROM history ORDER BY seq").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn blocks_round_trip_through_wkb() {
        let mut store = SqliteStore::open_in_memory().unwrap();
        let mut b = block("060370000001000", 0.0);
        b.attributes.insert("POP20".into(), 12.into());
        store.replace_blocks(std::slice::from_ref(&b), &[], &[], "test").unwrap();
        assert_eq!(store.blocks().unwrap(), vec![b]);
    }

    #[test]
    fn every_change_is_in_the_history() {
        let mut store = SqliteStore::open_in_memory().unwrap();
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

    #[test]
    fn a_failed_write_changes_nothing() {
        let mut store = SqliteStore::open_in_memory().unwrap();
        store.replace_blocks(&[block("A", 0.0)], &[], &[], "t").unwrap();
        let before = (store.blocks().unwrap(), store.history_len().unwrap());
        // Duplicate ids violate the primary key half-way through the transaction.
        let err = store.replace_blocks(&[block("X", 0.0), block("X", 1.0)], &[], &[], "t");
        assert!(err.is_err());
        assert_eq!((store.blocks().unwrap(), store.history_len().unwrap()), before);
    }

    #[test]
    fn coverage_counts_follow_adoption_and_activity() {
        let mut store = SqliteStore::open_in_memory().unwrap();
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
        let mut store = SqliteStore::open_in_memory().unwrap();
        store.replace_blocks(&[block("A", 0.0)], &[], &[], "t").unwrap();
        let people: Vec<Person> = (0..12_345).map(|i| person(&format!("p{i:05}"), Role::Resident, Some("A"))).collect();
        let before = store.history_len().unwrap();
        assert_eq!(store.upsert_people(&people, "t").unwrap().inserted, 12_345);
        assert_eq!(store.history_len().unwrap() - before, 12_345 + 1);
        let indexes: i64 = store
            .conn
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
        let mut store = SqliteStore::open_in_memory().unwrap();
        store.replace_blocks(&[block("A", 0.0), block("B", 1.0)], &[], &[], "t").unwrap();
        let mut adopter = person("a1", Role::Ambassador, Some("A"));
        adopter.adopted_block = Some("B".into());
        adopter.adopted_until = Some("2100-01-01T00:00:00Z".into());
        let mut lapsed = person("a2", Role::Ambassador, Some("A"));
        lapsed.adopted_block = Some("B".into());
        lapsed.adopted_until = Some("2000-01-01T00:00:00Z".into());
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
            .conn
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
            .conn
            .query_row("SELECT detail FROM history WHERE entity = 'person' ORDER BY seq DESC LIMIT 1", [], |r| r.get(0))
            .unwrap();
        assert!(last.unwrap().contains("2100-01-01T00:00:00Z"));
    }

    #[test]
    fn catchment_version_changes_with_block_imports_only() {
        let mut store = SqliteStore::open_in_memory().unwrap();
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
                store.conn.prepare(sql).unwrap().query_map([], |r| r.get(3)).unwrap().map(Result::unwrap).collect();
            assert!(plan.iter().any(|p| p.contains("USING") && p.contains("INDEX")), "{sql}: {plan:?}");
        }
    }
}
