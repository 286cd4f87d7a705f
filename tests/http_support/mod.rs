//! Fixtures for the router tests of the people, imports and auth endpoints: a fresh copy of a
//! demo database per test (writes must not leak between tests), tokens of every role, and a
//! response type that prints status, headers and body when an assertion fails.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use belong::app::{self, tokens::create_token};
use belong::core::{AccessRole, Role};
use belong::http::{AppState, ServeConfig, app};
use belong::ingest::blocks::BlockReadOptions;
use belong::ingest::resources::ResourceOptions;
use belong::store::{SqliteStore, Store};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// A demo resident (from `data/residents.csv`) whose data must never leak.
pub const RESIDENT_NAME: &str = "Mario Jimenez";
/// That resident's email.
pub const RESIDENT_EMAIL: &str = "mario.jimenez.1@example.org";
/// A demo ambassador's name and email.
pub const AMBASSADOR_NAME: &str = "Camila Orellana";
/// That ambassador's email.
pub const AMBASSADOR_EMAIL: &str = "camila.orellana.20001@example.org";

/// Import the committed demo catchment (`data/`) into `store`.
pub fn load_demo(store: &SqliteStore) {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    app::import_blocks(store, &data.join("blocks.shp"), &BlockReadOptions::default()).unwrap();
    app::import_people(store, &data.join("residents.csv"), Role::Resident, None, |_| {}).unwrap();
    app::import_people(store, &data.join("ambassadors.csv"), Role::Ambassador, None, |_| {}).unwrap();
    app::import_resources(store, &data.join("resources.csv"), None, &ResourceOptions::default()).unwrap();
    app::import_indicators(store, &data.join("indicators.csv")).unwrap();
}

/// The demo loaded once into a database file; tests copy it.
fn template() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let db = dir.join("template.db");
        let store = SqliteStore::open(&db).unwrap();
        load_demo(&store);
        drop(store); // checkpoints the WAL into the file
        db
    })
}

/// Bearer tokens of every kind.
pub struct Tokens {
    /// Viewer role.
    pub viewer: String,
    /// Recruiter role.
    pub recruiter: String,
    /// Manager role.
    pub manager: String,
    /// A manager token that has been revoked.
    pub revoked: String,
}

/// A router over a private copy of the demo database.
pub struct TestApp {
    /// The state (for `layers()`).
    pub state: AppState,
    /// Tokens stored in this database.
    pub tokens: Tokens,
    /// The database file.
    pub db: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// A fresh demo app with `config`.
pub async fn demo_app_with(config: ServeConfig) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("belong.db");
    std::fs::copy(template(), &db).unwrap();
    let store = SqliteStore::open(&db).unwrap();
    let token = |role| create_token(&store, role, None).unwrap();
    let (viewer, recruiter, manager) =
        (token(AccessRole::Viewer).token, token(AccessRole::Recruiter).token, token(AccessRole::Manager).token);
    let revoked = token(AccessRole::Manager);
    assert!(store.revoke_token(revoked.id).unwrap());
    let tokens = Tokens { viewer, recruiter, manager, revoked: revoked.token };
    let state = AppState::new(store, config).await.unwrap();
    TestApp { state, tokens, db, _dir: dir }
}

/// A fresh demo app with the default configuration.
pub async fn demo_app() -> TestApp {
    demo_app_with(ServeConfig::default()).await
}

/// A response, printable in full when an assertion fails.
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Vec<u8>,
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "status: {}", self.status)?;
        for (k, v) in &self.headers {
            writeln!(f, "{k}: {v:?}")?;
        }
        let text = String::from_utf8_lossy(&self.body);
        let cut: String = text.chars().take(3000).collect();
        write!(f, "\n{cut}")
    }
}

