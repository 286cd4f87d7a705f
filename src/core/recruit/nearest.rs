//! The K nearest active ambassadors to a point, with distances in metres along the WGS84
//! ellipsoid.
//!
//! Ambassadors are indexed in an R-tree of Earth-centred, Earth-fixed (ECEF) coordinates on the
//! ellipsoid, where the nearest-neighbour order is by *chord* length (the straight line through
//! the Earth). A chord is never longer than the geodesic between the same two surface points, so
//! the search walks candidates in chord order, measures each one's geodesic distance
//! (`geo::Geodesic`, Karney's algorithm via geographiclib-rs) and stops as soon as the next
//! chord is longer than the K-th best geodesic distance found: nothing further away can beat it.
//! The result is exact — it cannot miss one of the true K nearest — anywhere on Earth, with no
//! projection to choose, and it usually measures only K geodesics per query.
//!
//! [`AmbassadorIndex::nearest_many`] answers queries in a row (block after block, which are
//! mostly neighbours) and starts each from the previous answer: the previous K ambassadors bound
//! the chord radius that must hold the new K nearest, and a fixed-radius R-tree query (no heap)
//! collects the few points inside it. The same stopping rule is then checked against that
//! radius, so the warm start is exact too; when it cannot be (a long jump), it falls back to
//! the best-first search.

use geo::{Distance, Geodesic, Point};
use rstar::RTree;
use rstar::primitives::GeomWithData;

/// WGS84 semi-major axis, metres.
const A: f64 = 6_378_137.0;
/// WGS84 flattening.
const F: f64 = 1.0 / 298.257_223_563;
/// Chords and geodesics are computed in f64 on ~6.4e6 m magnitudes: a micrometre of slack keeps
/// rounding from stopping the search one candidate early.
const SLACK_M: f64 = 1e-6;

/// One neighbour found by [`AmbassadorIndex::nearest`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// Position of the ambassador in the slice given to [`AmbassadorIndex::new`].
    pub index: u32,
    /// Geodesic distance on the WGS84 ellipsoid, metres.
    pub distance_m: f64,
}

/// The answers of [`AmbassadorIndex::nearest_many`], stored flat: up to `k` neighbours per
/// query, nearest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NeighbourTable {
    k: usize,
    lens: Vec<u32>,
    items: Vec<Neighbour>,
}

impl NeighbourTable {
    /// The neighbours of query `i` (empty past the end).
    pub fn get(&self, i: usize) -> &[Neighbour] {
        match self.lens.get(i) {
            Some(&n) => &self.items[i * self.k..i * self.k + n as usize],
            None => &[],
        }
    }

    /// Number of queries.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// True when there were no queries.
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// The tables of consecutive runs of queries (same `k`), as one.
    pub fn concat(parts: impl IntoIterator<Item = NeighbourTable>) -> NeighbourTable {
        let mut all = NeighbourTable::default();
        for p in parts {
            all.k = p.k;
            all.lens.extend(p.lens);
            all.items.extend(p.items);
        }
        all
    }
}

/// Earth-centred coordinates (metres) of a WGS84 lon/lat (degrees) on the ellipsoid's surface.
pub fn ecef(lon: f64, lat: f64) -> [f64; 3] {
    let e2 = F * (2.0 - F);
    let (sin_lat, cos_lat) = lat.to_radians().sin_cos();
    let (sin_lon, cos_lon) = lon.to_radians().sin_cos();
    let n = A / (1.0 - e2 * sin_lat * sin_lat).sqrt();
    [n * cos_lat * cos_lon, n * cos_lat * sin_lon, n * (1.0 - e2) * sin_lat]
}

/// Points (ambassador homes, WGS84 lon/lat) ready for nearest-neighbour queries.
pub struct AmbassadorIndex {
    tree: RTree<GeomWithData<[f64; 3], u32>>,
    points: Vec<Point<f64>>,
    /// ECEF of each point, by input position.
    ecef: Vec<[f64; 3]>,
}

