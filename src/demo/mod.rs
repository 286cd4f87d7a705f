//! Deterministic demo catchment generator (filled in by the demo work).
