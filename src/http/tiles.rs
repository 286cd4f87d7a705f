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
use crate::app::layers::Layers;
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
           ("y" = u32, Path, description = "Row (XYZ: 0 at the top)")),
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
    q.only(&[])?;
    let Some(y) = y_ext.strip_suffix(".mvt").or_else(|| y_ext.strip_suffix(".pbf")) else {
        return Err(AppError::NotFound(format!("no resource at /tiles/{list}/{z}/{x}/{y_ext}: tiles end in .mvt")));
    };
    let id = TileId::new(coordinate("zoom", &z)?, coordinate("x", &x)?, coordinate("y", y)?)
        .map_err(|e| AppError::NotFound(e.to_string()))?;
    let layers = state.layers();
    let names = layer_names(&layers, &list)?;
    serve(&state, &names, id, &headers).await
}

/// Tile `id` of the layers `names` (checked, without duplicates), from the snapshot's tile cache
/// or cut now, with the ETag, `Cache-Control` and compression every tile route shares: the same
/// layers give the same bytes whichever URL asked.
pub(super) async fn serve(
    state: &AppState,
    names: &[&str],
    id: TileId,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let key = names.join(",");
    let live = state.live()?.clone();
    let cached = match live.tile_cache().get(&key, id) {
        Some(hit) => hit,
        // Cutting a dense low-zoom tile can take tens of milliseconds: not on an async worker.
        None => tokio::task::spawn_blocking(move || live.tile(&key, id)).await?,
    };
    Ok(tile_response(&cached, headers))
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
    params(("layers" = String, Path, description = "blocks, resources, school-readiness, or a comma-separated list")),
    responses((status = 200, description = "TileJSON 3.0.0", content_type = "application/json"),
              (status = 404, description = "Unknown layer", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn tilejson(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(file): Path<String>,
    q: QueryPairs,
) -> Result<Response, AppError> {
    q.only(&[])?;
    let Some(list) = file.strip_suffix(".json") else {
        return Err(AppError::NotFound(format!(
            "no resource at /tiles/{file}: TileJSON is at /tiles/{{layers}}.json, tiles at /tiles/{{layers}}/{{z}}/{{x}}/{{y}}.mvt"
        )));
    };
    let layers = state.layers();
    let names = layer_names(&layers, list)?;
    let url = format!("{base}/tiles/{}/{{z}}/{{x}}/{{y}}.mvt", names.join(","));
    let doc = layers.tiles().tilejson(&names, url, 0, DATA_MAX_ZOOM);
    let mut res = Json(doc).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, NO_CACHE);
    Ok(res)
}
