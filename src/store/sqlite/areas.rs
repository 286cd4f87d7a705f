//! Area layers (neighbourhoods, districts) to roll coverage up by.

use geo::BoundingRect;
use rusqlite::{Connection, OptionalExtension, params};

use super::blocks::{encode_geometry, polygons};
use super::history::history;
use super::now;
use crate::core::{Area, AreaLayer};
use crate::store::{AreasReplaced, StoreError};

pub(super) fn replace_areas(
    conn: &mut Connection,
    layer: &str,
    areas: &[Area],
    source: &str,
) -> Result<AreasReplaced, StoreError> {
    let ts = now();
    let tx = conn.transaction()?;
    let previous: i64 = tx.query_row("SELECT COUNT(*) FROM areas WHERE layer = ?1", [layer], |r| r.get(0))?;
    tx.execute("DELETE FROM areas WHERE layer = ?1", [layer])?;
    let report = AreasReplaced { layer: layer.to_string(), areas: areas.len(), previous: previous as usize };
    let detail = serde_json::json!({ "kind": "areas", "layer": layer, "source": source, "report": &report });
    history(&tx, &ts, "import", "areas", "import", None, Some(&detail.to_string()))?;
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

pub(super) fn areas(conn: &Connection, layer: &str) -> Result<Vec<Area>, StoreError> {
    let sql = "SELECT area_id, name, geometry, attributes FROM areas WHERE layer = ?1 ORDER BY area_id";
    polygons(conn, sql, [layer], |id, name, geometry, attributes| Area { id, name, geometry, attributes })
}

pub(super) fn area_layers(conn: &Connection) -> Result<Vec<AreaLayer>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT l.layer, (SELECT COUNT(*) FROM areas a WHERE a.layer = l.layer), l.source, l.imported_at
         FROM area_layers l ORDER BY l.layer",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(AreaLayer { name: r.get(0)?, areas: r.get::<_, i64>(1)? as u64, source: r.get(2)?, imported_at: r.get(3)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn areas_version(conn: &Connection, layer: &str) -> Result<i64, StoreError> {
    let v: Option<i64> =
        conn.query_row("SELECT version FROM area_layers WHERE layer = ?1", [layer], |r| r.get(0)).optional()?;
    Ok(v.unwrap_or(0))
}
