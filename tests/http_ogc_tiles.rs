//! OGC API – Tiles over the router: conformance and links, the tile matrix set, the tile set
//! lists and metadata of every tiled collection and of the dataset, and tiles that are the very
//! bytes (and ETag, and caching) of `/tiles/...`; plus every bad request.
#![allow(clippy::unwrap_used)]

mod http_support;

use axum::http::{Method, StatusCode, header};
use http_support::{TestApp, demo_app, get, req};
use serde_json::Value;

/// The z14 tile holding the demo HQ (see `tests/http_tiles.rs`): XYZ `14/2808/6542`, so OGC
/// tile matrix 14, row 6542, column 2808.
const HQ_Z14: (u8, u32, u32) = (14, 2808, 6542);
const TILESETS_VECTOR: &str = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector";
const TILING_SCHEME: &str = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme";
const ALL_LAYERS: &str = "blocks,resources,school-readiness,resource-access";

fn links<'a>(doc: &'a Value, rel: &str) -> Vec<&'a Value> {
    doc["links"].as_array().unwrap_or_else(|| panic!("no links: {doc:#}")).iter().filter(|l| l["rel"] == rel).collect()
}

/// The one link of `rel`, as a path on the test host.
#[track_caller]
fn path_of(doc: &Value, rel: &str) -> String {
    let found = links(doc, rel);
    assert_eq!(found.len(), 1, "one {rel} link expected in {doc:#}");
    let href = found[0]["href"].as_str().unwrap();
    href.strip_prefix("http://test.local").unwrap_or_else(|| panic!("{href} is not absolute")).to_string()
}

async fn json(t: &TestApp, uri: &str) -> Value {
    let r = get(t, uri).await.expect(StatusCode::OK);
    assert!(r.content_type().starts_with("application/json"), "{r}");
    r.json()
}

#[tokio::test]
async fn conformance_and_links_lead_to_the_tiles() {
    let t = demo_app().await;
    let classes = json(&t, "/conformance").await["conformsTo"].clone();
    for c in ["core", "tileset", "tilesets-list", "geodata-tilesets", "dataset-tilesets", "mvt"] {
        let uri = format!("http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/{c}");
        assert!(classes.as_array().unwrap().iter().any(|v| v == uri.as_str()), "{uri} not in {classes}");
    }
    let landing = json(&t, "/").await;
    assert_eq!(path_of(&landing, TILESETS_VECTOR), "/tiles");
    assert_eq!(path_of(&landing, "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes"), "/tileMatrixSets");
    assert_eq!(links(&landing, TILESETS_VECTOR)[0]["type"], "application/json");

    // Every collection is a tile layer here, so each links its tile sets; the list says so too.
    let layers = t.state.layers();
    let tiled: Vec<&str> = layers.tiles().layers().iter().map(|l| l.name.as_str()).collect();
    assert_eq!(layers.tile_layer_ids(), tiled, "the cheap answer and the tile source must agree");
    let all = json(&t, "/collections").await;
    for c in all["collections"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        assert!(tiled.contains(&id), "{id}");
        assert_eq!(path_of(c, TILESETS_VECTOR), format!("/collections/{id}/tiles"));
        // Not from the collection's own document: GDAL 3.6 would then open the tiles it cannot
        // read instead of the items (see ogc.rs).
        let one = json(&t, &format!("/collections/{id}")).await;
        assert!(links(&one, TILESETS_VECTOR).is_empty(), "{one}");
    }
}

