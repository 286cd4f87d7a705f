//! `GET /health` for load balancers and probes.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

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
}

/// Liveness, readiness and the number of blocks served. Answers from the moment the port is
/// open, before the catchment is loaded.
#[utoipa::path(get, path = "/health", tag = "Service", operation_id = "health",
    responses((status = 200, description = "The service is up (see `ready`)", body = Health)))]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    let layers = state.layers();
    let ready = state.is_ready();
    Json(Health {
        status: if ready { "ok" } else { "starting" },
        ready,
        blocks: layers.coverage.summary.blocks,
        cursor: layers.cursor,
    })
}
