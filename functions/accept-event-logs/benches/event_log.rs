//! The handler's own work per `PUT /api/v1/event_log`, as COCOA sends it: Content-Length, body
//! parse, the clear text of every entry (what the device attestation is checked against), then
//! for each consented entry its content parsed, its id (SHA-256 over idempotency key and clear
//! text) and the redaction of its content. Two bodies, each with a 5,000-byte
//! `deviceVerificationPayload` (a SafetyNet JWS's size):
//! - event logs: four entries, three `ExposureNotification`/`ExposureNotified` (one without
//!   consent, so dropped) and one `ExposureNotification`/`ExposureData` with daily summaries and
//!   exposure windows;
//! - the end-of-service survey: one `survey` entry, checked against the survey's schema.
//!
//! The device attestation and the DynamoDB store are ports that answer at once
//! (`PermitAllDevices`, as with attestation switched off).
//!
//! `cargo bench -p accept-event-logs --bench event_log`

use criterion::{Criterion, criterion_group, criterion_main};
use lambda_http::{Body, Request};
use serde_json::{Value, json};
use shared::adapters::attestation::PermitAllDevices;
use shared::logs::AcceptEventLogs;
use shared::ports::{EventLogRecord, EventLogStore, StoreError};

/// DynamoDB stores every entry at once: the bench measures the handler, not the network.
struct AnswersAtOnce;

impl EventLogStore for AnswersAtOnce {
    async fn put_new(&self, entries: &[EventLogRecord]) -> Result<usize, StoreError> {
        Ok(std::hint::black_box(entries).len())
    }
}

const EPOCH: i64 = 1_669_000_000;

fn notified(consent: bool, epoch: i64) -> Value {
    json!({"hasConsent": consent, "epoch": epoch, "type": "ExposureNotification",
           "subtype": "ExposureNotified",
           "content": {"notifiedTimeInMillis": epoch * 1000 + 123}})
}

fn exposure_data() -> Value {
    let day = |n: i64| (EPOCH / 86_400 - n) * 86_400_000;
    let summaries: Vec<_> = (0..3)
        .map(|n| {
            json!({"DateMillisSinceEpoch": day(n),
                   "DaySummary": {"MaximumScore": 1500.0, "ScoreSum": 2400.0, "WeightedDurationSum": 1800.0},
                   "ConfirmedClinicalDiagnosisSummary": {"MaximumScore": 0.0, "ScoreSum": 0.0, "WeightedDurationSum": 0.0},
                   "ConfirmedTestSummary": {"MaximumScore": 1500.0, "ScoreSum": 2400.0, "WeightedDurationSum": 1800.0},
                   "RecursiveSummary": {"MaximumScore": 0.0, "ScoreSum": 0.0, "WeightedDurationSum": 0.0},
                   "SelfReportedSummary": {"MaximumScore": 0.0, "ScoreSum": 0.0, "WeightedDurationSum": 0.0}})
        })
        .collect();
    let windows: Vec<_> = (0..3)
        .map(|n| {
            json!({"CalibrationConfidence": 3, "DateMillisSinceEpoch": day(n), "Infectiousness": 1,
                   "ReportType": 1,
                   "ScanInstances": [
                       {"MinAttenuationDb": 55, "SecondsSinceLastScan": 300, "TypicalAttenuationDb": 60},
                       {"MinAttenuationDb": 58, "SecondsSinceLastScan": 240, "TypicalAttenuationDb": 63},
                       {"MinAttenuationDb": 61, "SecondsSinceLastScan": 180, "TypicalAttenuationDb": 66}]})
        })
        .collect();
    json!({"hasConsent": true, "epoch": EPOCH + 60, "type": "ExposureNotification",
           "subtype": "ExposureData",
           "content": {"daily_summaries": summaries, "exposure_windows": windows}})
}

fn survey() -> Value {
    json!({"hasConsent": true, "epoch": EPOCH, "type": "survey", "subtype": "survey",
           "content": {"q1": 4, "q2": 2, "start_date": 1_640_995_200,
                       "exposure_data": {"daily_summaries": [
                           {"DateMillisSinceEpoch": 1_649_289_600_000_i64, "ExposureDetected": 1},
                           {"DateMillisSinceEpoch": 1_649_376_000_000_i64, "ExposureDetected": 0},
                           {"DateMillisSinceEpoch": 1_649_462_400_000_i64, "ExposureDetected": 0}]}}})
}

fn body(logs: Vec<Value>) -> String {
    json!({"idempotencyKey": "0f8fad5b-d9cb-469f-a165-70867728950e", "platform": "android",
           "appPackageName": "jp.go.mhlw.covid19radar",
           "deviceVerificationPayload": "x".repeat(5000),
           "eventLogs": logs})
    .to_string()
}

fn request(body: &str) -> Request {
    let mut request = Request::new(Body::Text(body.to_owned()));
    *request.method_mut() = lambda_http::http::Method::PUT;
    *request.uri_mut() =
        lambda_http::http::Uri::from_static("https://api.example.invalid/api/v1/event_log");
    request.headers_mut().insert(
        "content-length",
        lambda_http::http::HeaderValue::from(body.len()),
    );
    request
}

fn bench(c: &mut Criterion) {
    let service = AcceptEventLogs {
        attestation: PermitAllDevices,
        store: AnswersAtOnce,
        survey_until: i64::MAX,
    };
    let event_logs = body(vec![
        notified(true, EPOCH),
        notified(false, EPOCH + 10),
        notified(true, EPOCH + 20),
        exposure_data(),
    ]);
    let survey = body(vec![survey()]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    // Sanity: both requests are accepted (201), the entry without consent dropped.
    for body in [&event_logs, &survey] {
        let response = runtime
            .block_on(accept_event_logs::handle(&service, request(body)))
            .expect("infallible");
        assert_eq!(response.status(), 201);
    }
    let now = time::OffsetDateTime::now_utc();
    let length = event_logs.len().to_string();
    let report = runtime
        .block_on(service.accept(Some(&length), event_logs.as_bytes(), now))
        .expect("accepted");
    assert_eq!(
        (report.received, report.without_consent, report.stored),
        (4, 1, 3)
    );
    let length = survey.len().to_string();
    let report = runtime
        .block_on(service.accept(Some(&length), survey.as_bytes(), now))
        .expect("accepted");
    assert_eq!((report.stored, report.surveys), (1, 1));
    println!(
        "bodies: event logs {} bytes, survey {} bytes",
        event_logs.len(),
        survey.len()
    );
    c.bench_function(
        "event logs, 4 entries (1 without consent), handler only",
        |b| {
            b.to_async(&runtime)
                .iter(|| accept_event_logs::handle(&service, request(&event_logs)))
        },
    );
    c.bench_function("end-of-service survey, 1 entry, handler only", |b| {
        b.to_async(&runtime)
            .iter(|| accept_event_logs::handle(&service, request(&survey)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
