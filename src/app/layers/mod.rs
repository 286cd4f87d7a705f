//! The public layers as an immutable in-memory snapshot shared by every request: each feature is
//! serialized to RFC 7946 GeoJSON once, and an R-tree of feature envelopes answers `bbox`
//! queries. What only a block, resource or indicator import changes (geometry, its JSON, the
//! indexes, the tile geometry) is built once and shared by every later snapshot; a write of
//! people makes the next snapshot with [`Layers::with_counts`], which re-serializes only the
//! features of the blocks whose counts changed (the feature table is copy-on-write in chunks,
//! see [`Chunked`]).
//!
//! Public layers carry per-block counts only, never people.

mod access;
mod as_of;
mod download;
mod filter;
mod props;

pub use access::{AccessBase, AccessLayer, RESOURCE_ACCESS, finder_of};
pub(crate) use access::{metres, score};
pub use as_of::BlocksAsOf;
pub use download::{download_file, download_schema, write_download_at};
pub use filter::{Filter, FilterError, GEOMETRY, Queryable, QueryableKind};
use props::{PropKeys, Props};

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use super::chunked::Chunked;
use crate::core::coverage::{BlockCounts, BlockCoverage, CoverageSummary};
use crate::core::reach::Finder;

use chrono::NaiveDate;
use geo::{BoundingRect, Coord, Intersects, MultiPolygon, Rect};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};
use serde_json::{Map, Value};

use super::AppError;
use super::output_crs::{OutputCrs, ProjectedBbox};
use crate::core::{CoverageReport, Resource};
use crate::export::{block_properties, latest_indicators, multipolygon_positions, round7};
use crate::ingest::CrsError;
use crate::store::Store;
use crate::tiles::{LiveValues, SourceFeature, SourceLayer, TileSource};

/// Id of the blocks collection.
pub const BLOCKS: &str = "blocks";
/// Id of the resources collection.
pub const RESOURCES: &str = "resources";
/// Id of the school-readiness collection.
pub const SCHOOL_READINESS: &str = "school-readiness";
/// The indicator served by the school-readiness collection.
pub const SCHOOL_READINESS_INDICATOR: &str = "school_readiness";
/// The block properties that change with people (every other property changes only with an
/// import): filtered by a scan instead of an index, and re-serialized per changed block.
pub const LIVE_BLOCK_PROPERTIES: &[&str] = &["ambassadors", "covered", "residents"];

/// Coverage of the served catchment: the headline numbers and one row per block, in block id
/// order (the order of the blocks collection).
#[derive(Debug, Clone)]
pub struct LiveCoverage {
    /// Headline numbers.
    pub summary: CoverageSummary,
    /// Per-block rows, by block position.
    pub blocks: Chunked<BlockCoverage>,
}

impl LiveCoverage {
    /// As a plain report (copies every row: for callers that need a slice).
    pub fn report(&self) -> CoverageReport {
        CoverageReport { summary: self.summary.clone(), blocks: self.blocks.iter().cloned().collect() }
    }
}

/// Everything the public read side serves, at one moment.
#[derive(Debug)]
pub struct Layers {
    /// The collections, in the order they are listed.
    pub collections: Vec<Collection>,
    /// Coverage of the catchment for [`Layers::target`].
    pub coverage: LiveCoverage,
    /// Active ambassadors a block needs to count as covered.
    pub target: u32,
    /// When the snapshot was built (UTC, RFC 3339).
    pub built_at: String,
    /// The position in the change feed this snapshot is current to (history `seq`).
    pub cursor: i64,
    /// The instant the counts were judged at (adoptions in effect then count).
    pub judged_at: chrono::DateTime<chrono::Utc>,
    /// The collections as vector-tile layers (geometry in Web Mercator, static properties),
    /// built on the first tile request and shared by every snapshot until the next import;
    /// the blocks' counts come from [`Layers::coverage`] when a tile is cut.
    tiles: Arc<OnceLock<TileSource>>,
    /// The finder over the resources, built on first use and shared until the next import.
    finder: Arc<OnceLock<Arc<Finder>>>,
    /// What the resource-access collection needs of blocks and resources: built on first use,
    /// shared until the next import.
    access_base: Arc<OnceLock<Arc<AccessBase>>>,
    /// The resource-access collection at this snapshot's residents: built on first use, then
    /// carried forward by every write ([`Layers::with_counts`]).
    access: OnceLock<Arc<AccessLayer>>,
}

/// What [`Layers::from_parts`] is built from.
pub struct LayerInputs<'a> {
    /// Blocks in id order.
    pub blocks: &'a [crate::core::Block],
    /// Per-block counts (missing blocks count zero).
    pub counts: &'a HashMap<String, BlockCounts>,
    /// People outside every block.
    pub outside: u64,
    /// Every indicator value.
    pub indicators: &'a [crate::core::IndicatorValue],
    /// Every resource.
    pub resources: &'a [Resource],
    /// Active ambassadors a block needs.
    pub target: u32,
    /// Change-feed position the inputs are current to.
    pub cursor: i64,
}

impl Layers {
    /// Read the store and build the snapshot. CPU- and I/O-heavy: run it off the async workers.
    pub fn build(store: &dyn Store, target: u32) -> Result<Layers, AppError> {
        let cursor = store.last_change()?;
        let mut blocks = store.blocks()?;
        blocks.sort_by(|a, b| a.id.cmp(&b.id));
        let (counts, outside) = store.coverage_counts()?;
        let indicators = store.indicators()?;
        let resources = store.resources()?;
        Ok(Layers::from_parts(LayerInputs {
            blocks: &blocks,
            counts: &counts,
            outside,
            indicators: &indicators,
            resources: &resources,
            target,
            cursor,
        }))
    }

