//! Geometry checks shared by the readers: grouping a shapefile's flat ring list into polygons,
//! RFC 7946 winding, and the per-feature checks (finite coordinates, lon/lat range, OGC
//! validity). Pure functions on `geo` types; they work in whatever CRS the caller has.

use geo::algorithm::validation::{InvalidPolygon, RingRole};
use geo::coordinate_position::{CoordPos, CoordinatePosition};
use geo::dimensions::Dimensions;
use geo::kernels::{Kernel, Orientation, RobustKernel};
use geo::line_intersection::{LineIntersection, line_intersection};
use geo::orient::{Direction, Orient};
use geo::{BoundingRect, Coord, InteriorPoint, Line, LineString, MultiPolygon, Polygon, Rect, Relate, Validation};

/// Turns a flat list of rings (a shapefile polygon record, an Esri JSON `rings` array) into
/// polygons with holes.
///
/// Roles come from nesting, not winding: a ring inside an even number of other rings is an
/// exterior, one inside an odd number is a hole of the smallest ring containing it. For a file
/// that follows the shapefile spec (exteriors clockwise, holes counter-clockwise) this is the
/// same answer, and files written with the opposite winding, or a "hole" that lies in no
/// exterior (which then becomes an exterior, as GDAL does), still read correctly.
///
/// Rings are closed if needed. Degenerate rings (fewer than 4 points or no area) are dropped;
/// if nothing is left the record is an error. Output winding is left as found: call
/// [`orient_rfc7946`] after reprojection.
pub(crate) fn group_rings(rings: Vec<LineString<f64>>) -> Result<MultiPolygon<f64>, String> {
    let total = rings.len();
    let mut kept: Vec<Ring> = Vec::with_capacity(total);
    for mut ring in rings {
        ring.close();
        if ring.0.len() < 4 {
            continue;
        }
        if is_degenerate(&ring.0) {
            continue;
        }
        // A bowtie has (almost) zero signed area yet is not degenerate: it is kept so that
        // validation can say where it crosses itself.
        let area = signed_area(&ring.0).abs();
        let Some(bbox) = ring.bounding_rect() else {
            continue;
        };
        kept.push(Ring { area, bbox, polygon: Polygon::new(ring, vec![]) });
    }
    if kept.is_empty() {
        return Err(if total == 0 {
            "empty geometry".to_string()
        } else {
            "empty geometry: every ring has fewer than 4 points or no area".to_string()
        });
    }

    // Largest first, so every ring's possible containers are already placed.
    let mut order: Vec<usize> = (0..kept.len()).collect();
    order.sort_by(|&a, &b| kept[b].area.total_cmp(&kept[a].area));
    let mut parent: Vec<Option<usize>> = vec![None; kept.len()];
    let mut depth: Vec<usize> = vec![0; kept.len()];
    for (pos, &k) in order.iter().enumerate() {
        // The smallest containing ring is the latest placed one that contains it.
        let container = order[..pos].iter().rev().copied().find(|&c| ring_contains(&kept[c], &kept[k]));
        if let Some(c) = container {
            parent[k] = Some(c);
            depth[k] = depth[c] + 1;
        }
    }

    // Exteriors and holes in file order.
    let mut holes: Vec<Vec<usize>> = vec![Vec::new(); kept.len()];
    for k in 0..kept.len() {
        if !depth[k].is_multiple_of(2)
            && let Some(p) = parent[k]
        {
            holes[p].push(k);
        }
    }
    let mut exteriors: Vec<Option<LineString<f64>>> = Vec::with_capacity(kept.len());
    let mut rings_by_index: Vec<Option<LineString<f64>>> = Vec::with_capacity(kept.len());
    for ring in kept {
        let (exterior, _) = ring.polygon.into_inner();
        rings_by_index.push(Some(exterior));
        exteriors.push(None);
    }
    for k in 0..rings_by_index.len() {
        if depth[k].is_multiple_of(2) {
            exteriors[k] = rings_by_index[k].take();
        }
    }
    let mut polygons = Vec::new();
    for k in 0..exteriors.len() {
        if let Some(exterior) = exteriors[k].take() {
            let interiors = holes[k].iter().filter_map(|&h| rings_by_index[h].take()).collect();
            polygons.push(Polygon::new(exterior, interiors));
        }
    }
    Ok(MultiPolygon::new(polygons))
}

