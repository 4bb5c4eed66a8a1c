//! COCOA key submission through the local stack: `cargo lambda watch` → `submit-keys` →
//! HER-SYS stand-in and DynamoDB Local, over real connections.

use std::collections::BTreeSet;

use e2e::*;
use futures_util::future::join_all;
use serde_json::{Value, json};
use shared::domain::exposure_key::{KeyId, release_partition};
use time::Duration;

/// The first whole hour two hours after the key ends, and not before the hour after `received`.
fn release_at(key: &TestKey, received: i64) -> i64 {
    let end = (i64::from(key.rolling_start_number) + i64::from(key.rolling_period)) * 600 + 7200;
    ((end + 3599) / 3600 * 3600).max(received / 3600 * 3600 + 3600)
}

#[tokio::test]
async fn v3_stores_exactly_the_valid_keys_with_computed_dsos_and_risk() {
    let stack = Stack::connect().await;
    let today = today_utc();
    // Onset at JST midnight of today−3 is UTC date today−4: dsos counts from there.
    let onset = today - Duration::days(3);
    let valid = [
        (TestKey::on(today - Duration::days(5)), -1),
        (TestKey::on(today - Duration::days(2)), 2),
        (TestKey::on(today), 4),
    ];
    let mut long_period = TestKey::on(today - Duration::days(1));
    long_period.rolling_period = 145;
    let mut bad_report_type = TestKey::on(today - Duration::days(1));
    bad_report_type.report_type = 6;
    let invalid = [
        TestKey::with_length(today - Duration::days(1), 15),
        long_period,
        bad_report_type,
        TestKey::on(today - Duration::days(15)), // older than 14 days
        TestKey::on(today - Duration::days(8)),  // dsos −4: before the infectious window
        TestKey::on(today + Duration::days(1)),  // tomorrow
    ];
    let all: Vec<TestKey> = valid
        .iter()
        .map(|(k, _)| k.clone())
        .chain(invalid.iter().cloned())
        .collect();
    let idempotency_key = random_id();
    let body = v3_body(&all, onset, VALID_NUMBER, &idempotency_key);

    let sent = time::OffsetDateTime::now_utc().unix_timestamp();
    let (status, text) = stack.put_json("/api/v3/diagnosis", &body, &[]).await;
    let answered = time::OffsetDateTime::now_utc().unix_timestamp();
    assert_eq!(status, 200, "{text}");
    let echo: Value = serde_json::from_str(&text).expect("JSON echo");
    assert_eq!(echo["verificationPayload"], Value::Null);
    assert_eq!(echo["deviceVerificationPayload"], Value::Null);
    assert_eq!(echo["idempotency_key"], json!(idempotency_key));
    let echoed: Vec<(String, i64, i64)> = echo["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| {
            (
                k["keyData"].as_str().unwrap_or_default().to_owned(),
                k["daysSinceOnsetOfSymptoms"].as_i64().unwrap_or(99),
                k["transmissionRisk"].as_i64().unwrap_or(99),
            )
        })
        .collect();
    let expected: Vec<(String, i64, i64)> = valid
        .iter()
        .map(|(k, d)| (k.base64.clone(), *d, 4))
        .collect();
    assert_eq!(echoed, expected);

    let items = stack.stored_items_for(&all).await;
    assert_eq!(items.len(), valid.len(), "only the valid keys are stored");
    for (key, dsos) in &valid {
        let id = KeyId::for_v3(
            &idempotency_key,
            &key.base64,
            key.rolling_start_number,
            key.rolling_period,
        );
        let item = items
            .iter()
            .find(|i| string(i, "pk") == Some(format!("440#{}", id.as_str())))
            .unwrap_or_else(|| panic!("key with dsos {dsos} stored under its COCOA id"));
        // Received between `sent` and `answered`: the release hour is one of these two.
        let release = number(item, "release_at").expect("release_at");
        assert!(
            release == release_at(key, sent) || release == release_at(key, answered),
            "{release}"
        );
        assert_eq!(
            string(item, "release"),
            Some(release_partition("440", release))
        );
        assert_eq!(number(item, "days_since_onset"), Some(*dsos));
        assert_eq!(number(item, "transmission_risk"), Some(4));
        assert_eq!(number(item, "report_type"), Some(1));
        assert_eq!(
            number(item, "rolling_start_number"),
            Some(key.rolling_start_number.into())
        );
        assert_eq!(number(item, "rolling_period"), Some(144));
        assert_eq!(
            number(item, "expires_at"),
            Some(i64::from(key.rolling_start_number) * 600 + 15 * 86_400)
        );
        let names: BTreeSet<&str> = item.keys().map(String::as_str).collect();
        assert!(
            names.iter().all(|n| KEYS_TABLE_ATTRIBUTES.contains(n)),
            "unexpected attributes: {names:?}"
        );
    }
}

