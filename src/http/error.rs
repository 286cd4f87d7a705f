//! The one error type of the HTTP edge. Every 4xx/5xx leaves the service as an RFC 9457
//! `application/problem+json` body (`type`, `title`, `status`, `detail`): 4xx with a precise,
//! user-facing message, 5xx with a generic one (the cause is logged, never sent).

use crate::core::text::{MESSAGE_LINE, clip_lines};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An HTTP request that failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed: bad or unknown parameter, bad value (400).
    #[error("{0}")]
    BadRequest(String),
    /// No such resource (404).
    #[error("{0}")]
    NotFound(String),
    /// The resource does not support the method (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// None of the representations the client accepts is available (406).
    #[error("{0}")]
    NotAcceptable(String),
    /// No valid bearer token where one is needed, or an invalid one (401, with
    /// `WWW-Authenticate: Bearer`).
    #[error("{0}")]
    Unauthorized(String),
    /// A valid token whose role is too low (403).
    #[error("{0}")]
    Forbidden(String),
    /// The resource already exists (409).
    #[error("{0}")]
    Conflict(String),
    /// The request body is larger than the server accepts (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The request target (path and query) is longer than the server reads (414).
    #[error("{0}")]
    UriTooLong(String),
    /// The request headers are larger than the server reads (431).
    #[error("{0}")]
    HeadersTooLarge(String),
    /// The request body is not in a media type this endpoint reads (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request is well-formed but its content is invalid (422); `rejected` lists the
    /// offending records (an all-or-nothing import), and is added to the problem body.
    #[error("{detail}")]
    Unprocessable {
        /// What was wrong.
        detail: String,
        /// The rejected records, if the failure was about records.
        rejected: Vec<crate::ingest::Rejection>,
    },
    /// A use case failed (500); the cause is logged.
    #[error(transparent)]
    App(#[from] crate::app::AppError),
    /// Anything else that is our fault (500); the cause is logged.
    #[error("{0}")]
    Internal(String),
    /// Not able to answer now — starting up, or the database is unreachable — but soon (503,
    /// with `Retry-After`).
    #[error("{0}")]
    Unavailable(String),
}

impl AppError {
    /// The status code this error maps to.
    pub fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AppError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            AppError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            AppError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unavailable(_)
            | AppError::App(crate::app::AppError::Store(crate::store::StoreError::Unavailable(_))) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::App(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> Self {
        AppError::Internal(format!("background task failed: {e}"))
    }
}

impl From<crate::export::ExportError> for AppError {
    fn from(e: crate::export::ExportError) -> Self {
        use crate::export::ExportError as E;
        match e {
            // What the client asked for cannot be held by the format or the CRS: say so.
            E::TooLarge(m) | E::Unsupported(m) => AppError::BadRequest(m),
            E::Transform(_) => AppError::BadRequest(e.to_string()),
            E::Io(_) | E::Sqlite(_) | E::FlatGeobuf(_) | E::Shapefile(_) | E::Zip(_) => {
                AppError::Internal(e.to_string())
            }
        }
    }
}

impl From<crate::app::layers::QueryError> for AppError {
    fn from(e: crate::app::layers::QueryError) -> Self {
        AppError::BadRequest(e.0)
    }
}

impl From<crate::app::layers::FilterError> for AppError {
    fn from(e: crate::app::layers::FilterError) -> Self {
        AppError::BadRequest(e.to_string())
    }
}

/// RFC 9457 problem details.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Problem type URI (`about:blank`: the status code says it all).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary: the HTTP reason phrase.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What exactly was wrong, for people.
    pub detail: String,
}

/// A problem+json response for any status and message.
pub fn problem(status: StatusCode, detail: impl Into<String>) -> Response {
    let body = Problem {
        kind: "about:blank".into(),
        title: status.canonical_reason().unwrap_or("Error").into(),
        status: status.as_u16(),
        // The last guard against a message quoting a huge input (a `.prj` of 100 MiB).
        detail: clip_lines(&detail.into(), MESSAGE_LINE),
    };
    let mut res = (status, Json(body)).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    res
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Says what is going on (starting, database away), never a query or a person.
            let detail = match &self {
                AppError::Unavailable(d) => d.clone(),
                _ => "the database is unavailable; reads are served from memory, writes are not accepted until it is back: try again shortly".into(),
            };
            tracing::warn!(error = %clip_lines(&self.to_string(), MESSAGE_LINE), "answering 503");
            let mut res = problem(status, detail);
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            return res;
        }
        if status.is_server_error() {
            // Only our own error text: store and app errors carry ids at most, never people.
            tracing::error!(error = %clip_lines(&self.to_string(), MESSAGE_LINE), "request failed");
            return problem(status, "internal error; the cause has been logged");
        }
        let detail = self.to_string();
        match self {
            AppError::Unauthorized(_) => {
                let mut res = problem(status, detail);
                res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"belong\""));
                res
            }
            AppError::Unprocessable { rejected, .. } if !rejected.is_empty() => {
                let rejected: Vec<crate::ingest::Rejection> = rejected
                    .into_iter()
                    .map(|r| crate::ingest::Rejection { reason: clip_lines(&r.reason, MESSAGE_LINE), ..r })
                    .collect();
                let body = serde_json::json!({
                    "type": "about:blank",
                    "title": status.canonical_reason().unwrap_or("Error"),
                    "status": status.as_u16(),
                    "detail": clip_lines(&detail, MESSAGE_LINE),
                    "rejected": rejected,
                });
                let mut res = (status, Json(body)).into_response();
                res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
                res
            }
            _ => problem(status, detail),
        }
    }
}

/// Middleware: turn any error response that is not already a problem (timeouts, body limits,
/// axum's own rejections) into one, so every 4xx/5xx has the same shape.
pub async fn problemize(res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_problem =
        res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return res;
    }
    let is_text = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/plain"));
    let (parts, body) = res.into_parts();
    let detail = match status {
        StatusCode::REQUEST_TIMEOUT => "the request took too long and was cancelled".to_string(),
        // The router adds the Allow header after this middleware has run.
        StatusCode::METHOD_NOT_ALLOWED => "this method is not allowed here; see the Allow header".to_string(),
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is larger than the server accepts".to_string(),
        _ if is_text => match axum::body::to_bytes(body, 4096).await {
            Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).into_owned(),
            _ => status.canonical_reason().unwrap_or("error").to_string(),
        },
        _ => status.canonical_reason().unwrap_or("error").to_string(),
    };
    let mut out = problem(status, detail);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// Fallback for unknown routes.
pub async fn not_found(uri: axum::http::Uri) -> AppError {
    AppError::NotFound(format!("no resource at {}", uri.path()))
}
