//! Shapefile reading: a plain `.shp` with its `.shx`, `.dbf` and `.prj` sidecars (found
//! whatever their case), or a `.zip` holding exactly one shapefile, read in memory. Returns the
//! records in the file's own CRS; [`super::blocks`] reprojects and checks them.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::{Path, PathBuf};

use ::shapefile::dbase::{self, FieldValue};
use ::shapefile::{Shape, ShapeReader, ShapeType};
use geo::{Coord, LineString};
use serde_json::Value;

use super::IngestError;
use super::source::{DeclaredCrs, SourceFeature, SourceFile, SourceGeometry};
use crate::core::Attributes;
use crate::core::text::clip_list;

/// Reads `path` (a `.shp`) and the sidecars beside it.
pub(crate) fn read_shp(path: &Path) -> Result<SourceFile, IngestError> {
    let shp = open(path)?;
    let shx = find_sidecar(path, "shx").ok_or_else(|| missing(path, ".shx"))?;
    let dbf = find_sidecar(path, "dbf").ok_or_else(|| missing(path, ".dbf"))?;
    let (features, fields) = read_parts(shp, open(&shx)?, open(&dbf)?, path)?;
    let crs = match find_sidecar(path, "prj") {
        Some(prj) => {
            let size = std::fs::metadata(&prj).map_err(|source| IngestError::Io { path: prj.clone(), source })?.len();
            if size > MAX_PRJ {
                return Err(prj_too_big(&prj, size));
            }
            let bytes = std::fs::read(&prj).map_err(|source| IngestError::Io { path: prj.clone(), source })?;
            DeclaredCrs::Prj { path: prj, wkt: String::from_utf8_lossy(&bytes).trim().to_string() }
        }
        None => DeclaredCrs::NoPrj,
    };
    Ok(SourceFile { features, fields, crs, warnings: Vec::new() })
}

/// How much a zipped shapefile may inflate to: checked while inflating, whatever the zip says,
/// so a small zip of zeros (a decompression bomb) is refused before it takes the memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipLimits {
    /// Largest uncompressed size of one file of the zip, in bytes.
    pub entry: u64,
    /// Largest uncompressed size of every file read from the zip together, in bytes.
    pub total: u64,
}

impl ZipLimits {
    /// Default [`ZipLimits::entry`]: 512 MiB, about ten times the `.shp` of Los Angeles County's
    /// ~110,000 census blocks (a TIGER block file holds ~420 bytes per block).
    pub const ENTRY: u64 = 512 * 1024 * 1024;
    /// Default [`ZipLimits::total`]: 1 GiB.
    pub const TOTAL: u64 = 1024 * 1024 * 1024;
}

impl Default for ZipLimits {
    fn default() -> Self {
        ZipLimits { entry: ZipLimits::ENTRY, total: ZipLimits::TOTAL }
    }
}

/// Bytes as the largest whole unit (for messages).
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            let v = n as f64 / size as f64;
            return if v.fract() == 0.0 { format!("{v:.0} {unit}") } else { format!("{v:.1} {unit}") };
        }
    }
    format!("{n} bytes")
}

/// Largest `.prj` read: a CRS definition is a few hundred bytes; anything this large is not one
/// (and would only be quoted back in the error).
const MAX_PRJ: u64 = 1 << 20;

fn prj_too_big(path: &Path, size: u64) -> IngestError {
    format_error(
        path,
        format!("the .prj is {}, which is not a CRS definition (those are a few hundred bytes)", human_bytes(size)),
    )
}

