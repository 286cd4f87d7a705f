//! `GET /coverage/history`: coverage over time, replayed from the history table (public: block
//! counts only). The service keeps the replay between requests ([`HistoryCache`]), so each
//! request reads only the history rows written since the previous one.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::format::{QueryPairs, csv_response, json_or_csv};
use super::{AppError, AppState, run_on_store};
use crate::app::history::{HistoryPoint, Interval};

/// Coverage at the end of every day (or ISO week) from the first change to today.
#[utoipa::path(get, path = "/coverage/history", tag = "Coverage", operation_id = "getCoverageHistory",
    params(("interval" = Option<String>, Query, description = "day (default) or week (labelled by its Monday; \
                the state at the end of its Sunday, or now for the current week)"),
           ("f" = Option<String>, Query, description = "Format: json (default) or csv")),
    responses((status = 200, description = "One point per day (or week) from the first recorded change to today (UTC), \
                oldest first, without gaps; the last one is the state now. Empty before any change.", body = Vec<HistoryPoint>),
              (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn history(State(state): State<AppState>, q: QueryPairs) -> Result<Response, AppError> {
    q.only(&["interval", "f"])?;
    let csv = json_or_csv(&q)?;
    let interval = match q.get("interval") {
        None => Interval::Day,
        Some(text) => text.parse().map_err(AppError::BadRequest)?,
    };
    let (target, cache) = (state.config.target, state.history.clone());
    let points = run_on_store(&state, move |store| {
        let mut cache = cache.lock().map_err(|_| AppError::Internal("history cache lock poisoned".into()))?;
        Ok(cache.points(store, interval, target, chrono::Utc::now())?)
    })
    .await?;
    if csv { csv_response(&points, HistoryPoint::COLUMNS) } else { Ok(Json(points).into_response()) }
}

/// What replays the history once, so that the first `/coverage/history` request does not wait
/// for it (seconds for a county-sized history, on a read connection of its own: writes and
/// other reads go on meanwhile). Blocking: run it off the async workers.
pub fn warmer(state: &AppState) -> impl FnOnce() + Send + 'static {
    let (target, cache, store) = (state.config.target, state.history.clone(), state.store.clone());
    move || {
        let Ok(mut cache) = cache.lock() else { return };
        if let Err(e) = cache.points(&*store, Interval::Day, target, chrono::Utc::now()) {
            tracing::warn!(error = %e, "replaying the history failed");
        }
    }
}
