//! The K nearest ambassadors of every block, kept up to date as ambassadors come, go and move.
//!
//! A change of one ambassador can only change the lists of blocks near it: a list that does not
//! hold the ambassador's old location loses nothing, and a new location enters a list only if it
//! is nearer than the list's K-th. Both are decided by the chord to the changed location, which
//! is never longer than the geodesic, against the K-th distance (the list's *reach*): one cheap
//! pass over the blocks finds the few lists to look at. The lists that lost a point are searched
//! again; the others take the new points in. Either way the result is the list a search from
//! scratch gives, to the bit: distances come from the same function and ties go by key.
//!
//! Lists may be kept for some points only (the blocks a ranking shows); the others are *unknown*
//! until [`NearestLists::fill`] searches them, and changes pass them by.
//!
//! The lists are stored in chunks behind `Arc`s, so that a new version shares every chunk no
//! change touched with the old one, which readers may still hold.

use std::sync::Arc;

use geo::Point;

use super::nearest::{AmbassadorIndex, Moves, Neighbour, NeighbourTable, SLACK_M, chord, ecef};

/// Blocks per chunk of lists: copying one to change it costs microseconds.
const CHUNK: usize = 256;

/// Points nearest ambassadors are asked for (block interior points, WGS84 lon/lat), with their
/// ECEF for the change pass; built once per catchment.
#[derive(Debug, Clone, Default)]
pub struct QueryPoints {
    lonlat: Vec<Option<(f64, f64)>>,
    /// NaN for no point: no chord test passes.
    ecef: Vec<[f64; 3]>,
}

impl QueryPoints {
    /// The points, in the order lists are kept; `None` (or non-finite): no point, no neighbours.
    pub fn new(points: Vec<Option<(f64, f64)>>) -> QueryPoints {
        let lonlat: Vec<_> = points.into_iter().map(|p| p.filter(|(x, y)| x.is_finite() && y.is_finite())).collect();
        let ecef = lonlat.iter().map(|p| p.map_or([f64::NAN; 3], |(x, y)| ecef(x, y))).collect();
        QueryPoints { lonlat, ecef }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.lonlat.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.lonlat.is_empty()
    }
}

/// One chunk of lists.
#[derive(Debug, Clone)]
struct Chunk {
    table: NeighbourTable,
    /// Per list: the K-th distance plus slack, or infinity while the list is shorter than K
    /// (any new point enters it). A chord longer than this cannot change the list. NaN for an
    /// unknown list, which no chord test passes.
    reach: Vec<f64>,
}

fn reach(list: &[Neighbour], k: usize) -> f64 {
    match list.get(k.wrapping_sub(1)) {
        Some(n) if list.len() == k => n.distance_m + SLACK_M,
        _ => f64::INFINITY,
    }
}

impl Chunk {
    /// The chunk of `table`, whose lists starting at point `start` are known where `known` says.
    fn new(table: NeighbourTable, start: usize, known: &impl Fn(usize) -> bool) -> Chunk {
        let reach = (0..table.len())
            .map(|j| if known(start + j) { reach(table.get(j), table.k()) } else { f64::NAN })
            .collect();
        Chunk { table, reach }
    }
}

/// The `k` nearest points of an [`AmbassadorIndex`] to each of some [`QueryPoints`], as
/// [`AmbassadorIndex::nearest`] gives them. Cloning shares the lists.
#[derive(Debug, Clone)]
pub struct NearestLists {
    k: usize,
    chunks: Vec<Arc<Chunk>>,
}

impl NearestLists {
    /// Search the `k` nearest of the points `wanted` accepts (by position; the others' lists stay
    /// unknown), split over the available cores (at county scale it is most of a cold ranking's
    /// time).
    pub fn new(
        index: &AmbassadorIndex,
        points: &QueryPoints,
        k: usize,
        wanted: impl Fn(usize) -> bool,
    ) -> NearestLists {
        let queries: Vec<Option<(f64, f64)>> =
            points.lonlat.iter().enumerate().map(|(i, p)| p.filter(|_| wanted(i))).collect();
        let table = NeighbourTable::concat(par_chunks(&queries, |part| vec![index.nearest_many(part, k)]));
        let chunks = (0..points.len())
            .step_by(CHUNK)
            .map(|start| Arc::new(Chunk::new(table.slice(start..(start + CHUNK).min(points.len())), start, &wanted)))
            .collect();
        NearestLists { k, chunks }
    }

