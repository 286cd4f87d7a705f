//! `GET /coverage/history`: coverage over time, replayed from the history table (public: block
//! counts only).

use axum::Json;
use axum::extract::State;

use super::format::{QueryPairs, json_only};
use super::imports::run_on_store;
use super::{AppError, AppState};
use crate::app::history::{HistoryPoint, Interval, coverage_history};

/// Coverage at the end of every day (or week) that had a change.
#[utoipa::path(get, path = "/coverage/history", tag = "Coverage", operation_id = "getCoverageHistory",
    params(("interval" = Option<String>, Query, description = "day (default) or week (labelled by its Monday)"),
           ("f" = Option<String>, Query, description = "Format: json")),
    responses((status = 200, description = "Coverage per period, oldest first", body = Vec<HistoryPoint>),
              (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn history(State(state): State<AppState>, q: QueryPairs) -> Result<Json<Vec<HistoryPoint>>, AppError> {
    q.only(&["interval", "f"])?;
    json_only(&q)?;
    let interval = match q.get("interval") {
        None | Some("day") => Interval::Day,
        Some("week") => Interval::Week,
        Some(other) => return Err(AppError::BadRequest(format!("interval={other:?}: expected day or week"))),
    };
    let target = state.config.target;
    let points = run_on_store(&state, move |store| Ok(coverage_history(&*store, interval, target)?)).await?;
    Ok(Json(points))
}
