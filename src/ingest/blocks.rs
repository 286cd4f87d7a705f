//! Block boundaries from a file — a shapefile (plain or zipped) or GeoJSON — reprojected to
//! WGS84 with RFC 7946 winding, checked feature by feature, ids always read as strings.
//!
//! The format readers (`shapefile`, [`super::geojson`]) hand over `SourceFile`s in
//! the file's own CRS; this module resolves the CRS, picks the id and name fields and turns
//! each feature into a [`Block`] or a [`Rejection`].

use std::collections::HashMap;
use std::path::Path;

use geo::{Coord, MapCoords, MultiPolygon};
use serde_json::Value;

use super::geometry;
use super::region::AppliedFilter;
use super::source::{
    LonLatScan, SourceFeature, SourceFile, SourceGeometry, non_finite, outside_lonlat, resolve_crs, value_to_text,
};
use super::{Crs, FeatureFilter, FilterReport, IngestError, Rejection, ZipLimits};
use crate::core::Block;
use crate::core::text::{clip_list, field_text, id_text, quote};

/// How to read a block file. Everything is optional: ids, names and the CRS are detected.
#[derive(Debug, Default)]
pub struct BlockReadOptions {
    /// The attribute holding block ids (default: the first of `GEOID20`, `GEOID10`, `GEOID`,
    /// `GEOID_20`, `BLOCKID20`, `BLOCKID10`, `BLOCK_ID`, `block_id`, `id`, any case).
    pub id_field: Option<String>,
    /// The attribute holding block names (default: `NAME20`, `NAME10`, `NAME` or `name`).
    pub name_field: Option<String>,
    /// The CRS of the coordinates, overriding the `.prj` or the GeoJSON `crs` member.
    pub source_crs: Option<Crs>,
    /// Import the valid blocks and report the others, instead of refusing the whole file.
    pub skip_invalid: bool,
    /// Keep only the features of a region (`--where`, `--within`); applied before validation.
    pub filter: FeatureFilter,
    /// How much a zipped shapefile may inflate to.
    pub zip: ZipLimits,
}

/// What [`read_blocks`] found.
#[derive(Debug)]
pub struct BlockRead {
    /// Valid blocks in file order: WGS84 lon/lat, exteriors counter-clockwise, holes
    /// clockwise, rings closed.
    pub blocks: Vec<Block>,
    /// Invalid features; only non-empty when `skip_invalid` was set.
    pub rejected: Vec<Rejection>,
    /// Label of the source CRS, e.g. `EPSG:2229` or a `.prj`'s name.
    pub crs: String,
    /// The field ids were taken from (`(feature id)` for GeoJSON feature ids).
    pub id_field: String,
    /// The field names were taken from, if any.
    pub name_field: Option<String>,
    /// Things the admin should know that did not stop the import (e.g. an assumed CRS).
    pub warnings: Vec<String>,
    /// What the filters kept and dropped; `None` without filters.
    pub filtered: Option<FilterReport>,
}

/// Id fields tried in order, case-insensitively, when none is given.
const ID_FIELDS: [&str; 9] =
    ["GEOID20", "GEOID10", "GEOID", "GEOID_20", "BLOCKID20", "BLOCKID10", "BLOCK_ID", "block_id", "id"];
/// Name fields tried in order, case-insensitively, when none is given.
const NAME_FIELDS: [&str; 4] = ["NAME20", "NAME10", "NAME", "name"];
/// What `BlockRead::id_field` says when GeoJSON feature ids were used.
const FEATURE_ID: &str = "(feature id)";

/// Reads block boundaries from a `.shp` (with `.shx`, `.dbf`, `.prj` beside it), a `.zip`
/// holding one shapefile, or a `.geojson`/`.json` FeatureCollection (Esri JSON is read too).
///
/// Unless `opts.skip_invalid` is set, one invalid feature refuses the whole file with
/// [`IngestError::Invalid`] listing every invalid feature.
pub fn read_blocks(path: &Path, opts: &BlockReadOptions) -> Result<BlockRead, IngestError> {
    let source = read_polygon_file(path, "blocks", opts.zip)?;
    build_blocks(path, source, opts)
}

/// The features of a polygon file by its extension, in the file's CRS; `what` names what is
/// read, for the message about an unknown extension ("blocks", "a region").
pub(crate) fn read_polygon_file(path: &Path, what: &str, zip: ZipLimits) -> Result<SourceFile, IngestError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "shp" => super::shapefile::read_shp(path),
        "zip" => super::shapefile::read_zip(path, zip),
        "geojson" | "json" => super::geojson::read_area_features(path),
        _ => {
            let kind = if ext.is_empty() { "a file without extension".to_string() } else { format!("a .{ext} file") };
            Err(IngestError::Format {
                path: path.to_path_buf(),
                reason: format!(
                    "cannot read {what} from {kind}; supported: a shapefile (.shp with .shx, .dbf and .prj beside it), \
                     a zipped shapefile (.zip) or GeoJSON (.geojson, .json)"
                ),
            })
        }
    }
}

