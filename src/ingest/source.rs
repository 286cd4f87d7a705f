//! What a polygon file reader yields, before it becomes blocks or areas: the features in the
//! file's own CRS, what the file says about that CRS, and how that is resolved. The format
//! readers (`shapefile`, [`super::geojson`]) produce these; [`super::blocks`] consumes them.

use std::ops::Deref;
use std::path::{Path, PathBuf};

use geo::{Coord, LineString, MultiPolygon};
use serde_json::Value;

use super::geometry;
use super::{Crs, CrsError, IngestError};
use crate::core::Attributes;

/// A file's features in its own CRS, before any checking.
pub(crate) struct SourceFile {
    pub(crate) features: Vec<SourceFeature>,
    /// Attribute names, in file order (dbf) or first-seen order (GeoJSON).
    pub(crate) fields: Vec<String>,
    /// What the file says about its CRS.
    pub(crate) crs: DeclaredCrs,
    pub(crate) warnings: Vec<String>,
}

/// One record of a source file.
pub(crate) struct SourceFeature {
    /// 1-based record / feature number.
    pub(crate) number: usize,
    pub(crate) geometry: SourceGeometry,
    pub(crate) properties: Attributes,
    /// A GeoJSON feature's `id`, as text.
    pub(crate) feature_id: Option<String>,
}

/// A record's geometry in the source CRS.
pub(crate) enum SourceGeometry {
    /// Null shape, `null` geometry, no coordinates.
    Empty,
    /// A flat ring list whose roles must be worked out (shapefile, Esri JSON).
    Rings(Vec<LineString<f64>>),
    /// Polygons with their holes already assigned (GeoJSON).
    Polygons(MultiPolygon<f64>),
    /// A geometry that is not an area, by type name.
    Unsupported(String),
    /// Coordinates that could not be read, and why.
    Malformed(String),
}

impl SourceGeometry {
    /// Every coordinate, to judge the CRS of a file that does not declare one.
    pub(crate) fn coords(&self) -> Box<dyn Iterator<Item = &Coord<f64>> + '_> {
        match self {
            SourceGeometry::Rings(rings) => Box::new(rings.iter().flat_map(|r| r.0.iter())),
            SourceGeometry::Polygons(mp) => Box::new(
                mp.0.iter().flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()).flat_map(|r| r.0.iter())),
            ),
            _ => Box::new(std::iter::empty()),
        }
    }
}

/// What a file says about its CRS.
pub(crate) enum DeclaredCrs {
    /// A shapefile's `.prj` text (ESRI WKT) and where it was.
    Prj { path: PathBuf, wkt: String },
    /// A shapefile without `.prj`.
    NoPrj,
    /// GeoJSON without a `crs` member: WGS84 lon/lat by RFC 7946.
    Rfc7946,
    /// Esri JSON without `spatialReference`.
    EsriUnknown,
    /// A CRS the file named and we understood (legacy GeoJSON `crs`, Esri `spatialReference`).
    Named(Box<Crs>),
}

/// Whether a file's coordinates could be lon/lat, to judge a file that does not say.
pub(crate) struct LonLatScan {
    finite: usize,
    lonlat: usize,
    /// A finite coordinate that cannot be lon/lat, for messages.
    example: Option<Coord<f64>>,
}

impl LonLatScan {
    pub(crate) fn of<'a>(coords: impl Iterator<Item = &'a Coord<f64>>) -> LonLatScan {
        let mut scan = LonLatScan { finite: 0, lonlat: 0, example: None };
        for c in coords.filter(|c| c.x.is_finite() && c.y.is_finite()) {
            scan.finite += 1;
            if geometry::is_lonlat(c) {
                scan.lonlat += 1;
            } else if scan.example.is_none() {
                scan.example = Some(*c);
            }
        }
        scan
    }
}

/// The CRS to reproject from: the caller's, or one made from what the file says.
pub(crate) enum SourceCrs<'a> {
    Given(&'a Crs),
    Owned(Box<Crs>),
}

impl Deref for SourceCrs<'_> {
    type Target = Crs;
    fn deref(&self) -> &Crs {
        match self {
            SourceCrs::Given(c) => c,
            SourceCrs::Owned(c) => c,
        }
    }
}

