//! Who may see what. Anonymous callers see public layers only (per-block counts, never people);
//! each role includes the ones below it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The role a bearer token grants, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessRole {
    /// Reads public layers and summaries (needed when the service runs with `--private`).
    Viewer,
    /// Also reads people: names, contacts, locations.
    Recruiter,
    /// Also writes people and runs imports.
    Manager,
}

impl AccessRole {
    /// Lowercase name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessRole::Viewer => "viewer",
            AccessRole::Recruiter => "recruiter",
            AccessRole::Manager => "manager",
        }
    }
}

impl fmt::Display for AccessRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AccessRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(AccessRole::Viewer),
            "recruiter" => Ok(AccessRole::Recruiter),
            "manager" => Ok(AccessRole::Manager),
            other => Err(format!("unknown role '{other}' (expected viewer, recruiter or manager)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(AccessRole::Viewer < AccessRole::Recruiter && AccessRole::Recruiter < AccessRole::Manager);
        for r in [AccessRole::Viewer, AccessRole::Recruiter, AccessRole::Manager] {
            assert_eq!(r.as_str().parse::<AccessRole>().unwrap(), r);
        }
        assert!("admin".parse::<AccessRole>().is_err());
    }
}
