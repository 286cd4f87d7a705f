//! OGC API metadata resources: the landing page, conformance, and the collections (with links
//! to their tile sets, which `ogc_tiles` serves).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::format::{self, GEOJSON, JSON, QueryPairs};
use super::{AppError, AppState, BaseUrl};
use crate::app::layers::Collection;
use crate::app::output_crs::CrsList;
use crate::core::text::{QUOTED, clip};

/// CRS84: WGS84 longitude/latitude, what features are stored and served in by default.
pub use crate::app::output_crs::CRS84;
/// Media type of the OpenAPI 3.0 document.
pub const OPENAPI_JSON: &str = "application/vnd.oai.openapi+json;version=3.0";

/// The OGC API – Features conformance classes implemented (the filtering ones are
/// [`super::queryables::CONFORMANCE`], the Tiles ones [`super::ogc_tiles::CONFORMANCE`]).
pub const CONFORMANCE: [&str; 4] = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
];

/// A hypermedia link.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Link {
    /// Target URL.
    pub href: String,
    /// Relation: `self`, `alternate`, `next`, `prev`, `collection`, `items`, ...
    pub rel: String,
    /// Media type of the target.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Human title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `true` when `href` is a URI template (RFC 6570), as tile URLs are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templated: Option<bool>,
}

impl Link {
    /// A link with a type and a title.
    pub fn new(href: impl Into<String>, rel: &str, media_type: &str, title: &str) -> Link {
        Link {
            href: href.into(),
            rel: rel.into(),
            media_type: Some(media_type.into()),
            title: (!title.is_empty()).then(|| title.into()),
            templated: None,
        }
    }

    /// The same link, marked as a URI template.
    pub fn templated(self) -> Link {
        Link { templated: Some(true), ..self }
    }
}

/// The landing page.
#[derive(Debug, Serialize, ToSchema)]
pub struct LandingPage {
    /// Service title.
    pub title: String,
    /// What the service offers.
    pub description: String,
    /// `self`, `service-desc`, `service-doc`, `conformance`, `data`, the tile sets and tile
    /// matrix sets.
    pub links: Vec<Link>,
}

/// The conformance declaration.
#[derive(Debug, Serialize, ToSchema)]
pub struct Conformance {
    /// Conformance class URIs.
    #[serde(rename = "conformsTo")]
    pub conforms_to: Vec<String>,
}

/// Spatial extent of a collection.
#[derive(Debug, Serialize, ToSchema)]
pub struct SpatialExtent {
    /// One bounding box `[min lon, min lat, max lon, max lat]`.
    pub bbox: Vec<[f64; 4]>,
    /// Always CRS84.
    pub crs: String,
}

/// Extent of a collection.
#[derive(Debug, Serialize, ToSchema)]
pub struct Extent {
    /// Spatial extent.
    pub spatial: SpatialExtent,
    /// Temporal extent, for collections whose features have a date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temporal: Option<TemporalExtent>,
}

/// Temporal extent of a collection.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemporalExtent {
    /// One interval `[first date, last date]` (RFC 3339 dates).
    pub interval: Vec<[String; 2]>,
    /// Always the Gregorian calendar.
    pub trs: String,
}

/// Description of one collection.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionInfo {
    /// Collection id, as used in URLs.
    pub id: String,
    /// Human title.
    pub title: String,
    /// Human description.
    pub description: String,
    /// Extent of all features (absent when the collection is empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extent: Option<Extent>,
    /// Always `feature`.
    #[serde(rename = "itemType")]
    pub item_type: String,
    /// CRSs features can be returned in (`crs`) and bboxes given in (`bbox-crs`), CRS84 first
    /// (OGC API – Features Part 2).
    pub crs: Vec<String>,
    /// The CRS features are stored in, so served without reprojection: CRS84.
    #[serde(rename = "storageCrs")]
    pub storage_crs: String,
    /// `self`, `items`, and the tile sets of a collection with tiles.
    pub links: Vec<Link>,
}

