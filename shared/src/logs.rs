//! The log side's use cases: issuing log IDs and COCOA upload grants, accepting consented
//! operation logs (by log ID, or COCOA's blob-style upload), accepting event logs and the usage
//! survey, and enforcing retention.

use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use crate::domain::attestation::{AttestationSubject, ClearTextSource, EventLogText};
use crate::domain::clear_text::{compact_json, event_log_text};
use crate::domain::log_id::{LOG_ID_RANDOM_BYTES, LogId, LogIdError};
use crate::domain::operation_log::{
    LogEncodingError, MAX_LOG_BODY_BYTES, OperationLogError, OperationLogUpload, encode_log,
    log_expires_at, redact_zip, sha256,
};
use crate::domain::redaction::{Redactions, redact_json};
use crate::domain::survey::{SurveyError, parse_survey};
use crate::domain::upload_grant::{
    GRANT_LIFETIME_SECONDS, GrantError, UploadGrant, blob_log_id, parse_query,
};
use crate::ports::{
    DeviceAttestation, EventLogRecord, EventLogStore, LogFormat, LogIdIssuer, LogIdRegistry,
    LogStoreOutcome, MacError, MessageAuthenticator, NewOperationLog, OperationLogStore, Purged,
    RetentionSweep, Spends, StoreError,
};
use crate::request::{BodyError, parse_json};

/// An issued log ID lives this long before its upload (then the record expires).
pub const LOG_ID_LIFETIME_SECONDS: i64 = 24 * 3600;
/// Event logs other than the survey are kept this long from receipt (as operation logs).
pub const EVENT_LOG_RETENTION_SECONDS: i64 = 60 * 24 * 3600;
/// The event-log body limit (COCOA's `MAX_SIZE_EVENT_LOG_PAYLOAD_BYTES`).
pub const MAX_EVENT_LOG_BYTES: usize = 10 * 1024 * 1024;
/// Redaction labels in a fixed order, as `NewOperationLog::redactions` lists them.
fn redaction_pairs(counts: &Redactions) -> Vec<(&'static str, u64)> {
    counts.iter().map(|(kind, n)| (kind.label(), n)).collect()
}

fn random<const N: usize>() -> Result<[u8; N], MacError> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| MacError("no randomness".into()))?;
    Ok(bytes)
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Mac(#[from] MacError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A log ID as handed out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedLogId {
    pub id: LogId,
    pub expires_at: i64,
}

/// `issue-log-id`: log IDs for the app and the helpdesk, and COCOA's upload grants.
pub struct IssueLogIds<M, R> {
    pub mac: M,
    pub registry: R,
}

impl<M: MessageAuthenticator + Sync, R: LogIdRegistry + Sync> IssueLogIds<M, R> {
    pub async fn issue(&self, issuer: LogIdIssuer, now: i64) -> Result<IssuedLogId, IssueError> {
        let expires_at = now + LOG_ID_LIFETIME_SECONDS;
        // 80 random bits collide with negligible probability; a collision is simply redrawn.
        for _ in 0..3 {
            let random: [u8; LOG_ID_RANDOM_BYTES] = random()?;
            let mac = self.mac.generate_mac(&LogId::mac_message(&random)).await?;
            let id = LogId::from_mac(random, &mac);
            if self
                .registry
                .record_issued(&id.canonical(), issuer, now, expires_at)
                .await?
            {
                return Ok(IssuedLogId { id, expires_at });
            }
        }
        Err(IssueError::Store(StoreError("log ID collisions".into())))
    }

    /// COCOA's `sas_token`: a MAC'd, 10-minute, create-only grant for one blob-style upload.
    pub async fn grant_upload(&self, now: i64) -> Result<String, MacError> {
        let grant = UploadGrant {
            expires_at: now + GRANT_LIFETIME_SECONDS,
            nonce: random()?,
        };
        let mac = self.mac.generate_mac(&grant.mac_message()).await?;
        Ok(grant.to_query(&mac))
    }
}

