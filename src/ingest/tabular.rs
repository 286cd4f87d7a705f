//! Shared CSV plumbing: header lookup by alias, numbers, booleans, locations in any CRS.

use std::collections::HashMap;

use super::{Crs, Rejection};

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

    /// Read the location of a row as WGS84 lon/lat. Errors name the column.
    pub fn read(&self, record: &csv::StringRecord, crs: Option<&Crs>) -> Result<(f64, f64), (String, String)> {
        let (ix, iy, xname, yname) = match *self {
            LocationColumns::LonLat(a, b) => (a, b, "lon", "lat"),
            LocationColumns::Projected(a, b) => (a, b, "x", "y"),
        };
        let get = |i: usize, name: &str| -> Result<f64, (String, String)> {
            let text = cell(record, Some(i)).ok_or_else(|| (name.to_string(), "missing value".to_string()))?;
            parse_number(text).map_err(|e| (name.to_string(), e))
        };
        let (x, y) = (get(ix, xname)?, get(iy, yname)?);
        let (lon, lat) = match (self, crs) {
            (LocationColumns::LonLat(..), None) => (x, y),
            (_, Some(crs)) => crs.to_wgs84(x, y).map_err(|e| (xname.to_string(), e.to_string()))?,
            (LocationColumns::Projected(..), None) => return Err((xname.into(), "x,y need --crs".into())),
        };
        check_lon_lat(lon, lat).map_err(|(f, e)| {
            let f = if matches!(self, LocationColumns::LonLat(..)) { f } else { xname.to_string() };
            (f, e)
        })?;
        Ok((lon, lat))
    }
}

/// WGS84 range check with a hint for swapped columns.
pub fn check_lon_lat(lon: f64, lat: f64) -> Result<(), (String, String)> {
    if !(-180.0..=180.0).contains(&lon) {
        return Err((
            "lon".into(),
            format!("longitude {lon} is outside -180..180 (wrong CRS? projected x,y need --crs)"),
        ));
    }
    if !(-90.0..=90.0).contains(&lat) {
        let hint = if (-90.0..=90.0).contains(&lon) && (-180.0..=180.0).contains(&lat) {
            " (lon and lat swapped?)"
        } else {
            ""
        };
        return Err(("lat".into(), format!("latitude {lat} is outside -90..90{hint}")));
    }
    Ok(())
}

/// The data rows of a CSV, skipping blank lines. A malformed row becomes a [`Rejection`]; a read
/// error ends the iteration with one.
pub fn data_rows<'a, R: std::io::Read + 'a>(
    csv: &'a mut csv::Reader<R>,
    file: &'a str,
) -> impl Iterator<Item = Result<csv::StringRecord, Rejection>> + 'a {
    let mut failed = false;
    csv.records()
        .map_while(move |r| {
            if failed {
                return None;
            }
            Some(match r {
                Ok(record) => Ok(record),
                Err(e) => {
                    failed = matches!(e.kind(), csv::ErrorKind::Io(_));
                    let line = e.position().map_or(0, |p| p.line());
                    Err(reject_at(file, line, None, format!("malformed CSV: {e}")))
                }
            })
        })
        .filter(|r| r.as_ref().map_or(true, |rec| !rec.iter().all(|c| c.trim().is_empty())))
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
