//! The block index: an R-tree (`rstar`) over the envelopes of block polygons for area queries,
//! a uniform grid for point location, and an exact point-in-polygon test after either.
//!
//! # The boundary rule
//! A point belongs to a block when the block's *closed* polygon contains it (interior or
//! boundary; a point in a hole is not in the block, a point on a hole's edge is). When several
//! blocks contain the point — it lies exactly on a shared edge or vertex, or the source blocks
//! overlap — it belongs to the block whose id sorts first (byte-wise string order). The rule uses
//! exact orientation predicates, so it does not depend on load order, the index's shape or
//! floating-point rounding: a point is in exactly one block or in none.

mod grid;
mod pip;

use geo::{Coord, MultiPolygon, Polygon};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};

pub use pip::{Position, polygon_position, ring_position};

use super::Block;
use grid::Grid;

/// R-tree entry: a polygon part's envelope and its block's rank.
type Entry = GeomWithData<Rectangle<[f64; 2]>, u32>;

/// What a grid cell lists for each polygon part touching it: enough to reject most parts
/// without touching their vertices (one cache line holds a typical cell's list).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    /// Envelope rounded outwards to f32, so the test never rejects a point it should keep.
    envelope: [f32; 4],
    /// The block's rank (position in sorted id order).
    rank: u32,
    /// Where the part starts in [`BlockIndex::packed`].
    offset: u32,
}

/// Blocks ready for point lookups, in WGS84 lon/lat. Immutable once built; rebuild after a
/// block import.
pub struct BlockIndex {
    tree: RTree<Entry>,
    grid: Grid<Candidate>,
    /// Block ids, sorted; the position is the block's rank for the boundary rule.
    ids: Vec<String>,
    /// Every polygon part, packed for locality: a header `(ring count, 0)`, then per ring a
    /// header `(vertex count, 0)` followed by its vertices. Parts are stored in Z-order of their
    /// centres so that neighbouring blocks are neighbours in memory too.
    packed: Vec<Coord<f64>>,
}

