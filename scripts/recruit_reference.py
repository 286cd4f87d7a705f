#!/usr/bin/env python3
"""Generate the geodesic reference table used by tests/recruit_distances.rs.

Usage: python3 scripts/recruit_reference.py > /tmp/table.rs   (needs `pip install pyproj`)

The fixture: square blocks and ambassador homes (WGS84 lon/lat), mostly around Los Angeles at
block scale (tens of metres to a few kilometres), plus a few far-away cases: a block in Honolulu
whose nearest ambassadors are thousands of kilometres away, a block on the antimeridian and one
near the North Pole. Coordinates come from a fixed linear congruential generator, so the output
is the same on every run.

For each block, distances are measured from the centre of its square -- the point
`geo::InteriorPoint` returns for an axis-aligned rectangle, which the Rust test checks -- to
every ambassador with PROJ's geodesic on the WGS84 ellipsoid (`pyproj.Geod(ellps="WGS84").inv`,
Karney's algorithm, an implementation independent of geographiclib-rs), and the three nearest
are printed, nearest first, with full precision (Python's repr round-trips the f64 exactly).
"""

import pyproj

GEOD = pyproj.Geod(ellps="WGS84")
STATE = [20250601]


def rand():
    """A uniform number in [0, 1) from a 64-bit LCG (Knuth's MMIX constants)."""
    STATE[0] = (STATE[0] * 6364136223846793005 + 1442695040888963407) % (1 << 64)
    return (STATE[0] >> 11) / float(1 << 53)


def around(lon, lat, spread):
    return (lon + (rand() - 0.5) * spread, lat + (rand() - 0.5) * spread)


HQ = (-118.2856, 34.0409)

# Blocks: (id, min lon, min lat, max lon, max lat).
blocks = []
for i in range(16):
    lon, lat = around(*HQ, 0.08)
    size = 0.0005 + 0.002 * rand()
    blocks.append((f"B{i:02}", lon, lat, lon + size, lat + size * 0.8))
blocks.append(("HONOLULU", -157.86, 21.30, -157.855, 21.305))
blocks.append(("DATELINE", 179.9995, -16.5, 180.0, -16.4995))
blocks.append(("ARCTIC", 20.0, 89.9, 20.01, 89.901))

# Ambassadors: (id, lon, lat). Most near HQ; a cluster around the far-away blocks.
ambassadors = [(f"A{i:03}", *around(*HQ, 0.1)) for i in range(60)]
ambassadors += [(f"F{i:02}", *around(-179.99, -16.5, 0.01)) for i in range(4)]
ambassadors += [(f"N{i:02}", *around(-160.0, 89.9, 0.1)) for i in range(4)]

rows = []
for bid, x0, y0, x1, y1 in blocks:
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    d = []
    for aid, lon, lat in ambassadors:
        _, _, dist = GEOD.inv(cx, cy, lon, lat)
        d.append((dist, aid))
    d.sort()
    for rank, (dist, aid) in enumerate(d[:3], start=1):
        rows.append((bid, rank, aid, dist))

print(f"// pyproj {pyproj.__version__}, PROJ {pyproj.proj_version_str}")
print("/// (block id, min lon, min lat, max lon, max lat).")
print("const BLOCKS: &[(&str, f64, f64, f64, f64)] = &[")
for b in blocks:
    print(f'    ("{b[0]}", {b[1]!r}, {b[2]!r}, {b[3]!r}, {b[4]!r}),')
print("];")
print("/// (ambassador id, lon, lat).")
print("const AMBASSADORS: &[(&str, f64, f64)] = &[")
for a in ambassadors:
    print(f'    ("{a[0]}", {a[1]!r}, {a[2]!r}),')
print("];")
print("/// (block id, 1-based rank, ambassador id, metres): PROJ's geodesic from the block's centre.")
print("const NEAREST: &[(&str, usize, &str, f64)] = &[")
for r in rows:
    print(f'    ("{r[0]}", {r[1]}, "{r[2]}", {r[3]!r}),')
print("];")