#[tokio::test]
async fn the_tile_matrix_set_is_web_mercator_quad() {
    let t = demo_app().await;
    let list = json(&t, "/tileMatrixSets").await;
    let sets = list["tileMatrixSets"].as_array().unwrap();
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0]["id"], "WebMercatorQuad");
    assert_eq!(sets[0]["uri"], "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad");
    let tms = json(&t, &path_of(&sets[0], "self")).await;
    assert_eq!(tms["crs"], "http://www.opengis.net/def/crs/EPSG/0/3857");
    let matrices = tms["tileMatrices"].as_array().unwrap();
    assert_eq!(matrices.len(), 25, "zooms 0 to 24, as the tile routes answer");
    for (z, m) in matrices.iter().enumerate() {
        assert_eq!(m["id"], z.to_string());
        assert_eq!(m["matrixWidth"].as_u64(), Some(1 << z));
        assert_eq!((m["tileWidth"].as_u64(), m["cornerOfOrigin"].as_str()), (Some(256), Some("topLeft")));
        let cell = m["cellSize"].as_f64().unwrap();
        assert!((cell * (1u64 << z) as f64 - 156_543.033_928_041).abs() < 1e-6, "z{z}: {cell}");
        assert_eq!(m["pointOfOrigin"], serde_json::json!([-20_037_508.342_789_244, 20_037_508.342_789_244]));
    }
    // The 1.0 names GDAL 3.6 reads are there too.
    assert_eq!(
        (tms["identifier"].as_str(), tms["supportedCRS"].as_str()),
        (Some("WebMercatorQuad"), tms["crs"].as_str())
    );
    assert_eq!(matrices[3]["identifier"], "3");
    assert_eq!(matrices[3]["topLeftCorner"], matrices[3]["pointOfOrigin"]);
}

#[tokio::test]
async fn collection_tile_sets_describe_limits_layers_and_the_tile_template() {
    let t = demo_app().await;
    let list = json(&t, "/collections/blocks/tiles").await;
    assert_eq!(path_of(&list, "self"), "/collections/blocks/tiles");
    let sets = list["tilesets"].as_array().unwrap();
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0]["dataType"], "vector");
    assert_eq!(sets[0]["tileMatrixSetURI"], "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad");
    assert_eq!(path_of(&sets[0], TILING_SCHEME), "/tileMatrixSets/WebMercatorQuad");

    let set = json(&t, &path_of(&sets[0], "self")).await;
    assert_eq!(path_of(&set, "self"), "/collections/blocks/tiles/WebMercatorQuad");
    assert_eq!(path_of(&set, TILING_SCHEME), "/tileMatrixSets/WebMercatorQuad");
    assert_eq!(path_of(&set, "collection"), "/collections/blocks");
    assert_eq!(set["crs"], "http://www.opengis.net/def/crs/EPSG/0/3857");
    assert_eq!(set["dataType"], "vector");
    let item = links(&set, "item")[0];
    assert_eq!(item["type"], "application/vnd.mapbox-vector-tile");
    assert_eq!(item["templated"], true);
    assert_eq!(path_of(&set, "item"), "/collections/blocks/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}");

    // Limits for zooms 0 to 16, each holding the tiles the collection's extent meets.
    let extent = json(&t, "/collections/blocks").await["extent"]["spatial"]["bbox"][0].clone();
    let e: Vec<f64> = extent.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let limits = set["tileMatrixSetLimits"].as_array().unwrap();
    assert_eq!(limits.len(), 17);
    for (z, l) in limits.iter().enumerate() {
        assert_eq!(l["tileMatrix"], z.to_string());
        let n = 1u64 << z;
        let (cols, rows) = belong::tiles::TileId::range(z as u8, [e[0], e[1], e[2], e[3]]);
        let at = |k: &str| l[k].as_u64().unwrap();
        assert_eq!((at("minTileCol"), at("maxTileCol")), (u64::from(*cols.start()), u64::from(*cols.end())), "z{z}");
        assert_eq!((at("minTileRow"), at("maxTileRow")), (u64::from(*rows.start()), u64::from(*rows.end())), "z{z}");
        assert!(at("maxTileRow") < n && at("maxTileCol") < n);
    }
    let (z, x, y) = HQ_Z14;
    let l14 = &limits[usize::from(z)];
    assert!((l14["minTileCol"].as_u64().unwrap()..=l14["maxTileCol"].as_u64().unwrap()).contains(&u64::from(x)));
    assert!((l14["minTileRow"].as_u64().unwrap()..=l14["maxTileRow"].as_u64().unwrap()).contains(&u64::from(y)));
    // The extent, through the layer's Web Mercator round trip.
    let bb = &set["boundingBox"];
    let corners = [&bb["lowerLeft"][0], &bb["lowerLeft"][1], &bb["upperRight"][0], &bb["upperRight"][1]];
    for (i, c) in corners.iter().enumerate() {
        assert!((c.as_f64().unwrap() - e[i]).abs() < 1e-9, "boundingBox {bb} vs extent {extent}");
    }

    // The layer, with the fields TileJSON gives.
    let layers = set["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!((layers[0]["id"].as_str(), layers[0]["geometryDimension"].as_u64()), (Some("blocks"), Some(2)));
    assert_eq!((layers[0]["minTileMatrix"].as_str(), layers[0]["maxTileMatrix"].as_str()), (Some("0"), Some("16")));
    let props = &layers[0]["propertiesSchema"]["properties"];
    let tilejson = json(&t, "/tiles/blocks.json").await;
    let fields = tilejson["vector_layers"][0]["fields"].as_object().unwrap();
    assert_eq!(props.as_object().unwrap().len(), fields.len());
    for (name, kind) in fields {
        let ty = match kind.as_str().unwrap() {
            "Number" => "number",
            "Boolean" => "boolean",
            _ => "string",
        };
        assert_eq!(props[name]["type"], ty, "{name}");
    }
    assert_eq!(
        (props["block_id"]["type"].as_str(), props["covered"]["type"].as_str()),
        (Some("string"), Some("boolean"))
    );

    // Points are dimension 0.
    let resources = json(&t, "/collections/resources/tiles/WebMercatorQuad").await;
    assert_eq!(resources["layers"][0]["geometryDimension"], 0);
}

