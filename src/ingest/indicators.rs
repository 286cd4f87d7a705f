//! Per-block indicator tables (school readiness and others) from CSV.
//!
//! Long form: `block_id,indicator,value[,date]`. Wide form: `block_id[,date]` followed by one
//! column per indicator. An empty cell or `NA`, `N/A`, `null`, `-` means "no data": never zero.

use std::collections::HashMap;
use std::io::Read;

use super::tabular::{cell, data_rows, line_of, open_csv, parse_number, reject_at};
use super::{IngestError, Rejection};
use crate::core::IndicatorValue;

/// A value and the CSV line it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorRow {
    /// 1-based line number.
    pub line: u64,
    /// The value.
    pub value: IndicatorValue,
}

/// Good values, explicit no-data keys, rejected rows.
#[derive(Debug, Default)]
pub struct IndicatorsRead {
    /// Values that parsed.
    pub rows: Vec<IndicatorRow>,
    /// `(line, block_id, indicator, date)` of cells that say "no data".
    pub no_data: Vec<(u64, String, String, Option<String>)>,
    /// Rows that did not parse.
    pub rejected: Vec<Rejection>,
}

fn is_no_data(text: &str) -> bool {
    matches!(text.trim().to_ascii_lowercase().as_str(), "" | "na" | "n/a" | "null" | "none" | "-" | "nan")
}

fn parse_date(text: &str) -> Result<String, String> {
    chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| format!("'{text}' is not a date (expected YYYY-MM-DD)"))
}

/// Read an indicators CSV (long or wide form).
pub fn read_indicators<R: Read>(reader: R, file: &str) -> Result<IndicatorsRead, IngestError> {
    let format_err = |reason: String| IngestError::Format { path: file.into(), reason };
    let (mut csv, header) = open_csv(reader, file)?;
    let block_c = header
        .find(&["block_id", "geoid20", "geoid10", "geoid", "block"])
        .ok_or_else(|| format_err(format!("no block_id column; found: {}", header.names().join(","))))?;
    let date_c = header.find(&["date"]);
    let long = header.find(&["indicator"]).zip(header.find(&["value"]));
    // Wide form: every other column is an indicator.
    let wide: Vec<(usize, String)> = if long.is_none() {
        header
            .names()
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != block_c && Some(*i) != date_c)
            .map(|(i, n)| (i, n.clone()))
            .collect()
    } else {
        Vec::new()
    };
    if long.is_none() && wide.is_empty() {
        return Err(format_err(
            "expected columns block_id,indicator,value[,date] or block_id plus one column per indicator".into(),
        ));
    }
    let mut out = IndicatorsRead::default();
    let mut seen: HashMap<(String, String, Option<String>), u64> = HashMap::new();
    for row in data_rows(&mut csv, file) {
        let record = match row {
            Ok(r) => r,
            Err(rejection) => {
                out.rejected.push(rejection);
                continue;
            }
        };
        let line = line_of(&record);
        let reject = |field: &str, reason: String| reject_at(file, line, Some(field), reason);
        let Some(block_id) = cell(&record, Some(block_c)).map(str::to_string) else {
            out.rejected.push(reject("block_id", "missing block_id".into()));
            continue;
        };
        let date = match cell(&record, date_c).map(parse_date).transpose() {
            Ok(d) => d,
            Err(e) => {
                out.rejected.push(reject("date", e));
                continue;
            }
        };
        let cells: Vec<(String, &str, &str)> = match long {
            Some((ind_c, val_c)) => {
                let Some(ind) = cell(&record, Some(ind_c)) else {
                    out.rejected.push(reject("indicator", "missing indicator name".into()));
                    continue;
                };
                vec![(ind.to_string(), record.get(val_c).unwrap_or(""), "value")]
            }
            None => wide.iter().map(|(i, n)| (n.clone(), record.get(*i).unwrap_or(""), n.as_str())).collect(),
        };
        for (indicator, text, field) in cells {
            let key = (block_id.clone(), indicator.clone(), date.clone());
            if let Some(first) = seen.get(&key) {
                out.rejected.push(reject(
                    field,
                    format!("duplicate value for block '{block_id}', indicator '{indicator}' (first at line {first})"),
                ));
                continue;
            }
            seen.insert(key, line);
            if is_no_data(text) {
                out.no_data.push((line, block_id.clone(), indicator, date.clone()));
                continue;
            }
            match parse_number(text) {
                Ok(value) => out.rows.push(IndicatorRow {
                    line,
                    value: IndicatorValue { block_id: block_id.clone(), indicator, date: date.clone(), value },
                }),
                Err(e) => out.rejected.push(reject(field, e)),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_form_with_no_data_and_errors() {
        let csv = "block_id,indicator,value,date\n\
                   060371,school_readiness,71.5,2025-06-01\n\
                   060372,school_readiness,NA,2025-06-01\n\
                   060373,school_readiness,abc,\n\
                   060374,school_readiness,50,June\n\
                   060371,school_readiness,72,2025-06-01\n\
                   060375,school_readiness,0,\n";
        let r = read_indicators(csv.as_bytes(), "ind.csv").unwrap();
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[0].value.block_id, "060371");
        assert_eq!(r.rows[0].value.date.as_deref(), Some("2025-06-01"));
        assert_eq!(r.rows[1].value.value, 0.0);
        assert_eq!(r.no_data.len(), 1);
        let fields: Vec<_> = r.rejected.iter().map(|j| (j.location.as_str(), j.field.as_deref())).collect();
        assert_eq!(fields, [("line 4", Some("value")), ("line 5", Some("date")), ("line 6", Some("value"))]);
    }

    #[test]
    fn wide_form() {
        let csv = "GEOID20,school_readiness,children\n060371,70,12\n060372,,8\n";
        let r = read_indicators(csv.as_bytes(), "w.csv").unwrap();
        assert_eq!(r.rows.len(), 3);
        assert_eq!(r.no_data.len(), 1);
        assert!(r.rows.iter().any(|v| v.value.indicator == "children" && v.value.value == 8.0));
    }

    #[test]
    fn needs_block_column() {
        assert!(read_indicators("tract,value\n1,2\n".as_bytes(), "x.csv").is_err());
    }
}
