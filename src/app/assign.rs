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
///
/// Three stages overlap: a thread reads the CSV in chunks; each chunk is split in two halves,
/// parsed, located and written to a buffer on two threads; the buffers go to `output` in order.
/// On two cores a million rows took 1.0 s on one thread (reading a quarter of it, locating and
/// writing the rest).
pub fn assign_csv<R: Read + Send, W: Write>(
    index: &BlockIndex,
    input: R,
    file: &str,
    mut output: W,
    crs: Option<&Crs>,
) -> Result<AssignReport, AppError> {
    let format_err = |reason: String| AppError::Ingest(IngestError::Format { path: file.into(), reason });
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let headers = reader.headers().map_err(|e| format_err(format!("cannot read the header row: {e}")))?.clone();
    let header = Header::new(&headers);
    if header.find(&["block_id"]).is_some() {
        return Err(format_err("the input already has a block_id column".into()));
    }
    let location = LocationColumns::detect(&header, crs).map_err(format_err)?;
    let mut out_header = headers.clone();
    out_header.push_field("block_id");
    let mut head = csv::Writer::from_writer(Vec::new());
    head.write_record(&out_header).map_err(output_error)?;
    output.write_all(&head.into_inner().map_err(output_error)?).map_err(output_error)?;
    let mut report = AssignReport::default();
    // Rows are streamed in chunks: big enough for `locate_many` to visit blocks in a
    // cache-friendly order, small enough to keep memory flat on a multi-gigabyte input.
    const CHUNK: usize = 65_536;
    let (chunks, ready) = std::sync::mpsc::sync_channel::<Result<Vec<csv::StringRecord>, String>>(2);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut chunk = Vec::with_capacity(CHUNK);
            for result in reader.records() {
                match result {
                    Ok(record) => chunk.push(record),
                    Err(e) => {
                        let _ = chunks.send(Err(format!("malformed CSV: {e}")));
                        return;
                    }
                }
                if chunk.len() == CHUNK
                    && chunks.send(Ok(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))).is_err()
                {
                    return; // the writer stopped (an output error)
                }
            }
            let _ = chunks.send(Ok(chunk));
        });
        for chunk in ready {
            let chunk = chunk.map_err(format_err)?;
            let (first, second) = chunk.split_at(chunk.len() / 2);
            let (a, b) = std::thread::scope(|inner| {
                let b = inner.spawn(|| assign_part(index, &location, crs, file, second));
                let a = assign_part(index, &location, crs, file, first);
                (a, b.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            });
            for part in [a, b] {
                let part = part?;
                output.write_all(&part.bytes).map_err(output_error)?;
                report.rows += part.rows;
                report.assigned += part.assigned;
                report.outside += part.outside;
                report.rejected.extend(part.rejected);
            }
        }
        Ok::<(), AppError>(())
    })?;
    report.outside -= report.rejected.len() as u64;
    output.flush().map_err(output_error)?;
    Ok(report)
}

/// Writing the output failed (a closed pipe, a full disk).
fn output_error(e: impl std::fmt::Display) -> AppError {
    AppError::Output(e.to_string())
}

/// One part of a chunk, assigned: its rows as CSV and what [`AssignReport`] counts of them.
struct Part {
    bytes: Vec<u8>,
    rows: u64,
    assigned: u64,
    outside: u64,
    rejected: Vec<Rejection>,
}

fn assign_part(
    index: &BlockIndex,
    location: &LocationColumns,
    crs: Option<&Crs>,
    file: &str,
    records: &[csv::StringRecord],
) -> Result<Part, AppError> {
    let mut part = Part { bytes: Vec::new(), rows: 0, assigned: 0, outside: 0, rejected: Vec::new() };
    let points: Vec<(f64, f64)> = records
        .iter()
        .map(|record| match location.read(record, crs) {
            Ok(p) => p,
            Err((field, reason)) => {
                part.rejected.push(Rejection {
                    file: file.into(),
                    location: format!("line {}", line_of(record)),
                    field: Some(field),
                    reason,
                });
                (f64::NAN, f64::NAN) // located nowhere: written with an empty block_id
            }
        })
        .collect();
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(records.len() * 64));
    for (record, rank) in records.iter().zip(index.locate_many(&points)) {
        let block = rank.map(|r| index.ids()[r as usize].as_str());
        part.rows += 1;
        match block {
            Some(_) => part.assigned += 1,
            None => part.outside += 1,
        }
        writer.write_record(record.iter().chain(std::iter::once(block.unwrap_or("")))).map_err(output_error)?;
    }
    part.bytes = writer.into_inner().map_err(output_error)?;
    Ok(part)
}
