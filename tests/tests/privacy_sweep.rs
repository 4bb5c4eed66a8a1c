//! Run after the whole suite (scripts/test runs it last): no DynamoDB item and no line the
//! functions logged holds a processing number, an attestation payload, an IP address or key
//! material where it does not belong, and no function panicked.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use e2e::{ATTESTATION_MARKER, KEYS_TABLE_ATTRIBUTES, PROCESSING_NUMBERS, Stack};
use regex::Regex;
use std::sync::LazyLock;

fn ipv4() -> &'static Regex {
    static PATTERN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\b(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\b")
            .expect("regex")
    });
    &PATTERN
}

fn ipv6() -> &'static Regex {
    static PATTERN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\b([0-9a-f]{1,4}:){3,7}[0-9a-f]{0,4}\b|::1\b|::ffff:").expect("regex")
    });
    &PATTERN
}

/// Base64 of 16 bytes: what a TEK looks like on the wire.
fn key_material() -> &'static Regex {
    static PATTERN: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"[A-Za-z0-9+/]{21}[AQgw]==").expect("regex"));
    &PATTERN
}

/// What a line or value must never contain; returns the first thing found.
fn forbidden(text: &str, allow_key_material: bool) -> Option<String> {
    if let Some(number) = PROCESSING_NUMBERS.iter().find(|n| text.contains(*n)) {
        return Some(format!("processing number {number}"));
    }
    if text.contains(ATTESTATION_MARKER) {
        return Some("attestation payload".into());
    }
    if let Some(found) = ipv4().find(text).or_else(|| ipv6().find(text)) {
        return Some(format!("IP address {}", found.as_str()));
    }
    if !allow_key_material && let Some(found) = key_material().find(text) {
        return Some(format!("key material {}", found.as_str()));
    }
    None
}

fn render(value: &AttributeValue) -> String {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => s.clone(),
        AttributeValue::B(b) => base64::engine::general_purpose::STANDARD.encode(b.as_ref()),
        AttributeValue::Ss(v) | AttributeValue::Ns(v) => v.join(" "),
        AttributeValue::L(v) => v.iter().map(render).collect::<Vec<_>>().join(" "),
        AttributeValue::M(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", render(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => format!("{other:?}"),
    }
}

#[tokio::test]
async fn no_table_holds_private_data() {
    let stack = Stack::connect().await;
    let tables = stack
        .dynamodb
        .list_tables()
        .send()
        .await
        .expect("list tables")
        .table_names
        .unwrap_or_default();
    assert!(tables.contains(&stack.keys_table()));
    let mut items_seen = 0;
    // A redeemed token's id, the binding to its submission (a digest keyed by the token's MAC,
    // docs/security.md) and its expiry: nothing of the submission itself.
    const USED_TOKENS_ATTRIBUTES: &[&str] = &["pk", "binding", "expires_at"];
    let used_tokens_table = stack.resource("table:used-tokens");
    for table in &tables {
        let is_keys_table = *table == stack.keys_table();
        let allowed = if is_keys_table {
            Some(KEYS_TABLE_ATTRIBUTES)
        } else if *table == used_tokens_table {
            Some(USED_TOKENS_ATTRIBUTES)
        } else {
            None
        };
        for item in stack.scan(table).await {
            items_seen += 1;
            if let Some(allowed) = allowed {
                let unexpected: Vec<&String> = item
                    .keys()
                    .filter(|n| !allowed.contains(&n.as_str()))
                    .collect();
                assert!(
                    unexpected.is_empty(),
                    "{table}: unexpected attributes {unexpected:?}"
                );
            }
            for (name, value) in &item {
                // Stored operation logs are compressed bytes (a deflated document or a zip):
                // their contents are read, decompressed, by `no_stored_log_holds_private_data`.
                if *table == stack.resource("table:operation-logs") && name == "data" {
                    continue;
                }
                // Key bytes belong in the keys table's key_data, and nowhere else.
                let allow_key_material = is_keys_table && name == "key_data";
                if let Some(found) = forbidden(&render(value), allow_key_material) {
                    panic!("{table}.{name} holds {found}");
                }
            }
        }
    }
    assert!(items_seen > 0, "the sweep runs after the suite stored keys");
}

/// Every file of a zip, as text (lossily, for binary entries such as export.bin).
fn zip_texts(zip: Vec<u8>) -> Vec<String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("a zip");
    (0..archive.len())
        .map(|i| {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut archive.by_index(i).expect("entry"), &mut bytes)
                .expect("entry data");
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .collect()
}

/// Every object in the exports bucket: export zips may hold key material (that is what they
/// publish) and nothing else private; every other object (list.json, configuration) nothing.
#[tokio::test]
async fn no_bucket_object_holds_private_data() {
    let stack = Stack::connect().await;
    let s3 = stack.s3();
    let bucket = stack.resource("bucket:exports");
    let mut objects = 0;
    let mut token: Option<String> = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(&bucket)
            .set_continuation_token(token.take())
            .send()
            .await
            .expect("list objects");
        for object in page.contents() {
            let key = object.key().expect("key");
            let body = s3
                .get_object()
                .bucket(&bucket)
                .key(key)
                .send()
                .await
                .expect("get object")
                .body
                .collect()
                .await
                .expect("body")
                .into_bytes();
            objects += 1;
            let texts: Vec<String> = if key.ends_with(".zip") {
                zip_texts(body.to_vec())
            } else {
                vec![String::from_utf8_lossy(&body).into_owned()]
            };
            // list.json names its files by the configured download URL (locally a loopback
            // address): configuration, not anyone's data.
            let base_url = stack.environment("EXPORT_BASE_URL");
            for text in texts {
                let text = text.replace(&base_url, "");
                if let Some(found) = forbidden(&text, key.ends_with(".zip")) {
                    panic!("s3://{bucket}/{key} holds {found}");
                }
            }
        }
        match page.next_continuation_token {
            Some(next) if page.is_truncated == Some(true) => token = Some(next),
            _ => break,
        }
    }
    assert!(
        objects > 0,
        "the sweep runs after the exporter published files"
    );
}

