//! Schema migrations, tracked with SQLite's `PRAGMA user_version`. Append new steps; never edit
//! a released one.

use rusqlite::Connection;

use super::StoreError;

/// Migration steps; step `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
    CREATE TABLE blocks (
        block_id   TEXT PRIMARY KEY NOT NULL,
        name       TEXT,
        geometry   BLOB NOT NULL,            -- WKB, WGS84 lon/lat (OGC CRS84 axis order)
        attributes TEXT NOT NULL DEFAULT '{}',
        min_lon REAL NOT NULL, min_lat REAL NOT NULL, max_lon REAL NOT NULL, max_lat REAL NOT NULL
    );
    CREATE TABLE people (
        id            TEXT PRIMARY KEY NOT NULL,
        role          TEXT NOT NULL CHECK (role IN ('resident', 'ambassador')),
        lon           REAL NOT NULL,
        lat           REAL NOT NULL,
        name          TEXT,
        phone         TEXT,
        email         TEXT,
        interested    INTEGER NOT NULL DEFAULT 0,
        active        INTEGER NOT NULL DEFAULT 1,
        adopted_block TEXT,
        home_block    TEXT,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    ) WITHOUT ROWID;                         -- one B-tree keyed by id: half the work per upsert
    -- People by block, and covering for the coverage GROUP BYs (they never touch the table).
    CREATE INDEX people_home_block ON people (home_block, role, active, adopted_block);
    CREATE INDEX people_adopted_block ON people (adopted_block) WHERE adopted_block IS NOT NULL;
    CREATE TABLE resources (
        id         TEXT PRIMARY KEY NOT NULL,
        name       TEXT,
        category   TEXT NOT NULL,
        lon        REAL NOT NULL,
        lat        REAL NOT NULL,
        address    TEXT,
        phone      TEXT,
        email      TEXT,
        url        TEXT,
        attributes TEXT NOT NULL DEFAULT '{}',
        block_id   TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX resources_block ON resources (block_id);
    CREATE TABLE indicators (
        block_id  TEXT NOT NULL,
        indicator TEXT NOT NULL,
        date      TEXT NOT NULL DEFAULT '',  -- '' when the source had no date
        value     REAL NOT NULL,
        PRIMARY KEY (block_id, indicator, date)
    );
    -- Append-only log of every change, so coverage over time can be reconstructed.
    CREATE TABLE history (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        ts        TEXT NOT NULL,             -- RFC 3339 UTC
        entity    TEXT NOT NULL,             -- person | block | resource | indicator | import
        entity_id TEXT NOT NULL,
        action    TEXT NOT NULL,             -- insert | update | delete | reassign | import
        role      TEXT,                      -- person role after the change
        block_id  TEXT,                      -- block covered/inhabited after the change
        active    INTEGER,
        detail    TEXT                       -- JSON, never personal data
    );
    -- No index on ts: seq grows with ts, so time ranges are seq ranges.
    "#,
    // 2: bearer tokens. Only a SHA-256 of each token is kept.
    r#"
    CREATE TABLE tokens (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        hash       TEXT NOT NULL UNIQUE,      -- hex SHA-256 of the token
        role       TEXT NOT NULL CHECK (role IN ('viewer', 'recruiter', 'manager')),
        name       TEXT,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    "#,
    // 3: adoptions that expire. RFC 3339 UTC to the second ('2026-12-31T00:00:00Z'), so values
    // compare with "now" as text; NULL: no expiry. The partial indexes keep "next expiry" and
    // "last block import" (the recruiting cache's catchment version) single-row lookups.
    r#"
    ALTER TABLE people ADD COLUMN adopted_until TEXT;
    CREATE INDEX people_adopted_until ON people (adopted_until) WHERE adopted_until IS NOT NULL;
    CREATE INDEX history_block_imports ON history (seq) WHERE entity = 'import' AND entity_id = 'blocks';
    "#,
    // 4: area layers (neighbourhoods, council districts...) to roll coverage up by. `version`
    // is the history seq of the layer's last import: it changes with every import, so block to
    // area assignments can be cached until then.
    r#"
    CREATE TABLE area_layers (
        layer       TEXT PRIMARY KEY NOT NULL,
        source      TEXT,
        imported_at TEXT NOT NULL,            -- RFC 3339 UTC
        version     INTEGER NOT NULL
    );
    CREATE TABLE areas (
        layer      TEXT NOT NULL REFERENCES area_layers (layer) ON DELETE CASCADE,
        area_id    TEXT NOT NULL,
        name       TEXT,
        geometry   BLOB NOT NULL,             -- WKB, WGS84 lon/lat (OGC CRS84 axis order)
        attributes TEXT NOT NULL DEFAULT '{}',
        min_lon REAL NOT NULL, min_lat REAL NOT NULL, max_lon REAL NOT NULL, max_lat REAL NOT NULL,
        PRIMARY KEY (layer, area_id)
    );
    "#,
    // 5: how many people there are per (role, interested), so `numberMatched` of a people page
    // without a block filter is a sum over at most four rows instead of a count over every
    // person. Kept exact by the triggers on every insert, delete and change of role or
    // interested; a bulk first import may drop the `people_counts_*` triggers and recompute the
    // table from `people` instead (one GROUP BY is cheaper than a trigger firing per row).
    // Counts with a block filter use the people_home_block and people_adopted_block indexes.
    r#"
    CREATE TABLE people_counts (
        role       TEXT NOT NULL,
        interested INTEGER NOT NULL,
        n          INTEGER NOT NULL,
        PRIMARY KEY (role, interested)
    ) WITHOUT ROWID;
    INSERT INTO people_counts (role, interested, n)
        SELECT role, interested, COUNT(*) FROM people GROUP BY role, interested;
    CREATE TRIGGER people_counts_insert AFTER INSERT ON people BEGIN
        INSERT INTO people_counts (role, interested, n) VALUES (NEW.role, NEW.interested, 1)
            ON CONFLICT (role, interested) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER people_counts_delete AFTER DELETE ON people BEGIN
        UPDATE people_counts SET n = n - 1 WHERE role = OLD.role AND interested = OLD.interested;
    END;
    CREATE TRIGGER people_counts_update AFTER UPDATE OF role, interested ON people
    WHEN OLD.role IS NOT NEW.role OR OLD.interested IS NOT NEW.interested BEGIN
        UPDATE people_counts SET n = n - 1 WHERE role = OLD.role AND interested = OLD.interested;
        INSERT INTO people_counts (role, interested, n) VALUES (NEW.role, NEW.interested, 1)
            ON CONFLICT (role, interested) DO UPDATE SET n = n + 1;
    END;
    "#,
];

/// Newest schema version this build knows.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Bring the database up to [`VERSION`], one transaction per step.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > VERSION {
        return Err(StoreError::TooNew { found: current, supported: VERSION });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