/// Interleave the bits of two 16-bit cell numbers (a Morton / Z-order key).
fn z_order(x: u32, y: u32) -> u64 {
    let spread = |v: u32| {
        let mut v = u64::from(v) & 0xffff;
        v = (v | (v << 8)) & 0x00ff_00ff;
        v = (v | (v << 4)) & 0x0f0f_0f0f;
        v = (v | (v << 2)) & 0x3333_3333;
        (v | (v << 1)) & 0x5555_5555
    };
    spread(x) | (spread(y) << 1)
}

/// Below this chord, distances come from the chord itself (see [`surface_distance`]).
const SHORT_CHORD_M: f64 = 5_000.0;

/// The geodesic distance between two surface points, given also as ECEF. Karney's algorithm
/// (`geo::Geodesic`) costs ~0.8 µs and dominated ranking a county, so for chords under 5 km it is
/// replaced by the arc of that chord on the Gaussian mean radius sqrt(M N) at the first point:
/// the geodesic exceeds its chord by c³κ²/24 (0.13 mm at 5 km), and the normal curvature κ of
/// the ellipsoid differs from 1/sqrt(M N) by under 0.5 %, so the error stays below a micrometre.
/// The ECEF chord itself is exact on the ellipsoid.
fn surface_distance(a: Point<f64>, a_ecef: [f64; 3], b: Point<f64>, b_ecef: [f64; 3]) -> f64 {
    let c = chord(a_ecef, b_ecef);
    if c >= SHORT_CHORD_M {
        return Geodesic.distance(a, b);
    }
    let e2 = F * (2.0 - F);
    let sin_lat = a.y().to_radians().sin();
    let r = A * (1.0 - e2).sqrt() / (1.0 - e2 * sin_lat * sin_lat);
    2.0 * r * (c / (2.0 * r)).asin()
}

fn chord(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// Insert `found` into `best` (ascending by distance, then position), keeping at most `k`.
fn keep_best(best: &mut Vec<Neighbour>, found: Neighbour, k: usize) {
    let at = best.partition_point(|b| (b.distance_m, b.index) < (found.distance_m, found.index));
    if at < k {
        best.insert(at, found);
        best.truncate(k);
    }
}

impl std::fmt::Debug for AmbassadorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AmbassadorIndex({} points)", self.len())
    }
}

impl AmbassadorIndex {
    /// Index `points` (WGS84 lon, lat). Non-finite or out-of-range points are left out.
    pub fn new(points: &[(f64, f64)]) -> AmbassadorIndex {
        let valid = |&(lon, lat): &(f64, f64)| lon.is_finite() && lat.is_finite() && lat.abs() <= 90.0;
        let entries = points
            .iter()
            .enumerate()
            .filter(|(_, p)| valid(p))
            .map(|(i, &(lon, lat))| GeomWithData::new(ecef(lon, lat), i as u32))
            .collect();
        AmbassadorIndex {
            tree: RTree::bulk_load(entries),
            points: points.iter().map(|&(lon, lat)| Point::new(lon, lat)).collect(),
            ecef: points.iter().map(|&(lon, lat)| ecef(lon, lat)).collect(),
        }
    }

    /// Number of indexed points.
    pub fn len(&self) -> usize {
        self.tree.size()
    }

    /// True when no point is indexed.
    pub fn is_empty(&self) -> bool {
        self.tree.size() == 0
    }

    /// The `k` points nearest to WGS84 `(lon, lat)` by geodesic distance, nearest first; equal
    /// distances in input order. Fewer when fewer are indexed; none for a non-finite query.
    pub fn nearest(&self, lon: f64, lat: f64, k: usize) -> Vec<Neighbour> {
        let mut best: Vec<Neighbour> = Vec::with_capacity(k + 1);
        if k == 0 || !lon.is_finite() || !lat.is_finite() {
            return best;
        }
        let here = Point::new(lon, lat);
        let here_ecef = ecef(lon, lat);
        for (entry, chord2) in self.tree.nearest_neighbor_iter_with_distance_2(here_ecef) {
            if best.len() == k && chord2.sqrt() > best[k - 1].distance_m + SLACK_M {
                break;
            }
            let i = entry.data as usize;
            let found = Neighbour {
                index: entry.data,
                distance_m: surface_distance(here, here_ecef, self.points[i], self.ecef[i]),
            };
            keep_best(&mut best, found, k);
        }
        best
    }

