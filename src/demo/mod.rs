//! Deterministic demo catchment: a synthetic, Pico-Union-like street grid of census blocks
//! around the Children's Bureau headquarters, with residents, ambassadors, resources and a
//! school-readiness indicator. Every output byte is a pure function of the [`DemoSpec`].
//!
//! Geometry is built in EPSG:2229 (NAD83 / California zone V, US survey feet), the CRS of the
//! written shapefile; people and resources are written in WGS84 lon/lat.
//!
//! ```no_run
//! use belong::demo::{DemoSpec, generate};
//! let spec = DemoSpec { blocks: 500, residents: None, ambassadors: None, resources: None, seed: 1 };
//! let summary = generate(&spec, std::path::Path::new("data")).expect("demo written");
//! assert_eq!(summary.blocks, 500);
//! ```

use std::path::{Path, PathBuf};

use geo::{Coord, MapCoords, MultiPolygon, Orient, orient::Direction};
use serde_json::Value;

use crate::core::{Attributes, Block};
use crate::ingest::{Crs, CrsError};

mod catchment;
mod indicators;
mod names;
mod output;
mod people;
mod resources;
mod sample;
#[cfg(test)]
mod tests;

use catchment::Catchment;

/// Longitude of the Children's Bureau headquarters, 1910 Magnolia Ave, Los Angeles (WGS84).
pub const HQ_LON: f64 = -118.2856;
/// Latitude of the Children's Bureau headquarters, 1910 Magnolia Ave, Los Angeles (WGS84).
pub const HQ_LAT: f64 = 34.0409;

/// The largest catchment [`generate`] builds (Los Angeles County has about 110,000 blocks).
pub const MAX_BLOCKS: usize = 1_000_000;

/// The ESRI WKT written to `blocks.prj`: EPSG:2229, NAD83 / California zone V, US survey feet.
pub const BLOCKS_PRJ: &str = r#"PROJCS["NAD_1983_StatePlane_California_V_FIPS_0405_Feet",GEOGCS["GCS_North_American_1983",DATUM["D_North_American_1983",SPHEROID["GRS_1980",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],PROJECTION["Lambert_Conformal_Conic"],PARAMETER["False_Easting",6561666.667],PARAMETER["False_Northing",1640416.667],PARAMETER["Central_Meridian",-118.0],PARAMETER["Standard_Parallel_1",35.4666666666667],PARAMETER["Standard_Parallel_2",34.0333333333333],PARAMETER["Latitude_Of_Origin",33.5],UNIT["US survey foot",0.304800609601219]]"#;

/// What to generate. `None` counts take the defaults documented on each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSpec {
    /// Number of census blocks, exactly (1 ..= [`MAX_BLOCKS`]).
    pub blocks: usize,
    /// Residents (sign-ups); default `40 * blocks`.
    pub residents: Option<usize>,
    /// Ambassadors; default `blocks * 2 / 5`.
    pub ambassadors: Option<usize>,
    /// Community resources; default `(blocks * 3 / 10).clamp(20, 5000)`.
    pub resources: Option<usize>,
    /// Seed of every random choice: the same spec always yields the same bytes.
    pub seed: u64,
}

impl DemoSpec {
    /// Residents to generate (the default when not given).
    pub fn resident_count(&self) -> usize {
        self.residents.unwrap_or(40 * self.blocks)
    }

    /// Ambassadors to generate (the default when not given).
    pub fn ambassador_count(&self) -> usize {
        self.ambassadors.unwrap_or(self.blocks * 2 / 5)
    }

