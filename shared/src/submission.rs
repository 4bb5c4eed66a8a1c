//! The key-submission use case: validate, attest the device, verify the processing number, store.

use time::OffsetDateTime;

use crate::domain::diagnosis::{
    AcceptedSubmission, DiagnosisRejection, SubmissionRules, V2Submission, V3Submission,
};
use crate::ports::{
    DeviceAttestation, ExposureKeyStore, StoreError, SubmissionVerifier, VerificationError,
};
use crate::request::{BodyError, parse_json};

/// Bodies above this are refused with 413 before parsing. The app sends at most ~15 keys and
/// ~2.7 KB of padding: a few KB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything that can stop a submission, one variant per answer the client gets.
#[derive(Debug, thiserror::Error)]
pub enum SubmissionError {
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    Rejected(#[from] DiagnosisRejection),
    #[error("Invalid Device")]
    InvalidDevice,
    #[error(transparent)]
    Verification(#[from] VerificationError),
    #[error(transparent)]
    Storage(#[from] StoreError),
}

impl SubmissionError {
    /// A short, fixed name for log lines.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Body(BodyError::TooLarge { .. }) => "too_large",
            Self::Body(BodyError::Malformed { .. }) => "malformed_body",
            Self::Rejected(DiagnosisRejection::InvalidOnsetDate) => "invalid_onset_date",
            Self::Rejected(DiagnosisRejection::MissingKeys) => "missing_keys",
            Self::Rejected(DiagnosisRejection::InvalidParameter) => "invalid_parameter",
            Self::Rejected(DiagnosisRejection::RegionsNotSupported) => "regions_not_supported",
            Self::InvalidDevice => "invalid_device",
            Self::Verification(error) => error.kind(),
            Self::Storage(_) => "storage_unavailable",
        }
    }
}

/// The use case, over its three ports.
pub struct SubmitKeys<V, A, S> {
    pub rules: SubmissionRules,
    pub verifier: V,
    pub attestation: A,
    pub store: S,
}

/// What a successful (or chaff) submission did, for the log line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SubmissionReport {
    pub chaff: bool,
    pub keys_accepted: usize,
    pub keys_stored: usize,
    pub keys_already_present: usize,
    /// Time spent verifying the processing number or token.
    pub verification_ms: f64,
}

impl<V, A, S> SubmitKeys<V, A, S>
where
    V: SubmissionVerifier + Sync,
    A: DeviceAttestation + Sync,
    S: ExposureKeyStore + Sync,
{
    /// `PUT /api/v3/diagnosis`. Returns the parameter to echo (both payloads nulled).
    pub async fn submit_v3(
        &self,
        body: &[u8],
        chaff: bool,
        now: OffsetDateTime,
    ) -> Result<(V3Submission, SubmissionReport), SubmissionError> {
        let mut submission: V3Submission = parse_json(body, MAX_BODY_BYTES)?;
        let accepted = submission.accept(&self.rules, now)?;
        let report = self.complete(accepted, chaff, now).await?;
        Ok((submission, report))
    }

    /// `PUT /api/v2/diagnosis`.
    pub async fn submit_v2(
        &self,
        body: &[u8],
        chaff: bool,
        now: OffsetDateTime,
    ) -> Result<SubmissionReport, SubmissionError> {
        let submission: V2Submission = parse_json(body, MAX_BODY_BYTES)?;
        let accepted = submission.accept(&self.rules, now)?;
        self.complete(accepted, chaff, now).await
    }

    /// COCOA's order after validation: device check, then chaff (answered like a success, with
    /// nothing verified or stored), then the processing number, then storage.
    async fn complete(
        &self,
        accepted: AcceptedSubmission,
        chaff: bool,
        now: OffsetDateTime,
    ) -> Result<SubmissionReport, SubmissionError> {
        self.attestation
            .attest(&accepted.attestation)
            .await
            .map_err(|_| SubmissionError::InvalidDevice)?;
        let mut report = SubmissionReport {
            chaff,
            keys_accepted: accepted.keys.len(),
            keys_stored: 0,
            keys_already_present: 0,
            verification_ms: 0.0,
        };
        if chaff {
            return Ok(report);
        }
        let started = std::time::Instant::now();
        self.verifier
            .verify(&accepted.verification, &accepted.digest, now)
            .await?;
        report.verification_ms = started.elapsed().as_secs_f64() * 1000.0;
        let outcome = self
            .store
            .store(&accepted.keys, now.unix_timestamp())
            .await?;
        report.keys_stored = outcome.stored;
        report.keys_already_present = outcome.already_present;
        Ok(report)
    }
}
