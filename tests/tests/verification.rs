//! Processing-number verification through the local stack: `verify-processing-number` over HTTP
//! and by direct invocation from `submit-keys`, tokens, and HER-SYS failing.

use std::time::Duration as StdDuration;

use base64::Engine as _;
use e2e::*;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime, format_description::well_known::Rfc3339};

async fn issue(stack: &Stack, number: &str) -> (u16, String) {
    let body = json!({"processingNumber": number, "padding": "A".repeat(100)});
    stack
        .send("POST", "/api/v1/verification", body.to_string(), &[])
        .await
}

async fn token(stack: &Stack) -> String {
    let (status, text) = issue(stack, VALID_NUMBER).await;
    assert_eq!(status, 200, "{text}");
    let issued: Value = serde_json::from_str(&text).expect("JSON");
    let expires_at =
        OffsetDateTime::parse(issued["expiresAt"].as_str().expect("expiresAt"), &Rfc3339)
            .expect("RFC 3339");
    let lifetime = expires_at - OffsetDateTime::now_utc();
    assert!(
        lifetime > Duration::minutes(14) && lifetime <= Duration::minutes(15),
        "{lifetime}"
    );
    issued["token"].as_str().expect("token").to_owned()
}

fn keys() -> Vec<TestKey> {
    vec![
        TestKey::on(today_utc() - Duration::days(1)),
        TestKey::on(today_utc() - Duration::days(2)),
    ]
}

async fn submit(stack: &Stack, keys: &[TestKey], payload: &str) -> (u16, String) {
    let body = v3_body(keys, today_utc() - Duration::days(1), payload, &random_id());
    stack.put_json("/api/v3/diagnosis", &body, &[]).await
}

#[tokio::test]
async fn a_token_is_redeemed_by_one_submission_only() {
    let stack = Stack::connect().await;
    let token = token(&stack).await;
    assert!(!token.contains(VALID_NUMBER));

    let first = keys();
    let body = v3_body(
        &first,
        today_utc() - Duration::days(1),
        &token,
        &random_id(),
    );
    let (status, text) = stack.put_json("/api/v3/diagnosis", &body, &[]).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(stack.stored_items_for(&first).await.len(), 2);
    // The same submission again (the app's retry resends the identical body): it passes, and
    // stores nothing twice.
    let (status, text) = stack.put_json("/api/v3/diagnosis", &body, &[]).await;
    assert_eq!(status, 200, "the same submission's retry: {text}");
    assert_eq!(stack.stored_items_for(&first).await.len(), 2);

    let second = keys();
    let (status, text) = submit(&stack, &second, &token).await;
    assert_eq!(
        (status, text.as_str()),
        (406, "Bad VerificationPayload"),
        "a replayed token is refused"
    );
    assert!(stack.stored_items_for(&second).await.is_empty());
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let stack = Stack::connect().await;
    let token = token(&stack).await;
    let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&token)
        .expect("base64url");
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut bad_mac = bytes.clone();
    if let Some(last) = bad_mac.last_mut() {
        *last ^= 1;
    }
    // A later expiry under the old MAC.
    bytes[17] ^= 0x40;
    let extended = engine.encode(&bytes);
    let random = engine.encode(
        random_bytes(bytes.len())
            .iter()
            .enumerate()
            .map(|(i, b)| if i == 0 { 1 } else { *b })
            .collect::<Vec<_>>(),
    );
    for (name, forged) in [
        ("altered MAC", engine.encode(&bad_mac)),
        ("altered expiry", extended),
        ("random", random),
    ] {
        let keys = keys();
        let (status, _) = submit(&stack, &keys, &forged).await;
        assert_eq!(status, 406, "{name}");
        assert!(stack.stored_items_for(&keys).await.is_empty(), "{name}");
    }
    // The genuine token still works: the forgeries did not use it up.
    let keys = keys();
    assert_eq!(submit(&stack, &keys, &token).await.0, 200);
}

#[tokio::test]
async fn a_raw_number_is_verified_through_the_verifier_function() {
    let stack = Stack::connect().await;
    let log_before = std::fs::read_to_string(stack.function_log())
        .unwrap_or_default()
        .matches("\"door\":\"invoke\"")
        .count();
    let keys = keys();
    let (status, text) = submit(&stack, &keys, VALID_NUMBER).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(stack.stored_items_for(&keys).await.len(), 2);
    let log = std::fs::read_to_string(stack.function_log()).expect("log");
    assert!(
        log.matches("\"door\":\"invoke\"").count() > log_before,
        "submit-keys invoked verify-processing-number"
    );
}

#[tokio::test]
async fn the_verification_endpoint_answers_each_case() {
    let stack = Stack::connect().await;
    for (number, status) in [
        (REFUSED_NUMBER, 406),
        (FAILING_NUMBER, 503),
        (DOWN_NUMBER, 503),
    ] {
        let (got, text) = issue(&stack, number).await;
        assert_eq!(got, status, "{number}: {text}");
        assert!(
            !text.contains(number),
            "the answer does not quote the number"
        );
    }
    for body in [
        "{}",
        "{\"processingNumber\": \"1234567\"}",
        "{\"processingNumber\": 99999910}",
        "not json",
    ] {
        let (status, text) = stack.send("POST", "/api/v1/verification", body, &[]).await;
        assert_eq!(status, 400, "{body}: {text}");
    }
    let (status, _) = stack
        .send(
            "POST",
            "/api/v1/verification",
            format!("{{\"padding\": \"{}\"}}", "A".repeat(20_000)),
            &[],
        )
        .await;
    assert_eq!(status, 413);
    let log = std::fs::read_to_string(stack.function_log()).expect("log");
    assert!(
        log.lines().any(|l| l.contains("\"VerificationFailures\":1")
            && l.contains("\"Function\":\"verify-processing-number\"")),
        "verification failures are counted in an EMF metric"
    );
}

#[tokio::test]
async fn a_slow_or_down_hersys_answers_503_within_4_seconds() {
    let stack = Stack::connect().await;
    // The client gives up after 4 s: a later answer fails the test.
    let client = reqwest::Client::builder()
        .timeout(StdDuration::from_secs(4))
        .build()
        .expect("client");
    for number in [SLOW_NUMBER, DOWN_NUMBER] {
        let keys = keys();
        let body = v3_body(&keys, today_utc() - Duration::days(1), number, &random_id());
        let response = client
            .put(format!("{}/api/v3/diagnosis", stack.api))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{number}: no answer within 4 s: {e}"));
        assert_eq!(response.status().as_u16(), 503, "{number}");
        assert!(stack.stored_items_for(&keys).await.is_empty());
        let response = client
            .post(format!("{}/api/v1/verification", stack.api))
            .body(json!({"processingNumber": number}).to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{number}: no answer within 4 s: {e}"));
        assert_eq!(response.status().as_u16(), 503, "{number}");
    }
}
