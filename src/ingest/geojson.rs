//! GeoJSON reading: FeatureCollections of polygons (blocks) or points (resources), in WGS84 as
//! RFC 7946 says, or in the CRS named by a legacy (2008) `crs` member. Esri JSON saved as
//! `.geojson` (`attributes` + `geometry {x, y}` / `rings`, `spatialReference`) is recognised and
//! read too, with a warning, since it is a common export from ArcGIS services.

use std::path::Path;

use geo::{Coord, LineString, MultiPolygon, Polygon};
use serde_json::{Map, Value};

use super::source::{self, DeclaredCrs, LonLatScan, SourceFeature, SourceFile, SourceGeometry};
use super::{Crs, IngestError, Rejection};
use crate::core::text::{clip, quote};

/// One point feature, reprojected to WGS84.
#[derive(Debug, Clone, PartialEq)]
pub struct PointFeature {
    /// 1-based feature number in the file.
    pub number: usize,
    /// The feature's `id` member, as text.
    pub id: Option<String>,
    /// WGS84 longitude, degrees.
    pub lon: f64,
    /// WGS84 latitude, degrees.
    pub lat: f64,
    /// The feature's properties (Esri JSON: its attributes).
    pub properties: Map<String, Value>,
}

/// What [`read_points`] found.
#[derive(Debug)]
pub struct PointRead {
    /// The good points, in file order.
    pub points: Vec<PointFeature>,
    /// Features without a usable location (null or non-point geometry, bad coordinates).
    pub rejected: Vec<Rejection>,
    /// Label of the source CRS, e.g. `EPSG:4326` or `EPSG:3310`.
    pub crs: String,
    /// Things the admin should know that did not stop the import.
    pub warnings: Vec<String>,
}

/// Reads point features (resources) from a GeoJSON FeatureCollection or an Esri JSON file.
///
/// A Point, or a MultiPoint with one point, is a location; any other feature becomes a
/// [`Rejection`] so the caller can import the good ones. `source_crs` overrides what the file
/// says; an Esri JSON file without `spatialReference` needs it unless its coordinates are
/// plainly lon/lat.
pub fn read_points(path: &Path, source_crs: Option<&Crs>) -> Result<PointRead, IngestError> {
    let Document { features, format, crs: declared, mut warnings } = load(path)?;
    let parsed: Vec<ParsedPoint> = features
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let (id, properties, geometry) = split_feature(f, format);
            ParsedPoint { number: i + 1, id, properties, location: point_of(geometry.as_ref(), format) }
        })
        .collect();
    let scan = LonLatScan::of(parsed.iter().filter_map(|p| p.location.as_ref().ok()));
    let crs = source::resolve_crs(path, declared, source_crs, &scan, &mut warnings)?;

    let file = path.display().to_string();
    let mut points = Vec::with_capacity(parsed.len());
    let mut rejected = Vec::new();
    for ParsedPoint { number, id, properties, location } in parsed {
        let location = location.and_then(|c| {
            if !c.x.is_finite() || !c.y.is_finite() {
                return Err(source::non_finite(1, &c));
            }
            let (lon, lat) = crs.to_wgs84(c.x, c.y).map_err(|e| format!("cannot reproject: {e}"))?;
            let wgs84 = Coord { x: lon, y: lat };
            if !super::geometry::is_lonlat(&wgs84) {
                return Err(source::outside_lonlat(&wgs84, &crs));
            }
            Ok(wgs84)
        });
        match location {
            Ok(c) => points.push(PointFeature { number, id, lon: c.x, lat: c.y, properties }),
            Err(reason) => rejected.push(Rejection {
                file: file.clone(),
                location: format!("feature {number}"),
                field: None,
                reason,
            }),
        }
    }
    Ok(PointRead { points, rejected, crs: crs.label().to_string(), warnings })
}

