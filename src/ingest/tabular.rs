//! Shared CSV plumbing: opening a CSV so its structure is checked (quotes that never close,
//! rows wider than the header), header lookup by alias, text fields, numbers, booleans,
//! locations in any CRS.

use std::collections::HashMap;
use std::io::Read;

use super::{Crs, IngestError, Rejection};
use crate::core::text::{TextError, field_text};

/// A CSV reader over a [`QuoteWatch`]: what every importer reads through.
pub type CsvReader<R> = csv::Reader<QuoteWatch<R>>;

/// Open a CSV and read its header. The reader is flexible (a row may stop short of the header:
/// its missing cells are empty), and watched for quotes that never close (see [`next_row`]).
/// A header that is not readable, or that a never-closed quote runs away with, is a file error.
pub fn open_csv<R: Read>(reader: R, file: &str) -> Result<(CsvReader<R>, Header), IngestError> {
    let format_err = |reason: String| IngestError::Format { path: file.into(), reason };
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(QuoteWatch::new(reader));
    let record = csv.headers().map_err(|e| format_err(format!("cannot read the header row: {e}")))?.clone();
    if let Some((_, line)) = runaway_quote(&csv) {
        return Err(format_err(format!(
            "the header row has a quote (\") opened on line {line} that is never closed, so the whole file would be \
             one header; close the quote"
        )));
    }
    Ok((csv, Header::new(&record)))
}

/// One step through the data rows of a CSV (blank lines skipped).
pub enum Row {
    /// A well-formed row.
    Record(csv::StringRecord),
    /// A row that is not a record: malformed, wider than the header, or run away with by a
    /// quote that never closes.
    Rejected(Rejection),
    /// The file could not be read further (an I/O error); the message says why.
    Failed(String),
}

/// The next data row of `csv` (opened with [`open_csv`]), `None` at the end.
///
/// The csv crate accepts two things silently that we refuse: a quote that never closes (it
/// would read the rest of the file, every following row included, as one value) is a rejected
/// row naming the line the quote opened on; a row with more fields than the header (the extra
/// ones would be dropped) is a rejected row too.
pub fn next_row<R: Read>(csv: &mut CsvReader<R>, file: &str) -> Option<Row> {
    let width = csv.headers().map_or(0, csv::StringRecord::len);
    loop {
        let mut record = csv::StringRecord::new();
        match csv.read_record(&mut record) {
            Ok(false) => return None,
            Ok(true) => {}
            Err(e) => {
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Some(Row::Failed(format!("read failed: {e}")));
                }
                let line = e.position().map_or(0, |p| p.line());
                return Some(Row::Rejected(reject_at(file, line, None, format!("malformed CSV: {e}"))));
            }
        }
        let line = line_of(&record);
        if let Some((_, opened)) = runaway_quote(csv) {
            let last = csv.get_ref().line();
            return Some(Row::Rejected(reject_at(
                file,
                line,
                None,
                format!(
                    "a quote (\") opened on line {opened} is never closed, so everything from there to the end of \
                     the file (line {last}) would be one value; this row and every line after it were not imported \
                     (close the quote and import again)"
                ),
            )));
        }
        if record.iter().all(|c| c.trim().is_empty()) {
            continue; // blank line
        }
        if record.len() > width {
            return Some(Row::Rejected(reject_at(
                file,
                line,
                None,
                format!(
                    "{} fields, but the header has {width}: a comma too many, or a value that needs quotes",
                    record.len()
                ),
            )));
        }
        return Some(Row::Record(record));
    }
}

/// The byte offset and line of a quote that never closes, when the record (or header) just
/// read is the one it ran away with: the watcher has seen the end of the input inside that
/// quote, and the record ends past it.
fn runaway_quote<R: Read>(csv: &CsvReader<R>) -> Option<(u64, u64)> {
    csv.get_ref().unterminated().filter(|&(byte, _)| csv.position().byte() > byte)
}

/// A reader that follows the CSV's quoting as the bytes go by (RFC 4180 as the csv crate reads
/// it by default: `"` quotes, `""` inside quotes is a quote, a quote inside an unquoted field is
/// a plain character), to tell a quote that is still open at the end of the input — which the
/// csv crate ends silently, as if it had been closed.
pub struct QuoteWatch<R> {
    inner: R,
    state: QuoteState,
    offset: u64,
    line: u64,
    opened: (u64, u64),
    at_end: bool,
    last: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

impl<R> QuoteWatch<R> {
    /// Watch `inner`.
    pub fn new(inner: R) -> QuoteWatch<R> {
        QuoteWatch { inner, state: QuoteState::FieldStart, offset: 0, line: 1, opened: (0, 1), at_end: false, last: 0 }
    }

    /// At the end of the input inside a quote: the byte offset and 1-based line it opened on.
    pub fn unterminated(&self) -> Option<(u64, u64)> {
        (self.at_end && self.state == QuoteState::Quoted).then_some(self.opened)
    }

