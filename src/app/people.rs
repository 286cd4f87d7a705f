//! One person at a time: create, update (JSON merge-patch semantics) and delete a resident or
//! ambassador, with the same validation as the CSV importer and the home block found by the
//! index. Error messages name the field and never repeat a submitted value: they may be read by
//! someone who should not see it, and they must be safe to log.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer};

use super::AppError;
use crate::core::BlockIndex;
use crate::core::person::{check_email, whole_seconds};
use crate::core::text::field_text;
use crate::core::{Person, Role};
use crate::ingest::Crs;
use crate::ingest::tabular::check_lon_lat;
use crate::store::{Store, StoreError};

/// Longest text accepted in any field (the rule lives in [`crate::core::text`]).
pub use crate::core::text::MAX_TEXT;

/// Why a person could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PersonError {
    /// A field is invalid; nothing was written.
    #[error("{field}: {reason}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// What is wrong (never the submitted value).
        reason: String,
    },
    /// No person has this id.
    #[error("no person with id '{0}'")]
    NotFound(String),
    /// A person with this id exists already (create only).
    #[error("a person with id '{0}' exists already; PATCH /people/{0} to change it")]
    Exists(String),
    /// The store failed.
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<crate::store::StoreError> for PersonError {
    fn from(e: crate::store::StoreError) -> Self {
        PersonError::App(e.into())
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> PersonError {
    PersonError::Invalid { field, reason: reason.into() }
}

/// A new person, with the fields of the sign-up CSV. The location is `lon`/`lat` (WGS84) or
/// `x`/`y` in `crs` (e.g. `EPSG:2229`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPerson {
    /// Stable id; generated when absent.
    pub id: Option<String>,
    /// Resident or ambassador.
    pub role: Option<Role>,
    /// Longitude, WGS84 degrees.
    pub lon: Option<f64>,
    /// Latitude, WGS84 degrees.
    pub lat: Option<f64>,
    /// Projected x (with `crs`).
    pub x: Option<f64>,
    /// Projected y (with `crs`).
    pub y: Option<f64>,
    /// CRS of `x`/`y`.
    pub crs: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Would volunteer (default: true for ambassadors, false for residents).
    pub interested: Option<bool>,
    /// Counts for coverage (default true).
    pub active: Option<bool>,
    /// For ambassadors: the block they adopt.
    #[serde(alias = "adopted_block")]
    pub block_id: Option<String>,
    /// When the adoption lapses: RFC 3339 (`2026-12-31T00:00:00Z`) or a date (through the end
    /// of that day, UTC). Needs `block_id`.
    pub adopted_until: Option<String>,
}

/// A partial update with JSON merge-patch semantics: an absent field is kept, a present one
/// replaces the stored value, `null` clears an optional one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonPatch {
    /// New role.
    #[serde(default, deserialize_with = "present")]
    pub role: Option<Option<Role>>,
    /// New longitude (WGS84).
    #[serde(default, deserialize_with = "present")]
    pub lon: Option<Option<f64>>,
    /// New latitude (WGS84).
    #[serde(default, deserialize_with = "present")]
    pub lat: Option<Option<f64>>,
    /// New projected x (with `crs` and `y`).
    #[serde(default, deserialize_with = "present")]
    pub x: Option<Option<f64>>,
    /// New projected y (with `crs` and `x`).
    #[serde(default, deserialize_with = "present")]
    pub y: Option<Option<f64>>,
    /// CRS of `x`/`y`.
    #[serde(default, deserialize_with = "present")]
    pub crs: Option<Option<String>>,
    /// New name; `null` clears.
    #[serde(default, deserialize_with = "present")]
    pub name: Option<Option<String>>,
    /// New phone; `null` clears.
    #[serde(default, deserialize_with = "present")]
    pub phone: Option<Option<String>>,
    /// New email; `null` clears.
    #[serde(default, deserialize_with = "present")]
    pub email: Option<Option<String>>,
    /// New `interested` flag.
    #[serde(default, deserialize_with = "present")]
    pub interested: Option<Option<bool>>,
    /// New `active` flag.
    #[serde(default, deserialize_with = "present")]
    pub active: Option<Option<bool>>,
    /// New adopted block; `null` clears (the ambassador covers their home block again). A
    /// `block_id` in the patch starts a new adoption: its expiry is the patch's `adopted_until`,
    /// or none when that is absent.
    #[serde(default, alias = "adopted_block", deserialize_with = "present")]
    pub block_id: Option<Option<String>>,
    /// When the adoption lapses (as [`NewPerson::adopted_until`]); `null`: never.
    #[serde(default, deserialize_with = "present")]
    pub adopted_until: Option<Option<String>>,
}

