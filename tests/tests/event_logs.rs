//! COCOA's `PUT /api/v1/event_log` (reference/cocoa-api.md §3.5): the cases of COCOA's own
//! `V1EventLog` tests (status and stored count for each Content-Length, consent and broken-JSON
//! case), through the local stack where HTTP can carry them and through the handler, with the
//! production DynamoDB adapter, where it cannot (a client cannot send a Content-Length that
//! disagrees with its body); and the usage survey.

use e2e::*;
use lambda_http::{Body, Request};
use ring::digest::{SHA256, digest};
use serde_json::{Value, json};
use shared::adapters::attestation::{AttestationConfig, PlatformAttestation};
use shared::adapters::dynamo_logs::DynamoEventLogs;
use shared::config::Env;
use shared::logs::AcceptEventLogs;

fn entry(consent: bool, kind: &str, content: Value) -> Value {
    json!({"hasConsent": consent, "epoch": 1_669_000_000 + random_bytes(2)[0] as i64,
           "type": kind, "subtype": if kind == "survey" { "survey" } else { "ExposureNotified" },
           "content": content})
}

fn notified(consent: bool) -> Value {
    entry(
        consent,
        "ExposureNotification",
        json!({"notifiedTimeInMillis": 1_669_000_000_000_i64 + random_bytes(1)[0] as i64}),
    )
}

fn body(idempotency_key: &str, logs: Vec<Value>) -> Value {
    json!({"idempotencyKey": idempotency_key, "platform": "android",
           "appPackageName": "jp.go.mhlw.covid19radar",
           "deviceVerificationPayload": format!("{ATTESTATION_MARKER}{}", random_id()),
           "eventLogs": logs})
}

