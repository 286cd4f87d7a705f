//! Zipped ESRI shapefile downloads: `.shp` and `.shx` by the `shapefile` crate (which orders
//! rings as shapefiles need them: outer rings clockwise, holes counter-clockwise), a dBase III
//! `.dbf` written here, `.prj` (ESRI WKT) and `.cpg` (`UTF-8`), in one zip.
//!
//! dBase limits what survives, deterministically:
//! - field names have at most 10 bytes: a longer name is cut on a character boundary, and a
//!   name already taken (ignoring ASCII case) ends in `_2`, `_3`, ... instead (see
//!   [`unique_names`]); the zip's comment lists every renamed field;
//! - text is `C` of up to 254 bytes: longer values are cut at 254 bytes on a character boundary;
//! - integers are `N` with 0 decimals, as wide as the widest value (GDAL reads up to 9 digits as
//!   Integer, 10 to 18 as Integer64); reals are `N` with decimals, dates `D`;
//! - booleans are `N(1,0)` holding 1 or 0: dBase's logical `L` is read as text by GDAL (and so
//!   QGIS), and ArcGIS has no boolean field type either.
//!
//! The `.dbf` is written here rather than with the `dbase` crate because that crate writes every
//! number through an `f64` and crops a value wider than its column without a word; here the
//! columns are sized in a first pass over the rows, so every value fits as written.

use std::io::{BufWriter, Seek, SeekFrom, Write};

use serde_json::Value;
use shapefile::{Point, Polygon, PolygonRing, ShapeWriter};

use super::download::{
    ExportError, FieldType, GeometryType, LayerSchema, OutputCrs, Projected, Rows, boolean, cut, date, integer, real,
    text, unique_names,
};

/// Longest dBase field name, in bytes.
pub const DBF_NAME_BYTES: usize = 10;
/// Widest dBase text value, in bytes.
pub const DBF_TEXT_BYTES: usize = 254;
/// Largest `.shp` or `.dbf` most readers accept (GDAL's default, ArcGIS): 2 GiB.
const MAX_FILE_BYTES: u64 = (1 << 31) - 1;

