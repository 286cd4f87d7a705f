//! Access to resources: the nearest resources to a point ([`Finder`]), and for every block and
//! every resource category the distance to the nearest one, how many lie within a walking
//! radius, and a two-step floating catchment area score ([`AccessTable`]).
//!
//! Distances are geodesic metres on the WGS84 ellipsoid, measured from a block's interior point,
//! with the exact nearest-neighbour search of [`super::recruit::nearest`].
//!
//! # Two-step floating catchment area (2SFCA, Luo & Wang 2003)
//! With `d0` the catchment radius, `S_j` the supply of resource `j` (its `capacity`, 1 when it
//! has none) and `D_k` the demand of block `k` (its residents, or a population attribute):
//! 1. for every resource `j`: `R_j = S_j / Σ D_k` over the blocks `k` with `d(k, j) ≤ d0`
//!    (`R_j = 0` when no demand lies within `d0`: nobody to serve);
//! 2. for every block `i`: `A_i = 1000 · Σ R_j` over the resources `j` with `d(i, j) ≤ d0`.
//!
//! `A_i` is supply per 1,000 people of demand reachable from block `i`. The pairs within `d0`
//! depend only on blocks and resources; the scores are recomputed from them whenever demand
//! changes, in time proportional to the pairs (no distance is measured again).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::recruit::nearest::{AmbassadorIndex, Neighbour};

/// Default walking radius, metres (about ten minutes on foot).
pub const WALK_M: f64 = 800.0;
/// Default 2SFCA catchment radius, metres.
pub const CATCHMENT_M: f64 = 1_600.0;
/// Largest radius accepted for either.
pub const MAX_RADIUS_M: f64 = 50_000.0;

/// One resource as the finder and the analysis see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// Resource id.
    pub id: Arc<str>,
    /// Category.
    pub category: String,
    /// WGS84 longitude.
    pub lon: f64,
    /// WGS84 latitude.
    pub lat: f64,
    /// Supply for 2SFCA: the capacity, or 1.
    pub supply: f64,
}

/// Nearest resources to a point, overall or per category.
#[derive(Debug)]
pub struct Finder {
    sites: Vec<Site>,
    all: AmbassadorIndex,
    /// Category → (index over its sites, slot → site position).
    categories: BTreeMap<String, (AmbassadorIndex, Vec<u32>)>,
}

/// One resource found: its position in [`Finder::sites`] and how far it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Found {
    /// Position in [`Finder::sites`].
    pub site: usize,
    /// Geodesic metres.
    pub distance_m: f64,
}

impl Finder {
    /// Index `sites` (any order; equal distances are ordered by id).
    pub fn new(sites: Vec<Site>) -> Finder {
        let all = AmbassadorIndex::with_keys(sites.iter().map(|s| (s.id.clone(), s.lon, s.lat)));
        let mut members: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for (i, s) in sites.iter().enumerate() {
            members.entry(s.category.clone()).or_default().push(i as u32);
        }
        let categories = members
            .into_iter()
            .map(|(c, list)| {
                let index = AmbassadorIndex::with_keys(list.iter().map(|&i| {
                    let s = &sites[i as usize];
                    (s.id.clone(), s.lon, s.lat)
                }));
                (c, (index, list))
            })
            .collect();
        Finder { sites, all, categories }
    }

    /// Every resource, in the order given.
    pub fn sites(&self) -> &[Site] {
        &self.sites
    }

    /// The categories with how many resources each has, by name.
    pub fn categories(&self) -> Vec<(&str, usize)> {
        self.categories.iter().map(|(c, (_, list))| (c.as_str(), list.len())).collect()
    }

    /// Whether some resource has this category.
    pub fn has_category(&self, category: &str) -> bool {
        self.categories.contains_key(category)
    }

    /// The `limit` resources nearest to `(lon, lat)`, nearest first (ties by id), of the given
    /// categories (all when empty; unknown ones contribute nothing), within `within_m` when
    /// given.
    pub fn nearest(&self, lon: f64, lat: f64, categories: &[&str], limit: usize, within_m: Option<f64>) -> Vec<Found> {
        let mut found: Vec<Found> = if categories.is_empty() {
            self.all
                .nearest(lon, lat, limit)
                .iter()
                .map(|n| Found { site: n.index as usize, distance_m: n.distance_m })
                .collect()
        } else {
            let mut all = Vec::new();
            let mut seen = std::collections::BTreeSet::new();
            for c in categories {
                if !seen.insert(*c) {
                    continue;
                }
                if let Some((index, list)) = self.categories.get(*c) {
                    all.extend(
                        index
                            .nearest(lon, lat, limit)
                            .iter()
                            .map(|n| Found { site: list[n.index as usize] as usize, distance_m: n.distance_m }),
                    );
                }
            }
            all.sort_by(|a, b| {
                a.distance_m.total_cmp(&b.distance_m).then_with(|| self.sites[a.site].id.cmp(&self.sites[b.site].id))
            });
            all.truncate(limit);
            all
        };
        if let Some(r) = within_m {
            found.retain(|f| f.distance_m <= r);
        }
        found
    }
}

