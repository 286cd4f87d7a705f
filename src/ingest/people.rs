//! Sign-up CSVs of residents and ambassadors.
//!
//! Columns (case-insensitive, any order): `id` (optional), `lon,lat` or `longitude,latitude`
//! (WGS84) or `x,y` with a CRS, and optional `name`, `phone`, `email`, `interested`, `active`,
//! `role` and, for ambassadors, `block_id` (the block they adopt).

use std::collections::HashMap;
use std::io::Read;

use super::tabular::{Header, LocationColumns, cell, line_of, parse_bool, reject_at};
use super::{Crs, IngestError, Rejection};
use crate::core::{Person, Role};

/// A parsed person and the CSV line it came from (home block not yet assigned).
#[derive(Debug, Clone, PartialEq)]
pub struct PersonRow {
    /// 1-based line number (header is line 1).
    pub line: u64,
    /// The person, `home_block` still `None`.
    pub person: Person,
}

/// Result of reading a people CSV: good rows, rejected rows, warnings about the file.
#[derive(Debug, Default)]
pub struct PeopleRead {
    /// Rows that parsed.
    pub rows: Vec<PersonRow>,
    /// Rows that did not, with reasons.
    pub rejected: Vec<Rejection>,
    /// File-level notes, e.g. ignored columns.
    pub warnings: Vec<String>,
}

/// Namespace for ids derived from row content when a CSV has no `id` column.
const ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6b1e_0b5e_6e10_4c2b_9d3a_b10c_c0de_0001);

/// Read people of `role` from CSV. `file` names the source in messages; `progress` is called
/// with the byte offset now and then.
pub fn read_people<R: Read>(
    reader: R,
    file: &str,
    role: Role,
    crs: Option<&Crs>,
    mut progress: impl FnMut(u64),
) -> Result<PeopleRead, IngestError> {
    let format_err = |reason: String| IngestError::Format { path: file.into(), reason };
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let header = Header::new(csv.headers().map_err(|e| format_err(format!("cannot read the header row: {e}")))?);
    let location = LocationColumns::detect(&header, crs).map_err(format_err)?;
    let col = |names: &[&str]| header.find(names);
    let (id_c, name_c, phone_c, email_c) = (
        col(&["id"]),
        col(&["name", "full_name"]),
        col(&["phone", "telephone", "tel"]),
        col(&["email", "e-mail", "mail"]),
    );
    let (interested_c, active_c, role_c) =
        (col(&["interested", "opt_in", "volunteer"]), col(&["active"]), col(&["role"]));
    let block_c = col(&["block_id", "adopted_block", "adopts"]);

    let mut out = PeopleRead::default();
    if role == Role::Resident && block_c.is_some() {
        out.warnings.push("column block_id is ignored for residents: a resident's block is where they live".into());
    }
    let used: Vec<usize> = [id_c, name_c, phone_c, email_c, interested_c, active_c, role_c, block_c]
        .into_iter()
        .flatten()
        .chain(match location {
            LocationColumns::LonLat(a, b) | LocationColumns::Projected(a, b) => [a, b],
        })
        .collect();
    let ignored: Vec<&str> =
        header.names().iter().enumerate().filter(|(i, _)| !used.contains(i)).map(|(_, n)| n.as_str()).collect();
    if !ignored.is_empty() {
        out.warnings.push(format!("ignored column(s): {}", ignored.join(", ")));
    }

    let mut first_line: HashMap<String, u64> = HashMap::new();
    let mut record = csv::StringRecord::new();
    let mut n = 0u64;
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                out.rejected.push(reject_at(file, line, None, format!("malformed CSV: {e}")));
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(format_err(format!("read failed: {e}")));
                }
                continue;
            }
        }
        n += 1;
        if n.is_multiple_of(16_384) {
            progress(record.position().map_or(0, |p| p.byte()));
        }
        let line = line_of(&record);
        let reject = |field: Option<&str>, reason: String| reject_at(file, line, field, reason);
        if record.iter().all(|c| c.trim().is_empty()) {
            continue; // blank line
        }
        match parse_row(
            &record,
            role,
            crs,
            &location,
            [id_c, name_c, phone_c, email_c, interested_c, active_c, role_c, block_c],
        ) {
            Ok(person) => {
                if let Some(&first) = first_line.get(&person.id) {
                    out.rejected
                        .push(reject(Some("id"), format!("duplicate id '{}' (first at line {first})", person.id)));
                    continue;
                }
                first_line.insert(person.id.clone(), line);
                out.rows.push(PersonRow { line, person });
            }
            Err((field, reason)) => out.rejected.push(reject(Some(&field), reason)),
        }
    }
    Ok(out)
}

type Cols = [Option<usize>; 8];