/// Write `rows` of `layer` as a zipped shapefile to `out`: `{name}.shp`, `.shx`, `.dbf`, `.prj`
/// and `.cpg`. Returns `out`.
pub fn write_shapefile_zip<W: Write + Seek>(
    out: W,
    layer: &LayerSchema,
    rows: &dyn Rows,
    crs: &OutputCrs,
) -> Result<W, ExportError> {
    let names: Vec<&str> = layer.fields.iter().map(|f| f.name.as_str()).collect();
    let dbf_names = unique_names(&names, &[], Some(DBF_NAME_BYTES));
    let columns = size_columns(layer, &dbf_names, rows)?;

    // The three files are written side by side, one record of each per row.
    let mut shp = BufWriter::new(tempfile::tempfile()?);
    let mut shx = BufWriter::new(tempfile::tempfile()?);
    let mut dbf = BufWriter::new(tempfile::tempfile()?);
    let record_len = write_dbf_header(&mut dbf, &columns, rows.len())?;
    let mut shp_bytes: u64 = 100;
    let mut count: usize = 0;
    {
        let mut shapes = ShapeWriter::with_shx(&mut shp, &mut shx);
        let mut record = Vec::with_capacity(record_len);
        rows.visit(&mut |row| {
            count += 1;
            match Projected::of(row.geometry, crs)? {
                Projected::Point(x, y) => {
                    shp_bytes += 28;
                    shapes.write_shape(&Point::new(x, y))?;
                }
                Projected::MultiPolygon(mp) => {
                    let mut rings = Vec::new();
                    let mut points = 0;
                    for p in &mp.0 {
                        let ring =
                            |r: &geo::LineString<f64>| r.0.iter().map(|c| Point::new(c.x, c.y)).collect::<Vec<_>>();
                        points += p.exterior().0.len() + p.interiors().iter().map(|r| r.0.len()).sum::<usize>();
                        rings.push(PolygonRing::Outer(ring(p.exterior())));
                        rings.extend(p.interiors().iter().map(|r| PolygonRing::Inner(ring(r))));
                    }
                    if rings.is_empty() {
                        return Err(ExportError::Unsupported(format!(
                            "feature {count} has an empty polygon, which a shapefile cannot hold"
                        )));
                    }
                    shp_bytes += 8 + 44 + 4 * rings.len() as u64 + 16 * points as u64;
                    shapes.write_shape(&Polygon::with_rings(rings))?;
                }
            }
            if shp_bytes > MAX_FILE_BYTES {
                return Err(ExportError::TooLarge(format!(
                    "the selection makes a .shp over 2 GB (at feature {count}); use GeoPackage or FlatGeobuf, \
                     or download it in parts"
                )));
            }
            record.clear();
            write_dbf_record(&mut record, &columns, row.values);
            dbf.write_all(&record)?;
            Ok(())
        })?;
        shapes.finalize()?;
    }
    if count != rows.len() {
        // The header's record count was written first; keep it true.
        dbf.seek(SeekFrom::Start(4))?;
        dbf.write_all(&(count as u32).to_le_bytes())?;
        dbf.seek(SeekFrom::End(0))?;
    }
    dbf.write_all(&[0x1A])?;
    if count == 0 {
        // With no shape the writer leaves the type "null"; an empty layer still has one.
        let kind: i32 = match layer.geometry {
            GeometryType::Point => 1,
            GeometryType::MultiPolygon => 5,
        };
        for file in [&mut shp, &mut shx] {
            file.seek(SeekFrom::Start(32))?;
            file.write_all(&kind.to_le_bytes())?;
            file.seek(SeekFrom::End(0))?;
        }
    }

    let mut zip = zip::ZipWriter::new(out);
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).large_file(false);
    let renamed: Vec<String> =
        names.iter().zip(&dbf_names).filter(|(a, b)| a != b).map(|(a, b)| format!("{a} -> {b}")).collect();
    if !renamed.is_empty() {
        // Readers never show the comment as data; `unzip -z` and archive managers do.
        let comment = format!("dBase field names have at most 10 bytes; renamed: {}", renamed.join(", "));
        zip.set_comment(cut(&comment, 60_000).to_string());
    }
    let stem = &layer.name;
    for (ext, file) in [("shp", shp), ("shx", shx), ("dbf", dbf)] {
        let mut file = file.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        zip.start_file(format!("{stem}.{ext}"), options)?;
        std::io::copy(&mut file, &mut zip)?;
    }
    zip.start_file(format!("{stem}.prj"), options)?;
    zip.write_all(crs.srs.esri_wkt.as_bytes())?;
    zip.start_file(format!("{stem}.cpg"), options)?;
    zip.write_all(b"UTF-8")?;
    Ok(zip.finish()?)
}

/// One `.dbf` column.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Column {
    name: String,
    kind: FieldType,
    /// `C`, `N` or `D`.
    code: u8,
    width: usize,
    decimals: usize,
}

