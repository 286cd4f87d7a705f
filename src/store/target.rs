//! Where the data lives: a SQLite file path or a PostgreSQL URL (`--db`, `BELONG_DB`), and the
//! TLS settings of such a URL (libpq's `sslmode` and `sslrootcert`), which belong applies itself
//! because the driver knows only `disable`, `prefer` and `require`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A parsed `--db` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbTarget {
    /// An SQLite database file (created when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL/PostGIS database: `postgres://USER[:PASS]@HOST[:PORT]/DBNAME[?sslmode=..&options=..]`
    /// (`postgresql://` too), as written; its TLS parameters are valid (see `split_postgres_url`).
    Postgres(String),
}

impl DbTarget {
    /// True for a PostgreSQL URL.
    pub fn is_postgres(&self) -> bool {
        matches!(self, DbTarget::Postgres(_))
    }
}

impl FromStr for DbTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            let rest = s.split_once("://").map(|(_, r)| r).unwrap_or("");
            let (_, host_path) = rest.rsplit_once('@').unwrap_or(("", rest));
            let Some((_, db)) = host_path.split_once('/') else {
                return Err(format!(
                    "PostgreSQL URL '{}' names no database: use postgres://USER[:PASS]@HOST[:PORT]/DBNAME",
                    redact(s)
                ));
            };
            if db.split('?').next().unwrap_or("").is_empty() {
                return Err(format!(
                    "PostgreSQL URL '{}' names no database: use postgres://USER[:PASS]@HOST[:PORT]/DBNAME",
                    redact(s)
                ));
            }
            split_postgres_url(s).map_err(|e| format!("PostgreSQL URL '{}': {e}", redact(s)))?;
            Ok(DbTarget::Postgres(s.to_string()))
        } else if s.contains("://") {
            Err(format!(
                "unsupported database URL '{}': use a file path (SQLite) or postgres://USER[:PASS]@HOST[:PORT]/DBNAME",
                redact(s)
            ))
        } else if s.is_empty() {
            Err("empty database path".to_string())
        } else {
            Ok(DbTarget::Sqlite(PathBuf::from(s)))
        }
    }
}

/// `url` with its password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((userinfo, host)) = rest.rsplit_once('@') else { return url.to_string() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// libpq's `sslmode`: whether the connection uses TLS and what of the server's certificate is
/// verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plain TCP, no TLS.
    Disable,
    /// TLS when the server offers it, plain otherwise; the certificate is not verified (the
    /// default, as in libpq).
    #[default]
    Prefer,
    /// TLS or no connection; the certificate is verified only when `sslrootcert` is given (then
    /// as with `verify-ca`), as in libpq.
    Require,
    /// TLS; the certificate chain must lead to a trusted root; the host name is not checked.
    VerifyCa,
    /// TLS; the chain must lead to a trusted root and the certificate must name the host.
    VerifyFull,
}

impl SslMode {
    /// The value as written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl FromStr for SslMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err("sslmode 'allow' is not supported: use disable, prefer, require, verify-ca or verify-full"
                    .to_string());
            }
            other => {
                return Err(format!(
                    "unknown sslmode '{other}': use disable, prefer, require, verify-ca or verify-full"
                ));
            }
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The certificates a server's certificate chain must lead to (`sslrootcert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCerts {
    /// The operating system's trusted roots (`sslrootcert=system`, and the default).
    System,
    /// The certificates in this PEM file.
    File(PathBuf),
}

impl fmt::Display for RootCerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootCerts::System => f.write_str("the system's root certificates"),
            RootCerts::File(path) => write!(f, "the certificates in {}", path.display()),
        }
    }
}

/// What of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Nothing: the connection is encrypted but the server is not authenticated.
    None,
    /// The chain leads to a trusted root (any host name).
    Chain,
    /// The chain leads to a trusted root and the certificate names the host connected to.
    ChainAndHost,
}

/// The TLS settings of a PostgreSQL URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PgTls {
    /// `sslmode` (default `prefer`).
    pub mode: SslMode,
    /// `sslrootcert`, when given.
    pub root_cert: Option<RootCerts>,
}

