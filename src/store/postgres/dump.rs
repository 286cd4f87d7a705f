//! The whole database as [`DumpBatch`]es and back (`belong db copy`). A dump is one
//! REPEATABLE READ snapshot read with binary `COPY ... TO STDOUT`, one table after the other;
//! a restore one write transaction (under the feed lock) of text `COPY ... FROM STDIN`, one per
//! batch, geometry as hex EWKB (what `pg_dump` writes). The non-constraint indexes are dropped
//! for the load and rebuilt once at the end, and the `bigserial` sequences set past the copied
//! ids. The one derived table, `people_counts`, stays exact through its statement-level triggers
//! (they fire once per `COPY` batch); a derived table added by a later migration must be kept
//! or rebuilt here too.

use std::fmt::Write as _;
use std::io::Write as _;

use fallible_iterator::FallibleIterator;
use geo::Geometry;
use geozero::{CoordDimensions, ToWkb};
use postgres::binary_copy::{BinaryCopyOutIter, BinaryCopyOutRow};
use postgres::types::Type;
use postgres::{GenericClient, Transaction};

use super::{copy_field, decode_geometry};
use crate::core::{IndicatorValue, Role};
use crate::store::dump::{
    AreaLayerRow, AreaRow, BATCH_ROWS, LayerCounts, POLYGON_BATCH_ROWS, PersonRow, PolygonRow, ResourceRow, TokenRow,
};
use crate::store::{DumpBatch, HistoryEvent, StoreError, TableCounts, TokenInfo};

/// Tables whose secondary (non-constraint) indexes a restore drops and rebuilds.
const REINDEXED: &str = "'public.blocks'::regclass, 'public.areas'::regclass, 'public.resources'::regclass,
    'belong_private.people'::regclass, 'belong_private.history'::regclass";

/// WGS84, the SRID of every geometry column.
const SRID: i32 = 4326;

fn role(text: &str) -> Role {
    // The schema's CHECK admits these two only.
    if text == "ambassador" { Role::Ambassador } else { Role::Resident }
}

pub(super) fn table_counts(c: &mut impl GenericClient) -> Result<TableCounts, StoreError> {
    let r = c.query_one(
        "SELECT (SELECT COUNT(*) FROM public.blocks),
                (SELECT COUNT(*) FROM belong_private.people WHERE role = 'resident'),
                (SELECT COUNT(*) FROM belong_private.people WHERE role = 'ambassador'),
                (SELECT COUNT(*) FROM public.resources),
                (SELECT COUNT(*) FROM public.indicators),
                (SELECT COUNT(*) FROM belong_private.tokens),
                (SELECT COUNT(*) FROM belong_private.history),
                (SELECT COALESCE(MAX(seq), 0) FROM belong_private.history),
                (SELECT COALESCE(MAX(seq), 0) FROM belong_private.history
                  WHERE entity = 'import' AND entity_id = 'blocks')",
        &[],
    )?;
    let n = |i: usize| -> Result<u64, StoreError> { Ok(r.try_get::<_, i64>(i)? as u64) };
    let mut counts = TableCounts {
        blocks: n(0)?,
        residents: n(1)?,
        ambassadors: n(2)?,
        resources: n(3)?,
        indicators: n(4)?,
        tokens: n(5)?,
        history: n(6)?,
        last_change: r.try_get(7)?,
        catchment_version: r.try_get(8)?,
        ..TableCounts::default()
    };
    for r in c.query(
        "SELECT l.layer, (SELECT COUNT(*) FROM public.areas a WHERE a.layer = l.layer), l.version
         FROM public.area_layers l",
        &[],
    )? {
        counts
            .area_layers
            .insert(r.try_get(0)?, LayerCounts { areas: r.try_get::<_, i64>(1)? as u64, version: r.try_get(2)? });
    }
    Ok(counts)
}

