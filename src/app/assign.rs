//! `belong assign`: a streaming spatial join of a CSV of points against the stored blocks.

use std::io::{Read, Write};

use crate::core::BlockIndex;
use crate::ingest::tabular::{Header, LocationColumns, line_of};
use crate::ingest::{Crs, IngestError, Rejection};

use super::AppError;

/// What `assign` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct AssignReport {
    /// Rows written.
    pub rows: u64,
    /// Rows inside a block.
    pub assigned: u64,
    /// Rows outside every block (empty `block_id`).
    pub outside: u64,
    /// Rows whose location could not be read (written with an empty `block_id`).
    pub rejected: Vec<Rejection>,
}

/// Copy `input` to `output` adding a `block_id` column (empty outside the catchment). Rows
/// are streamed; all input columns are kept as they were.
pub fn assign_csv<R: Read, W: Write>(
    index: &BlockIndex,
    input: R,
    file: &str,
    output: W,
    crs: Option<&Crs>,
) -> Result<AssignReport, AppError> {
    let format_err = |reason: String| AppError::Ingest(IngestError::Format { path: file.into(), reason });
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let mut writer = csv::Writer::from_writer(output);
    let headers = reader.headers().map_err(|e| format_err(format!("cannot read the header row: {e}")))?.clone();
    let header = Header::new(&headers);
    if header.find(&["block_id"]).is_some() {
        return Err(format_err("the input already has a block_id column".into()));
    }
    let location = LocationColumns::detect(&header, crs).map_err(format_err)?;
    let out_err = |e: csv::Error| AppError::Output(e.to_string());
    let mut out_header = headers.clone();
    out_header.push_field("block_id");
    writer.write_record(&out_header).map_err(out_err)?;
    let mut report = AssignReport::default();
    // Rows are streamed in chunks: big enough for `locate_many` to visit blocks in a
    // cache-friendly order, small enough to keep memory flat on a multi-gigabyte input.
    const CHUNK: usize = 65_536;
    let mut chunk: Vec<csv::StringRecord> = Vec::with_capacity(CHUNK);
    let mut points: Vec<(f64, f64)> = Vec::with_capacity(CHUNK);
    let mut flush = |chunk: &mut Vec<csv::StringRecord>, points: &mut Vec<(f64, f64)>, report: &mut AssignReport| {
        for (mut record, rank) in chunk.drain(..).zip(index.locate_many(points)) {
            let block = rank.map(|r| index.ids()[r as usize].as_str());
            report.rows += 1;
            match block {
                Some(_) => report.assigned += 1,
                None => report.outside += 1,
            }
            record.push_field(block.unwrap_or(""));
            writer.write_record(&record).map_err(out_err)?;
        }
        points.clear();
        Ok::<(), AppError>(())
    };
    for result in reader.records() {
        let record = result.map_err(|e| format_err(format!("malformed CSV: {e}")))?;
        let point = match location.read(&record, crs) {
            Ok(p) => p,
            Err((field, reason)) => {
                report.rejected.push(Rejection {
                    file: file.into(),
                    location: format!("line {}", line_of(&record)),
                    field: Some(field),
                    reason,
                });
                (f64::NAN, f64::NAN) // located nowhere: written with an empty block_id
            }
        };
        points.push(point);
        chunk.push(record);
        if chunk.len() == CHUNK {
            flush(&mut chunk, &mut points, &mut report)?;
        }
    }
    flush(&mut chunk, &mut points, &mut report)?;
    report.outside -= report.rejected.len() as u64;
    writer.flush().map_err(|e| AppError::Output(e.to_string()))?;
    Ok(report)
}
