//! The HTTP service (`belong serve`): OGC API – Features (Core, GeoJSON, OpenAPI 3.0, CRS by reference) and
//! OGC API – Tiles (vector tiles) over the public layers, coverage summaries and health.
//! Handlers only translate HTTP to and from the use cases in [`crate::app`]; reads are served
//! from the live state ([`Live`]), an immutable snapshot that [`AppState::refresh`] advances
//! after every write.

mod access;
mod auth;
mod body;
mod coverage;
mod download;
pub mod error;
mod features;
mod find;
mod format;
mod health;
mod history;
mod imports;
mod listen;
mod map;
mod ogc;
mod ogc_tiles;
mod openapi;
mod people;
mod queryables;
mod rollup;
mod tiles;
mod upload;

pub use upload::uploads_root;

/// Remove the uploads a killed `belong serve` left behind (they hold personal data): every
/// folder under [`uploads_root`] no running service holds. Returns how many were removed.
pub fn clean_uploads() -> usize {
    upload::clean_leftovers(&uploads_root(), &std::env::temp_dir())
}

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use axum::routing::{get, post};
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use error::AppError;

use crate::app::layers::Layers;
use crate::app::live::Live;
use crate::store::Store;

/// How the service behaves; parsed from the command line.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Active ambassadors a block needs to count as covered.
    pub target: u32,
    /// Public base URL for links (e.g. `https://maps.example.org/belong`), when behind a proxy;
    /// `None` derives `http://{Host}` from each request.
    pub base_url: Option<String>,
    /// Origins allowed by CORS; empty allows any origin (the layers are public).
    pub cors_origins: Vec<String>,
    /// Requests taking longer are cancelled with 408.
    pub request_timeout: Duration,
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
    /// How much an uploaded zipped shapefile may inflate to.
    pub zip: crate::ingest::ZipLimits,
    /// Connections open at once (`--max-connections`); more wait in the listen backlog.
    pub max_connections: usize,
    /// Time a client has to send a request head (`--header-timeout`), also while a kept-alive
    /// connection waits for its next request.
    pub header_timeout: Duration,
    /// A connection with nothing in flight and no bytes moving this long is closed
    /// (`--idle-timeout`).
    pub idle_timeout: Duration,
    /// Every endpoint but `/health` needs a bearer token (`belong serve --private`).
    pub private: bool,
    /// Raster XYZ URL template drawn under the blocks on `/map` (`--basemap`); `None` draws
    /// them on a plain background.
    pub basemap: Option<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            target: 1,
            base_url: None,
            cors_origins: Vec::new(),
            request_timeout: Duration::from_secs(30),
            max_body: 64 * 1024 * 1024,
            zip: crate::ingest::ZipLimits::default(),
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
            private: false,
            basemap: None,
        }
    }
}

/// Shared state of every handler. Cheap to clone. What the service serves lives in
/// [`Live`] (the application layer); this adds the configuration and request-scoped caches.
#[derive(Clone)]
pub struct AppState {
    /// The database. Shared by threads; reads never wait for a write.
    pub store: Arc<dyn Store>,
    /// The served state, advanced by every write (see [`AppState::refresh`]); empty while the
    /// service starts (every endpoint but `/health` answers 503 until it is set).
    live: Arc<OnceLock<Arc<Live>>>,
    /// Service configuration.
    pub config: Arc<ServeConfig>,
    /// The replay behind `/coverage/history`, continued with the rows written since.
    history: Arc<Mutex<crate::app::history::HistoryCache>>,
    /// Block-to-area assignments behind `/coverage/rollup`, until blocks or areas are re-imported.
    rollups: Arc<Mutex<crate::app::rollup::MembershipCache>>,
    /// The finder and the access tables behind `/resources/nearest` and `/access/*`.
    access: Arc<crate::app::access::AccessCache>,
    /// Answers of `/coverage/uncovered` for the current recruiting data.
    ranked: Arc<coverage::RankedCache>,
    /// Tile cuts: one per core at a time, a bounded queue behind.
    renders: Arc<tiles::RenderGate>,
}

impl AppState {
    /// Build the first state (off the async workers) and the state around it.
    pub async fn new(store: impl Store + 'static, config: ServeConfig) -> Result<AppState, AppError> {
        let state = AppState::starting(store, config);
        state.load().await?;
        Ok(state)
    }

    /// The state around a live state that is not loaded yet: the service can answer `/health`
    /// (and 503 elsewhere) at once, while [`AppState::load`] reads the database.
    pub fn starting(store: impl Store + 'static, config: ServeConfig) -> AppState {
        AppState::starting_shared(Arc::new(store), config)
    }

