//! The whole database as [`DumpBatch`]es and back (`belong db copy`): a dump is one read
//! transaction (one WAL snapshot), a restore one write transaction of multi-row prepared
//! INSERTs, with the secondary indexes and the `people_counts` triggers dropped meanwhile and
//! rebuilt once at the end (cheaper than updating them per row).

use geo::BoundingRect;
use rusqlite::{Connection, ToSql, TransactionBehavior, params};

use super::blocks::decode_geometry;
use super::{BULK_ROWS, multi_row_insert};
use crate::core::{IndicatorValue, Role};
use crate::store::dump::{
    AreaLayerRow, AreaRow, BATCH_ROWS, LayerCounts, POLYGON_BATCH_ROWS, PersonRow, PolygonRow, ResourceRow, TokenRow,
};
use crate::store::{DumpBatch, HistoryEvent, StoreError, TableCounts, TokenInfo};

/// Tables whose secondary indexes a restore drops and rebuilds.
const REINDEXED: &[&str] = &["people", "resources", "history"];

fn role(text: &str) -> Role {
    // The schema's CHECK admits these two only.
    if text == "ambassador" { Role::Ambassador } else { Role::Resident }
}

fn role_text(role: Role) -> &'static &'static str {
    match role {
        Role::Resident => &"resident",
        Role::Ambassador => &"ambassador",
    }
}

pub(super) fn table_counts(conn: &Connection) -> Result<TableCounts, StoreError> {
    let mut counts = conn.query_row(
        "SELECT (SELECT COUNT(*) FROM blocks),
                (SELECT COUNT(*) FROM people WHERE role = 'resident'),
                (SELECT COUNT(*) FROM people WHERE role = 'ambassador'),
                (SELECT COUNT(*) FROM resources),
                (SELECT COUNT(*) FROM indicators),
                (SELECT COUNT(*) FROM tokens),
                (SELECT COUNT(*) FROM history),
                (SELECT COALESCE(MAX(seq), 0) FROM history),
                (SELECT COALESCE(MAX(seq), 0) FROM history WHERE entity = 'import' AND entity_id = 'blocks')",
        [],
        |r| {
            Ok(TableCounts {
                blocks: r.get::<_, i64>(0)? as u64,
                residents: r.get::<_, i64>(1)? as u64,
                ambassadors: r.get::<_, i64>(2)? as u64,
                resources: r.get::<_, i64>(3)? as u64,
                indicators: r.get::<_, i64>(4)? as u64,
                tokens: r.get::<_, i64>(5)? as u64,
                history: r.get::<_, i64>(6)? as u64,
                last_change: r.get(7)?,
                catchment_version: r.get(8)?,
                ..TableCounts::default()
            })
        },
    )?;
    let mut stmt = conn.prepare(
        "SELECT l.layer, (SELECT COUNT(*) FROM areas a WHERE a.layer = l.layer), l.version FROM area_layers l",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        counts.area_layers.insert(r.get(0)?, LayerCounts { areas: r.get::<_, i64>(1)? as u64, version: r.get(2)? });
    }
    Ok(counts)
}

/// Run `sql` and hand its rows to `sink`, `per_batch` at a time.
fn stream<T>(
    conn: &Connection,
    sql: &str,
    per_batch: usize,
    row: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
    wrap: fn(Vec<T>) -> DumpBatch,
    sink: &mut dyn FnMut(DumpBatch) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([])?;
    let mut batch = Vec::with_capacity(per_batch);
    while let Some(r) = rows.next()? {
        batch.push(row(r)?);
        if batch.len() == per_batch {
            sink(wrap(std::mem::replace(&mut batch, Vec::with_capacity(per_batch))))?;
        }
    }
    if !batch.is_empty() {
        sink(wrap(batch))?;
    }
    Ok(())
}

fn polygon_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<PolygonRow> {
    Ok(PolygonRow { id: r.get(first)?, name: r.get(first + 1)?, wkb: r.get(first + 2)?, attributes: r.get(first + 3)? })
}