fn build_blocks(path: &Path, source: SourceFile, opts: &BlockReadOptions) -> Result<BlockRead, IngestError> {
    let SourceFile { features, fields, crs: declared, mut warnings } = source;
    let scan = LonLatScan::of(features.iter().flat_map(|f| f.geometry.coords()));
    let crs = resolve_crs(path, declared, opts.source_crs.as_ref(), &scan, &mut warnings)?;
    let has_feature_ids = features.iter().any(|f| f.feature_id.is_some());
    let id_source = pick_id_field(path, &fields, opts.id_field.as_deref(), has_feature_ids)?;
    let name_field = match &opts.name_field {
        Some(wanted) => Some(find_field(&fields, wanted).ok_or_else(|| no_such_field(path, "name", wanted, &fields))?),
        None => NAME_FIELDS.iter().find_map(|c| find_field(&fields, c)).filter(|n| Some(n) != id_source.field()),
    };
    let id_label = id_source.field().map_or(FEATURE_ID, String::as_str).to_string();
    let mut filter = AppliedFilter::new(path, &opts.filter, &fields, &mut warnings)?;

    let file = path.display().to_string();
    let mut blocks = Vec::with_capacity(features.len());
    let mut rejected = Vec::new();
    let mut first_seen: HashMap<String, usize> = HashMap::with_capacity(features.len());
    for feature in features {
        let SourceFeature { number, geometry, mut properties, feature_id } = feature;
        if !filter.keeps_attributes(&properties) {
            continue;
        }
        // A feature that cannot be reprojected is kept: whether it is in the region is unknown,
        // and validation reports it.
        let geometry = to_wgs84(geometry, &crs);
        if let Ok(g) = &geometry
            && !filter.keeps_geometry(g)
        {
            continue;
        }
        let reject = |field: Option<&str>, reason: String| Rejection {
            file: file.clone(),
            location: format!("feature {number}"),
            field: field.map(str::to_string),
            reason,
        };
        let id_value = match &id_source {
            IdSource::Field(f) => properties.remove(f).unwrap_or(Value::Null),
            IdSource::FeatureId => feature_id.map_or(Value::Null, Value::String),
        };
        let mut problems = Vec::new();
        // Ids under the rule of every id (at most MAX_ID characters, no control characters):
        // a 2 M-character GEOID20 is a broken file, not a block.
        let id_checked = value_to_text(&id_value).map(|id| id.map(|id| id_text(&id).map(str::to_string)));
        let id = match id_checked {
            Ok(Some(Err(e))) => {
                problems.push(reject(Some(&id_label), format!("block id {e}")));
                None
            }
            Ok(Some(Ok(id))) => match first_seen.get(&id) {
                Some(first) => {
                    problems.push(reject(
                        Some(&id_label),
                        format!("duplicate block id '{id}' (first seen at feature {first})"),
                    ));
                    None
                }
                None => {
                    first_seen.insert(id.clone(), number);
                    Some(id)
                }
            },
            Ok(None) => {
                problems.push(reject(Some(&id_label), "missing block id".into()));
                None
            }
            Err(kind) => {
                problems.push(reject(Some(&id_label), format!("block id must be text or a number, not {kind}")));
                None
            }
        };
        let geometry = match geometry.and_then(|g| geometry::check_valid(&g).map(|()| g)) {
            Ok(g) => Some(g),
            Err(reason) => {
                problems.push(reject(None, reason));
                None
            }
        };
        let name =
            name_field.as_ref().and_then(|n| properties.remove(n)).and_then(|v| value_to_text(&v).ok().flatten());
        let name = match name.as_deref().map(field_text) {
            Some(Err(e)) => {
                problems.push(reject(name_field.as_deref(), format!("name {e}")));
                None
            }
            Some(Ok(name)) => name.map(str::to_string),
            None => None,
        };
        match (id, geometry) {
            (Some(id), Some(geometry)) if problems.is_empty() => {
                blocks.push(Block { id, name, geometry, attributes: properties });
            }
            _ => rejected.extend(problems),
        }
    }
    let filtered = filter.finish(path)?;
    if !opts.skip_invalid && !rejected.is_empty() {
        return Err(IngestError::Invalid { path: path.to_path_buf(), rejections: rejected });
    }
    Ok(BlockRead { blocks, rejected, crs: crs.label().to_string(), id_field: id_label, name_field, warnings, filtered })
}

