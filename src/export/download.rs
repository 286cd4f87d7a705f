//! What the file downloads share (GeoPackage, FlatGeobuf, zipped shapefile): a layer's schema
//! with typed fields, its rows as a source that can be read more than once, the output CRS,
//! and the errors. The writers live beside this module ([`super::gpkg`], [`super::fgb`],
//! [`super::shp`]); HTTP and the command line only choose one and where it writes.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use geo::orient::{Direction, Orient};
use geo::{Coord, LineString, MultiPolygon, Polygon};
use serde_json::Value;

/// The file formats a layer can be downloaded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadFormat {
    /// OGC GeoPackage 1.3 (one SQLite file, R-tree spatial index).
    GeoPackage,
    /// FlatGeobuf 3 (Hilbert-sorted, with its packed R-tree).
    FlatGeobuf,
    /// ESRI shapefile: `.shp`, `.shx`, `.dbf`, `.prj` and `.cpg` in one zip.
    Shapefile,
}

impl DownloadFormat {
    /// Every format, in the order they are offered.
    pub const ALL: [DownloadFormat; 3] =
        [DownloadFormat::GeoPackage, DownloadFormat::FlatGeobuf, DownloadFormat::Shapefile];

    /// The file name ending, without the dot. A zipped shapefile ends `.shp.zip`, which GDAL
    /// (3.1 on) and QGIS open as a shapefile without unzipping it.
    pub fn extension(self) -> &'static str {
        match self {
            DownloadFormat::GeoPackage => "gpkg",
            DownloadFormat::FlatGeobuf => "fgb",
            DownloadFormat::Shapefile => "shp.zip",
        }
    }

    /// The media type: IANA's for GeoPackage, FlatGeobuf's own (not registered), zip.
    pub fn media_type(self) -> &'static str {
        match self {
            DownloadFormat::GeoPackage => "application/geopackage+sqlite3",
            DownloadFormat::FlatGeobuf => "application/flatgeobuf",
            DownloadFormat::Shapefile => "application/zip",
        }
    }

    /// A human name.
    pub fn title(self) -> &'static str {
        match self {
            DownloadFormat::GeoPackage => "GeoPackage",
            DownloadFormat::FlatGeobuf => "FlatGeobuf",
            DownloadFormat::Shapefile => "Shapefile (zip)",
        }
    }
}

/// The type of a field, as every format has it: integers stay integers, dates stay dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// `true`/`false`.
    Boolean,
    /// A 64-bit integer.
    Integer,
    /// A double.
    Real,
    /// UTF-8 text (ids, such as 15-digit block ids with their leading zero, are text).
    Text,
    /// A calendar day, `YYYY-MM-DD` in the features.
    Date,
}

/// One field of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The name as the features have it (writers may have to shorten it: see [`unique_names`]).
    pub name: String,
    /// Its type.
    pub kind: FieldType,
}

/// The geometry type of every feature of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeometryType {
    /// Points.
    Point,
    /// Polygons, always written as MultiPolygons.
    MultiPolygon,
}

/// What a layer is: its name (the table, layer or file name), description, geometry type and
/// fields in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSchema {
    /// Layer name (a collection id such as `blocks`).
    pub name: String,
    /// Human description, kept where the format has a place for it.
    pub description: String,
    /// Geometry type of every feature.
    pub geometry: GeometryType,
    /// The fields, in order.
    pub fields: Vec<Field>,
}

/// A feature's geometry, in WGS84 lon/lat (before the output CRS is applied).
#[derive(Debug, Clone, Copy)]
pub enum Geometry<'a> {
    /// A point.
    Point(f64, f64),
    /// A (multi)polygon, rings in any orientation.
    MultiPolygon(&'a MultiPolygon<f64>),
}

/// One feature: its geometry and one value per field of the schema, in order (`null` where it
/// has none). A value of another JSON kind than the field's is converted where it can be (a
/// number into a text field) and written as null where it cannot.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// WGS84 geometry.
    pub geometry: Geometry<'a>,
    /// Values in field order.
    pub values: &'a [Value],
}

/// The rows of a download. [`Rows::visit`] may be called more than once (the shapefile writer
/// sizes its columns in a first pass), and must give the same rows each time.
pub trait Rows {
    /// How many rows [`Rows::visit`] gives.
    fn len(&self) -> usize;

