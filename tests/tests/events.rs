//! Every sample event in events/ works with `cargo lambda invoke` against the running stack.

use std::process::Command;

use e2e::{Stack, workspace_root};
use serde_json::Value;

/// events/README.md's table.
const EXPECTED: &[(&str, &str, u16)] = &[
    ("submit-keys-v3.json", "submit-keys", 200),
    ("submit-keys-v3-chaff.json", "submit-keys", 200),
    ("submit-keys-v3-refused.json", "submit-keys", 406),
    ("submit-keys-v3-malformed.json", "submit-keys", 400),
    ("submit-keys-v2.json", "submit-keys", 400),
    ("register.json", "register", 200),
    // Not an HTTP event: the answer is the run summary (status 0 here means "check the summary").
    ("publish-exports-schedule.json", "publish-exports", 0),
    (
        "verify-processing-number.json",
        "verify-processing-number",
        200,
    ),
    ("issue-log-id.json", "issue-log-id", 201),
    ("inquirylog-without-key.json", "issue-log-id", 400),
    ("accept-logs-mistyped-id.json", "accept-logs", 400),
    ("event-log-without-consent.json", "accept-event-logs", 201),
    // Not an HTTP event either: the answer is what the sweep deleted.
    ("enforce-retention-schedule.json", "enforce-retention", 1),
];

#[tokio::test]
async fn every_sample_event_invokes_its_function() {
    let stack = Stack::connect().await;
    let root = workspace_root();
    let mut files: Vec<String> = std::fs::read_dir(root.join("events"))
        .expect("events/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = EXPECTED.iter().map(|(f, _, _)| (*f).to_owned()).collect();
    listed.sort();
    assert_eq!(
        files, listed,
        "every event file has an expected status here and in events/README.md"
    );

    let port = stack.description["ports"]["api"]
        .as_u64()
        .expect("api port")
        .to_string();
    let path = format!(
        "{}:{}",
        root.join(".local/venv/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (file, function, expected) in EXPECTED {
        let output = Command::new("cargo")
            .args([
                "lambda",
                "invoke",
                function,
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port,
            ])
            .arg("--data-file")
            .arg(root.join("events").join(file))
            .env("PATH", &path)
            .current_dir(&root)
            .output()
            .expect("cargo lambda invoke runs");
        assert!(
            output.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let response: Value = serde_json::from_slice(&output.stdout).expect("a JSON response");
        if *expected == 1 {
            assert!(response["deleted"].as_u64().is_some(), "{file}: {response}");
            assert!(
                response["places"].as_array().is_some_and(|p| p.len() == 7),
                "six tables and the export files: {response}"
            );
        } else if *expected == 0 {
            assert_eq!(
                response["regions"][0]["region"], "440",
                "{file}: {response}"
            );
        } else {
            assert_eq!(
                response["statusCode"].as_u64(),
                Some(u64::from(*expected)),
                "{file}: {response}"
            );
        }
    }
    // The sample submissions' keys are outside the 14-day window: invoking them stored nothing.
    let sample_key = [
        0xcf, 0xd5, 0x24, 0xd5, 0x0d, 0x0e, 0x26, 0xa7, 0xfa, 0x76, 0xa4, 0xcd, 0xbe, 0x53, 0x99,
        0xd4,
    ];
    let stored = stack.scan(&stack.keys_table()).await;
    assert!(!stored.iter().any(|item| matches!(item.get("key_data"), Some(aws_sdk_dynamodb::types::AttributeValue::B(b)) if b.as_ref() == sample_key)));
}
