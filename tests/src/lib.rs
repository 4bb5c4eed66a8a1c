//! Helpers for the end-to-end tests: the running local stack (described by
//! `.local/stack-run.json`, which `scripts/stack.py` writes once every endpoint answers), request
//! builders and table inspection. The tests talk to the stack over real connections only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Value, json};
use shared::domain::exposure_key::release_partition;
use time::{Date, OffsetDateTime, Time};

pub mod load;
pub mod services;

/// Every processing number the tests send. The privacy sweep looks for each of them everywhere.
pub const VALID_NUMBER: &str = "99999910";
pub const REFUSED_NUMBER: &str = "99999920";
pub const FAILING_NUMBER: &str = "99999930";
/// The stand-in answers this one only after 6 s, beyond the 3 s HER-SYS timeout.
pub const SLOW_NUMBER: &str = "99999940";
/// The stand-in drops the connection without answering.
pub const DOWN_NUMBER: &str = "99999950";
pub const PROCESSING_NUMBERS: &[&str] = &[
    VALID_NUMBER,
    REFUSED_NUMBER,
    FAILING_NUMBER,
    SLOW_NUMBER,
    DOWN_NUMBER,
];
/// Every attestation payload the tests send starts with this, so the sweep can find one.
pub const ATTESTATION_MARKER: &str = "ATTESTATION-PAYLOAD-";

/// Everything a keys-table item may hold: what an export needs, and nothing about the submitter.
pub const KEYS_TABLE_ATTRIBUTES: &[&str] = &[
    "pk",
    "release",
    "key_data",
    "rolling_start_number",
    "rolling_period",
    "transmission_risk",
    "report_type",
    "days_since_onset",
    "release_at",
    "expires_at",
];

pub type Item = HashMap<String, AttributeValue>;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The local stack the tests run against.
pub struct Stack {
    pub api: String,
    pub http: reqwest::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub kms: aws_sdk_kms::Client,
    /// The Invoke API of `cargo lambda watch`.
    pub lambda: aws_sdk_lambda::Client,
    pub description: Value,
}

impl Stack {
    /// Connects to the stack `scripts/test` (or `scripts/dev`) started. Fails loudly when none
    /// runs: these tests are never skipped.
    pub async fn connect() -> Self {
        let path = std::env::var("COCOA_STACK_RUN")
            .map(PathBuf::from)
            .unwrap_or_else(|_| workspace_root().join(".local/stack-run.json"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!("no local stack description at {}: {error}; run scripts/test, or scripts/dev in another terminal", path.display())
        });
        let description: Value = serde_json::from_str(&text).expect("stack-run.json is JSON");
        let env = |name: &str| {
            description["environment"][name]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        let credentials = aws_sdk_dynamodb::config::Credentials::new(
            env("AWS_ACCESS_KEY_ID"),
            env("AWS_SECRET_ACCESS_KEY"),
            None,
            None,
            "local-stack",
        );
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(env("AWS_REGION")))
            .credentials_provider(credentials)
            .load()
            .await;
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&config)
                .endpoint_url(env("AWS_ENDPOINT_URL_DYNAMODB"))
                .build(),
        );
        let kms = aws_sdk_kms::Client::from_conf(
            aws_sdk_kms::config::Builder::from(&config)
                .endpoint_url(env("AWS_ENDPOINT_URL_KMS"))
                .build(),
        );
        let lambda = aws_sdk_lambda::Client::from_conf(
            aws_sdk_lambda::config::Builder::from(&config)
                .endpoint_url(env("AWS_ENDPOINT_URL_LAMBDA"))
                .build(),
        );
        let api = description["api"].as_str().expect("api url").to_owned();
        Self {
            api,
            http: reqwest::Client::new(),
            dynamodb,
            kms,
            lambda,
            description,
        }
    }

    /// A variable of the functions' environment on this stack.
    pub fn environment(&self, name: &str) -> String {
        self.description["environment"][name]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn resource(&self, placeholder: &str) -> String {
        self.description["resources"][placeholder]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// An S3 client for the stack's moto (path-style addressing).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let env = |name: &str| self.environment(name);
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(env("AWS_REGION")))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                env("AWS_ACCESS_KEY_ID"),
                env("AWS_SECRET_ACCESS_KEY"),
                None,
                None,
                "test",
            ))
            .endpoint_url(env("AWS_ENDPOINT_URL_S3"))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    pub fn keys_table(&self) -> String {
        self.resource("table:keys")
    }

    pub fn function_log(&self) -> PathBuf {
        PathBuf::from(
            self.description["functionLog"]
                .as_str()
                .expect("functionLog"),
        )
    }

    /// Sends `body` to `path` with `method`; returns the status and the body text.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.api))
            .header("accept", "application/json")
            .body(body);
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            request = request.header("content-type", "application/json; charset=utf-8");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    pub async fn put_json(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        self.send("PUT", path, body.to_string(), headers).await
    }

    /// Every item of `table` (the tables stay small in tests).
    pub async fn scan(&self, table: &str) -> Vec<Item> {
        scan_table(&self.dynamodb, table).await
    }

    /// The stored items (all regions) whose key bytes are one of `keys`.
    pub async fn stored_items_for(&self, keys: &[TestKey]) -> Vec<Item> {
        let wanted: Vec<&[u8]> = keys.iter().map(|k| k.bytes.as_slice()).collect();
        self.scan(&self.keys_table())
            .await
            .into_iter()
            .filter(|item| matches!(item.get("key_data"), Some(AttributeValue::B(b)) if wanted.contains(&b.as_ref())))
            .collect()
    }
}