    /// Whether there are no rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Call `f` with every row, in order, stopping at its first error.
    fn visit(&self, f: &mut dyn FnMut(Row<'_>) -> Result<(), ExportError>) -> Result<(), ExportError>;
}

/// How the spatial reference system of a download is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srs {
    /// Human name, e.g. `WGS 84`.
    pub name: String,
    /// Defining organisation, e.g. `EPSG`.
    pub organization: String,
    /// Its code there, e.g. 4326 (also the GeoPackage `srs_id`).
    pub code: i32,
    /// OGC WKT (version 1), for GeoPackage and FlatGeobuf.
    pub wkt: String,
    /// ESRI WKT, for the shapefile's `.prj` (ArcGIS reads only this dialect).
    pub esri_wkt: String,
}

/// Reprojects one WGS84 `(lon, lat)` into the output CRS; an error message when it cannot.
pub type Transform = dyn Fn(f64, f64) -> Result<(f64, f64), String> + Send + Sync;

/// The coordinate reference system a download is written in: how to get there from WGS84
/// lon/lat, and what to record. [`OutputCrs::wgs84`] (the default) records EPSG:4326 and
/// leaves coordinates as they are, lon/lat order (as GDAL and QGIS expect for EPSG:4326 in
/// these formats).
#[derive(Clone)]
pub struct OutputCrs {
    /// What the files say the CRS is.
    pub srs: Srs,
    /// From WGS84 lon/lat; `None` leaves coordinates as they are.
    transform: Option<Arc<Transform>>,
}

impl std::fmt::Debug for OutputCrs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputCrs").field("srs", &self.srs).field("reprojects", &self.transform.is_some()).finish()
    }
}

/// OGC WKT 1 of EPSG:4326, as GDAL writes it into a GeoPackage.
pub const WGS84_WKT: &str = concat!(
    r#"GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],"#,
    r#"AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],"#,
    r#"UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],"#,
    r#"AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]"#
);

/// ESRI WKT of WGS 84, as ArcGIS writes it into a `.prj`.
pub const WGS84_ESRI_WKT: &str = concat!(
    r#"GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],"#,
    r#"PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]"#
);

impl OutputCrs {
    /// WGS84 (EPSG:4326), lon/lat, the coordinates unchanged.
    pub fn wgs84() -> OutputCrs {
        OutputCrs {
            srs: Srs {
                name: "WGS 84".into(),
                organization: "EPSG".into(),
                code: 4326,
                wkt: WGS84_WKT.into(),
                esri_wkt: WGS84_ESRI_WKT.into(),
            },
            transform: None,
        }
    }

    /// Another CRS: `srs` says what to record, `transform` takes a WGS84 `(lon, lat)` there.
    pub fn new(
        srs: Srs,
        transform: impl Fn(f64, f64) -> Result<(f64, f64), String> + Send + Sync + 'static,
    ) -> OutputCrs {
        OutputCrs { srs, transform: Some(Arc::new(transform)) }
    }

    /// One WGS84 `(lon, lat)` in the output CRS.
    pub fn apply(&self, lon: f64, lat: f64) -> Result<(f64, f64), ExportError> {
        let (x, y) = match &self.transform {
            None => (lon, lat),
            Some(t) => t(lon, lat).map_err(|e| ExportError::Transform(format!("({lon}, {lat}): {e}")))?,
        };
        if x.is_finite() && y.is_finite() {
            Ok((x, y))
        } else {
            Err(ExportError::Transform(format!("({lon}, {lat}) has no finite position in {}", self.srs.name)))
        }
    }
}

impl Default for OutputCrs {
    fn default() -> Self {
        OutputCrs::wgs84()
    }
}

