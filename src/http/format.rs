//! Query strings and content negotiation: the `f` parameter first, then the `Accept` header.

use axum::extract::{FromRequestParts, Query};
use axum::http::HeaderMap;
use axum::http::header::ACCEPT;
use axum::http::request::Parts;

use super::AppError;

/// Media type of GeoJSON.
pub const GEOJSON: &str = "application/geo+json";
/// Media type of JSON.
pub const JSON: &str = "application/json";
/// Media type of CSV.
pub const CSV: &str = "text/csv; charset=utf-8";

/// A representation of features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/geo+json` (the default).
    GeoJson,
    /// The same body as `application/json`.
    Json,
    /// `text/csv`.
    Csv,
}

impl Format {
    /// The Content-Type.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::GeoJson => GEOJSON,
            Format::Json => JSON,
            Format::Csv => CSV,
        }
    }

    /// The value of `f` that selects it.
    pub fn f(self) -> &'static str {
        match self {
            Format::GeoJson => "geojson",
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }

    fn from_f(f: &str) -> Option<Format> {
        match f {
            "geojson" => Some(Format::GeoJson),
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

/// Choose a format for features: `f` wins, else the best `Accept` entry, else GeoJSON.
pub fn negotiate(f: Option<&str>, headers: &HeaderMap) -> Result<Format, AppError> {
    if let Some(f) = f {
        return Format::from_f(f)
            .ok_or_else(|| AppError::BadRequest(format!("f={f:?}: expected one of json, geojson, csv")));
    }
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(Format::GeoJson);
    };
    let mut entries: Vec<(f32, usize, &str)> = accept
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut it = part.split(';');
            let media = it.next()?.trim();
            let q = it
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (q > 0.0 && !media.is_empty()).then_some((q, i, media))
        })
        .collect();
    if entries.is_empty() {
        return Ok(Format::GeoJson);
    }
    entries.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, media) in &entries {
        let m = media.to_ascii_lowercase();
        match m.as_str() {
            "application/geo+json" | "application/*" | "*/*" => return Ok(Format::GeoJson),
            "application/json" => return Ok(Format::Json),
            "text/csv" | "text/*" => return Ok(Format::Csv),
            _ => {}
        }
    }
    Err(AppError::NotAcceptable(format!(
        "none of the accepted types ({accept}) is available; use application/geo+json, application/json or text/csv"
    )))
}

/// The query string as name/value pairs, in order, with each name at most once.
#[derive(Debug, Clone, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// Refuse every parameter not in `allowed`, naming it.
    pub fn only(&self, allowed: &[&str]) -> Result<(), AppError> {
        match self.0.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            Some((k, _)) => Err(AppError::BadRequest(format!(
                "unknown query parameter '{k}'; allowed here: {}",
                if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") }
            ))),
            None => Ok(()),
        }
    }

    /// The value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| AppError::BadRequest(format!("malformed query string: {}", e.body_text())))?;
        for (i, (k, _)) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|(earlier, _)| earlier == k) {
                return Err(AppError::BadRequest(format!("query parameter '{k}' is given more than once")));
            }
        }
        Ok(QueryPairs(pairs))
    }
}

/// Check `f` for resources that only have a JSON representation.
pub fn json_only(q: &QueryPairs) -> Result<(), AppError> {
    match q.get("f") {
        None | Some("json") => Ok(()),
        Some(f) => Err(AppError::BadRequest(format!("f={f:?}: this resource is only available as f=json"))),
    }
}
