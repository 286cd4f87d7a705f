//! A whole campaign as a stream of batches, for `belong db copy`: [`Store::dump`] reads every
//! table in one snapshot and hands it over in [`DumpBatch`]es; [`Store::restore`] writes them
//! into an empty store in one transaction. The rows are the stored columns, verbatim (times as
//! stored, history `seq`s and token ids kept), in a form no backend owns: geometry as WKB
//! (WGS84 lon/lat), attributes as JSON object text.
//!
//! [`Store::dump`]: super::Store::dump
//! [`Store::restore`]: super::Store::restore

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::core::{IndicatorValue, Role};

use super::{HistoryEvent, TokenInfo};

/// Rows per batch of the small-row tables (people, history, indicators...): large enough that
/// per-batch costs vanish, small enough that a few batches in flight stay a few megabytes.
pub const BATCH_ROWS: usize = 4096;

/// Rows per batch of the polygon tables (blocks, areas), whose rows are geometry-heavy.
pub const POLYGON_BATCH_ROWS: usize = 512;

/// One block or area as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PolygonRow {
    /// Block id, or area id within its layer.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// The (multi)polygon as WKB, WGS84 lon/lat.
    pub wkb: Vec<u8>,
    /// JSON object text.
    pub attributes: String,
}

/// One area of a layer.
#[derive(Debug, Clone, PartialEq)]
pub struct AreaRow {
    /// The layer it belongs to (its [`AreaLayerRow`] comes first in the dump).
    pub layer: String,
    /// The area.
    pub area: PolygonRow,
}

/// One area layer's own row.
#[derive(Debug, Clone, PartialEq)]
pub struct AreaLayerRow {
    /// Layer name.
    pub layer: String,
    /// The file it was imported from.
    pub source: Option<String>,
    /// RFC 3339 UTC.
    pub imported_at: String,
    /// The history `seq` of its last import (see [`super::Store::areas_version`]).
    pub version: i64,
}

/// One person as stored, every column.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonRow {
    /// Person id.
    pub id: String,
    /// Resident or ambassador.
    pub role: Role,
    /// Longitude, WGS84 degrees.
    pub lon: f64,
    /// Latitude, WGS84 degrees.
    pub lat: f64,
    /// Display name.
    pub name: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Would volunteer.
    pub interested: bool,
    /// Counts for coverage.
    pub active: bool,
    /// Adopted block.
    pub adopted_block: Option<String>,
    /// When the adoption lapses, as stored (RFC 3339 UTC to the second).
    pub adopted_until: Option<String>,
    /// Block lived in.
    pub home_block: Option<String>,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub updated_at: String,
}

/// One resource as stored, every column.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRow {
    /// Resource id.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Category (`food`, `school`...).
    pub category: String,
    /// Longitude, WGS84 degrees.
    pub lon: f64,
    /// Latitude, WGS84 degrees.
    pub lat: f64,
    /// Street address.
    pub address: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Web site.
    pub url: Option<String>,
    /// JSON object text.
    pub attributes: String,
    /// The block it lies in.
    pub block_id: Option<String>,
    /// RFC 3339 UTC.
    pub updated_at: String,
}

/// One token as stored: its public part and the hash (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Id, role, name and dates.
    pub info: TokenInfo,
    /// Hex SHA-256 of the token.
    pub hash: String,
}

/// A batch of rows of one table. A dump sends the tables in this order (layers before their
/// areas), each in key order, and every table may span several batches.
#[derive(Debug, Clone, PartialEq)]
pub enum DumpBatch {
    /// Blocks.
    Blocks(Vec<PolygonRow>),
    /// Area layers.
    AreaLayers(Vec<AreaLayerRow>),
    /// Areas.
    Areas(Vec<AreaRow>),
    /// People.
    People(Vec<PersonRow>),
    /// Resources.
    Resources(Vec<ResourceRow>),
    /// Indicator values.
    Indicators(Vec<IndicatorValue>),
    /// Tokens.
    Tokens(Vec<TokenRow>),
    /// History rows, `seq` and all.
    History(Vec<HistoryEvent>),
}

