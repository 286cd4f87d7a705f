//! The synthetic street grid and its census blocks, in EPSG:2229 (US survey feet).
//!
//! Streets form a grid of irregular column widths and row heights in a local frame (`u` east,
//! `v` north along the grid), whose intersections are jittered and whose edges sometimes bend;
//! the whole grid is then rotated a few degrees and centred on the headquarters. Cells are
//! merged into long and L-shaped blocks, a freeway row cuts through (long thin blocks, and
//! blocks split in two by it), and some cells enclose a separate park or school block.
//!
//! Every vertex is computed once and rounded to 0.01 ft, so neighbouring blocks share edges
//! exactly and the result does not depend on the platform's floating-point library.

use geo::{Area, BoundingRect, Coord, LineString, MultiPolygon, Polygon, Rect};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{DemoError, HQ_LAT, HQ_LON};
use crate::ingest::Crs;

/// Random streams: each concern draws from its own, so that e.g. changing the number of
/// residents never changes the blocks.
pub(super) mod stream {
    pub const PLAN: u64 = 1;
    pub const SHAPE: u64 = 2;
    pub const CENSUS: u64 = 3;
    pub const RESIDENTS: u64 = 4;
    pub const AMBASSADORS: u64 = 5;
    pub const RESOURCES: u64 = 6;
    pub const INDICATORS: u64 = 7;
}

/// The random generator of one stream.
pub(super) fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// The random generator of chunk `k` of a stream that is generated in parallel chunks.
pub(super) fn chunk_rng(seed: u64, stream: u64, k: usize) -> ChaCha8Rng {
    rng(seed, (stream << 32) | (k as u64 + 1))
}

const NONE: u32 = u32::MAX;
/// Rows at the top of the grid hold only single cells and side-by-side pairs, so that blocks
/// can be trimmed there (to hit the exact count) without cutting into special blocks.
const TOP_ZONE_ROWS: usize = 4;
/// A freeway row every this many rows (about four miles).
const FREEWAY_EVERY: usize = 70;
/// Intersection jitter, feet (each way).
const JITTER: f64 = 25.0;
/// Largest sideways bend of an edge's extra vertex, feet.
const BEND: f64 = 12.0;
/// How far any vertex can stray from its nominal grid line, feet.
pub(super) const MAX_STRAY: f64 = JITTER + BEND;

/// What a block is on the ground.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum BlockKind {
    /// One or more street-grid cells (a quad, a long block or an L).
    Street,
    /// A cell with a hole, which holds an [`BlockKind::Enclosed`] block.
    Surrounding,
    /// A park or school inside a [`BlockKind::Surrounding`] block; nobody lives there.
    Enclosed,
    /// Two cells on either side of the freeway: a multipolygon.
    Split,
    /// A strip of freeway right-of-way; nobody lives there.
    Freeway,
}

/// One generated block, in EPSG:2229 feet.
#[derive(Debug, Clone)]
pub(super) struct DemoBlock {
    /// `GEOID20`: "06037" + tract + block.
    pub geoid: String,
    /// `TRACTCE20`, 6 digits.
    pub tract: String,
    /// `BLOCKCE20`, 4 digits.
    pub code: String,
    pub kind: BlockKind,
    /// Outer rings clockwise, holes counter-clockwise, closed (shapefile order).
    pub geometry: MultiPolygon<f64>,
    pub bbox: Rect<f64>,
    /// A point well inside the block.
    pub inside: Coord<f64>,
    /// `inside` in the grid frame.
    pub local: Coord<f64>,
    pub population: u32,
    pub housing: u32,
    pub children: u32,
    /// Blocks sharing an edge with this one (indices into [`Catchment::blocks`]).
    pub neighbours: Vec<u32>,
}

impl DemoBlock {
    /// `NAME20`.
    pub fn name(&self) -> String {
        format!("Block {}", self.code)
    }

    /// People can live here.
    pub fn habitable(&self) -> bool {
        !matches!(self.kind, BlockKind::Enclosed | BlockKind::Freeway)
    }
}

