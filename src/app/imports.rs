//! Imports: read, validate against the catchment, assign blocks, write in one transaction.

use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use serde::Serialize;

use super::{AppError, Catchment, HasRejections, load_catchment};
use crate::core::{BlockIndex, Role};
use crate::ingest::blocks::{BlockReadOptions, read_blocks};
use crate::ingest::indicators::read_indicators;
use crate::ingest::people::read_people;
use crate::ingest::resources::{ResourceOptions, read_resources_csv, resources_from_points};
use crate::ingest::{Crs, FilterReport, Rejection};
use crate::store::{BlocksReplaced, Reassignment, Store, Upserted};

fn open(path: &Path) -> Result<BufReader<File>, AppError> {
    File::open(path).map(BufReader::new).map_err(|source| AppError::Io { path: path.to_path_buf(), source })
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Outcome of a block import.
#[derive(Debug, Serialize)]
pub struct BlockImport {
    /// Source CRS label.
    pub crs: String,
    /// Field the ids came from.
    pub id_field: String,
    /// What changed in the store.
    pub replaced: BlocksReplaced,
    /// Features skipped with `--skip-invalid`.
    pub rejected: Vec<Rejection>,
    /// Notes about the file.
    pub warnings: Vec<String>,
    /// What `--where` / `--within` kept and dropped (absent without filters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filtered: Option<FilterReport>,
}

impl HasRejections for BlockImport {
    fn rejections(&self) -> &[Rejection] {
        &self.rejected
    }
}

/// Replace the catchment with the blocks in `path` and reassign every stored person and
/// resource. All or nothing: on any error the previous catchment stays.
pub fn import_blocks(store: &dyn Store, path: &Path, opts: &BlockReadOptions) -> Result<BlockImport, AppError> {
    let read = read_blocks(path, opts)?;
    if read.blocks.is_empty() {
        return Err(crate::ingest::IngestError::Format {
            path: path.to_path_buf(),
            reason: "no valid block in the file; the stored catchment is unchanged".into(),
        }
        .into());
    }
    let replaced = replace_catchment(store, &read.blocks, &display(path))?;
    Ok(BlockImport {
        crs: read.crs,
        id_field: read.id_field,
        replaced,
        rejected: read.rejected,
        warnings: read.warnings,
        filtered: read.filtered,
    })
}

/// Replace the catchment with `blocks` and move every stored person and resource to the block
/// that now contains them, in one transaction.
pub fn replace_catchment(
    store: &dyn Store,
    blocks: &[crate::core::Block],
    source: &str,
) -> Result<crate::store::BlocksReplaced, AppError> {
    let index = BlockIndex::new(blocks);
    let relocate = |located: Vec<crate::store::Located>| -> Vec<Reassignment> {
        let points: Vec<(f64, f64)> = located.iter().map(|l| (l.lon, l.lat)).collect();
        let ranks = index.locate_many(&points);
        located
            .into_iter()
            .zip(ranks)
            .filter_map(|(l, rank)| {
                let block = rank.map(|r| index.ids()[r as usize].clone());
                (block != l.block_id).then_some(Reassignment { id: l.id, block_id: block })
            })
            .collect()
    };
    let people = relocate(store.people_locations()?);
    let resources = relocate(store.resource_locations()?);
    Ok(store.replace_blocks(blocks, &people, &resources, source)?)
}

/// Outcome of a people import.
#[derive(Debug, Serialize)]
pub struct PeopleImport {
    /// Rows written.
    pub upserted: Upserted,
    /// Imported rows whose location is in no block.
    pub outside: usize,
    /// Rows rejected, with reasons.
    pub rejected: Vec<Rejection>,
    /// Notes about the file.
    pub warnings: Vec<String>,
}

impl HasRejections for PeopleImport {
    fn rejections(&self) -> &[Rejection] {
        &self.rejected
    }
}

/// Import residents or ambassadors from a CSV: good rows are written (one transaction), bad
/// rows are returned with line numbers.
pub fn import_people(
    store: &dyn Store,
    path: &Path,
    role: Role,
    crs: Option<&Crs>,
    progress: impl FnMut(u64),
) -> Result<PeopleImport, AppError> {
    import_people_in(store, None, path, role, crs, progress)
}

/// [`import_people`], placing people with `served` when it is the stored catchment (the
/// service's live one): reading and indexing a county's blocks again cost seconds and ~150 MB.
pub fn import_people_in(
    store: &dyn Store,
    served: Option<&Catchment>,
    path: &Path,
    role: Role,
    crs: Option<&Crs>,
    progress: impl FnMut(u64),
) -> Result<PeopleImport, AppError> {
    let started = std::time::Instant::now();
    let loaded_here;
    let version = store.catchment_version()?;
    let catchment = match served.filter(|c| c.version == version) {
        Some(c) => c,
        None => {
            loaded_here = Catchment::new(&store.blocks()?, version);
            &loaded_here
        }
    };
    let file = display(path);
    let loaded = started.elapsed();
    let mut read = read_people(open(path)?, &file, role, crs, progress)?;
    let parsed = started.elapsed();
    let known: HashSet<&str> = catchment.index.ids().iter().map(String::as_str).collect();
    let mut outside = 0;
    let points: Vec<(f64, f64)> = read.rows.iter().map(|r| (r.person.lon, r.person.lat)).collect();
    let ranks = catchment.index.locate_many(&points);
    drop(points);
    // Collected in place (the rows' buffer becomes the people's): a second buffer beside the
    // first was a county import's peak, ~130 MB for 650,000 rows.
    let rejected = &mut read.rejected;
    let people: Vec<_> = read
        .rows
        .into_iter()
        .zip(ranks)
        .filter_map(|(row, rank)| {
            let mut person = row.person;
            if let Some(adopted) = &person.adopted_block
                && !known.contains(adopted.as_str())
            {
                rejected.push(Rejection {
                    file: file.clone(),
                    location: format!("line {}", row.line),
                    field: Some("block_id".into()),
                    reason: unknown_block_reason(adopted, &known),
                });
                return None;
            }
            person.home_block = rank.map(|r| catchment.index.ids()[r as usize].clone());
            outside += usize::from(person.home_block.is_none());
            Some(person)
        })
        .collect();
    read.rejected.sort_by_key(|r| line_number(&r.location));
    let assigned = started.elapsed();
    let upserted = store.upsert_people(&people, &file)?;
    tracing::info!(?loaded, ?parsed, ?assigned, total = ?started.elapsed(), rows = people.len(), "people import timings");
    Ok(PeopleImport { upserted, outside, rejected: read.rejected, warnings: read.warnings })
}

fn line_number(location: &str) -> u64 {
    location.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// "not a block" with a hint when a spreadsheet ate the leading zero.
fn unknown_block_reason(id: &str, known: &HashSet<&str>) -> String {
    if known.is_empty() {
        return format!("block '{id}' is unknown: no blocks are loaded yet (run `belong import blocks` first)");
    }
    let padded = format!("0{id}");
    if known.contains(padded.as_str()) {
        format!(
            "block '{id}' is not in the catchment; did you mean '{padded}'? (a spreadsheet may have dropped the leading zero)"
        )
    } else {
        format!("block '{id}' is not in the catchment")
    }
}

/// Outcome of a resource import.
#[derive(Debug, Serialize)]
pub struct ResourceImport {
    /// Rows written.
    pub upserted: Upserted,
    /// Resources outside every block (kept).
    pub outside: usize,
    /// Rejected records.
    pub rejected: Vec<Rejection>,
    /// Notes about the file.
    pub warnings: Vec<String>,
}

impl HasRejections for ResourceImport {
    fn rejections(&self) -> &[Rejection] {
        &self.rejected
    }
}

/// Import resources from CSV or GeoJSON (by extension).
pub fn import_resources(
    store: &dyn Store,
    path: &Path,
    crs: Option<&Crs>,
    opts: &ResourceOptions,
) -> Result<ResourceImport, AppError> {
    let catchment = load_catchment(store)?;
    let file = display(path);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let mut read = if matches!(ext.as_str(), "geojson" | "json") {
        let points = crate::ingest::geojson::read_points(path, crs)?;
        resources_from_points(points, &file, opts)
    } else {
        read_resources_csv(open(path)?, &file, crs, opts)?
    };
    let mut outside = 0;
    for r in &mut read.resources {
        r.block_id = catchment.index.locate(r.lon, r.lat).map(str::to_string);
        outside += usize::from(r.block_id.is_none());
    }
    let upserted = store.upsert_resources(&read.resources, &file)?;
    Ok(ResourceImport { upserted, outside, rejected: read.rejected, warnings: read.warnings })
}

/// Outcome of an indicator import.
#[derive(Debug, Serialize)]
pub struct IndicatorImport {
    /// Values written.
    pub upserted: Upserted,
    /// Cells that said "no data" (stored as absent, never zero).
    pub no_data: usize,
    /// Rejected rows.
    pub rejected: Vec<Rejection>,
}

impl HasRejections for IndicatorImport {
    fn rejections(&self) -> &[Rejection] {
        &self.rejected
    }
}

/// Import an indicator table keyed by block id; rows for unknown blocks are rejected.
pub fn import_indicators(store: &dyn Store, path: &Path) -> Result<IndicatorImport, AppError> {
    let file = display(path);
    let mut read = read_indicators(open(path)?, &file)?;
    let ids = store.block_ids()?;
    let known: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut values = Vec::with_capacity(read.rows.len());
    for row in read.rows {
        if known.contains(row.value.block_id.as_str()) {
            values.push(row.value);
        } else {
            read.rejected.push(Rejection {
                file: file.clone(),
                location: format!("line {}", row.line),
                field: Some("block_id".into()),
                reason: unknown_block_reason(&row.value.block_id, &known),
            });
        }
    }
    let no_data: Vec<(String, String, Option<String>)> = read
        .no_data
        .into_iter()
        .filter(|(_, b, _, _)| known.contains(b.as_str()))
        .map(|(_, b, i, d)| (b, i, d))
        .collect();
    read.rejected.sort_by_key(|r| line_number(&r.location));
    let upserted = store.upsert_indicators(&values, &no_data, &file)?;
    Ok(IndicatorImport { upserted, no_data: no_data.len(), rejected: read.rejected })
}
