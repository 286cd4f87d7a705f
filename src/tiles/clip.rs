//! Polygons to valid MVT rings: transform to tile coordinates, simplify for the zoom, snap to the
//! integer grid, clip to the buffered tile and repair whatever snapping broke.
//!
//! Snapping to integers is what makes tile polygons invalid in practice (a thin sliver collapses,
//! a simplified edge crosses a hole), so the snapped rings always go through i_overlay's integer
//! overlay with OGC-valid output: an intersection with the buffered tile for polygons that cross
//! its edge, a self-union ("simplify", which returns at once for rings that are already simple)
//! for the rest. Its output rings are simple, holes lie inside their shell, and outer rings wind
//! counter-clockwise in y-up terms, which is positive area in MVT's y-down tile coordinates,
//! exactly the orientation MVT 2.1 asks for.

use geo::{Coord, LineString, Simplify};
use i_overlay::core::fill_rule::FillRule;
use i_overlay::core::overlay::{IntOverlayOptions, Overlay, ShapeType};
use i_overlay::core::overlay_rule::OverlayRule;
use i_overlay::i_float::int::point::IntPoint;

use super::{BUFFER, EXTENT, Transform};

/// One polygon in tile coordinates: the shell, then its holes; rings are open (no repeated
/// closing point), shells have positive area and holes negative area (MVT's surveyor formula).
pub(crate) type TilePolygon = Vec<Vec<IntPoint>>;

/// Douglas–Peucker tolerance in tile units: a quarter pixel on a 512-pixel tile, so
/// simplification is invisible at every zoom while dropping the vertices a zoom cannot show.
const SIMPLIFY_TOLERANCE: f64 = 2.0;
/// Polygons smaller than this (tile units, both sides) are dropped: they would be less than a
/// sixteenth of a pixel.
const MIN_SIZE: f64 = 0.5;
/// Rings are pre-cut to this far outside the tile before snapping, so that huge polygons at deep
/// zooms stay in i32 range; the exact cut to the buffered tile follows.
const FAR: f64 = 16.0 * EXTENT as f64;

/// Cuts polygons for one tile; reuses its overlay buffers between polygons.
pub(crate) struct Clipper {
    transform: Transform,
    overlay: Overlay,
    window: Vec<IntPoint>,
}

impl Clipper {
    pub(crate) fn new(transform: Transform) -> Clipper {
        let (lo, hi) = (-(BUFFER as i32), (EXTENT + BUFFER) as i32);
        let window = vec![IntPoint::new(lo, lo), IntPoint::new(hi, lo), IntPoint::new(hi, hi), IntPoint::new(lo, hi)];
        Clipper { transform, overlay: Overlay::new_custom(64, IntOverlayOptions::ogc(), Default::default()), window }
    }

    /// The polygons of a multipolygon (unit coordinates, rings closed or open) as they appear in
    /// the tile; empty when nothing of it is visible at this zoom.
    pub(crate) fn polygons<P, R>(
        &mut self,
        polygons: impl IntoIterator<Item = P>,
        envelope: [f64; 4],
    ) -> Vec<TilePolygon>
    where
        P: IntoIterator<Item = R>,
        R: IntoIterator<Item = [f64; 2]>,
    {
        let [x0, y0] = self.transform.apply([envelope[0], envelope[1]]);
        let [x1, y1] = self.transform.apply([envelope[2], envelope[3]]);
        if x1 - x0 < MIN_SIZE && y1 - y0 < MIN_SIZE {
            return Vec::new();
        }
        let (lo, hi) = (-f64::from(BUFFER), f64::from(EXTENT + BUFFER));
        let inside = x0 >= lo && y0 >= lo && x1 <= hi && y1 <= hi;
        if x1 < lo || y1 < lo || x0 > hi || y0 > hi {
            return Vec::new();
        }
        let far = x0 < -FAR || y0 < -FAR || x1 > FAR || y1 > FAR;

        let mut contours: Vec<Vec<IntPoint>> = Vec::new();
        for polygon in polygons {
            for (k, ring) in polygon.into_iter().enumerate() {
                let mut pts: Vec<Coord<f64>> = ring
                    .into_iter()
                    .map(|p| {
                        let [x, y] = self.transform.apply(p);
                        Coord { x, y }
                    })
                    .collect();
                if far {
                    pts = cut_to_square(&pts, -FAR, FAR);
                }
                let snapped = snap(&pts);
                if snapped.len() < 3 {
                    if k == 0 {
                        break; // the shell vanished: so did its holes
                    }
                    continue;
                }
                contours.push(snapped);
            }
        }
        if contours.is_empty() {
            return Vec::new();
        }
        let shapes = if inside {
            match self.overlay.simplify_shape(&contours, FillRule::EvenOdd) {
                Some(shapes) => shapes,
                // Already simple and correctly wound: one shell.
                None => vec![contours],
            }
        } else {
            self.overlay.clear();
            self.overlay.add_contours(&contours, ShapeType::Subject);
            self.overlay.add_contour(&self.window, ShapeType::Clip);
            self.overlay.overlay(OverlayRule::Intersect, FillRule::EvenOdd)
        };
        shapes.into_iter().filter_map(orient).collect()
    }
}

