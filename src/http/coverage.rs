//! Coverage summaries: the headline numbers and the ranked list of uncovered blocks, from the
//! snapshot (the same numbers as `belong coverage`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::format::{CSV, QueryPairs, json_only};
use super::{AppError, AppState};
use crate::app::layers::UncoveredBlock;

/// Headline coverage numbers (as in `belong coverage --format json`'s `summary`).
#[derive(Debug, Serialize, ToSchema)]
pub struct CoverageSummaryDoc {
    /// Blocks in the catchment.
    pub blocks: u64,
    /// Blocks with at least `target` active ambassadors.
    pub covered_blocks: u64,
    /// `100 * covered_blocks / blocks`, two decimals.
    pub coverage_pct: f64,
    /// Ambassadors a block needs to count as covered.
    pub target: u32,
    /// Residents living in the catchment.
    pub residents: u64,
    /// Active ambassadors covering a block.
    pub ambassadors: u64,
    /// Residents whose block is not covered.
    pub residents_in_uncovered_blocks: u64,
    /// People whose location is in no block.
    pub people_outside: u64,
}

/// One uncovered block.
#[derive(Debug, Serialize, ToSchema)]
pub struct UncoveredRow {
    /// Block id.
    pub block_id: String,
    /// Block name.
    #[schema(nullable)]
    pub name: Option<String>,
    /// Residents living in the block.
    pub residents: u64,
    /// Active ambassadors (fewer than the target).
    pub ambassadors: u64,
    /// 1 for the block with the most residents.
    pub rank: u64,
}

/// The coverage summary.
#[utoipa::path(get, path = "/coverage", tag = "Coverage", operation_id = "getCoverage",
    params(("f" = Option<String>, Query, description = "Format: json")),
    responses((status = 200, description = "Headline coverage numbers", body = CoverageSummaryDoc),
              (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn summary(State(state): State<AppState>, q: QueryPairs) -> Result<Response, AppError> {
    q.only(&["f"])?;
    json_only(&q)?;
    // Serialized from the core type itself, so the numbers match the command line's exactly.
    Ok(Json(&state.layers().coverage.summary).into_response())
}

/// Uncovered blocks, most residents first.
#[utoipa::path(get, path = "/coverage/uncovered", tag = "Coverage", operation_id = "getUncoveredBlocks",
    params(("f" = Option<String>, Query, description = "Format: json (default) or csv")),
    responses((status = 200, description = "Uncovered blocks ranked by residents (desc), then block id", body = Vec<UncoveredRow>),
              (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn uncovered(State(state): State<AppState>, q: QueryPairs) -> Result<Response, AppError> {
    q.only(&["f"])?;
    let rows: Vec<UncoveredBlock> = state.layers().uncovered();
    match q.get("f") {
        None | Some("json") => Ok(Json(rows).into_response()),
        Some("csv") => {
            let internal = |e: csv::Error| AppError::Internal(format!("writing CSV: {e}"));
            let mut w = csv::Writer::from_writer(Vec::new());
            for r in &rows {
                w.serialize(r).map_err(internal)?;
            }
            if rows.is_empty() {
                w.write_record(["block_id", "name", "residents", "ambassadors", "rank"]).map_err(internal)?;
            }
            let body = w.into_inner().map_err(|e| AppError::Internal(format!("writing CSV: {e}")))?;
            let mut res = body.into_response();
            res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CSV));
            Ok(res)
        }
        Some(f) => Err(AppError::BadRequest(format!("f={f:?}: expected json or csv"))),
    }
}