/// The grid frame: local (u, v) feet along the streets → EPSG:2229 feet.
#[derive(Debug, Clone)]
pub(super) struct Frame {
    /// Headquarters, EPSG:2229.
    pub hq: Coord<f64>,
    /// The local point placed on the headquarters.
    centre: Coord<f64>,
    cos: f64,
    sin: f64,
}

impl Frame {
    /// Local → EPSG:2229, rounded to 0.01 ft.
    pub fn to_world(&self, p: Coord<f64>) -> Coord<f64> {
        let (du, dv) = (p.x - self.centre.x, p.y - self.centre.y);
        Coord {
            x: round_cents(self.hq.x + self.cos * du - self.sin * dv),
            y: round_cents(self.hq.y + self.sin * du + self.cos * dv),
        }
    }

    /// EPSG:2229 → local.
    pub fn to_local(&self, p: Coord<f64>) -> Coord<f64> {
        let (dx, dy) = (p.x - self.hq.x, p.y - self.hq.y);
        Coord { x: self.centre.x + self.cos * dx + self.sin * dy, y: self.centre.y - self.sin * dx + self.cos * dy }
    }
}

fn round_cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The whole generated catchment.
#[derive(Debug, Clone)]
pub(super) struct Catchment {
    /// Sorted by GEOID.
    pub blocks: Vec<DemoBlock>,
    pub frame: Frame,
    /// Street lines of the grid in the local frame (before jitter): `col_u[i]` is the i-th
    /// north-south street, `row_v[j]` the j-th east-west street.
    pub col_u: Vec<f64>,
    pub row_v: Vec<f64>,
    /// Grid cells (i, j) containing the headquarters.
    pub hq_cell: (usize, usize),
}

impl Catchment {
    /// Exactly `n` blocks around the headquarters.
    pub fn build(n: usize, seed: u64, crs: &Crs) -> Result<Catchment, DemoError> {
        let (hx, hy) = crs.from_wgs84(HQ_LON, HQ_LAT)?;
        let hq = Coord { x: round_cents(hx), y: round_cents(hy) };
        let plan = Plan::for_count(n, seed);
        Ok(Shaper::new(plan, seed, hq).finish(seed))
    }

    /// Local extent of the grid's street lines: (u_min, u_max, v_min, v_max).
    pub fn local_extent(&self) -> (f64, f64, f64, f64) {
        let first = |v: &[f64]| v.first().copied().unwrap_or(0.0);
        let last = |v: &[f64]| v.last().copied().unwrap_or(0.0);
        (first(&self.col_u), last(&self.col_u), first(&self.row_v), last(&self.row_v))
    }
}

/// A group of grid cells that becomes one block.
#[derive(Debug, Clone)]
struct Group {
    /// (column, row); the first is the anchor (lowest row, then lowest column).
    cells: Vec<(u32, u32)>,
    kind: BlockKind,
}

impl Group {
    fn anchor(&self) -> (u32, u32) {
        self.cells.iter().copied().min_by_key(|&(i, j)| (j, i)).unwrap_or((0, 0))
    }
}

/// Which cells make which block, before any coordinates exist.
#[derive(Debug, Clone)]
struct Plan {
    nc: usize,
    nr: usize,
    /// Street lines, local feet: `nc + 1` and `nr + 1` of them.
    col_u: Vec<f64>,
    row_v: Vec<f64>,
    groups: Vec<Group>,
}

impl Plan {
    /// Picks grid dimensions, plans it, and trims blocks at the top edge so that exactly `n`
    /// remain.
    fn for_count(n: usize, seed: u64) -> Plan {
        // About 0.87 blocks per cell after merging; cells are ~560 x 310 ft, so a square
        // catchment has ~1.8 rows per column.
        let cells = n as f64 / 0.87;
        let nc = ((cells / 1.8).sqrt().round() as usize).max(1);
        let mut nr = ((cells / nc as f64).ceil() as usize).max(1);
        let mut known_short = 0usize;
        loop {
            let plan = Plan::new(nc, nr, seed);
            let count = plan.groups.len();
            if count < n {
                known_short = known_short.max(nr);
                nr += 1;
                continue;
            }
            let trimmable = plan.groups.iter().filter(|g| g.anchor().1 as usize >= plan.top_zone()).count();
            if count - n > trimmable && nr > 1 && nr - 1 > known_short {
                nr -= 1;
                continue;
            }
            return plan.trimmed(n);
        }
    }

