//! Community resources.

use rusqlite::{Connection, OptionalExtension, params};

use super::history::history;
use super::{decode_attributes, locations, now};
use crate::core::{Attributes, Resource};
use crate::store::{Located, StoreError, Upserted};

pub(super) fn upsert_resources(
    conn: &mut Connection,
    resources: &[Resource],
    source: &str,
) -> Result<Upserted, StoreError> {
    let ts = now();
    let tx = conn.transaction()?;
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
            history(
                &tx,
                &ts,
                "resource",
                &r.id,
                action,
                None,
                r.block_id.as_deref().map(|b| format!("{{\"block_id\":{}}}", serde_json::Value::from(b))).as_deref(),
            )?;
        }
    }
    let detail = serde_json::json!({ "kind": "resources", "source": source, "report": done }).to_string();
    history(&tx, &ts, "import", "resources", "import", None, Some(&detail))?;
    tx.commit()?;
    Ok(done)
}

pub(super) fn resources(conn: &Connection) -> Result<Vec<Resource>, StoreError> {
    let mut stmt = conn.prepare(
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

pub(super) fn resource_locations(conn: &Connection) -> Result<Vec<Located>, StoreError> {
    locations(conn, "SELECT id, lon, lat, block_id FROM resources ORDER BY id")
}
