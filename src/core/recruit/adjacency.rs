//! Which blocks are neighbours: they share a stretch of boundary of positive length. Blocks that
//! only touch at a corner are not neighbours.
//!
//! Two passes over the boundary segments (exterior and hole rings of every polygon part):
//! 1. **Shared segments.** Census blocks (TIGER/Line) share their vertices, so most common edges
//!    are the very same segment in both blocks: sorting every segment by its endpoints (in either
//!    direction) pairs them up exactly, with no tolerance, in O(n log n).
//! 2. **Collinear overlaps.** What is left unpaired — the catchment's outer edge, and edges where
//!    one side has a vertex the other lacks (a T-junction) or the two sides were digitised
//!    separately — goes into an R-tree, and each pair of nearly collinear segments from different
//!    blocks is tested for an overlap longer than [`MIN_OVERLAP_M`]. Lengths are measured in a
//!    local equirectangular projection (metres), good to a fraction of a percent at block scale.
//!
//! Pass 2 only sees segments that pass 1 left unpaired, which is right for a tiling (blocks that
//! do not overlap): along a segment shared exactly by two blocks, no third block can also lie on
//! the other side. Building is a one-off per catchment; the result only changes with the blocks.

use geo::{Coord, MultiPolygon};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};

/// How far (metres) a segment may stray from its neighbour's line and still count as the same
/// boundary.
pub const TOLERANCE_M: f64 = 0.1;
/// The shortest shared stretch (metres) that makes two blocks neighbours; anything shorter is a
/// corner touch.
pub const MIN_OVERLAP_M: f64 = 0.5;
/// Metres per degree of latitude (mean); only used to express the tolerances in degrees.
const M_PER_DEG: f64 = 111_195.0;

/// Neighbours of every block, by position in the input (compressed sparse rows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adjacency {
    starts: Vec<u32>,
    neighbours: Vec<u32>,
}

/// A segment with its endpoints in a canonical order, and its block.
#[derive(Debug, Clone, Copy)]
struct Segment {
    a: Coord<f64>,
    b: Coord<f64>,
    block: u32,
}

fn bits(c: Coord<f64>) -> (u64, u64) {
    // +0.0 and -0.0 are the same coordinate.
    ((c.x + 0.0).to_bits(), (c.y + 0.0).to_bits())
}

impl Adjacency {
    /// Neighbours of the blocks `geometries` (WGS84 lon/lat), by position.
    pub fn new(geometries: &[&MultiPolygon<f64>]) -> Adjacency {
        let mut segments: Vec<Segment> = Vec::new();
        for (block, mp) in geometries.iter().enumerate() {
            for polygon in &mp.0 {
                for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
                    for w in ring.0.windows(2) {
                        let (p, q) = (w[0], w[1]);
                        if p == q || !(p.x.is_finite() && p.y.is_finite() && q.x.is_finite() && q.y.is_finite()) {
                            continue;
                        }
                        let (a, b) = if (p.x, p.y) <= (q.x, q.y) { (p, q) } else { (q, p) };
                        segments.push(Segment { a, b, block: block as u32 });
                    }
                }
            }
        }
        let mut pairs: Vec<(u32, u32)> = Vec::new();

        // Pass 1: the same segment in two blocks.
        segments.sort_unstable_by_key(|s| (bits(s.a), bits(s.b), s.block));
        let mut unpaired: Vec<Segment> = Vec::new();
        let mut start = 0;
        while start < segments.len() {
            let key = (bits(segments[start].a), bits(segments[start].b));
            let mut end = start + 1;
            while end < segments.len() && (bits(segments[end].a), bits(segments[end].b)) == key {
                end += 1;
            }
            let run = &segments[start..end];
            // Sorted by block within the run: distinct blocks are where the block changes.
            if run.first().map(|s| s.block) == run.last().map(|s| s.block) {
                unpaired.push(run[0]);
            } else {
                for (i, s) in run.iter().enumerate() {
                    for t in &run[i + 1..] {
                        if s.block != t.block {
                            pairs.push((s.block, t.block));
                        }
                    }
                }
            }
            start = end;
        }
        drop(segments);

        // Pass 2: collinear overlaps among the unpaired segments.
        collinear_pairs(&unpaired, &mut pairs);