/// `COPY (select) TO STDOUT` in binary, its rows handed to `sink` `per_batch` at a time.
fn stream<T>(
    tx: &mut Transaction<'_>,
    select: &str,
    types: &[Type],
    per_batch: usize,
    row: impl Fn(&BinaryCopyOutRow) -> Result<T, StoreError>,
    wrap: fn(Vec<T>) -> DumpBatch,
    sink: &mut dyn FnMut(DumpBatch) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let reader = tx.copy_out(&format!("COPY ({select}) TO STDOUT (FORMAT binary)"))?;
    let mut rows = BinaryCopyOutIter::new(reader, types);
    let mut batch = Vec::with_capacity(per_batch);
    while let Some(r) = rows.next()? {
        batch.push(row(&r)?);
        if batch.len() == per_batch {
            sink(wrap(std::mem::replace(&mut batch, Vec::with_capacity(per_batch))))?;
        }
    }
    if !batch.is_empty() {
        sink(wrap(batch))?;
    }
    Ok(())
}

fn polygon_row(r: &BinaryCopyOutRow, first: usize) -> Result<PolygonRow, StoreError> {
    Ok(PolygonRow {
        id: r.try_get(first)?,
        name: r.try_get(first + 1)?,
        wkb: r.try_get(first + 2)?,
        attributes: r.try_get(first + 3)?,
    })
}

