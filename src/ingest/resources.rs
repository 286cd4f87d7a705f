//! Community resources from CSV or GeoJSON points.
//!
//! CSV columns: `id` (optional), `name`, `category` (or `--category`), `lon,lat` (or `x,y`
//! with a CRS), `address`, `phone`, `email`, `url`; every other column is kept as an attribute.
//! GeoJSON: Point features; common LA County field names (`org_name`, `cat1`/`cat2`,
//! `addrln1`, `phones`, `link`) are understood.
//!
//! Optional everywhere: `hours` and `languages` (text, kept as imported) and `capacity` (beds,
//! seats or slots: a number of at least 0, else the record is rejected); see
//! [`normalise_access_fields`] for the other field names read as these.

use std::collections::HashMap;
use std::io::Read;

use serde_json::Value;

use super::tabular::{LocationColumns, cell, data_rows, line_of, open_csv, reject_at, text_cell};
use super::{Crs, IngestError, Rejection};
use crate::core::resource::normalise_access_fields;
use crate::core::text::{field_text, id_text};
use crate::core::{Attributes, Resource};

/// How to read resources.
#[derive(Debug, Default, Clone)]
pub struct ResourceOptions {
    /// Category for every row (overrides any category column).
    pub category: Option<String>,
    /// Field holding the id (default: `id`, or the GeoJSON feature id).
    pub id_field: Option<String>,
}

/// Good resources and rejected records.
#[derive(Debug, Default)]
pub struct ResourcesRead {
    /// Resources (block not yet assigned).
    pub resources: Vec<Resource>,
    /// Rejected rows/features.
    pub rejected: Vec<Rejection>,
    /// File-level notes.
    pub warnings: Vec<String>,
}

const ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6b1e_0b5e_6e10_4c2b_9d3a_b10c_c0de_0002);

const NAME: &[&str] = &["name", "org_name", "title", "facility", "site_name"];
const CATEGORY: &[&str] = &["category", "type", "cat2", "cat1", "kind"];
const ADDRESS: &[&str] = &["address", "addrln1", "street", "addr"];
const PHONE: &[&str] = &["phone", "phones", "telephone", "tel"];
const EMAIL: &[&str] = &["email", "e-mail"];
const URL: &[&str] = &["url", "website", "link", "web"];

/// Normalise a category: lowercase, words joined by `_` ("Food Bank" → `food_bank`).
pub fn normalise_category(text: &str) -> String {
    let words: Vec<String> =
        text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    words.join("_")
}

fn derived_id(name: Option<&str>, category: &str, lon: f64, lat: f64) -> String {
    let key = format!("{}\u{1f}{category}\u{1f}{lon:.7}\u{1f}{lat:.7}", name.unwrap_or(""));
    uuid::Uuid::new_v5(&ID_NAMESPACE, key.as_bytes()).to_string()
}