        let n = geometries.len();
        let mut both: Vec<(u32, u32)> = pairs.iter().flat_map(|&(i, j)| [(i, j), (j, i)]).collect();
        both.sort_unstable();
        both.dedup();
        let mut starts = vec![0u32; n + 1];
        for &(i, _) in &both {
            starts[i as usize + 1] += 1;
        }
        for i in 0..n {
            starts[i + 1] += starts[i];
        }
        Adjacency { starts, neighbours: both.into_iter().map(|(_, j)| j).collect() }
    }

    /// The neighbours of block `i` (positions, ascending); empty for an unknown position.
    pub fn neighbours(&self, i: usize) -> &[u32] {
        match (self.starts.get(i), self.starts.get(i + 1)) {
            (Some(&s), Some(&e)) => &self.neighbours[s as usize..e as usize],
            _ => &[],
        }
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// True when there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A segment in local metres around the catchment.
#[derive(Debug, Clone, Copy)]
struct Local {
    a: [f64; 2],
    b: [f64; 2],
    block: u32,
}

fn collinear_pairs(segments: &[Segment], pairs: &mut Vec<(u32, u32)>) {
    if segments.is_empty() {
        return;
    }
    let (lo, hi) = segments
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| (lo.min(s.a.y.min(s.b.y)), hi.max(s.a.y.max(s.b.y))));
    let lat0 = (lo + hi) / 2.0;
    let kx = M_PER_DEG * lat0.to_radians().cos();
    let local: Vec<Local> = segments
        .iter()
        .map(|s| Local { a: [s.a.x * kx, s.a.y * M_PER_DEG], b: [s.b.x * kx, s.b.y * M_PER_DEG], block: s.block })
        .collect();
    let pad = TOLERANCE_M;
    let tree = RTree::bulk_load(
        local
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let lo = [s.a[0].min(s.b[0]) - pad, s.a[1].min(s.b[1]) - pad];
                let hi = [s.a[0].max(s.b[0]) + pad, s.a[1].max(s.b[1]) + pad];
                GeomWithData::new(Rectangle::from_corners(lo, hi), i)
            })
            .collect(),
    );
    for (i, s) in local.iter().enumerate() {
        let env = AABB::from_corners(
            [s.a[0].min(s.b[0]) - pad, s.a[1].min(s.b[1]) - pad],
            [s.a[0].max(s.b[0]) + pad, s.a[1].max(s.b[1]) + pad],
        );
        for hit in tree.locate_in_envelope_intersecting(env) {
            let t = &local[hit.data];
            if hit.data > i && t.block != s.block && overlap(s, t) > MIN_OVERLAP_M {
                pairs.push((s.block, t.block));
            }
        }
    }
}

