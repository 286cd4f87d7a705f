//! File downloads of the county blocks layer (110,000 features, issue 13), from the served
//! snapshot to a finished file, as `/collections/blocks/items?f=...` writes it before streaming:
//!
//! - `download/county_blocks_gpkg` — the GeoPackage (R-tree index included); the figure the
//!   issue asks for.
//! - `download/county_blocks_fgb` and `download/county_blocks_shp_zip` — the same layer as
//!   FlatGeobuf and as a zipped shapefile, for comparison.
//!
//! The county set is `belong demo generate --blocks 110000 --residents 1000000`, imported as
//! `belong demo load` does.

use std::path::Path;

use belong::app::layers::{BLOCKS, Layers, download_file};
use belong::app::{self};
use belong::core::Role;
use belong::demo::{DemoSpec, generate};
use belong::export::{DownloadFormat, OutputCrs};
use belong::ingest::blocks::BlockReadOptions;
use belong::ingest::resources::ResourceOptions;
use belong::store::SqliteStore;
use criterion::{Criterion, criterion_group, criterion_main};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Import a demo set (as `belong demo load` does) and build the snapshot the server serves.
fn layers_of(data: &Path, db: &Path) -> Layers {
    let store = SqliteStore::open(db).expect("db");
    app::import_blocks(&store, &data.join("blocks.shp"), &BlockReadOptions::default()).expect("blocks");
    app::import_people(&store, &data.join("residents.csv"), Role::Resident, None, |_| {}).expect("residents");
    app::import_people(&store, &data.join("ambassadors.csv"), Role::Ambassador, None, |_| {}).expect("ambassadors");
    app::import_resources(&store, &data.join("resources.csv"), None, &ResourceOptions::default()).expect("resources");
    app::import_indicators(&store, &data.join("indicators.csv")).expect("indicators");
    Layers::build(&store, 1).expect("snapshot")
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = DemoSpec { blocks: 110_000, residents: Some(1_000_000), ambassadors: None, resources: None, seed: 1 };
    let data = dir.path().join("county");
    generate(&spec, &data).expect("generate the county set");
    let county = layers_of(&data, &dir.path().join("county.db"));
    let blocks = county.collection(BLOCKS).expect("blocks");
    let all: Vec<usize> = (0..blocks.features.len()).collect();
    let crs = OutputCrs::wgs84();

    let mut g = c.benchmark_group("download");
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(20));
    for (name, format) in [
        ("county_blocks_gpkg", DownloadFormat::GeoPackage),
        ("county_blocks_fgb", DownloadFormat::FlatGeobuf),
        ("county_blocks_shp_zip", DownloadFormat::Shapefile),
    ] {
        let file = download_file(blocks, &all, format, &crs).expect("a download");
        let bytes = file.metadata().expect("metadata").len();
        eprintln!("{name}: {} features, {:.1} MB", all.len(), bytes as f64 / 1e6);
        g.bench_function(name, |b| b.iter(|| download_file(blocks, &all, format, &crs).expect("a download")));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