/// The `.dbf` columns: widths from a first pass over the rows.
fn size_columns(layer: &LayerSchema, names: &[String], rows: &dyn Rows) -> Result<Vec<Column>, ExportError> {
    let mut columns: Vec<Column> = layer
        .fields
        .iter()
        .zip(names)
        .map(|(f, name)| {
            let (code, width, decimals) = match f.kind {
                FieldType::Boolean => (b'N', 1, 0),
                FieldType::Date => (b'D', 8, 0),
                FieldType::Integer => (b'N', 1, 0),
                // At least one decimal, so readers see a real even when every value is whole.
                FieldType::Real => (b'N', 3, 1),
                FieldType::Text => (b'C', 1, 0),
            };
            Column { name: name.clone(), kind: f.kind, code, width, decimals }
        })
        .collect();
    rows.visit(&mut |row| {
        for (c, v) in columns.iter_mut().zip(row.values) {
            match c.kind {
                FieldType::Integer => {
                    if let Some(n) = integer(v) {
                        c.width = c.width.max(n.to_string().len());
                    }
                }
                FieldType::Real => {
                    if let Some(x) = real(v) {
                        let t = real_text(x);
                        let decimals = t.split_once('.').map_or(0, |(_, d)| d.len());
                        c.decimals = c.decimals.max(decimals.min(15));
                        c.width = c.width.max(t.len());
                    }
                }
                FieldType::Text => {
                    if let Some(t) = text(v) {
                        c.width = c.width.max(cut(&t, DBF_TEXT_BYTES).len());
                    }
                }
                FieldType::Boolean | FieldType::Date => {}
            }
        }
        Ok(())
    })?;
    for c in &mut columns {
        if c.kind == FieldType::Real {
            // Room for the declared decimals and the point, whatever the values were.
            c.width = c.width.max(c.decimals + 2);
        }
        c.width = c.width.min(DBF_TEXT_BYTES);
    }
    let record: usize = 1 + columns.iter().map(|c| c.width).sum::<usize>();
    if record > usize::from(u16::MAX) {
        return Err(ExportError::TooLarge(format!(
            "a .dbf record would be {record} bytes, over dBase's 65,535; use GeoPackage or FlatGeobuf"
        )));
    }
    let total = 33 + 32 * columns.len() as u64 + record as u64 * rows.len() as u64;
    if total > MAX_FILE_BYTES {
        return Err(ExportError::TooLarge(
            "the selection makes a .dbf over 2 GB; use GeoPackage or FlatGeobuf, or download it in parts".into(),
        ));
    }
    Ok(columns)
}

/// A real as dBase text: the shortest text that reads back as the same double (never an
/// exponent, which `N` columns cannot hold, unless the number is astronomically large).
fn real_text(x: f64) -> String {
    let t = x.to_string();
    if t.len() <= 40 { t } else { format!("{x:e}") }
}

/// The dBase III header: version, date, record count, header and record lengths, then one
/// 32-byte descriptor per column and the terminator. Returns the record length.
fn write_dbf_header(out: &mut impl Write, columns: &[Column], records: usize) -> Result<usize, ExportError> {
    use chrono::Datelike;
    let today = chrono::Utc::now().date_naive();
    let header_len = 32 + 32 * columns.len() + 1;
    let record_len = 1 + columns.iter().map(|c| c.width).sum::<usize>();
    let mut h = vec![0u8; 32];
    h[0] = 0x03;
    h[1] = (today.year() - 1900).clamp(0, 255) as u8;
    h[2] = today.month() as u8;
    h[3] = today.day() as u8;
    h[4..8].copy_from_slice(&(records as u32).to_le_bytes());
    h[8..10].copy_from_slice(&(header_len as u16).to_le_bytes());
    h[10..12].copy_from_slice(&(record_len as u16).to_le_bytes());
    out.write_all(&h)?;
    for c in columns {
        let mut d = [0u8; 32];
        let name = c.name.as_bytes();
        d[..name.len().min(DBF_NAME_BYTES)].copy_from_slice(&name[..name.len().min(DBF_NAME_BYTES)]);
        d[11] = c.code;
        d[16] = c.width as u8;
        d[17] = c.decimals as u8;
        out.write_all(&d)?;
    }
    out.write_all(&[0x0D])?;
    Ok(record_len)
}