    fn top_zone(&self) -> usize {
        self.nr.saturating_sub(TOP_ZONE_ROWS)
    }

    fn new(nc: usize, nr: usize, seed: u64) -> Plan {
        let mut rng = rng(seed, stream::PLAN);
        let top_zone = nr.saturating_sub(TOP_ZONE_ROWS);
        let freeway_rows: Vec<usize> = if nc >= 4 && nr >= 12 {
            (0..).map(|k| (nr * 3 / 10).max(1) + k * FREEWAY_EVERY).take_while(|&f| f + 1 < top_zone).collect()
        } else {
            Vec::new()
        };

        let mut col_u = Vec::with_capacity(nc + 1);
        let mut u = 0.0;
        col_u.push(u);
        for _ in 0..nc {
            u += if rng.random_bool(0.15) { rng.random_range(250.0..400.0) } else { rng.random_range(480.0..700.0) };
            col_u.push(u);
        }
        let mut row_v = Vec::with_capacity(nr + 1);
        let mut v = 0.0;
        row_v.push(v);
        for j in 0..nr {
            v += if freeway_rows.contains(&j) {
                rng.random_range(200.0..260.0)
            } else if rng.random_bool(0.12) {
                rng.random_range(380.0..520.0)
            } else {
                rng.random_range(260.0..340.0)
            };
            row_v.push(v);
        }

        let mut grid = CellGrid { nc, nr, owner: vec![NONE; nc * nr], groups: Vec::new() };
        let total = nc * nr;

        // The freeway: long thin strips, and blocks cut in two by it.
        for &f in &freeway_rows {
            let mut i = 0;
            while i < nc {
                let len = rng.random_range(3..=8).min(nc - i);
                grid.add((i..i + len).map(|i| (i, f)).collect(), BlockKind::Freeway);
                i += len;
            }
            let splits = (nc / 12).max(1);
            let mut made = 0;
            for _ in 0..splits * 10 {
                if made == splits {
                    break;
                }
                let i = rng.random_range(0..nc);
                if grid.free(i, f - 1) && grid.free(i, f + 1) {
                    grid.add(vec![(i, f - 1), (i, f + 1)], BlockKind::Split);
                    made += 1;
                }
            }
        }

        // Parks and schools inside a block (a block with a hole, and the block in it).
        if nc >= 3 && top_zone >= 3 {
            let holes = (total / 250).max(1);
            let mut made = 0;
            for _ in 0..holes * 20 {
                if made == holes {
                    break;
                }
                let (i, j) = (rng.random_range(1..nc - 1), rng.random_range(1..top_zone - 1));
                let roomy = col_u[i + 1] - col_u[i] >= 400.0 && row_v[j + 1] - row_v[j] >= 260.0;
                if roomy && grid.free(i, j) && !freeway_rows.contains(&j) {
                    grid.add(vec![(i, j)], BlockKind::Surrounding);
                    grid.groups.push(Group { cells: vec![(i as u32, j as u32)], kind: BlockKind::Enclosed });
                    made += 1;
                }
            }
        }

        // L-shaped blocks: three cells of a 2 x 2 square.
        if nc >= 2 && top_zone >= 2 {
            let target = total * 2 / 100;
            let mut made = 0;
            for _ in 0..target * 10 {
                if made == target {
                    break;
                }
                let (i, j) = (rng.random_range(0..nc - 1), rng.random_range(0..top_zone - 1));
                let omit = rng.random_range(0..4);
                let cells: Vec<(usize, usize)> = [(i, j), (i + 1, j), (i, j + 1), (i + 1, j + 1)]
                    .into_iter()
                    .enumerate()
                    .filter(|&(k, _)| k != omit)
                    .map(|(_, c)| c)
                    .collect();
                if cells.iter().all(|&(i, j)| grid.free(i, j)) {
                    grid.add(cells, BlockKind::Street);
                    made += 1;
                }
            }
        }

        // Long blocks: two cells side by side (anywhere), or one above the other.
        if nc >= 2 {
            let target = total * 7 / 100;
            let mut made = 0;
            for _ in 0..target * 10 {
                if made == target {
                    break;
                }
                let (i, j) = (rng.random_range(0..nc - 1), rng.random_range(0..nr));
                if grid.free(i, j) && grid.free(i + 1, j) {
                    grid.add(vec![(i, j), (i + 1, j)], BlockKind::Street);
                    made += 1;
                }
            }
        }
        if top_zone >= 2 {
            let target = total * 2 / 100;
            let mut made = 0;
            for _ in 0..target * 10 {
                if made == target {
                    break;
                }
                let (i, j) = (rng.random_range(0..nc), rng.random_range(0..top_zone - 1));
                if grid.free(i, j) && grid.free(i, j + 1) {
                    grid.add(vec![(i, j), (i, j + 1)], BlockKind::Street);
                    made += 1;
                }
            }
        }

        for j in 0..nr {
            for i in 0..nc {
                if grid.free(i, j) {
                    grid.add(vec![(i, j)], BlockKind::Street);
                }
            }
        }
        Plan { nc, nr, col_u, row_v, groups: grid.groups }
    }

