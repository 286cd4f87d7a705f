//! Fictional community resources: partner organisations (the most numerous), schools, parks,
//! clinics, food banks, shelters and libraries, each at a point inside the catchment with a
//! plausible street address.

use std::collections::HashSet;

use geo::Coord;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::DemoError;
use super::catchment::{BlockKind, Catchment, rng, stream};
use super::names::{self, HONOREES, NAME_STREETS, PARTNER_KINDS, PLACES};
use super::sample::point_in_block;
use crate::ingest::Crs;

/// Categories with their share of the resources; partners take whatever is left (about half,
/// so the default 500-block demo has the Belong campaign's 75 partner organisations).
const SHARES: [(&str, usize); 6] =
    [("school", 16), ("park", 10), ("clinic", 8), ("food_bank", 8), ("shelter", 4), ("library", 4)];

/// One row of `resources.csv`.
#[derive(Debug, Clone)]
pub(super) struct ResourceRow {
    pub id: String,
    pub name: String,
    pub category: &'static str,
    pub lon: f64,
    pub lat: f64,
    pub address: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub url: Option<String>,
    /// The block the point was drawn in.
    #[cfg_attr(not(test), expect(dead_code, reason = "checked by the tests"))]
    pub block: usize,
}

pub(super) fn resources(c: &Catchment, count: usize, seed: u64, crs: &Crs) -> Result<Vec<ResourceRow>, DemoError> {
    let mut rng = rng(seed, stream::RESOURCES);
    let sites: Vec<usize> = (0..c.blocks.len()).filter(|&b| c.blocks[b].habitable()).collect();
    let enclosed: Vec<usize> = (0..c.blocks.len()).filter(|&b| c.blocks[b].kind == BlockKind::Enclosed).collect();
    let sites = if sites.is_empty() { (0..c.blocks.len()).collect() } else { sites };
    if count == 0 || sites.is_empty() {
        return Ok(Vec::new());
    }

    let mut categories: Vec<&'static str> = Vec::with_capacity(count);
    for (category, share) in SHARES {
        categories.extend(std::iter::repeat_n(category, count * share / 100));
    }
    categories.resize(count, "partner");
    categories.shuffle(&mut rng);

    let mut taken: HashSet<String> = HashSet::new();
    let mut first_of: HashSet<&str> = HashSet::new();
    let mut enclosed_left = enclosed.into_iter();
    let mut rows = Vec::with_capacity(count);
    for (k, &category) in categories.iter().enumerate() {
        // Parks and schools fill the blocks enclosed by other blocks first.
        let block = match category {
            "school" | "park" => enclosed_left.next(),
            _ => None,
        }
        .unwrap_or_else(|| sites[rng.random_range(0..sites.len())]);
        let xy = point_in_block(&c.blocks[block], 15.0, &mut rng);
        let (lon, lat) = crs.to_wgs84(xy.x, xy.y)?;
        let flagship = first_of.insert(category);
        let name = unique_name(category, flagship, &mut taken, &mut rng);
        let slug = slug(&name);
        rows.push(ResourceRow {
            id: format!("RES{:03}", k + 1),
            category,
            lon,
            lat,
            address: address(c, xy),
            phone: rng.random_bool(0.9).then(|| names::phone(rng.random_range(0..100))),
            email: rng.random_bool(0.7).then(|| format!("info.{slug}@example.org")),
            url: rng.random_bool(0.8).then(|| format!("https://example.org/{slug}")),
            block,
            name,
        });
    }
    Ok(rows)
}

fn unique_name(category: &str, flagship: bool, taken: &mut HashSet<String>, rng: &mut ChaCha8Rng) -> String {
    if flagship {
        let name = match category {
            "school" => "Magnolia Elementary School",
            "park" => "Toberman Park",
            "clinic" => "Pico-Union Family Clinic",
            "food_bank" => "Westlake Community Food Pantry",
            "shelter" => "Union Avenue Family Shelter",
            "library" => "Pico-Union Branch Library",
            _ => "Pico-Union Housing Collaborative",
        };
        taken.insert(name.to_string());
        return name.to_string();
    }
    let mut name = String::new();
    for _ in 0..8 {
        name = candidate_name(category, rng);
        if !taken.contains(&name) {
            taken.insert(name.clone());
            return name;
        }
    }
    for k in 2.. {
        let numbered = format!("{name} {k}");
        if !taken.contains(&numbered) {
            taken.insert(numbered.clone());
            return numbered;
        }
    }
    name
}

