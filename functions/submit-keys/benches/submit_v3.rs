//! The handler's own work per 14-key v3 submission, as app v3.0.0 sends it: parsing, validation,
//! dsos, key ids, the echo; with the AWS and HER-SYS calls replaced by ports that answer at once.
//!
//! `cargo bench -p submit-keys --bench submit_v3`

use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use lambda_http::{Body, Request};
use shared::adapters::attestation::PermitAllDevices;
use shared::domain::diagnosis::{
    DayWindow, SubmissionDigest, SubmissionRules, VerificationPayload,
};
use shared::domain::exposure_key::ExposureKey;
use shared::ports::{
    ExposureKeyStore, StoreError, StoreOutcome, SubmissionVerifier, VerificationError,
};
use shared::submission::SubmitKeys;

/// HER-SYS says yes at once: the bench measures the handler, not the network.
struct AnswersAtOnce;

impl SubmissionVerifier for AnswersAtOnce {
    async fn verify(
        &self,
        _: &VerificationPayload,
        _: &SubmissionDigest,
        _: time::OffsetDateTime,
    ) -> Result<(), VerificationError> {
        Ok(())
    }
}

impl ExposureKeyStore for AnswersAtOnce {
    async fn store(&self, keys: &[ExposureKey], _: i64) -> Result<StoreOutcome, StoreError> {
        Ok(StoreOutcome {
            stored: std::hint::black_box(keys).len(),
            already_present: 0,
        })
    }
}

fn body() -> String {
    let now = time::OffsetDateTime::now_utc();
    let midnight = now.unix_timestamp() / 86_400 * 86_400;
    let keys: Vec<_> = (0..14)
        .map(|day| {
            serde_json::json!({
                "keyData": base64::engine::general_purpose::STANDARD.encode([day as u8 + 1; 16]),
                "rollingStartNumber": (midnight - day * 86_400) / 600,
                "rollingPeriod": 144,
                "reportType": 1,
            })
        })
        .collect();
    let onset = time::OffsetDateTime::from_unix_timestamp(midnight - 3 * 86_400)
        .unwrap_or(now)
        .date();
    serde_json::json!({
        "hasSymptom": true,
        "onsetOfSymptomOrTestDate": format!("{onset}T00:00:00.000+09:00"),
        "keys": keys,
        "regions": ["440"],
        "platform": "android",
        "deviceVerificationPayload": "x".repeat(5000),
        "appPackageName": "jp.go.mhlw.covid19radar",
        "verificationPayload": "99999910",
        "idempotency_key": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "padding": base64::engine::general_purpose::STANDARD.encode(vec![7u8; 1100]),
    })
    .to_string()
}

fn request(body: &str) -> Request {
    let mut request = Request::new(Body::Text(body.to_owned()));
    *request.method_mut() = lambda_http::http::Method::PUT;
    *request.uri_mut() =
        lambda_http::http::Uri::from_static("https://api.example.invalid/api/v3/diagnosis");
    request
}

fn bench(c: &mut Criterion) {
    let service = SubmitKeys {
        rules: SubmissionRules {
            supported_regions: vec!["440".into()],
            symptom_onset_window: DayWindow { from: -3, to: 10 },
            test_date_window: DayWindow { from: -3, to: 7 },
        },
        verifier: AnswersAtOnce,
        attestation: PermitAllDevices,
        store: AnswersAtOnce,
    };
    let body = body();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    // Sanity: the bench request is accepted, with the keys inside the window kept.
    let response = runtime
        .block_on(submit_keys::handle(&service, request(&body)))
        .expect("infallible");
    assert_eq!(response.status(), 200);
    c.bench_function("v3 submission, 14 keys, handler only", |b| {
        b.to_async(&runtime)
            .iter(|| submit_keys::handle(&service, request(&body)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
