//! GeoPackage 1.3 downloads, written with SQLite directly: the core tables, one feature table
//! (`fid`, `geom`, then the fields), GeoPackageBinary geometries (header with envelope, then
//! little-endian ISO WKB) and the `gpkg_rtree_index` spatial index with its triggers.
//! GDAL's `validate_gpkg.py` accepts the files.

use std::path::Path;

use rusqlite::{Connection, params};
use serde_json::Value;

use super::download::{
    ExportError, FieldType, GeometryType, LayerSchema, OutputCrs, Projected, Rows, boolean, date, grow, integer, real,
    text, unique_names,
};

/// `PRAGMA application_id`: "GPKG".
const APPLICATION_ID: i32 = 0x4750_4B47;
/// `PRAGMA user_version`: GeoPackage 1.3.0 (what GDAL 3.6 writes; every reader since knows it).
const USER_VERSION: i32 = 10300;

/// Write `rows` of `layer` as a GeoPackage at `path` (replaced if it exists and is not empty).
pub fn write_gpkg(path: &Path, layer: &LayerSchema, rows: &dyn Rows, crs: &OutputCrs) -> Result<(), ExportError> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
        std::fs::remove_file(path)?;
    }
    let mut db = Connection::open(path)?;
    // A download is written once from start to end: a journal would only cost writes, and a
    // failed download is thrown away whole.
    db.execute_batch(&format!(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; \
         PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {USER_VERSION};"
    ))?;
    let tx = db.transaction()?;
    tx.execute_batch(CORE_TABLES)?;
    insert_srs(&tx, crs)?;

    let table = &layer.name;
    let names: Vec<&str> = layer.fields.iter().map(|f| f.name.as_str()).collect();
    let columns = unique_names(&names, &["fid", "geom"], None);
    let geometry_type = match layer.geometry {
        GeometryType::Point => "POINT",
        GeometryType::MultiPolygon => "MULTIPOLYGON",
    };
    let mut ddl = format!(
        "CREATE TABLE {} (\"fid\" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, \"geom\" {geometry_type}",
        quote(table)
    );
    for (field, column) in layer.fields.iter().zip(&columns) {
        let sql_type = match field.kind {
            FieldType::Boolean => "BOOLEAN",
            FieldType::Integer => "INTEGER",
            FieldType::Real => "DOUBLE",
            FieldType::Text => "TEXT",
            FieldType::Date => "DATE",
        };
        ddl.push_str(&format!(", {} {sql_type}", quote(column)));
    }
    ddl.push(')');
    tx.execute_batch(&ddl)?;
    let rtree = format!("rtree_{table}_geom");
    tx.execute_batch(&format!("CREATE VIRTUAL TABLE {} USING rtree(id, minx, maxx, miny, maxy)", quote(&rtree)))?;

    let mut extent: Option<[f64; 4]> = None;
    {
        let placeholders: String = (0..columns.len() + 2).map(|i| if i == 0 { "?" } else { ", ?" }).collect();
        let mut insert = tx.prepare(&format!("INSERT INTO {} VALUES ({placeholders})", quote(table)))?;
        let mut index = tx.prepare(&format!("INSERT INTO {} VALUES (?, ?, ?, ?, ?)", quote(&rtree)))?;
        let srs_id = crs.srs.code;
        let mut blob = Vec::with_capacity(4096);
        let mut fid: i64 = 0;
        rows.visit(&mut |row| {
            fid += 1;
            let geometry = Projected::of(row.geometry, crs)?;
            let envelope = geometry.envelope();
            geometry_blob(&geometry, envelope, srs_id, &mut blob);
            // Bound one by one: no row of owned values to build per feature.
            insert.raw_bind_parameter(1, fid)?;
            insert.raw_bind_parameter(2, &blob[..])?;
            for (j, (field, v)) in layer.fields.iter().zip(row.values).enumerate() {
                insert.raw_bind_parameter(3 + j, sql_value(field.kind, v))?;
            }
            insert.raw_execute()?;
            if let Some(e) = envelope {
                index.execute(params![fid, e[0], e[2], e[1], e[3]])?;
                grow(&mut extent, e);
            }
            Ok(())
        })?;
    }

    let [min_x, min_y, max_x, max_y] = match extent {
        Some(e) => e.map(Some),
        None => [None; 4],
    };
    tx.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, min_x, min_y, max_x, max_y, srs_id) \
         VALUES (?1, 'features', ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![table, layer.description, min_x, min_y, max_x, max_y, crs.srs.code],
    )?;
    tx.execute(
        "INSERT INTO gpkg_geometry_columns VALUES (?1, 'geom', ?2, ?3, 0, 0)",
        params![table, geometry_type, crs.srs.code],
    )?;
    tx.execute(
        "INSERT INTO gpkg_extensions VALUES (?1, 'geom', 'gpkg_rtree_index', \
         'http://www.geopackage.org/spec120/#extension_rtree', 'write-only')",
        params![table],
    )?;
    // The triggers keep the index right when a client edits the table; they call the ST_*
    // functions every GeoPackage reader registers, which plain SQLite lacks, so they are
    // created after the rows (the index was filled above).
    tx.execute_batch(&rtree_triggers(table))?;
    tx.commit()?;
    db.close().map_err(|(_, e)| e)?;
    Ok(())
}