/// Fewer than 3 distinct points, or all on one line: no area whatever the winding.
fn is_degenerate(coords: &[Coord<f64>]) -> bool {
    let Some(&first) = coords.first() else {
        return true;
    };
    let Some(&second) = coords.iter().find(|c| **c != first) else {
        return true;
    };
    coords.iter().all(|c| RobustKernel::orient2d(first, second, *c) == Orientation::Collinear)
}

struct Ring {
    area: f64,
    bbox: Rect<f64>,
    polygon: Polygon<f64>,
}

/// Is `inner` inside `outer`? Tested with the first vertex of `inner` that is not on `outer`'s
/// boundary (rings may touch at a vertex), falling back to a point inside `inner`.
fn ring_contains(outer: &Ring, inner: &Ring) -> bool {
    let (o, i) = (outer.bbox, inner.bbox);
    if i.min().x < o.min().x || i.min().y < o.min().y || i.max().x > o.max().x || i.max().y > o.max().y {
        return false;
    }
    for c in &inner.polygon.exterior().0 {
        match outer.polygon.coordinate_position(c) {
            CoordPos::Inside => return true,
            CoordPos::Outside => return false,
            CoordPos::OnBoundary => {}
        }
    }
    inner.polygon.interior_point().is_some_and(|p| outer.polygon.coordinate_position(&p.0) == CoordPos::Inside)
}

/// Shoelace area: positive counter-clockwise, negative clockwise (x east, y north).
pub(crate) fn signed_area(coords: &[Coord<f64>]) -> f64 {
    coords.windows(2).map(|w| w[0].x * w[1].y - w[1].x * w[0].y).sum::<f64>() / 2.0
}

/// RFC 7946 winding: exteriors counter-clockwise, holes clockwise.
pub(crate) fn orient_rfc7946(mp: &MultiPolygon<f64>) -> MultiPolygon<f64> {
    mp.orient(Direction::Default)
}

/// The first coordinate that is NaN or infinite, with its 1-based position in the feature.
pub(crate) fn first_non_finite(mp: &MultiPolygon<f64>) -> Option<(usize, Coord<f64>)> {
    all_coords(mp).enumerate().find(|(_, c)| !c.x.is_finite() || !c.y.is_finite()).map(|(i, c)| (i + 1, *c))
}

/// The first coordinate that is not a valid WGS84 lon/lat (lon in [-180, 180], lat in [-90, 90]).
pub(crate) fn first_outside_lonlat(mp: &MultiPolygon<f64>) -> Option<Coord<f64>> {
    all_coords(mp).find(|c| !is_lonlat(c)).copied()
}

/// Could this coordinate be lon/lat degrees?
pub(crate) fn is_lonlat(c: &Coord<f64>) -> bool {
    (-180.0..=180.0).contains(&c.x) && (-90.0..=90.0).contains(&c.y)
}

fn all_coords(mp: &MultiPolygon<f64>) -> impl Iterator<Item = &Coord<f64>> {
    mp.0.iter().flat_map(|p| std::iter::once(p.exterior()).chain(p.interiors()).flat_map(|r| r.0.iter()))
}

