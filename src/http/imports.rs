//! Imports over HTTP (manager token): block boundaries, resources and indicators, with the same
//! validation and all-or-nothing rules as `belong import`. The body is written to a private
//! temporary folder and handed to the same use case the command line runs, off the async
//! workers; the layers are republished before answering.

use std::path::{Path, PathBuf};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use serde_json::Value;

use super::auth::{Manager, Require};
use super::format::QueryPairs;
use super::people::{body_bytes, media_type};
use super::{AppError, AppState};
use crate::app::{self, BlockImport, IndicatorImport, ResourceImport};
use crate::ingest::blocks::BlockReadOptions;
use crate::ingest::resources::ResourceOptions;
use crate::ingest::{Crs, IngestError, Rejection};
use crate::store::Store;

/// A request body and its media type, read whole (the body-limit layer caps it: 413).
#[derive(Debug)]
pub struct Upload {
    media_type: Option<String>,
    body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Upload {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let media_type = media_type(req.headers());
        Ok(Upload { media_type, body: body_bytes(req, state).await? })
    }
}

impl Upload {
    /// Write the body to a temporary file with the extension of its media type, one of
    /// `accepted` (`(media type, extension)`); 415 for any other media type.
    pub fn save(&self, accepted: &[(&str, &str)]) -> Result<TempUpload, AppError> {
        let found = self.media_type.as_deref().unwrap_or("");
        let Some((_, ext)) = accepted.iter().find(|(m, _)| *m == found) else {
            let list: Vec<&str> = accepted.iter().map(|(m, _)| *m).collect();
            let found = if found.is_empty() { "no Content-Type".to_string() } else { format!("Content-Type {found}") };
            return Err(AppError::UnsupportedMediaType(format!("{found}; this endpoint reads {}", list.join(", "))));
        };
        TempUpload::write(&self.body, ext)
    }

    /// [`Upload::save`] with one extension for every accepted media type.
    pub fn save_as(&self, accepted: &[&str], ext: &str) -> Result<TempUpload, AppError> {
        let pairs: Vec<(&str, &str)> = accepted.iter().map(|m| (*m, ext)).collect();
        self.save(&pairs)
    }
}

/// An uploaded body in a private temporary folder, removed on drop.
#[derive(Debug)]
pub struct TempUpload {
    dir: PathBuf,
    path: PathBuf,
    name: String,
}

impl TempUpload {
    fn write(body: &[u8], ext: &str) -> Result<TempUpload, AppError> {
        let internal = |e: std::io::Error| AppError::Internal(format!("saving the upload: {e}"));
        let random: u128 = rand::random();
        let dir = std::env::temp_dir().join(format!("belong-upload-{random:032x}"));
        let mut builder = std::fs::DirBuilder::new();
        // Uploads hold personal data: readable by this user only.
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(internal)?;
        let name = format!("upload.{ext}");
        let upload = TempUpload { path: dir.join(&name), dir, name };
        std::fs::write(&upload.path, body).map_err(internal)?;
        Ok(upload)
    }

    /// Where the body is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `text` with the temporary path replaced by the upload's short name (`upload.csv`).
    fn clean(&self, text: &str) -> String {
        text.replace(&self.path.display().to_string(), &self.name)
    }
}

impl Drop for TempUpload {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Rejections naming the upload, not the temporary file.
fn clean_rejections(rejections: Vec<Rejection>, file: &TempUpload) -> Vec<Rejection> {
    rejections.into_iter().map(|r| Rejection { file: file.name.clone(), reason: file.clean(&r.reason), ..r }).collect()
}

/// Map a failed import: bad input is 422 (listing the rejected records of an all-or-nothing
/// import), anything else is ours (500).
pub fn import_error(e: app::AppError, file: &TempUpload) -> AppError {
    match e {
        app::AppError::Ingest(IngestError::Invalid { rejections, .. }) => AppError::Unprocessable {
            detail: format!("{}: {} invalid record(s); nothing was imported", file.name, rejections.len()),
            rejected: clean_rejections(rejections, file),
        },
        app::AppError::Ingest(other) => {
            AppError::Unprocessable { detail: file.clean(&other.to_string()), rejected: Vec::new() }
        }
        other => AppError::App(other),
    }
}

/// Run `f` on the store off the async workers.
pub async fn run_on_store<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn Store) -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(&*store)).await?
}