/// Reads the one shapefile inside the zip at `path`, possibly in a folder of the zip.
pub(crate) fn read_zip(path: &Path, limits: ZipLimits) -> Result<SourceFile, IngestError> {
    let bytes = std::fs::read(path).map_err(|source| IngestError::Io { path: path.to_path_buf(), source })?;
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| format_error(path, format!("not a readable zip archive: {e}")))?;
    let names: Vec<String> = (0..archive.len())
        .filter_map(|i| archive.name_for_index(i).map(str::to_string))
        .filter(|n| !n.ends_with('/') && !n.starts_with("__MACOSX/") && !base_name(n).starts_with("._"))
        .collect();
    let shps: Vec<&String> = names.iter().filter(|n| has_extension(n, "shp")).collect();
    let shp_name = match shps.as_slice() {
        [one] => (*one).clone(),
        [] => {
            let found = if names.is_empty() { "nothing".to_string() } else { clip_list(&names) };
            return Err(format_error(path, format!("the zip holds no .shp file (it contains: {found})")));
        }
        several => {
            return Err(format_error(
                path,
                format!(
                    "the zip holds {} shapefiles ({}); it must hold exactly one, so unzip it and import one .shp",
                    several.len(),
                    clip_list(several)
                ),
            ));
        }
    };
    let shown = path.join(&shp_name);
    let stem = &shp_name[..shp_name.len() - 4];
    // Same folder and stem, extension in any case; an exact stem wins over one in another case.
    let sidecar = |ext: &str| -> Option<String> {
        let candidates = || {
            names.iter().filter(|n| n.len() == shp_name.len() && has_extension(n, ext)).map(|n| (n, &n[..n.len() - 4]))
        };
        let exact = candidates().find(|(_, s)| *s == stem);
        exact.or_else(|| candidates().find(|(_, s)| s.eq_ignore_ascii_case(stem))).map(|(n, _)| n.clone())
    };
    let shx_name = sidecar("shx").ok_or_else(|| missing(&shown, ".shx"))?;
    let dbf_name = sidecar("dbf").ok_or_else(|| missing(&shown, ".dbf"))?;
    let prj_name = sidecar("prj");

    let mut inflated: u64 = 0;
    let mut entry = |name: &str, prj: bool| -> Result<Vec<u8>, IngestError> {
        let file =
            archive.by_name(name).map_err(|e| format_error(path, format!("cannot read {name} from the zip: {e}")))?;
        if prj && file.size() > MAX_PRJ {
            return Err(prj_too_big(&path.join(name), file.size()));
        }
        let entry_limit = limits.entry.min(limits.total.saturating_sub(inflated));
        let too_big = |size: Option<u64>| {
            let reason = if limits.entry <= limits.total.saturating_sub(inflated) {
                let size = size.map_or(String::new(), |s| format!(" {},", human_bytes(s)));
                format!(
                    "{name} inflates to{size} more than the limit of {} for one file of a zip \
                     (--max-unzipped-entry); nothing was imported",
                    human_bytes(limits.entry)
                )
            } else {
                format!(
                    "the files read from the zip inflate to more than the limit of {} for all of them \
                     together (--max-unzipped), at {name}; nothing was imported",
                    human_bytes(limits.total)
                )
            };
            format_error(path, reason)
        };
        // The size the zip declares is checked first (cheap), and the inflated bytes counted
        // (the declaration may lie).
        if file.size() > entry_limit {
            return Err(too_big(Some(file.size())));
        }
        let mut buf = Vec::with_capacity(file.size().min(entry_limit).min(64 << 20) as usize);
        let read_limit = if prj { entry_limit.min(MAX_PRJ) } else { entry_limit };
        file.take(read_limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| format_error(path, format!("cannot read {name} from the zip: {e}")))?;
        if prj && buf.len() as u64 > MAX_PRJ {
            return Err(prj_too_big(&path.join(name), buf.len() as u64));
        }
        if buf.len() as u64 > entry_limit {
            return Err(too_big(None));
        }
        inflated += buf.len() as u64;
        Ok(buf)
    };
    let shp = Cursor::new(entry(&shp_name, false)?);
    let shx = Cursor::new(entry(&shx_name, false)?);
    let dbf = Cursor::new(entry(&dbf_name, false)?);
    let crs = match prj_name {
        Some(name) => {
            let wkt = String::from_utf8_lossy(&entry(&name, true)?).trim().to_string();
            DeclaredCrs::Prj { path: path.join(name), wkt }
        }
        None => DeclaredCrs::NoPrj,
    };
    let (features, fields) = read_parts(shp, shx, dbf, &shown)?;
    Ok(SourceFile { features, fields, crs, warnings: Vec::new() })
}

/// Reads the shapes and records, checks they pair up, and turns them into source features.
fn read_parts<R: Read + Seek>(
    mut shp: R,
    mut shx: R,
    dbf: R,
    shown: &Path,
) -> Result<(Vec<SourceFeature>, Vec<String>), IngestError> {
    check_counts(&mut shp, &mut shx, shown)?;
    let mut shapes = ShapeReader::with_shx(shp, shx)
        .map_err(|e| format_error(shown, format!("not a readable shapefile (.shp or .shx): {e}")))?;
    let shape_type = shapes.header().shape_type;
    if !matches!(shape_type, ShapeType::Polygon | ShapeType::PolygonM | ShapeType::PolygonZ) {
        return Err(format_error(
            shown,
            format!("shape type {shape_type} is not supported for blocks; expected Polygon"),
        ));
    }
    // Code pages other than UTF-8 need an optional dbase feature: decode lossily instead of
    // refusing the whole file (ids and numbers are ASCII anyway).
    let mut table = dbase::ReaderBuilder::new()
        .with_encoding(dbase::UnicodeLossy)
        .build(dbf)
        .map_err(|e| format_error(shown, format!("the .dbf cannot be read: {e}")))?;
    let fields: Vec<String> = table.fields().iter().map(|f| f.name().to_string()).collect();

    let mut geometries = Vec::new();
    for (i, shape) in shapes.iter_shapes().enumerate() {
        let shape = shape.map_err(|e| {
            format_error(shown, format!("record {} cannot be read (the .shp is truncated or corrupt): {e}", i + 1))
        })?;
        geometries.push(to_source_geometry(shape));
    }
    let mut records = Vec::with_capacity(geometries.len());
    for (i, record) in table.iter_records().enumerate() {
        let mut record =
            record.map_err(|e| format_error(shown, format!(".dbf record {} cannot be read: {e}", i + 1)))?;
        let mut properties = Attributes::new();
        for name in &fields {
            let value = record.remove(name).map_or(Value::Null, |v| field_to_json(&v));
            properties.insert(name.clone(), value);
        }
        records.push(properties);
    }
    if geometries.len() != records.len() {
        return Err(format_error(
            shown,
            format!(
                "the .shp has {} shapes but the .dbf has {} records; the files do not belong together or one is truncated",
                geometries.len(),
                records.len()
            ),
        ));
    }
    let features = geometries
        .into_iter()
        .zip(records)
        .enumerate()
        .map(|(i, (geometry, properties))| SourceFeature { number: i + 1, geometry, properties, feature_id: None })
        .collect();
    Ok((features, fields))
}

