//! Use cases shared by the command line and (later) the HTTP service: read a file with
//! `ingest`, assign locations with the `core` index, write through the `store`. No argument
//! parsing and no output formatting here.

pub mod access;
mod assign;
pub mod chunked;
pub mod copy;
pub mod history;
mod imports;
pub mod layers;
pub mod live;
pub mod output_crs;
pub mod people;
pub mod recruit;
pub mod rollup;
pub mod tokens;

use std::path::PathBuf;
use std::sync::Arc;

pub use assign::{AssignReport, assign_csv};
pub use imports::{
    BlockImport, IndicatorImport, PeopleImport, ResourceImport, import_blocks, import_indicators, import_people,
    import_people_in, import_resources, replace_catchment,
};

use crate::core::coverage::{self, CoverageReport};
use crate::core::{Block, BlockIndex};
use crate::ingest::{IngestError, Rejection};
use crate::store::{Store, StoreError};

/// Errors of a use case.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input could not be read at all.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The database failed; nothing was written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file could not be opened.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Writing output failed (e.g. a closed pipe).
    #[error("writing output: {0}")]
    Output(String),
    /// `db copy` found data in the destination ([`crate::store::TableCounts::holdings`]);
    /// nothing was written.
    #[error("the destination is not empty: it holds {0}; copy into a new, empty database")]
    DestinationNotEmpty(String),
}

/// Records rejected by an import that still imported the good ones.
pub trait HasRejections {
    /// The rejected records.
    fn rejections(&self) -> &[Rejection];
}

/// The stored catchment with its index.
pub struct Catchment {
    /// The point index over the blocks.
    pub index: BlockIndex,
    /// [`Store::catchment_version`] of these blocks (what is derived from them is cached by it).
    pub version: i64,
    facts: Option<Arc<recruit::CatchmentFacts>>,
}

impl Catchment {
    /// The catchment of `blocks` at `version`: the index only (commands that place points).
    pub fn new(blocks: &[Block], version: i64) -> Catchment {
        Catchment { index: BlockIndex::new(blocks), version, facts: None }
    }

    /// The catchment the service serves: the index and the recruiting facts (adjacency,
    /// interior points), built side by side. The blocks themselves are not kept: what is served
    /// of them lives in the layers, and a county's block geometry and attribute maps took
    /// ~120 MB beside them.
    pub fn served(blocks: &[Block], version: i64) -> Catchment {
        let (index, facts) = std::thread::scope(|scope| {
            let facts = scope.spawn(|| Arc::new(recruit::CatchmentFacts::new(blocks)));
            let index = BlockIndex::new(blocks);
            (index, facts.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
        });
        Catchment { index, version, facts: Some(facts) }
    }

    /// The recruiting facts of the blocks ([`Catchment::served`] only).
    pub fn facts(&self) -> Option<&Arc<recruit::CatchmentFacts>> {
        self.facts.as_ref()
    }
}

/// Load the stored blocks and build the index.
pub fn load_catchment(store: &dyn Store) -> Result<Catchment, AppError> {
    let version = store.catchment_version()?;
    Ok(Catchment::new(&store.blocks()?, version))
}

/// Coverage of the stored catchment for `target` ambassadors per block.
pub fn coverage(store: &dyn Store, target: u32) -> Result<CoverageReport, AppError> {
    coverage_at(store, target, chrono::Utc::now())
}

/// Coverage at the instant `now` (adoptions lapse at their `adopted_until`).
pub fn coverage_at(
    store: &dyn Store,
    target: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<CoverageReport, AppError> {
    let ids = store.block_ids()?;
    let (counts, outside) = store.coverage_counts_at(now)?;
    Ok(coverage::compute(ids.iter().map(String::as_str), &counts, outside, target))
}
