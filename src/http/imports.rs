//! Imports over HTTP (manager token): block boundaries, resources and indicators, with the same
//! validation and all-or-nothing rules as `belong import`. The body is written to a private
//! temporary folder and handed to the same use case the command line runs, off the async
//! workers; the layers are republished before answering.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use serde_json::Value;

use super::auth::{Manager, Require};
use super::format::QueryPairs;
use super::upload::{TempUpload, Upload, import_error, summary};
use super::{AppError, AppState, run_on_store};
use crate::app::{self, BlockImport, IndicatorImport, ResourceImport};
use crate::core::text::quote;
use crate::ingest::blocks::BlockReadOptions;
use crate::ingest::resources::ResourceOptions;
use crate::ingest::{Crs, FeatureFilter, WhereClause};

fn parse_crs(q: &QueryPairs, name: &str) -> Result<Option<Crs>, AppError> {
    q.get(name).map(Crs::parse).transpose().map_err(|e| AppError::BadRequest(format!("{name}: {e}")))
}

fn parse_flag(q: &QueryPairs, name: &str) -> Result<bool, AppError> {
    match q.get(name) {
        None | Some("false") => Ok(false),
        Some("true") | Some("") => Ok(true),
        Some(other) => {
            Err(AppError::BadRequest(format!("{name}={other}: expected true or false", other = quote(other))))
        }
    }
}

const ZIP: &[(&str, &str)] = &[
    ("application/zip", "zip"),
    ("application/x-zip-compressed", "zip"),
    ("application/geo+json", "geojson"),
    ("application/json", "geojson"),
];
const CSV_TYPES: &[&str] = &["text/csv", "application/csv", "text/plain"];

/// The query of a polygon upload: `where=FIELD=VALUE` may be repeated (AND across fields, OR
/// within one field, as `--where`); every other parameter may be given once.
pub struct PolygonQuery {
    pairs: QueryPairs,
    wheres: Vec<WhereClause>,
}

impl<S: Send + Sync> FromRequestParts<S> for PolygonQuery {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let pairs = QueryPairs::parse(&parts.uri, &["where"])?;
        let wheres = pairs
            .all("where")
            .map(|v| v.parse::<WhereClause>().map_err(|e| AppError::BadRequest(format!("where: {e}"))))
            .collect::<Result<_, _>>()?;
        Ok(PolygonQuery { pairs, wheres })
    }
}

/// How to read an uploaded polygon layer (blocks or areas), from the query. `within` is not
/// offered over HTTP: the body is the one file.
fn polygon_options(q: &PolygonQuery, state: &AppState) -> Result<BlockReadOptions, AppError> {
    let p = &q.pairs;
    Ok(BlockReadOptions {
        id_field: p.get("id_field").map(str::to_string),
        name_field: p.get("name_field").map(str::to_string),
        source_crs: parse_crs(p, "source_crs")?,
        skip_invalid: parse_flag(p, "skip_invalid")?,
        filter: FeatureFilter { wheres: q.wheres.clone(), within: None },
        zip: state.config.zip,
    })
}

/// The `where` parameter's documentation, shared by both polygon imports.
const WHERE_DOC: &str = "Keep only features whose attribute FIELD equals VALUE (`where=spa=7`, URL-encoded \
    `where=spa%3D7`); repeatable: different fields must all match, values of one field are alternatives. \
    Field names ignore case; values compare as numbers when both are numbers, else as trimmed text. \
    An unknown field, or a filter that keeps nothing, is 422 and nothing changes.";