    /// Build the snapshot from what was read (blocks in id order).
    pub fn from_parts(input: LayerInputs<'_>) -> Layers {
        let LayerInputs { blocks, counts, outside, indicators, resources, target, cursor } = input;
        let coverage = crate::core::coverage::compute(blocks.iter().map(|b| b.id.as_str()), counts, outside, target);
        let latest = latest_indicators(indicators);
        let indicator_names: BTreeSet<&str> = latest.values().flat_map(|m| m.keys().copied()).collect();
        let by_id: HashMap<&str, _> = coverage.blocks.iter().map(|c| (c.block_id.as_str(), c)).collect();

        // Serializing 110,000 features is the bulk of a county's start-up: on every core. Each
        // feature's properties map is folded into its collection's schema and dropped at once
        // (holding the maps of every block until the collections were built was ~170 MB of a
        // county's start-up peak).
        // `keys`: the last block's and readiness feature's property keys (shared when equal).
        let one_block = |b: &crate::core::Block, keys: &mut [Option<Arc<PropKeys>>; 2]| {
            let ind = latest.get(b.id.as_str());
            let mut props = block_properties(b, by_id.get(b.id.as_str()).copied(), target, ind);
            // Every feature carries every indicator (null when missing), so clients that infer a
            // schema from the first page (GDAL, QGIS) see all columns.
            for name in &indicator_names {
                props.entry((*name).to_string()).or_insert(Value::Null);
            }
            // Geometry, interior point and envelope are computed once for both collections.
            let place = Place::area(&b.geometry);
            let block = Arc::new(Feature::new(&b.id, &place, &props, &mut keys[0]));

            let v = ind.and_then(|m| m.get(SCHOOL_READINESS_INDICATOR));
            let mut p = Map::new();
            p.insert("block_id".into(), b.id.clone().into());
            p.insert("name".into(), b.name.clone().map_or(Value::Null, Value::from));
            p.insert("value".into(), v.map_or(Value::Null, |(_, x)| crate::export::json_number(*x)));
            p.insert("date".into(), v.and_then(|(d, _)| *d).map_or(Value::Null, Value::from));
            p.insert("no_data".into(), v.is_none().into());
            let readiness = Arc::new(Feature::new(&b.id, &place, &p, &mut keys[1]));
            (block, props, readiness, p)
        };
        let parts = par_chunks(blocks, |part| {
            let (mut blocks, mut readiness) = (Vec::with_capacity(part.len()), Vec::with_capacity(part.len()));
            let (mut block_schema, mut readiness_schema) = (Schema::default(), Schema::default());
            let mut keys = [None, None];
            for b in part {
                let (block, props, ready, p) = one_block(b, &mut keys);
                block_schema.add(&props);
                readiness_schema.add(&p);
                blocks.push(block);
                readiness.push(ready);
            }
            (blocks, readiness, block_schema, readiness_schema)
        });
        let mut block_features = Vec::with_capacity(blocks.len());
        let mut readiness_features = Vec::with_capacity(blocks.len());
        let (mut block_schema, mut readiness_schema) = (Schema::default(), Schema::default());
        for (blocks, readiness, bs, rs) in parts {
            block_features.extend(blocks);
            readiness_features.extend(readiness);
            block_schema.absorb(bs);
            readiness_schema.absorb(rs);
        }
        let resource_props: Vec<Map<String, Value>> =
            resources.iter().map(crate::export::resource_properties).collect();
        let mut keys = None;
        let resource_features = resources
            .iter()
            .zip(&resource_props)
            .map(|(r, p)| Arc::new(Feature::new(&r.id, &Place::point(r.lon, r.lat), p, &mut keys)))
            .collect();

        // School readiness shows the blocks' features: it shares their id map and index.
        let blocks_collection = Collection::with_schema(
            BLOCKS,
            "Blocks",
            "Census blocks of the catchment with residents, active ambassadors, coverage \
             (covered when ambassadors >= target) and the latest indicator values.",
            GeometryKind::MultiPolygon,
            block_features,
            block_schema.finish(),
            LIVE_BLOCK_PROPERTIES,
            None,
        );
        let readiness_collection = Collection::with_schema(
            SCHOOL_READINESS,
            "School readiness",
            "School readiness per block: the latest value and its date; `no_data` is true \
             where there is no value (never zero).",
            GeometryKind::MultiPolygon,
            readiness_features,
            readiness_schema.finish(),
            &[],
            Some(&blocks_collection),
        );
        let collections = vec![
            blocks_collection,
            Collection::new(
                RESOURCES,
                "Resources",
                "Community resources (partner organisations, schools, clinics, food banks, \
                 shelters) with their category, public contact fields and block.",
                GeometryKind::Point,
                resource_features,
                &resource_props,
                &[],
            ),
            readiness_collection,
        ];
        Layers {
            collections,
            coverage: LiveCoverage { summary: coverage.summary, blocks: coverage.blocks.into_iter().collect() },
            target,
            built_at: now_text(),
            cursor,
            judged_at: chrono::Utc::now(),
            tiles: Arc::default(),
            finder: Arc::default(),
            access_base: Arc::default(),
            access: OnceLock::new(),
        }
    }

    /// A snapshot of nothing (served while the service starts).
    pub fn empty(target: u32) -> Arc<Layers> {
        static EMPTY: OnceLock<Arc<Layers>> = OnceLock::new();
        let empty = EMPTY.get_or_init(|| {
            Arc::new(Layers::from_parts(LayerInputs {
                blocks: &[],
                counts: &HashMap::new(),
                outside: 0,
                indicators: &[],
                resources: &[],
                target,
                cursor: 0,
            }))
        });
        empty.clone()
    }