/// The radii of the analysis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Radii {
    /// Walking radius: resources within it are counted.
    pub walk_m: f64,
    /// 2SFCA catchment radius `d0`.
    pub catchment_m: f64,
}

impl Default for Radii {
    fn default() -> Self {
        Radii { walk_m: WALK_M, catchment_m: CATCHMENT_M }
    }
}

impl Radii {
    /// Both radii checked: finite, above 0 and at most [`MAX_RADIUS_M`].
    pub fn new(walk_m: f64, catchment_m: f64) -> Result<Radii, String> {
        for (name, v) in [("walk_m", walk_m), ("catchment_m", catchment_m)] {
            if !(v.is_finite() && v > 0.0 && v <= MAX_RADIUS_M) {
                return Err(format!("{name}={v}: expected metres above 0 and at most {MAX_RADIUS_M}"));
            }
        }
        Ok(Radii { walk_m, catchment_m })
    }
}

/// What one category looks like from every block: the part that depends only on blocks and
/// resources.
#[derive(Debug)]
struct CategoryReach {
    /// Per block: the nearest resource of the category (site position, metres).
    nearest: Vec<Option<(u32, f64)>>,
    /// Per block: resources of the category within the walking radius.
    walk: Vec<u32>,
    /// Per block `i`, pairs `offsets[i]..offsets[i + 1]`: sites within the catchment radius.
    offsets: Vec<u32>,
    pair_site: Vec<u32>,
}

/// Per block and category: nearest distance, count within walking radius and the pairs within
/// the catchment radius, for [`AccessTable::scores`].
#[derive(Debug)]
pub struct AccessTable {
    radii: Radii,
    blocks: usize,
    categories: Vec<String>,
    per_category: Vec<CategoryReach>,
}

/// One block's access to one category.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockReach {
    /// The nearest resource of the category ([`Finder::sites`] position) and its distance.
    pub nearest: Option<(usize, f64)>,
    /// Resources of the category within the walking radius.
    pub within_walk: u32,
}

impl AccessTable {
    /// Measure every block (interior points, `None` for a block without one) against every
    /// category of `finder`. Categories are measured in parallel.
    pub fn new(finder: &Finder, points: &[Option<(f64, f64)>], radii: Radii) -> AccessTable {
        let reach = radii.walk_m.max(radii.catchment_m);
        let jobs: Vec<(&String, &(AmbassadorIndex, Vec<u32>))> = finder.categories.iter().collect();
        let per_category = parallel(&jobs, |(_, (index, list))| {
            let nearest = index.nearest_many(points, 1);
            let mut walk = Vec::with_capacity(points.len());
            let mut offsets = Vec::with_capacity(points.len() + 1);
            let mut pair_site = Vec::new();
            offsets.push(0u32);
            for (i, p) in points.iter().enumerate() {
                let around: Vec<Neighbour> = match p {
                    // Nothing lies within `reach` when the nearest is farther.
                    Some((lon, lat)) if nearest.get(i).first().is_some_and(|n| n.distance_m <= reach) => {
                        index.within(*lon, *lat, reach)
                    }
                    _ => Vec::new(),
                };
                walk.push(around.iter().filter(|n| n.distance_m <= radii.walk_m).count() as u32);
                pair_site.extend(
                    around.iter().filter(|n| n.distance_m <= radii.catchment_m).map(|n| list[n.index as usize]),
                );
                offsets.push(pair_site.len() as u32);
            }
            let nearest = (0..points.len())
                .map(|i| nearest.get(i).first().map(|n| (list[n.index as usize], n.distance_m)))
                .collect();
            CategoryReach { nearest, walk, offsets, pair_site }
        });
        AccessTable {
            radii,
            blocks: points.len(),
            categories: jobs.iter().map(|(c, _)| (*c).clone()).collect(),
            per_category,
        }
    }

    /// The radii measured with.
    pub fn radii(&self) -> Radii {
        self.radii
    }