    /// The 1-based line reached so far (the last line of the file at its end; a final line
    /// break starts no line).
    pub fn line(&self) -> u64 {
        if self.last == b'\n' { self.line - 1 } else { self.line }
    }

    fn scan(&mut self, bytes: &[u8]) {
        use QuoteState::*;
        for &b in bytes {
            self.state = match (self.state, b) {
                (FieldStart, b'"') => {
                    self.opened = (self.offset, self.line);
                    Quoted
                }
                (FieldStart | Unquoted | QuoteInQuoted, b',' | b'\n' | b'\r') => FieldStart,
                (FieldStart | Unquoted, _) => Unquoted,
                (Quoted, b'"') => QuoteInQuoted,
                (Quoted, _) => Quoted,
                (QuoteInQuoted, b'"') => Quoted,
                (QuoteInQuoted, _) => Unquoted,
            };
            self.offset += 1;
            self.line += u64::from(b == b'\n');
        }
        if let Some(&b) = bytes.last() {
            self.last = b;
        }
    }
}

impl<R: Read> Read for QuoteWatch<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.at_end = true;
        }
        self.scan(&buf[..n]);
        Ok(n)
    }
}

/// A text cell under the rule of every door ([`field_text`]): trimmed, `None` when blank,
/// refused when too long or holding control characters. The error names the column and the
/// rule, never the value.
pub fn text_cell(
    record: &csv::StringRecord,
    pos: Option<usize>,
    field: &str,
) -> Result<Option<String>, (String, String)> {
    let Some(raw) = pos.and_then(|p| record.get(p)) else { return Ok(None) };
    field_text(raw).map(|v| v.map(str::to_string)).map_err(|e: TextError| (field.to_string(), e.to_string()))
}

/// Header positions by lower-cased, trimmed name (a UTF-8 BOM on the first name is dropped).
pub struct Header {
    names: Vec<String>,
    positions: HashMap<String, usize>,
}

impl Header {
    /// Index the header row.
    pub fn new(record: &csv::StringRecord) -> Header {
        let names: Vec<String> = record.iter().map(|h| h.trim_start_matches('\u{feff}').trim().to_string()).collect();
        let mut positions = HashMap::new();
        for (i, n) in names.iter().enumerate() {
            positions.entry(n.to_ascii_lowercase()).or_insert(i);
        }
        Header { names, positions }
    }

    /// Position of the first of `aliases` present.
    pub fn find(&self, aliases: &[&str]) -> Option<usize> {
        aliases.iter().find_map(|a| self.positions.get(&a.to_ascii_lowercase()).copied())
    }

    /// Column names as written.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// A non-empty, trimmed cell.
pub fn cell(record: &csv::StringRecord, pos: Option<usize>) -> Option<&str> {
    pos.and_then(|p| record.get(p)).map(str::trim).filter(|s| !s.is_empty())
}

/// Parse a number; accepts thousands separators written as `1,234,567.8`.
pub fn parse_number(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let cleaned;
    let t = if looks_grouped(t) {
        cleaned = t.replace(',', "");
        cleaned.as_str()
    } else {
        t
    };
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("'{text}' is not a finite number")),
        Err(_) => Err(format!("'{text}' is not a number")),
    }
}

fn looks_grouped(t: &str) -> bool {
    let body = t.strip_prefix('-').unwrap_or(t);
    let int = body.split('.').next().unwrap_or("");
    let groups: Vec<&str> = int.split(',').collect();
    groups.len() > 1
        && (1..=3).contains(&groups[0].len())
        && groups[1..].iter().all(|g| g.len() == 3)
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
}

/// Parse a yes/no cell.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Ok(true),
        "false" | "f" | "no" | "n" | "0" => Ok(false),
        _ => Err(format!("'{text}' is not true/false (also accepted: yes/no, 1/0)")),
    }
}

/// Which columns hold a location, and in which CRS.
pub enum LocationColumns {
    /// `lon,lat` / `longitude,latitude` / `lng,lat`, WGS84 degrees.
    LonLat(usize, usize),
    /// `x,y` in the given CRS.
    Projected(usize, usize),
}

impl LocationColumns {
    /// Find location columns. `x,y` need a CRS; `lon,lat` with a projected CRS are read in it.
    pub fn detect(header: &Header, crs: Option<&Crs>) -> Result<LocationColumns, String> {
        let lon = header.find(&["lon", "longitude", "lng", "long"]);
        let lat = header.find(&["lat", "latitude"]);
        let x = header.find(&["x", "easting"]);
        let y = header.find(&["y", "northing"]);
        match (lon, lat, x, y) {
            (Some(lon), Some(lat), _, _) => Ok(LocationColumns::LonLat(lon, lat)),
            (_, _, Some(x), Some(y)) if crs.is_some() => Ok(LocationColumns::Projected(x, y)),
            (_, _, Some(_), Some(_)) => {
                Err("columns x,y need the CRS they are in: pass --crs EPSG:NNNN (e.g. EPSG:2229)".into())
            }
            _ => Err(format!(
                "no location columns: expected lon,lat (or longitude,latitude) in WGS84, or x,y with --crs; found: {}",
                header.names().join(",")
            )),
        }
    }

