//! The features of every tiled layer, projected to Web Mercator once, with an R-tree of their
//! envelopes; cutting a tile only transforms, clips and encodes what meets it.

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

/// A polygonal feature in unit coordinates (see [`lonlat_to_unit`]).
#[derive(Debug)]
pub struct Area {
    polygons: Vec<Vec<Vec<[f64; 2]>>>,
    envelope: [f64; 4],
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
        let polygons =
            mp.0.iter()
                .map(|p| {
                    std::iter::once(p.exterior())
                        .chain(p.interiors())
                        .map(|ring| {
                            ring.0
                                .iter()
                                .map(|c| {
                                    let u = lonlat_to_unit(c.x, c.y);
                                    envelope = [
                                        envelope[0].min(u[0]),
                                        envelope[1].min(u[1]),
                                        envelope[2].max(u[0]),
                                        envelope[3].max(u[1]),
                                    ];
                                    u
                                })
                                .collect()
                        })
                        .collect()
                })
                .collect();
        Geometry::Area(Arc::new(Area { polygons, envelope }))
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
    features: Vec<(Geometry, Vec<(u32, TileValue)>)>,
    index: RTree<Entry>,
}

impl SourceLayer {
    /// Index a layer's features; their order is the order they take in every tile.
    pub fn new(name: &str, description: &str, features: Vec<SourceFeature>) -> SourceLayer {
        let mut keys: Vec<String> = Vec::new();
        let mut key_index: BTreeMap<String, u32> = BTreeMap::new();
        let mut fields: BTreeMap<String, &'static str> = BTreeMap::new();
        let mut entries = Vec::with_capacity(features.len());
        let mut unit_bounds: Option<[f64; 4]> = None;
        let mut stored = Vec::with_capacity(features.len());
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
                let Some(value) = tile_value(&v) else { continue };
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
                props.push((key, value));
            }
            stored.push((f.geometry, props));
        }
        // Unit y grows southward: the unit envelope's min y is the north edge.
        let bounds = unit_bounds.map(|b| {
            let [w, n] = unit_to_lonlat([b[0], b[1]]);
            let [e, s] = unit_to_lonlat([b[2], b[3]]);
            [w, s, e, n]
        });
        SourceLayer {
            name: name.to_string(),
            description: description.to_string(),
            fields,
            bounds,
            geometry: geometry.unwrap_or("Unknown"),
            keys,
            features: stored,
            index: RTree::bulk_load(entries),
        }
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
    fn encode(&self, tile: TileId, clipper: &mut Clipper) -> Option<geozero::mvt::tile::Layer> {
        let transform = Transform::new(tile);
        let (lo, hi) = transform.buffered_unit_envelope();
        let mut hits: Vec<usize> =
            self.index.locate_in_envelope_intersecting(rstar::AABB::from_corners(lo, hi)).map(|e| e.data).collect();
        hits.sort_unstable();
        let mut layer = LayerEncoder::new(&self.keys);
        let (min, max) = (-f64::from(BUFFER), f64::from(EXTENT + BUFFER));
        for i in hits {
            let (geometry, props) = &self.features[i];
            // Feature ids are 1-based positions in the layer: stable for a snapshot, and the
            // same feature has the same id in every tile (clients stitch tiles by it).
            let id = i as u64 + 1;
            match geometry {
                Geometry::Point(p) => {
                    let [x, y] = transform.apply(*p);
                    if (min..=max).contains(&x) && (min..=max).contains(&y) {
                        layer.point(id, IntPoint::new(x.round() as i32, y.round() as i32), props);
                    }
                }
                Geometry::Area(a) => {
                    let polygons = clipper.polygons(&a.polygons, a.envelope);
                    if !polygons.is_empty() {
                        layer.polygons(id, &polygons, props);
                    }
                }
            }
        }
        layer.finish(&self.name)
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
    pub fn render(&self, names: &[&str], tile: TileId) -> Vec<u8> {
        let mut clipper = Clipper::new(Transform::new(tile));
        let layers: Vec<_> =
            names.iter().filter_map(|n| self.layer(n)).filter_map(|l| l.encode(tile, &mut clipper)).collect();
        if layers.is_empty() { Vec::new() } else { encode_tile(layers) }
    }
}

/// A JSON property value as an MVT value: `None` for null (MVT cannot carry it).
fn tile_value(v: &Value) -> Option<TileValue> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => TileValue::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => TileValue::Int(i),
            (None, Some(u), _) => TileValue::Uint(u),
            (_, _, Some(f)) => TileValue::Double(f),
            _ => return None,
        },
        Value::String(s) => TileValue::Str(s.clone()),
        other => TileValue::Str(other.to_string()),
    })
}
