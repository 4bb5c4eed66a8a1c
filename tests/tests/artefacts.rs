//! The deployable artefacts run: each function's arm64 `bootstrap`, taken out of the
//! `target/lambda/<name>/bootstrap.zip` that `scripts/package` built for `cdk deploy`, is started
//! under `qemu-aarch64` (with Debian's arm64 glibc as its loader's root) against a local Lambda
//! Runtime API (`cold_start::RuntimeApi`), with the environment the local stack gives its
//! functions, and handed one real event from `events/`. The x86_64 build the stack runs
//! (`target/debug/<name>`) gets the same event through the same Runtime API, from the same
//! DynamoDB state (everything it changed is put back first). Both must answer alike: the same
//! status, the same body shape, the same items written to (or deleted from) DynamoDB Local, value
//! for value except the attributes that hold the time of the run or a fresh random id.
//!
//! Also the runtime floor (`scripts/check_artefacts.py`): it passes on the artefacts, and it fails
//! on a binary that is not one (so it can fail).
//!
//! Needs `scripts/package` to have run (scripts/test runs it first) and the local stack.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use cold_start::{Function, Machine, Outcome, RuntimeApi};
use e2e::{Item, Stack, rolling_start_number, scan_table, today_utc, workspace_root};
use serde_json::{Value, json};
use time::Duration as Days;

struct Case {
    function: &'static str,
    event: &'static str,
    /// A change to the event before it is sent (the same for both builds).
    prepare: fn(Value) -> Value,
    /// Attributes whose values depend on the time of the run or are random: only their type is
    /// compared.
    varies: &'static [&'static str],
    /// What the x86_64 build must have changed in DynamoDB (items written or deleted), so the
    /// comparison is not vacuous; `None` where it depends on what the suite left.
    changes: Option<usize>,
    setup: Setup,
}

/// What a case needs before the two runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Setup {
    Nothing,
    /// A scheduled job acts on whatever the suite left: one x86_64 run first, so that both builds
    /// then start from a state with nothing left to do and must agree on that.
    Settle,
    /// The exporter gets a region of its own with keys released three hours ago, and at most
    /// `EXPORT_FILE_KEYS` keys per file, so both builds publish the same multi-file release: what
    /// they write to S3 is compared too, and every file the arm64 build signs is verified.
    ReleasedKeys,
}

/// Keys the exporter case releases, and the most real keys a file takes, which splits them into
/// three files (each then padded towards the release minimum).
const RELEASED_KEYS: usize = 30;
const EXPORT_FILE_KEYS: &str = "12";

/// One event per function. `submit-keys-v3.json`'s keys are from 2021 (outside the 14-day window,
/// so nothing would be stored): they are moved to the last two days, so the keys are stored.
const CASES: &[Case] = &[
    Case {
        function: "submit-keys",
        event: "submit-keys-v3.json",
        prepare: recent_keys,
        // The release hour is the next whole hour once the key's period is over (a key never
        // goes into an hour that has begun), so it follows the clock.
        varies: &["release", "release_at"],
        changes: Some(2),
        setup: Setup::Nothing,
    },
    Case {
        function: "verify-processing-number",
        event: "verify-processing-number.json",
        prepare: unchanged,
        varies: &[],
        changes: Some(0),
        setup: Setup::Nothing,
    },
    Case {
        function: "register",
        event: "register.json",
        prepare: unchanged,
        varies: &[],
        changes: Some(0),
        setup: Setup::Nothing,
    },
    Case {
        function: "publish-exports",
        event: "publish-exports-schedule.json",
        prepare: unchanged,
        // When each file was made (list.json and the ledger carry it).
        varies: &["created", "last_created"],
        changes: None,
        setup: Setup::ReleasedKeys,
    },
    Case {
        function: "issue-log-id",
        event: "issue-log-id.json",
        prepare: unchanged,
        varies: &["pk", "issued_at", "expires_at"],
        changes: Some(1),
        setup: Setup::Nothing,
    },
    Case {
        function: "accept-logs",
        event: "accept-logs-mistyped-id.json",
        prepare: unchanged,
        varies: &[],
        changes: Some(0),
        setup: Setup::Nothing,
    },
    Case {
        function: "accept-event-logs",
        event: "event-log-without-consent.json",
        prepare: unchanged,
        varies: &[],
        changes: Some(0),
        setup: Setup::Nothing,
    },
    Case {
        function: "enforce-retention",
        event: "enforce-retention-schedule.json",
        prepare: unchanged,
        varies: &[],
        changes: None,
        setup: Setup::Settle,
    },
];