/// Length (metres) over which two segments run along the same line, within [`TOLERANCE_M`];
/// 0 when they are not collinear. Measured along the longer one, whose line is the reference.
fn overlap(s: &Local, t: &Local) -> f64 {
    let len = |x: &Local| ((x.b[0] - x.a[0]).powi(2) + (x.b[1] - x.a[1]).powi(2)).sqrt();
    let (long, short) = if len(s) >= len(t) { (s, t) } else { (t, s) };
    let l = len(long);
    if l == 0.0 {
        return 0.0;
    }
    let u = [(long.b[0] - long.a[0]) / l, (long.b[1] - long.a[1]) / l];
    let along = |p: [f64; 2]| (p[0] - long.a[0]) * u[0] + (p[1] - long.a[1]) * u[1];
    let off = |p: [f64; 2]| ((p[0] - long.a[0]) * u[1] - (p[1] - long.a[1]) * u[0]).abs();
    if off(short.a) > TOLERANCE_M || off(short.b) > TOLERANCE_M {
        return 0.0;
    }
    let (p, q) = (along(short.a), along(short.b));
    (p.max(q).min(l) - p.min(q).max(0.0)).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Polygon, Rect};

    /// A cell of about 100 m near Los Angeles.
    const D: f64 = 0.001;

    fn cell(x: f64, y: f64, w: f64, h: f64) -> Polygon<f64> {
        Rect::new((-118.3 + x * D, 34.0 + y * D), (-118.3 + (x + w) * D, 34.0 + (y + h) * D)).to_polygon()
    }

    fn neighbours(blocks: &[MultiPolygon<f64>]) -> Vec<Vec<u32>> {
        let refs: Vec<&MultiPolygon<f64>> = blocks.iter().collect();
        let adj = Adjacency::new(&refs);
        (0..blocks.len()).map(|i| adj.neighbours(i).to_vec()).collect()
    }

    #[test]
    fn grid_edges_not_corners() {
        // 3 x 3 grid, row-major: 0 1 2 / 3 4 5 / 6 7 8.
        let blocks: Vec<MultiPolygon<f64>> =
            (0..9).map(|i| MultiPolygon(vec![cell((i % 3) as f64, (i / 3) as f64, 1.0, 1.0)])).collect();
        let n = neighbours(&blocks);
        assert_eq!(n[4], [1, 3, 5, 7]);
        assert_eq!(n[0], [1, 3]);
        assert_eq!(n[8], [5, 7]);
    }

    #[test]
    fn t_junction_and_collinear_overlap() {
        // A long block over two short ones: the long edge has no vertex at x = 1.
        let blocks = vec![
            MultiPolygon(vec![cell(0.0, 1.0, 2.0, 1.0)]),
            MultiPolygon(vec![cell(0.0, 0.0, 1.0, 1.0)]),
            MultiPolygon(vec![cell(1.0, 0.0, 1.0, 1.0)]),
            // Half a cell higher, right of blocks 0 and 2: part of each one's edge, no shared vertex.
            MultiPolygon(vec![cell(2.0, 0.5, 1.0, 1.0)]),
        ];
        let n = neighbours(&blocks);
        assert_eq!(n[0], [1, 2, 3]);
        assert_eq!(n[1], [0, 2]);
        assert_eq!(n[2], [0, 1, 3]);
        assert_eq!(n[3], [0, 2]);
    }

    #[test]
    fn hole_and_multipolygon() {
        // Block 0: a 3x3 square with a 1x1 hole, where block 1 sits. Block 2: two parts, one
        // touching block 0's outside edge, the other far away. Block 3 touches block 0 at a corner.
        let mut donut = cell(0.0, 0.0, 3.0, 3.0);
        donut.interiors_push(cell(1.0, 1.0, 1.0, 1.0).exterior().clone());
        let blocks = vec![
            MultiPolygon(vec![donut]),
            MultiPolygon(vec![cell(1.0, 1.0, 1.0, 1.0)]),
            MultiPolygon(vec![cell(3.0, 1.0, 1.0, 1.0), cell(10.0, 10.0, 1.0, 1.0)]),
            MultiPolygon(vec![cell(3.0, 3.0, 1.0, 1.0)]),
        ];
        let n = neighbours(&blocks);
        assert_eq!(n[0], [1, 2]);
        assert_eq!(n[1], [0]);
        assert_eq!(n[2], [0]);
        assert!(n[3].is_empty());
    }

    /// On the demo catchment (shared vertices, as in TIGER data) the two passes agree with a
    /// brute-force comparison of every pair of segments of every pair of blocks.
    #[test]
    fn agrees_with_brute_force_on_the_demo_catchment() {
        let spec = crate::demo::DemoSpec {
            blocks: 120,
            residents: Some(0),
            ambassadors: Some(0),
            resources: Some(0),
            seed: 4,
        };
        let blocks = crate::demo::blocks_wgs84(&spec);
        let geometries: Vec<MultiPolygon<f64>> = blocks.iter().map(|b| b.geometry.clone()).collect();
        let fast = neighbours(&geometries);
        let kx = M_PER_DEG * 34f64.to_radians().cos();
        let segments = |mp: &MultiPolygon<f64>| -> Vec<Local> {
            mp.0.iter()
                .flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()))
                .flat_map(|r| r.0.windows(2).map(|w| (w[0], w[1])).collect::<Vec<_>>())
                .map(|(a, b)| Local { a: [a.x * kx, a.y * M_PER_DEG], b: [b.x * kx, b.y * M_PER_DEG], block: 0 })
                .collect()
        };
        let all: Vec<Vec<Local>> = geometries.iter().map(segments).collect();
        let mut pairs = 0;
        for i in 0..all.len() {
            let slow: Vec<u32> = (0..all.len())
                .filter(|&j| j != i && all[i].iter().any(|s| all[j].iter().any(|t| overlap(s, t) > MIN_OVERLAP_M)))
                .map(|j| j as u32)
                .collect();
            assert_eq!(fast[i], slow, "block {}", blocks[i].id);
            pairs += slow.len();
            assert!(slow.iter().all(|&j| fast[j as usize].contains(&(i as u32))), "symmetric");
        }
        assert!(pairs / all.len() >= 2, "a street grid: blocks have neighbours ({pairs} pairs)");
    }

    #[test]
    fn nearly_collinear_within_tolerance_only() {
        // Block 1's left edge is 5 cm (within tolerance) / 5 m (not) right of block 0's edge.
        let off = |metres: f64| metres / (M_PER_DEG * 34f64.to_radians().cos()) / D;
        for (gap, expect) in [(0.05, true), (5.0, false)] {
            let blocks = vec![
                MultiPolygon(vec![cell(0.0, 0.0, 1.0, 1.0)]),
                MultiPolygon(vec![cell(1.0 + off(gap), 0.2, 1.0, 1.0)]),
            ];
            assert_eq!(!neighbours(&blocks)[0].is_empty(), expect, "gap {gap} m");
        }
    }
}