    /// The next snapshot after people changed: blocks at positions `changed` (block id order)
    /// have new counts, and the headline numbers are `summary`. Shares everything else with
    /// `self`; costs what changed, not what the catchment weighs. Also returns the positions of
    /// every block whose served values changed (the changed blocks, and the blocks whose
    /// resource access changed with their residents): the tiles over them are stale.
    pub fn with_counts(
        &self,
        changed: &[(usize, BlockCounts)],
        summary: CoverageSummary,
        cursor: i64,
        judged_at: chrono::DateTime<chrono::Utc>,
    ) -> (Layers, Vec<usize>) {
        let deltas: Vec<(usize, i64)> = changed
            .iter()
            .filter_map(|&(i, counts)| {
                let old = self.coverage.blocks.get(i)?.residents;
                Some((i, counts.residents as i64 - old as i64))
            })
            .collect();
        let target = u64::from(self.target.max(1));
        let mut coverage = self.coverage.clone();
        coverage.summary = summary;
        // Cloning a collection shares its feature chunks; `set` copies only the changed ones.
        let mut collections = self.collections.clone();
        let mut blocks = collections.iter_mut().find(|c| c.id == BLOCKS);
        for &(i, counts) in changed {
            let Some(row) = coverage.blocks.get(i) else { continue };
            let covered = counts.ambassadors >= target;
            let row =
                BlockCoverage { residents: counts.residents, ambassadors: counts.ambassadors, covered, ..row.clone() };
            coverage.blocks.set(i, row);
            if let Some(c) = blocks.as_deref_mut()
                && let Some(old) = c.features.get(i).cloned()
            {
                let mut props = old.properties();
                props.insert("residents".into(), counts.residents.into());
                props.insert("ambassadors".into(), counts.ambassadors.into());
                props.insert("covered".into(), covered.into());
                c.features.set(i, Arc::new(old.with_properties(&props)));
            }
        }
        let mut touched: Vec<usize> = changed.iter().map(|(i, _)| *i).collect();
        let access = OnceLock::new();
        if let (Some(layer), Some(base)) = (self.access.get(), self.access_base.get()) {
            let residents = |i: usize| coverage.blocks.get(i).map_or(0, |b| b.residents);
            let (next, affected) = layer.with_residents(base, &deltas, &residents);
            let _ = access.set(Arc::new(next));
            touched.extend(affected);
            touched.sort_unstable();
            touched.dedup();
        }
        let layers = Layers {
            collections,
            coverage,
            target: self.target,
            built_at: now_text(),
            cursor,
            judged_at,
            tiles: self.tiles.clone(),
            finder: self.finder.clone(),
            access_base: self.access_base.clone(),
            access,
        };
        (layers, touched)
    }

    /// A collection by id (resource access is measured on first use).
    pub fn collection(&self, id: &str) -> Option<&Collection> {
        if id == RESOURCE_ACCESS {
            return Some(&self.access_layer().collection);
        }
        self.collections.iter().find(|c| c.id == id)
    }

    /// Every collection, in the order they are listed (resource access last, measured on
    /// first use).
    pub fn all_collections(&self) -> impl Iterator<Item = &Collection> {
        self.collections.iter().chain(std::iter::once(&self.access_layer().collection))
    }

    /// The ids of every collection, without measuring anything.
    pub fn collection_ids(&self) -> Vec<&'static str> {
        self.collections.iter().map(|c| c.id).chain([RESOURCE_ACCESS]).collect()
    }

    /// The finder over the resources (site `i` is the resources collection's feature `i`).
    pub fn finder(&self) -> &Arc<Finder> {
        self.finder.get_or_init(|| Arc::new(finder_of(self.collections.iter().find(|c| c.id == RESOURCES))))
    }

    /// Distances and pairs of every block and category with the default radii.
    pub fn access_base(&self) -> &Arc<AccessBase> {
        self.access_base.get_or_init(|| {
            Arc::new(AccessBase::build(self.finder().clone(), self.collections.iter().find(|c| c.id == BLOCKS)))
        })
    }

    /// Whether [`Layers::access_layer`] is built (answers without waiting).
    pub fn access_ready(&self) -> bool {
        self.access.get().is_some()
    }

    /// The resource-access collection at this snapshot's residents.
    pub fn access_layer(&self) -> &AccessLayer {
        self.access.get_or_init(|| {
            let residents = |i: usize| self.coverage.blocks.get(i).map_or(0, |b| b.residents);
            let blocks = self.collections.iter().find(|c| c.id == BLOCKS);
            Arc::new(AccessLayer::build(self.access_base(), blocks, &residents))
        })
    }

    /// The collections as vector-tile layers of the same names (same features and properties,
    /// nulls left out). Render with [`Layers::render_tile`], which adds the live counts.
    pub fn tiles(&self) -> &TileSource {
        self.tiles.get_or_init(|| {
            // Blocks and school readiness show the same polygons: project each once.
            let mut projected = HashMap::new();
            let mut layers: Vec<SourceLayer> = self.collections.iter().map(|c| c.tile_layer(&mut projected)).collect();
            if let (Some(tiled), Some(blocks)) =
                (layers.iter().find(|l| l.name == BLOCKS), self.collections.iter().find(|c| c.id == BLOCKS))
            {
                let access = access::tile_layer(tiled, blocks, self.finder());
                layers.push(access);
            }
            if let Some(at) = layers.iter().position(|l| l.name == BLOCKS) {
                let (blocks, others) = (layers.remove(at), &mut layers);
                for layer in others.iter_mut() {
                    layer.share_index_with(&blocks);
                }
                layers.insert(at, blocks);
            }
            TileSource::new(layers)
        })
    }

    /// The names of the layers [`Layers::tiles`] holds, in its order, without building it: every
    /// collection, and resource access when there is a blocks collection (its tiles share the
    /// blocks' geometry).
    pub fn tile_layer_ids(&self) -> Vec<&'static str> {
        let mut ids: Vec<&'static str> = self.collections.iter().map(|c| c.id).collect();
        if ids.contains(&BLOCKS) {
            ids.push(RESOURCE_ACCESS);
        }
        ids
    }

    /// The tiles source if a tile was ever asked for (else nothing can be cached from it).
    pub fn tiles_if_built(&self) -> Option<&TileSource> {
        self.tiles.get()
    }

    /// One tile of the named layers, with this snapshot's counts.
    pub fn render_tile(&self, names: &[&str], tile: crate::tiles::TileId) -> Vec<u8> {
        self.tiles().render_with(names, tile, self)
    }
}

