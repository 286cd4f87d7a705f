//! The features of every tiled layer, projected to Web Mercator once, with an R-tree of their
//! envelopes; cutting a tile only transforms, clips and encodes what meets it.
//!
//! A layer may declare *live* properties: their values are not stored with the geometry but asked
//! of a [`LiveValues`] when a tile is cut, so counts that change with every write do not require
//! rebuilding (or re-projecting) the layer.

use std::collections::BTreeMap;
use std::sync::Arc;

use geo::MultiPolygon;
use geozero::mvt::TileValue;
use i_overlay::i_float::int::point::IntPoint;
use rstar::RTree;
use rstar::primitives::{GeomWithData, Rectangle};
use serde_json::Value;

use super::clip::Clipper;
use super::encode::{LayerEncoder, encode_tile};
use super::{BUFFER, EXTENT, TileId, Transform, lonlat_to_unit, unit_to_lonlat};

/// A polygonal feature in unit coordinates (see [`lonlat_to_unit`]), packed: vertices as
/// fractions of 2³² (8 mm on the ground at the equator, a pixel of a z20 tile) in one slice, and
/// where each ring and polygon ends: half the bytes a vertex of the nested `f64` vectors this
/// replaced (a county's blocks: ~5 MiB less resident, measured).
#[derive(Debug)]
pub struct Area {
    points: Box<[[u32; 2]]>,
    /// Per ring, the end of its vertices in `points`.
    ring_ends: Box<[u32]>,
    /// Per polygon, the end of its rings in `ring_ends`.
    polygon_ends: Box<[u32]>,
    envelope: [f64; 4],
}

/// Unit coordinates per `u32` step.
const STEP: f64 = 1.0 / 4_294_967_296.0;

fn to_fixed(u: f64) -> u32 {
    // Saturating: 1.0 (the antimeridian, the southern limit) is u32::MAX.
    (u / STEP).round().clamp(0.0, f64::from(u32::MAX)) as u32
}

impl Area {
    /// The polygons, each a list of rings (the shell first), each a list of unit-coordinate
    /// vertices.
    pub(crate) fn polygons(
        &self,
    ) -> impl Iterator<Item = impl Iterator<Item = impl Iterator<Item = [f64; 2]> + '_> + '_> + '_ {
        let starts = |ends: &[u32], i: usize| if i == 0 { 0 } else { ends[i - 1] as usize };
        (0..self.polygon_ends.len()).map(move |p| {
            (starts(&self.polygon_ends, p)..self.polygon_ends[p] as usize).map(move |r| {
                self.points[starts(&self.ring_ends, r)..self.ring_ends[r] as usize]
                    .iter()
                    .map(|&[x, y]| [f64::from(x) * STEP, f64::from(y) * STEP])
            })
        })
    }

    /// The envelope of the vertices, `[min x, min y, max x, max y]`.
    pub(crate) fn envelope(&self) -> [f64; 4] {
        self.envelope
    }
}

/// A feature's geometry in unit coordinates. Areas are reference-counted, so features can share
/// one polygon set.
#[derive(Debug, Clone)]
pub enum Geometry {
    /// A point.
    Point([f64; 2]),
    /// Polygons.
    Area(Arc<Area>),
}

impl Geometry {
    /// A WGS84 point.
    pub fn point(lon: f64, lat: f64) -> Geometry {
        Geometry::Point(lonlat_to_unit(lon, lat))
    }

    /// WGS84 polygons.
    pub fn area(mp: &MultiPolygon<f64>) -> Geometry {
        let mut envelope = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
        let mut points = Vec::new();
        let (mut ring_ends, mut polygon_ends) = (Vec::new(), Vec::with_capacity(mp.0.len()));
        for p in &mp.0 {
            for ring in std::iter::once(p.exterior()).chain(p.interiors()) {
                for c in &ring.0 {
                    let u = lonlat_to_unit(c.x, c.y);
                    // The envelope of the exact vertices: layer bounds (TileJSON, OGC tile sets)
                    // are the data's extent. Stored vertices are within half a step of it, a
                    // fraction of a pixel at any zoom the tile buffer does not cover.
                    envelope =
                        [envelope[0].min(u[0]), envelope[1].min(u[1]), envelope[2].max(u[0]), envelope[3].max(u[1])];
                    points.push([to_fixed(u[0]), to_fixed(u[1])]);
                }
                ring_ends.push(points.len() as u32);
            }
            polygon_ends.push(ring_ends.len() as u32);
        }
        Geometry::Area(Arc::new(Area {
            points: points.into(),
            ring_ends: ring_ends.into(),
            polygon_ends: polygon_ends.into(),
            envelope,
        }))
    }