    /// Drops street blocks from the top row down, east to west, until `n` remain.
    fn trimmed(mut self, n: usize) -> Plan {
        let excess = self.groups.len().saturating_sub(n);
        if excess == 0 {
            return self;
        }
        let mut order: Vec<usize> =
            (0..self.groups.len()).filter(|&g| self.groups[g].kind == BlockKind::Street).collect();
        order.sort_by_key(|&g| {
            let (i, j) = self.groups[g].anchor();
            (std::cmp::Reverse(j), std::cmp::Reverse(i))
        });
        let mut drop = vec![false; self.groups.len()];
        for &g in order.iter().take(excess) {
            drop[g] = true;
        }
        let mut k = 0;
        self.groups.retain(|_| {
            k += 1;
            !drop[k - 1]
        });
        self
    }
}

/// Cell ownership while planning.
struct CellGrid {
    nc: usize,
    nr: usize,
    owner: Vec<u32>,
    groups: Vec<Group>,
}

impl CellGrid {
    fn free(&self, i: usize, j: usize) -> bool {
        i < self.nc && j < self.nr && self.owner[j * self.nc + i] == NONE
    }

    fn add(&mut self, cells: Vec<(usize, usize)>, kind: BlockKind) {
        let g = self.groups.len() as u32;
        for &(i, j) in &cells {
            self.owner[j * self.nc + i] = g;
        }
        self.groups.push(Group { cells: cells.into_iter().map(|(i, j)| (i as u32, j as u32)).collect(), kind });
    }
}

/// Turns a plan into coordinates, tracts, ids and census counts.
struct Shaper {
    plan: Plan,
    frame: Frame,
    /// World coordinates of the street intersections, `(nc + 1) * (nr + 1)`, row-major.
    lattice: Vec<Coord<f64>>,
    /// Extra vertex on the edge from intersection (i, j) to (i + 1, j), index `j * nc + i`.
    east_mid: Vec<Option<Coord<f64>>>,
    /// Extra vertex on the edge from intersection (i, j) to (i, j + 1), index `j * (nc + 1) + i`.
    north_mid: Vec<Option<Coord<f64>>>,
    /// Highest row still holding a block after trimming.
    top_row: usize,
}