/// `POST /people/{id}/adopt` and `belong people adopt`: the block an ambassador adopts and for
/// how long (`until` or `days`; neither: until further notice).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adoption {
    /// The block to adopt.
    pub block_id: Option<String>,
    /// When the adoption lapses: RFC 3339 (`2026-12-31T00:00:00Z`) or a date (through the end
    /// of that day, UTC).
    pub until: Option<String>,
    /// Or: lapses this many days from now (1 to 3650).
    pub days: Option<i64>,
}

/// Longest adoption accepted, in days (ten years: longer is a typo).
pub const MAX_ADOPTION_DAYS: i64 = 3650;

/// An adoption expiry from user input: RFC 3339 with any offset, or a date meaning "through the
/// end of that day, UTC". Must be after `now`. Sub-second parts are dropped (expiries are kept to
/// the second, see [`whole_seconds`]).
pub fn parse_adopted_until(field: &'static str, text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, PersonError> {
    let text = text.trim();
    let at = if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        t.with_timezone(&Utc)
    } else if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let next = day.succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0));
        next.ok_or_else(|| invalid(field, "date out of range"))?.and_utc()
    } else {
        return Err(invalid(
            field,
            "expected an RFC 3339 date-time with a zone (2026-12-31T00:00:00Z) or a date (2026-12-31)",
        ));
    };
    let at = whole_seconds(at);
    if at <= whole_seconds(now) {
        return Err(invalid(field, "must be in the future (an adoption cannot lapse before it starts)"));
    }
    Ok(at)
}

/// The expiry `days` days from `now`.
fn days_from_now(days: i64, now: DateTime<Utc>) -> Result<DateTime<Utc>, PersonError> {
    if !(1..=MAX_ADOPTION_DAYS).contains(&days) {
        return Err(invalid("days", format!("expected a whole number of days from 1 to {MAX_ADOPTION_DAYS}")));
    }
    Ok(whole_seconds(now + chrono::Duration::days(days)))
}

/// A field that is present in the JSON: `Some(None)` for `null`, `Some(Some(v))` otherwise.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Trimmed text, `None` when blank; refused when too long or holding control characters (the
/// rule of [`crate::core::text::field_text`], the same for CSV imports).
fn text(field: &'static str, value: Option<String>) -> Result<Option<String>, PersonError> {
    let Some(v) = value else { return Ok(None) };
    Ok(field_text(&v).map_err(|e| invalid(field, e.to_string()))?.map(str::to_string))
}

/// The email rule of every door ([`crate::core::person::check_email`]).
fn email(value: Option<String>) -> Result<Option<String>, PersonError> {
    let e = text("email", value)?;
    if let Some(e) = &e {
        check_email(e).map_err(|reason| invalid("email", reason))?;
    }
    Ok(e)
}

fn check_id(id: &str) -> Result<(), PersonError> {
    crate::core::person::check_id(id).map_err(|reason| invalid("id", reason))
}

