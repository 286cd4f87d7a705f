//! Features of a collection (`/collections/{id}/items`) and one feature
//! (`/collections/{id}/items/{featureId}`): parameters are parsed and checked here, the
//! selection is done by the snapshot, and the pre-serialized features are concatenated (or,
//! for `f=gpkg|fgb|shp`, written as a file by [`super::download`]).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde_json::Value;

use super::format::{self, Format, QueryPairs};
use super::ogc::{CRS84, Link, find};
use super::{AppError, AppState, BaseUrl};
use crate::app::layers::{Collection, DateRange, Feature, ItemQuery};
use crate::core::text::{QUOTED, clip, quote};

/// Default page size.
pub const DEFAULT_LIMIT: u64 = 100;
/// Largest page size.
pub const MAX_LIMIT: u64 = 10_000;

/// Query parameters every items request understands (besides property filters).
pub const ITEM_PARAMS: [&str; 7] = ["limit", "offset", "bbox", "bbox-crs", "datetime", "crs", "f"];

/// A validated items request.
#[derive(Debug, Clone, PartialEq)]
struct ItemsRequest {
    limit: u64,
    /// Whether `limit` was given (file downloads hold the whole selection otherwise).
    limit_given: bool,
    offset: u64,
    query: ItemQuery,
    /// `datetime` as given, for the links.
    datetime: Option<String>,
    f: Option<Format>,
}

fn parse_limit(raw: &str) -> Result<u64, AppError> {
    let range = || format!("must be a whole number from 1 to {MAX_LIMIT}");
    let n: i128 = raw.trim().parse().map_err(|_| {
        AppError::BadRequest(format!("limit={raw} is not a whole number; limit {}", range(), raw = quote(raw)))
    })?;
    if n < 1 || n > i128::from(MAX_LIMIT) {
        return Err(AppError::BadRequest(format!("limit={n} is out of range; limit {}", range())));
    }
    Ok(n as u64)
}

fn parse_offset(raw: &str) -> Result<u64, AppError> {
    let range = || format!("offset must be a whole number from 0 to {}", u64::MAX);
    // i128 tells a negative or merely huge number from text that is not a number at all.
    match raw.trim().parse::<i128>() {
        Ok(n) if n < 0 => Err(AppError::BadRequest(format!("offset={n} is negative; {}", range()))),
        // Clamping would page from somewhere the client did not ask for.
        Ok(n) => u64::try_from(n).map_err(|_| AppError::BadRequest(format!("offset={n} is too large; {}", range()))),
        Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => Err(AppError::BadRequest(format!(
            "offset={:?} is too large; {}",
            crate::core::text::clip(raw, 60),
            range()
        ))),
        Err(_) => Err(AppError::BadRequest(format!(
            "offset={:?} is not a whole number; {}",
            crate::core::text::clip(raw, 200),
            range()
        ))),
    }
}

/// `minLon,minLat,maxLon,maxLat` in CRS84.
fn parse_bbox(raw: &str) -> Result<[f64; 4], AppError> {
    let bad = |why: &str| AppError::BadRequest(format!("bbox={raw}: {why}", raw = quote(raw)));
    let parts: Vec<&str> = raw.split(',').map(str::trim).collect();
    if parts.len() == 6 {
        return Err(bad("3D bounding boxes are not supported; give minLon,minLat,maxLon,maxLat"));
    }
    if parts.len() != 4 {
        return Err(bad(&format!(
            "expected 4 comma-separated numbers minLon,minLat,maxLon,maxLat, got {}",
            parts.len()
        )));
    }
    let mut v = [0.0; 4];
    for (slot, p) in v.iter_mut().zip(&parts) {
        *slot =
            p.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| bad(&format!("'{p}' is not a number")))?;
    }
    let [x0, y0, x1, y1] = v;
    if !(-180.0..=180.0).contains(&x0) || !(-180.0..=180.0).contains(&x1) {
        return Err(bad("longitudes must be between -180 and 180"));
    }
    if !(-90.0..=90.0).contains(&y0) || !(-90.0..=90.0).contains(&y1) {
        return Err(bad("latitudes must be between -90 and 90"));
    }
    if x0 > x1 {
        return Err(bad("minLon is greater than maxLon"));
    }
    if y0 > y1 {
        return Err(bad("minLat is greater than maxLat"));
    }
    Ok(v)
}