/// Replace the catchment with uploaded block boundaries (manager token). All or nothing: on any
/// invalid feature (without `skip_invalid`) the stored catchment is unchanged.
#[utoipa::path(post, path = "/imports/blocks", tag = "Imports", operation_id = "importBlocks",
    params(("id_field" = Option<String>, Query, description = "Attribute holding block ids (default: detected)"),
           ("name_field" = Option<String>, Query, description = "Attribute holding block names"),
           ("source_crs" = Option<String>, Query, description = "CRS of the coordinates, overriding the .prj"),
           ("skip_invalid" = Option<bool>, Query, description = "Import the valid blocks and list the others"),
           ("where" = Option<Vec<String>>, Query, description = WHERE_DOC)),
    request_body(content = Vec<u8>, description = "A zipped shapefile (application/zip) or GeoJSON (application/geo+json)",
        content_type = "application/zip"),
    security(("bearer" = [])),
    responses((status = 200, description = "What changed (as `belong import blocks`)", body = Object),
              (status = 401, description = "No valid token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "Not a manager token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 413, description = "Body too large", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 415, description = "Neither a zip nor GeoJSON", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid file or features (listed in `rejected`); nothing changed", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn blocks(
    _: Require<Manager>,
    State(state): State<AppState>,
    q: PolygonQuery,
    upload: Upload,
) -> Result<Json<Value>, AppError> {
    q.pairs.only(&["id_field", "name_field", "source_crs", "skip_invalid", "where"])?;
    let opts = polygon_options(&q, &state)?;
    let file = upload.save(ZIP)?;
    let (r, file): (BlockImport, TempUpload) = run_on_store(&state, move |store| {
        let r = app::import_blocks(store, file.path(), &opts).map_err(|e| import_error(e, &file))?;
        Ok((r, file))
    })
    .await?;
    state.refresh().await?;
    summary(&r, &file)
}

/// Add or update resources from CSV or GeoJSON points (manager token).
#[utoipa::path(post, path = "/imports/resources", tag = "Imports", operation_id = "importResources",
    params(("category" = Option<String>, Query, description = "Category for every row"),
           ("crs" = Option<String>, Query, description = "CRS of x,y columns or of the GeoJSON"),
           ("id_field" = Option<String>, Query, description = "Field holding the id")),
    request_body(content = String, description = "CSV (text/csv) or GeoJSON (application/geo+json)", content_type = "text/csv"),
    security(("bearer" = [])),
    responses((status = 200, description = "Imported counts and rejected records (as `belong import resources`)", body = Object),
              (status = 401, description = "No valid token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "Not a manager token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 413, description = "Body too large", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 415, description = "Neither CSV nor GeoJSON", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 422, description = "The file cannot be read", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn resources(
    _: Require<Manager>,
    State(state): State<AppState>,
    q: QueryPairs,
    upload: Upload,
) -> Result<Json<Value>, AppError> {
    q.only(&["category", "crs", "id_field"])?;
    let crs = parse_crs(&q, "crs")?;
    let opts = ResourceOptions {
        category: q.get("category").map(str::to_string),
        id_field: q.get("id_field").map(str::to_string),
    };
    let accepted: Vec<(&str, &str)> = CSV_TYPES
        .iter()
        .map(|m| (*m, "csv"))
        .chain([("application/geo+json", "geojson"), ("application/json", "geojson")])
        .collect();
    let file = upload.save(&accepted)?;
    let (r, file): (ResourceImport, TempUpload) = run_on_store(&state, move |store| {
        let r = app::import_resources(store, file.path(), crs.as_ref(), &opts).map_err(|e| import_error(e, &file))?;
        Ok((r, file))
    })
    .await?;
    state.refresh().await?;
    summary(&r, &file)
}

/// Add or update indicator values from a CSV keyed by block id (manager token).
#[utoipa::path(post, path = "/imports/indicators", tag = "Imports", operation_id = "importIndicators",
    request_body(content = String, description = "CSV: block_id, then one column per indicator (and optionally date)", content_type = "text/csv"),
    security(("bearer" = [])),
    responses((status = 200, description = "Imported counts and rejected rows (as `belong import indicators`)", body = Object),
              (status = 401, description = "No valid token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "Not a manager token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 413, description = "Body too large", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 415, description = "Not CSV", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 422, description = "The file cannot be read", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn indicators(
    _: Require<Manager>,
    State(state): State<AppState>,
    q: QueryPairs,
    upload: Upload,
) -> Result<Json<Value>, AppError> {
    q.only(&[])?;
    let file = upload.save_as(CSV_TYPES, "csv")?;
    let (r, file): (IndicatorImport, TempUpload) = run_on_store(&state, move |store| {
        let r = app::import_indicators(store, file.path()).map_err(|e| import_error(e, &file))?;
        Ok((r, file))
    })
    .await?;
    state.refresh().await?;
    summary(&r, &file)
}

/// Replace (or create) the area layer `name` with uploaded polygons, for
/// `/coverage/rollup?by=name` (manager token). All or nothing, as for blocks.
#[utoipa::path(post, path = "/imports/areas", tag = "Imports", operation_id = "importAreas",
    params(("name" = String, Query, description = "Layer name: lowercase letters, digits, - or _ (not `tract`)"),
           ("id_field" = Option<String>, Query, description = "Attribute holding area ids (default: detected)"),
           ("name_field" = Option<String>, Query, description = "Attribute holding area names"),
           ("source_crs" = Option<String>, Query, description = "CRS of the coordinates, overriding the .prj"),
           ("skip_invalid" = Option<bool>, Query, description = "Import the valid areas and list the others"),
           ("where" = Option<Vec<String>>, Query, description = WHERE_DOC)),
    request_body(content = Vec<u8>, description = "A zipped shapefile (application/zip) or GeoJSON (application/geo+json)",
        content_type = "application/zip"),
    security(("bearer" = [])),
    responses((status = 200, description = "What changed (as `belong import areas`)", body = Object),
              (status = 400, description = "Missing or invalid layer name", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 401, description = "No valid token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 403, description = "Not a manager token", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 413, description = "Body too large", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 415, description = "Neither a zip nor GeoJSON", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid file or features (listed in `rejected`); nothing changed", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn areas(
    _: Require<Manager>,
    State(state): State<AppState>,
    q: PolygonQuery,
    upload: Upload,
) -> Result<Json<Value>, AppError> {
    q.pairs.only(&["name", "id_field", "name_field", "source_crs", "skip_invalid", "where"])?;
    let layer = q.pairs.get("name").ok_or_else(|| AppError::BadRequest("name is required: the layer's name".into()))?;
    crate::core::area::check_layer_name(layer).map_err(AppError::BadRequest)?;
    let layer = layer.to_string();
    let opts = polygon_options(&q, &state)?;
    let file = upload.save(ZIP)?;
    let (r, file) = run_on_store(&state, move |store| {
        let r = app::rollup::import_areas(store, file.path(), &layer, &opts).map_err(|e| match e {
            app::rollup::RollupError::App(e) => import_error(e, &file),
            other => super::rollup::rollup_error(other),
        })?;
        Ok((r, file))
    })
    .await?;
    summary(&r, &file)
}