/// Read every table in `tx`, a REPEATABLE READ snapshot.
pub(super) fn dump(
    tx: &mut Transaction<'_>,
    sink: &mut dyn FnMut(DumpBatch) -> Result<(), StoreError>,
) -> Result<TableCounts, StoreError> {
    use Type as T;
    let counts = table_counts(tx)?;
    let polygon = [T::TEXT, T::TEXT, T::BYTEA, T::TEXT];
    stream(
        tx,
        "SELECT id, name, ST_AsBinary(geom), attributes::text FROM public.blocks ORDER BY id",
        &polygon,
        POLYGON_BATCH_ROWS,
        |r| polygon_row(r, 0),
        DumpBatch::Blocks,
        sink,
    )?;
    stream(
        tx,
        "SELECT layer, source, imported_at, version FROM public.area_layers ORDER BY layer",
        &[T::TEXT, T::TEXT, T::TEXT, T::INT8],
        BATCH_ROWS,
        |r| {
            Ok(AreaLayerRow {
                layer: r.try_get(0)?,
                source: r.try_get(1)?,
                imported_at: r.try_get(2)?,
                version: r.try_get(3)?,
            })
        },
        DumpBatch::AreaLayers,
        sink,
    )?;
    stream(
        tx,
        "SELECT layer, area_id, name, ST_AsBinary(geom), attributes::text FROM public.areas ORDER BY layer, area_id",
        &[T::TEXT, T::TEXT, T::TEXT, T::BYTEA, T::TEXT],
        POLYGON_BATCH_ROWS,
        |r| Ok(AreaRow { layer: r.try_get(0)?, area: polygon_row(r, 1)? }),
        DumpBatch::Areas,
        sink,
    )?;
    stream(
        tx,
        "SELECT id, role, ST_X(geom), ST_Y(geom), name, phone, email, interested, active, adopted_block,
                adopted_until, home_block, created_at, updated_at FROM belong_private.people ORDER BY id",
        &[
            T::TEXT,
            T::TEXT,
            T::FLOAT8,
            T::FLOAT8,
            T::TEXT,
            T::TEXT,
            T::TEXT,
            T::BOOL,
            T::BOOL,
            T::TEXT,
            T::TEXT,
            T::TEXT,
            T::TEXT,
            T::TEXT,
        ],
        BATCH_ROWS,
        |r| {
            Ok(PersonRow {
                id: r.try_get(0)?,
                role: role(r.try_get(1)?),
                lon: r.try_get(2)?,
                lat: r.try_get(3)?,
                name: r.try_get(4)?,
                phone: r.try_get(5)?,
                email: r.try_get(6)?,
                interested: r.try_get(7)?,
                active: r.try_get(8)?,
                adopted_block: r.try_get(9)?,
                adopted_until: r.try_get(10)?,
                home_block: r.try_get(11)?,
                created_at: r.try_get(12)?,
                updated_at: r.try_get(13)?,
            })
        },
        DumpBatch::People,
        sink,
    )?;
    stream(
        tx,
        "SELECT id, name, category, ST_X(geom), ST_Y(geom), address, phone, email, url, attributes::text, block_id,
                updated_at FROM public.resources ORDER BY id",
        &[
            T::TEXT,
            T::TEXT,
            T::TEXT,
            T::FLOAT8,
            T::FLOAT8,
            T::TEXT,
            T::TEXT,
            T::TEXT,
            T::TEXT,
            T::TEXT,
            T::TEXT,
            T::TEXT,
        ],
        BATCH_ROWS,
        |r| {
            Ok(ResourceRow {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                category: r.try_get(2)?,
                lon: r.try_get(3)?,
                lat: r.try_get(4)?,
                address: r.try_get(5)?,
                phone: r.try_get(6)?,
                email: r.try_get(7)?,
                url: r.try_get(8)?,
                attributes: r.try_get(9)?,
                block_id: r.try_get(10)?,
                updated_at: r.try_get(11)?,
            })
        },
        DumpBatch::Resources,
        sink,
    )?;
    stream(
        tx,
        "SELECT block_id, indicator, date, value FROM public.indicators ORDER BY block_id, indicator, date",
        &[T::TEXT, T::TEXT, T::TEXT, T::FLOAT8],
        BATCH_ROWS,
        |r| {
            let date: String = r.try_get(2)?;
            Ok(IndicatorValue {
                block_id: r.try_get(0)?,
                indicator: r.try_get(1)?,
                date: (!date.is_empty()).then_some(date),
                value: r.try_get(3)?,
            })
        },
        DumpBatch::Indicators,
        sink,
    )?;
    stream(
        tx,
        "SELECT id, hash, role, name, created_at, revoked_at FROM belong_private.tokens ORDER BY id",
        &[T::INT8, T::TEXT, T::TEXT, T::TEXT, T::TEXT, T::TEXT],
        BATCH_ROWS,
        |r| {
            let id: i64 = r.try_get(0)?;
            let role: &str = r.try_get(2)?;
            let role = role.parse().map_err(|reason| StoreError::Corrupt {
                what: "token role",
                id: id.to_string(),
                reason,
            })?;
            Ok(TokenRow {
                info: TokenInfo { id, role, name: r.try_get(3)?, created_at: r.try_get(4)?, revoked_at: r.try_get(5)? },
                hash: r.try_get(1)?,
            })
        },
        DumpBatch::Tokens,
        sink,
    )?;
    stream(
        tx,
        "SELECT seq, ts, entity, entity_id, action, role, block_id, active, detail
         FROM belong_private.history ORDER BY seq",
        &[T::INT8, T::TEXT, T::TEXT, T::TEXT, T::TEXT, T::TEXT, T::TEXT, T::BOOL, T::TEXT],
        BATCH_ROWS,
        |r| {
            let role_text: Option<&str> = r.try_get(5)?;
            Ok(HistoryEvent {
                seq: r.try_get(0)?,
                ts: r.try_get(1)?,
                entity: r.try_get(2)?,
                entity_id: r.try_get(3)?,
                action: r.try_get(4)?,
                role: role_text.map(role),
                block_id: r.try_get(6)?,
                active: r.try_get(7)?,
                detail: r.try_get(8)?,
            })
        },
        DumpBatch::History,
        sink,
    )?;
    Ok(counts)
}

/// One text `COPY` row being built: fields separated by tabs, escaped by [`copy_field`].
struct Lines {
    text: String,
    fields: usize,
}

impl Lines {
    fn new() -> Lines {
        Lines { text: String::new(), fields: 0 }
    }

    fn field(&mut self, value: Option<&str>) -> &mut Self {
        if self.fields > 0 {
            self.text.push('\t');
        }
        self.fields += 1;
        copy_field(&mut self.text, value);
        self
    }

    /// A field that needs no escaping (numbers, booleans, hex).
    fn plain(&mut self, value: impl std::fmt::Display) -> &mut Self {
        if self.fields > 0 {
            self.text.push('\t');
        }
        self.fields += 1;
        let _ = write!(self.text, "{value}");
        self
    }

