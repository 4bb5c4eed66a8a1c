//! Fuzz targets for every parser that reads untrusted bytes: the submission bodies (v3, v2) and
//! their validation, the operation-log upload with redaction, the event-log submission (`PUT
//! /api/v1/event_log`) through its use case, the survey, the log-ID and upload-grant decoders,
//! and the export-zip parser `export-verify` uses. Each must never panic, and a parse that
//! succeeds must be consistent (a decoded log ID prints back to what it parses from; an accepted
//! event-log request stores exactly its consented entries, redacted, and the same again on a
//! retry).
//!
//! Under `cargo test` (stable) each target runs on random inputs for a bounded number of
//! iterations (bolero's default; `BOLERO_RANDOM_ITERATIONS` sets it). Coverage-guided long runs
//! (libFuzzer with AddressSanitizer, nightly): `cargo install cargo-bolero`, then
//! `cargo bolero test <target> -p shared --toolchain nightly --profile dev -T 10min`
//! (the corpus is kept in `shared/tests/__fuzz__/`, which git ignores).

use std::sync::Mutex;

use shared::adapters::attestation::PermitAllDevices;
use shared::domain::diagnosis::{DayWindow, SubmissionRules, V2Submission, V3Submission};
use shared::domain::export::parse_export_zip;
use shared::domain::log_id::LogId;
use shared::domain::operation_log::{OperationLogUpload, redact_zip};
use shared::domain::redaction::{Redactions, redact_json, redact_text};
use shared::domain::survey::parse_survey;
use shared::domain::upload_grant::{blob_log_id, parse_query};
use shared::logs::{AcceptEventLogs, EVENT_LOG_RETENTION_SECONDS, EventLogReport, SURVEY_TYPE};
use shared::ports::{EventLogRecord, EventLogStore, StoreError};
use shared::request::parse_json;
use time::macros::datetime;

fn rules() -> SubmissionRules {
    SubmissionRules {
        supported_regions: vec!["440".into()],
        symptom_onset_window: DayWindow::parse("-3..10").expect("window"),
        test_date_window: DayWindow::parse("-3..7").expect("window"),
    }
}

const LIMIT: usize = 64 * 1024;

/// A well-formed input changed by the fuzzer's bytes, three at a time: (operation, position,
/// value) overwrite, insert or delete one byte. Random bytes alone are almost never JSON; this
/// reaches the validation behind the parser.
fn mutate(seed: &[u8], input: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for chunk in input.chunks_exact(3) {
        let (op, position, value) = (chunk[0], chunk[1], chunk[2]);
        let at = usize::from(position) * out.len() / 256;
        match op % 3 {
            0 if at < out.len() => out[at] = value,
            1 => out.insert(at.min(out.len()), value),
            2 if at < out.len() => {
                out.remove(at);
            }
            _ => {}
        }
    }
    out
}