/// Why a download could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading or writing a file.
    #[error("writing the download: {0}")]
    Io(#[from] std::io::Error),
    /// SQLite refused a statement of the GeoPackage.
    #[error("writing the GeoPackage: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The FlatGeobuf writer failed.
    #[error("writing the FlatGeobuf file: {0}")]
    FlatGeobuf(String),
    /// The shapefile writer failed.
    #[error("writing the shapefile: {0}")]
    Shapefile(#[from] shapefile::Error),
    /// Zipping the shapefile failed.
    #[error("zipping the shapefile: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// A coordinate has no place in the output CRS.
    #[error("reprojecting {0}")]
    Transform(String),
    /// The output would break a limit of the format (a shapefile's 2 GB).
    #[error("{0}")]
    TooLarge(String),
    /// A feature the format cannot hold.
    #[error("{0}")]
    Unsupported(String),
}

impl From<flatgeobuf::Error> for ExportError {
    fn from(e: flatgeobuf::Error) -> Self {
        ExportError::FlatGeobuf(e.to_string())
    }
}

/// Write `rows` of `layer` to the file at `path` (created or replaced) in `format`, in `crs`.
pub fn write_download(
    format: DownloadFormat,
    path: &Path,
    layer: &LayerSchema,
    rows: &dyn Rows,
    crs: &OutputCrs,
) -> Result<(), ExportError> {
    match format {
        DownloadFormat::GeoPackage => super::gpkg::write_gpkg(path, layer, rows, crs),
        DownloadFormat::FlatGeobuf => {
            let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
            super::fgb::write_fgb(&mut out, layer, rows, crs)?;
            std::io::Write::flush(&mut out)?;
            Ok(())
        }
        DownloadFormat::Shapefile => {
            let file = std::fs::File::create(path)?;
            super::shp::write_shapefile_zip(file, layer, rows, crs)?;
            Ok(())
        }
    }
}

/// A geometry in the output CRS, rings oriented as OGC Simple Features and RFC 7946 have them
/// (exterior counter-clockwise, holes clockwise; the shapefile writer reverses them).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Projected {
    Point(f64, f64),
    MultiPolygon(MultiPolygon<f64>),
}

impl Projected {
    /// `geometry` in `crs`. Orientation is decided after reprojection, since a transform can
    /// mirror (e.g. one with a southing axis).
    pub(crate) fn of(geometry: Geometry<'_>, crs: &OutputCrs) -> Result<Projected, ExportError> {
        match geometry {
            Geometry::Point(lon, lat) => {
                let (x, y) = crs.apply(lon, lat)?;
                Ok(Projected::Point(x, y))
            }
            Geometry::MultiPolygon(mp) => {
                let ring = |r: &LineString<f64>| -> Result<LineString<f64>, ExportError> {
                    r.0.iter().map(|c| crs.apply(c.x, c.y).map(|(x, y)| Coord { x, y })).collect()
                };
                let mut polygons = Vec::with_capacity(mp.0.len());
                for p in &mp.0 {
                    let interiors = p.interiors().iter().map(ring).collect::<Result<Vec<_>, _>>()?;
                    polygons.push(Polygon::new(ring(p.exterior())?, interiors));
                }
                Ok(Projected::MultiPolygon(MultiPolygon(polygons).orient(Direction::Default)))
            }
        }
    }

    /// `[min x, min y, max x, max y]`; `None` for a polygon without points.
    pub(crate) fn envelope(&self) -> Option<[f64; 4]> {
        match self {
            Projected::Point(x, y) => Some([*x, *y, *x, *y]),
            Projected::MultiPolygon(mp) => {
                let mut it = mp.0.iter().flat_map(|p| p.exterior().0.iter());
                let first = it.next()?;
                Some(it.fold([first.x, first.y, first.x, first.y], |e, c| {
                    [e[0].min(c.x), e[1].min(c.y), e[2].max(c.x), e[3].max(c.y)]
                }))
            }
        }
    }
}

/// Grow an extent by an envelope.
pub(crate) fn grow(extent: &mut Option<[f64; 4]>, e: [f64; 4]) {
    *extent = Some(match *extent {
        None => e,
        Some(x) => [x[0].min(e[0]), x[1].min(e[1]), x[2].max(e[2]), x[3].max(e[3])],
    });
}

/// Names for `names` that are unique without regard to ASCII case (SQLite and dBase compare
/// column names that way), none of them in `reserved`, each at most `max_bytes` long
/// (`None`: any length). A name that is free is kept as it is (cut to `max_bytes` on a
/// character boundary); a taken one has its end replaced by `_2`, `_3`, ... (the first free
/// number), in field order, so the same fields always get the same names.
pub fn unique_names(names: &[&str], reserved: &[&str], max_bytes: Option<usize>) -> Vec<String> {
    let mut taken: HashSet<String> = reserved.iter().map(|r| r.to_ascii_lowercase()).collect();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let base = match max_bytes {
            Some(max) => cut(name, max).to_string(),
            None => (*name).to_string(),
        };
        let mut candidate = base.clone();
        let mut n = 2u32;
        while taken.contains(&candidate.to_ascii_lowercase()) || candidate.is_empty() {
            let suffix = format!("_{n}");
            let room = max_bytes.map_or(base.len(), |max| max.saturating_sub(suffix.len()).min(base.len()));
            candidate = format!("{}{suffix}", cut(&base, room));
            n += 1;
        }
        taken.insert(candidate.to_ascii_lowercase());
        out.push(candidate);
    }
    out
}

