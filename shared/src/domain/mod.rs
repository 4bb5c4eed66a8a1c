//! Pure domain code: no I/O, no AWS, no clocks (callers pass `now`).

pub mod attestation;
pub mod clear_text;
pub mod diagnosis;
pub mod export;
pub mod exposure_key;
pub mod processing_number;
pub mod verification_token;
