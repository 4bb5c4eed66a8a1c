//! The handler's own work per small consented operation-log upload, `PUT /api/v1/logs/{logId}`
//! with 50 entries (about 13 KiB; every tenth carries an e-mail address, an IP and an 8-digit
//! number for the redactor): the log ID parsed, the body parsed and checked, every value
//! redacted, the log ID's MAC checked, the log serialized and deflated, the 201 JSON. The MAC is
//! a local HMAC-SHA-256 (`shared::adapters::local_mac`) in place of KMS `GenerateMac`; the log-ID registry (an
//! issued, unused ID) and the log store are ports that answer at once. (The 5 MiB upload is
//! measured by `cargo bench -p e2e --bench log_upload`.)
//!
//! `cargo bench -p accept-logs --bench json_upload`

use criterion::{Criterion, criterion_group, criterion_main};
use lambda_http::{Body, Request};
use ring::hmac;
use serde_json::json;
use shared::adapters::local_mac::LocalMac;
use shared::domain::log_id::LogId;
use shared::logs::AcceptLogs;
use shared::ports::{
    LogIdIssuer, LogIdRecord, LogIdRegistry, LogStoreOutcome, LogSummary, NewOperationLog,
    OperationLogStore, StoreError,
};

const ENTRIES: u64 = 50;

/// DynamoDB answers at once: every ID is issued and unused, every log is stored.
struct AnswersAtOnce;

impl LogIdRegistry for AnswersAtOnce {
    async fn record_issued(
        &self,
        _: &str,
        _: LogIdIssuer,
        _: i64,
        _: i64,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn lookup(&self, _: &str) -> Result<Option<LogIdRecord>, StoreError> {
        Ok(Some(LogIdRecord {
            used: false,
            expires_at: i64::MAX,
        }))
    }
}

impl OperationLogStore for AnswersAtOnce {
    async fn store(&self, log: NewOperationLog<'_>) -> Result<LogStoreOutcome, StoreError> {
        std::hint::black_box(log.body);
        Ok(LogStoreOutcome::Stored)
    }

    async fn stored_before(&self, _: &str, _: &[u8; 32]) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }

    async fn get(&self, _: &str, _: i64) -> Result<Option<(LogSummary, Vec<u8>)>, StoreError> {
        Ok(None)
    }

    async fn list(&self, _: i64, _: i64) -> Result<Vec<LogSummary>, StoreError> {
        Ok(Vec::new())
    }

    async fn delete(&self, _: &str) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// The upload as the app sends it, with the entry shapes of `tests/benches/log_upload.rs`.
fn upload() -> String {
    let entries: Vec<_> = (0..ENTRIES)
        .map(|i| {
            if i.is_multiple_of(10) {
                json!({"time": "2026-11-23T08:59:00Z", "operation": format!("HttpDataService.PutEventLog #{i}"),
                       "succeeded": false,
                       "inputs": {"note": format!("user wrote mail{i}@example.com and number {:08}", 12_345_678 + i)},
                       "outputs": {"status": 503, "server": format!("10.0.{}.{}", i % 250, i % 200)}, "state": {"retry": i % 3}})
            } else {
                json!({"time": "2026-11-23T08:59:00Z", "operation": "ExposureDetectionBackgroundService.ExposureDetectionAsync",
                       "succeeded": true,
                       "inputs": {"diagnosisKeysFiles": i % 17, "configurationVersion": "2.1.0"},
                       "outputs": {"matchCount": 0, "elapsedMs": i % 1000}, "state": {"enabled": true, "bluetooth": "On"}})
            }
        })
        .collect();
    json!({"consent": true, "consentedAt": "2026-11-23T09:00:00Z",
           "logInfo": {"appVersion": "3.0.0", "os": "Android", "osVersion": "13", "deviceModel": "Pixel 7"},
           "entries": entries})
    .to_string()
}

fn request(uri: &str, body: &str) -> Request {
    let mut request = Request::new(Body::Text(body.to_owned()));
    *request.method_mut() = lambda_http::http::Method::PUT;
    *request.uri_mut() = uri.parse().expect("URI");
    request
}

fn bench(c: &mut Criterion) {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &[7; 32]);
    let random = [3; 10];
    let mac = <[u8; 32]>::try_from(hmac::sign(&key, &LogId::mac_message(&random)).as_ref())
        .expect("32 bytes");
    // The ID as the user reads it out to the helpdesk and the app puts it in the path.
    let uri = format!(
        "https://api.example.invalid/api/v1/logs/{}",
        LogId::from_mac(random, &mac)
    );
    let service = AcceptLogs {
        mac: LocalMac::new(&[7; 32]),
        registry: AnswersAtOnce,
        store: AnswersAtOnce,
    };
    let container = "inquiry-logs";
    let body = upload();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    // Sanity: the upload is accepted, and the redactor found what was put there.
    let response = runtime
        .block_on(accept_logs::handle(
            &service,
            container,
            request(&uri, &body),
        ))
        .expect("infallible");
    assert_eq!(response.status(), 201);
    let answer: serde_json::Value = serde_json::from_slice(response.body().as_ref()).expect("JSON");
    assert!(
        answer["redacted"]
            .as_object()
            .is_some_and(|r| !r.is_empty()),
        "{answer}"
    );
    println!("upload: {ENTRIES} entries, {} bytes", body.len());
    c.bench_function("PUT /api/v1/logs/{logId}, 50 entries, handler only", |b| {
        b.to_async(&runtime)
            .iter(|| accept_logs::handle(&service, container, request(&uri, &body)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
