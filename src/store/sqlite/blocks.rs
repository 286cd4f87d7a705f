//! Blocks: the catchment, replaced whole by an import, with the reassignments it causes.

use std::collections::HashMap;

use chrono::Utc;
use geo::{BoundingRect, Geometry, MultiPolygon};
use geozero::wkb::Wkb;
use geozero::{CoordDimensions, ToGeo, ToWkb};
use rusqlite::{Connection, params};

use super::history::history;
use super::people::{PERSON_COLUMNS, person_detail, person_from_row};
use super::{decode_attributes, timestamp};
use crate::core::{Attributes, Block};
use crate::store::{BlocksReplaced, Reassignment, StoreError};

pub(super) fn replace_blocks(
    conn: &mut Connection,
    blocks: &[Block],
    people: &[Reassignment],
    resources: &[Reassignment],
    source: &str,
) -> Result<BlocksReplaced, StoreError> {
    let at = Utc::now();
    let ts = timestamp(at);
    let tx = conn.transaction()?;
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
                history(&tx, &ts, "block", &b.id, action, None, None)?;
            }
        }
    }
    report.removed = old.len();
    let mut removed: Vec<&String> = old.keys().collect();
    removed.sort();
    for id in removed {
        history(&tx, &ts, "block", id, "delete", None, None)?;
    }
    {
        let mut update =
            tx.prepare("UPDATE people SET home_block = ?2, updated_at = ?3 WHERE id = ?1 AND home_block IS NOT ?2")?;
        let mut get = tx.prepare(&format!("SELECT {PERSON_COLUMNS} FROM people WHERE id = ?1"))?;
        for r in people {
            if update.execute(params![r.id, r.block_id, ts])? == 1 {
                report.people_reassigned += 1;
                let p = get.query_row([&r.id], person_from_row)?;
                history(
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
    history(&tx, &ts, "import", "blocks", "import", None, Some(&detail))?;
    tx.commit()?;
    Ok(report)
}

pub(super) fn blocks(conn: &Connection) -> Result<Vec<Block>, StoreError> {
    let sql = "SELECT block_id, name, geometry, attributes FROM blocks ORDER BY block_id";
    polygons(conn, sql, [], |id, name, geometry, attributes| Block { id, name, geometry, attributes })
}

pub(super) fn block_ids(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare("SELECT block_id FROM blocks ORDER BY block_id")?;
    let ids = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(ids)
}

pub(super) fn catchment_version(conn: &Connection) -> Result<i64, StoreError> {
    // Every block import writes exactly one such row, and seq only grows.
    let seq: Option<i64> =
        conn.query_row("SELECT MAX(seq) FROM history WHERE entity = 'import' AND entity_id = 'blocks'", [], |r| {
            r.get(0)
        })?;
    Ok(seq.unwrap_or(0))
}

pub(super) fn encode_geometry(mp: &MultiPolygon<f64>) -> Result<Vec<u8>, StoreError> {
    Geometry::MultiPolygon(mp.clone()).to_wkb(CoordDimensions::xy()).map_err(|e| StoreError::Corrupt {
        what: "block geometry",
        id: String::new(),
        reason: e.to_string(),
    })
}

pub(super) fn decode_geometry(id: &str, wkb: &[u8]) -> Result<MultiPolygon<f64>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { what: "block geometry", id: id.to_string(), reason };
    match Wkb(wkb).to_geo().map_err(|e| corrupt(e.to_string()))? {
        Geometry::MultiPolygon(mp) => Ok(mp),
        Geometry::Polygon(p) => Ok(MultiPolygon(vec![p])),
        other => Err(corrupt(format!("expected a multipolygon, found {other:?}"))),
    }
}

/// Rows of `(id, name, WKB geometry, JSON attributes)` from `sql`, decoded and built by `make`
/// (blocks and areas are stored alike).
pub(super) fn polygons<T>(
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