    /// [`AppState::starting`] on a store that is already shared (as `belong serve` opens it).
    pub fn starting_shared(store: Arc<dyn Store>, config: ServeConfig) -> AppState {
        AppState {
            store,
            live: Arc::default(),
            config: Arc::new(config),
            history: Arc::default(),
            rollups: Arc::default(),
            access: Arc::default(),
            ranked: Arc::default(),
            renders: Arc::new(tiles::RenderGate::for_this_machine()),
        }
    }

    /// Read the database and publish the first live state (off the async workers).
    pub async fn load(&self) -> Result<(), AppError> {
        if self.live.get().is_some() {
            return Ok(());
        }
        let (store, target) = (self.store.clone(), self.config.target);
        let live = tokio::task::spawn_blocking(move || Live::open(store, target)).await??;
        // The history replay numbers people as the live state does: their ids are kept once.
        if let Ok(mut history) = self.history.lock() {
            history.share_person_keys(live.person_keys());
        }
        // Two loads racing: the first one wins, the other is dropped.
        let _ = self.live.set(Arc::new(live));
        Ok(())
    }

    /// The database as the change-feed watcher last saw it (`Unknown` while starting).
    pub fn db_state(&self) -> crate::app::live::DbState {
        match self.live.get() {
            Some(live) => live.db_state(),
            None => crate::app::live::DbState::Unknown,
        }
    }

    /// Whether the first live state is loaded.
    pub fn is_ready(&self) -> bool {
        self.live.get().is_some()
    }

    /// The same store and state with another configuration (note: the state keeps the target
    /// it was opened with).
    pub fn with_config(&self, config: ServeConfig) -> AppState {
        AppState { config: Arc::new(config), ..self.clone() }
    }

    /// The current snapshot (an empty one while the service starts).
    pub fn layers(&self) -> Arc<Layers> {
        match self.live.get() {
            Some(live) => live.layers(),
            None => Layers::empty(self.config.target),
        }
    }

    /// The served layers with the resource-access collection measured (off the async workers:
    /// the first time after an import takes about a second at county scale).
    pub async fn layers_with_access(&self) -> Result<Arc<Layers>, AppError> {
        let layers = self.layers();
        if !layers.access_ready() {
            let building = layers.clone();
            tokio::task::spawn_blocking(move || {
                building.access_layer();
            })
            .await?;
        }
        Ok(layers)
    }

    /// [`AppState::layers`], measuring resource access first when collection `id` is it.
    pub async fn layers_for(&self, id: &str) -> Result<Arc<Layers>, AppError> {
        if id == crate::app::layers::RESOURCE_ACCESS { self.layers_with_access().await } else { Ok(self.layers()) }
    }

    /// The live state; 503 while the service starts.
    pub fn live(&self) -> Result<&Arc<Live>, AppError> {
        self.live.get().ok_or_else(starting)
    }

    /// Apply what was committed since the last snapshot and publish it: every write calls this
    /// before answering, so the next request sees the write. Costs what the write changed.
    pub async fn refresh(&self) -> Result<(), AppError> {
        let live = self.live()?.clone();
        tokio::task::spawn_blocking(move || live.catch_up()).await??;
        Ok(())
    }

    /// Follow the database for commits by other processes (a `belong import` while the service
    /// runs) and lapse adoptions on time; see [`Live::watch`].
    pub fn watch(&self, every: Duration) -> Result<tokio::task::JoinHandle<()>, AppError> {
        Ok(self.live()?.watch(every))
    }
}

/// Run `f` on the store off the async workers. Here beside [`AppState`], not with the uploads:
/// it is how any handler (imports, people, history, rollups) reaches the store, upload or not.
async fn run_on_store<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn Store) -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(&*store)).await?
}

fn starting() -> AppError {
    AppError::Unavailable("the service is starting: loading the catchment and the layers; try again shortly".into())
}

/// Middleware: until the first live state is loaded, every endpoint but `/health` is 503.
async fn ready(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if state.is_ready() || req.uri().path() == "/health" { next.run(req).await } else { starting().into_response() }
}

/// Longest request target (path and query) read, in bytes: no endpoint needs more, and hyper's
/// own limit (64 KiB) answers with an empty 414.
pub const MAX_URI: usize = 8 * 1024;

/// Most bytes of request headers read: cookies and tokens fit many times over, and hyper's own
/// limit (about 400 KiB with the request line) answers with an empty 431.
pub const MAX_HEADERS: usize = 32 * 1024;

/// Middleware: refuse oversized request heads with a problem body. Runs before anything parses
/// the query or a token, so the refusal is the same everywhere.
async fn head_limits(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_URI {
        let detail = format!("the request path and query are {target} bytes; at most {MAX_URI} are read");
        return AppError::UriTooLong(detail).into_response();
    }
    // As on the wire: `name: value\r\n`.
    let headers: usize = req.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if headers > MAX_HEADERS {
        let detail = format!("the request headers are {headers} bytes; at most {MAX_HEADERS} are read");
        return AppError::HeadersTooLarge(detail).into_response();
    }
    next.run(req).await
}

