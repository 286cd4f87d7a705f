//! The block index: an R-tree (`rstar`) over the envelopes of block polygons, then an exact
//! point-in-polygon test.
//!
//! # The boundary rule
//! A point belongs to a block when the block's *closed* polygon contains it (interior or
//! boundary; a point in a hole is not in the block, a point on a hole's edge is). When several
//! blocks contain the point — it lies exactly on a shared edge or vertex, or the source blocks
//! overlap — it belongs to the block whose id sorts first (byte-wise string order). The rule uses
//! exact orientation predicates, so it does not depend on load order, the R-tree's shape or
//! floating-point rounding: a point is in exactly one block or in none.

use geo::{Coord, LineString, MultiPolygon, Polygon};
use robust::{Coord as RCoord, orient2d};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};

use super::Block;

type Entry = GeomWithData<Rectangle<[f64; 2]>, (u32, u32)>;

/// Blocks ready for point lookups. Immutable once built; rebuild after a block import.
pub struct BlockIndex {
    tree: RTree<Entry>,
    /// Block ids, sorted; the position is the block's rank for the boundary rule.
    ids: Vec<String>,
    /// Polygons per block, parallel to `ids`.
    polygons: Vec<Vec<Polygon<f64>>>,
}

/// Where a point lies relative to a closed ring or polygon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Strictly inside.
    Inside,
    /// Exactly on an edge or vertex.
    Boundary,
    /// Strictly outside.
    Outside,
}

impl BlockIndex {
    /// Build the index (bulk-loaded R-tree, one entry per polygon part).
    pub fn new<'a>(blocks: impl IntoIterator<Item = &'a Block>) -> BlockIndex {
        let mut items: Vec<(&str, &MultiPolygon<f64>)> =
            blocks.into_iter().map(|b| (b.id.as_str(), &b.geometry)).collect();
        items.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut entries = Vec::with_capacity(items.len());
        let mut ids = Vec::with_capacity(items.len());
        let mut polygons = Vec::with_capacity(items.len());
        for (rank, (id, geometry)) in items.into_iter().enumerate() {
            let rank = rank as u32;
            for (part, polygon) in geometry.0.iter().enumerate() {
                if let Some(envelope) = ring_envelope(polygon.exterior()) {
                    entries.push(GeomWithData::new(Rectangle::from_aabb(envelope), (rank, part as u32)));
                }
            }
            ids.push(id.to_string());
            polygons.push(geometry.0.clone());
        }
        BlockIndex { tree: RTree::bulk_load(entries), ids, polygons }
    }

    /// Number of blocks indexed.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no block is indexed.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The id of the block containing WGS84 `(lon, lat)` by the boundary rule, or `None` when
    /// the point is outside the catchment (or not finite).
    pub fn locate(&self, lon: f64, lat: f64) -> Option<&str> {
        self.locate_rank(lon, lat).map(|r| self.ids[r as usize].as_str())
    }

    /// Like [`BlockIndex::locate`] but returns the block's position in id order.
    pub fn locate_rank(&self, lon: f64, lat: f64) -> Option<u32> {
        if !lon.is_finite() || !lat.is_finite() {
            return None;
        }
        let p = Coord { x: lon, y: lat };
        let mut best: Option<u32> = None;
        for entry in self.tree.locate_all_at_point([lon, lat]) {
            let (rank, part) = entry.data;
            if best.is_some_and(|b| b <= rank) {
                continue;
            }
            let polygon = &self.polygons[rank as usize][part as usize];
            if polygon_position(polygon, p) != Position::Outside {
                best = Some(rank);
            }
        }
        best
    }

    /// Block ids in rank (sorted) order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// The bounding box of everything indexed, `[min_lon, min_lat, max_lon, max_lat]`.
    pub fn bbox(&self) -> Option<[f64; 4]> {
        if self.tree.size() == 0 {
            return None;
        }
        let env = self.tree.root().envelope();
        let (lo, hi) = (env.lower(), env.upper());
        Some([lo[0], lo[1], hi[0], hi[1]])
    }
}