#[tokio::test]
async fn collection_tiles_are_the_xyz_tiles() {
    let t = demo_app().await;
    let (z, x, y) = HQ_Z14;
    for id in ["blocks", "resources", "school-readiness", "resource-access"] {
        let xyz = get(&t, &format!("/tiles/{id}/{z}/{x}/{y}.mvt")).await.expect(StatusCode::OK);
        let ogc_url = format!("/collections/{id}/tiles/WebMercatorQuad/{z}/{y}/{x}");
        let ogc = get(&t, &ogc_url).await.expect(StatusCode::OK);
        assert_eq!(ogc.body, xyz.body, "{id}: the same bytes");
        assert!(!ogc.body.is_empty());
        assert_eq!(ogc.header(header::ETAG), xyz.header(header::ETAG), "{id}");
        assert_eq!(ogc.content_type(), "application/vnd.mapbox-vector-tile");
        assert_eq!(ogc.header(header::CACHE_CONTROL), "no-cache");
        assert_eq!(ogc.header(header::VARY), "Accept-Encoding");
        let etag = ogc.header(header::ETAG).to_string();
        req(Method::GET, &ogc_url).header("if-none-match", &etag).send(&t).await.expect(StatusCode::NOT_MODIFIED);
        let gz = req(Method::GET, &ogc_url).header("accept-encoding", "gzip").send(&t).await.expect(StatusCode::OK);
        assert_eq!(gz.header(header::CONTENT_ENCODING), "gzip");
    }
    // One cut, shared by both URLs (the cache is keyed by the layers, not by the route).
    let cache = t.state.live().unwrap().tile_cache().len();
    assert_eq!(cache, 4, "{cache} tiles cached for 4 layers at one place");
    // A tile with nothing in it: 204 with an ETag, as /tiles/... answers.
    let empty = get(&t, "/collections/blocks/tiles/WebMercatorQuad/14/0/0").await.expect(StatusCode::NO_CONTENT);
    assert!(empty.body.is_empty() && !empty.header(header::ETAG).is_empty());
}