/// The tables every GeoPackage has (spec 1.3, clauses 1.1.2, 1.1.3, 2.1.5, 2.5).
const CORE_TABLES: &str = "
CREATE TABLE gpkg_spatial_ref_sys (
  srs_name TEXT NOT NULL, srs_id INTEGER NOT NULL PRIMARY KEY, organization TEXT NOT NULL,
  organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT);
CREATE TABLE gpkg_contents (
  table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, identifier TEXT UNIQUE,
  description TEXT DEFAULT '', last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
  CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id));
CREATE TABLE gpkg_geometry_columns (
  table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL,
  srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
  CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
  CONSTRAINT uk_gc_table_name UNIQUE (table_name),
  CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
  CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));
CREATE TABLE gpkg_extensions (
  table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL, definition TEXT NOT NULL,
  scope TEXT NOT NULL, CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name));
";

/// The three rows the spec requires (EPSG:4326 and the undefined cartesian and geographic
/// systems), and the output CRS when it is another.
fn insert_srs(tx: &rusqlite::Transaction<'_>, crs: &OutputCrs) -> Result<(), ExportError> {
    let mut insert = tx.prepare("INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)")?;
    insert.execute(params![
        "WGS 84 geodetic",
        4326,
        "EPSG",
        4326,
        super::download::WGS84_WKT,
        "longitude/latitude coordinates in decimal degrees on the WGS 84 spheroid"
    ])?;
    insert.execute(params![
        "Undefined cartesian SRS",
        -1,
        "NONE",
        -1,
        "undefined",
        "undefined cartesian coordinate reference system"
    ])?;
    insert.execute(params![
        "Undefined geographic SRS",
        0,
        "NONE",
        0,
        "undefined",
        "undefined geographic coordinate reference system"
    ])?;
    let srs = &crs.srs;
    if ![4326, -1, 0].contains(&srs.code) {
        insert.execute(params![srs.name, srs.code, srs.organization, srs.code, srs.wkt, Option::<String>::None])?;
    }
    Ok(())
}

/// A field value as SQLite stores it in a column of `kind` (dates as `YYYY-MM-DD` text,
/// booleans as 0/1).
fn sql_value(kind: FieldType, v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as Sql;
    let value = match kind {
        FieldType::Boolean => boolean(v).map(|b| Sql::Integer(i64::from(b))),
        FieldType::Integer => integer(v).map(Sql::Integer),
        FieldType::Real => real(v).map(Sql::Real),
        FieldType::Text => text(v).map(|t| Sql::Text(t.into_owned())),
        FieldType::Date => date(v).map(|d| Sql::Text(d.format("%Y-%m-%d").to_string())),
    };
    value.unwrap_or(Sql::Null)
}

