//! Vector tiles of the public layers: `GET /tiles/{layers}/{z}/{x}/{y}.mvt` (one layer, or a
//! comma-separated list for a multi-layer tile) and TileJSON 3.0.0 at `GET /tiles/{layers}.json`.
//!
//! Tiles come from the snapshot's tile cache, so they change exactly when the snapshot does. They
//! are sent with a strong ETag and `Cache-Control: no-cache`: clients may keep them but must
//! revalidate, which costs a 304 and guarantees a map never shows stale coverage.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::format::QueryPairs;
use super::{AppError, AppState, BaseUrl};
use crate::app::layers::{BLOCKS, Layers};
use crate::core::text::quote;
use crate::tiles::{CachedTile, DATA_MAX_ZOOM, MEDIA_TYPE, TileId};

pub(super) const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");

/// The layer list of a tile URL, checked against the snapshot; duplicates are dropped.
fn layer_names<'a>(layers: &Layers, list: &'a str) -> Result<Vec<&'a str>, AppError> {
    let mut names: Vec<&str> = Vec::new();
    for name in list.split(',') {
        if layers.tiles().layer(name).is_none() {
            let known: Vec<&str> = layers.tiles().layers().iter().map(|l| l.name.as_str()).collect();
            return Err(AppError::NotFound(format!(
                "no tile layer {name}; the layers are {} (or a comma-separated list of them)",
                known.join(", "),
                name = quote(name)
            )));
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

fn coordinate(name: &str, raw: &str) -> Result<u32, AppError> {
    raw.parse().map_err(|_| AppError::BadRequest(format!("tile {name} {raw} is not a whole number", raw = quote(raw))))
}

/// One vector tile.
#[utoipa::path(get, path = "/tiles/{layers}/{z}/{x}/{y}.mvt", tag = "Tiles", operation_id = "getTile",
    params(("layers" = String, Path, description = "blocks, resources, school-readiness, or a comma-separated list"),
           ("z" = u32, Path, description = "Zoom, 0 to 24"), ("x" = u32, Path, description = "Column"),
           ("y" = u32, Path, description = "Row (XYZ: 0 at the top)"),
           ("datetime" = Option<String>, Query, description = "A day (YYYY-MM-DD): the blocks layer with its counts at the end of that day (UTC), as /coverage/history counts them")),
    responses((status = 200, description = "Mapbox Vector Tile 2.1", content_type = "application/vnd.mapbox-vector-tile"),
              (status = 204, description = "No feature in this tile"),
              (status = 304, description = "Unchanged since the ETag sent in If-None-Match"),
              (status = 400, description = "Bad tile coordinates", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "Unknown layer or tile outside the grid", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn tile(
    State(state): State<AppState>,
    Path((list, z, x, y_ext)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    q: QueryPairs,
) -> Result<Response, AppError> {
    q.only(&["datetime"])?;
    let day = super::features::tile_day(&q)?;
    let Some(y) = y_ext.strip_suffix(".mvt").or_else(|| y_ext.strip_suffix(".pbf")) else {
        return Err(AppError::NotFound(format!("no resource at /tiles/{list}/{z}/{x}/{y_ext}: tiles end in .mvt")));
    };
    let id = TileId::new(coordinate("zoom", &z)?, coordinate("x", &x)?, coordinate("y", y)?)
        .map_err(|e| AppError::NotFound(e.to_string()))?;
    let layers = state.layers();
    let names = layer_names(&layers, &list)?;
    serve(&state, &names, id, day, &headers).await
}

/// Tile `id` of the layers `names` (checked, without duplicates), from the snapshot's tile cache
/// or cut now, with the ETag, `Cache-Control` and compression every tile route shares: the same
/// layers give the same bytes whichever URL asked. With `day`, the blocks layer has the counts
/// at the end of that day (`datetime=`): cut every time, not cached (the ETag is still the
/// bytes' digest, so revalidation works).
pub(super) async fn serve(
    state: &AppState,
    names: &[&str],
    id: TileId,
    day: Option<chrono::NaiveDate>,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    if let Some(day) = day.filter(|_| names.contains(&BLOCKS)) {
        let layers = state.layers();
        let as_of = super::features::blocks_as_of(state, &layers, day).await?;
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let tile = state
            .renders
            .run(move || {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                CachedTile::new(layers.tiles().render_with(&names, id, &as_of.values(&layers)))
            })
            .await?;
        return Ok(tile_response(&tile, headers));
    }
    let key = names.join(",");
    let live = state.live()?.clone();
    let cached = match live.tile_cache().get(&key, id) {
        Some(hit) => hit,
        // Cutting a dense low-zoom tile can take tens of milliseconds: not on an async worker,
        // and no more at once than there are cores.
        None => state.renders.run(move || live.tile(&key, id)).await?,
    };
    Ok(tile_response(&cached, headers))
}

/// At most one tile cut per core at a time, with a bounded queue behind them. Tiles cut on the
/// blocking pool without a bound took a 2-core machine's pool to 63–121 threads in a cold pass
/// of 2,000 tiles at 32 connections (time lost in the kernel, memory with each thread); more
/// cuts at once than cores only share the same cores. Past the queue's bound a request gets a
/// 503 with `Retry-After` at once rather than an ever longer wait.
pub struct RenderGate {
    permits: tokio::sync::Semaphore,
    queued: std::sync::atomic::AtomicUsize,
    max_queued: usize,
}

impl RenderGate {
    /// A gate for `cores` cuts at once and `max_queued` waiting (and running) ones.
    pub fn new(cores: usize, max_queued: usize) -> RenderGate {
        RenderGate {
            permits: tokio::sync::Semaphore::new(cores.max(1)),
            queued: std::sync::atomic::AtomicUsize::new(0),
            max_queued: max_queued.max(cores.max(1)),
        }
    }

    /// One per core of this machine, and 256 per core in the queue.
    pub fn for_this_machine() -> RenderGate {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        RenderGate::new(cores, 256 * cores)
    }

    /// Run `cut` on the blocking pool once a core is free.
    pub async fn run<T: Send + 'static>(&self, cut: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
        use std::sync::atomic::Ordering;
        struct Queued<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Queued<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let _queued = Queued(&self.queued);
        if self.queued.fetch_add(1, Ordering::Relaxed) >= self.max_queued {
            return Err(AppError::Unavailable(format!(
                "{} tiles are being cut or waiting for a core; try again shortly",
                self.max_queued
            )));
        }
        let _permit = self.permits.acquire().await.map_err(|e| AppError::Internal(e.to_string()))?;
        Ok(tokio::task::spawn_blocking(cut).await?)
    }
}

fn tile_response(tile: &CachedTile, headers: &HeaderMap) -> Response {
    let etag = HeaderValue::from_str(&tile.etag).unwrap_or(HeaderValue::from_static("\"\""));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tile.etag || t.trim() == "*"));
    let mut res = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else if tile.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else if accepts_gzip(headers) {
        // Compressed once per tile and kept, instead of once per request by the middleware
        // (which leaves responses that already have a Content-Encoding alone).
        let mut res = Response::new(Body::from(tile.gzip()));
        res.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        res
    } else {
        Response::new(Body::from(tile.bytes.clone()))
    };
    let h = res.headers_mut();
    if !tile.is_empty() {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    }
    h.insert(header::ETAG, etag);
    h.insert(header::CACHE_CONTROL, NO_CACHE);
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    res
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(
                |p| matches!(p.trim().strip_prefix("q="), Some(q) if q.trim().parse::<f32>().is_ok_and(|q| q == 0.0)),
            );
            name.eq_ignore_ascii_case("gzip") && !refused
        },
    )
}

