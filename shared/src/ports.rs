//! The ports the use cases depend on. Each has an AWS or HTTP adapter in `adapters`.

use std::future::Future;

use crate::domain::attestation::AttestationSubject;
use crate::domain::diagnosis::VerificationPayload;
use crate::domain::exposure_key::ExposureKey;

/// HER-SYS's verdict on a processing number that it could not accept.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerificationError {
    /// The number is wrong or expired (or otherwise refused); the status comes from the
    /// configured result table (COCOA: 406).
    #[error("processing number refused (mapped status {status})")]
    Refused { status: u16 },
    /// HER-SYS failed, timed out, answered something unreadable or a result with no mapping.
    #[error("processing-number verification unavailable: {reason}")]
    Unavailable { reason: &'static str },
}

/// Checks a processing number against HER-SYS.
pub trait ProcessingNumberVerifier {
    fn verify(
        &self,
        payload: &VerificationPayload,
    ) -> impl Future<Output = Result<(), VerificationError>> + Send;
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("device attestation failed")]
pub struct AttestationError;

/// Proves a request came from the genuine app on a genuine device (SafetyNet / DeviceCheck).
pub trait DeviceAttestation {
    fn attest(
        &self,
        subject: &AttestationSubject,
    ) -> impl Future<Output = Result<(), AttestationError>> + Send;
}

/// What a store call did: keys newly stored, and keys that were already there (a retry).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StoreOutcome {
    pub stored: usize,
    pub already_present: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("key store unavailable: {0}")]
pub struct StoreError(pub String);

/// Where submitted keys wait for their release hour.
pub trait ExposureKeyStore {
    /// Stores every key once: a key whose id is already stored for its region is left as it is.
    fn store(
        &self,
        keys: &[ExposureKey],
    ) -> impl Future<Output = Result<StoreOutcome, StoreError>> + Send;
}