    fn flag(&mut self, value: bool) -> &mut Self {
        self.plain(if value { "t" } else { "f" })
    }

    fn end(&mut self) {
        self.text.push('\n');
        self.fields = 0;
    }
}

/// `\x`-less hex of `bytes`, as PostGIS reads hex (E)WKB text.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// A point as hex EWKB with SRID 4326 (little-endian, type 1 with the SRID flag).
fn point_ewkb(lon: f64, lat: f64) -> String {
    let mut b = Vec::with_capacity(25);
    b.push(1);
    b.extend_from_slice(&(1u32 | 0x2000_0000).to_le_bytes());
    b.extend_from_slice(&(SRID as u32).to_le_bytes());
    b.extend_from_slice(&lon.to_le_bytes());
    b.extend_from_slice(&lat.to_le_bytes());
    hex(&b)
}

/// A (multi)polygon's WKB as hex EWKB of a MultiPolygon with SRID 4326 (a Polygon is wrapped,
/// as the `geometry(MultiPolygon, 4326)` columns require).
fn polygon_ewkb(what: &'static str, row: &PolygonRow) -> Result<String, StoreError> {
    let mp = decode_geometry(what, &row.id, &row.wkb)?;
    let ewkb = Geometry::MultiPolygon(mp)
        .to_ewkb(CoordDimensions::xy(), Some(SRID))
        .map_err(|e| StoreError::Corrupt { what, id: row.id.clone(), reason: e.to_string() })?;
    Ok(hex(&ewkb))
}

/// A float as PostgreSQL's `float8` input reads it back exactly.
fn float(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "Infinity".into() } else { "-Infinity".into() }
    } else {
        // Rust prints the shortest text that parses back to the same double (NaN as `NaN`).
        v.to_string()
    }
}

fn copy_in(tx: &mut Transaction<'_>, copy: &str, lines: &Lines) -> Result<(), StoreError> {
    let mut writer = tx.copy_in(copy)?;
    writer.write_all(lines.text.as_bytes()).map_err(|e| StoreError::Database(Box::new(e)))?;
    writer.finish()?;
    Ok(())
}

