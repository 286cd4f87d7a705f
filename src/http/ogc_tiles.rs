//! OGC API – Tiles (Core, TileSet, TileSetsList, GeoData and dataset tile sets, MVT) over the
//! same vector tiles as `/tiles/...`: the tile matrix set at `/tileMatrixSets`, each tiled
//! collection's tile sets at `/collections/{id}/tiles`, and every layer together at `/tiles`.
//!
//! Handlers only translate: the grid, the limits and the layer descriptions come from
//! [`crate::tiles`], the tiles themselves from the shared tile cache ([`super::tiles::serve`]),
//! so a tile has the same bytes and ETag whichever URL asked for it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::format::{self, JSON, QueryPairs};
use super::ogc::{CRS84, Link};
use super::tiles::NO_CACHE;
use super::{AppError, AppState, BaseUrl};
use crate::app::layers::Layers;
use crate::core::text::{QUOTED, clip};
use crate::tiles::{
    DATA_MAX_ZOOM, EPSG_3857, MAX_ZOOM, MEDIA_TYPE, TileId, TileIdError, TileMatrixLimits, TileSetLayer,
    WEB_MERCATOR_QUAD, WEB_MERCATOR_QUAD_URI, limits, web_mercator_quad,
};

/// Link relation of a resource to its vector tile sets.
pub const REL_TILESETS_VECTOR: &str = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector";
/// Link relation of a tile set to its tile matrix set.
const REL_TILING_SCHEME: &str = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme";
/// Link relation of the landing page to the tile matrix sets.
pub const REL_TILING_SCHEMES: &str = "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes";

/// The OGC API – Tiles conformance classes implemented.
pub const CONFORMANCE: [&str; 6] = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/dataset-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
];

/// The zooms tiles are cut at and announced for (clients over-zoom beyond, up to
/// [`MAX_ZOOM`], which the tile routes still answer).
const ZOOMS: std::ops::RangeInclusive<u8> = 0..=DATA_MAX_ZOOM;

/// The list of tile matrix sets.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TileMatrixSets {
    /// `self`.
    pub links: Vec<Link>,
    /// The one served.
    pub tile_matrix_sets: Vec<TileMatrixSetRef>,
}

/// A tile matrix set in the list.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TileMatrixSetRef {
    /// `WebMercatorQuad`.
    pub id: &'static str,
    /// Human title.
    pub title: &'static str,
    /// Its URI in the OGC register.
    pub uri: &'static str,
    /// Its CRS.
    pub crs: &'static str,
    /// `self` (the definition).
    pub links: Vec<Link>,
}

/// A list of tile sets.
#[derive(Debug, Serialize)]
pub struct TileSets {
    /// `self`, and the collection for a collection's list.
    pub links: Vec<Link>,
    /// One per tile matrix set (one).
    pub tilesets: Vec<TileSetRef>,
}

/// A tile set in a list.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TileSetRef {
    /// Human title.
    pub title: String,
    /// Always `vector`.
    pub data_type: &'static str,
    /// The CRS of the tiles.
    pub crs: &'static str,
    /// The tile matrix set's URI.
    #[serde(rename = "tileMatrixSetURI")]
    pub tile_matrix_set_uri: &'static str,
    /// `self` (the tile set metadata) and the tiling scheme.
    pub links: Vec<Link>,
}

/// Tile set metadata.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TileSet {
    /// Human title.
    pub title: String,
    /// What the tiles show.
    pub description: String,
    /// Always `vector`.
    pub data_type: &'static str,
    /// The CRS of the tiles.
    pub crs: &'static str,
    /// The tile matrix set's URI.
    #[serde(rename = "tileMatrixSetURI")]
    pub tile_matrix_set_uri: &'static str,
    /// The tiles that hold data, per zoom served.
    pub tile_matrix_set_limits: Vec<TileMatrixLimits>,
    /// The extent of the data (absent when there is none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bounding_box: Option<BoundingBox>,
    /// The layers in each tile.
    pub layers: Vec<TileSetLayer>,
    /// `self`, the tiling scheme, the tile URL template (`item`) and the data.
    pub links: Vec<Link>,
}

/// A bounding box in tile set metadata.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BoundingBox {
    /// `[west, south]`.
    pub lower_left: [f64; 2],
    /// `[east, north]`.
    pub upper_right: [f64; 2],
    /// CRS84.
    pub crs: &'static str,
}

