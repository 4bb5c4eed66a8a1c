//! The exporter end to end against the local stack's DynamoDB Local, moto S3 and KMS, with the
//! production adapters; runs in process so a test can choose the clock and stop a run where a
//! crash would.

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::*;
use shared::domain::export::parse_export_zip;
use shared::export_run::{Checkpoint, ExportError, never};
use std::collections::BTreeMap;
use std::process::Command;
use time::{Duration, OffsetDateTime};

async fn exporter(
    stack: &Stack,
    regions: Vec<String>,
    max_keys_per_file: usize,
    counter: Option<RequestCounter>,
) -> Exporter {
    let mut dynamodb_config = stack.dynamodb.config().to_builder();
    if let Some(counter) = counter {
        dynamodb_config = dynamodb_config.interceptor(counter);
    }
    ExporterSetup {
        dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb_config.build()),
        keys_table: &stack.keys_table(),
        exports_table: &stack.resource("table:exports"),
        s3: stack.s3(),
        bucket: &stack.resource("bucket:exports"),
        kms: stack.kms.clone(),
        signing_key: &stack.resource("kms:export-signing"),
        regions,
        max_keys_per_file,
        base_url: stack.environment("EXPORT_BASE_URL"),
        reads_in_flight: shared::export_run::RELEASE_READS_IN_FLIGHT,
        max_keys_per_run: shared::export_run::MAX_KEYS_PER_RUN,
    }
    .build()
    .await
}

fn hour_floor(t: OffsetDateTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.unix_timestamp() / 3600 * 3600).expect("time")
}

async fn get(url: &str) -> (u16, Vec<u8>) {
    let response = reqwest::get(url).await.expect("HTTP GET");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}

/// The key bytes of every key in every file list.json lists for `region`, with the file.
async fn published_keys(
    stack: &Stack,
    region: &str,
) -> (Vec<serde_json::Value>, BTreeMap<Vec<u8>, Vec<String>>) {
    let base = stack.environment("EXPORT_BASE_URL");
    let (status, body) = get(&format!("{base}/c19r/{region}/list.json")).await;
    assert_eq!(status, 200);
    let list: Vec<serde_json::Value> = serde_json::from_slice(&body).expect("list.json is JSON");
    let mut keys: BTreeMap<Vec<u8>, Vec<String>> = BTreeMap::new();
    for entry in &list {
        let url = entry["url"].as_str().expect("url");
        let (status, zip) = get(url).await;
        assert_eq!(status, 200, "{url}");
        let export = parse_export_zip(&zip).expect("a GAEN export");
        for key in &export.contents.keys {
            keys.entry(key.key_data.as_bytes().to_vec())
                .or_default()
                .push(url.to_owned());
        }
    }
    (list, keys)
}

fn test_region() -> String {
    format!("9{}", &random_id()[..6])
}

#[tokio::test]
async fn submitted_keys_are_published_signed_and_still_valid_ones_wait_for_their_hour() {
    let stack = Stack::connect().await;
    let today = today_utc();
    let ended: Vec<TestKey> = (1..=3)
        .map(|d| TestKey::on(today - Duration::days(d)))
        .collect();
    let still_valid = TestKey::on(today);
    let keys: Vec<TestKey> = ended.iter().cloned().chain([still_valid.clone()]).collect();
    let body = v3_body(&keys, today - Duration::days(2), VALID_NUMBER, &random_id());
    assert_eq!(stack.put_json("/api/v3/diagnosis", &body, &[]).await.0, 200);

    // This test moves region 440's clock forward; a state left by an earlier run of it on the same
    // stack would already have passed the hour these keys wait in. Rewind the region's cursor
    // (its `created` and published files stay; the test looks only at its own keys).
    let _ = stack
        .dynamodb
        .update_item()
        .table_name(stack.resource("table:exports"))
        .key("pk", AttributeValue::S("state#440".into()))
        .key("sk", AttributeValue::S("-".into()))
        .update_expression("REMOVE cursor_hour")
        .condition_expression("attribute_exists(pk)")
        .send()
        .await;
    let exporter = exporter(&stack, vec!["440".into()], 250_000, None).await;
    // An hour and a bit later: the ended keys are released, today's key (valid until midnight)
    // is not.
    let first = hour_floor(OffsetDateTime::now_utc()) + Duration::hours(2);
    exporter.run(first, &never).await.expect("first run");
    let (list, published) = published_keys(&stack, "440").await;
    for key in &ended {
        assert_eq!(
            published.get(&key.bytes).map(Vec::len),
            Some(1),
            "an ended key is in exactly one file"
        );
    }
    assert!(
        !published.contains_key(&still_valid.bytes),
        "a still-valid key is not public"
    );

    // Every listed file: openssl accepts the signature with the KMS public key; protoc decodes it.
    let newest = list.last().expect("a file");
    let (_, zip) = get(newest["url"].as_str().expect("url")).await;
    check_with_openssl_and_protoc(&stack, &zip).await;

    // After its hour (02:00 UTC after the day it ends), today's key is published too.
    let later = OffsetDateTime::new_utc(
        today + Duration::days(1),
        time::Time::from_hms(3, 0, 0).expect("time"),
    );
    exporter
        .run(later.max(first + Duration::hours(1)), &never)
        .await
        .expect("second run");
    let (list, published) = published_keys(&stack, "440").await;
    assert_eq!(published.get(&still_valid.bytes).map(Vec::len), Some(1));
    for key in &ended {
        assert_eq!(
            published.get(&key.bytes).map(Vec::len),
            Some(1),
            "still in exactly one file"
        );
    }
    let created: Vec<i64> = list
        .iter()
        .map(|e| e["created"].as_i64().expect("created"))
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] < w[1]),
        "created strictly increases: {created:?}"
    );
    assert!(list.iter().all(|e| e["region"] == "440"));
}