    fn envelope(&self) -> Option<[f64; 4]> {
        match self {
            Geometry::Point([x, y]) => Some([*x, *y, *x, *y]),
            Geometry::Area(a) => (a.envelope[0] <= a.envelope[2]).then_some(a.envelope),
        }
    }
}

/// One feature of a tiled layer.
#[derive(Debug, Clone)]
pub struct SourceFeature {
    /// Geometry in unit coordinates.
    pub geometry: Geometry,
    /// Properties; JSON nulls are left out (MVT has no null), nested values become JSON text.
    pub properties: Vec<(String, Value)>,
}

type Entry = GeomWithData<Rectangle<[f64; 2]>, usize>;

/// The values of live properties, supplied when a tile is cut (see [`SourceLayer::with_live`]).
///
/// Called once per live property of every feature drawn in the tile, so it should be a lookup
/// (an array index), not a search. Closures `Fn(&str, usize, &str) -> Option<Value>` implement it.
pub trait LiveValues: Sync {
    /// The value of live property `property` of the feature at position `feature` (the order the
    /// features were given in) of layer `layer`. `None` or JSON null leaves the property out of
    /// that feature, as a static null is; nested values become JSON text.
    fn value(&self, layer: &str, feature: usize, property: &str) -> Option<Value>;
}

impl<F> LiveValues for F
where
    F: Fn(&str, usize, &str) -> Option<Value> + Sync,
{
    fn value(&self, layer: &str, feature: usize, property: &str) -> Option<Value> {
        self(layer, feature, property)
    }
}

/// No live values: live properties are left out of every feature.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLiveValues;

impl LiveValues for NoLiveValues {
    fn value(&self, _: &str, _: usize, _: &str) -> Option<Value> {
        None
    }
}

/// A live property of a layer: its name and its position in the layer's key list.
#[derive(Debug, Clone)]
struct LiveProperty {
    name: Box<str>,
    key: u32,
}

/// One layer: its features in a stable order and an R-tree of their envelopes.
#[derive(Debug)]
pub struct SourceLayer {
    /// Layer name in tiles (the collection id).
    pub name: String,
    /// What the layer shows.
    pub description: String,
    /// Property name → TileJSON type (`String`, `Number`, `Boolean`).
    pub fields: BTreeMap<String, &'static str>,
    /// `[west, south, east, north]` of every feature, if any.
    pub bounds: Option<[f64; 4]>,
    /// `Point`, `Polygon`, or `Unknown` for an empty or mixed layer (tippecanoe's tilestats
    /// names, which GDAL reads to type the layer).
    pub geometry: &'static str,
    keys: Vec<String>,
    /// Each key's position among all key names sorted: a feature's static and live properties
    /// are merged in this order (see [`SourceLayer::with_live`]).
    rank: Vec<u32>,
    /// Live properties, sorted by name.
    live: Vec<LiveProperty>,
    /// Each feature's geometry and static properties as (key, position in `values`).
    features: Vec<(Geometry, StaticProperties)>,
    /// The distinct static values of the layer, as MVT shares them within a tile: a county's
    /// 110,000 blocks hold ~1 M property values but few distinct ones apart from ids (a value
    /// per property per feature took ~50 MB a layer).
    values: Vec<TileValue>,
    index: Arc<RTree<Entry>>,
}

/// A feature's static properties: (key, position in the layer's distinct values), by key order
/// of first appearance.
type StaticProperties = Box<[(u32, u32)]>;

/// A [`TileValue`] as a hash key (floats by their bits).
#[derive(Debug, PartialEq, Eq, Hash)]
enum ValueKey {
    Str(String),
    Float(u32),
    Double(u64),
    Int(i64),
    Uint(u64),
    SInt(i64),
    Bool(bool),
}

