//! Residents and ambassadors. Names, contacts and exact locations are personal data: nothing
//! in this type may reach a public layer, a tile or a log line.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

/// What a person is to the campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Lives in the catchment; counted per block.
    Resident,
    /// A volunteer Community Ambassador; covers a block.
    Ambassador,
}

impl Role {
    /// The lowercase name used in CSV, JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Resident => "resident",
            Role::Ambassador => "ambassador",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "resident" => Ok(Role::Resident),
            "ambassador" => Ok(Role::Ambassador),
            other => Err(format!("unknown role '{other}' (expected resident or ambassador)")),
        }
    }
}

/// A person as stored: location in WGS84, home block found by the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    /// Stable id (from the CSV, or derived from the row's content when absent).
    pub id: String,
    /// Resident or ambassador.
    pub role: Role,
    /// Longitude, WGS84 degrees.
    pub lon: f64,
    /// Latitude, WGS84 degrees.
    pub lat: f64,
    /// Display name.
    pub name: Option<String>,
    /// Phone number as written.
    pub phone: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Would volunteer as an ambassador.
    pub interested: bool,
    /// Counts for coverage (an inactive ambassador covers nothing).
    pub active: bool,
    /// For ambassadors: the block they adopted instead of the one they live in.
    pub adopted_block: Option<String>,
    /// When the adoption lapses, to the whole second; `None`: never. Wherever it leaves the
    /// process (database, history, HTTP, CLI, this type's serde form) it is written as
    /// [`until_text`] (`2026-12-31T00:00:00Z`), whose fixed width lets SQL compare it as text.
    #[serde(default, with = "until_serde")]
    pub adopted_until: Option<DateTime<Utc>>,
    /// The block containing the location; `None` means outside the catchment.
    pub home_block: Option<String>,
}

impl Person {
    /// Whether the adoption (if any) still holds at `now`: it has not reached `adopted_until`.
    pub fn adoption_in_effect(&self, now: DateTime<Utc>) -> bool {
        self.adopted_block.is_some() && self.adopted_until.is_none_or(|until| until > now)
    }

    /// The block this person counts for at `now`: the adopted block while the adoption has not
    /// expired, else the home block. (Whether the adopted block still exists is for the caller
    /// to check: an adoption of a removed block falls back to home too.)
    pub fn covering_block(&self, now: DateTime<Utc>) -> Option<&str> {
        if self.adoption_in_effect(now) { self.adopted_block.as_deref() } else { self.home_block.as_deref() }
    }
}

/// The rule for a person's id, the same at every door (the JSON API, CSV imports): not blank,
/// at most [`MAX_ID`](crate::core::text::MAX_ID) characters, without '/' (it is a path segment
/// of `/people/{id}`), control characters or outer spaces. The reason never quotes the id.
pub fn check_id(id: &str) -> Result<(), &'static str> {
    if id.trim().is_empty() {
        return Err("must not be empty");
    }
    let too_long = id.chars().nth(crate::core::text::MAX_ID).is_some();
    if too_long || id.chars().any(|c| c.is_control() || c == '/') || id != id.trim() {
        // The number is MAX_ID (a unit test keeps the two equal).
        return Err("at most 200 characters, without '/', control characters or outer spaces");
    }
    Ok(())
}

/// The rule for an email address, the same at every door: something before one `@`, a dotted
/// domain after it, no spaces. The reason never quotes the address.
pub fn check_email(email: &str) -> Result<(), &'static str> {
    let ok = email
        .split_once('@')
        .is_some_and(|(u, d)| !u.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.'))
        && !email.contains(char::is_whitespace);
    if ok { Ok(()) } else { Err("not an email address") }
}

/// What one person adds to coverage: nothing, one resident of a block, or one active ambassador
/// covering a block. `B` is however the caller names blocks (ids, or dense indexes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counted<B> {
    /// Counts for no block (an inactive ambassador, or anyone outside the catchment).
    Nothing,
    /// A resident of this block.
    Resident(B),
    /// An active ambassador covering this block.
    Ambassador(B),
}

/// **The** rule of what a person counts for at `now`, in one place (the live state, the history
/// replay, recruiting and [`Person::covering_block`] all call it; the SQL of the store mirrors
/// it, under the store contract tests that compare the two):
/// - a resident counts for the block they live in (active or not: residents are people, not
///   volunteers), or nothing outside the catchment;
/// - an inactive ambassador counts for nothing;
/// - an active ambassador counts for the adopted block while the adoption is in effect (before
///   `until`, if any) *and* that block is in the catchment (`exists`), else for the home block.
///
/// Instants are of any ordered type `T` (a `DateTime`, or milliseconds in the replay).
pub fn counted_for<B: Copy, T: PartialOrd>(
    role: Role,
    active: bool,
    home: Option<B>,
    adopted: Option<B>,
    until: Option<T>,
    now: T,
    exists: impl Fn(B) -> bool,
) -> Counted<B> {
    match role {
        Role::Resident => home.map_or(Counted::Nothing, Counted::Resident),
        Role::Ambassador if active => {
            let adopted = adopted.filter(|&b| until.as_ref().is_none_or(|u| now < *u) && exists(b));
            adopted.or(home).map_or(Counted::Nothing, Counted::Ambassador)
        }
        Role::Ambassador => Counted::Nothing,
    }
}