/// Why an operation-log upload was refused; `http::accept_log_error` maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum AcceptLogError {
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    Upload(#[from] OperationLogError),
    #[error("Invalid log ID: {0}")]
    MalformedLogId(#[from] LogIdError),
    #[error("This log ID was not issued by this service")]
    ForgedLogId,
    #[error("This log ID is not known; ask for a new one")]
    UnknownLogId,
    #[error("This log ID has already been used")]
    UsedLogId,
    #[error("This log ID has expired; ask for a new one")]
    ExpiredLogId,
    #[error("A log is already stored under this name")]
    AlreadyStored,
    #[error("The upload grant is not valid: {0}")]
    InvalidGrant(&'static str),
    #[error("The blob name must be cocoa_log_{{uuid}}.zip in the log container")]
    InvalidBlobName,
    #[error(transparent)]
    Encoding(#[from] LogEncodingError),
    #[error(transparent)]
    Mac(#[from] MacError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AcceptLogError {
    /// A short label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Body(BodyError::TooLarge { .. }) => "too-large",
            Self::Body(_) => "malformed",
            Self::Upload(OperationLogError::NoConsent) => "no-consent",
            Self::Upload(_) => "invalid-upload",
            Self::MalformedLogId(_) => "malformed-log-id",
            Self::ForgedLogId => "forged-log-id",
            Self::UnknownLogId => "unknown-log-id",
            Self::UsedLogId => "used-log-id",
            Self::ExpiredLogId => "expired-log-id",
            Self::AlreadyStored => "already-stored",
            Self::InvalidGrant(_) => "invalid-grant",
            Self::InvalidBlobName => "invalid-blob-name",
            Self::Encoding(_) => "invalid-zip",
            Self::Mac(_) => "mac-unavailable",
            Self::Store(_) => "store-unavailable",
        }
    }
}

impl From<GrantError> for AcceptLogError {
    fn from(error: GrantError) -> Self {
        Self::InvalidGrant(match error {
            GrantError::TooLong => "too long",
            GrantError::Missing(what) | GrantError::Invalid(what) | GrantError::Duplicate(what) => {
                what
            }
        })
    }
}

/// What an accepted upload stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedLog {
    pub id: String,
    pub expires_at: i64,
    pub original_bytes: u64,
    pub stored_bytes: u64,
    pub redactions: Redactions,
}

/// `accept-logs`: consented operation logs, redacted, stored for at most 60 days.
pub struct AcceptLogs<M, R, S> {
    pub mac: M,
    pub registry: R,
    pub store: S,
}

impl<M, R, S> AcceptLogs<M, R, S>
where
    M: MessageAuthenticator + Sync,
    R: LogIdRegistry + Sync,
    S: OperationLogStore + Sync,
{
    /// `PUT /api/v1/logs/{logId}`. The body is checked first (a bad body leaves the ID unused, so
    /// the app can fix and retry), then the ID's MAC (no lookup for a forged ID), then its record;
    /// the log is stored and the ID used in one transaction. A used ID whose stored log is this
    /// very log (the retry of an upload whose answer was lost) is accepted again, storing nothing.
    pub async fn accept_json(
        &self,
        log_id: &str,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<AcceptedLog, AcceptLogError> {
        let id = LogId::parse(log_id)?;
        let upload: OperationLogUpload = parse_json(body, MAX_LOG_BODY_BYTES)?;
        let (log, redactions) = upload.accept(now)?;
        let mac = self
            .mac
            .generate_mac(&LogId::mac_message(id.random()))
            .await?;
        if !id.tag_matches(&mac) {
            return Err(AcceptLogError::ForgedLogId);
        }
        let canonical = id.canonical();
        let now_unix = now.unix_timestamp();
        let (stored, original_bytes) = encode_log(&log)?;
        let digest = log.digest()?;
        let accepted = |expires_at| AcceptedLog {
            id: canonical.clone(),
            expires_at,
            original_bytes,
            stored_bytes: stored.len() as u64,
            redactions: redactions.clone(),
        };
        match self.registry.lookup(&canonical).await? {
            None => return Err(AcceptLogError::UnknownLogId),
            Some(record) if record.used => {
                return self
                    .same_log_or(&canonical, &digest, AcceptLogError::UsedLogId)
                    .await
                    .map(accepted);
            }
            Some(record) if record.expires_at <= now_unix => {
                return Err(AcceptLogError::ExpiredLogId);
            }
            Some(_) => {}
        }
        let expires_at = log_expires_at(now_unix);
        let outcome = self
            .store
            .store(NewOperationLog {
                id: &canonical,
                format: LogFormat::Json,
                body: &stored,
                original_bytes,
                received_at: now_unix,
                expires_at,
                redactions: redaction_pairs(&redactions),
                digest,
                spends: Spends::IssuedLogId,
            })
            .await?;
        match outcome {
            LogStoreOutcome::Stored => Ok(accepted(expires_at)),
            LogStoreOutcome::StoredBefore { expires_at } => Ok(accepted(expires_at)),
            LogStoreOutcome::AlreadyStored | LogStoreOutcome::GrantUsed => {
                Err(AcceptLogError::UsedLogId)
            }
            // Used or expired between the lookup and the commit: say which, from a fresh read.
            LogStoreOutcome::IdNoLongerIssued => match self.registry.lookup(&canonical).await? {
                Some(record) if record.used => Err(AcceptLogError::UsedLogId),
                Some(record) if record.expires_at <= now_unix => Err(AcceptLogError::ExpiredLogId),
                Some(_) => Err(AcceptLogError::Store(StoreError(
                    "log ID changed during the upload; retry".into(),
                ))),
                None => Err(AcceptLogError::UnknownLogId),
            },
        }
    }

    /// COCOA's blob-style upload: `PUT {container}/cocoa_log_{uuid}.zip?{sas_token}`; the app's
    /// UUID is the log's name, a name is created once (Azure's `If-None-Match: *`), and a grant
    /// is used once, in the same transaction as the log. The retry of an upload whose answer was
    /// lost (the same name, the same log) is accepted again, storing and spending nothing.
    pub async fn accept_blob(
        &self,
        blob_name: &str,
        query: &str,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<AcceptedLog, AcceptLogError> {
        if body.len() > MAX_LOG_BODY_BYTES {
            return Err(BodyError::TooLarge {
                limit: MAX_LOG_BODY_BYTES,
            }
            .into());
        }
        let unchecked = parse_query(query)?;
        let now_unix = now.unix_timestamp();
        if !unchecked.grant.is_live(now_unix) {
            return Err(AcceptLogError::InvalidGrant("expired"));
        }
        if !self
            .mac
            .verify_mac(&unchecked.grant.mac_message(), &unchecked.mac)
            .await?
        {
            return Err(AcceptLogError::InvalidGrant("signature"));
        }
        let uuid = blob_log_id(blob_name).ok_or(AcceptLogError::InvalidBlobName)?;
        let (zip, redactions, original_bytes) = redact_zip(body)?;
        let expires_at = log_expires_at(now_unix);
        let outcome = self
            .store
            .store(NewOperationLog {
                id: &uuid,
                format: LogFormat::Zip,
                body: &zip,
                original_bytes,
                received_at: now_unix,
                expires_at,
                redactions: redaction_pairs(&redactions),
                digest: sha256(&zip),
                spends: Spends::UploadGrant {
                    nonce: unchecked.grant.nonce,
                    expires_at: unchecked.grant.expires_at,
                },
            })
            .await?;
        let accepted = |expires_at| AcceptedLog {
            id: uuid.clone(),
            expires_at,
            original_bytes,
            stored_bytes: zip.len() as u64,
            redactions: redactions.clone(),
        };
        match outcome {
            LogStoreOutcome::Stored => Ok(accepted(expires_at)),
            LogStoreOutcome::StoredBefore { expires_at } => Ok(accepted(expires_at)),
            LogStoreOutcome::GrantUsed => Err(AcceptLogError::InvalidGrant("already used")),
            LogStoreOutcome::AlreadyStored | LogStoreOutcome::IdNoLongerIssued => {
                Err(AcceptLogError::AlreadyStored)
            }
        }
    }

    /// The stored log's expiry when the log under `id` is this one (`digest`), else `refusal`.
    async fn same_log_or(
        &self,
        id: &str,
        digest: &[u8; 32],
        refusal: AcceptLogError,
    ) -> Result<i64, AcceptLogError> {
        match self.store.stored_before(id, digest).await? {
            Some(expires_at) => Ok(expires_at),
            None => Err(refusal),
        }
    }
}

/// Why an event-log request was refused (COCOA's statuses: 400, 413; ours: 410, 503).
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    #[error("Content-Length is missing or invalid")]
    ContentLength,
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("Invalid Device")]
    InvalidDevice,
    #[error("Invalid survey: {0}")]
    InvalidSurvey(#[from] SurveyError),
    #[error("The survey has closed")]
    SurveyClosed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EventLogError {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ContentLength => "content-length",
            Self::Body(BodyError::TooLarge { .. }) => "too-large",
            Self::Body(_) => "malformed",
            Self::InvalidDevice => "invalid-device",
            Self::InvalidSurvey(_) => "invalid-survey",
            Self::SurveyClosed => "survey-closed",
            Self::Store(_) => "store-unavailable",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventLogSubmission {
    idempotency_key: String,
    platform: String,
    app_package_name: String,
    device_verification_payload: String,
    event_logs: Vec<EventLogEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventLogEntry {
    has_consent: bool,
    epoch: i64,
    #[serde(rename = "type")]
    kind: String,
    subtype: String,
    content: Box<RawValue>,
}

/// The survey's entry type and subtype (COCOA v3.0.0 `SurveyService`).
pub const SURVEY_TYPE: &str = "survey";

/// What an accepted event-log request did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventLogReport {
    pub received: usize,
    pub without_consent: usize,
    pub stored: usize,
    pub surveys: usize,
}

/// `accept-event-logs`: COCOA's `PUT /api/v1/event_log`.
pub struct AcceptEventLogs<A, S> {
    pub attestation: A,
    pub store: S,
    /// Survey answers are kept until this time (unix seconds; seed 004: two years after the final
    /// report) and refused from then on.
    pub survey_until: i64,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl<A: DeviceAttestation + Sync, S: EventLogStore + Sync> AcceptEventLogs<A, S> {
    /// COCOA's order: Content-Length, body size, JSON, device check, then each consented entry.
    pub async fn accept(
        &self,
        content_length: Option<&str>,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<EventLogReport, EventLogError> {
        let declared = content_length
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or(EventLogError::ContentLength)?;
        if declared > MAX_EVENT_LOG_BYTES as i64 {
            return Err(BodyError::TooLarge {
                limit: MAX_EVENT_LOG_BYTES,
            }
            .into());
        }
        let submission: EventLogSubmission = parse_json(body, MAX_EVENT_LOG_BYTES)?;
        let texts: Vec<EventLogText> = submission
            .event_logs
            .iter()
            .map(|log| EventLogText {
                has_consent: log.has_consent,
                epoch: log.epoch,
                kind: log.kind.clone(),
                subtype: log.subtype.clone(),
                content_json: compact_json(log.content.get()),
            })
            .collect();
        let subject = AttestationSubject {
            platform: submission.platform.clone(),
            payload: submission.device_verification_payload.clone(),
            clear_text: ClearTextSource::EventLog {
                idempotency_key: submission.idempotency_key.clone(),
                app_package_name: submission.app_package_name.clone(),
                logs: texts,
            },
        };
        self.attestation
            .attest(&subject)
            .await
            .map_err(|_| EventLogError::InvalidDevice)?;
        let ClearTextSource::EventLog { logs: texts, .. } = subject.clear_text else {
            return Err(EventLogError::InvalidDevice);
        };
        let now_unix = now.unix_timestamp();
        let mut report = EventLogReport {
            received: texts.len(),
            ..EventLogReport::default()
        };
        let mut records = Vec::with_capacity(texts.len());
        for (entry, text) in submission.event_logs.iter().zip(&texts) {
            if !entry.has_consent {
                report.without_consent += 1;
                continue;
            }
            let mut content: serde_json::Value = serde_json::from_str(entry.content.get())
                .map_err(|_| {
                    EventLogError::Body(BodyError::Malformed {
                        what: "content is not JSON",
                        line: 0,
                        column: 0,
                    })
                })?;
            let expires_at = if entry.kind == SURVEY_TYPE {
                parse_survey(&content)?;
                if now_unix >= self.survey_until {
                    return Err(EventLogError::SurveyClosed);
                }
                report.surveys += 1;
                self.survey_until
            } else {
                now_unix + EVENT_LOG_RETENTION_SECONDS
            };
            // The id is COCOA's, over the entry as sent; what is stored is redacted.
            let seed = format!("{}{}", submission.idempotency_key, event_log_text(text));
            let id = hex(digest(&SHA256, seed.as_bytes()).as_ref());
            let mut redactions = Redactions::default();
            redact_json(&mut content, &mut redactions);
            records.push(EventLogRecord {
                id,
                epoch: entry.epoch,
                kind: entry.kind.clone(),
                subtype: entry.subtype.clone(),
                content: if redactions.total() == 0 {
                    text.content_json.clone()
                } else {
                    content.to_string()
                },
                created: now_unix,
                expires_at,
            });
        }
        report.stored = self.store.put_new(&records).await?;
        Ok(report)
    }
}

/// `enforce-retention`: every place whose items carry a deadline, swept at `now`.
pub struct EnforceRetention<T, F> {
    pub tables: Vec<T>,
    pub files: Vec<F>,
}

impl<T: RetentionSweep + Sync, F: RetentionSweep + Sync> EnforceRetention<T, F> {
    /// Sweeps every place, even after one fails; returns what each deleted and the failures.
    pub async fn run(&self, now: i64) -> (Vec<Purged>, Vec<StoreError>) {
        let mut purged = Vec::new();
        let mut failures = Vec::new();
        for result in
            futures_util::future::join_all(self.tables.iter().map(|t| t.purge_expired(now))).await
        {
            match result {
                Ok(p) => purged.push(p),
                Err(e) => failures.push(e),
            }
        }
        for result in
            futures_util::future::join_all(self.files.iter().map(|f| f.purge_expired(now))).await
        {
            match result {
                Ok(p) => purged.push(p),
                Err(e) => failures.push(e),
            }
        }
        (purged, failures)
    }
}
