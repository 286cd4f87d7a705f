//! The OpenAPI 3.0 document (`/api`) and a small HTML page that lists it (`/api.html`).
//!
//! The fixed endpoints are described by `utoipa` from the handlers; the items paths are
//! generated per collection from the snapshot, so every property is declared as an equality
//! filter, and `filter-lang` lists the CQL dialects (GDAL's OAPIF driver pushes down `-where`
//! as CQL when that list has `cql-text`, else as equality parameters it finds there). utoipa
//! emits OpenAPI 3.1; [`downgrade_to_3_0`] turns the few 3.1-only constructs into 3.0 ones,
//! because GDAL reads 3.0.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use super::features::{DEFAULT_LIMIT, MAX_LIMIT};
use super::format::{GEOJSON, QueryPairs, json_only};
use super::ogc::OPENAPI_JSON;
use super::{AppError, AppState, BaseUrl};
use crate::app::layers::{Collection, GeometryKind, Layers};
use crate::app::output_crs::{CRS84, CrsList};

#[derive(OpenApi)]
#[openapi(
    info(title = "belong", description = "Census-block coverage for community-ambassador campaigns: \
        OGC API – Features (Core, GeoJSON, OpenAPI 3.0, Part 2 CRS by reference) and OGC API – Tiles \
        (vector tiles) over blocks, resources and school readiness, plus coverage summaries."),
    paths(
        super::ogc::landing,
        super::ogc::conformance,
        super::ogc::collections,
        super::ogc::collection,
        super::queryables::queryables,
        super::coverage::summary,
        super::coverage::uncovered,
        super::history::history,
        super::rollup::rollup,
        super::rollup::layers,
        super::access::nearest,
        super::access::gaps,
        super::access::rollup,
        super::people::list,
        super::people::create,
        super::people::get_one,
        super::people::update,
        super::people::adopt,
        super::people::delete,
        super::people::import,
        super::imports::blocks,
        super::imports::resources,
        super::imports::indicators,
        super::imports::areas,
        super::health::health,
        super::tiles::tile,
        super::tiles::tilejson,
        super::ogc_tiles::tile_matrix_sets,
        super::ogc_tiles::tile_matrix_set,
        super::ogc_tiles::collection_tilesets,
        super::ogc_tiles::collection_tileset,
        super::ogc_tiles::collection_tile,
        super::ogc_tiles::dataset_tilesets,
        super::ogc_tiles::dataset_tileset,
        super::ogc_tiles::dataset_tile,
    ),
    components(schemas(super::error::Problem, super::ogc::Link)),
    tags((name = "Capabilities", description = "Landing page, conformance and collections"),
         (name = "Data", description = "Features of the collections"),
         (name = "Coverage", description = "Coverage summaries"),
         (name = "Resources", description = "The resources nearest to a place (public)"),
         (name = "Access", description = "Access to resources per block: gaps and roll-ups (public; 2SFCA, Luo & Wang 2003)"),
         (name = "People", description = "Residents and ambassadors (bearer token: recruiter reads, manager writes)"),
         (name = "Imports", description = "Data imports (bearer token: manager)"),
         (name = "Tiles", description = "Mapbox Vector Tiles 2.1 of the public layers: TileJSON 3.0.0 and OGC API – Tiles"),
         (name = "Service", description = "Health"))
)]
struct ApiDoc;

/// The OpenAPI document for the current snapshot, as OpenAPI 3.0.3 JSON.
pub fn document(layers: &Layers, base: &str) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    doc["info"]["version"] = Value::from(env!("CARGO_PKG_VERSION"));
    doc["servers"] = json!([{ "url": base }]);
    let components = doc["components"].as_object_mut().map(std::mem::take).unwrap_or_default();
    let mut components = components;
    components.insert("parameters".into(), common_parameters(&CrsList::for_layers(layers).uris()));
    components.insert(
        "securitySchemes".into(),
        json!({ "bearer": { "type": "http", "scheme": "bearer",
            "description": "A token from `belong token create --role viewer|recruiter|manager`" } }),
    );
    doc["components"] = Value::Object(components);
    if let Some(paths) = doc["paths"].as_object_mut() {
        paths.insert("/api".into(), simple_get("getApi", "Capabilities", "This document", OPENAPI_JSON));
        paths
            .insert("/api.html".into(), simple_get("getApiHtml", "Capabilities", "The API documentation", "text/html"));
        for c in layers.all_collections() {
            paths.insert(format!("/collections/{}/items", c.id), items_path(c));
            paths.insert(format!("/collections/{}/items/{{featureId}}", c.id), item_path(c));
        }
    }
    downgrade_to_3_0(&mut doc);
    doc
}