fn unchanged(event: Value) -> Value {
    event
}

/// The sample v3 submission with its onset three days ago and its two keys on the last two days.
fn recent_keys(mut event: Value) -> Value {
    let mut body: Value =
        serde_json::from_str(event["body"].as_str().expect("a body")).expect("a JSON body");
    let today = today_utc();
    body["onsetOfSymptomOrTestDate"] =
        json!(format!("{}T00:00:00.000+09:00", today - Days::days(3)));
    let keys = body["keys"].as_array_mut().expect("keys");
    let count = keys.len() as i64;
    for (index, key) in keys.iter_mut().enumerate() {
        let day = today - Days::days(count - index as i64);
        key["rollingStartNumber"] = json!(rolling_start_number(day));
    }
    event["body"] = json!(body.to_string());
    event
}

/// The tables of infra/stack.json: name and key attributes.
fn tables(stack: &Stack) -> Vec<(String, Vec<String>)> {
    e2e::services::declaration()["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .map(|table| {
            let name = stack.resource(&format!("table:{}", table["id"].as_str().expect("id")));
            let keys = ["partitionKey", "sortKey"]
                .iter()
                .filter_map(|k| table[*k].as_str().map(str::to_owned))
                .collect();
            (name, keys)
        })
        .collect()
}

/// Every item of every table, by table and primary key.
type Snapshot = BTreeMap<String, BTreeMap<String, Item>>;

async fn snapshot(stack: &Stack, tables: &[(String, Vec<String>)]) -> Snapshot {
    let mut all = Snapshot::new();
    for (table, keys) in tables {
        let items = scan_table(&stack.dynamodb, table).await;
        all.insert(
            table.clone(),
            items
                .into_iter()
                .map(|item| (primary_key(&item, keys), item))
                .collect(),
        );
    }
    all
}

fn primary_key(item: &Item, keys: &[String]) -> String {
    keys.iter()
        .map(|k| format!("{:?}", item.get(k)))
        .collect::<Vec<_>>()
        .join("|")
}

/// An item changed between two snapshots: written (new or rewritten) or deleted.
#[derive(Debug)]
struct Change {
    table: String,
    before: Option<Item>,
    after: Option<Item>,
}

fn changes(before: &Snapshot, after: &Snapshot) -> Vec<Change> {
    let mut found = Vec::new();
    for (table, after_items) in after {
        let empty = BTreeMap::new();
        let before_items = before.get(table).unwrap_or(&empty);
        for (key, item) in after_items {
            if before_items.get(key) != Some(item) {
                found.push(Change {
                    table: table.clone(),
                    before: before_items.get(key).cloned(),
                    after: Some(item.clone()),
                });
            }
        }
        for (key, item) in before_items {
            if !after_items.contains_key(key) {
                found.push(Change {
                    table: table.clone(),
                    before: Some(item.clone()),
                    after: None,
                });
            }
        }
    }
    found
}

/// Puts DynamoDB back as it was before `changes`.
async fn undo(stack: &Stack, tables: &[(String, Vec<String>)], changes: &[Change]) {
    for change in changes {
        let keys = &tables
            .iter()
            .find(|(t, _)| *t == change.table)
            .expect("table")
            .1;
        if let Some(after) = &change.after {
            let key: Item = keys
                .iter()
                .filter_map(|k| Some((k.clone(), after.get(k)?.clone())))
                .collect();
            stack
                .dynamodb
                .delete_item()
                .table_name(&change.table)
                .set_key(Some(key))
                .send()
                .await
                .expect("delete what the x86_64 run wrote");
        }
        if let Some(before) = &change.before {
            stack
                .dynamodb
                .put_item()
                .table_name(&change.table)
                .set_item(Some(before.clone()))
                .send()
                .await
                .expect("restore what the x86_64 run changed");
        }
    }
}

