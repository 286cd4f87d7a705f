//! The blocks collection as the history says it stood at the end of a day (`datetime=` on the
//! blocks collection and its tiles): every block's residents, active ambassadors and `covered`
//! from the replay behind `/coverage/history` ([`crate::app::history::HistoryCache`]), so the
//! two agree exactly; geometry and every other property as served now.

use std::sync::Arc;

use chrono::NaiveDate;
use serde_json::Value;

use super::{BLOCKS, Feature, Layers};
use crate::core::coverage::BlockCounts;
use crate::tiles::LiveValues;

/// The blocks' counts at the end of one day, by position in the blocks collection of the
/// snapshot they were taken for.
#[derive(Debug, Clone)]
pub struct BlocksAsOf {
    /// The day.
    pub day: NaiveDate,
    counts: Arc<Vec<BlockCounts>>,
    target: u64,
}

impl BlocksAsOf {
    /// `counts` per block of `layers`' blocks collection (its order), at the end of `day`.
    pub fn new(layers: &Layers, day: NaiveDate, counts: Vec<BlockCounts>) -> BlocksAsOf {
        BlocksAsOf { day, counts: Arc::new(counts), target: u64::from(layers.target.max(1)) }
    }

    /// The live value of block `i` (residents, ambassadors, covered), if `property` is one.
    fn block_value(&self, i: usize, property: &str) -> Option<Value> {
        let c = self.counts.get(i).copied().unwrap_or_default();
        match property {
            "residents" => Some(c.residents.into()),
            "ambassadors" => Some(c.ambassadors.into()),
            "covered" => Some((c.ambassadors >= self.target).into()),
            _ => None,
        }
    }

    /// Block feature `i` (`f`) with that day's counts.
    pub fn feature(&self, i: usize, f: &Feature) -> Feature {
        let mut props = f.properties();
        for name in super::LIVE_BLOCK_PROPERTIES {
            if let Some(v) = self.block_value(i, name) {
                props.insert((*name).to_string(), v);
            }
        }
        f.with_properties(&props)
    }

    /// The snapshot's live values with the blocks' counts of that day.
    pub fn values<'a>(&'a self, layers: &'a Layers) -> impl LiveValues + 'a {
        move |layer: &str, feature: usize, property: &str| {
            if layer == BLOCKS { self.block_value(feature, property) } else { layers.value(layer, feature, property) }
        }
    }
}
