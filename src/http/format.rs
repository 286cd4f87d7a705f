//! Query strings and content negotiation: the `f` parameter first, then the `Accept` header.

use axum::extract::{FromRequestParts, Query};
use axum::http::HeaderMap;
use axum::http::header::ACCEPT;
use axum::http::request::Parts;

use super::AppError;
use crate::core::text::{QUOTED, clip, quote};
use crate::export::DownloadFormat;

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
    /// A file for GIS: GeoPackage (`gpkg`), FlatGeobuf (`fgb`) or a zipped shapefile (`shp`).
    Download(DownloadFormat),
}

impl Format {
    /// The Content-Type.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::GeoJson => GEOJSON,
            Format::Json => JSON,
            Format::Csv => CSV,
            Format::Download(d) => d.media_type(),
        }
    }

    /// The value of `f` that selects it.
    pub fn f(self) -> &'static str {
        match self {
            Format::GeoJson => "geojson",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Download(DownloadFormat::GeoPackage) => "gpkg",
            Format::Download(DownloadFormat::FlatGeobuf) => "fgb",
            Format::Download(DownloadFormat::Shapefile) => "shp",
        }
    }

    fn from_f(f: &str) -> Option<Format> {
        match f {
            "geojson" => Some(Format::GeoJson),
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            "gpkg" => Some(Format::Download(DownloadFormat::GeoPackage)),
            "fgb" => Some(Format::Download(DownloadFormat::FlatGeobuf)),
            "shp" => Some(Format::Download(DownloadFormat::Shapefile)),
            _ => None,
        }
    }
}

/// Choose a format for features: `f` wins, else the best `Accept` entry, else GeoJSON.
pub fn negotiate(f: Option<&str>, headers: &HeaderMap) -> Result<Format, AppError> {
    if let Some(f) = f {
        return Format::from_f(f).ok_or_else(|| {
            AppError::BadRequest(format!("f={f}: expected one of json, geojson, csv, gpkg, fgb, shp", f = quote(f)))
        });
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
            "application/geopackage+sqlite3" => return Ok(Format::Download(DownloadFormat::GeoPackage)),
            "application/flatgeobuf" => return Ok(Format::Download(DownloadFormat::FlatGeobuf)),
            "application/zip" => return Ok(Format::Download(DownloadFormat::Shapefile)),
            _ => {}
        }
    }
    Err(AppError::NotAcceptable(format!(
        "none of the accepted types ({accept}) is available; use application/geo+json, application/json, text/csv, \
         application/geopackage+sqlite3, application/flatgeobuf or application/zip (a zipped shapefile)"
    )))
}