pub(super) fn dump(
    conn: &Connection,
    sink: &mut dyn FnMut(DumpBatch) -> Result<(), StoreError>,
) -> Result<TableCounts, StoreError> {
    // One read transaction: in WAL mode every statement below sees the same snapshot, whatever
    // commits meanwhile.
    let tx = conn.unchecked_transaction()?;
    let counts = table_counts(&tx)?;
    stream(
        &tx,
        "SELECT block_id, name, geometry, attributes FROM blocks ORDER BY block_id",
        POLYGON_BATCH_ROWS,
        |r| Ok(polygon_row(r, 0)?),
        DumpBatch::Blocks,
        sink,
    )?;
    stream(
        &tx,
        "SELECT layer, source, imported_at, version FROM area_layers ORDER BY layer",
        BATCH_ROWS,
        |r| Ok(AreaLayerRow { layer: r.get(0)?, source: r.get(1)?, imported_at: r.get(2)?, version: r.get(3)? }),
        DumpBatch::AreaLayers,
        sink,
    )?;
    stream(
        &tx,
        "SELECT layer, area_id, name, geometry, attributes FROM areas ORDER BY layer, area_id",
        POLYGON_BATCH_ROWS,
        |r| Ok(AreaRow { layer: r.get(0)?, area: polygon_row(r, 1)? }),
        DumpBatch::Areas,
        sink,
    )?;
    stream(
        &tx,
        "SELECT id, role, lon, lat, name, phone, email, interested, active, adopted_block, adopted_until,
                home_block, created_at, updated_at FROM people ORDER BY id",
        BATCH_ROWS,
        |r| {
            Ok(PersonRow {
                id: r.get(0)?,
                role: role(r.get_ref(1)?.as_str().unwrap_or_default()),
                lon: r.get(2)?,
                lat: r.get(3)?,
                name: r.get(4)?,
                phone: r.get(5)?,
                email: r.get(6)?,
                interested: r.get(7)?,
                active: r.get(8)?,
                adopted_block: r.get(9)?,
                adopted_until: r.get(10)?,
                home_block: r.get(11)?,
                created_at: r.get(12)?,
                updated_at: r.get(13)?,
            })
        },
        DumpBatch::People,
        sink,
    )?;
    stream(
        &tx,
        "SELECT id, name, category, lon, lat, address, phone, email, url, attributes, block_id, updated_at
         FROM resources ORDER BY id",
        BATCH_ROWS,
        |r| {
            Ok(ResourceRow {
                id: r.get(0)?,
                name: r.get(1)?,
                category: r.get(2)?,
                lon: r.get(3)?,
                lat: r.get(4)?,
                address: r.get(5)?,
                phone: r.get(6)?,
                email: r.get(7)?,
                url: r.get(8)?,
                attributes: r.get(9)?,
                block_id: r.get(10)?,
                updated_at: r.get(11)?,
            })
        },
        DumpBatch::Resources,
        sink,
    )?;
    stream(
        &tx,
        "SELECT block_id, indicator, date, value FROM indicators ORDER BY block_id, indicator, date",
        BATCH_ROWS,
        |r| {
            let date: String = r.get(2)?;
            Ok(IndicatorValue {
                block_id: r.get(0)?,
                indicator: r.get(1)?,
                date: (!date.is_empty()).then_some(date),
                value: r.get(3)?,
            })
        },
        DumpBatch::Indicators,
        sink,
    )?;
    stream(
        &tx,
        "SELECT id, hash, role, name, created_at, revoked_at FROM tokens ORDER BY id",
        BATCH_ROWS,
        |r| {
            let id: i64 = r.get(0)?;
            let role: String = r.get(2)?;
            let role = role.parse().map_err(|reason| StoreError::Corrupt {
                what: "token role",
                id: id.to_string(),
                reason,
            })?;
            Ok(TokenRow {
                info: TokenInfo { id, role, name: r.get(3)?, created_at: r.get(4)?, revoked_at: r.get(5)? },
                hash: r.get(1)?,
            })
        },
        DumpBatch::Tokens,
        sink,
    )?;
    stream(
        &tx,
        "SELECT seq, ts, entity, entity_id, action, role, block_id, active, detail FROM history ORDER BY seq",
        BATCH_ROWS,
        |r| {
            let role_text: Option<String> = r.get(5)?;
            Ok(HistoryEvent {
                seq: r.get(0)?,
                ts: r.get(1)?,
                entity: r.get(2)?,
                entity_id: r.get(3)?,
                action: r.get(4)?,
                role: role_text.as_deref().map(role),
                block_id: r.get(6)?,
                active: r.get(7)?,
                detail: r.get(8)?,
            })
        },
        DumpBatch::History,
        sink,
    )?;
    tx.commit()?;
    Ok(counts)
}