const V3_SEED: &str = r#"{"hasSymptom":true,"onsetOfSymptomOrTestDate":"2026-11-20T00:00:00.000+09:00","keys":[{"keyData":"z9Uk1Q0OJqf6dqTNvlOZ1A==","rollingStartNumber":2956608,"rollingPeriod":144,"reportType":1}],"regions":["440"],"platform":"android","deviceVerificationPayload":"x","appPackageName":"jp.go.mhlw.covid19radar","verificationPayload":"12345678","idempotency_key":"k","padding":""}"#;
const V2_SEED: &str = r#"{"keys":[{"keyData":"z9Uk1Q0OJqf6dqTNvlOZ1A==","rollingStartNumber":2956608,"rollingPeriod":144}],"regions":["440"],"platform":"ios","deviceVerificationPayload":"x","appPackageName":"jp.go.mhlw.covid19radar","verificationPayload":"12345678","padding":""}"#;
const LOG_SEED: &str = r#"{"consent":true,"consentedAt":"2026-11-23T09:00:00Z","logInfo":{"appVersion":"3.0.0","os":"iOS","osVersion":"16.1","deviceModel":"iPhone14,2"},"entries":[{"time":"2026-11-23T08:59:00Z","operation":"x 12345678","succeeded":false,"inputs":{"m":"a@b.jp"},"outputs":{"ip":"10.0.0.1"},"state":null}]}"#;
const EVENT_LOG_SEED: &str = r#"{"idempotencyKey":"0f8fad5b-d9cb-469f-a165-70867728950e","platform":"android","appPackageName":"jp.go.mhlw.covid19radar","deviceVerificationPayload":"x","eventLogs":[{"hasConsent":true,"epoch":1669000000,"type":"ExposureNotification","subtype":"ExposureNotified","content":{"notifiedTimeInMillis":1669000000123}},{"hasConsent":false,"epoch":1669000010,"type":"ExposureNotification","subtype":"ExposureNotified","content":{"notifiedTimeInMillis":1669000010123}},{"hasConsent":true,"epoch":1669000020,"type":"ExposureNotification","subtype":"ExposureData","content":{"note":"a@b.jp 12345678","n":12345678}},{"hasConsent":true,"epoch":1669000030,"type":"survey","subtype":"survey","content":{"q1":1,"q2":2,"start_date":1640995200,"exposure_data":{"daily_summaries":[{"DateMillisSinceEpoch":1649289600000,"ExposureDetected":1}]}}}]}"#;
const SURVEY_SEED: &str = r#"{"q1":1,"q2":2,"start_date":1640995200,"exposure_data":{"daily_summaries":[{"DateMillisSinceEpoch":1649289600000,"ExposureDetected":1}]}}"#;

#[test]
fn v3_submission() {
    bolero::check!().for_each(|input: &[u8]| {
        let bytes = &mutate(V3_SEED.as_bytes(), input);
        if let Ok(mut submission) = parse_json::<V3Submission>(bytes, LIMIT) {
            let _ = submission.accept(&rules(), datetime!(2026-11-23 10:00 UTC));
        }
    });
}

#[test]
fn v2_submission() {
    bolero::check!().for_each(|input: &[u8]| {
        let bytes = &mutate(V2_SEED.as_bytes(), input);
        if let Ok(submission) = parse_json::<V2Submission>(bytes, LIMIT) {
            let _ = submission.accept(&rules(), datetime!(2026-11-23 10:00 UTC));
        }
    });
}

#[test]
fn operation_log_upload_and_redaction() {
    bolero::check!().for_each(|input: &[u8]| {
        let bytes = &mutate(LOG_SEED.as_bytes(), input);
        if let Ok(upload) = parse_json::<OperationLogUpload>(bytes, LIMIT) {
            let _ = upload.accept(datetime!(2026-11-23 10:00 UTC));
        }
        let text = String::from_utf8_lossy(bytes);
        let (once, _) = redact_text(&text);
        let (twice, again) = redact_text(&once);
        assert_eq!(once, twice, "redaction is idempotent");
        assert_eq!(again.total(), 0);
        let _ = redact_zip(input);
    });
}

/// Keeps what the use case hands to DynamoDB, call by call, so the target can check it.
#[derive(Default)]
struct KeptEventLogs(Mutex<Vec<Vec<EventLogRecord>>>);

impl EventLogStore for KeptEventLogs {
    async fn put_new(&self, entries: &[EventLogRecord]) -> Result<usize, StoreError> {
        self.0.lock().expect("lock").push(entries.to_vec());
        Ok(entries.len())
    }
}

/// The entries as sent, read independently of the use case (its own field types, so it reads
/// every body the use case accepts).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SentEventLogs {
    event_logs: Vec<SentEventLog>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SentEventLog {
    has_consent: bool,
    epoch: i64,
    #[serde(rename = "type")]
    kind: String,
    subtype: String,
}