/// Refuses an index or a record whose counts the files cannot hold, before the `shapefile` crate
/// reserves memory from them: it sizes the index from the `.shx` header and each record's
/// part and point lists from the record's counts, so a 1 KiB file claiming 2^31 points would
/// ask for 32 GiB. Every index entry must point inside the `.shp`, and every record's parts
/// and points must fit in its content length (which must fit in the file). Leaves both
/// readers at their start.
fn check_counts<R: Read + Seek>(shp: &mut R, shx: &mut R, shown: &Path) -> Result<(), IngestError> {
    use std::io::SeekFrom;
    let io = |e: std::io::Error| format_error(shown, format!("cannot read the .shp or .shx: {e}"));
    let shp_len = shp.seek(SeekFrom::End(0)).map_err(io)?;
    let shx_len = shx.seek(SeekFrom::End(0)).map_err(io)?;
    const HEADER: u64 = 100;
    let be = |b: &[u8]| i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let le = |b: &[u8]| i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let mut header = [0u8; HEADER as usize];
    shx.seek(SeekFrom::Start(0)).map_err(io)?;
    if shx_len < HEADER || shx.read_exact(&mut header).is_err() {
        return Err(format_error(shown, format!("the .shx is {shx_len} bytes, shorter than a shapefile header")));
    }
    // The header counts 16-bit words; the crate reads that many bytes of index.
    let declared = 2 * i64::from(be(&header[24..28]));
    if declared < HEADER as i64 || declared as u64 > shx_len {
        return Err(format_error(
            shown,
            format!(
                "the .shx header says the file is {declared} bytes, but it is {shx_len}; it is truncated or corrupt"
            ),
        ));
    }
    let entries = (declared as u64 - HEADER) / 8;
    let mut entry = [0u8; 8];
    let mut pos = shp_len;
    // Record number, content length, shape type, bounding box (or x, y), then counts.
    let mut head = [0u8; 8 + 4 + 32 + 8];
    for i in 0..entries {
        let record = i + 1;
        shx.read_exact(&mut entry).map_err(io)?;
        let offset = 2 * i64::from(be(&entry[0..4]));
        if offset < HEADER as i64 || offset as u64 + 8 > shp_len {
            return Err(format_error(
                shown,
                format!("record {record}: the .shx puts it at byte {offset}, outside the .shp ({shp_len} bytes)"),
            ));
        }
        // Relative: a `BufReader` keeps its buffer, and records are usually in order.
        shp.seek_relative(offset - pos as i64).map_err(io)?;
        let n = read_up_to(shp, &mut head).map_err(io)?;
        pos = offset as u64 + n as u64;
        let content = 2 * i64::from(be(&head[4..8]));
        if content < 0 || offset as u64 + 8 + content as u64 > shp_len {
            return Err(format_error(
                shown,
                format!(
                    "record {record}: its length ({content} bytes) runs past the end of the .shp ({shp_len} bytes); \
                     the file is truncated or corrupt"
                ),
            ));
        }
        if n < 12 {
            continue; // too short for a shape type: the crate reports it
        }
        // Bytes the counts need beyond the fixed part: 4 per part index (8 for a multipatch,
        // which adds part types), 16 per point (x and y; Z and M only add to it).
        let (fixed, per_part, counts) = match le(&head[8..12]) {
            3 | 5 | 13 | 15 | 23 | 25 => (44, 4, Some((le(&head[44..48]), le(&head[48..52])))),
            31 => (44, 8, Some((le(&head[44..48]), le(&head[48..52])))),
            8 | 18 | 28 => (40, 0, Some((0, le(&head[44..48])))),
            _ => (0, 0, None),
        };
        let Some((parts, points)) = counts else { continue };
        let needed = fixed + per_part * i64::from(parts) + 16 * i64::from(points);
        if n < 8 + fixed as usize || parts < 0 || points < 0 || needed > content {
            return Err(format_error(
                shown,
                format!(
                    "record {record} claims {parts} part(s) and {points} point(s), which do not fit in its {content} bytes; \
                     the .shp is corrupt"
                ),
            ));
        }
        // A part runs from its index to the next one (the last to `points`): an index out of
        // order or past `points` would make one part longer than the record.
        let mut previous = 0;
        let mut index = [0u8; 4];
        for part in 0..parts {
            shp.read_exact(&mut index).map_err(io)?;
            let start = le(&index);
            if start < previous || start > points {
                return Err(format_error(
                    shown,
                    format!(
                        "record {record}: part {} starts at point {start}, outside 0..{points} or before the part \
                         ahead of it; the .shp is corrupt",
                        part + 1
                    ),
                ));
            }
            previous = start;
        }
        pos += 4 * parts as u64;
    }
    shp.seek(SeekFrom::Start(0)).map_err(io)?;
    shx.seek(SeekFrom::Start(0)).map_err(io)?;
    Ok(())
}

/// Fills `buf` as far as the reader goes; the number of bytes read.
fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn to_source_geometry(shape: Shape) -> SourceGeometry {
    fn rings<P>(rings: &[::shapefile::PolygonRing<P>], xy: impl Fn(&P) -> Coord<f64>) -> SourceGeometry {
        SourceGeometry::Rings(rings.iter().map(|r| LineString::new(r.points().iter().map(&xy).collect())).collect())
    }
    match shape {
        Shape::NullShape => SourceGeometry::Empty,
        Shape::Polygon(p) => rings(p.rings(), |pt| Coord { x: pt.x, y: pt.y }),
        Shape::PolygonM(p) => rings(p.rings(), |pt| Coord { x: pt.x, y: pt.y }),
        Shape::PolygonZ(p) => rings(p.rings(), |pt| Coord { x: pt.x, y: pt.y }),
        other => SourceGeometry::Unsupported(other.shapetype().to_string()),
    }
}