/// Simplify, then snap to integers; consecutive duplicates and the closing point are dropped.
fn snap(ring: &[Coord<f64>]) -> Vec<IntPoint> {
    let mut closed = ring.to_vec();
    if closed.first() != closed.last()
        && let Some(&first) = closed.first()
    {
        closed.push(first);
    }
    let simplified = LineString::new(closed).simplify(SIMPLIFY_TOLERANCE);
    let mut out: Vec<IntPoint> = Vec::with_capacity(simplified.0.len());
    for c in &simplified.0 {
        let p = IntPoint::new(c.x.round() as i32, c.y.round() as i32);
        if out.last() != Some(&p) {
            out.push(p);
        }
    }
    while out.len() > 1 && out.first() == out.last() {
        out.pop();
    }
    out
}

/// Shells with positive area and holes with negative area, per MVT 2.1 (4.3.4.4); rings that
/// enclose no area are dropped, and a polygon whose shell is gone is dropped.
fn orient(mut shape: Vec<Vec<IntPoint>>) -> Option<TilePolygon> {
    let mut out: TilePolygon = Vec::with_capacity(shape.len());
    for (k, mut ring) in shape.drain(..).enumerate() {
        let area = area2(&ring);
        if area == 0 || ring.len() < 3 {
            if k == 0 {
                return None;
            }
            continue;
        }
        if (k == 0) != (area > 0) {
            ring.reverse();
        }
        out.push(ring);
    }
    (!out.is_empty()).then_some(out)
}

/// Twice the signed area by the surveyor's formula, exactly (i64 never overflows for i32 input).
pub(crate) fn area2(ring: &[IntPoint]) -> i64 {
    let n = ring.len();
    (0..n)
        .map(|i| {
            let (a, b) = (ring[i], ring[(i + 1) % n]);
            i64::from(a.x) * i64::from(b.y) - i64::from(b.x) * i64::from(a.y)
        })
        .sum()
}

