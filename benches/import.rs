//! End-to-end import of 1,000,000 resident rows (parse CSV, assign against 110,000 blocks,
//! persist to SQLite with history) — the path `belong import residents` takes. Target: < 15 s.

use std::path::Path;

use belong::app;
use belong::core::Role;
use belong::demo::{DemoSpec, generate};
use belong::ingest::blocks::BlockReadOptions;
use belong::store::SqliteStore;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

/// The same allocator as the `belong` binary, so the figure is what `belong import` does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = DemoSpec { blocks: 110_000, residents: Some(1_000_000), ambassadors: None, resources: None, seed: 1 };
    generate(&spec, dir.path()).expect("generate county-scale set");
    let template = dir.path().join("blocks.db");
    {
        let store = SqliteStore::open(&template).expect("db");
        app::import_blocks(&store, &dir.path().join("blocks.shp"), &BlockReadOptions::default()).expect("blocks");
    }
    let residents = dir.path().join("residents.csv");

    let mut group = c.benchmark_group("import");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1_000_000));
    group.bench_function("residents_1m_rows_110k_blocks", |b| {
        b.iter_batched(
            || fresh_copy(&template, dir.path()),
            |db| {
                let store = SqliteStore::open(&db).expect("db");
                let r = app::import_people(&store, &residents, Role::Resident, None, |_| {}).expect("import");
                assert!(r.upserted.inserted > 900_000);
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn fresh_copy(template: &Path, dir: &Path) -> std::path::PathBuf {
    let db = dir.join("run.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::copy(template, &db).expect("copy template db");
    db
}

criterion_group!(benches, bench);
criterion_main!(benches);
