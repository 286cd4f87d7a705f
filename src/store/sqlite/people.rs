//! Residents and ambassadors, and the coverage counts computed from them in SQL.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::history::{HistoryWriter, history};
use super::{BULK_ROWS, locations, multi_row_insert, timestamp};
use crate::core::coverage::BlockCounts;
use crate::core::person::{parse_until, until_text};
use crate::core::{Person, Role};
use crate::store::{Located, PeopleFilter, StoreError, Upserted};

/// The `detail` of a person's history row when they adopt a block: the adoption, its expiry and
/// the home block, so a replay of the history can lapse the adoption at `adopted_until` without
/// a row of its own. Ids and times only, never personal data.
pub(super) fn person_detail(p: &Person) -> Option<String> {
    let adopted = p.adopted_block.as_deref()?;
    let detail = serde_json::json!({
        "adopted_block": adopted,
        "adopted_until": p.adopted_until.map(until_text),
        "home_block": p.home_block,
    });
    Some(detail.to_string())
}

pub(super) const PERSON_COLUMNS: &str =
    "id, role, lon, lat, name, phone, email, interested, active, adopted_block, home_block, adopted_until";

/// A stored value that does not decode. Row-mapping closures can only fail with a
/// `rusqlite::Error`, so it travels inside `FromSqlConversionFailure` and comes out as
/// [`StoreError::Corrupt`] (see `From<rusqlite::Error> for StoreError`).
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub(super) struct CorruptValue {
    pub what: &'static str,
    pub id: String,
    pub reason: String,
}

pub(super) fn person_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Person> {
    let role: String = row.get(1)?;
    let id: String = row.get(0)?;
    // Only `until_text` writes this column, so text that does not parse is damage (or a hand
    // edit), not "no expiry": saying so beats silently extending or ending an adoption.
    let until: Option<String> = row.get(11)?;
    let adopted_until = until
        .map(|text| {
            parse_until(&text).ok_or_else(|| {
                let bad = CorruptValue {
                    what: "person adopted_until",
                    id: id.clone(),
                    reason: "not an RFC 3339 instant".into(),
                };
                rusqlite::Error::FromSqlConversionFailure(11, rusqlite::types::Type::Text, Box::new(bad))
            })
        })
        .transpose()?;
    Ok(Person {
        id,
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
        adopted_until,
    })
}

