//! The handler's own work per `POST /api/v1/verification` with a valid processing number and
//! 100 bytes of padding (as the end-to-end tests send it): the API Gateway event read into its
//! type, the body parsed, the number checked, a token drawn and MAC'd, the answer serialized and
//! the response event written back. HER-SYS is a port that accepts at once, and the token's MAC
//! is a local HMAC-SHA-256 (`shared::adapters::local_mac`) in place of KMS `GenerateMac`. Also the direct door
//! (`submit-keys`' Lambda Invoke with a raw number), which does no MAC.
//!
//! `cargo bench -p verify-processing-number --bench verification`

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use lambda_http::lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use shared::adapters::local_mac::LocalMac;
use shared::domain::processing_number::ProcessingNumber;
use shared::ports::{ProcessingNumberVerifier, VerificationError};
use shared::verification::IssueTokens;

/// HER-SYS says yes at once: the bench measures the handler, not the network.
struct AnswersAtOnce;

impl ProcessingNumberVerifier for AnswersAtOnce {
    async fn verify(&self, _: &ProcessingNumber) -> Result<(), VerificationError> {
        Ok(())
    }
}

/// The API Gateway HTTP API (payload 2.0) event, as the Lambda runtime hands it to the handler.
fn http_event() -> Value {
    let body = json!({"processingNumber": "99999910", "padding": "A".repeat(100)}).to_string();
    json!({
        "version": "2.0",
        "routeKey": "POST /api/v1/verification",
        "rawPath": "/api/v1/verification",
        "rawQueryString": "",
        "headers": {
            "accept": "application/json",
            "content-type": "application/json; charset=utf-8",
            "content-length": body.len().to_string(),
            "host": "api.example.invalid",
            "user-agent": "COCOA/3.0.0",
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "api.example.invalid",
            "domainPrefix": "api",
            "http": {
                "method": "POST",
                "path": "/api/v1/verification",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "COCOA/3.0.0",
            },
            "requestId": "bench-request",
            "routeKey": "POST /api/v1/verification",
            "stage": "$default",
            "time": "23/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1_795_392_000_000_i64,
        },
        "body": body,
        "isBase64Encoded": false,
    })
}

fn bench(c: &mut Criterion) {
    let service = IssueTokens {
        verifier: AnswersAtOnce,
        mac: LocalMac::new(&[7; 32]),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let http = http_event();
    let direct = json!({"processingNumber": "99999910"});
    // Sanity: the HTTP door issues a token, the direct door answers 200.
    let response = runtime
        .block_on(verify_processing_number::handle(
            &service,
            LambdaEvent::new(http.clone(), Context::default()),
        ))
        .expect("an API Gateway event");
    assert_eq!(response["statusCode"], 200, "{response}");
    assert!(
        response["body"]
            .as_str()
            .is_some_and(|b| b.contains("token"))
    );
    let response = runtime
        .block_on(verify_processing_number::handle(
            &service,
            LambdaEvent::new(direct.clone(), Context::default()),
        ))
        .expect("a direct request");
    assert_eq!(response, json!({"status": 200}));

    // The event is cloned outside the measurement: the runtime hands each invocation its own.
    c.bench_function(
        "POST /api/v1/verification, token issued, handler only",
        |b| {
            b.to_async(&runtime).iter_batched(
                || LambdaEvent::new(http.clone(), Context::default()),
                |event| verify_processing_number::handle(&service, event),
                BatchSize::SmallInput,
            )
        },
    );
    c.bench_function("direct invoke, number accepted, handler only", |b| {
        b.to_async(&runtime).iter_batched(
            || LambdaEvent::new(direct.clone(), Context::default()),
            |event| verify_processing_number::handle(&service, event),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