    /// The categories, by name.
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    /// Position of `category` in [`AccessTable::categories`].
    pub fn category(&self, category: &str) -> Option<usize> {
        self.categories.iter().position(|c| c == category)
    }

    /// Number of blocks.
    pub fn blocks(&self) -> usize {
        self.blocks
    }

    /// Block `block`'s access to category `category` (positions).
    pub fn reach(&self, category: usize, block: usize) -> BlockReach {
        let c = &self.per_category[category];
        BlockReach {
            nearest: c.nearest.get(block).copied().flatten().map(|(s, d)| (s as usize, d)),
            within_walk: c.walk.get(block).copied().unwrap_or(0),
        }
    }

    /// The resources of category `category` within the catchment radius of block `block`
    /// ([`Finder::sites`] positions, nearest first).
    pub fn pairs(&self, category: usize, block: usize) -> &[u32] {
        let c = &self.per_category[category];
        match (c.offsets.get(block), c.offsets.get(block + 1)) {
            (Some(&a), Some(&b)) => &c.pair_site[a as usize..b as usize],
            _ => &[],
        }
    }

    /// Step 1 of 2SFCA without the division: the demand within the catchment radius of every
    /// site (`sites` of them, [`Finder::sites`] order). Whole-number demand sums exactly, so a
    /// caller may keep these sums current by adding each block's change.
    pub fn site_demand(&self, category: usize, demand: &[f64], sites: usize) -> Vec<f64> {
        let mut reached = vec![0.0f64; sites];
        for i in 0..self.blocks {
            let d = demand.get(i).copied().unwrap_or(0.0);
            if d > 0.0 {
                for &j in self.pairs(category, i) {
                    reached[j as usize] += d;
                }
            }
        }
        reached
    }

    /// Step 2 for one block: `1000 · Σ S_j / D_j` over the sites within its catchment radius,
    /// from the demand at every site ([`AccessTable::site_demand`]) and the supply per site.
    pub fn score(&self, category: usize, block: usize, site_demand: &[f64], supply: &[f64]) -> f64 {
        1000.0
            * self
                .pairs(category, block)
                .iter()
                .map(|&j| ratio(supply[j as usize], site_demand[j as usize]))
                .sum::<f64>()
    }

    /// The 2SFCA score of every block for category `category`, with `demand` per block (same
    /// order as the points measured) and `supply` per site ([`Finder::sites`] order).
    pub fn scores(&self, category: usize, demand: &[f64], supply: &[f64]) -> Vec<f64> {
        let reached = self.site_demand(category, demand, supply.len());
        (0..self.blocks).map(|i| self.score(category, i, &reached, supply)).collect()
    }

    /// The pairs reversed: for every site (`sites` of them), the blocks within the catchment
    /// radius, ascending. A change of one block's demand changes the scores of exactly the
    /// blocks paired with the sites it is paired with.
    pub fn blocks_near_sites(&self, category: usize, sites: usize) -> SitePairs {
        let mut count = vec![0u32; sites + 1];
        for i in 0..self.blocks {
            for &j in self.pairs(category, i) {
                count[j as usize + 1] += 1;
            }
        }
        for j in 0..sites {
            count[j + 1] += count[j];
        }
        let mut fill = count.clone();
        let mut blocks = vec![0u32; count[sites] as usize];
        for i in 0..self.blocks {
            for &j in self.pairs(category, i) {
                let at = &mut fill[j as usize];
                blocks[*at as usize] = i as u32;
                *at += 1;
            }
        }
        SitePairs { offsets: count, blocks }
    }
}

/// `S_j / D_j`, 0 when no demand lies within reach (nobody to serve).
fn ratio(supply: f64, demand: f64) -> f64 {
    if demand > 0.0 { supply / demand } else { 0.0 }
}

/// Per site, the blocks within the catchment radius (see [`AccessTable::blocks_near_sites`]).
#[derive(Debug, Clone, Default)]
pub struct SitePairs {
    offsets: Vec<u32>,
    blocks: Vec<u32>,
}