/// Whether the client prefers HTML to JSON: `text/html` is listed with a quality above that of
/// every JSON type it accepts (`application/json`, `application/*`, `*/*`), or equal to it and
/// listed first. Browsers send `text/html,...,*/*;q=0.8`; GDAL and scripts send JSON or `*/*`.
pub fn prefers_html(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else { return false };
    // The best (quality, position) of each kind.
    let mut html: Option<(f32, usize)> = None;
    let mut json: Option<(f32, usize)> = None;
    for (i, part) in accept.split(',').enumerate() {
        let mut it = part.split(';');
        let media = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q =
            it.filter_map(|p| p.trim().strip_prefix("q=")).find_map(|q| q.trim().parse::<f32>().ok()).unwrap_or(1.0);
        let slot = match media.as_str() {
            "text/html" => &mut html,
            "application/json" | "application/*" | "*/*" => &mut json,
            _ => continue,
        };
        if slot.is_none_or(|(best, _)| q > best) {
            *slot = Some((q, i));
        }
    }
    match (html, json) {
        (Some((hq, _)), None) => hq > 0.0,
        (Some((hq, hi)), Some((jq, ji))) => hq > 0.0 && (hq > jq || (hq == jq && hi < ji)),
        _ => false,
    }
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
                if allowed.is_empty() { "none".to_string() } else { allowed.join(", ") },
                k = clip(k, QUOTED)
            ))),
            None => Ok(()),
        }
    }

    /// The query of `uri`; only the parameters in `repeatable` may be given more than once.
    pub fn parse(uri: &axum::http::Uri, repeatable: &[&str]) -> Result<QueryPairs, AppError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map_err(|e| AppError::BadRequest(format!("malformed query string: {}", e.body_text())))?;
        for (i, (k, _)) in pairs.iter().enumerate() {
            if !repeatable.contains(&k.as_str()) && pairs[..i].iter().any(|(earlier, _)| earlier == k) {
                return Err(AppError::BadRequest(format!(
                    "query parameter '{k}' is given more than once",
                    k = clip(k, QUOTED)
                )));
            }
        }
        Ok(QueryPairs(pairs))
    }

    /// Every value of a repeatable parameter, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The value of a parameter (the first, for a repeatable one).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// An integer parameter of at least `min`, or a 400 naming it.
    pub fn count(&self, name: &str, min: usize) -> Result<Option<usize>, AppError> {
        self.get(name)
            .map(|t| {
                t.trim().parse::<usize>().ok().filter(|v| *v >= min).ok_or_else(|| {
                    AppError::BadRequest(format!(
                        "{name}={:?}: expected an integer of at least {min}",
                        crate::core::text::clip(t, 200)
                    ))
                })
            })
            .transpose()
    }

    /// A finite number parameter, or a 400 naming it.
    pub fn number(&self, name: &str) -> Result<Option<f64>, AppError> {
        self.get(name)
            .map(|t| {
                t.trim().parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| {
                    AppError::BadRequest(format!("{name}={:?}: expected a number", crate::core::text::clip(t, 200)))
                })
            })
            .transpose()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        QueryPairs::parse(&parts.uri, &[])
    }
}

/// Check `f` for resources that only have a JSON representation.
pub fn json_only(q: &QueryPairs) -> Result<(), AppError> {
    match q.get("f") {
        None | Some("json") => Ok(()),
        Some(f) => Err(AppError::BadRequest(format!("f={f}: this resource is only available as f=json", f = quote(f)))),
    }
}

/// `true` when `f=csv` asks for CSV, `false` for JSON (`f` absent or `json`).
pub fn json_or_csv(q: &QueryPairs) -> Result<bool, AppError> {
    match q.get("f") {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(f) => Err(AppError::BadRequest(format!("f={f}: expected json or csv", f = quote(f)))),
    }
}

/// A `text/csv` response: the `columns` header row (also when there are no rows, so a
/// spreadsheet still sees the columns), then one row per item, its fields in `columns` order.
pub fn csv_response<T: serde::Serialize>(rows: &[T], columns: &[&str]) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse;
    let internal = |e: csv::Error| AppError::Internal(format!("writing CSV: {e}"));
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    w.write_record(columns).map_err(internal)?;
    for r in rows {
        w.serialize(r).map_err(internal)?;
    }
    let body = w.into_inner().map_err(|e| AppError::Internal(format!("writing CSV: {e}")))?;
    let mut res = body.into_response();
    res.headers_mut().insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static(CSV));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, value.parse().unwrap());
        h
    }

    #[test]
    fn browsers_prefer_html_and_api_clients_do_not() {
        let firefox = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        let chrome = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
        assert!(prefers_html(&accept(firefox)));
        assert!(prefers_html(&accept(chrome)));
        assert!(prefers_html(&accept("text/html")));
        assert!(prefers_html(&accept("text/html, application/json")));
        assert!(!prefers_html(&HeaderMap::new()));
        assert!(!prefers_html(&accept("*/*")));
        assert!(!prefers_html(&accept("application/json")));
        assert!(!prefers_html(&accept("application/json, text/html")));
        assert!(!prefers_html(&accept("application/json,text/html;q=0.5")));
        assert!(!prefers_html(&accept("text/html;q=0, */*")));
        assert!(!prefers_html(&accept("application/geo+json, application/json;q=0.9, */*;q=0.1")));
    }
}