/// OGC validity (via `geo::Validation`), described in words a data admin can act on, e.g.
/// "ring self-intersects near (-117.844501, 34.587186)".
pub(crate) fn check_valid(mp: &MultiPolygon<f64>) -> Result<(), String> {
    if mp.0.is_empty() {
        return Err("empty geometry".into());
    }
    let multi = mp.0.len() > 1;
    for (i, polygon) in mp.0.iter().enumerate() {
        // `geo` skips empty rings; an empty ring is still a broken polygon.
        let empty_ring = std::iter::once(polygon.exterior()).chain(polygon.interiors()).position(|r| r.0.is_empty());
        let problem = match empty_ring {
            Some(0) => Some("exterior ring has no points".to_string()),
            Some(h) => Some(format!("hole {h} has no points")),
            None => polygon.check_validation().err().map(|e| describe_invalid_polygon(polygon, &e)),
        };
        if let Some(reason) = problem {
            return Err(if multi { format!("{reason} (part {} of {})", i + 1, mp.0.len()) } else { reason });
        }
    }
    // `MultiPolygon::check_validation` relates every pair of parts; only parts whose
    // bounding boxes meet can overlap or share an edge.
    let rects: Vec<Option<Rect<f64>>> = mp.0.iter().map(BoundingRect::bounding_rect).collect();
    for i in 0..mp.0.len() {
        for j in i + 1..mp.0.len() {
            let (Some(a), Some(b)) = (rects[i], rects[j]) else {
                continue;
            };
            if !rects_meet(&a, &b) {
                continue;
            }
            let im = mp.0[i].relate(&mp.0[j]);
            if im.get(CoordPos::Inside, CoordPos::Inside) == Dimensions::TwoDimensional {
                return Err(format!("parts {} and {} of the multipolygon overlap", i + 1, j + 1));
            }
            if im.get(CoordPos::OnBoundary, CoordPos::OnBoundary) == Dimensions::OneDimensional {
                return Err(format!("parts {} and {} of the multipolygon share an edge", i + 1, j + 1));
            }
        }
    }
    Ok(())
}

fn rects_meet(a: &Rect<f64>, b: &Rect<f64>) -> bool {
    a.min().x <= b.max().x && b.min().x <= a.max().x && a.min().y <= b.max().y && b.min().y <= a.max().y
}

fn describe_invalid_polygon(polygon: &Polygon<f64>, e: &InvalidPolygon) -> String {
    let ring = |role: &RingRole| match role {
        RingRole::Exterior => Some(polygon.exterior()),
        RingRole::Interior(i) => polygon.interiors().get(*i),
    };
    let name = |role: &RingRole| match role {
        RingRole::Exterior => "exterior ring".to_string(),
        RingRole::Interior(i) => format!("hole {}", i + 1),
    };
    match e {
        InvalidPolygon::TooFewPointsInRing(role) => {
            format!("{} has fewer than 3 distinct points", name(role))
        }
        InvalidPolygon::SelfIntersection(role) => match ring(role).and_then(self_intersection) {
            Some(c) => format!("ring self-intersects near ({:.6}, {:.6})", c.x, c.y),
            None => format!("{} self-intersects", name(role)),
        },
        InvalidPolygon::NonFiniteCoord(role, idx) => {
            format!("{} has a coordinate that is not a finite number (point {})", name(role), idx.0 + 1)
        }
        InvalidPolygon::InteriorRingNotContainedInExteriorRing(role) => {
            format!("{} is not inside the exterior ring", name(role))
        }
        InvalidPolygon::IntersectingRingsOnALine(a, b) => {
            format!("{} and {} share an edge", name(a), name(b))
        }
        InvalidPolygon::IntersectingRingsOnAnArea(a, b) => {
            format!("{} and {} overlap", name(a), name(b))
        }
    }
}