/// The base URL links are built from: `--base-url`, else `http://{Host}`.
#[derive(Debug, Clone)]
pub struct BaseUrl(pub String);

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(base) = &state.config.base_url {
            return Ok(BaseUrl(base.trim_end_matches('/').to_string()));
        }
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        // A Host header is client input: keep only characters a host[:port] can have.
        let clean: String =
            host.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')).collect();
        Ok(BaseUrl(format!("http://{clean}")))
    }
}

/// The router with every endpoint and middleware.
pub fn app(state: AppState) -> Router {
    let config = state.config.clone();
    let authenticate = axum::middleware::from_fn_with_state(state.clone(), auth::authenticate);
    let ready = axum::middleware::from_fn_with_state(state.clone(), ready);
    let routes = Router::new()
        .route("/", get(ogc::landing))
        .route("/conformance", get(ogc::conformance))
        .route("/collections", get(ogc::collections))
        .route("/collections/{collection_id}", get(ogc::collection))
        .route("/collections/{collection_id}/items", get(features::items))
        .route("/collections/{collection_id}/items/{feature_id}", get(features::item))
        .route("/collections/{collection_id}/queryables", get(queryables::queryables))
        .route("/api", get(openapi::api))
        .route("/api.html", get(openapi::api_html))
        .route("/coverage", get(coverage::summary))
        .route("/coverage/uncovered", get(coverage::uncovered))
        .route("/coverage/history", get(history::history))
        .route("/coverage/rollup", get(rollup::rollup))
        .route("/coverage/rollup/layers", get(rollup::layers))
        .route("/resources/nearest", get(access::nearest))
        .route("/access/gaps", get(access::gaps))
        .route("/access/rollup", get(access::rollup))
        .route("/people", get(people::list).post(people::create))
        .route("/people/import", post(people::import))
        .route("/people/{id}", get(people::get_one).patch(people::update).delete(people::delete))
        .route("/people/{id}/adopt", post(people::adopt))
        .route("/imports/blocks", post(imports::blocks))
        .route("/imports/resources", post(imports::resources))
        .route("/imports/indicators", post(imports::indicators))
        .route("/imports/areas", post(imports::areas))
        .route("/health", get(health::health))
        .route("/collections/{collection_id}/tiles", get(ogc_tiles::collection_tilesets))
        .route("/collections/{collection_id}/tiles/{tms}", get(ogc_tiles::collection_tileset))
        .route("/collections/{collection_id}/tiles/{tms}/{z}/{row}/{col}", get(ogc_tiles::collection_tile))
        .route("/tileMatrixSets", get(ogc_tiles::tile_matrix_sets))
        .route("/tileMatrixSets/{tms}", get(ogc_tiles::tile_matrix_set))
        // The dataset tile set's static segment wins over `/tiles/{layers}` (no layer has its
        // name), so the OGC paths and the XYZ ones the map uses live side by side.
        .route("/tiles", get(ogc_tiles::dataset_tilesets))
        .route("/tiles/WebMercatorQuad", get(ogc_tiles::dataset_tileset))
        .route("/tiles/WebMercatorQuad/{z}/{row}/{col}", get(ogc_tiles::dataset_tile))
        .route("/tiles/{layers}", get(tiles::tilejson))
        .route("/tiles/{layers}/{z}/{x}/{y}", get(tiles::tile))
        .route("/map", get(map::page))
        .route("/map/", get(map::trailing_slash))
        .route("/map/config.json", get(map::config))
        .route("/map/{file}", get(map::file))
        .route("/map/vendor/{file}", get(map::vendor))
        .route("/find", get(find::page))
        .route("/find/", get(find::trailing_slash))
        .route("/find/sw.js", get(find::service_worker))
        .route("/find/{file}", get(map::file))
        .fallback(error::not_found)
        .with_state(state);

    let cors = if config.cors_origins.is_empty() {
        CorsLayer::new().allow_origin(Any)
    } else {
        let origins: Vec<HeaderValue> =
            config.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
        CorsLayer::new().allow_origin(AllowOrigin::list(origins))
    }
    .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS, Method::POST, Method::PATCH, Method::DELETE])
    .allow_headers([header::ACCEPT, header::CONTENT_TYPE, header::AUTHORIZATION]);

    // Logs carry method, path (never the query string, which may hold filter values), status
    // and latency: nothing personal.
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &axum::http::Request<_>| {
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
        })
        .on_request(())
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO));

    // Outermost last: the problem+json rewrite sees the timeout's and the body limit's answers.
    routes
        .layer(authenticate)
        .layer(ready)
        .layer(axum::middleware::from_fn(head_limits))
        .layer(DefaultBodyLimit::max(config.max_body))
        .layer(RequestBodyLimitLayer::new(config.max_body))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, config.request_timeout))
        .layer(axum::middleware::map_response(error::problemize))
        // Fastest level: a 1,000-feature page compresses ~5x either way, and the default level
        // made compression, not serving, the bottleneck. A zip (shapefile download) is
        // compressed already.
        .layer(
            CompressionLayer::new().gzip(true).br(true).quality(CompressionLevel::Fastest).compress_when(
                DefaultPredicate::new()
                    .and(NotForContentType::const_new(crate::export::DownloadFormat::Shapefile.media_type())),
            ),
        )
        .layer(cors)
        .layer(trace)
}

