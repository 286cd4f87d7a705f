//! MVT encoding with geozero: its writer turns geometries into MoveTo/LineTo/ClosePath commands
//! (zigzag, delta-coded, no repeated closing point), its `TagsBuilder` deduplicates keys and
//! values, and prost serializes the `vector_tile.proto` messages.

use geo::{Coord, Geometry, LineString, MultiPolygon, Point, Polygon};
use geozero::ToMvt;
use geozero::mvt::{Message, TagsBuilder, Tile, TileValue, tile};
use i_overlay::i_float::int::point::IntPoint;

use super::EXTENT;
use super::clip::TilePolygon;

/// Collects one layer's features.
pub(crate) struct LayerEncoder<'a> {
    keys: &'a [String],
    tags: TagsBuilder,
    features: Vec<tile::Feature>,
}

impl<'a> LayerEncoder<'a> {
    /// `keys` names the property keys the features refer to by position.
    pub(crate) fn new(keys: &'a [String]) -> LayerEncoder<'a> {
        LayerEncoder { keys, tags: TagsBuilder::new(), features: Vec::new() }
    }

    /// `props` are `(key position, value)` pairs, written in the order given.
    pub(crate) fn point(&mut self, id: u64, p: IntPoint, props: impl IntoIterator<Item = (u32, TileValue)>) {
        let geom = Geometry::Point(Point::new(f64::from(p.x), f64::from(p.y)));
        self.push(geom.to_mvt_unscaled(), id, props);
    }

    pub(crate) fn polygons(
        &mut self,
        id: u64,
        polygons: &[TilePolygon],
        props: impl IntoIterator<Item = (u32, TileValue)>,
    ) {
        let ring = |r: &Vec<IntPoint>| {
            let mut c: Vec<Coord<f64>> = r.iter().map(|p| Coord { x: f64::from(p.x), y: f64::from(p.y) }).collect();
            // geozero expects closed rings and writes ClosePath instead of the closing point.
            c.push(c[0]);
            LineString::new(c)
        };
        let mp = Geometry::MultiPolygon(MultiPolygon::new(
            polygons.iter().map(|p| Polygon::new(ring(&p[0]), p[1..].iter().map(ring).collect())).collect(),
        ));
        self.push(mp.to_mvt_unscaled(), id, props);
    }

    fn push(
        &mut self,
        geometry: geozero::error::Result<tile::Feature>,
        id: u64,
        props: impl IntoIterator<Item = (u32, TileValue)>,
    ) {
        // The writer fails only on rings of fewer than three points, which clipping never emits.
        let Ok(mut feature) = geometry else { return };
        feature.id = Some(id);
        let props = props.into_iter();
        feature.tags.reserve(2 * props.size_hint().0);
        for (key, value) in props {
            let (k, v) = self.tags.insert_ref(&self.keys[key as usize], value);
            feature.tags.push(k);
            feature.tags.push(v);
        }
        self.features.push(feature);
    }

    /// The layer (version 2, extent 4096), or `None` without features: MVT layers must not be
    /// empty of meaning, and an empty tile is answered with no content.
    pub(crate) fn finish(self, name: &str) -> Option<tile::Layer> {
        if self.features.is_empty() {
            return None;
        }
        let (keys, values) = self.tags.into_tags();
        Some(tile::Layer {
            version: 2,
            name: name.to_string(),
            features: self.features,
            keys,
            values: values.into_iter().map(Into::into).collect(),
            extent: Some(EXTENT),
        })
    }
}

/// The protobuf bytes of a tile.
pub(crate) fn encode_tile(layers: Vec<tile::Layer>) -> Vec<u8> {
    Tile { layers }.encode_to_vec()
}
