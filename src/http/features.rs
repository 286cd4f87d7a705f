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
use super::ogc::{Link, find};
use super::{AppError, AppState, BaseUrl};
use std::borrow::Cow;
use std::sync::Arc;

use crate::app::layers::{BLOCKS, BlocksAsOf, Collection, DateRange, Feature, Filter, ItemQuery, Layers};
use crate::app::output_crs::{Axes, BboxSelection, CrsList, OutputCrs};
use crate::core::cql2::{self, Lang};
use crate::core::text::{QUOTED, clip, quote};
use crate::ingest::CrsError;

/// Default page size.
pub const DEFAULT_LIMIT: u64 = 100;
/// Largest page size.
pub const MAX_LIMIT: u64 = 10_000;

/// Query parameters every items request understands (besides property filters).
pub const ITEM_PARAMS: [&str; 7] = ["limit", "offset", "bbox", "bbox-crs", "datetime", "crs", "f"];

/// The CQL2 filter parameters (OGC API – Features Part 3).
pub const FILTER_PARAMS: [&str; 3] = ["filter", "filter-lang", "filter-crs"];

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
    /// `filter`, `filter-lang` and `filter-crs` as given, for the links.
    filter: Vec<(String, String)>,
    f: Option<Format>,
    /// `crs`: the CRS the features are written in (CRS84 unless asked).
    crs: OutputCrs,
    /// `bbox` as given, in the axis order of `bbox_crs`, for the links.
    bbox: Option<[f64; 4]>,
    /// `bbox-crs`, when given.
    bbox_crs: Option<OutputCrs>,
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

/// `minLon,minLat,maxLon,maxLat` in CRS84, or the four numbers in `crs`'s axis order
/// (`minLat,minLon,maxLat,maxLon` in EPSG:4326, `minX,minY,maxX,maxY` in a projected CRS):
/// the numbers as given, and what they select.
fn parse_bbox(raw: &str, crs: &OutputCrs) -> Result<([f64; 4], BboxSelection), AppError> {
    let bad = |why: &str| AppError::BadRequest(format!("bbox={raw}: {why}", raw = quote(raw)));
    let order = crs.axes().bbox_order();
    let parts: Vec<&str> = raw.split(',').map(str::trim).collect();
    if parts.len() == 6 {
        return Err(bad(&format!("3D bounding boxes are not supported; give {order}")));
    }
    if parts.len() != 4 {
        return Err(bad(&format!("expected 4 comma-separated numbers {order}, got {}", parts.len())));
    }
    let mut v = [0.0; 4];
    for (slot, p) in v.iter_mut().zip(&parts) {
        *slot =
            p.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| bad(&format!("'{p}' is not a number")))?;
    }
    if crs.is_geographic() {
        let (lon, lat) =
            if crs.axes() == Axes::LatLon { ([v[1], v[3]], [v[0], v[2]]) } else { ([v[0], v[2]], [v[1], v[3]]) };
        if !lon.iter().all(|x| (-180.0..=180.0).contains(x)) {
            return Err(bad("longitudes must be between -180 and 180"));
        }
        if !lat.iter().all(|y| (-90.0..=90.0).contains(y)) {
            return Err(bad("latitudes must be between -90 and 90"));
        }
    }
    let selection = crs.bbox(v).map_err(|e| bad(&e.to_string()))?;
    Ok((v, selection))
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

/// The CRS a `crs` or `bbox-crs` parameter names, or a 400 naming the supported ones.
fn crs_param(list: &CrsList, name: &str, raw: &str) -> Result<OutputCrs, AppError> {
    list.resolve(raw).map_err(|e| AppError::BadRequest(format!("{name}={e}")))
}

/// `filter-crs`: only CRS84 (the geometries of a filter are not reprojected yet).
fn check_crs(name: &str, raw: &str) -> Result<(), AppError> {
    let crs84 = crate::app::output_crs::CRS84;
    if raw == crs84 || raw == "CRS84" {
        Ok(())
    } else {
        Err(AppError::BadRequest(format!("{name}={raw}: only {crs84} is supported", raw = quote(raw))))
    }
}

