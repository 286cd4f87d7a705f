//! Writing the demo files. Everything is rendered in memory first and then written in one go,
//! so that the bytes depend on nothing but the data (the dbf header's "last update" date, which
//! the dbase writer sets to today, is pinned to the indicator date).

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use shapefile::dbase::{FieldError, FieldName, FieldWriter, TableWriterBuilder, WritableRecord};
use shapefile::{Point, PolygonRing, ShapeWriter};

use super::catchment::{BlockKind, Catchment, DemoBlock};
use super::indicators::{DATE, IndicatorRow, SCHOOL_READINESS};
use super::people::PersonRow;
use super::resources::ResourceRow;
use super::sample::in_parallel;
use super::{BLOCKS_PRJ, DemoError, DemoSpec};

/// The dbf "last update" (years since 1900, month, day): 2025-06-01.
const DBF_DATE: [u8; 3] = [125, 6, 1];

fn write_file(out: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, DemoError> {
    let path = out.join(name);
    std::fs::write(&path, bytes).map_err(|source| DemoError::Io { path: path.clone(), source })?;
    Ok(path)
}

struct BlockRecord<'a>(&'a DemoBlock);

impl WritableRecord for BlockRecord<'_> {
    fn write_using<W: Write>(&self, w: &mut FieldWriter<'_, W>) -> Result<(), FieldError> {
        let b = self.0;
        w.write_next_field_value(&b.geoid)?;
        w.write_next_field_value(&b.name())?;
        w.write_next_field_value(&b.tract)?;
        w.write_next_field_value(&b.code)?;
        w.write_next_field_value(&f64::from(b.population))?;
        w.write_next_field_value(&f64::from(b.housing))?;
        w.write_next_field_value(&f64::from(b.children))
    }
}

fn field(name: &str) -> Result<FieldName, DemoError> {
    FieldName::try_from(name).map_err(|e| DemoError::Shapefile(format!("field name {name}: {e:?}")))
}

fn to_shape(block: &DemoBlock) -> shapefile::Polygon {
    let points = |ring: &geo::LineString<f64>| ring.0.iter().map(|c| Point::new(c.x, c.y)).collect::<Vec<_>>();
    let mut rings = Vec::new();
    for polygon in &block.geometry.0 {
        rings.push(PolygonRing::Outer(points(polygon.exterior())));
        rings.extend(polygon.interiors().iter().map(|r| PolygonRing::Inner(points(r))));
    }
    shapefile::Polygon::with_rings(rings)
}

/// `blocks.shp`, `.shx`, `.dbf` and `.prj`.
pub(super) fn write_blocks(c: &Catchment, out: &Path) -> Result<Vec<PathBuf>, DemoError> {
    let shape_err = |e: shapefile::Error| DemoError::Shapefile(e.to_string());
    let mut shp = Cursor::new(Vec::new());
    let mut shx = Cursor::new(Vec::new());
    let mut dbf = Cursor::new(Vec::new());
    {
        let mut shapes = ShapeWriter::with_shx(&mut shp, &mut shx);
        let mut table = TableWriterBuilder::new()
            .add_character_field(field("GEOID20")?, 15)
            .add_character_field(field("NAME20")?, 10)
            .add_character_field(field("TRACTCE20")?, 6)
            .add_character_field(field("BLOCKCE20")?, 4)
            .add_numeric_field(field("POP20")?, 9, 0)
            .add_numeric_field(field("HOUSING20")?, 9, 0)
            .add_numeric_field(field("CHILDREN")?, 9, 0)
            .build_with_dest(&mut dbf);
        for block in &c.blocks {
            shapes.write_shape(&to_shape(block)).map_err(shape_err)?;
            table.write_record(&BlockRecord(block)).map_err(|e| DemoError::Shapefile(e.to_string()))?;
        }
        shapes.finalize().map_err(shape_err)?;
        table.finalize().map_err(|e| DemoError::Shapefile(e.to_string()))?;
    }
    let mut dbf = dbf.into_inner();
    if dbf.len() > 4 {
        dbf[1..4].copy_from_slice(&DBF_DATE);
    }
    Ok(vec![
        write_file(out, "blocks.shp", shp.get_ref())?,
        write_file(out, "blocks.shx", shx.get_ref())?,
        write_file(out, "blocks.dbf", &dbf)?,
        write_file(out, "blocks.prj", BLOCKS_PRJ.as_bytes())?,
    ])
}

/// A CSV writer over memory; its only possible error is a bug, reported as an I/O error.
struct Csv {
    writer: csv::Writer<Vec<u8>>,
    path: PathBuf,
}

impl Csv {
    fn new(out: &Path, name: &str, header: &[&str]) -> Result<Csv, DemoError> {
        Csv::to_memory(&out.join(name), Some(header))
    }

    /// A writer for (part of) the file at `path`, with or without the header row.
    fn to_memory(path: &Path, header: Option<&[&str]>) -> Result<Csv, DemoError> {
        let writer = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        let mut csv = Csv { writer, path: path.to_path_buf() };
        if let Some(header) = header {
            csv.row(header)?;
        }
        Ok(csv)
    }

