//! The CRSs features can be served in (OGC API – Features Part 2, "CRS by reference"): which
//! ones a catchment offers, the names clients may give them, and how a stored WGS84 lon/lat is
//! written in each, axis order included. The maths is the importers' [`Crs`] (proj4rs) run the
//! other way, so what an import reads and what a client is served agree.
//!
//! Two coordinate orders cross this module's boundary, and every function says which it takes:
//! *GIS order* (`x` = longitude or easting first, as GeoPackage, shapefiles and geo keep it) and
//! the CRS's *axis order* (as its EPSG definition lists the axes; what Part 2 serves, so
//! EPSG:4326 is latitude first). They differ only for geographic EPSG CRSs.

use std::sync::{Arc, LazyLock};

use geo::{Coord, Intersects, MapCoords, MultiPolygon, Rect};

use super::layers::{BLOCKS, Layers};
use crate::ingest::{Crs, CrsError};

/// OGC CRS84: WGS84 longitude/latitude, the storage CRS and the default.
pub const CRS84: &str = "http://www.opengis.net/def/crs/OGC/1.3/CRS84";
/// The prefix of an EPSG CRS's URI (the form Part 2 lists and `Content-Crs` names).
pub const EPSG_URI: &str = "http://www.opengis.net/def/crs/EPSG/0/";
/// The EPSG CRSs every catchment is offered in besides CRS84, in the order they are listed:
/// WGS84 latitude/longitude, Web Mercator, California State Plane zones V and VI (US survey
/// feet: Los Angeles and the counties south of it) and California Albers. The catchment's UTM
/// zone ([`utm_zone`]) comes after them.
pub const OFFERED_EPSG: [u32; 5] = [4326, 3857, 2229, 2230, 3310];

/// Decimals a served degree keeps: 1e-7° is about 1 cm, as the CRS84 GeoJSON is rounded.
const DEGREE_DECIMALS: i32 = 7;
/// Decimals a served metre or US foot keeps: a millimetre (or 0.3 mm), well inside the 1 cm the
/// CRS84 output itself carries.
const LINEAR_DECIMALS: i32 = 3;
/// How far, in degrees, the WGS84 envelope of a projected bbox is widened so that the curved
/// edges between the sampled points stay inside it (about a metre; only a prefilter).
const ENVELOPE_PAD_DEG: f64 = 1e-5;

/// The order of a CRS's axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axes {
    /// Longitude, latitude (CRS84).
    LonLat,
    /// Latitude, longitude (EPSG geographic CRSs such as 4326).
    LatLon,
    /// Easting, northing (every projected CRS offered).
    EastNorth,
}

impl Axes {
    /// Short names of the two axes in order, for CSV columns and messages.
    pub fn names(self) -> [&'static str; 2] {
        match self {
            Axes::LonLat => ["lon", "lat"],
            Axes::LatLon => ["lat", "lon"],
            Axes::EastNorth => ["x", "y"],
        }
    }

    /// How a bbox lists its four numbers in this order: `minLon,minLat,maxLon,maxLat`, ...
    pub fn bbox_order(self) -> &'static str {
        match self {
            Axes::LonLat => "minLon,minLat,maxLon,maxLat",
            Axes::LatLon => "minLat,minLon,maxLat,maxLon",
            Axes::EastNorth => "minX,minY,maxX,maxY",
        }
    }

    fn titles(self) -> [&'static str; 2] {
        match self {
            Axes::LonLat => ["Lon", "Lat"],
            Axes::LatLon => ["Lat", "Lon"],
            Axes::EastNorth => ["X", "Y"],
        }
    }
}

/// Why a CRS was refused or a coordinate could not be served in it.
#[derive(Debug, thiserror::Error)]
pub enum OutputCrsError {
    /// The text names no CRS this catchment is offered in.
    #[error("{given} is not a supported CRS; supported: {}", .supported.join(", "))]
    Unsupported {
        /// What the client sent, quoted and cut short ([`crate::core::text::quote`]).
        given: String,
        /// The URIs of the CRSs offered.
        supported: Vec<String>,
    },
    /// A bbox whose minimum is above its maximum on an axis.
    #[error("min{axis} is greater than max{axis}")]
    Inverted {
        /// The axis: `Lon`, `Lat`, `X` or `Y`.
        axis: &'static str,
    },
    /// A coordinate outside what the CRS can represent, or that cannot be reprojected.
    #[error(transparent)]
    Reproject(#[from] CrsError),
}

/// One CRS features can be served in. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OutputCrs {
    /// `None` for CRS84.
    epsg: Option<u32>,
    uri: Arc<str>,
    crs: Arc<Crs>,
    axes: Axes,
}

