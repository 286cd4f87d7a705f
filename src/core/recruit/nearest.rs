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
//!
//! Points live in stable *slots* so that the index can change (an ambassador added, moved,
//! removed) without renumbering the others: lists of neighbours found earlier stay valid for
//! every point that did not change (see [`super::lists`]). Equal distances are ordered by each
//! point's *key* (the ambassador's id), then slot, so the order does not depend on the slots a
//! history of changes happened to hand out.

use std::sync::Arc;

use geo::{Distance, Geodesic, Point};
use rstar::RTree;
use rstar::primitives::GeomWithData;

/// WGS84 semi-major axis, metres.
const A: f64 = 6_378_137.0;
/// WGS84 flattening.
const F: f64 = 1.0 / 298.257_223_563;
/// Chords and geodesics are computed in f64 on ~6.4e6 m magnitudes: a micrometre of slack keeps
/// rounding from stopping the search one candidate early.
pub(super) const SLACK_M: f64 = 1e-6;

/// One neighbour found by [`AmbassadorIndex::nearest`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// Slot of the ambassador in the index (for [`AmbassadorIndex::new`], its position in the
    /// slice given).
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

    /// Replace the neighbours of query `i` (at most `k` of them are kept; nothing past the end).
    pub fn set(&mut self, i: usize, list: &[Neighbour]) {
        let n = list.len().min(self.k);
        if let Some(len) = self.lens.get_mut(i) {
            *len = n as u32;
            self.items[i * self.k..i * self.k + n].copy_from_slice(&list[..n]);
        }
    }

    /// Most neighbours kept per query.
    pub fn k(&self) -> usize {
        self.k
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

    /// Queries `range` of this table, as a table of their own.
    pub(super) fn slice(&self, range: std::ops::Range<usize>) -> NeighbourTable {
        NeighbourTable {
            k: self.k,
            lens: self.lens[range.clone()].to_vec(),
            items: self.items[range.start * self.k..range.end * self.k].to_vec(),
        }
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

/// One point of the index.
#[derive(Debug, Clone)]
struct Slot {
    /// Orders equal distances.
    key: Arc<str>,
    point: Point<f64>,
    ecef: [f64; 3],
    /// In the R-tree: false for a non-finite or out-of-range location, which is never found.
    indexed: bool,
}

/// Points (ambassador homes, WGS84 lon/lat) ready for nearest-neighbour queries. Cloning copies
/// the tree (a few ms for 44,000 points): share it behind an `Arc` and clone only to change it.
#[derive(Clone)]
pub struct AmbassadorIndex {
    tree: RTree<GeomWithData<[f64; 3], u32>>,
    /// By slot; `None`: free.
    slots: Vec<Option<Slot>>,
    /// Free slots, reused last freed first.
    free: Vec<u32>,
}

/// What changed in an [`AmbassadorIndex`] between two versions, for
/// [`super::NearestLists::updated`]: filled by [`AmbassadorIndex::insert`] and
/// [`AmbassadorIndex::remove`].
#[derive(Debug, Clone, Default)]
pub struct Moves {
    /// Slots whose indexed point was removed, with its ECEF.
    pub(super) removed: Vec<(u32, [f64; 3])>,
    /// Slots given an indexed point.
    pub(super) inserted: Vec<u32>,
}

impl Moves {
    /// Number of points removed and inserted.
    pub fn len(&self) -> usize {
        self.removed.len() + self.inserted.len()
    }

    /// True when no indexed point changed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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

pub(super) fn chord(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// A location the index can hold: finite, latitude within ±90°.
fn valid(lon: f64, lat: f64) -> bool {
    lon.is_finite() && lat.is_finite() && lat.abs() <= 90.0
}

impl std::fmt::Debug for AmbassadorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AmbassadorIndex({} points)", self.len())
    }
}

impl AmbassadorIndex {
    /// Index `points` (WGS84 lon, lat); point `i` gets slot `i` and equal distances go by slot.
    /// Non-finite or out-of-range points are left out.
    pub fn new(points: &[(f64, f64)]) -> AmbassadorIndex {
        let key: Arc<str> = Arc::from("");
        AmbassadorIndex::with_keys(points.iter().map(|&(lon, lat)| (key.clone(), lon, lat)))
    }

    /// Index `(key, lon, lat)` points (WGS84); point `i` gets slot `i`, and equal distances go
    /// by key (e.g. the ambassador's id), then slot. Non-finite or out-of-range points get a
    /// slot but are never found.
    pub fn with_keys(points: impl IntoIterator<Item = (Arc<str>, f64, f64)>) -> AmbassadorIndex {
        let slots: Vec<Option<Slot>> = points
            .into_iter()
            .map(|(key, lon, lat)| {
                Some(Slot { key, point: Point::new(lon, lat), ecef: ecef(lon, lat), indexed: valid(lon, lat) })
            })
            .collect();
        let entries = slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().filter(|s| s.indexed).map(|s| GeomWithData::new(s.ecef, i as u32)))
            .collect();
        AmbassadorIndex { tree: RTree::bulk_load(entries), slots, free: Vec::new() }
    }

    /// Add a point; returns its slot (a free one if any). `moves` records it when it is indexed.
    pub fn insert(&mut self, key: Arc<str>, lon: f64, lat: f64, moves: &mut Moves) -> u32 {
        let slot = Slot { key, point: Point::new(lon, lat), ecef: ecef(lon, lat), indexed: valid(lon, lat) };
        let at = match self.free.pop() {
            Some(at) => at,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        if slot.indexed {
            self.tree.insert(GeomWithData::new(slot.ecef, at));
            moves.inserted.push(at);
        }
        self.slots[at as usize] = Some(slot);
        at
    }

    /// Remove the point in `slot` and free the slot; false when it was free already. `moves`
    /// records it when it was indexed.
    pub fn remove(&mut self, slot: u32, moves: &mut Moves) -> bool {
        let Some(old) = self.slots.get_mut(slot as usize).and_then(Option::take) else { return false };
        if old.indexed {
            self.tree.remove(&GeomWithData::new(old.ecef, slot));
            moves.removed.push((slot, old.ecef));
        }
        self.free.push(slot);
        true
    }

    /// The slot holding `key` at WGS84 `(lon, lat)`: found through the tree when the point is
    /// there, else by a scan of every slot (a point that is not indexed, or not where given).
    pub fn find(&self, key: &str, lon: f64, lat: f64) -> Option<u32> {
        let here = |slot: u32| self.slots[slot as usize].as_ref().is_some_and(|s| &*s.key == key);
        if valid(lon, lat)
            && let Some(e) = self.tree.locate_all_at_point(ecef(lon, lat)).find(|e| here(e.data))
        {
            return Some(e.data);
        }
        (0..self.slots.len() as u32).find(|&slot| here(slot))
    }

    /// The key of the point in `slot`.
    pub fn key(&self, slot: u32) -> Option<&Arc<str>> {
        self.slots.get(slot as usize)?.as_ref().map(|s| &s.key)
    }

    /// Number of slots, free or not (one past the highest).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Number of indexed points.
    pub fn len(&self) -> usize {
        self.tree.size()
    }

    /// True when no point is indexed.
    pub fn is_empty(&self) -> bool {
        self.tree.size() == 0
    }

    /// The indexed point in `slot`: its location and ECEF.
    pub(super) fn indexed(&self, slot: u32) -> Option<(Point<f64>, [f64; 3])> {
        self.slots.get(slot as usize)?.as_ref().filter(|s| s.indexed).map(|s| (s.point, s.ecef))
    }

    /// `found` measured from `here` (and its ECEF) to the point in `slot`.
    pub(super) fn measure(&self, here: Point<f64>, here_ecef: [f64; 3], slot: u32) -> Option<Neighbour> {
        let (point, point_ecef) = self.indexed(slot)?;
        Some(Neighbour { index: slot, distance_m: surface_distance(here, here_ecef, point, point_ecef) })
    }

    /// The ECEF of the indexed point in `slot` (NaN for none, which no chord test passes).
    fn ecef_of(&self, slot: u32) -> [f64; 3] {
        self.indexed(slot).map_or([f64::NAN; 3], |(_, e)| e)
    }

    /// Whether `a` comes before `b`: nearer, or as near with a smaller key, then slot.
    fn before(&self, a: &Neighbour, b: &Neighbour) -> bool {
        if a.distance_m != b.distance_m {
            return a.distance_m < b.distance_m;
        }
        let key = |n: &Neighbour| self.slots[n.index as usize].as_ref().map(|s| &*s.key);
        (key(a), a.index) < (key(b), b.index)
    }

    /// Insert `found` into `best` (in [`AmbassadorIndex::before`] order), keeping at most `k`.
    pub(super) fn keep_best(&self, best: &mut Vec<Neighbour>, found: Neighbour, k: usize) {
        let at = best.partition_point(|b| self.before(b, &found));
        if at < k {
            best.insert(at, found);
            best.truncate(k);
        }
    }

    /// The `k` points nearest to WGS84 `(lon, lat)` by geodesic distance, nearest first; equal
    /// distances by key, then slot. Fewer when fewer are indexed; none for a non-finite query.
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
            if let Some(found) = self.measure(here, here_ecef, entry.data) {
                self.keep_best(&mut best, found, k);
            }
        }
        best
    }

    /// Every indexed point within `radius_m` (geodesic) of WGS84 `(lon, lat)`, nearest first
    /// (equal distances by key, then slot). A chord is never longer than its geodesic, so the
    /// chord-radius query cannot miss one; each candidate is then measured.
    pub fn within(&self, lon: f64, lat: f64, radius_m: f64) -> Vec<Neighbour> {
        let mut out = Vec::new();
        if !(lon.is_finite() && lat.is_finite() && radius_m >= 0.0) {
            return out;
        }
        let here = Point::new(lon, lat);
        let here_ecef = ecef(lon, lat);
        let r = radius_m + SLACK_M;
        for e in self.tree.locate_within_distance(here_ecef, r * r) {
            if let Some(found) = self.measure(here, here_ecef, e.data)
                && found.distance_m <= radius_m
            {
                out.push(found);
            }
        }
        out.sort_by(|a, b| match (a.index == b.index, self.before(a, b)) {
            (true, _) => std::cmp::Ordering::Equal,
            (false, true) => std::cmp::Ordering::Less,
            (false, false) => std::cmp::Ordering::Greater,
        });
        out
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
            prev = best.last().map(|n| (here, chord(here, self.ecef_of(n.index))));
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
        let reach = previous.iter().map(|n| chord(here, self.ecef_of(n.index))).fold(0.0, f64::max);
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
            if let Some(found) = self.measure(point, here, index) {
                self.keep_best(best, found, k);
            }
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

    #[test]
    fn slots_survive_inserts_and_removals() {
        let mut index = AmbassadorIndex::with_keys([
            (Arc::from("b"), -118.0, 34.0),
            (Arc::from("a"), -118.0, 34.0),
            (Arc::from("c"), f64::NAN, 34.0),
        ]);
        let slots =
            |index: &AmbassadorIndex| index.nearest(-118.001, 34.0, 5).iter().map(|n| n.index).collect::<Vec<_>>();
        assert_eq!(slots(&index), [1, 0], "equal distances go by key");
        assert_eq!(index.find("a", -118.0, 34.0), Some(1));
        assert_eq!(index.find("c", f64::NAN, 34.0), Some(2), "not indexed: found by a scan");
        assert_eq!(index.find("a", -117.0, 34.0), Some(1), "not where given: found by a scan");
        assert_eq!(index.find("z", -118.0, 34.0), None);
        let mut moves = Moves::default();
        assert!(index.remove(1, &mut moves));
        assert!(!index.remove(1, &mut moves), "already free");
        assert!(index.remove(2, &mut moves));
        assert_eq!(moves.len(), 1, "a point that was not indexed moves nothing");
        let slot = index.insert(Arc::from("d"), -118.0005, 34.0, &mut moves);
        assert_eq!(slot, 2, "the last freed slot is reused");
        assert_eq!(slots(&index), [2, 0]);
        assert_eq!((index.len(), index.slots(), moves.len()), (2, 3, 2));
        assert_eq!(index.key(0).map(|k| &**k), Some("b"));
        assert!(index.key(1).is_none());
    }
}
