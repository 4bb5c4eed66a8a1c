//! How much verification adds to a submission, through the local stack: `scripts/dev` must be
//! running. For each kind of `verificationPayload` it submits 14-key v3 bodies one after another
//! and reports the median of what `submit-keys` logged as `verification_ms` (the time it waited
//! for the verifier), and the median round trip of the whole request.
//!
//! `cargo bench -p e2e --bench verification_latency`

use std::time::Instant;

use e2e::*;
use serde_json::Value;
use time::Duration;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn logged_verification_ms(log: &str, skip_lines: usize) -> Vec<f64> {
    log.lines()
        .skip(skip_lines)
        .filter(|l| l.contains("diagnosis accepted") && l.contains("\"chaff\":false"))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["fields"]["verification_ms"].as_f64())
        .collect()
}

async fn issue_token(stack: &Stack) -> String {
    let body = serde_json::json!({"processingNumber": VALID_NUMBER, "padding": ""}).to_string();
    let (status, text) = stack.send("POST", "/api/v1/verification", body, &[]).await;
    assert_eq!(status, 200, "{text}");
    let issued: Value = serde_json::from_str(&text).expect("JSON");
    issued["token"].as_str().expect("token").to_owned()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let stack = Stack::connect().await;
    let rounds = bench_rounds(40, 3);
    let today = today_utc();
    let keys = || {
        (0..14)
            .map(|d| TestKey::on(today - Duration::days(d)))
            .collect::<Vec<_>>()
    };
    println!(
        "verification latency through the local stack, {rounds} sequential 14-key v3 submissions each"
    );
    for kind in [
        "raw processing number (Lambda Invoke → verify-processing-number → HER-SYS stand-in)",
        "token (KMS VerifyMac + DynamoDB conditional put)",
        "chaff (no verification, no storage)",
    ] {
        let mut round_trips = Vec::with_capacity(rounds);
        let skip = std::fs::read_to_string(stack.function_log())
            .unwrap_or_default()
            .lines()
            .count();
        for _ in 0..rounds {
            let (payload, headers): (String, &[(&str, &str)]) = match kind.split(' ').next() {
                Some("token") => (issue_token(&stack).await, &[]),
                Some("chaff") => (VALID_NUMBER.to_owned(), &[("X-Chaff", "1")]),
                _ => (VALID_NUMBER.to_owned(), &[]),
            };
            let body = v3_body(&keys(), today - Duration::days(3), &payload, &random_id());
            let started = Instant::now();
            let (status, _) = stack.put_json("/api/v3/diagnosis", &body, headers).await;
            round_trips.push(started.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(status, 200);
        }
        let log = std::fs::read_to_string(stack.function_log()).expect("function log");
        let mut verification = logged_verification_ms(&log, skip);
        println!(
            "  {kind}: verification median {:.2} ms (n = {}), request round trip median {:.2} ms",
            median(&mut verification),
            verification.len(),
            median(&mut round_trips)
        );
    }
}
