//! Router tests of the resource finder page (`/find`): served as HTML in the language asked for
//! (`?lang=` over `Accept-Language`, English by default), its scripts and strings, and its
//! service worker with the header that lets its scope be the page; without a socket.

mod http_support;

use axum::http::{Method, StatusCode, header};
use http_support::{Reply, demo_app, get, req};

#[track_caller]
fn assert_type(r: &Reply, prefix: &str) {
    assert!(r.header(header::CONTENT_TYPE).starts_with(prefix), "expected {prefix}\n{r}");
}

/// `GET /find` with an `Accept-Language` header (or none).
async fn find(t: &http_support::TestApp, uri: &str, accept_language: Option<&str>) -> Reply {
    let r = req(Method::GET, uri);
    let r = match accept_language {
        Some(v) => r.header("accept-language", v),
        None => r,
    };
    r.send(t).await.expect(StatusCode::OK)
}

#[tokio::test]
async fn find_page_is_html_in_the_language_asked_for() {
    let t = demo_app().await;
    for (uri, accept, lang, heading) in [
        ("/find", None, "en", "Find help nearby"),
        ("/find", Some("es-MX,es;q=0.9,en;q=0.8"), "es", "Encuentre ayuda cerca"),
        ("/find", Some("en-US,en;q=0.9,es;q=0.5"), "en", "Find help nearby"),
        ("/find", Some("fr-FR,es;q=0.7"), "es", "Encuentre ayuda cerca"),
        ("/find?lang=en", Some("es"), "en", "Find help nearby"),
        ("/find?lang=es", Some("en-US"), "es", "Encuentre ayuda cerca"),
        ("/find?lang=es", None, "es", "Encuentre ayuda cerca"),
    ] {
        let page = find(&t, uri, accept).await;
        assert_type(&page, "text/html; charset=utf-8");
        let html = page.text();
        assert!(html.contains(&format!("<html lang=\"{lang}\">")), "{uri} {accept:?}: expected lang {lang}\n{page}");
        assert!(html.contains(&format!(">{heading}</h1>")), "{uri} {accept:?}\n{page}");
        assert!(!html.contains("{{"), "a placeholder was left\n{page}");
        assert_eq!(page.header(header::CONTENT_LANGUAGE), lang, "{page}");
        assert!(page.header(header::VARY).contains("Accept-Language"), "{page}");
        assert!(html.contains(r#"<script type="module" src="find/find.js">"#), "{page}");
    }
    // The Spanish page has no English left in what the server wrote.
    let es = find(&t, "/find?lang=es", None).await.text();
    for english in ["Use my location", "What do you need?", "Nearest places", "Skip to the results"] {
        assert!(!es.contains(english), "{english:?} in the Spanish page");
    }
    // A client holding the current page (same language) gets 304.
    let page = find(&t, "/find", Some("es")).await;
    let etag = page.header(header::ETAG).to_string();
    let r = req(Method::GET, "/find").header("accept-language", "es").header("if-none-match", &etag).send(&t).await;
    r.expect(StatusCode::NOT_MODIFIED);
    let r = req(Method::GET, "/find").header("accept-language", "en").header("if-none-match", &etag).send(&t).await;
    r.expect(StatusCode::OK);
}

#[tokio::test]
async fn find_page_files_strings_and_service_worker() {
    let t = demo_app().await;
    for (path, media) in [
        ("/find/find.js", "text/javascript"),
        ("/find/find-i18n.js", "text/javascript"),
        ("/find/find-data.js", "text/javascript"),
        ("/find/dom.js", "text/javascript"),
        ("/find/find.css", "text/css"),
        ("/find/find-strings.json", "application/json"),
    ] {
        let r = get(&t, path).await.expect(StatusCode::OK);
        assert_type(&r, media);
        assert!(r.body.len() > 100, "{path} is nearly empty\n{r}");
    }
    let strings = get(&t, "/find/find-strings.json").await.expect(StatusCode::OK).json();
    assert_eq!(strings["es"]["use_location"], "Usar mi ubicación");

    let sw = get(&t, "/find/sw.js").await.expect(StatusCode::OK);
    assert_type(&sw, "text/javascript");
    assert_eq!(sw.header("service-worker-allowed".parse().unwrap()), "../find", "{sw}");
    assert_eq!(sw.header(header::CACHE_CONTROL), "no-cache", "{sw}");
    let text = sw.text();
    assert!(!text.contains("{{"), "a placeholder was left in the worker\n{sw}");
    let version = text.split("const VERSION = '").nth(1).and_then(|s| s.split('\'').next()).unwrap_or_default();
    assert_eq!(version.len(), 24, "the worker's version is a digest of the web files\n{sw}");
    // What the worker keeps for offline use exists.
    for path in ["/find", "/map/icon.svg", "/map/config.json", "/collections/resources/items?f=geojson&limit=10000"] {
        get(&t, path).await.expect(StatusCode::OK);
    }

    let r = get(&t, "/find/").await.expect(StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.header(header::LOCATION), "../find", "{r}");
    get(&t, "/find/nope.js").await.problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn landing_page_and_map_link_to_the_finder() {
    let t = demo_app().await;
    let landing = req(Method::GET, "/").header("accept", "text/html").send(&t).await.expect(StatusCode::OK);
    assert!(landing.text().contains("/find\""), "{landing}");
    let json = get(&t, "/?f=json").await.expect(StatusCode::OK).json();
    let links = json["links"].as_array().unwrap();
    assert!(links.iter().any(|l| l["href"].as_str().is_some_and(|h| h.ends_with("/find"))), "{json}");
    let map = get(&t, "/map").await.expect(StatusCode::OK);
    if map.text().contains("map/app.js") {
        assert!(map.text().contains("href=\"find\""), "{map}");
    }
}