/// A WGS84 lon/lat from either `lon`/`lat` or `x`/`y` with `crs`; messages carry no coordinate.
fn location(
    lon: Option<f64>,
    lat: Option<f64>,
    x: Option<f64>,
    y: Option<f64>,
    crs: Option<&str>,
) -> Result<(f64, f64), PersonError> {
    let (lon, lat) = match (lon, lat, x, y) {
        (Some(_), _, Some(_), _) | (Some(_), _, _, Some(_)) | (_, Some(_), Some(_), _) | (_, Some(_), _, Some(_)) => {
            return Err(invalid("x", "give either lon/lat or x/y, not both"));
        }
        (Some(lon), Some(lat), None, None) => {
            if crs.is_some() {
                return Err(invalid("crs", "crs applies to x/y; lon/lat are always WGS84"));
            }
            (lon, lat)
        }
        (None, None, Some(x), Some(y)) => {
            let crs = crs.ok_or_else(|| invalid("crs", "x/y need the CRS they are in, e.g. \"EPSG:2229\""))?;
            let crs = Crs::parse(crs).map_err(|_| invalid("crs", "not a CRS we understand (use EPSG:NNNN)"))?;
            crs.to_wgs84(x, y).map_err(|e| invalid("x", e.without_coordinates()))?
        }
        (Some(_), None, ..) => return Err(invalid("lat", "missing (lon needs lat)")),
        (None, Some(_), ..) => return Err(invalid("lon", "missing (lat needs lon)")),
        (None, None, Some(_), None) => return Err(invalid("y", "missing (x needs y)")),
        (None, None, None, Some(_)) => return Err(invalid("x", "missing (y needs x)")),
        (None, None, None, None) => return Err(invalid("lon", "a location is required: lon/lat, or x/y with crs")),
    };
    check_lon_lat(lon, lat).map_err(|(field, reason)| {
        let swapped = reason.contains("swapped");
        match field.as_str() {
            "lon" => invalid("lon", "outside -180..180 (projected coordinates go in x/y with crs)"),
            _ => invalid("lat", if swapped { "outside -90..90 (lon and lat swapped?)" } else { "outside -90..90" }),
        }
    })?;
    Ok((lon, lat))
}

/// Find the home block and check the adopted block against the catchment `index` (the live
/// state's, or one loaded from the store: placing a point never reloads the catchment).
fn place(index: &BlockIndex, person: &mut Person, check_adoption: bool) -> Result<(), PersonError> {
    person.home_block = index.locate(person.lon, person.lat).map(str::to_string);
    if check_adoption && let Some(adopted) = &person.adopted_block {
        if person.role != Role::Ambassador {
            return Err(invalid("block_id", "only ambassadors adopt a block; a resident's block is where they live"));
        }
        if index.ids().binary_search(adopted).is_err() {
            let padded = format!("0{adopted}");
            let hint = if index.ids().binary_search(&padded).is_ok() {
                format!("; did you mean '{padded}'? (a spreadsheet may have dropped the leading zero)")
            } else {
                String::new()
            };
            return Err(invalid("block_id", format!("block '{adopted}' is not in the catchment{hint}")));
        }
    }
    Ok(())
}

