//! The CPU cost of accepting a 5 MiB operation log, with no AWS call: parse the JSON, check it,
//! redact every string, serialize and deflate it for storage (what `accept-logs` does between
//! receiving the body and its DynamoDB writes). Median and best of 10, single thread.
//!
//! `cargo bench -p shared --bench log_accept`

use std::time::Instant;

use serde_json::json;
use shared::domain::operation_log::{OperationLogUpload, encode_log};
use shared::request::parse_json;

fn upload() -> String {
    let mut entries = Vec::new();
    let mut size = 0;
    let mut i = 0u64;
    while size < 5 * 1024 * 1024 - 400 {
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

fn main() {
    let body = upload();
    let mib = body.len() as f64 / (1024.0 * 1024.0);
    let now = time::OffsetDateTime::now_utc();
    let mut seconds = Vec::new();
    let mut stored = 0;
    let mut redacted = 0;
    for _ in 0..10 {
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
        "accept a {mib:.2} MiB log (parse, check, redact {redacted} spans, deflate to {:.2} MiB): median {:.0} ms ({:.0} MiB/s), best {:.0} ms",
        stored as f64 / (1024.0 * 1024.0),
        seconds[5] * 1000.0,
        mib / seconds[5],
        seconds[0] * 1000.0
    );
}