#[tokio::test]
async fn retries_with_the_same_idempotency_key_add_nothing() {
    let stack = Stack::connect().await;
    let today = today_utc();
    let keys: Vec<TestKey> = (1..=4)
        .map(|d| TestKey::on(today - Duration::days(d)))
        .collect();
    let idempotency_key = random_id();
    let body = v3_body(
        &keys,
        today - Duration::days(2),
        VALID_NUMBER,
        &idempotency_key,
    );
    let (status, _) = stack.put_json("/api/v3/diagnosis", &body, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(stack.stored_items_for(&keys).await.len(), 4);

    // The app retries with the same idempotency_key (and fresh padding), also concurrently.
    let retries = (0..3).map(|_| {
        let retry = v3_body(
            &keys,
            today - Duration::days(2),
            VALID_NUMBER,
            &idempotency_key,
        );
        let stack = &stack;
        async move { stack.put_json("/api/v3/diagnosis", &retry, &[]).await.0 }
    });
    let statuses = join_all(retries).await;
    assert_eq!(statuses, [200, 200, 200]);
    let items = stack.stored_items_for(&keys).await;
    assert_eq!(items.len(), 4, "a retry stores nothing twice");
}

#[tokio::test]
async fn v2_answers_204_and_stores_its_keys_once() {
    let stack = Stack::connect().await;
    let today = today_utc();
    let keys: Vec<TestKey> = (0..3)
        .map(|d| TestKey::on(today - Duration::days(d)))
        .collect();
    let body = v2_body(&keys, VALID_NUMBER);
    let (status, text) = stack.put_json("/api/v2/diagnosis", &body, &[]).await;
    assert_eq!((status, text.as_str()), (204, ""));
    let (status, _) = stack.put_json("/api/v2/diagnosis", &body, &[]).await;
    assert_eq!(status, 204);
    let items = stack.stored_items_for(&keys).await;
    assert_eq!(items.len(), 3, "v2 keys are stored once, even when resent");
    for item in &items {
        assert_eq!(number(item, "transmission_risk"), Some(4));
        assert_eq!(
            number(item, "report_type"),
            None,
            "v2 does not know the report type"
        );
        assert_eq!(number(item, "days_since_onset"), None);
    }
}

#[tokio::test]
async fn refused_and_failing_processing_numbers_store_nothing() {
    let stack = Stack::connect().await;
    let today = today_utc();
    for (number, expected) in [
        (REFUSED_NUMBER, 406),
        (FAILING_NUMBER, 503),
        ("1234567", 406),
        ("abcdefgh", 406),
    ] {
        let keys = vec![TestKey::on(today - Duration::days(1))];
        let body = v3_body(&keys, today - Duration::days(1), number, &random_id());
        let (status, text) = stack.put_json("/api/v3/diagnosis", &body, &[]).await;
        assert_eq!(
            (status, text.as_str()),
            (expected, "Bad VerificationPayload"),
            "number {number}"
        );
        let (status, _) = stack
            .put_json("/api/v2/diagnosis", &v2_body(&keys, number), &[])
            .await;
        assert_eq!(status, expected, "v2, number {number}");
        assert!(
            stack.stored_items_for(&keys).await.is_empty(),
            "nothing stored for {number}"
        );
    }
}

#[tokio::test]
async fn a_hersys_slower_than_the_timeout_answers_503_and_stores_nothing() {
    let stack = Stack::connect().await;
    let keys = vec![TestKey::on(today_utc() - Duration::days(1))];
    let body = v3_body(
        &keys,
        today_utc() - Duration::days(1),
        SLOW_NUMBER,
        &random_id(),
    );
    let (status, text) = stack.put_json("/api/v3/diagnosis", &body, &[]).await;
    assert_eq!((status, text.as_str()), (503, "Bad VerificationPayload"));
    assert!(stack.stored_items_for(&keys).await.is_empty());
}

#[tokio::test]
async fn chaff_is_answered_like_a_success_and_stores_nothing() {
    let stack = Stack::connect().await;
    let today = today_utc();
    let keys = vec![
        TestKey::on(today - Duration::days(1)),
        TestKey::on(today - Duration::days(2)),
    ];
    let body = v3_body(&keys, today - Duration::days(1), VALID_NUMBER, &random_id());
    let (status, text) = stack
        .put_json("/api/v3/diagnosis", &body, &[("X-Chaff", "1")])
        .await;
    assert_eq!(status, 200);
    let echo: Value = serde_json::from_str(&text).expect("JSON echo");
    assert_eq!(echo["verificationPayload"], Value::Null);
    assert_eq!(echo["keys"].as_array().map(Vec::len), Some(2));
    let (status, _) = stack
        .put_json(
            "/api/v2/diagnosis",
            &v2_body(&keys, VALID_NUMBER),
            &[("x-chaff", "")],
        )
        .await;
    assert_eq!(status, 204);
    assert!(stack.stored_items_for(&keys).await.is_empty());
}

#[tokio::test]
async fn a_submission_whose_keys_are_all_invalid_is_not_an_error() {
    let stack = Stack::connect().await;
    let keys = vec![TestKey::on(today_utc() - Duration::days(20))];
    let body = v3_body(&keys, today_utc(), VALID_NUMBER, &random_id());
    let (status, text) = stack.put_json("/api/v3/diagnosis", &body, &[]).await;
    assert_eq!(status, 200);
    let echo: Value = serde_json::from_str(&text).expect("JSON echo");
    assert_eq!(echo["keys"], json!([]));
    assert!(stack.stored_items_for(&keys).await.is_empty());
}

/// Every malformed request gets a clear 4xx and stores nothing; none makes the function fail.
#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_stores_nothing() {
    let stack = Stack::connect().await;
    let today = today_utc();
    let all_keys = std::cell::RefCell::new(Vec::new());
    let fresh = || {
        let key = TestKey::on(today - Duration::days(1));
        all_keys.borrow_mut().push(key.clone());
        v3_body(
            &[key],
            today - Duration::days(1),
            VALID_NUMBER,
            &random_id(),
        )
    };
    let with = |mut body: Value, field: &str, value: Value| {
        body[field] = value;
        body
    };
    let without = |mut body: Value, field: &str| {
        body.as_object_mut().map(|o| o.remove(field));
        body
    };
    let key_field = |field: &str, value: Value| {
        let mut body = fresh();
        body["keys"][0][field] = value;
        body.to_string().into_bytes()
    };
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "truncated JSON",
            fresh().to_string().as_bytes()[..40].to_vec(),
            400,
            "Malformed request",
        ),
        ("not JSON", b"keys=1".to_vec(), 400, "Malformed request"),
        ("empty body", Vec::new(), 400, "Malformed request"),
        ("JSON array", b"[]".to_vec(), 400, "Malformed request"),
        (
            "keys null",
            with(fresh(), "keys", Value::Null).to_string().into_bytes(),
            400,
            "keys must be an array",
        ),
        (
            "keys missing",
            without(fresh(), "keys").to_string().into_bytes(),
            400,
            "keys must be an array",
        ),
        (
            "onset missing",
            without(fresh(), "onsetOfSymptomOrTestDate")
                .to_string()
                .into_bytes(),
            400,
            "onsetOfSymptomOrTestDate",
        ),
        (
            "onset in UTC 'Z'",
            with(
                fresh(),
                "onsetOfSymptomOrTestDate",
                json!("2026-11-20T00:00:00.000Z"),
            )
            .to_string()
            .into_bytes(),
            400,
            "onsetOfSymptomOrTestDate",
        ),
        (
            "onset not a date",
            with(fresh(), "onsetOfSymptomOrTestDate", json!("yesterday"))
                .to_string()
                .into_bytes(),
            400,
            "onsetOfSymptomOrTestDate",
        ),
        (
            "platform blank",
            with(fresh(), "platform", json!(" "))
                .to_string()
                .into_bytes(),
            400,
            "Invalid parameter",
        ),
        (
            "processing number missing",
            without(fresh(), "verificationPayload")
                .to_string()
                .into_bytes(),
            400,
            "Invalid parameter",
        ),
        (
            "attestation missing",
            without(fresh(), "deviceVerificationPayload")
                .to_string()
                .into_bytes(),
            400,
            "Invalid parameter",
        ),
        (
            "package name missing",
            without(fresh(), "appPackageName").to_string().into_bytes(),
            400,
            "Invalid parameter",
        ),
        (
            "regions empty",
            with(fresh(), "regions", json!([])).to_string().into_bytes(),
            400,
            "Invalid parameter",
        ),
        (
            "region unsupported",
            with(fresh(), "regions", json!(["999"]))
                .to_string()
                .into_bytes(),
            400,
            "Regions not supported.",
        ),
        (
            "number as a JSON number",
            with(fresh(), "verificationPayload", json!(99999910))
                .to_string()
                .into_bytes(),
            400,
            "Malformed request",
        ),
        (
            "hasSymptom a string",
            with(fresh(), "hasSymptom", json!("yes"))
                .to_string()
                .into_bytes(),
            400,
            "Malformed request",
        ),
        (
            "regions a string",
            with(fresh(), "regions", json!("440"))
                .to_string()
                .into_bytes(),
            400,
            "Malformed request",
        ),
        (
            "negative rolling start",
            key_field("rollingStartNumber", json!(-1)),
            400,
            "Malformed request",
        ),
        (
            "huge rolling start",
            key_field("rollingStartNumber", json!(1e20)),
            400,
            "Malformed request",
        ),
        (
            "rolling period a string",
            key_field("rollingPeriod", json!("144")),
            400,
            "Malformed request",
        ),
        (
            "key data a number",
            key_field("keyData", json!(12)),
            400,
            "Malformed request",
        ),
        (
            "body over 64 KiB",
            with(fresh(), "padding", json!("A".repeat(70 * 1024)))
                .to_string()
                .into_bytes(),
            413,
            "larger than 65536",
        ),
    ];
    for (name, body, expected_status, expected_message) in cases {
        let (status, text) = stack.send("PUT", "/api/v3/diagnosis", body, &[]).await;
        assert_eq!(status, expected_status, "{name}: {text}");
        assert!(
            text.contains(expected_message),
            "{name}: message {text:?} should contain {expected_message:?}"
        );
        assert!(
            !text.contains(VALID_NUMBER),
            "{name}: the answer must not quote the processing number"
        );
    }

    // Invalid UTF-8. `cargo lambda watch` itself answers 500 to a non-UTF-8 body labelled JSON
    // (before any function runs); labelled as binary it reaches the function base64-encoded, as
    // API Gateway delivers binary bodies.
    let invalid_utf8 = [b"{\"platform\": \"".as_slice(), &[0xff, 0xfe], b"\"}"].concat();
    let (status, text) = stack
        .send(
            "PUT",
            "/api/v3/diagnosis",
            invalid_utf8,
            &[("content-type", "application/octet-stream")],
        )
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.starts_with("Malformed request"), "{text}");

    // v2: one bad key refuses the whole request.
    let good = TestKey::on(today - Duration::days(1));
    let bad = TestKey::with_length(today - Duration::days(1), 8);
    all_keys.borrow_mut().extend([good.clone(), bad.clone()]);
    let (status, text) = stack
        .put_json(
            "/api/v2/diagnosis",
            &v2_body(&[good, bad], VALID_NUMBER),
            &[],
        )
        .await;
    assert_eq!((status, text.as_str()), (400, "Invalid parameter"));
    let (status, _) = stack
        .send("PUT", "/api/v2/diagnosis", "{\"keys\": 5}", &[])
        .await;
    assert_eq!(status, 400);

    let all_keys = all_keys.into_inner();
    assert_eq!(all_keys.len(), 22);
    assert!(
        stack.stored_items_for(&all_keys).await.is_empty(),
        "no bad request stored anything"
    );
}

#[tokio::test]
async fn register_answers_cocoas_dummy_values() {
    let stack = Stack::connect().await;
    let (status, text) = stack.send("POST", "/api/register", "", &[]).await;
    assert_eq!(status, 200);
    let body: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(body["userUuid"], json!("0".repeat(33)));
    assert_eq!(body["secret"], json!("0".repeat(556)));
    assert_eq!(body["jumpConsistentSeed"], json!(0));
}