fn generated_id() -> String {
    let bytes: [u8; 16] = rand::random();
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

/// Validate, place and store a new person; returns it as stored. `source` is recorded in the
/// history (e.g. `http`).
pub fn create_person(
    store: &dyn Store,
    index: &BlockIndex,
    input: NewPerson,
    source: &str,
) -> Result<Person, PersonError> {
    let id = match input.id {
        Some(id) => {
            check_id(&id)?;
            id
        }
        None => generated_id(),
    };
    let role = input.role.ok_or_else(|| invalid("role", "required: resident or ambassador"))?;
    let (lon, lat) = location(input.lon, input.lat, input.x, input.y, input.crs.as_deref())?;
    let mut person = Person {
        id,
        role,
        lon,
        lat,
        name: text("name", input.name)?,
        phone: text("phone", input.phone)?,
        email: email(input.email)?,
        interested: input.interested.unwrap_or(role == Role::Ambassador),
        active: input.active.unwrap_or(true),
        adopted_block: text("block_id", input.block_id)?,
        home_block: None,
        adopted_until: input.adopted_until.map(|t| parse_adopted_until("adopted_until", &t, Utc::now())).transpose()?,
    };
    if person.adopted_until.is_some() && person.adopted_block.is_none() {
        return Err(invalid("adopted_until", "there is no adoption to expire: give block_id too"));
    }
    place(index, &mut person, true)?;
    // Check and insert are one statement in the store: two creates of one id cannot both win.
    match store.insert_person(&person, source) {
        Err(StoreError::Conflict { .. }) => Err(PersonError::Exists(person.id)),
        Err(e) => Err(e.into()),
        Ok(()) => Ok(person),
    }
}

/// Apply `patch` to the stored person `id`; all or nothing (an invalid result changes nothing).
pub fn update_person(
    store: &dyn Store,
    index: &BlockIndex,
    id: &str,
    patch: PersonPatch,
    source: &str,
) -> Result<Person, PersonError> {
    let mut person = store.person(id)?.ok_or_else(|| PersonError::NotFound(id.to_string()))?;
    let required = |field: &'static str| invalid(field, "cannot be null");
    if let Some(role) = patch.role {
        person.role = role.ok_or_else(|| required("role"))?;
    }
    let moved = [patch.lon.is_some(), patch.lat.is_some(), patch.x.is_some(), patch.y.is_some()];
    if moved.iter().any(|m| *m) {
        let flat = |v: Option<Option<f64>>, field: &'static str| match v {
            Some(None) => Err(required(field)),
            Some(Some(v)) => Ok(Some(v)),
            None => Ok(None),
        };
        let (x, y) = (flat(patch.x, "x")?, flat(patch.y, "y")?);
        let (mut lon, mut lat) = (flat(patch.lon, "lon")?, flat(patch.lat, "lat")?);
        if x.is_none() && y.is_none() {
            // One coordinate alone keeps the other.
            lon = lon.or(Some(person.lon));
            lat = lat.or(Some(person.lat));
        }
        (person.lon, person.lat) = location(lon, lat, x, y, patch.crs.flatten().as_deref())?;
    } else if patch.crs.is_some() {
        return Err(invalid("crs", "crs applies to x/y, which are not in this update"));
    }
    if let Some(v) = patch.name {
        person.name = text("name", v)?;
    }
    if let Some(v) = patch.phone {
        person.phone = text("phone", v)?;
    }
    if let Some(v) = patch.email {
        person.email = email(v)?;
    }
    if let Some(v) = patch.interested {
        person.interested = v.ok_or_else(|| required("interested"))?;
    }
    if let Some(v) = patch.active {
        person.active = v.ok_or_else(|| required("active"))?;
    }
    let adoption_changed = patch.block_id.is_some() || person.role == Role::Resident;
    if let Some(v) = patch.block_id {
        person.adopted_block = text("block_id", v)?;
        person.adopted_until = None;
    }
    if let Some(v) = patch.adopted_until {
        person.adopted_until = v.map(|t| parse_adopted_until("adopted_until", &t, Utc::now())).transpose()?;
        if person.adopted_until.is_some() && person.adopted_block.is_none() {
            return Err(invalid("adopted_until", "there is no adoption to expire: give block_id too"));
        }
    }
    place(index, &mut person, adoption_changed)?;
    store.upsert_people(std::slice::from_ref(&person), source)?;
    Ok(store.person(id)?.unwrap_or(person))
}

