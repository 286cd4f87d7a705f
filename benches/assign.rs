//! Point assignment and index build against the demo catchment (500 blocks) and a
//! county-scale generated set (110,000 blocks). Targets (2-core machine): ≥ 4,000,000
//! assignments/s on one core against 110,000 blocks; index build for 110,000 blocks < 1 s.

use std::hint::black_box;

use belong::core::{Block, BlockIndex};
use belong::demo::{DemoSpec, blocks_wgs84};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn spec(blocks: usize) -> DemoSpec {
    DemoSpec { blocks, residents: Some(0), ambassadors: Some(0), resources: Some(0), seed: 1 }
}

/// Deterministic points spread over the catchment's bounding box (most fall inside a block).
fn points(index: &BlockIndex, n: usize) -> Vec<(f64, f64)> {
    let [x0, y0, x1, y1] = index.bbox().expect("blocks");
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    (0..n).map(|_| (rng.random_range(x0..x1), rng.random_range(y0..y1))).collect()
}

fn bench(c: &mut Criterion) {
    let sets: Vec<(usize, Vec<Block>)> = [500, 110_000].into_iter().map(|n| (n, blocks_wgs84(&spec(n)))).collect();

    let mut build = c.benchmark_group("index_build");
    build.sample_size(10);
    for (n, blocks) in &sets {
        build.throughput(Throughput::Elements(*n as u64));
        build.bench_with_input(BenchmarkId::from_parameter(n), blocks, |b, blocks| {
            b.iter(|| BlockIndex::new(black_box(blocks)))
        });
    }
    build.finish();

    // The import and `belong assign` path: a batch of points, located in cache-friendly order.
    let mut batch = c.benchmark_group("assign_batch");
    batch.sample_size(20);
    for (n, blocks) in &sets {
        let index = BlockIndex::new(blocks);
        let pts = points(&index, 1_000_000);
        batch.throughput(Throughput::Elements(pts.len() as u64));
        batch.bench_with_input(BenchmarkId::from_parameter(n), &pts, |b, pts| {
            b.iter(|| index.locate_many(black_box(pts)).iter().filter(|r| r.is_some()).count())
        });
    }
    batch.finish();

    // One point at a time in random order: the worst case for memory locality.
    let mut single = c.benchmark_group("assign_single");
    for (n, blocks) in &sets {
        let index = BlockIndex::new(blocks);
        let pts = points(&index, 100_000);
        single.throughput(Throughput::Elements(pts.len() as u64));
        single.bench_with_input(BenchmarkId::from_parameter(n), &pts, |b, pts| {
            b.iter(|| pts.iter().filter(|(x, y)| index.locate_rank(*x, *y).is_some()).count())
        });
    }
    single.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
