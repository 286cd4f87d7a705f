#!/usr/bin/env python3
"""Generate the PROJ reference tables used by tests/crs_reference.rs.

Usage: python3 scripts/crs_reference.py > /tmp/table.rs   (needs `pip install pyproj`)

Two tables: REFERENCE (what the importers read, below) and OUTPUT (what OGC API – Features
Part 2 serves, see OUTPUT_SAMPLES).

For every CRS the product promises to read, three lon/lat points inside the CRS's area of use are
projected with PROJ (through pyproj) and printed as a Rust array of `(code, x, y, lon, lat)` rows
with full precision (Python's repr is the shortest string that round-trips the f64 exactly). The
ESRI WKT1 (the `.prj` flavour ArcGIS writes) of a few CRSs is printed too, so the test can check
the WKT path against the same numbers.

Datum note: belong treats NAD83 as identical to WGS84 (as PROJ and GDAL do when no grid shift is
given). PROJ itself, asked for EPSG:4326 -> a NAD83-based CRS, may pick a ballpark or grid-based
NAD83->WGS84 operation, which would mix a datum shift into the reference numbers. So for
NAD83-based CRSs the source geographic CRS is NAD83 (EPSG:4269), not WGS84 (EPSG:4326): the
reference is then the pure projection, which is what belong computes, and the printed lon/lat are
the NAD83 degrees that belong reports as WGS84 degrees.

always_xy=True everywhere: lon/lat and easting/northing order regardless of the EPSG axis order.
"""

import pyproj
from pyproj import CRS, Transformer
from pyproj.database import get_database_metadata

# A few recognisable places per family.
LA = (-118.2437, 34.0522)
SF = (-122.4194, 37.7749)

# code -> (source geographic CRS, three lon/lat points inside the area of use)
SAMPLES = {
    # Geographic.
    4326: ("EPSG:4326", [LA, (2.3522, 48.8566), (151.2093, -33.8688)]),
    4269: ("EPSG:4269", [LA, SF, (-77.0369, 38.9072)]),
    # Web Mercator (defined on WGS84).
    3857: ("EPSG:4326", [LA, SF, (18.4241, -33.9249)]),
    # California State Plane, NAD83, US survey feet (zones I..VI).
    2225: ("EPSG:4269", [(-122.3917, 40.5865), (-124.1637, 40.8021), (-120.5427, 41.4871)]),  # Redding, Eureka, Alturas
    2226: ("EPSG:4269", [(-121.4944, 38.5816), (-122.7144, 38.4404), (-119.9772, 38.9399)]),  # Sacramento, Santa Rosa, S. Lake Tahoe
    2227: ("EPSG:4269", [SF, (-121.8863, 37.3382), (-118.9721, 37.6485)]),  # SF, San Jose, Mammoth Lakes
    2228: ("EPSG:4269", [(-119.7871, 36.7378), (-121.8947, 36.6002), (-118.3995, 37.3635)]),  # Fresno, Monterey, Bishop
    2229: ("EPSG:4269", [LA, (-119.6982, 34.4208), (-119.0187, 35.3733)]),  # LA, Santa Barbara, Bakersfield
    2230: ("EPSG:4269", [(-117.1611, 32.7157), (-116.5453, 33.8303), (-115.5631, 32.7920)]),  # San Diego, Palm Springs, El Centro
    # California State Plane, NAD83, metres (zones 1..6).
    26941: ("EPSG:4269", [(-122.3917, 40.5865), (-124.1637, 40.8021), (-120.5427, 41.4871)]),
    26942: ("EPSG:4269", [(-121.4944, 38.5816), (-122.7144, 38.4404), (-119.9772, 38.9399)]),
    26943: ("EPSG:4269", [SF, (-121.8863, 37.3382), (-118.9721, 37.6485)]),
    26944: ("EPSG:4269", [(-119.7871, 36.7378), (-121.8947, 36.6002), (-118.3995, 37.3635)]),
    26945: ("EPSG:4269", [LA, (-119.6982, 34.4208), (-119.0187, 35.3733)]),
    26946: ("EPSG:4269", [(-117.1611, 32.7157), (-116.5453, 33.8303), (-115.5631, 32.7920)]),
    # UTM on NAD83.
    26910: ("EPSG:4269", [SF, (-123.5, 45.0), (-121.0, 48.5)]),  # zone 10N: 126W..120W
    26911: ("EPSG:4269", [LA, (-117.0, 40.0), (-115.0, 45.5)]),  # zone 11N: 120W..114W
    26912: ("EPSG:4269", [(-112.0740, 33.4484), (-111.8910, 40.7608), (-109.0, 48.0)]),  # zone 12N: 114W..108W
    26914: ("EPSG:4269", [(-97.7431, 30.2672), (-99.0, 40.0), (-101.5, 47.0)]),  # zone 14N: 102W..96W
    26918: ("EPSG:4269", [(-74.0060, 40.7128), (-77.0369, 38.9072), (-75.1652, 39.9526)]),  # zone 18N: 78W..72W
    # UTM on WGS84.
    32610: ("EPSG:4326", [SF, (-123.5, 45.0), (-121.0, 48.5)]),
    32611: ("EPSG:4326", [LA, (-117.0, 40.0), (-115.0, 45.5)]),
    32612: ("EPSG:4326", [(-112.0740, 33.4484), (-111.8910, 40.7608), (-109.0, 48.0)]),
    32733: ("EPSG:4326", [(13.2344, -8.8383), (17.0832, -22.5609), (15.5, -28.0)]),  # zone 33S: Luanda, Windhoek
    # California Albers (NAD83, metres).
    3310: ("EPSG:4269", [(-124.2026, 41.7558), LA, (-114.6108, 34.8481)]),  # Crescent City, LA, Needles
}