/// An attribute value as compared: its type only, when it varies by run.
fn comparable(value: &AttributeValue, varies: bool) -> String {
    let text = format!("{value:?}");
    if varies {
        text.split('(').next().unwrap_or_default().to_owned()
    } else {
        text
    }
}

/// A change as compared: table, kind, and each attribute of the item written (or deleted).
fn comparable_change(change: &Change, varies: &[&str]) -> String {
    let (kind, item) = match (&change.before, &change.after) {
        (_, Some(after)) => ("written", after),
        (Some(before), None) => ("deleted", before),
        (None, None) => ("nothing", &Item::new()),
    };
    let attributes: BTreeMap<&String, String> = item
        .iter()
        .map(|(name, value)| (name, comparable(value, varies.contains(&name.as_str()))))
        .collect();
    format!("{} {kind} {attributes:?}", change.table)
}

/// A JSON value's shape: object keys and value types, arrays element by element.
fn shape(value: &Value) -> Value {
    match value {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("bool"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::Object(fields) => {
            Value::Object(fields.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
    }
}

/// What is compared of an answer: for an API Gateway response its status, header names and the
/// body's shape (JSON) or the body itself; for anything else the whole answer's shape.
fn comparable_answer(answer: &Value) -> Value {
    match answer.get("statusCode") {
        Some(status) => {
            let body = answer["body"].as_str().unwrap_or_default();
            let mut headers: Vec<&String> = answer["headers"]
                .as_object()
                .map(|h| h.keys().collect())
                .unwrap_or_default();
            headers.sort();
            json!({
                "statusCode": status,
                "headers": headers,
                "body": serde_json::from_str::<Value>(body).map(|b| shape(&b)).unwrap_or_else(|_| json!(body)),
            })
        }
        None => shape(answer),
    }
}

/// The arm64 bootstrap out of its zip, into target/artefact-check/<name>/bootstrap.
fn unzip_bootstrap(root: &Path, name: &str) -> PathBuf {
    let archive = root.join("target/lambda").join(name).join("bootstrap.zip");
    let file = std::fs::File::open(&archive).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the deployable artefacts with scripts/package",
            archive.display()
        )
    });
    let mut zip = zip::ZipArchive::new(file).expect("a zip");
    let mut bytes = Vec::new();
    zip.by_name("bootstrap")
        .expect("the zip holds bootstrap")
        .read_to_end(&mut bytes)
        .expect("readable");
    let directory = root.join("target/artefact-check").join(name);
    std::fs::create_dir_all(&directory).expect("target/artefact-check");
    let binary = directory.join("bootstrap");
    std::fs::write(&binary, bytes).expect("written");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    binary
}

/// Starts `binary` against a fresh Runtime API, hands it `event`, returns its answer.
async fn invoke(
    binary: &Path,
    machine: Machine,
    function: &str,
    event: &Value,
    environment: &BTreeMap<String, String>,
    log: &std::fs::File,
) -> Value {
    let mut api = RuntimeApi::bind().await.expect("a Runtime API");
    let process = Function::start(binary, machine, function, &api, environment, Some(log))
        .expect("the function starts");
    let outcome = api
        .invoke(
            event.to_string().as_bytes(),
            function,
            Duration::from_secs(60),
        )
        .await;
    process.stop().await;
    match outcome.unwrap_or_else(|e| panic!("{function} ({machine:?}): {e}")) {
        Outcome::Response(body) => serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{function} ({machine:?}) answered non-JSON")),
        other => panic!("{function} ({machine:?}) failed: {other:?}"),
    }
}