/// Every stored operation log, decompressed (JSON document, or each file of a zip), is free of
/// what redaction removes.
#[tokio::test]
async fn no_stored_log_holds_private_data() {
    use shared::ports::{LogFormat, OperationLogStore};
    let stack = Stack::connect().await;
    let store = shared::adapters::dynamo_logs::DynamoOperationLogs::new(
        stack.dynamodb.clone(),
        stack.resource("table:operation-logs"),
        stack.resource("table:log-ids"),
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let logs = store.list(0, now).await.expect("list");
    assert!(
        !logs.is_empty(),
        "the sweep runs after the suite stored logs"
    );
    let mut formats = std::collections::BTreeSet::new();
    for log in logs {
        let (summary, body) = store
            .get(&log.id, now)
            .await
            .expect("get")
            .expect("listed, so stored");
        formats.insert(summary.format.as_str());
        let texts: Vec<String> = match summary.format {
            LogFormat::Json => vec![
                String::from_utf8(
                    shared::domain::operation_log::decode_log(&body).expect("inflates"),
                )
                .expect("UTF-8"),
            ],
            LogFormat::Zip => zip_texts(body),
        };
        for text in texts {
            if let Some(found) = forbidden(&text, false) {
                panic!("operation log {} holds {found}", log.id);
            }
        }
    }
    assert_eq!(
        formats.len(),
        2,
        "both upload routes were swept: {formats:?}"
    );
}

#[tokio::test]
async fn no_function_log_line_holds_private_data_or_a_panic() {
    let stack = Stack::connect().await;
    let log = std::fs::read_to_string(stack.function_log()).expect("the functions' log");
    // api.log interleaves cargo-lambda's and cargo's own lines (which name the listen address)
    // with what the functions wrote; only the latter are the product's.
    let emulator = Regex::new(
        r"^\s*(INFO|WARN|ERROR|DEBUG|TRACE)\s|^\s*(Compiling|Finished|Running|Blocking|Building)\s",
    )
    .expect("regex");
    let mut function_lines = 0;
    for line in log
        .lines()
        .filter(|l| !l.trim().is_empty() && !emulator.is_match(l))
    {
        function_lines += 1;
        assert!(!line.contains("panicked"), "a function panicked: {line}");
        if let Some(found) = forbidden(line, false) {
            panic!("a function logged {found}: {line}");
        }
    }
    for expected in [
        "diagnosis accepted",
        "diagnosis refused",
        "register answered",
        "log accepted",
        "log refused",
        "event logs accepted",
    ] {
        assert!(
            log.contains(expected),
            "the sweep read the suite's log lines ({expected:?} missing)"
        );
    }
    assert!(function_lines > 10);
}

/// No process of the stack (functions, emulators, stand-ins, the build) wrote a processing number
/// or an attestation payload anywhere in its output.
#[tokio::test]
async fn no_output_of_any_process_holds_a_processing_number() {
    let stack = Stack::connect().await;
    let logs = stack
        .function_log()
        .parent()
        .map(std::path::Path::to_path_buf)
        .expect("log directory");
    let mut files = 0;
    for entry in std::fs::read_dir(&logs).expect("log directory") {
        let path = entry.expect("entry").path();
        let text =
            String::from_utf8_lossy(&std::fs::read(&path).expect("readable log")).into_owned();
        files += 1;
        for number in PROCESSING_NUMBERS {
            assert!(
                !text.contains(number),
                "{} holds processing number {number}",
                path.display()
            );
        }
        assert!(
            !text.contains(ATTESTATION_MARKER),
            "{} holds an attestation payload",
            path.display()
        );
    }
    assert!(files >= 5, "the sweep read every process's log ({files})");
}

#[test]
fn the_sweep_recognises_what_it_looks_for() {
    assert!(forbidden("{\"n\":\"99999910\"}", false).is_some());
    assert!(forbidden("ATTESTATION-PAYLOAD-abc", false).is_some());
    assert!(forbidden("from 192.0.2.1 today", false).is_some());
    assert!(forbidden("peer ::1 here", false).is_some());
    assert!(forbidden("fe80::1ff:fe23:4567:890a", false).is_some());
    assert!(forbidden("z9Uk1Q0OJqf6dqTNvlOZ1A==", false).is_some());
    assert!(forbidden("z9Uk1Q0OJqf6dqTNvlOZ1A==", true).is_none());
    let clean = r#"{"timestamp":"2026-11-23T14:26:24.137165Z","level":"INFO","fields":{"message":"diagnosis accepted","keys_stored":3},"span":{"requestId":"ac14e0dc-46eb-4cac-a411-a07ccd6663fe","xrayTraceId":"Root=1-6b044c9f-e63cd820e4e765d7edfc2874;Parent=d5f475f940d4585b;Sampled=1"}}"#;
    assert_eq!(forbidden(clean, false), None);
}