fn candidate_name(category: &str, rng: &mut ChaCha8Rng) -> String {
    let street = names::pick(&NAME_STREETS, rng);
    let honoree = names::pick(&HONOREES, rng);
    let place = names::pick(&PLACES, rng);
    match category {
        "school" => {
            let kind = names::pick(
                &[
                    "Elementary School",
                    "Elementary School",
                    "Middle School",
                    "Primary Center",
                    "Early Education Center",
                    "High School",
                ],
                rng,
            );
            if rng.random_bool(0.3) { format!("{honoree} {kind}") } else { format!("{street} {kind}") }
        }
        "park" => match rng.random_range(0..3) {
            0 => format!("{street} Park"),
            1 => format!("{honoree} Recreation Center"),
            _ => format!("{street} Pocket Park"),
        },
        "clinic" => match rng.random_range(0..3) {
            0 => format!("{place} Community Health Center"),
            1 => format!("{street} Family Clinic"),
            _ => format!("{place} Children's Dental Clinic"),
        },
        "food_bank" => match rng.random_range(0..3) {
            0 => format!("{place} Food Bank"),
            1 => format!("{street} Community Food Pantry"),
            _ => format!("{place} Community Fridge"),
        },
        "shelter" => match rng.random_range(0..2) {
            0 => format!("{street} Family Shelter"),
            _ => format!("{place} Bridge Housing"),
        },
        "library" => format!("{street} Branch Library"),
        _ => format!("{place} {}", names::pick(&PARTNER_KINDS, rng)),
    }
}

/// A lowercase, hyphenated form of a name for urls and emails.
fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for ch in name.chars() {
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() && ch != '\'' {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// A street address for a point: the nearest street of its grid cell, with a house number that
/// grows westwards (east-west streets) or southwards (north-south streets) from the grid's
/// position of 1910 Magnolia Ave, even on one side and odd on the other.
fn address(c: &Catchment, xy: Coord<f64>) -> String {
    let p = c.frame.to_local(xy);
    let cell =
        |lines: &[f64], x: f64| lines.partition_point(|&l| l <= x).saturating_sub(1).min(lines.len().saturating_sub(2));
    let (i, j) = (cell(&c.col_u, p.x), cell(&c.row_v, p.y));
    let (hi, hj) = (c.hq_cell.0 as i64, c.hq_cell.1 as i64);
    let (u0, u1) = (c.col_u[i], c.col_u[(i + 1).min(c.col_u.len() - 1)]);
    let (v0, v1) = (c.row_v[j], c.row_v[(j + 1).min(c.row_v.len() - 1)]);
    let fu = if u1 > u0 { ((p.x - u0) / (u1 - u0)).clamp(0.0, 0.999) } else { 0.5 };
    let fv = if v1 > v0 { ((p.y - v0) / (v1 - v0)).clamp(0.0, 0.999) } else { 0.5 };
    let to_ew = (p.y - v0).min(v1 - p.y);
    let to_ns = (p.x - u0).min(u1 - p.x);
    let (number, street) = if to_ew <= to_ns {
        let south = p.y - v0 <= v1 - p.y;
        let line = if south { j as i64 } else { j as i64 + 1 };
        let street = names::east_west(line - hj);
        let hundreds = (hi - i as i64 + 20).rem_euclid(120) + 1;
        let within = ((1.0 - fu) * 49.0) as i64 * 2 + i64::from(south);
        (hundreds * 100 + within, street)
    } else {
        let west = p.x - u0 <= u1 - p.x;
        let line = if west { i as i64 } else { i as i64 + 1 };
        let street = names::north_south(line - hi).to_string();
        let hundreds = (hj - j as i64 + 18).rem_euclid(120) + 1;
        let within = ((1.0 - fv) * 49.0) as i64 * 2 + i64::from(!west);
        (hundreds * 100 + within, street)
    };
    let zip = match (i as i64 >= hi, j as i64 >= hj) {
        (false, true) => "90006",
        (true, true) => "90057",
        (false, false) => "90007",
        (true, false) => "90015",
    };
    format!("{number} {street}, Los Angeles, CA {zip}")
}