/// TileJSON 3.0.0 for one layer or a comma-separated list.
#[utoipa::path(get, path = "/tiles/{layers}.json", tag = "Tiles", operation_id = "getTileJson",
    params(("layers" = String, Path, description = "blocks, resources, school-readiness, or a comma-separated list"),
           ("datetime" = Option<String>, Query, description = "A day (YYYY-MM-DD): tile URLs of the blocks with their counts at the end of that day")),
    responses((status = 200, description = "TileJSON 3.0.0", content_type = "application/json"),
              (status = 404, description = "Unknown layer", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn tilejson(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(file): Path<String>,
    q: QueryPairs,
) -> Result<Response, AppError> {
    q.only(&["datetime"])?;
    let day = super::features::tile_day(&q)?;
    let Some(list) = file.strip_suffix(".json") else {
        return Err(AppError::NotFound(format!(
            "no resource at /tiles/{file}: TileJSON is at /tiles/{{layers}}.json, tiles at /tiles/{{layers}}/{{z}}/{{x}}/{{y}}.mvt"
        )));
    };
    let layers = state.layers();
    let names = layer_names(&layers, list)?;
    let mut url = format!("{base}/tiles/{}/{{z}}/{{x}}/{{y}}.mvt", names.join(","));
    if let Some(day) = day {
        url.push_str(&format!("?datetime={day}"));
    }
    let doc = layers.tiles().tilejson(&names, url, 0, DATA_MAX_ZOOM);
    let mut res = Json(doc).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, NO_CACHE);
    Ok(res)
}

#[cfg(test)]
mod render_gate_tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{AppError, RenderGate};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tile_cuts_run_one_per_core_and_a_full_queue_is_a_503() {
        let gate = Arc::new(RenderGate::new(1, 3));
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Arc::new(std::sync::Mutex::new(wait));
        let mut cuts = Vec::new();
        for _ in 0..3 {
            let (gate, running, most, wait) = (gate.clone(), running.clone(), most.clone(), wait.clone());
            cuts.push(tokio::spawn(async move {
                gate.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let _ = wait.lock().unwrap().recv();
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        // Three cuts in the queue (one running): the fourth is turned away at once.
        while gate.queued.load(Ordering::SeqCst) < 3 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(gate.run(|| ()).await, Err(AppError::Unavailable(_))));
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        for c in cuts {
            c.await.unwrap().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1, "never more cuts at once than cores");
        assert_eq!(gate.queued.load(Ordering::SeqCst), 0);
        // And the queue is free again.
        assert!(gate.run(|| ()).await.is_ok());
    }
}
