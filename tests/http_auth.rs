//! Router tests of roles and bearer tokens: every role against every class of endpoint,
//! malformed, unknown and revoked tokens, `--private`, and logs without personal data.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod http_support;

use std::io::Write;
use std::sync::Mutex;

use axum::http::{Method, StatusCode, header};
use belong::http::ServeConfig;
use http_support::*;
use serde_json::json;

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Anonymous,
    Viewer,
    Recruiter,
    Manager,
}

fn token(t: &TestApp, who: Who) -> Option<String> {
    match who {
        Who::Anonymous => None,
        Who::Viewer => Some(t.tokens.viewer.clone()),
        Who::Recruiter => Some(t.tokens.recruiter.clone()),
        Who::Manager => Some(t.tokens.manager.clone()),
    }
}

/// The endpoint classes: (method, uri, content type, body, least role; `None` = public).
fn endpoints() -> Vec<(Method, &'static str, &'static str, String, Option<Who>)> {
    vec![
        (Method::GET, "/", "", String::new(), None),
        (Method::GET, "/api", "", String::new(), None),
        (Method::GET, "/conformance", "", String::new(), None),
        (Method::GET, "/collections/blocks/items?limit=1", "", String::new(), None),
        (Method::GET, "/collections/resources/items?limit=1", "", String::new(), None),
        (Method::GET, "/coverage", "", String::new(), None),
        (Method::GET, "/coverage/uncovered", "", String::new(), None),
        (Method::GET, "/coverage/history", "", String::new(), None),
        (Method::GET, "/coverage/rollup?by=tract", "", String::new(), None),
        (Method::GET, "/coverage/rollup/layers", "", String::new(), None),
        (Method::GET, "/people?limit=1", "", String::new(), Some(Who::Recruiter)),
        (Method::GET, "/people/R000001", "", String::new(), Some(Who::Recruiter)),
        // Writes are sent with bodies that fail validation, so the matrix changes nothing.
        (Method::POST, "/people", "application/json", "{}".into(), Some(Who::Manager)),
        (Method::PATCH, "/people/R000001", "application/json", r#"{"email": "x"}"#.into(), Some(Who::Manager)),
        (Method::DELETE, "/people/no-such-person", "", String::new(), Some(Who::Manager)),
        (Method::POST, "/people/import?role=resident", "text/csv", "id,name\n".into(), Some(Who::Manager)),
        (Method::POST, "/imports/blocks", "application/geo+json", "{}".into(), Some(Who::Manager)),
        (Method::POST, "/imports/resources", "text/csv", "".into(), Some(Who::Manager)),
        (Method::POST, "/imports/indicators", "text/csv", "".into(), Some(Who::Manager)),
        (Method::POST, "/imports/areas?name=x", "application/geo+json", "{}".into(), Some(Who::Manager)),
    ]
}

fn rank(who: Who) -> u8 {
    match who {
        Who::Anonymous => 0,
        Who::Viewer => 1,
        Who::Recruiter => 2,
        Who::Manager => 3,
    }
}

#[tokio::test]
async fn every_role_against_every_endpoint_class() {
    let t = demo_app().await;
    for (method, uri, ct, body, least) in endpoints() {
        for who in [Who::Anonymous, Who::Viewer, Who::Recruiter, Who::Manager] {
            let mut r = req(method.clone(), uri);
            if !ct.is_empty() {
                r = r.body(ct, body.clone());
            }
            if let Some(tok) = token(&t, who) {
                r = r.token(&tok);
            }
            let reply = r.send(&t).await;
            let expected = match least {
                None => None,
                Some(_) if who == Who::Anonymous => Some(StatusCode::UNAUTHORIZED),
                Some(least) if rank(who) < rank(least) => Some(StatusCode::FORBIDDEN),
                Some(_) => None,
            };
            match expected {
                Some(status) => {
                    let v = reply.problem(status);
                    assert!(!v.to_string().contains("Mario"), "{v}");
                }
                None => assert!(
                    !matches!(reply.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
                        && !reply.status.is_server_error(),
                    "{method} {uri} as {who:?}\n{reply}"
                ),
            }
        }
    }
}

#[tokio::test]
async fn recruiters_read_people_viewers_do_not() {
    let t = demo_app().await;
    let r = get(&t, "/people").await;
    assert_eq!(r.header(header::WWW_AUTHENTICATE).split(' ').next(), Some("Bearer"), "{r}");
    r.problem(StatusCode::UNAUTHORIZED);
    get_as(&t, "/people", &t.tokens.viewer).await.problem(StatusCode::FORBIDDEN);
    let v = get_as(&t, "/people?role=resident", &t.tokens.recruiter).await.expect(StatusCode::OK).json();
    assert!(v["people"].as_array().unwrap().iter().any(|p| p["name"].is_string()), "{v}");
    // A recruiter cannot write.
    req(Method::DELETE, "/people/R000001").token(&t.tokens.recruiter).send(&t).await.problem(StatusCode::FORBIDDEN);
    let body = json!({"role": "resident", "lon": -118.28, "lat": 34.04});
    req(Method::POST, "/people").token(&t.tokens.recruiter).json(&body).send(&t).await.problem(StatusCode::FORBIDDEN);
    get_as(&t, "/people/R000001", &t.tokens.manager).await.expect(StatusCode::OK);
}

#[tokio::test]
async fn bad_tokens_are_401_even_on_public_endpoints() {
    let t = demo_app().await;
    for uri in ["/coverage", "/collections/blocks/items?limit=1", "/people", "/no/such/route"] {
        for (what, auth) in [
            ("unknown", "Bearer blg_0000000000000000000000000000000000000000000000000000000000000000".to_string()),
            ("not ours", "Bearer abc".to_string()),
            ("revoked", format!("Bearer {}", t.tokens.revoked)),
            ("no token", "Bearer".to_string()),
            ("basic", "Basic dXNlcjpwYXNz".to_string()),
            ("two tokens", format!("Bearer {} {}", t.tokens.manager, t.tokens.manager)),
        ] {
            let r = req(Method::GET, uri).authorization(&auth).send(&t).await;
            assert!(r.header(header::WWW_AUTHENTICATE).starts_with("Bearer"), "{what} on {uri}\n{r}");
            let v = r.problem(StatusCode::UNAUTHORIZED);
            assert!(!v.to_string().contains("blg_"), "the token is echoed: {v}");
        }
    }
    // /health answers probes whatever they send.
    req(Method::GET, "/health").authorization("Bearer nope").send(&t).await.expect(StatusCode::OK);
}

#[tokio::test]
async fn private_mode_needs_a_token_everywhere_but_health() {
    let t = demo_app_with(ServeConfig { private: true, ..ServeConfig::default() }).await;
    get(&t, "/health").await.expect(StatusCode::OK);
    for uri in [
        "/",
        "/api",
        "/collections",
        "/collections/blocks/items",
        "/coverage",
        "/coverage/uncovered",
        "/coverage/history",
        "/coverage/rollup?by=tract",
        "/coverage/rollup/layers",
    ] {
        let r = get(&t, uri).await;
        assert!(r.header(header::WWW_AUTHENTICATE).starts_with("Bearer"), "{uri}\n{r}");
        r.problem(StatusCode::UNAUTHORIZED);
        get_as(&t, uri, &t.tokens.viewer).await.expect(StatusCode::OK);
        req(Method::GET, uri).token(&t.tokens.revoked).send(&t).await.problem(StatusCode::UNAUTHORIZED);
    }
    get_as(&t, "/people", &t.tokens.viewer).await.problem(StatusCode::FORBIDDEN);
    get_as(&t, "/people", &t.tokens.recruiter).await.expect(StatusCode::OK);
}

#[tokio::test]
async fn cors_preflight_allows_writes_with_authorization() {
    let t = demo_app().await;
    // Preflights carry no credentials: answered by the CORS layer, not the token check.
    let r = req(Method::OPTIONS, "/people")
        .header("origin", "https://map.example.org")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type")
        .send(&t)
        .await
        .expect(StatusCode::OK);
    let methods = r.header(header::ACCESS_CONTROL_ALLOW_METHODS).to_string();
    assert!(["POST", "PATCH", "DELETE"].iter().all(|m| methods.contains(m)), "{r}");
    assert!(r.header(header::ACCESS_CONTROL_ALLOW_HEADERS).contains("authorization"), "{r}");
}

/// Everything logged by this test binary.
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_no_personal_data_or_tokens() {
    // Global, so spawn_blocking threads log here too; the most verbose level.
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(|| Capture)
        .try_init();
    let t = demo_app().await;
    let m = t.tokens.manager.clone();
    let body = json!({"id": "log-test", "role": "resident", "lon": -118.28, "lat": 34.04,
                      "name": "Griselda Logcheck", "email": "griselda.logcheck@example.org", "phone": "(213) 555-7777"});
    req(Method::POST, "/people").token(&m).json(&body).send(&t).await.expect(StatusCode::CREATED);
    let bad =
        json!({"role": "resident", "lon": -118.28, "lat": 34.04, "name": "Griselda Logcheck", "email": "griselda@"});
    req(Method::POST, "/people").token(&m).json(&bad).send(&t).await.problem(StatusCode::UNPROCESSABLE_ENTITY);
    req(Method::PATCH, "/people/log-test")
        .token(&m)
        .json(&json!({"name": "Griselda Renamed"}))
        .send(&t)
        .await
        .expect(StatusCode::OK);
    get_as(&t, "/people?limit=5", &t.tokens.recruiter).await.expect(StatusCode::OK);
    get_as(&t, "/people/log-test", &t.tokens.recruiter).await.expect(StatusCode::OK);
    let csv = "id,name,email,lon,lat\nL2,Griselda Csv,griselda.csv@example.org,-118.28,34.04\nL3,Griselda Bad,bad,-118.28,34.04\n";
    req(Method::POST, "/people/import?role=resident")
        .token(&m)
        .body("text/csv", csv)
        .send(&t)
        .await
        .expect(StatusCode::OK);
    req(Method::GET, "/coverage").token("blg_wrong").send(&t).await.problem(StatusCode::UNAUTHORIZED);
    req(Method::DELETE, "/people/log-test").token(&m).send(&t).await.expect(StatusCode::NO_CONTENT);

    let log = String::from_utf8_lossy(&LOG.lock().unwrap()).into_owned();
    assert!(log.contains("people import timings"), "the capture works:\n{log}");
    for secret in ["Griselda", "griselda", "555-7777", &m, &t.tokens.recruiter, "blg_"] {
        assert!(!log.contains(secret), "the log holds {secret}:\n{log}");
    }
}