/// Source geometry → WGS84 multipolygon with RFC 7946 winding, or why not. Validity is not
/// checked here ([`geometry::check_valid`]): a region file need not be valid.
pub(crate) fn to_wgs84(geometry: SourceGeometry, crs: &Crs) -> Result<MultiPolygon<f64>, String> {
    let source = match geometry {
        SourceGeometry::Empty => return Err("empty geometry".into()),
        SourceGeometry::Unsupported(kind) => {
            return Err(format!("geometry type {kind} is not supported for blocks; expected Polygon or MultiPolygon"));
        }
        SourceGeometry::Malformed(reason) => return Err(reason),
        SourceGeometry::Rings(rings) => {
            let coords = rings.iter().flat_map(|r| r.0.iter());
            if let Some((n, c)) = coords.enumerate().find(|(_, c)| !c.x.is_finite() || !c.y.is_finite()) {
                return Err(non_finite(n + 1, c));
            }
            geometry::group_rings(rings)?
        }
        SourceGeometry::Polygons(mp) => {
            if let Some((n, c)) = geometry::first_non_finite(&mp) {
                return Err(non_finite(n, &c));
            }
            mp
        }
    };
    let wgs84 = source
        .try_map_coords(|c| crs.to_wgs84(c.x, c.y).map(|(x, y)| Coord { x, y }))
        .map_err(|e| format!("cannot reproject: {e}"))?;
    if let Some(c) = geometry::first_outside_lonlat(&wgs84) {
        return Err(outside_lonlat(&c, crs));
    }
    Ok(geometry::orient_rfc7946(&wgs84))
}

/// Where block ids come from.
enum IdSource {
    Field(String),
    FeatureId,
}

impl IdSource {
    fn field(&self) -> Option<&String> {
        match self {
            IdSource::Field(f) => Some(f),
            IdSource::FeatureId => None,
        }
    }
}

fn pick_id_field(
    path: &Path,
    fields: &[String],
    wanted: Option<&str>,
    has_feature_ids: bool,
) -> Result<IdSource, IngestError> {
    if let Some(wanted) = wanted {
        if let Some(f) = find_field(fields, wanted) {
            return Ok(IdSource::Field(f));
        }
        if has_feature_ids && wanted.eq_ignore_ascii_case("id") {
            return Ok(IdSource::FeatureId);
        }
        return Err(no_such_field(path, "id", wanted, fields));
    }
    if let Some(f) = ID_FIELDS.iter().find_map(|c| find_field(fields, c)) {
        return Ok(IdSource::Field(f));
    }
    if has_feature_ids {
        return Ok(IdSource::FeatureId);
    }
    Err(IngestError::Format {
        path: path.to_path_buf(),
        reason: format!(
            "no block id field found (looked for {}); the fields are: {}; pass --id-field NAME",
            ID_FIELDS.join(", "),
            field_list(fields)
        ),
    })
}

/// `wanted` exactly, else the first field equal to it ignoring case.
pub(crate) fn find_field(fields: &[String], wanted: &str) -> Option<String> {
    fields.iter().find(|f| *f == wanted).or_else(|| fields.iter().find(|f| f.eq_ignore_ascii_case(wanted))).cloned()
}

fn no_such_field(path: &Path, what: &str, wanted: &str, fields: &[String]) -> IngestError {
    IngestError::Format {
        path: path.to_path_buf(),
        reason: format!("there is no {what} field {}; the fields are: {}", quote(wanted), field_list(fields)),
    }
}

/// A file's fields for a message: GeoJSON property names have no length or number limit.
pub(crate) fn field_list(fields: &[String]) -> String {
    if fields.is_empty() { "(none)".into() } else { clip_list(fields) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn id_field_detection() {
        let p = Path::new("x.shp");
        let fields = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let pick = |names: &[&str], wanted: Option<&str>, fid: bool| match pick_id_field(p, &fields(names), wanted, fid)
        {
            Ok(IdSource::Field(f)) => Ok(f),
            Ok(IdSource::FeatureId) => Ok(FEATURE_ID.to_string()),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(pick(&["STATEFP10", "GEOID10", "NAME10"], None, false).unwrap(), "GEOID10");
        assert_eq!(pick(&["geoid20", "GEOID10"], None, false).unwrap(), "geoid20");
        assert_eq!(pick(&["Id", "x"], None, false).unwrap(), "Id");
        assert_eq!(pick(&["tract", "csa"], Some("TRACT"), false).unwrap(), "tract");
        assert_eq!(pick(&["name"], None, true).unwrap(), FEATURE_ID);
        let err = pick(&["tract", "csa"], None, false).unwrap_err();
        assert!(err.contains("tract, csa") && err.contains("--id-field"), "{err}");
        let err = pick(&["tract", "csa"], Some("geoid"), false).unwrap_err();
        assert!(err.contains("\"geoid\"") && err.contains("tract, csa"), "{err}");
    }

    #[test]
    fn unknown_extension_names_the_supported_kinds() {
        let err = read_blocks(Path::new("blocks.kml"), &BlockReadOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, IngestError::Format { .. }));
        assert!(
            msg.contains(".kml") && msg.contains(".shp") && msg.contains(".zip") && msg.contains(".geojson"),
            "{msg}"
        );
    }
}
