//! Resource access: `GET /resources/nearest` (the finder behind `/find`), `GET /access/gaps`
//! and `GET /access/rollup`. Public: resources and per-block counts only, never a person.
//! The use cases are in [`crate::app::access`].

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::format::{CSV, GEOJSON, QueryPairs, csv_response, json_or_csv};
use super::rollup::rollup_error;
use super::{AppError, AppState, run_on_store};
use crate::app::access::{
    self, AccessError, AccessQuery, AccessRollupRow, DEFAULT_NEAREST, Demand, GapRow, NearestQuery, Origin,
};
use crate::core::area::TRACT;
use crate::core::reach::Radii;
use crate::core::rollup::tract_of;

impl From<AccessError> for AppError {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::UnknownBlock(_) => AppError::NotFound(e.to_string()),
            _ => AppError::BadRequest(e.to_string()),
        }
    }
}

const NEAREST_PARAMS: &[&str] = &["lon", "lat", "block_id", "category", "limit", "within_m", "f"];

/// The resources nearest to a point or a block.
#[utoipa::path(get, path = "/resources/nearest", tag = "Resources", operation_id = "getNearestResources",
    params(("lon" = Option<f64>, Query, description = "Longitude of the origin, WGS84 degrees (with `lat`)"),
           ("lat" = Option<f64>, Query, description = "Latitude of the origin, WGS84 degrees (with `lon`)"),
           ("block_id" = Option<String>, Query, description = "Or: measure from this block's interior point"),
           ("category" = Option<String>, Query, description = "Only these categories, comma-separated (default: all)"),
           ("limit" = Option<usize>, Query, description = "Most resources returned, 1 to 100 (default 10)"),
           ("within_m" = Option<f64>, Query, description = "Only resources within this many metres"),
           ("f" = Option<String>, Query, description = "geojson (default), json or csv")),
    responses((status = 200, description = "A GeoJSON FeatureCollection of the resources, nearest first, each with \
                `distance_m` (geodesic metres on the WGS84 ellipsoid) and the optional `hours`, `languages` and \
                `capacity`; `origin` says where distances start, `categories` counts every category's resources.",
               content_type = "application/geo+json"),
              (status = 400, description = "A missing or bad parameter", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such block", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn nearest(State(state): State<AppState>, q: QueryPairs) -> Result<Response, AppError> {
    q.only(NEAREST_PARAMS)?;
    let csv = match q.get("f") {
        None | Some("geojson") | Some("json") => false,
        Some("csv") => true,
        Some(f) => {
            return Err(AppError::BadRequest(format!(
                "f={}: expected geojson, json or csv",
                crate::core::text::clip(f, 200)
            )));
        }
    };
    let origin = match (q.get("block_id"), q.number("lon")?, q.number("lat")?) {
        (Some(id), None, None) => Origin::Block(id.to_string()),
        (None, Some(lon), Some(lat)) => Origin::Point { lon, lat },
        (Some(_), _, _) => {
            return Err(AppError::BadRequest("give either block_id or lon and lat, not both".into()));
        }
        _ => {
            return Err(AppError::BadRequest("where from? give lon and lat (WGS84 degrees), or block_id".into()));
        }
    };
    let categories: Vec<String> = q
        .get("category")
        .map(|c| c.split(',').map(str::trim).filter(|c| !c.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    let query = NearestQuery {
        origin,
        categories,
        limit: q.count("limit", 1)?.unwrap_or(DEFAULT_NEAREST),
        within_m: q.number("within_m")?,
    };
    let live = state.live()?.clone();
    let layers = live.layers();
    let catchment = live.catchment();
    let answer = access::nearest(&layers, &query, |lon, lat| catchment.index.locate(lon, lat).map(str::to_string))?;
    let mut res = if csv {
        let mut w = csv::Writer::from_writer(Vec::new());
        let columns = [
            "distance_m",
            "id",
            "name",
            "category",
            "address",
            "phone",
            "email",
            "url",
            "hours",
            "languages",
            "capacity",
            "block_id",
            "lon",
            "lat",
        ];
        let internal = |e: csv::Error| AppError::Internal(format!("writing CSV: {e}"));
        w.write_record(columns).map_err(internal)?;
        for found in &answer.found {
            let (props, [lon, lat], d) = (&found.properties, found.lon_lat, found.distance_m);
            let cell = |k: &str| match props.get(k) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
            };
            let mut row = vec![format!("{:.1}", d)];
            row.extend(columns[1..12].iter().map(|k| cell(k)));
            row.extend([lon.to_string(), lat.to_string()]);
            w.write_record(&row).map_err(internal)?;
        }
        let body = w.into_inner().map_err(|e| AppError::Internal(format!("writing CSV: {e}")))?;
        let mut res = body.into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CSV));
        res
    } else {
        let features: Vec<Value> = answer
            .found
            .into_iter()
            .map(|found| {
                let (id, [lon, lat], mut props) = (found.id, found.lon_lat, found.properties);
                props.insert("distance_m".into(), json!((found.distance_m * 10.0).round() / 10.0));
                json!({"type": "Feature", "id": id, "geometry": {"type": "Point", "coordinates": [lon, lat]},
                       "properties": Value::Object(props)})
            })
            .collect();
        let categories: Vec<Value> =
            answer.categories.iter().map(|(c, n)| json!({"category": c, "count": n})).collect();
        let mut body = Map::new();
        body.insert("type".into(), "FeatureCollection".into());
        body.insert("numberReturned".into(), features.len().into());
        body.insert("origin".into(), serde_json::to_value(&answer.origin).unwrap_or(Value::Null));
        body.insert("categories".into(), Value::Array(categories));
        body.insert("features".into(), Value::Array(features));
        let mut res = serde_json::to_vec(&body).map_err(|e| AppError::Internal(e.to_string()))?.into_response();
        let media = if q.get("f") == Some("json") { super::format::JSON } else { GEOJSON };
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
        res
    };
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    Ok(res)
}