fn write_batch(tx: &mut Transaction<'_>, batch: &DumpBatch) -> Result<(), StoreError> {
    let mut l = Lines::new();
    let copy = match batch {
        DumpBatch::Blocks(rows) => {
            for r in rows {
                let geom = polygon_ewkb("block geometry", r)?;
                l.field(Some(&r.id)).field(r.name.as_deref()).field(Some(&r.attributes)).plain(geom).end();
            }
            "COPY public.blocks (id, name, attributes, geom) FROM STDIN"
        }
        DumpBatch::AreaLayers(rows) => {
            for r in rows {
                l.field(Some(&r.layer)).field(r.source.as_deref()).field(Some(&r.imported_at)).plain(r.version).end();
            }
            "COPY public.area_layers (layer, source, imported_at, version) FROM STDIN"
        }
        DumpBatch::Areas(rows) => {
            for r in rows {
                let a = &r.area;
                let geom = polygon_ewkb("area geometry", a)?;
                l.field(Some(&r.layer)).field(Some(&a.id)).field(a.name.as_deref()).field(Some(&a.attributes));
                l.plain(geom).end();
            }
            "COPY public.areas (layer, area_id, name, attributes, geom) FROM STDIN"
        }
        DumpBatch::People(rows) => {
            for p in rows {
                l.field(Some(&p.id)).field(Some(p.role.as_str())).plain(point_ewkb(p.lon, p.lat));
                l.field(p.name.as_deref()).field(p.phone.as_deref()).field(p.email.as_deref());
                l.flag(p.interested).flag(p.active).field(p.adopted_block.as_deref());
                l.field(p.adopted_until.as_deref()).field(p.home_block.as_deref());
                l.field(Some(&p.created_at)).field(Some(&p.updated_at)).end();
            }
            "COPY belong_private.people (id, role, geom, name, phone, email, interested, active, adopted_block,
                 adopted_until, home_block, created_at, updated_at) FROM STDIN"
        }
        DumpBatch::Resources(rows) => {
            for r in rows {
                l.field(Some(&r.id)).field(r.name.as_deref()).field(Some(&r.category)).plain(point_ewkb(r.lon, r.lat));
                l.field(r.address.as_deref()).field(r.phone.as_deref()).field(r.email.as_deref());
                l.field(r.url.as_deref()).field(Some(&r.attributes)).field(r.block_id.as_deref());
                l.field(Some(&r.updated_at)).end();
            }
            "COPY public.resources (id, name, category, geom, address, phone, email, url, attributes, block_id,
                 updated_at) FROM STDIN"
        }
        DumpBatch::Indicators(rows) => {
            for i in rows {
                l.field(Some(&i.block_id)).field(Some(&i.indicator)).field(Some(i.date.as_deref().unwrap_or("")));
                l.plain(float(i.value)).end();
            }
            "COPY public.indicators (block_id, indicator, date, value) FROM STDIN"
        }
        DumpBatch::Tokens(rows) => {
            for t in rows {
                let i = &t.info;
                l.plain(i.id).field(Some(&t.hash)).field(Some(i.role.as_str())).field(i.name.as_deref());
                l.field(Some(&i.created_at)).field(i.revoked_at.as_deref()).end();
            }
            "COPY belong_private.tokens (id, hash, role, name, created_at, revoked_at) FROM STDIN"
        }
        DumpBatch::History(rows) => {
            for e in rows {
                l.plain(e.seq).field(Some(&e.ts)).field(Some(&e.entity)).field(Some(&e.entity_id));
                l.field(Some(&e.action)).field(e.role.map(Role::as_str)).field(e.block_id.as_deref());
                match e.active {
                    Some(a) => l.flag(a),
                    None => l.field(None),
                };
                l.field(e.detail.as_deref()).end();
            }
            "COPY belong_private.history (seq, ts, entity, entity_id, action, role, block_id, active, detail)
                 FROM STDIN"
        }
    };
    if !batch.is_empty() {
        copy_in(tx, copy, &l)?;
    }
    Ok(())
}

/// Write the batches into `tx`, a write transaction holding the feed lock.
pub(super) fn restore(
    tx: &mut Transaction<'_>,
    next: &mut dyn FnMut() -> Result<Option<DumpBatch>, StoreError>,
) -> Result<(), StoreError> {
    let found = table_counts(tx)?;
    if !found.is_empty() {
        return Err(StoreError::NotEmpty { holds: found.holdings() });
    }
    // Index definitions read from the catalogue, so this follows future migrations.
    let indexes: Vec<(String, String)> = tx
        .query(
            &format!(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
                 WHERE i.indrelid IN ({REINDEXED})
                   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
            ),
            &[],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, StoreError>>()?;
    for (name, _) in &indexes {
        tx.batch_execute(&format!("DROP INDEX {name}"))?;
    }
    while let Some(batch) = next()? {
        write_batch(tx, &batch)?;
    }
    tx.batch_execute("SET LOCAL maintenance_work_mem = '256MB'")?;
    for (_, sql) in &indexes {
        tx.batch_execute(sql)?;
    }
    // Explicit ids leave the sequences where they were: move them past the copied ones, so the
    // next history row continues the feed (`setval(.., 1, false)` when a table is empty).
    tx.batch_execute(
        "SELECT setval(pg_get_serial_sequence('belong_private.history', 'seq'),
                       GREATEST(MAX(seq), 1), MAX(seq) IS NOT NULL) FROM belong_private.history;
         SELECT setval(pg_get_serial_sequence('belong_private.tokens', 'id'),
                       GREATEST(MAX(id), 1), MAX(id) IS NOT NULL) FROM belong_private.tokens;
         ANALYZE public.blocks, public.area_layers, public.areas, public.resources, public.indicators,
                 belong_private.people, belong_private.tokens, belong_private.history;",
    )?;
    Ok(())
}
