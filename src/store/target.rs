//! Where the data lives: a SQLite file path or a PostgreSQL URL (`--db`, `BELONG_DB`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A parsed `--db` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbTarget {
    /// An SQLite database file (created when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL/PostGIS database: `postgres://USER[:PASS]@HOST[:PORT]/DBNAME[?sslmode=..&options=..]`
    /// (`postgresql://` too), passed to the driver as written.
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
}