/// Where a ring crosses or touches itself, with the same rule as `geo`'s validation
/// (segments that follow one another may share their common vertex).
pub(crate) fn self_intersection(ring: &LineString<f64>) -> Option<Coord<f64>> {
    let lines: Vec<Line<f64>> = ring.lines().collect();
    let rects: Vec<Rect<f64>> = lines.iter().map(|l| l.bounding_rect()).collect();
    for i in 0..lines.len() {
        for j in i + 1..lines.len() {
            if !rects_meet(&rects[i], &rects[j]) {
                continue;
            }
            let (a, b) = (lines[i], lines[j]);
            let chained = a.start == b.end || a.end == b.start;
            match line_intersection(a, b) {
                Some(LineIntersection::SinglePoint { intersection, .. }) if !chained => {
                    return Some(intersection);
                }
                Some(LineIntersection::Collinear { intersection })
                    if !chained || intersection.start != intersection.end =>
                {
                    return Some(intersection.start);
                }
                _ => {}
            }
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use geo::{Area, Winding};

    fn ring(coords: &[(f64, f64)]) -> LineString<f64> {
        LineString::from(coords.to_vec())
    }

    /// A square from (x, y) of side `s`, clockwise (a shapefile exterior).
    fn cw_square(x: f64, y: f64, s: f64) -> LineString<f64> {
        ring(&[(x, y), (x, y + s), (x + s, y + s), (x + s, y), (x, y)])
    }

    /// Counter-clockwise (a shapefile hole).
    fn ccw_square(x: f64, y: f64, s: f64) -> LineString<f64> {
        let mut r = cw_square(x, y, s);
        r.0.reverse();
        r
    }

    /// The shape of a grouping result: per polygon, (exterior area, hole areas).
    type Shape = Vec<(f64, Vec<f64>)>;

    fn shape_of(mp: &MultiPolygon<f64>) -> Shape {
        mp.0.iter()
            .map(|p| {
                let ext = Polygon::new(p.exterior().clone(), vec![]).unsigned_area();
                let holes = p.interiors().iter().map(|h| Polygon::new(h.clone(), vec![]).unsigned_area()).collect();
                (ext, holes)
            })
            .collect()
    }

    #[test]
    fn groups_rings_table() {
        let cases: Vec<(&str, Vec<LineString<f64>>, Shape)> = vec![
            ("one square", vec![cw_square(0.0, 0.0, 10.0)], vec![(100.0, vec![])]),
            ("square with hole", vec![cw_square(0.0, 0.0, 10.0), ccw_square(2.0, 2.0, 2.0)], vec![(100.0, vec![4.0])]),
            (
                "two squares",
                vec![cw_square(0.0, 0.0, 10.0), cw_square(20.0, 0.0, 5.0)],
                vec![(100.0, vec![]), (25.0, vec![])],
            ),
            (
                "two squares with holes, shuffled",
                vec![
                    ccw_square(22.0, 1.0, 1.0), // hole of the second square, before it
                    ccw_square(2.0, 2.0, 2.0),  // hole of the first square, before it
                    cw_square(20.0, 0.0, 5.0),
                    ccw_square(6.0, 6.0, 3.0), // second hole of the first square
                    cw_square(0.0, 0.0, 10.0),
                ],
                vec![(25.0, vec![1.0]), (100.0, vec![4.0, 9.0])],
            ),
            (
                "reversed winding",
                vec![ccw_square(0.0, 0.0, 10.0), cw_square(2.0, 2.0, 2.0), ccw_square(20.0, 0.0, 5.0)],
                vec![(100.0, vec![4.0]), (25.0, vec![])],
            ),
            (
                "orphan hole becomes an exterior",
                vec![cw_square(0.0, 0.0, 10.0), ccw_square(30.0, 30.0, 2.0)],
                vec![(100.0, vec![]), (4.0, vec![])],
            ),
            (
                "island in a lake",
                vec![cw_square(0.0, 0.0, 10.0), ccw_square(2.0, 2.0, 6.0), cw_square(4.0, 4.0, 2.0)],
                vec![(100.0, vec![36.0]), (4.0, vec![])],
            ),
            (
                "hole touching the exterior at a vertex",
                vec![cw_square(0.0, 0.0, 10.0), ring(&[(0.0, 0.0), (4.0, 2.0), (2.0, 4.0), (0.0, 0.0)])],
                vec![(100.0, vec![6.0])],
            ),
            (
                "degenerate rings dropped",
                vec![
                    cw_square(0.0, 0.0, 10.0),
                    ring(&[(1.0, 1.0), (2.0, 2.0), (1.0, 1.0)]),
                    ring(&[(1.0, 1.0), (2.0, 2.0), (3.0, 3.0), (1.0, 1.0)]),
                ],
                vec![(100.0, vec![])],
            ),
        ];
        for (name, rings, expected) in cases {
            let mp = group_rings(rings).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(shape_of(&mp), expected, "{name}");
            let oriented = orient_rfc7946(&mp);
            for p in &oriented.0 {
                assert!(p.exterior().is_ccw(), "{name}: exterior must be counter-clockwise");
                assert!(p.exterior().is_closed(), "{name}");
                for h in p.interiors() {
                    assert!(h.is_cw(), "{name}: holes must be clockwise");
                }
            }
            assert!(check_valid(&oriented).is_ok(), "{name}: {:?}", check_valid(&oriented));
        }
    }

    #[test]
    fn closes_open_rings() {
        let mp = group_rings(vec![ring(&[(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0)])]).unwrap();
        assert!(mp.0[0].exterior().is_closed());
        assert_eq!(mp.0[0].exterior().0.len(), 5);
    }

    #[test]
    fn only_degenerate_rings_is_an_error() {
        let err = group_rings(vec![ring(&[(1.0, 1.0), (2.0, 2.0), (3.0, 3.0), (1.0, 1.0)])]).unwrap_err();
        assert!(err.contains("empty geometry"), "{err}");
        assert_eq!(group_rings(vec![]).unwrap_err(), "empty geometry");
    }

    #[test]
    fn bowtie_is_reported_with_its_crossing() {
        // Zero signed area, but not degenerate: kept, and validation says where it crosses.
        let mp = group_rings(vec![ring(&[(0.0, 0.0), (2.0, 2.0), (2.0, 0.0), (0.0, 2.0), (0.0, 0.0)])]).unwrap();
        assert_eq!(check_valid(&mp).unwrap_err(), "ring self-intersects near (1.000000, 1.000000)");
        let unbalanced =
            group_rings(vec![ring(&[(0.0, 0.0), (4.0, 4.0), (4.0, 0.0), (0.0, 2.0), (0.0, 0.0)])]).unwrap();
        let c = self_intersection(unbalanced.0[0].exterior()).unwrap();
        assert!((c.x - 4.0 / 3.0).abs() < 1e-9 && (c.y - 4.0 / 3.0).abs() < 1e-9, "{c:?}");
    }

    #[test]
    fn validation_reasons() {
        let overlapping = MultiPolygon::new(vec![
            Polygon::new(cw_square(0.0, 0.0, 10.0), vec![]),
            Polygon::new(cw_square(5.0, 5.0, 10.0), vec![]),
        ]);
        assert_eq!(check_valid(&overlapping).unwrap_err(), "parts 1 and 2 of the multipolygon overlap");
        let sharing = MultiPolygon::new(vec![
            Polygon::new(cw_square(0.0, 0.0, 10.0), vec![]),
            Polygon::new(cw_square(10.0, 0.0, 10.0), vec![]),
        ]);
        assert_eq!(check_valid(&sharing).unwrap_err(), "parts 1 and 2 of the multipolygon share an edge");
        let touching = MultiPolygon::new(vec![
            Polygon::new(cw_square(0.0, 0.0, 10.0), vec![]),
            Polygon::new(cw_square(10.0, 10.0, 10.0), vec![]),
        ]);
        assert!(check_valid(&touching).is_ok());
        let hole_outside =
            MultiPolygon::new(vec![Polygon::new(cw_square(0.0, 0.0, 10.0), vec![cw_square(20.0, 20.0, 1.0)])]);
        assert_eq!(check_valid(&hole_outside).unwrap_err(), "hole 1 is not inside the exterior ring");
        assert_eq!(check_valid(&MultiPolygon::new(vec![])).unwrap_err(), "empty geometry");
    }

    #[test]
    fn finite_and_range_checks() {
        let mut mp = MultiPolygon::new(vec![Polygon::new(cw_square(0.0, 0.0, 10.0), vec![])]);
        assert_eq!(first_non_finite(&mp), None);
        assert_eq!(first_outside_lonlat(&mp), None);
        let projected = MultiPolygon::new(vec![Polygon::new(cw_square(6_480_000.0, 1_840_000.0, 10.0), vec![])]);
        assert_eq!(first_outside_lonlat(&projected), Some(Coord { x: 6_480_000.0, y: 1_840_000.0 }));
        mp.0[0].exterior_mut(|r| r.0[2].y = f64::NAN);
        let (n, c) = first_non_finite(&mp).unwrap();
        assert_eq!(n, 3);
        assert!(c.y.is_nan());
    }

    #[test]
    fn signed_area_sign() {
        assert_eq!(signed_area(&ccw_square(0.0, 0.0, 2.0).0), 4.0);
        assert_eq!(signed_area(&cw_square(0.0, 0.0, 2.0).0), -4.0);
    }
}