/// A dbf value as JSON: Character → trimmed string, Numeric/Float → number (an integer when
/// integral), Logical → bool, Date → "YYYY-MM-DD", empty → null.
pub(crate) fn field_to_json(value: &FieldValue) -> Value {
    match value {
        FieldValue::Character(Some(s)) | FieldValue::Memo(s) => {
            let s = s.trim();
            if s.is_empty() { Value::Null } else { Value::String(s.to_string()) }
        }
        FieldValue::Numeric(Some(n)) | FieldValue::Double(n) | FieldValue::Currency(n) => number(*n),
        // Through text, so that 0.1f32 stays 0.1 and does not become 0.10000000149011612.
        FieldValue::Float(Some(f)) => number(f.to_string().parse().unwrap_or(f64::from(*f))),
        FieldValue::Integer(i) => Value::from(*i),
        FieldValue::Logical(Some(b)) => Value::Bool(*b),
        FieldValue::Date(Some(d)) => Value::String(format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())),
        FieldValue::DateTime(dt) => {
            let (d, t) = (dt.date(), dt.time());
            Value::String(format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                d.year(),
                d.month(),
                d.day(),
                t.hours(),
                t.minutes(),
                t.seconds()
            ))
        }
        FieldValue::Character(None)
        | FieldValue::Numeric(None)
        | FieldValue::Float(None)
        | FieldValue::Logical(None)
        | FieldValue::Date(None) => Value::Null,
    }
}

/// 2^53: integers up to here are exact in an f64.
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() <= EXACT_INT {
        #[allow(clippy::cast_possible_truncation)]
        return Value::from(n as i64);
    }
    serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
}

/// The sidecar with extension `ext` beside `shp`: same stem, extension in any case (an exact
/// stem match wins over a case-insensitive one).
fn find_sidecar(shp: &Path, ext: &str) -> Option<PathBuf> {
    let stem = shp.file_stem()?.to_str()?;
    let dir = match shp.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        let exact = shp.with_extension(ext);
        return exact.exists().then_some(exact);
    };
    let mut loose = None;
    for entry in entries.flatten() {
        let path = entry.path();
        let (Some(s), Some(e)) = (path.file_stem().and_then(|s| s.to_str()), path.extension().and_then(|e| e.to_str()))
        else {
            continue;
        };
        if !e.eq_ignore_ascii_case(ext) {
            continue;
        }
        if s == stem {
            return Some(dir.join(entry.file_name()));
        }
        if s.eq_ignore_ascii_case(stem) && loose.is_none() {
            loose = Some(dir.join(entry.file_name()));
        }
    }
    loose
}

fn open(path: &Path) -> Result<BufReader<File>, IngestError> {
    File::open(path).map(BufReader::new).map_err(|source| IngestError::Io { path: path.to_path_buf(), source })
}

fn missing(path: &Path, what: &str) -> IngestError {
    IngestError::MissingSidecar { path: path.to_path_buf(), what: what.to_string() }
}

fn format_error(path: &Path, reason: String) -> IngestError {
    IngestError::Format { path: path.to_path_buf(), reason }
}

fn has_extension(name: &str, ext: &str) -> bool {
    name.len() > ext.len() + 1
        && name.as_bytes()[name.len() - ext.len() - 1] == b'.'
        && name[name.len() - ext.len()..].eq_ignore_ascii_case(ext)
}