    /// Neighbours kept per point.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The neighbours of point `i`, nearest first (empty past the end, or while unknown).
    pub fn get(&self, i: usize) -> &[Neighbour] {
        self.chunks.get(i / CHUNK).map_or(&[], |c| c.table.get(i % CHUNK))
    }

    /// Whether the list of point `i` is known.
    pub fn has(&self, i: usize) -> bool {
        self.chunks.get(i / CHUNK).is_some_and(|c| !c.reach[i % CHUNK].is_nan())
    }

    /// Search the unknown lists of points `which` (a few µs each), from `index` as it is now;
    /// the chunks they are in are copied first if another version shares them.
    pub fn fill(&mut self, index: &AmbassadorIndex, points: &QueryPoints, which: &[usize]) {
        for &i in which {
            if i >= points.len() || self.has(i) {
                continue;
            }
            let list = points.lonlat[i].map_or(Vec::new(), |(lon, lat)| index.nearest(lon, lat, self.k));
            let chunk = Arc::make_mut(&mut self.chunks[i / CHUNK]);
            chunk.table.set(i % CHUNK, &list);
            chunk.reach[i % CHUNK] = reach(&list, self.k);
        }
    }

    /// The lists once `index` (as it is now) went through `moves` since these were found, for
    /// the same `points`; unknown lists stay unknown. Costs one pass of chord tests per moved point over the points, plus a
    /// search for each list that held a removed point (~0.4 ms and a few µs at county scale);
    /// for a large batch of moves, [`NearestLists::new`] is cheaper.
    pub fn updated(&self, index: &AmbassadorIndex, points: &QueryPoints, moves: &Moves) -> NearestLists {
        let mut next = self.clone();
        if moves.is_empty() {
            return next;
        }
        let mut removed: Vec<u32> = moves.removed.iter().map(|r| r.0).collect();
        removed.sort_unstable();
        let mut inserted = moves.inserted.clone();
        inserted.sort_unstable();
        inserted.dedup();
        // What is in those slots now: a slot inserted and then freed again offers nothing.
        let offers: Vec<(u32, [f64; 3])> =
            inserted.into_iter().filter_map(|s| index.indexed(s).map(|(_, e)| (s, e))).collect();
        let near: Vec<[f64; 3]> = moves.removed.iter().map(|r| r.1).chain(offers.iter().map(|o| o.1)).collect();
        let k = self.k;
        let mut list: Vec<Neighbour> = Vec::with_capacity(k + 1);
        for (c, chunk) in self.chunks.iter().enumerate() {
            for (j, &reach_m) in chunk.reach.iter().enumerate() {
                let i = c * CHUNK + j;
                let q = points.ecef[i];
                if !near.iter().any(|&p| chord(q, p) <= reach_m) {
                    continue;
                }
                let Some((lon, lat)) = points.lonlat[i] else { continue };
                let old = chunk.table.get(j);
                if old.iter().any(|n| removed.binary_search(&n.index).is_ok()) {
                    // It lost a point: what replaces it may be anywhere beyond the K-th.
                    list = index.nearest(lon, lat, k);
                } else {
                    // Nothing it holds changed, so the new K nearest are among it and the new points.
                    list.clear();
                    list.extend_from_slice(old);
                    let here = Point::new(lon, lat);
                    for &(slot, p) in &offers {
                        if chord(q, p) <= reach_m
                            && let Some(found) = index.measure(here, q, slot)
                        {
                            index.keep_best(&mut list, found, k);
                        }
                    }
                }
                if list[..] != *old {
                    let chunk = Arc::make_mut(&mut next.chunks[c]);
                    chunk.table.set(j, &list);
                    chunk.reach[j] = reach(&list, k);
                }
            }
        }
        next
    }
}