#[tokio::test]
async fn the_dataset_tile_set_has_every_layer_beside_the_xyz_routes() {
    let t = demo_app().await;
    let list = json(&t, "/tiles").await;
    assert_eq!(path_of(&list, "self"), "/tiles");
    let set = json(&t, &path_of(&list["tilesets"][0], "self")).await;
    assert_eq!(path_of(&set, "self"), "/tiles/WebMercatorQuad");
    assert_eq!(path_of(&set, "data"), "/collections");
    assert_eq!(path_of(&set, "item"), "/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}");
    let ids: Vec<&str> = set["layers"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids.join(","), ALL_LAYERS);
    assert_eq!(set["tileMatrixSetLimits"].as_array().unwrap().len(), 17);

    let (z, x, y) = HQ_Z14;
    let ogc = get(&t, &format!("/tiles/WebMercatorQuad/{z}/{y}/{x}")).await.expect(StatusCode::OK);
    let xyz = get(&t, &format!("/tiles/{ALL_LAYERS}/{z}/{x}/{y}.mvt")).await.expect(StatusCode::OK);
    assert_eq!(ogc.body, xyz.body);
    assert_eq!(ogc.header(header::ETAG), xyz.header(header::ETAG));
    // The XYZ routes the map uses are untouched.
    get(&t, &format!("/tiles/blocks/{z}/{x}/{y}.mvt")).await.expect(StatusCode::OK);
    assert_eq!(json(&t, "/tiles/blocks.json").await["tilejson"], "3.0.0");
}

#[tokio::test]
async fn bad_tile_requests_say_what_is_wrong() {
    let t = demo_app().await;
    let cases = [
        ("/collections/roads/tiles", StatusCode::NOT_FOUND, "no collection 'roads'"),
        ("/collections/roads/tiles/WebMercatorQuad", StatusCode::NOT_FOUND, "no collection 'roads'"),
        ("/collections/roads/tiles/WebMercatorQuad/0/0/0", StatusCode::NOT_FOUND, "no collection 'roads'"),
        ("/collections/blocks/tiles/WorldCRS84Quad", StatusCode::NOT_FOUND, "WebMercatorQuad only"),
        ("/collections/blocks/tiles/WorldCRS84Quad/0/0/0", StatusCode::NOT_FOUND, "WebMercatorQuad only"),
        ("/tileMatrixSets/WorldCRS84Quad", StatusCode::NOT_FOUND, "no tile matrix set 'WorldCRS84Quad'"),
        ("/collections/blocks/tiles/WebMercatorQuad/25/0/0", StatusCode::NOT_FOUND, "tile matrices are 0 to 24"),
        ("/collections/blocks/tiles/WebMercatorQuad/2/4/0", StatusCode::NOT_FOUND, "row 4, column 0 is outside"),
        ("/collections/blocks/tiles/WebMercatorQuad/2/0/4", StatusCode::NOT_FOUND, "from 0 to 3"),
        ("/tiles/WebMercatorQuad/3/8/0", StatusCode::NOT_FOUND, "outside tile matrix 3"),
        ("/collections/blocks/tiles/WebMercatorQuad/z/0/0", StatusCode::BAD_REQUEST, "tileMatrix 'z'"),
        ("/collections/blocks/tiles/WebMercatorQuad/1/-1/0", StatusCode::BAD_REQUEST, "tileRow '-1'"),
        ("/tiles/WebMercatorQuad/1/0/0.5", StatusCode::BAD_REQUEST, "tileCol '0.5'"),
        ("/collections/blocks/tiles?f=xml", StatusCode::BAD_REQUEST, "only available as f=json"),
        ("/tiles/WebMercatorQuad?f=html", StatusCode::BAD_REQUEST, "only available as f=json"),
        ("/tileMatrixSets?limit=1", StatusCode::BAD_REQUEST, "limit"),
        ("/collections/blocks/tiles/WebMercatorQuad/0/0/0?f=mvt", StatusCode::BAD_REQUEST, "f"),
    ];
    for (url, status, needle) in cases {
        let detail = get(&t, url).await.problem_detail(status);
        assert!(detail.contains(needle), "{url}: {detail:?} should mention {needle:?}");
    }
}

#[tokio::test]
async fn the_openapi_document_lists_the_tiles_paths() {
    let t = demo_app().await;
    let v = get(&t, "/api").await.expect(StatusCode::OK).json();
    for path in [
        "/tileMatrixSets",
        "/tileMatrixSets/{tileMatrixSetId}",
        "/collections/{collectionId}/tiles",
        "/collections/{collectionId}/tiles/{tileMatrixSetId}",
        "/collections/{collectionId}/tiles/{tileMatrixSetId}/{tileMatrix}/{tileRow}/{tileCol}",
        "/tiles",
        "/tiles/WebMercatorQuad",
        "/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}",
    ] {
        assert!(v["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
}
