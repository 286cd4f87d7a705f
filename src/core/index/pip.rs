//! Exact point-in-polygon: a crossing-number test whose every decision is an exact orientation
//! predicate (Shewchuk's, via `robust`), so two blocks sharing an edge always agree on which
//! side a point is, and a point exactly on an edge is recognised as such.

use geo::{Coord, LineString, Polygon};
use robust::{Coord as RCoord, orient2d};

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

/// Position of `p` relative to a polygon with holes (closed: the boundary includes hole edges).
///
/// ```
/// use belong::core::index::{Position, polygon_position};
/// use geo::{coord, polygon};
/// let square = polygon![(x: 0., y: 0.), (x: 2., y: 0.), (x: 2., y: 2.), (x: 0., y: 2.)];
/// assert_eq!(polygon_position(&square, coord! { x: 1., y: 1. }), Position::Inside);
/// assert_eq!(polygon_position(&square, coord! { x: 2., y: 1. }), Position::Boundary);
/// ```
pub fn polygon_position(polygon: &Polygon<f64>, p: Coord<f64>) -> Position {
    rings_position(
        std::iter::once(polygon.exterior().0.as_slice()).chain(polygon.interiors().iter().map(|r| r.0.as_slice())),
        p,
    )
}

/// Position relative to an exterior ring followed by its holes.
pub(super) fn rings_position<'a>(mut rings: impl Iterator<Item = &'a [Coord<f64>]>, p: Coord<f64>) -> Position {
    let Some(exterior) = rings.next() else { return Position::Outside };
    match ring_slice_position(exterior, p) {
        Position::Inside => {}
        other => return other,
    }
    for hole in rings {
        match ring_slice_position(hole, p) {
            Position::Inside => return Position::Outside,
            Position::Boundary => return Position::Boundary,
            Position::Outside => {}
        }
    }
    Position::Inside
}

/// Position relative to one ring; either winding order; the ring may or may not repeat its
/// first vertex at the end.
pub fn ring_position(ring: &LineString<f64>, p: Coord<f64>) -> Position {
    ring_slice_position(&ring.0, p)
}

pub(super) fn ring_slice_position(pts: &[Coord<f64>], p: Coord<f64>) -> Position {
    let n = pts.len();
    if n < 3 {
        return Position::Outside;
    }
    let mut inside = false;
    let mut prev = pts[n - 1];
    for &b in pts {
        let a = std::mem::replace(&mut prev, b);
        if a == b {
            continue;
        }
        let (ylo, yhi) = if a.y < b.y { (a.y, b.y) } else { (b.y, a.y) };
        if p.y < ylo || p.y > yhi {
            continue; // cheap reject: most edges are nowhere near the ray
        }
        let (xlo, xhi) = if a.x < b.x { (a.x, b.x) } else { (b.x, a.x) };
        if p.x > xhi {
            continue; // edge entirely left of the point: neither on it nor crossed by the ray
        }
        let o = orient(a, b, p);
        if o == 0.0 && p.x >= xlo {
            return Position::Boundary;
        }
        // Half-open rule on y: each edge counts once for a ray to +x.
        if (a.y > p.y) != (b.y > p.y) && ((b.y > a.y && o > 0.0) || (b.y < a.y && o < 0.0)) {
            inside = !inside;
        }
    }
    if inside { Position::Inside } else { Position::Outside }
}

#[inline]
fn orient(a: Coord<f64>, b: Coord<f64>, p: Coord<f64>) -> f64 {
    orient2d(RCoord { x: a.x, y: a.y }, RCoord { x: b.x, y: b.y }, RCoord { x: p.x, y: p.y })
}