/// A point feature in the source CRS, or why it has no location.
struct ParsedPoint {
    number: usize,
    id: Option<String>,
    properties: Map<String, Value>,
    location: Result<Coord<f64>, String>,
}

/// Reads area features (blocks) in the file's CRS, for [`super::blocks::read_blocks`].
pub(crate) fn read_area_features(path: &Path) -> Result<SourceFile, IngestError> {
    let Document { features, format, crs, warnings } = load(path)?;
    let mut fields: Vec<String> = Vec::new();
    let mut out = Vec::with_capacity(features.len());
    for (i, feature) in features.into_iter().enumerate() {
        let (feature_id, properties, geometry) = split_feature(feature, format);
        for key in properties.keys() {
            if !fields.contains(key) {
                fields.push(key.clone());
            }
        }
        let geometry = area_of(geometry.as_ref(), format);
        out.push(SourceFeature { number: i + 1, geometry, properties, feature_id });
    }
    Ok(SourceFile { features: out, fields, crs, warnings })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    GeoJson,
    EsriJson,
}

/// A parsed file: its features (raw JSON), which dialect, and its CRS declaration.
struct Document {
    features: Vec<Value>,
    format: Format,
    crs: DeclaredCrs,
    warnings: Vec<String>,
}

const ESRI_HINT: &str = "convert it with `ogr2ogr -f GeoJSON out.geojson in.json`";

fn load(path: &Path) -> Result<Document, IngestError> {
    let bytes = std::fs::read(path).map_err(|source| IngestError::Io { path: path.to_path_buf(), source })?;
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let root: Value = serde_json::from_slice(text).map_err(|e| format_error(path, format!("not valid JSON: {e}")))?;
    parse_document(path, root)
}

fn parse_document(path: &Path, root: Value) -> Result<Document, IngestError> {
    let Value::Object(mut root) = root else {
        return Err(format_error(
            path,
            format!("expected a GeoJSON FeatureCollection (a JSON object), found {}", json_kind(&root)),
        ));
    };
    let format = if is_esri(&root) { Format::EsriJson } else { Format::GeoJson };
    let kind = root.get("type").and_then(Value::as_str).unwrap_or("").to_string();
    let features = match root.remove("features") {
        Some(Value::Array(features)) => features,
        Some(other) => {
            return Err(format_error(path, format!("'features' must be a list, found {}", json_kind(&other))));
        }
        None if kind == "Feature" => vec![Value::Object(root.clone())],
        None => {
            let reason = match kind.as_str() {
                "Point" | "MultiPoint" | "LineString" | "MultiLineString" | "Polygon" | "MultiPolygon"
                | "GeometryCollection" => format!(
                    "this is a bare {kind} geometry; expected a FeatureCollection (or a Feature), \
                     whose features carry the properties"
                ),
                "" => "expected a GeoJSON FeatureCollection; this JSON object has no 'type' and no 'features'".into(),
                other => format!("expected a GeoJSON FeatureCollection, found type {}", quote(other)),
            };
            return Err(format_error(path, reason));
        }
    };
    let mut warnings = Vec::new();
    let crs = match format {
        Format::GeoJson => geojson_crs(path, root.get("crs"))?,
        Format::EsriJson => {
            warnings.push(format!("this is Esri JSON, not GeoJSON; read it as Esri JSON (or {ESRI_HINT})"));
            esri_crs(path, root.get("spatialReference"))?
        }
    };
    Ok(Document { features, format, crs, warnings })
}

/// Esri JSON (ArcGIS REST `f=json`) rather than GeoJSON: Esri top-level members, or features
/// with `attributes` instead of `properties`, or geometries with `x`/`rings` and no `type`.
fn is_esri(root: &Map<String, Value>) -> bool {
    if ["spatialReference", "geometryType", "fieldAliases"].iter().any(|k| root.contains_key(*k)) {
        return true;
    }
    let Some(Value::Array(features)) = root.get("features") else {
        return false;
    };
    features.iter().filter_map(Value::as_object).take(10).any(|f| {
        let attributes = f.contains_key("attributes") && !f.contains_key("properties");
        let esri_geometry = f.get("geometry").and_then(Value::as_object).is_some_and(|g| {
            !g.contains_key("type") && ["x", "rings", "paths", "points"].iter().any(|k| g.contains_key(*k))
        });
        attributes || esri_geometry
    })
}

