//! The ports the use cases depend on. Each has an AWS or HTTP adapter in `adapters`.

use std::future::Future;

use crate::domain::attestation::AttestationSubject;
use crate::domain::diagnosis::{SubmissionDigest, VerificationPayload};
use crate::domain::export::ExportKey;
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
/// checked now, or a token from an earlier check, redeemed by one submission only (`submission`,
/// which may redeem it again, so that its retry after a failure to store passes).
pub trait SubmissionVerifier {
    fn verify(
        &self,
        payload: &VerificationPayload,
        submission: &SubmissionDigest,
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

/// Remembers which tokens were redeemed, and by which submission, until they would have expired
/// anyway.
pub trait UsedTokenStore {
    /// Records `token_id` as used by the submission `binding` stands for (an opaque value, the
    /// same for the same submission and token); `Ok(true)` if it was unused, or used by that same
    /// submission before; `Ok(false)` if another submission used it. One conditional write, so
    /// two submissions racing for one token cannot both win.
    fn consume(
        &self,
        token_id: &str,
        binding: &str,
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

/// Where released keys are read from: one query per region and release hour.
pub trait ReleasedKeySource {
    /// The keys whose release hour (`ExposureKey::release_at`) is `hour` (unix seconds, a whole
    /// hour) in `region`, as export files carry them.
    fn released(
        &self,
        region: &str,
        hour: i64,
    ) -> impl Future<Output = Result<ReleasedHour, StoreError>> + Send;
}

/// One release hour's keys, and what reading them cost.
#[derive(Debug, Default)]
pub struct ReleasedHour {
    pub keys: Vec<ExportKey>,
    /// The read capacity units the store reported for the read (0 where it reports none).
    pub read_units: f64,
    /// Requests made (pages read).
    pub requests: u32,
}

/// A release the exporter has committed to (batch numbers allocated) but not finished: a rerun
/// after a crash resumes exactly this release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingRelease {
    /// Release hours after this one (exclusive) ...
    pub after_hour: i64,
    /// ... up to this one (inclusive).
    pub through_hour: i64,
    pub first_batch: u64,
    pub files: u32,
    /// `created` of the first file (ms); file `i` gets `created + i`.
    pub created_ms: i64,
}

/// The exporter's progress in one region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportState {
    /// The last release hour fully published; `None` before the first run.
    pub cursor_hour: Option<i64>,
    /// The newest `created` in list.json (ms): the next must be greater.
    pub last_created_ms: i64,
    pub pending: Option<PendingRelease>,
    /// Optimistic-lock version: a save succeeds only over the version read.
    pub version: u64,
}

/// One published export file, as list.json and retention need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedBatch {
    pub batch_num: u64,
    pub created_ms: i64,
    /// The object's key in the bucket, e.g. `c19r/440/12.zip`.
    pub object_key: String,
    pub key_count: u32,
    /// After this (unix seconds) none of its keys is within 14 days: it leaves list.json and S3.
    pub keys_until: i64,
}

/// The exporter's own records: progress per region, the batch-number counter, published files.
pub trait ExportLedger {
    fn state(&self, region: &str) -> impl Future<Output = Result<ExportState, StoreError>> + Send;
    /// Saves `state` if the stored version is still `state.version` (then stores version + 1).
    fn save_state(
        &self,
        region: &str,
        state: &ExportState,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Atomically reserves `count` batch numbers; returns the first.
    fn allocate_batches(&self, count: u32) -> impl Future<Output = Result<u64, StoreError>> + Send;
    fn record_batch(
        &self,
        region: &str,
        batch: &PublishedBatch,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn batches(
        &self,
        region: &str,
    ) -> impl Future<Output = Result<Vec<PublishedBatch>, StoreError>> + Send;
    fn forget_batch(
        &self,
        region: &str,
        batch_num: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

#[derive(Debug, thiserror::Error)]
#[error("export bucket unavailable: {0}")]
pub struct BucketError(pub String);

/// An object to write: body and the headers phones and CloudFront see.
pub struct Object<'a> {
    pub key: &'a str,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub cache_control: &'static str,
}

/// The exports bucket.
pub trait ExportBucket {
    /// Writes the object only if no object has that key; `Ok(false)` if one already had it (it is
    /// left untouched: a published file never changes).
    fn put_new(&self, object: Object<'_>)
    -> impl Future<Output = Result<bool, BucketError>> + Send;
    /// Writes or replaces the object (list.json).
    fn put(&self, object: Object<'_>) -> impl Future<Output = Result<(), BucketError>> + Send;
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), BucketError>> + Send;
}

/// A log ID's record: issued (waiting for its upload) or used, until it expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogIdRecord {
    pub used: bool,
    /// Unix seconds; the record is treated as gone from then on, whether or not TTL has acted.
    pub expires_at: i64,
}

/// Who asked for a log ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogIdIssuer {
    App,
    Helpdesk,
}

impl LogIdIssuer {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Helpdesk => "helpdesk",
        }
    }
}

/// The issued log IDs.
pub trait LogIdRegistry {
    /// Records `id` as issued and unused; `Ok(false)` if that id is already recorded.
    fn record_issued(
        &self,
        id: &str,
        issuer: LogIdIssuer,
        issued_at: i64,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The record, if there is one (expired or not: the caller tells an expired ID from an
    /// unknown one, and refuses both).
    fn lookup(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<LogIdRecord>, StoreError>> + Send;
}

/// How a stored operation log is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// `PUT /api/v1/logs/{logId}`: the redacted JSON document, deflated.
    Json,
    /// COCOA's blob-style upload: the app's zip, each entry redacted, as a zip.
    Zip,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Zip => "zip",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "json" => Some(Self::Json),
            "zip" => Some(Self::Zip),
            _ => None,
        }
    }
}

/// A log to store, already redacted.
pub struct NewOperationLog<'a> {
    /// The log ID as the helpdesk reads it (canonical form), or the app's UUID for a blob upload.
    pub id: &'a str,
    pub format: LogFormat,
    /// The stored bytes (deflated JSON or the zip).
    pub body: &'a [u8],
    /// Size before compression, for the helpdesk's listing.
    pub original_bytes: u64,
    pub received_at: i64,
    pub expires_at: i64,
    /// Redactions by kind label, counts only.
    pub redactions: Vec<(&'static str, u64)>,
    /// SHA-256 of the log as the app sent it, redacted: for a JSON log without its receipt time
    /// (`RedactedOperationLog::digest`), for a zip of the stored zip (deterministic). A retry of
    /// an upload whose answer was lost has the same digest; that is how it is told from another
    /// log.
    pub digest: [u8; 32],
    /// What the upload uses up, in the same transaction as the log (together or not at all).
    pub spends: Spends,
}

/// The single-use right an upload is stored with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spends {
    /// The issued log ID the log is stored under: marked used.
    IssuedLogId,
    /// A COCOA upload grant (`sas_token`), by its nonce: recorded as used until it expires.
    UploadGrant {
        nonce: [u8; crate::domain::upload_grant::NONCE_LENGTH],
        expires_at: i64,
    },
}