impl PartialEq for OutputCrs {
    fn eq(&self, other: &Self) -> bool {
        self.uri == other.uri
    }
}

/// CRS84 and the fixed EPSG CRSs, parsed once (a `Proj` is slow to build).
static FIXED: LazyLock<Vec<OutputCrs>> = LazyLock::new(|| {
    let mut all = vec![OutputCrs { epsg: None, uri: CRS84.into(), crs: Arc::new(Crs::wgs84()), axes: Axes::LonLat }];
    all.extend(OFFERED_EPSG.iter().filter_map(|&code| OutputCrs::build(code).ok()));
    all
});

impl OutputCrs {
    /// CRS84 (lon/lat on WGS84): what is stored, so serving it reprojects nothing.
    pub fn crs84() -> OutputCrs {
        FIXED[0].clone()
    }

    /// An EPSG CRS with the axis order of its EPSG definition. Only for the offered codes:
    /// every geographic EPSG CRS is latitude first, but a few projected ones are northing first,
    /// and none of those is offered.
    fn epsg(code: u32) -> Result<OutputCrs, CrsError> {
        match FIXED.iter().find(|c| c.epsg == Some(code)) {
            Some(fixed) => Ok(fixed.clone()),
            None => OutputCrs::build(code),
        }
    }

    fn build(code: u32) -> Result<OutputCrs, CrsError> {
        let crs = Crs::from_epsg(code)?;
        let axes = if crs.is_geographic() { Axes::LatLon } else { Axes::EastNorth };
        Ok(OutputCrs { epsg: Some(code), uri: format!("{EPSG_URI}{code}").into(), crs: Arc::new(crs), axes })
    }

    /// The URI naming this CRS (in the `crs` lists and the `Content-Crs` header).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The EPSG code, `None` for CRS84.
    pub fn epsg_code(&self) -> Option<u32> {
        self.epsg
    }

    /// Whether this is CRS84: features are written as stored.
    pub fn is_crs84(&self) -> bool {
        self.epsg.is_none()
    }

    /// The order of the axes as served.
    pub fn axes(&self) -> Axes {
        self.axes
    }

    /// Whether coordinates are degrees (CRS84, EPSG:4326).
    pub fn is_geographic(&self) -> bool {
        self.crs.is_geographic()
    }

    /// `EPSG:2229` or `CRS84`, for messages.
    pub fn label(&self) -> String {
        self.epsg.map_or_else(|| "CRS84".to_string(), |c| format!("EPSG:{c}"))
    }

    /// This CRS for a file download (GeoPackage, FlatGeobuf, shapefile): x east, y north
    /// whatever the EPSG axis order, and the CRS's WKT to record. CRS84 is EPSG:4326 there.
    pub fn for_download(&self) -> Result<crate::export::OutputCrs, String> {
        let Some(code) = self.epsg.filter(|c| *c != 4326) else { return Ok(crate::export::OutputCrs::wgs84()) };
        let def = u16::try_from(code)
            .ok()
            .and_then(crs_definitions::from_code)
            .ok_or_else(|| format!("crs=EPSG:{code}: no WKT is known for it, so no file can record it"))?;
        let name = def.wkt.split('"').nth(1).unwrap_or("").to_string();
        // GDAL, QGIS and ArcGIS Pro read OGC WKT 1 in a `.prj` too.
        let srs = crate::export::Srs {
            name,
            organization: "EPSG".into(),
            code: code as i32,
            wkt: def.wkt.to_string(),
            esri_wkt: def.wkt.to_string(),
        };
        let crs = self.clone();
        Ok(crate::export::OutputCrs::new(srs, move |lon, lat| crs.xy_from_wgs84(lon, lat).map_err(|e| e.to_string())))
    }

    /// A WGS84 lon/lat in this CRS, in GIS order (longitude or easting first), unrounded.
    pub fn xy_from_wgs84(&self, lon: f64, lat: f64) -> Result<(f64, f64), CrsError> {
        let (x, y) = self.crs.from_wgs84(lon, lat)?;
        if !x.is_finite() || !y.is_finite() {
            return Err(CrsError::OutsideCrs { x: lon, y: lat, crs: self.label() });
        }
        Ok((x, y))
    }