    /// Resources to generate (the default when not given).
    pub fn resource_count(&self) -> usize {
        self.resources.unwrap_or((self.blocks * 3 / 10).clamp(20, 5000))
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSummary {
    /// Blocks in `blocks.shp`.
    pub blocks: usize,
    /// Rows in `residents.csv`.
    pub residents: usize,
    /// Rows in `ambassadors.csv`.
    pub ambassadors: usize,
    /// Rows in `resources.csv`.
    pub resources: usize,
    /// Rows in `indicators.csv`.
    pub indicators: usize,
    /// Every file written, in writing order.
    pub files: Vec<PathBuf>,
}

/// Why the demo could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The spec asks for something the generator cannot build.
    #[error("invalid demo spec: {0}")]
    InvalidSpec(String),
    /// A file or the output folder could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The shapefile writer failed.
    #[error("cannot write the blocks shapefile: {0}")]
    Shapefile(String),
    /// A coordinate could not be reprojected between EPSG:2229 and WGS84.
    #[error(transparent)]
    Crs(#[from] CrsError),
}

/// Writes the demo catchment into `out` (created if missing): `blocks.shp/.shx/.dbf/.prj`,
/// `residents.csv`, `ambassadors.csv`, `resources.csv`, `indicators.csv` and `README.md`.
pub fn generate(spec: &DemoSpec, out: &Path) -> Result<DemoSummary, DemoError> {
    check(spec)?;
    let crs = blocks_crs()?;
    let catchment = Catchment::build(spec.blocks, spec.seed, &crs)?;
    let residents = people::residents(&catchment, spec.resident_count(), spec.seed, &crs)?;
    let ambassadors = people::ambassadors(&catchment, spec.ambassador_count(), spec.resident_count(), spec.seed, &crs)?;
    let resources = resources::resources(&catchment, spec.resource_count(), spec.seed, &crs)?;
    let indicators = indicators::school_readiness(&catchment, spec.seed);

    std::fs::create_dir_all(out).map_err(|source| DemoError::Io { path: out.to_path_buf(), source })?;
    let mut files = output::write_blocks(&catchment, out)?;
    files.push(output::write_residents(&residents, out)?);
    files.push(output::write_ambassadors(&ambassadors, &catchment, out)?);
    files.push(output::write_resources(&resources, out)?);
    files.push(output::write_indicators(&indicators, &catchment, out)?);
    let mut summary = DemoSummary {
        blocks: catchment.blocks.len(),
        residents: residents.len(),
        ambassadors: ambassadors.len(),
        resources: resources.len(),
        indicators: indicators.len(),
        files,
    };
    let readme = output::write_readme(spec, &summary, &catchment, &residents, &ambassadors, &resources, out)?;
    summary.files.push(readme);
    Ok(summary)
}

/// The blocks [`generate`] writes to `blocks.shp`, already in WGS84 and shaped as the block
/// importer returns them: id from `GEOID20`, name from `NAME20`, the other dbf fields as
/// attributes, RFC 7946 winding. Coordinates equal an import of `blocks.shp` up to reprojection
/// round-off. An invalid spec (0 blocks, too many) yields no blocks.
pub fn blocks_wgs84(spec: &DemoSpec) -> Vec<Block> {
    if check(spec).is_err() {
        return Vec::new();
    }
    let Ok(crs) = blocks_crs() else {
        return Vec::new();
    };
    let Ok(catchment) = Catchment::build(spec.blocks, spec.seed, &crs) else {
        return Vec::new();
    };
    catchment.blocks.iter().filter_map(|b| to_wgs84_block(b, &crs).ok()).collect()
}

fn to_wgs84_block(block: &catchment::DemoBlock, crs: &Crs) -> Result<Block, CrsError> {
    let geometry: MultiPolygon<f64> =
        block.geometry.try_map_coords(|c| crs.to_wgs84(c.x, c.y).map(|(x, y)| Coord { x, y }))?;
    let mut attributes = Attributes::new();
    attributes.insert("TRACTCE20".into(), Value::String(block.tract.clone()));
    attributes.insert("BLOCKCE20".into(), Value::String(block.code.clone()));
    attributes.insert("POP20".into(), Value::from(block.population));
    attributes.insert("HOUSING20".into(), Value::from(block.housing));
    attributes.insert("CHILDREN".into(), Value::from(block.children));
    Ok(Block {
        id: block.geoid.clone(),
        name: Some(block.name()),
        geometry: geometry.orient(Direction::Default),
        attributes,
    })
}

fn check(spec: &DemoSpec) -> Result<(), DemoError> {
    if spec.blocks == 0 || spec.blocks > MAX_BLOCKS {
        return Err(DemoError::InvalidSpec(format!("blocks must be between 1 and {MAX_BLOCKS}, not {}", spec.blocks)));
    }
    Ok(())
}

/// The CRS of `blocks.shp`, parsed from the very `.prj` text written beside it, so that
/// reprojection here and in the importer take the same path.
fn blocks_crs() -> Result<Crs, CrsError> {
    Crs::parse(BLOCKS_PRJ)
}