fn ring_envelope(ring: &LineString<f64>) -> Option<AABB<[f64; 2]>> {
    let mut it = ring.0.iter();
    let first = it.next()?;
    let (mut lo, mut hi) = ([first.x, first.y], [first.x, first.y]);
    for c in it {
        lo = [lo[0].min(c.x), lo[1].min(c.y)];
        hi = [hi[0].max(c.x), hi[1].max(c.y)];
    }
    Some(AABB::from_corners(lo, hi))
}

/// Position of `p` relative to a polygon with holes (closed: the boundary includes hole edges).
pub fn polygon_position(polygon: &Polygon<f64>, p: Coord<f64>) -> Position {
    match ring_position(polygon.exterior(), p) {
        Position::Inside => {}
        other => return other,
    }
    for hole in polygon.interiors() {
        match ring_position(hole, p) {
            Position::Inside => return Position::Outside,
            Position::Boundary => return Position::Boundary,
            Position::Outside => {}
        }
    }
    Position::Inside
}

/// Crossing-number test with exact orientation predicates (Shewchuk's, via `robust`), so the
/// answer agrees between two blocks that share an edge. Works for either winding order; the ring
/// may or may not repeat its first vertex at the end.
pub fn ring_position(ring: &LineString<f64>, p: Coord<f64>) -> Position {
    let pts = &ring.0;
    let n = pts.len();
    if n < 3 {
        return Position::Outside;
    }
    let mut inside = false;
    let mut j = n - 1;
    for i in 0..n {
        let (a, b) = (pts[j], pts[i]);
        j = i;
        if a == b {
            continue;
        }
        // Exact on-edge check, only for edges whose bounding box holds the point.
        if p.x >= a.x.min(b.x)
            && p.x <= a.x.max(b.x)
            && p.y >= a.y.min(b.y)
            && p.y <= a.y.max(b.y)
            && orient(a, b, p) == 0.0
        {
            return Position::Boundary;
        }
        // Half-open rule on y: each edge counts once for a ray to +x.
        if (a.y > p.y) != (b.y > p.y) {
            let o = orient(a, b, p);
            // Edge going up: point is left of it (o > 0) when the ray crosses it.
            if (b.y > a.y && o > 0.0) || (b.y < a.y && o < 0.0) {
                inside = !inside;
            }
        }
    }
    if inside { Position::Inside } else { Position::Outside }
}