    /// [`AmbassadorIndex::nearest`] for many queries (`None`: no point, no neighbours), in
    /// the same order. They are answered in Z-order, so that consecutive ones are mostly near
    /// each other and each search starts from the previous answer.
    pub fn nearest_many(&self, queries: &[Option<(f64, f64)>], k: usize) -> NeighbourTable {
        let finite = |q: &Option<(f64, f64)>| q.filter(|(x, y)| x.is_finite() && y.is_finite());
        let (mut x0, mut y0, mut x1, mut y1) = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
        for (x, y) in queries.iter().filter_map(finite) {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
        let cell = |v: f64, lo: f64, hi: f64| if hi > lo { ((v - lo) / (hi - lo) * 65535.0) as u32 } else { 0 };
        let mut order: Vec<(u64, u32)> = queries
            .iter()
            .enumerate()
            .filter_map(|(i, q)| finite(q).map(|(x, y)| (z_order(cell(x, x0, x1), cell(y, y0, y1)), i as u32)))
            .collect();
        order.sort_unstable();
        let mut out = NeighbourTable {
            k,
            lens: vec![0; queries.len()],
            items: vec![Neighbour { index: 0, distance_m: 0.0 }; queries.len() * k],
        };
        // The previous query: where, and the chord to its K-th neighbour.
        let mut prev: Option<([f64; 3], f64)> = None;
        let (mut last, mut best): (Vec<Neighbour>, Vec<Neighbour>) = (Vec::new(), Vec::new());
        let mut inside: Vec<(f64, u32)> = Vec::new();
        for (_, i) in order {
            let Some((lon, lat)) = queries[i as usize] else { continue };
            let here = ecef(lon, lat);
            let warm = match prev {
                Some((p, reach)) if k > 0 && last.len() == k && chord(here, p) <= 2.0 * reach => {
                    self.nearest_within(here, Point::new(lon, lat), k, &last, &mut inside, &mut best)
                }
                _ => false,
            };
            if !warm {
                best = self.nearest(lon, lat, k);
            }
            prev = best.last().map(|n| (here, chord(here, self.ecef[n.index as usize])));
            let at = i as usize * k;
            out.items[at..at + best.len()].copy_from_slice(&best);
            out.lens[i as usize] = best.len() as u32;
            std::mem::swap(&mut last, &mut best);
        }
        out
    }

    /// The warm start: every point within a chord radius that must hold the K nearest, because
    /// the previous answer's K points lie within it. `None` when the stopping rule cannot be
    /// met inside the radius.
    fn nearest_within(
        &self,
        here: [f64; 3],
        point: Point<f64>,
        k: usize,
        previous: &[Neighbour],
        inside: &mut Vec<(f64, u32)>,
        best: &mut Vec<Neighbour>,
    ) -> bool {
        let reach = previous.iter().map(|n| chord(here, self.ecef[n.index as usize])).fold(0.0, f64::max);
        // Margin over the chord: the geodesic of the K-th is longer by ~c³/24R² (micrometres).
        let radius = reach * (1.0 + 1e-6) + 0.01;
        inside.clear();
        inside
            .extend(self.tree.locate_within_distance(here, radius * radius).map(|e| (chord(here, *e.geom()), e.data)));
        inside.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        best.clear();
        for &(c, index) in inside.iter() {
            if best.len() == k && c > best[k - 1].distance_m + SLACK_M {
                break;
            }
            let i = index as usize;
            let found = Neighbour { index, distance_m: surface_distance(point, here, self.points[i], self.ecef[i]) };
            keep_best(best, found, k);
        }
        // Anything outside has chord > radius, so it cannot beat the K-th unless that is longer.
        best.len() == k && best[k - 1].distance_m + SLACK_M <= radius
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chord_is_never_longer_than_the_geodesic() {
        let pairs = [
            ((-118.2856, 34.0409), (-118.2855, 34.0409)),
            ((-118.2856, 34.0409), (-118.0, 34.5)),
            ((0.0, 0.0), (179.5, 0.5)),
            ((10.0, 89.9), (-170.0, 89.9)),
        ];
        for ((x0, y0), (x1, y1)) in pairs {
            let (a, b) = (ecef(x0, y0), ecef(x1, y1));
            let chord = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt();
            let geodesic = Geodesic.distance(Point::new(x0, y0), Point::new(x1, y1));
            assert!(chord <= geodesic + 1e-9, "{chord} > {geodesic}");
        }
    }

    /// Brute force over every point agrees with the index, for many queries and k.
    #[test]
    fn agrees_with_brute_force() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let points: Vec<(f64, f64)> =
            (0..400).map(|_| (rng.random_range(-118.4..-118.2), rng.random_range(33.95..34.1))).collect();
        let index = AmbassadorIndex::new(&points);
        for _ in 0..200 {
            let (lon, lat) = (rng.random_range(-118.45..-118.15), rng.random_range(33.9..34.15));
            let mut all: Vec<Neighbour> = points
                .iter()
                .enumerate()
                .map(|(i, &(x, y))| Neighbour {
                    index: i as u32,
                    distance_m: Geodesic.distance(Point::new(lon, lat), Point::new(x, y)),
                })
                .collect();
            all.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m).then(a.index.cmp(&b.index)));
            for k in [1, 3, 7] {
                let got = index.nearest(lon, lat, k);
                let ids = |v: &[Neighbour]| v.iter().map(|n| n.index).collect::<Vec<_>>();
                assert_eq!(ids(&got), ids(&all[..k]));
                for (g, w) in got.iter().zip(&all) {
                    assert!((g.distance_m - w.distance_m).abs() < 1e-6, "{g:?} vs {w:?}");
                }
            }
        }
    }

    /// The short-chord shortcut agrees with Karney's geodesic to a micrometre, at any latitude
    /// and bearing, up to the 5 km where it hands over.
    #[test]
    fn short_chords_give_the_geodesic_to_a_micrometre() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for _ in 0..20_000 {
            let (lon, lat) = (rng.random_range(-180.0..180.0), rng.random_range(-85.0..85.0));
            let d = rng.random_range(0.0..0.045);
            let (x, y) = (lon + rng.random_range(-d..d), lat + rng.random_range(-d..d));
            let (a, b) = (Point::new(lon, lat), Point::new(x, y));
            let fast = surface_distance(a, ecef(lon, lat), b, ecef(x, y));
            let exact = Geodesic.distance(a, b);
            assert!((fast - exact).abs() < 1e-6, "({lon}, {lat}) to ({x}, {y}): {fast} vs {exact}");
        }
    }

    /// Warm-started runs agree with independent searches, in spatial order and shuffled.
    #[test]
    fn many_queries_agree_with_one_at_a_time() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let points: Vec<(f64, f64)> =
            (0..2000).map(|_| (rng.random_range(-118.4..-118.2), rng.random_range(33.95..34.1))).collect();
        let index = AmbassadorIndex::new(&points);
        let mut queries: Vec<Option<(f64, f64)>> = (0..60)
            .flat_map(|row| {
                (0..60).map(move |col| Some((-118.4 + 0.2 * col as f64 / 60.0, 33.95 + 0.15 * row as f64 / 60.0)))
            })
            .collect();
        queries.insert(100, None);
        queries.push(Some((-117.0, 35.0)));
        for k in [1, 3, 5] {
            let many = index.nearest_many(&queries, k);
            assert_eq!(many.len(), queries.len());
            for (i, q) in queries.iter().enumerate() {
                let want = q.map_or(Vec::new(), |(x, y)| index.nearest(x, y, k));
                assert_eq!(many.get(i), &want[..], "{q:?}");
            }
        }
    }

    #[test]
    fn ties_fewer_points_and_bad_input() {
        // Two ambassadors at the same place: input order decides.
        let index = AmbassadorIndex::new(&[(-118.0, 34.0), (-118.0, 34.0), (f64::NAN, 34.0)]);
        assert_eq!(index.len(), 2);
        let n = index.nearest(-118.001, 34.0, 5);
        assert_eq!(n.iter().map(|n| n.index).collect::<Vec<_>>(), [0, 1]);
        assert!(index.nearest(f64::NAN, 34.0, 3).is_empty());
        assert!(index.nearest(-118.0, 34.0, 0).is_empty());
        assert!(AmbassadorIndex::new(&[]).nearest(0.0, 0.0, 3).is_empty());
    }
}
