//! Exports: GeoJSON (RFC 7946) and CSV writers for blocks, resources and indicators.