impl Shaper {
    fn new(plan: Plan, seed: u64, hq: Coord<f64>) -> Shaper {
        let mut rng = rng(seed, stream::SHAPE);
        let (nc, nr) = (plan.nc, plan.nr);
        let top_row = plan.groups.iter().flat_map(|g| g.cells.iter().map(|c| c.1 as usize)).max().unwrap_or(0);
        let centre =
            Coord { x: (plan.col_u[0] + plan.col_u[nc]) / 2.0, y: (plan.row_v[0] + plan.row_v[top_row + 1]) / 2.0 };
        // Rotation by a few degrees clockwise, from the tangent of the half angle: exact
        // rational arithmetic, no platform-dependent trigonometry.
        let t: f64 = rng.random_range(-0.07..-0.026);
        let frame = Frame { hq, centre, cos: (1.0 - t * t) / (1.0 + t * t), sin: 2.0 * t / (1.0 + t * t) };

        let mut local = Vec::with_capacity((nc + 1) * (nr + 1));
        for j in 0..=nr {
            for i in 0..=nc {
                let du = rng.random_range(-JITTER..JITTER);
                let dv = rng.random_range(-JITTER..JITTER);
                local.push(Coord { x: plan.col_u[i] + du, y: plan.row_v[j] + dv });
            }
        }
        let bend = |a: Coord<f64>, b: Coord<f64>, p: f64, rng: &mut ChaCha8Rng| -> Option<Coord<f64>> {
            if !rng.random_bool(p) {
                return None;
            }
            let t = rng.random_range(0.35..0.65);
            let off = rng.random_range(3.0..BEND) * if rng.random_bool(0.5) { 1.0 } else { -1.0 };
            let (dx, dy) = (b.x - a.x, b.y - a.y);
            let len = (dx * dx + dy * dy).sqrt();
            Some(Coord { x: a.x + t * dx - off * dy / len, y: a.y + t * dy + off * dx / len })
        };
        let mut east_mid = Vec::with_capacity(nc * (nr + 1));
        for j in 0..=nr {
            for i in 0..nc {
                let (a, b) = (local[j * (nc + 1) + i], local[j * (nc + 1) + i + 1]);
                let p = if b.x - a.x > 450.0 { 0.35 } else { 0.1 };
                east_mid.push(bend(a, b, p, &mut rng));
            }
        }
        let mut north_mid = Vec::with_capacity((nc + 1) * nr);
        for j in 0..nr {
            for i in 0..=nc {
                let (a, b) = (local[j * (nc + 1) + i], local[(j + 1) * (nc + 1) + i]);
                north_mid.push(bend(a, b, 0.15, &mut rng));
            }
        }
        let lattice = local.iter().map(|&p| frame.to_world(p)).collect();
        let east_mid = east_mid.into_iter().map(|m| m.map(|p| frame.to_world(p))).collect();
        let north_mid = north_mid.into_iter().map(|m| m.map(|p| frame.to_world(p))).collect();
        Shaper { plan, frame, lattice, east_mid, north_mid, top_row }
    }

    fn vertex(&self, i: usize, j: usize) -> Coord<f64> {
        self.lattice[j * (self.plan.nc + 1) + i]
    }

    /// The extra vertex on the edge between lattice vertices `a` and `b`, if any.
    fn mid(&self, a: usize, b: usize) -> Option<Coord<f64>> {
        let w = self.plan.nc + 1;
        let lo = a.min(b);
        if a.abs_diff(b) == 1 { self.east_mid[(lo / w) * self.plan.nc + lo % w] } else { self.north_mid[lo] }
    }

    /// Clockwise boundary of a connected set of cells without pinch points, closed.
    fn ring(&self, cells: &[(u32, u32)]) -> LineString<f64> {
        let w = self.plan.nc + 1;
        let id = |i: usize, j: usize| j * w + i;
        let mut edges: Vec<(usize, usize)> = Vec::with_capacity(cells.len() * 4);
        for &(i, j) in cells {
            let (i, j) = (i as usize, j as usize);
            let (bl, tl, tr, br) = (id(i, j), id(i, j + 1), id(i + 1, j + 1), id(i + 1, j));
            for e in [(bl, tl), (tl, tr), (tr, br), (br, bl)] {
                if let Some(pos) = edges.iter().position(|&(a, b)| (b, a) == e) {
                    edges.swap_remove(pos);
                } else {
                    edges.push(e);
                }
            }
        }
        edges.sort_unstable();
        let mut coords = Vec::with_capacity(edges.len() * 2 + 1);
        let Some(&(start, _)) = edges.first() else {
            return LineString::new(coords);
        };
        let mut at = start;
        for _ in 0..edges.len() {
            let Some(&(a, b)) = edges.iter().find(|e| e.0 == at) else {
                break;
            };
            coords.push(self.lattice[a]);
            coords.extend(self.mid(a, b));
            at = b;
            if at == start {
                break;
            }
        }
        coords.push(self.lattice[start]);
        LineString::new(coords)
    }

