//! `belong`: a geospatial block-coverage service.
//!
//! Census blocks are loaded from shapefiles or GeoJSON ([`ingest`]), kept in an R-tree
//! ([`core::index`]), residents and ambassadors are assigned to blocks and coverage is computed
//! ([`core::coverage`]); everything persists in an embedded SQLite database ([`store`]).
//! Dependencies point one way: `cli → store/ingest → core`.

pub mod app;
pub mod core;
pub mod demo;
pub mod export;
pub mod http;
pub mod ingest;
pub mod store;
pub mod tiles;
