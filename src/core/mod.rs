//! The domain: blocks, people, resources, indicators, the spatial index and coverage.
//! No SQL, no HTTP, no file formats here; every coordinate is WGS84 lon/lat degrees.

pub mod access;
pub mod area;
pub mod block;
pub mod coverage;
pub mod cql2;
pub mod index;
pub mod indicator;
pub mod person;
pub mod reach;
pub mod recruit;
pub mod resource;
pub mod rollup;
pub mod text;

pub use access::AccessRole;
pub use area::{Area, AreaLayer};
pub use block::Block;
pub use coverage::{BlockCoverage, CoverageReport, CoverageSummary};
pub use index::BlockIndex;
pub use indicator::IndicatorValue;
pub use person::{Person, Role};
pub use resource::Resource;

/// Extra attributes kept from the source file (dbf fields, GeoJSON properties, extra CSV columns).
pub type Attributes = serde_json::Map<String, serde_json::Value>;