/// `given` (from `--source-crs`) wins; else the file's declaration. A file that says nothing
/// is taken as WGS84 only when every coordinate could be lon/lat, with a warning.
pub(crate) fn resolve_crs<'a>(
    path: &Path,
    declared: DeclaredCrs,
    given: Option<&'a Crs>,
    scan: &LonLatScan,
    warnings: &mut Vec<String>,
) -> Result<SourceCrs<'a>, IngestError> {
    if let Some(crs) = given {
        return Ok(SourceCrs::Given(crs));
    }
    let crs_error = |reason: String| IngestError::Crs { path: path.to_path_buf(), reason };
    let example = scan.example.map(|c| format!(" (e.g. ({}, {}))", c.x, c.y)).unwrap_or_default();
    match declared {
        DeclaredCrs::Named(crs) => Ok(SourceCrs::Owned(crs)),
        DeclaredCrs::Prj { path: prj, wkt } => match Crs::from_wkt(&wkt) {
            Ok(crs) => Ok(SourceCrs::Owned(Box::new(crs))),
            Err(e) => {
                let why = match e {
                    CrsError::Wkt { reason, .. } => reason,
                    other => other.to_string(),
                };
                Err(crs_error(format!(
                    "the CRS in {} cannot be used ({why}); it says: {}\n\
                     pass --source-crs EPSG:NNNN with the EPSG code of the file's coordinates (e.g. EPSG:2229)",
                    prj.display(),
                    crate::core::text::clip(&wkt, crate::core::text::QUOTED)
                )))
            }
        },
        DeclaredCrs::NoPrj | DeclaredCrs::EsriUnknown => {
            let what = if matches!(declared, DeclaredCrs::NoPrj) {
                "no .prj beside it"
            } else {
                "Esri JSON without spatialReference"
            };
            if scan.lonlat == scan.finite {
                warnings.push(format!("{what}: coordinates look like lon/lat, assuming WGS84 (EPSG:4326)"));
                Ok(SourceCrs::Owned(Box::new(Crs::wgs84())))
            } else {
                Err(crs_error(format!(
                    "{what}, so its CRS is unknown, and its coordinates are not lon/lat{example}; \
                     pass --source-crs EPSG:NNNN (e.g. EPSG:2229 for California State Plane zone V feet)"
                )))
            }
        }
        DeclaredCrs::Rfc7946 => {
            if scan.finite > 0 && scan.lonlat == 0 {
                Err(crs_error(format!(
                    "GeoJSON coordinates must be WGS84 lon/lat (RFC 7946), but these are not{example}; \
                     pass --source-crs EPSG:NNNN with the CRS they are in"
                )))
            } else {
                Ok(SourceCrs::Owned(Box::new(Crs::wgs84())))
            }
        }
    }
}

/// An id or name as text: strings trimmed, numbers without exponent or trailing `.0`
/// (`123.0` → `"123"`). `Ok(None)` for null or empty; `Err(kind)` for booleans, arrays, objects.
pub(crate) fn value_to_text(value: &Value) -> Result<Option<String>, &'static str> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => {
            let s = s.trim();
            Ok((!s.is_empty()).then(|| s.to_string()))
        }
        Value::Number(n) => Ok(Some(number_text(n))),
        Value::Bool(_) => Err("true/false"),
        Value::Array(_) => Err("a list"),
        Value::Object(_) => Err("an object"),
    }
}

fn number_text(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        // `Display` for f64 never uses an exponent and drops a `.0`.
        n.as_f64().map_or_else(|| n.to_string(), |f| format!("{f}"))
    }
}

/// The rejection reason for coordinate `n` (1-based) that is NaN or infinite.
pub(crate) fn non_finite(n: usize, c: &Coord<f64>) -> String {
    format!("coordinate {n} is not a finite number ({}, {})", c.x, c.y)
}

/// The rejection reason for a reprojected coordinate that is not lon/lat: usually a wrong CRS.
pub(crate) fn outside_lonlat(c: &Coord<f64>, crs: &Crs) -> String {
    format!(
        "coordinate ({:.6}, {:.6}) after reprojection from {} is outside longitude -180..180 / latitude -90..90; \
         the CRS may be wrong (pass --source-crs EPSG:NNNN)",
        c.x,
        c.y,
        crs.label()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_text() {
        let cases = [
            (json!("060371011101000"), Some("060371011101000")),
            (json!("  0601  "), Some("0601")),
            (json!(123), Some("123")),
            (json!(123.0), Some("123")),
            (json!(60_371_011_101_000_u64), Some("60371011101000")),
            (json!(1e20), Some("100000000000000000000")),
            (json!(12.5), Some("12.5")),
            (json!(""), None),
            (json!("   "), None),
            (Value::Null, None),
        ];
        for (value, expected) in cases {
            assert_eq!(value_to_text(&value).unwrap().as_deref(), expected, "{value}");
        }
        assert!(value_to_text(&json!(true)).is_err());
        assert!(value_to_text(&json!([1])).is_err());
    }

    #[test]
    fn crs_resolution() {
        let p = Path::new("x.shp");
        let lonlat = [Coord { x: -118.3, y: 34.0 }];
        let projected = [Coord { x: 6_480_000.0, y: 1_840_000.0 }];
        let mut warnings = Vec::new();

        let crs = resolve_crs(p, DeclaredCrs::NoPrj, None, &LonLatScan::of(lonlat.iter()), &mut warnings).unwrap();
        assert_eq!(crs.label(), "EPSG:4326");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("no .prj") && warnings[0].contains("WGS84"), "{warnings:?}");

        let err =
            resolve_crs(p, DeclaredCrs::NoPrj, None, &LonLatScan::of(projected.iter()), &mut warnings).err().unwrap();
        assert!(matches!(&err, IngestError::Crs { reason, .. } if reason.contains("--source-crs EPSG:NNNN")), "{err}");

        let given = Crs::from_epsg(2229).unwrap();
        let crs =
            resolve_crs(p, DeclaredCrs::NoPrj, Some(&given), &LonLatScan::of(projected.iter()), &mut warnings).unwrap();
        assert_eq!(crs.label(), "EPSG:2229");

        let bad = DeclaredCrs::Prj { path: "x.prj".into(), wkt: "PROJCS[\"nonsense\"]".into() };
        let err = resolve_crs(p, bad, None, &LonLatScan::of(projected.iter()), &mut warnings).err().unwrap();
        let msg = err.to_string();
        assert!(msg.contains("PROJCS[\"nonsense\"]") && msg.contains("--source-crs EPSG:NNNN"), "{msg}");

        let err =
            resolve_crs(p, DeclaredCrs::Rfc7946, None, &LonLatScan::of(projected.iter()), &mut warnings).err().unwrap();
        assert!(err.to_string().contains("RFC 7946"), "{err}");
    }
}
