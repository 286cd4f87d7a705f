//! Roll-ups: coverage per census tract or per area of an imported polygon layer
//! (`belong coverage --by`, `GET /coverage/rollup`), and the import of those layers
//! (`belong import areas`, `POST /imports/areas`). Area files are read by the block reader, so
//! they take the same formats, CRSs, validation and rejection reports as block files.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::{AppError, HasRejections};
use crate::core::area::{AreaMembership, TRACT, check_layer_name};
use crate::core::coverage::BlockCoverage;
use crate::core::rollup::{RollupRow, by_tract, rollup};
use crate::core::{Area, AreaLayer};
use crate::ingest::blocks::{BlockReadOptions, read_blocks};
use crate::ingest::{FilterReport, IngestError, Rejection};
use crate::store::{AreasReplaced, Store};

/// Why a roll-up or an area import could not be done.
#[derive(Debug, thiserror::Error)]
pub enum RollupError {
    /// The layer name is not valid, or is the reserved `tract` (nothing was imported).
    #[error("{0}")]
    InvalidLayer(String),
    /// No area layer has this name.
    #[error("no roll-up '{layer}': use {}", choices(.available))]
    UnknownLayer {
        /// The name asked for.
        layer: String,
        /// What can be asked for instead: `tract` and the imported layers.
        available: Vec<String>,
    },
    /// Reading the file or the database failed.
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<crate::store::StoreError> for RollupError {
    fn from(e: crate::store::StoreError) -> Self {
        RollupError::App(e.into())
    }
}

fn choices(available: &[String]) -> String {
    match available {
        [only] => format!("by={only}, or import an area layer with `belong import areas PATH --name NAME`"),
        _ => format!("one of: {}", available.join(", ")),
    }
}

/// One way to group blocks, as listed by `GET /coverage/rollup/layers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Grouping {
    /// What to pass as `by`: `tract` or an area layer's name.
    pub name: String,
    /// `tract` (built in: the first 11 characters of 15-digit block ids) or `areas`.
    pub kind: String,
    /// Number of areas in the layer (`null` for tracts).
    #[schema(nullable)]
    pub areas: Option<u64>,
    /// Name of the file the layer was imported from (`upload.geojson` for uploads).
    #[schema(nullable)]
    pub source: Option<String>,
    /// When the layer was imported (RFC 3339 UTC).
    #[schema(nullable)]
    pub imported_at: Option<String>,
}

/// Every grouping: `tract` first, then the area layers by name.
pub fn groupings(store: &dyn Store) -> Result<Vec<Grouping>, RollupError> {
    let tract = Grouping { name: TRACT.into(), kind: "tract".into(), areas: None, source: None, imported_at: None };
    let layers = store.area_layers()?.into_iter().map(|l: AreaLayer| Grouping {
        name: l.name,
        kind: "areas".into(),
        areas: Some(l.areas),
        source: l.source,
        imported_at: Some(l.imported_at),
    });
    Ok(std::iter::once(tract).chain(layers).collect())
}

fn unknown(store: &dyn Store, layer: &str) -> RollupError {
    match groupings(store) {
        Ok(g) => {
            RollupError::UnknownLayer { layer: layer.to_string(), available: g.into_iter().map(|g| g.name).collect() }
        }
        Err(e) => e,
    }
}

/// Block-to-area assignments per layer, kept until the blocks or the layer are re-imported
/// (placing 110,000 blocks by their interior points is worth doing once, not per request).
#[derive(Debug, Default)]
pub struct MembershipCache {
    /// Layer → ((catchment version, layer version), assignment).
    layers: HashMap<String, ((i64, i64), Arc<AreaMembership>)>,
}

impl MembershipCache {
    /// The current assignment of the catchment's blocks to the areas of `layer`.
    pub fn membership(&mut self, store: &dyn Store, layer: &str) -> Result<Arc<AreaMembership>, RollupError> {
        let areas_version = store.areas_version(layer)?;
        if areas_version == 0 {
            return Err(unknown(store, layer));
        }
        let key = (store.catchment_version()?, areas_version);
        if let Some((k, m)) = self.layers.get(layer)
            && *k == key
        {
            return Ok(m.clone());
        }
        let membership = Arc::new(AreaMembership::compute(&store.areas(layer)?, &store.blocks()?));
        self.layers.insert(layer.to_string(), (key, membership.clone()));
        Ok(membership)
    }
}

/// Roll `blocks` (the per-block coverage of the catchment) up `by` `tract` or an area layer.
pub fn rollup_rows<'a>(
    cache: &mut MembershipCache,
    store: &dyn Store,
    blocks: impl IntoIterator<Item = &'a BlockCoverage>,
    by: &str,
) -> Result<Vec<RollupRow>, RollupError> {
    if by == TRACT {
        return Ok(by_tract(blocks));
    }
    let membership = cache.membership(store, by)?;
    Ok(rollup(blocks, |id| membership.area_of(id)))
}

