//! A bounded load test through the local stack (loopback only, a fixed number of requests, stops
//! by itself): concurrent 14-key v3 submissions, each sent several times at once (the app's
//! retries racing each other, with one idempotency key), with client retries on a 5xx or a broken
//! connection, mixed with submissions whose processing number HER-SYS refuses. Afterwards every
//! key of an accepted submission is stored exactly once per region, and no key of a refused one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::*;
use futures_util::StreamExt;
use serde_json::Value;

const ACCEPTED: usize = 30;
const REFUSED: usize = 10;
/// Copies of each submission sent at once.
const COPIES: usize = 3;
const CONCURRENCY: usize = 12;
const ATTEMPTS: u32 = 4;

struct Submission {
    keys: Vec<TestKey>,
    body: Value,
    refused: bool,
}

/// Sends the body until it gets an answer that is not a server error (at most ATTEMPTS times,
/// backing off), as the app does; returns the last status and body.
async fn send_with_retries(stack: &Stack, body: &Value) -> (u16, String) {
    let mut status = 0;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        let response = stack
            .http
            .put(format!("{}/api/v3/diagnosis", stack.api))
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await;
        match response {
            Ok(response) => {
                status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                if status < 500 {
                    return (status, text);
                }
            }
            Err(_) => status = 0,
        }
    }
    (status, String::new())
}

#[tokio::test]
async fn concurrent_retried_submissions_store_every_accepted_key_once() {
    let stack = Stack::connect().await;
    let today = today_utc();
    let submissions: Vec<Submission> = (0..ACCEPTED + REFUSED)
        .map(|i| {
            let keys: Vec<TestKey> = (1..=14)
                .map(|d| TestKey::on(today - time::Duration::days(d)))
                .collect();
            let refused = i >= ACCEPTED;
            let number = if refused {
                REFUSED_NUMBER
            } else {
                VALID_NUMBER
            };
            let body = v3_body(&keys, today - time::Duration::days(3), number, &random_id());
            Submission {
                keys,
                body,
                refused,
            }
        })
        .collect();

    let started = Instant::now();
    let requests: Vec<(usize, &Value)> = submissions
        .iter()
        .enumerate()
        .flat_map(|(i, s)| std::iter::repeat_n((i, &s.body), COPIES))
        .collect();
    let total = requests.len();
    let answers: Vec<(usize, (u16, String))> = futures_util::stream::iter(requests)
        .map(|(i, body)| {
            let stack = &stack;
            async move { (i, send_with_retries(stack, body).await) }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let elapsed = started.elapsed();
    println!(
        "{total} requests ({} submissions × {COPIES}), concurrency {CONCURRENCY}: {:.1} s, {:.1} requests/s",
        submissions.len(),
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );

    // What each submission was told.
    let mut statuses: HashMap<usize, Vec<u16>> = HashMap::new();
    let mut accepted: HashMap<usize, Vec<Vec<String>>> = HashMap::new();
    for (i, (status, body)) in answers {
        statuses.entry(i).or_default().push(status);
        accepted.entry(i).or_default().push(echoed_keys(&body));
    }
    // One scan, then count each key's items.
    let items = stack.scan(&stack.keys_table()).await;
    let mut stored: HashMap<Vec<u8>, usize> = HashMap::new();
    for item in &items {
        if let Some(AttributeValue::B(bytes)) = item.get("key_data") {
            *stored.entry(bytes.as_ref().to_vec()).or_default() += 1;
        }
    }
    // One item per key and supported region: the stack supports 440, the bodies submit for 440.
    let regions = 1;
    for (i, submission) in submissions.iter().enumerate() {
        let told = &statuses[&i];
        if submission.refused {
            assert!(
                told.iter().all(|s| *s == 406),
                "refused submission {i} told {told:?}"
            );
            for key in &submission.keys {
                assert_eq!(stored.get(&key.bytes), None, "a refused key was stored");
            }
        } else {
            // Every copy is told the truth: 200, with the same accepted keys, each stored once;
            // the keys the server dropped (outside the onset window) are stored nowhere.
            assert!(
                told.iter().all(|s| *s == 200),
                "submission {i} told {told:?}"
            );
            let echoes = &accepted[&i];
            assert!(
                echoes.iter().all(|e| e == &echoes[0]),
                "copies of {i} were told different keys"
            );
            assert!(
                !echoes[0].is_empty(),
                "submission {i}: some keys are in the window"
            );
            for key in &submission.keys {
                let expected = echoes[0].contains(&key.base64).then_some(regions);
                assert_eq!(
                    stored.get(&key.bytes).copied(),
                    expected,
                    "submission {i}: key {}",
                    key.base64
                );
            }
        }
    }
}