/// A SQL identifier in double quotes.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `geometry` as a StandardGeoPackageBinary blob into `out` (cleared first): magic `GP`,
/// version 0, flags (little-endian; an [minx, maxx, miny, maxy] envelope for polygons, none
/// for points, as GDAL writes them; the empty bit for a polygon without points), the SRS id,
/// the envelope, then ISO WKB.
pub(crate) fn geometry_blob(geometry: &Projected, envelope: Option<[f64; 4]>, srs_id: i32, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(b"GP");
    out.push(0);
    let with_envelope = matches!(geometry, Projected::MultiPolygon(_)) && envelope.is_some();
    let flags: u8 = match (geometry, envelope) {
        (Projected::MultiPolygon(_), None) => 0b0001_0001,
        _ if with_envelope => 0b0000_0011,
        _ => 0b0000_0001,
    };
    out.push(flags);
    out.extend_from_slice(&srs_id.to_le_bytes());
    if let (true, Some([x0, y0, x1, y1])) = (with_envelope, envelope) {
        for v in [x0, x1, y0, y1] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    write_wkb(geometry, out);
}

/// ISO WKB, little-endian, 2D.
pub(crate) fn write_wkb(geometry: &Projected, out: &mut Vec<u8>) {
    let u32_le = |out: &mut Vec<u8>, v: usize| out.extend_from_slice(&(v as u32).to_le_bytes());
    match geometry {
        Projected::Point(x, y) => {
            out.push(1);
            u32_le(out, 1);
            out.extend_from_slice(&x.to_le_bytes());
            out.extend_from_slice(&y.to_le_bytes());
        }
        Projected::MultiPolygon(mp) => {
            out.push(1);
            u32_le(out, 6);
            u32_le(out, mp.0.len());
            for p in &mp.0 {
                out.push(1);
                u32_le(out, 3);
                u32_le(out, 1 + p.interiors().len());
                for ring in std::iter::once(p.exterior()).chain(p.interiors()) {
                    u32_le(out, ring.0.len());
                    for c in &ring.0 {
                        out.extend_from_slice(&c.x.to_le_bytes());
                        out.extend_from_slice(&c.y.to_le_bytes());
                    }
                }
            }
        }
    }
}

/// The R-tree triggers of spec 1.3 (F.3), for table `t` and column `geom`.
fn rtree_triggers(t: &str) -> String {
    let r = quote(&format!("rtree_{t}_geom"));
    let trigger = |suffix: &str| quote(&format!("rtree_{t}_geom_{suffix}"));
    let t = quote(t);
    let values = "NEW.fid, ST_MinX(NEW.geom), ST_MaxX(NEW.geom), ST_MinY(NEW.geom), ST_MaxY(NEW.geom)";
    format!(
        "CREATE TRIGGER {insert} AFTER INSERT ON {t} WHEN (new.geom NOT NULL AND NOT ST_IsEmpty(NEW.geom)) \
         BEGIN INSERT OR REPLACE INTO {r} VALUES ({values}); END;
         CREATE TRIGGER {update1} AFTER UPDATE OF geom ON {t} WHEN OLD.fid = NEW.fid AND \
         (NEW.geom NOTNULL AND NOT ST_IsEmpty(NEW.geom)) \
         BEGIN INSERT OR REPLACE INTO {r} VALUES ({values}); END;
         CREATE TRIGGER {update2} AFTER UPDATE OF geom ON {t} WHEN OLD.fid = NEW.fid AND \
         (NEW.geom ISNULL OR ST_IsEmpty(NEW.geom)) \
         BEGIN DELETE FROM {r} WHERE id = OLD.fid; END;
         CREATE TRIGGER {update3} AFTER UPDATE ON {t} WHEN OLD.fid != NEW.fid AND \
         (NEW.geom NOTNULL AND NOT ST_IsEmpty(NEW.geom)) \
         BEGIN DELETE FROM {r} WHERE id = OLD.fid; INSERT OR REPLACE INTO {r} VALUES ({values}); END;
         CREATE TRIGGER {update4} AFTER UPDATE ON {t} WHEN OLD.fid != NEW.fid AND \
         (NEW.geom ISNULL OR ST_IsEmpty(NEW.geom)) \
         BEGIN DELETE FROM {r} WHERE id IN (OLD.fid, NEW.fid); END;
         CREATE TRIGGER {delete} AFTER DELETE ON {t} WHEN old.geom NOT NULL \
         BEGIN DELETE FROM {r} WHERE id = OLD.fid; END;",
        insert = trigger("insert"),
        update1 = trigger("update1"),
        update2 = trigger("update2"),
        update3 = trigger("update3"),
        update4 = trigger("update4"),
        delete = trigger("delete"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::download::{Field, Geometry, Row};
    use geo::{MultiPolygon, polygon};

    struct Fixture(Vec<(Geometry<'static>, Vec<Value>)>);

    impl Rows for Fixture {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn visit(&self, f: &mut dyn FnMut(Row<'_>) -> Result<(), ExportError>) -> Result<(), ExportError> {
            for (geometry, values) in &self.0 {
                f(Row { geometry: *geometry, values })?;
            }
            Ok(())
        }
    }

    fn square() -> &'static MultiPolygon<f64> {
        static SQUARE: std::sync::OnceLock<MultiPolygon<f64>> = std::sync::OnceLock::new();
        // Clockwise on purpose: the GeoPackage gets it counter-clockwise.
        SQUARE.get_or_init(|| {
            MultiPolygon(vec![
                polygon![(x: 0.0, y: 0.0), (x: 0.0, y: 2.0), (x: 1.0, y: 2.0), (x: 1.0, y: 0.0), (x: 0.0, y: 0.0)],
            ])
        })
    }

    #[test]
    fn the_blob_has_the_header_envelope_and_wkb() {
        let mut out = Vec::new();
        let g = Projected::of(Geometry::MultiPolygon(square()), &OutputCrs::wgs84()).unwrap();
        geometry_blob(&g, g.envelope(), 4326, &mut out);
        assert_eq!(&out[..4], b"GP\x00\x03", "magic, version 0, little-endian with an xy envelope");
        assert_eq!(i32::from_le_bytes(out[4..8].try_into().unwrap()), 4326);
        let env: Vec<f64> =
            (0..4).map(|i| f64::from_le_bytes(out[8 + 8 * i..16 + 8 * i].try_into().unwrap())).collect();
        assert_eq!(env, [0.0, 1.0, 0.0, 2.0], "minx, maxx, miny, maxy");
        let wkb = &out[40..];
        assert_eq!(wkb[0], 1, "little-endian WKB");
        assert_eq!(u32::from_le_bytes(wkb[1..5].try_into().unwrap()), 6, "MultiPolygon");
        assert_eq!(wkb.len(), 1 + 4 + 4 + (1 + 4 + 4 + 4 + 5 * 16));
        // The WKB reads back (geozero's reader) as the same square, counter-clockwise.
        let back = geozero::wkb::Wkb(wkb.to_vec());
        let geo: geo::Geometry<f64> = geozero::ToGeo::to_geo(&back).unwrap();
        let geo::Geometry::MultiPolygon(back) = geo else { panic!("{geo:?}") };
        use geo::Area;
        assert!(
            back.0[0].exterior().0.len() == 5
                && geo::Polygon::new(back.0[0].exterior().clone(), vec![]).signed_area() > 0.0
        );

        let p = Projected::Point(-118.25, 34.05);
        geometry_blob(&p, p.envelope(), 4326, &mut out);
        assert_eq!(&out[..4], b"GP\x00\x01", "points carry no envelope");
        assert_eq!(out.len(), 8 + 21);
    }

    #[test]
    fn a_geopackage_is_written_with_its_tables_and_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.gpkg");
        let layer = LayerSchema {
            name: "school-readiness".into(),
            description: "test".into(),
            geometry: GeometryType::MultiPolygon,
            fields: vec![
                Field { name: "block_id".into(), kind: FieldType::Text },
                Field { name: "value".into(), kind: FieldType::Real },
                Field { name: "n".into(), kind: FieldType::Integer },
                Field { name: "date".into(), kind: FieldType::Date },
                Field { name: "no_data".into(), kind: FieldType::Boolean },
                Field { name: "FID".into(), kind: FieldType::Integer },
            ],
        };
        let rows = Fixture(vec![
            (
                Geometry::MultiPolygon(square()),
                vec!["060371".into(), 0.5.into(), 3.into(), "2025-06-01".into(), false.into(), 9.into()],
            ),
            (
                Geometry::MultiPolygon(square()),
                vec!["060372".into(), Value::Null, Value::Null, Value::Null, true.into(), 1.into()],
            ),
        ]);
        write_gpkg(&path, &layer, &rows, &OutputCrs::wgs84()).unwrap();
        // Written twice: the second replaces the first.
        write_gpkg(&path, &layer, &rows, &OutputCrs::wgs84()).unwrap();
        let db = Connection::open(&path).unwrap();
        let pragma = |p: &str| db.query_row(&format!("PRAGMA {p}"), [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(pragma("application_id"), 0x4750_4B47);
        assert_eq!(pragma("user_version"), 10300);
        let n: i64 = db.query_row("SELECT count(*) FROM \"school-readiness\"", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 2);
        let indexed: i64 =
            db.query_row("SELECT count(*) FROM \"rtree_school-readiness_geom\"", [], |r| r.get(0)).unwrap();
        assert_eq!(indexed, 2);
        let (id, date, fid2): (String, String, i64) = db
            .query_row("SELECT block_id, date, FID_2 FROM \"school-readiness\" WHERE fid = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!((id.as_str(), date.as_str(), fid2), ("060371", "2025-06-01", 9), "a property named FID is renamed");
        let srs: Vec<i64> = db
            .prepare("SELECT srs_id FROM gpkg_spatial_ref_sys ORDER BY srs_id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(srs, [-1, 0, 4326]);
        let extent: (f64, f64, f64, f64) = db
            .query_row("SELECT min_x, min_y, max_x, max_y FROM gpkg_contents", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap();
        assert_eq!(extent, (0.0, 0.0, 1.0, 2.0));
        let triggers: i64 =
            db.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'", [], |r| r.get(0)).unwrap();
        assert_eq!(triggers, 6);
    }
}