/// The category, radii and demand of `/access/gaps` and `/access/rollup`.
fn access_query(q: &QueryPairs) -> Result<AccessQuery, AppError> {
    let Some(category) = q.get("category").map(str::trim).filter(|c| !c.is_empty()) else {
        return Err(AppError::BadRequest("category is required (e.g. category=food_bank)".into()));
    };
    let d = Radii::default();
    let radii = Radii::new(q.number("walk_m")?.unwrap_or(d.walk_m), q.number("catchment_m")?.unwrap_or(d.catchment_m))
        .map_err(AppError::BadRequest)?;
    let demand = match q.get("demand") {
        None | Some("residents") => Demand::Residents,
        Some(field) => Demand::Attribute(field.to_string()),
    };
    Ok(AccessQuery { category: category.to_string(), radii, demand })
}

const ACCESS_PARAMS: &[&str] = &["category", "walk_m", "catchment_m", "demand", "f"];

/// Blocks whose residents are far from a category.
#[utoipa::path(get, path = "/access/gaps", tag = "Access", operation_id = "getAccessGaps",
    params(("category" = String, Query, description = "Resource category, e.g. food_bank"),
           ("min_distance_m" = Option<f64>, Query, description = "List blocks whose nearest resource of the category is at least this far (default: walk_m)"),
           ("walk_m" = Option<f64>, Query, description = "Walking radius, metres (default 800)"),
           ("catchment_m" = Option<f64>, Query, description = "2SFCA catchment radius, metres (default 1600)"),
           ("demand" = Option<String>, Query, description = "2SFCA demand: residents (default) or a numeric block attribute"),
           ("limit" = Option<usize>, Query, description = "Rows to return (default 100)"),
           ("f" = Option<String>, Query, description = "json (default) or csv")),
    responses((status = 200, description = "Blocks with residents far from the category: most residents first, then \
                farthest; `why` says why each is listed.", body = Vec<GapRow>),
              (status = 400, description = "A missing or bad parameter, or an unknown category (the detail lists them)", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn gaps(State(state): State<AppState>, q: QueryPairs) -> Result<Response, AppError> {
    q.only(&[ACCESS_PARAMS, &["min_distance_m", "limit"]].concat())?;
    let csv = json_or_csv(&q)?;
    let query = access_query(&q)?;
    let (min, limit) = (q.number("min_distance_m")?, q.count("limit", 1)?.unwrap_or(100));
    let layers = state.live()?.layers();
    let cache = state.access.clone();
    // The first question after an import measures every block: off the async workers.
    let rows = tokio::task::spawn_blocking(move || access::gaps(&cache, &layers, &query, min, limit)).await??;
    if csv {
        let mut res = csv_response(&rows, GapRow::COLUMNS)?;
        res.headers_mut()
            .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"access-gaps.csv\""));
        Ok(res)
    } else {
        Ok(axum::Json(rows).into_response())
    }
}

/// Access to a category rolled up by census tract or by the areas of an imported layer.
#[utoipa::path(get, path = "/access/rollup", tag = "Access", operation_id = "getAccessRollup",
    params(("by" = String, Query, description = "`tract` or an imported area layer (see /coverage/rollup/layers)"),
           ("category" = String, Query, description = "Resource category"),
           ("walk_m" = Option<f64>, Query, description = "Walking radius, metres (default 800)"),
           ("catchment_m" = Option<f64>, Query, description = "2SFCA catchment radius, metres (default 1600)"),
           ("demand" = Option<String>, Query, description = "2SFCA demand: residents (default) or a numeric block attribute"),
           ("f" = Option<String>, Query, description = "json (default) or csv")),
    responses((status = 200, description = "One row per tract or area, sorted by `group`; blocks in none share a last row whose `group` is null.", body = Vec<AccessRollupRow>),
              (status = 400, description = "A missing or bad parameter", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such layer", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn rollup(State(state): State<AppState>, q: QueryPairs) -> Result<Response, AppError> {
    q.only(&[ACCESS_PARAMS, &["by"]].concat())?;
    let csv = json_or_csv(&q)?;
    let query = access_query(&q)?;
    let Some(by) = q.get("by").map(str::to_string) else {
        return Err(AppError::BadRequest(
            "by is required: by=tract or an area layer (see /coverage/rollup/layers)".into(),
        ));
    };
    let layers = state.live()?.layers();
    let (cache, memberships) = (state.access.clone(), state.rollups.clone());
    let rows = run_on_store(&state, move |store| {
        if by == TRACT {
            return Ok(access::rollup(&cache, &layers, &query, |id| tract_of(id).map(|t| (t.to_string(), None)))?);
        }
        let membership = memberships
            .lock()
            .map_err(|_| AppError::Internal("roll-up cache lock poisoned".into()))?
            .membership(store, &by)
            .map_err(rollup_error)?;
        Ok(access::rollup(&cache, &layers, &query, |id| {
            membership.area_of(id).map(|(a, n)| (a.to_string(), n.map(str::to_string)))
        })?)
    })
    .await?;
    if csv { csv_response(&rows, AccessRollupRow::COLUMNS) } else { Ok(axum::Json(rows).into_response()) }
}
