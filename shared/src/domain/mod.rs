//! Pure domain code: no I/O, no AWS, no clocks (callers pass `now`).

pub mod diagnosis;
pub mod exposure_key;
pub mod processing_number;
