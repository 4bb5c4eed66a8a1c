//! COCOA's clear-text builders. PLACEHOLDER: replaced by the real builders (culture-sensitive
//! ordering through a collation library) in the attestation work.

use super::attestation::ClearTextSource;

pub(crate) fn nonce_text(_source: &ClearTextSource) -> String {
    String::new()
}

pub(crate) fn transaction_seed(_source: &ClearTextSource) -> String {
    String::new()
}