    fn row<I, T>(&mut self, fields: I) -> Result<(), DemoError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.writer.write_record(fields).map_err(|e| DemoError::Io { path: self.path.clone(), source: e.into() })
    }

    fn into_bytes(self) -> Result<Vec<u8>, DemoError> {
        let Csv { writer, path } = self;
        writer.into_inner().map_err(|e| DemoError::Io { path, source: e.into_error() })
    }

    fn finish(self) -> Result<PathBuf, DemoError> {
        let path = self.path.clone();
        let bytes = self.into_bytes()?;
        std::fs::write(&path, bytes).map_err(|source| DemoError::Io { path: path.clone(), source })?;
        Ok(path)
    }
}

fn coord(x: f64) -> String {
    format!("{x:.7}")
}

/// `residents.csv`.
pub(super) fn write_residents(rows: &[PersonRow], out: &Path) -> Result<PathBuf, DemoError> {
    write_people(rows, None, &out.join("residents.csv"))
}

/// `ambassadors.csv`.
pub(super) fn write_ambassadors(rows: &[PersonRow], c: &Catchment, out: &Path) -> Result<PathBuf, DemoError> {
    write_people(rows, Some(c), &out.join("ambassadors.csv"))
}

/// People, rendered in parallel chunks (a million residents are ~90 MB of text). With a
/// catchment, the ambassador columns `active` and `block_id` are added.
fn write_people(rows: &[PersonRow], ambassadors: Option<&Catchment>, path: &Path) -> Result<PathBuf, DemoError> {
    const CHUNK: usize = 1 << 16;
    let mut header = vec!["id", "name", "phone", "email", "lon", "lat", "interested"];
    if ambassadors.is_some() {
        header.extend(["active", "block_id"]);
    }
    let parts = in_parallel(rows.len().div_ceil(CHUNK).max(1), |k| -> Result<Vec<u8>, DemoError> {
        let mut csv = Csv::to_memory(path, (k == 0).then_some(header.as_slice()))?;
        for r in rows.iter().skip(k * CHUNK).take(CHUNK) {
            let mut fields = vec![
                r.id(),
                r.name(),
                r.phone().unwrap_or_default(),
                r.email().unwrap_or_default(),
                coord(r.lon),
                coord(r.lat),
                bool_text(r.interested).to_string(),
            ];
            if let Some(c) = ambassadors {
                fields.push(bool_text(r.active).to_string());
                fields.push(r.adopted.map(|b| c.blocks[b].geoid.clone()).unwrap_or_default());
            }
            csv.row(&fields)?;
        }
        csv.into_bytes()
    });
    let io = |source| DemoError::Io { path: path.to_path_buf(), source };
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    for part in parts {
        file.write_all(&part?).map_err(io)?;
    }
    file.flush().map_err(io)?;
    Ok(path.to_path_buf())
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// `resources.csv`.
pub(super) fn write_resources(rows: &[ResourceRow], out: &Path) -> Result<PathBuf, DemoError> {
    let mut csv =
        Csv::new(out, "resources.csv", &["id", "name", "category", "lon", "lat", "address", "phone", "email", "url"])?;
    for r in rows {
        csv.row([
            r.id.as_str(),
            &r.name,
            r.category,
            &coord(r.lon),
            &coord(r.lat),
            &r.address,
            r.phone.as_deref().unwrap_or(""),
            r.email.as_deref().unwrap_or(""),
            r.url.as_deref().unwrap_or(""),
        ])?;
    }
    csv.finish()
}

/// `indicators.csv`.
pub(super) fn write_indicators(rows: &[IndicatorRow], c: &Catchment, out: &Path) -> Result<PathBuf, DemoError> {
    let mut csv = Csv::new(out, "indicators.csv", &["block_id", "indicator", "value", "date"])?;
    for r in rows {
        csv.row([c.blocks[r.block].geoid.as_str(), SCHOOL_READINESS, &format!("{:.1}", r.value), DATE])?;
    }
    csv.finish()
}

/// `README.md`: what the files are, their columns and counts.
pub(super) fn write_readme(
    spec: &DemoSpec,
    summary: &super::DemoSummary,
    c: &Catchment,
    residents: &[PersonRow],
    ambassadors: &[PersonRow],
    resources: &[ResourceRow],
    out: &Path,
) -> Result<PathBuf, DemoError> {
    let n = c.blocks.len();
    let count = |kind: BlockKind| c.blocks.iter().filter(|b| b.kind == kind).count();
    let population: u64 = c.blocks.iter().map(|b| u64::from(b.population)).sum();
    let children: u64 = c.blocks.iter().map(|b| u64::from(b.children)).sum();
    let tracts = {
        let mut t: Vec<&str> = c.blocks.iter().map(|b| b.tract.as_str()).collect();
        t.dedup();
        t.len()
    };
    let outside = residents.iter().filter(|r| r.home.is_none()).count();
    let interested = residents.iter().filter(|r| r.interested).count();
    let inactive = ambassadors.iter().filter(|a| !a.active).count();
    let adopters = ambassadors.iter().filter(|a| a.adopted.is_some()).count();
    let mut covered = vec![false; n];
    for a in ambassadors.iter().filter(|a| a.active) {
        if let Some(b) = a.adopted.or(a.home) {
            covered[b] = true;
        }
    }
    let covered = covered.iter().filter(|&&c| c).count();
    let mut categories: Vec<(&str, usize)> = Vec::new();
    for r in resources {
        match categories.iter_mut().find(|(c, _)| *c == r.category) {
            Some((_, k)) => *k += 1,
            None => categories.push((r.category, 1)),
        }
    }
    categories.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let categories: Vec<String> = categories.iter().map(|(c, k)| format!("{k} {c}")).collect();
    let pct = |a: usize, b: usize| {
        if b == 0 { 0.0 } else { 100.0 * a as f64 / b as f64 }
    };
    let mut seeds = format!("--blocks {} --seed {}", spec.blocks, spec.seed);
    for (flag, value) in
        [("--residents", spec.residents), ("--ambassadors", spec.ambassadors), ("--resources", spec.resources)]
    {
        if let Some(v) = value {
            seeds.push_str(&format!(" {flag} {v}"));
        }
    }

    let text = format!(
        r#"# Demo catchment (synthetic)

**Everything in this folder is made up.** It was generated by

    belong demo generate --out data/ {seeds}

and the same command always produces byte-identical files. The blocks imitate the street grid
around the Children's Bureau headquarters at 1910 Magnolia Ave, Los Angeles (Pico-Union), but
they are not real census blocks; people, phone numbers (the fictional 555-01NN range), emails
(`example.org`), resources and indicator values are invented.

| file | what | count |
|---|---|---|
| `blocks.shp` `.shx` `.dbf` `.prj` | census-block polygons, ESRI shapefile | {blocks} blocks in {tracts} tracts |
| `residents.csv` | residents who signed up | {residents} |
| `ambassadors.csv` | Community Ambassadors | {ambassadors} |
| `resources.csv` | partner organisations and community resources | {resources} |
| `indicators.csv` | school readiness per block | {indicators} rows |

## blocks.shp

Polygon shapefile in **EPSG:2229** (NAD83 / California zone V, US survey feet; ESRI WKT in
`blocks.prj`). Outer rings are clockwise, holes counter-clockwise. Blocks tile the catchment
exactly (neighbours share vertices), on an irregular street grid rotated a few degrees, with
long and L-shaped blocks; {surrounding} block(s) have a hole filled by another block (a park or
school), {split} block(s) are multipolygons split by a freeway, {freeway} are freeway strips.
Total population {population}, children {children}.

| field | type | meaning |
|---|---|---|
| `GEOID20` | C(15) | block id: `06037` (LA County) + tract + block; text, keep the leading zero |
| `NAME20` | C(10) | `Block 1000` |
| `TRACTCE20` | C(6) | census tract code |
| `BLOCKCE20` | C(4) | block code within the tract |
| `POP20` | N(9) | population |
| `HOUSING20` | N(9) | housing units |
| `CHILDREN` | N(9) | residents under 18 |

## residents.csv

`id,name,phone,email,lon,lat,interested` — ids `R000001`…, WGS84 lon/lat with 7 decimals,
placed in blocks in proportion to their population. Phone or email is sometimes empty.
{interested} ({interested_pct:.1}%) are interested in volunteering; {outside} are a little
outside the catchment on purpose (an import reports them as outside).

## ambassadors.csv

`id,name,phone,email,lon,lat,interested,active,block_id` — ids `A0001`…; {inactive} are
inactive; `block_id` is empty except for {adopters} who adopted a neighbouring block (its
`GEOID20`). {covered} blocks ({coverage:.1}%) have at least one active ambassador; coverage
grows outwards from the headquarters.

## resources.csv

`id,name,category,lon,lat,address,phone,email,url` — ids `RES001`…, WGS84 points inside the
catchment: {categories}.

## indicators.csv

`block_id,indicator,value,date` — indicator `school_readiness`: percent of children ready for
kindergarten (0–100, one decimal), dated `{date}`. {indicators} of {blocks} blocks have a
value; the others (including every block without children) have no row, which means "no data",
not zero.
"#,
        blocks = n,
        residents = summary.residents,
        ambassadors = summary.ambassadors,
        resources = summary.resources,
        indicators = summary.indicators,
        surrounding = count(BlockKind::Surrounding),
        split = count(BlockKind::Split),
        freeway = count(BlockKind::Freeway),
        interested_pct = pct(interested, residents.len()),
        coverage = pct(covered, n),
        categories = categories.join(", "),
        date = DATE,
    );
    write_file(out, "README.md", text.as_bytes())
}