    /// Read the location of a row as WGS84 lon/lat. Errors name the column and the rule, never
    /// the value; x/y outside what their CRS can represent are refused (see [`Crs::to_wgs84`]).
    pub fn read(&self, record: &csv::StringRecord, crs: Option<&Crs>) -> Result<(f64, f64), (String, String)> {
        let (ix, iy, xname, yname) = match *self {
            LocationColumns::LonLat(a, b) => (a, b, "lon", "lat"),
            LocationColumns::Projected(a, b) => (a, b, "x", "y"),
        };
        let get = |i: usize, name: &str| -> Result<f64, (String, String)> {
            let text = cell(record, Some(i)).ok_or_else(|| (name.to_string(), "missing value".to_string()))?;
            // The value is not repeated: it may be a person's location (or, in a row whose
            // columns slipped, their phone number).
            parse_number(text).map_err(|_| (name.to_string(), "not a finite number".to_string()))
        };
        let (x, y) = (get(ix, xname)?, get(iy, yname)?);
        let (lon, lat) = match (self, crs) {
            (LocationColumns::LonLat(..), None) => (x, y),
            (_, Some(crs)) => crs.to_wgs84(x, y).map_err(|e| (xname.to_string(), e.without_coordinates()))?,
            (LocationColumns::Projected(..), None) => return Err((xname.into(), "x,y need --crs".into())),
        };
        check_lon_lat(lon, lat).map_err(|(f, e)| {
            let f = if matches!(self, LocationColumns::LonLat(..)) { f } else { xname.to_string() };
            (f, e)
        })?;
        Ok((lon, lat))
    }
}

/// WGS84 range check with a hint for swapped columns; the reason does not repeat the values.
pub fn check_lon_lat(lon: f64, lat: f64) -> Result<(), (String, String)> {
    if !(-180.0..=180.0).contains(&lon) {
        return Err(("lon".into(), "longitude outside -180..180 (wrong CRS? projected x,y need --crs)".to_string()));
    }
    if !(-90.0..=90.0).contains(&lat) {
        let hint = if (-90.0..=90.0).contains(&lon) && (-180.0..=180.0).contains(&lat) {
            " (lon and lat swapped?)"
        } else {
            ""
        };
        return Err(("lat".into(), format!("latitude outside -90..90{hint}")));
    }
    Ok(())
}

/// The data rows of a CSV opened with [`open_csv`] (see [`next_row`]): a row that is not a
/// record becomes a [`Rejection`]; a read error ends the iteration with one.
pub fn data_rows<'a, R: Read + 'a>(
    csv: &'a mut CsvReader<R>,
    file: &'a str,
) -> impl Iterator<Item = Result<csv::StringRecord, Rejection>> + 'a {
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        Some(match next_row(csv, file)? {
            Row::Record(record) => Ok(record),
            Row::Rejected(rejection) => Err(rejection),
            Row::Failed(reason) => {
                failed = true;
                Err(reject_at(file, csv.get_ref().line(), None, reason))
            }
        })
    })
}

/// A rejection of CSV line `line`.
pub fn reject_at(file: &str, line: u64, field: Option<&str>, reason: String) -> Rejection {
    Rejection { file: file.into(), location: format!("line {line}"), field: field.map(str::to_string), reason }
}

/// The CSV line a record starts on (1-based, header = line 1).
pub fn line_of(record: &csv::StringRecord) -> u64 {
    record.position().map_or(0, |p| p.line())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number(" -118.25 ").unwrap(), -118.25);
        assert_eq!(parse_number("6,480,000.5").unwrap(), 6_480_000.5);
        assert!(parse_number("34,0409").is_err());
        assert!(parse_number("NaN").is_err());
        assert!(parse_number("inf").is_err());
        assert!(parse_number("abc").is_err());
    }

    #[test]
    fn booleans() {
        for t in ["true", "TRUE", "yes", "Y", "1", "t"] {
            assert!(parse_bool(t).unwrap(), "{t}");
        }
        for f in ["false", "No", "0", "n", "F"] {
            assert!(!parse_bool(f).unwrap(), "{f}");
        }
        assert!(parse_bool("maybe").is_err());
    }

    #[test]
    fn lon_lat_ranges_hint_swaps() {
        assert!(check_lon_lat(-118.0, 34.0).is_ok());
        let (field, msg) = check_lon_lat(34.0, -118.0).unwrap_err();
        assert_eq!(field, "lat");
        assert!(msg.contains("swapped"), "{msg}");
        assert_eq!(check_lon_lat(6480000.0, 1840000.0).unwrap_err().0, "lon");
    }
}