/// The legacy `crs` member: `{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::3310"}}`
/// (GDAL writes this) or the 2008 `{"type":"EPSG","properties":{"code":3310}}`.
fn geojson_crs(path: &Path, member: Option<&Value>) -> Result<DeclaredCrs, IngestError> {
    let Some(member) = member.filter(|m| !m.is_null()) else {
        return Ok(DeclaredCrs::Rfc7946);
    };
    let props = member.get("properties");
    let named = props.and_then(|p| p.get("name")).and_then(Value::as_str).map(str::to_string);
    let code = props.and_then(|p| p.get("code")).and_then(|c| c.as_u64().or_else(|| c.as_str()?.parse().ok()));
    let parsed = match (named, code) {
        // `why` already quotes the name (cut short); `what` is cut short too.
        (Some(name), _) => Crs::parse(&name).map_err(|e| (quote(&name), e.to_string())),
        (None, Some(code)) => Crs::parse(&code.to_string()).map_err(|e| (code.to_string(), e.to_string())),
        (None, None) => Err((quote(&member.to_string()), "not a named CRS".to_string())),
    };
    parsed.map(|c| DeclaredCrs::Named(Box::new(c))).map_err(|(what, why)| IngestError::Crs {
        path: path.to_path_buf(),
        reason: format!(
            "the file's `crs` member says {what}, which cannot be used ({why}); pass --source-crs EPSG:NNNN"
        ),
    })
}

/// Esri `spatialReference`: `latestWkid` (an EPSG code), else `wkid`, else `wkt`.
fn esri_crs(path: &Path, member: Option<&Value>) -> Result<DeclaredCrs, IngestError> {
    let Some(sr) = member.filter(|m| !m.is_null()) else {
        return Ok(DeclaredCrs::EsriUnknown);
    };
    let wkid = ["latestWkid", "wkid"].iter().find_map(|k| sr.get(*k).and_then(Value::as_u64));
    let crs_error = |reason: String| IngestError::Crs { path: path.to_path_buf(), reason };
    if let Some(wkid) = wkid {
        // Esri's own codes for Web Mercator.
        let code = if matches!(wkid, 102_100 | 102_113 | 900_913) { 3857 } else { wkid };
        let code = u32::try_from(code).unwrap_or(u32::MAX);
        return Crs::from_epsg(code).map(|c| DeclaredCrs::Named(Box::new(c))).map_err(|e| {
            crs_error(format!("its spatialReference wkid {wkid} cannot be used ({e}); pass --source-crs EPSG:NNNN"))
        });
    }
    if let Some(wkt) = sr.get("wkt").and_then(Value::as_str) {
        return Crs::from_wkt(wkt)
            .map(|c| DeclaredCrs::Named(Box::new(c)))
            .map_err(|e| crs_error(format!("its spatialReference cannot be used ({e}); pass --source-crs EPSG:NNNN")));
    }
    Ok(DeclaredCrs::EsriUnknown)
}

/// (feature id, properties, geometry) of one feature.
fn split_feature(feature: Value, format: Format) -> (Option<String>, Map<String, Value>, Option<Value>) {
    let Value::Object(mut f) = feature else {
        return (None, Map::new(), None);
    };
    let props_key = if format == Format::EsriJson { "attributes" } else { "properties" };
    let properties = match f.remove(props_key) {
        Some(Value::Object(p)) => p,
        _ => Map::new(),
    };
    let id = f.get("id").and_then(|v| source::value_to_text(v).ok().flatten());
    (id, properties, f.remove("geometry"))
}

