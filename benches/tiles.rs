//! Tile generation, uncached (what a cache miss costs): the z14 tile over the dense part of the
//! demo catchment (target <= 5 ms) and the densest z12 tile of the 110,000-block county set
//! (target <= 50 ms), plus a cache hit. Serving cached tiles over HTTP is measured with wrk in
//! `benches/http_load.sh` (target >= 10,000 req/s).

use std::path::Path;

use belong::app::{self, layers::Layers};
use belong::core::Role;
use belong::demo::{DemoSpec, HQ_LAT, HQ_LON, generate};
use belong::ingest::blocks::BlockReadOptions;
use belong::ingest::resources::ResourceOptions;
use belong::store::SqliteStore;
use belong::tiles::TileId;
use criterion::{Criterion, criterion_group, criterion_main};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Import a demo set (as `belong demo load` does) and build the snapshot the server tiles from.
fn layers_of(data: &Path, db: &Path) -> Layers {
    let store = SqliteStore::open(db).expect("db");
    app::import_blocks(&store, &data.join("blocks.shp"), &BlockReadOptions::default()).expect("blocks");
    app::import_people(&store, &data.join("residents.csv"), Role::Resident, None, |_| {}).expect("residents");
    app::import_people(&store, &data.join("ambassadors.csv"), Role::Ambassador, None, |_| {}).expect("ambassadors");
    app::import_resources(&store, &data.join("resources.csv"), None, &ResourceOptions::default()).expect("resources");
    app::import_indicators(&store, &data.join("indicators.csv")).expect("indicators");
    Layers::build(&store, 1).expect("snapshot")
}

fn hq_tile(z: u8) -> TileId {
    let (xs, ys) = TileId::range(z, [HQ_LON, HQ_LAT, HQ_LON, HQ_LAT]);
    TileId { z, x: *xs.start(), y: *ys.start() }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = layers_of(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data"), &dir.path().join("demo.db"));
    let spec = DemoSpec { blocks: 110_000, residents: Some(200_000), ambassadors: None, resources: None, seed: 1 };
    let county_data = dir.path().join("county");
    generate(&spec, &county_data).expect("generate the county set");
    let county = layers_of(&county_data, &dir.path().join("county.db"));

    let mut g = c.benchmark_group("tiles");
    let z14 = hq_tile(14);
    eprintln!("demo z14 tile {z14}: {} bytes", demo.render_tile(&["blocks"], z14).len());
    g.bench_function("demo_z14_blocks_uncached", |b| b.iter(|| demo.render_tile(&["blocks"], z14)));
    g.bench_function("demo_z14_all_layers_uncached", |b| {
        b.iter(|| demo.render_tile(&["blocks", "resources", "school-readiness"], z14))
    });

    // The densest z12 tile of the county set.
    let extent = county.tiles().layer("blocks").and_then(|l| l.bounds).expect("county extent");
    let (xs, ys) = TileId::range(12, extent);
    let z12 = xs
        .flat_map(|x| ys.clone().map(move |y| TileId { z: 12, x, y }))
        .max_by_key(|t| county.render_tile(&["blocks"], *t).len())
        .expect("a z12 tile");
    eprintln!("county z12 tile {z12}: {} bytes", county.render_tile(&["blocks"], z12).len());
    g.sample_size(20);
    g.bench_function("county_z12_blocks_uncached", |b| b.iter(|| county.render_tile(&["blocks"], z12)));
    g.bench_function("county_z12_all_layers_uncached", |b| {
        b.iter(|| county.render_tile(&["blocks", "resources", "school-readiness"], z12))
    });
    g.sample_size(100);
    let cache = belong::tiles::TileCache::default();
    cache.get_or_render("blocks", z14, || demo.render_tile(&["blocks"], z14));
    g.bench_function("demo_z14_cache_hit", |b| b.iter(|| cache.get("blocks", z14)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
