//! A collection's features as a file download (GeoPackage, FlatGeobuf, zipped shapefile): the
//! schema from the collection's typed properties, the rows from a selection of its features
//! with the snapshot's values (the blocks' counts are current: [`super::Layers::with_counts`]
//! re-serializes them). The writers are in [`crate::export::download`].

use std::path::Path;

use serde_json::Value;

use super::{Collection, GeometryKind, PropertyKind, Shape};
use crate::export::download::{
    DownloadFormat, ExportError, Field, FieldType, Geometry, GeometryType, LayerSchema, OutputCrs, Row, Rows,
    is_date_text, write_download,
};

/// The layer `c` as the writers see it: named by its id, each property typed by its kind, and
/// a text property whose every value is a `YYYY-MM-DD` day typed as a date.
pub fn download_schema(c: &Collection) -> LayerSchema {
    let dates = dates(c);
    let fields = c
        .properties
        .iter()
        .zip(dates)
        .map(|(p, &is_date)| Field {
            name: p.name.clone(),
            kind: match p.kind {
                PropertyKind::Boolean => FieldType::Boolean,
                PropertyKind::Integer => FieldType::Integer,
                PropertyKind::Number => FieldType::Real,
                PropertyKind::String if is_date => FieldType::Date,
                PropertyKind::String => FieldType::Text,
            },
        })
        .collect();
    LayerSchema {
        name: c.id.to_string(),
        description: c.description.to_string(),
        geometry: match c.geometry {
            GeometryKind::Point => GeometryType::Point,
            GeometryKind::MultiPolygon => GeometryType::MultiPolygon,
        },
        fields,
    }
}

/// Per property of `c`: whether it has at least one value and every value is a day. Decided
/// over the whole collection, not a selection, so a filtered download has the same columns.
fn dates(c: &Collection) -> &[bool] {
    c.dates.get_or_init(|| {
        // None: no value seen yet; Some(all days so far).
        let mut seen: Vec<Option<bool>> = vec![None; c.properties.len()];
        let mut open: Vec<usize> =
            c.properties.iter().enumerate().filter(|(_, p)| p.kind == PropertyKind::String).map(|(i, _)| i).collect();
        for f in c.features.iter() {
            if open.is_empty() {
                break;
            }
            let props = f.properties();
            open.retain(|&i| {
                match props.get(&c.properties[i].name) {
                    None | Some(Value::Null) => {}
                    Some(Value::String(s)) if is_date_text(s) => seen[i] = Some(true),
                    Some(_) => seen[i] = Some(false),
                }
                seen[i] != Some(false)
            });
        }
        seen.into_iter().map(|s| s == Some(true)).collect()
    })
}

/// Features of a collection at `positions`, in that order.
struct Selection<'a> {
    collection: &'a Collection,
    positions: &'a [usize],
    fields: Vec<&'a str>,
}

impl Rows for Selection<'_> {
    fn len(&self) -> usize {
        self.positions.len()
    }

    fn visit(&self, f: &mut dyn FnMut(Row<'_>) -> Result<(), ExportError>) -> Result<(), ExportError> {
        let mut values: Vec<Value> = Vec::with_capacity(self.fields.len());
        for &i in self.positions {
            let Some(feature) = self.collection.features.get(i) else { continue };
            let mut props = feature.properties();
            values.clear();
            values.extend(self.fields.iter().map(|name| props.remove(*name).unwrap_or(Value::Null)));
            let geometry = match &feature.shape {
                Shape::Point(lon, lat) => Geometry::Point(*lon, *lat),
                Shape::Area(mp) => Geometry::MultiPolygon(mp),
            };
            f(Row { geometry, values: &values })?;
        }
        Ok(())
    }
}

fn write_selection(
    c: &Collection,
    positions: &[usize],
    format: DownloadFormat,
    crs: &OutputCrs,
    path: &Path,
) -> Result<(), ExportError> {
    let layer = download_schema(c);
    let rows = Selection { collection: c, positions, fields: c.properties.iter().map(|p| p.name.as_str()).collect() };
    write_download(format, path, &layer, &rows, crs)
}