/// Serve `state` on `addr` until SIGINT or SIGTERM, then finish the requests in flight.
/// `on_ready` is called with the bound address (port 0 picks a free port) as soon as the port is
/// open: `/health` answers at once, everything else 503 until the live state is loaded in the
/// background. A state that cannot be loaded stops the service with that error. Connections are
/// capped and timed out as the configuration says (see `listen.rs`).
pub async fn serve(state: AppState, addr: SocketAddr, on_ready: impl FnOnce(SocketAddr)) -> std::io::Result<()> {
    let listener = listen::bind(addr)?;
    on_ready(listener.local_addr()?);
    // Dropped unsent when the load succeeds; sent when it fails, to stop serving.
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<()>();
    let loader = {
        let state = state.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            // A database that cannot be reached yet (PostgreSQL restarting, the network not up)
            // is waited for, with /health saying `starting`; any other error ends the service.
            let mut wait = Duration::from_millis(250);
            loop {
                match state.load().await {
                    Ok(()) => break,
                    Err(AppError::App(crate::app::AppError::Store(crate::store::StoreError::Unavailable(e)))) => {
                        tracing::warn!("the database is unreachable; retrying in {wait:?}: {e}");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(5));
                    }
                    Err(e) => {
                        tracing::error!("loading the live state: {e}");
                        let _ = failed_tx.send(());
                        return Err(e.to_string());
                    }
                }
            }
            tracing::info!(after = ?started.elapsed(), "live state loaded; serving every endpoint");
            warm_up(&state);
            // Other processes' writes and lapsed adoptions: a cheap look at the feed's head per
            // tick.
            Ok(state.watch(Duration::from_millis(500)).ok())
        })
    };
    let stop = async move {
        tokio::select! {
            () = shutdown_signal() => {},
            Ok(()) = failed_rx => {},
        }
    };
    let limits = listen::ConnLimits {
        max_connections: state.config.max_connections,
        header_timeout: state.config.header_timeout,
        idle_timeout: state.config.idle_timeout,
    };
    listen::run(listener, app(state), limits, stop).await;
    match loader.await {
        Ok(Err(e)) => return Err(std::io::Error::other(format!("loading the live state: {e}"))),
        Ok(Ok(Some(watcher))) => watcher.abort(),
        _ => {}
    }
    Ok(())
}

/// After the first state is loaded, build what the first requests of each kind would otherwise
/// wait for — the tile layers, the recruiting data, the history replay — in the background, one
/// after the other: on two cores building them side by side finishes no sooner, and each one's
/// transient memory (a county's tile layers, recruiting people, history rows) would add up to
/// the process's peak instead of being reused by the next.
fn warm_up(state: &AppState) {
    let history = history::warmer(state);
    let live = state.live().ok().cloned();
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        if let Some(live) = live {
            let layers = live.layers();
            layers.tiles();
            layers.access_layer();
            drop(layers);
            // One ranking with the defaults finds every uncovered block's nearest ambassadors;
            // later writes carry them forward. An empty page: the rows of all ~74,000
            // uncovered blocks of a county were 75 MB of the process's peak, for nothing.
            let ranked = live
                .recruit()
                .map(|data| crate::app::recruit::rank_page(&data, &Default::default(), 0, 0).map(|(n, _)| n));
            if let Err(e) = ranked {
                tracing::warn!("preparing the recruiting data: {e}");
            }
        }
        history();
        // Start-up builds and drops far more than it keeps (rows, maps, per-thread buffers):
        // hand the freed pages back to the system (measured 4-50 MB of a county's RSS).
        store.release_memory();
        release_free_memory();
    });
}

/// Return the allocator's free pages to the operating system.
fn release_free_memory() {
    // SAFETY: `mi_collect` only walks mimalloc's own free lists; it is safe to call from any
    // thread at any time (mimalloc's documented contract), and the binary uses mimalloc as its
    // global allocator.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