/// The list of collections.
#[derive(Debug, Serialize, ToSchema)]
pub struct Collections {
    /// `self`.
    pub links: Vec<Link>,
    /// The CRSs every collection is offered in (Part 2's global list; each collection lists
    /// them too).
    pub crs: Vec<String>,
    /// Every collection.
    pub collections: Vec<CollectionInfo>,
}

/// The landing page: what this service is, and links to everything else.
#[utoipa::path(get, path = "/", tag = "Capabilities", operation_id = "getLandingPage",
    params(("f" = Option<String>, Query, description = "Format: json")),
    responses((status = 200, description = "The landing page (an HTML page with the same links when the client \
                  prefers text/html, as browsers do)", body = LandingPage, content_type = "application/json"),
              (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn landing(BaseUrl(base): BaseUrl, q: QueryPairs, headers: HeaderMap) -> Result<Response, AppError> {
    q.only(&["f"])?;
    format::json_only(&q)?;
    // A person's browser gets a page with links; API clients (GDAL asks for JSON or */*) and
    // `f=json` keep the JSON document.
    if q.get("f").is_none() && format::prefers_html(&headers) {
        return super::map::landing_page(&base);
    }
    Ok(Json(LandingPage {
        title: "belong".into(),
        description: "Census blocks with ambassador coverage, community resources and school readiness, \
                      as OGC API – Features collections."
            .into(),
        links: vec![
            Link::new(format!("{base}/"), "self", JSON, "This document"),
            Link::new(format!("{base}/api"), "service-desc", OPENAPI_JSON, "The API definition (OpenAPI 3.0)"),
            Link::new(format!("{base}/api.html"), "service-doc", "text/html", "The API documentation"),
            Link::new(format!("{base}/conformance"), "conformance", JSON, "Conformance classes implemented"),
            Link::new(format!("{base}/collections"), "data", JSON, "The feature collections"),
            Link::new(
                format!("{base}/tiles"),
                super::ogc_tiles::REL_TILESETS_VECTOR,
                JSON,
                "Vector tiles of every layer together (OGC API – Tiles)",
            ),
            Link::new(
                format!("{base}/tileMatrixSets"),
                super::ogc_tiles::REL_TILING_SCHEMES,
                JSON,
                "The tile matrix sets tiles are served on",
            ),
            Link::new(format!("{base}/map"), "alternate", "text/html", "Coverage map"),
            Link::new(
                format!("{base}/find"),
                "alternate",
                "text/html",
                "Find help nearby (resource finder, English and Spanish)",
            ),
        ],
    })
    .into_response())
}

/// The conformance classes this service implements.
#[utoipa::path(get, path = "/conformance", tag = "Capabilities", operation_id = "getConformanceDeclaration",
    params(("f" = Option<String>, Query, description = "Format: json")),
    responses((status = 200, description = "The conformance classes", body = Conformance, content_type = "application/json"),
              (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn conformance(q: QueryPairs) -> Result<Json<Conformance>, AppError> {
    q.only(&["f"])?;
    format::json_only(&q)?;
    let classes = CONFORMANCE.iter().chain(&super::queryables::CONFORMANCE).chain(&super::ogc_tiles::CONFORMANCE);
    Ok(Json(Conformance { conforms_to: classes.map(|s| s.to_string()).collect() }))
}

/// The description of `c`, offered in the CRSs `crs`; `tiled` links its tile sets (for a
/// collection that is a tile layer).
fn info(base: &str, c: &Collection, crs: &[String], tiled: bool) -> CollectionInfo {
    let url = format!("{base}/collections/{}", c.id);
    let mut links = vec![
        Link::new(url.clone(), "self", JSON, "This collection"),
        Link::new(format!("{url}/items"), "items", GEOJSON, "The features as GeoJSON"),
        Link::new(format!("{url}/items?f=csv"), "items", "text/csv", "The features as CSV"),
        Link::new(
            format!("{url}/queryables"),
            super::queryables::REL_QUERYABLES,
            super::queryables::SCHEMA_JSON,
            "What a CQL2 filter can name",
        ),
    ];
    // Whole-layer files for GIS (rel "enclosure", as OGC API – Features has bulk downloads).
    for d in crate::export::DownloadFormat::ALL {
        let f = super::format::Format::Download(d).f();
        links.push(Link::new(
            format!("{url}/items?f={f}"),
            "enclosure",
            d.media_type(),
            &format!("The whole layer as {}", d.title()),
        ));
    }
    if tiled {
        let rel = super::ogc_tiles::REL_TILESETS_VECTOR;
        links.push(Link::new(format!("{url}/tiles"), rel, JSON, "Vector tiles (OGC API – Tiles)"));
    }
    CollectionInfo {
        id: c.id.into(),
        title: c.title.into(),
        description: c.description.into(),
        extent: c.extent.map(|b| Extent {
            spatial: SpatialExtent { bbox: vec![b], crs: CRS84.into() },
            temporal: c.temporal_extent.map(|(first, last)| TemporalExtent {
                interval: vec![[format!("{first}T00:00:00Z"), format!("{last}T23:59:59Z")]],
                trs: "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian".into(),
            }),
        }),
        item_type: "feature".into(),
        // Listed in full rather than as Part 2's "#/crs" pointer: the collection's own document
        // has no global list to point to, and not every client follows the pointer.
        crs: crs.to_vec(),
        storage_crs: CRS84.into(),
        links,
    }
}

/// Every feature collection.
#[utoipa::path(get, path = "/collections", tag = "Capabilities", operation_id = "getCollections",
    params(("f" = Option<String>, Query, description = "Format: json")),
    responses((status = 200, description = "The collections", body = Collections, content_type = "application/json"),
              (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn collections(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    q: QueryPairs,
) -> Result<Json<Collections>, AppError> {
    q.only(&["f"])?;
    format::json_only(&q)?;
    let layers = state.layers_with_access().await?;
    let crs = CrsList::for_layers(&layers).uris();
    Ok(Json(Collections {
        links: vec![Link::new(format!("{base}/collections"), "self", JSON, "This document")],
        collections: {
            let tiled = layers.tile_layer_ids();
            layers.all_collections().map(|c| info(&base, c, &crs, tiled.contains(&c.id))).collect()
        },
        crs,
    }))
}

/// One feature collection.
#[utoipa::path(get, path = "/collections/{collectionId}", tag = "Capabilities", operation_id = "describeCollection",
    params(("collectionId" = String, Path, description = "blocks, resources, school-readiness or resource-access"),
           ("f" = Option<String>, Query, description = "Format: json")),
    responses((status = 200, description = "The collection", body = CollectionInfo, content_type = "application/json"),
              (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json"),
              (status = 404, description = "No such collection", body = super::error::Problem, content_type = "application/problem+json")))]
pub async fn collection(
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    q: QueryPairs,
) -> Result<Json<CollectionInfo>, AppError> {
    q.only(&["f"])?;
    format::json_only(&q)?;
    let layers = state.layers_for(&id).await?;
    let c = find(&layers, &id)?;
    // The collection's own document does not link its tile sets (the list does): GDAL 3.6's
    // OGCAPI driver (Debian 12's) follows such a link in preference to the items, cannot read
    // vector tiles (OSGeo/gdal#7993), and then fails to open the collection at all, where
    // without it `ogrinfo OGCAPI:…/collections/blocks` reads the features.
    Ok(Json(info(&base, c, &CrsList::for_layers(&layers).uris(), false)))
}

/// A collection by id, or a 404 naming the ones there are.
pub fn find<'a>(layers: &'a crate::app::layers::Layers, id: &str) -> Result<&'a Collection, AppError> {
    layers.collection(id).ok_or_else(|| {
        let known = layers.collection_ids();
        AppError::NotFound(format!(
            "no collection '{id}'; collections are: {}",
            known.join(", "),
            id = clip(id, QUOTED)
        ))
    })
}
