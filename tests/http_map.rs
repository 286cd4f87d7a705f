//! Router tests of the coverage map page (`/map`, its scripts, MapLibre, its configuration) and
//! of the HTML landing page browsers get at `/`, without a socket.

mod http_support;

use axum::http::{Method, StatusCode, header};
use belong::http::ServeConfig;
use http_support::{Reply, demo_app, demo_app_with, get, req};

/// Whether this build embedded MapLibre GL JS (`build.rs` found npm); `/map/config.json` says.
async fn maplibre_embedded(t: &http_support::TestApp) -> bool {
    !get(t, "/map/config.json").await.expect(StatusCode::OK).json()["maplibre"].is_null()
}

#[track_caller]
fn assert_type(r: &Reply, prefix: &str) {
    assert!(r.header(header::CONTENT_TYPE).starts_with(prefix), "expected {prefix}\n{r}");
}

#[tokio::test]
async fn map_page_scripts_and_maplibre() {
    let t = demo_app().await;
    let page = get(&t, "/map").await.expect(StatusCode::OK);
    assert_type(&page, "text/html; charset=utf-8");
    if !maplibre_embedded(&t).await {
        // A build without npm: the page says what to install, the API still works.
        assert!(page.text().contains("Node.js") && page.text().contains("npm"), "{page}");
        get(&t, "/map/vendor/maplibre-gl.mjs").await.problem(StatusCode::NOT_FOUND);
        get(&t, "/coverage").await.expect(StatusCode::OK);
        eprintln!("note: MapLibre GL JS is not embedded in this build; tested the install page only");
        return;
    }
    assert!(page.text().contains(r#"<script type="module" src="map/app.js">"#), "{page}");
    assert!(!page.header(header::ETAG).is_empty(), "{page}");

    for (path, media) in [
        ("/map/app.js", "text/javascript"),
        ("/map/dom.js", "text/javascript"),
        ("/map/trend.js", "text/javascript"),
        ("/map/rollup.js", "text/javascript"),
        ("/map/app.css", "text/css"),
        ("/map/icon.svg", "image/svg+xml"),
        ("/map/vendor/maplibre-gl.mjs", "text/javascript"),
        ("/map/vendor/maplibre-gl-worker.mjs?v=6.17.0", "text/javascript"),
        ("/map/vendor/maplibre-gl.css", "text/css"),
        ("/map/vendor/LICENSE.txt", "text/plain"),
    ] {
        let r = get(&t, path).await.expect(StatusCode::OK);
        assert_type(&r, media);
        assert!(r.body.len() > 100, "{path} is nearly empty\n{r}");
        assert_eq!(r.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff", "{r}");
        assert!(!r.header(header::CACHE_CONTROL).is_empty(), "{r}");
    }
    let js = get(&t, "/map/vendor/maplibre-gl.mjs").await.expect(StatusCode::OK);
    assert!(js.text().contains("MapLibre GL JS"), "not MapLibre:\n{js}");
    assert!(js.header(header::CACHE_CONTROL).contains("max-age"), "{js}");

    // A client holding the current version gets 304 without a body; an old version gets the file.
    let etag = js.header(header::ETAG).to_string();
    let r = req(Method::GET, "/map/vendor/maplibre-gl.mjs").header("if-none-match", &etag).send(&t).await;
    let r = r.expect(StatusCode::NOT_MODIFIED);
    assert!(r.body.is_empty(), "{r}");
    assert_eq!(r.header(header::ETAG), etag, "{r}");
    req(Method::GET, "/map/app.js").header("if-none-match", "W/\"old\"").send(&t).await.expect(StatusCode::OK);
}

#[tokio::test]
async fn unknown_map_files_are_404_and_the_trailing_slash_redirects() {
    let t = demo_app().await;
    get(&t, "/map/nope.js").await.problem(StatusCode::NOT_FOUND);
    get(&t, "/map/vendor/nope.js").await.problem(StatusCode::NOT_FOUND);
    get(&t, "/map/vendor/..%2Fapp.js").await.problem(StatusCode::NOT_FOUND);
    let r = get(&t, "/map/").await.expect(StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.header(header::LOCATION), "../map", "{r}");
}

#[tokio::test]
async fn map_config_has_the_basemap_and_target() {
    let t = demo_app().await;
    let c = get(&t, "/map/config.json").await.expect(StatusCode::OK).json();
    assert_eq!(c["basemap"], serde_json::Value::Null, "{c}");
    assert_eq!(c["target"], 1, "{c}");

    let basemap = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
    let t = demo_app_with(ServeConfig { basemap: Some(basemap.into()), target: 2, ..ServeConfig::default() }).await;
    let c = get(&t, "/map/config.json").await.expect(StatusCode::OK).json();
    assert_eq!(c["basemap"], basemap, "{c}");
    assert_eq!(c["target"], 2, "{c}");
}

#[tokio::test]
async fn browsers_get_an_html_landing_page_and_api_clients_json() {
    let t = demo_app().await;
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
    let r = req(Method::GET, "/").header("accept", browser).send(&t).await.expect(StatusCode::OK);
    assert_type(&r, "text/html");
    assert!(r.text().contains(r#"href="http://test.local/map""#), "{r}");
    assert!(r.text().contains(r#"href="http://test.local/api.html""#), "{r}");
    assert!(r.text().contains(r#"href="http://test.local/collections""#), "{r}");
    assert_eq!(r.header(header::VARY), "Accept", "{r}");

    // JSON stays the default: no Accept, GDAL's and scripts' Accept headers, and f=json.
    for accept in [None, Some("application/json"), Some("*/*"), Some("application/json, text/html;q=0.5")] {
        let mut q = req(Method::GET, "/");
        if let Some(a) = accept {
            q = q.header("accept", a);
        }
        let r = q.send(&t).await.expect(StatusCode::OK);
        assert_type(&r, "application/json");
        let links = r.json()["links"].as_array().cloned().unwrap_or_default();
        assert!(
            links.iter().any(|l| l["href"] == "http://test.local/map" && l["type"] == "text/html"),
            "no map link for Accept {accept:?}\n{r}"
        );
    }
    let r = req(Method::GET, "/?f=json").header("accept", browser).send(&t).await.expect(StatusCode::OK);
    assert_type(&r, "application/json");
}
