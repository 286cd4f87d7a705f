//! Resource access at county scale, on a synthetic set with the county's shape: 110,000 block
//! points and 5,000 resources in 5 categories, uniformly over Los Angeles County's extent
//! (-118.95..-117.65 °E, 33.70..34.82 °N), from a fixed generator.
//!
//! - `access/table_110k_blocks_5k_resources` — target ≤ 1 s: [`AccessTable::new`], i.e. for
//!   every block and category the nearest resource, the count within 800 m and the pairs
//!   within the 1,600 m catchment (built once per block or resource import).
//! - `access/scores_one_category` — the 2SFCA scores of one category from those pairs (what a
//!   people change costs: demand changed, no distance measured again).
//! - `access/nearest_10` — one `/resources/nearest` question (10 nearest, all categories);
//!   `access/nearest_10_two_categories` with a category filter. The HTTP target is ≥ 5,000
//!   req/s on 2 cores, i.e. ≤ 0.4 ms per request for everything.

use std::hint::black_box;
use std::sync::Arc;

use belong::core::reach::{AccessTable, Finder, Radii, Site};
use criterion::{Criterion, criterion_group, criterion_main};

/// The same allocator as the `belong` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CATEGORIES: [&str; 5] = ["school", "childcare", "food_bank", "shelter", "clinic"];

fn lcg(state: &mut u64) -> f64 {
    *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

fn point(state: &mut u64) -> (f64, f64) {
    (-118.95 + 1.30 * lcg(state), 33.70 + 1.12 * lcg(state))
}

fn county() -> (Finder, Vec<Option<(f64, f64)>>) {
    let mut s = 20261203u64;
    let sites = (0..5_000)
        .map(|i| {
            let (lon, lat) = point(&mut s);
            Site {
                id: Arc::from(format!("R{i:05}")),
                category: CATEGORIES[i % CATEGORIES.len()].to_string(),
                lon,
                lat,
                supply: 1.0 + (i % 7) as f64,
            }
        })
        .collect();
    let blocks = (0..110_000).map(|_| Some(point(&mut s))).collect();
    (Finder::new(sites), blocks)
}

fn bench(c: &mut Criterion) {
    let (finder, blocks) = county();
    let mut g = c.benchmark_group("access");
    g.sample_size(10);
    g.bench_function("table_110k_blocks_5k_resources", |b| {
        b.iter(|| black_box(AccessTable::new(&finder, &blocks, Radii::default())))
    });
    let table = AccessTable::new(&finder, &blocks, Radii::default());
    let demand: Vec<f64> = (0..blocks.len()).map(|i| (i % 23) as f64).collect();
    let supply: Vec<f64> = finder.sites().iter().map(|s| s.supply).collect();
    g.bench_function("scores_one_category", |b| b.iter(|| black_box(table.scores(0, &demand, &supply))));
    g.sample_size(100);
    let mut s = 7u64;
    g.bench_function("nearest_10", |b| {
        b.iter(|| {
            let (lon, lat) = point(&mut s);
            black_box(finder.nearest(lon, lat, &[], 10, None))
        })
    });
    g.bench_function("nearest_10_two_categories", |b| {
        b.iter(|| {
            let (lon, lat) = point(&mut s);
            black_box(finder.nearest(lon, lat, &["food_bank", "shelter"], 10, None))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
