//! A generated matrix of malformed requests for every route with a body, through the local stack:
//! each field missing, of every wrong JSON type, a huge number, an extra field; invalid UTF-8;
//! invalid base64; truncated JSON; oversized bodies; wrong content types; and every wrong method on
//! every route. Every answer is a 4xx with a message (none 5xx), and no table gains an item.
//!
//! Each route's base body is well formed but refused (a processing number HER-SYS refuses, an
//! unknown log ID, entries without consent), so a mutation that the route tolerates (an extra
//! field: COCOA's routes ignore unknown fields, as the app expects) still stores nothing.

use e2e::*;
use serde_json::{Map, Value, json};

struct Route {
    method: &'static str,
    path: String,
    base: Value,
    /// Unknown fields are refused (400) rather than ignored.
    strict: bool,
    /// Mutations (by name prefix) the contract accepts as valid: answered below 500, not
    /// necessarily 4xx (they still store nothing). COCOA's event-log `content` is any JSON, and
    /// its base body (entries without consent) is answered 201 with nothing stored.
    free: &'static [&'static str],
}

fn routes() -> Vec<Route> {
    let today = today_utc();
    let keys = [TestKey::on(today - time::Duration::days(1))];
    // A correctly shaped log ID this service never issued (its check symbol matches).
    let unknown_log_id = "7Q2M4-0XH9R-ABCDE-FGHJK-MNPQ0";
    vec![
        Route {
            method: "PUT",
            path: "/api/v3/diagnosis".into(),
            base: v3_body(
                &keys,
                today - time::Duration::days(2),
                REFUSED_NUMBER,
                "bad-input",
            ),
            strict: false,
            free: &[],
        },
        Route {
            method: "PUT",
            path: "/api/v2/diagnosis".into(),
            base: v2_body(&keys, REFUSED_NUMBER),
            strict: false,
            free: &[],
        },
        Route {
            method: "POST",
            path: "/api/v1/verification".into(),
            base: json!({"processingNumber": REFUSED_NUMBER, "padding": ""}),
            strict: false,
            free: &[],
        },
        Route {
            method: "PUT",
            path: format!("/api/v1/logs/{unknown_log_id}"),
            base: json!({"consent": true, "consentedAt": "2026-11-23T09:00:00Z",
                "logInfo": {"appVersion": "3.0.0", "os": "iOS", "osVersion": "16.1", "deviceModel": "iPhone14,2"},
                "entries": [{"time": "2026-11-23T08:59:00Z", "operation": "x", "succeeded": true}]}),
            strict: true,
            free: &[],
        },
        Route {
            method: "PUT",
            path: "/api/v1/event_log".into(),
            base: json!({"idempotencyKey": "k", "platform": "android", "appPackageName": "jp.go.mhlw.covid19radar",
                "deviceVerificationPayload": "p",
                "eventLogs": [{"hasConsent": false, "epoch": 1_669_000_000, "type": "ExposureNotification",
                               "subtype": "ExposureNotified", "content": {"notifiedTimeInMillis": 1}}]}),
            strict: false,
            free: &["base", "eventLogs.content"],
        },
    ]
}

/// Every mutation of `base`: each field (at the top level and one level down) removed, replaced
/// by each wrong type, by a huge number, and an extra field added.
fn mutations(base: &Value) -> Vec<(String, Value)> {
    let wrong: [(&str, Value); 6] = [
        ("null", Value::Null),
        ("bool", json!(true)),
        ("string", json!("x")),
        ("number", json!(-1)),
        ("array", json!([1, "a"])),
        ("object", json!({"a": 1})),
    ];
    let mut out = Vec::new();
    let Value::Object(top) = base else { return out };
    for (field, value) in top {
        let mut missing = top.clone();
        missing.remove(field);
        out.push((format!("{field} missing"), Value::Object(missing)));
        for (name, replacement) in &wrong {
            if std::mem::discriminant(replacement) != std::mem::discriminant(value) {
                let mut changed = top.clone();
                changed.insert(field.clone(), replacement.clone());
                out.push((format!("{field} as {name}"), Value::Object(changed)));
            }
        }
        let mut huge = top.clone();
        huge.insert(field.clone(), json!(u64::MAX));
        out.push((format!("{field} huge"), Value::Object(huge)));
        // One level down: the first element of arrays and the fields of objects.
        let inner: Option<Map<String, Value>> = match value {
            Value::Array(items) => items.first().and_then(Value::as_object).cloned(),
            Value::Object(map) => Some(map.clone()),
            _ => None,
        };
        if let Some(inner) = inner {
            for (inner_field, inner_value) in &inner {
                for (name, replacement) in &wrong[..4] {
                    if std::mem::discriminant(replacement) == std::mem::discriminant(inner_value) {
                        continue;
                    }
                    let mut changed_inner = inner.clone();
                    changed_inner.insert(inner_field.clone(), replacement.clone());
                    let rebuilt = match value {
                        Value::Array(items) => {
                            let mut items = items.clone();
                            items[0] = Value::Object(changed_inner);
                            Value::Array(items)
                        }
                        _ => Value::Object(changed_inner),
                    };
                    let mut changed = top.clone();
                    changed.insert(field.clone(), rebuilt);
                    out.push((
                        format!("{field}.{inner_field} as {name}"),
                        Value::Object(changed),
                    ));
                }
            }
        }
    }
    let mut extra = top.clone();
    extra.insert("unexpected".into(), json!("field"));
    out.push(("extra field".into(), Value::Object(extra)));
    out
}

