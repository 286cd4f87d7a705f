//! `belong token create|list|revoke` against the real binary.

mod common;

use common::*;

#[test]
fn tokens_are_shown_once_and_only_hashes_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let out = run_ok(&db, &["token", "create", "--role", "manager", "--name", "Ana's laptop"], 0);
    let text = stdout(&out);
    let token = text.lines().last().unwrap().trim().to_string();
    assert!(token.starts_with("blg_") && token.len() == 68, "last line must be the token alone: {text:?}");
    run_ok(&db, &["token", "create", "--role", "viewer"], 0);
    let list = stdout(&run_ok(&db, &["token", "list"], 0));
    assert!(list.contains("manager") && list.contains("Ana's laptop") && list.contains("viewer"), "{list}");
    assert!(!list.contains(&token), "the secret must never be listed");
    let raw = std::fs::read(&db).unwrap();
    assert!(!raw.windows(token.len()).any(|w| w == token.as_bytes()), "the secret must not be stored");
    run_ok(&db, &["token", "revoke", "1"], 0);
    let out = run_ok(&db, &["token", "revoke", "1"], 1);
    assert!(stderr(&out).contains("no live token with id 1"), "{}", stderr(&out));
    run_ok(&db, &["token", "create", "--role", "admin"], 2);
}

#[test]
fn an_unreachable_postgres_url_is_a_clear_error_without_its_password() {
    let out = run_ok("postgres://ana:s3cret@127.0.0.1:1/belong", &["token", "list"], 1);
    let err = stderr(&out);
    assert!(err.contains("postgres://ana:***@127.0.0.1:1/belong"), "{err}");
    assert!(err.contains("unavailable"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    let out = run_ok("mysql://u@h/db", &["token", "list"], 2);
    assert!(stderr(&out).contains("unsupported database URL"), "{}", stderr(&out));
}
