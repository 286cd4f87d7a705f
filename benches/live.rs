//! The live state under writes: a single `POST /people` through the HTTP router (validation,
//! placing the point with the live catchment, one SQLite transaction, catching the live state
//! up and publishing it), a read of `/coverage` and the first `/coverage/uncovered` after a
//! write, and building the state from the database (start-up).
//!
//! Targets (2-core machine, county set of 110,000 blocks and 1,000,000 residents): a write
//! p50 ≤ 20 ms and p99 ≤ 100 ms, reads never waiting for it. The demo set (500 blocks) is
//! built here; the county set is too slow to build per run: point `BELONG_BENCH_DB` at a copy
//! of one (`belong demo generate --blocks 110000 --residents 1000000 --out D && belong demo
//! load --dir D --db county.db`; the bench writes to it, so give it a copy). The side-by-side
//! HTTP figures (latency percentiles over real sockets, memory, start-up) come from
//! `scripts/bench-live`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::http::{Request, header};
use belong::app;
use belong::app::live::Live;
use belong::core::{AccessRole, Role};
use belong::http::{AppState, ServeConfig};
use belong::store::{SqliteStore, Store};
use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn database(dir: &tempfile::TempDir) -> PathBuf {
    if let Ok(path) = std::env::var("BELONG_BENCH_DB") {
        return PathBuf::from(path);
    }
    let data = dir.path().join("data");
    let spec = belong::demo::DemoSpec { blocks: 500, residents: None, ambassadors: None, resources: None, seed: 1 };
    belong::demo::generate(&spec, &data).expect("generate the demo");
    let db = dir.path().join("demo.db");
    let store = SqliteStore::open(&db).expect("open");
    app::import_blocks(&store, &data.join("blocks.shp"), &Default::default()).expect("blocks");
    app::import_people(&store, &data.join("residents.csv"), Role::Resident, None, |_| {}).expect("residents");
    app::import_people(&store, &data.join("ambassadors.csv"), Role::Ambassador, None, |_| {}).expect("ambassadors");
    db
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = database(&dir);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let store = SqliteStore::open(&db).expect("open");
    let token = app::tokens::create_token(&store, AccessRole::Manager, Some("bench")).expect("token").token;
    let bbox = {
        let s = SqliteStore::open(&db).expect("open");
        belong::core::BlockIndex::new(&s.blocks().expect("blocks")).bbox().expect("bbox")
    };
    let state = rt.block_on(AppState::new(store, ServeConfig::default())).expect("state");
    let router = belong::http::app(state.clone());
    let n = AtomicU64::new(0);

    let mut g = c.benchmark_group("live");
    g.sample_size(50);
    g.bench_function("post_person", |b| {
        b.iter(|| {
            let i = n.fetch_add(1, Ordering::Relaxed);
            // Spread over the catchment, every tenth an ambassador (which may cover a block).
            let t = (i as f64 * 0.618_034) % 1.0;
            let (lon, lat) = (bbox[0] + (bbox[2] - bbox[0]) * t, bbox[1] + (bbox[3] - bbox[1]) * ((t * 7.0) % 1.0));
            let role = if i.is_multiple_of(10) { "ambassador" } else { "resident" };
            let body = format!(r#"{{"id":"bench-{i}","role":"{role}","lon":{lon},"lat":{lat}}}"#);
            let req = Request::post("/people")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::from(body))
                .expect("request");
            let res = rt.block_on(router.clone().oneshot(req)).expect("response");
            assert_eq!(res.status(), 201);
        })
    });
    g.bench_function("get_coverage", |b| {
        b.iter(|| {
            let req = Request::get("/coverage").body(Body::empty()).expect("request");
            rt.block_on(router.clone().oneshot(req)).expect("response")
        })
    });
    g.sample_size(10);
    g.bench_function("open_live_state", |b| {
        b.iter(|| {
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).expect("open"));
            Live::open(store, 1).expect("live")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
