//! PostgreSQL schema migrations, tracked in `belong_private.schema_version`. Append new steps;
//! never edit a released one. Public tables (blocks, areas, resources, indicators) carry PostGIS
//! geometry so analysts can open them in QGIS; personal data (people, tokens) and the history
//! live in the `belong_private` schema, which an analysts' read-only role is not granted.

use postgres::Client;

use crate::store::StoreError;

/// Advisory lock key held (transaction level) while migrating, so two instances starting at
/// once do not both apply a step.
const MIGRATE_LOCK: i64 = 0x0062_656c_6f6e_6701; // "belong" 01

/// Migration steps; step `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema (the SQLite schema's version 5, in one step). Keys are COLLATE "C" so
    // `ORDER BY id` is byte order, as in SQLite, whatever the database's default collation.
    r#"
    CREATE TABLE public.blocks (
        id         text COLLATE "C" PRIMARY KEY,
        name       text,
        attributes jsonb NOT NULL DEFAULT '{}',
        geom       geometry(MultiPolygon, 4326) NOT NULL
    );
    CREATE INDEX blocks_geom ON public.blocks USING gist (geom);
    CREATE TABLE public.area_layers (
        layer       text COLLATE "C" PRIMARY KEY,
        source      text,
        imported_at text NOT NULL,
        version     bigint NOT NULL
    );
    CREATE TABLE public.areas (
        layer      text COLLATE "C" NOT NULL REFERENCES public.area_layers (layer) ON DELETE CASCADE,
        area_id    text COLLATE "C" NOT NULL,
        name       text,
        attributes jsonb NOT NULL DEFAULT '{}',
        geom       geometry(MultiPolygon, 4326) NOT NULL,
        PRIMARY KEY (layer, area_id)
    );
    CREATE INDEX areas_geom ON public.areas USING gist (geom);
    CREATE TABLE public.resources (
        id         text COLLATE "C" PRIMARY KEY,
        name       text,
        category   text NOT NULL,
        address    text,
        phone      text,
        email      text,
        url        text,
        attributes jsonb NOT NULL DEFAULT '{}',
        block_id   text,
        updated_at text NOT NULL,
        geom       geometry(Point, 4326) NOT NULL
    );
    CREATE INDEX resources_block ON public.resources (block_id);
    CREATE INDEX resources_geom ON public.resources USING gist (geom);
    CREATE TABLE public.indicators (
        block_id  text COLLATE "C" NOT NULL,
        indicator text COLLATE "C" NOT NULL,
        date      text COLLATE "C" NOT NULL DEFAULT '',
        value     double precision NOT NULL,
        PRIMARY KEY (block_id, indicator, date)
    );
    CREATE TABLE belong_private.people (
        id            text COLLATE "C" PRIMARY KEY,
        role          text NOT NULL CHECK (role IN ('resident', 'ambassador')),
        name          text,
        phone         text,
        email         text,
        interested    boolean NOT NULL DEFAULT false,
        active        boolean NOT NULL DEFAULT true,
        adopted_block text,
        home_block    text,
        adopted_until text COLLATE "C", -- RFC 3339 UTC to the second: compares as text
        created_at    text NOT NULL,
        updated_at    text NOT NULL,
        geom          geometry(Point, 4326) NOT NULL
    );
    CREATE INDEX people_home_block ON belong_private.people (home_block, role, active, adopted_block);
    CREATE INDEX people_adopted_block ON belong_private.people (adopted_block) WHERE adopted_block IS NOT NULL;
    CREATE INDEX people_adopted_until ON belong_private.people (adopted_until) WHERE adopted_until IS NOT NULL;
    CREATE INDEX people_role_interested ON belong_private.people (role, interested);
    CREATE INDEX people_geom ON belong_private.people USING gist (geom);
    CREATE TABLE belong_private.tokens (
        id         bigserial PRIMARY KEY,
        hash       text NOT NULL UNIQUE,
        role       text NOT NULL CHECK (role IN ('viewer', 'recruiter', 'manager')),
        name       text,
        created_at text NOT NULL,
        revoked_at text
    );
    -- The change feed. Writers take the feed lock before inserting (see postgres/mod.rs), so
    -- seq order is commit order.
    CREATE TABLE belong_private.history (
        seq       bigserial PRIMARY KEY,
        ts        text NOT NULL,
        entity    text NOT NULL,
        entity_id text NOT NULL,
        action    text NOT NULL,
        role      text,
        block_id  text,
        active    boolean,
        detail    text
    );
    CREATE INDEX history_block_imports ON belong_private.history (seq) WHERE entity = 'import' AND entity_id = 'blocks';
    "#,
    // 2: how many people there are per (role, interested), so `numberMatched` of a people page
    // without a block filter sums at most four rows instead of counting a million. Kept exact
    // by statement-level triggers over transition tables: a 1M-row COPY upsert fires each
    // trigger once (a row-level trigger would fire a million times). Writers hold the feed
    // lock, so the counter rows are never updated by two transactions at once.
    r#"
    CREATE TABLE belong_private.people_counts (
        role       text NOT NULL,
        interested boolean NOT NULL,
        n          bigint NOT NULL,
        PRIMARY KEY (role, interested)
    );
    INSERT INTO belong_private.people_counts (role, interested, n)
        SELECT role, interested, COUNT(*) FROM belong_private.people GROUP BY role, interested;
    -- One function for the three triggers: rows leaving (DELETE, UPDATE) are subtracted,
    -- rows arriving (INSERT, UPDATE) added. PL/pgSQL plans a statement when it first runs, so
    -- the transition table an operation lacks is never referenced.
    CREATE FUNCTION belong_private.people_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('DELETE', 'UPDATE') THEN
            UPDATE belong_private.people_counts c SET n = c.n - d.k
                FROM (SELECT role, interested, COUNT(*) AS k FROM people_old GROUP BY role, interested) d
                WHERE c.role = d.role AND c.interested = d.interested;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO belong_private.people_counts AS c (role, interested, n)
                SELECT role, interested, COUNT(*) FROM people_new GROUP BY role, interested
                ON CONFLICT (role, interested) DO UPDATE SET n = c.n + excluded.n;
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER people_counts_insert AFTER INSERT ON belong_private.people
        REFERENCING NEW TABLE AS people_new FOR EACH STATEMENT EXECUTE FUNCTION belong_private.people_counts_apply();
    CREATE TRIGGER people_counts_delete AFTER DELETE ON belong_private.people
        REFERENCING OLD TABLE AS people_old FOR EACH STATEMENT EXECUTE FUNCTION belong_private.people_counts_apply();
    CREATE TRIGGER people_counts_update AFTER UPDATE ON belong_private.people
        REFERENCING OLD TABLE AS people_old NEW TABLE AS people_new
        FOR EACH STATEMENT EXECUTE FUNCTION belong_private.people_counts_apply();
    -- No spatial or (role, interested) index on people: belong locates people in memory and
    -- counts them in people_counts, and keeping a GiST index up to date was half the time of a
    -- 1M-resident import (23.5 s of its INSERT, 12.9 s without). People are private: analysts
    -- never open them, so the public tables keep their GiST indexes.
    DROP INDEX belong_private.people_geom;
    DROP INDEX belong_private.people_role_interested;
    "#,
];