    /// The park or school inside cell (i, j): a clockwise quad, closed.
    fn enclosed_ring(&self, i: usize, j: usize, rng: &mut ChaCha8Rng) -> LineString<f64> {
        let (bl, tl, tr, br) =
            (self.vertex(i, j), self.vertex(i, j + 1), self.vertex(i + 1, j + 1), self.vertex(i + 1, j));
        let at = |s: f64, t: f64| Coord {
            x: round_cents((1.0 - s) * (1.0 - t) * bl.x + s * (1.0 - t) * br.x + (1.0 - s) * t * tl.x + s * t * tr.x),
            y: round_cents((1.0 - s) * (1.0 - t) * bl.y + s * (1.0 - t) * br.y + (1.0 - s) * t * tl.y + s * t * tr.y),
        };
        let (s0, s1) = (rng.random_range(0.2..0.35), rng.random_range(0.65..0.8));
        let (t0, t1) = (rng.random_range(0.22..0.35), rng.random_range(0.65..0.78));
        let first = at(s0, t0);
        LineString::new(vec![first, at(s0, t1), at(s1, t1), at(s1, t0), first])
    }

    /// A point well inside the block made of `group` (the centre of its anchor cell, or a
    /// point beside the hole of a surrounding block).
    fn inside(&self, group: &Group) -> Coord<f64> {
        let (i, j) = group.anchor();
        let (i, j) = (i as usize, j as usize);
        let (bl, tl, tr, br) =
            (self.vertex(i, j), self.vertex(i, j + 1), self.vertex(i + 1, j + 1), self.vertex(i + 1, j));
        let s = if group.kind == BlockKind::Surrounding { 0.1 } else { 0.5 };
        Coord {
            x: (1.0 - s) * 0.5 * (bl.x + tl.x) + s * 0.5 * (br.x + tr.x),
            y: (1.0 - s) * 0.5 * (bl.y + tl.y) + s * 0.5 * (br.y + tr.y),
        }
    }