/// The longest start of `s` of at most `max` bytes that ends on a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// An integer value: integral JSON numbers, `true`/`false` as 1/0.
pub(crate) fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => {
            n.as_i64().or_else(|| n.as_f64().filter(|x| x.fract() == 0.0 && x.abs() < 9.2e18).map(|x| x as i64))
        }
        Value::Bool(b) => Some(i64::from(*b)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A real value (finite numbers only).
pub(crate) fn real(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64().filter(|x| x.is_finite()),
        Value::String(s) => s.trim().parse().ok().filter(|x: &f64| x.is_finite()),
        _ => None,
    }
}

/// A boolean value.
pub(crate) fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|x| x != 0.0),
        _ => None,
    }
}

/// A text value: strings as they are, other values as JSON.
pub(crate) fn text(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.as_str().into()),
        other => Some(other.to_string().into()),
    }
}

/// A date value: `YYYY-MM-DD` (the first ten characters of a longer ISO 8601 text).
pub(crate) fn date(v: &Value) -> Option<NaiveDate> {
    let s = v.as_str()?;
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

/// Whether `s` is a plain `YYYY-MM-DD` day (what makes a text property a date field).
pub fn is_date_text(s: &str) -> bool {
    s.len() == 10 && NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;

    #[test]
    fn names_are_unique_short_and_deterministic() {
        let names = ["school_readiness", "school_readiness_date", "SCHOOL_R", "fid", "POP20", "pop20", "été_été_été"];
        let dbf = unique_names(&names, &[], Some(10));
        assert_eq!(
            dbf,
            ["school_rea", "school_r_2", "SCHOOL_R", "fid", "POP20", "pop20_2", "été_ét"],
            "cut on a character boundary, case-insensitive collisions numbered"
        );
        assert!(dbf.iter().all(|n| n.len() <= 10));
        assert_eq!(unique_names(&names, &[], Some(10)), dbf, "the same fields, the same names");
        let gpkg = unique_names(&["fid", "geom", "name", "Name"], &["fid", "geom"], None);
        assert_eq!(gpkg, ["fid_2", "geom_2", "name", "Name_2"]);
        // Numbering past 9 still fits.
        let many: Vec<String> = (0..12).map(|_| "abcdefghijkl".to_string()).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let out = unique_names(&many, &[], Some(10));
        assert_eq!(out[0], "abcdefghij");
        assert_eq!(out[11], "abcdefg_12");
        assert_eq!(out.iter().collect::<HashSet<_>>().len(), 12);
    }

    #[test]
    fn values_convert_by_field_type() {
        assert_eq!(integer(&serde_json::json!(5)), Some(5));
        assert_eq!(integer(&serde_json::json!(5.0)), Some(5));
        assert_eq!(integer(&serde_json::json!(5.5)), None);
        assert_eq!(real(&serde_json::json!(2)), Some(2.0));
        assert_eq!(text(&serde_json::json!(7)).as_deref(), Some("7"));
        assert_eq!(text(&Value::Null), None);
        assert_eq!(date(&serde_json::json!("2025-06-01")), NaiveDate::from_ymd_opt(2025, 6, 1));
        assert!(is_date_text("2025-06-01") && !is_date_text("2025-6-1") && !is_date_text("060371011101000"));
    }

    #[test]
    fn projection_orients_after_transforming() {
        // Counter-clockwise in lon/lat; a transform that mirrors y makes it clockwise, so it
        // must be reversed again.
        let p = polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0), (x: 0.0, y: 1.0), (x: 0.0, y: 0.0)];
        let mp = MultiPolygon(vec![p]);
        let mirror = OutputCrs::new(OutputCrs::wgs84().srs, |x, y| Ok((x, -y)));
        let Projected::MultiPolygon(out) = Projected::of(Geometry::MultiPolygon(&mp), &mirror).unwrap() else {
            panic!("a polygon")
        };
        let ring = &out.0[0].exterior().0;
        let area: f64 = ring.windows(2).map(|w| w[0].x * w[1].y - w[1].x * w[0].y).sum::<f64>() / 2.0;
        assert!(area > 0.0, "exterior counter-clockwise after the mirror: {ring:?}");
        assert_eq!(Projected::of(Geometry::Point(1.0, 2.0), &mirror).unwrap().envelope(), Some([1.0, -2.0, 1.0, -2.0]));
        let broken = OutputCrs::new(OutputCrs::wgs84().srs, |_, _| Err("outside".into()));
        assert!(matches!(Projected::of(Geometry::Point(1.0, 2.0), &broken), Err(ExportError::Transform(_))));
    }
}