/// Coverage of the stored catchment for `target`, rolled up `by` `tract` or an area layer.
pub fn coverage_rollup(store: &dyn Store, by: &str, target: u32) -> Result<Vec<RollupRow>, RollupError> {
    let coverage = super::coverage(store, target)?;
    rollup_rows(&mut MembershipCache::default(), store, &coverage.blocks, by)
}

/// Outcome of an area import.
#[derive(Debug, Serialize)]
pub struct AreaImport {
    /// Source CRS label.
    pub crs: String,
    /// Field the ids came from.
    pub id_field: String,
    /// Field the names came from.
    pub name_field: Option<String>,
    /// What changed in the store.
    pub replaced: AreasReplaced,
    /// Features skipped with `--skip-invalid`.
    pub rejected: Vec<Rejection>,
    /// Notes about the file.
    pub warnings: Vec<String>,
    /// What `--where` / `--within` kept and dropped (absent without filters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filtered: Option<FilterReport>,
}

impl HasRejections for AreaImport {
    fn rejections(&self) -> &[Rejection] {
        &self.rejected
    }
}

/// The block reader's messages, about areas.
fn reword(text: &str) -> String {
    text.replace("block id", "area id")
        .replace("read blocks from", "read areas from")
        .replace("for blocks", "for areas")
}

fn reword_rejections(rejections: Vec<Rejection>) -> Vec<Rejection> {
    rejections.into_iter().map(|r| Rejection { reason: reword(&r.reason), ..r }).collect()
}

fn reword_error(e: IngestError) -> IngestError {
    match e {
        IngestError::Invalid { path, rejections } => {
            IngestError::Invalid { path, rejections: reword_rejections(rejections) }
        }
        IngestError::Format { path, reason } => IngestError::Format { path, reason: reword(&reason) },
        IngestError::Crs { path, reason } => IngestError::Crs { path, reason: reword(&reason) },
        other => other,
    }
}