/// The features of `c` at `positions` (collection positions, as [`super::Matches::page`] gives
/// them) as a `format` file in `crs`, in an anonymous temporary file (gone when closed), read
/// from its start.
pub fn download_file(
    c: &Collection,
    positions: &[usize],
    format: DownloadFormat,
    crs: &OutputCrs,
) -> Result<std::fs::File, ExportError> {
    let tmp = tempfile::Builder::new().prefix("belong-download-").tempfile()?;
    write_selection(c, positions, format, crs, tmp.path())?;
    // A new handle to the same file; dropping `tmp` removes only its name.
    let file = tmp.reopen()?;
    drop(tmp);
    Ok(file)
}

/// [`download_file`] into `path`: written beside it under a temporary name, then renamed, so
/// `path` is never a half-written file.
pub fn write_download_at(
    c: &Collection,
    positions: &[usize],
    format: DownloadFormat,
    crs: &OutputCrs,
    path: &Path,
) -> Result<(), ExportError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new().prefix(".belong-download-").tempfile_in(dir)?;
    write_selection(c, positions, format, crs, tmp.path())?;
    tmp.persist(path).map_err(|e| ExportError::Io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::layers::{BLOCKS, LayerInputs, Layers, RESOURCES, SCHOOL_READINESS};
    use crate::demo::{DemoSpec, blocks_wgs84};
    use std::collections::HashMap;

    fn layers(blocks: usize) -> Layers {
        let spec = DemoSpec { blocks, residents: None, ambassadors: None, resources: None, seed: 3 };
        let blocks = blocks_wgs84(&spec);
        let indicators: Vec<crate::core::IndicatorValue> = blocks
            .iter()
            .take(5)
            .map(|b| crate::core::IndicatorValue {
                block_id: b.id.clone(),
                indicator: "school_readiness".into(),
                value: 0.5,
                date: Some("2025-06-01".into()),
            })
            .collect();
        let counts = HashMap::new();
        Layers::from_parts(LayerInputs {
            blocks: &blocks,
            counts: &counts,
            outside: 0,
            indicators: &indicators,
            resources: &[],
            target: 1,
            cursor: 0,
        })
    }

    #[test]
    fn properties_are_typed_and_days_are_dates() {
        let layers = layers(40);
        let blocks = download_schema(layers.collection(BLOCKS).unwrap());
        let kind = |l: &LayerSchema, name: &str| l.fields.iter().find(|f| f.name == name).map(|f| f.kind);
        assert_eq!(blocks.geometry, GeometryType::MultiPolygon);
        assert_eq!(kind(&blocks, "block_id"), Some(FieldType::Text), "block ids stay text");
        assert_eq!(kind(&blocks, "residents"), Some(FieldType::Integer));
        assert_eq!(kind(&blocks, "covered"), Some(FieldType::Boolean));
        assert_eq!(kind(&blocks, "school_readiness"), Some(FieldType::Real));
        let readiness = download_schema(layers.collection(SCHOOL_READINESS).unwrap());
        assert_eq!(kind(&readiness, "date"), Some(FieldType::Date), "{readiness:?}");
        assert_eq!(kind(&readiness, "name"), Some(FieldType::Text));
        let resources = download_schema(layers.collection(RESOURCES).unwrap());
        assert_eq!(resources.geometry, GeometryType::Point);
    }

    #[test]
    fn a_whole_layer_past_one_page_is_written() {
        // More features than an items page may hold (10,000).
        let layers = layers(10_050);
        let c = layers.collection(BLOCKS).unwrap();
        assert!(c.features.len() > 10_000, "{}", c.features.len());
        let all: Vec<usize> = (0..c.features.len()).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.gpkg");
        write_download_at(c, &all, DownloadFormat::GeoPackage, &OutputCrs::wgs84(), &path).unwrap();
        let db = rusqlite::Connection::open(&path).unwrap();
        let n: usize = db.query_row("SELECT count(*) FROM blocks", [], |r| r.get(0)).unwrap();
        assert_eq!(n, c.features.len());
        let first: String = db.query_row("SELECT block_id FROM blocks WHERE fid = 1", [], |r| r.get(0)).unwrap();
        assert_eq!(first, c.features[0].id, "in collection order");
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(files, ["blocks.gpkg"], "no temporary file left beside it");
        // The anonymous file reads from its start.
        let mut f = download_file(c, &all[..3], DownloadFormat::FlatGeobuf, &OutputCrs::wgs84()).unwrap();
        let mut magic = [0u8; 3];
        std::io::Read::read_exact(&mut f, &mut magic).unwrap();
        assert_eq!(&magic, b"fgb");
    }
}
