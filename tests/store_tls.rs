//! TLS to PostgreSQL, for real: clusters of the tests' own with `ssl = on` and a CA and server
//! certificate made here (rcgen), and `PostgresStore` connecting with each `sslmode` as libpq
//! would: what connects, what is refused, and that every refusal says which server, which
//! sslmode and why, without the password. Runs in CI (`BELONG_REQUIRE_PG=1`: a missing
//! PostgreSQL fails); elsewhere skips loudly.
#![allow(clippy::unwrap_used)]

mod common;
mod pg;

use std::path::{Path, PathBuf};
use std::time::Duration;

use belong::core::{Person, Role};
use belong::store::{PeopleFilter, PostgresStore, Store, StoreError};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

/// A CA (PEM), and a server certificate it signed for `localhost` only, with its key.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn new_ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

fn pki() -> Pki {
    let (ca_params, ca_key, ca_pem) = new_ca("belong test CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert_pem = params.signed_by(&key, &issuer).unwrap().pem();
    Pki { ca_pem, cert_pem, key_pem: key.serialize_pem() }
}

/// A cluster with TLS on, the CA that signed its certificate and another CA, in files.
struct TlsServer {
    cluster: pg::Cluster,
    db: pg::PgDb,
    ca: PathBuf,
    wrong_ca: PathBuf,
    _files: tempfile::TempDir,
}

impl TlsServer {
    fn start(tls_only: bool) -> Option<TlsServer> {
        let pki = pki();
        let tls = pg::ServerTls { cert_pem: pki.cert_pem, key_pem: pki.key_pem, tls_only };
        let cluster = pg::Cluster::start_tls(&tls)?;
        let files = tempfile::tempdir().unwrap();
        let ca = common::write(files.path(), "ca.pem", &pki.ca_pem);
        let wrong_ca = common::write(files.path(), "wrong-ca.pem", &new_ca("some other CA").2);
        // psql over TLS (libpq's prefer), so this works on a TLS-only server too.
        let db = pg::PgDb::create(&cluster.admin_url());
        Some(TlsServer { cluster, db, ca, wrong_ca, _files: files })
    }

    /// The database's URL through `host`, with `query` (and a password the server never asks
    /// for: trust authentication; it must never show in a message).
    fn url(&self, host: &str, query: &str) -> String {
        format!("postgres://postgres:s3cret@{host}:{}/{}{query}", self.cluster.port(), self.db.name())
    }
}

fn rootcert(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn resident(id: &str) -> Person {
    Person {
        id: id.into(),
        role: Role::Resident,
        lon: 0.5,
        lat: 0.5,
        name: Some(format!("Person {id}")),
        phone: None,
        email: None,
        interested: false,
        active: true,
        adopted_block: None,
        adopted_until: None,
        home_block: None,
    }
}

/// The store opens, reads and writes over the connection.
fn opens(server: &TlsServer, url: &str) -> PostgresStore {
    let store = PostgresStore::open(url).unwrap_or_else(|e| panic!("{url}: {e}\n{}", server.cluster.log()));
    store.ping().unwrap();
    store
}

/// The store refuses to open; the message, which must not hold the password.
fn refused(url: &str) -> (StoreError, String) {
    match PostgresStore::open(url) {
        Ok(_) => panic!("{url} opened, expected a refusal"),
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains("s3cret"), "the password leaked: {msg}");
            (e, msg)
        }
    }
}

fn assert_has(msg: &str, parts: &[&str]) {
    for part in parts {
        assert!(msg.contains(part), "expected {part:?} in: {msg}");
    }
}