/// `filter` (in `filter-lang`, cql2-text by default) bound to `c`; `None` without a filter.
/// `filter-lang` and `filter-crs` are checked even then.
fn parse_filter(c: &Collection, params: &[(String, String)]) -> Result<Option<Filter>, AppError> {
    let one = |name: &str| -> Result<Option<&str>, AppError> {
        let mut values = params.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(AppError::BadRequest(format!("{name} is given more than once")));
        }
        Ok(first)
    };
    let lang = match one("filter-lang")? {
        None => Lang::Text,
        Some(l) => Lang::from_name(l).ok_or_else(|| {
            AppError::BadRequest(format!("filter-lang={}: expected one of {}", quote(l), Lang::NAMES.join(", ")))
        })?,
    };
    // The hook for Part 2: a filter-crs other than CRS84 would reproject the literals
    // (`Expr::geometries_mut`) between parsing and binding.
    if let Some(crs) = one("filter-crs")? {
        check_crs("filter-crs", crs)?;
    }
    let Some(text) = one("filter")? else { return Ok(None) };
    let expr = cql2::parse(text, lang).map_err(crate::app::layers::FilterError::from)?;
    Ok(Some(Filter::new(c, &expr)?))
}

impl ItemsRequest {
    fn parse(c: &Collection, crs_list: &CrsList, q: &QueryPairs) -> Result<ItemsRequest, AppError> {
        let mut r = ItemsRequest {
            limit: DEFAULT_LIMIT,
            limit_given: false,
            offset: 0,
            query: ItemQuery::default(),
            datetime: None,
            filter: Vec::new(),
            f: None,
            crs: OutputCrs::crs84(),
            bbox: None,
            bbox_crs: None,
        };
        // `bbox` is read once `bbox-crs`, which may come after it, is known.
        let mut bbox = None;
        for (k, v) in &q.0 {
            match k.as_str() {
                "limit" => {
                    r.limit = parse_limit(v)?;
                    r.limit_given = true;
                }
                "offset" => r.offset = parse_offset(v)?,
                "bbox" => bbox = Some(v),
                "bbox-crs" => r.bbox_crs = Some(crs_param(crs_list, k, v)?),
                "crs" => r.crs = crs_param(crs_list, k, v)?,
                "datetime" => {
                    r.query.datetime = Some(parse_datetime(v)?);
                    r.datetime = Some(v.clone());
                }
                "f" => r.f = Some(format::negotiate(Some(v), &HeaderMap::new())?),
                "filter" | "filter-lang" | "filter-crs" => r.filter.push((k.clone(), v.clone())),
                name if c.property(name).is_some() => r.query.filters.push((name.to_string(), v.clone())),
                other => {
                    let props: Vec<&str> = c.properties.iter().map(|p| p.name.as_str()).collect();
                    return Err(AppError::BadRequest(format!(
                        "unknown query parameter '{other}'; allowed: {}, {}, or a property of '{}' ({})",
                        ITEM_PARAMS.join(", "),
                        FILTER_PARAMS.join(", "),
                        c.id,
                        props.join(", "),
                        other = clip(other, QUOTED)
                    )));
                }
            }
        }
        if let Some(raw) = bbox {
            let crs = r.bbox_crs.clone().unwrap_or_else(OutputCrs::crs84);
            let (given, selection) = parse_bbox(raw, &crs)?;
            r.bbox = Some(given);
            r.query.bbox = Some(selection.envelope);
            r.query.bbox_projected = selection.projected;
        }
        r.query.filter = parse_filter(c, &r.filter)?.map(std::sync::Arc::new);
        Ok(r)
    }

