//! `GET /health` for load balancers and probes.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

/// The service is up and serving this snapshot.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
    /// Blocks in the served catchment.
    pub blocks: u64,
}

/// Liveness and the number of blocks served.
#[utoipa::path(get, path = "/health", tag = "Service", operation_id = "health",
    responses((status = 200, description = "The service is up", body = Health)))]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health { status: "ok", blocks: state.layers().coverage.summary.blocks })
}