/// One record: the deletion flag (a space), then each value in its column: numbers right-
/// aligned, text left-aligned, padded with spaces; a null is all spaces.
fn write_dbf_record(out: &mut Vec<u8>, columns: &[Column], values: &[Value]) {
    out.push(b' ');
    for (c, v) in columns.iter().zip(values.iter().chain(std::iter::repeat(&Value::Null))) {
        let start = out.len();
        match c.kind {
            FieldType::Boolean => {
                if let Some(b) = boolean(v) {
                    out.push(if b { b'1' } else { b'0' });
                }
            }
            FieldType::Date => {
                if let Some(d) = date(v) {
                    out.extend_from_slice(d.format("%Y%m%d").to_string().as_bytes());
                }
            }
            FieldType::Integer | FieldType::Real => {
                let t = match c.kind {
                    FieldType::Integer => integer(v).map(|n| n.to_string()),
                    _ => real(v).map(real_text),
                };
                if let Some(t) = t {
                    out.extend(std::iter::repeat_n(b' ', c.width.saturating_sub(t.len())));
                    out.extend_from_slice(&t.as_bytes()[..t.len().min(c.width)]);
                }
            }
            FieldType::Text => {
                if let Some(t) = text(v) {
                    out.extend_from_slice(cut(&t, c.width).as_bytes());
                }
            }
        }
        let written = out.len() - start;
        out.extend(std::iter::repeat_n(b' ', c.width.saturating_sub(written)));
    }
}