/// Read resources from CSV.
pub fn read_resources_csv<R: Read>(
    reader: R,
    file: &str,
    crs: Option<&Crs>,
    opts: &ResourceOptions,
) -> Result<ResourcesRead, IngestError> {
    let format_err = |reason: String| IngestError::Format { path: file.into(), reason };
    let (mut csv, header) = open_csv(reader, file)?;
    let location = LocationColumns::detect(&header, crs).map_err(format_err)?;
    let id_c = header.find(&[opts.id_field.as_deref().unwrap_or("id")]);
    if let (Some(f), None) = (&opts.id_field, id_c) {
        return Err(format_err(format!("id field '{f}' not found; columns: {}", header.names().join(","))));
    }
    let (name_c, cat_c, addr_c, phone_c, email_c, url_c) = (
        header.find(NAME),
        header.find(CATEGORY),
        header.find(ADDRESS),
        header.find(PHONE),
        header.find(EMAIL),
        header.find(URL),
    );
    if cat_c.is_none() && opts.category.is_none() {
        return Err(format_err("no category column: add one or pass --category NAME (e.g. --category school)".into()));
    }
    let loc_cols = match location {
        LocationColumns::LonLat(a, b) | LocationColumns::Projected(a, b) => [a, b],
    };
    let used: Vec<usize> =
        [id_c, name_c, cat_c, addr_c, phone_c, email_c, url_c].into_iter().flatten().chain(loc_cols).collect();
    let mut out = ResourcesRead::default();
    let mut seen: HashMap<String, u64> = HashMap::new();
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
        let (lon, lat) = match location.read(&record, crs) {
            Ok(p) => p,
            Err((field, reason)) => {
                out.rejected.push(reject(&field, reason));
                continue;
            }
        };
        let category = match opts.category.as_deref().or_else(|| cell(&record, cat_c)) {
            Some(c) if !normalise_category(c).is_empty() => normalise_category(c),
            _ => {
                out.rejected.push(reject("category", "missing category".into()));
                continue;
            }
        };
        let texts = (|| {
            Ok::<_, (String, String)>((
                text_cell(&record, name_c, "name")?,
                text_cell(&record, addr_c, "address")?,
                text_cell(&record, phone_c, "phone")?,
                text_cell(&record, email_c, "email")?,
                text_cell(&record, url_c, "url")?,
                cell(&record, id_c)
                    .map(|id| id_text(id).map(str::to_string))
                    .transpose()
                    .map_err(|e| ("id".into(), e.to_string()))?,
            ))
        })();
        let (name, address, phone, email, url, id) = match texts {
            Ok(t) => t,
            Err((field, reason)) => {
                out.rejected.push(reject(&field, reason));
                continue;
            }
        };
        let id = id.unwrap_or_else(|| derived_id(name.as_deref(), &category, lon, lat));
        if let Some(first) = seen.get(&id) {
            out.rejected.push(reject("id", format!("duplicate id '{id}' (first at line {first})")));
            continue;
        }
        seen.insert(id.clone(), line);
        let mut attributes = Attributes::new();
        for (i, value) in record.iter().enumerate() {
            if !used.contains(&i)
                && !value.trim().is_empty()
                && let Some(key) = header.names().get(i)
            {
                attributes.insert(key.clone(), Value::String(value.trim().to_string()));
            }
        }
        if let Err((field, reason)) = normalise_access_fields(&mut attributes) {
            out.rejected.push(reject(&field, reason));
            continue;
        }
        out.resources.push(Resource {
            id,
            name,
            category,
            lon,
            lat,
            address,
            phone,
            email,
            url,
            attributes,
            block_id: None,
        });
    }
    Ok(out)
}