impl PgTls {
    /// What is verified. As in libpq, `require` with an explicit `sslrootcert` verifies like
    /// `verify-ca`.
    pub fn verification(&self) -> Verification {
        match (self.mode, &self.root_cert) {
            (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => Verification::None,
            (SslMode::Require, Some(_)) | (SslMode::VerifyCa, _) => Verification::Chain,
            (SslMode::VerifyFull, _) => Verification::ChainAndHost,
        }
    }

    /// The roots to verify against: `sslrootcert`, or the system's (unlike libpq, whose default
    /// is `~/.postgresql/root.crt`).
    pub fn roots(&self) -> &RootCerts {
        self.root_cert.as_ref().unwrap_or(&RootCerts::System)
    }
}

/// Split a PostgreSQL URL into the URL the driver parses and the TLS settings belong applies
/// itself: `sslrootcert` is removed, `sslmode` becomes one the driver knows (`verify-ca` and
/// `verify-full` connect as `require`; what is verified is up to the TLS connector). Other
/// parameters (`options`, `connect_timeout`, ...) pass as written. Messages never repeat the URL.
pub fn split_postgres_url(url: &str) -> Result<(String, PgTls), String> {
    // The query starts after the host: a password may hold a '?'.
    let host_at = url.rfind('@').map_or(0, |i| i + 1);
    let (base, query) = match url[host_at..].find('?') {
        Some(i) => (&url[..host_at + i], &url[host_at + i + 1..]),
        None => (url, ""),
    };
    let mut tls = PgTls::default();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        // Only the key is named in messages: a value may be a password (`?password=`).
        let key = percent_decode(key).ok_or("a URL parameter name has a bad %-escape")?;
        let decoded = || percent_decode(value).ok_or_else(|| format!("the value of {key} has a bad %-escape"));
        match key.as_str() {
            "sslmode" => tls.mode = decoded()?.parse()?,
            "sslrootcert" => {
                let value = decoded()?;
                tls.root_cert = Some(match value.as_str() {
                    "" => return Err("sslrootcert is empty: give a PEM file or 'system'".to_string()),
                    "system" => RootCerts::System,
                    path => RootCerts::File(PathBuf::from(path)),
                });
            }
            "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" => {
                return Err(format!("{key} is not supported (client certificates and CRLs): remove it"));
            }
            _ => kept.push(pair),
        }
    }
    kept.push(match tls.mode {
        SslMode::Disable => "sslmode=disable",
        SslMode::Prefer => "sslmode=prefer",
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "sslmode=require",
    });
    Ok((format!("{base}?{}", kept.join("&")), tls))
}