/// `PUT /api/v1/event_log`'s body through `AcceptEventLogs::accept` (the parse and validation
/// the handler calls), attestation permitting every device. A refused request stores nothing; an
/// accepted one stores exactly its consented entries, in order, each under a SHA-256 hex id,
/// with valid, fully redacted JSON content (a survey's still valid against the survey's
/// schema) and the right retention; a second run of the same request (the app's retry) gives the
/// same answer and the same records.
#[test]
fn event_log_submission() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let now = datetime!(2026-11-23 10:00 UTC);
    let survey_until = datetime!(2027-03-31 15:00 UTC).unix_timestamp();
    let accept = |bytes: &[u8]| {
        let service = AcceptEventLogs {
            attestation: PermitAllDevices,
            store: KeptEventLogs::default(),
            survey_until,
        };
        let length = bytes.len().to_string();
        let result = runtime.block_on(service.accept(Some(&length), bytes, now));
        let kept = service.store.0.into_inner().expect("lock");
        (result, kept)
    };
    bolero::check!().for_each(|input: &[u8]| {
        let bytes = &mutate(EVENT_LOG_SEED.as_bytes(), input);
        let (result, kept) = accept(bytes);
        let (again, kept_again) = accept(bytes);
        let report: EventLogReport = match (result, again) {
            (Ok(report), Ok(again)) => {
                assert_eq!(report, again, "a retry is answered the same");
                report
            }
            (Err(error), Err(again)) => {
                assert_eq!(error.to_string(), again.to_string());
                assert!(kept.is_empty(), "a refused request stores nothing");
                return;
            }
            (result, again) => panic!(
                "a retry is answered differently: {:?} then {:?}",
                result.map_err(|e| e.kind()),
                again.map_err(|e| e.kind())
            ),
        };
        assert_eq!(kept, kept_again, "a retry stores the same records");
        let [records] = kept.as_slice() else {
            panic!("an accepted request is stored in one call");
        };
        let sent: SentEventLogs =
            serde_json::from_slice(bytes).expect("an accepted body reads as sent");
        let consented: Vec<&SentEventLog> =
            sent.event_logs.iter().filter(|e| e.has_consent).collect();
        assert_eq!(report.received, sent.event_logs.len());
        assert_eq!(
            report.without_consent,
            sent.event_logs.len() - consented.len()
        );
        assert_eq!(report.stored, records.len());
        assert_eq!(
            records.len(),
            consented.len(),
            "exactly the consented entries"
        );
        assert_eq!(
            report.surveys,
            consented.iter().filter(|e| e.kind == SURVEY_TYPE).count()
        );
        for (record, entry) in records.iter().zip(&consented) {
            assert_eq!(
                (record.epoch, record.kind.as_str(), record.subtype.as_str()),
                (entry.epoch, entry.kind.as_str(), entry.subtype.as_str())
            );
            assert!(
                record.id.len() == 64
                    && record
                        .id
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "the id is lowercase SHA-256 hex"
            );
            assert_eq!(record.created, now.unix_timestamp());
            let mut content: serde_json::Value =
                serde_json::from_str(&record.content).expect("stored content is JSON");
            if record.kind == SURVEY_TYPE {
                assert_eq!(record.expires_at, survey_until);
                assert!(
                    parse_survey(&content).is_ok(),
                    "a stored survey re-validates"
                );
            } else {
                assert_eq!(
                    record.expires_at,
                    now.unix_timestamp() + EVENT_LOG_RETENTION_SECONDS
                );
            }
            let mut left = Redactions::default();
            redact_json(&mut content, &mut left);
            assert_eq!(left.total(), 0, "stored content is fully redacted");
        }
    });
}

#[test]
fn survey_content() {
    bolero::check!().for_each(|input: &[u8]| {
        let bytes = &mutate(SURVEY_SEED.as_bytes(), input);
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) {
            let _ = parse_survey(&value);
        }
    });
}

#[test]
fn log_ids_and_upload_grants() {
    bolero::check!().for_each(|bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        if let Ok(id) = LogId::parse(&text) {
            assert_eq!(
                LogId::parse(&id.to_string()),
                Ok(id),
                "an ID prints back to itself"
            );
            assert_eq!(LogId::parse(&id.canonical()), Ok(id));
        }
        let _ = parse_query(&text);
        if let Some(uuid) = blob_log_id(&text) {
            assert_eq!(uuid.len(), 36);
        }
    });
}

#[test]
fn export_zip() {
    bolero::check!().for_each(|bytes: &[u8]| {
        let _ = parse_export_zip(bytes);
    });
}