impl SitePairs {
    /// The blocks paired with site `site`, ascending.
    pub fn blocks(&self, site: usize) -> &[u32] {
        match (self.offsets.get(site), self.offsets.get(site + 1)) {
            (Some(&a), Some(&b)) => &self.blocks[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// `f` over `items`, spread over the machine's cores, results in order.
fn parallel<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len().max(1));
    if cores <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut out: Vec<(usize, U)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..cores)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, f(item)));
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, u)| u).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(id: &str, category: &str, lon: f64, lat: f64, supply: f64) -> Site {
        Site { id: id.into(), category: category.into(), lon, lat, supply }
    }

    /// Metres to degrees of longitude at the equator, for a hand-made line of points.
    fn lon_at(m: f64) -> f64 {
        // One degree of longitude on the WGS84 equator.
        m / 111_319.490_793_273_57
    }

    #[test]
    fn finder_orders_by_distance_then_id_and_filters_categories() {
        let f = Finder::new(vec![
            site("far", "food", lon_at(3000.0), 0.0, 1.0),
            site("b", "food", lon_at(1000.0), 0.0, 1.0),
            site("a", "food", lon_at(1000.0), 0.0, 1.0),
            site("s", "school", lon_at(500.0), 0.0, 1.0),
        ]);
        let ids = |found: Vec<Found>| found.iter().map(|x| f.sites()[x.site].id.to_string()).collect::<Vec<_>>();
        assert_eq!(ids(f.nearest(0.0, 0.0, &[], 10, None)), ["s", "a", "b", "far"]);
        assert_eq!(ids(f.nearest(0.0, 0.0, &["food"], 2, None)), ["a", "b"]);
        assert_eq!(ids(f.nearest(0.0, 0.0, &["school", "food", "food"], 10, Some(1500.0))), ["s", "a", "b"]);
        assert!(f.nearest(0.0, 0.0, &["none"], 10, None).is_empty());
        let d = f.nearest(0.0, 0.0, &["school"], 1, None)[0].distance_m;
        assert!((d - 500.0).abs() < 0.01, "{d}");
        assert_eq!(f.categories(), [("food", 3), ("school", 1)]);
    }

    /// Worked by hand. Blocks on the equator at 0, 1,000 and 3,000 m; food banks at 500 m
    /// (capacity 30) and 2,500 m (capacity 10); d0 = 1,600 m, walk 800 m.
    /// Pairs within d0: block0–F1 (500), block1–F1 (500), block2–F2 (500), block1–F2 (1,500).
    /// Demand 100, 200, 50: R1 = 30 / (100 + 200) = 0.1; R2 = 10 / (200 + 50) = 0.04.
    /// A0 = 1000·0.1 = 100; A1 = 1000·(0.1 + 0.04) = 140; A2 = 1000·0.04 = 40.
    #[test]
    fn two_step_floating_catchment_matches_the_hand_computation() {
        let f = Finder::new(vec![
            site("F1", "food", lon_at(500.0), 0.0, 30.0),
            site("F2", "food", lon_at(2500.0), 0.0, 10.0),
        ]);
        let points = [Some((0.0, 0.0)), Some((lon_at(1000.0), 0.0)), Some((lon_at(3000.0), 0.0)), None];
        let t = AccessTable::new(&f, &points, Radii::default());
        let c = t.category("food").unwrap();
        let supply: Vec<f64> = f.sites().iter().map(|s| s.supply).collect();
        let a = t.scores(c, &[100.0, 200.0, 50.0, 0.0], &supply);
        for (got, want) in a.iter().zip([100.0, 140.0, 40.0, 0.0]) {
            assert!((got - want).abs() < 1e-6, "{a:?}");
        }
        assert_eq!(t.reach(c, 0).within_walk, 1);
        assert_eq!(t.reach(c, 1).within_walk, 1);
        let (s, d) = t.reach(c, 1).nearest.unwrap();
        assert_eq!(&*f.sites()[s].id, "F1");
        assert!((d - 500.0).abs() < 0.01);
        assert_eq!(t.reach(c, 3).nearest, None);
        // No demand near F2: its supply serves nobody, R2 = 0.
        let a = t.scores(c, &[100.0, 0.0, 0.0, 0.0], &supply);
        assert!((a[0] - 300.0).abs() < 1e-6 && a[2] == 0.0, "{a:?}");
        // The pairs reversed: F1 serves blocks 0 and 1, F2 blocks 1 and 2.
        let near = t.blocks_near_sites(c, 2);
        assert_eq!((near.blocks(0), near.blocks(1), near.blocks(2)), (&[0u32, 1][..], &[1u32, 2][..], &[][..]));
        // Keeping the sums current by a block's change gives the scores computed afresh.
        let mut reached = t.site_demand(c, &[100.0, 200.0, 50.0, 0.0], 2);
        for &j in t.pairs(c, 1) {
            reached[j as usize] -= 200.0;
        }
        let fresh = t.scores(c, &[100.0, 0.0, 50.0, 0.0], &supply);
        for (i, want) in fresh.iter().enumerate() {
            assert_eq!(t.score(c, i, &reached, &supply).to_bits(), want.to_bits(), "block {i}");
        }
    }
}