/// COCOA's id: SHA-256 hex of the idempotency key and the entry's clear text.
fn cocoa_id(idempotency_key: &str, log: &Value) -> String {
    let text = format!(
        "{}.{}.{}.{}.{}",
        if log["hasConsent"].as_bool() == Some(true) {
            "True"
        } else {
            "False"
        },
        log["epoch"],
        log["type"].as_str().unwrap_or_default(),
        log["subtype"].as_str().unwrap_or_default(),
        log["content"]
    );
    digest(&SHA256, format!("{idempotency_key}{text}").as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn stored(stack: &Stack, ids: &[String]) -> usize {
    stack
        .scan(&stack.resource("table:event-logs"))
        .await
        .iter()
        .filter(|item| string(item, "pk").is_some_and(|pk| ids.contains(&pk)))
        .count()
}

async fn stored_item(stack: &Stack, id: &str) -> Item {
    stack
        .scan(&stack.resource("table:event-logs"))
        .await
        .into_iter()
        .find(|i| string(i, "pk").as_deref() == Some(id))
        .expect("stored")
}

#[tokio::test]
async fn consented_entries_are_stored_once_under_cocoas_id() {
    let stack = Stack::connect().await;
    let key = random_id();
    let logs = vec![notified(true), notified(false), notified(true)];
    let ids: Vec<String> = logs.iter().map(|l| cocoa_id(&key, l)).collect();
    let request = body(&key, logs);
    let (status, text) = stack.put_json("/api/v1/event_log", &request, &[]).await;
    assert_eq!((status, text.as_str()), (201, ""));
    assert_eq!(
        stored(&stack, &ids).await,
        2,
        "the entry without consent is dropped"
    );
    assert_eq!(stored(&stack, &ids[1..2]).await, 0);
    // The app's retry (same idempotency key) stores nothing new.
    let (status, _) = stack.put_json("/api/v1/event_log", &request, &[]).await;
    assert_eq!(status, 201);
    assert_eq!(stored(&stack, &ids).await, 2);
    let item = stored_item(&stack, &ids[0]).await;
    let created = number(&item, "created").expect("created");
    assert_eq!(number(&item, "expires_at"), Some(created + 60 * 86_400));
    assert!(!format!("{item:?}").contains(ATTESTATION_MARKER));
}

#[tokio::test]
async fn broken_json_and_oversized_bodies_are_refused_over_http() {
    let stack = Stack::connect().await;
    let key = random_id();
    let logs = vec![notified(true)];
    let ids = vec![cocoa_id(&key, &logs[0])];
    let text = body(&key, logs).to_string();
    let (status, _) = stack
        .send(
            "PUT",
            "/api/v1/event_log",
            text[..text.len() - 5].to_owned(),
            &[],
        )
        .await;
    assert_eq!(status, 400, "a truncated body");
    let (status, _) = stack
        .send(
            "PUT",
            "/api/v1/event_log",
            vec![b' '; 10 * 1024 * 1024 + 1],
            &[],
        )
        .await;
    assert_eq!(status, 413);
    assert_eq!(stored(&stack, &ids).await, 0);
}

async fn service(
    stack: &Stack,
    survey_until: i64,
) -> AcceptEventLogs<PlatformAttestation, DynamoEventLogs> {
    let attestation = AttestationConfig::from_env(&Env(|name: &str| match name {
        "ANDROID_ATTESTATION_ENABLED" | "IOS_ATTESTATION_ENABLED" => Some("false".to_owned()),
        _ => None,
    }))
    .expect("attestation config");
    AcceptEventLogs {
        attestation: PlatformAttestation::from_config(&attestation).expect("attestation"),
        store: DynamoEventLogs::new(stack.dynamodb.clone(), stack.resource("table:event-logs")),
        survey_until,
    }
}

fn request(content_length: Option<&str>, body: String) -> Request {
    let mut builder = lambda_http::http::Request::builder()
        .method("PUT")
        .uri("/api/v1/event_log");
    if let Some(length) = content_length {
        builder = builder.header("content-length", length);
    }
    builder.body(Body::from(body)).expect("request")
}

#[tokio::test]
async fn content_length_cases_as_cocoas_tests_have_them() {
    let stack = Stack::connect().await;
    let service = service(&stack, i64::MAX).await;
    let cases: [(Option<&str>, u16, usize); 6] = [
        (None, 400, 0),
        (Some("abc"), 400, 0),
        (Some("-1"), 400, 0),
        (Some("10485761"), 413, 0),
        (Some("10485760"), 201, 1),
        (Some("0"), 201, 1),
    ];
    for (length, status, count) in cases {
        let key = random_id();
        let logs = vec![notified(true)];
        let ids = vec![cocoa_id(&key, &logs[0])];
        let response =
            accept_event_logs::handle(&service, request(length, body(&key, logs).to_string()))
                .await
                .expect("infallible");
        assert_eq!(
            response.status().as_u16(),
            status,
            "Content-Length {length:?}"
        );
        assert_eq!(
            stored(&stack, &ids).await,
            count,
            "Content-Length {length:?}"
        );
    }
}

fn survey(q1: Value) -> Value {
    entry(
        true,
        "survey",
        json!({"q1": q1, "q2": 3, "start_date": 1_640_995_200,
               "exposure_data": {"daily_summaries": [
                   {"DateMillisSinceEpoch": 1_649_289_600_000_i64, "ExposureDetected": 1},
                   {"DateMillisSinceEpoch": 1_649_376_000_000_i64, "ExposureDetected": 0}]}}),
    )
}

#[tokio::test]
async fn survey_answers_are_checked_and_kept_until_the_configured_date() {
    let stack = Stack::connect().await;
    let key = random_id();
    let answer = survey(json!(5));
    let ids = [cocoa_id(&key, &answer)];
    let (status, text) = stack
        .put_json("/api/v1/event_log", &body(&key, vec![answer]), &[])
        .await;
    assert_eq!(status, 201, "{text}");
    let item = stored_item(&stack, &ids[0]).await;
    let until = time::OffsetDateTime::parse(
        &stack.environment("SURVEY_RETENTION_UNTIL"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    assert_eq!(number(&item, "expires_at"), Some(until.unix_timestamp()));

    // "Please select" (0) is not an answer: the request is refused and nothing of it stored.
    let key = random_id();
    let bad = survey(json!(0));
    let other = notified(true);
    let ids = vec![cocoa_id(&key, &bad), cocoa_id(&key, &other)];
    let (status, text) = stack
        .put_json("/api/v1/event_log", &body(&key, vec![other, bad]), &[])
        .await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(stored(&stack, &ids).await, 0);

    // After the end date the survey is closed.
    let closed = service(&stack, 1_700_000_000).await;
    let key = random_id();
    let late = survey(json!(2));
    let ids = vec![cocoa_id(&key, &late)];
    let text = body(&key, vec![late]).to_string();
    let length = text.len().to_string();
    let response = accept_event_logs::handle(&closed, request(Some(&length), text))
        .await
        .expect("infallible");
    assert_eq!(response.status().as_u16(), 410);
    assert_eq!(stored(&stack, &ids).await, 0);
}