impl DumpBatch {
    /// Which table the rows belong to (`blocks`, `people`...).
    pub fn table(&self) -> &'static str {
        match self {
            DumpBatch::Blocks(_) => "blocks",
            DumpBatch::AreaLayers(_) => "area layers",
            DumpBatch::Areas(_) => "areas",
            DumpBatch::People(_) => "people",
            DumpBatch::Resources(_) => "resources",
            DumpBatch::Indicators(_) => "indicators",
            DumpBatch::Tokens(_) => "tokens",
            DumpBatch::History(_) => "history",
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            DumpBatch::Blocks(r) => r.len(),
            DumpBatch::AreaLayers(r) => r.len(),
            DumpBatch::Areas(r) => r.len(),
            DumpBatch::People(r) => r.len(),
            DumpBatch::Resources(r) => r.len(),
            DumpBatch::Indicators(r) => r.len(),
            DumpBatch::Tokens(r) => r.len(),
            DumpBatch::History(r) => r.len(),
        }
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One area layer's size and version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LayerCounts {
    /// Areas in the layer.
    pub areas: u64,
    /// [`super::Store::areas_version`].
    pub version: i64,
}

/// How much a store holds, table by table, and where its change feed stands: what `db copy`
/// compares between source and destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TableCounts {
    /// Blocks.
    pub blocks: u64,
    /// Area layers by name.
    pub area_layers: BTreeMap<String, LayerCounts>,
    /// People with the resident role.
    pub residents: u64,
    /// People with the ambassador role.
    pub ambassadors: u64,
    /// Resources.
    pub resources: u64,
    /// Indicator values.
    pub indicators: u64,
    /// Tokens, revoked ones included.
    pub tokens: u64,
    /// History rows.
    pub history: u64,
    /// [`super::Store::last_change`].
    pub last_change: i64,
    /// [`super::Store::catchment_version`].
    pub catchment_version: i64,
}

impl TableCounts {
    /// Every area, all layers.
    pub fn areas(&self) -> u64 {
        self.area_layers.values().map(|l| l.areas).sum()
    }

    /// Every person.
    pub fn people(&self) -> u64 {
        self.residents + self.ambassadors
    }

    /// Rows a copy writes, all tables.
    pub fn rows(&self) -> u64 {
        self.blocks
            + self.area_layers.len() as u64
            + self.areas()
            + self.people()
            + self.resources
            + self.indicators
            + self.tokens
            + self.history
    }

    /// True when no table holds a row (a freshly created database).
    pub fn is_empty(&self) -> bool {
        self.rows() == 0
    }

    /// What the store holds, for messages: `500 blocks, 20138 people, 20640 history rows`.
    pub fn holdings(&self) -> String {
        let parts = [
            (self.blocks, "blocks"),
            (self.area_layers.len() as u64, "area layers"),
            (self.areas(), "areas"),
            (self.people(), "people"),
            (self.resources, "resources"),
            (self.indicators, "indicator values"),
            (self.tokens, "tokens"),
            (self.history, "history rows"),
        ];
        let mut out = String::new();
        for (n, what) in parts.iter().filter(|(n, _)| *n > 0) {
            if !out.is_empty() {
                out.push_str(", ");
            }
            let _ = write!(out, "{n} {what}");
        }
        if out.is_empty() { "nothing".to_string() } else { out }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdings_name_only_what_is_there() {
        let mut c = TableCounts::default();
        assert!(c.is_empty());
        assert_eq!(c.holdings(), "nothing");
        c.blocks = 3;
        c.history = 4;
        c.area_layers.insert("hoods".into(), LayerCounts { areas: 2, version: 1 });
        assert!(!c.is_empty());
        assert_eq!(c.rows(), 3 + 1 + 2 + 4);
        assert_eq!(c.holdings(), "3 blocks, 1 area layers, 2 areas, 4 history rows");
    }
}