/// Let ambassador `id` adopt a block, until a time, for some days, or until further notice; the
/// same checks as a `block_id` in [`update_person`] (ambassadors only, a block of the catchment).
pub fn adopt(
    store: &dyn Store,
    index: &BlockIndex,
    id: &str,
    adoption: Adoption,
    source: &str,
) -> Result<Person, PersonError> {
    let now = Utc::now();
    let until = match (adoption.until, adoption.days) {
        (Some(_), Some(_)) => return Err(invalid("days", "give until or days, not both")),
        (Some(t), None) => Some(parse_adopted_until("until", &t, now)?),
        (None, Some(d)) => Some(days_from_now(d, now)?),
        (None, None) => None,
    };
    let block =
        text("block_id", adoption.block_id)?.ok_or_else(|| invalid("block_id", "required: the block to adopt"))?;
    let mut person = store.person(id)?.ok_or_else(|| PersonError::NotFound(id.to_string()))?;
    if person.role != Role::Ambassador {
        return Err(invalid("block_id", "only ambassadors adopt a block; a resident's block is where they live"));
    }
    person.adopted_block = Some(block);
    person.adopted_until = until;
    place(index, &mut person, true)?;
    store.upsert_people(std::slice::from_ref(&person), source)?;
    Ok(store.person(id)?.unwrap_or(person))
}

