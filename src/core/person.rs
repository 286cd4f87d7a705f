//! Residents and ambassadors. Names, contacts and exact locations are personal data: nothing
//! in this type may reach a public layer, a tile or a log line.

use std::fmt;
use std::str::FromStr;

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
    /// The block containing the location; `None` means outside the catchment.
    pub home_block: Option<String>,
}

impl Person {
    /// The block this person counts for: the adopted block when there is one, else home.
    pub fn covering_block(&self) -> Option<&str> {
        self.adopted_block.as_deref().or(self.home_block.as_deref())
    }
}