async fn check_with_openssl_and_protoc(stack: &Stack, zip: &[u8]) {
    let export = parse_export_zip(zip).expect("a GAEN export");
    let dir = std::env::temp_dir().join(format!("export-check-{}", random_id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let public_key = stack
        .kms
        .get_public_key()
        .key_id(stack.resource("kms:export-signing"))
        .send()
        .await
        .expect("public key");
    std::fs::write(
        dir.join("public.der"),
        public_key.public_key.expect("key").into_inner(),
    )
    .expect("write");
    std::fs::write(dir.join("export.bin"), &export.export_bin).expect("write");
    std::fs::write(dir.join("export.sig.der"), &export.signatures[0].signature).expect("write");
    std::fs::write(dir.join("payload.pb"), &export.export_bin[16..]).expect("write");
    let run = |program: &str, args: &[&str]| {
        let output = Command::new(program)
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("runs");
        assert!(
            output.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    run(
        "openssl",
        &[
            "pkey",
            "-pubin",
            "-inform",
            "DER",
            "-in",
            "public.der",
            "-out",
            "public.pem",
        ],
    );
    let verified = run(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            "public.pem",
            "-signature",
            "export.sig.der",
            "export.bin",
        ],
    );
    assert!(verified.contains("Verified OK"));
    let proto = workspace_root().join("shared/proto/export.proto");
    let decoded = Command::new("protoc")
        .arg(format!(
            "--proto_path={}",
            proto.parent().expect("dir").display()
        ))
        .arg("--decode=TemporaryExposureKeyExport")
        .arg("export.proto")
        .stdin(std::fs::File::open(dir.join("payload.pb")).expect("payload"))
        .current_dir(&dir)
        .output()
        .expect("protoc runs");
    assert!(
        decoded.status.success(),
        "{}",
        String::from_utf8_lossy(&decoded.stderr)
    );
    let text = String::from_utf8_lossy(&decoded.stdout);
    assert_eq!(text.matches("keys {").count(), export.contents.keys.len());
    assert!(text.contains("region: \"440\""));
    assert!(export.contents.keys.len() >= 1000, "padded to the minimum");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_run_stopped_anywhere_and_rerun_loses_no_key_duplicates_none_and_rewrites_no_file() {
    let stack = Stack::connect().await;
    let s3 = stack.s3();
    let bucket = stack.resource("bucket:exports");
    let checkpoints = [
        Checkpoint::ReleasePlanned,
        Checkpoint::FileUploaded(0),
        Checkpoint::FileUploaded(1),
        Checkpoint::FilesRecorded,
        Checkpoint::StateAdvanced,
        Checkpoint::ListWritten,
    ];
    for checkpoint in checkpoints {
        let region = test_region();
        let release = hour_floor(OffsetDateTime::now_utc()) - Duration::hours(1);
        let written =
            put_released_keys(&stack.dynamodb, &stack.keys_table(), &region, release, 50).await;
        // 20 keys per file: the release is split into 3 files.
        let exporter = exporter(&stack, vec![region.clone()], 20, None).await;
        let now = OffsetDateTime::now_utc();
        let stopped = exporter.run(now, &|c| c == checkpoint).await;
        assert!(
            matches!(stopped, Err(ExportError::Interrupted(c)) if c == checkpoint),
            "{checkpoint:?}: {stopped:?}"
        );

        let objects_before = bucket_objects(&s3, &bucket, &format!("c19r/{region}/")).await;
        exporter
            .run(now, &never)
            .await
            .unwrap_or_else(|e| panic!("{checkpoint:?}: rerun failed: {e}"));
        let objects_after = bucket_objects(&s3, &bucket, &format!("c19r/{region}/")).await;
        for (key, bytes) in &objects_before {
            if !key.ends_with("list.json") {
                assert_eq!(
                    objects_after.get(key),
                    Some(bytes),
                    "{checkpoint:?}: {key} was rewritten"
                );
            }
        }
        let (list, published) = published_keys(&stack, &region).await;
        assert_eq!(list.len(), 3, "{checkpoint:?}: three files listed");
        for key in &written {
            assert_eq!(
                published.get(key).map(Vec::len),
                Some(1),
                "{checkpoint:?}: a key lost or duplicated"
            );
        }
        // A third run changes nothing.
        exporter.run(now, &never).await.expect("third run");
        assert_eq!(
            bucket_objects(&s3, &bucket, &format!("c19r/{region}/")).await,
            objects_after,
            "{checkpoint:?}"
        );
    }
}

#[tokio::test]
async fn an_export_reads_what_it_releases_not_the_table() {
    let stack = Stack::connect().await;
    let release = hour_floor(OffsetDateTime::now_utc()) - Duration::hours(1);
    let mut counts = Vec::new();
    for unreleased in [0, 2000] {
        let region = test_region();
        put_released_keys(&stack.dynamodb, &stack.keys_table(), &region, release, 30).await;
        // Keys whose hour has not come: the run must not read them.
        put_released_keys(
            &stack.dynamodb,
            &stack.keys_table(),
            &region,
            release + Duration::days(1),
            unreleased,
        )
        .await;
        let counter = RequestCounter::default();
        let exporter = exporter(&stack, vec![region.clone()], 250_000, Some(counter.clone())).await;
        // A first run reads 15 days of hours; the second, only the hours since.
        exporter
            .run(OffsetDateTime::now_utc(), &never)
            .await
            .expect("run");
        counts.push(counter.total());
    }
    assert!(counts[0] > 0, "the counter sees the exporter's requests");
    assert_eq!(
        counts[0], counts[1],
        "DynamoDB requests with 0 and 2,000 unreleased keys: {counts:?}"
    );
}

#[tokio::test]
async fn files_leave_the_list_and_the_bucket_once_their_keys_are_older_than_14_days() {
    let stack = Stack::connect().await;
    let s3 = stack.s3();
    let bucket = stack.resource("bucket:exports");
    let region = test_region();
    let release = hour_floor(OffsetDateTime::now_utc()) - Duration::hours(1);
    put_released_keys(&stack.dynamodb, &stack.keys_table(), &region, release, 10).await;
    let exporter = exporter(&stack, vec![region.clone()], 250_000, None).await;
    let now = OffsetDateTime::now_utc();
    exporter.run(now, &never).await.expect("run");
    let (list, _) = published_keys(&stack, &region).await;
    assert_eq!(list.len(), 1);
    let zip_key = format!(
        "c19r/{region}/{}",
        list[0]["url"]
            .as_str()
            .expect("url")
            .rsplit('/')
            .next()
            .expect("name")
    );
    assert!(
        bucket_objects(&s3, &bucket, &format!("c19r/{region}/"))
            .await
            .contains_key(&zip_key)
    );

    // The keys started at midnight two days before `release`'s date: they stay within 14 days
    // until 14 days after that midnight.
    let started = OffsetDateTime::new_utc(release.date() - Duration::days(2), time::Time::MIDNIGHT);
    let until = started + Duration::days(14);
    exporter
        .run(until - Duration::hours(1), &never)
        .await
        .expect("run");
    assert_eq!(
        published_keys(&stack, &region).await.0.len(),
        1,
        "still listed an hour before"
    );
    exporter
        .run(until + Duration::hours(1), &never)
        .await
        .expect("run");
    let (list, _) = published_keys(&stack, &region).await;
    assert!(list.is_empty(), "listed after 14 days: {list:?}");
    assert!(
        !bucket_objects(&s3, &bucket, &format!("c19r/{region}/"))
            .await
            .contains_key(&zip_key),
        "the zip left the bucket"
    );
}
