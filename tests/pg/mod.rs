//! PostgreSQL for the integration tests: a fresh database on the server `BELONG_TEST_PG` names
//! (`./scripts/test` starts a throwaway cluster and sets it), or a whole cluster of a test's own
//! when it must stop and restart the server. Without PostgreSQL the tests say so loudly and
//! skip; with `BELONG_REQUIRE_PG=1` (CI) they fail instead.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Skip (or, in CI, fail) because PostgreSQL is not there.
fn missing(what: &str) -> Option<std::convert::Infallible> {
    let msg = format!(
        "SKIPPED: this PostgreSQL test needs {what} (install postgresql-15 and postgresql-15-postgis-3, \
         or run ./scripts/test, which starts a throwaway cluster)"
    );
    if std::env::var("BELONG_REQUIRE_PG").is_ok_and(|v| v == "1") {
        panic!("{msg}; BELONG_REQUIRE_PG=1 says it must run");
    }
    eprintln!("\n*** {msg} ***\n");
    None
}

/// `url` with its database replaced by `name`.
pub fn with_db(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let head = base.rsplit_once('/').map_or(base, |(h, _)| h);
    match query {
        Some(q) => format!("{head}/{name}?{q}"),
        None => format!("{head}/{name}"),
    }
}

/// Run SQL with `psql` against `url`; panics with its output on failure.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .expect("psql runs (postgresql-client)");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A database of one test's own, dropped with it.
pub struct PgDb {
    admin: String,
    name: String,
    url: String,
}

impl PgDb {
    /// The `postgres://` URL of the database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A new empty database on the server at admin URL `admin`.
    pub fn create(admin: &str) -> PgDb {
        let name = format!("belong_it_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        psql(admin, &format!("DROP DATABASE IF EXISTS {name}"));
        psql(admin, &format!("CREATE DATABASE {name}"));
        PgDb { admin: admin.to_string(), url: with_db(admin, &name), name }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([&self.admin, "-qc", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .output();
    }
}

/// A fresh database on `BELONG_TEST_PG`, or `None` (after a loud message) without one.
pub fn fresh_db() -> Option<PgDb> {
    match std::env::var("BELONG_TEST_PG") {
        Ok(admin) if !admin.is_empty() => Some(PgDb::create(&admin)),
        _ => missing("BELONG_TEST_PG").map(|n| match n {}),
    }
}

/// The folder of PostgreSQL's server programs (`initdb`, `pg_ctl`), newest version first.
fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// TLS for a cluster of a test's own.
pub struct ServerTls {
    /// The server's certificate chain (PEM).
    pub cert_pem: String,
    /// Its private key (PEM); written with mode 0600, owned by the server's user.
    pub key_pem: String,
    /// Refuse plain TCP connections (`pg_hba.conf` has `hostssl` lines only).
    pub tls_only: bool,
}

/// A PostgreSQL cluster of a test's own (initdb in a temporary folder, a free port, run as the
/// `postgres` user when the test runs as root), so the test can stop and restart the server.
pub struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    /// Start one, or `None` (after a loud message) when PostgreSQL is not installed.
    pub fn start() -> Option<Cluster> {
        Cluster::start_with(None)
    }

    /// Start one with `ssl = on` and the given certificate, or `None` (after a loud message)
    /// when PostgreSQL is not installed.
    pub fn start_tls(tls: &ServerTls) -> Option<Cluster> {
        Cluster::start_with(Some(tls))
    }

    fn start_with(tls: Option<&ServerTls>) -> Option<Cluster> {
        let Some(bin) = pg_bin() else {
            return missing("PostgreSQL's server programs in /usr/lib/postgresql/*/bin").map(|n| match n {});
        };
        let dir = tempfile::Builder::new().prefix("belong-pg-").tempdir().unwrap();
        let as_postgres = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let cluster = Cluster { bin, port: free_port(), dir, as_postgres };
        if as_postgres {
            let ok = Command::new("chown").args(["-R", "postgres:postgres"]).arg(cluster.dir.path()).status();
            assert!(ok.is_ok_and(|s| s.success()), "chown of the cluster folder to postgres");
        }
        let data = cluster.data();
        cluster.run("initdb", &["-D", data.to_str().unwrap(), "-U", "postgres", "--auth=trust", "-E", "UTF8"]);
        if let Some(tls) = tls {
            cluster.configure_tls(tls);
        }
        cluster.pg_ctl("start");
        Some(cluster)
    }

    /// Certificate and key into the data folder, `ssl = on`, and pg_hba lines for TCP over
    /// TLS (and plain TCP unless `tls_only`).
    fn configure_tls(&self, tls: &ServerTls) {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let data = self.data();
        std::fs::write(data.join("server.crt"), &tls.cert_pem).unwrap();
        std::fs::write(data.join("server.key"), &tls.key_pem).unwrap();
        // PostgreSQL refuses a key file others can read.
        std::fs::set_permissions(data.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut conf = std::fs::OpenOptions::new().append(true).open(data.join("postgresql.conf")).unwrap();
        writeln!(conf, "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'").unwrap();
        let mut hba = String::from("local all all trust\n");
        for net in ["127.0.0.1/32", "::1/128"] {
            hba.push_str(&format!("hostssl all all {net} trust\n"));
            if !tls.tls_only {
                hba.push_str(&format!("hostnossl all all {net} trust\n"));
            }
        }
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        if self.as_postgres {
            let files = ["server.crt", "server.key", "postgresql.conf", "pg_hba.conf"].map(|f| data.join(f));
            let ok = Command::new("chown").arg("postgres:postgres").args(files).status();
            assert!(ok.is_ok_and(|s| s.success()), "chown of the TLS files to postgres");
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program);
        let out = if self.as_postgres {
            Command::new("runuser").args(["-u", "postgres", "--"]).arg(&exe).args(args).output()
        } else {
            Command::new(&exe).args(args).output()
        }
        .expect("PostgreSQL's programs run");
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pg_ctl(&self, action: &str) {
        let data = self.data();
        let log = self.dir.path().join("server.log");
        let opts = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.path().display());
        let mut args = vec!["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-w", "-t", "60"];
        if action == "start" {
            args.extend(["-o", &opts]);
        } else {
            args.extend(["-m", "fast"]);
        }
        args.push(action);
        self.run("pg_ctl", &args);
    }

    /// Stop the server (fast shutdown: sessions are cut).
    pub fn stop(&self) {
        self.pg_ctl("stop");
    }

    /// Start it again on the same port.
    pub fn restart(&self) {
        self.pg_ctl("start");
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin URL (`postgres` database).
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The folder the cluster lives in.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let exe = self.bin.join("pg_ctl");
        let args = ["-D", data.to_str().unwrap_or_default(), "-m", "immediate", "stop"];
        let _ = if self.as_postgres {
            Command::new("runuser").args(["-u", "postgres", "--"]).arg(&exe).args(args).output()
        } else {
            Command::new(&exe).args(args).output()
        };
    }
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