/// A date, an RFC 3339 date-time, or an interval `start/end` (`..` or empty for an open end),
/// reduced to UTC calendar days since feature dates are days.
fn parse_datetime(raw: &str) -> Result<DateRange, AppError> {
    let bad = |why: &str| AppError::BadRequest(format!("datetime={raw}: {why}", raw = quote(raw)));
    let day = |s: &str| -> Result<Option<NaiveDate>, AppError> {
        let s = s.trim();
        if s.is_empty() || s == ".." {
            return Ok(None);
        }
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(Some(d));
        }
        chrono::DateTime::parse_from_rfc3339(s).map(|t| Some(t.with_timezone(&chrono::Utc).date_naive())).map_err(
            |_| {
                bad(&format!(
                    "'{s}' is not a date (2025-06-01) or an RFC 3339 date-time (2025-06-01T12:00:00Z); \
                 intervals are start/end with .. for an open end"
                ))
            },
        )
    };
    let range = match raw.split_once('/') {
        None => {
            let d = day(raw)?.ok_or_else(|| bad("expected a date, a date-time or an interval"))?;
            DateRange { start: Some(d), end: Some(d) }
        }
        Some((a, b)) => DateRange { start: day(a)?, end: day(b)? },
    };
    match (range.start, range.end) {
        (None, None) => Err(bad("an interval needs at least one end")),
        (Some(s), Some(e)) if s > e => Err(bad("the start is after the end")),
        _ => Ok(range),
    }
}

fn check_crs(name: &str, raw: &str) -> Result<(), AppError> {
    if raw == CRS84 || raw == "CRS84" {
        Ok(())
    } else {
        Err(AppError::BadRequest(format!("{name}={raw}: only {CRS84} is supported", raw = quote(raw))))
    }
}

impl ItemsRequest {
    fn parse(c: &Collection, q: &QueryPairs) -> Result<ItemsRequest, AppError> {
        let mut r = ItemsRequest {
            limit: DEFAULT_LIMIT,
            limit_given: false,
            offset: 0,
            query: ItemQuery::default(),
            datetime: None,
            f: None,
        };
        for (k, v) in &q.0 {
            match k.as_str() {
                "limit" => {
                    r.limit = parse_limit(v)?;
                    r.limit_given = true;
                }
                "offset" => r.offset = parse_offset(v)?,
                "bbox" => r.query.bbox = Some(parse_bbox(v)?),
                "bbox-crs" | "crs" => check_crs(k, v)?,
                "datetime" => {
                    r.query.datetime = Some(parse_datetime(v)?);
                    r.datetime = Some(v.clone());
                }
                "f" => r.f = Some(format::negotiate(Some(v), &HeaderMap::new())?),
                name if c.property(name).is_some() => r.query.filters.push((name.to_string(), v.clone())),
                other => {
                    let props: Vec<&str> = c.properties.iter().map(|p| p.name.as_str()).collect();
                    return Err(AppError::BadRequest(format!(
                        "unknown query parameter '{other}'; allowed: {}, or a property of '{}' ({})",
                        ITEM_PARAMS.join(", "),
                        c.id,
                        props.join(", "),
                        other = clip(other, QUOTED)
                    )));
                }
            }
        }
        Ok(r)
    }