/// `%XX` escapes of a URL query part decoded (no `+` for space, as the driver does it); `None`
/// for a bad escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl fmt::Display for DbTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbTarget::Sqlite(p) => write!(f, "{}", p.display()),
            DbTarget::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_urls() {
        assert_eq!("belong.db".parse::<DbTarget>(), Ok(DbTarget::Sqlite("belong.db".into())));
        assert!("postgres://u:p@h:5432/db?sslmode=disable".parse::<DbTarget>().unwrap().is_postgres());
        assert!("postgresql://u@h/db".parse::<DbTarget>().unwrap().is_postgres());
        assert!("POSTGRES://u@h/db".parse::<DbTarget>().unwrap().is_postgres());
        assert!("postgres://u@h".parse::<DbTarget>().unwrap_err().contains("names no database"));
        assert!("mysql://u@h/db".parse::<DbTarget>().unwrap_err().contains("unsupported"));
    }

    #[test]
    fn passwords_never_shown() {
        let t: DbTarget = "postgres://ana:s3cret@db.example:5432/belong".parse().unwrap();
        assert_eq!(t.to_string(), "postgres://ana:***@db.example:5432/belong");
        assert!(!"postgres://ana:s3cret@h".parse::<DbTarget>().unwrap_err().contains("s3cret"));
    }

    fn tls(url: &str) -> PgTls {
        split_postgres_url(url).unwrap().1
    }

    #[test]
    fn sslmode_and_what_it_verifies() {
        let cases = [
            ("", SslMode::Prefer, None, Verification::None),
            ("?sslmode=disable", SslMode::Disable, None, Verification::None),
            ("?sslmode=prefer", SslMode::Prefer, None, Verification::None),
            ("?sslmode=require", SslMode::Require, None, Verification::None),
            ("?sslmode=verify-ca", SslMode::VerifyCa, None, Verification::Chain),
            ("?sslmode=verify-full", SslMode::VerifyFull, None, Verification::ChainAndHost),
            // libpq: require with a root certificate verifies the chain.
            ("?sslmode=require&sslrootcert=/ca.pem", SslMode::Require, Some("/ca.pem"), Verification::Chain),
            (
                "?sslrootcert=/ca.pem&sslmode=verify-full",
                SslMode::VerifyFull,
                Some("/ca.pem"),
                Verification::ChainAndHost,
            ),
            (
                "?sslrootcert=%2Fetc%2Fmy%20ca.pem&sslmode=verify-ca",
                SslMode::VerifyCa,
                Some("/etc/my ca.pem"),
                Verification::Chain,
            ),
            // A root certificate does not make prefer verify (nor does it in libpq).
            ("?sslrootcert=/ca.pem", SslMode::Prefer, Some("/ca.pem"), Verification::None),
        ];
        for (query, mode, root, verification) in cases {
            let t = tls(&format!("postgres://u@h/db{query}"));
            assert_eq!(t.mode, mode, "{query}");
            assert_eq!(t.root_cert, root.map(|p| RootCerts::File(p.into())), "{query}");
            assert_eq!(t.verification(), verification, "{query}");
        }
        let system = tls("postgres://u@h/db?sslmode=verify-full&sslrootcert=system");
        assert_eq!(system.root_cert, Some(RootCerts::System));
        assert_eq!(tls("postgres://u@h/db?sslmode=verify-full").roots(), &RootCerts::System);
    }

    #[test]
    fn the_driver_gets_a_url_it_parses() {
        let cases = [
            ("postgres://u:p@h:5433/db", "postgres://u:p@h:5433/db?sslmode=prefer"),
            ("postgres://u@h/db?sslmode=disable", "postgres://u@h/db?sslmode=disable"),
            (
                "postgres://u@h/db?options=-c%20search_path%3Dx&sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=3",
                "postgres://u@h/db?options=-c%20search_path%3Dx&connect_timeout=3&sslmode=require",
            ),
            ("postgres://u@h/db?sslmode=verify-ca", "postgres://u@h/db?sslmode=require"),
            // A '?' in the password is not the start of the query.
            ("postgres://u:a?b@h/db?sslmode=require", "postgres://u:a?b@h/db?sslmode=require"),
        ];
        for (url, driver) in cases {
            assert_eq!(split_postgres_url(url).unwrap().0, driver, "{url}");
            assert!(driver.parse::<postgres::Config>().is_ok() || driver.contains("a?b"), "{driver}");
        }
    }

    #[test]
    fn bad_tls_parameters_are_refused_clearly() {
        let err = |url: &str| split_postgres_url(url).unwrap_err();
        let unknown = err("postgres://u@h/db?sslmode=verify_full");
        assert!(unknown.contains("unknown sslmode 'verify_full'"), "{unknown}");
        assert!(unknown.contains("disable, prefer, require, verify-ca or verify-full"), "{unknown}");
        assert!(err("postgres://u@h/db?sslmode=allow").contains("not supported"));
        assert!(err("postgres://u@h/db?sslrootcert=").contains("sslrootcert is empty"));
        assert!(err("postgres://u@h/db?sslcert=/c.pem").contains("sslcert is not supported"));
        // The whole --db value says which URL, without its password.
        let db = "postgres://ana:s3cret@h/db?sslmode=on".parse::<DbTarget>().unwrap_err();
        assert!(db.contains("unknown sslmode 'on'") && db.contains("ana:***@h"), "{db}");
        assert!(!db.contains("s3cret"), "{db}");
        let escape = err("postgres://u@h/db?sslrootcert=/ca%zz.pem");
        assert!(escape.contains("the value of sslrootcert has a bad %-escape"), "{escape}");
    }
}