/// A point location in the source CRS, or why the feature has none.
fn point_of(geometry: Option<&Value>, format: Format) -> Result<Coord<f64>, String> {
    let Some(g) = geometry.filter(|g| !g.is_null()) else {
        return Err("empty geometry (no location)".into());
    };
    if format == Format::EsriJson {
        if let (Some(x), Some(y)) = (g.get("x"), g.get("y")) {
            return match (esri_number(x), esri_number(y)) {
                (Some(x), Some(y)) => Ok(Coord { x, y }),
                _ => Err("empty geometry (no location)".into()),
            };
        }
        if let Some(points) = g.get("points") {
            return single_point(points);
        }
        return Err("geometry is not an Esri point (no x and y)".into());
    }
    let kind = g.get("type").and_then(Value::as_str).unwrap_or("(no type)");
    let coords = g.get("coordinates");
    match kind {
        "Point" => match coords {
            Some(Value::Array(a)) if a.is_empty() => Err("empty geometry (no location)".into()),
            Some(c) => position(c),
            None => Err("Point without coordinates".into()),
        },
        "MultiPoint" => coords.map_or_else(|| Err("MultiPoint without coordinates".into()), single_point),
        other => Err(format!("geometry type {} is not a point; expected Point", clip(other, 80))),
    }
}

fn single_point(points: &Value) -> Result<Coord<f64>, String> {
    match points.as_array().map(Vec::as_slice) {
        Some([one]) => position(one),
        Some([]) => Err("empty geometry (no location)".into()),
        Some(many) => Err(format!("MultiPoint with {} points; expected a single point", many.len())),
        None => Err("malformed coordinates: expected a list of positions".into()),
    }
}

/// Esri writes an empty point as `null` or "NaN" coordinates.
fn esri_number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse::<f64>().ok())).filter(|f| !f.is_nan())
}

/// A GeoJSON position `[x, y, ...]`.
fn position(v: &Value) -> Result<Coord<f64>, String> {
    match v.as_array().map(Vec::as_slice) {
        Some([x, y, ..]) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => Ok(Coord { x, y }),
            _ => Err(format!("malformed coordinates: position {} is not numbers", shown(v))),
        },
        _ => Err(format!("malformed coordinates: expected a position [x, y], found {}", shown(v))),
    }
}

/// A JSON value quoted in a reason: cut short, since a "position" may be a whole document.
fn shown(v: &Value) -> String {
    clip(&v.to_string(), 80)
}

fn ring(v: &Value) -> Result<LineString<f64>, String> {
    let positions = v.as_array().ok_or_else(|| {
        format!("malformed coordinates: expected a ring (a list of positions), found {}", json_kind(v))
    })?;
    positions.iter().map(position).collect::<Result<Vec<_>, _>>().map(LineString::new)
}

fn rings(v: &Value) -> Result<Vec<LineString<f64>>, String> {
    let list = v
        .as_array()
        .ok_or_else(|| format!("malformed coordinates: expected a list of rings, found {}", json_kind(v)))?;
    list.iter().map(ring).collect()
}

fn polygon(v: &Value) -> Result<Option<Polygon<f64>>, String> {
    let mut rings = rings(v)?.into_iter();
    Ok(rings.next().map(|exterior| Polygon::new(exterior, rings.collect())))
}

