//! A 5 MiB JSON operation log (about 20,000 entries, some carrying e-mail addresses, IPs and
//! 8-digit numbers for the redactor to find), measured twice:
//! 1. in process, release build, no AWS call: what `accept-logs` does between receiving the body
//!    and its DynamoDB writes (parse, check, redact, serialize, deflate);
//! 2. through the local stack (`scripts/dev` must be running): each round issues a log ID
//!    (`POST /api/v1/logs`) and uploads the log; the round trip of the upload.
//!
//! Median and best of 10 each. `cargo bench -p e2e --bench log_upload`

use std::time::Instant;

use e2e::*;
use serde_json::{Value, json};
use shared::domain::operation_log::{OperationLogUpload, encode_log};
use shared::request::parse_json;

fn upload(target_bytes: usize) -> String {
    let mut entries = Vec::new();
    let mut size = 0;
    let mut i = 0u64;
    while size < target_bytes - 400 {
        let entry = if i.is_multiple_of(10) {
            json!({"time": "2026-11-23T08:59:00Z", "operation": format!("HttpDataService.PutEventLog #{i}"),
                   "succeeded": false,
                   "inputs": {"note": format!("user wrote mail{i}@example.com and number {:08}", i % 100_000_000)},
                   "outputs": {"status": 503, "server": format!("10.0.{}.{}", i % 250, i % 200)}, "state": {"retry": i % 3}})
        } else {
            json!({"time": "2026-11-23T08:59:00Z", "operation": "ExposureDetectionBackgroundService.ExposureDetectionAsync",
                   "succeeded": true,
                   "inputs": {"diagnosisKeysFiles": i % 17, "configurationVersion": "2.1.0"},
                   "outputs": {"matchCount": 0, "elapsedMs": i % 1000}, "state": {"enabled": true, "bluetooth": "On"}})
        };
        size += entry.to_string().len() + 1;
        entries.push(entry);
        i += 1;
    }
    json!({"consent": true, "consentedAt": "2026-11-23T09:00:00Z",
           "logInfo": {"appVersion": "3.0.0", "os": "Android", "osVersion": "13", "deviceModel": "Pixel 7"},
           "entries": entries})
    .to_string()
}

/// Parse, check, redact and deflate, as `accept-logs` does, `rounds` times.
fn in_process(body: &str, mib: f64, rounds: usize) {
    let now = time::OffsetDateTime::now_utc();
    let mut seconds = Vec::new();
    let (mut stored, mut redacted) = (0, 0);
    for _ in 0..rounds {
        let started = Instant::now();
        let parsed: OperationLogUpload =
            parse_json(body.as_bytes(), 10 * 1024 * 1024).expect("a valid upload");
        let (log, counts) = parsed.accept(now).expect("consented");
        let (bytes, _) = encode_log(&log).expect("encodes");
        seconds.push(started.elapsed().as_secs_f64());
        stored = bytes.len();
        redacted = counts.total();
    }
    seconds.sort_by(f64::total_cmp);
    println!(
        "in process (parse, check, redact {redacted} spans, deflate to {:.2} MiB): median {:.0} ms ({:.0} MiB/s), best {:.0} ms",
        stored as f64 / (1024.0 * 1024.0),
        seconds[rounds / 2] * 1000.0,
        mib / seconds[rounds / 2],
        seconds[0] * 1000.0
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // Under `cargo test --benches`: one round of 256 KiB, to prove the bench works.
    let rounds = bench_rounds(10, 1);
    let body = upload(if rounds > 1 {
        5 * 1024 * 1024
    } else {
        256 * 1024
    });
    let mib = body.len() as f64 / (1024.0 * 1024.0);
    in_process(&body, mib, rounds);
    let stack = Stack::connect().await;
    println!("operation-log upload through the local stack: {mib:.2} MiB JSON, {rounds} rounds");
    let mut seconds = Vec::new();
    for _ in 0..rounds {
        let (status, text) = stack.send("POST", "/api/v1/logs", "", &[]).await;
        assert_eq!(status, 201, "{text}");
        let issued: Value = serde_json::from_str(&text).expect("JSON");
        let id = issued["logId"].as_str().expect("logId").to_owned();
        let started = Instant::now();
        let (status, text) = stack
            .send("PUT", &format!("/api/v1/logs/{id}"), body.clone(), &[])
            .await;
        seconds.push(started.elapsed().as_secs_f64());
        assert_eq!(status, 201, "{text}");
    }
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    let best = seconds[0];
    println!(
        "through the local stack, upload round trip: median {:.0} ms ({:.1} MiB/s), best {:.0} ms ({:.1} MiB/s)",
        median * 1000.0,
        mib / median,
        best * 1000.0,
        mib / best
    );
}