impl ValueKey {
    fn of(v: &TileValue) -> ValueKey {
        match v {
            TileValue::Str(s) => ValueKey::Str(s.clone()),
            TileValue::Float(f) => ValueKey::Float(f.to_bits()),
            TileValue::Double(f) => ValueKey::Double(f.to_bits()),
            TileValue::Int(i) => ValueKey::Int(*i),
            TileValue::Uint(u) => ValueKey::Uint(*u),
            TileValue::Sint(i) => ValueKey::SInt(*i),
            TileValue::Bool(b) => ValueKey::Bool(*b),
        }
    }
}

impl SourceLayer {
    /// Index a layer's features; their order is the order they take in every tile.
    pub fn new(name: &str, description: &str, features: Vec<SourceFeature>) -> SourceLayer {
        SourceLayer::with_live(name, description, features, &[])
    }

    /// Index a layer's features, with `live` properties (name, TileJSON type: `String`, `Number`
    /// or `Boolean`) whose values are supplied when a tile is cut ([`TileSource::render_with`]).
    ///
    /// Static properties of the same names are dropped: the live value wins. In a tile, each
    /// live property is written before the first static property whose name sorts after it, so
    /// when the static properties come sorted by name (as from a `serde_json::Map`) the tile is
    /// byte for byte the one a layer with those values stored as static properties gives.
    pub fn with_live(
        name: &str,
        description: &str,
        features: Vec<SourceFeature>,
        live: &[(&str, &'static str)],
    ) -> SourceLayer {
        let mut keys: Vec<String> = Vec::new();
        let mut key_index: BTreeMap<String, u32> = BTreeMap::new();
        let mut fields: BTreeMap<String, &'static str> = BTreeMap::new();
        let mut live_props: Vec<LiveProperty> = Vec::with_capacity(live.len());
        for &(live_name, ty) in live {
            if key_index.contains_key(live_name) {
                continue; // named twice
            }
            let key = keys.len() as u32;
            keys.push(live_name.to_string());
            key_index.insert(live_name.to_string(), key);
            fields.insert(live_name.to_string(), ty);
            live_props.push(LiveProperty { name: live_name.into(), key });
        }
        live_props.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let mut entries = Vec::with_capacity(features.len());
        let mut unit_bounds: Option<[f64; 4]> = None;
        let mut stored = Vec::with_capacity(features.len());
        let mut values: Vec<TileValue> = Vec::new();
        let mut value_index: std::collections::HashMap<ValueKey, u32> = std::collections::HashMap::new();
        let mut geometry: Option<&'static str> = None;
        for (i, f) in features.into_iter().enumerate() {
            let kind = match f.geometry {
                Geometry::Point(_) => "Point",
                Geometry::Area(_) => "Polygon",
            };
            geometry = Some(match geometry {
                Some(g) if g != kind => "Unknown",
                _ => kind,
            });
            if let Some(e) = f.geometry.envelope() {
                unit_bounds = Some(match unit_bounds {
                    None => e,
                    Some(b) => [b[0].min(e[0]), b[1].min(e[1]), b[2].max(e[2]), b[3].max(e[3])],
                });
                entries.push(GeomWithData::new(Rectangle::from_corners([e[0], e[1]], [e[2], e[3]]), i));
            }
            let mut props = Vec::with_capacity(f.properties.len());
            for (k, v) in f.properties {
                if live_props.iter().any(|l| *l.name == *k) {
                    continue;
                }
                let Some(value) = tile_value(v) else { continue };
                let ty = match value {
                    TileValue::Str(_) => "String",
                    TileValue::Bool(_) => "Boolean",
                    _ => "Number",
                };
                let field = fields.entry(k.clone()).or_insert(ty);
                if *field != ty {
                    *field = "String"; // mixed kinds: clients should treat it as text
                }
                let next = keys.len() as u32;
                let key = *key_index.entry(k.clone()).or_insert_with(|| {
                    keys.push(k);
                    next
                });
                let next = values.len() as u32;
                let at = *value_index.entry(ValueKey::of(&value)).or_insert_with(|| {
                    values.push(value);
                    next
                });
                props.push((key, at));
            }
            stored.push((f.geometry, props.into_boxed_slice()));
        }
        // Unit y grows southward: the unit envelope's min y is the north edge.
        let bounds = unit_bounds.map(|b| {
            let [w, n] = unit_to_lonlat([b[0], b[1]]);
            let [e, s] = unit_to_lonlat([b[2], b[3]]);
            [w, s, e, n]
        });
        let mut by_name: Vec<u32> = (0..keys.len() as u32).collect();
        by_name.sort_unstable_by(|a, b| keys[*a as usize].cmp(&keys[*b as usize]));
        let mut rank = vec![0; keys.len()];
        for (r, k) in by_name.into_iter().enumerate() {
            rank[k as usize] = r as u32;
        }
        SourceLayer {
            name: name.to_string(),
            description: description.to_string(),
            fields,
            bounds,
            geometry: geometry.unwrap_or("Unknown"),
            keys,
            rank,
            live: live_props,
            features: stored,
            values,
            index: Arc::new(RTree::bulk_load(entries)),
        }
    }

    /// Share `other`'s spatial index when both layers draw the same geometry, feature for
    /// feature (the block layers: blocks, school readiness and resource access share their
    /// projected polygons): one index instead of one per layer (~7 MB each for a county).
    /// Returns whether it was shared.
    pub fn share_index_with(&mut self, other: &SourceLayer) -> bool {
        let same = |a: &Geometry, b: &Geometry| match (a, b) {
            (Geometry::Area(a), Geometry::Area(b)) => Arc::ptr_eq(a, b),
            (Geometry::Point(a), Geometry::Point(b)) => a == b,
            _ => false,
        };
        let shared = self.features.len() == other.features.len()
            && self.features.iter().zip(&other.features).all(|((a, _), (b, _))| same(a, b));
        if shared {
            self.index = other.index.clone();
        }
        shared
    }

    /// The names of the live properties, sorted.
    pub fn live(&self) -> impl Iterator<Item = &str> + '_ {
        self.live.iter().map(|l| &*l.name)
    }

    /// The geometry of the feature at position `feature` (to share it with another layer).
    pub fn geometry(&self, feature: usize) -> Option<&Geometry> {
        self.features.get(feature).map(|(g, _)| g)
    }

    /// The unit-coordinate envelope `[min x, min y, max x, max y]` (see [`lonlat_to_unit`]) of
    /// the feature at position `feature`, as the layer's R-tree holds it; `None` for a position
    /// out of range or a feature without geometry. Give it to
    /// [`TileCache::invalidate`](super::TileCache::invalidate) when the feature's values change.
    pub fn envelope(&self, feature: usize) -> Option<[f64; 4]> {
        self.features.get(feature).and_then(|(g, _)| g.envelope())
    }

    /// Number of features.
    pub fn len(&self) -> usize {
        self.features.len()
    }

    /// Whether the layer has no features.
    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// Encode this layer's part of `tile`; `None` when nothing of it is visible there.
    fn encode(&self, tile: TileId, clipper: &mut Clipper, live: &dyn LiveValues) -> Option<geozero::mvt::tile::Layer> {
        let transform = Transform::new(tile);
        let (lo, hi) = transform.buffered_unit_envelope();
        let mut hits: Vec<usize> =
            self.index.locate_in_envelope_intersecting(rstar::AABB::from_corners(lo, hi)).map(|e| e.data).collect();
        hits.sort_unstable();
        let mut layer = LayerEncoder::new(&self.keys);
        let (min, max) = (-f64::from(BUFFER), f64::from(EXTENT + BUFFER));
        // Reused for every feature: a dense tile draws thousands, each would otherwise allocate.
        let mut live_values: Vec<(u32, TileValue)> = Vec::with_capacity(self.live.len());
        for i in hits {
            let (geometry, props) = &self.features[i];
            // Feature ids are 1-based positions in the layer: stable for a snapshot, and the
            // same feature has the same id in every tile (clients stitch tiles by it).
            let id = i as u64 + 1;
            match geometry {
                Geometry::Point(p) => {
                    let [x, y] = transform.apply(*p);
                    if (min..=max).contains(&x) && (min..=max).contains(&y) {
                        let point = IntPoint::new(x.round() as i32, y.round() as i32);
                        layer.point(id, point, self.properties(i, props, live, &mut live_values));
                    }
                }
                Geometry::Area(a) => {
                    let polygons = clipper.polygons(a.polygons(), a.envelope());
                    if !polygons.is_empty() {
                        layer.polygons(id, &polygons, self.properties(i, props, live, &mut live_values));
                    }
                }
            }
        }
        layer.finish(&self.name)
    }

    /// Feature `i`'s static `props` merged with its live values (asked of `live`, buffered in
    /// `buf`) by key name rank: see [`SourceLayer::with_live`] for why that order.
    fn properties<'a>(
        &'a self,
        i: usize,
        props: &'a [(u32, u32)],
        live: &dyn LiveValues,
        buf: &'a mut Vec<(u32, TileValue)>,
    ) -> impl Iterator<Item = (u32, TileValue)> + 'a {
        buf.clear();
        buf.extend(
            self.live
                .iter()
                .filter_map(|l| live.value(&self.name, i, &l.name).and_then(tile_value).map(|v| (l.key, v))),
        );
        let rank = &self.rank;
        let mut stat = props.iter().peekable();
        let mut dynamic = buf.drain(..).peekable();
        std::iter::from_fn(move || match (stat.peek(), dynamic.peek()) {
            (Some((s, _)), Some((d, _))) if rank[*d as usize] < rank[*s as usize] => dynamic.next(),
            (Some(_), _) => stat.next().map(|&(k, v)| (k, self.values[v as usize].clone())),
            (None, _) => dynamic.next(),
        })
    }
}

