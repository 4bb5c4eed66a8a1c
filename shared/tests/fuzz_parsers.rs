//! Fuzz targets for every parser that reads untrusted bytes: the submission bodies (v3, v2) and
//! their validation, the operation-log upload with redaction, the survey, the log-ID and upload-
//! grant decoders, and the export-zip parser `export-verify` uses. Each must never panic, and a
//! parse that succeeds must be consistent (a decoded log ID prints back to what it parses from).
//!
//! Under `cargo test` (stable) each target runs on random inputs for a bounded number of
//! iterations (bolero's default; `BOLERO_RANDOM_ITERATIONS` sets it). Coverage-guided long runs
//! (libFuzzer with AddressSanitizer, nightly): `cargo install cargo-bolero`, then
//! `cargo bolero test <target> -p shared --toolchain nightly --profile dev -T 10min`
//! (the corpus is kept in `shared/tests/__fuzz__/`, which git ignores).

use shared::domain::diagnosis::{DayWindow, SubmissionRules, V2Submission, V3Submission};
use shared::domain::export::parse_export_zip;
use shared::domain::log_id::LogId;
use shared::domain::operation_log::{OperationLogUpload, redact_zip};
use shared::domain::redaction::redact_text;
use shared::domain::survey::parse_survey;
use shared::domain::upload_grant::{blob_log_id, parse_query};
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