    /// The query string for the same selection at another offset, or in another format.
    fn query_string(&self, offset: u64, f: Option<Format>) -> String {
        let mut pairs: Vec<(String, String)> = self.query.filters.clone();
        if let Some(b) = self.bbox {
            pairs.push(("bbox".into(), b.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",")));
        }
        if let Some(crs) = &self.bbox_crs {
            pairs.push(("bbox-crs".into(), crs.uri().into()));
        }
        if !self.crs.is_crs84() {
            pairs.push(("crs".into(), self.crs.uri().into()));
        }
        if let Some(d) = &self.datetime {
            pairs.push(("datetime".into(), d.clone()));
        }
        pairs.extend(self.filter.iter().cloned());
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
    let mut req = ItemsRequest::parse(c, &CrsList::for_layers(&layers), &q)?;
    let format = match req.f {
        Some(f) => f,
        None => format::negotiate(None, &headers)?,
    };
    // On the blocks, `datetime` picks the day whose counts are served instead of filtering.
    let as_of = match as_of_day(c, &mut req.query)? {
        Some(day) => Some(blocks_as_of(&state, &layers, day).await?),
        None => None,
    };
    let select = |c: &Collection, query: &ItemQuery, layers: &Layers, as_of: Option<&BlocksAsOf>| match as_of {
        Some(a) => c.query(query, &a.values(layers)),
        None => c.query(query, layers),
    };
    let matches = if req.query.filter.is_some() {
        // A filter may scan the whole collection (~20 ms for a county): off the async workers.
        let (layers, query, id, as_of) = (layers.clone(), req.query.clone(), c.id, as_of.clone());
        let matches = tokio::task::spawn_blocking(move || {
            layers.collection(id).map(|c| select(c, &query, &layers, as_of.as_ref()))
        });
        matches.await?.ok_or_else(|| AppError::Internal(format!("collection {id} vanished from its snapshot")))??
    } else {
        select(c, &req.query, &layers, as_of.as_ref())?
    };
    let offset = usize::try_from(req.offset).unwrap_or(usize::MAX);
    if let Format::Download(download) = format {
        if as_of.is_some() {
            return Err(AppError::BadRequest(
                "datetime on the blocks is served as GeoJSON, JSON or CSV; files (gpkg, fgb, shp) hold the \
                 current counts"
                    .into(),
            ));
        }
        // A file is the whole selection (no 10,000 cap) unless the client pages it.
        let limit = if req.limit_given { req.limit as usize } else { usize::MAX };
        let positions = matches.page(offset, limit);
        let crs = req.crs.for_download().map_err(AppError::BadRequest)?;
        return super::download::respond(layers.clone(), c.id, positions, download, crs).await;
    }
    let matched = matches.len() as u64;
    let page = matches.page(offset, req.limit as usize);
    let page_features: Vec<Cow<'_, Feature>> = page
        .iter()
        .map(|&i| match &as_of {
            Some(a) => Cow::Owned(a.feature(i, &c.features[i])),
            None => Cow::Borrowed(&*c.features[i]),
        })
        .collect();
    if format == Format::Csv {
        return csv_response(c, page_features.iter().map(|f| &**f), &req.crs);
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
    let size: usize = page_features.iter().map(|f| f.json_len() + 2).sum::<usize>() + head.len() + 16;
    let mut body = Vec::with_capacity(size);
    // `head` is a JSON object: reopen it to append the features last.
    body.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    body.extend_from_slice(b",\"features\":[");
    for (n, f) in page_features.iter().enumerate() {
        if n > 0 {
            body.push(b',');
        }
        write_feature(f, &req.crs, &mut body)?;
    }
    body.extend_from_slice(b"]}");
    with_content_crs(bytes_response(format.media_type(), body), &req.crs)
}

fn write_feature(f: &Feature, crs: &OutputCrs, out: &mut Vec<u8>) -> Result<(), AppError> {
    f.write_json_in(crs, out).map_err(|e| unwritable(f, crs, e))
}

/// A feature the CRS cannot represent (Web Mercator past ±85°, say): the client asked for a CRS
/// that does not fit the data.
fn unwritable(f: &Feature, crs: &OutputCrs, e: CrsError) -> AppError {
    AppError::BadRequest(format!("crs={}: feature '{}' cannot be written in it: {e}", crs.uri(), clip(&f.id, QUOTED)))
}

/// Part 2's `Content-Crs: <uri>`: the CRS of the coordinates in the body.
fn with_content_crs(mut res: Response, crs: &OutputCrs) -> Result<Response, AppError> {
    let value = HeaderValue::from_str(&format!("<{}>", crs.uri())).map_err(|e| AppError::Internal(e.to_string()))?;
    res.headers_mut().insert("content-crs", value);
    Ok(res)
}

/// One feature by id.
pub async fn item(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path((id, feature_id)): Path<(String, String)>,
    headers: HeaderMap,
    q: QueryPairs,
) -> Result<Response, AppError> {
    q.only(&["f", "crs", "datetime"])?;
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
    let crs = match q.get("crs") {
        Some(raw) => crs_param(&CrsList::for_layers(&layers), "crs", raw)?,
        None => OutputCrs::crs84(),
    };
    let day = match q.get("datetime") {
        None => None,
        Some(raw) if c.id == BLOCKS => Some(one_day(parse_datetime(raw)?)?),
        Some(_) => {
            return Err(AppError::BadRequest(format!(
                "datetime on a single feature applies to the blocks only (their counts at the end of that day), \
                 not to collection '{}'",
                c.id
            )));
        }
    };
    let (i, f) = c.position(&feature_id).ok_or_else(|| {
        AppError::NotFound(format!(
            "no feature '{feature_id}' in collection '{}'",
            c.id,
            feature_id = clip(&feature_id, QUOTED)
        ))
    })?;
    let f = match day {
        Some(day) => Cow::Owned(blocks_as_of(&state, &layers, day).await?.feature(i, f)),
        None => Cow::Borrowed(f),
    };
    if format == Format::Csv {
        return csv_response(c, std::iter::once(&*f), &crs);
    }
    let url = format!("{base}/collections/{}/items/{}", c.id, encode_segment(&f.id));
    // The links keep the CRS and the day asked for.
    let mut kept: Vec<(&str, String)> = Vec::new();
    if !crs.is_crs84() {
        kept.push(("crs", crs.uri().to_string()));
    }
    if let Some(d) = q.get("datetime") {
        kept.push(("datetime", d.to_string()));
    }
    let kept = serde_urlencoded::to_string(&kept).unwrap_or_default();
    let (this, csv) = if kept.is_empty() {
        (url.clone(), format!("{url}?f=csv"))
    } else {
        (format!("{url}?{kept}"), format!("{url}?f=csv&{kept}"))
    };
    let links = vec![
        Link::new(this, "self", format.media_type(), "This feature"),
        Link::new(csv, "alternate", "text/csv", "This feature as CSV"),
        Link::new(format!("{base}/collections/{}", c.id), "collection", format::JSON, "The collection"),
    ];
    let links = serde_json::to_string(&links).map_err(|e| AppError::Internal(e.to_string()))?;
    let mut body = Vec::with_capacity(f.json_len() + links.len() + 16);
    write_feature(&f, &crs, &mut body)?;
    body.pop(); // reopen the Feature object to add its links
    body.extend_from_slice(b",\"links\":");
    body.extend_from_slice(links.as_bytes());
    body.push(b'}');
    with_content_crs(bytes_response(format.media_type(), body), &crs)
}

/// `datetime` on the blocks collection: one day, whose end the counts are taken at (taken out
/// of `query`, which would otherwise filter by feature dates the blocks do not have).
fn as_of_day(c: &Collection, query: &mut ItemQuery) -> Result<Option<NaiveDate>, AppError> {
    if c.id != BLOCKS {
        return Ok(None);
    }
    query.datetime.take().map(one_day).transpose()
}

/// The one day of a blocks `datetime` (intervals have no single day to count at).
fn one_day(range: DateRange) -> Result<NaiveDate, AppError> {
    match (range.start, range.end) {
        (Some(a), Some(b)) if a == b => Ok(a),
        _ => Err(AppError::BadRequest(
            "datetime on the blocks is one day (YYYY-MM-DD, or an RFC 3339 date-time for its UTC day): \
             the blocks' residents, ambassadors and covered at the end of that day, as /coverage/history \
             counts them; intervals are not supported here"
                .into(),
        )),
    }
}

/// `datetime` of a tile request: the day whose counts the blocks layer shows.
pub(super) fn tile_day(q: &QueryPairs) -> Result<Option<NaiveDate>, AppError> {
    q.get("datetime").map(|raw| parse_datetime(raw).and_then(one_day)).transpose()
}

/// The blocks' counts at the end of `day`, from the history replay the service keeps.
pub(super) async fn blocks_as_of(
    state: &AppState,
    layers: &Arc<Layers>,
    day: NaiveDate,
) -> Result<BlocksAsOf, AppError> {
    let (cache, layers) = (state.history.clone(), layers.clone());
    super::run_on_store(state, move |store| {
        let mut cache = cache.lock().map_err(|_| AppError::Internal("history cache lock poisoned".into()))?;
        Ok(cache.blocks_as_of(store, &layers, day, chrono::Utc::now())?)
    })
    .await
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

/// Features as CSV: every property of the collection, then the point itself (or a point inside
/// the polygon) as `lon,lat` — or, in another `crs`, its two axes in order: `lat,lon` in
/// EPSG:4326, `x,y` (easting, northing) in a projected CRS.
fn csv_response<'a>(
    c: &Collection,
    features: impl Iterator<Item = &'a Feature>,
    crs: &OutputCrs,
) -> Result<Response, AppError> {
    let internal = |e: csv::Error| AppError::Internal(format!("writing CSV: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<&str> = c.properties.iter().map(|p| p.name.as_str()).collect();
    header.extend(crs.axes().names());
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
        let (a, b) = match f.point {
            None => (String::new(), String::new()),
            // As stored (rounded to 1e-7°), as before `crs` existed.
            Some((lon, lat)) if crs.is_crs84() => (lon.to_string(), lat.to_string()),
            Some(_) => {
                let (lon, lat) = f.location().unwrap_or_default();
                let [a, b] = crs.position(lon, lat).map_err(|e| unwritable(f, crs, e))?;
                (a.to_string(), b.to_string())
            }
        };
        row.extend([a, b]);
        w.write_record(&row).map_err(internal)?;
    }
    let body = w.into_inner().map_err(|e| AppError::Internal(format!("writing CSV: {e}")))?;
    with_content_crs(bytes_response(format::CSV, body), crs)
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
            match parse_bbox(&raw, &OutputCrs::crs84()).map(|(_, s)| s.envelope) {
                Ok([x0, y0, x1, y1]) => prop_assert!(x0 <= x1 && y0 <= y1 && (-180.0..=180.0).contains(&x0) && (-90.0..=90.0).contains(&y1)),
                Err(e) => brief(e),
            }
            let list = CrsList::new(Some([-118.3, 34.0, -118.2, 34.1]));
            for crs in ["EPSG:4326", "EPSG:2229", "EPSG:3857"] {
                if let Err(e) = parse_bbox(&raw, &list.resolve(crs).unwrap()) {
                    brief(e);
                }
            }
            if let Err(e) = crs_param(&list, "crs", &raw) {
                // The value, and the seven URIs supported.
                let m = e.to_string();
                prop_assert!(m.contains("not a supported CRS") && m.len() < 1_500, "{} bytes: {m}", m.len());
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
        let crs84 = OutputCrs::crs84();
        let (given, selection) = parse_bbox("-118.3,34,-118.2,34.1", &crs84).unwrap();
        assert_eq!(given, [-118.3, 34.0, -118.2, 34.1]);
        assert_eq!(selection.envelope, given);
        for bad in ["1,2,3", "a,b,c,d", "2,0,1,1", "0,2,1,1", "0,0,200,1", "0,0,1,1,0,0", "NaN,0,1,1"] {
            assert!(parse_bbox(bad, &crs84).is_err(), "{bad}");
        }
        // EPSG:4326 is latitude first: its ranges and names follow.
        let list = CrsList::new(Some([-118.3, 34.0, -118.2, 34.1]));
        let lat_lon = list.resolve("EPSG:4326").unwrap();
        assert_eq!(parse_bbox("34,-118.3,34.1,-118.2", &lat_lon).unwrap().1.envelope, [-118.3, 34.0, -118.2, 34.1]);
        let e = parse_bbox("-118.3,34,-118.2,34.1", &lat_lon).unwrap_err().to_string();
        assert!(e.contains("latitudes"), "{e}");
        let e = parse_bbox("1,2,3", &lat_lon).unwrap_err().to_string();
        assert!(e.contains("minLat,minLon,maxLat,maxLon"), "{e}");
        let feet = list.resolve("EPSG:2229").unwrap();
        let e = parse_bbox("6480000,1840000,6470000,1850000", &feet).unwrap_err().to_string();
        assert!(e.contains("minX is greater than maxX"), "{e}");
        let e = parse_bbox("1e9,1e9,2e9,2e9", &feet).unwrap_err().to_string();
        assert!(e.contains("outside the area EPSG:2229"), "{e}");
    }
}