    /// The query string for the same selection at another offset, or in another format.
    fn query_string(&self, offset: u64, f: Option<Format>) -> String {
        let mut pairs: Vec<(String, String)> = self.query.filters.clone();
        if let Some(b) = self.query.bbox {
            pairs.push(("bbox".into(), b.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")));
        }
        if let Some(d) = &self.datetime {
            pairs.push(("datetime".into(), d.clone()));
        }
        pairs.push(("limit".into(), self.limit.to_string()));
        if offset > 0 {
            pairs.push(("offset".into(), offset.to_string()));
        }
        if let Some(f) = f {
            pairs.push(("f".into(), f.f().into()));
        }
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }
}

/// The features of a collection, a page at a time.
pub async fn items(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: QueryPairs,
) -> Result<Response, AppError> {
    let layers = state.layers_for(&id).await?;
    let c = find(&layers, &id)?;
    let req = ItemsRequest::parse(c, &q)?;
    let format = match req.f {
        Some(f) => f,
        None => format::negotiate(None, &headers)?,
    };
    let matches = c.query(&req.query, &*layers)?;
    let offset = usize::try_from(req.offset).unwrap_or(usize::MAX);
    if let Format::Download(download) = format {
        // A file is the whole selection (no 10,000 cap) unless the client pages it.
        let limit = if req.limit_given { req.limit as usize } else { usize::MAX };
        let positions = matches.page(offset, limit);
        // WGS84 until `crs` may ask for another (it accepts CRS84 only so far).
        let crs = crate::export::OutputCrs::wgs84();
        return super::download::respond(layers.clone(), c.id, positions, download, crs).await;
    }
    let matched = matches.len() as u64;
    let page = matches.page(offset, req.limit as usize);
    let features = page.iter().map(|&i| &*c.features[i]);
    if format == Format::Csv {
        return csv_response(c, features);
    }

    let returned = page.len() as u64;
    let url = format!("{base}/collections/{}/items", c.id);
    let this = req.f.filter(|f| *f != Format::GeoJson);
    let mut links = vec![
        Link::new(format!("{url}?{}", req.query_string(req.offset, this)), "self", format.media_type(), "This page"),
        Link::new(
            format!("{url}?{}", req.query_string(req.offset, Some(Format::Csv))),
            "alternate",
            "text/csv",
            "This page as CSV",
        ),
    ];
    if req.offset.saturating_add(returned) < matched {
        let next = req.offset + returned.max(1);
        links.push(Link::new(
            format!("{url}?{}", req.query_string(next, this)),
            "next",
            format.media_type(),
            "Next page",
        ));
    }
    if req.offset > 0 {
        let prev = req.offset.saturating_sub(req.limit);
        links.push(Link::new(
            format!("{url}?{}", req.query_string(prev, this)),
            "prev",
            format.media_type(),
            "Previous page",
        ));
    }
    links.push(Link::new(format!("{base}/collections/{}", c.id), "collection", format::JSON, "The collection"));

    let head = serde_json::json!({
        "type": "FeatureCollection",
        "timeStamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "numberMatched": matched,
        "numberReturned": returned,
        "links": links,
    });
    let head = head.to_string();
    let size: usize = page.iter().map(|&i| c.features[i].json_len() + 2).sum::<usize>() + head.len() + 16;
    let mut body = Vec::with_capacity(size);
    // `head` is a JSON object: reopen it to append the features last.
    body.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    body.extend_from_slice(b",\"features\":[");
    for (n, &i) in page.iter().enumerate() {
        if n > 0 {
            body.push(b',');
        }
        c.features[i].write_json(&mut body);
    }
    body.extend_from_slice(b"]}");
    Ok(bytes_response(format.media_type(), body))
}

/// One feature by id.
pub async fn item(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path((id, feature_id)): Path<(String, String)>,
    headers: HeaderMap,
    q: QueryPairs,
) -> Result<Response, AppError> {
    q.only(&["f"])?;
    let layers = state.layers_for(&id).await?;
    let c = find(&layers, &id)?;
    let format = format::negotiate(q.get("f"), &headers)?;
    if let Format::Download(d) = format {
        return Err(AppError::BadRequest(format!(
            "{} files are offered for a collection's items (/collections/{}/items?f={}), not for one feature; \
             use f=geojson, f=json or f=csv here",
            d.title(),
            c.id,
            format.f()
        )));
    }
    let f = c.feature(&feature_id).ok_or_else(|| {
        AppError::NotFound(format!(
            "no feature '{feature_id}' in collection '{}'",
            c.id,
            feature_id = clip(&feature_id, QUOTED)
        ))
    })?;
    if format == Format::Csv {
        return csv_response(c, std::iter::once(f));
    }
    let url = format!("{base}/collections/{}/items/{}", c.id, encode_segment(&f.id));
    let links = vec![
        Link::new(url.clone(), "self", format.media_type(), "This feature"),
        Link::new(format!("{url}?f=csv"), "alternate", "text/csv", "This feature as CSV"),
        Link::new(format!("{base}/collections/{}", c.id), "collection", format::JSON, "The collection"),
    ];
    let links = serde_json::to_string(&links).map_err(|e| AppError::Internal(e.to_string()))?;
    let mut body = Vec::with_capacity(f.json_len() + links.len() + 16);
    f.write_json(&mut body);
    body.pop(); // reopen the Feature object to add its links
    body.extend_from_slice(b",\"links\":");
    body.extend_from_slice(links.as_bytes());
    body.push(b'}');
    Ok(bytes_response(format.media_type(), body))
}

fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn bytes_response(media_type: &'static str, body: Vec<u8>) -> Response {
    let mut res = Body::from(body).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    res
}

/// Features as CSV: every property of the collection, then `lon,lat` (the point itself, or a
/// point inside the polygon).
fn csv_response<'a>(c: &Collection, features: impl Iterator<Item = &'a Feature>) -> Result<Response, AppError> {
    let internal = |e: csv::Error| AppError::Internal(format!("writing CSV: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<&str> = c.properties.iter().map(|p| p.name.as_str()).collect();
    header.extend(["lon", "lat"]);
    w.write_record(&header).map_err(internal)?;
    for f in features {
        let props = f.properties();
        let mut row: Vec<String> = c
            .properties
            .iter()
            .map(|p| match props.get(&p.name) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
            })
            .collect();
        let (lon, lat) = f.point.map_or((String::new(), String::new()), |(x, y)| (x.to_string(), y.to_string()));
        row.extend([lon, lat]);
        w.write_record(&row).map_err(internal)?;
    }
    let body = w.into_inner().map_err(|e| AppError::Internal(format!("writing CSV: {e}")))?;
    Ok(bytes_response(format::CSV, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(parse_limit("1").unwrap(), 1);
        assert_eq!(parse_limit("10000").unwrap(), 10_000);
        for bad in ["0", "-1", "10001", "abc", "", "1.5", "99999999999999999999999999999999999999999"] {
            assert!(parse_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("0").unwrap(), 0);
        assert_eq!(parse_offset("18446744073709551615").unwrap(), u64::MAX);
        for (bad, why) in [
            ("18446744073709551616", "too large"),
            ("1000000000000000000000000000000", "too large"),
            ("1".repeat(60).as_str(), "too large"),
            ("-1", "negative"),
            ("x", "not a whole number"),
            ("1.5", "not a whole number"),
        ] {
            let e = parse_offset(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn datetimes() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        assert_eq!(parse_datetime("2025-06-01").unwrap(), DateRange { start: d("2025-06-01"), end: d("2025-06-01") });
        assert_eq!(parse_datetime("2025-01-01/..").unwrap(), DateRange { start: d("2025-01-01"), end: None });
        assert_eq!(
            parse_datetime("../2025-06-01T23:30:00-02:00").unwrap(),
            DateRange { start: None, end: d("2025-06-02") }
        );
        for bad in ["", "..", "../..", "2025-13-01", "yesterday", "2025-06-02/2025-06-01"] {
            assert!(parse_datetime(bad).is_err(), "{bad}");
        }
    }

    use proptest::prelude::*;

    /// Text shaped like the values these parameters take (digits, signs, separators,
    /// exponents, dates), and anything at all.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof!["[-+0-9.,eE /:TZ]{0,40}", "\\PC{0,40}", ".{0,300}"]
    }

    proptest! {
        /// Issue 12: every query value is parsed or refused with a short reason, never a panic,
        /// and what is accepted is in range.
        #[test]
        fn query_values_are_parsed_or_refused_briefly(raw in value()) {
            let brief = |e: AppError| {
                let m = e.to_string();
                // At most 200 shown characters of the value (up to 4 bytes each) and the reason.
                assert!(!m.is_empty() && m.len() < 1_200, "{} bytes: {m}", m.len());
            };
            match parse_bbox(&raw) {
                Ok([x0, y0, x1, y1]) => prop_assert!(x0 <= x1 && y0 <= y1 && (-180.0..=180.0).contains(&x0) && (-90.0..=90.0).contains(&y1)),
                Err(e) => brief(e),
            }
            match parse_datetime(&raw) {
                Ok(DateRange { start: Some(a), end: Some(b) }) => prop_assert!(a <= b),
                Ok(_) => {}
                Err(e) => brief(e),
            }
            match parse_limit(&raw) {
                Ok(n) => prop_assert!((1..=MAX_LIMIT).contains(&n)),
                Err(e) => brief(e),
            }
            if let Err(e) = parse_offset(&raw) {
                brief(e);
            }
        }
    }

    #[test]
    fn bboxes() {
        assert_eq!(parse_bbox("-118.3,34,-118.2,34.1").unwrap(), [-118.3, 34.0, -118.2, 34.1]);
        for bad in ["1,2,3", "a,b,c,d", "2,0,1,1", "0,2,1,1", "0,0,200,1", "0,0,1,1,0,0", "NaN,0,1,1"] {
            assert!(parse_bbox(bad).is_err(), "{bad}");
        }
    }
}