    /// A coordinate of this CRS in GIS order back to WGS84 lon/lat (refused when outside what
    /// the CRS represents, as the importers refuse it).
    pub fn xy_to_wgs84(&self, x: f64, y: f64) -> Result<(f64, f64), CrsError> {
        self.crs.to_wgs84(x, y)
    }

    /// A WGS84 lon/lat as served: in this CRS's axis order, rounded to 1e-7° or 1 mm.
    pub fn position(&self, lon: f64, lat: f64) -> Result<[f64; 2], CrsError> {
        if self.is_crs84() {
            return Ok([round(lon, DEGREE_DECIMALS), round(lat, DEGREE_DECIMALS)]);
        }
        let (x, y) = self.xy_from_wgs84(lon, lat)?;
        let d = if self.is_geographic() { DEGREE_DECIMALS } else { LINEAR_DECIMALS };
        let (x, y) = (round(x, d), round(y, d));
        Ok(if self.axes == Axes::LatLon { [y, x] } else { [x, y] })
    }

    /// A pair in this CRS's axis order in GIS order.
    pub fn to_gis_order(&self, pair: [f64; 2]) -> (f64, f64) {
        if self.axes == Axes::LatLon { (pair[1], pair[0]) } else { (pair[0], pair[1]) }
    }

    /// A bbox `[min, min, max, max]` given in this CRS's axis order, as the features to select.
    /// Geographic CRSs give a lon/lat rectangle; a projected one is not one in lon/lat (its
    /// edges are curves there), so it keeps the rectangle in its own CRS and a WGS84 envelope
    /// that holds it, from points along every edge, to find candidates with.
    pub fn bbox(&self, bbox: [f64; 4]) -> Result<BboxSelection, OutputCrsError> {
        let (x0, y0) = self.to_gis_order([bbox[0], bbox[1]]);
        let (x1, y1) = self.to_gis_order([bbox[2], bbox[3]]);
        let [a, b] = self.axes.titles();
        let (first_min, first_max, second_min, second_max) = (bbox[0], bbox[2], bbox[1], bbox[3]);
        if first_min > first_max {
            return Err(OutputCrsError::Inverted { axis: a });
        }
        if second_min > second_max {
            return Err(OutputCrsError::Inverted { axis: b });
        }
        if self.is_geographic() {
            // Degrees on WGS84 (NAD83 counts as the same): the rectangle itself.
            return Ok(BboxSelection { envelope: [x0, y0, x1, y1], projected: None });
        }
        let mut envelope = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
        let corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)];
        for edge in corners.windows(2) {
            let ((ax, ay), (bx, by)) = (edge[0], edge[1]);
            let (alon, alat) = self.xy_to_wgs84(ax, ay)?;
            let (blon, blat) = self.xy_to_wgs84(bx, by)?;
            // A segment of ~2 km bulges less than the pad from the curve it stands for.
            let metres = (blon - alon).hypot(blat - alat) * 111_320.0;
            let steps = ((metres / 2_000.0).ceil() as usize).clamp(16, 4_096);
            for i in 0..steps {
                let t = i as f64 / steps as f64;
                let (lon, lat) = self.xy_to_wgs84(ax + (bx - ax) * t, ay + (by - ay) * t)?;
                envelope = [envelope[0].min(lon), envelope[1].min(lat), envelope[2].max(lon), envelope[3].max(lat)];
            }
        }
        let envelope = [
            (envelope[0] - ENVELOPE_PAD_DEG).max(-180.0),
            (envelope[1] - ENVELOPE_PAD_DEG).max(-90.0),
            (envelope[2] + ENVELOPE_PAD_DEG).min(180.0),
            (envelope[3] + ENVELOPE_PAD_DEG).min(90.0),
        ];
        let rect = Rect::new(Coord { x: x0, y: y0 }, Coord { x: x1, y: y1 });
        Ok(BboxSelection { envelope, projected: Some(ProjectedBbox { crs: self.clone(), rect }) })
    }
}

fn round(v: f64, decimals: i32) -> f64 {
    let k = 10f64.powi(decimals);
    (v * k).round() / k
}

