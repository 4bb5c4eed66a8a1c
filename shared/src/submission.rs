//! The key-submission use case: validate, attest the device, verify the processing number, store.

use time::OffsetDateTime;

use crate::domain::diagnosis::{
    AcceptedSubmission, DiagnosisRejection, SubmissionRules, V2Submission, V3Submission,
};
use crate::ports::{
    DeviceAttestation, ExposureKeyStore, ProcessingNumberVerifier, StoreError, VerificationError,
};

/// Bodies above this are refused with 413 before parsing. The app sends at most ~15 keys and
/// ~2.7 KB of padding: a few KB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Everything that can stop a submission, one variant per answer the client gets.
#[derive(Debug, thiserror::Error)]
pub enum SubmissionError {
    #[error("request body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("{0}")]
    MalformedBody(&'static str, usize, usize),
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
            Self::TooLarge => "too_large",
            Self::MalformedBody(..) => "malformed_body",
            Self::Rejected(DiagnosisRejection::InvalidOnsetDate) => "invalid_onset_date",
            Self::Rejected(DiagnosisRejection::MissingKeys) => "missing_keys",
            Self::Rejected(DiagnosisRejection::InvalidParameter) => "invalid_parameter",
            Self::Rejected(DiagnosisRejection::RegionsNotSupported) => "regions_not_supported",
            Self::InvalidDevice => "invalid_device",
            Self::Verification(VerificationError::Refused { .. }) => "verification_refused",
            Self::Verification(VerificationError::Unavailable { .. }) => "verification_unavailable",
            Self::Storage(_) => "storage_unavailable",
        }
    }
}

/// Parses a JSON body. The error names where the body broke, never what it contained (serde's
/// own messages quote values, and a value may be a processing number).
fn parse<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, SubmissionError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(SubmissionError::TooLarge);
    }
    serde_json::from_slice(body).map_err(|error| {
        let what = match error.classify() {
            serde_json::error::Category::Data => "a field has the wrong type or is out of range",
            serde_json::error::Category::Eof => "the JSON body ends early",
            _ => "the body is not valid JSON",
        };
        SubmissionError::MalformedBody(what, error.line(), error.column())
    })
}

/// The use case, over its three ports.
pub struct SubmitKeys<V, A, S> {
    pub rules: SubmissionRules,
    pub verifier: V,
    pub attestation: A,
    pub store: S,
}

/// What a successful (or chaff) submission did, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubmissionReport {
    pub chaff: bool,
    pub keys_accepted: usize,
    pub keys_stored: usize,
    pub keys_already_present: usize,
}

impl<V, A, S> SubmitKeys<V, A, S>
where
    V: ProcessingNumberVerifier + Sync,
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
        let mut submission: V3Submission = parse(body)?;
        let accepted = submission.accept(&self.rules, now)?;
        let report = self.complete(accepted, chaff).await?;
        Ok((submission, report))
    }

    /// `PUT /api/v2/diagnosis`.
    pub async fn submit_v2(
        &self,
        body: &[u8],
        chaff: bool,
        now: OffsetDateTime,
    ) -> Result<SubmissionReport, SubmissionError> {
        let submission: V2Submission = parse(body)?;
        let accepted = submission.accept(&self.rules, now)?;
        self.complete(accepted, chaff).await
    }

    /// COCOA's order after validation: device check, then chaff (answered like a success, with
    /// nothing verified or stored), then the processing number, then storage.
    async fn complete(
        &self,
        accepted: AcceptedSubmission,
        chaff: bool,
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
        };
        if chaff {
            return Ok(report);
        }
        self.verifier.verify(&accepted.verification).await?;
        let outcome = self.store.store(&accepted.keys).await?;
        report.keys_stored = outcome.stored;
        report.keys_already_present = outcome.already_present;
        Ok(report)
    }
}