/// Every tiled layer of one snapshot.
#[derive(Debug, Default)]
pub struct TileSource {
    layers: Vec<SourceLayer>,
}

impl TileSource {
    /// The layers, in the order tiles list them.
    pub fn new(layers: Vec<SourceLayer>) -> TileSource {
        TileSource { layers }
    }

    /// A layer by name.
    pub fn layer(&self, name: &str) -> Option<&SourceLayer> {
        self.layers.iter().find(|l| l.name == name)
    }

    /// Every layer.
    pub fn layers(&self) -> &[SourceLayer] {
        &self.layers
    }

    /// The encoded tile with the named layers, in the order given; empty when no feature is
    /// visible in it. Unknown names are the caller's to refuse (see [`TileSource::layer`]).
    /// Live properties are left out: see [`TileSource::render_with`].
    pub fn render(&self, names: &[&str], tile: TileId) -> Vec<u8> {
        self.render_with(names, tile, &NoLiveValues)
    }

    /// [`TileSource::render`], with the values of live properties asked of `live`.
    pub fn render_with(&self, names: &[&str], tile: TileId, live: &dyn LiveValues) -> Vec<u8> {
        let mut clipper = Clipper::new(Transform::new(tile));
        let layers: Vec<_> =
            names.iter().filter_map(|n| self.layer(n)).filter_map(|l| l.encode(tile, &mut clipper, live)).collect();
        if layers.is_empty() { Vec::new() } else { encode_tile(layers) }
    }
}