/// The tile matrix sets tiles are served on.
#[utoipa::path(get, path = "/tileMatrixSets", tag = "Tiles", operation_id = "getTileMatrixSetsList",
    params(("f" = Option<String>, Query, description = "Format: json")),
    responses((status = 200, description = "The tile matrix sets (WebMercatorQuad)", content_type = "application/json"),
              (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn tile_matrix_sets(BaseUrl(base): BaseUrl, q: QueryPairs) -> Result<Response, AppError> {
    q.only(&["f"])?;
    format::json_only(&q)?;
    let tms = web_mercator_quad();
    let url = format!("{base}/tileMatrixSets");
    Ok(json(TileMatrixSets {
        links: vec![Link::new(url.clone(), "self", JSON, "This document")],
        tile_matrix_sets: vec![TileMatrixSetRef {
            id: tms.id,
            title: tms.title,
            uri: tms.uri,
            crs: tms.crs,
            links: vec![Link::new(format!("{url}/{}", tms.id), "self", JSON, "The definition")],
        }],
    }))
}

/// A tile matrix set definition (OGC 2D Tile Matrix Set).
#[utoipa::path(get, path = "/tileMatrixSets/{tileMatrixSetId}", tag = "Tiles", operation_id = "getTileMatrixSet",
    params(("tileMatrixSetId" = String, Path, description = "WebMercatorQuad"),
           ("f" = Option<String>, Query, description = "Format: json")),
    responses((status = 200, description = "The tile matrix set", content_type = "application/json"),
              (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such tile matrix set", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn tile_matrix_set(Path(id): Path<String>, q: QueryPairs) -> Result<Response, AppError> {
    q.only(&["f"])?;
    format::json_only(&q)?;
    tile_matrix_set_id(&id)?;
    Ok(json(web_mercator_quad()))
}

/// The tile sets of one collection.
#[utoipa::path(get, path = "/collections/{collectionId}/tiles", tag = "Tiles", operation_id = "getCollectionTileSets",
    params(("collectionId" = String, Path, description = "blocks, resources, school-readiness or resource-access"),
           ("f" = Option<String>, Query, description = "Format: json")),
    responses((status = 200, description = "The collection's vector tile sets", content_type = "application/json"),
              (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such collection, or one without tiles", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn collection_tilesets(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    q: QueryPairs,
) -> Result<Response, AppError> {
    q.only(&["f"])?;
    format::json_only(&q)?;
    let layers = state.layers();
    let title = tiled_collection(&layers, &id)?.title;
    let url = format!("{base}/collections/{id}");
    Ok(json(tilesets(&base, &format!("{url}/tiles"), title, Some(&url))))
}

/// Tile set metadata of one collection: the zooms, the tiles with data, the layer, the tile URL
/// template.
#[utoipa::path(get, path = "/collections/{collectionId}/tiles/{tileMatrixSetId}", tag = "Tiles", operation_id = "describeCollectionTileSet",
    params(("collectionId" = String, Path, description = "blocks, resources, school-readiness or resource-access"),
           ("tileMatrixSetId" = String, Path, description = "WebMercatorQuad"),
           ("f" = Option<String>, Query, description = "Format: json")),
    responses((status = 200, description = "Tile set metadata", content_type = "application/json"),
              (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such collection, tiled collection or tile matrix set", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn collection_tileset(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path((id, tms)): Path<(String, String)>,
    q: QueryPairs,
) -> Result<Response, AppError> {
    q.only(&["f"])?;
    format::json_only(&q)?;
    let layers = tiled(&state).await?;
    let c = tiled_collection(&layers, &id)?;
    tile_matrix_set_id(&tms)?;
    let url = format!("{base}/collections/{id}");
    let mut doc = tileset(&layers, &[c.id], &base, &format!("{url}/tiles"), c.title, c.description);
    doc.links.push(Link::new(url, "collection", JSON, "The collection"));
    Ok(json(doc))
}

/// One vector tile of one collection: the bytes, ETag and caching of `/tiles/{id}/{z}/{x}/{y}.mvt`.
#[utoipa::path(get, path = "/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
    tag = "Tiles", operation_id = "getCollectionTile",
    params(("collectionId" = String, Path, description = "blocks, resources, school-readiness or resource-access"),
           ("tileMatrixSetId" = String, Path, description = "WebMercatorQuad"),
           ("tileMatrix" = u32, Path, description = "Zoom, 0 to 24"),
           ("tileRow" = u32, Path, description = "Row, 0 at the top (XYZ y)"),
           ("tileCol" = u32, Path, description = "Column (XYZ x)"),
           ("datetime" = Option<String>, Query, description = "A day (YYYY-MM-DD): the blocks layer with its counts at the end of that day (UTC), as /coverage/history counts them")),
    responses((status = 200, description = "Mapbox Vector Tile 2.1", content_type = "application/vnd.mapbox-vector-tile"),
              (status = 204, description = "No feature in this tile"),
              (status = 304, description = "Unchanged since the ETag sent in If-None-Match"),
              (status = 400, description = "Bad tile coordinates", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such collection or tile matrix set, or a tile outside the grid", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn collection_tile(
    State(state): State<AppState>,
    Path((id, tms, z, row, col)): Path<(String, String, String, String, String)>,
    headers: HeaderMap,
    q: QueryPairs,
) -> Result<Response, AppError> {
    q.only(&["datetime"])?;
    let day = super::features::tile_day(&q)?;
    let layers = state.layers();
    let c = tiled_collection(&layers, &id)?;
    tile_matrix_set_id(&tms)?;
    let tile = tile_id(&z, &row, &col)?;
    super::tiles::serve(&state, &[c.id], tile, day, &headers).await
}

/// The dataset's tile sets: every layer in one tile.
#[utoipa::path(get, path = "/tiles", tag = "Tiles", operation_id = "getDatasetTileSets",
    params(("f" = Option<String>, Query, description = "Format: json")),
    responses((status = 200, description = "The dataset's vector tile sets", content_type = "application/json"),
              (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn dataset_tilesets(BaseUrl(base): BaseUrl, q: QueryPairs) -> Result<Response, AppError> {
    q.only(&["f"])?;
    format::json_only(&q)?;
    Ok(json(tilesets(&base, &format!("{base}/tiles"), DATASET_TITLE, None)))
}

/// Tile set metadata of the dataset: every layer in one tile.
#[utoipa::path(get, path = "/tiles/WebMercatorQuad", tag = "Tiles", operation_id = "describeDatasetTileSet",
    params(("f" = Option<String>, Query, description = "Format: json")),
    responses((status = 200, description = "Tile set metadata", content_type = "application/json"),
              (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn dataset_tileset(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    q: QueryPairs,
) -> Result<Response, AppError> {
    q.only(&["f"])?;
    format::json_only(&q)?;
    let layers = tiled(&state).await?;
    let names = layers.tile_layer_ids();
    let description = "Every layer in one tile: blocks with coverage, resources, school readiness and resource access.";
    let mut doc = tileset(&layers, &names, &base, &format!("{base}/tiles"), DATASET_TITLE, description);
    doc.links.push(Link::new(format!("{base}/collections"), "data", JSON, "The collections"));
    Ok(json(doc))
}

/// One vector tile with every layer: the bytes, ETag and caching of
/// `/tiles/{all layers}/{z}/{x}/{y}.mvt`.
#[utoipa::path(get, path = "/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}", tag = "Tiles", operation_id = "getDatasetTile",
    params(("tileMatrix" = u32, Path, description = "Zoom, 0 to 24"),
           ("tileRow" = u32, Path, description = "Row, 0 at the top (XYZ y)"),
           ("tileCol" = u32, Path, description = "Column (XYZ x)"),
           ("datetime" = Option<String>, Query, description = "A day (YYYY-MM-DD): the blocks layer with its counts at the end of that day (UTC), as /coverage/history counts them")),
    responses((status = 200, description = "Mapbox Vector Tile 2.1, one layer per collection", content_type = "application/vnd.mapbox-vector-tile"),
              (status = 204, description = "No feature in this tile"),
              (status = 304, description = "Unchanged since the ETag sent in If-None-Match"),
              (status = 400, description = "Bad tile coordinates", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "A tile outside the grid", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn dataset_tile(
    State(state): State<AppState>,
    Path((z, row, col)): Path<(String, String, String)>,
    headers: HeaderMap,
    q: QueryPairs,
) -> Result<Response, AppError> {
    q.only(&["datetime"])?;
    let day = super::features::tile_day(&q)?;
    let tile = tile_id(&z, &row, &col)?;
    let layers = state.layers();
    super::tiles::serve(&state, &layers.tile_layer_ids(), tile, day, &headers).await
}

const DATASET_TITLE: &str = "belong: every layer";

/// The snapshot with its tile layers built (off the async workers: the first time after an
/// import projects every feature).
async fn tiled(state: &AppState) -> Result<Arc<Layers>, AppError> {
    let layers = state.layers();
    if layers.tiles_if_built().is_none() {
        let building = layers.clone();
        tokio::task::spawn_blocking(move || {
            building.tiles();
        })
        .await?;
    }
    Ok(layers)
}

/// A collection that is a tile layer, or a 404 saying why not.
fn tiled_collection<'a>(layers: &'a Layers, id: &str) -> Result<&'a crate::app::layers::Collection, AppError> {
    if !layers.tile_layer_ids().contains(&id) {
        // An unknown collection gets the list of collections; a known one without tiles, this.
        super::ogc::find(layers, id)?;
        return Err(AppError::NotFound(format!("collection '{}' has no tiles", clip(id, QUOTED))));
    }
    super::ogc::find(layers, id)
}

fn tile_matrix_set_id(id: &str) -> Result<(), AppError> {
    if id == WEB_MERCATOR_QUAD {
        return Ok(());
    }
    Err(AppError::NotFound(format!(
        "no tile matrix set '{}'; tiles are served on {WEB_MERCATOR_QUAD} only",
        clip(id, QUOTED)
    )))
}

/// `{tileMatrix}/{tileRow}/{tileCol}` as a tile: 400 for what is not a number, 404 outside the
/// grid.
fn tile_id(z: &str, row: &str, col: &str) -> Result<TileId, AppError> {
    let number = |name: &str, raw: &str| {
        raw.parse::<u32>()
            .map_err(|_| AppError::BadRequest(format!("{name} '{}' is not a whole number", clip(raw, QUOTED))))
    };
    let (z, row, col) = (number("tileMatrix", z)?, number("tileRow", row)?, number("tileCol", col)?);
    TileId::new(z, col, row).map_err(|e| {
        AppError::NotFound(match e {
            TileIdError::Zoom(z) => {
                format!("no tile matrix {z} in {WEB_MERCATOR_QUAD}: its tile matrices are 0 to {MAX_ZOOM}")
            }
            TileIdError::Outside { z, n, .. } => format!(
                "tile row {row}, column {col} is outside tile matrix {z}: rows and columns go from 0 to {}",
                n - 1
            ),
        })
    })
}

/// The list of tile sets under `url` (`…/tiles`): the WebMercatorQuad one.
fn tilesets(base: &str, url: &str, title: &str, collection: Option<&str>) -> TileSets {
    let mut links = vec![Link::new(url, "self", JSON, "This document")];
    if let Some(c) = collection {
        links.push(Link::new(c, "collection", JSON, "The collection"));
    }
    TileSets {
        links,
        tilesets: vec![TileSetRef {
            title: format!("{title} ({WEB_MERCATOR_QUAD})"),
            data_type: "vector",
            crs: EPSG_3857,
            tile_matrix_set_uri: WEB_MERCATOR_QUAD_URI,
            links: vec![
                Link::new(format!("{url}/{WEB_MERCATOR_QUAD}"), "self", JSON, "Tile set metadata"),
                tiling_scheme_link(base),
            ],
        }],
    }
}

/// Tile set metadata of the tile layers `names` (in tiles) under `url` (`…/tiles`).
fn tileset(layers: &Layers, names: &[&str], base: &str, url: &str, title: &str, description: &str) -> TileSet {
    let source = layers.tiles();
    let described: Vec<_> = names.iter().filter_map(|n| source.layer(n)).collect();
    let bounds = described
        .iter()
        .filter_map(|l| l.bounds)
        .reduce(|a, b| [a[0].min(b[0]), a[1].min(b[1]), a[2].max(b[2]), a[3].max(b[3])]);
    let tiles = format!("{url}/{WEB_MERCATOR_QUAD}");
    TileSet {
        title: title.into(),
        description: description.into(),
        data_type: "vector",
        crs: EPSG_3857,
        tile_matrix_set_uri: WEB_MERCATOR_QUAD_URI,
        tile_matrix_set_limits: limits(bounds, ZOOMS),
        bounding_box: bounds.map(|b| BoundingBox { lower_left: [b[0], b[1]], upper_right: [b[2], b[3]], crs: CRS84 }),
        layers: described.iter().map(|l| TileSetLayer::of(l, ZOOMS)).collect(),
        links: vec![
            Link::new(tiles.clone(), "self", JSON, "This document"),
            tiling_scheme_link(base),
            Link::new(
                format!("{tiles}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"),
                "item",
                MEDIA_TYPE,
                "Mapbox vector tiles",
            )
            .templated(),
        ],
    }
}

fn tiling_scheme_link(base: &str) -> Link {
    Link::new(
        format!("{base}/tileMatrixSets/{WEB_MERCATOR_QUAD}"),
        REL_TILING_SCHEME,
        JSON,
        "The tile matrix set (WebMercatorQuad)",
    )
}

/// A JSON document that clients must revalidate (it changes with imports).
fn json(doc: impl Serialize) -> Response {
    let mut res = Json(doc).into_response();
    res.headers_mut().insert(axum::http::header::CACHE_CONTROL, NO_CACHE);
    res
}