#[tokio::test]
async fn every_arm64_artefact_answers_a_real_event_like_the_x86_64_build() {
    let stack = Stack::connect().await;
    let root = workspace_root();
    let tables = tables(&stack);
    let environment: BTreeMap<String, String> = stack.description["environment"]
        .as_object()
        .expect("the functions' environment")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    // The privacy sweep reads every file in the stack's log directory, this one too.
    let log_path = stack
        .function_log()
        .parent()
        .expect("log directory")
        .join("artefacts.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .expect("artefacts.log");

    let declared: Vec<String> = stack.description["resources"]
        .as_object()
        .expect("resources")
        .keys()
        .filter_map(|k| k.strip_prefix("function:").map(str::to_owned))
        .collect();
    let mut covered: Vec<String> = CASES.iter().map(|c| c.function.to_owned()).collect();
    covered.sort();
    let mut declared_sorted = declared.clone();
    declared_sorted.sort();
    assert_eq!(covered, declared_sorted, "one case per declared function");

    for case in CASES {
        let text = std::fs::read_to_string(root.join("events").join(case.event)).expect("event");
        let event = (case.prepare)(serde_json::from_str(&text).expect("JSON event"));
        let arm64 = unzip_bootstrap(&root, case.function);
        let x86_64 = root.join("target/debug").join(case.function);
        let mut environment = environment.clone();
        let mut exports = None;
        match case.setup {
            Setup::Nothing => {}
            Setup::Settle => {
                invoke(
                    &x86_64,
                    Machine::Native,
                    case.function,
                    &event,
                    &environment,
                    &log,
                )
                .await;
            }
            Setup::ReleasedKeys => {
                let region = format!("8{}", &e2e::random_id()[..6]);
                environment.insert("SUPPORTED_REGIONS".into(), region.clone());
                environment.insert("MAX_KEYS_PER_FILE".into(), EXPORT_FILE_KEYS.into());
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let release =
                    time::OffsetDateTime::from_unix_timestamp(now / 3600 * 3600 - 3 * 3600)
                        .expect("an hour");
                let keys = e2e::put_released_keys(
                    &stack.dynamodb,
                    &stack.keys_table(),
                    &region,
                    release,
                    RELEASED_KEYS,
                )
                .await;
                exports = Some(Exports::new(&stack, region, keys).await);
            }
        }
        let before = snapshot(&stack, &tables).await;
        let native = invoke(
            &x86_64,
            Machine::Native,
            case.function,
            &event,
            &environment,
            &log,
        )
        .await;
        let native_changes = changes(&before, &snapshot(&stack, &tables).await);
        let native_files = match &exports {
            Some(exports) => exports.published().await,
            None => BTreeMap::new(),
        };
        undo(&stack, &tables, &native_changes).await;
        if let Some(exports) = &exports {
            exports.remove(&native_files).await;
        }
        assert_eq!(
            snapshot(&stack, &tables).await,
            before,
            "{}: DynamoDB is back as it was",
            case.function
        );
        let emulated = invoke(
            &arm64,
            Machine::Aarch64Qemu,
            case.function,
            &event,
            &environment,
            &log,
        )
        .await;
        let emulated_changes = changes(&before, &snapshot(&stack, &tables).await);

        assert_eq!(
            comparable_answer(&emulated),
            comparable_answer(&native),
            "{}: the arm64 artefact answers {emulated}, the x86_64 build {native}",
            case.function
        );
        if let Some(expected) = case.changes {
            assert_eq!(
                native_changes.len(),
                expected,
                "{}: the x86_64 build changed {native_changes:?}",
                case.function
            );
        }
        let mut native_compared: Vec<String> = native_changes
            .iter()
            .map(|c| comparable_change(c, case.varies))
            .collect();
        let mut emulated_compared: Vec<String> = emulated_changes
            .iter()
            .map(|c| comparable_change(c, case.varies))
            .collect();
        native_compared.sort();
        emulated_compared.sort();
        assert_eq!(
            emulated_compared, native_compared,
            "{}: the arm64 artefact and the x86_64 build wrote the same items",
            case.function
        );
        let mut files = 0;
        if let Some(exports) = &exports {
            let emulated_files = exports.published().await;
            files = exports.compare(&native_files, &emulated_files).await;
            exports.remove(&emulated_files).await;
            exports.remove_keys().await;
        }
        // As the test found it: a rerun against the same stack starts from the same state.
        undo(&stack, &tables, &emulated_changes).await;
        eprintln!(
            "artefacts: {} under qemu-aarch64 answered like x86_64 ({}), {} item(s) and {files} \
             export file(s) written alike",
            case.function,
            comparable_answer(&emulated)
                .get("statusCode")
                .map_or_else(|| "a summary".to_owned(), Value::to_string),
            emulated_changes.len()
        );
    }
}

/// The exporter case's region in the exports bucket.
struct Exports<'a> {
    stack: &'a Stack,
    s3: aws_sdk_s3::Client,
    bucket: String,
    region: String,
    keys: Vec<Vec<u8>>,
    /// The signing key's public point (the last 65 bytes of its P-256 SubjectPublicKeyInfo).
    public_key: Vec<u8>,
}