impl LiveValues for Layers {
    fn value(&self, layer: &str, feature: usize, property: &str) -> Option<Value> {
        if layer == RESOURCE_ACCESS {
            let residents = self.coverage.blocks.get(feature).map_or(0, |b| b.residents);
            return self.access_layer().value(self.access_base(), feature, property, residents);
        }
        if layer != BLOCKS {
            return None;
        }
        let row = self.coverage.blocks.get(feature)?;
        match property {
            "residents" => Some(row.residents.into()),
            "ambassadors" => Some(row.ambassadors.into()),
            "covered" => Some(row.covered.into()),
            _ => None,
        }
    }
}

/// `f` over `items` on every core, in order (sequential for small inputs).
/// `f` of every item, on every core (up to 8), in order.
fn par_map<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    let parts = par_chunks(items, |part| part.iter().map(&f).collect::<Vec<U>>());
    let mut out = Vec::with_capacity(items.len());
    for part in parts {
        out.extend(part);
    }
    out
}

/// `f` of consecutive parts of `items`, one part per core (up to 8; one part for fewer than
/// 4,096 items), in order.
fn par_chunks<T: Sync, U: Send>(items: &[T], f: impl Fn(&[T]) -> U + Sync) -> Vec<U> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    if cores <= 1 || items.len() < 4096 {
        return vec![f(items)];
    }
    let f = &f;
    std::thread::scope(|scope| {
        let parts: Vec<_> =
            items.chunks(items.len().div_ceil(cores)).map(|part| scope.spawn(move || f(part))).collect();
        parts.into_iter().map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    })
}

/// A collection's properties as its features' maps show them: names in order of first
/// appearance, each with the kind of its non-null values (a leading null says nothing about it).
#[derive(Default)]
struct Schema {
    /// (property, whether a non-null value was seen)
    properties: Vec<(Property, bool)>,
    pos: HashMap<String, usize>,
}

impl Schema {
    /// Take in one feature's properties.
    fn add(&mut self, props: &Map<String, Value>) {
        for (name, value) in props {
            self.add_one(name, PropertyKind::of(value));
        }
    }

    fn add_one(&mut self, name: &str, kind: Option<PropertyKind>) {
        match self.pos.get(name) {
            Some(&p) => {
                if let Some(k) = kind {
                    let (prop, seen) = &mut self.properties[p];
                    prop.kind = if *seen { prop.kind.merge(k) } else { k };
                    *seen = true;
                }
            }
            None => {
                self.pos.insert(name.to_string(), self.properties.len());
                let prop = Property { name: name.to_string(), kind: kind.unwrap_or(PropertyKind::String) };
                self.properties.push((prop, kind.is_some()));
            }
        }
    }

    /// Take in the schema of the features after these (as if they had been added here).
    fn absorb(&mut self, later: Schema) {
        for (prop, seen) in later.properties {
            self.add_one(&prop.name, seen.then_some(prop.kind));
        }
    }

    fn finish(self) -> Vec<Property> {
        self.properties.into_iter().map(|(p, _)| p).collect()
    }
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The geometry type of a collection's features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeometryKind {
    /// Points (resources).
    Point,
    /// Polygons and multipolygons (blocks), always served as MultiPolygon.
    MultiPolygon,
}

/// How a property is compared by an equality filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyKind {
    /// `true`/`false` (`1`/`0` accepted).
    Boolean,
    /// Whole numbers, compared numerically.
    Integer,
    /// Numbers, compared numerically.
    Number,
    /// Text, compared exactly.
    String,
}

impl PropertyKind {
    /// The JSON Schema type name.
    pub fn json_type(self) -> &'static str {
        match self {
            PropertyKind::Boolean => "boolean",
            PropertyKind::Integer => "integer",
            PropertyKind::Number => "number",
            PropertyKind::String => "string",
        }
    }

    fn of(v: &Value) -> Option<PropertyKind> {
        match v {
            Value::Bool(_) => Some(PropertyKind::Boolean),
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(PropertyKind::Integer),
            Value::Number(_) => Some(PropertyKind::Number),
            Value::String(_) => Some(PropertyKind::String),
            Value::Null => None,
            _ => Some(PropertyKind::String),
        }
    }

    fn merge(self, other: PropertyKind) -> PropertyKind {
        use PropertyKind::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Integer, Number) | (Number, Integer) => Number,
            _ => String,
        }
    }
}

/// A property of a collection's features, usable as an equality filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// Property name, as in the features.
    pub name: String,
    /// How values compare.
    pub kind: PropertyKind,
}

/// Where a feature is, for exact `bbox` tests (WGS84 lon/lat).
#[derive(Debug, Clone)]
enum Shape {
    Point(f64, f64),
    Area(Arc<MultiPolygon<f64>>),
}

/// A geometry with what is derived from it, computed once and shared by every collection that
/// shows it (blocks and school readiness share the block polygons).
#[derive(Debug, Clone)]
struct Place {
    /// Polygons oriented as RFC 7946 has them, so their GeoJSON is written straight from them
    /// (see [`Feature::write_json`]).
    shape: Shape,
    point: Option<(f64, f64)>,
    envelope: Option<[f64; 4]>,
}

impl Place {
    fn area(mp: &MultiPolygon<f64>) -> Place {
        use geo::InteriorPoint;
        use geo::orient::{Direction, Orient};
        Place {
            point: mp.interior_point().map(|p| (round7(p.x()), round7(p.y()))),
            envelope: mp.bounding_rect().map(|r| [r.min().x, r.min().y, r.max().x, r.max().y]),
            shape: Shape::Area(Arc::new(mp.orient(Direction::Default))),
        }
    }

    fn point(lon: f64, lat: f64) -> Place {
        Place {
            point: Some((round7(lon), round7(lat))),
            envelope: Some([lon, lat, lon, lat]),
            shape: Shape::Point(lon, lat),
        }
    }
}

