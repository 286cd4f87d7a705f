//! A uniform grid over the catchment, in compressed-sparse-row form: cell → the polygon parts
//! whose envelope touches it. Point location walks one short, contiguous list instead of
//! chasing R-tree nodes through memory, which is what makes a million assignments per import
//! cheap at county scale (see `benches/assign.rs`).

/// Items (copied into every cell their envelope touches) per grid cell.
pub(super) struct Grid<T> {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
    inv_dx: f64,
    inv_dy: f64,
    nx: usize,
    ny: usize,
    /// `items[starts[c]..starts[c + 1]]` are the items touching cell `c`, in input order.
    starts: Vec<u32>,
    items: Vec<T>,
}

impl<T: Copy> Grid<T> {
    /// Build over `envelopes` (`[min_x, min_y, max_x, max_y]` per item), with about
    /// `cells_per_item` cells per item. Each cell's list keeps the input order.
    pub(super) fn new(envelopes: &[[f64; 4]], items: &[T], cells_per_part: f64) -> Grid<T> {
        let mut bbox = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
        for e in envelopes {
            bbox = [bbox[0].min(e[0]), bbox[1].min(e[1]), bbox[2].max(e[2]), bbox[3].max(e[3])];
        }
        if envelopes.is_empty() || !bbox.iter().all(|v| v.is_finite()) {
            return Grid {
                x0: 0.0,
                y0: 0.0,
                x1: -1.0,
                y1: -1.0,
                inv_dx: 0.0,
                inv_dy: 0.0,
                nx: 0,
                ny: 0,
                starts: vec![0],
                items: Vec::new(),
            };
        }
        let (w, h) = ((bbox[2] - bbox[0]).max(f64::MIN_POSITIVE), (bbox[3] - bbox[1]).max(f64::MIN_POSITIVE));
        let cells = (envelopes.len() as f64 * cells_per_part).clamp(1.0, 16_000_000.0);
        let nx = ((cells * w / h).sqrt().ceil() as usize).clamp(1, 8192);
        let ny = ((cells / nx as f64).ceil() as usize).clamp(1, 8192);
        let mut grid = Grid {
            x0: bbox[0],
            y0: bbox[1],
            x1: bbox[2],
            y1: bbox[3],
            inv_dx: nx as f64 / w,
            inv_dy: ny as f64 / h,
            nx,
            ny,
            starts: vec![0; nx * ny + 1],
            items: Vec::new(),
        };
        // Two passes: count per cell, then fill, so every list is contiguous and ordered.
        let mut counts = vec![0u32; nx * ny];
        for e in envelopes {
            let (cx0, cy0, cx1, cy1) = grid.cell_range(e);
            for cy in cy0..=cy1 {
                for cx in cx0..=cx1 {
                    counts[cy * nx + cx] += 1;
                }
            }
        }
        let mut total = 0u32;
        for (c, n) in counts.iter().enumerate() {
            grid.starts[c] = total;
            total += n;
        }
        grid.starts[nx * ny] = total;
        let mut cells: Vec<(u32, u32)> = Vec::with_capacity(total as usize);
        for (i, e) in envelopes.iter().enumerate() {
            let (cx0, cy0, cx1, cy1) = grid.cell_range(e);
            for cy in cy0..=cy1 {
                for cx in cx0..=cx1 {
                    cells.push(((cy * nx + cx) as u32, i as u32));
                }
            }
        }
        cells.sort_unstable();
        grid.items = cells.into_iter().map(|(_, i)| items[i as usize]).collect();
        grid
    }

    fn cell_range(&self, e: &[f64; 4]) -> (usize, usize, usize, usize) {
        let (cx0, cy0) = self.clamped_cell(e[0], e[1]);
        let (cx1, cy1) = self.clamped_cell(e[2], e[3]);
        (cx0, cy0, cx1, cy1)
    }

    fn clamped_cell(&self, x: f64, y: f64) -> (usize, usize) {
        let cx = ((x - self.x0) * self.inv_dx).floor().clamp(0.0, (self.nx - 1) as f64) as usize;
        let cy = ((y - self.y0) * self.inv_dy).floor().clamp(0.0, (self.ny - 1) as f64) as usize;
        (cx, cy)
    }

    /// (cells, total list entries, longest list) — for tuning.
    pub(super) fn stats(&self) -> (usize, usize, usize) {
        let longest = self.starts.windows(2).map(|w| (w[1] - w[0]) as usize).max().unwrap_or(0);
        (self.nx * self.ny, self.items.len(), longest)
    }

    /// Parts whose envelope touches the cell holding `(x, y)`; empty outside the grid.
    #[inline]
    pub(super) fn candidates(&self, x: f64, y: f64) -> &[T] {
        self.cell_of(x, y).map_or(&[], |c| &self.items[self.starts[c] as usize..self.starts[c + 1] as usize])
    }

    /// A Z-order (Morton) key of the cell holding `(x, y)`: sorting points by it visits
    /// neighbouring cells together. `u64::MAX` outside the grid.
    pub(super) fn z_order(&self, x: f64, y: f64) -> u64 {
        if self.cell_of(x, y).is_none() {
            return u64::MAX;
        }
        let (cx, cy) = self.clamped_cell(x, y);
        spread(cx as u32) | (spread(cy as u32) << 1)
    }

    /// How many low bits [`Grid::z_order`] keys use.
    pub(super) fn z_bits(&self) -> u32 {
        2 * (usize::BITS - self.nx.max(self.ny).saturating_sub(1).leading_zeros())
    }

    /// The cell holding `(x, y)`, if inside the grid. Points exactly on the far edge belong to
    /// the last cell, so parts touching the grid's edge are still found.
    #[inline]
    pub(super) fn cell_of(&self, x: f64, y: f64) -> Option<usize> {
        // Compare raw coordinates (not scaled ones) so rounding cannot drop a point on the edge.
        if !(x >= self.x0 && x <= self.x1 && y >= self.y0 && y <= self.y1) {
            return None;
        }
        let (cx, cy) = self.clamped_cell(x, y);
        Some(cy * self.nx + cx)
    }
}

/// Interleave the bits of `v` with zeros (bit i → bit 2i).
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    x = (x | (x << 1)) & 0x5555_5555_5555_5555;
    x
}
