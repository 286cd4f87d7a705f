//! Bearer-token authentication and role checks.
//!
//! [`authenticate`] runs as a middleware on every route but `/health`: it resolves the
//! `Authorization: Bearer` header to a role once (401 for a malformed, unknown or revoked token,
//! even on a public endpoint, and for no token at all when the service is `--private`) and
//! stores a [`Caller`] in the request. Handlers then ask for the role they need with
//! [`Require`], e.g. `Require<Manager>` (403 when the caller's role is too low).

use std::marker::PhantomData;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{AppError, AppState};
use crate::core::AccessRole;

/// Who is calling: `None` for an anonymous request, else the role of a valid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller(pub Option<AccessRole>);

/// The bearer token of a request: `Ok(None)` without an `Authorization` header, an error when the
/// header is not `Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Result<Option<String>, AppError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let malformed = || AppError::Unauthorized("malformed Authorization header; expected 'Bearer <token>'".into());
    let text = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = text.trim().split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(char::is_whitespace) {
        return Err(malformed());
    }
    Ok(Some(token.to_string()))
}

/// Resolve the caller of a request from its headers (one indexed lookup, off the async
/// workers). The token itself is never logged.
async fn resolve(headers: &HeaderMap, state: &AppState) -> Result<Caller, AppError> {
    let Some(token) = bearer(headers)? else {
        if state.config.private {
            return Err(AppError::Unauthorized("this service is private: send 'Authorization: Bearer <token>'".into()));
        }
        return Ok(Caller(None));
    };
    let store = state.store.clone();
    // A read connection of its own: never waits for a write in progress.
    let info = tokio::task::spawn_blocking(move || crate::app::tokens::authenticate(&*store, &token)).await??;
    match info {
        Some(info) => Ok(Caller(Some(info.role))),
        None => Err(AppError::Unauthorized("invalid or revoked token".into())),
    }
}

/// Middleware: authenticate every request (except `/health`, for probes) and store its
/// [`Caller`].
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if req.uri().path() == "/health" {
        return next.run(req).await;
    }
    match resolve(req.headers(), &state).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(*caller);
        }
        // Not behind the middleware (a router assembled without it): resolve here.
        let caller = resolve(&parts.headers, state).await?;
        parts.extensions.insert(caller);
        Ok(caller)
    }
}

/// A minimum role, as a type: [`Recruiter`] or [`Manager`] (a viewer token is only needed
/// with `--private`, which the middleware enforces).
pub trait MinRole {
    /// The least role allowed.
    const ROLE: AccessRole;
}

/// Needs at least a recruiter token (reads people).
#[derive(Debug)]
pub struct Recruiter;
/// Needs a manager token (writes people, imports).
#[derive(Debug)]
pub struct Manager;

impl MinRole for Recruiter {
    const ROLE: AccessRole = AccessRole::Recruiter;
}
impl MinRole for Manager {
    const ROLE: AccessRole = AccessRole::Manager;
}

/// Extractor that admits callers with at least role `R`: 401 for anonymous callers, 403 for a
/// lower role.
#[derive(Debug)]
pub struct Require<R: MinRole>(PhantomData<R>);

impl<R: MinRole> FromRequestParts<AppState> for Require<R> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller(Some(role)) if role >= R::ROLE => Ok(Require(PhantomData)),
            Caller(Some(role)) => {
                Err(AppError::Forbidden(format!("this needs a {} token; yours is a {role} token", R::ROLE)))
            }
            Caller(None) => Err(AppError::Unauthorized(format!(
                "this needs a {} token: send 'Authorization: Bearer <token>'",
                R::ROLE
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
        h
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer(&HeaderMap::new()).unwrap(), None);
        assert_eq!(bearer(&headers(b"Bearer blg_abc")).unwrap().as_deref(), Some("blg_abc"));
        assert_eq!(bearer(&headers(b"bearer  blg_abc ")).unwrap().as_deref(), Some("blg_abc"));
        for bad in [&b"Basic dXNlcjpwYXNz"[..], b"Bearer", b"Bearer ", b"blg_abc", b"Bearer a b", b"Bearer \xff"] {
            assert!(matches!(bearer(&headers(bad)), Err(AppError::Unauthorized(_))), "{bad:?}");
        }
    }
}
