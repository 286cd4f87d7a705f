//! The web coverage map (`/map`) and the HTML landing page for browsers. The page's own files
//! (`web/src/`) and MapLibre GL JS (from npm) are embedded by `build.rs`, so the binary serves
//! them with no files beside it; the page itself talks to the service only over HTTP.

use std::sync::LazyLock;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{AppError, AppState};
use crate::core::text::quote;

/// What `build.rs` embedded.
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

/// Our own files revalidate on every load (they change with the binary); MapLibre's are
/// requested with its version in the URL by the page, so they may be kept for a day.
pub(super) const REVALIDATE: &str = "no-cache";
const VENDOR_CACHE: &str = "public, max-age=86400";

/// An embedded file (or a page made from one), ready to serve.
pub(super) struct Asset {
    pub(super) bytes: Bytes,
    media_type: &'static str,
    cache_control: &'static str,
    /// Weak, since the compression layer may re-encode the body.
    etag: String,
}

impl Asset {
    pub(super) fn new(name: &str, bytes: impl Into<Bytes>, cache_control: &'static str) -> Asset {
        let bytes = bytes.into();
        let etag = format!("W/\"{}\"", digest_hex(&bytes));
        Asset { bytes, media_type: media_type(name), cache_control, etag }
    }

    /// The file, or 304 when the client's copy (`If-None-Match`) is current.
    pub(super) fn respond(&self, headers: &HeaderMap) -> Response {
        let fresh = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|tag| tag.trim().trim_start_matches("W/") == &self.etag[2..]));
        let mut res = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { self.bytes.clone().into_response() };
        let h = res.headers_mut();
        if !fresh {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.media_type));
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(self.cache_control));
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if let Ok(v) = HeaderValue::from_str(&self.etag) {
            h.insert(header::ETAG, v);
        }
        res
    }
}

/// The first 12 bytes of the SHA-256 of `bytes`, in hex: a version tag for embedded files.
pub(super) fn digest_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..12].iter().map(|b| format!("{b:02x}")).collect()
}

fn media_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        _ => "text/plain; charset=utf-8",
    }
}

/// The files of `web/src/`, by name.
pub(super) static WEB_SRC: LazyLock<Vec<(&'static str, Asset)>> = LazyLock::new(|| {
    embedded::WEB_SRC
        .iter()
        .map(|(name, bytes)| (*name, Asset::new(name, Bytes::from_static(bytes), REVALIDATE)))
        .collect()
});

/// MapLibre's files, by the name they are served under in `/map/vendor/`; empty when MapLibre
/// was not installed at build time.
static VENDOR: LazyLock<Vec<(&'static str, Asset)>> = LazyLock::new(|| {
    [
        ("maplibre-gl.mjs", embedded::MAPLIBRE_JS),
        ("maplibre-gl-worker.mjs", embedded::MAPLIBRE_WORKER_JS),
        ("maplibre-gl.css", embedded::MAPLIBRE_CSS),
        ("LICENSE.txt", embedded::MAPLIBRE_LICENSE),
    ]
    .into_iter()
    .filter_map(|(name, bytes)| Some((name, Asset::new(name, Bytes::from_static(bytes?), VENDOR_CACHE))))
    .collect()
});

pub(super) fn find(assets: &'static [(&'static str, Asset)], name: &str) -> Option<&'static Asset> {
    assets.iter().find(|(n, _)| *n == name).map(|(_, a)| a)
}

/// The MapLibre GL JS version embedded in this binary, if any.
pub fn maplibre_version() -> Option<&'static str> {
    embedded::MAPLIBRE_VERSION
}

/// `GET /map`: the page, or, in a binary built without MapLibre, what to install.
pub async fn page(headers: HeaderMap) -> Result<Response, AppError> {
    if maplibre_version().is_none() {
        let mut res = Html(MISSING_MAPLIBRE).into_response();
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(res);
    }
    let page =
        find(&WEB_SRC, "index.html").ok_or_else(|| AppError::Internal("web/src/index.html not embedded".into()))?;
    Ok(page.respond(&headers))
}

/// `GET /map/`: the page lives at `/map`, which its relative links assume.
pub async fn trailing_slash() -> Redirect {
    Redirect::permanent("../map")
}

/// `GET /map/{file}` (and `/find/{file}`): the pages' scripts and styles.
pub async fn file(Path(name): Path<String>, headers: HeaderMap) -> Result<Response, AppError> {
    find(&WEB_SRC, &name)
        .map(|a| a.respond(&headers))
        .ok_or_else(|| AppError::NotFound(format!("no file {name} in the map page", name = quote(&name))))
}

/// `GET /map/vendor/{file}`: MapLibre GL JS.
pub async fn vendor(Path(name): Path<String>, headers: HeaderMap) -> Result<Response, AppError> {
    if maplibre_version().is_none() {
        return Err(AppError::NotFound(
            "MapLibre GL JS is not embedded in this build: install Node.js with npm and rebuild belong".into(),
        ));
    }
    find(&VENDOR, &name)
        .map(|a| a.respond(&headers))
        .ok_or_else(|| AppError::NotFound(format!("no file {name} in /map/vendor", name = quote(&name))))
}

/// What the page needs to know about the service.
#[derive(Debug, Serialize)]
pub struct MapConfig {
    /// Raster XYZ URL template of the basemap (`--basemap`), if any.
    pub basemap: Option<String>,
    /// Active ambassadors a block needs to count as covered.
    pub target: u32,
    /// The embedded MapLibre GL JS version.
    pub maplibre: Option<&'static str>,
}

/// `GET /map/config.json`.
pub async fn config(State(state): State<AppState>) -> Response {
    let body =
        MapConfig { basemap: state.config.basemap.clone(), target: state.config.target, maplibre: maplibre_version() };
    let mut res = Json(body).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// The landing page for people (`/` asked for with `Accept: text/html`): links to the map, the
/// API documentation and the collections.
pub fn landing_page(base: &str) -> Result<Response, AppError> {
    let template =
        find(&WEB_SRC, "landing.html").ok_or_else(|| AppError::Internal("web/src/landing.html not embedded".into()))?;
    let text = String::from_utf8_lossy(&template.bytes).replace("{{base}}", &escape_html(base));
    let mut res = Html(text).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Same URL, different bodies by Accept: caches must keep them apart.
    res.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
    Ok(res)
}

pub(super) fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// `/map` in a binary built where npm was not available.
const MISSING_MAPLIBRE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Coverage map unavailable · belong</title>\
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:42em;margin:3em auto;padding:0 1em;color:#1f2933}\
code,pre{background:#f1f3f5;border-radius:4px;padding:.1em .3em}pre{padding:.8em}</style></head><body>\
<h1>The coverage map is not included in this build</h1>\
<p>This <code>belong</code> binary was built without MapLibre GL JS, the map library the page needs, \
because Node.js and npm were not available (or <code>BELONG_SKIP_NPM</code> was set) when it was compiled.</p>\
<p>To get the map:</p><ol>\
<li>Install <strong>Node.js 18 or newer with npm</strong> (Debian/Ubuntu: <code>apt-get install nodejs npm</code>; \
otherwise see <a href=\"https://nodejs.org/\">nodejs.org</a>).</li>\
<li>Rebuild: <code>cargo build --release</code> (it runs <code>npm ci</code> in <code>web/</code> and embeds the map), \
then restart <code>belong serve</code>.</li></ol>\
<p>Everything else works without it: the <a href=\"api.html\">API</a>, the <a href=\"collections\">collections</a> \
and the <a href=\"coverage\">coverage summary</a>.</p></body></html>";