impl Reply {
    /// Assert the status.
    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Reply {
        assert_eq!(self.status, status, "unexpected status\n{self}");
        self
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e})\n{self}"))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header as text.
    pub fn header(&self, name: header::HeaderName) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The Content-Type header.
    pub fn content_type(&self) -> &str {
        self.header(header::CONTENT_TYPE)
    }

    /// Assert a problem+json body with this status; returns its detail.
    #[track_caller]
    pub fn problem_detail(self, status: StatusCode) -> String {
        let v = self.problem(status);
        v["detail"].as_str().unwrap_or_else(|| panic!("no detail: {v}")).to_string()
    }

    /// Assert a problem+json body with this status; returns the whole body.
    #[track_caller]
    pub fn problem(self, status: StatusCode) -> Value {
        let r = self.expect(status);
        assert_eq!(r.header(header::CONTENT_TYPE), "application/problem+json", "{r}");
        let v = r.json();
        assert_eq!(v["status"], status.as_u16(), "{r}");
        assert!(v["type"].is_string() && v["title"].is_string() && v["detail"].is_string(), "{r}");
        v
    }
}

/// A request under construction.
pub struct Req {
    method: Method,
    uri: String,
    token: Option<String>,
    authorization: Option<String>,
    content_type: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A request with `method` to `uri`.
pub fn req(method: Method, uri: &str) -> Req {
    Req {
        method,
        uri: uri.into(),
        token: None,
        authorization: None,
        content_type: None,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

impl Req {
    /// With `Authorization: Bearer token`.
    pub fn token(mut self, token: &str) -> Req {
        self.token = Some(token.into());
        self
    }

    /// With a raw Authorization header.
    pub fn authorization(mut self, value: &str) -> Req {
        self.authorization = Some(value.into());
        self
    }

    /// With another header.
    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// With a JSON body.
    pub fn json(self, v: &Value) -> Req {
        self.body("application/json", v.to_string().into_bytes())
    }

    /// With a body of this content type.
    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Req {
        self.content_type = Some(content_type.into());
        self.body = body.into();
        self
    }

    /// Send to the app's router.
    pub async fn send(self, t: &TestApp) -> Reply {
        self.send_to(app(t.state.clone())).await
    }

    /// Send to a router.
    pub async fn send_to(self, router: Router) -> Reply {
        let mut b = Request::builder().method(self.method).uri(&self.uri).header(header::HOST, "test.local");
        if let Some(t) = &self.token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(a) = &self.authorization {
            b = b.header(header::AUTHORIZATION, a.as_str());
        }
        for (k, v) in &self.headers {
            b = b.header(k.as_str(), v.as_str());
        }
        if let Some(c) = &self.content_type {
            b = b.header(header::CONTENT_TYPE, c.as_str());
        }
        let res = router.oneshot(b.body(Body::from(self.body)).unwrap()).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        Reply { status, headers, body }
    }
}

/// `GET uri` anonymously.
pub async fn get(app: &TestApp, uri: &str) -> Reply {
    req(Method::GET, uri).send(app).await
}

/// `GET uri` with a token.
pub async fn get_as(app: &TestApp, uri: &str, token: &str) -> Reply {
    req(Method::GET, uri).token(token).send(app).await
}

/// The uncovered block with the most residents (ties: the smallest id).
pub fn most_populous_uncovered(t: &TestApp) -> String {
    let layers = t.state.layers();
    let uncovered = layers.coverage.blocks.iter().filter(|b| !b.covered);
    let best = uncovered.min_by(|a, b| b.residents.cmp(&a.residents).then_with(|| a.block_id.cmp(&b.block_id)));
    best.unwrap().block_id.clone()
}

/// An uncovered block and a point inside it (WGS84).
pub fn uncovered_block(t: &TestApp) -> (String, f64, f64) {
    use geo::InteriorPoint;
    let id = most_populous_uncovered(t);
    let blocks = t.state.store.blocks().unwrap();
    let block = blocks.iter().find(|b| b.id == id).unwrap();
    let p = block.geometry.interior_point().unwrap();
    let index = belong::core::BlockIndex::new(&blocks);
    assert_eq!(index.locate(p.x(), p.y()), Some(id.as_str()));
    (id, p.x(), p.y())
}