    fn finish(self, seed: u64) -> Catchment {
        let mut rng = rng(seed, stream::SHAPE ^ 0x100);
        let groups = &self.plan.groups;
        let (nc, rows) = (self.plan.nc, self.top_row + 1);

        // Geometry, in plan order.
        let mut geometries: Vec<MultiPolygon<f64>> = Vec::with_capacity(groups.len());
        let mut pending_hole: Option<LineString<f64>> = None;
        for (g, group) in groups.iter().enumerate() {
            let polygons = match group.kind {
                BlockKind::Split => group.cells.iter().map(|&c| Polygon::new(self.ring(&[c]), vec![])).collect(),
                BlockKind::Surrounding => {
                    let (i, j) = group.anchor();
                    let inner = self.enclosed_ring(i as usize, j as usize, &mut rng);
                    let hole = LineString::new(inner.0.iter().rev().copied().collect());
                    pending_hole = Some(inner);
                    vec![Polygon::new(self.ring(&group.cells), vec![hole])]
                }
                BlockKind::Enclosed => {
                    // Always right after its surrounding block in plan order.
                    let ring = pending_hole.take().unwrap_or_else(|| self.ring(&group.cells));
                    vec![Polygon::new(ring, vec![])]
                }
                BlockKind::Street | BlockKind::Freeway => {
                    vec![Polygon::new(self.ring(&group.cells), vec![])]
                }
            };
            debug_assert!(g == geometries.len());
            geometries.push(MultiPolygon::new(polygons));
        }

        // Tracts: tiles of ~5.5 x 9 cells (~40 blocks), numbered outwards from HQ.
        let tiles_c = ((nc as f64 / 5.5).round() as usize).max(1);
        let tiles_r = ((rows as f64 / 9.0).round() as usize).max(1);
        let tile_of = |(i, j): (u32, u32)| -> usize {
            let tc = (i as usize * tiles_c / nc).min(tiles_c - 1);
            let tr = (j as usize * tiles_r / rows).min(tiles_r - 1);
            tr * tiles_c + tc
        };
        let mut tile_members: Vec<Vec<usize>> = vec![Vec::new(); tiles_c * tiles_r];
        for (g, group) in groups.iter().enumerate() {
            tile_members[tile_of(group.anchor())].push(g);
        }
        let tile_centre = |t: usize| -> Coord<f64> {
            let (tc, tr) = (t % tiles_c, t / tiles_c);
            let (i0, i1) = ((tc * nc).div_ceil(tiles_c), ((tc + 1) * nc).div_ceil(tiles_c));
            let (j0, j1) = ((tr * rows).div_ceil(tiles_r), ((tr + 1) * rows).div_ceil(tiles_r));
            Coord {
                x: (self.plan.col_u[i0] + self.plan.col_u[i1.min(nc)]) / 2.0,
                y: (self.plan.row_v[j0] + self.plan.row_v[j1.min(rows)]) / 2.0,
            }
        };
        let mut tiles: Vec<usize> = (0..tile_members.len()).filter(|&t| !tile_members[t].is_empty()).collect();
        tiles.sort_by(|&a, &b| {
            let (ca, cb) = (tile_centre(a), tile_centre(b));
            let da = (ca.x - self.frame.centre.x).powi(2) + (ca.y - self.frame.centre.y).powi(2);
            let db = (cb.x - self.frame.centre.x).powi(2) + (cb.y - self.frame.centre.y).powi(2);
            da.total_cmp(&db).then(a.cmp(&b))
        });

        let mut ids: Vec<(String, String)> = vec![(String::new(), String::new()); groups.len()];
        for (k, &t) in tiles.iter().enumerate() {
            let tract = tract_code(k);
            let mut members = tile_members[t].clone();
            members.sort_by_key(|&g| {
                let (i, j) = groups[g].anchor();
                (j, i, groups[g].kind)
            });
            for (b, &g) in members.iter().enumerate() {
                ids[g] = (tract.clone(), format!("{:04}", 1000 + b));
            }
        }

        // Final order: by GEOID.
        let mut order: Vec<usize> = (0..groups.len()).collect();
        order.sort_by(|&a, &b| ids[a].cmp(&ids[b]));
        let mut rank = vec![NONE; groups.len()];
        for (r, &g) in order.iter().enumerate() {
            rank[g] = r as u32;
        }

        // Neighbours through shared cell edges.
        let mut owner = vec![NONE; nc * self.plan.nr];
        for (g, group) in groups.iter().enumerate() {
            if group.kind != BlockKind::Enclosed {
                for &(i, j) in &group.cells {
                    owner[j as usize * nc + i as usize] = g as u32;
                }
            }
        }
        let neighbours_of = |g: usize| -> Vec<u32> {
            let group = &groups[g];
            let mut out: Vec<u32> = Vec::new();
            if group.kind == BlockKind::Enclosed {
                let (i, j) = group.anchor();
                out.push(owner[j as usize * nc + i as usize]);
            } else {
                for &(i, j) in &group.cells {
                    let (i, j) = (i as i64, j as i64);
                    for (di, dj) in [(-1, 0), (1, 0), (0, -1), (0, 1)] {
                        let (a, b) = (i + di, j + dj);
                        if a < 0 || b < 0 || a >= nc as i64 || b >= self.plan.nr as i64 {
                            continue;
                        }
                        let o = owner[b as usize * nc + a as usize];
                        if o != NONE && o as usize != g {
                            out.push(o);
                        }
                    }
                }
                if group.kind == BlockKind::Surrounding && g + 1 < groups.len() {
                    out.push(g as u32 + 1);
                }
            }
            let mut out: Vec<u32> = out.into_iter().map(|o| rank[o as usize]).collect();
            out.sort_unstable();
            out.dedup();
            out
        };

        let mut census = rng_census(seed);
        let mut geometries: Vec<Option<MultiPolygon<f64>>> = geometries.into_iter().map(Some).collect();
        let mut blocks = Vec::with_capacity(groups.len());
        for &g in &order {
            let group = &groups[g];
            let geometry = geometries[g].take().unwrap_or_else(|| MultiPolygon::new(vec![]));
            let bbox = geometry.bounding_rect().unwrap_or(Rect::new(Coord::zero(), Coord::zero()));
            let inside = self.inside(group);
            let (tract, code) = ids[g].clone();
            let (population, housing, children) = census_counts(group.kind, geometry.unsigned_area(), &mut census);
            blocks.push(DemoBlock {
                geoid: format!("06037{tract}{code}"),
                tract,
                code,
                kind: group.kind,
                bbox,
                inside,
                local: self.frame.to_local(inside),
                population,
                housing,
                children,
                neighbours: neighbours_of(g),
                geometry,
            });
        }

        let hq_local = self.frame.centre;
        let hq_cell = (
            self.plan.col_u.partition_point(|&u| u <= hq_local.x).saturating_sub(1).min(nc - 1),
            self.plan.row_v.partition_point(|&v| v <= hq_local.y).saturating_sub(1).min(self.plan.nr - 1),
        );
        let mut col_u = self.plan.col_u;
        let mut row_v = self.plan.row_v;
        col_u.truncate(nc + 1);
        row_v.truncate(rows + 1);
        Catchment { blocks, frame: self.frame, col_u, row_v, hq_cell }
    }
}

