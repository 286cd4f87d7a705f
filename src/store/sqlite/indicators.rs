//! Indicator values per block (and date).

use rusqlite::{Connection, OptionalExtension, params};

use super::history::history;
use super::now;
use crate::core::IndicatorValue;
use crate::store::{StoreError, Upserted};

pub(super) fn upsert_indicators(
    conn: &mut Connection,
    values: &[IndicatorValue],
    no_data: &[(String, String, Option<String>)],
    source: &str,
) -> Result<Upserted, StoreError> {
    let tx = conn.transaction()?;
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
        let mut delete = tx.prepare("DELETE FROM indicators WHERE block_id = ?1 AND indicator = ?2 AND date = ?3")?;
        for (block, indicator, date) in no_data {
            delete.execute(params![block, indicator, date.as_deref().unwrap_or("")])?;
        }
    }
    let ts = now();
    let detail =
        serde_json::json!({ "kind": "indicators", "source": source, "report": done, "no_data": no_data.len() })
            .to_string();
    history(&tx, &ts, "import", "indicators", "import", None, Some(&detail))?;
    tx.commit()?;
    Ok(done)
}

pub(super) fn indicators(conn: &Connection) -> Result<Vec<IndicatorValue>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT block_id, indicator, date, value FROM indicators ORDER BY block_id, indicator, date")?;
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
