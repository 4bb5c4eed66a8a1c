//! The ports the use cases depend on. Each has an AWS or HTTP adapter in `adapters`.

use std::future::Future;

use crate::domain::attestation::AttestationSubject;
use crate::domain::diagnosis::VerificationPayload;
use crate::domain::exposure_key::ExposureKey;
use crate::domain::processing_number::ProcessingNumber;

/// Why a processing number (or a token standing for one) was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerificationError {
    /// The number is wrong or expired (or otherwise refused), or a token is forged, expired or
    /// used; the status comes from the configured result table (COCOA: 406).
    #[error("processing number refused (mapped status {status})")]
    Refused { status: u16 },
    /// HER-SYS failed, timed out, answered something unreadable or a result with no mapping.
    #[error("processing-number verification unavailable: {reason}")]
    Unavailable { reason: &'static str },
    /// Too many verifications at once (the verifier's reserved concurrency is exhausted).
    #[error("processing-number verification throttled")]
    Throttled,
}

impl VerificationError {
    /// A short, fixed name for log lines and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Refused { .. } => "verification_refused",
            Self::Unavailable { .. } => "verification_unavailable",
            Self::Throttled => "verification_throttled",
        }
    }
}

/// Checks a processing number against HER-SYS (directly, or through the function that alone
/// holds HER-SYS's credentials).
pub trait ProcessingNumberVerifier {
    fn verify(
        &self,
        number: &ProcessingNumber,
    ) -> impl Future<Output = Result<(), VerificationError>> + Send;
}

/// Decides whether a submission's `verificationPayload` proves a diagnosis: a processing number
/// checked now, or a token from an earlier check, redeemed once.
pub trait SubmissionVerifier {
    fn verify(
        &self,
        payload: &VerificationPayload,
        now: time::OffsetDateTime,
    ) -> impl Future<Output = Result<(), VerificationError>> + Send;
}

#[derive(Debug, thiserror::Error)]
#[error("MAC service unavailable: {0}")]
pub struct MacError(pub String);

/// HMAC-SHA-256 under a key the service never sees (KMS `GenerateMac`/`VerifyMac`).
pub trait MessageAuthenticator {
    fn generate_mac(
        &self,
        message: &[u8],
    ) -> impl Future<Output = Result<[u8; 32], MacError>> + Send;
    /// `Ok(false)` for a MAC that does not match.
    fn verify_mac(
        &self,
        message: &[u8],
        mac: &[u8; 32],
    ) -> impl Future<Output = Result<bool, MacError>> + Send;
}

/// Remembers which tokens were redeemed, until they would have expired anyway.
pub trait UsedTokenStore {
    /// Records `token_id` as used; `Ok(false)` if it already was.
    fn consume(
        &self,
        token_id: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
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
    /// `received_at` (unix seconds) decides the keys' release hour (`ExposureKey::release_at`).
    fn store(
        &self,
        keys: &[ExposureKey],
        received_at: i64,
    ) -> impl Future<Output = Result<StoreOutcome, StoreError>> + Send;
}

#[derive(Debug, thiserror::Error)]
#[error("export signing unavailable: {0}")]
pub struct SignError(pub String);

/// Signs export files: ECDSA P-256 over a SHA-256 digest, DER signature (KMS `Sign` with
/// `MessageType=DIGEST` in production; a local key for benchmarks and tests).
pub trait ExportSigner {
    fn sign_digest(
        &self,
        digest: &[u8; 32],
    ) -> impl Future<Output = Result<Vec<u8>, SignError>> + Send;
}