/// What a `bbox` selects: a WGS84 envelope to look features up by, and, for a projected CRS,
/// the rectangle in that CRS the features must really intersect.
#[derive(Debug, Clone, PartialEq)]
pub struct BboxSelection {
    /// `[min lon, min lat, max lon, max lat]`: the bbox itself for a geographic CRS, else an
    /// envelope holding it.
    pub envelope: [f64; 4],
    /// The bbox in its own projected CRS, when it was given in one.
    pub projected: Option<ProjectedBbox>,
}

/// A bbox in a projected CRS. A feature is selected when its geometry, reprojected into that
/// CRS vertex by vertex, intersects the rectangle: what PostGIS's
/// `ST_Intersects(ST_Transform(geom, srid), ST_MakeEnvelope(..., srid))` and GDAL's `-spat` on
/// a reprojected layer answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectedBbox {
    crs: OutputCrs,
    /// In GIS order (easting, northing).
    rect: Rect<f64>,
}

impl ProjectedBbox {
    /// The CRS the rectangle is in.
    pub fn crs(&self) -> &OutputCrs {
        &self.crs
    }

    /// Whether the WGS84 point is in the rectangle (a point the CRS cannot represent is not).
    pub fn contains_point(&self, lon: f64, lat: f64) -> bool {
        self.crs.xy_from_wgs84(lon, lat).is_ok_and(|(x, y)| self.rect.intersects(&Coord { x, y }))
    }

    /// Whether the WGS84 multipolygon, reprojected, intersects the rectangle (one the CRS
    /// cannot represent everywhere does not).
    pub fn intersects(&self, mp: &MultiPolygon<f64>) -> bool {
        mp.try_map_coords(|c| self.crs.xy_from_wgs84(c.x, c.y).map(|(x, y)| Coord { x, y }))
            .is_ok_and(|projected| projected.intersects(&self.rect))
    }
}

/// The WGS84 UTM zone (northern zones EPSG:32601–32660, southern 32701–32760) whose central
/// meridian is nearest `lon`: the zone a catchment centred there is served in. WGS84 rather
/// than NAD83 (EPSG:269xx) because it exists the world over; `belong` treats NAD83 as WGS84, so
/// the two give the same figures. Norway's and Svalbard's irregular zones are not special-cased.
pub fn utm_zone(lon: f64, lat: f64) -> u32 {
    let zone = (((lon + 180.0) / 6.0).floor() as i64).clamp(0, 59) as u32 + 1;
    if lat >= 0.0 { 32_600 + zone } else { 32_700 + zone }
}

/// The CRSs a catchment is offered in: CRS84, [`OFFERED_EPSG`] and the catchment's UTM zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrsList {
    /// EPSG codes offered besides CRS84, in order.
    epsg: Vec<u32>,
}

impl CrsList {
    /// The list for a catchment whose extent (`[min lon, min lat, max lon, max lat]`) this is;
    /// without one (nothing imported yet) there is no UTM zone to offer.
    pub fn new(catchment: Option<[f64; 4]>) -> CrsList {
        let mut epsg = OFFERED_EPSG.to_vec();
        if let Some([x0, y0, x1, y1]) = catchment {
            let zone = utm_zone((x0 + x1) / 2.0, (y0 + y1) / 2.0);
            if !epsg.contains(&zone) {
                epsg.push(zone);
            }
        }
        CrsList { epsg }
    }

    /// The list for the catchment these layers serve: centred on the blocks (or, with no blocks,
    /// on every feature).
    pub fn for_layers(layers: &Layers) -> CrsList {
        let blocks = layers.collections.iter().find(|c| c.id == BLOCKS).and_then(|c| c.extent);
        let all = layers
            .collections
            .iter()
            .filter_map(|c| c.extent)
            .reduce(|a, b| [a[0].min(b[0]), a[1].min(b[1]), a[2].max(b[2]), a[3].max(b[3])]);
        CrsList::new(blocks.or(all))
    }

    /// The URIs of the CRSs offered, CRS84 first.
    pub fn uris(&self) -> Vec<String> {
        std::iter::once(CRS84.to_string()).chain(self.epsg.iter().map(|c| format!("{EPSG_URI}{c}"))).collect()
    }