fn parse_crs(q: &QueryPairs, name: &str) -> Result<Option<Crs>, AppError> {
    q.get(name).map(Crs::parse).transpose().map_err(|e| AppError::BadRequest(format!("{name}: {e}")))
}

fn parse_flag(q: &QueryPairs, name: &str) -> Result<bool, AppError> {
    match q.get(name) {
        None | Some("false") => Ok(false),
        Some("true") | Some("") => Ok(true),
        Some(other) => Err(AppError::BadRequest(format!("{name}={other:?}: expected true or false"))),
    }
}

/// The summary of an import, with the upload's name in place of the temporary path.
fn summary<T: serde::Serialize>(result: &T, file: &TempUpload) -> Result<Json<Value>, AppError> {
    let mut v = serde_json::to_value(result).map_err(|e| AppError::Internal(format!("encoding the summary: {e}")))?;
    if let Some(list) = v.get_mut("rejected").and_then(Value::as_array_mut) {
        for r in list {
            r["file"] = Value::from(file.name.as_str());
            if let Some(reason) = r["reason"].as_str() {
                r["reason"] = Value::from(file.clean(reason));
            }
        }
    }
    Ok(Json(v))
}

const ZIP: &[(&str, &str)] = &[
    ("application/zip", "zip"),
    ("application/x-zip-compressed", "zip"),
    ("application/geo+json", "geojson"),
    ("application/json", "geojson"),
];
const CSV_TYPES: &[&str] = &["text/csv", "application/csv", "text/plain"];

/// How to read an uploaded polygon layer (blocks or areas), from the query.
fn polygon_options(q: &QueryPairs) -> Result<BlockReadOptions, AppError> {
    Ok(BlockReadOptions {
        id_field: q.get("id_field").map(str::to_string),
        name_field: q.get("name_field").map(str::to_string),
        source_crs: parse_crs(q, "source_crs")?,
        skip_invalid: parse_flag(q, "skip_invalid")?,
    })
}

/// Replace the catchment with uploaded block boundaries (manager token). All or nothing: on any
/// invalid feature (without `skip_invalid`) the stored catchment is unchanged.
#[utoipa::path(post, path = "/imports/blocks", tag = "Imports", operation_id = "importBlocks",
    params(("id_field" = Option<String>, Query, description = "Attribute holding block ids (default: detected)"),
           ("name_field" = Option<String>, Query, description = "Attribute holding block names"),
           ("source_crs" = Option<String>, Query, description = "CRS of the coordinates, overriding the .prj"),
           ("skip_invalid" = Option<bool>, Query, description = "Import the valid blocks and list the others")),
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
    q: QueryPairs,
    upload: Upload,
) -> Result<Json<Value>, AppError> {
    q.only(&["id_field", "name_field", "source_crs", "skip_invalid"])?;
    let opts = polygon_options(&q)?;
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
           ("skip_invalid" = Option<bool>, Query, description = "Import the valid areas and list the others")),
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
    q: QueryPairs,
    upload: Upload,
) -> Result<Json<Value>, AppError> {
    q.only(&["name", "id_field", "name_field", "source_crs", "skip_invalid"])?;
    let layer = q.get("name").ok_or_else(|| AppError::BadRequest("name is required: the layer's name".into()))?;
    crate::core::area::check_layer_name(layer).map_err(AppError::BadRequest)?;
    let layer = layer.to_string();
    let opts = polygon_options(&q)?;
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