#[inline]
fn orient(a: Coord<f64>, b: Coord<f64>, p: Coord<f64>) -> f64 {
    orient2d(RCoord { x: a.x, y: a.y }, RCoord { x: b.x, y: b.y }, RCoord { x: p.x, y: p.y })
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;

    fn block(id: &str, polygons: Vec<Polygon<f64>>) -> Block {
        Block { id: id.into(), name: None, geometry: MultiPolygon(polygons), attributes: Default::default() }
    }

    fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> Polygon<f64> {
        polygon![(x: x0, y: y0), (x: x1, y: y0), (x: x1, y: y1), (x: x0, y: y1), (x: x0, y: y0)]
    }

    /// Two unit squares sharing the edge x = 1; "B" sorts after "A".
    fn two_blocks() -> Vec<Block> {
        vec![block("B", vec![square(1.0, 0.0, 2.0, 1.0)]), block("A", vec![square(0.0, 0.0, 1.0, 1.0)])]
    }

    #[test]
    fn interior_points_go_to_their_block() {
        let index = BlockIndex::new(&two_blocks());
        assert_eq!(index.locate(0.5, 0.5), Some("A"));
        assert_eq!(index.locate(1.5, 0.5), Some("B"));
        assert_eq!(index.locate(2.5, 0.5), None);
        assert_eq!(index.locate(f64::NAN, 0.5), None);
    }

    #[test]
    fn shared_edge_and_vertex_go_to_smallest_id() {
        let index = BlockIndex::new(&two_blocks());
        assert_eq!(index.locate(1.0, 0.5), Some("A"));
        assert_eq!(index.locate(1.0, 1.0), Some("A"));
        assert_eq!(index.locate(1.0, 0.0), Some("A"));
        // The catchment's outer edge is in the catchment.
        assert_eq!(index.locate(2.0, 0.5), Some("B"));
        assert_eq!(index.locate(1.5, 1.0), Some("B"));
        // Independent of insertion order.
        let mut reversed = two_blocks();
        reversed.reverse();
        assert_eq!(BlockIndex::new(&reversed).locate(1.0, 0.5), Some("A"));
    }

    #[test]
    fn holes_are_not_in_the_block() {
        let mut donut = square(0.0, 0.0, 4.0, 4.0);
        donut.interiors_push(square(1.0, 1.0, 2.0, 2.0).exterior().clone());
        let index = BlockIndex::new(&[block("Z", vec![donut]), block("Y", vec![square(1.0, 1.0, 2.0, 2.0)])]);
        assert_eq!(index.locate(0.5, 0.5), Some("Z"));
        assert_eq!(index.locate(1.5, 1.5), Some("Y"));
        // On the hole's edge both contain it: "Y" < "Z".
        assert_eq!(index.locate(1.0, 1.5), Some("Y"));
        let only_donut = {
            let mut d = square(0.0, 0.0, 4.0, 4.0);
            d.interiors_push(square(1.0, 1.0, 2.0, 2.0).exterior().clone());
            BlockIndex::new(&[block("Z", vec![d])])
        };
        assert_eq!(only_donut.locate(1.5, 1.5), None);
        assert_eq!(only_donut.locate(1.0, 1.5), Some("Z"));
    }

    #[test]
    fn multipolygon_parts_all_count() {
        let index = BlockIndex::new(&[block("M", vec![square(0.0, 0.0, 1.0, 1.0), square(5.0, 5.0, 6.0, 6.0)])]);
        assert_eq!(index.locate(0.5, 0.5), Some("M"));
        assert_eq!(index.locate(5.5, 5.5), Some("M"));
        assert_eq!(index.locate(3.0, 3.0), None);
    }

    #[test]
    fn ring_position_handles_both_windings_and_open_rings() {
        let ccw = square(0.0, 0.0, 1.0, 1.0).exterior().clone();
        let cw = LineString(ccw.0.iter().rev().copied().collect());
        let open = LineString(ccw.0[..4].to_vec());
        for ring in [&ccw, &cw, &open] {
            assert_eq!(ring_position(ring, Coord { x: 0.5, y: 0.5 }), Position::Inside);
            assert_eq!(ring_position(ring, Coord { x: 0.0, y: 0.5 }), Position::Boundary);
            assert_eq!(ring_position(ring, Coord { x: 1.5, y: 0.5 }), Position::Outside);
            assert_eq!(ring_position(ring, Coord { x: -0.5, y: 0.0 }), Position::Outside);
        }
    }

    /// Points on a slanted shared edge with awkward coordinates: exactly one block each.
    #[test]
    fn slanted_shared_edge_is_exact() {
        let a = polygon![(x: -118.3, y: 34.0), (x: -118.2, y: 34.1), (x: -118.3, y: 34.1), (x: -118.3, y: 34.0)];
        let b = polygon![(x: -118.3, y: 34.0), (x: -118.2, y: 34.0), (x: -118.2, y: 34.1), (x: -118.3, y: 34.0)];
        let index = BlockIndex::new(&[block("b", vec![b]), block("a", vec![a])]);
        for i in 0..1000 {
            let t = i as f64 / 1000.0;
            let x = -118.3 + 0.1 * t;
            let y = 34.0 + 0.1 * t;
            assert!(index.locate(x, y).is_some(), "point {x},{y} lost");
            // Nudged off the diagonal, the point goes to the side it is on.
            assert_eq!(
                index.locate(x + 1e-9, y - 2e-9).filter(|_| t > 0.01 && t < 0.99),
                if t > 0.01 && t < 0.99 { Some("b") } else { None }
            );
        }
    }
}
