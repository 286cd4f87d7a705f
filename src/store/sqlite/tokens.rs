//! Bearer tokens (hashes only).

use rusqlite::{Connection, OptionalExtension, params};

use super::now;
use crate::core::AccessRole;
use crate::store::{StoreError, TokenInfo};

pub(super) fn create_token(
    conn: &mut Connection,
    hash: &str,
    role: AccessRole,
    name: Option<&str>,
) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO tokens (hash, role, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![hash, role.as_str(), name, now()],
    )?;
    Ok(conn.last_insert_rowid())
}

pub(super) fn tokens(conn: &Connection) -> Result<Vec<TokenInfo>, StoreError> {
    let mut stmt = conn.prepare("SELECT id, role, name, created_at, revoked_at FROM tokens ORDER BY id")?;
    let rows = stmt.query_map([], token_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn token_by_hash(conn: &Connection, hash: &str) -> Result<Option<TokenInfo>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id, role, name, created_at, revoked_at FROM tokens WHERE hash = ?1 AND revoked_at IS NULL",
            [hash],
            token_from_row,
        )
        .optional()?)
}

pub(super) fn revoke_token(conn: &mut Connection, id: i64) -> Result<bool, StoreError> {
    let n =
        conn.execute("UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL", params![id, now()])?;
    Ok(n == 1)
}

fn token_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenInfo> {
    let role: String = row.get(1)?;
    let role = role
        .parse()
        .map_err(|e: String| rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, e.into()))?;
    Ok(TokenInfo { id: row.get(0)?, role, name: row.get(2)?, created_at: row.get(3)?, revoked_at: row.get(4)? })
}