impl BlockIndex {
    /// Build the index.
    pub fn new<'a>(blocks: impl IntoIterator<Item = &'a Block>) -> BlockIndex {
        BlockIndex::from_parts(blocks.into_iter().map(|b| (b.id.as_str(), &b.geometry)))
    }

    /// Build the index over any `(id, polygon)` pairs (area layers use the same exact,
    /// deterministic point location as blocks).
    pub fn from_parts<'a>(items: impl IntoIterator<Item = (&'a str, &'a MultiPolygon<f64>)>) -> BlockIndex {
        let mut items: Vec<(&str, &MultiPolygon<f64>)> = items.into_iter().collect();
        items.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let ids: Vec<String> = items.iter().map(|(id, _)| id.to_string()).collect();
        let parts: Vec<(u32, &Polygon<f64>, [f64; 4])> = items
            .iter()
            .enumerate()
            .flat_map(|(rank, (_, g))| g.0.iter().map(move |p| (rank as u32, p)))
            .filter_map(|(rank, p)| envelope(&p.exterior().0).map(|e| (rank, p, e)))
            .collect();
        let envelopes: Vec<[f64; 4]> = parts.iter().map(|p| p.2).collect();
        let tree = RTree::bulk_load(
            parts
                .iter()
                .map(|&(rank, _, e)| GeomWithData::new(Rectangle::from_corners([e[0], e[1]], [e[2], e[3]]), rank))
                .collect(),
        );
        // Pack parts in Z-order of their centres (a throwaway grid gives the keys).
        let keys: Grid<()> = Grid::new(&envelopes, &vec![(); envelopes.len()], 1.0);
        let mut order: Vec<usize> = (0..parts.len()).collect();
        order.sort_by_key(|&i| {
            let e = &parts[i].2;
            (keys.z_order((e[0] + e[2]) / 2.0, (e[1] + e[3]) / 2.0), parts[i].0)
        });
        let mut packed = Vec::new();
        let mut candidates = vec![Candidate { envelope: [0.0; 4], rank: 0, offset: 0 }; parts.len()];
        for i in order {
            let (rank, polygon, e) = parts[i];
            candidates[i] = Candidate { envelope: outward_f32(e), rank, offset: packed.len() as u32 };
            packed.push(Coord { x: (1 + polygon.interiors().len()) as f64, y: 0.0 });
            for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
                packed.push(Coord { x: ring.0.len() as f64, y: 0.0 });
                packed.extend_from_slice(&ring.0);
            }
        }
        // Candidates stay in rank order (the order of `parts`), which the boundary rule needs.
        let grid = Grid::new(&envelopes, &candidates, 2.0);
        BlockIndex { tree, grid, ids, packed }
    }

    /// Grid statistics: (cells, list entries, longest list). For tuning and benchmarks.
    #[doc(hidden)]
    pub fn grid_stats(&self) -> (usize, usize, usize) {
        self.grid.stats()
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

    /// Like [`BlockIndex::locate`] but returns the block's rank (position in [`BlockIndex::ids`]).
    #[inline]
    pub fn locate_rank(&self, lon: f64, lat: f64) -> Option<u32> {
        if !lon.is_finite() || !lat.is_finite() {
            return None;
        }
        let p = Coord { x: lon, y: lat };
        let (x, y) = (lon as f32, lat as f32);
        // Candidates come in rank order, so the first part containing the point is the
        // smallest id that does: exactly the boundary rule. The f32 envelope test is widened
        // by one ulp on each side, so it only ever lets extra parts through.
        self.grid.candidates(lon, lat).iter().find_map(|c| {
            let e = &c.envelope;
            let near = x >= e[0] && x <= e[2] && y >= e[1] && y <= e[3];
            (near && self.part_position(c.offset, p) != Position::Outside).then_some(c.rank)
        })
    }

    /// Locate many points, in input order. Points are first bucketed by a coarse Z-order key of
    /// their grid cell (one counting-sort pass), then located bucket by bucket, so the blocks
    /// being tested stay in cache; at county scale this is several times faster than locating
    /// points in arbitrary order.
    pub fn locate_many(&self, points: &[(f64, f64)]) -> Vec<Option<u32>> {
        const SMALL: usize = 4096;
        if points.len() < SMALL {
            return points.iter().map(|&(x, y)| self.locate_rank(x, y)).collect();
        }
        // About 16 points per bucket, at most 2^16 buckets; points off the grid go last.
        let want = (points.len() / 16).clamp(1, 1 << 16).ilog2();
        let shift = self.grid.z_bits().saturating_sub(want);
        let outside = (1usize << want.min(self.grid.z_bits())) as u32;
        let bucket = |&(x, y): &(f64, f64)| match self.grid.z_order(x, y) {
            u64::MAX => outside,
            z => (z >> shift) as u32,
        };
        let keys: Vec<u32> = points.iter().map(bucket).collect();
        let mut starts = vec![0u32; outside as usize + 2];
        for &k in &keys {
            starts[k as usize + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut sorted = vec![(0.0, 0.0, 0u32); points.len()];
        for (i, (&k, &(x, y))) in keys.iter().zip(points).enumerate() {
            let slot = &mut starts[k as usize];
            sorted[*slot as usize] = (x, y, i as u32);
            *slot += 1;
        }
        let mut out = vec![None; points.len()];
        for (x, y, i) in sorted {
            out[i as usize] = self.locate_rank(x, y);
        }
        out
    }

    fn part_position(&self, offset: u32, p: Coord<f64>) -> Position {
        let mut at = offset as usize;
        let rings = self.packed[at].x as usize;
        at += 1;
        let packed = &self.packed;
        let rings = (0..rings).map(move |_| {
            let len = packed[at].x as usize;
            let ring = &packed[at + 1..at + 1 + len];
            at += 1 + len;
            ring
        });
        pip::rings_position(rings, p)
    }

    /// Ranks of the blocks whose envelope intersects `[min_lon, min_lat, max_lon, max_lat]`,
    /// sorted and without duplicates (an R-tree query; the caller does the exact test).
    pub fn ranks_in_envelope(&self, bbox: [f64; 4]) -> Vec<u32> {
        let env = AABB::from_corners([bbox[0], bbox[1]], [bbox[2], bbox[3]]);
        let mut ranks: Vec<u32> = self.tree.locate_in_envelope_intersecting(env).map(|e| e.data).collect();
        ranks.sort_unstable();
        ranks.dedup();
        ranks
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

/// An f64 envelope as f32, rounded outwards by a step so it still contains every vertex.
fn outward_f32(e: [f64; 4]) -> [f32; 4] {
    let down = |v: f64| (v as f32).next_down();
    let up = |v: f64| (v as f32).next_up();
    [down(e[0]), down(e[1]), up(e[2]), up(e[3])]
}

fn envelope(ring: &[Coord<f64>]) -> Option<[f64; 4]> {
    let first = ring.first()?;
    let mut e = [first.x, first.y, first.x, first.y];
    for c in ring {
        e = [e[0].min(c.x), e[1].min(c.y), e[2].max(c.x), e[3].max(c.y)];
    }
    e.iter().all(|v| v.is_finite()).then_some(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{LineString, Polygon, polygon};

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

    /// The grid-accelerated lookup agrees with a brute-force scan of every block, on random
    /// points and on every vertex and edge midpoint (the shared-boundary cases).
    #[test]
    fn agrees_with_brute_force_on_the_demo_catchment() {
        use rand::{Rng, SeedableRng};
        let spec = crate::demo::DemoSpec {
            blocks: 300,
            residents: Some(0),
            ambassadors: Some(0),
            resources: Some(0),
            seed: 3,
        };
        let blocks = crate::demo::blocks_wgs84(&spec);
        let index = BlockIndex::new(&blocks);
        let mut sorted: Vec<&Block> = blocks.iter().collect();
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        let brute = |x: f64, y: f64| {
            sorted
                .iter()
                .position(|b| b.geometry.0.iter().any(|p| polygon_position(p, Coord { x, y }) != Position::Outside))
                .map(|r| r as u32)
        };
        let [x0, y0, x1, y1] = index.bbox().unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut pts: Vec<(f64, f64)> = (0..3000)
            .map(|_| (rng.random_range(x0 - 0.001..x1 + 0.001), rng.random_range(y0 - 0.001..y1 + 0.001)))
            .collect();
        for b in &blocks {
            for p in &b.geometry.0 {
                for w in p.exterior().0.windows(2) {
                    pts.push((w[0].x, w[0].y));
                    pts.push(((w[0].x + w[1].x) / 2.0, (w[0].y + w[1].y) / 2.0));
                }
            }
        }
        let many = index.locate_many(&pts);
        for (i, &(x, y)) in pts.iter().enumerate() {
            let expected = brute(x, y);
            assert_eq!(index.locate_rank(x, y), expected, "point {x},{y}");
            assert_eq!(many[i], expected, "locate_many at {x},{y}");
        }
        // Every vertex is inside some block.
        assert!(pts[3000..].iter().step_by(2).all(|&(x, y)| index.locate_rank(x, y).is_some()));
    }

    #[test]
    fn envelope_query_finds_overlapping_blocks() {
        let index = BlockIndex::new(&two_blocks());
        assert_eq!(index.ranks_in_envelope([0.2, 0.2, 0.4, 0.4]), vec![0]);
        assert_eq!(index.ranks_in_envelope([0.5, 0.2, 1.5, 0.4]), vec![0, 1]);
        assert!(index.ranks_in_envelope([5.0, 5.0, 6.0, 6.0]).is_empty());
        assert_eq!(index.bbox(), Some([0.0, 0.0, 2.0, 1.0]));
    }
}
