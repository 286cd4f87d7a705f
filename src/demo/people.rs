//! Fictional residents and ambassadors: where they live (inside a block, in EPSG:2229 feet, then
//! WGS84) and their contact details.

use geo::Coord;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::catchment::{Catchment, MAX_STRAY, chunk_rng, rng, stream};
use super::sample::{WeightedPick, in_parallel, point_in_block};
use super::{DemoError, names};
use crate::core::Role;
use crate::ingest::Crs;

/// Residents are placed at least this far from their block's boundary (a house is never on the
/// street centreline), which also keeps them in their block after rounding lon/lat.
const MARGIN_FT: f64 = 10.0;

/// Residents are generated in chunks of this many, each from its own random stream, so that
/// they can be made in parallel and still come out the same on any machine.
const CHUNK: usize = 1 << 16;

/// One row of `residents.csv` or `ambassadors.csv`. Text fields are rendered on output, which
/// keeps a million residents small in memory.
#[derive(Debug, Clone)]
pub(super) struct PersonRow {
    pub role: Role,
    /// 1-based row number: the id is `R000001` or `A0001`.
    pub number: usize,
    pub first: &'static str,
    pub last: &'static str,
    /// The last two digits of a `(213) 555-01NN` number.
    pub phone: Option<u8>,
    /// The `N` of `first.last.N@example.org`.
    pub email: Option<usize>,
    pub lon: f64,
    pub lat: f64,
    pub interested: bool,
    /// Ambassadors only: counts for coverage.
    pub active: bool,
    /// Ambassadors only: the adopted block (index into the catchment's blocks).
    pub adopted: Option<usize>,
    /// The block the point was drawn in; `None` for the deliberate "outside" residents.
    pub home: Option<usize>,
    /// The location in EPSG:2229 feet.
    #[cfg_attr(not(test), expect(dead_code, reason = "checked by the tests"))]
    pub xy: Coord<f64>,
}

impl PersonRow {
    pub fn id(&self) -> String {
        match self.role {
            Role::Resident => format!("R{:06}", self.number),
            Role::Ambassador => format!("A{:04}", self.number),
        }
    }

    pub fn name(&self) -> String {
        format!("{} {}", self.first, self.last)
    }

    pub fn phone(&self) -> Option<String> {
        self.phone.map(names::phone)
    }

    pub fn email(&self) -> Option<String> {
        self.email.map(|n| names::email(self.first, self.last, n))
    }
}

/// `count` residents, ids `R000001`…: in blocks weighted by population, about 0.2% a little
/// outside the catchment, ~8% interested in volunteering.
pub(super) fn residents(c: &Catchment, count: usize, seed: u64, crs: &Crs) -> Result<Vec<PersonRow>, DemoError> {
    let mut rng = rng(seed, stream::RESIDENTS);
    let picker = WeightedPick::new(c.blocks.iter().map(|b| u64::from(b.population)))
        .or_else(|| WeightedPick::new(c.blocks.iter().map(|b| u64::from(b.habitable()))))
        .or_else(|| WeightedPick::new(c.blocks.iter().map(|_| 1)));
    let outside_count = if picker.is_some() { ((count + 250) / 500).min(count) } else { count };
    let mut outside = vec![false; count];
    for k in rand::seq::index::sample(&mut rng, count, outside_count) {
        outside[k] = true;
    }
    let chunks = in_parallel(count.div_ceil(CHUNK), |chunk| -> Result<Vec<PersonRow>, DemoError> {
        let mut rng = chunk_rng(seed, stream::RESIDENTS, chunk);
        let first = chunk * CHUNK;
        let mut rows = Vec::with_capacity(CHUNK.min(count - first));
        for (k, &is_outside) in outside.iter().enumerate().skip(first).take(CHUNK) {
            let (first, last) = names::person(&mut rng);
            let phone = if rng.random_bool(0.85) { Some(rng.random_range(0..100)) } else { None };
            let email = rng.random_bool(0.8).then_some(k + 1);
            let interested = rng.random_bool(0.08);
            let (home, xy) = match (&picker, is_outside) {
                (Some(picker), false) => {
                    let b = picker.pick(&mut rng);
                    (Some(b), point_in_block(&c.blocks[b], MARGIN_FT, &mut rng))
                }
                _ => (None, outside_point(c, &mut rng)),
            };
            let (lon, lat) = crs.to_wgs84(xy.x, xy.y)?;
            rows.push(PersonRow {
                role: Role::Resident,
                number: k + 1,
                first,
                last,
                phone,
                email,
                lon,
                lat,
                interested,
                active: true,
                adopted: None,
                home,
                xy,
            });
        }
        Ok(rows)
    });
    let mut rows = Vec::with_capacity(count);
    for chunk in chunks {
        rows.extend(chunk?);
    }
    Ok(rows)
}