impl<'a> Exports<'a> {
    async fn new(stack: &'a Stack, region: String, keys: Vec<Vec<u8>>) -> Self {
        let spki = stack
            .kms
            .get_public_key()
            .key_id(stack.resource("kms:export-signing"))
            .send()
            .await
            .expect("the signing key's public key")
            .public_key
            .expect("a public key")
            .into_inner();
        Self {
            stack,
            s3: stack.s3(),
            bucket: stack.resource("bucket:exports"),
            region,
            keys,
            public_key: spki[spki.len() - 65..].to_vec(),
        }
    }

    fn prefix(&self) -> String {
        format!("c19r/{}/", self.region)
    }

    /// Every object under the region's prefix (export zips and list.json), with its bytes.
    async fn published(&self) -> BTreeMap<String, Vec<u8>> {
        e2e::bucket_objects(&self.s3, &self.bucket, &self.prefix()).await
    }

    async fn remove(&self, objects: &BTreeMap<String, Vec<u8>>) {
        for name in objects.keys() {
            self.s3
                .delete_object()
                .bucket(&self.bucket)
                .key(name)
                .send()
                .await
                .expect("delete an object the run wrote");
        }
        assert!(
            self.published().await.is_empty(),
            "the region's objects are gone"
        );
    }

    async fn remove_keys(&self) {
        let table = self.stack.keys_table();
        for item in scan_table(&self.stack.dynamodb, &table).await {
            let ours = matches!(item.get("pk"), Some(AttributeValue::S(pk)) if pk.starts_with(&format!("{}#", self.region)));
            if ours {
                self.stack
                    .dynamodb
                    .delete_item()
                    .table_name(&table)
                    .key("pk", item["pk"].clone())
                    .send()
                    .await
                    .expect("delete a released key");
            }
        }
    }

