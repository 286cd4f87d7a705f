//! Reading what data admins bring: block boundaries (shapefile, zipped shapefile, GeoJSON),
//! people, resources and indicators (CSV, GeoJSON), in any CRS we can reproject to WGS84.
//!
//! Readers never touch the database: they return what was good plus a list of
//! [`Rejection`]s, and the caller decides (all-or-nothing for blocks, good rows for CSV).

use std::fmt;
use std::path::PathBuf;

pub mod blocks;
pub mod crs;
pub mod geojson;
mod geometry;
pub mod region;
mod shapefile;
mod source;

pub use crs::{Crs, CrsError};
pub use region::{FeatureFilter, FilterReport, WhereClause};
pub use shapefile::ZipLimits;

/// One input record that was not accepted, and why. `location` is a 1-based CSV line number
/// (counting the header as line 1) or a 1-based feature number.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejection {
    /// The file the record came from.
    pub file: String,
    /// `line 12`, `feature 7`, ...
    pub location: String,
    /// The offending field or column, when one is to blame.
    pub field: Option<String>,
    /// What was wrong, in words a data admin can act on.
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.location)?;
        if let Some(field) = &self.field {
            write!(f, ", field '{field}'")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Errors that stop a whole file from being read.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file (or a sidecar) could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A shapefile part the reader needs is not there.
    #[error("{path}: missing {what} beside it (a shapefile needs .shp, .shx and .dbf; .prj for its CRS)")]
    MissingSidecar {
        /// The `.shp` that was given.
        path: PathBuf,
        /// `.shx`, `.dbf` or `.prj`.
        what: String,
    },
    /// The file's CRS is unknown or unusable.
    #[error("{path}: {reason}")]
    Crs {
        /// The file.
        path: PathBuf,
        /// What is wrong, with a hint (e.g. "pass --source-crs EPSG:NNNN").
        reason: String,
    },
    /// The file is not in a format we read, or is malformed as a whole.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A `--where` filter names a field the file does not have; nothing was imported.
    #[error("{path}: there is no field '{field}' to filter on; the fields are: {}", blocks::field_list(fields))]
    UnknownField {
        /// The file.
        path: PathBuf,
        /// The field as given.
        field: String,
        /// The file's attribute names.
        fields: Vec<String>,
    },
    /// The filters dropped every feature; nothing was imported (an empty catchment would
    /// unassign everyone).
    #[error("{path}: no feature passed the filters, so nothing was imported: {report}{}", values.iter().map(|v| format!("; {v}")).collect::<String>())]
    NothingKept {
        /// The file.
        path: PathBuf,
        /// What each filter dropped.
        report: FilterReport,
        /// Some values of each filtered field, e.g. `spa has values like: SPA 1, SPA 2`.
        values: Vec<String>,
    },
    /// Some records were invalid and the import is all-or-nothing.
    #[error("{path}: {} invalid record(s); nothing was imported:\n{}", rejections.len(), list(rejections))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every rejected record.
        rejections: Vec<Rejection>,
    },
}

fn list(rejections: &[Rejection]) -> String {
    const SHOWN: usize = 50;
    let mut s: String = rejections.iter().take(SHOWN).map(|r| format!("  - {r}\n")).collect();
    if rejections.len() > SHOWN {
        s.push_str(&format!("  ... and {} more\n", rejections.len() - SHOWN));
    }
    s.trim_end().to_string()
}

pub mod indicators;
pub mod people;
pub mod resources;
pub mod tabular;