/// A point 60–600 ft beyond the west, east or south edge of the grid (the north edge is
/// ragged after trimming), so certainly in no block.
fn outside_point(c: &Catchment, rng: &mut ChaCha8Rng) -> Coord<f64> {
    let (u0, u1, v0, v1) = c.local_extent();
    let off = MAX_STRAY + rng.random_range(60.0..600.0);
    let local = match rng.random_range(0..3) {
        0 => Coord { x: u0 - off, y: rng.random_range(v0..=v1) },
        1 => Coord { x: u1 + off, y: rng.random_range(v0..=v1) },
        _ => Coord { x: rng.random_range(u0..=u1), y: v0 - off },
    };
    c.frame.to_world(local)
}

/// One planned ambassador before names and points: sign-up order key, home block, adoption.
struct Plan {
    key: f64,
    home: usize,
    adopted: Option<usize>,
    active: bool,
}

/// `count` ambassadors, ids `A0001`…, signed up in order as the campaign grows from HQ.
///
/// About a third of the blocks get at least one active ambassador: the covered blocks are the
/// nearest to HQ with a fuzzy frontier; leftover active ambassadors double up (at most three
/// per block), ~5% are inactive, ~5% adopt a neighbouring block instead of their own.
/// `residents` only offsets the number in their emails so that nobody shares an address.
pub(super) fn ambassadors(
    c: &Catchment,
    count: usize,
    residents: usize,
    seed: u64,
    crs: &Crs,
) -> Result<Vec<PersonRow>, DemoError> {
    let mut rng = rng(seed, stream::AMBASSADORS);
    let n = c.blocks.len();
    let mut candidates: Vec<usize> = (0..n).filter(|&b| c.blocks[b].population > 0).collect();
    if candidates.is_empty() {
        candidates = (0..n).filter(|&b| c.blocks[b].habitable()).collect();
    }
    if candidates.is_empty() {
        candidates = (0..n).collect();
    }
    if count == 0 || candidates.is_empty() {
        return Ok(Vec::new());
    }
    let hq = c.frame.hq;
    let dist = |b: usize| {
        let p = c.blocks[b].inside;
        ((p.x - hq.x).powi(2) + (p.y - hq.y).powi(2)).sqrt()
    };
    let dmax = candidates.iter().map(|&b| dist(b)).fold(1.0, f64::max);
    let mut scored: Vec<(f64, usize)> =
        candidates.iter().map(|&b| (dist(b) / dmax + rng.random_range(0.0..0.45), b)).collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));

    let inactive = (count + 10) / 20;
    let active = count - inactive;
    let covered = (n * 33 / 100).max(active.div_ceil(3)).min(active).min(scored.len());

    let mut plans: Vec<Plan> = Vec::with_capacity(count);
    let mut load = vec![0u32; covered];
    for (r, &(key, b)) in scored.iter().take(covered).enumerate() {
        plans.push(Plan { key, home: b, adopted: None, active: true });
        load[r] = 1;
    }
    for _ in covered..active {
        let u: f64 = rng.random();
        let mut r = ((covered as f64) * u * u) as usize;
        for _ in 0..20 {
            if load[r] < 3 {
                break;
            }
            r = rng.random_range(0..covered);
        }
        load[r] += 1;
        let (key, b) = scored[r];
        plans.push(Plan { key: key + rng.random_range(0.0..0.2), home: b, adopted: None, active: true });
    }
    // Adopters: a first ambassador of a covered block who lives next door.
    let adopters = (count + 10) / 20;
    let mut made = 0;
    for _ in 0..adopters * 10 {
        if made == adopters || covered == 0 {
            break;
        }
        let r = rng.random_range(0..covered);
        if plans[r].adopted.is_some() {
            continue;
        }
        let b = plans[r].home;
        let homes: Vec<usize> = c.blocks[b]
            .neighbours
            .iter()
            .map(|&h| h as usize)
            .filter(|&h| h != b && c.blocks[h].population > 0)
            .collect();
        if homes.is_empty() {
            continue;
        }
        plans[r].home = homes[rng.random_range(0..homes.len())];
        plans[r].adopted = Some(b);
        made += 1;
    }
    for _ in 0..inactive {
        let b = candidates[rng.random_range(0..candidates.len())];
        plans.push(Plan { key: rng.random_range(0.0..1.5), home: b, adopted: None, active: false });
    }
    // Sign-up order (stable, so ties keep planning order).
    plans.sort_by(|a, b| a.key.total_cmp(&b.key));

    let mut rows = Vec::with_capacity(plans.len());
    for (k, plan) in plans.iter().enumerate() {
        let (first, last) = names::person(&mut rng);
        let phone = if rng.random_bool(0.95) { Some(rng.random_range(0..100)) } else { None };
        let email = rng.random_bool(0.95).then_some(residents + k + 1);
        let xy = point_in_block(&c.blocks[plan.home], MARGIN_FT, &mut rng);
        let (lon, lat) = crs.to_wgs84(xy.x, xy.y)?;
        rows.push(PersonRow {
            role: Role::Ambassador,
            number: k + 1,
            first,
            last,
            phone,
            email,
            lon,
            lat,
            interested: true,
            active: plan.active,
            adopted: plan.adopted,
            home: Some(plan.home),
            xy,
        });
    }
    Ok(rows)
}