fn parse_row(
    record: &csv::StringRecord,
    role: Role,
    crs: Option<&Crs>,
    location: &LocationColumns,
    [id_c, name_c, phone_c, email_c, interested_c, active_c, role_c, block_c]: Cols,
) -> Result<Person, (String, String)> {
    if let Some(r) = cell(record, role_c) {
        let r: Role = r.parse().map_err(|e| ("role".to_string(), e))?;
        if r != role {
            return Err((
                "role".into(),
                format!("row is a {r}, but this is an import of {role}s; use `belong import {r}s`"),
            ));
        }
    }
    let (lon, lat) = location.read(record, crs)?;
    let email = cell(record, email_c).map(str::to_string);
    if let Some(e) = &email {
        let ok = e
            .split_once('@')
            .is_some_and(|(u, d)| !u.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.'))
            && !e.contains(char::is_whitespace);
        if !ok {
            return Err(("email".into(), format!("'{e}' is not an email address")));
        }
    }
    let flag = |pos: Option<usize>, name: &str, default: bool| -> Result<bool, (String, String)> {
        cell(record, pos).map_or(Ok(default), |t| parse_bool(t).map_err(|e| (name.to_string(), e)))
    };
    let interested = flag(interested_c, "interested", role == Role::Ambassador)?;
    let active = flag(active_c, "active", true)?;
    let adopted_block = if role == Role::Ambassador { cell(record, block_c).map(str::to_string) } else { None };
    let name = cell(record, name_c).map(str::to_string);
    let phone = cell(record, phone_c).map(str::to_string);
    let id = match cell(record, id_c) {
        Some(id) => id.to_string(),
        None => {
            // Stable across re-imports of the same row, so a file without ids can be re-imported
            // without duplicating anyone.
            let key = format!(
                "{role}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{lon:.7}\u{1f}{lat:.7}",
                name.as_deref().unwrap_or(""),
                email.as_deref().unwrap_or(""),
                phone.as_deref().unwrap_or("")
            );
            uuid::Uuid::new_v5(&ID_NAMESPACE, key.as_bytes()).to_string()
        }
    };
    Ok(Person {
        id,
        role,
        lon,
        lat,
        name,
        phone,
        email,
        interested,
        active,
        adopted_block,
        home_block: None,
        adopted_until: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(csv: &str, role: Role) -> PeopleRead {
        read_people(csv.as_bytes(), "people.csv", role, None, |_| {}).unwrap()
    }

    #[test]
    fn reads_good_rows_and_rejects_bad_ones_with_lines() {
        let csv = "id,name,email,lon,lat,interested\n\
                   r1,Ana,ana@example.org,-118.28,34.04,yes\n\
                   r2,Bo,,abc,34.04,\n\
                   r3,Cy,not-an-email,-118.28,34.04,\n\
                   r4,Di,,-118.28,134.04,\n\
                   r1,Ana again,,-118.28,34.04,\n\
                   r5,Ed,,-118.28,34.04,perhaps\n\
                   \n\
                   r6,Fa,,-118.29,34.05,0\n";
        let r = read(csv, Role::Resident);
        assert_eq!(r.rows.iter().map(|p| p.person.id.as_str()).collect::<Vec<_>>(), ["r1", "r6"]);
        assert_eq!(r.rows[0].line, 2);
        assert!(r.rows[0].person.interested);
        let got: Vec<(String, Option<String>)> =
            r.rejected.iter().map(|j| (j.location.clone(), j.field.clone())).collect();
        assert_eq!(
            got,
            [
                ("line 3".into(), Some("lon".into())),
                ("line 4".into(), Some("email".into())),
                ("line 5".into(), Some("lat".into())),
                ("line 6".into(), Some("id".into())),
                ("line 7".into(), Some("interested".into())),
            ]
        );
        assert!(r.rejected[3].reason.contains("first at line 2"), "{}", r.rejected[3].reason);
    }

    #[test]
    fn generated_ids_are_stable() {
        let csv = "name,longitude,latitude\nAna,-118.28,34.04\nBo,-118.29,34.05\n";
        let a = read(csv, Role::Resident);
        let b = read(csv, Role::Resident);
        assert_eq!(a.rows.len(), 2);
        assert_eq!(a.rows[0].person.id, b.rows[0].person.id);
        assert_ne!(a.rows[0].person.id, a.rows[1].person.id);
    }

    #[test]
    fn projected_columns_need_crs() {
        let csv = "id,x,y\np1,6480000,1840000\n";
        let err = read_people(csv.as_bytes(), "p.csv", Role::Resident, None, |_| {}).unwrap_err();
        assert!(err.to_string().contains("--crs"), "{err}");
        let crs = Crs::parse("EPSG:2229").unwrap();
        let r = read_people(csv.as_bytes(), "p.csv", Role::Resident, Some(&crs), |_| {}).unwrap();
        approx::assert_abs_diff_eq!(r.rows[0].person.lon, -118.2695921, epsilon = 1e-6);
        approx::assert_abs_diff_eq!(r.rows[0].person.lat, 34.0481104, epsilon = 1e-6);
    }

    #[test]
    fn ambassadors_adopt_and_default_active() {
        let csv = "id,lon,lat,active,block_id\na1,-118.28,34.04,,060371\na2,-118.28,34.04,false,\n";
        let r = read(csv, Role::Ambassador);
        assert_eq!(r.rows[0].person.adopted_block.as_deref(), Some("060371"));
        assert!(r.rows[0].person.active);
        assert!(!r.rows[1].person.active);
        assert_eq!(r.rows[1].person.adopted_block, None);
    }

    #[test]
    fn missing_location_columns_is_a_file_error() {
        let err = read_people("id,name\n1,a\n".as_bytes(), "p.csv", Role::Resident, None, |_| {}).unwrap_err();
        assert!(err.to_string().contains("no location columns"), "{err}");
    }

    #[test]
    fn role_column_must_match() {
        let r = read("id,role,lon,lat\nx,ambassador,-118,34\ny,resident,-118,34\n", Role::Resident);
        assert_eq!(r.rows.len(), 1);
        assert_eq!(r.rejected[0].field.as_deref(), Some("role"));
    }
}