/// What `OperationLogStore::store` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStoreOutcome {
    Stored,
    /// This very log (the same digest) is already stored under this id: the retry of an upload
    /// whose first answer was lost. Nothing new is stored or spent; the stored log expires at
    /// `expires_at`.
    StoredBefore {
        expires_at: i64,
    },
    /// Another log is already stored under this id (a second upload).
    AlreadyStored,
    /// The issued ID was no longer issued and unused when the upload committed (used or expired
    /// in between).
    IdNoLongerIssued,
    /// The upload grant had been used by another upload when this one committed.
    GrantUsed,
}

/// A stored log's description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSummary {
    pub id: String,
    pub format: LogFormat,
    pub received_at: i64,
    pub expires_at: i64,
    pub original_bytes: u64,
    pub stored_bytes: u64,
    pub redactions: Vec<(String, u64)>,
}

/// The consented operation logs.
pub trait OperationLogStore {
    fn store(
        &self,
        log: NewOperationLog<'_>,
    ) -> impl Future<Output = Result<LogStoreOutcome, StoreError>> + Send;
    /// When the log stored under `id` has `digest` (the same log): its expiry; otherwise `None`.
    fn stored_before(
        &self,
        id: &str,
        digest: &[u8; 32],
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;
    /// The log and its stored bytes, unless there is none or it has expired at `now`.
    fn get(
        &self,
        id: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<(LogSummary, Vec<u8>)>, StoreError>> + Send;
    /// Logs received on or after `since` (unix seconds) that have not expired at `now`.
    fn list(
        &self,
        since: i64,
        now: i64,
    ) -> impl Future<Output = Result<Vec<LogSummary>, StoreError>> + Send;
    /// Deletes the log (every chunk); `Ok(false)` if there was none.
    fn delete(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// One consented event-log entry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLogRecord {
    /// Lowercase hex SHA-256 of idempotency key and the entry's clear text (COCOA's id).
    pub id: String,
    pub epoch: i64,
    pub kind: String,
    pub subtype: String,
    /// The entry's `content` as compact JSON.
    pub content: String,
    pub created: i64,
    pub expires_at: i64,
}

/// The consented event logs and survey answers.
pub trait EventLogStore {
    /// Stores each entry unless one with its id is already stored; returns how many were new.
    fn put_new(
        &self,
        entries: &[EventLogRecord],
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;
}

/// What a retention sweep deleted from one place.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub place: String,
    pub deleted: u64,
}

/// A place whose items carry their own deadline.
pub trait RetentionSweep {
    /// Deletes everything whose deadline is at or before `now` (unix seconds).
    fn purge_expired(&self, now: i64) -> impl Future<Output = Result<Purged, StoreError>> + Send;
}