/// Delete the person `id`; [`PersonError::NotFound`] when there is none.
pub fn delete_person(store: &dyn Store, id: &str) -> Result<(), PersonError> {
    if store.delete_person(id)? { Ok(()) } else { Err(PersonError::NotFound(id.to_string())) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Block;
    use crate::core::person::until_text;
    use crate::store::SqliteStore;
    use geo::{MultiPolygon, Rect};

    fn block(id: &str, x: f64) -> Block {
        let poly = Rect::new((x, 34.0), (x + 0.01, 34.01)).to_polygon();
        Block { id: id.into(), name: None, geometry: MultiPolygon(vec![poly]), attributes: Default::default() }
    }

    fn index(s: &SqliteStore) -> BlockIndex {
        BlockIndex::new(&s.blocks().unwrap())
    }

    fn store() -> SqliteStore {
        let s = SqliteStore::open_in_memory().unwrap();
        s.replace_blocks(&[block("060370001", -118.30), block("060370002", -118.28)], &[], &[], "test").unwrap();
        s
    }

    fn ambassador() -> NewPerson {
        NewPerson {
            role: Some(Role::Ambassador),
            lon: Some(-118.295),
            lat: Some(34.005),
            name: Some("Ana".into()),
            ..Default::default()
        }
    }

    #[test]
    fn create_places_and_adopts() {
        let s = store();
        let p = create_person(&s, &index(&s), NewPerson { id: Some("a1".into()), ..ambassador() }, "test").unwrap();
        assert_eq!((p.home_block.as_deref(), p.interested, p.active), (Some("060370001"), true, true));
        let q = create_person(
            &s,
            &index(&s),
            NewPerson { id: Some("a2".into()), block_id: Some("060370002".into()), ..ambassador() },
            "test",
        )
        .unwrap();
        assert_eq!(q.covering_block(Utc::now()), Some("060370002"));
        assert!(matches!(
            create_person(&s, &index(&s), NewPerson { id: Some("a1".into()), ..ambassador() }, "test"),
            Err(PersonError::Exists(_))
        ));
        let e = create_person(&s, &index(&s), NewPerson { block_id: Some("60370002".into()), ..ambassador() }, "test")
            .unwrap_err();
        assert!(matches!(&e, PersonError::Invalid { field: "block_id", reason } if reason.contains("did you mean")));
    }

    #[test]
    fn invalid_input_names_the_field_not_the_value() {
        let s = store();
        let cases: Vec<(NewPerson, &str)> = vec![
            (NewPerson { email: Some("ana.example.org".into()), ..ambassador() }, "email"),
            (NewPerson { lat: Some(134.0), ..ambassador() }, "lat"),
            (NewPerson { lon: None, ..ambassador() }, "lon"),
            (NewPerson { role: None, ..ambassador() }, "role"),
            (NewPerson { x: Some(6_480_000.0), y: Some(1_840_000.0), lon: None, lat: None, ..ambassador() }, "crs"),
            (NewPerson { id: Some(" ".into()), ..ambassador() }, "id"),
            (NewPerson { role: Some(Role::Resident), block_id: Some("060370002".into()), ..ambassador() }, "block_id"),
        ];
        for (input, field) in cases {
            let e = create_person(&s, &index(&s), input, "test").unwrap_err();
            assert!(matches!(&e, PersonError::Invalid { field: f, .. } if *f == field), "{field}: {e}");
            assert!(!e.to_string().contains("ana.example.org") && !e.to_string().contains("134"), "{e}");
        }
        assert!(s.people(&Default::default()).unwrap().is_empty());
    }

    #[test]
    fn projected_location_is_reprojected() {
        let s = store();
        let p = create_person(
            &s,
            &index(&s),
            NewPerson {
                lon: None,
                lat: None,
                x: Some(6_480_000.0),
                y: Some(1_840_000.0),
                crs: Some("EPSG:2229".into()),
                ..ambassador()
            },
            "test",
        )
        .unwrap();
        approx::assert_abs_diff_eq!(p.lon, -118.2695921, epsilon = 1e-6);
    }

    /// Issue 12.5: x/y outside the area of their CRS are refused, not stored at a pole.
    #[test]
    fn projected_coordinates_outside_their_crs_are_refused() {
        let s = store();
        for (crs, x, y) in [("EPSG:2229", 1e9, 1e9), ("EPSG:3857", -1e12, 1e12), ("EPSG:3857", 1e12, -1e12)] {
            let input = NewPerson {
                lon: None,
                lat: None,
                x: Some(x),
                y: Some(y),
                crs: Some(crs.into()),
                email: Some("ana@example.org".into()),
                ..ambassador()
            };
            let e = create_person(&s, &index(&s), input, "test").unwrap_err();
            assert!(matches!(&e, PersonError::Invalid { field: "x", reason } if reason.contains("outside")), "{e}");
            assert!(!e.to_string().contains("1000000000") && !e.to_string().contains("e12"), "{e}");
        }
        assert!(s.people(&Default::default()).unwrap().is_empty());
    }

    #[test]
    fn patch_merges_moves_and_refuses_invalid_results() {
        let s = store();
        create_person(&s, &index(&s), NewPerson { id: Some("a1".into()), ..ambassador() }, "test").unwrap();
        let patch: PersonPatch = serde_json::from_str(r#"{"lon": -118.275, "name": null}"#).unwrap();
        let p = update_person(&s, &index(&s), "a1", patch, "test").unwrap();
        assert_eq!((p.home_block.as_deref(), p.name.as_deref(), p.lat), (Some("060370002"), None, 34.005));
        let before = s.person("a1").unwrap();
        for bad in [r#"{"email": "nope"}"#, r#"{"active": null}"#, r#"{"block_id": "999"}"#, r#"{"lat": 95}"#] {
            let patch: PersonPatch = serde_json::from_str(bad).unwrap();
            assert!(
                matches!(update_person(&s, &index(&s), "a1", patch, "test"), Err(PersonError::Invalid { .. })),
                "{bad}"
            );
            assert_eq!(s.person("a1").unwrap(), before, "{bad}");
        }
        assert!(serde_json::from_str::<PersonPatch>(r#"{"nmae": "x"}"#).is_err());
        assert!(matches!(
            update_person(&s, &index(&s), "zz", PersonPatch::default(), "t"),
            Err(PersonError::NotFound(_))
        ));
        delete_person(&s, "a1").unwrap();
        assert!(matches!(delete_person(&s, "a1"), Err(PersonError::NotFound(_))));
    }

    #[test]
    fn adoptions_take_an_expiry_in_the_future() {
        let s = store();
        create_person(&s, &index(&s), NewPerson { id: Some("a1".into()), ..ambassador() }, "test").unwrap();
        let adopt_with = |s: &SqliteStore, until: Option<&str>, days: Option<i64>| {
            let a = Adoption { block_id: Some("060370002".into()), until: until.map(str::to_string), days };
            adopt(s, &index(s), "a1", a, "test")
        };
        let p = adopt_with(&s, Some("2099-12-31"), None).unwrap();
        assert_eq!(
            p.adopted_until.map(until_text).as_deref(),
            Some("2100-01-01T00:00:00Z"),
            "a date lasts through its end"
        );
        let p = adopt_with(&s, Some("2099-06-01T12:00:00.9-07:00"), None).unwrap();
        assert_eq!(p.adopted_until.map(until_text).as_deref(), Some("2099-06-01T19:00:00Z"));
        let p = adopt_with(&s, None, Some(30)).unwrap();
        let until = p.adopted_until.unwrap();
        assert_eq!(until.timestamp_subsec_nanos(), 0, "kept to the second, as stored");
        assert!((until - Utc::now() - chrono::Duration::days(30)).num_seconds().abs() < 5);
        assert_eq!(adopt_with(&s, None, None).unwrap().adopted_until, None);
        let before = s.person("a1").unwrap();
        for (until, days, field) in [
            (Some("2001-01-01T00:00:00Z"), None, "until"),
            (Some("next tuesday"), None, "until"),
            (Some("2099-01-01T00:00:00"), None, "until"),
            (None, Some(0), "days"),
            (None, Some(5000), "days"),
            (Some("2099-01-01"), Some(3), "days"),
        ] {
            let e = adopt_with(&s, until, days).unwrap_err();
            assert!(matches!(&e, PersonError::Invalid { field: f, .. } if *f == field), "{until:?} {days:?}: {e}");
        }
        assert_eq!(s.person("a1").unwrap(), before, "refused adoptions change nothing");
        let resident = NewPerson { id: Some("r1".into()), role: Some(Role::Resident), ..ambassador() };
        create_person(&s, &index(&s), resident, "test").unwrap();
        let a = Adoption { block_id: Some("060370002".into()), ..Default::default() };
        assert!(matches!(
            adopt(&s, &index(&s), "r1", a.clone(), "t"),
            Err(PersonError::Invalid { field: "block_id", .. })
        ));
        assert!(matches!(adopt(&s, &index(&s), "zz", a, "t"), Err(PersonError::NotFound(_))));
        let unknown = Adoption { block_id: Some("60370002".into()), ..Default::default() };
        let e = adopt(&s, &index(&s), "a1", unknown, "t").unwrap_err();
        assert!(e.to_string().contains("did you mean '060370002'"), "{e}");
    }

    #[test]
    fn patch_sets_and_clears_the_expiry() {
        let s = store();
        create_person(&s, &index(&s), NewPerson { id: Some("a1".into()), ..ambassador() }, "test").unwrap();
        let patch = |s: &SqliteStore, json: &str| {
            update_person(s, &index(s), "a1", serde_json::from_str(json).unwrap(), "test")
        };
        let p = patch(&s, r#"{"block_id": "060370002", "adopted_until": "2099-01-01T00:00:00Z"}"#).unwrap();
        assert_eq!(p.adopted_until.map(until_text).as_deref(), Some("2099-01-01T00:00:00Z"));
        // Changing something else keeps the adoption and its expiry.
        assert_eq!(patch(&s, r#"{"name": "Ana B"}"#).unwrap().adopted_until, p.adopted_until);
        let p = patch(&s, r#"{"adopted_until": "2098-01-01"}"#).unwrap();
        assert_eq!(p.adopted_until.map(until_text).as_deref(), Some("2098-01-02T00:00:00Z"));
        // A block_id starts a new adoption, without an expiry unless one is given.
        assert_eq!(patch(&s, r#"{"block_id": "060370002"}"#).unwrap().adopted_until, None);
        let e = patch(&s, r#"{"adopted_until": "1999-01-01"}"#).unwrap_err();
        assert!(matches!(&e, PersonError::Invalid { field: "adopted_until", .. }), "{e}");
        let e = patch(&s, r#"{"block_id": null, "adopted_until": "2099-01-01"}"#).unwrap_err();
        assert!(e.to_string().contains("no adoption to expire"), "{e}");
        assert_eq!(patch(&s, r#"{"block_id": null}"#).unwrap().adopted_block, None);
    }
}