/// Replace area layer `layer` with the polygons in `path` (shapefile, zipped shapefile or
/// GeoJSON, any CRS). All or nothing: on any error the stored layer is unchanged, and unless
/// `opts.skip_invalid` one invalid feature refuses the file, listing every invalid feature.
pub fn import_areas(
    store: &dyn Store,
    path: &Path,
    layer: &str,
    opts: &BlockReadOptions,
) -> Result<AreaImport, RollupError> {
    check_layer_name(layer).map_err(RollupError::InvalidLayer)?;
    let read = read_blocks(path, opts).map_err(|e| AppError::from(reword_error(e)))?;
    if read.blocks.is_empty() {
        let reason = format!("no valid area in the file; layer '{layer}' is unchanged");
        return Err(AppError::from(IngestError::Format { path: path.to_path_buf(), reason }).into());
    }
    let areas: Vec<Area> = read.blocks.into_iter().map(Area::from).collect();
    // Only the file's name: the layer list is public, and a server path is nobody's business.
    let source = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let replaced = store.replace_areas(layer, &areas, &source)?;
    Ok(AreaImport {
        crs: read.crs,
        id_field: read.id_field,
        name_field: read.name_field,
        replaced,
        rejected: reword_rejections(read.rejected),
        warnings: read.warnings,
        filtered: read.filtered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{Attributes, Block, Person, Role};
    use crate::store::SqliteStore;
    use geo::{MultiPolygon, polygon};

    fn square(id: &str, x0: f64, y0: f64, x1: f64, y1: f64) -> Block {
        let p = polygon![(x: x0, y: y0), (x: x1, y: y0), (x: x1, y: y1), (x: x0, y: y1), (x: x0, y: y0)];
        Block { id: id.into(), name: None, geometry: MultiPolygon(vec![p]), attributes: Attributes::new() }
    }

    fn geojson(dir: &Path, name: &str, squares: &[(&str, &str, f64, f64, f64, f64)]) -> std::path::PathBuf {
        let features: Vec<serde_json::Value> = squares
            .iter()
            .map(|&(id, name, x0, y0, x1, y1)| {
                serde_json::json!({
                    "type": "Feature",
                    "properties": { "id": id, "name": name },
                    "geometry": { "type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]] }
                })
            })
            .collect();
        let path = dir.join(name);
        std::fs::write(&path, serde_json::json!({ "type": "FeatureCollection", "features": features }).to_string())
            .unwrap();
        path
    }

    fn store_with_blocks() -> SqliteStore {
        let store = SqliteStore::open_in_memory().unwrap();
        let blocks = [
            square("060370001001000", 0.0, 0.0, 1.0, 1.0),
            square("060370001001001", 1.0, 0.0, 2.0, 1.0),
            square("060370002001000", 2.0, 0.0, 3.0, 1.0),
        ];
        store.replace_blocks(&blocks, &[], &[], "t").unwrap();
        let resident = |id: &str, block: &str| Person {
            id: id.into(),
            role: Role::Resident,
            lon: 0.0,
            lat: 0.0,
            name: None,
            phone: None,
            email: None,
            interested: false,
            active: true,
            adopted_block: None,
            adopted_until: None,
            home_block: Some(block.into()),
        };
        let mut amb = resident("a1", "060370001001001");
        amb.role = Role::Ambassador;
        store
            .upsert_people(
                &[
                    resident("r1", "060370001001000"),
                    resident("r2", "060370001001000"),
                    resident("r3", "060370002001000"),
                    amb,
                ],
                "t",
            )
            .unwrap();
        store
    }

    #[test]
    fn areas_import_replaces_the_layer_and_rolls_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_blocks();
        let path = geojson(
            dir.path(),
            "n.geojson",
            &[("west", "West", 0.0, 0.0, 1.5, 1.0), ("east", "East", 1.5, 0.0, 2.5, 1.0)],
        );
        let r = import_areas(&store, &path, "neighbourhoods", &BlockReadOptions::default()).unwrap();
        assert_eq!((r.replaced.areas, r.replaced.previous, r.id_field.as_str()), (2, 0, "id"));
        let rows = coverage_rollup(&store, "neighbourhoods", 1).unwrap();
        type Row<'a> = (Option<&'a str>, Option<&'a str>, u64, u64, u64, u64);
        let got: Vec<Row<'_>> = rows
            .iter()
            .map(|r| {
                (
                    r.group.as_deref(),
                    r.name.as_deref(),
                    r.blocks,
                    r.covered_blocks,
                    r.residents,
                    r.residents_in_uncovered_blocks,
                )
            })
            .collect();
        // Block 3's interior point (2.5, 0.5) is on east's edge: inside (closed polygons).
        // Block 2's (1.5, 0.5) is on the shared edge: "east" sorts first.
        assert_eq!(got, [(Some("east"), Some("East"), 2, 1, 1, 1), (Some("west"), Some("West"), 1, 0, 2, 2)]);
        // Re-import: replaced whole, and blocks in no area get the null group.
        let path = geojson(dir.path(), "n2.geojson", &[("only", "Only", 0.0, 0.0, 1.0, 1.0)]);
        let r = import_areas(&store, &path, "neighbourhoods", &BlockReadOptions::default()).unwrap();
        assert_eq!((r.replaced.areas, r.replaced.previous), (1, 2));
        let rows = coverage_rollup(&store, "neighbourhoods", 1).unwrap();
        assert_eq!(
            rows.iter().map(|r| (r.group.as_deref(), r.blocks)).collect::<Vec<_>>(),
            [(Some("only"), 1), (None, 2)]
        );
        let g = groupings(&store).unwrap();
        assert_eq!(
            g.iter().map(|g| (g.name.as_str(), g.areas)).collect::<Vec<_>>(),
            [("tract", None), ("neighbourhoods", Some(1))]
        );
    }

    #[test]
    fn tract_rollup_and_unknown_layers() {
        let store = store_with_blocks();
        let rows = coverage_rollup(&store, "tract", 1).unwrap();
        assert_eq!(
            rows.iter().map(|r| (r.group.as_deref(), r.blocks, r.residents)).collect::<Vec<_>>(),
            [(Some("06037000100"), 2, 2), (Some("06037000200"), 1, 1)]
        );
        let err = coverage_rollup(&store, "wards", 1).unwrap_err();
        assert!(matches!(&err, RollupError::UnknownLayer { available, .. } if available == &["tract"]), "{err}");
        assert!(err.to_string().contains("belong import areas"), "{err}");
    }

    #[test]
    fn bad_layer_names_and_invalid_files_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_blocks();
        let ok = geojson(dir.path(), "a.geojson", &[("x", "X", 0.0, 0.0, 1.0, 1.0)]);
        for bad in ["tract", "Wards", ""] {
            let err = import_areas(&store, &ok, bad, &BlockReadOptions::default()).unwrap_err();
            assert!(matches!(err, RollupError::InvalidLayer(_)), "{bad}: {err}");
        }
        import_areas(&store, &ok, "wards", &BlockReadOptions::default()).unwrap();
        let dup = geojson(dir.path(), "d.geojson", &[("y", "Y", 0.0, 0.0, 1.0, 1.0), ("y", "Y2", 1.0, 0.0, 2.0, 1.0)]);
        let err = import_areas(&store, &dup, "wards", &BlockReadOptions::default()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("duplicate area id 'y'") && text.contains("feature 2"), "{text}");
        assert_eq!(store.areas("wards").unwrap().iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["x"]);
    }
}