    /// The offered CRS `text` names: its URI (`http://www.opengis.net/def/crs/EPSG/0/2229`,
    /// [`CRS84`]), `EPSG:2229`, `urn:ogc:def:crs:EPSG::2229`, `[EPSG:2229]`, `CRS84`,
    /// `OGC:CRS84` or `urn:ogc:def:crs:OGC:1.3:CRS84`. Every EPSG form means the EPSG
    /// definition, axis order included (`EPSG:4326` is latitude first).
    pub fn resolve(&self, text: &str) -> Result<OutputCrs, OutputCrsError> {
        let unsupported =
            || OutputCrsError::Unsupported { given: crate::core::text::quote(text), supported: self.uris() };
        match name_of(text) {
            Some(Name::Crs84) => Ok(OutputCrs::crs84()),
            Some(Name::Epsg(code)) if self.epsg.contains(&code) => OutputCrs::epsg(code).map_err(|_| unsupported()),
            _ => Err(unsupported()),
        }
    }
}

enum Name {
    Crs84,
    Epsg(u32),
}

fn name_of(text: &str) -> Option<Name> {
    let t = text.trim();
    let t = t.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(t);
    let lower = t.to_ascii_lowercase();
    let lower = lower.strip_prefix("https://").map(|r| format!("http://{r}")).unwrap_or(lower);
    if matches!(
        lower.as_str(),
        "crs84"
            | "ogc:crs84"
            | "urn:ogc:def:crs:ogc:1.3:crs84"
            | "urn:ogc:def:crs:ogc::crs84"
            | "http://www.opengis.net/def/crs/ogc/1.3/crs84"
            | "http://www.opengis.net/def/crs/ogc/0/crs84"
    ) {
        return Some(Name::Crs84);
    }
    let code = if let Some(rest) = lower.strip_prefix("http://www.opengis.net/def/crs/epsg/0/") {
        rest
    } else if let Some(rest) = lower.strip_prefix("epsg:") {
        rest
    } else if let Some(rest) = lower.strip_prefix("urn:ogc:def:crs:epsg:") {
        // urn:ogc:def:crs:EPSG::2229 or with a version, urn:ogc:def:crs:EPSG:9.8.15:2229.
        let (version, code) = rest.split_once(':')?;
        if !version.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return None;
        }
        code
    } else {
        return None;
    };
    if code.is_empty() || code.len() > 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    code.parse().ok().map(Name::Epsg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    fn la() -> CrsList {
        CrsList::new(Some([-118.30, 34.03, -118.26, 34.06]))
    }

    #[test]
    fn the_catchment_adds_its_utm_zone() {
        assert_eq!(utm_zone(-118.28, 34.04), 32611);
        assert_eq!(utm_zone(-117.0, 34.0), 32611, "a central meridian is inside its zone");
        assert_eq!(utm_zone(-120.0, 34.0), 32611, "zone 11 starts at 120°W");
        assert_eq!(utm_zone(151.2, -33.9), 32756);
        assert_eq!(utm_zone(180.0, 0.0), 32660);
        assert_eq!(utm_zone(-180.0, 0.0), 32601);
        let uris = la().uris();
        assert_eq!(uris[0], CRS84);
        assert_eq!(uris.last().map(String::as_str), Some("http://www.opengis.net/def/crs/EPSG/0/32611"));
        assert_eq!(uris.len(), 7);
        assert_eq!(CrsList::new(None).uris().len(), 6);
    }

    #[test]
    fn names_clients_use() {
        let list = la();
        for (text, uri) in [
            ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", CRS84),
            ("CRS84", CRS84),
            ("OGC:CRS84", CRS84),
            ("[OGC:CRS84]", CRS84),
            ("urn:ogc:def:crs:OGC:1.3:CRS84", CRS84),
            ("http://www.opengis.net/def/crs/EPSG/0/2229", "http://www.opengis.net/def/crs/EPSG/0/2229"),
            ("https://www.opengis.net/def/crs/EPSG/0/2229", "http://www.opengis.net/def/crs/EPSG/0/2229"),
            ("EPSG:2229", "http://www.opengis.net/def/crs/EPSG/0/2229"),
            ("epsg:4326", "http://www.opengis.net/def/crs/EPSG/0/4326"),
            ("urn:ogc:def:crs:EPSG::3310", "http://www.opengis.net/def/crs/EPSG/0/3310"),
            ("urn:ogc:def:crs:EPSG:9.8.15:3857", "http://www.opengis.net/def/crs/EPSG/0/3857"),
            (" EPSG:32611 ", "http://www.opengis.net/def/crs/EPSG/0/32611"),
        ] {
            assert_eq!(list.resolve(text).map(|c| c.uri().to_string()).unwrap(), uri, "{text}");
        }
        for bad in [
            "EPSG:32612",
            "EPSG:4269",
            "2229",
            "EPSG:",
            "EPSG:22 29",
            "+proj=longlat",
            "urn:ogc:def:crs:EPSG:x:2229",
            "http://www.opengis.net/def/crs/EPSG/0/99999999999",
            "",
        ] {
            let e = list.resolve(bad).unwrap_err().to_string();
            assert!(e.contains("not a supported CRS") && e.contains(CRS84) && e.contains("EPSG/0/32611"), "{bad}: {e}");
        }
        let long = "x".repeat(10_000);
        assert!(list.resolve(&long).unwrap_err().to_string().len() < 1_000);
    }

    #[test]
    fn axis_order_follows_the_epsg_definitions() {
        let list = la();
        let at = |code: &str| list.resolve(code).unwrap().position(-118.2437, 34.0522).unwrap();
        assert_eq!(at("CRS84"), [-118.2437, 34.0522]);
        assert_eq!(at("EPSG:4326"), [34.0522, -118.2437]);
        // PROJ (scripts/crs_reference.py) for EPSG:2229: easting then northing, US feet.
        let [x, y] = at("EPSG:2229");
        assert_abs_diff_eq!(x, 6487847.002983113, epsilon = 0.0328);
        assert_abs_diff_eq!(y, 1841468.2517634213, epsilon = 0.0328);
        for code in ["EPSG:4326", "CRS84"] {
            assert!(list.resolve(code).unwrap().is_geographic());
        }
        assert_eq!(list.resolve("EPSG:4326").unwrap().axes().names(), ["lat", "lon"]);
        assert_eq!(list.resolve("EPSG:3310").unwrap().axes().names(), ["x", "y"]);
    }

    #[test]
    fn a_projected_bbox_has_an_envelope_holding_its_edges() {
        let list = la();
        let sp = list.resolve("EPSG:2229").unwrap();
        let (x0, y0) = sp.xy_from_wgs84(-118.29, 34.035).unwrap();
        let sel = sp.bbox([x0, y0, x0 + 5_000.0, y0 + 5_000.0]).unwrap();
        let [w, s, e, n] = sel.envelope;
        let p = sel.projected.as_ref().unwrap();
        // Every point of every edge reprojects inside the envelope; just inside the rectangle is
        // selected, just outside is not.
        for i in 0..=100 {
            let t = f64::from(i) / 100.0;
            let along = x0 + 5_000.0 * t;
            for (x, y, inside) in
                [(along, y0 + 0.1, true), (along, y0 - 0.1, false), (x0 - 0.1, y0 + 5_000.0 * t, false)]
            {
                let (lon, lat) = sp.xy_to_wgs84(x, y).unwrap();
                assert!(w <= lon && lon <= e && s <= lat && lat <= n, "{lon} {lat} outside {:?}", sel.envelope);
                let edge_ok = (0.0..1.0).contains(&t) && t > 0.0;
                if edge_ok {
                    assert_eq!(p.contains_point(lon, lat), inside, "({x}, {y})");
                }
            }
        }
        // 5,000 ft is about 0.016° of longitude here.
        assert!((e - w - 0.0165).abs() < 0.001, "{:?}", sel.envelope);
        // A lon/lat bbox in EPSG:4326 is latitude first, and exact.
        let geo = list.resolve("EPSG:4326").unwrap().bbox([34.0, -118.3, 34.1, -118.2]).unwrap();
        assert_eq!(geo.envelope, [-118.3, 34.0, -118.2, 34.1]);
        assert!(geo.projected.is_none());
        let inverted = list.resolve("EPSG:4326").unwrap().bbox([34.1, -118.3, 34.0, -118.2]).unwrap_err();
        assert_eq!(inverted.to_string(), "minLat is greater than maxLat");
        let outside = list.resolve("EPSG:3857").unwrap().bbox([-1e12, -1e12, 1e12, 1e12]).unwrap_err();
        assert!(matches!(outside, OutputCrsError::Reproject(_)), "{outside}");
    }
}