/// The files of a zipped shapefile, by name (tests).
#[cfg(test)]
pub(crate) fn unzip(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut out = std::collections::BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).expect("an entry");
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut data).expect("readable");
        out.insert(f.name().to_string(), data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::download::{Field, Geometry, Row};
    use geo::{MultiPolygon, polygon};

    struct Areas(Vec<(MultiPolygon<f64>, Vec<Value>)>);

    impl Rows for Areas {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn visit(&self, f: &mut dyn FnMut(Row<'_>) -> Result<(), ExportError>) -> Result<(), ExportError> {
            for (mp, values) in &self.0 {
                f(Row { geometry: Geometry::MultiPolygon(mp), values })?;
            }
            Ok(())
        }
    }

    fn layer() -> LayerSchema {
        LayerSchema {
            name: "blocks".into(),
            description: "test".into(),
            geometry: GeometryType::MultiPolygon,
            fields: vec![
                Field { name: "block_id".into(), kind: FieldType::Text },
                Field { name: "residents".into(), kind: FieldType::Integer },
                Field { name: "school_readiness".into(), kind: FieldType::Real },
                Field { name: "school_readiness_date".into(), kind: FieldType::Date },
                Field { name: "covered".into(), kind: FieldType::Boolean },
            ],
        }
    }

    fn zipped(rows: &Areas) -> std::collections::BTreeMap<String, Vec<u8>> {
        let out = write_shapefile_zip(std::io::Cursor::new(Vec::new()), &layer(), rows, &OutputCrs::wgs84()).unwrap();
        unzip(out.get_ref())
    }

    #[test]
    fn outer_rings_are_clockwise_and_holes_counter_clockwise() {
        // Counter-clockwise exterior with a clockwise hole (RFC 7946 order): the shapefile
        // needs the reverse.
        let mut p = polygon![(x: 0.0, y: 0.0), (x: 4.0, y: 0.0), (x: 4.0, y: 4.0), (x: 0.0, y: 4.0), (x: 0.0, y: 0.0)];
        p.interiors_push(vec![(1.0, 1.0), (1.0, 2.0), (2.0, 2.0), (2.0, 1.0), (1.0, 1.0)]);
        let rows = Areas(vec![(
            MultiPolygon(vec![p]),
            vec!["060371".into(), 3.into(), 0.5.into(), "2025-06-01".into(), true.into()],
        )]);
        let files = zipped(&rows);
        let reader = shapefile::ShapeReader::new(std::io::Cursor::new(files["blocks.shp"].clone())).unwrap();
        let shapes = reader.read().unwrap();
        let shapefile::Shape::Polygon(poly) = &shapes[0] else { panic!("not a polygon") };
        let signed = |pts: &[Point]| pts.windows(2).map(|w| w[0].x * w[1].y - w[1].x * w[0].y).sum::<f64>() / 2.0;
        assert_eq!(poly.rings().len(), 2);
        assert!(
            matches!(poly.rings()[0], PolygonRing::Outer(_)) && signed(poly.rings()[0].points()) < 0.0,
            "outer clockwise"
        );
        assert!(
            matches!(poly.rings()[1], PolygonRing::Inner(_)) && signed(poly.rings()[1].points()) > 0.0,
            "hole counter-clockwise"
        );
        assert_eq!(
            files.keys().map(String::as_str).collect::<Vec<_>>(),
            ["blocks.cpg", "blocks.dbf", "blocks.prj", "blocks.shp", "blocks.shx"]
        );
        assert_eq!(files["blocks.cpg"], b"UTF-8");
        assert!(String::from_utf8_lossy(&files["blocks.prj"]).starts_with("GEOGCS[\"GCS_WGS_1984\""));
    }

    #[test]
    fn the_dbf_keeps_types_and_cuts_long_names_and_text() {
        let square =
            || MultiPolygon(vec![polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0), (x: 0.0, y: 0.0)]]);
        let long = "é".repeat(200); // 400 bytes
        let rows = Areas(vec![
            (square(), vec!["060371011101000".into(), 12345.into(), 0.25.into(), "2025-06-01".into(), false.into()]),
            (square(), vec![long.clone().into(), Value::Null, Value::Null, Value::Null, Value::Null]),
        ]);
        let files = zipped(&rows);
        let dbf = &files["blocks.dbf"];
        assert_eq!(u32::from_le_bytes(dbf[4..8].try_into().unwrap()), 2, "record count");
        let field = |i: usize| {
            let d = &dbf[32 + 32 * i..64 + 32 * i];
            let name = String::from_utf8_lossy(&d[..11]).trim_end_matches('\0').to_string();
            (name, d[11] as char, d[16], d[17])
        };
        assert_eq!(field(0), ("block_id".into(), 'C', 254, 0), "the widest value, cut to 254 bytes");
        assert_eq!(field(1), ("residents".into(), 'N', 5, 0));
        assert_eq!(field(2), ("school_rea".into(), 'N', 4, 2));
        assert_eq!(field(3), ("school_r_2".into(), 'D', 8, 0));
        assert_eq!(field(4), ("covered".into(), 'N', 1, 0), "booleans are 1/0");
        let header_len = usize::from(u16::from_le_bytes(dbf[8..10].try_into().unwrap()));
        let record_len = usize::from(u16::from_le_bytes(dbf[10..12].try_into().unwrap()));
        assert_eq!(record_len, 1 + 254 + 5 + 4 + 8 + 1);
        let first = &dbf[header_len..header_len + record_len];
        assert_eq!(&first[1..16], b"060371011101000", "block ids keep their leading zero");
        assert_eq!(&first[255..260], b"12345");
        assert_eq!(&first[260..264], b"0.25");
        assert_eq!(&first[264..272], b"20250601");
        assert_eq!(first[272], b'0');
        let second = &dbf[header_len + record_len..header_len + 2 * record_len];
        let text = std::str::from_utf8(&second[1..255]).expect("cut on a character boundary").trim_end();
        assert_eq!(text, "é".repeat(127));
        assert!(second[255..].iter().all(|&b| b == b' '), "nulls are blank");
        assert_eq!(dbf.last(), Some(&0x1A));
        // The zip's comment says which names were cut.
        let out = write_shapefile_zip(std::io::Cursor::new(Vec::new()), &layer(), &rows, &OutputCrs::wgs84()).unwrap();
        let zip = zip::ZipArchive::new(std::io::Cursor::new(out.into_inner())).unwrap();
        let comment = String::from_utf8_lossy(zip.comment()).to_string();
        assert!(comment.contains("school_readiness -> school_rea, school_readiness_date -> school_r_2"), "{comment}");
    }

    #[test]
    fn an_empty_selection_still_has_its_geometry_type() {
        let files = zipped(&Areas(vec![]));
        for f in ["blocks.shp", "blocks.shx"] {
            assert_eq!(i32::from_le_bytes(files[f][32..36].try_into().unwrap()), 5, "{f}: polygon");
        }
        assert_eq!(u32::from_le_bytes(files["blocks.dbf"][4..8].try_into().unwrap()), 0);
    }
}
