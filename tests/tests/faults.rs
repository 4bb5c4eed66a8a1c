//! Faults: DynamoDB Local killed and started again, and moto frozen and continued, in the middle
//! of submissions and of an export run, with HER-SYS slow and failing at the same time; a
//! verification token spent before the keys it guards failed to store; DynamoDB and KMS throttling
//! (AWS's own error answers, injected by `scripts/aws_fault_proxy.py`); writes applied with their
//! answers lost, between each single-use resource (token, log ID, upload grant, batch numbers)
//! and the write it guards, and event logs failed partway (docs/RELIABILITY.md's table).
//! Afterwards no accepted key is lost, no published file is rewritten, and every client was told
//! the truth: a success status only for what was stored.
//!
//! The stopped services are private instances (`e2e::services`), so stopping them leaves the
//! shared stack alone; the handler and the exporter run in process with their production adapters
//! and timeouts, over real connections to them. HER-SYS is reached as in production: a Lambda
//! Invoke of the stack's `verify-processing-number` (under `cargo lambda watch`), which asks the
//! HER-SYS stand-in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use e2e::services::{self, LocalService};
use e2e::*;
use lambda_http::Body;
use serde_json::{Value, json};
use shared::adapters::AwsTimeouts;
use shared::adapters::attestation::PlatformAttestation;
use shared::adapters::dynamo_keys::DynamoExposureKeyStore;
use shared::adapters::dynamo_logs::{DynamoLogIds, DynamoOperationLogs};
use shared::adapters::dynamo_tokens::DynamoUsedTokens;
use shared::adapters::kms_mac::KmsMac;
use shared::adapters::lambda_verifier::LambdaVerifier;
use shared::domain::export::ExportPublicKey;
use shared::export_run::{Checkpoint, ExportError};
use shared::logs::{AcceptLogs, IssueLogIds};
use shared::ports::{LogIdIssuer, LogIdRegistry, OperationLogStore};
use shared::submission::SubmitKeys;
use shared::verification::{PayloadVerifier, TokenRedemption};
use time::OffsetDateTime;

type Service = SubmitKeys<
    PayloadVerifier<LambdaVerifier, KmsMac, DynamoUsedTokens>,
    PlatformAttestation,
    DynamoExposureKeyStore,
>;

/// A private DynamoDB Local with the declared tables; the client has `submit-keys`' timeouts.
async fn private_dynamodb() -> (
    LocalService,
    aws_sdk_dynamodb::Client,
    HashMap<String, String>,
) {
    let dynamodb = LocalService::dynamodb_local();
    dynamodb.start().await;
    let config = services::sdk_config(AwsTimeouts::REQUEST).await;
    let client = services::dynamodb_client(&config, &dynamodb);
    let tables = services::create_declared_tables(&client).await;
    (dynamodb, client, tables)
}

/// The same behind a fault proxy (`scripts/aws_fault_proxy.py`); the client reaches it through
/// the proxy. The private DynamoDB Local is returned to keep it alive.
async fn proxied_dynamodb() -> (
    LocalService,
    LocalService,
    aws_sdk_dynamodb::Client,
    HashMap<String, String>,
) {
    let (dynamodb, _, tables) = private_dynamodb().await;
    let proxy = LocalService::fault_proxy(&dynamodb.endpoint());
    proxy.start().await;
    let config = services::sdk_config(AwsTimeouts::REQUEST).await;
    let client = services::dynamodb_client(&config, &proxy);
    (dynamodb, proxy, client, tables)
}

/// `submit-keys` as its `main.rs` builds it (production timeouts), storing into `dynamodb`.
async fn submit_keys(
    stack: &Stack,
    dynamodb: &aws_sdk_dynamodb::Client,
    tables: &HashMap<String, String>,
) -> Service {
    submit_keys_with_kms(stack, dynamodb, stack.kms.clone(), tables).await
}

/// The same, its MAC key reached through `kms`.
async fn submit_keys_with_kms(
    stack: &Stack,
    dynamodb: &aws_sdk_dynamodb::Client,
    kms: aws_sdk_kms::Client,
    tables: &HashMap<String, String>,
) -> Service {
    let lambda = services::sdk_loader(AwsTimeouts::REQUEST)
        .endpoint_url(stack.environment("AWS_ENDPOINT_URL_LAMBDA"))
        .load()
        .await;
    SubmitKeys {
        rules: declared_submission_rules(),
        verifier: PayloadVerifier {
            numbers: LambdaVerifier::from_config(
                &lambda,
                stack.environment("VERIFIER_FUNCTION_NAME"),
            ),
            tokens: TokenRedemption {
                mac: KmsMac::new(kms, stack.environment("MAC_KEY_ID")),
                used: DynamoUsedTokens::new(dynamodb.clone(), &tables["used-tokens"]),
            },
        },
        attestation: PlatformAttestation {
            android: None,
            ios: None,
        },
        store: DynamoExposureKeyStore::new(dynamodb.clone(), &tables["keys"]),
    }
}

/// One answer a client got.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    body: String,
    retry_after: Option<String>,
}

async fn send(service: &Service, body: &Value) -> Answer {
    let response = submit_keys::handle(service, v3_request(body))
        .await
        .unwrap_or_else(|never| match never {});
    answer_of(response)
}

fn answer_of(response: lambda_http::Response<Body>) -> Answer {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match response.body() {
        Body::Text(text) => text.clone(),
        Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Body::Empty => String::new(),
        _ => String::new(),
    };
    Answer {
        status,
        body,
        retry_after,
    }
}

/// Sends until an answer is not a server error, at most `attempts` times, backing off as the app
/// does (200 ms, doubling, at most 2 s); returns every answer.
async fn send_with_retries(service: &Service, body: &Value, attempts: u32) -> Vec<Answer> {
    let mut answers = Vec::new();
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis((200u64 << attempt).min(2000))).await;
        }
        let answer = send(service, body).await;
        let done = answer.status < 500;
        answers.push(answer);
        if done {
            break;
        }
    }
    answers
}

struct Submission {
    number: &'static str,
    body: Value,
}