/// One feature, serialized once: its geometry (shared with the other collections showing the
/// same place) and its properties.
#[derive(Debug, Clone)]
pub struct Feature {
    /// Feature id (a string, as RFC 7946 allows and block ids need).
    pub id: String,
    /// The properties, as the JSON of their values with keys shared between features: the one
    /// copy of them kept (a map per feature would double a county's memory);
    /// [`Feature::properties`] parses it when needed.
    props: Props,
    /// The feature's date, for collections with a temporal property.
    date: Option<NaiveDate>,
    /// A representative point (WGS84 lon, lat): the point itself, or an interior point of a
    /// polygon, for CSV.
    pub point: Option<(f64, f64)>,
    shape: Shape,
    envelope: Option<[f64; 4]>,
}

impl Feature {
    /// A feature at `place`; `keys` are the previous feature's property keys, shared when
    /// they are this one's too (and replaced by this one's when not).
    fn new(id: &str, place: &Place, properties: &Map<String, Value>, keys: &mut Option<Arc<PropKeys>>) -> Feature {
        Feature {
            id: id.to_string(),
            props: Props::from_map(properties, keys),
            date: date_of(properties),
            point: place.point,
            shape: place.shape.clone(),
            envelope: place.envelope,
        }
    }

    /// The same feature with other properties.
    fn with_properties(&self, properties: &Map<String, Value>) -> Feature {
        let props = Props::from_map(properties, &mut Some(self.props.keys().clone()));
        Feature { props, date: date_of(properties), ..self.clone() }
    }

    /// The same feature with properties already serialized (without a `date`).
    fn with_props(&self, props: Props) -> Feature {
        Feature {
            id: self.id.clone(),
            props,
            date: None,
            point: self.point,
            shape: self.shape.clone(),
            envelope: self.envelope,
        }
    }

    /// Where a point feature is, unrounded (its GeoJSON and [`Feature::point`] are rounded to
    /// 1e-7°); a polygon's representative point.
    pub fn location(&self) -> Option<(f64, f64)> {
        match self.shape {
            Shape::Point(x, y) => Some((x, y)),
            Shape::Area(_) => self.point,
        }
    }

    /// Its properties (parsed from the stored JSON: for CSV, filters and tiles, not hot paths).
    pub fn properties(&self) -> Map<String, Value> {
        serde_json::from_str(&self.props.json()).unwrap_or_default()
    }

    /// About the length of [`Feature::write_json`]'s output, in bytes (for buffer sizes).
    pub fn json_len(&self) -> usize {
        self.id.len() + self.geometry_json_len() + self.props.json_len() + 60
    }

    /// About the length of the geometry's JSON (for buffer sizes): ~26 bytes a position.
    fn geometry_json_len(&self) -> usize {
        match &self.shape {
            Shape::Point(..) => 60,
            Shape::Area(mp) => {
                50 + 26
                    * mp.0
                        .iter()
                        .map(|p| p.exterior().0.len() + p.interiors().iter().map(|r| r.0.len()).sum::<usize>())
                        .sum::<usize>()
            }
        }
    }

    /// Append the whole Feature object as compact JSON.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"type\":\"Feature\",\"id\":");
        // Serializing a string cannot fail.
        let _ = serde_json::to_writer(&mut *out, &self.id);
        out.extend_from_slice(b",\"geometry\":");
        match &self.shape {
            Shape::Point(lon, lat) => crate::export::write_point_json(*lon, *lat, out),
            Shape::Area(mp) => crate::export::write_oriented_multipolygon_json(mp, out),
        }
        out.extend_from_slice(b",\"properties\":");
        self.props.write_json(out);
        out.push(b'}');
    }

    /// Append the whole Feature object with its geometry in `crs` (in its axis order, see
    /// [`OutputCrs::position`]). CRS84 is [`Feature::write_json`], the stored JSON as it is;
    /// any other CRS reprojects the unrounded geometry. On an error nothing is appended.
    pub fn write_json_in(&self, crs: &OutputCrs, out: &mut Vec<u8>) -> Result<(), CrsError> {
        if crs.is_crs84() {
            self.write_json(out);
            return Ok(());
        }
        let start = out.len();
        let written = self.write_json_reprojected(crs, out);
        if written.is_err() {
            out.truncate(start);
        }
        written
    }

    fn write_json_reprojected(&self, crs: &OutputCrs, out: &mut Vec<u8>) -> Result<(), CrsError> {
        // Serializing strings and numbers into a Vec cannot fail.
        out.extend_from_slice(b"{\"type\":\"Feature\",\"id\":");
        let _ = serde_json::to_writer(&mut *out, &self.id);
        match &self.shape {
            Shape::Point(lon, lat) => {
                out.extend_from_slice(b",\"geometry\":{\"type\":\"Point\",\"coordinates\":");
                let _ = serde_json::to_writer(&mut *out, &crs.position(*lon, *lat)?);
            }
            Shape::Area(mp) => {
                out.extend_from_slice(b",\"geometry\":{\"type\":\"MultiPolygon\",\"coordinates\":");
                let _ = serde_json::to_writer(&mut *out, &multipolygon_positions(mp, |x, y| crs.position(x, y))?);
            }
        }
        out.extend_from_slice(b"},\"properties\":");
        self.props.write_json(out);
        out.push(b'}');
        Ok(())
    }

    /// The whole Feature object as compact JSON.
    pub fn json(&self) -> String {
        let mut out = Vec::with_capacity(self.json_len());
        self.write_json(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    fn intersects(&self, bbox: &Rect<f64>) -> bool {
        match &self.shape {
            Shape::Point(x, y) => bbox.intersects(&Coord { x: *x, y: *y }),
            Shape::Area(mp) => mp.intersects(bbox),
        }
    }

    /// Whether the feature, reprojected into the bbox's CRS, intersects it.
    fn intersects_projected(&self, bbox: &ProjectedBbox) -> bool {
        match &self.shape {
            Shape::Point(x, y) => bbox.contains_point(*x, *y),
            Shape::Area(mp) => bbox.intersects(mp),
        }
    }
}

/// The `date` property (`YYYY-MM-DD...`) of a feature, for temporal queries.
fn date_of(properties: &Map<String, Value>) -> Option<NaiveDate> {
    let text = properties.get("date")?.as_str()?;
    NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

/// A validated item query: bounding box, equality filters, dates and a CQL2 filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemQuery {
    /// `[min lon, min lat, max lon, max lat]`, CRS84; features whose geometry intersects it.
    pub bbox: Option<[f64; 4]>,
    /// A bbox given in a projected CRS (`bbox-crs`): features must intersect it there, and
    /// [`ItemQuery::bbox`] is a WGS84 envelope holding it.
    pub bbox_projected: Option<ProjectedBbox>,
    /// Property name and the raw text to compare with (parsed by the property's kind).
    pub filters: Vec<(String, String)>,
    /// Only features whose date falls in this range (collections without dates match nothing).
    pub datetime: Option<DateRange>,
    /// Only features the CQL2 filter selects (bound to this collection: [`Filter::new`]).
    pub filter: Option<Arc<Filter>>,
}

/// A closed range of UTC calendar days; `None` ends are open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DateRange {
    /// First day, inclusive.
    pub start: Option<NaiveDate>,
    /// Last day, inclusive.
    pub end: Option<NaiveDate>,
}