/// An area in the source CRS, or why the feature has none.
fn area_of(geometry: Option<&Value>, format: Format) -> SourceGeometry {
    let Some(g) = geometry.filter(|g| !g.is_null()) else {
        return SourceGeometry::Empty;
    };
    let result = if format == Format::EsriJson {
        match g.get("rings") {
            Some(r) => rings(r).map(|r| if r.is_empty() { SourceGeometry::Empty } else { SourceGeometry::Rings(r) }),
            None if g.get("paths").is_some() => Ok(SourceGeometry::Unsupported("Esri polyline".into())),
            None if g.get("x").is_some() || g.get("points").is_some() => {
                Ok(SourceGeometry::Unsupported("Esri point".into()))
            }
            None => Ok(SourceGeometry::Empty),
        }
    } else {
        let kind = g.get("type").and_then(Value::as_str).unwrap_or("(no type)");
        let coords = g.get("coordinates").unwrap_or(&Value::Null);
        match kind {
            "Polygon" => polygon(coords).map(|p| match p {
                Some(p) => SourceGeometry::Polygons(MultiPolygon::new(vec![p])),
                None => SourceGeometry::Empty,
            }),
            "MultiPolygon" => coords
                .as_array()
                .ok_or_else(|| "malformed coordinates: expected a list of polygons".to_string())
                .and_then(|list| list.iter().map(polygon).collect::<Result<Vec<_>, _>>())
                .map(|ps| {
                    let ps: Vec<Polygon<f64>> = ps.into_iter().flatten().collect();
                    if ps.is_empty() { SourceGeometry::Empty } else { SourceGeometry::Polygons(MultiPolygon::new(ps)) }
                }),
            other => Ok(SourceGeometry::Unsupported(clip(other, 80))),
        }
    };
    result.unwrap_or_else(SourceGeometry::Malformed)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn format_error(path: &Path, reason: String) -> IngestError {
    IngestError::Format { path: path.to_path_buf(), reason }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ingest::blocks::{BlockReadOptions, read_blocks};
    use serde_json::json;

    fn write(dir: &tempfile::TempDir, name: &str, v: &Value) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, v.to_string()).unwrap();
        path
    }

    fn point(id: Value, x: Value, y: Value) -> Value {
        json!({"type": "Feature", "id": id, "properties": {"name": "p"}, "geometry": {"type": "Point", "coordinates": [x, y]}})
    }

    #[test]
    fn reads_points_and_rejects_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let fc = json!({"type": "FeatureCollection", "features": [
            point(json!(7), json!(-118.28), json!(34.04)),
            point(json!("b"), json!(-138.0), json!(27.0)),
            {"type": "Feature", "properties": {}, "geometry": null},
            {"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}},
            point(Value::Null, json!(-118.0), json!(95.0)),
            {"type": "Feature", "properties": {}, "geometry": {"type": "MultiPoint", "coordinates": [[-118.1, 34.1]]}},
            {"type": "Feature", "properties": {}, "geometry": {"type": "MultiPoint", "coordinates": [[-118.1, 34.1], [-118.2, 34.2]]}},
            {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": ["a", 1]}},
        ]});
        let read = read_points(&write(&dir, "p.geojson", &fc), None).unwrap();
        assert_eq!(read.crs, "EPSG:4326");
        let numbers: Vec<usize> = read.points.iter().map(|p| p.number).collect();
        assert_eq!(numbers, [1, 2, 6]);
        assert_eq!(read.points[0].id.as_deref(), Some("7"));
        assert_eq!((read.points[1].lon, read.points[1].lat), (-138.0, 27.0));
        assert_eq!(read.points[0].properties["name"], json!("p"));
        let reasons: Vec<(&str, &str)> =
            read.rejected.iter().map(|r| (r.location.as_str(), r.reason.as_str())).collect();
        assert_eq!(reasons.len(), 5, "{reasons:?}");
        assert_eq!(reasons[0], ("feature 3", "empty geometry (no location)"));
        assert!(reasons[1].1.contains("LineString"), "{reasons:?}");
        assert!(reasons[2].1.contains("outside") && reasons[2].1.contains("CRS may be wrong"), "{reasons:?}");
        assert!(reasons[3].1.contains("MultiPoint with 2 points"), "{reasons:?}");
        assert!(reasons[4].1.contains("malformed"), "{reasons:?}");
    }

    #[test]
    fn honours_legacy_crs_member() {
        let dir = tempfile::tempdir().unwrap();
        let crs = Crs::from_epsg(3310).unwrap();
        let (x, y) = crs.from_wgs84(-118.2856, 34.0409).unwrap();
        let fc = json!({"type": "FeatureCollection",
            "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3310"}},
            "features": [point(json!(1), json!(x), json!(y))]});
        let read = read_points(&write(&dir, "p.geojson", &fc), None).unwrap();
        assert_eq!(read.crs, "EPSG:3310");
        assert!((read.points[0].lon - -118.2856).abs() < 1e-9 && (read.points[0].lat - 34.0409).abs() < 1e-9);

        let crs84 = json!({"type": "FeatureCollection",
            "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
            "features": [point(json!(1), json!(-118.0), json!(34.0))]});
        let read = read_points(&write(&dir, "q.geojson", &crs84), None).unwrap();
        assert_eq!((read.points[0].lon, read.points[0].lat), (-118.0, 34.0));

        let bad = json!({"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:99999"}}, "features": []});
        let err = read_points(&write(&dir, "r.geojson", &bad), None).unwrap_err();
        assert!(
            matches!(&err, IngestError::Crs { reason, .. } if reason.contains("EPSG:99999") && reason.contains("--source-crs")),
            "{err}"
        );
    }

    #[test]
    fn projected_geojson_without_crs_asks_for_source_crs() {
        let dir = tempfile::tempdir().unwrap();
        let fc =
            json!({"type": "FeatureCollection", "features": [point(json!(1), json!(6_480_000.0), json!(1_840_000.0))]});
        let path = write(&dir, "p.geojson", &fc);
        let err = read_points(&path, None).unwrap_err();
        assert!(matches!(&err, IngestError::Crs { reason, .. } if reason.contains("--source-crs")), "{err}");
        let read = read_points(&path, Some(&Crs::from_epsg(2229).unwrap())).unwrap();
        assert!((read.points[0].lon - -118.2695921).abs() < 1e-6 && (read.points[0].lat - 34.0481104).abs() < 1e-6);
    }

    #[test]
    fn detects_and_reads_esri_json() {
        let dir = tempfile::tempdir().unwrap();
        let esri_points = json!({"type": "FeatureCollection", "features": [
            {"attributes": {"OBJECTID": 1, "name": "a"}, "geometry": {"x": 6_480_000.0, "y": 1_840_000.0}},
            {"attributes": {"OBJECTID": 2}, "geometry": {"x": "NaN", "y": "NaN"}},
        ]});
        let map = |v: &Value| match v {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        assert!(is_esri(&map(&esri_points)));
        assert!(!is_esri(&map(
            &json!({"type": "FeatureCollection", "features": [point(json!(1), json!(0), json!(0))]})
        )));

        let path = write(&dir, "hospitals.geojson", &esri_points);
        // No spatialReference and projected numbers: do not guess.
        let err = read_points(&path, None).unwrap_err();
        assert!(
            matches!(&err, IngestError::Crs { reason, .. } if reason.contains("Esri JSON") && reason.contains("--source-crs")),
            "{err}"
        );
        let read = read_points(&path, Some(&Crs::from_epsg(2229).unwrap())).unwrap();
        assert_eq!(read.points.len(), 1);
        assert_eq!(read.points[0].properties["name"], json!("a"));
        assert!((read.points[0].lon - -118.2695921).abs() < 1e-6);
        assert_eq!(read.rejected[0].reason, "empty geometry (no location)");
        assert!(read.warnings.iter().any(|w| w.contains("Esri JSON") && w.contains("ogr2ogr")), "{:?}", read.warnings);

        let with_sr = json!({"spatialReference": {"wkid": 102645, "latestWkid": 2229}, "geometryType": "esriGeometryPoint",
            "features": [{"attributes": {}, "geometry": {"x": 6_480_000.0, "y": 1_840_000.0}}]});
        let read = read_points(&write(&dir, "sr.json", &with_sr), None).unwrap();
        assert_eq!(read.crs, "EPSG:2229");
    }

    #[test]
    fn esri_polygons_become_blocks() {
        let dir = tempfile::tempdir().unwrap();
        // Esri winding: exterior clockwise, hole counter-clockwise.
        let fc = json!({"spatialReference": {"wkid": 4326}, "features": [{"attributes": {"GEOID20": "060370001001000"},
            "geometry": {"rings": [[[0, 0], [0, 10], [10, 10], [10, 0], [0, 0]], [[2, 2], [4, 2], [4, 4], [2, 4], [2, 2]]]}}]});
        let read = read_blocks(&write(&dir, "b.geojson", &fc), &BlockReadOptions::default()).unwrap();
        assert_eq!(read.blocks[0].id, "060370001001000");
        assert_eq!(read.blocks[0].geometry.0[0].interiors().len(), 1);
    }

    #[test]
    fn document_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let feature = point(json!("x"), json!(-118.0), json!(34.0));
        assert_eq!(read_points(&write(&dir, "f.geojson", &feature), None).unwrap().points.len(), 1);
        let bare = json!({"type": "Point", "coordinates": [-118.0, 34.0]});
        let err = read_points(&write(&dir, "g.geojson", &bare), None).unwrap_err();
        assert!(err.to_string().contains("bare Point geometry"), "{err}");
        let err = read_points(&write(&dir, "h.geojson", &json!([1, 2])), None).unwrap_err();
        assert!(err.to_string().contains("FeatureCollection"), "{err}");

        let broken = dir.path().join("broken.geojson");
        std::fs::write(&broken, "{\"type\": \"FeatureCollection\",\n \"features\": [,]}").unwrap();
        let err = read_points(&broken, None).unwrap_err();
        assert!(matches!(err, IngestError::Format { .. }));
        assert!(err.to_string().contains("line 2 column"), "{err}");
    }

    #[test]
    fn polygon_features_as_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let square = |x: f64| json!([[[x, 0.0], [x + 1.0, 0.0], [x + 1.0, 1.0], [x, 1.0], [x, 0.0]]]);
        let fc = json!({"type": "FeatureCollection", "features": [
            {"type": "Feature", "id": "a", "properties": {"name": "A", "pop": 3}, "geometry": {"type": "Polygon", "coordinates": square(0.0)}},
            {"type": "Feature", "id": 2, "properties": {"name": "B"}, "geometry": {"type": "MultiPolygon", "coordinates": [square(2.0), square(4.0)]}},
            {"type": "Feature", "id": "c", "properties": {}, "geometry": {"type": "Point", "coordinates": [0, 0]}},
            {"type": "Feature", "id": "d", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}},
        ]});
        let path = write(&dir, "blocks.geojson", &fc);
        let opts = BlockReadOptions { skip_invalid: true, ..Default::default() };
        let read = read_blocks(&path, &opts).unwrap();
        assert_eq!(read.id_field, "(feature id)");
        assert_eq!(read.name_field.as_deref(), Some("name"));
        let ids: Vec<&str> = read.blocks.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["a", "2"]);
        assert_eq!(read.blocks[0].name.as_deref(), Some("A"));
        assert_eq!(read.blocks[0].attributes["pop"], json!(3));
        assert!(!read.blocks[0].attributes.contains_key("name"));
        assert_eq!(read.blocks[1].geometry.0.len(), 2);
        assert_eq!(read.rejected.len(), 2);
        assert!(read.rejected[0].reason.contains("geometry type Point is not supported for blocks"));
        assert!(read.rejected[1].reason.contains("fewer than"), "{}", read.rejected[1].reason);
        let err = read_blocks(&path, &BlockReadOptions::default()).unwrap_err();
        assert!(matches!(err, IngestError::Invalid { ref rejections, .. } if rejections.len() == 2));
    }

    /// Issue 12.4: block (and area) ids and names are limited like people's.
    #[test]
    fn one_validation_for_every_door_block_ids() {
        let dir = tempfile::tempdir().unwrap();
        let square = |x: f64| json!([[[x, 0.0], [x + 1.0, 0.0], [x + 1.0, 1.0], [x, 1.0], [x, 0.0]]]);
        let feature = |id: &str, name: &str, x: f64| json!({"type": "Feature", "properties": {"GEOID20": id, "NAME20": name}, "geometry": {"type": "Polygon", "coordinates": square(x)}});
        let long_id = "0".repeat(2_000_000);
        let fc = json!({"type": "FeatureCollection", "features": [
            feature("060370001", "Block 1", 0.0),
            feature(&long_id, "Block 2", 2.0),
            feature("06037\u{1}0003", "Block 3", 4.0),
            feature("060370004", &"n".repeat(1001), 6.0),
        ]});
        let path = write(&dir, "blocks.geojson", &fc);
        let err = read_blocks(&path, &BlockReadOptions::default()).unwrap_err();
        let IngestError::Invalid { rejections, .. } = &err else { panic!("{err}") };
        let got: Vec<(&str, Option<&str>)> =
            rejections.iter().map(|j| (j.location.as_str(), j.field.as_deref())).collect();
        assert_eq!(
            got,
            [("feature 2", Some("GEOID20")), ("feature 3", Some("GEOID20")), ("feature 4", Some("NAME20"))]
        );
        assert!(rejections[0].reason.contains("longer than 200 characters"), "{}", rejections[0].reason);
        assert!(err.to_string().len() < 2000, "the message stays short");
        let read = read_blocks(&path, &BlockReadOptions { skip_invalid: true, ..Default::default() }).unwrap();
        assert_eq!(read.blocks.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(), ["060370001"]);
    }

    /// Issue 12.5: a vertex outside the area of the file's CRS rejects its feature, and a
    /// point outside it rejects its resource.
    #[test]
    fn projected_coordinates_outside_their_crs_in_geometry_imports() {
        let dir = tempfile::tempdir().unwrap();
        let crs = Crs::from_epsg(2229).unwrap();
        let (x, y) = crs.from_wgs84(-118.28, 34.04).unwrap();
        let ring = |far: f64| json!([[[x, y], [x + 100.0, y], [x + 100.0, y + far], [x, y + 100.0], [x, y]]]);
        let fc = json!({"type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "EPSG:2229"}},
        "features": [
            {"type": "Feature", "properties": {"GEOID20": "good"}, "geometry": {"type": "Polygon", "coordinates": ring(100.0)}},
            {"type": "Feature", "properties": {"GEOID20": "far"}, "geometry": {"type": "Polygon", "coordinates": ring(1e9)}},
        ]});
        let path = write(&dir, "blocks.geojson", &fc);
        let read = read_blocks(&path, &BlockReadOptions { skip_invalid: true, ..Default::default() }).unwrap();
        assert_eq!(read.blocks.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(), ["good"]);
        assert_eq!(read.rejected.len(), 1);
        assert!(
            read.rejected[0].reason.contains("outside the area EPSG:2229 can represent"),
            "{}",
            read.rejected[0].reason
        );

        let points = json!({"type": "FeatureCollection",
            "crs": {"type": "name", "properties": {"name": "EPSG:3857"}},
            "features": [point(json!(1), json!(-13_167_000.0), json!(4_035_000.0)), point(json!(2), json!(-1e12), json!(1e12))]});
        let read = read_points(&write(&dir, "p.geojson", &points), None).unwrap();
        assert_eq!(read.points.len(), 1);
        assert_eq!(read.rejected.len(), 1);
        assert!(read.rejected[0].reason.contains("EPSG:3857"), "{}", read.rejected[0].reason);
    }
}