fn simple_get(id: &str, tag: &str, description: &str, media_type: &str) -> Value {
    json!({ "get": {
        "tags": [tag], "operationId": id, "summary": description,
        "responses": { "200": { "description": description, "content": { media_type: {} } } }
    }})
}

fn problem_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/problem+json": {
        "schema": { "$ref": "#/components/schemas/Problem" } } } })
}

fn common_parameters(crs: &[String]) -> Value {
    json!({
        "limit": {
            "name": "limit", "in": "query", "required": false, "style": "form", "explode": false,
            "description": format!("Features per page (1 to {MAX_LIMIT}, default {DEFAULT_LIMIT})."),
            "schema": { "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT }
        },
        "offset": {
            "name": "offset", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "Features to skip (the `next` and `prev` links carry it).",
            "schema": { "type": "integer", "minimum": 0, "default": 0 }
        },
        "bbox": {
            "name": "bbox", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "minLon,minLat,maxLon,maxLat in CRS84, or the four numbers in the axis order of bbox-crs \
                            (minLat,minLon,maxLat,maxLon in EPSG:4326, minX,minY,maxX,maxY in a projected CRS): only \
                            features whose geometry intersects the box (in a projected CRS, once reprojected into it).",
            "schema": { "type": "array", "minItems": 4, "maxItems": 4, "items": { "type": "number" } }
        },
        "datetime": {
            "name": "datetime", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "A date (2025-06-01), an RFC 3339 date-time, or an interval start/end with .. for an \
                            open end: only features whose date falls in it (school-readiness; features \
                            without a date never match). On the blocks, one day: every block with its \
                            residents, ambassadors and covered at the end of that day (UTC), as \
                            /coverage/history counts them.",
            "schema": { "type": "string" }
        },
        "filter": {
            "name": "filter", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "A CQL2 filter (OGC API – Features Part 3) on the collection's queryables \
                            (/collections/{collectionId}/queryables): comparisons, AND/OR/NOT, LIKE, BETWEEN, IN, \
                            IS NULL, CASEI and S_INTERSECTS(geometry, <WKT, GeoJSON or BBOX>) in CRS84, e.g. \
                            `residents > 10 AND covered = FALSE`. Combined with the other parameters by AND.",
            "schema": { "type": "string" }
        },
        "filter-lang": {
            "name": "filter-lang", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "The encoding of filter: cql2-text (the default) or cql2-json; cql-text, the \
                            pre-standard name GDAL 3.6 sends, is read as cql2-text.",
            "schema": { "type": "string", "enum": crate::core::cql2::Lang::NAMES, "default": "cql2-text" }
        },
        "filter-crs": {
            "name": "filter-crs", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "CRS of the geometries in filter; only CRS84 is supported.",
            "schema": { "type": "string", "enum": [super::ogc::CRS84] }
        },
        "bbox-crs": {
            "name": "bbox-crs", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "CRS of bbox (OGC API – Features Part 2), one of the collection's `crs` list; \
                            EPSG:NNNN and urn:ogc:def:crs:EPSG::NNNN name the same CRSs.",
            "schema": { "type": "string", "format": "uri", "enum": crs, "default": CRS84 }
        },
        "crs": {
            "name": "crs", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "CRS of the coordinates returned (OGC API – Features Part 2), one of the collection's \
                            `crs` list, in its EPSG axis order (EPSG:4326 is latitude, longitude; projected CRSs \
                            easting, northing); EPSG:NNNN and urn:ogc:def:crs:EPSG::NNNN name the same CRSs. \
                            The Content-Crs response header names the CRS of the body.",
            "schema": { "type": "string", "format": "uri", "enum": crs, "default": CRS84 }
        },
        "f": {
            "name": "f", "in": "query", "required": false, "style": "form", "explode": false,
            "description": "Format; overrides the Accept header (application/geo+json, application/json, text/csv). \
                            On items also a file for GIS: gpkg (GeoPackage), fgb (FlatGeobuf) or shp (a zipped \
                            shapefile), holding the whole selection unless limit is given.",
            "schema": { "type": "string", "enum": ["geojson", "json", "csv", "gpkg", "fgb", "shp"], "default": "geojson" }
        },
        "featureId": {
            "name": "featureId", "in": "path", "required": true,
            "description": "Feature id (a string; block ids keep their leading zeros).",
            "schema": { "type": "string" }
        }
    })
}

fn feature_schema(c: &Collection) -> Value {
    let props: Map<String, Value> = c
        .properties
        .iter()
        .map(|p| (p.name.clone(), json!({ "type": p.kind.json_type(), "nullable": true })))
        .collect();
    let geometry = match c.geometry {
        GeometryKind::Point => "Point",
        GeometryKind::MultiPolygon => "MultiPolygon",
    };
    json!({
        "type": "object",
        "required": ["type", "id", "geometry", "properties"],
        "properties": {
            "type": { "type": "string", "enum": ["Feature"] },
            "id": { "type": "string" },
            "geometry": { "type": "object",
                "description": format!("A GeoJSON {geometry} (CRS84 lon/lat, or the CRS the `crs` parameter asked for)") },
            "properties": { "type": "object", "properties": props }
        }
    })
}

fn items_path(c: &Collection) -> Value {
    let mut params: Vec<Value> =
        ["limit", "offset", "bbox", "datetime", "bbox-crs", "crs", "filter", "filter-lang", "filter-crs", "f"]
            .iter()
            .map(|p| json!({ "$ref": format!("#/components/parameters/{p}") }))
            .collect();
    for p in &c.properties {
        params.push(json!({
            "name": p.name, "in": "query", "required": false, "style": "form", "explode": false,
            "description": format!("Only features whose `{}` equals this value.", p.name),
            "schema": { "type": p.kind.json_type() }
        }));
    }
    let collection = json!({
        "type": "object",
        "required": ["type", "features"],
        "properties": {
            "type": { "type": "string", "enum": ["FeatureCollection"] },
            "timeStamp": { "type": "string", "format": "date-time" },
            "numberMatched": { "type": "integer", "minimum": 0 },
            "numberReturned": { "type": "integer", "minimum": 0 },
            "links": { "type": "array", "items": { "$ref": "#/components/schemas/Link" } },
            "features": { "type": "array", "items": feature_schema(c) }
        }
    });
    json!({ "get": {
        "tags": ["Data"],
        "operationId": format!("getFeatures_{}", c.id.replace('-', "_")),
        "summary": format!("Features of '{}'", c.id),
        "description": c.description,
        "parameters": params,
        "responses": {
            "200": { "description": "A page of features, with next/prev links",
                "headers": { "Content-Crs": content_crs_header() }, "content": {
                GEOJSON: { "schema": collection.clone() },
                "application/json": { "schema": collection },
                "text/csv": { "schema": { "type": "string" } },
                "application/geopackage+sqlite3": { "schema": { "type": "string", "format": "binary" } },
                "application/flatgeobuf": { "schema": { "type": "string", "format": "binary" } },
                "application/zip": { "schema": { "type": "string", "format": "binary" } }
            }},
            "400": problem_response("A malformed or unknown parameter"),
            "406": problem_response("None of the accepted media types is available")
        }
    }})
}

fn content_crs_header() -> Value {
    json!({ "description": "The CRS of the coordinates in the body, as `<uri>` (OGC API – Features Part 2)",
            "schema": { "type": "string" } })
}

fn item_path(c: &Collection) -> Value {
    let feature = feature_schema(c);
    json!({ "get": {
        "tags": ["Data"],
        "operationId": format!("getFeature_{}", c.id.replace('-', "_")),
        "summary": format!("One feature of '{}'", c.id),
        "parameters": [
            { "$ref": "#/components/parameters/featureId" },
            { "$ref": "#/components/parameters/crs" },
            { "$ref": "#/components/parameters/f" }
        ],
        "responses": {
            "200": { "description": "The feature", "headers": { "Content-Crs": content_crs_header() }, "content": {
                GEOJSON: { "schema": feature.clone() },
                "application/json": { "schema": feature },
                "text/csv": { "schema": { "type": "string" } }
            }},
            "400": problem_response("A malformed or unknown parameter (an unsupported crs)"),
            "404": problem_response("No such feature")
        }
    }})
}

/// Rewrite an OpenAPI 3.1 document as 3.0.3: `type: [T, "null"]` and `oneOf` with a null
/// schema become `nullable: true`, `examples` arrays in schemas become `example`.
pub fn downgrade_to_3_0(doc: &mut Value) {
    doc["openapi"] = Value::from("3.0.3");
    if let Some(o) = doc.as_object_mut() {
        o.remove("jsonSchemaDialect");
    }
    fn walk(v: &mut Value) {
        match v {
            Value::Object(o) => {
                if let Some(Value::Array(types)) = o.get("type").cloned() {
                    let non_null: Vec<Value> = types.iter().filter(|t| t.as_str() != Some("null")).cloned().collect();
                    if non_null.len() < types.len() {
                        o.insert("nullable".into(), Value::Bool(true));
                    }
                    match non_null.as_slice() {
                        [one] => {
                            o.insert("type".into(), one.clone());
                        }
                        _ => {
                            o.remove("type");
                        }
                    }
                }
                for key in ["oneOf", "anyOf"] {
                    if let Some(Value::Array(list)) = o.get_mut(key) {
                        let before = list.len();
                        list.retain(|s| s.get("type").and_then(Value::as_str) != Some("null"));
                        let removed = list.len() < before;
                        if removed {
                            if list.len() == 1 {
                                let only = list.remove(0);
                                o.remove(key);
                                // A lone $ref cannot carry siblings in 3.0: wrap it.
                                o.insert("allOf".into(), Value::Array(vec![only]));
                            }
                            o.insert("nullable".into(), Value::Bool(true));
                        }
                    }
                }
                if let Some(Value::Array(examples)) = o.get("examples").cloned()
                    && o.contains_key("type")
                {
                    o.remove("examples");
                    if let Some(first) = examples.into_iter().next() {
                        o.insert("example".into(), first);
                    }
                }
                // Siblings of a $ref are ignored in 3.0 (and confuse some readers): drop them.
                if o.contains_key("$ref") {
                    o.retain(|k, _| k == "$ref");
                }
                for child in o.values_mut() {
                    walk(child);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(doc);
}

/// The OpenAPI 3.0 document.
pub async fn api(State(state): State<AppState>, BaseUrl(base): BaseUrl, q: QueryPairs) -> Result<Response, AppError> {
    q.only(&["f"])?;
    json_only(&q)?;
    let mut res = Json(document(&*state.layers_with_access().await?, &base)).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(OPENAPI_JSON));
    Ok(res)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A plain HTML page listing every endpoint and its parameters (no scripts).
pub async fn api_html(State(state): State<AppState>, BaseUrl(base): BaseUrl) -> Result<Html<String>, AppError> {
    let doc = document(&*state.layers_with_access().await?, &base);
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>belong API</title>\
         <style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}\
         code{background:#f3f3f3;padding:0 .2em}li{margin:.2em 0}</style></head><body>\
         <h1>belong API</h1><p>OGC API – Features (Core, GeoJSON, OpenAPI 3.0, Part 2 CRS by reference). \
         Machine-readable definition: <a href=\"api\">OpenAPI 3.0 JSON</a>.</p>",
    );
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            let Some(op) = item.get("get") else { continue };
            let summary = op["summary"].as_str().or(op["description"].as_str()).unwrap_or("");
            html.push_str(&format!("<h2><code>GET {}</code></h2><p>{}</p>", escape(path), escape(summary)));
            if let Some(params) = op["parameters"].as_array() {
                html.push_str("<ul>");
                for p in params {
                    let p = match p["$ref"].as_str().and_then(|r| r.rsplit('/').next()) {
                        Some(name) => &doc["components"]["parameters"][name],
                        None => p,
                    };
                    html.push_str(&format!(
                        "<li><code>{}</code> ({}): {}</li>",
                        escape(p["name"].as_str().unwrap_or("")),
                        escape(p["in"].as_str().unwrap_or("")),
                        escape(p["description"].as_str().unwrap_or(""))
                    ));
                }
                html.push_str("</ul>");
            }
        }
    }
    html.push_str("</body></html>");
    Ok(Html(html))
}