impl DateRange {
    /// Whether `day` is in the range.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.start.is_none_or(|s| s <= day) && self.end.is_none_or(|e| day <= e)
    }
}

/// Why a query was refused; the message is meant for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

/// The features a query selects, in collection order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matches {
    /// Every feature of the collection.
    All(usize),
    /// These feature positions.
    Some(Vec<usize>),
}

impl Matches {
    /// How many features matched.
    pub fn len(&self) -> usize {
        match self {
            Matches::All(n) => *n,
            Matches::Some(v) => v.len(),
        }
    }

    /// Whether nothing matched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Positions `offset..offset + limit` of the matches.
    pub fn page(&self, offset: usize, limit: usize) -> Vec<usize> {
        let end = offset.saturating_add(limit).min(self.len());
        let start = offset.min(end);
        match self {
            Matches::All(_) => (start..end).collect(),
            Matches::Some(v) => v[start..end].to_vec(),
        }
    }
}

type Entry = GeomWithData<Rectangle<[f64; 2]>, usize>;

/// One collection of features with its spatial index. Cloning is cheap (the features are shared
/// in chunks, the indexes behind `Arc`s): each snapshot holds its own.
#[derive(Debug, Clone)]
pub struct Collection {
    /// Collection id (used in URLs).
    pub id: &'static str,
    /// Human title.
    pub title: &'static str,
    /// Human description.
    pub description: &'static str,
    /// Geometry type of every feature.
    pub geometry: GeometryKind,
    /// Features in id order.
    pub features: Chunked<Arc<Feature>>,
    /// Properties seen on the features, in first-seen order, usable as filters.
    pub properties: Vec<Property>,
    /// `[min lon, min lat, max lon, max lat]` of every feature (CRS84), `None` when empty.
    pub extent: Option<[f64; 4]>,
    /// The property holding each feature's date (`YYYY-MM-DD`), if the collection has one.
    pub temporal: Option<&'static str>,
    /// First and last date of the features (the temporal extent), if any has one.
    pub temporal_extent: Option<(NaiveDate, NaiveDate)>,
    by_id: Arc<HashMap<String, usize>>,
    index: Arc<RTree<Entry>>,
    /// Per property (by position in [`Collection::properties`]): value → ascending feature
    /// positions, for equality filters on the properties that change only with an import.
    /// Built on the first filter by that property: most are never filtered by.
    equality: Arc<Vec<OnceLock<EqualityIndex>>>,
    /// Per property (as `equality`): its value for every feature, for CQL2 filters; built on
    /// the first filter that reads it.
    columns: Arc<Vec<OnceLock<filter::Column>>>,
    /// Properties that change with people ([`LIVE_BLOCK_PROPERTIES`]): filtered by a scan.
    live: &'static [&'static str],
    /// Per property: whether every value is a `YYYY-MM-DD` day (a date field in downloads).
    /// Found on the first download: one pass over the features, kept until they change.
    dates: Arc<OnceLock<Vec<bool>>>,
}

/// Which build of a collection's features a cache was derived from: equal for every snapshot
/// sharing them ([`Layers::with_counts`] keeps them), different after an import rebuilt them.
#[derive(Debug, Clone)]
pub struct CollectionKey(std::sync::Weak<HashMap<String, usize>>);

impl CollectionKey {
    /// Whether `collection` still has the features this key was taken from. (The weak pointer
    /// keeps the allocation, so its address cannot be reused by a later build.)
    pub fn matches(&self, collection: &Collection) -> bool {
        std::sync::Weak::ptr_eq(&self.0, &Arc::downgrade(&collection.by_id))
    }
}