fn rng_census(seed: u64) -> ChaCha8Rng {
    rng(seed, stream::CENSUS)
}

/// POP20, HOUSING20 and CHILDREN for a block of `area` square feet: about 230 people per
/// typical 600 x 300 ft block (Pico-Union is dense), a few commercial or empty blocks, nobody
/// on the freeway or in parks and schools.
fn census_counts(kind: BlockKind, area: f64, rng: &mut ChaCha8Rng) -> (u32, u32, u32) {
    let roll: f64 = rng.random();
    let spread = (rng.random::<f64>() + rng.random::<f64>()) / 2.0;
    let household = rng.random_range(3.0..4.2);
    let child_share = rng.random_range(0.25..0.35);
    if matches!(kind, BlockKind::Freeway | BlockKind::Enclosed) || roll < 0.02 {
        return (0, 0, 0);
    }
    let factor = if roll < 0.08 { 0.05 + 0.2 * spread } else { 0.55 + 0.9 * spread };
    let population = (area * (230.0 / 180_000.0) * factor).round() as u32;
    if population == 0 {
        return (0, 0, 0);
    }
    let housing = ((population as f64 / household).round() as u32).max(1);
    let children = (population as f64 * child_share).round() as u32;
    (population, housing, children)
}

/// Tract codes, nearest tract first: real Pico-Union / Westlake / University Park codes, then
/// made-up ones in the same style.
fn tract_code(k: usize) -> String {
    const LOCAL: [&str; 40] = [
        "221120", "209102", "209103", "209810", "209820", "209901", "209902", "210010", "210020", "212010", "212020",
        "212410", "212420", "209200", "209300", "209401", "209402", "211000", "211121", "211122", "221110", "221210",
        "221220", "222001", "222002", "224010", "224020", "226001", "226002", "212300", "212501", "212502", "212610",
        "212620", "213401", "213402", "208610", "208620", "208710", "208720",
    ];
    match LOCAL.get(k) {
        Some(code) => (*code).to_string(),
        None => {
            let m = k - LOCAL.len();
            format!("{:04}{:02}", 2300 + m / 4, [1, 2, 3, 4][m % 4])
        }
    }
}
