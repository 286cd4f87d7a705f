//! Per-block indicator values such as school readiness. A block without a value has "no data",
//! which is never the same as zero.

/// One value of one indicator for one block, optionally dated.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorValue {
    /// The block the value belongs to.
    pub block_id: String,
    /// Indicator name, e.g. `school_readiness`.
    pub indicator: String,
    /// ISO date (`YYYY-MM-DD`) the value refers to, if the source gave one.
    pub date: Option<String>,
    /// The value.
    pub value: f64,
}