impl Collection {
    fn new(
        id: &'static str,
        title: &'static str,
        description: &'static str,
        geometry: GeometryKind,
        features: Vec<Arc<Feature>>,
        maps: &[Map<String, Value>],
        live: &'static [&'static str],
    ) -> Collection {
        let mut schema = Schema::default();
        for props in maps {
            schema.add(props);
        }
        Collection::with_schema(id, title, description, geometry, features, schema.finish(), live, None)
    }

    /// A collection whose properties are known beforehand (no map per feature needed). With
    /// `places`, a collection of the same features' places (ids and envelopes, in the same
    /// order: the blocks, for the other block collections), its id map and spatial index are
    /// shared instead of built again (~15 MB a county collection).
    #[allow(clippy::too_many_arguments)]
    fn with_schema(
        id: &'static str,
        title: &'static str,
        description: &'static str,
        geometry: GeometryKind,
        features: Vec<Arc<Feature>>,
        properties: Vec<Property>,
        live: &'static [&'static str],
        places: Option<&Collection>,
    ) -> Collection {
        let mut extent: Option<[f64; 4]> = None;
        for e in features.iter().filter_map(|f| f.envelope) {
            extent = Some(match extent {
                None => e,
                Some(x) => [x[0].min(e[0]), x[1].min(e[1]), x[2].max(e[2]), x[3].max(e[3])],
            });
        }
        let same_places = places.filter(|p| {
            p.features.len() == features.len()
                && p.features.iter().zip(&features).all(|(a, b)| a.id == b.id && a.envelope == b.envelope)
        });
        let (by_id, index) = match same_places {
            Some(p) => (p.by_id.clone(), p.index.clone()),
            None => {
                let mut entries = Vec::with_capacity(features.len());
                for (i, f) in features.iter().enumerate() {
                    if let Some(e) = f.envelope {
                        entries.push(GeomWithData::new(Rectangle::from_corners([e[0], e[1]], [e[2], e[3]]), i));
                    }
                }
                let by_id: HashMap<String, usize> =
                    features.iter().enumerate().map(|(i, f)| (f.id.clone(), i)).collect();
                (Arc::new(by_id), Arc::new(RTree::bulk_load(entries)))
            }
        };
        let n_properties = properties.len();
        let temporal = (id == SCHOOL_READINESS).then_some("date");
        let temporal_extent = temporal.and_then(|_| {
            let mut dates = features.iter().filter_map(|f| f.date);
            let first = dates.next()?;
            Some(dates.fold((first, first), |(lo, hi), d| (lo.min(d), hi.max(d))))
        });
        Collection {
            id,
            title,
            description,
            geometry,
            features: features.into_iter().collect(),
            properties,
            extent,
            temporal,
            temporal_extent,
            by_id,
            index,
            equality: Arc::new((0..n_properties).map(|_| OnceLock::new()).collect()),
            columns: Arc::new((0..n_properties).map(|_| OnceLock::new()).collect()),
            live,
            dates: Arc::default(),
        }
    }

    /// The collection as a vector-tile layer of the same name; live properties are left to be
    /// supplied when a tile is cut.
    /// `projected` keeps the polygons projected so far (by their shared allocation), so that
    /// collections showing the same ones share their projection (~40 MB a county collection).
    fn tile_layer(&self, projected: &mut HashMap<*const MultiPolygon<f64>, crate::tiles::Geometry>) -> SourceLayer {
        let features = self
            .features
            .iter()
            .map(|f| SourceFeature {
                geometry: match &f.shape {
                    Shape::Point(lon, lat) => crate::tiles::Geometry::point(*lon, *lat),
                    Shape::Area(mp) => {
                        projected.entry(Arc::as_ptr(mp)).or_insert_with(|| crate::tiles::Geometry::area(mp)).clone()
                    }
                },
                properties: f.properties().into_iter().filter(|(k, _)| !self.live.contains(&k.as_str())).collect(),
            })
            .collect();
        let live: Vec<(&'static str, &'static str)> =
            self.live.iter().map(|&name| (name, if name == "covered" { "Boolean" } else { "Number" })).collect();
        SourceLayer::with_live(self.id, self.description, features, &live)
    }

    /// Value → ascending positions of the features with that value of `name`.
    fn equality_index(&self, name: &str) -> EqualityIndex {
        let mut index: HashMap<Key, Vec<usize>> = HashMap::new();
        for (i, f) in self.features.iter().enumerate() {
            if let Some(key) = f.properties().get(name).and_then(Key::of) {
                index.entry(key).or_default().push(i);
            }
        }
        index
    }

    /// Drop the equality indexes (after features changed values that are not live).
    fn forget_indexes(&mut self) {
        self.equality = Arc::new((0..self.properties.len()).map(|_| OnceLock::new()).collect());
        self.columns = Arc::new((0..self.properties.len()).map(|_| OnceLock::new()).collect());
        self.dates = Arc::default();
    }

    /// The key of this build of the features (see [`CollectionKey`]).
    pub fn key(&self) -> CollectionKey {
        CollectionKey(Arc::downgrade(&self.by_id))
    }

    /// A feature by id.
    pub fn feature(&self, id: &str) -> Option<&Feature> {
        self.by_id.get(id).map(|&i| &*self.features[i])
    }

    /// A feature by id, with its position.
    pub fn position(&self, id: &str) -> Option<(usize, &Feature)> {
        self.by_id.get(id).map(|&i| (i, &*self.features[i]))
    }

    /// The properties that change with people (read from the snapshot's counts).
    pub fn live_properties(&self) -> &'static [&'static str] {
        self.live
    }

    /// A property by name.
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// The features that intersect the bbox, equal every equality filter, fall in the date
    /// range and pass the CQL2 filter, in collection order. Equality filters on unknown
    /// properties and values that do not parse as the property's kind are refused with a
    /// precise message. `live` supplies the properties that change with people (the snapshot's
    /// counts; see [`Layers`]).
    pub fn query(&self, q: &ItemQuery, live: &dyn LiveValues) -> Result<Matches, QueryError> {
        // Each filter becomes the ascending list of positions whose value equals it.
        let mut lists: Vec<Vec<usize>> = Vec::with_capacity(q.filters.len());
        for (name, raw) in &q.filters {
            let at = self.properties.iter().position(|p| p.name == *name).ok_or_else(|| {
                QueryError(format!("unknown parameter '{name}': not a property of collection '{}'", self.id))
            })?;
            let keys = Wanted::parse(&self.properties[at], raw)?.keys();
            let mut list: Vec<usize> = Vec::new();
            if self.live.contains(&name.as_str()) {
                // Counts change with every write: one pass over them instead of an index that
                // every write would have to copy.
                let wanted = |v: Value| Key::of(&v).is_some_and(|k| keys.contains(&k));
                list.extend((0..self.features.len()).filter(|&i| live.value(self.id, i, name).is_some_and(wanted)));
            } else {
                let index = self.equality[at].get_or_init(|| self.equality_index(name));
                for k in &keys {
                    if let Some(hits) = index.get(k) {
                        list.extend_from_slice(hits);
                    }
                }
                if keys.len() > 1 {
                    list.sort_unstable();
                    list.dedup();
                }
            }
            lists.push(list);
        }
        lists.sort_by_key(Vec::len);
        let candidates: Option<Vec<usize>> = lists.split_first().map(|(first, rest)| {
            first.iter().copied().filter(|i| rest.iter().all(|l| l.binary_search(i).is_ok())).collect()
        });
        let matches = match (q.bbox, candidates) {
            (None, None) => Matches::All(self.features.len()),
            (None, Some(c)) => Matches::Some(c),
            (Some([x0, y0, x1, y1]), candidates) => {
                let rect = Rect::new(Coord { x: x0, y: y0 }, Coord { x: x1, y: y1 });
                let env = AABB::from_corners([x0, y0], [x1, y1]);
                let wanted = |i: &usize| candidates.as_ref().is_none_or(|c| c.binary_search(i).is_ok());
                let mut hits: Vec<usize> = self
                    .index
                    .locate_in_envelope_intersecting(env)
                    .map(|e| e.data)
                    .filter(|i| {
                        wanted(i)
                            && match &q.bbox_projected {
                                None => self.features[*i].intersects(&rect),
                                Some(b) => self.features[*i].intersects_projected(b),
                            }
                    })
                    .collect();
                hits.sort_unstable();
                Matches::Some(hits)
            }
        };
        let matches = match q.datetime {
            None => matches,
            Some(range) => {
                let in_range = |i: &usize| self.temporal.and(self.features[*i].date).is_some_and(|d| range.contains(d));
                Matches::Some(match matches {
                    Matches::All(n) => (0..n).filter(in_range).collect(),
                    Matches::Some(v) => v.into_iter().filter(in_range).collect(),
                })
            }
        };
        let Some(filter) = &q.filter else { return Ok(matches) };
        let candidates = match (matches, filter.envelope()) {
            // S_INTERSECTS with a literal: the index finds the features near it.
            (Matches::All(_), Some(e)) => {
                let mut hits: Vec<usize> = self
                    .index
                    .locate_in_envelope_intersecting(AABB::from_corners([e[0], e[1]], [e[2], e[3]]))
                    .map(|e| e.data)
                    .collect();
                hits.sort_unstable();
                hits
            }
            (Matches::All(n), None) => (0..n).collect(),
            (Matches::Some(v), _) => v,
        };
        Ok(Matches::Some(filter.select(self, live, &candidates)))
    }
}

