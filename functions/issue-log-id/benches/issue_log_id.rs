//! The handler's own work per `POST /api/v1/logs` (the app asking for a log ID, empty body): the
//! route, 80 random bits, their MAC, the log ID's text forms and the 201 JSON; and per COCOA's
//! `GET /api/inquirylog` (the upload grant): the constant-time API-key check, a nonce, its MAC and
//! the `sas_token` JSON. The MAC is a local HMAC-SHA-256 (`shared::adapters::local_mac`) in place of KMS
//! `GenerateMac`; the log-ID registry is a port that records at once.
//!
//! `cargo bench -p issue-log-id --bench issue_log_id`

use criterion::{Criterion, criterion_group, criterion_main};
use lambda_http::{Body, Request};
use shared::adapters::local_mac::LocalMac;
use shared::logs::IssueLogIds;
use shared::ports::{LogIdIssuer, LogIdRecord, LogIdRegistry, StoreError};

const API_KEY: &str = "bench-inquiry-log-api-key-0123456789";

/// DynamoDB records every ID at once: the bench measures the handler, not the network.
struct AnswersAtOnce;

impl LogIdRegistry for AnswersAtOnce {
    async fn record_issued(
        &self,
        id: &str,
        _: LogIdIssuer,
        _: i64,
        _: i64,
    ) -> Result<bool, StoreError> {
        std::hint::black_box(id);
        Ok(true)
    }

    async fn lookup(&self, _: &str) -> Result<Option<LogIdRecord>, StoreError> {
        Ok(None)
    }
}

fn request(method: lambda_http::http::Method, uri: &'static str) -> Request {
    let mut request = Request::new(Body::Empty);
    *request.method_mut() = method;
    *request.uri_mut() = lambda_http::http::Uri::from_static(uri);
    request
}

fn app_request() -> Request {
    request(
        lambda_http::http::Method::POST,
        "https://api.example.invalid/api/v1/logs",
    )
}

fn inquiry_log_request() -> Request {
    let mut request = request(
        lambda_http::http::Method::GET,
        "https://api.example.invalid/api/inquirylog",
    );
    request.headers_mut().insert(
        "x-api-key",
        lambda_http::http::HeaderValue::from_static(API_KEY),
    );
    request
}

fn bench(c: &mut Criterion) {
    let service = IssueLogIds {
        mac: LocalMac::new(&[7; 32]),
        registry: AnswersAtOnce,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    // Sanity: a log ID is issued (201), the upload grant is granted (200).
    let response = runtime
        .block_on(issue_log_id::handle(&service, API_KEY, app_request()))
        .expect("infallible");
    assert_eq!(response.status(), 201);
    let response = runtime
        .block_on(issue_log_id::handle(
            &service,
            API_KEY,
            inquiry_log_request(),
        ))
        .expect("infallible");
    assert_eq!(response.status(), 200);
    c.bench_function("POST /api/v1/logs, log ID issued, handler only", |b| {
        b.to_async(&runtime)
            .iter(|| issue_log_id::handle(&service, API_KEY, app_request()))
    });
    c.bench_function("GET /api/inquirylog, upload grant, handler only", |b| {
        b.to_async(&runtime)
            .iter(|| issue_log_id::handle(&service, API_KEY, inquiry_log_request()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