/// Newest schema version this build knows.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Create PostGIS when missing and bring the schema up to [`VERSION`], all in one transaction
/// under an advisory lock.
pub fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])?;
    let has_postgis: bool =
        tx.query_one("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'postgis')", &[])?.get(0);
    if !has_postgis && let Err(e) = tx.batch_execute("CREATE EXTENSION IF NOT EXISTS postgis") {
        let detail = e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string());
        return Err(StoreError::Database(
            format!(
                "PostGIS is not enabled in this database and this role cannot enable it ({detail}); \
                     ask the database administrator to run `CREATE EXTENSION postgis;` in it \
                     (the server needs the postgresql-15-postgis-3 package or equivalent)"
            )
            .into(),
        ));
    }
    tx.batch_execute(
        "CREATE SCHEMA IF NOT EXISTS belong_private;
         CREATE TABLE IF NOT EXISTS belong_private.schema_version (version bigint NOT NULL);",
    )?;
    let current: Option<i64> =
        tx.query_opt("SELECT version FROM belong_private.schema_version", &[])?.map(|r| r.get(0));
    if current.is_none() {
        tx.execute("INSERT INTO belong_private.schema_version (version) VALUES (0)", &[])?;
    }
    let current = current.unwrap_or(0);
    if current > VERSION {
        return Err(StoreError::TooNew { found: current, supported: VERSION });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch_execute(sql)?;
        tx.execute("UPDATE belong_private.schema_version SET version = $1", &[&((i + 1) as i64)])?;
    }
    tx.commit()?;
    Ok(())
}
