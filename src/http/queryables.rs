//! OGC API – Features Part 3 (Filtering): each collection's queryables as a JSON Schema
//! (`/collections/{id}/queryables`) and the Part 3 and CQL2 conformance classes implemented.
//! The filters themselves are parsed with the other items parameters (`features`) and
//! evaluated by the collection (`app::layers::filter`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::format::{self, QueryPairs};
use super::ogc::find;
use super::{AppError, AppState, BaseUrl};
use crate::app::layers::{Collection, GeometryKind, QueryableKind};

/// Media type of a JSON Schema.
pub const SCHEMA_JSON: &str = "application/schema+json";
/// Link relation of a collection's queryables.
pub const REL_QUERYABLES: &str = "http://www.opengis.net/def/rel/ogc/1.0/queryables";

/// The Part 3 and CQL2 conformance classes implemented. CQL2's arithmetic, functions,
/// temporal and array predicates, `ACCENTI` and the spatial predicates other than
/// `S_INTERSECTS` are not (so `spatial-functions` is not declared).
pub const CONFORMANCE: [&str; 11] = [
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
];

/// The queryables of `c` as a JSON Schema (2020-12) of one object, a property per queryable;
/// `id` is the document's own URL.
pub fn schema(c: &Collection, id: &str) -> Value {
    let mut properties = Map::new();
    for q in c.queryables() {
        let mut p = match q.kind {
            QueryableKind::Boolean => json!({ "type": "boolean" }),
            QueryableKind::Integer => json!({ "type": "integer" }),
            QueryableKind::Number => json!({ "type": "number" }),
            QueryableKind::String => json!({ "type": "string" }),
            QueryableKind::Date => json!({ "type": "string", "format": "date" }),
            QueryableKind::Geometry(g) => {
                let (format, schema) = match g {
                    GeometryKind::Point => ("geometry-point", "https://geojson.org/schema/Point.json"),
                    GeometryKind::MultiPolygon => {
                        ("geometry-multipolygon", "https://geojson.org/schema/MultiPolygon.json")
                    }
                };
                json!({ "format": format, "$ref": schema, "description": "The feature geometry (CRS84): test it with S_INTERSECTS." })
            }
        };
        p["title"] = Value::from(q.name.as_str());
        if c.live_properties().contains(&q.name.as_str()) {
            p["description"] = Value::from("Changes with every sign-up (a live count).");
        }
        properties.insert(q.name, p);
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": id,
        "type": "object",
        "title": c.title,
        "description": format!("What a CQL2 filter on '{}' can name (filter=..., filter-lang=cql2-text or cql2-json).", c.id),
        "properties": properties,
        "additionalProperties": false,
    })
}

/// `application/schema+json`, unless the client asks for JSON or GeoJSON and not for a
/// schema (GDAL 3.6 fetches the queryables with `Accept: application/geo+json,
/// application/json` and refuses any other type): then the same document as JSON.
fn media_type(headers: &HeaderMap) -> &'static str {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let json = accept.contains(format::JSON) || accept.contains(format::GEOJSON);
    if json && !accept.contains(SCHEMA_JSON) { format::JSON } else { SCHEMA_JSON }
}

/// The queryables of a collection.
#[utoipa::path(get, path = "/collections/{collectionId}/queryables", tag = "Capabilities", operation_id = "getQueryables",
    params(("collectionId" = String, Path, description = "blocks, resources, school-readiness or resource-access"),
           ("f" = Option<String>, Query, description = "Format: json")),
    responses((status = 200, description = "The queryables: a JSON Schema (2020-12) with one property per name a \
                  filter can use, with its type", content_type = "application/schema+json"),
              (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such collection", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn queryables(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: QueryPairs,
) -> Result<Response, AppError> {
    q.only(&["f"])?;
    format::json_only(&q)?;
    let layers = state.layers_for(&id).await?;
    let c = find(&layers, &id)?;
    let doc = schema(c, &format!("{base}/collections/{}/queryables", c.id));
    let mut res = axum::Json(doc).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type(&headers)));
    Ok(res)
}