impl Person {
    /// What this person counts for at `now` (see [`counted_for`]); `exists` says whether a block
    /// id is in the catchment.
    pub fn counted(&self, now: DateTime<Utc>, exists: impl Fn(&str) -> bool) -> Counted<&str> {
        counted_for(
            self.role,
            self.active,
            self.home_block.as_deref(),
            self.adopted_block.as_deref(),
            self.adopted_until,
            now,
            exists,
        )
    }
}

/// An adoption expiry as stored: RFC 3339 in UTC, whole seconds, `Z` suffix. One fixed width
/// and zone, so SQL can compare stored values with `now` as text.
pub fn until_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Read a stored adoption expiry (any RFC 3339 offset), truncated to whole seconds like every
/// expiry the program makes, so a value read back equals the one written.
pub fn parse_until(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| whole_seconds(t.with_timezone(&Utc)))
}

/// `t` without its sub-second part: expiries are kept to the second, because [`until_text`]
/// writes no fraction and a value that changed when stored would never compare equal again.
pub fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(0)
}

/// [`Person::adopted_until`] in serde as [`until_text`], `null` (or absent) for none (chrono's own form would add a fraction
/// for sub-second values and needs its `serde` feature).
mod until_serde {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use super::{parse_until, until_text};

    pub fn serialize<S: Serializer>(until: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match until {
            Some(t) => s.serialize_str(&until_text(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| parse_until(&text).ok_or_else(|| D::Error::custom("adopted_until: expected RFC 3339")))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ambassador(adopted: Option<&str>, until: Option<&str>) -> Person {
        Person {
            id: "a1".into(),
            role: Role::Ambassador,
            lon: 0.0,
            lat: 0.0,
            name: None,
            phone: None,
            email: None,
            interested: true,
            active: true,
            adopted_block: adopted.map(str::to_string),
            home_block: Some("HOME".into()),
            adopted_until: until.map(|t| parse_until(t).unwrap()),
        }
    }

    #[test]
    fn an_adoption_covers_until_it_lapses() {
        let at = |t: &str| parse_until(t).unwrap();
        let p = ambassador(Some("ADOPTED"), Some("2026-01-01T00:00:00Z"));
        assert_eq!(p.covering_block(at("2025-12-31T23:59:59Z")), Some("ADOPTED"));
        assert_eq!(p.covering_block(at("2026-01-01T00:00:00Z")), Some("HOME"));
        assert_eq!(p.covering_block(at("2030-01-01T00:00:00+02:00")), Some("HOME"));
        assert_eq!(ambassador(Some("ADOPTED"), None).covering_block(at("2999-01-01T00:00:00Z")), Some("ADOPTED"));
        assert_eq!(ambassador(None, None).covering_block(at("2000-01-01T00:00:00Z")), Some("HOME"));
        assert_eq!(until_text(at("2026-06-01T12:30:15.75-07:00")), "2026-06-01T19:30:15Z");
    }

    #[test]
    fn id_and_email_rules_never_quote_the_value() {
        assert!(check_id("r1").is_ok());
        assert!(check_id(&"r".repeat(crate::core::text::MAX_ID)).is_ok());
        for bad in [" ", "a/b", " r1", "r\u{1}", &"r".repeat(crate::core::text::MAX_ID + 1)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_id("a/b").unwrap_err().contains(&crate::core::text::MAX_ID.to_string()));
        assert!(check_email("ana@example.org").is_ok());
        for bad in ["ana.example.org", "@example.org", "ana@example", "ana @example.org", "ana@.org"] {
            assert_eq!(check_email(bad), Err("not an email address"), "{bad}");
        }
    }

    #[test]
    fn serde_writes_the_until_text_form() {
        let p = ambassador(Some("ADOPTED"), Some("2026-12-31T00:00:00Z"));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["adopted_until"], "2026-12-31T00:00:00Z");
        assert_eq!(serde_json::from_value::<Person>(json).unwrap(), p);
        let none = serde_json::to_value(ambassador(None, None)).unwrap();
        assert_eq!(none["adopted_until"], serde_json::Value::Null);
        assert_eq!(serde_json::from_value::<Person>(none).unwrap().adopted_until, None);
    }
}