/// A JSON property value as an MVT value: `None` for null (MVT cannot carry it).
fn tile_value(v: Value) -> Option<TileValue> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => TileValue::Bool(b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => TileValue::Int(i),
            (None, Some(u), _) => TileValue::Uint(u),
            (_, _, Some(f)) => TileValue::Double(f),
            _ => return None,
        },
        Value::String(s) => TileValue::Str(s),
        other => TileValue::Str(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use geo::{Rect, coord};
    use serde_json::{Map, json};

    use super::*;
    use crate::demo::{HQ_LAT, HQ_LON};

    const LIVE: [(&str, &str); 3] = [("residents", "Number"), ("ambassadors", "Number"), ("covered", "Boolean")];

    /// A block's geometry, static properties and live values (in the order of `LIVE`).
    type Block = (MultiPolygon<f64>, Map<String, Value>, [Value; 3]);

    /// Three blocks side by side near the demo HQ (one with a static null) and their counts.
    fn blocks() -> Vec<Block> {
        (0..3)
            .map(|i| {
                let lon = HQ_LON + f64::from(i) * 0.001;
                let rect = Rect::new(coord! { x: lon, y: HQ_LAT }, coord! { x: lon + 0.0009, y: HQ_LAT + 0.0009 });
                let mut props = Map::new();
                props.insert("block_id".into(), json!(format!("b{i}")));
                props.insert("name".into(), if i == 1 { Value::Null } else { json!("Magnolia") });
                props.insert("target".into(), json!(1));
                // Shared values, a null count, and a key ("covered") missing from one feature.
                let live = [json!(10 + i), if i == 2 { Value::Null } else { json!(1) }, json!(i == 0)];
                (MultiPolygon::new(vec![rect.to_polygon()]), props, live)
            })
            .collect()
    }

    fn feature(mp: &MultiPolygon<f64>, props: Map<String, Value>) -> SourceFeature {
        SourceFeature { geometry: Geometry::area(mp), properties: props.into_iter().collect() }
    }

    #[test]
    fn live_properties_give_the_tile_static_ones_give() {
        let blocks = blocks();
        let statics = blocks
            .iter()
            .map(|(mp, props, live)| {
                let mut all = props.clone();
                for ((name, _), value) in LIVE.iter().zip(live) {
                    all.insert((*name).to_string(), value.clone());
                }
                feature(mp, all)
            })
            .collect();
        let old = TileSource::new(vec![SourceLayer::new("blocks", "Blocks", statics)]);
        // The live layer's own stale value for `residents` must lose to the live one.
        let features = blocks
            .iter()
            .map(|(mp, props, _)| {
                let mut p = props.clone();
                p.insert("residents".into(), json!(999));
                feature(mp, p)
            })
            .collect();
        let new = TileSource::new(vec![SourceLayer::with_live("blocks", "Blocks", features, &LIVE)]);
        let live = |layer: &str, i: usize, property: &str| {
            assert_eq!(layer, "blocks");
            let at = LIVE.iter().position(|(n, _)| *n == property)?;
            Some(blocks[i].2[at].clone())
        };

        for z in [12, 14, 16, 18] {
            let (xs, ys) = TileId::range(z, [HQ_LON, HQ_LAT, HQ_LON + 0.0029, HQ_LAT + 0.0009]);
            for x in xs {
                for y in ys.clone() {
                    let tile = TileId { z, x, y };
                    let expected = old.render(&["blocks"], tile);
                    assert!(!expected.is_empty(), "{tile} shows no block");
                    assert_eq!(new.render_with(&["blocks"], tile, &live), expected, "{tile}");
                    assert_ne!(new.render(&["blocks"], tile), expected, "{tile}: the counts are in the tile");
                }
            }
        }
        let (old, new) = (&old.layers()[0], &new.layers()[0]);
        assert_eq!(new.fields, old.fields);
        assert_eq!(new.fields["covered"], "Boolean");
        assert_eq!(new.live().collect::<Vec<_>>(), ["ambassadors", "covered", "residents"]);
    }

    #[test]
    fn without_live_values_live_properties_are_left_out() {
        let blocks = blocks();
        let plain = blocks.iter().map(|(mp, props, _)| feature(mp, props.clone())).collect();
        let live = blocks.iter().map(|(mp, props, _)| feature(mp, props.clone())).collect();
        let plain = TileSource::new(vec![SourceLayer::new("blocks", "Blocks", plain)]);
        let live = TileSource::new(vec![SourceLayer::with_live("blocks", "Blocks", live, &LIVE)]);
        let (xs, ys) = TileId::range(14, [HQ_LON, HQ_LAT, HQ_LON, HQ_LAT]);
        let tile = TileId { z: 14, x: *xs.start(), y: *ys.start() };
        assert_eq!(live.render(&["blocks"], tile), plain.render(&["blocks"], tile));
    }

    #[test]
    fn envelopes_are_the_indexed_unit_envelopes() {
        let blocks = blocks();
        let mut features: Vec<SourceFeature> = blocks.iter().map(|(mp, p, _)| feature(mp, p.clone())).collect();
        features.push(SourceFeature { geometry: Geometry::point(HQ_LON, HQ_LAT), properties: Vec::new() });
        let layer = SourceLayer::new("mixed", "", features);
        let [x0, y1] = lonlat_to_unit(HQ_LON, HQ_LAT);
        let [x1, y0] = lonlat_to_unit(HQ_LON + 0.0009, HQ_LAT + 0.0009);
        let e = layer.envelope(0).unwrap();
        for (got, want) in e.iter().zip([x0, y0, x1, y1]) {
            assert!((got - want).abs() < 1e-15, "{e:?}");
        }
        assert_eq!(layer.envelope(3), Some([x0, y1, x0, y1]));
        assert_eq!(layer.envelope(4), None);
        // The envelope is what the R-tree finds the feature by.
        let found: Vec<usize> = layer
            .index
            .locate_in_envelope_intersecting(rstar::AABB::from_corners([e[0], e[1]], [e[2], e[3]]))
            .map(|f| f.data)
            .collect();
        assert!(found.contains(&0));
    }
}