/// A filter value parsed by the property's kind.
enum Wanted<'a> {
    Bool(bool),
    Number(f64),
    Text(&'a str),
}

impl<'a> Wanted<'a> {
    fn parse(p: &Property, raw: &'a str) -> Result<Wanted<'a>, QueryError> {
        match p.kind {
            PropertyKind::Boolean => match raw {
                "true" | "1" => Ok(Wanted::Bool(true)),
                "false" | "0" => Ok(Wanted::Bool(false)),
                _ => Err(QueryError(format!("{}={raw:?}: expected true or false", p.name))),
            },
            PropertyKind::Integer | PropertyKind::Number => match raw.trim().parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Wanted::Number(v)),
                _ => Err(QueryError(format!("{}={raw:?}: expected a number", p.name))),
            },
            PropertyKind::String => Ok(Wanted::Text(raw)),
        }
    }

    /// The index keys a stored value may have to equal this one. Text also matches numbers
    /// and booleans written the same way, for properties whose values are of mixed kinds.
    fn keys(&self) -> Vec<Key> {
        match self {
            Wanted::Bool(b) => vec![Key::Bool(*b)],
            Wanted::Number(n) => vec![Key::number(*n)],
            Wanted::Text(t) => {
                let mut keys = vec![Key::Text((*t).into())];
                if let Some(n) = t.trim().parse::<f64>().ok().filter(|n| n.is_finite()) {
                    keys.push(Key::number(n));
                }
                if let Ok(b) = t.parse::<bool>() {
                    keys.push(Key::Bool(b));
                }
                keys
            }
        }
    }
}

/// One property's equality index: value → ascending feature positions.
type EqualityIndex = HashMap<Key, Vec<usize>>;

/// A property value as an equality-index key (numbers by value: `5` and `5.0` are equal).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Bool(bool),
    Number(u64),
    Text(Box<str>),
}

impl Key {
    fn number(x: f64) -> Key {
        // +0.0 and -0.0 are equal numbers with different bits.
        Key::Number(if x == 0.0 { 0f64.to_bits() } else { x.to_bits() })
    }

    fn of(v: &Value) -> Option<Key> {
        match v {
            Value::Bool(b) => Some(Key::Bool(*b)),
            Value::Number(n) => n.as_f64().map(Key::number),
            Value::String(s) => Some(Key::Text(s.as_str().into())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_clamp_to_the_matches() {
        assert_eq!(Matches::All(5).page(3, 10), vec![3, 4]);
        assert_eq!(Matches::Some(vec![1, 4, 9]).page(1, 1), vec![4]);
        assert!(Matches::Some(vec![1]).page(usize::MAX, usize::MAX).is_empty());
    }

    #[test]
    fn numbers_are_keys_by_value() {
        assert_eq!(Key::of(&serde_json::json!(5)), Key::of(&serde_json::json!(5.0)));
        assert_eq!(Key::number(0.0), Key::number(-0.0));
        assert_ne!(Key::of(&serde_json::json!("5")), Key::of(&serde_json::json!(5)));
    }

    #[test]
    fn date_ranges_are_inclusive_and_may_be_open() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let r = DateRange { start: Some(d("2025-01-01")), end: Some(d("2025-06-01")) };
        assert!(r.contains(d("2025-01-01")) && r.contains(d("2025-06-01")) && !r.contains(d("2025-06-02")));
        assert!(DateRange { start: None, end: Some(d("2025-01-01")) }.contains(d("1900-01-01")));
    }
}