/// `f` over consecutive chunks of `items`, one per core, results concatenated in order (the
/// machine this runs on has few cores, and a search at county scale is worth splitting).
fn par_chunks<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> Vec<R> + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    if threads < 2 || items.len() < 4096 {
        return f(items);
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = items.chunks(chunk).map(|part| s.spawn(move || f(part))).collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rand::{Rng, SeedableRng};

    use super::*;

    /// After random inserts, removals and moves, updated lists equal lists searched afresh,
    /// for several k, including lists shorter than k and ties between coincident points; lists
    /// unknown at first stay unknown until filled, and are then the same too.
    #[test]
    fn updated_lists_equal_fresh_ones() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let random_point =
            |rng: &mut rand_chacha::ChaCha8Rng| (rng.random_range(-118.32..-118.28), rng.random_range(34.0..34.03));
        let queries: Vec<Option<(f64, f64)>> =
            (0..600).map(|i| if i % 97 == 5 { None } else { Some(random_point(&mut rng)) }).collect();
        let points = QueryPoints::new(queries);
        for k in [1, 3, 8] {
            let start: Vec<(Arc<str>, f64, f64)> = (0..5)
                .map(|i| {
                    let (x, y) = random_point(&mut rng);
                    (Arc::from(format!("a{i:03}")), x, y)
                })
                .collect();
            let mut index = AmbassadorIndex::with_keys(start);
            let mut lists = NearestLists::new(&index, &points, k, |i| i % 3 != 0);
            let mut next_id = 5;
            for step in 0..60 {
                let mut moves = Moves::default();
                for _ in 0..rng.random_range(1..4) {
                    let occupied: Vec<u32> = (0..index.slots() as u32).filter(|&s| index.key(s).is_some()).collect();
                    match rng.random_range(0..4) {
                        0 if !occupied.is_empty() => {
                            let slot = occupied[rng.random_range(0..occupied.len())];
                            index.remove(slot, &mut moves);
                        }
                        1 if !occupied.is_empty() => {
                            // A move: out and back in, maybe onto another point (a tie).
                            let slot = occupied[rng.random_range(0..occupied.len())];
                            let key = index.key(slot).cloned().unwrap();
                            index.remove(slot, &mut moves);
                            let (x, y) = match index.indexed(occupied[0]) {
                                Some((p, _)) if rng.random_bool(0.2) => (p.x(), p.y()),
                                _ => random_point(&mut rng),
                            };
                            index.insert(key, x, y, &mut moves);
                        }
                        _ => {
                            let (x, y) = random_point(&mut rng);
                            index.insert(Arc::from(format!("a{next_id:03}")), x, y, &mut moves);
                            next_id += 1;
                        }
                    }
                }
                lists = lists.updated(&index, &points, &moves);
                let filled: Vec<usize> = (0..4).map(|_| rng.random_range(0..points.len())).collect();
                lists.fill(&index, &points, &filled);
                let fresh = NearestLists::new(&index, &points, k, |_| true);
                for i in 0..points.len() {
                    if lists.has(i) {
                        assert_eq!(lists.get(i), fresh.get(i), "k={k}, step {step}, point {i}");
                    } else {
                        assert!(i % 3 == 0 && lists.get(i).is_empty(), "point {i} is unknown");
                    }
                }
            }
        }
    }

    #[test]
    fn an_update_shares_the_chunks_it_does_not_touch() {
        let at = |i: f64| -118.3 + 1e-4 * i;
        let points = QueryPoints::new((0..2000).map(|i| Some((at(i as f64), 34.0))).collect());
        // Ambassadors at points 50, 150, ... 1950; a new one at 900 is the nearest of 876..924.
        let mut index = AmbassadorIndex::with_keys(
            (0..20).map(|i| (Arc::from(format!("a{i:02}")), at(50.0 + 100.0 * i as f64), 34.0)),
        );
        let lists = NearestLists::new(&index, &points, 1, |_| true);
        let mut moves = Moves::default();
        let slot = index.insert(Arc::from("new"), at(900.0), 34.0, &mut moves);
        let next = lists.updated(&index, &points, &moves);
        let shared = lists.chunks.iter().zip(&next.chunks).filter(|(a, b)| Arc::ptr_eq(a, b)).count();
        assert_eq!(shared, lists.chunks.len() - 1, "only the chunk of points 768..1023 is copied");
        assert_eq!(next.get(900)[0].index, slot);
        assert_eq!(lists.get(900)[0].index, 8, "the old lists are unchanged");
    }
}
