//! The `helpdesk` command against the local stack, as an operator runs it: issue an ID, the app
//! uploads, then `get`, `list`, `delete`; and `survey-report` over stored survey answers.

use std::process::Command;

use e2e::*;
use serde_json::{Value, json};

/// Runs the built `helpdesk` binary with the stack's endpoints and credentials.
fn helpdesk(stack: &Stack, args: &[&str], dir: &std::path::Path) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_helpdesk"));
    command.args(args).current_dir(dir);
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_LAMBDA",
    ] {
        command.env(name, stack.environment(name));
    }
    command
        .env("LOGS_TABLE", stack.resource("table:operation-logs"))
        .env("LOG_IDS_TABLE", stack.resource("table:log-ids"))
        .env("EVENT_LOGS_TABLE", stack.resource("table:event-logs"));
    let output = command.output().expect("helpdesk runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn scratch_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("helpdesk-test-{}", random_id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[tokio::test]
async fn issue_upload_get_list_delete() {
    let stack = Stack::connect().await;
    let dir = scratch_dir();
    let (ok, out, err) = helpdesk(&stack, &["issue"], &dir);
    assert!(ok, "{err}");
    let id = out.split_whitespace().next().expect("an ID").to_owned();
    assert_eq!(id.len(), 29, "{out}");

    let upload = json!({
        "consent": true, "consentedAt": "2026-11-23T09:00:00Z",
        "logInfo": {"appVersion": "3.0.0", "os": "iOS", "osVersion": "16.1", "deviceModel": "iPhone14,2"},
        "entries": [{"time": "2026-11-23T08:59:00Z", "operation": "Diagnosis.Submit",
                     "succeeded": false, "inputs": {"number": "87654321", "mail": "hanako@example.com"},
                     "outputs": {"status": 406}, "state": null}]
    });
    let (status, body) = stack
        .put_json(&format!("/api/v1/logs/{id}"), &upload, &[])
        .await;
    assert_eq!(status, 201, "{body}");

    // The helpdesk types the ID in lower case, without hyphens.
    let typed = id.replace('-', "").to_lowercase();
    let (ok, out, err) = helpdesk(&stack, &["get", &typed], &dir);
    assert!(ok, "{err}");
    let log: Value = serde_json::from_str(&out).expect("the log, as JSON");
    assert_eq!(log["entries"][0]["operation"], "Diagnosis.Submit");
    assert_eq!(log["entries"][0]["outputs"]["status"], 406);
    assert_eq!(log["logInfo"]["deviceModel"], "iPhone14,2");
    assert!(
        !out.contains("87654321") && !out.contains("hanako@example.com"),
        "{out}"
    );
    assert!(out.contains("[redacted:processing-number]"), "{out}");

    let today = time::OffsetDateTime::now_utc().date().to_string();
    let (ok, out, err) = helpdesk(&stack, &["list", "--since", &today], &dir);
    assert!(ok, "{err}");
    assert!(out.contains(&id), "{out}");
    let line = out.lines().find(|l| l.contains(&id)).expect("listed");
    assert!(
        line.contains("processing-number=1") && line.contains("email=1"),
        "{line}"
    );

    let (ok, out, err) = helpdesk(&stack, &["delete", &id], &dir);
    assert!(ok, "{err}");
    assert!(out.starts_with("deleted"), "{out}");
    let (ok, _, err) = helpdesk(&stack, &["get", &id], &dir);
    assert!(!ok && err.contains("no log"), "{err}");
    let left = stack
        .scan(&stack.resource("table:operation-logs"))
        .await
        .iter()
        .filter(|i| string(i, "pk").as_deref() == Some(&id.replace('-', "")))
        .count();
    assert_eq!(left, 0, "every chunk is gone");
    let (ok, _, err) = helpdesk(&stack, &["get", "not-an-id"], &dir);
    assert!(!ok && err.contains("not a log ID"), "{err}");
}

#[tokio::test]
async fn survey_report_writes_csv_and_chart() {
    let stack = Stack::connect().await;
    // A distinctive day, so this test's answer is recognisable among others in the table.
    let day_ms = 1_649_289_600_000_i64 + 86_400_000 * (100 + i64::from(random_bytes(1)[0]));
    let content = json!({"q1": 4, "q2": 3, "start_date": 1_640_995_200,
        "exposure_data": {"daily_summaries": [{"DateMillisSinceEpoch": day_ms, "ExposureDetected": 1}]}});
    let request = json!({"idempotencyKey": random_id(), "platform": "ios",
        "appPackageName": "jp.go.mhlw.covid19radar", "deviceVerificationPayload": "x",
        "eventLogs": [{"hasConsent": true, "epoch": 1_669_000_000, "type": "survey",
                       "subtype": "survey", "content": content}]});
    let (status, body) = stack.put_json("/api/v1/event_log", &request, &[]).await;
    assert_eq!(status, 201, "{body}");

    let dir = scratch_dir();
    let (ok, out, err) = helpdesk(&stack, &["survey-report", "--out-dir", "report"], &dir);
    assert!(ok, "{err}");
    assert!(out.contains("answer(s), 0 unreadable"), "{out}");
    let csv = std::fs::read_to_string(dir.join("report/survey.csv")).expect("survey.csv");
    let date = time::OffsetDateTime::from_unix_timestamp(day_ms / 1000)
        .expect("date")
        .date()
        .to_string();
    let row = csv
        .lines()
        .find(|line| line.starts_with("day,") && line.contains(&date) && line.contains("25-29"))
        .unwrap_or_else(|| panic!("no row for {date}:\n{csv}"));
    assert!(row.contains("public transport"), "{row}");
    let png = std::fs::read(dir.join("report/survey.png")).expect("survey.png");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}