/// `rows` as multi-row INSERTs of [`BULK_ROWS`] rows each; `bind` appends one row's values.
fn insert_rows<'r, T>(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    columns: &[&str],
    rows: &'r [T],
    bind: impl Fn(&'r T, &mut Vec<&'r dyn ToSql>),
) -> Result<(), StoreError> {
    let mut values: Vec<&dyn ToSql> = Vec::with_capacity(BULK_ROWS * columns.len());
    for chunk in rows.chunks(BULK_ROWS) {
        values.clear();
        for row in chunk {
            bind(row, &mut values);
        }
        tx.prepare_cached(&multi_row_insert(table, columns, chunk.len()))?.execute(values.as_slice())?;
    }
    Ok(())
}

/// A polygon row's bounding box (the `min_lon`... columns), from its geometry.
fn bbox(what: &'static str, row: &PolygonRow) -> Result<[f64; 4], StoreError> {
    let geometry = decode_geometry(&row.id, &row.wkb).map_err(|e| match e {
        StoreError::Corrupt { id, reason, .. } => StoreError::Corrupt { what, id, reason },
        other => other,
    })?;
    Ok(geometry.bounding_rect().map_or([0.0; 4], |r| [r.min().x, r.min().y, r.max().x, r.max().y]))
}

pub(super) fn restore(
    conn: &mut Connection,
    next: &mut dyn FnMut() -> Result<Option<DumpBatch>, StoreError>,
) -> Result<(), StoreError> {
    // IMMEDIATE: the write lock is taken before the emptiness check, so no writer slips in.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = table_counts(&tx)?;
    if !found.is_empty() {
        return Err(StoreError::NotEmpty { holds: found.holdings() });
    }
    let list = |sql: &str| -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = tx.prepare(sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let tables = REINDEXED.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ");
    // Definitions read from the schema, so this follows future migrations.
    let indexes = list(&format!(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({tables})"
    ))?;
    let triggers = list(
        "SELECT name, sql FROM sqlite_master
         WHERE type = 'trigger' AND tbl_name = 'people' AND name LIKE 'people\\_counts\\_%' ESCAPE '\\'",
    )?;
    for (name, _) in &indexes {
        tx.execute_batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))?;
    }
    for (name, _) in &triggers {
        tx.execute_batch(&format!("DROP TRIGGER \"{}\"", name.replace('"', "\"\"")))?;
    }
    while let Some(batch) = next()? {
        write_batch(&tx, &batch)?;
    }
    for (_, sql) in indexes.iter().chain(&triggers) {
        tx.execute_batch(sql)?;
    }
    tx.execute_batch(
        "DELETE FROM people_counts;
         INSERT INTO people_counts (role, interested, n)
             SELECT role, interested, COUNT(*) FROM people GROUP BY role, interested;",
    )?;
    // AUTOINCREMENT: inserting explicit ids already moved `sqlite_sequence` to the highest one,
    // so the next history row and token continue after the copied ones.
    tx.commit()?;
    Ok(())
}

