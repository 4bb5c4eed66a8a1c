//! Pure domain code: no I/O, no AWS, no clocks (callers pass `now`).

pub mod attestation;
pub mod clear_text;
pub mod diagnosis;
pub mod export;
pub mod exposure_key;
pub mod log_id;
pub mod operation_log;
pub mod processing_number;
pub mod redaction;
pub mod survey;
pub mod upload_grant;
pub mod verification_token;