    /// The two builds published the same files (names, batches, sizes, key counts, list.json
    /// entries); each of the arm64 build's verifies against the KMS public key (ring), and the
    /// released keys are each in exactly one of its files. Returns the number of zips.
    async fn compare(
        &self,
        native: &BTreeMap<String, Vec<u8>>,
        emulated: &BTreeMap<String, Vec<u8>>,
    ) -> usize {
        assert_eq!(
            emulated.keys().collect::<Vec<_>>(),
            native.keys().collect::<Vec<_>>(),
            "the same objects"
        );
        let zips: Vec<&String> = emulated.keys().filter(|k| k.ends_with(".zip")).collect();
        assert!(zips.len() >= 2, "the release is split into files: {zips:?}");
        let list = format!("{}list.json", self.prefix());
        let shape_of = |bytes: &[u8]| {
            let list: Value = serde_json::from_slice(bytes).expect("list.json is JSON");
            list.as_array()
                .expect("a list")
                .iter()
                .map(|entry| {
                    let mut entry = entry.clone();
                    entry["created"] = json!("a time");
                    entry
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            shape_of(&emulated[&list]),
            shape_of(&native[&list]),
            "list.json lists the same files"
        );
        let verifier = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            &self.public_key,
        );
        let mut found: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        for name in &zips {
            let arm = shared::domain::export::parse_export_zip(&emulated[*name])
                .unwrap_or_else(|e| panic!("{name}: the arm64 build's file: {e:?}"));
            let x86 = shared::domain::export::parse_export_zip(&native[*name])
                .unwrap_or_else(|e| panic!("{name}: the x86_64 build's file: {e:?}"));
            assert_eq!(
                (
                    arm.contents.batch_num,
                    arm.contents.batch_size,
                    arm.contents.keys.len()
                ),
                (
                    x86.contents.batch_num,
                    x86.contents.batch_size,
                    x86.contents.keys.len()
                ),
                "{name}: batch number, batch size and key count"
            );
            assert_eq!(
                (
                    arm.contents.start_timestamp,
                    arm.contents.end_timestamp,
                    &arm.contents.region
                ),
                (
                    x86.contents.start_timestamp,
                    x86.contents.end_timestamp,
                    &x86.contents.region
                ),
                "{name}: its window and region"
            );
            assert_eq!(arm.signatures.len(), 1, "{name}: one signature");
            verifier
                .verify(&arm.export_bin, &arm.signatures[0].signature)
                .unwrap_or_else(|_| panic!("{name}: the arm64 build's signature verifies"));
            for key in &arm.contents.keys {
                *found.entry(key.key_data.as_bytes().to_vec()).or_default() += 1;
            }
        }
        for key in &self.keys {
            assert_eq!(
                found.get(key),
                Some(&1),
                "a released key is in exactly one file"
            );
        }
        zips.len()
    }
}

/// `scripts/check_artefacts.py` (the runtime floor) passes on every deployable artefact, and
/// fails on a bootstrap that is not an aarch64 binary for Amazon Linux 2023.
#[test]
fn the_runtime_floor_holds_and_its_check_can_fail() {
    let root = workspace_root();
    let functions: Vec<String> = {
        e2e::services::declaration()["functions"]
            .as_array()
            .expect("functions")
            .iter()
            .map(|f| f["name"].as_str().expect("name").to_owned())
            .collect()
    };
    let check = |directory: &Path| {
        std::process::Command::new("python3")
            .arg(root.join("scripts/check_artefacts.py"))
            .arg(directory)
            .args(&functions)
            .output()
            .expect("python3 runs")
    };
    let passed = check(&root.join("target/lambda"));
    assert!(
        passed.status.success(),
        "{}{}",
        String::from_utf8_lossy(&passed.stdout),
        String::from_utf8_lossy(&passed.stderr)
    );
    let table = String::from_utf8_lossy(&passed.stdout).into_owned();
    for name in &functions {
        assert!(table.contains(&format!("| {name} |")), "{table}");
    }

    // The same layout, but one bootstrap is this machine's x86_64 test binary, linked against
    // Debian's glibc: the check must refuse it.
    let fake = root.join("target/artefact-check/floor");
    let _ = std::fs::remove_dir_all(&fake);
    for name in &functions {
        std::fs::create_dir_all(fake.join(name)).expect("dir");
        for file in ["bootstrap", "bootstrap.zip"] {
            std::fs::copy(
                root.join("target/lambda").join(name).join(file),
                fake.join(name).join(file),
            )
            .expect("copy");
        }
    }
    let host_binary = std::env::current_exe().expect("this test binary");
    let victim = fake.join(&functions[0]);
    std::fs::copy(&host_binary, victim.join("bootstrap")).expect("copy");
    let zipped = std::process::Command::new("python3")
        .arg(root.join("scripts/zip_artefact.py"))
        .arg(victim.join("bootstrap"))
        .arg(victim.join("bootstrap.zip"))
        .status()
        .expect("python3 runs");
    assert!(zipped.success());
    let refused = check(&fake);
    let stderr = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: not a 64-bit aarch64 ELF executable",
            functions[0]
        )),
        "{stderr}"
    );
}
