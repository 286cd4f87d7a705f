//! `GET /coverage/rollup?by=tract|LAYER`: coverage per census tract or per area of an imported
//! layer, from the current snapshot's per-block coverage; `GET /coverage/rollup/layers` lists
//! what `by` takes. Public: block counts only.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::format::{QueryPairs, csv_response, json_only, json_or_csv};
use super::{AppError, AppState, run_on_store};
use crate::app::rollup::{Grouping, RollupError, groupings, rollup_rows};
use crate::core::rollup::RollupRow;

/// A roll-up that cannot be done, as an HTTP error.
pub fn rollup_error(e: RollupError) -> AppError {
    match e {
        RollupError::InvalidLayer(m) => AppError::BadRequest(m),
        e @ RollupError::UnknownLayer { .. } => AppError::NotFound(e.to_string()),
        RollupError::App(e) => AppError::App(e),
    }
}

/// Coverage rolled up by census tract or by the areas of an imported layer.
#[utoipa::path(get, path = "/coverage/rollup", tag = "Coverage", operation_id = "getCoverageRollup",
    params(("by" = String, Query, description = "`tract` (the first 11 characters of 15-digit block ids) or the name \
                of an imported area layer; `GET /coverage/rollup/layers` lists them"),
           ("f" = Option<String>, Query, description = "Format: json (default) or csv")),
    responses((status = 200, description = "One row per tract or area holding at least one block, sorted by `group`; \
                blocks in no tract or area share a last row whose `group` is null (an empty cell in CSV). \
                The rows add up to the catchment totals of `/coverage`.", body = Vec<RollupRow>),
              (status = 400, description = "`by` missing, or a bad parameter", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such layer; the detail lists the available ones", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn rollup(State(state): State<AppState>, q: QueryPairs) -> Result<Response, AppError> {
    q.only(&["by", "f"])?;
    let csv = json_or_csv(&q)?;
    let by = q.get("by").map(str::to_string);
    let (layers, cache) = (state.layers(), state.rollups.clone());
    let rows = run_on_store(&state, move |store| {
        let Some(by) = by else {
            let names: Vec<String> = groupings(store).map_err(rollup_error)?.into_iter().map(|g| g.name).collect();
            return Err(AppError::BadRequest(format!(
                "by is required: by={} (see /coverage/rollup/layers)",
                names.join(" or by=")
            )));
        };
        let mut cache = cache.lock().map_err(|_| AppError::Internal("roll-up cache lock poisoned".into()))?;
        rollup_rows(&mut cache, store, layers.coverage.blocks.iter(), &by).map_err(rollup_error)
    })
    .await?;
    if csv { csv_response(&rows, RollupRow::COLUMNS) } else { Ok(Json(rows).into_response()) }
}

/// What `/coverage/rollup?by=` takes: `tract`, then the imported area layers by name.
#[utoipa::path(get, path = "/coverage/rollup/layers", tag = "Coverage", operation_id = "getCoverageRollupLayers",
    params(("f" = Option<String>, Query, description = "Format: json")),
    responses((status = 200, description = "The groupings", body = Vec<Grouping>),
              (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn layers(State(state): State<AppState>, q: QueryPairs) -> Result<Json<Vec<Grouping>>, AppError> {
    q.only(&["f"])?;
    json_only(&q)?;
    let list = run_on_store(&state, |store| groupings(store).map_err(rollup_error)).await?;
    Ok(Json(list))
}