/// Sutherland–Hodgman against the square `[lo, hi]²`. Exact inside the square; may leave
/// degenerate edges along its border, which lies far outside the tile and is cut away later.
fn cut_to_square(ring: &[Coord<f64>], lo: f64, hi: f64) -> Vec<Coord<f64>> {
    type Edge = (fn(Coord<f64>, f64) -> bool, fn(Coord<f64>, Coord<f64>, f64) -> Coord<f64>);
    fn lerp_x(a: Coord<f64>, b: Coord<f64>, x: f64) -> Coord<f64> {
        let t = (x - a.x) / (b.x - a.x);
        Coord { x, y: a.y + t * (b.y - a.y) }
    }
    fn lerp_y(a: Coord<f64>, b: Coord<f64>, y: f64) -> Coord<f64> {
        let t = (y - a.y) / (b.y - a.y);
        Coord { x: a.x + t * (b.x - a.x), y }
    }
    let edges: [(Edge, f64); 4] = [
        ((|p, v| p.x >= v, lerp_x), lo),
        ((|p, v| p.x <= v, lerp_x), hi),
        ((|p, v| p.y >= v, lerp_y), lo),
        ((|p, v| p.y <= v, lerp_y), hi),
    ];
    let mut pts = ring.to_vec();
    for ((keep, cut), v) in edges {
        let input = std::mem::take(&mut pts);
        let Some(&last) = input.last() else { break };
        let mut prev = last;
        for &cur in &input {
            match (keep(prev, v), keep(cur, v)) {
                (true, true) => pts.push(cur),
                (true, false) => pts.push(cut(prev, cur, v)),
                (false, true) => {
                    pts.push(cut(prev, cur, v));
                    pts.push(cur);
                }
                (false, false) => {}
            }
            prev = cur;
        }
    }
    pts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::TileId;

    fn clipper() -> Clipper {
        Clipper::new(Transform::new(TileId { z: 0, x: 0, y: 0 }))
    }

    /// A ring in tile units at z0 (unit coordinates × 4096).
    fn ring(pts: &[(f64, f64)]) -> Vec<[f64; 2]> {
        pts.iter().map(|&(x, y)| [x / 4096.0, y / 4096.0]).collect()
    }

    fn nested(
        polygons: &[Vec<Vec<[f64; 2]>>],
    ) -> impl Iterator<Item = impl Iterator<Item = impl Iterator<Item = [f64; 2]> + '_> + '_> + '_ {
        polygons.iter().map(|p| p.iter().map(|r| r.iter().copied()))
    }

    fn envelope(polygons: &[Vec<Vec<[f64; 2]>>]) -> [f64; 4] {
        let pts = polygons.iter().flatten().flatten();
        pts.fold([f64::MAX, f64::MAX, f64::MIN, f64::MIN], |e, p| {
            [e[0].min(p[0]), e[1].min(p[1]), e[2].max(p[0]), e[3].max(p[1])]
        })
    }

    #[test]
    fn shells_have_positive_area_and_holes_negative_with_no_closing_point() {
        // Given counter-clockwise in y-down terms (negative area): must come out reversed.
        let shell = ring(&[(100.0, 100.0), (100.0, 900.0), (900.0, 900.0), (900.0, 100.0), (100.0, 100.0)]);
        let hole = ring(&[(300.0, 300.0), (600.0, 300.0), (600.0, 600.0), (300.0, 600.0), (300.0, 300.0)]);
        let polys = vec![vec![shell, hole]];
        let out = clipper().polygons(nested(&polys), envelope(&polys));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), 2);
        assert!(area2(&out[0][0]) > 0 && area2(&out[0][1]) < 0);
        assert_eq!(area2(&out[0][0]), 2 * 800 * 800);
        assert!(out[0].iter().all(|r| r.first() != r.last() && r.len() == 4));
    }

    #[test]
    fn polygons_crossing_the_edge_are_cut_at_the_buffer() {
        let shell = ring(&[(-500.0, -500.0), (5000.0, -500.0), (5000.0, 2000.0), (-500.0, 2000.0)]);
        let polys = vec![vec![shell]];
        let out = clipper().polygons(nested(&polys), envelope(&polys));
        assert_eq!(out.len(), 1);
        let xs: Vec<i32> = out[0][0].iter().map(|p| p.x).collect();
        let ys: Vec<i32> = out[0][0].iter().map(|p| p.y).collect();
        assert_eq!((*xs.iter().min().unwrap(), *xs.iter().max().unwrap()), (-64, 4160));
        assert_eq!((*ys.iter().min().unwrap(), *ys.iter().max().unwrap()), (-64, 2000));
    }

    #[test]
    fn slivers_that_snap_to_nothing_disappear_and_tiny_polygons_are_dropped() {
        let sliver = ring(&[(10.0, 10.0), (3000.0, 10.2), (10.0, 10.3)]);
        let tiny = ring(&[(50.0, 50.0), (50.2, 50.0), (50.2, 50.2)]);
        for polys in [vec![vec![sliver]], vec![vec![tiny]]] {
            assert!(clipper().polygons(nested(&polys), envelope(&polys)).is_empty());
        }
    }

    #[test]
    fn a_bow_tie_made_by_snapping_is_repaired() {
        // Distinct in floating point, but both middle vertices snap to (100, 100).
        let shell = ring(&[(0.0, 0.0), (200.0, 0.0), (100.2, 100.1), (200.0, 200.0), (0.0, 200.0), (99.8, 99.9)]);
        let polys = vec![vec![shell]];
        let out = clipper().polygons(nested(&polys), envelope(&polys));
        assert_eq!(out.len(), 2, "two triangles touching at one point: {out:?}");
        assert!(out.iter().all(|p| p.len() == 1 && area2(&p[0]) > 0));
    }

    #[test]
    fn huge_polygons_at_deep_zoom_stay_exact_inside_the_tile() {
        // The whole world seen from a z20 tile: the tile is covered completely.
        let world = vec![vec![vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]]];
        let mut c = Clipper::new(Transform::new(TileId { z: 20, x: 1000, y: 2000 }));
        let out = c.polygons(nested(&world), [0.0, 0.0, 1.0, 1.0]);
        assert_eq!(out.len(), 1);
        assert_eq!(area2(&out[0][0]), 2 * 4224 * 4224);
    }

    #[test]
    fn cutting_to_a_square_keeps_the_inside_exactly() {
        let pts = [(-10.0, 5.0), (20.0, 5.0), (20.0, 8.0), (-10.0, 8.0)].map(|(x, y)| Coord { x, y });
        let cut = cut_to_square(&pts, 0.0, 10.0);
        let xs: Vec<f64> = cut.iter().map(|c| c.x).collect();
        assert!(xs.iter().all(|x| (0.0..=10.0).contains(x)));
        assert_eq!(cut.len(), 4);
    }
}