/// A key a test submits.
#[derive(Clone)]
pub struct TestKey {
    pub bytes: Vec<u8>,
    pub base64: String,
    pub rolling_start_number: u32,
    pub rolling_period: u32,
    pub report_type: u32,
}

pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("system randomness");
    bytes
}

/// A random UUID as `Guid.ToString()` writes it (COCOA names its log zips with one).
pub fn random_uuid() -> String {
    let hex: String = random_bytes(16)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

pub fn random_id() -> String {
    random_bytes(8).iter().map(|b| format!("{b:02x}")).collect()
}

pub fn today_utc() -> Date {
    OffsetDateTime::now_utc().date()
}

pub fn rolling_start_number(day: Date) -> u32 {
    u32::try_from(day.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp() / 600).expect("fits")
}

impl TestKey {
    /// A fresh random key starting at UTC midnight of `day`, valid for a whole day.
    pub fn on(day: Date) -> Self {
        Self::with_length(day, 16)
    }

    pub fn with_length(day: Date, length: usize) -> Self {
        let bytes = random_bytes(length);
        Self {
            base64: base64::engine::general_purpose::STANDARD.encode(&bytes),
            bytes,
            rolling_start_number: rolling_start_number(day),
            rolling_period: 144,
            report_type: 1,
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "keyData": self.base64,
            "rollingStartNumber": self.rolling_start_number,
            "rollingPeriod": self.rolling_period,
            "reportType": self.report_type,
        })
    }
}

/// A v3 body as app v3.0.0 builds it: onset at JST midnight of `onset`.
pub fn v3_body(
    keys: &[TestKey],
    onset: Date,
    processing_number: &str,
    idempotency_key: &str,
) -> Value {
    json!({
        "hasSymptom": true,
        "onsetOfSymptomOrTestDate": format!("{onset}T00:00:00.000+09:00"),
        "keys": keys.iter().map(TestKey::json).collect::<Vec<_>>(),
        "regions": ["440"],
        "platform": "android",
        "deviceVerificationPayload": format!("{ATTESTATION_MARKER}{}", random_id()),
        "appPackageName": "jp.go.mhlw.covid19radar",
        "verificationPayload": processing_number,
        "idempotency_key": idempotency_key,
        "padding": base64::engine::general_purpose::STANDARD.encode(random_bytes(1200)),
    })
}

/// A v2 body as apps 1.2.2–1.4.1 built it.
pub fn v2_body(keys: &[TestKey], processing_number: &str) -> Value {
    json!({
        "keys": keys.iter().map(|k| json!({
            "keyData": k.base64,
            "rollingStartNumber": k.rolling_start_number,
            "rollingPeriod": k.rolling_period,
        })).collect::<Vec<_>>(),
        "regions": ["440"],
        "platform": "ios",
        "deviceVerificationPayload": format!("{ATTESTATION_MARKER}{}", random_id()),
        "appPackageName": "jp.go.mhlw.covid19radar",
        "verificationPayload": processing_number,
        "padding": "",
    })
}

pub fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

