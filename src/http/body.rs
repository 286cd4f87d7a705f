//! Reading request bodies the same way everywhere: the media type, the whole body (413 past the
//! limit) and JSON bodies whose parse errors never echo personal data.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use super::AppError;

/// A JSON request body: 415 unless the Content-Type is JSON, 400 with the parser's message when
/// malformed (string values in it are blanked: they may be personal data), 413 when too large.
#[derive(Debug)]
pub struct AppJson<T>(pub T);

/// Whether `headers` declare a JSON body (`application/json`, or any `+json` type).
fn is_json(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|m| m == "application/json" || m.ends_with("+json"))
}

/// The lower-cased media type of the Content-Type header, without parameters.
pub(super) fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

/// Blank out quoted text in a serde message, so a misplaced name or email is never echoed.
fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quote: Option<char> = None;
    for c in message.chars() {
        match quote {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '"' || (c == '`' && out.ends_with("variant `")) {
                    quote = Some(if c == '"' { '"' } else { '`' });
                }
            }
        }
    }
    if quote.is_some() {
        out.push('…');
    }
    out
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(AppError::UnsupportedMediaType(
                "the body must be JSON (Content-Type: application/json)".into(),
            ));
        }
        let bytes = body_bytes(req, state).await?;
        serde_json::from_slice(&bytes)
            .map(AppJson)
            .map_err(|e| AppError::BadRequest(format!("malformed JSON body: {}", redact(&e.to_string()))))
    }
}

/// The whole body; 413 when it exceeds the limit.
pub(super) async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, AppError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge("the request body is larger than the server accepts".into())
        } else {
            AppError::BadRequest(format!("cannot read the request body: {}", e.body_text()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::people::NewPerson;

    #[test]
    fn serde_messages_are_redacted() {
        let e = serde_json::from_str::<NewPerson>(r#"{"lon": "Ana Lopez"}"#).unwrap_err().to_string();
        assert!(!redact(&e).contains("Ana"), "{}", redact(&e));
        let e = serde_json::from_str::<NewPerson>(r#"{"nmae": 1}"#).unwrap_err().to_string();
        assert!(redact(&e).contains("nmae"), "{}", redact(&e));
        let e = serde_json::from_str::<NewPerson>(r#"{"role": "ana@x.org"}"#).unwrap_err().to_string();
        assert!(!redact(&e).contains("ana@"), "{}", redact(&e));
    }
}