fn write_batch(tx: &rusqlite::Transaction<'_>, batch: &DumpBatch) -> Result<(), StoreError> {
    const POLYGON: &[&str] = &["name", "geometry", "attributes", "min_lon", "min_lat", "max_lon", "max_lat"];
    match batch {
        DumpBatch::Blocks(rows) => {
            let boxes = rows.iter().map(|r| bbox("block geometry", r)).collect::<Result<Vec<_>, _>>()?;
            let columns = [&["block_id"], POLYGON].concat();
            let pairs: Vec<(&PolygonRow, &[f64; 4])> = rows.iter().zip(&boxes).collect();
            insert_rows(tx, "blocks", &columns, &pairs, |(r, b), v| {
                v.extend_from_slice(&[&r.id, &r.name, &r.wkb, &r.attributes, &b[0], &b[1], &b[2], &b[3]]);
            })?;
        }
        DumpBatch::AreaLayers(rows) => {
            let columns = ["layer", "source", "imported_at", "version"];
            insert_rows(tx, "area_layers", &columns, rows, |r, v| {
                v.extend_from_slice(&[&r.layer, &r.source, &r.imported_at, &r.version]);
            })?;
        }
        DumpBatch::Areas(rows) => {
            let boxes = rows.iter().map(|r| bbox("area geometry", &r.area)).collect::<Result<Vec<_>, _>>()?;
            let columns = [&["layer", "area_id"], POLYGON].concat();
            let pairs: Vec<(&AreaRow, &[f64; 4])> = rows.iter().zip(&boxes).collect();
            insert_rows(tx, "areas", &columns, &pairs, |(r, b), v| {
                let a = &r.area;
                v.extend_from_slice(&[&r.layer, &a.id, &a.name, &a.wkb, &a.attributes, &b[0], &b[1], &b[2], &b[3]]);
            })?;
        }
        DumpBatch::People(rows) => {
            let columns = [
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
                "adopted_until",
                "home_block",
                "created_at",
                "updated_at",
            ];
            insert_rows(tx, "people", &columns, rows, |p, v| {
                v.extend_from_slice(&[
                    &p.id,
                    role_text(p.role),
                    &p.lon,
                    &p.lat,
                    &p.name,
                    &p.phone,
                    &p.email,
                    &p.interested,
                    &p.active,
                    &p.adopted_block,
                    &p.adopted_until,
                    &p.home_block,
                    &p.created_at,
                    &p.updated_at,
                ]);
            })?;
        }
        DumpBatch::Resources(rows) => {
            let columns = [
                "id",
                "name",
                "category",
                "lon",
                "lat",
                "address",
                "phone",
                "email",
                "url",
                "attributes",
                "block_id",
                "updated_at",
            ];
            insert_rows(tx, "resources", &columns, rows, |r, v| {
                v.extend_from_slice(&[
                    &r.id,
                    &r.name,
                    &r.category,
                    &r.lon,
                    &r.lat,
                    &r.address,
                    &r.phone,
                    &r.email,
                    &r.url,
                    &r.attributes,
                    &r.block_id,
                    &r.updated_at,
                ]);
            })?;
        }
        DumpBatch::Indicators(rows) => {
            const NO_DATE: &&str = &"";
            let columns = ["block_id", "indicator", "date", "value"];
            insert_rows(tx, "indicators", &columns, rows, |i, v| {
                let date: &dyn ToSql = match &i.date {
                    Some(d) => d,
                    None => NO_DATE,
                };
                v.extend_from_slice(&[&i.block_id, &i.indicator, date, &i.value]);
            })?;
        }
        DumpBatch::Tokens(rows) => {
            let mut insert = tx.prepare_cached(
                "INSERT INTO tokens (id, hash, role, name, created_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for t in rows {
                let i = &t.info;
                insert.execute(params![i.id, t.hash, i.role.as_str(), i.name, i.created_at, i.revoked_at])?;
            }
        }
        DumpBatch::History(rows) => {
            let columns = ["seq", "ts", "entity", "entity_id", "action", "role", "block_id", "active", "detail"];
            const NO_ROLE: &Option<&str> = &None;
            insert_rows(tx, "history", &columns, rows, |e, v| {
                let role: &dyn ToSql = match e.role {
                    Some(r) => role_text(r),
                    None => NO_ROLE,
                };
                v.extend_from_slice(&[
                    &e.seq,
                    &e.ts,
                    &e.entity,
                    &e.entity_id,
                    &e.action,
                    role,
                    &e.block_id,
                    &e.active,
                    &e.detail,
                ]);
            })?;
        }
    }
    Ok(())
}
