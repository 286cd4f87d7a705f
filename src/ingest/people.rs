//! Sign-up CSVs of residents and ambassadors.
//!
//! Columns (case-insensitive, any order): `id` (optional), `lon,lat` or `longitude,latitude`
//! (WGS84) or `x,y` with a CRS, and optional `name`, `phone`, `email`, `interested`, `active`,
//! `role` and, for ambassadors, `block_id` (the block they adopt).

use std::hash::BuildHasher;
use std::io::Read;

use super::tabular::{LocationColumns, Row, cell, line_of, next_row, open_csv, parse_bool, reject_at, text_cell};
use super::{Crs, IngestError, Rejection};
use crate::core::person::{check_email, check_id};
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
    let (mut csv, header) = open_csv(reader, file)?;
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

    // Rows by id, as positions in `out.rows` (which hold the ids): a map of id copies was
    // ~50 MB of a 650,000-row import's peak.
    let hasher = std::hash::RandomState::new();
    let mut seen: hashbrown::HashTable<u32> = hashbrown::HashTable::new();
    let mut n = 0u64;
    while let Some(row) = next_row(&mut csv, file) {
        let record = match row {
            Row::Record(record) => record,
            Row::Rejected(rejection) => {
                out.rejected.push(rejection);
                continue;
            }
            Row::Failed(reason) => return Err(format_err(reason)),
        };
        n += 1;
        if n.is_multiple_of(16_384) {
            progress(record.position().map_or(0, |p| p.byte()));
        }
        let line = line_of(&record);
        let reject = |field: Option<&str>, reason: String| reject_at(file, line, field, reason);
        match parse_row(
            &record,
            role,
            crs,
            &location,
            [id_c, name_c, phone_c, email_c, interested_c, active_c, role_c, block_c],
        ) {
            Ok(person) => {
                let hash = hasher.hash_one(&person.id);
                if let Some(&j) = seen.find(hash, |&j| out.rows[j as usize].person.id == person.id) {
                    let first = out.rows[j as usize].line;
                    out.rejected.push(reject(Some("id"), format!("duplicate id (first at line {first})")));
                    continue;
                }
                let j = u32::try_from(out.rows.len()).map_err(|_| format_err("more than 4 billion rows".into()))?;
                out.rows.push(PersonRow { line, person });
                let rows = &out.rows;
                seen.insert_unique(hash, j, |&k| hasher.hash_one(&rows[k as usize].person.id));
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
        let r: Role =
            r.parse().map_err(|_| ("role".to_string(), "not a role (expected resident or ambassador)".to_string()))?;
        if r != role {
            return Err((
                "role".into(),
                format!("row is a {r}, but this is an import of {role}s; use `belong import {r}s`"),
            ));
        }
    }
    let (lon, lat) = location.read(record, crs)?;
    // Every text field under the rule of the JSON API; no reason repeats a value (a name, a
    // phone, an email are personal data, and a row whose columns slipped puts them anywhere).
    let email = text_cell(record, email_c, "email")?;
    if let Some(e) = &email {
        check_email(e).map_err(|reason| ("email".to_string(), reason.to_string()))?;
    }
    let flag = |pos: Option<usize>, name: &str, default: bool| -> Result<bool, (String, String)> {
        cell(record, pos).map_or(Ok(default), |t| {
            parse_bool(t).map_err(|_| (name.to_string(), "not true/false (also accepted: yes/no, 1/0)".to_string()))
        })
    };
    let interested = flag(interested_c, "interested", role == Role::Ambassador)?;
    let active = flag(active_c, "active", true)?;
    let adopted_block = if role == Role::Ambassador { text_cell(record, block_c, "block_id")? } else { None };
    let name = text_cell(record, name_c, "name")?;
    let phone = text_cell(record, phone_c, "phone")?;
    let id = match cell(record, id_c) {
        Some(id) => {
            check_id(id).map_err(|reason| ("id".to_string(), reason.to_string()))?;
            id.to_string()
        }
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

    /// Issue 12.4: the text rule of the JSON API holds for CSV rows too.
    #[test]
    fn one_validation_for_every_door_text_fields() {
        let long_name = "N".repeat(3_000_000);
        let csv = format!(
            "id,name,phone,email,lon,lat\n\
             r1,Ana,555-0100,ana@example.org,-118.28,34.04\n\
             r2,{long_name},,,-118.28,34.04\n\
             r3,Bo,555\u{1}0101,,-118.28,34.04\n\
             r4,Cy,,{}@example.org,-118.28,34.04\n\
             r/5,Di,,,-118.28,34.04\n\
             {},Ed,,,-118.28,34.04\n",
            "e".repeat(2000),
            "i".repeat(201),
        );
        let r = read(&csv, Role::Resident);
        assert_eq!(r.rows.iter().map(|p| p.person.id.as_str()).collect::<Vec<_>>(), ["r1"]);
        let got: Vec<(&str, Option<&str>)> =
            r.rejected.iter().map(|j| (j.location.as_str(), j.field.as_deref())).collect();
        assert_eq!(
            got,
            [
                ("line 3", Some("name")),
                ("line 4", Some("phone")),
                ("line 5", Some("email")),
                ("line 6", Some("id")),
                ("line 7", Some("id"))
            ]
        );
        assert!(r.rejected[0].reason.contains("longer than 1000 characters"), "{}", r.rejected[0].reason);
        assert!(r.rejected[1].reason.contains("control characters"), "{}", r.rejected[1].reason);
        for j in &r.rejected {
            assert!(j.reason.len() < 200 && !j.reason.contains("555") && !j.reason.contains("eee"), "{j}");
        }
    }

    /// Issue 12.4: a quote that never closes is a rejected row with its line, never a value
    /// that swallows the rows after it.
    #[test]
    fn one_validation_for_every_door_unterminated_quote() {
        let mut csv = String::from("id,name,lon,lat\nr1,Ana,-118.28,34.04\nr2,\"Bo,-118.28,34.04\n");
        for i in 0..1000 {
            csv.push_str(&format!("s{i},Someone,-118.28,34.04\n"));
        }
        let r = read(&csv, Role::Resident);
        assert_eq!(r.rows.iter().map(|p| p.person.id.as_str()).collect::<Vec<_>>(), ["r1"]);
        assert_eq!(r.rejected.len(), 1, "{:?}", r.rejected);
        let j = &r.rejected[0];
        assert_eq!((j.location.as_str(), j.field.as_deref()), ("line 3", None));
        assert!(j.reason.contains("opened on line 3") && j.reason.contains("line 1003"), "{j}");
        assert!(!j.reason.contains("Bo") && !j.reason.contains("Someone"), "{j}");
        // Closed quotes and doubled quotes are fine; so is a quote inside an unquoted value,
        // and a final row without a line break. A quoted line break is read (and refused by the
        // text rule, as in the JSON API), without losing the rows after it.
        let ok = "id,name,lon,lat\nr1,\"Ana \"\"A\"\", Jr\",-118.28,34.04\nr2,\"Bo\nB\",-118.28,34.04\nr3,Cy\"s,-118.28,34.04\nr4,\"Di\",-118.28,34.04";
        let r = read(ok, Role::Resident);
        assert_eq!(r.rows.iter().map(|p| p.person.id.as_str()).collect::<Vec<_>>(), ["r1", "r3", "r4"]);
        assert_eq!(r.rows[0].person.name.as_deref(), Some("Ana \"A\", Jr"));
        assert_eq!(r.rejected.len(), 1, "{:?}", r.rejected);
        assert_eq!((r.rejected[0].location.as_str(), r.rejected[0].field.as_deref()), ("line 3", Some("name")));
        // In the header: a file error.
        let err = read_people("id,\"name,lon,lat\nr1,Ana,-118,34\n".as_bytes(), "p.csv", Role::Resident, None, |_| {})
            .unwrap_err();
        assert!(err.to_string().contains("never closed"), "{err}");
    }

    /// Issue 12.4: extra fields on a row are not dropped silently.
    #[test]
    fn one_validation_for_every_door_extra_fields() {
        let csv = "id,name,lon,lat\nr1,Ana,-118.28,34.04\nr2,Bo,Jr,-118.28,34.04\nr3,Cy,-118.28\n";
        let r = read(csv, Role::Resident);
        assert_eq!(r.rows.len(), 1);
        let got: Vec<(&str, Option<&str>)> =
            r.rejected.iter().map(|j| (j.location.as_str(), j.field.as_deref())).collect();
        assert_eq!(got, [("line 3", None), ("line 4", Some("lat"))]);
        assert!(r.rejected[0].reason.contains("5 fields, but the header has 4"), "{}", r.rejected[0].reason);
        assert!(!r.rejected[0].reason.contains("Bo"), "{}", r.rejected[0].reason);
    }

    /// Issue 12.5: x/y outside the area of their CRS are rejected rows, not people at a pole.
    #[test]
    fn projected_coordinates_outside_their_crs_are_rejected() {
        let cases = [
            ("EPSG:2229", "id,x,y\np1,6480000,1840000\np2,1000000000,1000000000\np3,6480000,1000000000\n"),
            ("EPSG:3857", "id,x,y\np1,-13167000,4035000\np2,-1000000000000,1000000000000\np3,1e12,-1e12\n"),
        ];
        for (code, csv) in cases {
            let crs = Crs::parse(code).unwrap();
            let r = read_people(csv.as_bytes(), "p.csv", Role::Resident, Some(&crs), |_| {}).unwrap();
            assert_eq!(r.rows.iter().map(|p| p.person.id.as_str()).collect::<Vec<_>>(), ["p1"], "{code}");
            assert_eq!(r.rejected.len(), 2, "{code}: {:?}", r.rejected);
            for j in &r.rejected {
                assert_eq!(j.field.as_deref(), Some("x"), "{j}");
                assert!(j.reason.contains(code) && j.reason.contains("outside"), "{j}");
                assert!(!j.reason.contains("1000000") && !j.reason.contains("e12"), "{j}");
            }
        }
    }

    /// Issue 12.6: no rejection repeats a contact value, even from a row whose columns slipped.
    #[test]
    fn personal_data_echoed_in_no_rejection() {
        let email = "ana.secret@example";
        let csv = format!(
            "id,name,phone,email,lon,lat,interested,active,role\n\
             r1,Ana Secret,555-0199,{email},-118.28,34.04,,,\n\
             r2,Ana Secret,{email},-118.28,34.04,yes,,,\n\
             r3,-118.28,34.04,Ana Secret,555-0199,{email},,,\n\
             r4,Ana Secret,555-0199,,-118.28,34.04,{email},,\n\
             r5,Ana Secret,555-0199,,-118.28,34.04,,{email},\n\
             r6,Ana Secret,555-0199,,-118.28,34.04,,,{email}\n\
             r7,Ana Secret,555-0199,,-118.28,34.04,,,\n\
             r7,Ana Secret,555-0199,,-118.28,34.04,,,\n\
             r8,Ana Secret,555-0199,{email},-118.28,34.04,,,,extra\n"
        );
        let r = read(&csv, Role::Resident);
        assert_eq!(r.rows.len(), 1, "{:?}", r.rejected);
        assert_eq!(r.rejected.len(), 8, "{:?}", r.rejected);
        for j in &r.rejected {
            let shown = j.to_string();
            for secret in [email, "Ana Secret", "555-0199", "-118.28", "34.04"] {
                assert!(!shown.contains(secret), "{secret} in: {shown}");
            }
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn cell() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-zA-Z0-9@. -]{0,8}",
                Just("\"".to_string()),
                Just("\"\"".to_string()),
                Just("\"a,b\"".to_string()),
                Just("\u{1}".to_string()),
                Just("\r".to_string()),
                Just("secret@example.org".to_string()),
                Just("-118.28".to_string()),
                Just("34.04".to_string()),
                Just("1e9".to_string()),
                "\\PC{0,6}",
            ]
        }

        proptest! {
            /// CSV row validation: whatever the rows, no panic; every rejection has a line and
            /// a reason, and repeats no value; every row kept obeys the text rule.
            #[test]
            fn csv_row_validation_never_panics_and_always_says_why(
                rows in proptest::collection::vec(proptest::collection::vec(cell(), 0..9), 0..8)
            ) {
                let mut csv = String::from("id,name,phone,email,lon,lat,interested\n");
                for row in &rows {
                    csv.push_str(&row.join(","));
                    csv.push('\n');
                }
                let r = read_people(csv.as_bytes(), "p.csv", Role::Resident, None, |_| {}).unwrap();
                for j in &r.rejected {
                    prop_assert!(j.location.starts_with("line ") && j.location != "line 0", "{}", j);
                    prop_assert!(!j.reason.trim().is_empty(), "{}", j);
                    prop_assert!(!j.reason.contains("secret"), "{}", j);
                }
                for row in &r.rows {
                    let p = &row.person;
                    for t in [&p.name, &p.phone, &p.email].into_iter().flatten() {
                        prop_assert_eq!(crate::core::text::field_text(t), Ok(Some(t.as_str())));
                    }
                    prop_assert!(crate::core::person::check_id(&p.id).is_ok());
                }
            }
        }
    }

    #[test]
    fn role_column_must_match() {
        let r = read("id,role,lon,lat\nx,ambassador,-118,34\ny,resident,-118,34\n", Role::Resident);
        assert_eq!(r.rows.len(), 1);
        assert_eq!(r.rejected[0].field.as_deref(), Some("role"));
    }
}