pub fn string(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Writes keys straight into the keys table, as submissions before `release` would have.
pub async fn put_released_keys(
    dynamodb: &aws_sdk_dynamodb::Client,
    keys_table: &str,
    region: &str,
    release: time::OffsetDateTime,
    count: usize,
) -> Vec<Vec<u8>> {
    let rsn = rolling_start_number(release.date() - time::Duration::days(2));
    let mut written = Vec::with_capacity(count);
    let mut requests = Vec::new();
    for _ in 0..count {
        let key = random_bytes(16);
        let item: HashMap<String, AttributeValue> = [
            ("pk", AttributeValue::S(format!("{region}#{}", random_id()))),
            (
                "release",
                AttributeValue::S(release_partition(region, release.unix_timestamp())),
            ),
            ("key_data", AttributeValue::B(Blob::new(key.clone()))),
            ("rolling_start_number", AttributeValue::N(rsn.to_string())),
            ("rolling_period", AttributeValue::N("144".into())),
            ("transmission_risk", AttributeValue::N("4".into())),
            ("report_type", AttributeValue::N("1".into())),
            ("days_since_onset", AttributeValue::N("2".into())),
            (
                "release_at",
                AttributeValue::N(release.unix_timestamp().to_string()),
            ),
            (
                "expires_at",
                AttributeValue::N((i64::from(rsn) * 600 + 15 * 86_400).to_string()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        requests.push(
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .expect("put"),
                )
                .build(),
        );
        written.push(key);
    }
    for chunk in requests.chunks(25) {
        let output = dynamodb
            .batch_write_item()
            .request_items(keys_table, chunk.to_vec())
            .send()
            .await
            .expect("batch write");
        assert!(output.unprocessed_items.unwrap_or_default().is_empty());
    }
    written
}

/// One file an export run published, as list.json lists it.
pub struct ListedExport {
    /// Its object key in the bucket.
    pub object: String,
    pub zip_bytes: usize,
    /// The bytes of each key it holds, in file order.
    pub keys: Vec<[u8; 16]>,
}

/// The files `prefix`'s list.json lists, in list order, from `published` (`bucket_objects`):
/// each listed once, present, a GAEN export, and signed by `verifying_key`; otherwise why not.
pub fn listed_exports(
    published: &std::collections::BTreeMap<String, Vec<u8>>,
    prefix: &str,
    bucket: &str,
    verifying_key: &shared::domain::export::ExportPublicKey,
) -> Result<Vec<ListedExport>, String> {
    let list = published
        .get(&format!("{prefix}list.json"))
        .ok_or("no list.json")?;
    let list: Vec<Value> = serde_json::from_slice(list).map_err(|e| e.to_string())?;
    let mut listed: Vec<ListedExport> = Vec::with_capacity(list.len());
    for entry in &list {
        let url = entry["url"].as_str().ok_or("an entry without url")?;
        let (_, object) = url
            .split_once(&format!("/{bucket}/"))
            .ok_or("a URL outside the bucket")?;
        if listed.iter().any(|file| file.object == object) {
            return Err(format!("{object} is listed twice"));
        }
        let zip = published
            .get(object)
            .ok_or_else(|| format!("{object} is listed but missing"))?;
        let export = shared::domain::export::parse_export_zip(zip).map_err(|e| e.to_string())?;
        export
            .verify(verifying_key)
            .map_err(|e| format!("{object}: {e}"))?;
        listed.push(ListedExport {
            object: object.to_owned(),
            zip_bytes: zip.len(),
            keys: export
                .contents
                .keys
                .iter()
                .map(|key| *key.key_data.as_bytes())
                .collect(),
        });
    }
    Ok(listed)
}

/// Every object under `prefix` in `bucket`, with its bytes.
pub async fn bucket_objects(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> std::collections::BTreeMap<String, Vec<u8>> {
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("list");
    let mut objects = std::collections::BTreeMap::new();
    for object in listed.contents.unwrap_or_default() {
        let key = object.key.expect("key");
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .expect("get")
            .body
            .collect()
            .await
            .expect("body");
        objects.insert(key, body.into_bytes().to_vec());
    }
    objects
}

/// The key data a v3 200 answer echoes (the keys the server accepted; it drops keys outside the
/// onset window silently, as COCOA does).
pub fn echoed_keys(body: &str) -> Vec<String> {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["keys"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|k| k["keyData"].as_str().map(str::to_owned))
        .collect()
}

/// The submission rules the stack declares (`infra/stack.json`), for handlers run in process.
pub fn declared_submission_rules() -> shared::domain::diagnosis::SubmissionRules {
    use shared::domain::diagnosis::{DayWindow, SubmissionRules};
    SubmissionRules {
        supported_regions: vec!["440".into()],
        symptom_onset_window: DayWindow { from: -3, to: 10 },
        test_date_window: DayWindow { from: -3, to: 7 },
    }
}

/// A `PUT /api/v3/diagnosis` as API Gateway hands it to `submit-keys`.
pub fn v3_request(body: &Value) -> lambda_http::Request {
    let mut request = lambda_http::Request::new(lambda_http::Body::Text(body.to_string()));
    *request.method_mut() = lambda_http::http::Method::PUT;
    *request.uri_mut() =
        lambda_http::http::Uri::from_static("https://api.example.invalid/api/v3/diagnosis");
    request
}

/// `publish-exports` as its `main.rs` composes it (a release of under 1,000 keys padded to 1,000,
/// a grace of 60 s), over the given clients and resources.
pub type Exporter = shared::export_run::PublishExports<
    shared::adapters::dynamo_exports::DynamoReleasedKeys,
    shared::adapters::dynamo_exports::DynamoExportLedger,
    shared::adapters::s3_bucket::S3ExportBucket,
    shared::export_run::SignedExportFiles<shared::adapters::kms_signer::KmsSigner>,
>;

pub struct ExporterSetup<'a> {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub keys_table: &'a str,
    pub exports_table: &'a str,
    pub s3: aws_sdk_s3::Client,
    pub bucket: &'a str,
    pub kms: aws_sdk_kms::Client,
    pub signing_key: &'a str,
    pub regions: Vec<String>,
    pub max_keys_per_file: usize,
    pub base_url: String,
    /// `ExportSettings::reads_in_flight` (production's default: `RELEASE_READS_IN_FLIGHT`).
    pub reads_in_flight: usize,
    /// `ExportSettings::max_keys_per_run` (production's default: `MAX_KEYS_PER_RUN`).
    pub max_keys_per_run: usize,
}

impl ExporterSetup<'_> {
    pub async fn build(self) -> Exporter {
        use shared::adapters::dynamo_exports::{DynamoExportLedger, DynamoReleasedKeys};
        use shared::adapters::kms_signer::KmsSigner;
        use shared::adapters::s3_bucket::S3ExportBucket;
        use shared::export_run::{ExportSettings, PublishExports, SignedExportFiles};
        let signer = KmsSigner::new(self.kms, self.signing_key);
        let public_key = signer.public_key().await.expect("public key");
        PublishExports {
            source: DynamoReleasedKeys::new(self.dynamodb.clone(), self.keys_table),
            ledger: DynamoExportLedger::new(self.dynamodb, self.exports_table),
            bucket: S3ExportBucket::new(self.s3, self.bucket),
            files: SignedExportFiles {
                signer,
                public_key,
                verification_key_id: "440".into(),
                verification_key_version: "v1".into(),
                min_keys: 1000,
            },
            settings: ExportSettings {
                regions: self.regions,
                min_keys_per_release: 1000,
                max_keys_per_file: self.max_keys_per_file,
                base_url: self.base_url,
                grace_seconds: 60,
                reads_in_flight: self.reads_in_flight,
                max_keys_per_run: self.max_keys_per_run,
            },
        }
    }
}

/// An SDK interceptor that counts every request a client sends (each attempt), by service and
/// operation (`DynamoDB.Query`, `S3.PutObject`, …); clones share the counts.
#[derive(Clone, Debug, Default)]
pub struct RequestCounter(
    std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>,
);

impl aws_smithy_runtime_api::client::interceptors::Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let name = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map_or("?".to_owned(), |m| format!("{}.{}", m.service(), m.name()));
        if let Ok(mut counts) = self.0.lock() {
            *counts.entry(name).or_default() += 1;
        }
        Ok(())
    }
}

impl RequestCounter {
    /// Every request counted so far.
    pub fn total(&self) -> u64 {
        self.0.lock().map(|c| c.values().sum()).unwrap_or_default()
    }

    /// The counts so far, and zero from now on.
    pub fn take(&self) -> std::collections::BTreeMap<String, u64> {
        self.0
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }
}

/// How many rounds a bench binary makes: `full` under `cargo bench` (which passes `--bench`),
/// `smoke` under `cargo test --benches` (as `scripts/test` runs them, to prove they still work;
/// those figures mean nothing).
pub fn bench_rounds(full: usize, smoke: usize) -> usize {
    if std::env::args().any(|a| a == "--bench") {
        full
    } else {
        smoke
    }
}

/// Every item of `table`, page after page.
pub async fn scan_table(dynamodb: &aws_sdk_dynamodb::Client, table: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let page = dynamodb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .expect("scan succeeds");
        items.extend(page.items.unwrap_or_default());
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return items,
        }
    }
}