fn base_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ingest::blocks::{BlockReadOptions, read_blocks};
    use ::shapefile::{Point, Polygon, PolygonRing, Writer};
    use dbase::{FieldName, Record, TableWriterBuilder};
    use std::io::Write;

    /// The LA tracts' ESRI WKT (California State Plane zone V, US feet).
    const STATE_PLANE_V_PRJ: &str = r#"PROJCS["NAD_1983_StatePlane_California_V_FIPS_0405_Feet",GEOGCS["GCS_North_American_1983",DATUM["D_North_American_1983",SPHEROID["GRS_1980",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Lambert_Conformal_Conic"],PARAMETER["False_Easting",6561666.667],PARAMETER["False_Northing",1640416.667],PARAMETER["Central_Meridian",-118.0],PARAMETER["Standard_Parallel_1",35.4666666666667],PARAMETER["Standard_Parallel_2",34.0333333333333],PARAMETER["Latitude_Of_Origin",33.5],UNIT["US survey foot",0.304800609601219]]"#;
    const WGS84_PRJ: &str = r#"GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]"#;

    /// Ring points of an axis-aligned square; the tag sets the winding the writer uses
    /// (Outer: clockwise, Inner: counter-clockwise).
    fn square(x: f64, y: f64, s: f64) -> Vec<Point> {
        vec![Point::new(x, y), Point::new(x, y + s), Point::new(x + s, y + s), Point::new(x + s, y), Point::new(x, y)]
    }

    fn outer(x: f64, y: f64, s: f64) -> PolygonRing<Point> {
        PolygonRing::Outer(square(x, y, s))
    }

    fn hole(x: f64, y: f64, s: f64) -> PolygonRing<Point> {
        PolygonRing::Inner(square(x, y, s))
    }

    /// A block fixture: (GEOID20, rings). Near Children's Bureau HQ in lon/lat by default.
    struct Fixture {
        rows: Vec<(&'static str, Vec<PolygonRing<Point>>)>,
        prj: Option<&'static str>,
    }

    impl Fixture {
        fn lonlat(rows: Vec<(&'static str, Vec<PolygonRing<Point>>)>) -> Fixture {
            Fixture { rows, prj: Some(WGS84_PRJ) }
        }

        fn write(&self, dir: &Path, name: &str) -> PathBuf {
            let path = dir.join(name);
            let table = TableWriterBuilder::new()
                .add_character_field(FieldName::try_from("GEOID20").unwrap(), 15)
                .add_character_field(FieldName::try_from("NAME20").unwrap(), 20)
                .add_numeric_field(FieldName::try_from("ALAND20").unwrap(), 14, 0)
                .add_numeric_field(FieldName::try_from("SHARE").unwrap(), 8, 2);
            let mut writer = Writer::from_path(&path, table).unwrap();
            for (i, (id, rings)) in self.rows.iter().enumerate() {
                let mut record = Record::default();
                let id = (!id.is_empty()).then(|| id.to_string());
                record.insert("GEOID20".into(), FieldValue::Character(id));
                record.insert("NAME20".into(), FieldValue::Character(Some(format!("Block {}", 1000 + i))));
                record.insert("ALAND20".into(), FieldValue::Numeric(Some(12_345.0)));
                record.insert("SHARE".into(), FieldValue::Numeric(Some(0.25)));
                writer.write_shape_and_record(&Polygon::with_rings(rings.clone()), &record).unwrap();
            }
            drop(writer);
            if let Some(prj) = self.prj {
                std::fs::write(path.with_extension("prj"), prj).unwrap();
            }
            path
        }
    }

    fn hq(dx: f64) -> f64 {
        -118.29 + dx
    }

    fn simple(n: usize) -> Fixture {
        const IDS: [&str; 3] = ["060372241101000", "060372241101001", "060372241101002"];
        Fixture::lonlat((0..n).map(|i| (IDS[i], vec![outer(hq(0.01 * i as f64), 34.04, 0.005)])).collect())
    }

    fn read_all(path: &Path) -> Result<crate::ingest::blocks::BlockRead, IngestError> {
        read_blocks(path, &BlockReadOptions::default())
    }

    fn read_skipping(path: &Path) -> crate::ingest::blocks::BlockRead {
        read_blocks(path, &BlockReadOptions { skip_invalid: true, ..Default::default() }).unwrap()
    }

    #[test]
    fn reads_blocks_with_holes_and_multipolygons() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = Fixture::lonlat(vec![
            ("060372241101000", vec![outer(hq(0.0), 34.04, 0.01), hole(hq(0.002), 34.042, 0.002)]),
            // Shuffled: a hole first, then two exteriors.
            (
                "060372241101001",
                vec![hole(hq(0.022), 34.042, 0.002), outer(hq(0.04), 34.04, 0.005), outer(hq(0.02), 34.04, 0.01)],
            ),
        ]);
        let read = read_all(&fixture.write(dir.path(), "blocks.shp")).unwrap();
        assert_eq!(read.id_field, "GEOID20");
        assert_eq!(read.name_field.as_deref(), Some("NAME20"));
        assert_eq!(read.crs, "GCS_WGS_1984");
        assert!(read.warnings.is_empty(), "{:?}", read.warnings);
        assert_eq!(read.blocks.len(), 2);
        let a = &read.blocks[0];
        assert_eq!(a.id, "060372241101000");
        assert_eq!(a.name.as_deref(), Some("Block 1000"));
        assert_eq!(a.geometry.0.len(), 1);
        assert_eq!(a.geometry.0[0].interiors().len(), 1);
        assert_eq!(a.attributes["ALAND20"], serde_json::json!(12345));
        assert_eq!(a.attributes["SHARE"], serde_json::json!(0.25));
        assert!(!a.attributes.contains_key("GEOID20") && !a.attributes.contains_key("NAME20"));
        let b = &read.blocks[1];
        assert_eq!(b.geometry.0.len(), 2);
        let holes: Vec<usize> = b.geometry.0.iter().map(|p| p.interiors().len()).collect();
        assert_eq!(holes, [0, 1], "exteriors in file order, the hole in the big one");
        use geo::Winding;
        for p in read.blocks.iter().flat_map(|b| &b.geometry.0) {
            assert!(p.exterior().is_ccw() && p.interiors().iter().all(|h| h.is_cw()), "RFC 7946 winding");
        }
    }

    #[test]
    fn reprojects_from_the_prj() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = Fixture {
            rows: vec![("060372241101000", vec![outer(6_480_000.0, 1_840_000.0, 500.0)])],
            prj: Some(STATE_PLANE_V_PRJ),
        };
        let read = read_all(&fixture.write(dir.path(), "sp.shp")).unwrap();
        assert_eq!(read.crs, "NAD_1983_StatePlane_California_V_FIPS_0405_Feet");
        // GDAL/PostGIS reference from ../shared/data/README.md.
        let corner = read.blocks[0].geometry.0[0].exterior().0[0];
        assert!((corner.x - -118.2695921).abs() < 1e-6 && (corner.y - 34.0481104).abs() < 1e-6, "{corner:?}");

        let given =
            BlockReadOptions { source_crs: Some(crate::ingest::Crs::from_epsg(2229).unwrap()), ..Default::default() };
        let mut bad_prj = fixture;
        bad_prj.prj = Some("PROJCS[\"made up\",PROJECTION[\"Nonsense\"]]");
        let path = bad_prj.write(dir.path(), "bad.shp");
        let err = read_all(&path).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, IngestError::Crs { .. }), "{msg}");
        assert!(msg.contains("PROJECTION[\"Nonsense\"]") && msg.contains("--source-crs EPSG:NNNN"), "{msg}");
        // --source-crs overrides the unusable .prj.
        let read = read_blocks(&path, &given).unwrap();
        assert_eq!(read.crs, "EPSG:2229");
    }

    #[test]
    fn missing_prj_lonlat_warns_projected_fails() {
        let dir = tempfile::tempdir().unwrap();
        let mut lonlat = simple(1);
        lonlat.prj = None;
        let read = read_all(&lonlat.write(dir.path(), "ll.shp")).unwrap();
        assert_eq!(read.crs, "EPSG:4326");
        assert_eq!(read.warnings, ["no .prj beside it: coordinates look like lon/lat, assuming WGS84 (EPSG:4326)"]);

        let projected =
            Fixture { rows: vec![("060372241101000", vec![outer(6_480_000.0, 1_840_000.0, 500.0)])], prj: None };
        let err = read_all(&projected.write(dir.path(), "xy.shp")).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, IngestError::Crs { .. }), "{msg}");
        assert!(msg.contains("no .prj") && msg.contains("--source-crs EPSG:NNNN"), "{msg}");
    }

    #[test]
    fn invalid_features_are_all_reported() {
        let dir = tempfile::tempdir().unwrap();
        let bowtie = vec![
            Point::new(hq(0.0), 34.0),
            Point::new(hq(0.01), 34.01),
            Point::new(hq(0.01), 34.0),
            Point::new(hq(0.0), 34.01),
            Point::new(hq(0.0), 34.0),
        ];
        let mut nan = square(hq(0.02), 34.0, 0.01);
        nan[2] = Point::new(f64::NAN, 34.01);
        let fixture = Fixture::lonlat(vec![
            ("060370000001000", vec![outer(hq(0.0), 34.04, 0.01)]),
            ("060370000001001", vec![PolygonRing::Outer(bowtie)]),
            ("060370000001002", vec![PolygonRing::Outer(nan)]),
            ("060370000001000", vec![outer(hq(0.05), 34.04, 0.01)]),
            ("", vec![outer(hq(0.07), 34.04, 0.01)]),
            ("060370000001005", vec![outer(hq(0.09), 34.04, 0.01)]),
        ]);
        let path = fixture.write(dir.path(), "bad.shp");
        let Err(IngestError::Invalid { rejections, .. }) = read_all(&path) else { panic!("expected Invalid") };
        let got: Vec<(&str, Option<&str>, &str)> =
            rejections.iter().map(|r| (r.location.as_str(), r.field.as_deref(), r.reason.as_str())).collect();
        assert_eq!(got.len(), 4, "{got:#?}");
        assert_eq!(got[0].0, "feature 2");
        assert!(got[0].2.starts_with("ring self-intersects near (-118.285000, 34.005000)"), "{got:?}");
        assert_eq!(got[1].0, "feature 3");
        assert!(got[1].2.contains("not a finite number (NaN"), "{got:?}");
        assert_eq!(
            got[2],
            ("feature 4", Some("GEOID20"), "duplicate block id '060370000001000' (first seen at feature 1)")
        );
        assert_eq!(got[3], ("feature 5", Some("GEOID20"), "missing block id"));
        assert!(rejections[0].file.ends_with("bad.shp"));

        let read = read_skipping(&path);
        let ids: Vec<&str> = read.blocks.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["060370000001000", "060370000001005"]);
        assert_eq!(read.rejected, rejections);
    }

    #[test]
    fn out_of_range_after_reprojection_names_the_crs() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = Fixture {
            rows: vec![("1", vec![outer(200.0, 10.0, 1.0)]), ("2", vec![outer(10.0, 10.0, 1.0)])],
            prj: Some(WGS84_PRJ),
        };
        let read = read_skipping(&fixture.write(dir.path(), "far.shp"));
        assert_eq!(read.blocks.len(), 1);
        let reason = &read.rejected[0].reason;
        assert!(reason.contains("(200.000000, 10.000000)") && reason.contains("CRS may be wrong"), "{reason}");
    }

    #[test]
    fn null_shape_is_an_empty_geometry_rejection() {
        let dir = tempfile::tempdir().unwrap();
        let path = simple(2).write(dir.path(), "null.shp");
        // Turn record 2 into a null shape: its offset (16-bit words) is in the .shx.
        let shx = std::fs::read(path.with_extension("shx")).unwrap();
        let words = i32::from_be_bytes(shx[108..112].try_into().unwrap());
        let mut shp = std::fs::read(&path).unwrap();
        let at = usize::try_from(words).unwrap() * 2 + 8;
        shp[at..at + 4].copy_from_slice(&0_i32.to_le_bytes());
        std::fs::write(&path, shp).unwrap();
        let read = read_skipping(&path);
        assert_eq!(read.blocks.len(), 1);
        assert_eq!(read.rejected[0].location, "feature 2");
        assert_eq!(read.rejected[0].reason, "empty geometry");
    }

    #[test]
    fn numeric_ids_are_strings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("num.shp");
        let table = TableWriterBuilder::new().add_numeric_field(FieldName::try_from("BLOCK_ID").unwrap(), 18, 0);
        let mut writer = Writer::from_path(&path, table).unwrap();
        for (i, id) in [123.0, 60_371_011_101_000.0].into_iter().enumerate() {
            let mut record = Record::default();
            record.insert("BLOCK_ID".into(), FieldValue::Numeric(Some(id)));
            writer.write_shape_and_record(&Polygon::new(outer(hq(0.01 * i as f64), 34.0, 0.005)), &record).unwrap();
        }
        drop(writer);
        let read = read_all(&path).unwrap();
        assert_eq!(read.id_field, "BLOCK_ID");
        let ids: Vec<&str> = read.blocks.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["123", "60371011101000"]);
        assert!(read.name_field.is_none());
    }

    #[test]
    fn id_field_option() {
        let dir = tempfile::tempdir().unwrap();
        let path = simple(1).write(dir.path(), "b.shp");
        let opts = BlockReadOptions {
            id_field: Some("name20".into()),
            name_field: Some("GEOID20".into()),
            ..Default::default()
        };
        let read = read_blocks(&path, &opts).unwrap();
        assert_eq!(
            (read.blocks[0].id.as_str(), read.blocks[0].name.as_deref()),
            ("Block 1000", Some("060372241101000"))
        );
        let opts = BlockReadOptions { id_field: Some("TRACT".into()), ..Default::default() };
        let msg = read_blocks(&path, &opts).unwrap_err().to_string();
        assert!(msg.contains("\"TRACT\"") && msg.contains("GEOID20, NAME20, ALAND20, SHARE"), "{msg}");
    }

    #[test]
    fn sidecars_any_case_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = simple(1).write(dir.path(), "upper.shp");
        for ext in ["shp", "shx", "dbf", "prj"] {
            std::fs::rename(path.with_extension(ext), path.with_extension(ext.to_uppercase())).unwrap();
        }
        let upper = path.with_extension("SHP");
        assert_eq!(read_all(&upper).unwrap().blocks.len(), 1);

        std::fs::remove_file(path.with_extension("DBF")).unwrap();
        match read_all(&upper) {
            Err(IngestError::MissingSidecar { what, .. }) => assert_eq!(what, ".dbf"),
            other => panic!("expected MissingSidecar, got {other:?}"),
        }
        let path = simple(1).write(dir.path(), "noshx.shp");
        std::fs::remove_file(path.with_extension("shx")).unwrap();
        assert!(matches!(read_all(&path), Err(IngestError::MissingSidecar { what, .. }) if what == ".shx"));
        assert!(matches!(read_all(&dir.path().join("absent.shp")), Err(IngestError::Io { .. })));
    }

    #[test]
    fn truncated_shp_is_a_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = simple(3).write(dir.path(), "cut.shp");
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 30).unwrap();
        let err = read_all(&path).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, IngestError::Format { .. }), "{msg}");
        assert!(msg.contains("cut.shp") && msg.contains("record 3") && msg.contains("truncated"), "{msg}");

        // A header cut short, and something that is not a shapefile at all.
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(50).unwrap();
        assert!(matches!(read_all(&path), Err(IngestError::Format { .. })));
        std::fs::write(
            &path,
            b"this is not a shapefile, it is text that is long enough to fill a header of 100 bytes ......",
        )
        .unwrap();
        assert!(matches!(read_all(&path), Err(IngestError::Format { .. })));
    }

    #[test]
    fn point_shapefile_is_refused_for_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("points.shp");
        let table = TableWriterBuilder::new().add_character_field(FieldName::try_from("GEOID20").unwrap(), 15);
        let mut writer = Writer::from_path(&path, table).unwrap();
        let mut record = Record::default();
        record.insert("GEOID20".into(), FieldValue::Character(Some("1".into())));
        writer.write_shape_and_record(&Point::new(-118.0, 34.0), &record).unwrap();
        drop(writer);
        let msg = read_all(&path).unwrap_err().to_string();
        assert!(msg.contains("shape type Point is not supported for blocks; expected Polygon"), "{msg}");
    }

    fn zip_of(dir: &Path, name: &str, entries: &[(&str, &[u8])]) -> PathBuf {
        let path = dir.join(name);
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    /// Issue 12: a 1.2 MB zip holding a 1.2 GiB `.shp` of zeros took the server to 2.65 GB
    /// before it answered. The limits are checked while inflating, also when the zip lies about
    /// the sizes.
    #[test]
    fn zip_bombs_are_refused_while_inflating() {
        let dir = tempfile::tempdir().unwrap();
        let shp = simple(2).write(dir.path(), "blocks.shp");
        let part = |ext: &str| std::fs::read(shp.with_extension(ext)).unwrap();
        let zeros = vec![0u8; 8 << 20];
        let bomb =
            zip_of(dir.path(), "bomb.zip", &[("a.shp", &zeros), ("a.shx", &part("shx")), ("a.dbf", &part("dbf"))]);
        assert!(std::fs::metadata(&bomb).unwrap().len() < 100_000, "8 MiB of zeros deflate to a few KB");
        let small = ZipLimits { entry: 1 << 20, total: 4 << 20 };
        let read = |path: &Path, zip: ZipLimits| read_blocks(path, &BlockReadOptions { zip, ..Default::default() });
        let msg = read(&bomb, small).unwrap_err().to_string();
        assert!(
            msg.contains(
                "a.shp inflates to 8 MiB, more than the limit of 1 MiB for one file of a zip (--max-unzipped-entry)"
            ),
            "{msg}"
        );
        // Each file under the entry limit, together over the total.
        let total = ZipLimits { entry: 8 << 20, total: (8 << 20) + 100 };
        let msg = read(&bomb, total).unwrap_err().to_string();
        assert!(
            msg.contains("inflate to more than the limit of 8.0 MiB for all of them together (--max-unzipped)"),
            "{msg}"
        );
        // A zip that declares 100 bytes for its 8 MiB entry is stopped at the limit too.
        let mut bytes = std::fs::read(&bomb).unwrap();
        let mut patched = 0;
        for (signature, at) in [([0x50u8, 0x4b, 0x03, 0x04], 22), ([0x50, 0x4b, 0x01, 0x02], 24)] {
            if let Some(i) = bytes.windows(4).position(|w| w == signature) {
                bytes[i + at..i + at + 4].copy_from_slice(&100u32.to_le_bytes());
                patched += 1;
            }
        }
        assert_eq!(patched, 2);
        let liar = dir.path().join("liar.zip");
        std::fs::write(&liar, bytes).unwrap();
        let msg = read(&liar, small).unwrap_err().to_string();
        assert!(msg.contains("a.shp inflates to more than the limit of 1 MiB"), "{msg}");
        // The defaults read a real zipped shapefile.
        let ok =
            zip_of(dir.path(), "ok.zip", &[("a.shp", &part("shp")), ("a.shx", &part("shx")), ("a.dbf", &part("dbf"))]);
        assert_eq!(read(&ok, ZipLimits::default()).unwrap().blocks.len(), 2);
    }

    /// Issue 12: a 130 KB zip whose `.prj` is 100 MiB of zeros got a 629 MB problem+json
    /// quoting the whole `.prj`; a short bad `.prj` is quoted cut short, control characters
    /// escaped.
    #[test]
    fn errors_do_not_echo_a_huge_prj() {
        let dir = tempfile::tempdir().unwrap();
        let shp = simple(1).write(dir.path(), "blocks.shp");
        let part = |ext: &str| std::fs::read(shp.with_extension(ext)).unwrap();
        let huge = vec![0u8; 100 << 20];
        let zip = zip_of(
            dir.path(),
            "prj.zip",
            &[("a.shp", &part("shp")), ("a.shx", &part("shx")), ("a.dbf", &part("dbf")), ("a.prj", &huge)],
        );
        let msg = read_all(&zip).unwrap_err().to_string();
        assert!(msg.contains("the .prj is 100 MiB, which is not a CRS definition") && msg.len() < 400, "{msg}");
        std::fs::write(shp.with_extension("prj"), &huge).unwrap();
        let msg = read_all(&shp).unwrap_err().to_string();
        assert!(msg.contains("the .prj is 100 MiB") && msg.len() < 400, "{msg}");
        let mut bad = b"PROJCS[\"x\"\x01".to_vec();
        bad.extend(std::iter::repeat_n(b'y', 50_000));
        std::fs::write(shp.with_extension("prj"), &bad).unwrap();
        let msg = read_all(&shp).unwrap_err().to_string();
        assert!(
            msg.len() < 1_000 && msg.contains("(50011 characters)") && !msg.contains('\u{1}'),
            "{} bytes: {}",
            msg.len(),
            &msg[..300.min(msg.len())]
        );
    }

    #[test]
    fn reads_a_zipped_shapefile() {
        let dir = tempfile::tempdir().unwrap();
        let shp = simple(2).write(dir.path(), "blocks.shp");
        let part = |ext: &str| std::fs::read(shp.with_extension(ext)).unwrap();
        let (s, x, d, p) = (part("shp"), part("shx"), part("dbf"), part("prj"));
        let zip = zip_of(
            dir.path(),
            "blocks.zip",
            &[
                ("tl_2020_06037/Blocks.SHP", &s),
                ("tl_2020_06037/Blocks.shx", &x),
                ("tl_2020_06037/Blocks.dbf", &d),
                ("tl_2020_06037/Blocks.prj", &p),
                ("__MACOSX/tl_2020_06037/._Blocks.shp", b"junk"),
                ("tl_2020_06037/README.txt", b"hello"),
            ],
        );
        let read = read_all(&zip).unwrap();
        assert_eq!(read.blocks.len(), 2);
        assert_eq!(read.crs, "GCS_WGS_1984");

        let none = zip_of(dir.path(), "none.zip", &[("readme.txt", b"x"), ("data.csv", b"y")]);
        let msg = read_err(&none);
        assert!(msg.contains("no .shp") && msg.contains("readme.txt, data.csv"), "{msg}");
        let two = zip_of(dir.path(), "two.zip", &[("a.shp", &s), ("a.shx", &x), ("a.dbf", &d), ("b/b.shp", &s)]);
        let msg = read_err(&two);
        assert!(msg.contains("2 shapefiles (a.shp, b/b.shp)"), "{msg}");
        let no_dbf = zip_of(dir.path(), "nodbf.zip", &[("a.shp", &s), ("a.shx", &x)]);
        assert!(matches!(read_all(&no_dbf), Err(IngestError::MissingSidecar { what, .. }) if what == ".dbf"));
        std::fs::write(dir.path().join("broken.zip"), b"PK not really").unwrap();
        assert!(read_err(&dir.path().join("broken.zip")).contains("not a readable zip"));
    }

    fn read_err(path: &Path) -> String {
        match read_all(path) {
            Err(e @ IngestError::Format { .. }) => e.to_string(),
            other => panic!("expected a Format error, got {other:?}"),
        }
    }

    #[test]
    fn dbf_values_to_json() {
        use serde_json::json;
        let date = dbase::Date::new(9, 3, 2020).unwrap();
        let cases = [
            (FieldValue::Character(Some("  060371011101000 ".into())), json!("060371011101000")),
            (FieldValue::Character(None), Value::Null),
            (FieldValue::Numeric(Some(123.0)), json!(123)),
            (FieldValue::Numeric(Some(60_371_011_101_000.0)), json!(60_371_011_101_000_i64)),
            (FieldValue::Numeric(Some(11.7)), json!(11.7)),
            (FieldValue::Numeric(None), Value::Null),
            (FieldValue::Float(Some(0.1)), json!(0.1)),
            (FieldValue::Logical(Some(true)), json!(true)),
            (FieldValue::Date(Some(date)), json!("2020-03-09")),
            (FieldValue::Integer(-4), json!(-4)),
        ];
        for (value, expected) in cases {
            assert_eq!(field_to_json(&value), expected, "{value:?}");
        }
    }

    #[test]
    fn extensions_any_case() {
        assert!(has_extension("dir/Blocks.SHP", "shp"));
        assert!(has_extension("a.shp", "shp"));
        assert!(!has_extension(".shp", "shp"));
        assert!(!has_extension("ashp", "shp"));
        assert_eq!(base_name("__MACOSX/x/._a.shp"), "._a.shp");
    }
}