fn submissions(numbers: &[(&'static str, usize)]) -> Vec<Submission> {
    let today = today_utc();
    numbers
        .iter()
        .flat_map(|&(number, count)| std::iter::repeat_n(number, count))
        .map(|number| {
            let keys: Vec<TestKey> = (1..=14)
                .map(|d| TestKey::on(today - time::Duration::days(d)))
                .collect();
            Submission {
                number,
                body: v3_body(&keys, today - time::Duration::days(3), number, &random_id()),
            }
        })
        .collect()
}

fn submitted_keys(body: &Value) -> Vec<String> {
    body["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["keyData"].as_str().map(str::to_owned))
        .collect()
}

/// How many items of the keys table hold each key (base64).
async fn stored_key_counts(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> HashMap<String, usize> {
    use base64::Engine as _;
    let mut counts = HashMap::new();
    for item in scan_table(dynamodb, table).await {
        if let Some(AttributeValue::B(bytes)) = item.get("key_data") {
            let key = base64::engine::general_purpose::STANDARD.encode(bytes.as_ref());
            *counts.entry(key).or_default() += 1;
        }
    }
    counts
}

/// What every client was told against what is stored: each submission whose last answer was 200
/// has each echoed key stored exactly once; a key of any other submission only if a 200 for it
/// said so (never: no other submission may have stored anything), and nothing else is stored.
/// Returns the number of accepted submissions.
fn check_told_the_truth(
    answered: &[(&Submission, Vec<Answer>)],
    stored: &HashMap<String, usize>,
) -> usize {
    let mut accepted = 0;
    let mut expected: HashMap<String, usize> = HashMap::new();
    for (submission, answers) in answered {
        for answer in answers {
            assert!(
                matches!(answer.status, 200 | 406 | 503),
                "{}: only 200, 406 (HER-SYS refused) or 503 (retry) may be answered, got {} {}",
                submission.number,
                answer.status,
                answer.body
            );
            if answer.status != 200 {
                assert!(
                    !answer.body.is_empty(),
                    "a refusal says why ({})",
                    answer.status
                );
            }
            if answer.status == 503 {
                assert!(
                    !answer.body.contains(submission.number),
                    "an answer never quotes the processing number"
                );
            }
        }
        let last = answers.last().expect("an answer");
        if last.status == 200 {
            accepted += 1;
            let echoed = echoed_keys(&last.body);
            assert!(!echoed.is_empty(), "an accepted submission echoes its keys");
            for key in echoed {
                *expected.entry(key).or_default() += 1;
            }
        } else {
            for key in submitted_keys(&submission.body) {
                assert!(
                    !stored.contains_key(&key),
                    "a key of a submission answered {} is not stored",
                    last.status
                );
            }
        }
    }
    for (key, count) in &expected {
        assert_eq!(
            stored.get(key),
            Some(count),
            "an accepted key is stored exactly once"
        );
    }
    let unexpected = stored.keys().filter(|k| !expected.contains_key(*k)).count();
    assert_eq!(
        unexpected, 0,
        "nothing but the accepted keys is stored (the keys dropped as outside the onset window neither)"
    );
    accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submissions_survive_dynamodb_crashing_while_hersys_is_slow_and_failing() {
    let stack = Stack::connect().await;
    let (dynamodb, client, tables) = private_dynamodb().await;
    let service = submit_keys(&stack, &client, &tables).await;

    // Before the crash: accepted ones, and HER-SYS refusing, failing, slow and unreachable.
    let before = submissions(&[
        (VALID_NUMBER, 8),
        (REFUSED_NUMBER, 2),
        (FAILING_NUMBER, 1),
        (SLOW_NUMBER, 1),
        (DOWN_NUMBER, 1),
    ]);
    let before_answers = futures_util::future::join_all(
        before
            .iter()
            .map(|s| send_with_retries(&service, &s.body, 3)),
    )
    .await;
    let stored_before = stored_key_counts(&client, &tables["keys"]).await;
    assert!(
        !stored_before.is_empty(),
        "submissions were stored before the crash"
    );

    // DynamoDB dies. Submissions arrive while it is down (HER-SYS still slow and failing for
    // some); it comes back, with its data, after every one of them has been answered once.
    dynamodb.kill();
    let during = submissions(&[
        (VALID_NUMBER, 6),
        (REFUSED_NUMBER, 2),
        (FAILING_NUMBER, 1),
        (SLOW_NUMBER, 1),
    ]);
    let first_answers = Mutex::new(0usize);
    let clients = futures_util::future::join_all(during.iter().map(|s| {
        let service = &service;
        let first_answers = &first_answers;
        async move {
            let mut answers = vec![send(service, &s.body).await];
            *first_answers.lock().expect("lock") += 1;
            // The app retries; only the accepted ones need to outlast the restart.
            let attempts = if s.number == VALID_NUMBER { 8 } else { 2 };
            if answers[0].status >= 500 {
                answers.extend(send_with_retries(service, &s.body, attempts).await);
            }
            answers
        }
    }));
    let restart = async {
        while *first_answers.lock().expect("lock") < during.len() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        dynamodb.start().await;
    };
    let (during_answers, ()) = tokio::join!(clients, restart);

    for (submission, answers) in during.iter().zip(&during_answers) {
        let expected = if submission.number == REFUSED_NUMBER {
            406 // HER-SYS is asked before the store
        } else {
            503
        };
        assert_eq!(
            answers[0].status, expected,
            "{} with DynamoDB down: {}",
            submission.number, answers[0].body
        );
        if submission.number == VALID_NUMBER {
            assert!(
                answers[0].body.contains("retry"),
                "a storage failure tells the app to retry: {}",
                answers[0].body
            );
            assert_eq!(
                answers.last().map(|a| a.status),
                Some(200),
                "the app's retry after the restart is accepted"
            );
        }
    }

    // After the restart, as usual.
    let after = submissions(&[(VALID_NUMBER, 4)]);
    let after_answers = futures_util::future::join_all(
        after
            .iter()
            .map(|s| send_with_retries(&service, &s.body, 3)),
    )
    .await;

    let stored = stored_key_counts(&client, &tables["keys"]).await;
    for (key, count) in &stored_before {
        assert_eq!(
            stored.get(key),
            Some(count),
            "what was stored before the crash is still there"
        );
    }
    let answered: Vec<(&Submission, Vec<Answer>)> = before
        .iter()
        .zip(before_answers)
        .chain(during.iter().zip(during_answers))
        .chain(after.iter().zip(after_answers))
        .collect();
    for (submission, answers) in &answered {
        let last = answers.last().map(|a| a.status);
        match submission.number {
            VALID_NUMBER => assert_eq!(last, Some(200)),
            REFUSED_NUMBER => assert_eq!(last, Some(406)),
            _ => assert_eq!(last, Some(503), "{}: HER-SYS failed", submission.number),
        }
    }
    assert_eq!(check_told_the_truth(&answered, &stored), 18);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submissions_while_dynamodb_hangs_are_answered_503_in_time_and_stored_once_on_retry() {
    let stack = Stack::connect().await;
    let (dynamodb, client, tables) = private_dynamodb().await;
    let service = submit_keys(&stack, &client, &tables).await;
    let during = submissions(&[(VALID_NUMBER, 3)]);

    // Frozen, DynamoDB accepts connections and never answers: the handler's own timeouts must
    // answer (within `AwsTimeouts::REQUEST`), not the Lambda's. The bound here only keeps a hang
    // from hanging the suite; it is far above the 5 s operation timeout.
    dynamodb.freeze();
    let started = std::time::Instant::now();
    let first = tokio::time::timeout(
        Duration::from_secs(60),
        futures_util::future::join_all(during.iter().map(|s| send(&service, &s.body))),
    )
    .await
    .expect("the handler answers while DynamoDB hangs");
    println!(
        "answered while DynamoDB hung: {} submissions in {:.1} s",
        first.len(),
        started.elapsed().as_secs_f64()
    );
    dynamodb.thaw();
    for answer in &first {
        assert_eq!(answer.status, 503, "{}", answer.body);
        assert!(answer.body.contains("retry"), "{}", answer.body);
    }

    // The writes DynamoDB had queued may land now; the app's retry finds them and adds nothing.
    let late = stored_key_counts(&client, &tables["keys"]).await.len();
    println!("keys written late, by requests queued while DynamoDB hung: {late}");
    let mut answered = Vec::new();
    for (submission, first) in during.iter().zip(first) {
        let mut answers = vec![first];
        answers.extend(send_with_retries(&service, &submission.body, 4).await);
        assert_eq!(answers.last().map(|a| a.status), Some(200));
        answered.push((submission, answers));
    }
    let stored = stored_key_counts(&client, &tables["keys"]).await;
    assert_eq!(check_told_the_truth(&answered, &stored), 3);
}

/// The exporter's adapters with timeouts scaled down from `AwsTimeouts::BATCH` (60 s / 150 s), so
/// a hung call fails in seconds here.
const EXPORT_TEST_TIMEOUTS: AwsTimeouts = AwsTimeouts {
    connect: Duration::from_secs(1),
    attempt: Duration::from_secs(2),
    operation: Duration::from_secs(4),
};

/// `publish-exports` over `ddb` and a private `moto` (with the tests' short timeouts), for
/// region 440 in files of at most 300 keys, and 900 keys released two hours ago: the exporter,
/// its S3 client and bucket, the signing key's public half, and the seeded keys.
async fn private_exporter(
    ddb: &aws_sdk_dynamodb::Client,
    tables: &HashMap<String, String>,
    moto: &LocalService,
) -> (
    Exporter,
    aws_sdk_s3::Client,
    String,
    ExportPublicKey,
    Vec<Vec<u8>>,
) {
    let config = services::sdk_config(EXPORT_TEST_TIMEOUTS).await;
    let s3 = services::s3_client(&config, moto);
    let kms = services::kms_client(&config, moto);
    let bucket = services::create_export_bucket(&s3).await;
    let signing_key = services::create_signing_key(&kms).await;
    let region = "440";
    let now = OffsetDateTime::now_utc();
    let release = OffsetDateTime::from_unix_timestamp(now.unix_timestamp() / 3600 * 3600 - 7200)
        .expect("time");
    let seeded = put_released_keys(ddb, &tables["keys"], region, release, 900).await;
    let exporter = ExporterSetup {
        dynamodb: ddb.clone(),
        keys_table: &tables["keys"],
        exports_table: &tables["exports"],
        s3: s3.clone(),
        bucket: &bucket,
        kms: kms.clone(),
        signing_key: &signing_key,
        regions: vec![region.into()],
        max_keys_per_file: 300,
        base_url: format!("{}/{bucket}", moto.endpoint()),
        reads_in_flight: shared::export_run::RELEASE_READS_IN_FLIGHT,
        max_keys_per_run: shared::export_run::MAX_KEYS_PER_RUN,
    }
    .build()
    .await;
    let public_key = kms
        .get_public_key()
        .key_id(&signing_key)
        .send()
        .await
        .expect("the signing key's public half")
        .public_key
        .expect("a public key");
    let verifying_key = ExportPublicKey::from_spki_der(public_key.as_ref()).expect("a P-256 key");
    (exporter, s3, bucket, verifying_key, seeded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_run_survives_moto_hanging_and_dynamodb_crashing_mid_run() {
    let dynamodb = LocalService::dynamodb_local();
    let moto = LocalService::moto();
    tokio::join!(dynamodb.start(), moto.start());
    let config = services::sdk_config(EXPORT_TEST_TIMEOUTS).await;
    let ddb = services::dynamodb_client(&config, &dynamodb);
    let tables = services::create_declared_tables(&ddb).await;
    let (exporter, s3, bucket, verifying_key, seeded) =
        private_exporter(&ddb, &tables, &moto).await;
    let now = OffsetDateTime::now_utc();
    let region = "440";
    let zips = format!("c19r/{region}/");

    // Run 1: moto hangs once the first file is in the bucket; signing the second cannot finish.
    let first = exporter
        .run(now, &|checkpoint| {
            if checkpoint == Checkpoint::FileUploaded(0) {
                moto.freeze();
            }
            false
        })
        .await;
    moto.thaw();
    assert!(
        matches!(first, Err(ExportError::File(_) | ExportError::Bucket(_))),
        "the run reports that it failed: {first:?}"
    );
    let after_first = bucket_objects(&s3, &bucket, &zips).await;
    assert_eq!(
        after_first.len(),
        1,
        "one file was published before moto hung"
    );
    assert!(!after_first.keys().any(|k| k.ends_with("list.json")));

    // Run 2 resumes the committed release; DynamoDB dies once its second file is in the bucket,
    // so the files cannot be recorded.
    let second = exporter
        .run(now, &|checkpoint| {
            if checkpoint == Checkpoint::FileUploaded(1) {
                dynamodb.kill();
            }
            false
        })
        .await;
    assert!(
        matches!(second, Err(ExportError::Store(_))),
        "the run reports that it failed: {second:?}"
    );
    dynamodb.start().await;
    let after_second = bucket_objects(&s3, &bucket, &zips).await;
    assert_eq!(
        after_second.len(),
        3,
        "every file of the release is in the bucket"
    );
    for (key, bytes) in &after_first {
        assert_eq!(
            after_second.get(key),
            Some(bytes),
            "{key} was not rewritten"
        );
    }

    // Run 3, with everything up: finishes the release without writing any file again.
    let reports = exporter
        .run(now, &shared::export_run::never)
        .await
        .expect("the third run finishes");
    let report = &reports[0];
    assert!(report.files_written.is_empty(), "{report:?}");
    assert_eq!(report.files_already_present.len(), 3, "{report:?}");
    let published = bucket_objects(&s3, &bucket, &zips).await;
    for (key, bytes) in &after_second {
        assert_eq!(published.get(key), Some(bytes), "{key} was not rewritten");
    }

    // list.json lists the three files; every seeded key is in exactly one of them, signed.
    let listed = check_published(&published, &zips, &bucket, &verifying_key, &seeded);
    assert_eq!(listed.len(), 3);
}

/// Checks what an export run published under `prefix` (`listed_exports`: list.json lists each
/// file once, each a GAEN export signed by `verifying_key`) and that every `seeded` key is in
/// exactly one listed file. Returns the listed object keys, in list order.
fn check_published(
    published: &std::collections::BTreeMap<String, Vec<u8>>,
    prefix: &str,
    bucket: &str,
    verifying_key: &ExportPublicKey,
    seeded: &[Vec<u8>],
) -> Vec<String> {
    let listed = listed_exports(published, prefix, bucket, verifying_key)
        .unwrap_or_else(|why| panic!("the published files: {why}"));
    let mut found: HashMap<&[u8], usize> = HashMap::new();
    for key in listed.iter().flat_map(|file| &file.keys) {
        *found.entry(key.as_slice()).or_default() += 1;
    }
    for key in seeded {
        assert_eq!(
            found.get(key.as_slice()),
            Some(&1),
            "a released key is in exactly one file"
        );
    }
    listed.into_iter().map(|file| file.object).collect()
}

/// A verification token for the valid number, from the stack's `verify-processing-number`.
async fn verification_token(stack: &Stack) -> String {
    let (status, answer) = stack
        .send(
            "POST",
            "/api/v1/verification",
            json!({"processingNumber": VALID_NUMBER, "padding": ""}).to_string(),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let issued: Value = serde_json::from_str(&answer).expect("JSON");
    issued["token"].as_str().expect("a token").to_owned()
}

/// The worst outcome the service can produce, shown not to happen: a submission carrying a
/// verification token has its token redeemed, then its keys fail to store (the keys table is
/// gone, while the used-tokens table works), and it is told 503 "retry". The app's retry, the
/// identical body, is accepted and stores each key once (before the token was bound to its
/// submission, the retry got 406 and the keys were never published). The token stays bound to
/// that submission: other keys, one key fewer, or another idempotency key with the same token are
/// refused 406 and store nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_spent_before_its_keys_failed_to_store_passes_for_the_retry_and_only_for_it() {
    let stack = Stack::connect().await;
    let (_dynamodb, client, tables) = private_dynamodb().await;
    let token = verification_token(&stack).await;

    let today = today_utc();
    // The days from 3 before the onset on: all inside the infectious window, all stored.
    let keys: Vec<TestKey> = (1..=7)
        .map(|d| TestKey::on(today - time::Duration::days(d)))
        .collect();
    let onset = today - time::Duration::days(3);
    let idempotency_key = random_id();
    let body = v3_body(&keys, onset, &token, &idempotency_key);

    let mut without_keys_table = tables.clone();
    without_keys_table.insert("keys".into(), "cocoa-exposure-keys-gone".into());
    let failing = submit_keys(&stack, &client, &without_keys_table).await;
    let first = send(&failing, &body).await;
    assert_eq!(first.status, 503, "storage failed: retry ({})", first.body);
    assert_eq!(
        scan_table(&client, &tables["used-tokens"]).await.len(),
        1,
        "the token was spent before the keys failed to store"
    );
    assert!(stored_key_counts(&client, &tables["keys"]).await.is_empty());

    let healthy = submit_keys(&stack, &client, &tables).await;
    for attempt in ["the app's retry", "a second retry"] {
        let retry = send(&healthy, &body).await;
        assert_eq!(retry.status, 200, "{attempt}: {}", retry.body);
        let stored = stored_key_counts(&client, &tables["keys"]).await;
        assert_eq!(stored.len(), keys.len(), "{attempt}: every key is stored");
        for key in &keys {
            assert_eq!(
                stored.get(&key.base64),
                Some(&1),
                "{attempt}: each key once"
            );
        }
    }

    let other_keys: Vec<TestKey> = (1..=7)
        .map(|d| TestKey::on(today - time::Duration::days(d)))
        .collect();
    let replays = [
        (
            "other keys",
            v3_body(&other_keys, onset, &token, &idempotency_key),
        ),
        (
            "one key fewer",
            v3_body(&keys[1..], onset, &token, &idempotency_key),
        ),
        (
            "another idempotency key",
            v3_body(&keys, onset, &token, &random_id()),
        ),
    ];
    for (what, replay) in &replays {
        let answer = send(&healthy, replay).await;
        assert_eq!(
            answer.status, 406,
            "{what} with the spent token: {}",
            answer.body
        );
    }
    let stored = stored_key_counts(&client, &tables["keys"]).await;
    assert_eq!(stored.len(), keys.len(), "the replays stored nothing");
    assert!(other_keys.iter().all(|k| !stored.contains_key(&k.base64)));
}

/// AWS throttling is a fault too. DynamoDB and KMS are reached through the fault proxy, which
/// answers chosen requests with AWS's own throttling errors. A brief throttle (one put) is
/// absorbed by the SDK's own retry within the handler's budget (200), or, when the machine is
/// too loaded for that, answered 503 and passed at the client's retry; each key once. A lasting
/// one (each of DynamoDB's three throttling errors on the keys table; KMS's on `VerifyMac`) is
/// answered 503 with a retry hint, never 500 or 4xx, well within the Lambda's timeout, with
/// nothing of the submission stored; once it ends, the app's retry stores each key once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttled_dynamodb_and_kms_answer_503_in_time_and_the_retry_stores_each_key_once() {
    let stack = Stack::connect().await;
    let (dynamodb, _, tables) = private_dynamodb().await;
    let dynamodb_proxy = LocalService::fault_proxy(&dynamodb.endpoint());
    dynamodb_proxy.start().await;
    let kms_proxy = LocalService::fault_proxy(&stack.environment("AWS_ENDPOINT_URL_KMS"));
    kms_proxy.start().await;
    let config = services::sdk_config(AwsTimeouts::REQUEST).await;
    let client = services::dynamodb_client(&config, &dynamodb_proxy);
    let service = submit_keys_with_kms(
        &stack,
        &client,
        services::kms_client(&config, &kms_proxy),
        &tables,
    )
    .await;
    let keys_table = tables["keys"].clone();
    let today = today_utc();
    let onset = today - time::Duration::days(3);
    let new_keys = || -> Vec<TestKey> {
        (1..=7)
            .map(|d| TestKey::on(today - time::Duration::days(d)))
            .collect()
    };
    let stored_once = |stored: &HashMap<String, usize>, keys: &[TestKey]| {
        keys.iter().all(|k| stored.get(&k.base64) == Some(&1))
    };
    let put_on_keys = |error: &str, count: i64| json!([{"target": "DynamoDB_20120810.PutItem", "table": keys_table, "error": error, "count": count}]);

    // Brief: the SDK retries a throttled call (with backoff) inside the handler's budget.
    let keys = new_keys();
    let body = v3_body(&keys, onset, VALID_NUMBER, &random_id());
    dynamodb_proxy
        .set_faults(put_on_keys("ProvisionedThroughputExceededException", 1))
        .await;
    // On a loaded machine (the other fault tests start JVMs beside it) the SDK's retry can miss
    // the handler's budget: then the answer is the 503 "retry", and the client's retry passes.
    let answers = send_with_retries(&service, &body, 3).await;
    assert!(
        answers.iter().all(|a| a.status == 200 || a.status == 503),
        "a throttled put: only 200 or 503"
    );
    assert_eq!(
        answers.last().map(|a| a.status),
        Some(200),
        "a throttled put"
    );
    let counts = dynamodb_proxy.set_faults(json!([])).await;
    eprintln!(
        "faults: one throttled put: {:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(
        counts["failed"]["ProvisionedThroughputExceededException"], 1,
        "the throttle was answered: {counts}"
    );
    assert!(stored_once(
        &stored_key_counts(&client, &keys_table).await,
        &keys
    ));

    // Lasting, for each of DynamoDB's throttling errors.
    for error in [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    ] {
        let keys = new_keys();
        let body = v3_body(&keys, onset, VALID_NUMBER, &random_id());
        dynamodb_proxy.set_faults(put_on_keys(error, -1)).await;
        let started = std::time::Instant::now();
        let answer = send(&service, &body).await;
        let waited = started.elapsed();
        eprintln!(
            "faults: {error} on every put: {} in {waited:?}",
            answer.status
        );
        assert_eq!(answer.status, 503, "{error}: {}", answer.body);
        assert!(
            answer.body.contains("retry"),
            "{error}: a retry hint: {}",
            answer.body
        );
        assert_eq!(
            answer.retry_after.as_deref(),
            Some(shared::http::RETRY_AFTER_SECONDS),
            "{error}: Retry-After"
        );
        assert!(
            waited < Duration::from_secs(15),
            "{error}: answered within the Lambda's 15 s ({waited:?})"
        );
        let stored = stored_key_counts(&client, &keys_table).await;
        assert!(
            keys.iter().all(|k| !stored.contains_key(&k.base64)),
            "{error}: nothing stored"
        );
        dynamodb_proxy.set_faults(json!([])).await;
        let retries = send_with_retries(&service, &body, 3).await;
        assert!(retries.iter().all(|a| a.status == 200 || a.status == 503));
        assert_eq!(
            retries.last().map(|a| a.status),
            Some(200),
            "{error}: the retry once it ends"
        );
        assert!(
            stored_once(&stored_key_counts(&client, &keys_table).await, &keys),
            "{error}"
        );
    }

    // KMS throttles the token's VerifyMac: 503, and the token stays usable for the retry.
    let token = verification_token(&stack).await;
    let keys = new_keys();
    let body = v3_body(&keys, onset, &token, &random_id());
    kms_proxy
        .set_faults(json!([{"target": "TrentService.VerifyMac", "error": "KMSThrottlingException", "count": -1}]))
        .await;
    let answer = send(&service, &body).await;
    assert_eq!(answer.status, 503, "VerifyMac throttled: {}", answer.body);
    assert!(answer.retry_after.is_some(), "Retry-After");
    let counts = kms_proxy.set_faults(json!([])).await;
    assert!(
        counts["failed"]["KMSThrottlingException"].as_u64() >= Some(1),
        "{counts}"
    );
    let retries = send_with_retries(&service, &body, 3).await;
    assert!(retries.iter().all(|a| a.status == 200 || a.status == 503));
    assert_eq!(
        retries.last().map(|a| a.status),
        Some(200),
        "the retry once KMS answers"
    );
    assert!(stored_once(
        &stored_key_counts(&client, &keys_table).await,
        &keys
    ));
}

/// Submissions during a burst of DynamoDB throttling: while every client sends its first attempt
/// (`LOAD_SUBMISSIONS` submissions, 12 at a time), the fault proxy answers each put on the keys
/// table with `ProvisionedThroughputExceededException` at random, at `THROTTLED_SHARE`; the SDK's
/// own retries absorb some (until its retry quota runs dry, or the handler's budget on a loaded
/// machine), the rest are answered 503. Then the
/// burst ends and each client retries as the app does. Every answer is 200 or 503 (no other 5xx,
/// no 4xx), every submission ends 200, and each key is stored exactly once: none lost, none
/// doubled. `--nocapture` prints N, the share and what the clients saw (docs/RELIABILITY.md).
const LOAD_SUBMISSIONS: usize = 60;
const THROTTLED_SHARE: f64 = 0.4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submissions_in_a_throttling_burst_are_each_stored_once_after_their_retries() {
    use futures_util::StreamExt as _;
    let stack = Stack::connect().await;
    let (_dynamodb, proxy, client, tables) = proxied_dynamodb().await;
    let service = submit_keys(&stack, &client, &tables).await;
    let today = today_utc();
    let submissions: Vec<Vec<TestKey>> = (0..LOAD_SUBMISSIONS)
        .map(|_| {
            (1..=7)
                .map(|d| TestKey::on(today - time::Duration::days(d)))
                .collect()
        })
        .collect();
    let bodies: Vec<Value> = submissions
        .iter()
        .map(|keys| {
            v3_body(
                keys,
                today - time::Duration::days(3),
                VALID_NUMBER,
                &random_id(),
            )
        })
        .collect();
    proxy
        .set_faults(json!([{
            "target": "DynamoDB_20120810.PutItem",
            "table": tables["keys"],
            "error": "ProvisionedThroughputExceededException",
            "share": THROTTLED_SHARE,
        }]))
        .await;
    let first: Vec<Answer> =
        futures_util::stream::iter(bodies.iter().map(|body| send(&service, body)))
            .buffered(12)
            .collect()
            .await;
    let counts = proxy.set_faults(json!([])).await;
    let throttled = first.iter().filter(|a| a.status == 503).count();
    let retries: Vec<Vec<Answer>> = futures_util::stream::iter(
        bodies
            .iter()
            .zip(&first)
            .filter(|(_, answer)| answer.status == 503)
            .map(|(body, _)| send_with_retries(&service, body, 5)),
    )
    .buffered(12)
    .collect()
    .await;
    eprintln!(
        "faults: {LOAD_SUBMISSIONS} submissions of 7 keys; during their first attempts {:.0} % of \
         the keys table's puts throttled at random ({} throttles, {} puts passed): {throttled} \
         first attempts answered 503, {} accepted; after the burst, the retries: {} answers, all \
         accepted: {}",
        THROTTLED_SHARE * 100.0,
        counts["failed"]["ProvisionedThroughputExceededException"],
        counts["forwarded"],
        LOAD_SUBMISSIONS - throttled,
        retries.iter().map(Vec::len).sum::<usize>(),
        retries
            .iter()
            .all(|r| r.last().is_some_and(|a| a.status == 200))
    );
    for answer in first.iter().chain(retries.iter().flatten()) {
        assert!(
            answer.status == 200 || answer.status == 503,
            "only 200 or 503 ({}: {})",
            answer.status,
            answer.body
        );
    }
    assert!(throttled > 0, "the throttling reached some clients");
    assert!(
        retries
            .iter()
            .all(|r| r.last().is_some_and(|a| a.status == 200)),
        "every throttled submission is accepted on retry"
    );
    let stored = stored_key_counts(&client, &tables["keys"]).await;
    assert_eq!(
        stored.len(),
        LOAD_SUBMISSIONS * 7,
        "no key lost, none extra"
    );
    for keys in &submissions {
        for key in keys {
            assert_eq!(stored.get(&key.base64), Some(&1), "each key exactly once");
        }
    }
}

type Logs = AcceptLogs<KmsMac, DynamoLogIds, DynamoOperationLogs>;

/// `accept-logs` and `issue-log-id` as their `main.rs` build them, over `dynamodb`.
fn log_services(
    stack: &Stack,
    dynamodb: &aws_sdk_dynamodb::Client,
    tables: &HashMap<String, String>,
) -> (Logs, IssueLogIds<KmsMac, DynamoLogIds>) {
    let mac = || KmsMac::new(stack.kms.clone(), stack.environment("MAC_KEY_ID"));
    let registry = || DynamoLogIds::new(dynamodb.clone(), &tables["log-ids"]);
    (
        AcceptLogs {
            mac: mac(),
            registry: registry(),
            store: DynamoOperationLogs::new(
                dynamodb.clone(),
                &tables["operation-logs"],
                &tables["log-ids"],
            ),
        },
        IssueLogIds {
            mac: mac(),
            registry: registry(),
        },
    )
}

/// A `PUT` of `body` to `path` (and query) through `accept-logs`' handler.
async fn put_log(service: &Logs, path: &str, body: Vec<u8>) -> Answer {
    let request = lambda_http::http::Request::builder()
        .method("PUT")
        .uri(format!("https://api.example.invalid{path}"))
        .body(Body::from(body))
        .expect("request");
    let response = accept_logs::handle(service, LOG_CONTAINER, request)
        .await
        .unwrap_or_else(|never| match never {});
    answer_of(response)
}

const LOG_CONTAINER: &str = "inquiry-logs";

/// What the operation-logs table holds under `id`: its `meta` items, its chunk items, and the
/// number of chunks the `meta` item lists.
async fn log_items(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    id: &str,
) -> (usize, usize, i64) {
    let items: Vec<_> = scan_table(client, table)
        .await
        .into_iter()
        .filter(|item| string(item, "pk").as_deref() == Some(id))
        .collect();
    let meta: Vec<_> = items
        .iter()
        .filter(|item| string(item, "sk").as_deref() == Some("meta"))
        .collect();
    let listed = meta.first().and_then(|m| number(m, "chunks")).unwrap_or(0);
    (meta.len(), items.len() - meta.len(), listed)
}

fn json_log(operation: &str) -> Vec<u8> {
    json!({
        "consent": true,
        "consentedAt": "2026-11-23T09:00:00Z",
        "logInfo": {"appVersion": "3.0.0", "os": "Android", "osVersion": "13", "deviceModel": "Pixel 7"},
        "entries": [{"time": "2026-11-23T08:58:00Z", "operation": operation, "succeeded": false,
                     "inputs": {"processingNumber": "12345678"}, "outputs": {"status": 503},
                     "state": null}]
    })
    .to_string()
    .into_bytes()
}

fn zip_log(line: &str) -> Vec<u8> {
    use std::io::Write as _;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .start_file(
            "cocoa_log_20221120.csv",
            zip::write::SimpleFileOptions::default(),
        )
        .expect("entry");
    writer.write_all(line.as_bytes()).expect("data");
    writer.finish().expect("zip").into_inner()
}

/// A log ID and an upload grant are each spent in one transaction with the log they guard. The
/// fault proxy fails that transaction three ways: refused before it ran (throttled: nothing
/// written, the ID or grant unspent, 503), committed with its answer lost (a 500 after DynamoDB
/// applied it: the read-back finds the commit, 201 at once), and committed with its answer lost
/// and the read-back failing too (503). In every case the app's retry, the identical body, is
/// accepted (201) and the log is stored exactly once with all its chunks; a different log with
/// the same ID (409) or the same grant (403) is refused and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_log_upload_failed_between_spending_and_storing_is_stored_once_on_retry() {
    let stack = Stack::connect().await;
    let (_dynamodb, proxy, client, tables) = proxied_dynamodb().await;
    let (logs, issuer) = log_services(&stack, &client, &tables);
    let logs_table = tables["operation-logs"].clone();
    let transaction = |error: &str, after: bool| {
        json!({"target": "DynamoDB_20120810.TransactWriteItems", "table": logs_table,
               "error": error, "count": -1, "after": after})
    };
    // The store reads the meta item once before its transaction; the second read is the
    // read-back after a failed one.
    let read_back_fails = json!({"target": "DynamoDB_20120810.GetItem", "table": logs_table,
                                 "error": "InternalServerError", "count": -1, "skip": 1});
    let faults = [
        (
            "refused before it ran",
            json!([transaction("ThrottlingException", false)]),
        ),
        (
            "answer lost after the commit",
            json!([transaction("InternalServerError", true)]),
        ),
        (
            "answer lost, read-back failing",
            json!([transaction("InternalServerError", true), read_back_fails]),
        ),
    ];
    let now = || OffsetDateTime::now_utc().unix_timestamp();

    for (fault, rules) in &faults {
        // By log ID.
        let issued = issuer.issue(LogIdIssuer::App, now()).await.expect("issued");
        let id = issued.id.canonical();
        let path = format!("/api/v1/logs/{}", issued.id);
        let body = json_log("NotifyOtherPage.Submit");
        proxy.set_faults(rules.clone()).await;
        let first = put_log(&logs, &path, body.clone()).await;
        proxy.set_faults(json!([])).await;
        assert!(
            matches!(first.status, 201 | 503),
            "{fault}: {} {}",
            first.status,
            first.body
        );
        if first.status == 503 {
            assert_eq!(
                first.retry_after.as_deref(),
                Some("3"),
                "{fault}: a retry hint"
            );
        }
        let spent = logs
            .registry
            .lookup(&id)
            .await
            .expect("lookup")
            .expect("issued");
        match *fault {
            "refused before it ran" => {
                assert_eq!(first.status, 503, "{fault}");
                assert!(!spent.used, "{fault}: the ID is not spent");
                assert_eq!(
                    log_items(&client, &logs_table, &id).await,
                    (0, 0, 0),
                    "{fault}: nothing stored, no orphan chunk"
                );
            }
            "answer lost after the commit" => {
                assert_eq!(first.status, 201, "{fault}: the read-back found the commit")
            }
            _ => {
                assert_eq!(first.status, 503, "{fault}");
                assert!(spent.used, "{fault}: the commit happened");
            }
        }
        let retry = put_log(&logs, &path, body.clone()).await;
        assert_eq!(
            retry.status, 201,
            "{fault}: the app's retry: {}",
            retry.body
        );
        let retry_again = put_log(&logs, &path, body.clone()).await;
        assert_eq!(retry_again.status, 201, "{fault}: and another");
        let (meta, chunks, listed) = log_items(&client, &logs_table, &id).await;
        assert_eq!(
            (meta, chunks as i64),
            (1, listed),
            "{fault}: stored once, every chunk kept"
        );
        let (_, stored) = logs
            .store
            .get(&id, now())
            .await
            .expect("get")
            .expect("stored");
        let text = String::from_utf8(
            shared::domain::operation_log::decode_log(&stored).expect("inflates"),
        )
        .expect("UTF-8");
        assert!(
            text.contains("NotifyOtherPage.Submit") && !text.contains("12345678"),
            "{fault}"
        );
        let other = put_log(&logs, &path, json_log("ExposureDetection")).await;
        assert_eq!(
            other.status, 409,
            "{fault}: another log with the spent ID: {}",
            other.body
        );
        assert_eq!(
            log_items(&client, &logs_table, &id).await,
            (1, chunks, listed),
            "{fault}: it stored nothing"
        );

        // By upload grant (COCOA's blob-style upload).
        let grant = issuer.grant_upload(now()).await.expect("grant");
        let uuid = random_uuid();
        let path = format!("/{LOG_CONTAINER}/cocoa_log_{uuid}.zip?{grant}");
        let zip = zip_log("\"2022/11/20 10:11:12\",\"Info\",\"send from 192.168.10.20\"\n");
        proxy.set_faults(rules.clone()).await;
        let first = put_log(&logs, &path, zip.clone()).await;
        proxy.set_faults(json!([])).await;
        match *fault {
            "answer lost after the commit" => {
                assert_eq!(first.status, 201, "{fault} (grant): {}", first.body)
            }
            _ => assert_eq!(first.status, 503, "{fault} (grant): {}", first.body),
        }
        if *fault == "refused before it ran" {
            assert_eq!(
                log_items(&client, &logs_table, &uuid).await,
                (0, 0, 0),
                "{fault} (grant): nothing stored"
            );
        }
        for attempt in ["the app's retry", "another"] {
            let retry = put_log(&logs, &path, zip.clone()).await;
            assert_eq!(
                retry.status, 201,
                "{fault} (grant): {attempt}: {}",
                retry.body
            );
        }
        let (meta, chunks, listed) = log_items(&client, &logs_table, &uuid).await;
        assert_eq!(
            (meta, chunks as i64),
            (1, listed),
            "{fault} (grant): stored once"
        );
        let other_uuid = random_uuid();
        let other = put_log(
            &logs,
            &format!("/{LOG_CONTAINER}/cocoa_log_{other_uuid}.zip?{grant}"),
            zip_log("another log\n"),
        )
        .await;
        assert_eq!(
            other.status, 403,
            "{fault}: another upload with the spent grant: {}",
            other.body
        );
        assert_eq!(
            log_items(&client, &logs_table, &other_uuid).await,
            (0, 0, 0),
            "{fault}: it stored nothing"
        );
        let fresh = issuer.grant_upload(now()).await.expect("grant");
        let replaced = put_log(
            &logs,
            &format!("/{LOG_CONTAINER}/cocoa_log_{uuid}.zip?{fresh}"),
            zip_log("another log\n"),
        )
        .await;
        assert_eq!(
            replaced.status, 409,
            "{fault}: another log under the stored name"
        );
        assert_eq!(
            log_items(&client, &logs_table, &uuid).await,
            (1, chunks, listed)
        );
    }
    let used_grants = scan_table(&client, &tables["log-ids"])
        .await
        .iter()
        .filter(|item| string(item, "pk").is_some_and(|pk| pk.starts_with("grant#")))
        .count();
    assert_eq!(
        used_grants,
        faults.len(),
        "each grant spent once; the refused uploads spent none"
    );
}

/// Event logs spend nothing: each entry's id is COCOA's (SHA-256 of the idempotency key and the
/// entry's clear text), written with a conditional put, so a retry rewrites nothing and stores
/// what is missing. Shown with the fault proxy failing a request partway: four puts applied with
/// their answers lost (500 after the write), then, after eight more passed, every put throttled.
/// The request is answered 503; the app's retry, the identical body, is accepted (201) and every
/// consented entry is stored exactly once, none without consent; a further retry stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn event_logs_failed_partway_are_stored_once_on_retry() {
    use shared::adapters::attestation::AttestationConfig;
    use shared::adapters::dynamo_logs::DynamoEventLogs;
    use shared::config::Env;
    let (_dynamodb, proxy, client, tables) = proxied_dynamodb().await;
    let attestation = AttestationConfig::from_env(&Env(|name: &str| match name {
        "ANDROID_ATTESTATION_ENABLED" | "IOS_ATTESTATION_ENABLED" => Some("false".to_owned()),
        _ => None,
    }))
    .expect("attestation config");
    let table = tables["event-logs"].clone();
    let service = shared::logs::AcceptEventLogs {
        attestation: PlatformAttestation::from_config(&attestation).expect("attestation"),
        store: DynamoEventLogs::new(client.clone(), &table),
        survey_until: i64::MAX,
    };
    let entries: Vec<Value> = (0..20)
        .map(|i| {
            json!({"hasConsent": i % 5 != 4, "epoch": 1_669_000_000 + i, "type": "ExposureNotification",
                   "subtype": "ExposureNotified", "content": {"notifiedTimeInMillis": 1_669_000_000_000_i64 + i}})
        })
        .collect();
    let consented = entries.iter().filter(|e| e["hasConsent"] == true).count();
    let body = json!({"idempotencyKey": random_id(), "platform": "android",
                      "appPackageName": "jp.go.mhlw.covid19radar",
                      "deviceVerificationPayload": format!("{ATTESTATION_MARKER}{}", random_id()),
                      "eventLogs": entries})
    .to_string();
    let send = |body: String| {
        let service = &service;
        async move {
            let request = lambda_http::http::Request::builder()
                .method("PUT")
                .uri("/api/v1/event_log")
                .header("content-length", body.len().to_string())
                .body(Body::from(body))
                .expect("request");
            answer_of(
                accept_event_logs::handle(service, request)
                    .await
                    .unwrap_or_else(|never| match never {}),
            )
        }
    };
    let stored = || async {
        let items = scan_table(&client, &table).await;
        let mut ids: Vec<String> = items.iter().filter_map(|i| string(i, "pk")).collect();
        ids.sort();
        ids.dedup();
        (items.len(), ids.len())
    };

    proxy
        .set_faults(json!([
            {"target": "DynamoDB_20120810.PutItem", "table": table, "error": "InternalServerError",
             "after": true, "count": 4},
            {"target": "DynamoDB_20120810.PutItem", "table": table, "error": "ThrottlingException",
             "skip": 8, "count": -1},
        ]))
        .await;
    let first = send(body.clone()).await;
    let counts = proxy.set_faults(json!([])).await;
    eprintln!(
        "faults: event logs: first answer {}, proxy {counts}",
        first.status
    );
    assert_eq!(first.status, 503, "a put failed: retry ({})", first.body);
    assert_eq!(first.retry_after.as_deref(), Some("3"));
    let (partial, _) = stored().await;
    assert!(
        (4..consented).contains(&partial),
        "stored partway: {partial} of {consented}"
    );

    for attempt in ["the app's retry", "another retry"] {
        let retry = send(body.clone()).await;
        assert_eq!((retry.status, retry.body.as_str()), (201, ""), "{attempt}");
        assert_eq!(
            stored().await,
            (consented, consented),
            "{attempt}: every consented entry once, none without consent"
        );
    }
}

/// The exporter's ledger writes with their answers lost: DynamoDB applies each, and the fault
/// proxy answers 500 (the SDK's retries too). Run 1 loses the batch counter's answer (the
/// numbers are spent, no release planned), run 2 the plan's (the plan is saved; the SDK's retry
/// of the conditional write finds it changed), run 3 the published files' records (the files are
/// uploaded). Each run reports its failure; run 4, with nothing failing, finishes the plan that
/// run 2 saved without writing a file again: each key in exactly one signed file, each file
/// listed once, the release's batch numbers consecutive. The numbers run 1 spent are a gap,
/// never reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_run_whose_ledger_answers_were_lost_publishes_each_key_once_on_rerun() {
    let (_dynamodb, proxy, ddb, tables) = proxied_dynamodb().await;
    let moto = LocalService::moto();
    moto.start().await;
    let (exporter, s3, bucket, verifying_key, seeded) =
        private_exporter(&ddb, &tables, &moto).await;
    let now = OffsetDateTime::now_utc();
    let region = "440";
    let zips = format!("c19r/{region}/");
    let lost = |target: &str| {
        json!([{"target": format!("DynamoDB_20120810.{target}"), "table": tables["exports"],
                "error": "InternalServerError", "after": true, "count": -1}])
    };
    let counter = || async {
        scan_table(&ddb, &tables["exports"])
            .await
            .iter()
            .find(|item| string(item, "pk").as_deref() == Some("counter"))
            .and_then(|item| number(item, "value"))
            .unwrap_or(0)
    };

    for (run, target) in [(1, "UpdateItem"), (2, "PutItem"), (3, "PutItem")] {
        proxy.set_faults(lost(target)).await;
        let started = std::time::Instant::now();
        let result = exporter.run(now, &shared::export_run::never).await;
        let counts = proxy.set_faults(json!([])).await;
        eprintln!(
            "faults: export run {run}, {target} answers lost, failed in {:?}: {counts}",
            started.elapsed()
        );
        assert!(
            matches!(result, Err(ExportError::Store(_))),
            "run {run} reports that it failed: {result:?}"
        );
        let objects = bucket_objects(&s3, &bucket, &zips).await;
        assert!(
            !objects.contains_key(&format!("{zips}list.json")),
            "run {run}: nothing listed"
        );
        match run {
            1 | 2 => assert!(
                objects.is_empty(),
                "run {run}: no file before a plan is saved"
            ),
            _ => assert_eq!(objects.len(), 3, "run 3 uploaded the planned files"),
        }
    }
    let uploaded = bucket_objects(&s3, &bucket, &zips).await;
    let spent = counter().await;

    let reports = exporter
        .run(now, &shared::export_run::never)
        .await
        .expect("run 4 finishes");
    let report = &reports[0];
    assert!(
        report.files_written.is_empty(),
        "no file written again: {report:?}"
    );
    assert_eq!(report.files_already_present.len(), 3, "{report:?}");
    assert_eq!(counter().await, spent, "run 4 spent no batch number");
    let published = bucket_objects(&s3, &bucket, &zips).await;
    for (key, bytes) in &uploaded {
        assert_eq!(published.get(key), Some(bytes), "{key} was not rewritten");
    }
    let listed = check_published(&published, &zips, &bucket, &verifying_key, &seeded);
    let numbers: Vec<i64> = listed
        .iter()
        .map(|key| {
            key.trim_start_matches(&zips)
                .trim_end_matches(".zip")
                .parse()
                .expect("a batch number")
        })
        .collect();
    assert_eq!(
        numbers,
        vec![spent - 2, spent - 1, spent],
        "the plan's consecutive numbers, the last spent"
    );
    assert!(
        numbers[0] > 1,
        "run 1's numbers are a gap, not reused: {numbers:?}"
    );
}

/// A submission with a verification token whose writes were applied but their answers lost
/// (the fault proxy answers 500 after DynamoDB applied each, the SDK's retries too): first the
/// keys' puts, then the token's redemption. Each time the app is told 503 "retry"; its retry, the
/// identical body, redeems the token again (bound to this submission) and is accepted, each key
/// stored once; another body with the token is 406 and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_submission_whose_answers_were_lost_is_stored_once_on_retry() {
    let stack = Stack::connect().await;
    let (_dynamodb, proxy, client, tables) = proxied_dynamodb().await;
    let service = submit_keys(&stack, &client, &tables).await;
    let today = today_utc();
    let onset = today - time::Duration::days(3);
    for table in ["keys", "used-tokens"] {
        let token = verification_token(&stack).await;
        let keys: Vec<TestKey> = (1..=7)
            .map(|d| TestKey::on(today - time::Duration::days(d)))
            .collect();
        let idempotency_key = random_id();
        let body = v3_body(&keys, onset, &token, &idempotency_key);
        proxy
            .set_faults(
                json!([{"target": "DynamoDB_20120810.PutItem", "table": tables[table],
                                "error": "InternalServerError", "after": true, "count": -1}]),
            )
            .await;
        let first = send(&service, &body).await;
        proxy.set_faults(json!([])).await;
        assert_eq!(
            first.status, 503,
            "{table} answers lost: retry ({})",
            first.body
        );
        assert_eq!(first.retry_after.as_deref(), Some("3"));
        let retry = send(&service, &body).await;
        assert_eq!(
            retry.status, 200,
            "{table} answers lost: the app's retry: {}",
            retry.body
        );
        let stored = stored_key_counts(&client, &tables["keys"]).await;
        assert!(
            keys.iter().all(|k| stored.get(&k.base64) == Some(&1)),
            "{table} answers lost: each key stored once"
        );
        let others: Vec<TestKey> = (1..=7)
            .map(|d| TestKey::on(today - time::Duration::days(d)))
            .collect();
        let replay = send(&service, &v3_body(&others, onset, &token, &idempotency_key)).await;
        assert_eq!(
            replay.status, 406,
            "another body with the token: {}",
            replay.body
        );
        let stored = stored_key_counts(&client, &tables["keys"]).await;
        assert!(
            others.iter().all(|k| !stored.contains_key(&k.base64)),
            "it stored nothing"
        );
    }
}