# Output direction (`crs=` on the items): every CRS the service offers for a Los Angeles
# catchment, at points of the demo catchment (Pico-Union / Westlake) and across LA County, with
# the coordinates in the CRS's *authority* axis order (always_xy=False), so that the table also
# records PROJ's axis order: EPSG:4326 is latitude first, the projected CRSs easting first. The
# points are not all inside each CRS's area of use (LA is north of State Plane zone VI's): the
# service offers every CRS for the whole catchment, and the maths is defined there all the same.
CATCHMENT = [
    (-118.2856, 34.0409),  # 1910 Magnolia Ave
    (-118.2700, 34.0560),  # Westlake, north-east of the catchment
    (-118.3000, 34.0300),  # south-west of the catchment
    (-118.9448, 34.8233),  # Gorman, the county's north-west
    (-117.6462, 34.2000),  # the county's east edge
    (-118.3267, 33.3428),  # Avalon, Santa Catalina Island
]
# code -> source geographic CRS (NAD83 for NAD83-based CRSs, as for REFERENCE)
OUTPUT_SAMPLES = {4326: "EPSG:4326", 3857: "EPSG:4326", 2229: "EPSG:4269", 2230: "EPSG:4269", 3310: "EPSG:4269", 32611: "EPSG:4326"}

# CRSs whose ESRI WKT1 (.prj) is checked as well.
ESRI = [2229, 2230, 26911, 3310]


def inside(area, lon: float, lat: float) -> bool:
    """Is (lon, lat) in the area of use? West > east means it crosses the antimeridian."""
    if area.west <= area.east:
        in_lon = area.west <= lon <= area.east
    else:
        in_lon = lon >= area.west or lon <= area.east
    return in_lon and area.south <= lat <= area.north


def rust_str(s: str) -> str:
    assert '"#' not in s
    return 'r#"' + s + '"#'


def main() -> None:
    epsg_version = get_database_metadata("EPSG.VERSION")
    print(f"// pyproj {pyproj.__version__}, PROJ {pyproj.proj_version_str}, EPSG database {epsg_version}")
    print("/// (EPSG code, x, y, lon, lat): PROJ's projection of (lon, lat) into the CRS.")
    print("const REFERENCE: &[(u32, f64, f64, f64, f64)] = &[")
    for code, (source, points) in SAMPLES.items():
        target = CRS.from_epsg(code)
        area = target.area_of_use
        tr = Transformer.from_crs(source, f"EPSG:{code}", always_xy=True)
        for lon, lat in points:
            assert inside(area, lon, lat), (code, lon, lat, area)
            x, y = tr.transform(lon, lat, errcheck=True)
            print(f"    ({code}, {x!r}, {y!r}, {lon!r}, {lat!r}),")
    print("];")
    print()
    print("/// (EPSG code, ESRI WKT1 as ArcGIS writes it in a `.prj`).")
    print("const ESRI_WKT: &[(u32, &str)] = &[")
    for code in ESRI:
        wkt = CRS.from_epsg(code).to_wkt(version="WKT1_ESRI")
        print(f"    ({code}, {rust_str(wkt)}),")
    print("];")
    print()
    print("/// (EPSG code, first axis, second axis, lon, lat): PROJ's (lon, lat) in the CRS, in its EPSG")
    print("/// axis order:")
    for code in OUTPUT_SAMPLES:
        axes = ", ".join(f"{a.abbrev} ({a.direction}, {a.unit_name})" for a in CRS.from_epsg(code).axis_info)
        print(f"/// EPSG:{code} {axes}.")
    print("const OUTPUT: &[(u32, f64, f64, f64, f64)] = &[")
    for code, source in OUTPUT_SAMPLES.items():
        # Both sides in authority order: the geographic source takes (lat, lon).
        tr = Transformer.from_crs(source, f"EPSG:{code}", always_xy=False)
        for lon, lat in CATCHMENT:
            a, b = tr.transform(lat, lon, errcheck=True)
            print(f"    ({code}, {a!r}, {b!r}, {lon!r}, {lat!r}),")
    print("];")


if __name__ == "__main__":
    main()
