//! `GET /health` for load balancers and probes.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::app::live::DbState;

/// The service is up, and whether it serves yet.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` once the live state is loaded; `starting` before (every other endpoint answers
    /// 503 with `Retry-After` until then).
    pub status: &'static str,
    /// Whether every endpoint is served.
    pub ready: bool,
    /// Blocks in the served catchment (0 while starting).
    pub blocks: u64,
    /// The change-feed position the served state is current to (history `seq`).
    pub cursor: i64,
    /// The database as the service last saw it: `ok`, `unavailable` (reads are served from
    /// memory, writes answer 503 until it is back) or `unknown` (not looked at yet).
    pub database: &'static str,
    /// Why the database is unavailable, and since when (RFC 3339), when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_error: Option<String>,
    /// Since when the database is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_unavailable_since: Option<String>,
}

/// Liveness, readiness and the number of blocks served. Answers from the moment the port is
/// open, before the catchment is loaded.
#[utoipa::path(get, path = "/health", tag = "Service", operation_id = "health",
    responses((status = 200, description = "The service is up (see `ready`)", body = Health)))]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    let layers = state.layers();
    let ready = state.is_ready();
    let (database, database_error, database_unavailable_since) = match state.db_state() {
        DbState::Unknown => ("unknown", None, None),
        DbState::Ok => ("ok", None, None),
        DbState::Unavailable { error, since } => (
            "unavailable",
            Some(crate::core::text::clip(&error, 300)),
            Some(since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        ),
    };
    Json(Health {
        status: if ready { "ok" } else { "starting" },
        ready,
        blocks: layers.coverage.summary.blocks,
        cursor: layers.cursor,
        database,
        database_error,
        database_unavailable_since,
    })
}
