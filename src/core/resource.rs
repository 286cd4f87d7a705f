//! Community resources: partner organisations, schools, clinics, food banks, shelters.

use super::Attributes;

/// A point resource with its category and public contact fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// Stable id (from the source, or derived from the content).
    pub id: String,
    /// Organisation or site name.
    pub name: Option<String>,
    /// Category such as `school`, `clinic`, `food_bank`, `shelter`, `partner`.
    pub category: String,
    /// Longitude, WGS84 degrees.
    pub lon: f64,
    /// Latitude, WGS84 degrees.
    pub lat: f64,
    /// Street address.
    pub address: Option<String>,
    /// Public phone number of the organisation.
    pub phone: Option<String>,
    /// Public email of the organisation.
    pub email: Option<String>,
    /// Web site.
    pub url: Option<String>,
    /// Other source fields.
    pub attributes: Attributes,
    /// Block containing the point, `None` outside the catchment.
    pub block_id: Option<String>,
}
