//! The append-only history: every change, in commit order (one writer, so `seq` grows in
//! commit order and a cursor of "the last seq applied" never skips a row).

use rusqlite::{Connection, Transaction, params};

use crate::core::Role;
use crate::store::{HistoryRow, StoreError};

/// Append one history row.
pub(super) fn history(
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

/// Appends history rows with one prepared statement (bulk imports write a row per person).
pub(super) struct HistoryWriter<'t> {
    stmt: rusqlite::Statement<'t>,
}

impl<'t> HistoryWriter<'t> {
    pub(super) fn new(tx: &'t Transaction<'_>) -> rusqlite::Result<Self> {
        Ok(HistoryWriter {
            stmt: tx.prepare(
                "INSERT INTO history (ts, entity, entity_id, action, role, block_id, active, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?,
        })
    }

    pub(super) fn write(
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

pub(super) fn visit_history(
    conn: &Connection,
    after: i64,
    limit: usize,
    visit: &mut dyn FnMut(HistoryRow<'_>),
) -> Result<usize, StoreError> {
    // A range of the rowid (seq): no index needed, however long the history.
    let mut stmt = conn.prepare_cached(
        "SELECT seq, ts, entity, entity_id, action, role, block_id, active, detail FROM history
         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
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

pub(super) fn history_len(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM history", [], |r| r.get(0))?;
    Ok(n as u64)
}

/// The newest history seq (0 for an empty history): the change cursor's head.
pub(super) fn last_change(conn: &Connection) -> Result<i64, StoreError> {
    let seq: Option<i64> = conn.query_row("SELECT MAX(seq) FROM history", [], |r| r.get(0))?;
    Ok(seq.unwrap_or(0))
}