#[test]
fn a_tls_only_server_takes_each_sslmode_as_libpq_does() {
    let Some(server) = TlsServer::start(true) else { return };
    let port = server.cluster.port();
    let ca = rootcert(&server.ca);
    let wrong = rootcert(&server.wrong_ca);

    // require: TLS without verification (the certificate names localhost, not 127.0.0.1).
    let store = opens(&server, &server.url("127.0.0.1", "?sslmode=require"));
    store.insert_person(&resident("r1"), "test").unwrap();
    // prefer (the default): TLS when offered.
    let other = opens(&server, &server.url("127.0.0.1", ""));
    assert_eq!(other.people(&PeopleFilter::default()).unwrap().len(), 1);
    // The LISTEN connection goes over TLS too: a write on one store wakes the other.
    assert!(other.wait_for_change(Duration::from_millis(10)).unwrap(), "the listener connects");
    let waiter = std::thread::spawn(move || other.wait_for_change(Duration::from_secs(10)).unwrap());
    std::thread::sleep(Duration::from_millis(200));
    store.insert_person(&resident("r2"), "test").unwrap();
    assert!(waiter.join().unwrap(), "woken by the other store's write");

    // verify-full: the chain leads to the CA given and the certificate names the host.
    let full = opens(&server, &server.url("localhost", &format!("?sslmode=verify-full&sslrootcert={ca}")));
    assert_eq!(full.people(&PeopleFilter::default()).unwrap().len(), 2);
    // verify-ca: the chain only, so any host name.
    opens(&server, &server.url("127.0.0.1", &format!("?sslmode=verify-ca&sslrootcert={ca}")));

    // verify-full by a name the certificate does not hold.
    let (e, msg) = refused(&server.url("127.0.0.1", &format!("?sslmode=verify-full&sslrootcert={ca}")));
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    assert_has(&msg, &[&format!("127.0.0.1:{port}"), "sslmode=verify-full", "not valid for name", "verify-ca"]);

    // A CA that did not sign the server's certificate.
    for mode in ["verify-full", "verify-ca", "require"] {
        let (e, msg) = refused(&server.url("localhost", &format!("?sslmode={mode}&sslrootcert={wrong}")));
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
        assert_has(
            &msg,
            &[
                "TLS with PostgreSQL at",
                &format!("localhost:{port}"),
                &format!("sslmode={mode}"),
                "UnknownIssuer",
                &format!("not signed by the certificates in {wrong}"),
            ],
        );
    }

    // System roots do not hold a test CA.
    let (_, msg) = refused(&server.url("localhost", "?sslmode=verify-full&sslrootcert=system"));
    assert_has(&msg, &["sslmode=verify-full"]);

    // disable, on a server that accepts TLS connections only.
    let (e, msg) = refused(&server.url("127.0.0.1", "?sslmode=disable"));
    assert!(matches!(e, StoreError::Database(_)), "{e:?}");
    assert_has(&msg, &["no encryption", "accepts only TLS", "sslmode=disable", "sslmode=require"]);

    // A root certificate file that is not there, or holds no certificate.
    let (_, msg) = refused(&server.url("localhost", "?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"));
    assert_has(&msg, &["cannot read sslrootcert /nonexistent/ca.pem", "sslmode=verify-full"]);
    let empty = server._files.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let (_, msg) = refused(&server.url("localhost", &format!("?sslmode=verify-ca&sslrootcert={}", rootcert(&empty))));
    assert_has(&msg, &["holds no PEM certificate"]);
}

#[test]
fn a_server_without_tls_is_refused_by_require_and_used_by_prefer() {
    let Some(cluster) = pg::Cluster::start() else { return };
    let db = pg::PgDb::create(&cluster.admin_url());
    let url = |query: &str| format!("postgres://postgres:s3cret@127.0.0.1:{}/{}{query}", cluster.port(), db.name());
    // prefer: the server declines TLS, so plain TCP.
    PostgresStore::open(&url("?sslmode=prefer")).unwrap().ping().unwrap();
    for mode in ["require", "verify-ca", "verify-full"] {
        let (e, msg) = refused(&url(&format!("?sslmode={mode}")));
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
        assert_has(&msg, &[&format!("sslmode={mode}"), "server does not support TLS", "ssl in its postgresql.conf"]);
    }
}

#[test]
fn the_cli_reports_tls_failures_and_bad_sslmodes() {
    // A bad sslmode is a usage error, before anything connects.
    let out = common::run("postgres://ana:s3cret@127.0.0.1:1/db?sslmode=verify", &["coverage"]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_has(&err, &["unknown sslmode 'verify'", "disable, prefer, require, verify-ca or verify-full"]);
    assert!(!err.contains("s3cret"), "{err}");

    let Some(server) = TlsServer::start(false) else { return };
    let wrong = rootcert(&server.wrong_ca);
    let out = common::run(server.url("localhost", &format!("?sslmode=verify-full&sslrootcert={wrong}")), &["coverage"]);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_has(&err, &["TLS with PostgreSQL at", "sslmode=verify-full", "not signed by"]);
    assert!(!err.contains("s3cret"), "{err}");
    // The right CA: the command runs over TLS.
    let ca = rootcert(&server.ca);
    common::run_ok(server.url("localhost", &format!("?sslmode=verify-full&sslrootcert={ca}")), &["coverage"], 0);
}