async fn item_counts(stack: &Stack) -> Vec<(String, usize)> {
    let tables = stack
        .dynamodb
        .list_tables()
        .send()
        .await
        .expect("tables")
        .table_names
        .unwrap_or_default();
    let mut counts = Vec::new();
    for table in tables {
        let count = stack.scan(&table).await.len();
        counts.push((table, count));
    }
    counts
}

#[tokio::test]
async fn every_malformed_request_is_a_4xx_and_stores_nothing() {
    let stack = Stack::connect().await;
    let before = item_counts(&stack).await;
    let mut cases = 0;
    let mut failures = Vec::new();
    let mut check = |what: String, status: u16, body: &str, tolerated: bool| {
        cases += 1;
        let ok = if tolerated {
            status < 500
        } else {
            (400..500).contains(&status)
        };
        if !ok {
            failures.push(format!(
                "{what}: {status} {}",
                body.chars().take(120).collect::<String>()
            ));
        }
    };
    for route in routes() {
        let (status, body) = stack
            .send(route.method, &route.path, route.base.to_string(), &[])
            .await;
        check(
            format!("{} {} base", route.method, route.path),
            status,
            &body,
            route.free.contains(&"base"),
        );
        for (what, mutated) in mutations(&route.base) {
            let (status, body) = stack
                .send(route.method, &route.path, mutated.to_string(), &[])
                .await;
            let tolerated = (what == "extra field" && !route.strict)
                || route.free.iter().any(|free| what.starts_with(free));
            check(
                format!("{} {} {what}", route.method, route.path),
                status,
                &body,
                tolerated,
            );
        }
        let text = route.base.to_string();
        let raw: [(&str, Vec<u8>, &str); 7] = [
            (
                "truncated",
                text.as_bytes()[..text.len() / 2].to_vec(),
                "application/json",
            ),
            ("empty", Vec::new(), "application/json"),
            ("not JSON", b"<xml>no</xml>".to_vec(), "application/xml"),
            (
                "invalid UTF-8",
                [
                    &text.as_bytes()[..10],
                    &[0xff, 0xfe, 0xc3][..],
                    &text.as_bytes()[10..],
                ]
                .concat(),
                "application/octet-stream",
            ),
            ("a JSON array", b"[1,2,3]".to_vec(), "application/json"),
            (
                "deep nesting",
                "[".repeat(100_000).into_bytes(),
                "application/json",
            ),
            (
                "oversized",
                vec![b' '; 10 * 1024 * 1024 + 1],
                "application/json",
            ),
        ];
        for (what, bytes, content_type) in raw {
            let (status, body) = stack
                .send(
                    route.method,
                    &route.path,
                    bytes,
                    &[("content-type", content_type)],
                )
                .await;
            check(
                format!("{} {} {what}", route.method, route.path),
                status,
                &body,
                false,
            );
        }
        for method in ["GET", "DELETE", "PATCH", "POST", "PUT"] {
            if method != route.method {
                let (status, body) = stack.send(method, &route.path, text.clone(), &[]).await;
                check(format!("{method} {}", route.path), status, &body, false);
            }
        }
    }
    // Bad base64 and a key of the wrong length, in an otherwise refused submission.
    for key_data in [
        "!!!not-base64!!!",
        "AAAA",
        "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB",
    ] {
        let mut body = routes().swap_remove(0).base;
        body["keys"][0]["keyData"] = json!(key_data);
        let (status, text) = stack.put_json("/api/v3/diagnosis", &body, &[]).await;
        check(format!("v3 keyData {key_data}"), status, &text, false);
    }
    // Routes without a body: wrong methods, and a missing API key.
    for (method, path) in [
        ("PUT", "/api/inquirylog"),
        ("DELETE", "/api/v1/logs"),
        ("GET", "/api/register"),
    ] {
        let (status, body) = stack.send(method, path, "", &[]).await;
        check(format!("{method} {path}"), status, &body, false);
    }
    let (status, body) = stack.send("GET", "/api/inquirylog", "", &[]).await;
    check("inquirylog without x-api-key".into(), status, &body, false);

    assert!(
        failures.is_empty(),
        "{} of {cases} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(cases > 200, "the matrix is generated: {cases} cases");
    let after = item_counts(&stack).await;
    assert_eq!(before, after, "no table gained or lost an item");
}