/// Turn GeoJSON (or Esri JSON) point features into resources.
pub fn resources_from_points(read: super::geojson::PointRead, file: &str, opts: &ResourceOptions) -> ResourcesRead {
    let mut out = ResourcesRead { rejected: read.rejected, warnings: read.warnings, ..Default::default() };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for f in read.points {
        let mut props = f.properties;
        // The text of the first of `keys` present, under the text rule of every door; an
        // error names the property and the rule.
        let text = |props: &mut Attributes, keys: &[&str]| -> Result<Option<String>, (String, String)> {
            let Some(key) = keys.iter().find_map(|k| props.keys().find(|p| p.eq_ignore_ascii_case(k)).cloned()) else {
                return Ok(None);
            };
            let value = match props.remove(&key) {
                Some(Value::String(s)) => s,
                Some(Value::Number(n)) => n.to_string(),
                _ => return Ok(None),
            };
            field_text(&value).map(|v| v.map(str::to_string)).map_err(|e| (key, e.to_string()))
        };
        let reject = |field: &str, reason: String| Rejection {
            file: file.into(),
            location: format!("feature {}", f.number),
            field: Some(field.into()),
            reason,
        };
        let texts = (|| {
            let id_from_field = match opts.id_field.as_deref() {
                Some(k) => text(&mut props, &[k])?,
                None => None,
            };
            let name = text(&mut props, NAME)?;
            let category = match opts.category.clone() {
                Some(c) => Some(c),
                None => text(&mut props, CATEGORY)?,
            };
            let id = match id_from_field.or(f.id.clone()) {
                Some(id) => Some(id),
                None => text(&mut props, &["id"])?,
            };
            let id = id.map(|id| id_text(&id).map(str::to_string).map_err(|e| ("id".to_string(), e.to_string())));
            let contact = (
                text(&mut props, ADDRESS)?,
                text(&mut props, PHONE)?,
                text(&mut props, EMAIL)?,
                text(&mut props, URL)?,
            );
            Ok::<_, (String, String)>((name, category, id.transpose()?, contact))
        })();
        let (name, category, id, (address, phone, email, url)) = match texts {
            Ok(t) => t,
            Err((field, reason)) => {
                out.rejected.push(reject(&field, reason));
                continue;
            }
        };
        let category = match category {
            Some(c) if !normalise_category(&c).is_empty() => normalise_category(&c),
            _ => {
                out.rejected.push(reject("category", "missing category (pass --category NAME)".into()));
                continue;
            }
        };
        let id = id.unwrap_or_else(|| derived_id(name.as_deref(), &category, f.lon, f.lat));
        if let Some(first) = seen.get(&id) {
            out.rejected.push(reject("id", format!("duplicate id '{id}' (first at feature {first})")));
            continue;
        }
        seen.insert(id.clone(), f.number);
        if let Err((field, reason)) = normalise_access_fields(&mut props) {
            out.rejected.push(reject(&field, reason));
            continue;
        }
        out.resources.push(Resource {
            id,
            name,
            category,
            lon: f.lon,
            lat: f.lat,
            address,
            phone,
            email,
            url,
            attributes: props,
            block_id: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_resources_keep_extra_columns() {
        let csv = "id,name,category,lon,lat,address,hours\nR1,Clinic,Health Clinic,-118.28,34.04,1 Main St,9-5\nR2,,food bank,-118.28,999,,\nR3,Pantry,,-118.28,34.04,,\n";
        let r = read_resources_csv(csv.as_bytes(), "res.csv", None, &ResourceOptions::default()).unwrap();
        assert_eq!(r.resources.len(), 1);
        assert_eq!(r.resources[0].category, "health_clinic");
        assert_eq!(r.resources[0].attributes["hours"], "9-5");
        assert_eq!(r.rejected.len(), 2);
        assert_eq!(r.rejected[0].field.as_deref(), Some("lat"));
        assert_eq!(r.rejected[1].field.as_deref(), Some("category"));
    }

    #[test]
    fn category_flag_overrides_and_is_required_otherwise() {
        let csv = "name,lon,lat\nA,-118.28,34.04\n";
        let err = read_resources_csv(csv.as_bytes(), "r.csv", None, &ResourceOptions::default()).unwrap_err();
        assert!(err.to_string().contains("--category"), "{err}");
        let opts = ResourceOptions { category: Some("School".into()), ..Default::default() };
        let r = read_resources_csv(csv.as_bytes(), "r.csv", None, &opts).unwrap();
        assert_eq!(r.resources[0].category, "school");
    }

    /// Issue 12.4: resource text fields (CSV and GeoJSON) obey the text rule of every door.
    #[test]
    fn one_validation_for_every_door_resource_text() {
        let long = "a".repeat(1001);
        let csv = format!(
            "id,name,category,lon,lat,address,phone,url,hours,languages\n\
             R1,Clinic,clinic,-118.28,34.04,1 Main St,555-0100,https://x.org,9-5,English\n\
             R2,{long},clinic,-118.28,34.04,,,,,\n\
             R3,Clinic,clinic,-118.28,34.04,{long},,,,\n\
             R4,Clinic,clinic,-118.28,34.04,,555\u{1}0100,,,\n\
             R5,Clinic,clinic,-118.28,34.04,,,https://x.org/\u{7f},,\n\
             R6,Clinic,clinic,-118.28,34.04,,,,{long},\n\
             R7,Clinic,clinic,-118.28,34.04,,,,,Eng\u{0}lish\n\
             {},Clinic,clinic,-118.28,34.04,,,,,\n\
             R9,Clinic,clinic,-118.28,34.04,,,,,,extra\n",
            "i".repeat(201)
        );
        let r = read_resources_csv(csv.as_bytes(), "res.csv", None, &ResourceOptions::default()).unwrap();
        assert_eq!(r.resources.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), ["R1"]);
        let got: Vec<(&str, Option<&str>)> =
            r.rejected.iter().map(|j| (j.location.as_str(), j.field.as_deref())).collect();
        assert_eq!(
            got,
            [
                ("line 3", Some("name")),
                ("line 4", Some("address")),
                ("line 5", Some("phone")),
                ("line 6", Some("url")),
                ("line 7", Some("hours")),
                ("line 8", Some("languages")),
                ("line 9", Some("id")),
                ("line 10", None),
            ]
        );
        for j in &r.rejected {
            assert!(j.reason.len() < 200, "{j}");
        }

        let points = super::super::geojson::PointRead {
            points: vec![
                super::super::geojson::PointFeature {
                    number: 1,
                    id: None,
                    lon: -118.28,
                    lat: 34.04,
                    properties: serde_json::json!({"name": long, "category": "clinic"}).as_object().unwrap().clone(),
                },
                super::super::geojson::PointFeature {
                    number: 2,
                    id: None,
                    lon: -118.28,
                    lat: 34.04,
                    properties: serde_json::json!({"name": "ok", "category": "clinic", "hours": "9\u{1}5"})
                        .as_object()
                        .unwrap()
                        .clone(),
                },
            ],
            rejected: vec![],
            crs: "EPSG:4326".into(),
            warnings: vec![],
        };
        let r = resources_from_points(points, "r.geojson", &ResourceOptions::default());
        assert!(r.resources.is_empty());
        let got: Vec<Option<&str>> = r.rejected.iter().map(|j| j.field.as_deref()).collect();
        assert_eq!(got, [Some("name"), Some("hours")]);
    }
}