fn bulk_insert_people(tx: &Transaction<'_>, people: &[Person], at: DateTime<Utc>) -> rusqlite::Result<()> {
    let ts = &timestamp(at);
    let untils: Vec<Option<String>> = people.iter().map(|p| p.adopted_until.map(until_text)).collect();
    // Building secondary indexes once at the end is much cheaper than updating them a
    // million times; read their definitions from the schema so this follows future migrations.
    let indexes: Vec<(String, String)> = tx
        .prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'people' AND sql IS NOT NULL",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    // The same for the triggers that keep `people_counts` exact: the table is recomputed
    // once at the end instead of being updated once per row.
    let triggers: Vec<(String, String)> = tx
        .prepare(
            "SELECT name, sql FROM sqlite_master
             WHERE type = 'trigger' AND tbl_name = 'people' AND name LIKE 'people\\_counts\\_%' ESCAPE '\\'",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let big = people.len() > 10_000;
    if big {
        for (name, _) in &indexes {
            tx.execute_batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))?;
        }
        for (name, _) in &triggers {
            tx.execute_batch(&format!("DROP TRIGGER \"{}\"", name.replace('"', "\"\"")))?;
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
    for (chunk, untils) in people.chunks(BULK_ROWS).zip(untils.chunks(BULK_ROWS)) {
        let mut stmt = tx.prepare_cached(&multi_row_insert("people", PEOPLE, chunk.len()))?;
        let mut values: Vec<&dyn rusqlite::ToSql> = Vec::with_capacity(chunk.len() * PEOPLE.len());
        let roles: Vec<&str> = chunk.iter().map(|p| p.role.as_str()).collect();
        for ((p, role), until) in chunk.iter().zip(&roles).zip(untils) {
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
                until,
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
        tx.execute_batch(
            "DELETE FROM people_counts;
             INSERT INTO people_counts (role, interested, n)
                 SELECT role, interested, COUNT(*) FROM people GROUP BY role, interested;",
        )?;
        for (_, sql) in &triggers {
            tx.execute_batch(sql)?;
        }
    }
    Ok(())
}

pub(super) fn upsert_people(conn: &mut Connection, people: &[Person], source: &str) -> Result<Upserted, StoreError> {
    let at = Utc::now();
    let ts = timestamp(at);
    let tx = conn.transaction()?;
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
        let mut insert = tx.prepare(INSERT_PERSON)?;
        let mut get = tx.prepare(&format!("SELECT {PERSON_COLUMNS} FROM people WHERE id = ?1"))?;
        let mut update = tx.prepare(
            "UPDATE people SET role = ?2, lon = ?3, lat = ?4, name = ?5, phone = ?6, email = ?7, interested = ?8,
             active = ?9, adopted_block = ?10, home_block = ?11, updated_at = ?12, adopted_until = ?13 WHERE id = ?1",
        )?;
        let mut history = HistoryWriter::new(&tx)?;
        for p in people {
            let until = p.adopted_until.map(until_text);
            let values = &person_values(p, &ts, &until);
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
    history(&tx, &ts, "import", "people", "import", None, Some(&detail))?;
    tx.commit()?;
    Ok(done)
}

pub(super) fn delete_person(conn: &mut Connection, id: &str) -> Result<bool, StoreError> {
    let at = Utc::now();
    let ts = timestamp(at);
    let tx = conn.transaction()?;
    let existing = tx
        .query_row(&format!("SELECT {PERSON_COLUMNS} FROM people WHERE id = ?1"), [id], person_from_row)
        .optional()?;
    let Some(p) = existing else { return Ok(false) };
    tx.execute("DELETE FROM people WHERE id = ?1", [id])?;
    let detail = person_detail(&p);
    history(&tx, &ts, "person", id, "delete", Some((&p.role, p.covering_block(at), false)), detail.as_deref())?;
    tx.commit()?;
    Ok(true)
}

pub(super) fn person(conn: &Connection, id: &str) -> Result<Option<Person>, StoreError> {
    Ok(conn
        .query_row(&format!("SELECT {PERSON_COLUMNS} FROM people WHERE id = ?1"), [id], person_from_row)
        .optional()?)
}

/// The `WHERE` of a people listing: `?1` role, `?2` block, `?3` interested, each `NULL` for
/// "any". With a block the block test stands alone (not `?2 IS NULL OR ...`), so SQLite can
/// answer it from the home and adopted block indexes instead of scanning every person.
fn people_where(filter: &PeopleFilter) -> &'static str {
    if filter.block_id.is_some() {
        "WHERE (home_block = ?2 OR adopted_block = ?2)
           AND (?1 IS NULL OR role = ?1)
           AND (?3 IS NULL OR interested = ?3)"
    } else {
        "WHERE ?2 IS NULL
           AND (?1 IS NULL OR role = ?1)
           AND (?3 IS NULL OR interested = ?3)"
    }
}

pub(super) fn people(conn: &Connection, filter: &PeopleFilter) -> Result<Vec<Person>, StoreError> {
    let mut stmt =
        conn.prepare(&format!("SELECT {PERSON_COLUMNS} FROM people {} ORDER BY id", people_where(filter)))?;
    let role = filter.role.map(|r| r.as_str());
    let rows = stmt.query_map(params![role, filter.block_id, filter.interested], person_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn people_page(
    conn: &Connection,
    filter: &PeopleFilter,
    offset: u64,
    limit: u64,
) -> Result<(Vec<Person>, u64), StoreError> {
    let role = filter.role.map(|r| r.as_str());
    let filters = params![role, filter.block_id, filter.interested];
    // The page and its count in one snapshot, so `numberMatched` describes the rows returned.
    let tx = conn.unchecked_transaction()?;
    let matched: i64 = if filter.block_id.is_some() {
        tx.query_row(&format!("SELECT COUNT(*) FROM people {}", people_where(filter)), filters, |r| r.get(0))?
    } else {
        // Without a block, a sum over the few (role, interested) rows the triggers keep exact:
        // a COUNT(*) would read every person (~160 ms at a million).
        tx.query_row(
            "SELECT COALESCE(SUM(n), 0) FROM people_counts
             WHERE ?2 IS NULL AND (?1 IS NULL OR role = ?1) AND (?3 IS NULL OR interested = ?3)",
            filters,
            |r| r.get(0),
        )?
    };
    let mut stmt = tx.prepare(&format!(
        "SELECT {PERSON_COLUMNS} FROM people {} ORDER BY id LIMIT ?4 OFFSET ?5",
        people_where(filter)
    ))?;
    let (limit, offset) = (i64::try_from(limit).unwrap_or(i64::MAX), i64::try_from(offset).unwrap_or(i64::MAX));
    let rows = stmt.query_map(params![role, filter.block_id, filter.interested, limit, offset], person_from_row)?;
    let page = rows.collect::<Result<_, _>>()?;
    drop(stmt);
    tx.finish()?;
    Ok((page, matched as u64))
}

pub(super) fn people_locations(conn: &Connection) -> Result<Vec<Located>, StoreError> {
    locations(conn, "SELECT id, lon, lat, home_block FROM people ORDER BY id")
}

pub(super) fn coverage_counts_at(
    conn: &Connection,
    now: DateTime<Utc>,
) -> Result<(HashMap<String, BlockCounts>, u64), StoreError> {
    let mut counts: HashMap<String, BlockCounts> = HashMap::new();
    let mut residents = conn.prepare(
        "SELECT home_block, COUNT(*) FROM people WHERE role = 'resident' AND home_block IS NOT NULL GROUP BY home_block",
    )?;
    for row in residents.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (block, n) = row?;
        counts.entry(block).or_default().residents = n as u64;
    }
    // An adoption of a block that no longer exists, or whose `adopted_until` has come (stored
    // as fixed-width UTC text, so comparing text compares instants), falls back to home.
    let mut ambassadors = conn.prepare(
        "SELECT CASE WHEN p.adopted_block IS NOT NULL AND (p.adopted_until IS NULL OR p.adopted_until > ?1)
                          AND EXISTS (SELECT 1 FROM blocks b WHERE b.block_id = p.adopted_block)
                     THEN p.adopted_block ELSE p.home_block END AS covered, COUNT(*)
         FROM people p WHERE p.role = 'ambassador' AND p.active = 1 GROUP BY covered HAVING covered IS NOT NULL",
    )?;
    let now = until_text(now);
    for row in ambassadors.query_map([&now], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (block, n) = row?;
        counts.entry(block).or_default().ambassadors = n as u64;
    }
    let outside: i64 = conn.query_row("SELECT COUNT(*) FROM people WHERE home_block IS NULL", [], |r| r.get(0))?;
    Ok((counts, outside as u64))
}

pub(super) fn next_adoption_expiry(
    conn: &Connection,
    after: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let next: Option<String> = conn.query_row(
        "SELECT MIN(adopted_until) FROM people WHERE adopted_until > ?1 AND adopted_block IS NOT NULL",
        [until_text(after)],
        |r| r.get(0),
    )?;
    Ok(next.as_deref().and_then(parse_until))
}

/// Insert a person unless the id exists, with the 13 values of [`person_values`].
const INSERT_PERSON: &str = "INSERT OR IGNORE INTO people (id, role, lon, lat, name, phone, email, interested, active,
     adopted_block, home_block, created_at, updated_at, adopted_until)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13)";

/// A person's row values in the order of [`INSERT_PERSON`] (and the upsert's UPDATE): `ts` is
/// the write's timestamp, `until` the stored form of the adoption expiry.
// `&String`, not `&str`: a `str` cannot become a `dyn ToSql` (it is unsized).
#[allow(clippy::ptr_arg)]
fn person_values<'a>(p: &'a Person, ts: &'a String, until: &'a Option<String>) -> [&'a dyn rusqlite::ToSql; 13] {
    [
        &p.id,
        // The same text as `Role::as_str`, as literals that outlive the array.
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

/// Insert one new person; [`StoreError::Conflict`] when the id is taken. The check and the
/// insert are one statement, so two concurrent creates of the same id cannot both succeed.
pub(super) fn insert_person(conn: &mut Connection, p: &Person, _source: &str) -> Result<(), StoreError> {
    let at = Utc::now();
    let ts = timestamp(at);
    let tx = conn.transaction()?;
    let until = p.adopted_until.map(until_text);
    let inserted = tx.execute(INSERT_PERSON, person_values(p, &ts, &until))?;
    if inserted == 0 {
        return Err(StoreError::Conflict { what: "person", id: p.id.clone() });
    }
    let detail = person_detail(p);
    history(&tx, &ts, "person", &p.id, "insert", Some((&p.role, p.covering_block(at), p.active)), detail.as_deref())?;
    tx.commit()?;
    Ok(())
}

/// Block ids, people's coverage facts and the history head, in one read transaction (WAL: one
/// snapshot, so the cursor returned is exactly what the rows reflect).
pub(super) fn coverage_state(
    conn: &Connection,
    block: &mut dyn FnMut(&str),
    person: &mut dyn FnMut(crate::store::CoverageRow<'_>),
) -> Result<i64, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let cursor = super::history::last_change(&tx)?;
    {
        let mut stmt = tx.prepare("SELECT block_id FROM blocks")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            block(r.get_ref(0)?.as_str().map_err(|e| corrupt("block id", e))?);
        }
    }
    let mut stmt = tx.prepare("SELECT id, role, active, home_block, adopted_block, adopted_until FROM people")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let text =
            |i: usize| r.get_ref(i).map_err(StoreError::from)?.as_str_or_null().map_err(|e| corrupt("person", e));
        let id = text(0)?.unwrap_or_default();
        person(crate::store::CoverageRow {
            id,
            role: if text(1)? == Some("ambassador") { Role::Ambassador } else { Role::Resident },
            active: r.get(2)?,
            home_block: text(3)?,
            adopted_block: text(4)?,
            adopted_until: text(5)?,
        });
    }
    drop(rows);
    drop(stmt);
    tx.finish()?;
    Ok(cursor)
}

fn corrupt(what: &'static str, e: rusqlite::types::FromSqlError) -> StoreError {
    StoreError::Corrupt { what, id: String::new(), reason: e.to_string() }
}
